"""The layer protocol: what every layer offers, the state a recurrent one carries, and the registry.

Every layer maps a time-major sequence ``(T, B, F_in)`` to ``(T, B, F_out)`` and keeps ``params``
and ``grads`` dicts whose arrays have the same keys and shapes. The rest of the package asks a
layer, through this protocol, rather than testing its class:

- ``forward``/``backward`` and ``params``/``grads``: the math;
- ``leaves()``: the layers without sublayers, each with its param-key prefix (``"0."``, ``"1.fwd."``);
- ``run(x, state)``: a forward from an explicit state, returning the state after the last step
  (``None`` for a layer without state);
- ``causal``: whether a sequence may be cut in time under it (``Bidirectional`` reads the future);
- ``takes_lengths``: whether ``forward``/``run`` take ``lengths=`` (each sequence's real length in
  a padded batch); ``Sequential`` passes ``lengths`` only to the layers that say so;
- ``input_size``/``output_size``: features per step in and out (``None``: any);
- ``config()``/``from_config``: what ``bptt.io`` records, for a type named by ``register_layer``;
- optionally, its torch form: ``torch_forward`` (the forward again in torch ops, for the autograd
  oracle ``bptt.oracle``) and ``to_torch_module``/``torch_counterpart``/``from_torch_module``
  (its ``torch.nn`` twin, for ``bptt.bridge``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._types import Array
from .._validate import as_array, as_float_dtype, check_same_shape, weight_rng
from ..errors import ShapeError
from ..explanation import Explanation, GradientSum, Line, Mistake, Step, shape

__all__ = [
    "Layer",
    "State",
    "Weighted",
    "check_lengths",
    "layer_types",
    "length_mask",
    "register_layer",
    "run_from",
]


class State(NamedTuple):
    """A recurrent layer's state between two steps.

    Attributes
    ----------
    h : ndarray (B, H)
        The hidden state.
    c : ndarray (B, H) or None
        An LSTM's cell state; ``None`` for cells that have none.
    """

    h: Array
    c: Array | None = None


class Layer:
    """Base class. Subclasses implement ``forward`` and ``backward``.

    Attributes
    ----------
    params : dict[str, ndarray]
        The layer's weights. Optimizers update these arrays in place.
    grads : dict[str, ndarray]
        ``dL/dparam`` with the same keys and shapes; zeros until the first ``backward``,
        which overwrites (never accumulates into) them.
    causal : bool
        Step ``t``'s output depends on steps ``≤ t`` only, so a sequence may be cut in time.
    takes_lengths : bool
        ``forward(x, lengths=None)`` and ``run(x, state=None, lengths=None)`` take the real length
        of each sequence of a padded batch, ``(B,)`` ints in ``1..T`` (false by default).
    """

    out_letters = "(T, B, F)"
    takes_lengths = False

    def __init__(self) -> None:
        self._params: dict[str, Array] = {}
        self._grads: dict[str, Array] = {}
        self._out_shape: tuple[int, ...] | None = None

    @property
    def params(self) -> dict[str, Array]:
        """The layer's weights by name; optimizers update these arrays in place."""
        return self._params

    @property
    def grads(self) -> dict[str, Array]:
        """``dL/dparam`` for every param, same keys and shapes; ``backward`` overwrites them."""
        return self._grads

    @property
    def input_size(self) -> int | None:
        """Features per step of ``x``, or ``None`` when the layer takes any number."""
        return None

    @property
    def output_size(self) -> int | None:
        """Features per step of ``y``, or ``None`` when it is the input's."""
        return None

    @property
    def causal(self) -> bool:
        """Step ``t``'s output depends on steps ``≤ t`` only (true unless a sublayer reads the future)."""
        return all(sub.causal for _, sub in self.sublayers())

    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments, enough to rebuild the layer (see ``bptt.io``)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """A new layer (with fresh weights) from what ``config()`` returned."""
        return cls(**config)

    def sublayers(self) -> list[tuple[str, Layer]]:
        """The layers this one is made of, with the key prefix of their params (none for a leaf)."""
        return []

    def leaves(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """The layers without sublayers, depth first, each with its param-key prefix.

        ``Sequential([RNN(..), Bidirectional(GRU(..))]).leaves()`` yields ``("0.", rnn)``,
        ``("1.fwd.", gru)`` and ``("1.bwd.", gru_reversed)``; a leaf yields ``(prefix, itself)``.
        """
        subs = self.sublayers()
        if not subs:
            yield prefix, self
        for name, sub in subs:
            yield from sub.leaves(f"{prefix}{name}.")

    def forward(self, x: Array) -> Array:
        """``x (T, B, F_in) -> y (T, B, F_out)``, caching what ``backward`` needs.

        The returned array belongs to the caller: no later call overwrites it.
        """
        raise NotImplementedError

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, F_out) -> grad_x (T, B, F_in)``, for the last ``forward``; fills ``grads``.

        ``grad_y`` must have the last output's shape (else ``ShapeError``). Calling it again
        gives the same result.
        """
        raise NotImplementedError

    def run(self, x: Array, state: Any = None, lengths: Any = None) -> tuple[Array, Any]:
        """``forward`` from an explicit ``state``; returns ``y`` and the state after the last step.

        A layer without state takes and returns ``None``; a recurrent leaf takes a ``State`` (or
        ``None``: zeros) and returns one; ``Sequential`` a dict of them keyed by leaf prefix.
        ``backward`` then differentiates this run. Attributes such as ``h0`` are neither read
        nor changed. ``lengths`` goes to ``forward`` (only for a layer that ``takes_lengths``).
        """
        if state is not None:
            raise TypeError(f"{type(self).__name__}.run: this layer has no state, got {state!r}")
        return (self.forward(x) if lengths is None else self.with_lengths(lengths)(x)), None

    def reset_state(self) -> None:
        """Forget the state every recurrent leaf carries: the next ``forward`` starts from zeros."""
        for _, leaf in self.leaves():
            if leaf is not self:
                leaf.reset_state()

    # --- The torch form (optional; torch is passed in, never imported by bptt) -----------------
    def torch_forward(self, torch: Any, x: Any, params: Mapping[str, Any], state: Any = None) -> Any:
        """This layer's forward pass written again in torch ops, for the autograd oracle.

        ``x (T, B, F_in)`` is a tensor, ``params`` holds tensors keyed like ``self.params`` and
        ``state`` has ``run``'s form (``None``, a ``State`` of ``(B, H)`` tensors, or a dict of
        them by leaf prefix); returns the tensor ``y (T, B, F_out)``. Write it step by step
        from the equations, never through ``forward``: ``bptt.oracle`` lets autograd do the BPTT.
        """
        raise TypeError(f"{type(self).__name__} has no torch form: give it a torch_forward to check it")

    def to_torch_module(self, torch: Any) -> Any:
        """A ``torch.nn.Module`` computing ``forward`` on ``(T, B, F)`` tensors, with copies of the weights.

        A layer without one raises ``ValueError`` whose message says what it is, as a noun phrase
        (``bptt.to_torch`` writes "layer 1 is " before it).
        """
        raise ValueError(f"a {type(self).__name__}, which has no torch.nn counterpart")

    @classmethod
    def torch_counterpart(cls, torch: Any) -> Any:
        """The ``torch.nn.Module`` class ``bptt.from_torch`` turns into this layer type, or ``None``."""
        return None

    @classmethod
    def from_torch_module(cls, module: Any) -> Layer:
        """A layer of this type computing ``module``, an instance of ``torch_counterpart``."""
        raise NotImplementedError

    # --- What bptt.explain writes for the layer (see bptt.explanation) ---------------------------
    explain_stem: str | None = "s"
    """The letter of the output's name in ``explain`` (``h``, ``o``); ``None`` keeps the input's."""
    explain_one_step = False
    """True for a layer whose output is one step (``Last``): it is no longer a sequence over t."""

    def explain_chain(self) -> list[tuple[str, Layer]]:
        """The layers ``explain`` writes out one after another, each with its param-key prefix."""
        return [("", self)]

    def explain_forward(self, ex: Explanation, at: Step) -> None:
        """Append the forward equations; by default ``v_t = Name(u_t)`` with the shapes.

        A layer that reads the whole sequence (not ``causal``) is written ``v_t = Name(u_1..T)``.
        """
        arg = f"{at.u}{at.t_in}" if self.causal or not at.seq else f"{at.u}_1..{at.x.shape[0]}"
        shapes = f"{shape(at.x.shape[1:])} -> {shape(at.y.shape[1:])}{at.steps}"
        ex.forward.append(Line(f"{at.v}{at.t_out}", f"{type(self).__name__}({arg})", shapes, at.y))

    def explain_backward(self, ex: Explanation, at: Step) -> None:
        """Append the backward equations and this layer's gradients (put first in ``ex.gradients``).

        By default ``δu = Name.backward(δv)`` with the shapes, and each parameter's gradient as
        ``backward`` left it, with its shape checked against the parameter's.
        """
        name = type(self).__name__
        shapes = f"{shape(at.grad_y.shape[1:])} -> {shape(at.grad_x.shape[1:])}{at.steps}"
        lhs, rhs = f"δ{at.u}{at.t_in}", f"{name}.backward(δ{at.v}{at.t_out})"
        ex.backward.append(Line(lhs, rhs, shapes, at.grad_x))
        ex.gradients[0:0] = [
            GradientSum(
                at.prefix + key,
                f"d{key}",
                [Line("", f"(from {name}.backward)", shape(grad.shape), grad.copy())],
                self.params[key].shape,
            )
            for key, grad in self.grads.items()
        ]

    def explain_mistakes(self, at: Step, later: list[Step]) -> list[Mistake]:
        """Wrong products a learner typically writes for this layer (``later``: the layers after it)."""
        return []

    def _forward(self, x: Array, share: bool) -> Array:
        """``forward``; with ``share`` the result may be a view of an internal cache.

        ``Sequential`` passes ``share=True`` between its own layers, which only read the array
        until the next forward, so no copy is made for them.
        """
        return self.forward(x)

    _own = False  # during a backward: whether grad_y is handed over (_backward)
    _share = False  # during a backward: whether grad_x may be an internal buffer (_backward)

    def _backward(self, grad_y: Array, own: bool, share: bool) -> Array:
        """``backward`` between ``Sequential``'s own layers, as ``_forward`` with ``share`` is.

        ``own``: ``grad_y`` was made by the layer above, and nothing reads it afterwards, so the
        layer may write its per-step δ there (the RNN's compiled loop does: BPTT's peak memory
        holds one ``(T, B, H)`` array fewer). ``share``: the result goes only to the layer below,
        which reads it until its next forward, so it may be a buffer the layer reuses (Dense and
        the recurrent layers do: a fresh large array each iteration costs page faults). The
        flags are set on the layer for the call; a plain ``backward`` has both false.
        """
        self._own, self._share = own, share
        try:
            return self.backward(grad_y)
        finally:
            self._own = self._share = False

    def with_lengths(self, lengths: Any) -> Callable[[Array], Array]:
        """``forward`` with ``lengths`` bound, for a layer that ``takes_lengths`` (else ``TypeError``)."""
        if not self.takes_lengths:
            raise TypeError(f"{type(self).__name__}.forward: this layer takes no lengths, got {lengths!r}")
        forward: Callable[..., Array] = self.forward
        return partial(forward, lengths=lengths)

    def _add_param(self, name: str, value: Array) -> None:
        self._params[name] = value
        self._grads[name] = np.zeros_like(value)

    def _check_grad(self, grad_y: Array, dtype: np.dtype[Any] | None) -> Array:
        where = f"{type(self).__name__}.backward"
        if self._out_shape is None:
            raise ShapeError(
                f"{where} called before forward: run forward first, then backward "
                f"with grad_y of the output's shape"
            )
        g = as_array(grad_y, dtype, where, "grad_y")
        check_same_shape(
            g,
            self._out_shape,
            where,
            "grad_y",
            self.out_letters,
            "the shape of the last forward's output",
        )
        return g

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.config().items() if (k, v) != ("dtype", "float64")}
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{type(self).__name__}({args})"


class Weighted(Layer):
    """A layer with weights of one float dtype, drawn U(-k, k) like PyTorch's defaults.

    The draws come from ``rng``: a Generator, an int seed, or ``None`` for seed 0, so that the
    same code builds the same weights in every process. ``config()`` records the dtype's name.
    """

    def __init__(self, dtype: DTypeLike, rng: np.random.Generator | int | None) -> None:
        super().__init__()
        name = type(self).__name__
        self.dtype = as_float_dtype(dtype, name)
        self._rng = weight_rng(rng, name)
        self._work: dict[str, Array] = {}  # forward caches and backward buffers, reused across calls

    def buffer(self, name: str, shape: tuple[int, ...]) -> Array:
        """A cache array reused across calls while its shape and dtype stay the same."""
        buf = self._work.get(name)
        if buf is None or buf.shape != shape or buf.dtype != self.dtype:
            buf = self._work[name] = np.empty(shape, self.dtype)
        return buf

    def config(self) -> dict[str, Any]:
        """The dtype's name (``"float64"``); subclasses add their sizes."""
        return {"dtype": self.dtype.name}

    def _uniform(self, k: float, shape: tuple[int, ...]) -> Array:
        return self._rng.uniform(-k, k, size=shape).astype(self.dtype)


