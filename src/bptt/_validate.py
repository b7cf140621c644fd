"""Argument checks shared by every public entry point; each failure names what was expected."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import ShapeError, fmt_shape

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Complex arrays flow through the layers only while gradcheck's complex-step probe runs.
COMPLEX_PROBE: ContextVar[bool] = ContextVar("bptt_complex_probe", default=False)


def as_float_dtype(dtype: Any, where: str) -> np.dtype[Any]:
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise ``TypeError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in FLOAT_DTYPES:
        raise TypeError(f"{where}: dtype must be np.float32 or np.float64, got {dtype!r}")
    return dt


def as_rng(rng: np.random.Generator | int | None, where: str) -> np.random.Generator:
    """An explicit generator: pass one through, seed a new one from an int, or draw fresh entropy."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0):
        return np.random.default_rng(rng)
    kind = ValueError if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) else TypeError
    raise kind(f"{where}: rng must be a numpy Generator, an int seed ≥ 0 or None, got {rng!r}")


def weight_rng(rng: np.random.Generator | int | None, where: str, default: int = 0) -> np.random.Generator:
    """The generator a layer draws its initial weights from: ``rng=None`` means seed ``default``.

    So a model's weights follow from its code alone (``RNN(2, 8)`` is ``RNN(2, 8, rng=0)``) in any
    process, as with PyTorch's fixed default seed. Data sampling keeps ``as_rng``, where ``None``
    is fresh entropy, so that batches drawn in a loop differ.
    """
    return as_rng(default if rng is None else rng, where)


def positive_int(value: Any, where: str, name: str) -> int:
    """``value`` as an int ≥ 1, refusing bools, floats and everything else."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


def as_array(x: Any, dtype: np.dtype[Any] | None, where: str, name: str) -> NDArray[Any]:
    """``x`` as a float array. Integer and boolean arrays are cast (to ``dtype``, or float64).

    Float arrays are cast to ``dtype`` when one is given, so a float32 layer accepts float64
    input and the reverse. Anything that is not a real number refuses with ``TypeError``.
    """
    a = np.asarray(x)
    complex_ok = a.dtype.kind == "c" and COMPLEX_PROBE.get()
    if a.dtype.kind not in "biuf" and not complex_ok:
        raise TypeError(f"{where}: {name} must be an array of real numbers, got dtype {a.dtype}")
    if dtype is None:
        dtype = a.dtype if a.dtype in FLOAT_DTYPES or complex_ok else np.dtype(np.float64)
    return a.astype(dtype, copy=False)


def as_ids(a: NDArray[Any], size: int, where: str) -> NDArray[np.intp]:
    """Integer ids ``(T, B)`` (``T, B ≥ 1``), each in ``0..size-1``, as ``intp``; else a clear error."""
    if not (a.shape[0] and a.shape[1]):
        raise ShapeError(f"{where}: x has shape {fmt_shape(a.shape)}; expected ids (T, B) with T, B ≥ 1")
    low, high = int(a.min()), int(a.max())
    if low < 0 or high >= size:
        bad = low if low < 0 else high
        raise ValueError(f"{where}: x holds id {bad}; expected integer ids in 0..{size - 1}, one per input")
    return a.astype(np.intp, copy=False)


def check_sequence(
    x: NDArray[Any], where: str, name: str, letters: str, features: int | None
) -> tuple[int, int, int]:
    """Check that ``x`` is a time-major sequence ``(T, B, F)`` with ``F == features``.

    ``letters`` names the axes for the message, e.g. ``"(T, B, I)"``.
    """
    if x.ndim == 3 and x.shape[0] and x.shape[1] and features in (None, x.shape[2]):
        return x.shape  # the common case, before any message is formatted
    got = fmt_shape(x.shape)
    want = letters if features is None else f"{letters} = (T, B, {features})"
    if x.ndim != 3:
        raise ShapeError(
            f"{where}: {name} has shape {got}; expected {want}, "
            f"a time-major sequence with 3 axes (a single sequence is B = 1)"
        )
    T, B, F = x.shape
    if T == 0 or B == 0:
        raise ShapeError(
            f"{where}: {name} has shape {got}; expected {letters} with T ≥ 1 steps and "
            f"B ≥ 1 sequences, not an empty sequence or batch"
        )
    if features is not None and features != F:
        raise ShapeError(f"{where}: {name} has shape {got}; expected {letters} = ({T}, {B}, {features})")
    return T, B, F


def check_same_shape(
    a: NDArray[Any], expected: tuple[int, ...], where: str, name: str, letters: str, why: str
) -> None:
    """Raise ``ShapeError`` unless ``a.shape == expected``."""
    if a.shape != expected:
        raise ShapeError(
            f"{where}: {name} has shape {fmt_shape(a.shape)}; expected {letters} = "
            f"{fmt_shape(expected)}, {why}"
        )
