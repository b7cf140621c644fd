"""Dense: the affine map ``y_t = x_t @ W + b`` at every step."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .._types import Array
from .._validate import as_array, check_sequence, positive_int
from ..functional import column_sums
from .base import Weighted, register_layer

__all__ = ["Dense"]


@register_layer
class Dense(Weighted):
    """Affine map at every step: ``y_t = x_t @ W + b``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    rng : Generator, int or None
        Source of the initial weights; ``None`` is seed 0.
    dtype : np.float64 (default) or np.float32

    Params: ``W (in, out)``, and ``b (out,)`` when ``bias``.
    """

    out_letters = "(T, B, O)"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        rng: np.random.Generator | int | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype, rng)
        self.in_features = positive_int(in_features, "Dense", "in_features")
        self.out_features = positive_int(out_features, "Dense", "out_features")
        self.bias = bool(bias)
        k = 1.0 / np.sqrt(self.in_features)
        self._add_param("W", self._uniform(k, (self.in_features, self.out_features)))
        if self.bias:
            self._add_param("b", self._uniform(k, (self.out_features,)))
        self._x: Array | None = None

    @property
    def input_size(self) -> int:
        return self.in_features

    @property
    def output_size(self) -> int:
        return self.out_features

    def config(self) -> dict[str, Any]:
        own = {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias}
        return own | super().config()

    def forward(self, x: Array) -> Array:
        """``x (T, B, I) -> y (T, B, O)``."""
        x = as_array(x, self.dtype, "Dense.forward", "x")
        T, B, I = check_sequence(x, "Dense.forward", "x", "(T, B, I)", self.in_features)
        y = x.reshape(T * B, I) @ self.params["W"]  # (T·B, O)
        if self.bias:
            y += self.params["b"]
        self._x, self._out_shape = x, (T, B, self.out_features)
        return y.reshape(self._out_shape)  # (T, B, O)

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, O) -> grad_x (T, B, I)``; fills ``grads["W"]`` and ``grads["b"]``."""
        g = self._check_grad(grad_y, self.dtype)
        assert self._x is not None
        T, B, I = self._x.shape
        G = g.reshape(T * B, self.out_features)  # (T·B, O)
        np.dot(self._x.reshape(T * B, I).T, G, out=self.grads["W"])  # Σ_t x_tᵀ δ_t: (I, O)
        if self.bias:
            column_sums(G, out=self.grads["b"])  # Σ_t δ_t: (O,)
        return (G @ self.params["W"].T).reshape(T, B, I)  # (T, B, I)
