"""``python -m bptt`` and the ``bptt`` console script: ``cli.main`` with the process's edges guarded.

A signal can land before ``main``'s own handlers exist, while the CLI's modules are imported, or
after ``main`` has returned, while the interpreter shuts down; either would print a traceback.
Until its ``try`` this module imports only ``signal`` and ``sys``, which the interpreter has
already loaded, and it ignores both signals once the exit status is decided.
"""

from __future__ import annotations

import signal
import sys

__all__ = ["run"]


def run() -> None:
    """Run the ``bptt`` command and exit with its status."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        from .cli import main

        status = main()
    except KeyboardInterrupt:
        print("bptt: interrupted", file=sys.stderr)
        status = 130
    except SystemExit as e:  # SIGTERM while importing (or a Terminated that main let through)
        print("bptt: terminated", file=sys.stderr)
        status = e.code if isinstance(e.code, int) else 143
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # the status is decided: a late signal changes nothing
    sys.exit(status)


def _terminate(signum: int, frame: object) -> None:
    # errors.Terminated is the same thing, but importing it would widen the window this closes.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    run()
