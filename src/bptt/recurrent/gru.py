"""GRU: the gated recurrent unit, PyTorch's equations and gate order ``r, z, n``, and its BPTT loop."""

from __future__ import annotations

import numpy as np

from .._types import Array
from ..errors import ShapeError
from ..functional import column_sums, sigmoid
from ..layers import State, register_layer
from .base import Recurrent, dsigmoid_times

__all__ = ["GRU"]


@register_layer
class GRU(Recurrent):
    """Gated recurrent unit with PyTorch's exact equations and gate order ``r, z, n``.

    ``r = σ(x W_ir + h W_hr + b_r)``, ``z = σ(x W_iz + h W_hz + b_z)``,
    ``n = tanh(x W_in + b_n + r ⊙ (h W_hn + b_hn))``, ``h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}``.

    The reset gate multiplies the recurrent term *including its bias*, so the n gate needs a
    recurrent bias of its own, ``b_hn``, apart from ``b``.

    Parameters
    ----------
    input_size, hidden_size : int
    bias, stateful : bool
    rng : Generator, int or None
        Source of the initial weights; ``None`` is seed 0.
    dtype : np.float64 (default) or np.float32

    Attributes
    ----------
    params : ``W_ih (I, 3H)``, ``W_hh (H, 3H)`` packed ``[r | z | n]``; with ``bias``,
        ``b (3H,)`` (the input biases, plus the recurrent biases of r and z) and ``b_hn (H,)``.
    h0 : None or ndarray (B, H)
    grad_h0 : ndarray (B, H) after ``backward``

    Notes
    -----
    ``torch.nn.GRU``: ``weight_ih_l0 = W_ihᵀ``, ``weight_hh_l0 = W_hhᵀ``,
    ``b = bias_ih_l0 + [bias_hh_l0 r, z parts, 0]``, ``b_hn = bias_hh_l0[2H:]``.
    """

    gates = 3

    def _add_recurrent_biases(self, k: float) -> None:
        self._add_param("b_hn", self._uniform(k, (self.hidden_size,)))

    def _steps(self, x: Array, start: State) -> Array:
        T, B, _ = x.shape
        H = self.hidden_size
        W_hh = self.params["W_hh"]
        hs = self.buffer("hs", (T + 1, B, H))
        xw = self.buffer("xw", (T, B, 3, H))  # x_t W_ih + b: the input side of r, z, n
        hw = self.buffer("hw", (T, B, 3, H))  # h_{t-1} W_hh (+ b_hn for n): the recurrent side
        gates = self.buffer("gates", (T, B, 3, H))  # r, z, n
        hs[0] = start.h
        self.project(x, xw)
        for t in range(T):  # 10 NumPy calls per step
            h_prev, h = hs[t], hs[t + 1]
            r, z, n = gates[t].transpose(1, 0, 2)  # each (B, H)
            np.dot(h_prev, W_hh, out=hw[t].reshape(B, 3 * H))  # h_{t-1} W_hh: (B, 3H)
            if self.bias:
                hw[t, :, 2] += self.params["b_hn"]
            np.add(xw[t, :, :2], hw[t, :, :2], out=gates[t, :, :2])
            sigmoid(gates[t, :, :2], out=gates[t, :, :2])  # r, z = σ(x W_i + b + h W_h)
            np.multiply(r, hw[t, :, 2], out=n)
            n += xw[t, :, 2]
            np.tanh(n, out=n)  # n = tanh(x W_in + b_n + r ⊙ (h W_hn + b_hn))
            np.subtract(h_prev, n, out=h)
            h *= z
            h += n  # h_t = n + z ⊙ (h_{t-1} - n) = (1 - z) ⊙ n + z ⊙ h_{t-1}
        return hs

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, H) -> grad_x (T, B, I)``; fills ``grads`` and ``grad_h0``.

        With ``δh_t = ∂L/∂h_t + (from step t+1)``: ``δn̂ = δh ⊙ (1-z) ⊙ (1-n²)`` (n's
        pre-activation), ``δẑ = δh ⊙ (h_{t-1} - n) ⊙ z(1-z)``, ``δr̂ = δn̂ ⊙ (h W_hn + b_hn) ⊙
        r(1-r)``. The input side ``x W_ih + b`` gets ``[δr̂, δẑ, δn̂]``, the recurrent side
        ``h W_hh`` gets ``[δr̂, δẑ, r ⊙ δn̂]``, and ``δh_{t-1} = δh ⊙ z + [δr̂, δẑ, r ⊙ δn̂] @ W_hhᵀ``.
        """
        dy = self._check_grad(grad_y, self.dtype)
        assert self._x is not None
        T, B, _ = self._x.shape
        H = self.hidden_size
        hs, hw, gates = (self._work[k] for k in ("hs", "hw", "gates"))
        r, z, n = gates.transpose(2, 0, 1, 3)  # each (T, B, H)
        # Factors that depend only on the forward pass, for every step at once.
        dr_dn = dsigmoid_times(r, hw[:, :, 2], out=self.buffer("dr_dn", (T, B, H)))  # δr̂ = δn̂ ⊙ this
        dz_dh = dsigmoid_times(
            z, np.subtract(hs[:-1], n), out=self.buffer("dz_dh", (T, B, H))
        )  # δẑ = δh ⊙ this
        dn_dh = self.buffer("dn_dh", (T, B, H))  # δn̂ = δh ⊙ this = (1-z) ⊙ (1-n²)
        np.multiply(n, n, out=dn_dh)
        np.subtract(1.0, dn_dh, out=dn_dh)
        dn_dh *= np.subtract(1.0, z)

        d_in = self.buffer("d_in", (T, B, 3, H))  # δ of x W_ih + b: [δr̂, δẑ, δn̂]
        d_rec = self.buffer("d_rec", (T, B, 3, H))  # δ of h W_hh (+ b_hn): [δr̂, δẑ, r ⊙ δn̂]
        W_hh_T = np.ascontiguousarray(self.params["W_hh"].T)  # (3H, H)
        dh_next, dh, through_z = (np.zeros((B, H), self.dtype) for _ in range(3))
        for t in range(T - 1, -1, -1):  # 8 NumPy calls per step
            dr, dz, dn = d_rec[t].transpose(1, 0, 2)  # each (B, H)
            np.add(dy[t], dh_next, out=dh)  # δh_t = ∂L/∂h_t: from the output and from step t+1
            np.multiply(dh, dn_dh[t], out=d_in[t, :, 2])  # δn̂
            np.multiply(dh, dz_dh[t], out=dz)  # δẑ
            np.multiply(d_in[t, :, 2], dr_dn[t], out=dr)  # δr̂
            np.multiply(d_in[t, :, 2], r[t], out=dn)  # r ⊙ δn̂
            np.dot(d_rec[t].reshape(B, 3 * H), W_hh_T, out=dh_next)  # through W_hhᵀ: (B, H)
            np.multiply(dh, z[t], out=through_z)
            dh_next += through_z  # δh_{t-1}: through W_hh and directly through z
        self.grad_h0 = dh_next
        d_in[:, :, :2] = d_rec[:, :, :2]  # r and z: the input and recurrent sides add, so share δ
        if self.bias:
            column_sums(d_rec.reshape(T * B, 3 * H)[:, 2 * H :], out=self.grads["b_hn"])  # Σ r ⊙ δn̂: (H,)
        return self.weight_grads(hs[:-1], d_in, d_rec)

    def forward_cache(self) -> dict[str, Array]:
        """Copies of the last forward's per-step values: ``gates`` ``(T, B, 3H)`` (r, z, n after
        their nonlinearities) and ``hn`` ``(T, B, H)``, the recurrent term ``h_{t-1} W_hn + b_hn``."""
        if self._x is None:
            raise ShapeError("GRU.forward_cache read before forward: run forward first")
        T, B = self._x.shape[:2]
        return {"gates": self._work["gates"].reshape(T, B, -1).copy(), "hn": self._work["hw"][:, :, 2].copy()}

    @property
    def grad_a(self) -> Array:
        """δ of the input-side pre-activations ``x W_ih + b`` ``(T, B, 3H)``, ``[r̂ | ẑ | n̂]``."""
        d_in = self.cached("d_in", "backward")
        return d_in.reshape(d_in.shape[0], d_in.shape[1], -1).copy()

    @property
    def grad_r(self) -> Array:
        """δ of the recurrent pre-activations ``h W_hh (+ b_hn)`` ``(T, B, 3H)``: r̂, ẑ and ``r ⊙ δn̂``."""
        d_rec = self.cached("d_rec", "backward")
        return d_rec.reshape(d_rec.shape[0], d_rec.shape[1], -1).copy()
