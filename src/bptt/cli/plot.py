"""``bptt plot KIND``: one picture to a PNG: training curves, an adder's hidden states, gradient norms."""

from __future__ import annotations

import argparse
from typing import Any

from .common import MODEL_HELP, UsageError, image_path, load_model, model_path, natural, seed

__all__ = ["HELP", "KINDS", "register", "run"]

HELP = "draw training curves, an adder's hidden states or gradient norms"
KINDS = {
    "history": "loss, accuracy and margin during training (from the model file)",
    "hidden": "the hidden state at every step of one sum, above its bits",
    "pca": "hidden states of many sums on two principal components",
    "gradnorm": "||dL/dh_t|| over 200 steps for tanh, sigmoid and relu RNNs",
}


def register(parser: argparse.ArgumentParser) -> None:
    """Declare ``bptt plot``'s kind and flags."""
    add = parser.add_argument
    add("kind", choices=list(KINDS), help="; ".join(f"{k}: {v}" for k, v in KINDS.items()))
    add("--model", help=MODEL_HELP)
    add("--out", required=True, metavar="PNG", help="image file to write")
    add("--a", type=natural, default=None, help="hidden: first operand (default 1234)")
    add("--b", type=natural, default=None, help="hidden: second operand (default 567)")
    add("--seed", type=seed, default=0, help="seed of the random sums and weights (default 0)")


def run(args: argparse.Namespace) -> int:
    """Draw the picture, and for an adder's hidden states also report its carry units."""
    image_path(args.out, "--out")
    if args.kind != "hidden" and (args.a is not None or args.b is not None):
        raise UsageError(f"--a and --b choose the sum for 'plot hidden'; 'plot {args.kind}' takes neither")
    if args.kind == "gradnorm" and args.model is not None:
        raise UsageError("'plot gradnorm' draws freshly initialised RNNs; it takes no --model")
    from ..plots import plot_gradnorm, plot_history

    try:
        if args.kind == "history":
            plot_history(_history(args.model), args.out)
        elif args.kind == "gradnorm":
            plot_gradnorm(args.out, seed=args.seed)
        else:
            _adder(args)
    except OSError as e:
        raise UsageError(f"cannot write {args.out!r}: {e.strerror or e}") from None
    print(f"plotted {args.out}")
    return 0


def _history(path: str | None) -> Any:
    """The training history saved in a model file."""
    from ..io import read
    from ..tasks.addition import History

    path = model_path(path)
    try:
        extra = read(path)[2]
    except ValueError as e:
        raise UsageError(str(e)) from None
    if extra.get("loss") is None or extra["loss"].size == 0:
        raise UsageError(f"{path!r} holds no training history (models saved by 'bptt train' do)")
    try:
        past = History.from_arrays(extra)
    except (TypeError, ValueError):
        past = None
    if past is None or len(past.check_step) != len(past.accuracy):
        raise UsageError(f"{path!r} holds a malformed training history")
    return past


def _adder(args: argparse.Namespace) -> None:
    """Plot an adder's hidden states (one sum, or PCA of many) and print what its carry probe finds."""
    from ..tasks.addition import carry_probe, plot_hidden, plot_pca

    model = load_model(args.model)
    try:
        probe = carry_probe(model, rng=args.seed)
        chains = carry_probe(model, rng=args.seed, p_propagate=0.85)
        if args.kind == "hidden":
            a, b = 1234 if args.a is None else args.a, 567 if args.b is None else args.b
            plot_hidden(model, a, b, args.out)
        else:
            plot_pca(model, args.out, rng=args.seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(
        f"carry probe: reads the carry right at {probe.accuracy:.2%} of held-out steps of random "
        f"64-bit sums, {chains.accuracy:.2%} of carry-chain-rich ones"
    )
    units = ", ".join(f"{unit} ({weight:+.2f})" for unit, weight in probe.top_units)
    print(f"carry units (largest probe weights): {units}")
