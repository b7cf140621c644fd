"""Finite-difference checking of every gradient a model's ``backward`` produces."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._types import Array
from ._validate import COMPLEX_PROBE, as_array, check_sequence
from .layers import Layer
from .losses import Loss

__all__ = ["TOLERANCE", "GradcheckReport", "gradcheck"]

TOLERANCE = 1e-7
COMPLEX_STEP = 1e-20


@dataclass
class GradcheckReport:
    """Maximum relative error ``|a - n| / max(|a|, |n|, 1e-12)`` per checked array.

    Attributes
    ----------
    errors : dict[str, float]
        Keyed like ``model.params`` (``"0.W_ih"``), plus ``"x"`` and ``"{i}.h0"`` per RNN.
    shapes : dict[str, tuple[int, ...]]
    checked : dict[str, int]
        How many entries were perturbed (all, or a seeded sample of large arrays).
    tolerance : float
    method : str
        How the numerical derivatives were taken (see ``gradcheck``).
    """

    errors: dict[str, float]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)
    tolerance: float = TOLERANCE
    method: str = "complex"

    @property
    def ok(self) -> bool:
        """Every error is at most ``tolerance``."""
        return all(e <= self.tolerance for e in self.errors.values())

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    def __str__(self) -> str:
        rows = [f"{'gradient':<12} {'shape':<14} {'checked':>7}  {'max rel err':>11}"]
        for k, e in self.errors.items():
            mark = "ok" if e <= self.tolerance else "FAIL"
            shape = str(self.shapes.get(k, ""))
            rows.append(f"{k:<12} {shape:<14} {self.checked.get(k, 0):>7}  {e:>11.2e}  {mark}")
        verdict = "all gradients agree" if self.ok else "some gradients disagree"
        rows.append(f"{verdict} ({self.method} differences, tolerance {self.tolerance:.0e})")
        return "\n".join(rows)


def rel_error(a: Array, n: Array) -> Array:
    """Entrywise ``|a - n| / max(|a|, |n|, 1e-12)``."""
    return np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-12)


def gradcheck(
    model: Layer,
    loss_fn: Loss,
    x: NDArray[Any],
    target: NDArray[Any],
    *,
    mask: NDArray[Any] | None = None,
    eps: float = 1e-6,
    method: str = "complex",
    max_entries: int = 256,
    seed: int = 0,
) -> GradcheckReport:
    """Compare ``model.backward`` with numerical derivatives of the loss, entry by entry.

    Parameters
    ----------
    model : a layer or ``Sequential`` in float64
    loss_fn : a ``bptt`` loss
    x : ndarray (T, B, I)
    target, mask : as the loss takes them
    eps : float
        Step of the real central differences, ``(L(θ+ε) - L(θ-ε)) / 2ε`` (``method="central"``).
    method : {"complex", "central"}
        ``"complex"`` (default) takes the central difference along the imaginary axis,
        ``(L(θ+ih) - L(θ-ih)) / 2ih = Im L(θ+ih) / h`` with ``h = 1e-20``. Nothing cancels,
        so it is exact to round-off even for entries near zero, which real steps cannot
        resolve: their round-off floor is about ``1e-16·|L| / ε`` absolute.
        ``"central"`` uses real steps of size ``eps``.
    max_entries : int
        Arrays larger than this are checked on a seeded random sample of that many entries.
    seed : int
        Seed of that sample.

    Every parameter, ``x`` and each recurrent layer's initial states (``h0``, LSTM's ``c0``) are
    checked. A state that is ``None`` is checked at zeros. The model's weights are never perturbed
    in place: the probes run on copies, and the model ends as after one ``forward`` and ``backward``.
    """
    if method not in _STEPS:
        raise ValueError(f"gradcheck: method must be 'complex' or 'central', got {method!r}")
    if not isinstance(model, Layer):
        raise TypeError(f"gradcheck: model must be a bptt layer or Sequential, got {model!r}")
    leaves = _leaves(model)
    for _, layer in leaves:
        dtype = getattr(layer, "dtype", np.dtype(np.float64))
        if dtype != np.float64:
            raise TypeError(f"gradcheck: needs a float64 model; {type(layer).__name__} is {dtype}")
    x = as_array(x, np.dtype(np.float64), "gradcheck", "x")
    check_sequence(x, "gradcheck", "x", "(T, B, I)", None)
    states: dict[str, tuple[Any, str]] = {
        f"{prefix}{name}": (layer, name)
        for prefix, layer in leaves
        for name in getattr(layer, "state_names", ())
    }  # e.g. "0.h0", "0.c0", "1.bwd.h0"
    saved = {k: getattr(layer, name) for k, (layer, name) in states.items()}
    probe_dtype = np.dtype(np.complex128 if method == "complex" else np.float64)
    rng = np.random.default_rng(seed)
    try:
        with _probe_copies(leaves, probe_dtype) as wrt:
            wrt["x"] = x.astype(probe_dtype)
            for k, (layer, name) in states.items():
                wrt[k] = layer.initial_state(x.shape[1], name).astype(probe_dtype)
                setattr(layer, name, wrt[k])

            def loss() -> Any:
                return loss_fn.evaluate(model.forward(wrt["x"]), target, mask)[0]

            step = _STEPS[method]
            numeric = {k: step(a, loss, eps, _sample(a.size, max_entries, rng)) for k, a in wrt.items()}
        for k, (layer, name) in states.items():
            setattr(layer, name, np.array(wrt[k].real))  # checked at these states, also when None
        _, grad_y = loss_fn(model.forward(x), target, mask)
        analytic: dict[str, Array] = {**model.grads, "x": model.backward(grad_y)}
        analytic.update({k: getattr(layer, f"grad_{name}") for k, (layer, name) in states.items()})
    finally:
        for k, (layer, name) in states.items():
            setattr(layer, name, saved[k])

    errors, checked, shapes = {}, {}, {}
    for k, (idx, n) in numeric.items():
        errors[k] = float(rel_error(analytic[k].reshape(-1)[idx], n).max(initial=0.0))
        checked[k], shapes[k] = idx.size, analytic[k].shape
    return GradcheckReport(errors, shapes, checked, method=method)


def _leaves(model: Layer, prefix: str = "") -> list[tuple[str, Layer]]:
    """The layers without sublayers, each with the key prefix of its params (``"0."``, ``"1.fwd."``)."""
    subs = model.sublayers()
    if not subs:
        return [(prefix, model)]
    return [leaf for name, sub in subs for leaf in _leaves(sub, f"{prefix}{name}.")]


@contextmanager
def _probe_copies(leaves: list[tuple[str, Layer]], dtype: np.dtype[Any]) -> Iterator[dict[str, NDArray[Any]]]:
    """Swap every layer's weights for copies in ``dtype`` and yield them, keyed like ``params``.

    The probes perturb these copies, so the caller's weights (which optimizers hold) are never
    touched; the originals are put back on exit, whatever happens.
    """
    saved: list[tuple[Any, np.dtype[Any], dict[str, Array]]] = []
    copies: dict[str, NDArray[Any]] = {}
    token = COMPLEX_PROBE.set(dtype.kind == "c")
    try:
        for prefix, layer in leaves:
            if not layer.params:
                continue
            weighted: Any = layer
            saved.append((weighted, weighted.dtype, dict(layer.params)))
            weighted.dtype = dtype
            for k, v in list(layer.params.items()):
                layer.params[k] = copies[prefix + k] = v.astype(dtype)
        yield copies
    finally:
        COMPLEX_PROBE.reset(token)
        for weighted, dt, params in reversed(saved):
            weighted.dtype = dt
            weighted.params.update(params)


def _sample(size: int, max_entries: int, rng: np.random.Generator) -> NDArray[np.intp]:
    """All flat indices, or a sorted random sample of ``max_entries`` of them."""
    if size <= max_entries:
        return np.arange(size)
    return np.sort(rng.choice(size, max_entries, replace=False))


Step = Callable[[NDArray[Any], Callable[[], Any], float, NDArray[np.intp]], tuple[NDArray[np.intp], Array]]


def _complex_step(
    a: NDArray[Any], loss: Callable[[], Any], eps: float, idx: NDArray[np.intp]
) -> tuple[NDArray[np.intp], Array]:
    """``dL/da`` at ``idx`` as ``Im L(a + ih) / h``; ``a`` is complex and restored exactly."""
    flat, out = a.reshape(-1), np.empty(idx.size)
    for j, i in enumerate(idx):
        orig = flat[i]
        flat[i] = orig + 1j * COMPLEX_STEP
        out[j] = loss().imag / COMPLEX_STEP
        flat[i] = orig
    return idx, out


def _central(
    a: NDArray[Any], loss: Callable[[], Any], eps: float, idx: NDArray[np.intp]
) -> tuple[NDArray[np.intp], Array]:
    """``dL/da`` at ``idx`` as ``(L(a + ε) - L(a - ε)) / 2ε``; ``a`` is restored exactly."""
    flat, out = a.reshape(-1), np.empty(idx.size)
    for j, i in enumerate(idx):
        orig = flat[i]
        flat[i] = orig + eps
        plus = loss()
        flat[i] = orig - eps
        minus = loss()
        flat[i] = orig
        out[j] = (plus - minus) / (2.0 * eps)
    return idx, out


_STEPS: dict[str, Step] = {"complex": _complex_step, "central": _central}
