"""Elementwise layers: Sigmoid, Tanh and ReLU, each ``y = f(x)`` with ``f'`` written in terms of ``y``."""

from __future__ import annotations

from .._types import Array
from .._validate import as_array, check_sequence
from ..functional import ACTIVATIONS
from .base import Layer, register_layer

__all__ = ["Elementwise", "ReLU", "Sigmoid", "Tanh"]


class Elementwise(Layer):
    """``y = f(x)`` at every entry; ``backward`` uses ``f'`` written in terms of ``y``.

    ``activation`` names ``f`` in ``bptt.functional.ACTIVATIONS``; a subclass sets it.
    """

    activation = "identity"

    def __init__(self) -> None:
        super().__init__()
        self._y: Array | None = None

    def forward(self, x: Array) -> Array:
        """``x (T, B, F) -> y (T, B, F)``."""
        return self._forward(x, share=False)

    def _forward(self, x: Array, share: bool) -> Array:
        name = f"{type(self).__name__}.forward"
        x = as_array(x, None, name, "x")
        check_sequence(x, name, "x", "(T, B, F)", None)
        self._y = ACTIVATIONS[self.activation].fn(x)
        self._out_shape = x.shape
        return self._y if share else self._y.copy()

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, F) -> grad_x (T, B, F)``: ``grad_y ⊙ f'``."""
        assert self._y is not None or self._out_shape is None
        g = self._check_grad(grad_y, None if self._y is None else self._y.dtype)
        assert self._y is not None
        grad_x = ACTIVATIONS[self.activation].grad(self._y)
        grad_x *= g
        return grad_x


@register_layer
class Sigmoid(Elementwise):
    """Elementwise logistic ``σ(x)``; ``σ' = y (1 - y)``."""

    activation = "sigmoid"


@register_layer
class Tanh(Elementwise):
    """Elementwise ``tanh(x)``; ``tanh' = 1 - y²``."""

    activation = "tanh"


@register_layer
class ReLU(Elementwise):
    """Elementwise ``max(x, 0)``; ``relu' = [y > 0]``."""

    activation = "relu"
