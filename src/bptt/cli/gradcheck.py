"""``bptt gradcheck``: prove every gradient of a fixed set of networks, numerically and with torch."""

from __future__ import annotations

import argparse

from .common import seed

__all__ = ["HELP", "register", "run"]

HELP = "prove every gradient on a fixed set of networks"


def register(parser: argparse.ArgumentParser) -> None:
    """Declare ``bptt gradcheck``'s flags."""
    parser.add_argument("--seed", type=seed, default=0, help="seed of the weights and data (default 0)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch autograd column")


def _torch_importable() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    """Print one row per gradient; exit 1 if any fails."""
    from ..checks import CONFIGS, TORCH_TOLERANCE, run_config
    from ..gradcheck import TOLERANCE

    use_torch = not args.no_torch and _torch_importable()
    print(f"numeric: complex-step central differences, pass at rel err <= {TOLERANCE:.0e}")
    if use_torch:
        print(f"torch:   autograd in float64, pass at max|a-t|/max|t| <= {TORCH_TOLERANCE:.0e}")
    else:
        print("torch:   not importable; autograd column skipped")
    head = f"{'configuration':<36} {'gradient':<9} {'shape':<11} {'numeric':>9} {'torch':>9}"
    print(head + "\n" + "-" * len(head))
    failed = 0
    for cfg in CONFIGS:
        for row in run_config(cfg, seed=args.seed, use_torch=use_torch):
            t = "-" if row.torch is None else f"{row.torch:.1e}"
            mark = "ok" if row.ok else "FAIL"
            failed += not row.ok
            print(f"{row.config:<36} {row.name:<9} {row.shape!s:<11} {row.numeric:>9.1e} {t:>9}  {mark}")
    print(f"{len(CONFIGS)} configurations: " + ("all gradients pass" if not failed else f"{failed} FAIL"))
    return 1 if failed else 0
