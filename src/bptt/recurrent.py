"""Recurrent layers: RNN, LSTM, GRU, and Bidirectional around any of them.

Each cell has one BPTT loop. Around it, everything that is not sequential is vectorized over all
steps: the input projections ``x @ W_ih`` are one matmul before the loop; the derivatives of the
gate nonlinearities, which depend only on forward values, are computed for every step at once
before the backward loop; and each weight gradient is one ``(T·B, in)ᵀ @ (T·B, out)`` matmul after
it. Gates are packed in PyTorch's order (LSTM ``i, f, g, o``; GRU ``r, z, n``) so weights map onto
``torch.nn`` by a transpose (see ``bptt.bridge``).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from ._types import Array
from ._validate import as_array, check_same_shape, check_sequence, positive_int, weight_rng
from .errors import ShapeError
from .functional import ACTIVATIONS, column_sums, sigmoid
from .layers import Layer, _Weighted

__all__ = ["GRU", "LSTM", "RNN", "Bidirectional"]


class _Recurrent(_Weighted):
    """Shared plumbing: weights ``W_ih (I, G·H)``, ``W_hh (H, G·H)``, ``b (G·H,)``, initial states.

    ``state_names`` lists the initial-state attributes (``h0``; LSTM adds ``c0``). Each is ``None``
    (zeros) or an array ``(B, H)``; after ``backward``, ``grad_h0`` (and ``grad_c0``) hold their
    gradients. With ``stateful=True`` each forward leaves its last states there for the next call.
    """

    out_letters = "(T, B, H)"
    state_names: tuple[str, ...] = ("h0",)
    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        stateful: bool = False,
        rng: np.random.Generator | int | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype, rng)
        name = type(self).__name__
        self.input_size = positive_int(input_size, name, "input_size")
        self.hidden_size = positive_int(hidden_size, name, "hidden_size")
        self.bias, self.stateful = bool(bias), bool(stateful)
        I, H, G = self.input_size, self.hidden_size, self.gates
        k = 1.0 / np.sqrt(H)
        self._add_param("W_ih", self._uniform(k, (I, G * H)))
        self._add_param("W_hh", self._uniform(k, (H, G * H)))
        if self.bias:
            self._add_param("b", self._uniform(k, (G * H,)))
            self._add_recurrent_biases(k)
        for state in self.state_names:
            setattr(self, state, None)
            setattr(self, f"grad_{state}", None)
        self._x: Array | None = None
        self._work: dict[str, Array] = {}  # forward caches and backward buffers, reused across calls

    def _add_recurrent_biases(self, k: float) -> None:
        """Biases beyond ``b`` (none here; GRU's ``b_hn``)."""

    def config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "bias": self.bias,
            "stateful": self.stateful,
        }

    def state_after(self, step: int) -> dict[str, Array]:
        """The states after ``step`` steps of the last forward (0: its initial states), keyed like
        ``state_names`` so they can be set back: ``for k, v in s.items(): setattr(layer, k, v)``.

        Truncated BPTT restarts a window from such a state, cut off from the graph before it."""
        if self._x is None or not 0 <= step <= self._x.shape[0]:
            raise ValueError(f"{type(self).__name__}.state_after: step must be in 0..T of the last forward")
        buffers = {"h0": "hs", "c0": "cs"}
        return {name: self._work[buffers[name]][step].copy() for name in self.state_names}

    def reset_state(self) -> None:
        """Forget the carried states: the next ``forward`` starts from zeros."""
        for state in self.state_names:
            setattr(self, state, None)

    def initial_state(self, batch: int, name: str = "h0") -> Array:
        """The initial state ``name`` checked against the batch size, or zeros ``(B, H)``."""
        shape = (batch, self.hidden_size)
        given = getattr(self, name)
        if given is None:
            return np.zeros(shape, self.dtype)
        where = f"{type(self).__name__}.forward"
        state = as_array(given, self.dtype, where, name)
        check_same_shape(state, shape, where, name, "(B, H)", "one initial state per sequence in x")
        return state

    def forward(self, x: Array) -> Array:
        """``x (T, B, I) -> h (T, B, H)``, the hidden state after every step."""
        return self._forward(x, share=False)

    def _input(self, x: Array) -> tuple[Array, int, int, int]:
        where = f"{type(self).__name__}.forward"
        x = as_array(x, self.dtype, where, "x")
        T, B, I = check_sequence(x, where, "x", "(T, B, I)", self.input_size)
        return x, T, B, I

    def _project(self, x: Array, out: Array) -> None:
        """All input projections at once: ``x @ W_ih + b`` into ``out (T, B, G·H)``."""
        T, B, I = x.shape
        flat = out.reshape(T * B, -1)
        np.dot(x.reshape(T * B, I), self.params["W_ih"], out=flat)  # (T·B, G·H)
        if self.bias:
            flat += self.params["b"]

    def _finish_forward(self, x: Array, hs: Array, share: bool, **last: Array) -> Array:
        T, B = x.shape[:2]
        self._x, self._out_shape = x, (T, B, self.hidden_size)
        if self.stateful:
            for name, value in last.items():
                setattr(self, name, value.copy())
        return hs[1:] if share else hs[1:].copy()  # (T, B, H)

    def _weight_grads(self, inputs_hh: Array, d: Array) -> Array:
        """``dW_ih``, ``dW_hh``, ``db`` from the per-step δ of the pre-activations; returns ``grad_x``."""
        x = self._x
        assert x is not None
        T, B, I = x.shape
        d2 = d.reshape(T * B, -1)  # (T·B, G·H)
        np.dot(x.reshape(T * B, I).T, d2, out=self.grads["W_ih"])  # Σ x_tᵀ δ_t: (I, G·H)
        np.dot(inputs_hh.reshape(T * B, -1).T, d2, out=self.grads["W_hh"])  # Σ h_{t-1}ᵀ δ_t: (H, G·H)
        if self.bias:
            column_sums(d2, out=self.grads["b"])  # (G·H,)
        return (d2 @ self.params["W_ih"].T).reshape(T, B, I)  # (T, B, I)

    def _buffer(self, name: str, shape: tuple[int, ...]) -> Array:
        """A cache array reused across calls while its shape and dtype stay the same."""
        buf = self._work.get(name)
        if buf is None or buf.shape != shape or buf.dtype != self.dtype:
            buf = self._work[name] = np.empty(shape, self.dtype)
        return buf


