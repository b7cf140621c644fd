"""Elementwise layers: Sigmoid, Tanh and ReLU, each ``y = f(x)`` with ``f'`` written in terms of ``y``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._types import Array
from .._validate import as_array, check_sequence
from ..explanation import Explanation, Line, Step, as_factor, shape
from ..functional import ACTIVATIONS, torch_activation
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

    # --- The torch form -------------------------------------------------------------------------
    def torch_forward(self, torch: Any, x: Any, params: Mapping[str, Any], state: Any = None) -> Any:
        """``y = f(x)`` on a tensor ``(T, B, F)``."""
        return torch_activation(torch, self.activation)(x)

    @classmethod
    def torch_counterpart(cls, torch: Any) -> Any:
        """``nn.Sigmoid``, ``nn.Tanh``, ``nn.ReLU`` or ``nn.Identity``, by ``activation``."""
        nn = torch.nn
        modules = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "identity": nn.Identity}
        return modules[cls.activation]

    def to_torch_module(self, torch: Any) -> Any:
        """``torch.nn.Sigmoid``, ``Tanh`` or ``ReLU``."""
        return self.torch_counterpart(torch)()

    @classmethod
    def from_torch_module(cls, module: Any) -> Elementwise:
        """The bptt activation of a torch activation module."""
        return cls()

    # --- explain: s_t = f(u_t), δu_t = δs_t ⊙ f' ----------------------------------------------
    def explain_forward(self, ex: Explanation, at: Step) -> None:
        """``s_t = f(u_t)``."""
        f = {"sigmoid": "σ"}.get(self.activation, self.activation)
        rhs = f"{f}({at.u}{at.t_in})"
        ex.forward.append(Line(f"{at.v}{at.t_in}", rhs, shape(at.x.shape[1:]) + at.steps, at.y))

    def explain_backward(self, ex: Explanation, at: Step) -> None:
        """``δu_t = δs_t ⊙ f'``, with ``f'`` written in terms of the output ``s_t``."""
        d = ACTIVATIONS[self.activation]
        rhs = f"δ{at.v}{at.t_in} ⊙ " + as_factor(d.formula.replace("y", f"{at.v}{at.t_in}"))
        ex.backward.append(Line(f"δ{at.u}{at.t_in}", rhs, shape(at.grad_y.shape[1:]) + at.steps, at.grad_x))
        ex.identities.append((f"δ{at.u} = δ{at.v} ⊙ {d.formula}", at.grad_y * d.grad(at.y), at.grad_x))


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
