"""Pure math: activations, and their derivatives written in terms of their outputs.

Writing ``f'`` as a function of ``y = f(z)`` is what lets BPTT keep only the hidden states
``h_t`` instead of the pre-activations: ``tanh' = 1 - y²``, ``sigmoid' = y (1 - y)``,
``relu' = [y > 0]``.

Array arithmetic here and in the layers is written with explicit ``out=`` and in-place
operators rather than nested expressions such as ``1.0 - y * y``: on large arrays NumPy's
temporary elision inspects the C call stack, which costs up to a millisecond per expression
on some systems, and in-place updates also spare an allocation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._types import Array

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "column_sums",
    "one_hot",
    "sigmoid",
    "softmax",
    "softplus",
    "torch_activation",
]


def sigmoid(z: Array, out: Array | None = None) -> Array:
    """Logistic function ``σ(z) = 1 / (1 + e^{-z})``, within a few ulp of the exact value for any ``z``.

    Relatively accurate for both signs, unlike ``(1 + tanh(z/2)) / 2``, which cancels for
    ``z < 0`` (a relative error of 1.7e-4 at ``z = -30``, and 0 for 4e-18 at ``z = -40``): for
    ``z < 0`` it divides 1 by a large ``1 + e^{-z}``, which loses nothing. Where ``e^{-z}`` would
    overflow (``z < -709`` in float64, ``-88`` in float32) ``σ(z)`` is ``e^z`` to far below one
    ulp, and is computed so; one reduction per call finds out whether any ``z`` is there. The
    formula is analytic, so complex-step differentiation goes through it.

    Parameters
    ----------
    z : ndarray, any shape (real, or complex under gradcheck's probe)
    out : ndarray of ``z``'s shape, optional; may be ``z`` itself

    Returns
    -------
    ndarray of ``z``'s shape: ``out`` when given
    """
    z = np.asarray(z)
    if z.dtype.kind not in "fc":
        z = z.astype(np.float64)
    real = z.real if z.dtype.kind == "c" else z
    limit = _EXP_LIMIT.get(real.dtype, _EXP_LIMIT[np.dtype(np.float64)])
    if real.size and np.fmin.reduce(real, axis=None) < -limit:  # fmin: a NaN does not hide the tail
        tail = real < -limit
        tail_values = np.exp(z[tail])  # before ``out``, which may be ``z``, is written
        with np.errstate(over="ignore", invalid="ignore"):  # e^{-z} = inf there, overwritten below
            out = _plain_sigmoid(z, out)
        out[tail] = tail_values
        return out
    return _plain_sigmoid(z, out)


def _plain_sigmoid(z: Array, out: Array | None) -> Array:
    out = np.asarray(np.negative(z, out=out))  # a 0-d z gives a scalar, which has no ``out``
    np.exp(out, out=out)
    out += 1.0
    return np.divide(1.0, out, out=out)


# exp(x) is finite below these, so e^{-z} is for z above minus them.
_EXP_LIMIT: dict[np.dtype[Any], float] = {
    np.dtype(t): float(np.floor(np.log(np.finfo(t).max))) for t in (np.float16, np.float32, np.float64)
}


def softplus(z: Array) -> Array:
    """``log(1 + e^z)`` without overflow: ``max(z, 0) + log(1 + e^{-|z|})``.

    Written with ``where`` on the real part instead of ``abs`` so that it stays analytic and
    complex-step differentiation (see ``bptt.gradcheck``) goes through it.
    """
    pos = np.real(z) > 0
    out = np.where(pos, -z, z)  # -|z|
    np.exp(out, out=out)
    np.log1p(out, out=out)
    out += np.where(pos, z, 0.0)
    return out


def column_sums(a: Array, out: Array | None = None) -> Array:
    """``a.sum(axis=0)`` for a 2-D ``a (N, F)``, as ``ones(N) @ a``: BLAS beats NumPy's axis-0 reduce."""
    return np.dot(_ones(a.shape[0], a.dtype), a, out=out)


@lru_cache(maxsize=64)
def _ones(n: int, dtype: np.dtype[Any]) -> Array:
    ones = np.ones(n, dtype)
    ones.flags.writeable = False
    return ones


def one_hot(ids: NDArray[np.integer[Any]], size: int, dtype: DTypeLike = np.float64) -> Array:
    """Integer ids ``(...)`` in ``0..size-1`` as one-hot vectors ``(..., size)`` of ``dtype``."""
    out = np.zeros((*ids.shape, size), dtype)  # (..., size)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


def softmax(z: Array, axis: int = -1) -> Array:
    """Softmax along ``axis``, shifted by the maximum so no ``exp`` overflows."""
    e = np.exp(z - np.real(z).max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _tanh(z: Array, out: Array | None = None) -> Array:
    return np.tanh(z, out=out)


def _relu(z: Array, out: Array | None = None) -> Array:
    return np.maximum(z, 0.0, out=out)


def _identity(z: Array, out: Array | None = None) -> Array:
    if out is None:
        return z.copy()
    if out is not z:
        out[...] = z
    return out


def _dtanh(y: Array, out: Array | None = None) -> Array:
    out = np.multiply(y, y, out=out)
    return np.subtract(1.0, out, out=out)


def _dsigmoid(y: Array, out: Array | None = None) -> Array:
    out = np.subtract(1.0, y, out=out)
    out *= y
    return out


def _drelu(y: Array, out: Array | None = None) -> Array:
    return np.greater(y, 0, out=np.empty_like(y) if out is None else out)


def _didentity(y: Array, out: Array | None = None) -> Array:
    if out is None:
        return np.ones_like(y)
    out.fill(1.0)
    return out


class Activation:
    """An elementwise nonlinearity ``f`` with its derivative ``f'`` expressed through ``y = f(z)``.

    Attributes
    ----------
    name : str
    fn : callable ``(z, out=None) -> y``, any shape
    grad : callable ``(y, out=None) -> f'(z)``, same shape as ``y``
    """

    def __init__(self, name: str, fn: Callable[..., Array], grad: Callable[..., Array], formula: str) -> None:
        self.name, self.fn, self.grad, self.formula = name, fn, grad, formula

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", _tanh, _dtanh, "1 - y²"),
    "sigmoid": Activation("sigmoid", sigmoid, _dsigmoid, "y ⊙ (1 - y)"),
    "relu": Activation("relu", _relu, _drelu, "[y > 0]"),
    "identity": Activation("identity", _identity, _didentity, "1"),
}


def torch_activation(torch: Any, name: str) -> Callable[[Any], Any]:
    """The torch op computing ``ACTIVATIONS[name]`` on a tensor (for the torch forms of layers)."""
    ops: dict[str, Callable[[Any], Any]] = {
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "relu": torch.relu,
        "identity": lambda z: z,
    }
    return ops[name]
