"""The streaming adder's compiled kernel (numba, imported on first use); bptt works the same without it.

At batch size 1 a recurrence step costs about three NumPy calls, so streaming a million-bit
addition is bound by call overhead, not arithmetic. This kernel runs an ``RNN -> Dense(·, 1)`` adder
over a chunk of bits in one compiled loop. It is used by ``tasks.addition.add`` for long operands,
and tested for parity with the NumPy path.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ACTIVATION_CODES", "AVAILABLE", "adder_logits"]

# numba costs about 0.3 s to import: only look for it here, import it on first use.
AVAILABLE = importlib.util.find_spec("numba") is not None
ACTIVATION_CODES = {"tanh": 0, "sigmoid": 1, "relu": 2, "identity": 3}


def _adder_kernel(
    a: NDArray[np.uint8],
    b: NDArray[np.uint8],
    h: NDArray[np.float64],
    W_ih: NDArray[np.float64],
    W_hh: NDArray[np.float64],
    bias: NDArray[np.float64],
    W_out: NDArray[np.float64],
    b_out: float,
    act: int,
    logits: NDArray[np.float64],
) -> None:  # pragma: no cover - compiled by numba; its Python twin is never called
    H = h.shape[0]
    new = np.empty(H)
    for t in range(a.shape[0]):
        for j in range(H):
            s = bias[j] + a[t] * W_ih[0, j] + b[t] * W_ih[1, j]
            for k in range(H):
                s += h[k] * W_hh[k, j]
            if act == 0:
                s = np.tanh(s)
            elif act == 1:  # functional.sigmoid's formula, e^s below its float64 limit
                s = 1.0 / (1.0 + np.exp(-s)) if s >= -709.0 else np.exp(s)
            elif act == 2:
                s = max(s, 0.0)
            new[j] = s
        o = b_out
        for j in range(H):
            h[j] = new[j]
            o += new[j] * W_out[j]
        logits[t] = o


_compiled: Any = None


def adder_logits(
    a: NDArray[np.uint8], b: NDArray[np.uint8], h: NDArray[np.float64], weights: dict[str, Any], act: str
) -> NDArray[np.float64]:
    """Output logits ``(T,)`` of an RNN adder for operand bits ``a``, ``b`` ``(T,)``; updates ``h (H,)``."""
    global _compiled
    if not AVAILABLE:
        raise RuntimeError("bptt's compiled kernels need numba, a dependency of bptt: pip install numba")
    if _compiled is None:
        import numba

        _compiled = numba.njit(cache=True, fastmath=False)(_adder_kernel)
    logits = np.empty(a.shape[0])
    _compiled(
        a,
        b,
        h,
        weights["W_ih"],
        weights["W_hh"],
        weights["b"],
        weights["W_out"],
        weights["b_out"],
        ACTIVATION_CODES[act],
        logits,
    )
    return logits
