"""Last: keep only the last step (many-to-one)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np

from .._types import Array
from .._validate import as_array, check_sequence
from ..explanation import Explanation, Line, Step, shape
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

    # --- explain: the kept step keeps its variable's name ------------------------------------
    explain_stem = None  # the kept step is still the input's variable
    explain_one_step = True

    def explain_forward(self, ex: Explanation, at: Step) -> None:
        """``v = u_T``: only the last step goes on."""
        T = at.x.shape[0]
        rhs = f"{at.u}_{T}  (Last: only step T goes on)"
        ex.forward.append(Line(at.v, rhs, shape(at.x.shape[1:]), at.y[0]))

    def explain_backward(self, ex: Explanation, at: Step) -> None:
        """``δu_T = δv``, and zeros at the other steps."""
        T = at.x.shape[0]
        rhs = f"δ{at.v}; δ{at.u}_t = 0 for t < {T}"
        ex.backward.append(Line(f"δ{at.u}_{T}", rhs, shape(at.grad_y.shape[1:]), at.grad_x))

    # --- The torch form -------------------------------------------------------------------------
    def torch_forward(self, torch: Any, x: Any, params: Mapping[str, Any], state: Any = None) -> Any:
        """``x[-1:]``: ``(T, B, F) -> (1, B, F)``."""
        return x[-1:]

    @classmethod
    def torch_counterpart(cls, torch: Any) -> Any:
        """A small ``torch.nn.Module`` returning ``x[-1:]`` (torch has none)."""
        return _torch_last()

    def to_torch_module(self, torch: Any) -> Any:
        """A torch module that keeps the last step: ``(T, B, F) -> (1, B, F)``."""
        return _torch_last()()

    @classmethod
    def from_torch_module(cls, module: Any) -> Last:
        """``Last()`` from the module ``to_torch_module`` made."""
        return cls()


@cache
def _torch_last() -> Any:
    """The module class ``Last`` becomes in torch, defined once torch is imported."""
    import torch

    class Last(torch.nn.Module):
        """Keep only the last step: ``(T, B, F) -> (1, B, F)``, like ``bptt.Last``."""

        def forward(self, x: Any) -> Any:
            return x[-1:]

    Last.__module__, Last.__qualname__ = __name__, "Last"
    return Last
