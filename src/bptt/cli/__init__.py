"""The ``bptt`` command line. Exit status: 0 ok, 1 a check failed, 2 bad usage or input.

One module per command, each with ``HELP`` (its line in ``bptt --help``), ``register(parser)``
(its flags) and ``run(args) -> int``; ``common`` holds what they share. Only the command being
run declares its flags, so ``bptt --help`` imports no NumPy, and a command may read its
defaults from the library's signatures.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Collection, Sequence
from importlib import import_module
from typing import Any

from .._version import __version__
from ..errors import Terminated, raise_terminated
from .common import DEFAULT_MODEL, SHIPPED_COMMAND, Exit, ParseError, Parser, UsageError, shipped_model

__all__ = [
    "COMMANDS",
    "DEFAULT_MODEL",
    "SHIPPED_COMMAND",
    "UsageError",
    "build_parser",
    "main",
    "shipped_model",
]

# as --help lists them
COMMANDS = ("gradcheck", "train", "sample", "add", "eval", "plot", "explain", "doctor", "bench", "export")


def build_parser(full: Collection[str] = COMMANDS) -> argparse.ArgumentParser:
    """The ``bptt`` argument parser; the commands in ``full`` get their flags, the rest only a name."""
    parser = Parser(prog="bptt", description="Recurrent networks in NumPy with proven BPTT.")
    parser.add_argument("--version", action="version", version=f"bptt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        command = import_module(f".{name}", __name__)
        p = sub.add_parser(name, help=command.HELP)
        if name in full:
            command.register(p)
        p.set_defaults(func=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bptt`` command; returns the exit status.

    Every way out is one line on stderr, never a traceback: a user's mistake, an operating-system
    error (unreadable file, full disk, read-only folder), memory, a closed output pipe and Ctrl-C.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "bptt"
    previous = _handle_sigterm(raise_terminated)
    try:
        # The top-level parser takes no option with a value: the first word is the command.
        parser = build_parser([word for word in argv if not word.startswith("-")][:1])
        args = parser.parse_args(argv)
        args.argv = argv
        if args.command is None:
            parser.print_help()
            return 0
        command = f"bptt {args.command}"
        status: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return status
    except Exit as e:  # --help or --version, printed
        sys.stdout.flush()
        return e.status
    except ParseError as e:
        print(e, file=sys.stderr)
        return 2
    except UsageError as e:
        print(f"{command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit: point stdout at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"{command}: error: the output was closed before it was all written", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{command}: error: out of memory; try smaller sizes", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{command}: error: {_os_error(e)}", file=sys.stderr)
        return 2
    finally:
        _handle_sigterm(previous)


def _handle_sigterm(handler: Any) -> Any:
    """Install ``handler`` for SIGTERM and return the previous one; nothing outside the main
    thread (where Python allows no handlers) or where SIGTERM is ignored or not Python's."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if handler is None or previous in (None, signal.SIG_IGN):
        return None
    signal.signal(signal.SIGTERM, handler)
    return previous


def _os_error(e: OSError) -> str:
    """``'path': reason`` for an operating-system error, in one line."""
    where = f"{os.fsdecode(e.filename)!r}: " if e.filename is not None else ""
    return where + (e.strerror or str(e) or type(e).__name__)
