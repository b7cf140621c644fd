"""Compiled GRU steps (numba): one call per step for all of a step's gate arithmetic.

A step of ``GRU``'s NumPy loop is one BLAS matmul and about ten elementwise NumPy calls on
``(B, H)`` blocks (eight going backward), and at the sizes people learn with the calls, not the
arithmetic, set its pace. Here the matmul stays in NumPy (``np.dot`` into the same buffers) and
everything else of a step is one compiled call, forward and backward, writing the buffers the
NumPy loop writes (``hw``, ``gates``, ``hs``; ``d_in``'s n block and ``d_rec``), so ``backward``,
``forward_cache``, ``grad_a``, ``grad_r`` and ``explain`` read them unchanged. The NumPy loops in
``gru.py`` stay the readable reference; this path is taken under the rules of ``lstm_kernels``
(``kernels.use_compiled``, and no padded step).

**Numerics.** The kernels do the reference's operations in its order, in the layer's dtype, with
no fast-math and no fused multiply-adds: the backward step agrees with the NumPy loop to the last
bit on the same forward caches, and the forward step to the few ulp by which ``kernels``' ``σ`` and
``tanh`` differ from NumPy's. The backward kernel computes the reference's per-step factors
(``δn̂/δh``, ``δẑ/δh``, ``δr̂/δn̂``) inline instead of into buffers of their own.
"""

from __future__ import annotations

import numpy as np

from .._types import Array
from .kernels import LazyKernels, sigmoid, tanh

__all__ = ["backward", "forward"]


# --- The step kernels ----------------------------------------------------------------------------
def _forward_step(
    t: int, xw: Array, hw: Array, b_hn: Array, bias: bool, gates: Array, hs: Array
) -> None:  # pragma: no cover - compiled by numba
    """Step ``t`` after ``hw[t] = h_{t-1} W_hh``: ``+ b_hn`` on its n block, ``r, z, n`` and ``h_t``.

    One short loop over ``j`` per gate, as in ``lstm_kernels``: each compiles to SIMD code.
    """
    B, _, H = hw.shape[1:]
    for b in range(B):
        if bias:
            for j in range(H):
                hw[t, b, 2, j] += b_hn[j]  # h W_hn + b_hn
        for k in range(2):  # r, z = σ(x W_i + b + h W_h)
            for j in range(H):
                gates[t, b, k, j] = sigmoid(xw[t, b, k, j] + hw[t, b, k, j])
        for j in range(H):  # n's pre-activation x W_in + b_n + r ⊙ (h W_hn + b_hn) ...
            gates[t, b, 2, j] = gates[t, b, 0, j] * hw[t, b, 2, j] + xw[t, b, 2, j]
        for j in range(H):  # ... then n = tanh of it, in place: a loop that also read r from
            gates[t, b, 2, j] = tanh(gates[t, b, 2, j])  # `gates` would not vectorize (9x slower)
        for j in range(H):  # h_t = n + z ⊙ (h_{t-1} - n)
            n = gates[t, b, 2, j]
            hs[t + 1, b, j] = (hs[t, b, j] - n) * gates[t, b, 1, j] + n


def _backward_step(
    t: int,
    dy: Array,
    dh_next: Array,
    dh: Array,
    gates: Array,
    hs: Array,
    hw: Array,
    d_in: Array,
    d_rec: Array,
) -> None:  # pragma: no cover - compiled by numba
    """Step ``t`` of BPTT: ``δh_t`` into ``dh``, ``δn̂`` into ``d_in[t]``'s n block and
    ``[δr̂, δẑ, r ⊙ δn̂]`` into ``d_rec[t]``.

    On entry ``dh_next`` holds ``δ_{t+1} @ W_hhᵀ`` and ``dh`` holds ``δh_{t+1}`` (both zeros at
    ``t = T-1``): ``δh_t = ∂L/∂h_t + (δ_{t+1} @ W_hhᵀ + δh_{t+1} ⊙ z_{t+1})``, the direct path
    through ``z`` of step t+1 added here rather than after that step's matmul.
    """
    T, B, _, H = gates.shape
    one = dh.dtype.type(1.0)
    later = t + 1 < T
    for b in range(B):
        if later:
            for j in range(H):
                dh_next[b, j] += dh[b, j] * gates[t + 1, b, 1, j]  # δh_{t+1} ⊙ z_{t+1}
        for j in range(H):
            dh[b, j] = dy[t, b, j] + dh_next[b, j]  # δh_t: from the output and from step t+1
        for j in range(H):  # δn̂ = δh ⊙ (1 - n²) ⊙ (1 - z)
            n = gates[t, b, 2, j]
            d_in[t, b, 2, j] = dh[b, j] * ((one - n * n) * (one - gates[t, b, 1, j]))
        for j in range(H):  # δẑ = δh ⊙ z(1 - z) ⊙ (h_{t-1} - n)
            z = gates[t, b, 1, j]
            d_rec[t, b, 1, j] = dh[b, j] * (((one - z) * z) * (hs[t, b, j] - gates[t, b, 2, j]))
        for j in range(H):  # δr̂ = δn̂ ⊙ r(1 - r) ⊙ (h W_hn + b_hn)
            r = gates[t, b, 0, j]
            d_rec[t, b, 0, j] = d_in[t, b, 2, j] * (((one - r) * r) * hw[t, b, 2, j])
        for j in range(H):  # the recurrent side's n block: r ⊙ δn̂
            d_rec[t, b, 2, j] = d_in[t, b, 2, j] * gates[t, b, 0, j]


