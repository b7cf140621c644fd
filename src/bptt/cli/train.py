"""``bptt train``: one command, one flag set per task; ``--task`` picks the set that applies.

Each task's module declares its own flags (``add_flags``) and its defaults (``defaults``, read
from the library's ``train`` signature), so a flag of another task is refused by what those
declarations say, and a default changed in the library changes the command and its ``--help``.
"""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import Any

from . import train_addition, train_charlm
from .common import UsageError, positive, seed

__all__ = ["HELP", "TASKS", "register", "run"]

HELP = "train the binary-addition RNN (or a character model) and save it"
TASKS: dict[str, ModuleType] = {"addition": train_addition, "charlm": train_charlm}


def _per_task(defaults: dict[str, dict[str, Any]], name: str) -> str:
    """``default 16; charlm 128``: the first task's default, then each other task's that differs."""
    first, *others = defaults
    text = f"default {defaults[first][name]}"
    return text + "".join(
        f"; {t} {defaults[t][name]}" for t in others if defaults[t][name] != defaults[first][name]
    )


def register(parser: argparse.ArgumentParser) -> None:
    """Declare the flags every task takes, then each task's own in a group of its name."""
    defaults = {name: task.defaults() for name, task in TASKS.items()}
    add = parser.add_argument
    add("--task", choices=list(TASKS), default=next(iter(TASKS)), help="what to learn")
    add("--hidden", type=positive, default=None, help=f"hidden units ({_per_task(defaults, 'hidden')})")
    add("--seed", type=seed, default=None, help=f"seed of everything random ({_per_task(defaults, 'seed')})")
    add("--out", default=None, help=f"model file ({_per_task(defaults, 'out')})")
    add("--quiet", action="store_true", help="no progress bar")
    flags = {
        name: task.add_flags(parser.add_argument_group(f"--task {name}")) for name, task in TASKS.items()
    }
    parser.set_defaults(task_flags=flags)


def run(args: argparse.Namespace) -> int:
    """Refuse another task's flags, then train the chosen task."""
    for task, actions in args.task_flags.items():
        if task == args.task:
            continue
        for action in actions:
            if getattr(args, action.dest) not in (None, False):
                raise UsageError(f"{action.option_strings[0]} does not apply to --task {args.task}")
    status: int = TASKS[args.task].run(args)
    return status
