"""Compiled RNN steps (numba): the Elman recurrence and its BPTT loop, for all four activations.

A step of ``RNN``'s NumPy loop is three calls (a matmul, an add, the activation) going forward and
three going back, and at the sizes people learn with (B·H² of a few thousand) the calls, not the
arithmetic, set its pace; float64 ``np.tanh`` is also not vectorized. So:

* **small steps** (``B·H² ≤ SMALL``): the whole loop is one compiled call, the matmul
  ``h_{t-1} @ W_hh`` written out (a loop over ``k`` adding ``h_k · W_hh[k]`` to the row, which
  vectorizes over ``j``);
* **larger steps**: the matmul is NumPy's (BLAS beats a compiled loop there, and numba's
  ``np.dot`` needs SciPy) and everything else of a step is one compiled call.

Both read and write the NumPy loop's buffers (``hs``; ``da``), so ``backward``, ``grad_a`` and
``explain`` read them unchanged. The NumPy loops in ``rnn.py`` stay the readable reference; this
path is taken under the rules of ``lstm_kernels`` (``kernels.use_compiled``, and no padded step),
and under ``BPTT_BACKEND=auto`` only from ``COMPILE_WORK`` multiply-adds a forward (``T·B·H²``).

**Numerics.** Elementwise, the kernels do the reference's operations in its order and dtype, with
no fast-math: ``act'`` from the output (``1 - y²``, ``(1 - y) y``, ``[y > 0]``, ``1``), times
``δh``. With BLAS's matmul the backward agrees with the NumPy loop to the last bit on the same
forward; the written-out matmul sums in another order, so it agrees to round-off, as does the
forward through ``kernels``' ``σ`` and ``tanh`` (a few ulp from NumPy's).
"""

from __future__ import annotations

import numpy as np

from .._types import Array
from .kernels import LazyKernels, sigmoid, tanh

__all__ = ["ACTIVATION_CODES", "COMPILE_WORK", "SMALL", "backward", "forward"]

ACTIVATION_CODES = {"tanh": 0, "sigmoid": 1, "relu": 2, "identity": 3}  # the kernels' `act`
# B·H² at or below which a whole loop is one call. Measured (fwd+bwd, T = 32, one core, Zen 5,
# OpenBLAS 0.3.31): one call takes 0.44-1.01x the time of a call a step up to 8192, 0.66-1.23x at
# 16384-32768, where it loses once B ≥ 16.
SMALL = 8192
# T·B·H² (the recurrence's multiply-adds in one forward) from which BPTT_BACKEND=auto compiles
# (RNN.compiling_pays): a forward and backward of about a millisecond in NumPy and more. Below it a
# process rarely runs enough of them to repay numba's import (0.3 s) and first compile (0.8 s a
# dtype): the adder `bptt train` trains (B·H² = 8192 at most, 2^21 for its longest check) stays in
# NumPy. A rule of the call's size, not of the process's history, keeps a run's arithmetic the
# same in any process, so a resumed run ends on the same bits as an uninterrupted one.
COMPILE_WORK = 2**22


# --- The kernels ------------------------------------------------------------------------------------
def _forward(
    t0: int, t1: int, hs: Array, W_hh: Array, hw: Array, blas: bool, act: int
) -> None:  # pragma: no cover - compiled by numba
    """Steps ``t0 .. t1-1``: ``hs[t+1] = act(hs[t+1] + hs[t] @ W_hh)``.

    ``hs[t+1]`` holds ``x_t W_ih + b`` on entry. With ``blas`` (one step, ``t1 = t0 + 1``) the
    product is ``hw (B, H)``, computed by the caller; else it is computed here.
    """
    B, H = hs.shape[1:]
    zero = hs.dtype.type(0.0)
    for t in range(t0, t1):
        for b in range(B):
            a = hs[t + 1, b]  # (H,): a_t = x_t W_ih + b + h_{t-1} W_hh, then h_t = act(a_t)
            if blas:
                for j in range(H):
                    a[j] += hw[b, j]
            else:
                for k in range(H):
                    h_k = hs[t, b, k]
                    for j in range(H):
                        a[j] += h_k * W_hh[k, j]
            if act == 0:
                for j in range(H):
                    a[j] = tanh(a[j])
            elif act == 1:
                for j in range(H):
                    a[j] = sigmoid(a[j])
            elif act == 2:
                for j in range(H):
                    a[j] = zero if a[j] < zero else a[j]  # NaN stays NaN, as np.maximum's


