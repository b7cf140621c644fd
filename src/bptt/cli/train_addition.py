"""``bptt train`` (``--task addition``, the default): train an adder, save it, measure it exactly."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from .common import (
    DEFAULT_MODEL,
    UsageError,
    image_path,
    library_default,
    positive,
    print_table,
    require_memory,
    save_last_good,
    save_model,
    writable,
)
from .progress import Progress

__all__ = ["add_flags", "defaults", "run"]


def defaults() -> dict[str, Any]:
    """``addition.train``'s defaults for the flags, and the model file's."""
    from ..tasks.addition import train

    return {name: library_default(train, name) for name in ("n_bits", "hidden", "seed", "preset")} | {
        "out": DEFAULT_MODEL
    }


def add_flags(group: Any) -> list[argparse.Action]:
    """Declare the flags only this task takes; returns them."""
    from ..tasks.addition import PRESETS

    d = defaults()
    add = group.add_argument
    return [
        add("--bits", type=positive, default=None, help=f"operand bits (default {d['n_bits']})"),
        add(
            "--preset", choices=list(PRESETS), default=None, help=f"training recipe (default {d['preset']!r})"
        ),
        add("--plot", metavar="PATH", help="also draw loss and accuracy curves to a PNG"),
        add("--checkpoint-every", type=positive, metavar="N", help="write a checkpoint every N steps"),
        add(
            "--checkpoint",
            metavar="PATH",
            help="checkpoint file (default: --out's name + .ckpt.npz); Ctrl-C writes it too",
        ),
        add("--resume", metavar="CKPT", help="continue from a checkpoint, bit for bit"),
    ]


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """bits, hidden, seed and preset: from the flags, or from the checkpoint being resumed."""
    given = {"n_bits": args.bits, "hidden": args.hidden, "seed": args.seed, "preset": args.preset}
    if args.resume is None:
        fallback = defaults()
        return {k: fallback[k] if v is None else v for k, v in given.items()}
    from ..checkpoint import load_checkpoint

    try:
        saved = load_checkpoint(args.resume).settings
    except ValueError as e:
        raise UsageError(str(e)) from None
    if saved.get("task") != "addition" or saved.get("options"):
        raise UsageError(f"--resume {args.resume!r} is not a checkpoint of 'bptt train'")
    for k, v in given.items():
        if v is not None and v != saved.get(k):
            raise UsageError(f"--resume {args.resume!r} was trained with {k}={saved.get(k)!r}, not {v!r}")
    return {k: saved[k] for k in given}


def _bytes(bits: int, hidden: int) -> float:
    """About what training an adder and its accuracy table hold: weights with their gradients,
    optimizer buffers and copies; states and δ of the largest batch; the evaluation's sums."""
    weights = 8 * 8 * hidden * (hidden + 4)
    states = 8 * 16 * hidden * max((bits + 1) * 64, 257 * 32 + 33 * 64)
    sums = 4**bits if bits <= 10 else 10_000
    return weights + states + 6 * 8 * (bits + 1) * sums


def run(args: argparse.Namespace) -> int:
    """Train, save and measure the adder; exit 1 if it did not converge or is not exact."""
    from ..stopping import Diverged, Interrupted

    args.out = DEFAULT_MODEL if args.out is None else args.out  # "" is refused, not defaulted
    writable(args.out, "--out")
    if args.plot is not None:
        image_path(args.plot, "--plot")
    settings = _settings(args)
    bits, H = settings["n_bits"], settings["hidden"]
    require_memory(_bytes(bits, H), f"--bits {bits} --hidden {H}")
    checkpoint = (
        str(Path(args.out).with_suffix("")) + ".ckpt.npz" if args.checkpoint is None else args.checkpoint
    )
    writable(checkpoint, "--checkpoint")
    try:
        model, history, resumed_from = _train(args, settings, checkpoint)
    except Interrupted as e:
        return _interrupted(e, args, checkpoint)
    except Diverged as e:
        return save_last_good(e, args.out, _meta(args, settings, e.history))
    return _report(args, settings, model, history, resumed_from)


