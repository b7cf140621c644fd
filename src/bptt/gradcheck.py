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
from .layers import Layer, State, run_from
from .losses import Loss
from .recurrent import Recurrent

__all__ = ["TOLERANCE", "GradcheckReport", "gradcheck"]

TOLERANCE = 1e-7
COMPLEX_STEP = 1e-20


@dataclass
class GradcheckReport:
    """Maximum relative error ``|a - n| / max(|a|, |n|, 1e-12)`` per checked array.

    Attributes
    ----------
    errors : dict[str, float]
        Keyed like ``model.params`` (``"0.W_ih"``), plus ``"x"`` and ``"{prefix}h0"`` (LSTM also
        ``"{prefix}c0"``) per recurrent leaf, its prefix as ``model.leaves()`` names it.
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
        """The largest relative error over every checked gradient."""
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
    model, loss_fn : a layer or ``Sequential`` in float64, and a ``bptt`` loss
    x : ndarray (T, B, I); target, mask : as the loss takes them
    eps : float, the step of ``method="central"``, ``(L(θ+ε) - L(θ-ε)) / 2ε``
    method : {"complex", "central"}
        ``"complex"`` (default) takes the central difference along the imaginary axis,
        ``(L(θ+ih) - L(θ-ih)) / 2ih = Im L(θ+ih) / h`` with ``h = 1e-20``. Nothing cancels,
        so it is exact to round-off even for entries near zero, which real steps cannot
        resolve: their round-off floor is about ``1e-16·|L| / ε`` absolute.
        ``"central"`` uses real steps of size ``eps``.
    max_entries, seed : int
        Arrays larger than ``max_entries`` are checked on a random sample (seeded) of that many.

    Every parameter, ``x`` and each recurrent leaf's initial states (``h0``, LSTM's ``c0``; zeros
    when ``None``) are checked. The model runs from explicit states (``run``), so its ``h0``/``c0``
    never change; the probes perturb copies of the weights, never the weights themselves.
    """
    if method not in _STEPS:
        raise ValueError(f"gradcheck: method must be 'complex' or 'central', got {method!r}")
    leaves, x = _checked(model, x)
    carriers = [(prefix, leaf) for prefix, leaf in leaves if isinstance(leaf, Recurrent)]
    probe_dtype = np.dtype(np.complex128 if method == "complex" else np.float64)
    rng = np.random.default_rng(seed)
    with _probe_copies(leaves, probe_dtype) as wrt:
        wrt["x"] = x.astype(probe_dtype)
        for prefix, leaf in carriers:  # checked at the states forward would start from (None: zeros)
            start = leaf.start(leaf.held(), x.shape[1])
            wrt.update({prefix + name: part.astype(probe_dtype) for name, part in _named(leaf, start)})

        def loss() -> Any:
            return loss_fn.evaluate(run_from(model, wrt["x"], _states(carriers, wrt))[0], target, mask)[0]

        step = _STEPS[method]
        numeric = {k: step(a, loss, eps, _sample(a.size, max_entries, rng)) for k, a in wrt.items()}
    real = {k: np.array(a.real) for k, a in wrt.items()}  # the states are checked at, also when None
    _, grad_y = loss_fn(run_from(model, x, _states(carriers, real))[0], target, mask)
    analytic: dict[str, Array] = {**model.grads, "x": model.backward(grad_y)}
    for prefix, leaf in carriers:
        analytic.update({prefix + name: grad for name, grad in _named(leaf, leaf.grad_state)})

    errors, checked, shapes = {}, {}, {}
    for k, (idx, n) in numeric.items():
        errors[k] = float(rel_error(analytic[k].reshape(-1)[idx], n).max(initial=0.0))
        checked[k], shapes[k] = idx.size, analytic[k].shape
    return GradcheckReport(errors, shapes, checked, method=method)


def _checked(model: Layer, x: NDArray[Any]) -> tuple[list[tuple[str, Layer]], Array]:
    """The model's leaves, all float64, and ``x`` as a float64 sequence ``(T, B, I)``."""
    if not isinstance(model, Layer):
        raise TypeError(f"gradcheck: model must be a bptt layer or Sequential, got {model!r}")
    leaves = list(model.leaves())
    for _, layer in leaves:
        dtype = getattr(layer, "dtype", np.dtype(np.float64))
        if dtype != np.float64:
            raise TypeError(f"gradcheck: needs a float64 model; {type(layer).__name__} is {dtype}")
    x = as_array(x, np.dtype(np.float64), "gradcheck", "x")
    check_sequence(x, "gradcheck", "x", "(T, B, I)", None)
    return leaves, x


def _named(leaf: Recurrent, state: State) -> list[tuple[str, Array]]:
    """A state's parts with their names (``"h0"``, ``"c0"``)."""
    return [(name, part) for name, part in zip(leaf.state_names, state, strict=False) if part is not None]


def _states(
    carriers: list[tuple[str, Recurrent]], arrays: dict[str, NDArray[Any]]
) -> dict[str, State | None]:
    """Each recurrent leaf's start ``State`` from ``arrays`` keyed ``"{prefix}h0"``, ``"{prefix}c0"``."""
    return {prefix: State(*(arrays[prefix + name] for name in leaf.state_names)) for prefix, leaf in carriers}


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
