"""The learner's layouts of weights and data, to and from the reference convention of ``spec``.

The reference writes row vectors, time-major: ``x_t @ W_ih`` with ``W_ih (I, H)``, ``x (T, B, I)``.
A learner may write column vectors (``W_ih @ x_t`` with ``W_ih (H, I)``: every weight matrix is the
reference's transposed, a bias may be ``(H, 1)``), and may take its data

    "sequence"       one sequence            x (T, I)                     y (T, O)    last: (O,)
    "time-major"     a batch                 x (T, B, I)                  y (T, B, O) last: (B, O)
    "batch-major"    a batch                 x (B, T, I)                  y (B, T, O) last: (B, O)
    "steps"          a list of T steps       x_t (B, I)  (B = 1: (1, I))  y_t (B, O)  last: (B, O)
    "column-steps"   a list of T columns     x_t (I, B)  (B = 1: (I, 1))  y_t (O, B)  last: (O, B)

Going in (weights, ``x``, ``y``) everything is converted; coming back, a gradient is converted
only when its shape is one the learner's convention gives that gradient, so a wrong shape reaches
the diagnosis as the learner made it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._types import Array

__all__ = [
    "DATA",
    "LAYOUTS",
    "MATRICES",
    "VECTORS",
    "data_to_learner",
    "describe",
    "learner_shape",
    "series_from_learner",
    "state_from_learner",
    "weight_grad_from_learner",
    "weight_to_learner",
]

LAYOUTS = ("row", "column")
DATA = ("sequence", "time-major", "batch-major", "steps", "column-steps")
MATRICES = ("W_ih", "W_hh", "W_ho")
VECTORS = ("b", "b_o")

_LAYOUT_WORDS = {"row": "row vectors (x @ W)", "column": "column vectors (W @ x)"}
_DATA_WORDS = {
    "sequence": "one sequence x (T, I)",
    "time-major": "a time-major batch x (T, B, I)",
    "batch-major": "a batch-major batch x (B, T, I)",
    "steps": "a list of T steps x_t (B, I)",
    "column-steps": "a list of T column steps x_t (I, B)",
}

Fit = tuple[tuple[int, ...], Callable[[Array], Array]]


def describe(layout: str, data: str) -> str:
    """The learner's conventions in words, e.g. ``"column vectors (W @ x), a list of T column steps
    x_t (I, B)"``."""
    return f"{_LAYOUT_WORDS[layout]}, {_DATA_WORDS[data]}"


# --- going in -----------------------------------------------------------------------------------


def data_to_learner(a: Array, data: str) -> Array | list[Array]:
    """``x (T, B, F)`` or ``y (T, B, O)``, or ``y (B, O)`` (outputs at the last step only), in the
    learner's ``data`` layout (the module's table); always fresh arrays the learner may change."""
    if a.ndim == 2:  # y at the last step: (B, O)
        if data == "sequence":
            return a[0].copy()  # (O,)
        return a.T.copy() if data == "column-steps" else a.copy()  # (O, B) or (B, O)
    if data == "sequence":
        return a[:, 0, :].copy()  # (T, F)
    if data == "batch-major":
        return np.ascontiguousarray(a.transpose(1, 0, 2))  # (B, T, F)
    if data == "steps":
        return [step.copy() for step in a]  # T of (B, F)
    if data == "column-steps":
        return [step.T.copy() for step in a]  # T of (F, B)
    return a.copy()  # (T, B, F)


def weight_to_learner(role: str, value: Array, shape: tuple[int, ...], layout: str) -> Array:
    """A weight ``value`` in the reference convention as the learner holds it: ``shape``.

    Parameters
    ----------
    role : str
        One of ``MATRICES`` or ``VECTORS``.
    value : Array
        ``(I, H)``, ``(H, H)``, ``(H, O)``, ``(H,)`` or ``(O,)`` by ``role``.
    shape : tuple of int
        The learner's own array's shape: the matrix, transposed for column vectors; a bias
        ``(n,)``, ``(1, n)`` or ``(n, 1)``.
    layout : str
        ``"row"`` or ``"column"``.
    """
    if role in VECTORS:
        return value.reshape(shape)  # (n,) -> (n,), (1, n) or (n, 1)
    return value.T if layout == "column" else value  # column vectors: (H, I) for (I, H)


# --- coming back --------------------------------------------------------------------------------


def _stacked(g: Any) -> Any:
    """A list of per-step arrays as one array ``(T, ...)``; anything else as it is."""
    if isinstance(g, list | tuple):
        try:
            return np.stack([np.asarray(step) for step in g])  # (T, ...)
        except ValueError:  # steps of different shapes: the diagnosis sees the list
            return list(g)
    return g


