"""GRU: the gated recurrent unit, PyTorch's equations and gate order ``r, z, n``, and its BPTT loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._types import Array
from ..errors import ShapeError
from ..explanation import Explanation, Line, Step, bias_sum, numbered, shape
from ..functional import column_sums, sigmoid
from ..layers import State, register_layer
from . import gru_kernels
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

    The NumPy loops of ``_steps`` and ``backward`` are the reference. Without padding they run
    as ``gru_kernels``' compiled steps (numba: one call a step besides the matmul, the same
    buffers, agreeing to round-off); ``BPTT_BACKEND=numpy`` in the environment forces the NumPy
    loops.
    """

    gates = 3
    torch_name = "GRU"

    def _add_recurrent_biases(self, k: float) -> None:
        self._add_param("b_hn", self._uniform(k, (self.hidden_size,)))

    def _steps(self, x: Array, start: State) -> Array:
        T, B = x.shape[:2]  # x: (T, B, I), or ids (T, B)
        H = self.hidden_size
        W_hh = self.params["W_hh"]
        hs = self.buffer("hs", (T + 1, B, H))
        xw = self.buffer("xw", (T, B, 3, H))  # x_t W_ih + b: the input side of r, z, n
        hw = self.buffer("hw", (T, B, 3, H))  # h_{t-1} W_hh (+ b_hn for n): the recurrent side
        gates = self.buffer("gates", (T, B, 3, H))  # r, z, n
        hs[0] = start.h
        self.project(x, xw)
        if self.compiled(T, B):  # the loop below with one compiled call a step (gru_kernels)
            gru_kernels.forward(xw, W_hh, self.params["b_hn"] if self.bias else None, hw, gates, hs)
            return hs
        pads = self.step_pads(T)
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
            if pads[t] is not None:
                np.copyto(h, h_prev, where=pads[t])  # padding: h_t = h_{t-1}
        return hs

    def torch_forward(self, torch: Any, x: Any, params: Mapping[str, Any], state: State | None = None) -> Any:
        """The class docstring's equations on tensors, gates packed ``[r | z | n]``, one step at a time."""
        H = self.hidden_size
        h = self.torch_state(torch, x, state).h
        hs = []
        for x_t in x:
            a, rec = x_t @ params["W_ih"], h @ params["W_hh"]
            rec_n = rec[:, 2 * H :]
            if self.bias:
                a, rec_n = a + params["b"], rec_n + params["b_hn"]
            r = torch.sigmoid(a[:, :H] + rec[:, :H])
            z = torch.sigmoid(a[:, H : 2 * H] + rec[:, H : 2 * H])
            n = torch.tanh(a[:, 2 * H :] + r * rec_n)  # the reset gate scales h W_hn + b_hn
            h = (1.0 - z) * n + z * h
            hs.append(h)
        return torch.stack(hs)  # (T, B, H)

    def torch_biases(self) -> tuple[Array, Array]:
        """``bias_ih = b`` and ``bias_hh = [0 (r), 0 (z), b_hn]``."""
        b, bias_hh = super().torch_biases()
        bias_hh[2 * self.hidden_size :] = self.params["b_hn"]
        return b, bias_hh

    def set_torch_biases(self, bias_ih: Array, bias_hh: Array) -> None:
        """``b = bias_ih + [bias_hh_r, bias_hh_z, 0]`` and ``b_hn = bias_hh_n``."""
        H, p = self.hidden_size, self.params
        p["b"][...] = bias_ih
        p["b"][: 2 * H] += bias_hh[: 2 * H]  # r and z: both biases sit outside the reset gate
        p["b_hn"][...] = bias_hh[2 * H :]  # n: the reset gate scales h W_hn + b_hn

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, H) -> grad_x (T, B, I)``; fills ``grads`` and ``grad_h0``.

        With ``δh_t = ∂L/∂h_t + (from step t+1)``: ``δn̂ = δh ⊙ (1-z) ⊙ (1-n²)`` (n's
        pre-activation), ``δẑ = δh ⊙ (h_{t-1} - n) ⊙ z(1-z)``, ``δr̂ = δn̂ ⊙ (h W_hn + b_hn) ⊙
        r(1-r)``. The input side ``x W_ih + b`` gets ``[δr̂, δẑ, δn̂]``, the recurrent side
        ``h W_hh`` gets ``[δr̂, δẑ, r ⊙ δn̂]``, and ``δh_{t-1} = δh ⊙ z + [δr̂, δẑ, r ⊙ δn̂] @ W_hhᵀ``.
        """
        dy = self._check_grad(grad_y, self.dtype)
        assert self._x is not None
        T, B = self._x.shape[:2]
        H = self.hidden_size
        d_in = self.buffer("d_in", (T, B, 3, H))  # δ of x W_ih + b: [δr̂, δẑ, δn̂]
        d_rec = self.buffer("d_rec", (T, B, 3, H))  # δ of h W_hh (+ b_hn): [δr̂, δẑ, r ⊙ δn̂]
        if self.compiled(T, B):  # the loop of _bptt with one compiled call a step (gru_kernels)
            hs, hw, gates = (self._work[k] for k in ("hs", "hw", "gates"))
            self.grad_h0 = gru_kernels.backward(dy, self.params["W_hh"], gates, hs, hw, d_in, d_rec)
        else:
            self.grad_h0 = self._bptt(dy, d_in, d_rec)
        d_in[:, :, :2] = d_rec[:, :, :2]  # r and z: the input and recurrent sides add, so share δ
        if self.bias:
            column_sums(d_rec.reshape(T * B, 3 * H)[:, 2 * H :], out=self.grads["b_hn"])  # Σ r ⊙ δn̂: (H,)
        return self.weight_grads(self._work["hs"][:-1], d_in, d_rec)

    def _bptt(self, dy: Array, d_in: Array, d_rec: Array) -> Array:
        """The NumPy BPTT loop, the reference: fills ``d_in``'s n block and ``d_rec``; returns ``δh_0``."""
        T, B, _, H = d_rec.shape
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
        dy = self.drop_padding(dy, dz_dh, dn_dh)  # padding: no output gradient, δ = 0 (δr̂ follows δn̂)

        W_hh_T = np.ascontiguousarray(self.params["W_hh"].T)  # (3H, H)
        dh_next, dh, through_z = (np.zeros((B, H), self.dtype) for _ in range(3))
        pads = self.step_pads(T)
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
            if pads[t] is not None:
                np.copyto(dh_next, dh, where=pads[t])  # padding carried h_{t-1}: its δ is δh_t
        return dh_next

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

    # --- explain: the gate equations, and each gate's share of δ -------------------------------
    def explain_forward(self, ex: Explanation, at: Step) -> None:
        """The input side ``â_t``, the recurrent side ``ĥ_t``, then ``r, z``, ``n`` and ``h_t``, per step."""
        (T, B, I), H, sfx = at.x.shape, self.hidden_size, numbered("", at.v)
        gates, hn = (self.forward_cache()[k] for k in ("gates", "hn"))
        bh, bg = shape((B, H)), shape((B, 3 * H))
        hs = self.explain_start(ex, at)
        for t in range(1, T + 1):
            a = at.x[t - 1] @ self.params["W_ih"] + self.params.get("b", 0.0)
            rec = hs[t - 1] @ self.params["W_hh"]
            rec[:, 2 * H :] += self.params.get("b_hn", 0.0)
            rhs = f"{at.u}_{t} @ W_ih" + (" + b" if self.bias else "")
            ex.forward.append(
                Line(f"â{sfx}_{t}", rhs, f"{shape((B, I))}@{shape((I, 3 * H))} -> {bg}, blocks [r|z|n]", a)
            )
            rhs = f"{at.v}_{t - 1} @ W_hh" + (" + [0|0|b_hn]" if self.bias else "")
            ex.forward.append(Line(f"ĥ{sfx}_{t}", rhs, f"{bh}@{shape((H, 3 * H))} -> {bg}", rec))
            ex.identities.append(("GRU ĥ_n = h W_hn + b_hn", rec[:, 2 * H :], hn[t - 1]))
            r, z, n = np.split(gates[t - 1], 3, axis=1)
            rz = gates[t - 1][:, : 2 * H]
            ex.forward.append(Line(f"r,z{sfx}_{t}", "σ(â_r + ĥ_r), σ(â_z + ĥ_z)", f"2×{bh}", rz))
            ex.identities.append(("r, z = σ(â + ĥ)", sigmoid(a[:, : 2 * H] + rec[:, : 2 * H]), rz))
            ex.forward.append(Line(f"n{sfx}_{t}", "tanh(â_n + r ⊙ ĥ_n)", bh, n))
            ex.identities.append(("n = tanh(â_n + r ⊙ ĥ_n)", np.tanh(a[:, 2 * H :] + r * rec[:, 2 * H :]), n))
            ex.forward.append(Line(f"{at.v}_{t}", f"(1 - z) ⊙ n + z ⊙ {at.v}_{t - 1}", bh, hs[t]))
            ex.identities.append(("h_t = (1-z) ⊙ n + z ⊙ h_{t-1}", (1 - z) * n + z * hs[t - 1], hs[t]))

    def explain_backward(self, ex: Explanation, at: Step) -> None:
        """From ``t = T`` down: ``δh_t``, ``δn̂``, ``δẑ``, ``δr̂``, ``δĥ``; then ``δh_0``, ``δu_t``, sums."""
        T, B, _ = at.x.shape
        H, d_in, d_rec = self.hidden_size, self.grad_a, self.grad_r
        z = self.forward_cache()["gates"][:, :, H : 2 * H]
        dh = np.zeros((B, H))
        for t in range(T, 0, -1):  # δh_t reaches h_{t-1} through W_hh and directly through z
            later = d_rec[t] @ self.params["W_hh"].T + dh * z[t] if t < T else 0.0
            dh = self._explain_step(ex, at, t, d_in, d_rec, later)
        dh0 = d_rec[0] @ self.params["W_hh"].T + dh * z[0]
        ex.backward.append(
            Line(f"δ{at.v}_0", "(the same rule, one step before the first)", shape((B, H)), dh0)
        )
        assert self.grad_h0 is not None
        ex.identities.append(("δh_0", dh0, self.grad_h0))
        sums = self.explain_sums(ex, at, ("δâ", d_in), ("δĥ", d_rec))
        if self.bias:
            b_hn = bias_sum(
                at.prefix + "b_hn", [(f"δĥ_n,{t}", d[:, 2 * H :]) for t, d in enumerate(d_rec, 1)]
            )
            b_hn.label = "db_hn"
            sums.append(b_hn)
        ex.gradients[0:0] = sums

    def _explain_step(
        self, ex: Explanation, at: Step, t: int, d_in: Array, d_rec: Array, later: Array | float
    ) -> Array:
        """Step ``t`` of BPTT, given ``∂L/∂h_t`` through step ``t+1`` (``later``); returns ``δh_t``."""
        T, B, _ = at.x.shape
        H, v, sfx, bh = self.hidden_size, at.v, numbered("", at.v), shape((B, self.hidden_size))
        gates, hn = (self.forward_cache()[k] for k in ("gates", "hn"))
        r, z, n = np.split(gates[t - 1], 3, axis=1)
        h_prev = self.explain_states(at)[t - 1]
        dh = at.grad_y[t - 1] + later
        via = "" if t == T else f" + δ{v}_{t + 1} ⊙ z_{t + 1} + δĥ_{t + 1} @ W_hhᵀ"
        ex.backward.append(Line(f"δ{v}_{t}", f"∂L/∂{v}_{t} from its output{via}", bh, dh))
        dn = dh * (1 - z) * (1 - n * n)
        dz = dh * (h_prev - n) * z * (1 - z)
        dr = dn * hn[t - 1] * r * (1 - r)
        ex.backward.append(Line(f"δn̂{sfx}_{t}", f"δ{v}_{t} ⊙ (1 - z) ⊙ (1 - n²)", bh, dn))
        ex.backward.append(Line(f"δẑ{sfx}_{t}", f"δ{v}_{t} ⊙ ({v}_{t - 1} - n) ⊙ z(1 - z)", bh, dz))
        ex.backward.append(Line(f"δr̂{sfx}_{t}", "δn̂ ⊙ ĥ_n ⊙ r(1 - r)", bh, dr))
        rhs = "[δr̂ | δẑ | δn̂ ⊙ r]  (the recurrent side)"
        ex.backward.append(Line(f"δĥ{sfx}_{t}", rhs, shape((B, 3 * H)), d_rec[t - 1]))
        ex.identities.append(("GRU δâ_t", np.concatenate([dr, dz, dn], 1), d_in[t - 1]))
        ex.identities.append(("GRU δĥ_t", np.concatenate([dr, dz, dn * r], 1), d_rec[t - 1]))
        return dh