_kernels = LazyKernels(_forward_step, _backward_step)  # compiled on first use


# --- The loops ------------------------------------------------------------------------------------
def forward(xw: Array, W_hh: Array, b_hn: Array | None, hw: Array, gates: Array, hs: Array) -> None:
    """``GRU``'s forward loop without padding, one matmul and one compiled call per step.

    Parameters
    ----------
    xw : ndarray (T, B, 3, H)
        ``x_t W_ih + b``, blocks ``r, z, n``.
    W_hh : ndarray (H, 3H)
    b_hn : ndarray (H,) or None
        The n gate's recurrent bias (``None``: no bias).
    hw : ndarray (T, B, 3, H)
        Filled with ``h_{t-1} W_hh``, plus ``b_hn`` on the n block.
    gates : ndarray (T, B, 3, H)
        Filled with ``r, z, n``.
    hs : ndarray (T+1, B, H)
        ``h_0`` on entry in ``[0]``; ``h_t`` filled in ``[t]``.

    All arrays are C-contiguous, of one dtype (float32 or float64).
    """
    step = _kernels()[0]
    T, B, _, H = xw.shape
    bias = b_hn is not None
    b = np.ascontiguousarray(b_hn) if b_hn is not None else np.zeros(H, xw.dtype)  # (H,)
    for t in range(T):
        np.dot(hs[t], W_hh, out=hw[t].reshape(B, 3 * H))  # h_{t-1} W_hh: (B, 3H)
        step(t, xw, hw, b, bias, gates, hs)


def backward(dy: Array, W_hh: Array, gates: Array, hs: Array, hw: Array, d_in: Array, d_rec: Array) -> Array:
    """``GRU``'s BPTT loop without padding, one compiled call and one matmul per step.

    Parameters
    ----------
    dy : ndarray (T, B, H)
        ``∂L/∂h_t`` from the layer's output.
    W_hh : ndarray (H, 3H)
    gates : ndarray (T, B, 3, H)
        ``r, z, n`` of the forward pass.
    hs : ndarray (T+1, B, H)
        ``h_0 .. h_T``.
    hw : ndarray (T, B, 3, H)
        ``h_{t-1} W_hh`` (+ ``b_hn`` on the n block).
    d_in, d_rec : ndarray (T, B, 3, H)
        Filled: ``d_in``'s n block with ``δn̂``, ``d_rec`` with ``[δr̂, δẑ, r ⊙ δn̂]`` (the caller
        copies ``d_rec``'s r and z blocks into ``d_in``'s).

    Returns
    -------
    grad_h0 : ndarray (B, H)

    All arrays are C-contiguous, of one dtype (float32 or float64).
    """
    step = _kernels()[1]
    dy = np.ascontiguousarray(dy)  # (T, B, H)
    T, B, _, H = d_rec.shape
    W_hh_T = np.ascontiguousarray(W_hh.T)  # (3H, H)
    dh_next, dh = np.zeros((B, H), d_rec.dtype), np.zeros((B, H), d_rec.dtype)  # (B, H)
    flat = d_rec.reshape(T, B, 3 * H)  # (T, B, 3H)
    for t in range(T - 1, -1, -1):
        step(t, dy, dh_next, dh, gates, hs, hw, d_in, d_rec)
        np.dot(flat[t], W_hh_T, out=dh_next)  # δ_t @ W_hhᵀ: (B, H)
    dh *= gates[0, :, 1]  # δh_1 ⊙ z_1: the direct path to h_0
    dh_next += dh
    return dh_next
