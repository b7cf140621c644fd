"""LSTM's compiled steps (``bptt.recurrent.lstm_kernels``) against its NumPy loops, the reference.

Every array a forward and backward produce (outputs, final state, the caches ``explain`` reads,
every gradient, ``grad_h0``, ``grad_c0``, ``grad_x``, ``grad_a``) agrees to round-off: float64 at
1e-12 and float32 at 1e-5, relative to the array's largest magnitude; the nonlinearities agree
elementwise to a few ulp, far into saturation and the tail where ``σ(z) = e^z``.
(That test, and which loops a forward takes, are in ``test_kernels`` for LSTM and GRU alike;
this file holds what is LSTM's own.)
"""

from __future__ import annotations

from typing import Any

import numba  # noqa: F401  - numba is a dependency; a missing numba must fail, not skip
import numpy as np
import pytest

from bptt import LSTM

pytestmark = pytest.mark.usefixtures("default_backend")


@pytest.mark.parametrize(
    ("dtype", "reach", "rtol"),
    [(np.float64, 800.0, 4e-15), (np.float32, 110.0, 2e-6)],  # a few ulp: ε64 = 2.2e-16, ε32 = 1.2e-7
)
def test_gates_agree_elementwise_into_saturation_and_the_tail(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, reach: float, rtol: float
) -> None:
    """σ and tanh of pre-activations out to ±800 (float64), ±110 (float32), crossing ``-709``
    (``-88``), where ``σ(z)`` becomes ``e^z``, agree entry by entry, relatively, to a few ulp."""
    H = 512
    z = np.concatenate([np.linspace(-reach, reach, H // 2), np.linspace(-3.0, 3.0, H // 2)])
    z[[0, 1]] = [-1e-30, 0.0]

    def gates_and_states(backend: str) -> tuple[np.ndarray, ...]:
        monkeypatch.setenv("BPTT_BACKEND", backend)
        layer = LSTM(1, H, rng=0, dtype=dtype)  # z_t = b: every gate sees every value of z
        layer.params["W_ih"][...], layer.params["W_hh"][...] = 0.0, 0.0
        layer.params["b"][...] = np.tile(z, 4)
        layer.c0 = np.linspace(-reach, reach, H)[None].astype(dtype)  # tanh(c_1) over as wide a range
        layer.forward(np.zeros((1, 1, 1), dtype))
        h, c = layer.state_after(1)
        return layer.forward_cache()["gates"][0, 0], c[0], h[0]  # (4H,), (H,), (H,)

    (gates, c, h), (want_gates, want_c, want_h) = gates_and_states("auto"), gates_and_states("numpy")
    assert gates.dtype == dtype
    tiny = np.finfo(dtype).smallest_subnormal  # e^z rounded into the subnormals: within one unit
    np.testing.assert_allclose(gates, want_gates, rtol=rtol, atol=2 * tiny)
    np.testing.assert_allclose(c, want_c, rtol=rtol, atol=0)
    np.testing.assert_allclose(h, want_h, rtol=rtol, atol=0)  # o ⊙ tanh(c_1)
    subnormal = (gates[:H] > 0) & (gates[:H] < np.finfo(dtype).tiny)
    assert subnormal.sum() >= 2  # the tail holds e^z, not 0, until it underflows
