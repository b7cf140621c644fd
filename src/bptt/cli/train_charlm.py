"""``bptt train --task charlm``: train a character-level language model with truncated BPTT."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from .common import (
    UsageError,
    library_default,
    positive,
    require_memory,
    save_last_good,
    save_model,
    writable,
)
from .progress import Progress

__all__ = ["OUT", "add_flags", "defaults", "run"]

OUT = "charlm.npz"
OPTIONS = ("cell", "steps", "batch", "k1", "k2")  # charlm.train's options that a model file records


def defaults() -> dict[str, Any]:
    """``charlm.train``'s defaults for the flags, and the model file's."""
    from ..tasks.charlm import train

    return {name: library_default(train, name) for name in (*OPTIONS, "hidden", "seed")} | {"out": OUT}


def add_flags(group: Any) -> list[argparse.Action]:
    """Declare the flags only this task takes; returns them."""
    d = defaults()
    add = group.add_argument
    return [
        add("--text", metavar="FILE", help="UTF-8 training text (default: the shipped corpus)"),
        add("--cell", choices=["rnn", "lstm"], default=None, help=f"recurrent cell (default {d['cell']})"),
        add("--steps", type=positive, default=None, help=f"updates (default {d['steps']})"),
        add("--k1", type=positive, default=None, help=f"update every k1 characters (default {d['k1']})"),
        add(
            "--k2",
            type=positive,
            default=None,
            help=f"backpropagate k2 characters (default {d['k2']}, at least k1)",
        ),
        add("--batch", type=positive, default=None, help=f"parallel streams (default {d['batch']})"),
    ]


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """cell, steps, batch, k1, k2, hidden and seed: the flags given, else the library's defaults."""
    d = defaults()
    given = {name: getattr(args, name) for name in (*OPTIONS, "hidden", "seed")}
    options = {name: d[name] if value is None else value for name, value in given.items()}
    if args.k2 is None:
        options["k2"] = max(options["k1"], d["k2"])
    if options["k2"] < options["k1"]:
        raise UsageError(f"--k2 {options['k2']} must be at least --k1 {options['k1']}")
    return options


def run(args: argparse.Namespace) -> int:
    """Train, save and measure the model against unigram and bigram baselines."""
    from ..stopping import Diverged, Interrupted
    from ..tasks import charlm

    args.out = OUT if args.out is None else args.out
    writable(args.out, "--out")
    try:
        text = charlm.default_text() if args.text is None else charlm.load_text(args.text)
    except ValueError as e:
        raise UsageError(str(e)) from None
    options = _options(args)
    vocab = charlm.Vocabulary.of(text)  # what train uses: an interrupted model is saved with it
    V, H, B, k2 = len(vocab), options["hidden"], options["batch"], options["k2"]
    weights = 8 * 8 * 4 * H * (V + H + 1)  # LSTM weights, gradients, Adam's buffers and copies
    window = 8 * 32 * k2 * B * (V + 4 * H)  # one-hot inputs, gates, states and δ of one window
    require_memory(weights + window + 16 * len(text), f"--hidden {H} --batch {B} --k2 {k2}")
    meta = {"command": shlex.join(["bptt", *args.argv]), "task": "charlm", "vocab": vocab.chars}
    meta |= {name: options[name] for name in OPTIONS}
    try:
        model, vocab, history = _train(args, text, options)
    except ValueError as e:
        raise UsageError(str(e)) from None
    except Interrupted as e:  # keep what was learnt: the model so far, marked as stopped early
        save_model(e.model, args.out, {**meta, "updates": e.step, "stopped": str(e)}, e.history.arrays())
        print(
            f"bptt train: {e} of {options['steps']}; saved the model trained so far to {args.out}",
            file=sys.stderr,
        )
        status: int = e.exit_status
        return status
    except Diverged as e:
        return save_last_good(e, args.out, {**meta, "updates": e.step, "stopped": str(e)})
    _report(args, text, options, meta, model, vocab, history)
    return 0


def _train(args: argparse.Namespace, text: str, options: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The trained model, its vocabulary and its history, with a progress bar."""
    from ..tasks import charlm

    with Progress(options["steps"], args.quiet) as bar:

        def progress(step: int, loss: float, history: Any) -> None:
            if history.check_step and history.check_step[-1] == step:
                bar.step(step, loss=f"{loss:.3f}", held_out_bpc=f"{history.bpc[-1]:.3f}")
            else:
                bar.step(step)

        return charlm.train(text, callback=progress, interruptible=True, **options)


def _report(
    args: argparse.Namespace,
    text: str,
    options: dict[str, Any],
    meta: dict[str, Any],
    model: Any,
    vocab: Any,
    history: Any,
) -> None:
    """Say how training went, save the model, and compare its held-out bpc with baselines."""
    from ..tasks import charlm

    steps_s = history.seconds / len(history.loss)
    print(
        f"trained {len(history.loss)} updates in {history.seconds:.1f} s ({1000 * steps_s:.1f} ms per update)"
    )
    save_model(model, args.out, {**meta, "updates": len(history.loss)}, history.arrays())
    print(f"saved {args.out}")
    train_ids, held = charlm.split(vocab.encode(text))
    rows = [
        ("unigram, add-one smoothing", charlm.unigram_bpc(train_ids, held, len(vocab))),
        ("bigram, add-one smoothing", charlm.bigram_bpc(train_ids, held, len(vocab))),
        (f"bptt {options['cell'].upper()} {options['hidden']}", history.bpc[-1]),
    ]
    width = max(len(n) for n, _ in rows)
    print(f"{'held-out bits per character':<{width}}  bpc")
    for name, value in rows:
        print(f"{name:<{width}}  {value:.3f}")
