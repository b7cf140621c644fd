"""``bptt bench``: time a training iteration against PyTorch and JAX on the CPU (see ``bptt.bench``).

The JAX column is optional: without jax installed it shows ``n/a`` (``--no-jax`` leaves it out).
"""

from __future__ import annotations

import argparse

from .common import UsageError, require_memory, writable

__all__ = ["HELP", "register", "run"]

HELP = "time fwd+bwd against PyTorch and JAX on the CPU (needs bptt[bench])"


def register(parser: argparse.ArgumentParser) -> None:
    """Declare ``bptt bench``'s flags: the benchmark's own, shared with its script."""
    from ..bench import add_arguments

    add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Check the requirements, memory and output path, then run the benchmark."""
    try:
        import threadpoolctl  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise UsageError(
            "the benchmark needs torch and threadpoolctl (jax for its JAX column): pip install 'bptt[bench]'"
        ) from None
    from .. import bench

    if args.json:
        writable(args.json, "--json")
    for shape in args.shapes or ():
        for cell in args.cells or ["rnn"]:
            require_memory(bench.nbytes(shape, "float64", cell), f"--shapes {','.join(map(str, shape))}")
    bench.run(args)
    return 0
