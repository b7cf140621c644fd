"""``bptt train --task charlm``: train a character-level language model with truncated BPTT."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from typing import Any

from .common import (
    UsageError,
    library_default,
    natural,
    positive,
    positive_number,
    require_memory,
    save_last_good,
    save_model,
    writable,
)
from .progress import Progress

__all__ = ["OUT", "add_flags", "baselines", "defaults", "describe", "postfix", "run"]

OUT = "charlm.npz"
HELD_OUT_EVERY = 10  # charlm.corpus.HELD_OUT_EVERY, without importing the library for --help
OPTIONS = ("cell", "steps", "batch", "k1", "k2")  # charlm.train's options that a model file records
UNLIMITED = 2**62  # the updates of a run that only a time budget (or patience) ends


def defaults() -> dict[str, Any]:
    """``charlm.train``'s defaults for the flags, and the model file's."""
    import numpy as np

    from ..tasks.charlm import train

    names = (*OPTIONS, "hidden", "seed", "patience", "check_every")
    d = {name: library_default(train, name) for name in names}
    return d | {"out": OUT, "dtype": np.dtype(library_default(train, "dtype")).name}


def add_flags(group: Any) -> list[argparse.Action]:
    """Declare the flags only this task takes; returns them."""
    d = defaults()
    add = group.add_argument
    return [
        add(
            "--text",
            metavar="PATH",
            help="UTF-8 training text: a file (its last tenth held out), or a folder or a glob of files "
            f"(every {HELD_OUT_EVERY}th held out whole); default: the shipped corpus",
        ),
        add(
            "--corpus",
            choices=["python"],
            default=None,
            help="train on this Python's own standard library (.py files, found here, no download)",
        ),
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
        add(
            "--dtype",
            choices=["float32", "float64"],
            default=None,
            help=f"the model's floats (default {d['dtype']}: the bpc needs three digits, not sixteen)",
        ),
        add(
            "--minutes",
            type=positive_number("minutes"),
            default=None,
            metavar="M",
            help="train for M minutes of updates (the checks' time not counted), then check once more; "
            "without --steps, no limit on updates",
        ),
        add(
            "--patience",
            type=natural,
            default=None,
            metavar="N",
            help=f"stop after N held-out checks in a row (one every {d['check_every']} updates) without "
            f"a lower bpc; 0: never stop early (default {d['patience']}); the best check's model is saved",
        ),
    ]


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """cell, steps, batch, k1, k2, hidden, seed, dtype, patience (``None``: off) and seconds
    (``None``: no budget) for ``charlm.train``.

    Each is the flag given, else the library's default (``train``'s signature). With
    ``--minutes`` and no ``--steps``, the number of updates has no limit.
    """
    d = defaults()
    given = {name: getattr(args, name) for name in (*OPTIONS, "hidden", "seed", "dtype")}
    options = {name: d[name] if value is None else value for name, value in given.items()}
    if args.minutes is not None and args.steps is None:
        options["steps"] = UNLIMITED
    options["seconds"] = None if args.minutes is None else 60.0 * args.minutes
    if args.k2 is None:
        options["k2"] = max(options["k1"], d["k2"])
    if options["k2"] < options["k1"]:
        raise UsageError(f"--k2 {options['k2']} must be at least --k1 {options['k1']}")
    patience = d["patience"] if args.patience is None else args.patience
    options |= {"patience": patience or None, "check_every": d["check_every"]}  # --patience 0: off
    return options


def run(args: argparse.Namespace) -> int:
    """Train, save and measure the model against unigram and bigram baselines."""
    from ..stopping import Diverged, Interrupted

    args.out = OUT if args.out is None else args.out
    writable(args.out, "--out")
    text = _corpus(args)
    options = _options(args)
    vocab = text.vocab  # what train uses: an interrupted model is saved with it
    V, H, B, k2 = len(vocab), options["hidden"], options["batch"], options["k2"]
    weights = 8 * 8 * 4 * H * (V + H + 1)  # LSTM weights, gradients, Adam's buffers and copies
    window = 8 * 32 * k2 * B * (V + 4 * H)  # one-hot inputs, gates, states and δ of one window
    counting = 48 * len(text)  # the ids, and the n-gram keys, counts and probabilities at once
    require_memory(weights + window + counting, f"--hidden {H} --batch {B} --k2 {k2}")
    if not args.quiet:
        print(describe(text))
    meta = {"command": shlex.join(["bptt", *args.argv]), "task": "charlm", "vocab": vocab.chars}
    meta |= {name: options[name] for name in (*OPTIONS, "dtype", "patience", "check_every", "seconds")}
    meta["steps"] = None if options["steps"] == UNLIMITED else options["steps"]
    try:
        model, vocab, history = _train(args, text, options)
    except ValueError as e:
        raise UsageError(str(e)) from None
    except Interrupted as e:  # keep what was learnt: the model so far, marked as stopped early
        save_model(e.model, args.out, {**meta, "updates": e.step, "stopped": str(e)}, e.history.arrays())
        print(
            f"bptt train: {e}{_of(options['steps'])}; saved the model trained so far to {args.out}",
            file=sys.stderr,
        )
        status: int = e.exit_status
        return status
    except Diverged as e:
        return save_last_good(e, args.out, {**meta, "updates": e.step, "stopped": str(e)})
    _report(args, text, options, meta, model, vocab, history)
    return 0


def _of(steps: int) -> str:
    """`` of N`` after an interrupted run's update count, nothing when the updates had no limit."""
    return "" if steps == UNLIMITED else f" of {steps}"


