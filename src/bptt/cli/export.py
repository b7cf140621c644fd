"""``bptt export --torch``: a model file as a PyTorch checkpoint, to train on from there.

The file is ``torch.save`` of ``bptt.bridge.torch_checkpoint(model)``: a plain dict with the
``state_dict`` of ``bptt.to_torch(model)`` and the architecture as JSON, so ``torch.load`` reads
it with ``weights_only=True`` and ``bptt.from_torch`` takes what it returns.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import UsageError, load_model, writable

__all__ = ["HELP", "register", "run"]

HELP = "write a model as a PyTorch checkpoint (train it with DDP, bring it back)"


def register(parser: argparse.ArgumentParser) -> None:
    """Declare ``bptt export``'s arguments."""
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument(
        "--torch",
        action="store_true",
        help="write torch.save({'state_dict', 'architecture', ...}); "
        "bptt.from_torch(torch.load(OUT)) reads it back",
    )
    parser.add_argument("model", metavar="MODEL", help="a bptt model file (bptt.save)")
    parser.add_argument("out", metavar="OUT", help="the checkpoint to write, e.g. model.pt")


def _torch() -> Any:
    """The ``torch`` module, or a usage error saying how to get it."""
    try:
        import torch
    except ImportError:
        raise UsageError("export --torch needs PyTorch: pip install torch") from None
    return torch


def run(args: argparse.Namespace) -> int:
    """Write ``OUT`` atomically and say what it holds."""
    torch = _torch()
    writable(args.out, "OUT")
    model = load_model(args.model)
    from .._files import atomic_write
    from ..bridge import torch_checkpoint

    try:
        checkpoint = torch_checkpoint(model)
    except (TypeError, ValueError) as e:
        raise UsageError(f"MODEL {args.model!r} cannot be exported: {e}") from None
    atomic_write(args.out, lambda f: torch.save(checkpoint, f), what="OUT")
    tensors = len(checkpoint["state_dict"])
    print(f"wrote {args.out}: {tensors} tensors; in Python: bptt.from_torch(torch.load({args.out!r}))")
    return 0
