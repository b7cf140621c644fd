"""``bptt add A B``: the RNN's sum of two numbers of any length, bit by bit."""

from __future__ import annotations

import argparse
import sys

from .common import MODEL_HELP, UsageError, any_length_decimals, load_model, natural

__all__ = ["HELP", "OPERAND_FILE_LIMIT", "hex_natural", "operand_text", "register", "run"]

HELP = "add two numbers with the RNN"
OPERAND_FILE_LIMIT = 1 << 26  # bytes of an @FILE operand: 64 MiB of digits is 200 million bits


def register(parser: argparse.ArgumentParser) -> None:
    """Declare ``bptt add``'s operands and flags."""
    parser.epilog = "@FILE reads an operand from a file (for numbers too long for a command line)"
    parser.add_argument("a", help="a non-negative integer, any length (decimal, or hexadecimal with --hex)")
    parser.add_argument("b", help="a non-negative integer, any length")
    parser.add_argument(
        "--hex", action="store_true", help="operands and sum in hexadecimal (linear-time I/O)"
    )
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--check", action="store_true", help="compare with exact arithmetic; exit 1 if wrong")


def hex_natural(text: str) -> int:
    """A non-negative hexadecimal integer of any length (``0x`` optional)."""
    digits = text.strip().replace("_", "").removeprefix("0x").removeprefix("0X")
    if not digits or not digits.isascii() or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise argparse.ArgumentTypeError(f"expected a non-negative hexadecimal integer, got {text[:40]!r}")
    return int(digits, 16)


def operand_text(arg: str) -> str:
    """The operand itself, or the text of the file an ``@FILE`` argument names.

    The file's content is the number, decoded strictly as UTF-8; an ``@`` inside it is not
    followed (argparse's own @-files would recurse and split the number at newlines).
    """
    if not arg.startswith("@"):
        return arg
    from .._files import read_regular

    try:
        raw = read_regular(arg[1:], limit=OPERAND_FILE_LIMIT, what="operand file")
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(
            f"operand file {arg[1:]!r} is not UTF-8 text (byte {e.start} cannot be decoded)"
        ) from None
    except ValueError as e:
        raise UsageError(str(e)) from None


def run(args: argparse.Namespace) -> int:
    """Print the sum (decimal, or hexadecimal with ``--hex``); with ``--check``, exit 1 if it is wrong."""
    from ..tasks.addition import add

    parse = hex_natural if args.hex else natural
    try:
        a, b = parse(operand_text(args.a)), parse(operand_text(args.b))
    except argparse.ArgumentTypeError as e:
        raise UsageError(str(e)) from None
    model = load_model(args.model)
    try:
        total = add(model, a, b)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.hex:
        print(f"{total:x}")
    else:
        with any_length_decimals():
            print(total)
    return _check(total, a + b) if args.check else 0


def _check(total: int, exact: int) -> int:
    if total != exact:
        wrong = (total ^ exact).bit_length()
        print(
            f"check: MISMATCH, the RNN's sum differs from a + b (highest wrong bit {wrong})", file=sys.stderr
        )
        return 1
    print(f"check: exact ({exact.bit_length()} bits)", file=sys.stderr)
    return 0
