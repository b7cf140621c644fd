"""LSTM: long short-term memory, PyTorch's equations and gate order ``i, f, g, o``, and its BPTT loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._types import Array
from ..errors import ShapeError
from ..explanation import Explanation, Line, Step, numbered, shape
from ..functional import sigmoid
from ..layers import State, register_layer
from . import lstm_kernels
from .base import Recurrent, dsigmoid_times

__all__ = ["LSTM"]


@register_layer
class LSTM(Recurrent):
    """Long short-term memory, with PyTorch's equations and gate order ``i, f, g, o``.

    ``z_t = x_t @ W_ih + h_{t-1} @ W_hh + b``, split into four ``(B, H)`` blocks;
    ``i, f, o = σ(z_i), σ(z_f), σ(z_o)``; ``g = tanh(z_g)``;
    ``c_t = f ⊙ c_{t-1} + i ⊙ g``; ``h_t = o ⊙ tanh(c_t)``.

    Parameters
    ----------
    input_size, hidden_size : int
    bias, stateful : bool
    rng : Generator, int or None
        Source of the initial weights; ``None`` is seed 0.
    dtype : np.float64 (default) or np.float32

    Attributes
    ----------
    params : ``W_ih (I, 4H)``, ``W_hh (H, 4H)``, ``b (4H,)``, columns packed ``[i | f | g | o]``
    h0, c0 : None or ndarray (B, H)
        Initial hidden and cell states (``None``: zeros).
    grad_h0, grad_c0 : ndarray (B, H)
        Their gradients after ``backward``.

    Notes
    -----
    ``torch.nn.LSTM``: ``weight_ih_l0 = W_ihᵀ``, ``weight_hh_l0 = W_hhᵀ``, ``bias_ih_l0 +
    bias_hh_l0 = b``.

    The NumPy loops of ``_steps`` and ``backward`` are the reference. Without padding they run
    as ``lstm_kernels``' compiled steps (numba: one call a step besides the matmul, the same
    buffers, agreeing to round-off); ``BPTT_BACKEND=numpy`` in the environment forces the NumPy
    loops.
    """

    state_names = ("h0", "c0")
    trajectories = ("hs", "cs")
    gates = 4
    torch_name = "LSTM"
    c0: Array | None = None
    grad_c0: Array | None = None

    def held(self) -> tuple[Array | None, ...]:
        """``(h0, c0)``, the initial states the next ``forward`` reads."""
        return (self.h0, self.c0)

    @property
    def state(self) -> State | None:
        """``State(h0, c0)`` for the next ``forward`` (a missing one zeros); ``None`` when both are."""
        return super().state

    @state.setter
    def state(self, value: State | None) -> None:
        """``State(h0, c0)`` for the next ``forward``, or ``None`` (zeros)."""
        self.h0, self.c0 = (None, None) if value is None else value

    @property
    def grad_state(self) -> State:
        """``State(grad_h0, grad_c0)`` after ``backward``, each ``(B, H)``."""
        return State(super().grad_state.h, self.grad_c0)

    def _steps(self, x: Array, start: State) -> Array:
        T, B = x.shape[:2]  # x: (T, B, I), or ids (T, B)
        H = self.hidden_size
        W_hh = self.params["W_hh"]
        hs, cs = self.buffer("hs", (T + 1, B, H)), self.buffer("cs", (T + 1, B, H))
        zs = self.buffer("z", (T, B, 4, H))  # pre-activations z_t
        gates = self.buffer("gates", (T, B, 4, H))  # i, f, g, o
        tanh_c = self.buffer("tanh_c", (T, B, H))
        hs[0], cs[0] = start.h, start.c
        self.project(x, zs)  # x_t W_ih + b for every step
        if self.compiled(T, B):  # the loop below with one compiled call a step (lstm_kernels)
            lstm_kernels.forward(zs, W_hh, gates, cs, tanh_c, hs)
            return hs
        hz, ig = np.empty((B, 4 * H), self.dtype), np.empty((B, H), self.dtype)
        pads = self.step_pads(T)
        for t in range(T):  # 10 NumPy calls per step
            z, (i, f, g, o) = zs[t], gates[t].transpose(1, 0, 2)  # (B, 4, H); each gate (B, H)
            np.dot(hs[t], W_hh, out=hz)  # h_{t-1} W_hh: (B, 4H)
            z += hz.reshape(B, 4, H)  # z_t = x_t W_ih + b + h_{t-1} W_hh
            sigmoid(z, out=gates[t])  # i, f, o = σ(z): one call for the block, whose g column ...
            np.tanh(z[:, 2], out=g)  # ... is then g = tanh(z_g)
            np.multiply(f, cs[t], out=cs[t + 1])
            np.multiply(i, g, out=ig)
            cs[t + 1] += ig  # c_t = f ⊙ c_{t-1} + i ⊙ g
            np.tanh(cs[t + 1], out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=hs[t + 1])  # h_t = o ⊙ tanh(c_t)
            if pads[t] is not None:  # padding: h_t, c_t = h_{t-1}, c_{t-1}
                np.copyto(hs[t + 1], hs[t], where=pads[t])
                np.copyto(cs[t + 1], cs[t], where=pads[t])
        return hs

    def torch_forward(self, torch: Any, x: Any, params: Mapping[str, Any], state: State | None = None) -> Any:
        """The class docstring's equations on tensors, gates packed ``[i | f | g | o]``, step by step."""
        H = self.hidden_size
        h, c = self.torch_state(torch, x, state)
        hs = []
        for x_t in x:
            z = x_t @ params["W_ih"] + h @ params["W_hh"]
            if self.bias:
                z = z + params["b"]
            i, f = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H : 2 * H])
            g, o = torch.tanh(z[:, 2 * H : 3 * H]), torch.sigmoid(z[:, 3 * H :])
            c = f * c + i * g
            h = o * torch.tanh(c)
            hs.append(h)
        return torch.stack(hs)  # (T, B, H)

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, H) -> grad_x (T, B, I)``; fills ``grads``, ``grad_h0`` and ``grad_c0``.

        With ``δh_t = ∂L/∂h_t + δz_{t+1} @ W_hhᵀ`` and
        ``δc_t = δc_{t+1} ⊙ f_{t+1} + δh_t ⊙ o ⊙ (1 - tanh²c_t)``, the gate δs are
        ``δz_i = δc ⊙ g ⊙ i(1-i)``, ``δz_f = δc ⊙ c_{t-1} ⊙ f(1-f)``, ``δz_g = δc ⊙ i ⊙ (1-g²)``,
        ``δz_o = δh ⊙ tanh(c_t) ⊙ o(1-o)``.
        """
        dy = self._check_grad(grad_y, self.dtype)
        assert self._x is not None
        T, B = self._x.shape[:2]
        H = self.hidden_size
        hs, cs, gates, tanh_c = (self._work[k] for k in ("hs", "cs", "gates", "tanh_c"))
        if self.compiled(T, B):  # the loop below with one compiled call a step (lstm_kernels)
            dz = self.buffer("dz", (T, B, 4, H))
            self.grad_h0, self.grad_c0 = lstm_kernels.backward(dy, self.params["W_hh"], gates, cs, tanh_c, dz)
            return self.weight_grads(hs[:-1], dz)
        i, f, g, o = gates.transpose(2, 0, 1, 3)  # each (T, B, H)
        # ∂z/∂c factors that depend only on the forward pass, for every step at once:
        # δz_{i,f,g} = δc_t ⊙ dc_dz[:, :, :3] and δz_o = δh_t ⊙ dc_dz[:, :, 3].
        dc_dz = self.buffer("dc_dz", (T, B, 4, H))
        dsigmoid_times(i, g, out=dc_dz[:, :, 0])  # g ⊙ i(1-i)
        dsigmoid_times(f, cs[:-1], out=dc_dz[:, :, 1])  # c_{t-1} ⊙ f(1-f)
        np.multiply(g, g, out=dc_dz[:, :, 2])
        np.subtract(1.0, dc_dz[:, :, 2], out=dc_dz[:, :, 2])
        dc_dz[:, :, 2] *= i  # i ⊙ (1-g²)
        dsigmoid_times(o, tanh_c, out=dc_dz[:, :, 3])  # tanh(c_t) ⊙ o(1-o)
        dc_dh = self.buffer("dc_dh", (T, B, H))  # δc_t gets δh_t ⊙ o ⊙ (1 - tanh²c_t)
        np.multiply(tanh_c, tanh_c, out=dc_dh)
        np.subtract(1.0, dc_dh, out=dc_dh)
        dc_dh *= o
        dy = self.drop_padding(dy, dc_dz, dc_dh)  # padding: no output gradient, δz_t = 0

        dz = self.buffer("dz", (T, B, 4, H))  # δz_t for every step
        W_hh_T = np.ascontiguousarray(self.params["W_hh"].T)  # (4H, H)
        dh_next, dc_next = np.zeros((B, H), self.dtype), np.zeros((B, H), self.dtype)
        dh, dc = np.empty((B, H), self.dtype), np.empty((B, H), self.dtype)
        pads = self.step_pads(T)
        for t in range(T - 1, -1, -1):  # 7 NumPy calls per step
            np.add(dy[t], dh_next, out=dh)  # δh_t = ∂L/∂h_t: from the output and from step t+1
            np.multiply(dh, dc_dh[t], out=dc)
            dc += dc_next  # δc_t
            np.multiply(dc_dz[t, :, :3], dc[:, None, :], out=dz[t, :, :3])  # δz_i, δz_f, δz_g
            np.multiply(dh, dc_dz[t, :, 3], out=dz[t, :, 3])  # δz_o
            np.multiply(dc, f[t], out=dc_next)  # δc_{t-1} = δc_t ⊙ f_t
            np.dot(dz[t].reshape(B, 4 * H), W_hh_T, out=dh_next)  # δh_{t-1} through W_hhᵀ: (B, H)
            if pads[t] is not None:  # padding carried h and c: their δ pass straight through
                np.copyto(dh_next, dh, where=pads[t])
                np.copyto(dc_next, dc, where=pads[t])
        self.grad_h0, self.grad_c0 = dh_next, dc_next
        return self.weight_grads(hs[:-1], dz)

    def forward_cache(self) -> dict[str, Array]:
        """Copies of the last forward's per-step values: ``gates`` ``(T, B, 4H)`` (i, f, g, o after
        their nonlinearities) and ``c`` ``(T+1, B, H)`` (``c[0] = c0``)."""
        if self._x is None:
            raise ShapeError("LSTM.forward_cache read before forward: run forward first")
        T, B = self._x.shape[:2]
        return {"gates": self._work["gates"].reshape(T, B, -1).copy(), "c": self._work["cs"].copy()}

    @property
    def grad_a(self) -> Array:
        """``δz_t = ∂L/∂z_t`` of the packed gate pre-activations ``(T, B, 4H)`` after ``backward``."""
        dz = self.cached("dz", "backward")
        return dz.reshape(dz.shape[0], dz.shape[1], -1).copy()

    # --- explain: the gate equations, and each gate's share of δz ------------------------------
    def explain_forward(self, ex: Explanation, at: Step) -> None:
        """``z_t``, its gates ``i, f, g, o = σ, σ, tanh, σ``, ``c_t`` and ``h_t``, step by step."""
        (T, B, I), H = at.x.shape, self.hidden_size
        gates, c = (self.forward_cache()[k] for k in ("gates", "c"))
        z_, c_, bh = numbered("z", at.v), numbered("c", at.v), shape((B, H))
        hs = self.explain_start(ex, at)
        ex.forward.append(Line(f"{c_}_0", "0" if self.c0 is None else "given c0", bh, c[0]))
        shapes = f"{shape((B, I))}@{shape((I, 4 * H))} + {bh}@{shape((H, 4 * H))} -> {shape((B, 4 * H))}"
        for t in range(1, T + 1):
            z = (
                at.x[t - 1] @ self.params["W_ih"]
                + hs[t - 1] @ self.params["W_hh"]
                + self.params.get("b", 0.0)
            )
            rhs = f"{at.u}_{t} @ W_ih + {at.v}_{t - 1} @ W_hh" + (" + b" if self.bias else "")
            ex.forward.append(Line(f"{z_}_{t}", rhs, shapes + ", blocks [i|f|g|o]", z))
            act = np.concatenate(
                [sigmoid(z[:, : 2 * H]), np.tanh(z[:, 2 * H : 3 * H]), sigmoid(z[:, 3 * H :])], 1
            )
            rhs = f"σ, σ, tanh, σ of {z_}_{t}'s blocks"
            ex.forward.append(Line(f"{numbered('i,f,g,o', at.v)}_{t}", rhs, f"4×{bh}", gates[t - 1]))
            ex.identities.append(("LSTM gates = σ/tanh(z)", act, gates[t - 1]))
            i, f, g, o = np.split(gates[t - 1], 4, axis=1)
            ex.forward.append(Line(f"{c_}_{t}", f"f ⊙ {c_}_{t - 1} + i ⊙ g", f"{bh} -> {bh}", c[t]))
            ex.identities.append(("c_t = f ⊙ c_{t-1} + i ⊙ g", f * c[t - 1] + i * g, c[t]))
            ex.forward.append(Line(f"{at.v}_{t}", f"o ⊙ tanh({c_}_{t})", f"{bh} -> {bh}", hs[t]))
            ex.identities.append(("h_t = o ⊙ tanh(c_t)", o * np.tanh(c[t]), hs[t]))

    def explain_backward(self, ex: Explanation, at: Step) -> None:
        """From ``t = T`` down: ``δh_t``, ``δc_t``, ``δz_t``; then ``δh_0``, ``δc_0``, ``δu_t``, the sums."""
        T, B, _ = at.x.shape
        dz, f = self.grad_a, self.forward_cache()["gates"][:, :, self.hidden_size : 2 * self.hidden_size]
        v, c_, bh = at.v, numbered("c", at.v), shape((B, self.hidden_size))
        dc = np.zeros((B, self.hidden_size))
        for t in range(T, 0, -1):
            dc = self._explain_step(ex, at, t, dz, dc * f[t] if t < T else dc)
        dh0 = dz[0] @ self.params["W_hh"].T
        ex.backward.append(Line(f"δ{v}_0", "(the same rule, one step before the first)", bh, dh0))
        assert self.grad_h0 is not None and self.grad_c0 is not None
        ex.identities.append(("δh_0", dh0, self.grad_h0))
        ex.backward.append(Line(f"δ{c_}_0", f"δ{c_}_1 ⊙ f_1", bh, dc * f[0]))
        ex.identities.append(("δc_0 = δc_1 ⊙ f_1", dc * f[0], self.grad_c0))
        z_ = f"δ{numbered('z', v)}"
        ex.gradients[0:0] = self.explain_sums(ex, at, (z_, dz), (z_, dz))

    def _explain_step(self, ex: Explanation, at: Step, t: int, dz: Array, dc_later: Array) -> Array:
        """Step ``t`` of BPTT, given ``δz_{t+1}`` in ``dz`` and ``δc_{t+1} ⊙ f_{t+1}``; returns ``δc_t``."""
        T, B, _ = at.x.shape
        H, v, c_, z_, bh = (
            self.hidden_size,
            at.v,
            numbered("c", at.v),
            numbered("z", at.v),
            shape((B, self.hidden_size)),
        )
        gates, c = (self.forward_cache()[k] for k in ("gates", "c"))
        i, f, g, o = np.split(gates[t - 1], 4, axis=1)
        dh = at.grad_y[t - 1] + (dz[t] @ self.params["W_hh"].T if t < T else 0.0)
        via = "" if t == T else f" + δ{z_}_{t + 1} @ W_hhᵀ"
        ex.backward.append(Line(f"δ{v}_{t}", f"∂L/∂{v}_{t} from its output{via}", bh, dh))
        tc = np.tanh(c[t])
        dc = dh * o * (1 - tc * tc) + dc_later
        via = "" if t == T else f" + δ{c_}_{t + 1} ⊙ f_{t + 1}"
        ex.backward.append(Line(f"δ{c_}_{t}", f"δ{v}_{t} ⊙ o ⊙ (1 - tanh²{c_}_{t}){via}", bh, dc))
        shares = [
            dc * g * i * (1 - i),
            dc * c[t - 1] * f * (1 - f),
            dc * i * (1 - g * g),
            dh * tc * o * (1 - o),
        ]
        rhs = "[δc ⊙ g ⊙ i(1-i) | δc ⊙ c_{t-1} ⊙ f(1-f) | δc ⊙ i ⊙ (1-g²) | δh ⊙ tanh(c) ⊙ o(1-o)]"
        ex.backward.append(Line(f"δ{z_}_{t}", rhs, f"4×{bh} -> {shape((B, 4 * H))}", dz[t - 1]))
        ex.identities.append(("δz_t: each gate's share", np.concatenate(shares, 1), dz[t - 1]))
        return dc
