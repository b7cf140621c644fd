"""LSTM's compiled steps (``bptt.recurrent.lstm_kernels``) against its NumPy loops, the reference.

Every array a forward and backward produce (outputs, final state, the caches ``explain`` reads,
every gradient, ``grad_h0``, ``grad_c0``, ``grad_x``, ``grad_a``) agrees to round-off: float64 at
1e-12 and float32 at 1e-5, relative to the array's largest magnitude; the nonlinearities agree
elementwise to a few ulp, far into saturation and the tail where ``σ(z) = e^z``.
(Which loops a forward takes, and what the three cells share, are tested in ``test_kernels``.)
"""

from __future__ import annotations

from typing import Any

import numba  # noqa: F401  - numba is a dependency; a missing numba must fail, not skip
import numpy as np
import pytest

from bptt import LSTM
from cell_runs import assert_agree, assert_equal, backwards, run

pytestmark = pytest.mark.usefixtures("default_backend")
SHAPES = [(1, 1, 1, 1), (1, 3, 2, 5), (6, 1, 3, 4), (5, 4, 3, 37), (50, 32, 98, 128)]  # (T, B, I, H)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}-B{}-I{}-H{}".format(*s))
@pytest.mark.parametrize("states", [False, True], ids=["zeros", "h0-c0"])
def test_compiled_steps_agree_with_the_numpy_loops(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, shape: tuple[int, int, int, int], states: bool
) -> None:
    """Outputs, caches and every gradient, from zero or given initial states."""
    want = run(LSTM, "numpy", monkeypatch, shape, dtype, states=states)
    got = run(LSTM, "auto", monkeypatch, shape, dtype, states=states)
    assert_agree(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "options",
    [{"bias": False}, {"stateful": True}, {"stateful": True, "states": True}, {"ids": True}],
    ids=["no-bias", "stateful", "stateful-h0", "ids"],
)
def test_compiled_steps_agree_without_bias_when_stateful_and_on_ids(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, options: dict[str, bool]
) -> None:
    """No bias; a stateful layer's second window, which starts from the first one's last state;
    ids, whose ``dW_ih`` the compiled path sums by id (``ids_kernels``) instead of a one-hot matmul."""
    shape = (7, 3, 5, 9)
    want = run(LSTM, "numpy", monkeypatch, shape, dtype, **options)
    got = run(LSTM, "auto", monkeypatch, shape, dtype, **options)
    assert_agree(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_compiled_backward_is_the_numpy_backward_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, dtype: Any
) -> None:
    """From the same forward caches, the backward kernel's arithmetic is the reference's, in its
    order and dtype, with no fused multiply-add: every gradient is equal, not just close."""
    numpy, compiled = backwards(LSTM(5, 37, rng=0, dtype=dtype), monkeypatch)
    assert_equal(compiled, numpy)


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
