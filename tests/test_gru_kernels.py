"""GRU's compiled steps (``bptt.recurrent.gru_kernels``) against its NumPy loops, the reference.

Every array a forward and backward produce (outputs, final state, the caches ``explain`` reads,
every gradient, ``grad_h0``, ``grad_x``, ``grad_a``, ``grad_r``) agrees to round-off: float64 at
1e-12 and float32 at 1e-5, relative to the array's largest magnitude; the gates agree elementwise
to a few ulp, far into saturation and the tail where ``σ(z) = e^z``.
(That test, and which loops a forward takes, are in ``test_kernels`` for LSTM and GRU alike;
this file holds what is GRU's own.)
"""

from __future__ import annotations

from typing import Any

import numba  # noqa: F401  - numba is a dependency; a missing numba must fail, not skip
import numpy as np
import pytest

from bptt import GRU

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

    def gates_and_state(backend: str) -> tuple[np.ndarray, ...]:
        monkeypatch.setenv("BPTT_BACKEND", backend)
        layer = GRU(1, H, rng=0, dtype=dtype)  # r, z = σ(b), n = tanh(b_n + r ⊙ 0): every z
        layer.params["W_ih"][...], layer.params["W_hh"][...] = 0.0, 0.0
        layer.params["b"][...], layer.params["b_hn"][...] = np.tile(z, 3), 0.0
        layer.h0 = np.linspace(-1.0, 1.0, H)[None].astype(dtype)
        layer.forward(np.zeros((1, 1, 1), dtype))
        return layer.forward_cache()["gates"][0, 0], layer.state_after(1).h[0]  # (3H,), (H,)

    (gates, h), (want_gates, want_h) = gates_and_state("auto"), gates_and_state("numpy")
    assert gates.dtype == dtype
    tiny = np.finfo(dtype).smallest_subnormal  # e^z rounded into the subnormals: within one unit
    np.testing.assert_allclose(gates, want_gates, rtol=rtol, atol=2 * tiny)
    np.testing.assert_allclose(h, want_h, rtol=0, atol=rtol)  # (h0 - n) z + n, |h| ≤ 1
    subnormal = (gates[:H] > 0) & (gates[:H] < np.finfo(dtype).tiny)
    assert subnormal.sum() >= 2  # the tail holds e^z, not 0, until it underflows
