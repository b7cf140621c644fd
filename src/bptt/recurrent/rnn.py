"""RNN: the Elman cell ``h_t = act(x_t @ W_ih + h_{t-1} @ W_hh + b)`` and its BPTT loop."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .._types import Array
from ..functional import ACTIVATIONS
from ..layers import State, register_layer
from .base import Recurrent

__all__ = ["RNN"]


@register_layer
class RNN(Recurrent):
    """Elman recurrence ``h_t = act(x_t @ W_ih + h_{t-1} @ W_hh + b)``, returning every ``h_t``.

    Parameters
    ----------
    input_size, hidden_size : int
    activation : {"tanh", "sigmoid", "relu", "identity"}
    bias, stateful : bool
    rng : Generator, int or None
        Source of the initial weights; ``None`` is seed 0.
    dtype : np.float64 (default) or np.float32

    Attributes
    ----------
    params : ``W_ih (I, H)``, ``W_hh (H, H)`` and, when ``bias``, ``b (H,)``
    h0 : None or ndarray (B, H)
        Initial state for the next ``forward``; ``None`` means zeros.
    grad_h0 : None or ndarray (B, H)
        ``dL/dh0`` after ``backward``.
    stateful : bool
        When true, each ``forward`` leaves its last state ``h_T`` in ``h0`` for the next call,
        so a long sequence can be fed in pieces (gradients do not flow back across calls).
        ``reset_state()`` clears it. ``run(x, state)`` passes the state explicitly instead.

    Notes
    -----
    ``torch.nn.RNN`` maps onto this layer as ``weight_ih_l0 = W_ihᵀ``, ``weight_hh_l0 = W_hhᵀ``,
    ``bias_ih_l0 = b`` and ``bias_hh_l0 = 0``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        activation: str = "tanh",
        bias: bool = True,
        stateful: bool = False,
        rng: np.random.Generator | int | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"RNN: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        super().__init__(input_size, hidden_size, bias=bias, stateful=stateful, rng=rng, dtype=dtype)

    def config(self) -> dict[str, Any]:
        base = super().config()
        return {k: base[k] for k in ("input_size", "hidden_size")} | {"activation": self.activation} | base

    @property
    def grad_a(self) -> Array:
        """``δa_t = ∂L/∂a_t`` for every step ``(T, B, H)`` after ``backward``, as a fresh copy.

        ``a_t`` is the pre-activation; ``∂L/∂h_{t-1}`` through the recurrence is
        ``δa_t @ W_hhᵀ``. This is the per-step δ that BPTT sums into ``dW = Σ_t input_tᵀ δa_t``.
        """
        return self.cached("da", "backward").copy()

    def _steps(self, x: Array, start: State) -> Array:
        T, B, _ = x.shape
        H, act = self.hidden_size, ACTIVATIONS[self.activation].fn
        W_hh = self.params["W_hh"]
        hs = self.buffer("hs", (T + 1, B, H))
        hs[0] = start.h
        self.project(x, hs[1:])  # x_t W_ih + b for every step: only the recurrence is sequential
        buf = np.empty((B, H), self.dtype)
        for h_prev, h in pairwise(list(hs)):  # 3 NumPy calls per step
            np.dot(h_prev, W_hh, out=buf)  # h_{t-1} W_hh: (B, H)
            h += buf  # a_t = x_t W_ih + b + h_{t-1} W_hh
            act(h, out=h)  # h_t = act(a_t)
        return hs

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, H) -> grad_x (T, B, I)``; fills ``grads`` and ``grad_h0 (B, H)``.

        ``δa_t = (∂L/∂h_t + δa_{t+1} @ W_hhᵀ) ⊙ act'(a_t)``, from ``t = T`` down to 1.
        """
        g = self._check_grad(grad_y, self.dtype)
        assert self._x is not None
        T, B, _ = self._x.shape
        H, dact = self.hidden_size, ACTIVATIONS[self.activation].grad
        hs = self._work["hs"]
        W_hh_T = np.ascontiguousarray(self.params["W_hh"].T)  # (H, H)
        da = dact(hs[1:], out=self.buffer("da", (T, B, H)))  # act'(a_t), all steps; becomes δa_t
        dh_next = np.zeros((B, H), self.dtype)  # ∂L/∂h_t through step t+1
        dh = np.empty((B, H), self.dtype)
        for g_t, da_t in zip(g[::-1], da[::-1], strict=True):  # t = T..1; 3 NumPy calls per step
            np.add(g_t, dh_next, out=dh)  # ∂L/∂h_t: from the output and from step t+1
            da_t *= dh  # δa_t = ∂L/∂h_t ⊙ act'(a_t): (B, H)
            np.dot(da_t, W_hh_T, out=dh_next)  # ∂L/∂h_{t-1} through W_hhᵀ: (B, H)
        self.grad_h0 = dh_next
        return self.weight_grads(hs[:-1], da)
