"""What every recurrent cell shares: weights, the explicit state, caches and the weight gradients.

A cell subclass writes only its two loops: ``_steps`` (forward from a start ``State``, filling its
caches) and ``backward`` (the per-step δ, then ``weight_grads``). With ``lengths`` (a padded batch)
both loops take one more call per step, ``np.copyto(new, old, where=pad_t)``: at a padded step
the state is carried unchanged and its δ passes straight through; without ``lengths`` that call
is skipped and the arithmetic is the same as before. Everything that is not
sequential is vectorized over all steps: the input projections ``x @ W_ih + b`` are one matmul
before the loop, and each weight gradient is one ``(T·B, in)ᵀ @ (T·B, out)`` matmul after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._types import Array
from .._validate import as_array, as_ids, check_same_shape, check_sequence, positive_int
from ..errors import ShapeError
from ..explanation import Explanation, GradientSum, Line, Step, bias_sum, outer_sum, shape
from ..functional import column_sums, one_hot
from ..layers import State, Weighted, length_mask
from . import ids_kernels, kernels
from .torch_form import to_torch_rnn

__all__ = ["Recurrent", "dsigmoid_times"]


class Recurrent(Weighted):
    """Base of the recurrent cells: weights ``W_ih (I, G·H)``, ``W_hh (H, G·H)``, ``b (G·H,)``.

    The state is explicit: ``run(x, state)`` starts from a ``State`` (``None``: zeros) and
    returns the one after the last step, touching no attribute. On top of it, ``forward`` starts
    from the attributes ``h0`` (LSTM also ``c0``), each ``None`` (zeros) or ``(B, H)``; after
    ``backward``, ``grad_h0`` (``grad_c0``) hold their gradients (also as ``grad_state``); with
    ``stateful=True`` each ``forward`` leaves its last state there for the next call.

    ``lengths`` ``(B,)`` (each in ``1..T``) marks a padded batch: the steps ``t ≥ lengths[b]``
    change neither the state nor the gradients. The state is carried through them unchanged (so
    the final state is each sequence's last real one), their outputs are zero, and ``backward``
    ignores the upstream gradient there, as torch's ``pack_padded_sequence`` does.
    """

    takes_lengths = True

    out_letters = "(T, B, H)"
    state_names: tuple[str, ...] = ("h0",)
    gates = 1  # G: blocks of H columns in the packed weights
    torch_name = "RNN"  # the torch.nn class with the same equations and gate order
    trajectories: tuple[str, ...] = ("hs",)  # the caches ``(T+1, B, H)`` that ``State`` is read from

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
        self._input_size = positive_int(input_size, name, "input_size")
        self.hidden_size = positive_int(hidden_size, name, "hidden_size")
        self.bias, self.stateful = bool(bias), bool(stateful)
        I, H, G = self._input_size, self.hidden_size, self.gates
        k = 1.0 / np.sqrt(H)
        self._add_param("W_ih", self._uniform(k, (I, G * H)))
        self._add_param("W_hh", self._uniform(k, (H, G * H)))
        if self.bias:
            self._add_param("b", self._uniform(k, (G * H,)))
            self._add_recurrent_biases(k)
        self.h0: Array | None = None
        self.grad_h0: Array | None = None
        self._x: Array | None = None
        self._pad: NDArray[np.bool_] | None = None  # (T, B, 1): the padded steps of the last forward

    def _add_recurrent_biases(self, k: float) -> None:
        """Biases beyond ``b`` (none here; GRU's ``b_hn``)."""

    @property
    def input_size(self) -> int:
        """``I``, features per step of ``x``."""
        return self._input_size

    @property
    def output_size(self) -> int:
        """``H``, the hidden size."""
        return self.hidden_size

    def config(self) -> dict[str, Any]:
        """``input_size``, ``hidden_size``, ``bias``, ``stateful`` and the dtype."""
        own = {"input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.bias}
        return own | {"stateful": self.stateful} | super().config()

    # --- The state ----------------------------------------------------------------------------
    def held(self) -> tuple[Array | None, ...]:
        """The initial-state attributes as they are, in ``state_names`` order (``None``: zeros)."""
        return (self.h0,)

    @property
    def state(self) -> State | None:
        """The state the next ``forward`` starts from, made of ``h0`` (and ``c0``); ``None``: zeros."""
        held = self.held()
        if all(part is None for part in held):
            return None
        some = next(part for part in held if part is not None)
        return State(*(np.zeros_like(some) if part is None else part for part in held))

    @state.setter
    def state(self, value: State | None) -> None:
        """``State(h0)`` for the next ``forward``, or ``None`` (zeros)."""
        self.h0 = None if value is None else value.h

    @property
    def grad_state(self) -> State:
        """``dL/d(initial state)`` after ``backward``: ``State(grad_h0)`` (LSTM: with ``grad_c0``)."""
        if self.grad_h0 is None:
            raise ShapeError(f"{type(self).__name__}.grad_state read before backward")
        return State(self.grad_h0)

    def reset_state(self) -> None:
        """Forget the carried state: the next ``forward`` starts from zeros."""
        self.state = None

    def state_after(self, step: int) -> State:
        """The state after ``step`` steps of the last forward or run (0: its start), a copy.

        Truncated BPTT restarts a window from such a state, cut off from the graph before it."""
        if self._x is None or not 0 <= step <= self._x.shape[0]:
            raise ValueError(f"{type(self).__name__}.state_after: step must be in 0..T of the last forward")
        return State(*(self._work[k][step].copy() for k in self.trajectories))

    def initial_state(self, batch: int, name: str = "h0") -> Array:
        """The initial state ``name`` (``"h0"``, ``"c0"``) ``forward`` would use, or zeros ``(B, H)``."""
        part = self.start(self.held(), batch)[self.state_names.index(name)]
        assert part is not None  # start fills every named part
        return part

    def start(self, state: Sequence[Array | None] | None, batch: int) -> State:
        """``state`` checked against ``(B, H)``, its ``None`` parts (or all of it) zeros."""
        shape, where = (batch, self.hidden_size), f"{type(self).__name__}.forward"
        parts = tuple(state) if state is not None else ()
        if any(p is not None for p in parts[len(self.state_names) :]):
            raise ValueError(f"{where}: a {type(self).__name__} state has only {', '.join(self.state_names)}")
        checked = []
        for k, name in enumerate(self.state_names):
            given = parts[k] if k < len(parts) else None
            if given is None:
                checked.append(np.zeros(shape, self.dtype))
                continue
            a = as_array(given, self.dtype, where, name)
            check_same_shape(a, shape, where, name, "(B, H)", "one initial state per sequence in x")
            checked.append(a)
        return State(*checked)

    # --- Forward ------------------------------------------------------------------------------
    def forward(self, x: Array, lengths: Any = None) -> Array:
        """``x (T, B, I) -> h (T, B, H)``, the hidden state after every step, from ``h0``/``c0``.

        ``lengths`` ``(B,)``: each sequence's real length in ``1..T``; ``h`` is zero after it."""
        return self._forward(x, share=False, lengths=lengths)

    def run(self, x: Array, state: State | None = None, lengths: Any = None) -> tuple[Array, State]:
        """``x (T, B, I) -> (h (T, B, H), State after step T)``, starting from ``state`` (``None``: zeros).

        With ``lengths`` the returned state is each sequence's last real one."""
        h = self._run(x, state, share=False, lengths=lengths)
        return h, self.state_after(h.shape[0])

    def _forward(self, x: Array, share: bool, lengths: Any = None) -> Array:
        h = self._run(x, self.held(), share, lengths)
        if self.stateful:
            self.state = self.state_after(h.shape[0])
        return h

    def _run(self, x: Array, state: Sequence[Array | None] | None, share: bool, lengths: Any = None) -> Array:
        where = f"{type(self).__name__}.forward"
        x = self._input(x, where)  # (T, B, I), or ids (T, B)
        T, B = x.shape[:2]
        start = self.start(state, B)  # checked before any cache is touched
        pad = None if lengths is None else ~length_mask(lengths, T, B, where)[:, :, None]  # (T, B, 1)
        self._pad = pad
        hs = self._steps(x, start)  # (T+1, B, H)
        self._x, self._out_shape = x, (T, B, self.hidden_size)
        if pad is None:
            return hs[1:] if share else hs[1:].copy()  # (T, B, H)
        h = hs[1:].copy()  # (T, B, H); padded outputs are zero, as pad_packed_sequence gives
        np.copyto(h, 0.0, where=pad)
        return h

    def _steps(self, x: Array, start: State) -> Array:
        """The cell's forward loop from ``start``; returns ``hs (T+1, B, H)`` with ``hs[0] = h0``."""
        raise NotImplementedError

    def _input(self, x: Any, where: str) -> Array:
        """``x`` as float features ``(T, B, I)``, or as ids ``(T, B)``: integers in ``0..I-1`` that
        stand for one-hot vectors, so the projection is a row lookup and no one-hot array is built."""
        a = np.asarray(x)
        if a.ndim == 2 and a.dtype.kind in "iu":
            return as_ids(a, self.input_size, where)
        a = as_array(a, self.dtype, where, "x")
        check_sequence(a, where, "x", "(T, B, I)", self.input_size)
        return a

    def project(self, x: Array, out: Array) -> None:
        """All input projections at once: ``x (T, B, I) @ W_ih + b`` into ``out (T, B, G·H)``.

        ``out`` may also be ``(T, B, G, H)``: one block of H columns per gate. For ids ``(T, B)``,
        ``x_t @ W_ih`` is row ``x_t`` of ``W_ih``."""
        T, B = x.shape[:2]
        flat = out.reshape(T * B, -1)  # (T·B, G·H)
        if x.ndim == 2:
            np.take(self.params["W_ih"], x.reshape(-1), axis=0, out=flat)
        else:
            np.dot(x.reshape(T * B, -1), self.params["W_ih"], out=flat)
        if self.bias:
            flat += self.params["b"]

    def compiled(self, T: int, B: int) -> bool:
        """Whether a forward of ``T`` steps over ``B`` sequences runs compiled (a cell's ``*_kernels``):
        no padded step, numba, and ``BPTT_BACKEND`` ``numba``, or ``auto`` where ``compiling_pays``.
        The cell's NumPy loops are the reference and the fallback."""
        no_padding = self._pad is None or not self._pad.any()
        return no_padding and kernels.use_compiled(self.dtype, self.compiling_pays(T, B))

    def compiling_pays(self, T: int, B: int) -> bool:
        """Whether, under ``BPTT_BACKEND=auto``, a forward of ``T`` steps over ``B`` sequences is
        worth numba's import and compile (LSTM and GRU: always; their NumPy steps are ten calls each)."""
        return True

    # --- Padding (lengths) ----------------------------------------------------------------------
    def step_pads(self, T: int) -> list[NDArray[np.bool_] | None]:
        """The padded rows ``(B, 1)`` of each of this forward's ``T`` steps (``None`` without lengths)."""
        return [None] * T if self._pad is None else list(self._pad)

    def drop_padding(self, grad_y: Array, *factors: Array) -> Array:
        """Zero the per-step ``factors`` (in place) at padded steps; return ``grad_y`` zeroed there.

        ``factors`` are ``(T, B, ...)``; ``grad_y`` is returned as is without ``lengths``."""
        if self._pad is None:
            return grad_y
        for f in factors:
            np.copyto(f, 0.0, where=self._pad.reshape(self._pad.shape + (1,) * (f.ndim - 3)))
        return np.where(self._pad, 0.0, grad_y).astype(grad_y.dtype, copy=False)  # (T, B, H)

    # --- Backward -----------------------------------------------------------------------------
    def weight_grads(self, h_prev: Array, d_in: Array, d_rec: Array | None = None) -> Array:
        """``dW_ih``, ``dW_hh``, ``db`` from the per-step δ; returns ``grad_x (T, B, I)``.

        ``d_in`` is the δ of the input side ``x_t W_ih + b`` and ``d_rec`` that of the recurrent
        side ``h_{t-1} W_hh``, both ``(T, B, G, H)``; they are one array except in GRU, whose reset
        gate scales the n block of the recurrent side. ``h_prev`` is ``h_{t-1}`` for every step.
        Ids ``(T, B)`` are not differentiable: their ``grad_x`` is zeros ``(T, B)``, and costs nothing.
        """
        x = self._x
        assert x is not None
        T, B = x.shape[:2]
        ids = x.ndim == 2
        d_x = d_in.reshape(T * B, -1)  # (T·B, G·H)
        d_h = d_x if d_rec is None else d_rec.reshape(T * B, -1)  # (T·B, G·H)
        if ids and self.compiled(T, B):  # Σ x_tᵀ δ_t for one-hot x_t: δ rows summed by id
            ids_kernels.row_sums(x.reshape(-1), d_x, out=self.grads["W_ih"])  # (I, G·H)
        else:
            inputs = one_hot(x, self.input_size, self.dtype) if ids else x  # (T, B, I)
            np.dot(inputs.reshape(T * B, -1).T, d_x, out=self.grads["W_ih"])  # Σ x_tᵀ δ_t: (I, G·H)
        np.dot(h_prev.reshape(T * B, -1).T, d_h, out=self.grads["W_hh"])  # Σ h_{t-1}ᵀ δ_t: (H, G·H)
        if self.bias:
            column_sums(d_x, out=self.grads["b"])  # (G·H,)
        if ids:
            return np.zeros((T, B), self.dtype)
        out = self.buffer("grad_x", (T * B, self.input_size)) if self._share else None  # see Layer._backward
        return np.dot(d_x, self.params["W_ih"].T, out=out).reshape(T, B, -1)  # (T, B, I)

    def cached(self, name: str, what: str) -> Array:
        """The cache ``name`` of the last forward or backward, or ``ShapeError`` naming ``what``."""
        buf = self._work.get(name)
        if buf is None or (what == "backward" and self.grad_h0 is None):
            raise ShapeError(f"{type(self).__name__}: read before {what}: run forward and backward first")
        return buf

    # --- explain: what every cell's lines share ------------------------------------------------
    explain_stem = "h"

    def explain_states(self, at: Step) -> Array:
        """``h_0 .. h_T`` of explain's forward pass, ``(T+1, B, H)``."""
        return np.concatenate([self.initial_state(at.x.shape[1])[None], at.y])

    def explain_start(self, ex: Explanation, at: Step) -> Array:
        """Append ``h_0`` (the given ``h0``, or 0); return ``h_0 .. h_T`` ``(T+1, B, H)``."""
        hs = self.explain_states(at)
        ex.forward.append(
            Line(f"{at.v}_0", "0" if self.h0 is None else "given h0", shape(hs.shape[1:]), hs[0])
        )
        return hs

    def explain_sums(
        self, ex: Explanation, at: Step, d_in: tuple[str, Array], d_rec: tuple[str, Array]
    ) -> list[GradientSum]:
        """Append ``δu_t = δ(input side)_t @ W_ihᵀ``; return ``dW_ih``, ``dW_hh`` (and ``db``) as sums.

        ``d_in`` and ``d_rec`` are the name and the ``(T, B, G·H)`` δ of the input side
        ``u_t W_ih + b`` and of the recurrent side ``h_{t-1} W_hh`` (the same but in GRU).
        """
        (in_name, d_x), (rec_name, d_h) = d_in, d_rec
        W_ih, (T, B, I) = self.params["W_ih"], at.x.shape
        shapes = f"{shape((B, W_ih.shape[1]))}@{shape(W_ih.T.shape)} -> {shape((B, I))}, t = 1..{T}"
        ex.backward.append(Line(f"δ{at.u}_t", f"{in_name}_t @ W_ihᵀ", shapes, at.grad_x))
        ex.identities.append((f"δ{at.u} = {in_name} @ W_ihᵀ", d_x @ W_ih.T, at.grad_x))
        hs, steps = self.explain_states(at), range(1, T + 1)
        deltas = [(f"{in_name}_{t}", d_x[t - 1]) for t in steps]
        inputs = [(f"{at.u}_{t}", at.x[t - 1]) for t in steps]
        states = [(f"{at.v}_{t - 1}", hs[t - 1]) for t in steps]
        sums = [
            outer_sum(at.prefix + "W_ih", W_ih.shape, inputs, deltas),
            outer_sum(
                at.prefix + "W_hh",
                self.params["W_hh"].shape,
                states,
                [(f"{rec_name}_{t}", d_h[t - 1]) for t in steps],
            ),
        ]
        if self.bias:
            sums.append(bias_sum(at.prefix + "b", deltas))
        return sums

    # --- The torch form (torch is passed in, never imported here) ------------------------------
    def torch_options(self) -> dict[str, Any]:
        """Options of ``torch_counterpart`` beyond sizes, bias and dtype (RNN: ``nonlinearity``)."""
        return {}

    @classmethod
    def config_from_torch(cls, module: Any) -> dict[str, Any]:
        """The inverse of ``torch_options``: this cell's own options, read from a torch module."""
        return {}

    @classmethod
    def torch_counterpart(cls, torch: Any) -> Any:
        """``torch.nn.RNN``, ``LSTM`` or ``GRU``: the class named by ``torch_name``."""
        return getattr(torch.nn, cls.torch_name)

    def torch_biases(self) -> tuple[Array, Array]:
        """``(bias_ih, bias_hh)`` in torch's layout, both ``(G·H,)``: ``b`` and zeros (torch adds them)."""
        b = self.params["b"]
        return b, np.zeros_like(b)

    def set_torch_biases(self, bias_ih: Array, bias_hh: Array) -> None:
        """Fold torch's two biases ``(G·H,)`` into ``b = bias_ih + bias_hh``."""
        self.params["b"][...] = bias_ih + bias_hh

    def to_torch_module(self, torch: Any) -> Any:
        """A wrapped ``torch_counterpart`` with this layer's weights and initial states (``bptt.bridge``)."""
        return to_torch_rnn(torch, [self])

    @classmethod
    def from_torch_module(cls, module: Any, suffix: str = "l0") -> Recurrent:
        """One direction of one layer of a torch recurrent module: ``suffix`` ``"l0"``, ``"l1_reverse"``, ...

        The input size comes from ``weight_ih_{suffix} (G·H, I)``; bptt's weights are its transposes.
        """

        def read(name: str) -> Array:
            return getattr(module, f"{name}_{suffix}").detach().cpu().numpy()

        w_ih, own = read("weight_ih"), cls.config_from_torch(module)
        layer = cls(w_ih.shape[1], module.hidden_size, bias=module.bias, rng=0, dtype=w_ih.dtype, **own)
        layer.params["W_ih"][...], layer.params["W_hh"][...] = w_ih.T, read("weight_hh").T
        if layer.bias:
            layer.set_torch_biases(read("bias_ih"), read("bias_hh"))
        return layer

    def torch_state(self, torch: Any, x: Any, state: State | None) -> State:
        """``state`` for ``torch_forward``, or zero tensors ``(B, H)`` of ``x``'s dtype when ``None``."""
        if state is not None:
            return state
        zeros = x.new_zeros((x.shape[1], self.hidden_size))
        return State(*(zeros for _ in self.state_names))


def dsigmoid_times(y: Array, other: Array, out: Array) -> Array:
    """``other ⊙ y(1 - y)`` into ``out`` (which must not be ``other``): σ' from its output, times a factor."""
    np.subtract(1.0, y, out=out)
    out *= y
    out *= other
    return out