class RNN(_Recurrent):
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
        ``reset_state()`` clears it.

    Notes
    -----
    ``torch.nn.RNN`` maps onto this layer as ``weight_ih_l0 = W_ihᵀ``, ``weight_hh_l0 = W_hhᵀ``,
    ``bias_ih_l0 = b`` and ``bias_hh_l0 = 0``.
    """

    h0: Array | None
    grad_h0: Array | None

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
        da = self._work.get("da")
        if da is None or self.grad_h0 is None:
            raise ShapeError("RNN.grad_a read before backward: run forward and backward first")
        return da.copy()

    def _forward(self, x: Array, share: bool) -> Array:
        x, T, B, _ = self._input(x)
        H, f = self.hidden_size, ACTIVATIONS[self.activation].fn
        W_hh = self.params["W_hh"]
        h0 = self.initial_state(B)  # checked before any cache is touched
        hs = self._buffer("hs", (T + 1, B, H))
        hs[0] = h0
        self._project(x, hs[1:])  # only the recurrence is sequential
        steps, buf = list(hs), np.empty((B, H), self.dtype)
        for h_prev, h in pairwise(steps):  # 3 NumPy calls per step
            np.dot(h_prev, W_hh, out=buf)  # h_{t-1} W_hh: (B, H)
            h += buf  # a_t = x_t W_ih + b + h_{t-1} W_hh
            f(h, out=h)  # h_t = act(a_t)
        return self._finish_forward(x, hs, share, h0=hs[T])

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
        da = dact(hs[1:], out=self._buffer("da", (T, B, H)))  # act'(a_t), all steps; becomes δa_t
        dh_next = np.zeros((B, H), self.dtype)  # ∂L/∂h_t through step t+1
        dh = np.empty((B, H), self.dtype)
        for g_t, da_t in zip(g[::-1], da[::-1], strict=True):  # t = T..1; 3 NumPy calls per step
            np.add(g_t, dh_next, out=dh)  # ∂L/∂h_t: from the output and from step t+1
            da_t *= dh  # δa_t = ∂L/∂h_t ⊙ act'(a_t): (B, H)
            np.dot(da_t, W_hh_T, out=dh_next)  # ∂L/∂h_{t-1} through W_hhᵀ: (B, H)
        self.grad_h0 = dh_next
        return self._weight_grads(hs[:-1], da)


class LSTM(_Recurrent):
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
    """

    state_names = ("h0", "c0")
    gates = 4
    h0: Array | None
    c0: Array | None
    grad_h0: Array | None
    grad_c0: Array | None

    def _forward(self, x: Array, share: bool) -> Array:
        x, T, B, _ = self._input(x)
        H = self.hidden_size
        W_hh = self.params["W_hh"]
        h0, c0 = self.initial_state(B, "h0"), self.initial_state(B, "c0")
        hs, cs = self._buffer("hs", (T + 1, B, H)), self._buffer("cs", (T + 1, B, H))
        gates = self._buffer("gates", (T, B, 4, H))  # pre-activations, then i, f, g, o
        tanh_c = self._buffer("tanh_c", (T, B, H))
        hs[0], cs[0] = h0, c0
        self._project(x, gates)
        buf, ig = np.empty((B, 4, H), self.dtype), np.empty((B, H), self.dtype)
        g = np.empty((B, H), self.dtype)
        for t in range(T):  # 14 NumPy calls per step
            z = gates[t]  # (B, 4, H)
            np.dot(hs[t], W_hh, out=buf.reshape(B, 4 * H))
            z += buf  # z_t = x_t W_ih + b + h_{t-1} W_hh
            np.tanh(z[:, 2], out=g)
            sigmoid(z, out=z)  # i, f, o = σ(z): one call over the block, its g column then replaced
            z[:, 2] = g  # g = tanh(z_g)
            np.multiply(z[:, 1], cs[t], out=cs[t + 1])  # f ⊙ c_{t-1}
            np.multiply(z[:, 0], z[:, 2], out=ig)  # i ⊙ g
            cs[t + 1] += ig  # c_t
            np.tanh(cs[t + 1], out=tanh_c[t])
            np.multiply(z[:, 3], tanh_c[t], out=hs[t + 1])  # h_t = o ⊙ tanh(c_t)
        return self._finish_forward(x, hs, share, h0=hs[T], c0=cs[T])

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, H) -> grad_x (T, B, I)``; fills ``grads``, ``grad_h0`` and ``grad_c0``.

        With ``δh_t = ∂L/∂h_t + δz_{t+1} @ W_hhᵀ`` and
        ``δc_t = δc_{t+1} ⊙ f_{t+1} + δh_t ⊙ o ⊙ (1 - tanh²c_t)``, the gate δs are
        ``δz_i = δc ⊙ g ⊙ i(1-i)``, ``δz_f = δc ⊙ c_{t-1} ⊙ f(1-f)``, ``δz_g = δc ⊙ i ⊙ (1-g²)``,
        ``δz_o = δh ⊙ tanh(c_t) ⊙ o(1-o)``.
        """
        g = self._check_grad(grad_y, self.dtype)
        assert self._x is not None
        T, B, _ = self._x.shape
        H = self.hidden_size
        hs, cs, gates, tanh_c = (self._work[k] for k in ("hs", "cs", "gates", "tanh_c"))
        i, f, gg, o = (gates[:, :, k] for k in range(4))  # (T, B, H) views
        # Factors that depend only on the forward pass, for every step at once.
        F = self._buffer("factors", (T, B, 4, H))  # [i, f, g, o] factors of δc (δh for o)
        F_c = self._buffer("factor_c", (T, B, H))  # δc_t gets δh_t ⊙ F_c
        _dsig_times(i, gg, out=F[:, :, 0])  # g ⊙ i(1-i)
        _dsig_times(f, cs[:-1], out=F[:, :, 1])  # c_{t-1} ⊙ f(1-f)
        np.multiply(gg, gg, out=F[:, :, 2])
        np.subtract(1.0, F[:, :, 2], out=F[:, :, 2])
        F[:, :, 2] *= i  # i ⊙ (1-g²)
        _dsig_times(o, tanh_c, out=F[:, :, 3])  # tanh(c_t) ⊙ o(1-o)
        np.multiply(tanh_c, tanh_c, out=F_c)
        np.subtract(1.0, F_c, out=F_c)
        F_c *= o  # o ⊙ (1 - tanh²c_t)

        dz = self._buffer("dz", (T, B, 4, H))  # δz_t for every step
        W_hh_T = np.ascontiguousarray(self.params["W_hh"].T)  # (4H, H)
        dh_next, dc_next = np.zeros((B, H), self.dtype), np.zeros((B, H), self.dtype)
        dh, dc = np.empty((B, H), self.dtype), np.empty((B, H), self.dtype)
        for t in range(T - 1, -1, -1):  # 7 NumPy calls per step
            np.add(g[t], dh_next, out=dh)  # ∂L/∂h_t
            np.multiply(dh, F_c[t], out=dc)
            dc += dc_next  # ∂L/∂c_t
            np.multiply(F[t, :, :3], dc[:, None, :], out=dz[t, :, :3])  # δz_i, δz_f, δz_g
            np.multiply(dh, F[t, :, 3], out=dz[t, :, 3])  # δz_o
            np.multiply(dc, f[t], out=dc_next)  # ∂L/∂c_{t-1}
            np.dot(dz[t].reshape(B, 4 * H), W_hh_T, out=dh_next)  # ∂L/∂h_{t-1}: (B, H)
        self.grad_h0, self.grad_c0 = dh_next, dc_next
        return self._weight_grads(hs[:-1], dz)

    def forward_cache(self) -> dict[str, Array]:
        """Copies of the last forward's per-step values: ``gates`` ``(T, B, 4H)`` (i, f, g, o after
        their nonlinearities) and ``c`` ``(T+1, B, H)`` (``c[0] = c0``)."""
        if self._x is None:
            raise ShapeError("LSTM.forward_cache read before forward: run forward first")
        T, B = self._x.shape[:2]
        gates = self._work["gates"]
        return {"gates": gates.reshape(T, B, -1).copy(), "c": self._work["cs"].copy()}

    @property
    def grad_a(self) -> Array:
        """``δz_t = ∂L/∂z_t`` of the packed gate pre-activations ``(T, B, 4H)`` after ``backward``."""
        dz = self._work.get("dz")
        if dz is None or self.grad_h0 is None:
            raise ShapeError("LSTM.grad_a read before backward: run forward and backward first")
        T, B = dz.shape[:2]
        return dz.reshape(T, B, -1).copy()


def _dsig_times(y: Array, other: Array, out: Array) -> Array:
    """``other ⊙ y(1 - y)`` into ``out`` (which must not be ``other``): σ' from its output, times a factor."""
    np.subtract(1.0, y, out=out)
    out *= y
    out *= other
    return out