L = TypeVar("L", bound=type[Layer])
_REGISTRY: dict[str, type[Layer]] = {}


def register_layer(cls: L) -> L:
    """Name a layer type, by its class name, for ``bptt.save`` and ``bptt.load``; a decorator.

    The type must rebuild itself with ``from_config(layer.config())``. Registering another
    class under a name already taken raises ``ValueError``: a file's meaning must not change.
    """
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer: expected a subclass of bptt.Layer, got {cls!r}")
    known = _REGISTRY.setdefault(cls.__name__, cls)
    if known is not cls:
        raise ValueError(f"register_layer: another layer type is already registered as {cls.__name__!r}")
    return cls


def layer_types() -> dict[str, type[Layer]]:
    """Every registered layer type by name (a copy)."""
    return dict(_REGISTRY)


def check_lengths(lengths: Any, T: int, B: int, where: str) -> NDArray[np.intp]:
    """``lengths`` as ``(B,)`` ints, each a sequence's real length in ``1..T`` (else an error naming it)."""
    a = np.asarray(lengths)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{where}: lengths must be integers, one per sequence, got dtype {a.dtype}")
    check_same_shape(a, (B,), where, "lengths", "(B,)", "one length per sequence in x")
    if a.min() < 1 or a.max() > T:
        bad = int(a.min()) if a.min() < 1 else int(a.max())
        raise ValueError(f"{where}: lengths holds {bad}; expected every length in 1..T = 1..{T}")
    return a.astype(np.intp)


def length_mask(lengths: Any, T: int, B: int, where: str) -> NDArray[np.bool_]:
    """The ``(T, B)`` mask of real steps: ``t < lengths[b]`` (padding is false)."""
    return np.arange(T)[:, None] < check_lengths(lengths, T, B, where)[None, :]  # (T, B)


def run_from(model: Layer, x: Array, states: Mapping[str, State | None]) -> tuple[Array, Any]:
    """``model.run(x, ...)`` from states keyed by leaf prefix, as ``model.leaves()`` names them.

    For callers that treat any model alike: a lone layer (prefix ``""``) takes its own ``State``
    or ``None``, a container the dict (``None`` entries start from zeros).
    """
    if not model.sublayers():
        return model.run(x, states.get(""))
    return model.run(x, {k: v for k, v in states.items() if v is not None})
