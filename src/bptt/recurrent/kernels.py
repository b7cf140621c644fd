"""What the compiled recurrent steps share: the backend choice, numba's lazy import and the scalar math.

``lstm_kernels`` and ``gru_kernels`` each hold a cell's step kernels (plain Python functions,
compiled by numba); this module holds what both need, once:

* ``use_compiled(dtype, pays)``: whether a layer takes its compiled steps, from ``BPTT_BACKEND``
  (``auto``, ``numba`` or ``numpy``, read at each call), numba's presence, the dtype and, under
  ``auto``, whether compiling pays at the layer's size and outside a ``short_job()``;
* ``exp``, ``tanh``, ``sigmoid``: scalar functions for the kernels to call, with one version per
  dtype (float32, float64) that numba picks from the argument's type;
* ``LazyKernels``: a cell's step functions, compiled on first use (numba is imported then, not
  when bptt is), once per process and thread-safely, cached on disk where numba can.

**Numerics.** The nonlinearities are the library's formulas: ``σ(z) = 1 / (1 + e^{-z})``, and
``e^z`` where ``e^{-z}`` would overflow (``z < -88`` in float32, ``-709`` in float64), as
``functional.sigmoid``; ``tanh``. The scalar ``exp`` and ``tanh`` of the C library do not
vectorize, which made an LSTM step eight times slower than NumPy's SIMD calls, so they are written
out here (Cephes' range reduction and polynomials: ``e^x = 2^k e^r``, ``|r| ≤ ln2 / 2``; ``tanh``
a polynomial (float32) or rational function (float64) of ``x²`` for ``|x| ≤ 0.625``, else
``1 - 2 / (e^{2|x|} + 1)``), which the compiler vectorizes. Both are within 2.5 ulp of the exact
values, as NumPy's are, including the subnormal results of ``e^x``; NaN propagates. Every constant
is of the argument's type, so float32 stays float32; kernels are compiled with no fast-math
(``error_model="numpy"``: ``x / 0`` is inf or NaN, with no branch to raise).

**Caching.** numba keys a cached kernel on its own source file only: after editing this module,
delete the ``*.nbi``/``*.nbc`` files in ``recurrent/__pycache__`` (or touch the kernel modules),
or the kernels keep the old scalar functions. An installed package is unaffected.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["AVAILABLE", "BACKENDS", "LazyKernels", "exp", "short_job", "sigmoid", "tanh", "use_compiled"]

# numba takes 0.3 s or more to import: only find_spec looks for it when bptt is imported.
AVAILABLE = importlib.util.find_spec("numba") is not None
# BPTT_BACKEND: "numpy" forces the NumPy loops; "numba" requires the kernels; "auto" (or unset)
# takes the kernels when numba is installed and the layer says compiling pays at its size.
BACKENDS = ("auto", "numba", "numpy")


_SHORT_JOB: contextvars.ContextVar[bool] = contextvars.ContextVar("bptt_short_job", default=False)


@contextlib.contextmanager
def short_job() -> Iterator[None]:
    """Within it, ``BPTT_BACKEND=auto`` compiles nothing (``numba`` still does).

    For work known to be a few calls, such as an evaluation: however large they are, they never
    repay numba's import (0.3 s) and first compile (0.8 s a dtype), which the NumPy loops avoid.
    """
    token = _SHORT_JOB.set(True)
    try:
        yield
    finally:
        _SHORT_JOB.reset(token)


def use_compiled(dtype: Any, pays: bool = True) -> bool:
    """Whether a layer takes its compiled steps for arrays of ``dtype``.

    Parameters
    ----------
    dtype : dtype-like
        The layer's dtype: only float32 and float64 are compiled (not gradcheck's complex probe).
    pays : bool
        Whether compiling pays for itself at this call's size; ``auto`` then compiles only when
        it does, ``numba`` always.

    Returns
    -------
    bool
        True when numba is installed, ``dtype`` is float32 or float64 and ``BPTT_BACKEND`` (read
        at each call) is ``numba``, or ``auto`` (or unset) and ``pays``, outside a ``short_job``.

    Raises
    ------
    ValueError
        ``BPTT_BACKEND`` is none of ``auto``, ``numba``, ``numpy``.
    RuntimeError
        ``BPTT_BACKEND=numba`` but numba is not installed.
    """
    backend = os.environ.get("BPTT_BACKEND", "auto").strip().lower() or "auto"
    if backend not in BACKENDS:
        raise ValueError(f"BPTT_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "numba" and not AVAILABLE:
        raise RuntimeError("BPTT_BACKEND=numba, but numba is not installed: pip install numba")
    wanted = backend == "numba" or (backend == "auto" and pays and not _SHORT_JOB.get())
    return wanted and AVAILABLE and np.dtype(dtype) in (np.float32, np.float64)


# --- Scalar exp, tanh and sigmoid, one version per dtype (chosen by numba's `overload`) -----------
# The public names are stubs for kernels to call: `_register` gives each its dtypes' versions.
def exp(x: Any) -> Any:  # pragma: no cover - a stub for numba; the versions are below
    """``e^x`` inside a compiled kernel (float32 or float64 ``x``); not callable from Python."""
    raise NotImplementedError("kernels.exp is for numba kernels only")


def tanh(x: Any) -> Any:  # pragma: no cover
    """``tanh x`` inside a compiled kernel (float32 or float64 ``x``); not callable from Python."""
    raise NotImplementedError("kernels.tanh is for numba kernels only")


def sigmoid(x: Any) -> Any:  # pragma: no cover
    """``functional.sigmoid`` inside a compiled kernel; not callable from Python."""
    raise NotImplementedError("kernels.sigmoid is for numba kernels only")


def _exp_f32(x: Any) -> Any:  # pragma: no cover - compiled by numba
    """``e^x`` in float32 for ``x`` up to 88.72 (below ln of float32's max): Cephes ``expf``."""
    f = np.float32
    x = f(-104.0) if x < f(-104.0) else x  # e^-104 is below float32's least subnormal
    x = f(88.72) if x > f(88.72) else x
    k = (x * f(1.44269504088896341) + f(12582912.0)) - f(12582912.0)  # round(x / ln2)
    r = (x - k * f(0.693359375)) - k * f(-2.12194440e-4)  # x - k ln2, |r| ≤ ln2 / 2
    p = ((f(1.9875691500e-4) * r + f(1.3981999507e-3)) * r + f(8.3334519073e-3)) * r + f(4.1665795894e-2)
    p = ((p * r + f(1.6666665459e-1)) * r + f(5.0000001201e-1)) * (r * r) + r + f(1.0)  # e^r
    k1 = np.int32(k) >> np.int32(1)  # 2^k as 2^k1 · 2^k2, each a normal number, so that
    k2 = np.int32(k) - k1  # e^x may round once into the subnormals
    s1 = np.int32((k1 + np.int32(127)) << np.int32(23)).view(np.float32)
    s2 = np.int32((k2 + np.int32(127)) << np.int32(23)).view(np.float32)
    return (p * s1) * s2


def _exp_f64(x: Any) -> Any:  # pragma: no cover - compiled by numba
    """``e^x`` in float64 for ``x`` up to 709.78 (below ln of float64's max): Cephes ``exp``."""
    x = -745.2 if x < -745.2 else x  # e^-745.2 is below float64's least subnormal
    x = 709.78 if x > 709.78 else x
    k = (x * 1.4426950408889634073599 + 6755399441055744.0) - 6755399441055744.0  # round(x / ln2)
    r = (x - k * 6.93145751953125e-1) - k * 1.42860682030941723212e-6  # |r| ≤ ln2 / 2
    rr = r * r
    p = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr + 9.99999999999999999910e-1)
    q = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr + 2.27265548208155028766e-1) * rr
    p = 1.0 + 2.0 * (p / ((q + 2.00000000000000000009e0) - p))  # e^r, Padé form
    k1 = np.int64(k) >> np.int64(1)
    k2 = np.int64(k) - k1
    s1 = np.int64((k1 + np.int64(1023)) << np.int64(52)).view(np.float64)
    s2 = np.int64((k2 + np.int64(1023)) << np.int64(52)).view(np.float64)
    return (p * s1) * s2