def _corpus(args: argparse.Namespace) -> Any:
    """The ``charlm.Corpus`` that ``--corpus`` or ``--text`` names (default: the shipped corpus)."""
    from ..tasks import charlm

    if args.corpus is not None and args.text is not None:
        raise UsageError("--corpus and --text name two corpora; give one")
    try:
        if args.corpus == "python":
            return charlm.read_corpus(charlm.python_files(), what="--corpus python:")
        files = None if args.text is None else charlm.find_files(args.text)
        if files is not None:
            return charlm.read_corpus(files, what=f"--text {args.text!r}:")
        return charlm.as_corpus(None if args.text is None else charlm.load_text(args.text))
    except ValueError as e:
        raise UsageError(str(e)) from None


def _train(args: argparse.Namespace, text: Any, options: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The trained model, its vocabulary and its history, with a progress bar."""
    from ..tasks import charlm

    total = None if options["steps"] == UNLIMITED else options["steps"]
    with Progress(total, args.quiet) as bar:

        def progress(step: int, loss: float, history: Any) -> None:
            bar.step(step, **postfix(step, loss, history))

        return charlm.train(text, callback=progress, interruptible=True, **options)


def postfix(step: int, loss: float, history: Any) -> dict[str, str]:
    """The figures beside the progress bar after ``step``: both in bits per character, at a check.

    The training loss (nats per character, the mean over this update's characters) is shown
    divided by ln 2, beside the held-out bpc of the check just made; between checks, nothing.
    """
    if not (history.check_step and history.check_step[-1] == step):
        return {}
    return {"train_bpc": f"{loss / math.log(2.0):.3f}", "held_out_bpc": f"{history.bpc[-1]:.3f}"}


def _report(
    args: argparse.Namespace,
    text: Any,
    options: dict[str, Any],
    meta: dict[str, Any],
    model: Any,
    vocab: Any,
    history: Any,
) -> None:
    """Say how training went, save the model, and compare its held-out bpc with baselines."""

    steps_s = history.seconds / len(history.loss)
    print(
        f"trained {len(history.loss)} updates in {history.seconds:.1f} s ({1000 * steps_s:.1f} ms per update)"
    )
    print(_best_line(history, options))
    best = {"best_step": history.best_step, "best_bpc": history.best_bpc}
    save_model(model, args.out, {**meta, "updates": len(history.loss), **best}, history.arrays())
    print(f"saved the best model (update {history.best_step:,}) to {args.out}")
    rows = [
        *baselines(text),
        (f"bptt {options['cell'].upper()} {options['hidden']}, best check", history.best_bpc),
    ]
    header = "held-out bits per character"
    width = max(len(n) for n in (header, *(name for name, _ in rows)))
    print(f"{header:<{width}}  bpc")
    for name, value in rows:
        print(f"{name:<{width}}  {value:.3f}")


def describe(corpus: Any) -> str:
    """One line on the corpus: its files, how many are held out, its characters and vocabulary."""
    files = (
        "1 text, its last tenth held out"
        if corpus.held_files == 0
        else (
            f"{corpus.files:,} files, {corpus.held_files:,} held out whole"
            + (f", {corpus.skipped:,} skipped (not UTF-8 text)" if corpus.skipped else "")
        )
    )
    return (
        f"corpus: {files}; {len(corpus.train):,} training and {len(corpus.held):,} held-out characters, "
        f"{len(corpus.vocab)} symbols"
    )


def baselines(corpus: Any) -> list[tuple[str, float]]:
    """Held-out bpc of the counting models: unigram and bigram (add-one), and Kneser-Ney n-grams.

    Each n-gram order from 1 to 5 is measured on the held-out text, and the best is named.
    """
    from ..tasks import charlm

    V = len(corpus.vocab)
    rows = [
        ("unigram, add-one smoothing", charlm.unigram_bpc(corpus.train, corpus.held, V)),
        ("bigram, add-one smoothing", charlm.bigram_bpc(corpus.train, corpus.held, V)),
    ]
    ngrams = charlm.kneser_ney_bpc(corpus.train, corpus.held, V)
    best = min(ngrams, key=ngrams.__getitem__)
    rows += [
        (f"{n}-gram, Kneser-Ney{' (best n)' if n == best else ''}", value) for n, value in ngrams.items()
    ]
    return rows


def _best_line(history: Any, options: dict[str, Any]) -> str:
    """Which update gave the best held-out bpc, of how many, and why training ended there."""
    updates, patience, seconds = len(history.loss), options["patience"], options["seconds"]
    if patience is not None and history.checks_since_best >= patience:
        why = f"stopped early after {patience} checks without improvement"
    elif updates < options["steps"]:  # neither the updates nor patience: the time budget ended it
        why = f"{seconds / 60:g} minutes of updates spent"
    else:
        why = "early stopping off" if patience is None else "ran all updates"
    return f"best held-out bpc {history.best_bpc:.3f} at update {history.best_step:,} (of {updates:,}; {why})"
