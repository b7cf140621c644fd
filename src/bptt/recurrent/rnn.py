"""RNN: the Elman cell ``h_t = act(x_t @ W_ih + h_{t-1} @ W_hh + b)`` and its BPTT loop."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .._types import Array
from ..explanation import Explanation, Line, Mistake, Step, as_factor, numbered, shape, try_product
from ..functional import ACTIVATIONS, torch_activation
from ..layers import State, register_layer
from . import rnn_kernels
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

    The NumPy loops of ``_steps`` and ``backward`` are the reference. Without padding they run
    as ``rnn_kernels``' compiled loops (numba: one call for all steps while ``B·H²`` is small,
    else one call a step besides the matmul; the same buffers, agreeing to round-off) where a
    forward is large enough to repay compiling (``compiling_pays``). ``BPTT_BACKEND=numpy`` in
    the environment forces the NumPy loops, ``BPTT_BACKEND=numba`` the compiled ones.
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
        """``input_size``, ``hidden_size``, ``activation``, ``bias``, ``stateful`` and the dtype."""
        base = super().config()
        return {k: base[k] for k in ("input_size", "hidden_size")} | {"activation": self.activation} | base

    @property
    def grad_a(self) -> Array:
        """``δa_t = ∂L/∂a_t`` for every step ``(T, B, H)`` after ``backward``, as a fresh copy.

        ``a_t`` is the pre-activation; ``∂L/∂h_{t-1}`` through the recurrence is
        ``δa_t @ W_hhᵀ``. This is the per-step δ that BPTT sums into ``dW = Σ_t input_tᵀ δa_t``.
        """
        return self.cached("da", "backward").copy()

    _lent = False  # whether the cache "da" is a grad_y handed over (Layer._backward's own)

    def _let_go(self) -> None:
        """Forget the last backward's δa if it lives in a gradient ``Sequential`` handed over."""
        if self._lent:
            del self._work["da"]
            self._lent = False

    def compiling_pays(self, T: int, B: int) -> bool:
        """Whether the recurrence does at least ``rnn_kernels.COMPILE_WORK`` multiply-adds (``T·B·H²``).

        Below that a process rarely runs enough such forwards for the compiled loops to repay
        numba's import (0.3 s) and their first compile (0.8 s a dtype, then cached on disk): the
        adder ``bptt train`` trains in 0.05 s would take 0.35 s. ``BPTT_BACKEND=numba`` compiles
        any size.
        """
        return T * B * self.hidden_size**2 >= rnn_kernels.COMPILE_WORK

    def _steps(self, x: Array, start: State) -> Array:
        T, B = x.shape[:2]  # x: (T, B, I), or ids (T, B)
        H, act = self.hidden_size, ACTIVATIONS[self.activation].fn
        W_hh = self.params["W_hh"]
        self._let_go()
        hs = self.buffer("hs", (T + 1, B, H))
        hs[0] = start.h
        self.project(x, hs[1:])  # x_t W_ih + b for every step: only the recurrence is sequential
        if self.compiled(T, B):  # the loop below, compiled (rnn_kernels)
            rnn_kernels.forward(hs, W_hh, self.activation)
            return hs
        buf = np.empty((B, H), self.dtype)
        for (h_prev, h), pad in zip(pairwise(list(hs)), self.step_pads(T), strict=True):  # 3 calls per step
            np.dot(h_prev, W_hh, out=buf)  # h_{t-1} W_hh: (B, H)
            h += buf  # a_t = x_t W_ih + b + h_{t-1} W_hh
            act(h, out=h)  # h_t = act(a_t)
            if pad is not None:
                np.copyto(h, h_prev, where=pad)  # padding: h_t = h_{t-1}
        return hs

    def torch_forward(self, torch: Any, x: Any, params: Mapping[str, Any], state: State | None = None) -> Any:
        """``h_t = act(x_t W_ih + h_{t-1} W_hh + b)`` on tensors, one step at a time."""
        act, h = torch_activation(torch, self.activation), self.torch_state(torch, x, state).h
        hs = []
        for x_t in x:
            a = x_t @ params["W_ih"] + h @ params["W_hh"]
            h = act(a + params["b"] if self.bias else a)
            hs.append(h)
        return torch.stack(hs)  # (T, B, H)

    def torch_options(self) -> dict[str, Any]:
        """``nonlinearity``: ``nn.RNN`` has only tanh and relu, so other activations raise ``ValueError``."""
        if self.activation not in ("tanh", "relu"):
            raise ValueError(
                f"an RNN with activation {self.activation!r}; torch.nn.RNN has only 'tanh' and 'relu'"
            )
        return {"nonlinearity": self.activation}

    @classmethod
    def config_from_torch(cls, module: Any) -> dict[str, Any]:
        """What an ``nn.RNN`` adds to the shared recurrent config: its ``nonlinearity`` as ``activation``."""
        return {"activation": module.nonlinearity}

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, H) -> grad_x (T, B, I)``; fills ``grads`` and ``grad_h0 (B, H)``.

        ``δa_t = (∂L/∂h_t + δa_{t+1} @ W_hhᵀ) ⊙ act'(a_t)``, from ``t = T`` down to 1.
        """
        g = self._check_grad(grad_y, self.dtype)
        assert self._x is not None
        T, B = self._x.shape[:2]
        H, dact = self.hidden_size, ACTIVATIONS[self.activation].grad
        hs = self._work["hs"]
        self._let_go()  # a handed-over δa is never the buffer below, which may be this grad_y
        if self.compiled(T, B):  # the loop below, compiled (rnn_kernels)
            self._lent = self._own and g is grad_y and g.flags.c_contiguous and g.flags.writeable
            da = self._work["da"] = g if self._lent else self.buffer("da", (T, B, H))  # (T, B, H)
            self.grad_h0 = rnn_kernels.backward(g, hs, self.params["W_hh"], da, self.activation)
            return self.weight_grads(hs[:-1], da)
        W_hh_T = np.ascontiguousarray(self.params["W_hh"].T)  # (H, H)
        da = dact(hs[1:], out=self.buffer("da", (T, B, H)))  # act'(a_t), all steps; becomes δa_t
        g = self.drop_padding(g, da)  # padding: no output gradient, δa_t = 0
        dh_next = np.zeros((B, H), self.dtype)  # ∂L/∂h_t through step t+1
        dh = np.empty((B, H), self.dtype)
        for g_t, da_t, pad in zip(g[::-1], da[::-1], self.step_pads(T)[::-1], strict=True):  # t = T..1
            np.add(g_t, dh_next, out=dh)  # ∂L/∂h_t: from the output and from step t+1
            da_t *= dh  # δa_t = ∂L/∂h_t ⊙ act'(a_t): (B, H)
            np.dot(da_t, W_hh_T, out=dh_next)  # ∂L/∂h_{t-1} through W_hhᵀ: (B, H)
            if pad is not None:
                np.copyto(dh_next, dh, where=pad)  # padding carried h_{t-1}: ∂L/∂h_{t-1} = ∂L/∂h_t
        self.grad_h0 = dh_next
        return self.weight_grads(hs[:-1], da)

    # --- explain: a_t, h_t, and BPTT's δa_t step by step ---------------------------------------
    def explain_forward(self, ex: Explanation, at: Step) -> None:
        """``a_t = u_t @ W_ih + h_{t-1} @ W_hh + b`` and ``h_t = act(a_t)``, step by step."""
        W_ih, W_hh, b = self.params["W_ih"], self.params["W_hh"], self.params.get("b", 0.0)
        (T, B, I), H, a, act = at.x.shape, self.hidden_size, numbered("a", at.v), self.activation
        hs = self.explain_start(ex, at)
        shapes = f"{shape((B, I))}@{shape((I, H))} + {shape((B, H))}@{shape((H, H))}"
        shapes += (f" + {shape((H,))}" if self.bias else "") + f" -> {shape((B, H))}"
        for t in range(1, T + 1):
            a_t = at.x[t - 1] @ W_ih + hs[t - 1] @ W_hh + b
            rhs = f"{at.u}_{t} @ W_ih + {at.v}_{t - 1} @ W_hh" + (" + b" if self.bias else "")
            ex.forward.append(Line(f"{a}_{t}", rhs, shapes, a_t))
            rhs = f"{a}_{t}  (identity)" if act == "identity" else f"{act}({a}_{t})"
            ex.forward.append(Line(f"{at.v}_{t}", rhs, shape((B, H)), hs[t]))
            ex.identities.append((f"{at.v}_{t} = {act}({a}_{t})", ACTIVATIONS[act].fn(a_t.copy()), hs[t]))

    def explain_backward(self, ex: Explanation, at: Step) -> None:
        """From ``t = T`` down: ``δh_t``, ``δa_t = δh_t ⊙ act'``; then ``δh_0``, ``δu_t`` and the sums."""
        T, B, _ = at.x.shape
        H, W_hh, v, a = self.hidden_size, self.params["W_hh"], at.v, numbered("a", at.v)
        da, dact, hs = self.grad_a, ACTIVATIONS[self.activation], self.explain_states(at)
        bh, hh = shape((B, H)), shape((H, H))
        for t in range(T, 0, -1):
            if t == T:
                dh = at.grad_y[t - 1]
                ex.backward.append(
                    Line(f"δ{v}_{t}", f"∂L/∂{v}_{t} from its output (no step {T + 1})", bh, dh)
                )
            else:
                dh = at.grad_y[t - 1] + da[t] @ W_hh.T
                rhs = f"∂L/∂{v}_{t} from its output + δ{a}_{t + 1} @ W_hhᵀ from step {t + 1}"
                ex.backward.append(Line(f"δ{v}_{t}", rhs, f"{bh} + {bh}@{hh} -> {bh}", dh))
            rhs = f"δ{v}_{t} ⊙ " + as_factor(dact.formula.replace("y", f"{v}_{t}"))
            ex.backward.append(Line(f"δ{a}_{t}", rhs, f"{bh} ⊙ {bh} -> {bh}", da[t - 1]))
            ex.identities.append((f"δ{a}_t = δ{v}_t ⊙ act'", dh * dact.grad(hs[t]), da[t - 1]))
        assert self.grad_h0 is not None
        ex.backward.append(Line(f"δ{v}_0", f"δ{a}_1 @ W_hhᵀ", f"{bh}@{hh} -> {bh}", self.grad_h0))
        ex.identities.append((f"δ{v}_0 = δ{a}_1 @ W_hhᵀ", da[0] @ W_hh.T, self.grad_h0))
        ex.gradients[0:0] = self.explain_sums(ex, at, (f"δ{a}", da), (f"δ{a}", da))

    def explain_mistakes(self, at: Step, later: list[Step]) -> list[Mistake]:
        """The products a learner writes instead at step T's BPTT, each evaluated with NumPy."""
        T, u, a = at.x.shape[0], at.u, numbered("a", at.v)
        da_T, x_T = self.grad_a[-1], at.x[-1]
        W_ih, W_hh = self.params["W_ih"], self.params["W_hh"]
        dW_ih = np.zeros_like(W_ih)
        found = [
            try_product(
                f"δ{a}_{T} @ W_hh",
                "forgot the transpose: W_hh is square, so no error warns you",
                np.matmul,
                da_T,
                W_hh,
                expect=da_T @ W_hh.T,
            ),
            try_product(f"W_hh @ δ{a}_{T}", "multiplied on the wrong side", np.matmul, W_hh, da_T),
            try_product(
                f"δ{a}_{T} @ W_ih", "forgot the transpose of the input weight", np.matmul, da_T, W_ih
            ),
            try_product(
                f"{u}_{T} @ δ{a}_{T}",
                f"inner product instead of the outer product {u}ᵀ·δ",
                np.matmul,
                x_T,
                da_T,
            ),
            try_product(
                f"dW_ih += δ{a}_{T}ᵀ·{u}_{T}",
                "outer product the wrong way round: (H, I), not (I, H)",
                lambda d, x: np.add(dW_ih, d.T @ x),
                da_T,
                x_T,
            ),
        ]
        dense = next((s for s in later if "W" in s.params), None)  # a later layer's δ, as in the seed
        if dense is not None:
            why = "the seed's mistake: another layer's δ against a whole weight"
            found.append(try_product(f"δ{dense.v} @ W_hh", why, np.matmul, dense.grad_y[-1], W_hh))
        return found