def _tanh_f32(x: Any) -> Any:  # pragma: no cover - compiled by numba
    """``tanh x`` in float32: Cephes ``tanhf``; both branches are computed, so the loop vectorizes."""
    f = np.float32
    ax = abs(x)
    large = f(1.0) - f(2.0) / (exp(ax + ax) + f(1.0))  # 1 - 2 / (e^{2|x|} + 1)
    large = -large if x < f(0.0) else large
    z = x * x
    p = ((f(-5.70498872745e-3) * z + f(2.06390887954e-2)) * z - f(5.37397155531e-2)) * z
    small = ((p + f(1.33314422036e-1)) * z - f(3.33332819422e-1)) * z * x + x
    small = x if z == f(0.0) else small  # keeps the sign of -0
    return large if ax > f(0.625) else small


def _tanh_f64(x: Any) -> Any:  # pragma: no cover - compiled by numba
    """``tanh x`` in float64: Cephes ``tanh``."""
    ax = abs(x)
    large = 1.0 - 2.0 / (exp(ax + ax) + 1.0)
    large = -large if x < 0.0 else large
    z = x * x
    p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z - 1.61468768441708447952e3
    q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z + 4.84406305325125486048e3
    small = x + x * z * (p / q)
    small = x if z == 0.0 else small  # keeps the sign of -0
    return large if ax > 0.625 else small


