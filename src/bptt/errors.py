"""The one exception type bptt adds: a shape that breaks the chain rule."""

from __future__ import annotations

__all__ = ["ShapeError", "fmt_shape"]


class ShapeError(ValueError):
    """An array's shape disagrees with what a layer, loss or optimizer expects.

    The message names the function, the argument, the shape received and the shape
    expected, e.g. ``RNN.backward: grad_y has shape (1, 2); expected (T, B, H) = (8, 1, 16)``.
    """


def fmt_shape(shape: tuple[int, ...]) -> str:
    """Format a shape as a Python tuple: ``(8,)``, ``(8, 1, 16)``."""
    return str(tuple(int(n) for n in shape))
