"""bptt's own exceptions: a shape that breaks the chain rule, and a request to terminate."""

from __future__ import annotations

import signal

__all__ = ["ShapeError", "Terminated", "fmt_shape", "raise_terminated"]


class ShapeError(ValueError):
    """An array's shape disagrees with what a layer, loss or optimizer expects.

    The message names the function, the argument, the shape received and the shape
    expected, e.g. ``RNN.backward: grad_y has shape (1, 2); expected (T, B, H) = (8, 1, 16)``.
    """


def fmt_shape(shape: tuple[int, ...]) -> str:
    """Format a shape as a Python tuple: ``(8,)``, ``(8, 1, 16)``."""
    return str(tuple(int(n) for n in shape))


class Terminated(SystemExit):
    """SIGTERM: stop at once with exit status 143 (128 + SIGTERM).

    A ``SystemExit``, so ``finally`` blocks run, ``except Exception`` does not swallow it, and an
    uncaught one ends the process with status 143 and no traceback.
    """

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def raise_terminated(signum: int, frame: object) -> None:
    """A SIGTERM handler that turns the signal into ``Terminated``, as SIGINT is ``KeyboardInterrupt``."""
    raise Terminated
