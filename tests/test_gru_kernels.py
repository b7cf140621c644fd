"""GRU's compiled steps (``bptt.recurrent.gru_kernels``) against its NumPy loops, the reference.

Every array a forward and backward produce (outputs, final state, the caches ``explain`` reads,
every gradient, ``grad_h0``, ``grad_x``, ``grad_a``, ``grad_r``) agrees to round-off: float64 at
1e-12 and float32 at 1e-5, relative to the array's largest magnitude; the gates agree elementwise
to a few ulp, far into saturation and the tail where ``σ(z) = e^z``.
(Which loops a forward takes, and what the three cells share, are tested in ``test_kernels``.)
"""

from __future__ import annotations

from typing import Any

import numba  # noqa: F401  - numba is a dependency; a missing numba must fail, not skip
import numpy as np
import pytest

from bptt import GRU
from cell_runs import assert_agree, assert_equal, backwards, run

pytestmark = pytest.mark.usefixtures("default_backend")
SHAPES = [(1, 1, 1, 1), (1, 3, 2, 5), (6, 1, 3, 4), (5, 4, 3, 37), (64, 32, 64, 128)]  # (T, B, I, H)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}-B{}-I{}-H{}".format(*s))
@pytest.mark.parametrize("states", [False, True], ids=["zeros", "h0"])
def test_compiled_steps_agree_with_the_numpy_loops(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, shape: tuple[int, int, int, int], states: bool
) -> None:
    """Outputs, caches and every gradient, from zero or given initial states."""
    want = run(GRU, "numpy", monkeypatch, shape, dtype, states=states)
    got = run(GRU, "auto", monkeypatch, shape, dtype, states=states)
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
    """No bias; a stateful layer's second window, which starts from the first one's last state; ids."""
    shape = (7, 3, 5, 9)
    want = run(GRU, "numpy", monkeypatch, shape, dtype, **options)
    got = run(GRU, "auto", monkeypatch, shape, dtype, **options)
    assert_agree(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_the_compiled_backward_is_the_numpy_backward_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, bias: bool
) -> None:
    """From the same forward caches, the backward kernel's arithmetic is the reference's, in its
    order and dtype, with no fused multiply-add: every gradient is equal, not just close."""
    numpy, compiled = backwards(GRU(5, 37, bias=bias, rng=0, dtype=dtype), monkeypatch)
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
