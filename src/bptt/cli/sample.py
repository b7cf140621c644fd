"""``bptt sample``: text written by a character model."""

from __future__ import annotations

import argparse

from .common import UsageError, positive, positive_number, require_memory, seed

__all__ = ["HELP", "register", "run"]

HELP = "write text with a character model"


def register(parser: argparse.ArgumentParser) -> None:
    """Declare ``bptt sample``'s flags."""
    add = parser.add_argument
    add("--model", default="charlm.npz", help="a model from `bptt train --task charlm`")
    add("--length", type=positive, default=300, help="characters to write (default 300)")
    add(
        "--temperature",
        type=positive_number("temperature"),
        default=0.8,
        help="sampling temperature (default 0.8)",
    )
    add("--prime", default="", help="text to start from")
    add(
        "--top-k",
        type=positive,
        default=None,
        metavar="K",
        help="draw each character from the K most likely only (default: from all)",
    )
    add("--seed", type=seed, default=0, help="seed of the sampling (default 0)")


def run(args: argparse.Namespace) -> int:
    """Print ``--length`` characters sampled from the model, each as soon as it is drawn."""
    from ..io import read
    from ..tasks import charlm

    require_memory(64 * args.length, f"--length {args.length}")  # the indices and the text, per character
    try:
        model, meta, _ = read(args.model)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if meta.get("task") != "charlm" or not isinstance(meta.get("vocab"), str):
        raise UsageError(f"--model {args.model!r} is not a character model (train one with --task charlm)")
    try:
        chars = charlm.generate(
            model,
            charlm.Vocabulary(meta["vocab"]),
            args.length,
            temperature=args.temperature,
            prime=args.prime,
            top_k=args.top_k,
            rng=args.seed,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(args.prime, end="", flush=True)
    for char in chars:  # a closed pipe raises BrokenPipeError here: the CLI's one line, exit 2
        print(char, end="", flush=True)
    print()
    return 0
