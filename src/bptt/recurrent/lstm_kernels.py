"""Compiled LSTM steps (numba): one call per step for all of a step's gate arithmetic.

A step of ``LSTM``'s NumPy loop is one BLAS matmul and about ten elementwise NumPy calls on
``(B, H)`` blocks, so at the sizes of the character model (B = 32, H = 128) the calls, not the
arithmetic, set its pace. Here the matmul stays in NumPy (BLAS beats a compiled loop, and numba's
``np.dot`` needs SciPy) and everything else of a step is one compiled call, forward and backward,
writing the same buffers as the NumPy loop (``z``, ``gates``, ``cs``, ``tanh_c``, ``hs``; ``dz``),
so ``explain``, ``forward_cache`` and ``grad_a`` read them unchanged. The NumPy loop in
``lstm.py`` stays the readable reference; this path is taken when numba is installed, the batch
is not padded (no ``lengths``) and the environment variable ``BPTT_BACKEND`` is not ``numpy``.

**Numerics.** The kernels do the reference's operations in its order, in the layer's dtype
(float32 stays float32: every constant is of the array's type), with no fast-math and no fused
multiply-adds, so the backward step agrees with the NumPy loop to the last bit on the same inputs.
The nonlinearities are the library's formulas: ``σ(z) = 1 / (1 + e^{-z})``, and ``e^z`` where
``e^{-z}`` would overflow (``z < -88`` in float32, ``-709`` in float64), as ``functional.sigmoid``;
``tanh``. The scalar ``exp`` and ``tanh`` of the C library do not vectorize, which made a step
eight times slower than NumPy's SIMD calls, so ``exp`` and ``tanh`` are written out here
(Cephes' range reduction and polynomials: ``e^x = 2^k e^r``, ``|r| ≤ ln2 / 2``; ``tanh`` a
polynomial (float32) or rational function (float64) of ``x²`` for ``|x| ≤ 0.625``, else
``1 - 2 / (e^{2|x|} + 1)``), which the compiler vectorizes. Both are within 2.5 ulp of the exact
values, as NumPy's are, including the subnormal results of ``e^x``; NaN propagates.

numba takes 0.3 s or more to import: only ``find_spec`` looks for it when bptt is imported, and
the kernels are compiled on first use, about a second per dtype (``cache=True``: later processes
load them from numba's cache in a fraction of that).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any

import numpy as np

from .._types import Array

__all__ = ["AVAILABLE", "BACKENDS", "backward", "forward", "use_compiled"]

AVAILABLE = importlib.util.find_spec("numba") is not None
# BPTT_BACKEND: "numpy" forces the NumPy loops; "numba" requires the kernels; "auto" (or unset)
# takes the kernels when numba is installed.
BACKENDS = ("auto", "numba", "numpy")


def use_compiled(dtype: Any) -> bool:
    """Whether ``LSTM`` takes the compiled steps for arrays of ``dtype``: float32 or float64 (not
    gradcheck's complex probe), numba installed, and ``BPTT_BACKEND`` (read at each call) not
    ``numpy``.

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
    return backend != "numpy" and AVAILABLE and np.dtype(dtype) in (np.float32, np.float64)


# --- Scalar exp, tanh and sigmoid, one version per dtype (chosen by numba's `overload`) -----------
# Names without a body are stubs: `_compile` registers each dtype's version for them.
def _exp(x: Any) -> Any:  # pragma: no cover - a stub for numba; the versions are below
    raise NotImplementedError


def _tanh(x: Any) -> Any:  # pragma: no cover
    raise NotImplementedError


def _sigmoid(x: Any) -> Any:  # pragma: no cover
    raise NotImplementedError


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
    large = f(1.0) - f(2.0) / (_exp(ax + ax) + f(1.0))  # 1 - 2 / (e^{2|x|} + 1)
    large = -large if x < f(0.0) else large
    z = x * x
    p = ((f(-5.70498872745e-3) * z + f(2.06390887954e-2)) * z - f(5.37397155531e-2)) * z
    small = ((p + f(1.33314422036e-1)) * z - f(3.33332819422e-1)) * z * x + x
    small = x if z == f(0.0) else small  # keeps the sign of -0
    return large if ax > f(0.625) else small


def _tanh_f64(x: Any) -> Any:  # pragma: no cover - compiled by numba
    """``tanh x`` in float64: Cephes ``tanh``."""
    ax = abs(x)
    large = 1.0 - 2.0 / (_exp(ax + ax) + 1.0)
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
    e = _exp(x if tail else -x)
    return e if tail else np.float32(1.0) / (np.float32(1.0) + e)


def _sigmoid_f64(x: Any) -> Any:  # pragma: no cover - compiled by numba
    """``functional.sigmoid`` in float64: ``1 / (1 + e^{-x})``, and ``e^x`` for ``x < -709``."""
    tail = x < -709.0
    e = _exp(x if tail else -x)
    return e if tail else 1.0 / (1.0 + e)


# --- The step kernels ----------------------------------------------------------------------------
def _forward_step(
    t: int, zs: Array, hz: Array, gates: Array, cs: Array, tanh_c: Array, hs: Array
) -> None:  # pragma: no cover - compiled by numba
    """Step ``t`` after ``hz = h_{t-1} W_hh``: ``z_t``, its gates, ``c_t``, ``tanh c_t`` and ``h_t``.

    One short loop over ``j`` per gate: each compiles to SIMD code, where one loop doing all of
    a step's five ``exp`` and ``tanh`` is too large for the compiler to inline them and vectorize.
    """
    B, _, H = hz.shape
    for b in range(B):
        for k in range(4):  # i, f, g, o
            if k == 2:
                for j in range(H):
                    z = zs[t, b, 2, j] + hz[b, 2, j]  # z_t = x_t W_ih + b + h_{t-1} W_hh
                    zs[t, b, 2, j], gates[t, b, 2, j] = z, _tanh(z)  # g = tanh(z_g)
            else:
                for j in range(H):
                    z = zs[t, b, k, j] + hz[b, k, j]
                    zs[t, b, k, j], gates[t, b, k, j] = z, _sigmoid(z)  # i, f, o = σ(z)
        for j in range(H):
            i, f, g, o = gates[t, b, 0, j], gates[t, b, 1, j], gates[t, b, 2, j], gates[t, b, 3, j]
            c = f * cs[t, b, j] + i * g  # c_t = f ⊙ c_{t-1} + i ⊙ g
            tc = _tanh(c)
            cs[t + 1, b, j], tanh_c[t, b, j] = c, tc
            hs[t + 1, b, j] = o * tc  # h_t = o ⊙ tanh(c_t)


def _backward_step(
    t: int, dy: Array, dh_next: Array, dc_next: Array, gates: Array, cs: Array, tanh_c: Array, dz: Array
) -> None:  # pragma: no cover - compiled by numba
    """Step ``t`` of BPTT given ``δh`` from step t+1 in ``dh_next``: ``δz_t``, and ``δc_{t-1}`` into
    ``dc_next`` (``dh_next`` is left holding ``δh_t``).

    One loop per gate: a loop touching all nine arrays at once needs more overlap checks than the
    compiler makes before it vectorizes.
    """
    B, H = dc_next.shape
    one = dz.dtype.type(1.0)
    for b in range(B):
        for j in range(H):
            tc = tanh_c[t, b, j]
            dh = dy[t, b, j] + dh_next[b, j]  # δh_t: from the output and from step t+1
            dh_next[b, j] = dh
            dc_next[b, j] = dh * ((one - tc * tc) * gates[t, b, 3, j]) + dc_next[b, j]  # δc_t
        for j in range(H):  # δz_i = δc ⊙ g ⊙ i(1-i)
            i = gates[t, b, 0, j]
            dz[t, b, 0, j] = (((one - i) * i) * gates[t, b, 2, j]) * dc_next[b, j]
        for j in range(H):  # δz_f = δc ⊙ c_{t-1} ⊙ f(1-f)
            f = gates[t, b, 1, j]
            dz[t, b, 1, j] = (((one - f) * f) * cs[t, b, j]) * dc_next[b, j]
        for j in range(H):  # δz_g = δc ⊙ i ⊙ (1-g²)
            g = gates[t, b, 2, j]
            dz[t, b, 2, j] = ((one - g * g) * gates[t, b, 0, j]) * dc_next[b, j]
        for j in range(H):  # δz_o = δh ⊙ tanh(c_t) ⊙ o(1-o)
            o = gates[t, b, 3, j]
            dz[t, b, 3, j] = dh_next[b, j] * (((one - o) * o) * tanh_c[t, b, j])
        for j in range(H):  # δc_{t-1} = δc_t ⊙ f_t
            dc_next[b, j] *= gates[t, b, 1, j]


_kernels: Any = None  # (forward step, backward step), compiled on first use
_lock = threading.Lock()


def _compile() -> Any:
    """Register the per-dtype scalar functions with numba and compile the two step kernels.

    The kernels are cached on disk where numba finds a writable place (beside this file, or the
    user's cache directory); where it finds none they are compiled in every process instead."""
    global _kernels
    if _kernels is not None:
        return _kernels
    with _lock:
        if _kernels is None:
            _kernels = _jit_kernels()
    return _kernels


def _jit_kernels() -> Any:
    """Import numba, give each stub its float32 and float64 versions, and wrap the step kernels."""
    import numba

    for stub, for_f32, for_f64 in (
        (_exp, _exp_f32, _exp_f64),
        (_tanh, _tanh_f32, _tanh_f64),
        (_sigmoid, _sigmoid_f32, _sigmoid_f64),
    ):
        choose = _by_dtype(numba.types.float32, for_f32, for_f64)
        # error_model "numpy": x / 0 is inf or NaN, as in NumPy, with no branch to raise
        numba.extending.overload(stub, jit_options={"error_model": "numpy"})(choose)
    try:
        jit = numba.njit(cache=True, error_model="numpy")
        return jit(_forward_step), jit(_backward_step)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        jit = numba.njit(cache=False, error_model="numpy")
        return jit(_forward_step), jit(_backward_step)


def _by_dtype(f32: Any, for_f32: Any, for_f64: Any) -> Any:
    """numba's typing function for a stub: ``for_f32`` for a float32 argument, else ``for_f64``."""

    def choose(x: Any) -> Any:
        return for_f32 if x == f32 else for_f64

    return choose


# --- The loops ------------------------------------------------------------------------------------
def forward(zs: Array, W_hh: Array, gates: Array, cs: Array, tanh_c: Array, hs: Array) -> None:
    """``LSTM``'s forward loop without padding, one matmul and one compiled call per step.

    Parameters
    ----------
    zs : ndarray (T, B, 4, H)
        ``x_t W_ih + b`` on entry, ``z_t`` on return.
    W_hh : ndarray (H, 4H)
    gates : ndarray (T, B, 4, H)
        Filled with ``i, f, g, o``.
    cs, hs : ndarray (T+1, B, H)
        ``c_0``, ``h_0`` on entry in ``[0]``; ``c_t``, ``h_t`` filled in ``[t]``.
    tanh_c : ndarray (T, B, H)
        Filled with ``tanh c_t``.

    All arrays are C-contiguous, of one dtype (float32 or float64).
    """
    step = _compile()[0]
    T, B, _, H = zs.shape
    hz = np.empty((B, 4 * H), zs.dtype)  # (B, 4H)
    blocks = hz.reshape(B, 4, H)  # (B, 4, H)
    for t in range(T):
        np.dot(hs[t], W_hh, out=hz)  # h_{t-1} W_hh: (B, 4H)
        step(t, zs, blocks, gates, cs, tanh_c, hs)


def backward(
    dy: Array, W_hh: Array, gates: Array, cs: Array, tanh_c: Array, dz: Array
) -> tuple[Array, Array]:
    """``LSTM``'s BPTT loop without padding, one compiled call and one matmul per step.

    Parameters
    ----------
    dy : ndarray (T, B, H)
        ``∂L/∂h_t`` from the layer's output.
    W_hh : ndarray (H, 4H)
    gates : ndarray (T, B, 4, H)
        ``i, f, g, o`` of the forward pass.
    cs : ndarray (T+1, B, H)
        ``c_0 .. c_T``.
    tanh_c : ndarray (T, B, H)
        ``tanh c_t``.
    dz : ndarray (T, B, 4, H)
        Filled with ``δz_t``.

    Returns
    -------
    grad_h0, grad_c0 : ndarray (B, H)

    All arrays are C-contiguous, of one dtype (float32 or float64).
    """
    step = _compile()[1]
    dy = np.ascontiguousarray(dy)  # (T, B, H)
    T, B, _, H = dz.shape
    W_hh_T = np.ascontiguousarray(W_hh.T)  # (4H, H)
    dh_next, dc_next = np.zeros((B, H), dz.dtype), np.zeros((B, H), dz.dtype)  # (B, H)
    flat = dz.reshape(T, B, 4 * H)  # (T, B, 4H)
    for t in range(T - 1, -1, -1):
        step(t, dy, dh_next, dc_next, gates, cs, tanh_c, dz)
        np.dot(flat[t], W_hh_T, out=dh_next)  # δh_{t-1} through W_hhᵀ: (B, H)
    return dh_next, dc_next
