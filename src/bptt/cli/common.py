"""What the commands share: the usage error, argparse validators, model files, and up-front checks.

Every check here runs before any work is done, so a bad path or an impossible size fails in a
moment rather than after minutes of training. Only the standard library is imported at the top:
``bptt --help`` loads no NumPy.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_HELP",
    "SHIPPED_COMMAND",
    "Exit",
    "ParseError",
    "Parser",
    "UsageError",
    "any_length_decimals",
    "image_path",
    "library_default",
    "load_model",
    "model_path",
    "natural",
    "positive",
    "positive_number",
    "print_table",
    "require_memory",
    "save_last_good",
    "save_model",
    "seed",
    "shipped_model",
    "writable",
]

DEFAULT_MODEL = "adder.npz"
SHIPPED_COMMAND = "bptt train --seed 0 --out src/bptt/data/adder.npz"
MODEL_HELP = f"model file (default ./{DEFAULT_MODEL} if present, else the shipped adder)"


class UsageError(Exception):
    """A user's mistake: reported as one line on stderr with exit status 2, never a traceback."""


class ParseError(UsageError):
    """A bad command line, already worded by argparse with the subcommand's name."""


class Exit(Exception):
    """``--help`` or ``--version`` has been printed: end with ``status`` (argparse would raise
    ``SystemExit``, which the console script reads as a signal)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that reports instead of exiting."""

    def error(self, message: str) -> NoReturn:
        """A bad command line: one line naming the command, never argparse's exit."""
        raise ParseError(f"{self.prog}: error: {message} (see '{self.prog} --help')")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        """``--help``/``--version``: hand the status to ``main`` instead of exiting."""
        if message:
            self._print_message(message, sys.stderr)
        raise Exit(status)


def library_default(function: Callable[..., Any], name: str) -> Any:
    """The default of ``function``'s parameter ``name``: the CLI's defaults are the library's."""
    import inspect  # about 10 ms: only for the commands that read a signature

    return inspect.signature(function).parameters[name].default


# --- argparse validators ------------------------------------------------------------------------


def positive(text: str) -> int:
    """A positive integer, for argparse."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def seed(text: str) -> int:
    """A seed: an integer ≥ 0, for argparse."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a seed: an integer ≥ 0, got {text!r}")
    return value


def positive_number(what: str) -> Callable[[str], float]:
    """A validator of a positive finite number, whose error names ``what`` it is."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"expected a positive {what}, got {text!r}")
        return value

    return parse


@contextmanager
def any_length_decimals() -> Iterator[None]:
    """Lift Python's limit on int <-> decimal conversions for operands and sums, and only for them.

    The limit guards against quadratic-time conversions of hostile input; everything else (a
    model file's JSON record, say) keeps it.
    """
    if not hasattr(sys, "set_int_max_str_digits"):  # Python without the limit
        yield
        return
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(before)


def natural(text: str) -> int:
    """A non-negative decimal integer of any length, for argparse."""
    digits = text.strip().replace("_", "")
    if not digits.isdigit() or not digits.isascii():
        raise argparse.ArgumentTypeError(f"expected a non-negative decimal integer, got {text[:40]!r}")
    with any_length_decimals():
        return int(digits)


# --- model files --------------------------------------------------------------------------------


def shipped_model() -> Path:
    """The adder that ships inside the package (see ``SHIPPED_COMMAND``)."""
    return Path(str(resources.files("bptt") / "data" / "adder.npz"))


def model_path(path: str | None) -> str:
    """``path``; by default ``./adder.npz`` if it exists, else the shipped adder."""
    if path is not None:
        return path
    return DEFAULT_MODEL if Path(DEFAULT_MODEL).exists() else str(shipped_model())


def load_model(path: str | None) -> Any:
    """The model at ``model_path(path)``; a file that is no model is a usage error."""
    from ..io import load

    try:
        return load(model_path(path))
    except ValueError as e:
        raise UsageError(str(e)) from None


def save_model(model: Any, path: str, meta: dict[str, Any], extra: dict[str, Any]) -> None:
    """``bptt.io.save``, with a failed write reported as a usage error."""
    from ..io import save

    try:
        save(model, path, meta=meta, extra=extra)
    except OSError as e:
        raise UsageError(f"cannot write {path!r}: {e.strerror or e}") from None


def save_last_good(e: Any, path: str, meta: dict[str, Any]) -> int:
    """After ``Diverged``: save its weights (finite, by ``UpdateGuard``) if a step had completed; exit 1."""
    if e.step == 0:
        print(
            f"bptt train: error: {e}; no step had completed, so there are no good weights to save",
            file=sys.stderr,
        )
    else:
        save_model(e.model, path, meta, e.history.arrays())
        print(
            f"bptt train: error: {e}; saved the last good weights (step {e.step}) to {path}", file=sys.stderr
        )
    return 1


def print_table(rows: list[tuple[str, float]]) -> int:
    """Print exact-match accuracies; 0 if every one is 100%, else 1."""
    width = max(len(name) for name, _ in rows)
    print(f"{'exact-match accuracy':<{width}}  result")
    for name, acc in rows:
        print(f"{name:<{width}}  {acc:8.2%}")
    return 0 if all(acc == 1.0 for _, acc in rows) else 1


# --- up-front checks ----------------------------------------------------------------------------


def writable(path: str, flag: str) -> None:
    """Refuse an output path before any work is done, rather than fail after it."""
    from .._files import check_writable

    try:
        check_writable(path, what=flag)
    except ValueError as e:
        raise UsageError(str(e)) from None


def image_path(path: str, flag: str) -> None:
    """Refuse up front an image path that cannot be written or whose extension is no image format."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("plots need matplotlib: pip install 'bptt[plot]'") from None
    writable(path, flag)
    from ..plots import image_format

    try:
        image_format(path)
    except ValueError as e:
        raise UsageError(f"{flag} {e.args[0].removeprefix('plot: ')}") from None


def _available_memory() -> int:
    """Bytes this process may still allocate: free RAM, or a lower address-space limit."""
    try:
        with open("/proc/meminfo", "rb") as f:
            fields = dict(line.split(b":", 1) for line in f)
        free = int(fields[b"MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    import resource

    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    return free if limit == resource.RLIM_INFINITY else min(free, limit)


def require_memory(nbytes: float, what: str) -> None:
    """Refuse up front, with the size named, work that would not fit in memory."""
    from .._files import format_bytes

    free = _available_memory()
    if nbytes > free:
        raise UsageError(
            f"{what} needs about {format_bytes(int(nbytes))} of memory; {format_bytes(free)} is available"
        )