class GRU(_Recurrent):
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
    h0: Array | None
    grad_h0: Array | None

    def _add_recurrent_biases(self, k: float) -> None:
        self._add_param("b_hn", self._uniform(k, (self.hidden_size,)))

    def _forward(self, x: Array, share: bool) -> Array:
        x, T, B, _ = self._input(x)
        H = self.hidden_size
        W_hh = self.params["W_hh"]
        h0 = self.initial_state(B)
        hs = self._buffer("hs", (T + 1, B, H))
        A = self._buffer("A", (T, B, 3, H))  # input parts, then r, z, n
        R = self._buffer("R", (T, B, 3, H))  # recurrent parts h W_hh (+ b_hn for n)
        hs[0] = h0
        self._project(x, A)
        tmp = np.empty((B, H), self.dtype)
        for t in range(T):  # 13 NumPy calls per step
            np.dot(hs[t], W_hh, out=R[t].reshape(B, 3 * H))
            if self.bias:
                R[t, :, 2] += self.params["b_hn"]
            rz = A[t, :, :2]
            rz += R[t, :, :2]
            sigmoid(rz, out=rz)  # r, z
            n = A[t, :, 2]
            np.multiply(A[t, :, 0], R[t, :, 2], out=tmp)  # r ⊙ (h W_hn + b_hn)
            n += tmp
            np.tanh(n, out=n)
            np.subtract(hs[t], n, out=hs[t + 1])
            hs[t + 1] *= A[t, :, 1]
            hs[t + 1] += n  # h_t = n + z ⊙ (h_{t-1} - n)
        return self._finish_forward(x, hs, share, h0=hs[T])

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, H) -> grad_x (T, B, I)``; fills ``grads`` and ``grad_h0``.

        With ``δh_t = ∂L/∂h_t + (from step t+1)``: ``δn̂ = δh ⊙ (1-z) ⊙ (1-n²)`` (n's
        pre-activation), ``δẑ = δh ⊙ (h_{t-1} - n) ⊙ z(1-z)``, ``δr̂ = δn̂ ⊙ (h W_hn + b_hn) ⊙
        r(1-r)``, and the recurrent n part gets ``δn̂ ⊙ r``. Then
        ``δh_{t-1} = δh ⊙ z + [δr̂, δẑ, δn̂ ⊙ r] @ W_hhᵀ``.
        """
        g = self._check_grad(grad_y, self.dtype)
        assert self._x is not None
        x = self._x
        T, B, I = x.shape
        H = self.hidden_size
        hs, A, R = (self._work[k] for k in ("hs", "A", "R"))
        r, z, n = (A[:, :, k] for k in range(3))
        F = self._buffer("factors", (T, B, 3, H))
        _dsig_times(r, R[:, :, 2], out=F[:, :, 0])  # (h W_hn + b_hn) ⊙ r(1-r)
        _dsig_times(z, np.subtract(hs[:-1], n), out=F[:, :, 1])  # (h_{t-1} - n) ⊙ z(1-z)
        np.multiply(n, n, out=F[:, :, 2])
        np.subtract(1.0, F[:, :, 2], out=F[:, :, 2])
        F[:, :, 2] *= np.subtract(1.0, z)  # (1-z) ⊙ (1-n²)

        dR = self._buffer("dR", (T, B, 3, H))  # δ of the recurrent pre-activations [r, z, n]
        dn = self._buffer("dn", (T, B, H))  # δ of n's input pre-activation
        W_hh_T = np.ascontiguousarray(self.params["W_hh"].T)  # (3H, H)
        dh_next, dh, carry = (np.zeros((B, H), self.dtype) for _ in range(3))
        for t in range(T - 1, -1, -1):  # 8 NumPy calls per step
            np.add(g[t], dh_next, out=dh)  # ∂L/∂h_t
            np.multiply(dh, F[t, :, 2], out=dn[t])  # δn̂
            np.multiply(dh, F[t, :, 1], out=dR[t, :, 1])  # δẑ
            np.multiply(dn[t], F[t, :, 0], out=dR[t, :, 0])  # δr̂
            np.multiply(dn[t], r[t], out=dR[t, :, 2])  # δ of (h W_hn + b_hn)
            np.dot(dR[t].reshape(B, 3 * H), W_hh_T, out=dh_next)
            np.multiply(dh, z[t], out=carry)
            dh_next += carry  # ∂L/∂h_{t-1}: through z directly and through W_hh
        self.grad_h0 = dh_next

        dR2, dn2 = dR.reshape(T * B, 3 * H), dn.reshape(T * B, H)
        x2 = x.reshape(T * B, I)
        W_ih = self.params["W_ih"]
        self.grads["W_ih"][:, : 2 * H] = x2.T @ dR2[:, : 2 * H]  # r, z: input and recurrent δ agree
        self.grads["W_ih"][:, 2 * H :] = x2.T @ dn2
        np.dot(hs[:-1].reshape(T * B, H).T, dR2, out=self.grads["W_hh"])
        if self.bias:
            self.grads["b"][: 2 * H] = column_sums(dR2[:, : 2 * H])
            self.grads["b"][2 * H :] = column_sums(dn2)
            column_sums(dR2[:, 2 * H :], out=self.grads["b_hn"])
        grad_x = dR2[:, : 2 * H] @ W_ih[:, : 2 * H].T
        grad_x += dn2 @ W_ih[:, 2 * H :].T
        return grad_x.reshape(T, B, I)

    def forward_cache(self) -> dict[str, Array]:
        """Copies of the last forward's per-step values: ``gates`` ``(T, B, 3H)`` (r, z, n after
        their nonlinearities) and ``hn`` ``(T, B, H)``, the recurrent term ``h_{t-1} W_hn + b_hn``."""
        if self._x is None:
            raise ShapeError("GRU.forward_cache read before forward: run forward first")
        T, B = self._x.shape[:2]
        return {"gates": self._work["A"].reshape(T, B, -1).copy(), "hn": self._work["R"][:, :, 2].copy()}

    @property
    def grad_a(self) -> Array:
        """δ of the input-side pre-activations ``x W_ih + b`` ``(T, B, 3H)``, ``[r̂ | ẑ | n̂]``."""
        if self.grad_h0 is None:
            raise ShapeError("GRU.grad_a read before backward: run forward and backward first")
        dR, dn = self._work["dR"], self._work["dn"]
        out = dR.copy()
        out[:, :, 2] = dn
        return out.reshape(dR.shape[0], dR.shape[1], -1)

    @property
    def grad_r(self) -> Array:
        """δ of the recurrent pre-activations ``h W_hh (+ b_hn)`` ``(T, B, 3H)``: r̂, ẑ and ``δn̂ ⊙ r``."""
        if self.grad_h0 is None:
            raise ShapeError("GRU.grad_r read before backward: run forward and backward first")
        dR = self._work["dR"]
        return dR.reshape(dR.shape[0], dR.shape[1], -1).copy()


class Bidirectional(Layer):
    """Run ``layer`` forward in time and a copy of it backward in time; concatenate.

    ``(T, B, I) -> (T, B, 2H)``: ``[:, :, :H]`` is the forward direction and ``[:, :, H:]`` the
    backward one (its step t has read ``x_t .. x_T``), as in ``torch.nn`` with
    ``bidirectional=True``.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The forward direction. The backward direction is a new layer with the same configuration
        and its own weights drawn from ``rng``.
    rng : Generator, int or None
        ``None`` is seed 1, so that both directions differ when ``layer`` was built without one.

    Attributes
    ----------
    forward_layer, backward_layer : the two directions (each has its own ``h0`` etc.)
    params, grads : keyed ``"fwd.{name}"`` and ``"bwd.{name}"``
    """

    out_letters = "(T, B, 2H)"

    def __init__(self, layer: Layer, *, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not isinstance(layer, _Recurrent) or layer.stateful:
            raise TypeError(f"Bidirectional: needs a non-stateful RNN, LSTM or GRU, got {layer!r}")
        self.forward_layer = layer
        # Seed 1 by default: a forward layer built without rng has seed 0's weights.
        backward_rng = weight_rng(rng, "Bidirectional", default=1)
        self.backward_layer = type(layer)(**layer.config(), rng=backward_rng, dtype=layer.dtype)
        self.hidden_size = layer.hidden_size
        self.input_size = layer.input_size
        self.dtype = layer.dtype

    @property
    def params(self) -> dict[str, Array]:
        return self._prefixed("params")

    @property
    def grads(self) -> dict[str, Array]:
        return self._prefixed("grads")

    def _prefixed(self, what: str) -> dict[str, Array]:
        out = {}
        for prefix, layer in (("fwd", self.forward_layer), ("bwd", self.backward_layer)):
            out.update({f"{prefix}.{k}": v for k, v in getattr(layer, what).items()})
        return out

    def config(self) -> dict[str, Any]:
        return {"layer": type(self.forward_layer).__name__, **self.forward_layer.config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        kinds = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}
        inner = dict(config)
        kind = inner.pop("layer", None)
        if kind not in kinds:
            raise ValueError(f"Bidirectional: layer must be one of {sorted(kinds)}, got {kind!r}")
        return cls(kinds[kind](**inner))

    def sublayers(self) -> list[tuple[str, Layer]]:
        return [("fwd", self.forward_layer), ("bwd", self.backward_layer)]

    def forward(self, x: Array) -> Array:
        """``x (T, B, I) -> y (T, B, 2H)``."""
        self._out_shape = None  # a forward that fails part-way leaves nothing to differentiate
        ahead = self.forward_layer.forward(x)  # (T, B, H)
        behind = self.backward_layer.forward(np.asarray(x)[::-1])[::-1]  # (T, B, H), in step order
        y = np.concatenate([ahead, behind], axis=2)  # (T, B, 2H)
        self._out_shape = y.shape
        return y

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, 2H) -> grad_x (T, B, I)``, the sum of both directions' ``grad_x``."""
        g = self._check_grad(grad_y, self.dtype)
        H = self.hidden_size
        grad_x = self.forward_layer.backward(g[:, :, :H])
        grad_x += self.backward_layer.backward(np.ascontiguousarray(g[::-1, :, H:]))[::-1]
        return grad_x
