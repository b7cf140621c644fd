"""Dense: the affine map ``y_t = x_t @ W + b`` at every step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .._types import Array
from .._validate import as_array, check_sequence, positive_int
from ..explanation import Explanation, Line, Step, bias_sum, outer_sum, shape
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
        """``I``, features per step of ``x``."""
        return self.in_features

    @property
    def output_size(self) -> int:
        """``O``, features per step of ``y``."""
        return self.out_features

    def config(self) -> dict[str, Any]:
        """``in_features``, ``out_features``, ``bias`` and the dtype."""
        own = {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias}
        return own | super().config()

    def forward(self, x: Array) -> Array:
        """``x (T, B, I) -> y (T, B, O)``."""
        x = as_array(x, self.dtype, "Dense.forward", "x")
        T, B, I = check_sequence(x, "Dense.forward", "x", "(T, B, I)", self.in_features)
        y = np.dot(x.reshape(T * B, I), self.params["W"])  # (T·B, O); np.dot: see backward
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
        out = self.buffer("grad_x", (T * B, I)) if self._share else None  # see Layer._backward
        # np.dot, not @: NumPy's matmul skips BLAS when O = 1 and takes 5x as long (2048 × 64: 125 µs)
        return np.dot(G, self.params["W"].T, out=out).reshape(T, B, I)  # (T, B, I)

    # --- explain: o_t = u_t @ W + b, and dW as a sum of outer products ----------------------
    explain_stem = "o"

    def explain_forward(self, ex: Explanation, at: Step) -> None:
        """``o_t = u_t @ W + b`` with the operands' shapes."""
        W, B, O = self.params["W"], at.x.shape[1], self.out_features
        rhs = f"{at.u}{at.t_in} @ W" + (" + b" if self.bias else "")
        shapes = f"{shape((B, W.shape[0]))}@{shape(W.shape)}" + (f" + {shape((O,))}" if self.bias else "")
        shapes += f" -> {shape((B, O))}{at.steps}"
        ex.forward.append(Line(f"{at.v}{at.t_in}", rhs, shapes, at.y))

    def explain_backward(self, ex: Explanation, at: Step) -> None:
        """``δu_t = δo_t @ Wᵀ``; ``dW = Σ_t u_tᵀ·δo_t`` and ``db = Σ_t Σ_b δo_t``."""
        W, (T, B, _) = self.params["W"], at.x.shape
        I, O = W.shape
        shapes = f"{shape((B, O))}@{shape((O, I))} -> {shape((B, I))}{at.steps}"
        ex.backward.append(Line(f"δ{at.u}{at.t_in}", f"δ{at.v}{at.t_in} @ Wᵀ", shapes, at.grad_x))
        ex.identities.append((f"δ{at.u} = δ{at.v} @ Wᵀ", at.grad_y @ W.T, at.grad_x))
        steps = [f"_{t}" if at.seq else "" for t in range(1, T + 1)]
        deltas = [(f"δ{at.v}{s}", d) for s, d in zip(steps, at.grad_y, strict=True)]
        inputs = [(f"{at.u}{s}", x) for s, x in zip(steps, at.x, strict=True)]
        sums = [outer_sum(at.prefix + "W", W.shape, inputs, deltas)]
        if self.bias:
            sums.append(bias_sum(at.prefix + "b", deltas))
        ex.gradients[0:0] = sums

    # --- The torch form: nn.Linear computes x Wᵀ + b, so its weight is bptt's W transposed ---
    def torch_forward(self, torch: Any, x: Any, params: Mapping[str, Any], state: Any = None) -> Any:
        """``y_t = x_t W + b`` on tensors: ``x (T, B, I) -> y (T, B, O)``."""
        y = x @ params["W"]
        return y + params["b"] if self.bias else y

    def to_torch_module(self, torch: Any) -> Any:
        """``nn.Linear`` with ``weight = Wᵀ`` and ``bias = b``."""
        dtype = getattr(torch, self.dtype.name)
        linear = torch.nn.Linear(self.in_features, self.out_features, bias=self.bias, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(self.params["W"].T))
            if self.bias:
                linear.bias.copy_(torch.as_tensor(self.params["b"]))
        return linear

    @classmethod
    def torch_counterpart(cls, torch: Any) -> Any:
        """``torch.nn.Linear``."""
        return torch.nn.Linear

    @classmethod
    def from_torch_module(cls, module: Any) -> Dense:
        """``W = weightᵀ``, ``b = bias``, in the weight's dtype."""
        weight, bias = module.weight.detach().cpu().numpy(), module.bias is not None  # weight (O, I)
        dense = cls(module.in_features, module.out_features, bias=bias, rng=0, dtype=weight.dtype)
        dense.params["W"][...] = weight.T
        if bias:
            dense.params["b"][...] = module.bias.detach().cpu().numpy()
        return dense
