"""Last: keep only the last step (many-to-one)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np

from .._types import Array
from .._validate import as_array, check_sequence
from ..explanation import Explanation, Line, Step, shape
from .base import Layer, check_lengths, register_layer

__all__ = ["Last"]


@register_layer
class Last(Layer):
    """Keep only the last step (many-to-one): ``(T, B, F) -> (1, B, F)``.

    With ``lengths`` ``(B,)`` (a padded batch), each sequence's last real step ``lengths[b] - 1``.
    """

    out_letters = "(1, B, F)"
    takes_lengths = True

    def __init__(self) -> None:
        super().__init__()
        self._in_shape: tuple[int, ...] = ()
        self._dtype: np.dtype[Any] | None = None
        self._steps: Array | None = None  # (B,): the step kept of each sequence; None: the last

    def forward(self, x: Array, lengths: Any = None) -> Array:
        """``x (T, B, F) -> y (1, B, F)``: ``x[-1:]``, or with ``lengths`` ``x[lengths[b] - 1, b]``."""
        x = as_array(x, None, "Last.forward", "x")
        T, B, F = check_sequence(x, "Last.forward", "x", "(T, B, F)", None)
        steps = None if lengths is None else check_lengths(lengths, T, B, "Last.forward") - 1  # (B,)
        self._in_shape, self._out_shape, self._dtype, self._steps = x.shape, (1, B, F), x.dtype, steps
        if steps is None:
            return x[-1:].copy()  # (1, B, F)
        return x[steps, np.arange(B)][None]  # (1, B, F)

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (1, B, F) -> grad_x (T, B, F)``: the gradient at the kept step, zeros elsewhere."""
        g = self._check_grad(grad_y, self._dtype)
        grad_x = np.zeros(self._in_shape, g.dtype)  # (T, B, F)
        if self._steps is None:
            grad_x[-1] = g[0]
        else:
            grad_x[self._steps, np.arange(g.shape[1])] = g[0]
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