def _first_fit(g: Any, fits: Sequence[Fit]) -> Any:
    """``g`` through the conversion of the first shape it has, or unchanged."""
    if not isinstance(g, np.ndarray):
        return g
    for shape, convert in fits:
        if g.shape == shape:
            return convert(g)
    return g


def _swap01(g: Array) -> Array:
    return g.transpose(1, 0, 2)  # (B, T, F) <-> (T, B, F)


def _swap12(g: Array) -> Array:
    return g.transpose(0, 2, 1)  # (T, F, B) <-> (T, B, F)


def _one_sequence(g: Array) -> Array:
    return g[:, None, :]  # (T, F) -> (T, 1, F)


def series_from_learner(g: Any, *, what: str, layout: str, data: str, T: int, B: int, F: int) -> Any:
    """A learner's per-step gradient as ``(T, B, F)``: ``what`` is ``"x"`` (laid out like the
    learner's ``x``: ``data``) or ``"delta"`` (like its hidden states: ``layout``).

    A list of steps is stacked first. A shape the learner's convention does not give that
    gradient comes back unchanged (a list of steps of different shapes, as a list).
    """
    g = _stacked(g)
    fits: list[Fit] = [((T, B, F), lambda a: a)]
    if what == "x":
        by_data: dict[str, list[Fit]] = {
            "batch-major": [((B, T, F), _swap01)],
            "column-steps": [((T, F, B), _swap12)],
            "sequence": [((T, F), _one_sequence), ((T, F, 1), _swap12), *fits],
        }
        fits = by_data.get(data, fits)
    elif layout == "column":
        fits = [((T, F, B), _swap12), *fits]
    elif data == "batch-major":
        fits = [((B, T, F), _swap01), *fits]
    if B == 1:
        fits.append(((T, F), _one_sequence))
    return _first_fit(g, fits)


def state_from_learner(g: Any, *, layout: str, B: int, H: int) -> Any:
    """A learner's gradient of its initial state as ``(B, H)``: from ``(H, B)`` for column
    vectors, ``(B, H)`` for rows, ``(H,)`` for one sequence; any other shape unchanged."""
    fits: list[Fit] = [((B, H), lambda a: a)]
    if layout == "column":
        fits.insert(0, ((H, B), lambda a: a.T))
    if B == 1:
        fits.append(((H,), lambda a: a[None, :]))
    return _first_fit(g, fits)


def weight_grad_from_learner(role: str, g: Any, shape: tuple[int, ...], layout: str) -> Any:
    """A learner's gradient of the weight ``role`` in the reference convention, ``shape``.

    Column vectors transpose every matrix gradient that has the learner's weight's shape or its
    transpose (so a gradient the learner returned transposed reaches the diagnosis transposed, as
    it would from a row-vector learner); a bias gradient of the bias's length in any of the shapes
    ``(n,)``, ``(1, n)``, ``(n, 1)`` becomes ``(n,)``, and a column learner's ``(n, k)`` becomes
    ``(k, n)``. Any other shape comes back unchanged.
    """
    if not isinstance(g, np.ndarray):
        return g
    if role in VECTORS:
        n = shape[0]
        if g.ndim in (1, 2) and g.size == n and n in g.shape:
            return g.reshape(n)  # (n,), (1, n) or (n, 1) -> (n,)
        if layout == "column" and g.ndim == 2 and g.shape[0] == n:
            return g.T  # (n, k) -> (k, n): not summed over k
        return g
    if layout == "column" and g.shape in (shape, shape[::-1]):
        return g.T  # (H, I) -> (I, H)
    return g


# --- shapes for the report --------------------------------------------------------------------


def learner_shape(
    role: str, shape: tuple[int, ...], *, layout: str, data: str, biases: dict[str, tuple[int, ...]]
) -> tuple[int, ...]:
    """A reference-convention ``shape`` of ``role`` as the learner writes it.

    Matrices and per-step states are transposed for column vectors, a bias takes the learner's
    own bias shape (``biases``: role -> shape), ``x`` and ``delta`` ``(T, B, F)`` follow the
    learner's data layout (a list of steps is shown stacked). Other shapes are returned as given.
    """
    if role in VECTORS:
        own = biases.get(role)
        if own is not None and len(shape) == 1 and int(np.prod(own)) == shape[0]:
            return own
    column = layout == "column"
    if len(shape) == 2:
        return shape[::-1] if column else shape  # (I, H) -> (H, I); a step (B, F) -> (F, B)
    if len(shape) != 3 or role not in ("x", "delta"):
        return shape
    T, B, F = shape
    if (role == "delta" and column) or (role == "x" and data == "column-steps"):
        return (T, F, B)
    if data == "batch-major":
        return (B, T, F)
    return (T, F) if data == "sequence" else shape
