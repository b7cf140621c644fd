"""Last: keep only the last step (many-to-one)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._types import Array
from .._validate import as_array, check_sequence
from .base import Layer, register_layer

__all__ = ["Last"]


@register_layer
class Last(Layer):
    """Keep only the last step (many-to-one): ``(T, B, F) -> (1, B, F)``."""

    out_letters = "(1, B, F)"

    def __init__(self) -> None:
        super().__init__()
        self._in_shape: tuple[int, ...] = ()
        self._dtype: np.dtype[Any] | None = None

    def forward(self, x: Array) -> Array:
        """``x (T, B, F) -> y (1, B, F)``, a copy of ``x[-1:]``."""
        x = as_array(x, None, "Last.forward", "x")
        _, B, F = check_sequence(x, "Last.forward", "x", "(T, B, F)", None)
        self._in_shape, self._out_shape, self._dtype = x.shape, (1, B, F), x.dtype
        return x[-1:].copy()  # (1, B, F)

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (1, B, F) -> grad_x (T, B, F)``: the gradient at the last step, zeros elsewhere."""
        g = self._check_grad(grad_y, self._dtype)
        grad_x = np.zeros(self._in_shape, g.dtype)  # (T, B, F)
        grad_x[-1] = g[0]
        return grad_x