def _meta(args: argparse.Namespace, settings: dict[str, Any], history: Any) -> dict[str, Any]:
    """What the model file records about its training."""
    return {
        "command": shlex.join(["bptt", *args.argv]),
        "task": "addition",
        "preset": settings["preset"],
        "bits": settings["n_bits"],
        "hidden": settings["hidden"],
        "seed": settings["seed"],
        "steps": history.steps,
        "seconds": history.seconds,
        "converged": history.converged,
    }


def _train(args: argparse.Namespace, settings: dict[str, Any], checkpoint: str) -> tuple[Any, Any, int]:
    """The trained model, its history and the step it resumed from, with a progress bar."""
    from ..tasks.addition import PRESETS, train

    with Progress(PRESETS[settings["preset"]].steps, args.quiet) as bar:

        def progress(step: int, loss: float, history: Any) -> None:
            if history.accuracy and history.check_step[-1] == step:
                exact, margin = f"{history.accuracy[-1]:.0%}", f"{history.margin[-1]:.2f}"
                bar.step(step, loss=f"{loss:.4f}", exact=exact, margin=margin)
            else:
                bar.step(step)

        model, history = train(
            settings["n_bits"],
            settings["hidden"],
            settings["seed"],
            preset=settings["preset"],
            callback=progress,
            checkpoint=checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            interruptible=True,
        )
    return model, history, bar.resumed_from


def _interrupted(e: Any, args: argparse.Namespace, checkpoint: str) -> int:
    """Say where the checkpoint is and the command that continues from it."""
    again = ["bptt", "train", "--resume", checkpoint, "--out", args.out]
    for flag in ("checkpoint", "checkpoint_every", "plot"):  # where the first run wrote, again
        again += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))] if getattr(args, flag) else []
    again += ["--quiet"] if args.quiet else []
    print(
        f"bptt train: {e}; checkpoint saved to {checkpoint}; continue with: {shlex.join(again)}",
        file=sys.stderr,
    )
    status: int = e.exit_status
    return status


def _report(
    args: argparse.Namespace, settings: dict[str, Any], model: Any, history: Any, resumed_from: int
) -> int:
    """Say how training went, save the model (and plot), and end with the exact-match table."""
    from ..tasks.addition import PRESETS, operand_width

    recipe = PRESETS[settings["preset"]]
    # What happened, from the history: a resumed run trained only the steps after its checkpoint.
    steps = f"{history.steps} steps" if not resumed_from else f"steps {resumed_from + 1}-{history.steps}"
    ms = f"{history.seconds * 1000:.0f} ms"
    if not history.converged:
        print(f"stopped after {steps}, {ms}, without meeting the stopping rule")
    else:
        verdict = "met the stopping rule" if recipe.steps is None else "ran the fixed schedule"
        print(f"trained in {steps}, {ms} ({verdict})")
    save_model(model, args.out, _meta(args, settings, history), history.arrays())
    print(f"saved {args.out}")
    if args.plot:
        from ..plots import plot_history

        plot_history(history, args.plot)
        print(f"plotted {args.plot}")
    exact = print_table(_accuracy_table(model, operand_width(settings["n_bits"], recipe), settings["seed"]))
    return exact if history.converged else 1


def _accuracy_table(model: Any, bits: int, seed: int) -> list[tuple[str, float]]:
    """The exact-match checks training ends with: all short pairs, then long random sums."""
    import numpy as np

    from ..tasks.addition import accuracy

    rng = np.random.default_rng([seed, 2])
    short = (f"all {4**bits:,} pairs of {bits}-bit operands", accuracy(model, bits))
    if bits > 10:
        short = (f"10,000 random {bits}-bit sums", accuracy(model, bits, 10_000, rng))
    return [
        short,
        ("1,000 random 1,000-bit sums", accuracy(model, 1000, 1000, rng)),
        ("100 random 10,000-bit sums", accuracy(model, 10_000, 100, rng)),
    ]