def _backward(
    t0: int, t1: int, g: Array, hs: Array, da: Array, dh_next: Array, W_hh_T: Array, blas: bool, act: int
) -> None:  # pragma: no cover - compiled by numba
    """BPTT's steps ``t1-1`` down to ``t0``: ``δa_t = (∂L/∂h_t + dh_next) ⊙ act'(h_t)`` into ``da[t]``.

    ``dh_next (B, H)`` holds ``∂L/∂h_t`` through step t+1 on entry. Without ``blas`` it is updated
    here to ``δa_t @ W_hhᵀ`` after each step; with ``blas`` (one step) the caller does that matmul.
    """
    B, H = hs.shape[1:]
    one, zero = hs.dtype.type(1.0), hs.dtype.type(0.0)
    for t in range(t1 - 1, t0 - 1, -1):
        for b in range(B):
            d = da[t, b]  # (H,)
            y = hs[t + 1, b]  # (H,): h_t
            for j in range(H):
                d[j] = g[t, b, j] + dh_next[b, j]  # ∂L/∂h_t: from the output and from step t+1
            if act == 0:
                for j in range(H):
                    d[j] = (one - y[j] * y[j]) * d[j]
            elif act == 1:
                for j in range(H):
                    d[j] = ((one - y[j]) * y[j]) * d[j]
            elif act == 2:
                for j in range(H):
                    d[j] = (one if y[j] > zero else zero) * d[j]
            # identity: act' = 1, and 1 · δh is δh to the bit
            if not blas:
                for k in range(H):
                    dh_next[b, k] = zero
                for j in range(H):  # δa_t @ W_hhᵀ: row j of W_hhᵀ times δa_t[j]
                    d_j = d[j]
                    for k in range(H):
                        dh_next[b, k] += d_j * W_hh_T[j, k]


_kernels = LazyKernels(_forward, _backward)  # compiled on first use


# --- The loops ------------------------------------------------------------------------------------
def forward(hs: Array, W_hh: Array, activation: str) -> None:
    """``RNN``'s forward loop without padding: ``hs[t] = act(hs[t] + hs[t-1] @ W_hh)`` for ``t = 1..T``.

    Parameters
    ----------
    hs : ndarray (T+1, B, H)
        ``h_0`` in ``[0]`` and ``x_t W_ih + b`` in ``[t]`` on entry; ``h_t`` in ``[t]`` on exit.
    W_hh : ndarray (H, H)
    activation : {"tanh", "sigmoid", "relu", "identity"}

    ``hs`` is C-contiguous, of ``W_hh``'s dtype (float32 or float64).
    """
    step = _kernels()[0]
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    act, W_hh = ACTIVATION_CODES[activation], np.ascontiguousarray(W_hh)  # (H, H)
    hw = np.empty((B, H), hs.dtype)  # h_{t-1} W_hh from BLAS: (B, H)
    if B * H * H <= SMALL:
        step(0, T, hs, W_hh, hw, False, act)
        return
    for t in range(T):
        np.dot(hs[t], W_hh, out=hw)  # h_{t-1} W_hh: (B, H)
        step(t, t + 1, hs, W_hh, hw, True, act)


def backward(g: Array, hs: Array, W_hh: Array, da: Array, activation: str) -> Array:
    """``RNN``'s BPTT loop without padding: ``δa_t`` for ``t = T..1``, and ``∂L/∂h_0``.

    Parameters
    ----------
    g : ndarray (T, B, H)
        ``∂L/∂h_t`` from the layer's output.
    hs : ndarray (T+1, B, H)
        ``h_0 .. h_T`` of the forward pass.
    W_hh : ndarray (H, H)
    da : ndarray (T, B, H)
        Filled with ``δa_t``.
    activation : {"tanh", "sigmoid", "relu", "identity"}

    Returns
    -------
    grad_h0 : ndarray (B, H)
    """
    step = _kernels()[1]
    T, B, H = da.shape
    act, g = ACTIVATION_CODES[activation], np.ascontiguousarray(g)  # (T, B, H)
    W_hh_T = np.ascontiguousarray(W_hh.T)  # (H, H)
    dh_next = np.zeros((B, H), da.dtype)  # ∂L/∂h_t through step t+1
    if B * H * H <= SMALL:
        step(0, T, g, hs, da, dh_next, W_hh_T, False, act)
        return dh_next
    for t in range(T - 1, -1, -1):
        step(t, t + 1, g, hs, da, dh_next, W_hh_T, True, act)
        np.dot(da[t], W_hh_T, out=dh_next)  # ∂L/∂h_{t-1} through W_hhᵀ: (B, H)
    return dh_next
