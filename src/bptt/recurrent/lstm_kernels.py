"""Compiled LSTM steps (numba): one call per step for all of a step's gate arithmetic.

A step of ``LSTM``'s NumPy loop is one BLAS matmul and about ten elementwise NumPy calls on
``(B, H)`` blocks, so at the sizes of the character model (B = 32, H = 128) the calls, not the
arithmetic, set its pace. Here the matmul stays in NumPy (BLAS beats a compiled loop, and numba's
``np.dot`` needs SciPy) and everything else of a step is one compiled call, forward and backward,
writing the same buffers as the NumPy loop (``z``, ``gates``, ``cs``, ``tanh_c``, ``hs``; ``dz``),
so ``explain``, ``forward_cache`` and ``grad_a`` read them unchanged. The NumPy loop in
``lstm.py`` stays the readable reference; this path is taken when numba is installed, the batch
is not padded (no ``lengths``) and the environment variable ``BPTT_BACKEND`` is not ``numpy``.

**Numerics.** The kernels do the reference's operations in its order, in the layer's dtype, with
no fast-math and no fused multiply-adds, so the backward step agrees with the NumPy loop to the
last bit on the same inputs; ``σ`` and ``tanh`` are ``kernels``' vectorizable versions of the
library's formulas, within a few ulp of NumPy's. The backend choice (``use_compiled``, asked by
``Recurrent.compiled``), numba's lazy import and the compiling are ``kernels``', shared with
``gru_kernels``.
"""

from __future__ import annotations

import numpy as np

from .._types import Array
from .kernels import LazyKernels, sigmoid, tanh

__all__ = ["backward", "forward"]


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
                    zs[t, b, 2, j], gates[t, b, 2, j] = z, tanh(z)  # g = tanh(z_g)
            else:
                for j in range(H):
                    z = zs[t, b, k, j] + hz[b, k, j]
                    zs[t, b, k, j], gates[t, b, k, j] = z, sigmoid(z)  # i, f, o = σ(z)
        for j in range(H):
            i, f, g, o = gates[t, b, 0, j], gates[t, b, 1, j], gates[t, b, 2, j], gates[t, b, 3, j]
            c = f * cs[t, b, j] + i * g  # c_t = f ⊙ c_{t-1} + i ⊙ g
            tc = tanh(c)
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


_kernels = LazyKernels(_forward_step, _backward_step)  # compiled on first use


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
    step = _kernels()[0]
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
    step = _kernels()[1]
    dy = np.ascontiguousarray(dy)  # (T, B, H)
    T, B, _, H = dz.shape
    W_hh_T = np.ascontiguousarray(W_hh.T)  # (4H, H)
    dh_next, dc_next = np.zeros((B, H), dz.dtype), np.zeros((B, H), dz.dtype)  # (B, H)
    flat = dz.reshape(T, B, 4 * H)  # (T, B, 4H)
    for t in range(T - 1, -1, -1):
        step(t, dy, dh_next, dc_next, gates, cs, tanh_c, dz)
        np.dot(flat[t], W_hh_T, out=dh_next)  # δh_{t-1} through W_hhᵀ: (B, H)
    return dh_next, dc_next
