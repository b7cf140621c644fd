"""``bptt eval``: an adder's exact-match accuracy at any length."""

from __future__ import annotations

import argparse

from .common import MODEL_HELP, UsageError, load_model, positive, print_table, require_memory, seed

__all__ = ["HELP", "register", "run"]

HELP = "exact-match accuracy of an adder at any length"


def register(parser: argparse.ArgumentParser) -> None:
    """Declare ``bptt eval``'s flags."""
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--bits", type=positive, default=8, help="operand bits (default 8)")
    parser.add_argument("--samples", type=positive, default=None, help="random sums (default: all pairs)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the random sums (default 0)")


def run(args: argparse.Namespace) -> int:
    """Print the accuracy on all pairs (or ``--samples`` random sums); exit 1 below 100%."""
    import numpy as np

    from ..tasks.addition import accuracy

    samples = args.samples
    if samples is None and args.bits > 10:
        samples = 1000
    sums = 4**args.bits if samples is None else samples
    # x (T, B, 2), y (T, B, 1), the sampled bits and the predictions: about 6 float64 per step and sum
    require_memory(6 * 8 * (args.bits + 1) * sums, f"--bits {args.bits} with {sums:,} sums")
    model = load_model(args.model)
    try:
        acc = accuracy(model, args.bits, samples, np.random.default_rng(args.seed))
    except ValueError as e:
        raise UsageError(str(e)) from None
    what = f"all {4**args.bits:,} pairs" if samples is None else f"{samples:,} random sums"
    return print_table([(f"{what} of {args.bits}-bit operands", acc)])
