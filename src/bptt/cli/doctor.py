"""``bptt doctor``: check a learner's own BPTT against the reference, name the mistake, show the right term.

    bptt doctor my_rnn.py:MyRNN --activation sigmoid --output sigmoid --loss half_mse
    bptt doctor britz.py:rnn --map U=W_ih,W=W_hh,V=W_ho --data column-steps

``PATH.py`` is imported by its path, with its folder on ``sys.path`` (so its own imports work)
while the doctor runs; ``NAME`` is a class (built with no arguments), an object or a function
``f(x, y) -> gradients`` in it. Exit status: 0 every gradient agrees, 1 a mistake was found, 2 the
learner could not be checked (a missing file or name, a file that fails to import, a bad
``--map``, weights whose roles cannot be told apart).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from .common import UsageError, seed

__all__ = [
    "ACTIVATIONS",
    "DATA",
    "HELP",
    "LAYOUTS",
    "LOSSES",
    "OUTPUTS",
    "REDUCTIONS",
    "ROLES",
    "STEPS",
    "parse_map",
    "register",
    "run",
]

HELP = "check your own BPTT: name the mistake, show the right term"

# bptt.doctor.spec's and .layouts' choices, written out so that `bptt --help` loads no NumPy (a test
# holds them equal)
ROLES = ("W_ih", "W_hh", "b", "W_ho", "b_o")
ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")
OUTPUTS = ("identity", "sigmoid", "softmax")
LOSSES = ("mse", "half_mse", "bce", "cross_entropy")
REDUCTIONS = ("sum", "mean")
STEPS = ("every", "last")
LAYOUTS = ("row", "column")
DATA = ("sequence", "time-major", "batch-major", "steps", "column-steps")


def parse_map(text: str) -> dict[str, str]:
    """``"U=W_ih,W=W_hh"`` -> ``{"U": "W_ih", "W": "W_hh"}``, for argparse."""
    names: dict[str, str] = {}
    for pair in text.split(","):
        name, sep, role = (part.strip() for part in pair.partition("="))
        if not sep or not name or not role:
            raise argparse.ArgumentTypeError(
                f"expected NAME=ROLE pairs like U=W_ih,W=W_hh; got {pair.strip()!r}"
            )
        if role not in ROLES:
            raise argparse.ArgumentTypeError(f"{role!r} is no role; the roles are {', '.join(ROLES)}")
        if name in names:
            raise argparse.ArgumentTypeError(f"{name!r} is mapped twice")
        names[name] = role
    return names


def register(parser: argparse.ArgumentParser) -> None:
    """Declare ``bptt doctor``'s flags (the defaults are ``bptt.doctor.check``'s)."""
    add = parser.add_argument
    add(
        "target",
        metavar="PATH.py:NAME",
        help="the learner: a class, an object or a function f(x, y) in PATH.py",
    )
    add(
        "--map",
        dest="names",
        type=parse_map,
        metavar="NAME=ROLE,...",
        help=f"the learner's names for the roles {', '.join(ROLES)} (default: told by names and shapes)",
    )
    add("--activation", choices=ACTIVATIONS, default="tanh", help="the hidden layer's (default tanh)")
    add("--output", choices=OUTPUTS, default="identity", help="the output layer's (default identity)")
    add("--loss", choices=LOSSES, default="mse", help="mse Σ(ŷ-y)², half_mse ½Σ(ŷ-y)², ... (default mse)")
    add("--reduction", choices=REDUCTIONS, default="sum", help="the loss summed or averaged (default sum)")
    add(
        "--steps",
        choices=STEPS,
        default="every",
        help="outputs at every step or the last only (default every)",
    )
    add(
        "--layout",
        choices=LAYOUTS,
        help="row vectors x @ W or column vectors W @ x (default: told by shapes)",
    )
    add("--data", choices=DATA, default="sequence", help="how the learner takes x (default sequence: (T, I))")
    add("--seed", type=seed, default=0, help="seed of the weights and data (default 0)")


def run(args: argparse.Namespace) -> int:
    """Check the learner; print the report; 0 healthy, 1 a mistake found."""
    path, name = _target(args.target)
    with _imported(path) as module:
        learner = _learner(module, name, path)
        from ..doctor import check

        try:
            report = check(
                learner,
                names=args.names,
                activation=args.activation,
                output=args.output,
                loss=args.loss,
                reduction=args.reduction,
                steps=args.steps,
                layout=args.layout,
                data=args.data,
                seed=args.seed,
            )
        except ValueError as e:  # the doctor's refusal: the learner's own errors are in the report
            raise UsageError(_one_line(str(e)).removeprefix("doctor: ")) from None
    print(report)
    return 0 if report.healthy else 1


def _target(text: str) -> tuple[Path, str]:
    """``PATH.py:NAME`` as an existing file and a name."""
    where, sep, name = text.rpartition(":")
    if not sep or not where or not name:
        raise UsageError(f"expected PATH.py:NAME (e.g. my_rnn.py:MyRNN); got {text!r}")
    path = Path(where)
    if not path.exists():
        raise UsageError(f"{where!r} does not exist")
    if path.is_dir():
        raise UsageError(f"{where!r} is a directory; expected a Python file")
    if not path.is_file():  # a FIFO or a device: reading it could wait forever
        raise UsageError(f"{where!r} is not a regular file; expected a Python file")
    return path, name


@contextmanager
def _imported(path: Path) -> Iterator[ModuleType]:
    """The module at ``path``, its folder on ``sys.path`` until the block ends; then the modules
    imported from that folder are forgotten, so another learner of the same names can follow."""
    from importlib.machinery import SourceFileLoader
    from importlib.util import module_from_spec, spec_from_loader

    folder = path.resolve().parent
    before = set(sys.modules)
    sys.path.insert(0, str(folder))
    name = "bptt_doctor_" + re.sub(r"\W", "_", path.stem)
    try:
        loader = SourceFileLoader(name, str(path))
        spec = spec_from_loader(name, loader)
        assert spec is not None  # a loader always makes a spec
        module = module_from_spec(spec)
        sys.modules[name] = module
        try:
            loader.exec_module(module)
        except SyntaxError as e:
            raise UsageError(f"cannot import {path}: SyntaxError on line {e.lineno}: {e.msg}") from None
        except (Exception, SystemExit) as e:
            where = _where(e.__traceback__, path)
            raise UsageError(
                f"cannot import {path}: {type(e).__name__} {where}: {_one_line(str(e))}"
            ) from None
        yield module
    finally:
        if str(folder) in sys.path:
            sys.path.remove(str(folder))
        for added in set(sys.modules) - before:
            file = getattr(sys.modules[added], "__file__", None)
            if added == name or (file is not None and Path(file).resolve().parent == folder):
                del sys.modules[added]


def _where(tb: TracebackType | None, path: Path) -> str:
    """``"on line 12"`` of the deepest frame in the learner's folder (``"on line 3 of layers.py"``
    when that frame is in another of its files)."""
    folder, found = path.resolve().parent, ""
    while tb is not None:
        file = Path(tb.tb_frame.f_code.co_filename)
        if file.exists() and file.resolve().parent == folder:
            other = "" if file.resolve() == path.resolve() else f" of {file.name}"
            found = f"on line {tb.tb_lineno}{other}"
        tb = tb.tb_next
    return found or "while importing"


def _learner(module: ModuleType, name: str, path: Path) -> Any:
    """``NAME`` in the module: an object or function as it is, a class built with no arguments."""
    thing: Any = module
    for part in name.split("."):
        if not hasattr(thing, part):
            raise UsageError(f"{path} has no {name!r}; it defines {_defined(module)}")
        thing = getattr(thing, part)
    if not inspect.isclass(thing):
        return thing
    parameters: list[inspect.Parameter] = []
    with suppress(TypeError, ValueError):  # no signature to read: try the call
        parameters = list(inspect.signature(thing).parameters.values())
    needed = [
        p.name for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if needed:
        raise UsageError(
            f"{name}() needs arguments ({', '.join(needed)}): build one in {path.name}, e.g. "
            f"net = {name}(...), and give {path}:net"
        )
    try:
        return thing()
    except Exception as e:
        where = _where(e.__traceback__, path)
        raise UsageError(f"{name}() raised {type(e).__name__} {where}: {_one_line(str(e))}") from None


def _defined(module: ModuleType) -> str:
    """The classes and functions the module defines itself, or a word saying there are none."""
    own = [
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(v) or inspect.isfunction(v))
        and getattr(v, "__module__", None) == module.__name__
    ]
    return ", ".join(own) if own else "no classes or functions"


def _one_line(text: str) -> str:
    return " ".join(text.split())
