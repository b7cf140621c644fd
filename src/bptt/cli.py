"""The ``bptt`` command line. Exit status: 0 ok, 1 a check failed, 2 bad usage or input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__

__all__ = ["UsageError", "main"]


class UsageError(Exception):
    """A user's mistake: reported as one line on stderr with exit status 2, never a traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    from .checks import CONFIGS, TORCH_TOLERANCE, run_config
    from .gradcheck import TOLERANCE

    try:
        import torch  # noqa: F401

        use_torch = not args.no_torch
    except ImportError:
        use_torch = False
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


def build_parser() -> argparse.ArgumentParser:
    """The ``bptt`` argument parser with every subcommand."""
    parser = _Parser(prog="bptt", description="Recurrent networks in NumPy with proven BPTT.")
    parser.add_argument("--version", action="version", version=f"bptt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("gradcheck", help="prove every gradient on a fixed set of networks")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and data (default 0)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch autograd column")
    p.set_defaults(func=_cmd_gradcheck)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bptt`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        status: int = args.func(args)
        return status
    except UsageError as e:
        print(f"bptt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bptt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