def _sigmoid_f32(x: Any) -> Any:  # pragma: no cover - compiled by numba
    """``functional.sigmoid`` in float32: ``1 / (1 + e^{-x})``, and ``e^x`` for ``x < -88``."""
    tail = x < np.float32(-88.0)
    e = exp(x if tail else -x)
    return e if tail else np.float32(1.0) / (np.float32(1.0) + e)


def _sigmoid_f64(x: Any) -> Any:  # pragma: no cover - compiled by numba
    """``functional.sigmoid`` in float64: ``1 / (1 + e^{-x})``, and ``e^x`` for ``x < -709``."""
    tail = x < -709.0
    e = exp(x if tail else -x)
    return e if tail else 1.0 / (1.0 + e)


# --- Compiling on first use ------------------------------------------------------------------------
_lock = threading.RLock()
_registered = False


def _register() -> None:
    """Import numba and give each stub its float32 and float64 versions (once per process)."""
    global _registered
    with _lock:
        if _registered:
            return
        import numba

        for stub, for_f32, for_f64 in (
            (exp, _exp_f32, _exp_f64),
            (tanh, _tanh_f32, _tanh_f64),
            (sigmoid, _sigmoid_f32, _sigmoid_f64),
        ):
            choose = _by_dtype(numba.types.float32, for_f32, for_f64)
            numba.extending.overload(stub, jit_options={"error_model": "numpy"})(choose)
        _registered = True


def _by_dtype(f32: Any, for_f32: Any, for_f64: Any) -> Any:
    """numba's typing function for a stub: ``for_f32`` for a float32 argument, else ``for_f64``."""

    def choose(x: Any) -> Any:
        return for_f32 if x == f32 else for_f64

    return choose


class LazyKernels:
    """A cell's step functions, compiled by numba on the first call, once per process.

    Parameters
    ----------
    *functions : callable
        Plain Python step functions written for numba; they may call ``exp``, ``tanh`` and
        ``sigmoid`` of this module.

    Notes
    -----
    Calling the instance returns the compiled functions, in the order given. Each is compiled
    ``njit(cache=True, error_model="numpy")`` (no fast-math, so no fused multiply-adds), once per
    argument dtype on its first call (about a second); the compiled code is cached on disk where
    numba finds a writable place (beside the module, or the user's cache directory), else it is
    compiled in every process.
    """

    def __init__(self, *functions: Callable[..., None]) -> None:
        self._functions = functions
        self._compiled: tuple[Any, ...] | None = None

    def __call__(self) -> tuple[Any, ...]:
        """The compiled step functions, compiling them on the first call (thread-safe)."""
        compiled = self._compiled
        if compiled is None:
            with _lock:
                if self._compiled is None:
                    self._compiled = self._jit()
                compiled = self._compiled
        return compiled

    def _jit(self) -> tuple[Any, ...]:
        """Register the scalar functions and wrap each step function with ``numba.njit``."""
        _register()
        import numba

        try:
            jit = numba.njit(cache=True, error_model="numpy")
            return tuple(jit(f) for f in self._functions)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            jit = numba.njit(cache=False, error_model="numpy")
            return tuple(jit(f) for f in self._functions)
