"""The input weight's gradient for ids, compiled (numba): a scatter-add of δ rows.

With ids ``(T, B)`` for inputs, ``dW_ih = Σ_t x_tᵀ δ_t`` has one-hot ``x_t``, so row ``v`` of
``dW_ih`` is the sum of the δ rows whose id is ``v``. The NumPy reference (``Recurrent.weight_grads``)
builds the one-hot matrix and multiplies, ``(T·B, I)ᵀ @ (T·B, G·H)``, which is ``I`` times more
arithmetic than the sum: for the character model (98 symbols, LSTM 128, B 32, 50 steps) 0.83 ms of
an update's 7.4 ms in float32. Here each δ row is added once into its id's row (0.1 ms there),
in the order of the rows, so the result agrees with the matmul to round-off. Taken with the
cell's compiled steps (``Recurrent.compiled``).
"""

from __future__ import annotations

import numpy as np

from .._types import Array
from .kernels import LazyKernels

__all__ = ["row_sums"]


def _row_sums(ids: Array, d: Array, out: Array) -> None:  # pragma: no cover - compiled by numba
    """``out[v] = Σ_{n : ids[n] = v} d[n]``; ``ids`` are checked to lie in ``0..V-1`` beforehand."""
    V, G = out.shape
    zero = out.dtype.type(0.0)
    for v in range(V):
        for j in range(G):
            out[v, j] = zero
    for n in range(ids.shape[0]):
        row = out[ids[n]]  # (G,)
        for j in range(G):
            row[j] += d[n, j]


_kernels = LazyKernels(_row_sums)  # compiled on first use


def row_sums(ids: Array, d: Array, out: Array) -> Array:
    """Sum the rows of ``d`` by id into ``out``: ``dW_ih`` for one-hot inputs given as ids.

    Parameters
    ----------
    ids : ndarray of ints (N,)
        Each in ``0..V-1`` (``_validate.as_ids`` has checked them).
    d : ndarray (N, G)
        One δ row per id.
    out : ndarray (V, G)
        Overwritten with the sums; C-contiguous, of ``d``'s dtype.

    Returns
    -------
    out : ndarray (V, G)
    """
    _kernels()[0](np.ascontiguousarray(ids, np.intp), np.ascontiguousarray(d), out)
    return out
