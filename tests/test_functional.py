"""Activations, their output-form derivatives, softplus and softmax against PyTorch (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bptt.functional import ACTIVATIONS, sigmoid, softmax, softplus

# Exact references for sigmoid: np.longdouble carries 11 more bits than float64 on x86-64.
WIDE = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant + 8
needs_wide = pytest.mark.skipif(not WIDE, reason="np.longdouble is no wider than float64 here")

TORCH_ACTIVATIONS = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "identity": lambda z: z,
}
SHAPES = [(1, 1, 1), (1, 3, 2), (6, 1, 4), (5, 3, 7)]


def assert_close(got: np.ndarray, ref: np.ndarray) -> None:
    """float64 agreement: rtol 1e-9 with an atol of 1e-12 times the reference's largest entry."""
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12 * float(np.max(np.abs(ref))))


def test_activation_table_is_complete() -> None:
    """The four documented activations are registered, and the torch table below covers them all."""
    assert set(ACTIVATIONS) == {"tanh", "sigmoid", "relu", "identity"} == set(TORCH_ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(TORCH_ACTIVATIONS))
@pytest.mark.parametrize("shape", SHAPES)
def test_activation_and_output_derivative_match_torch(name: str, shape: tuple[int, ...]) -> None:
    """f(z) equals torch's, and upstream * f'(written in y) equals torch autograd's dL/dz."""
    rng = np.random.default_rng([20, *shape])
    z = 3.0 * rng.standard_normal(shape)
    z[np.abs(z) < 1e-3] = 0.5  # keep relu away from its kink
    upstream = rng.standard_normal(shape)
    act = ACTIVATIONS[name]
    y = act.fn(z)
    zt = torch.tensor(z, requires_grad=True)
    yt = TORCH_ACTIVATIONS[name](zt)
    yt.backward(torch.from_numpy(upstream))
    assert_close(y, yt.detach().numpy())
    assert_close(upstream * act.grad(y), zt.grad.numpy())


@pytest.mark.parametrize("name", sorted(TORCH_ACTIVATIONS))
def test_activation_out_argument_matches_fresh_result(name: str) -> None:
    """fn(z, out=buf) fills and returns buf with the same values as fn(z), leaving z intact."""
    rng = np.random.default_rng(21)
    z = rng.standard_normal((4, 2, 3))
    z0 = z.copy()
    buf = np.empty_like(z)
    got = ACTIVATIONS[name].fn(z, out=buf)
    assert got is buf
    np.testing.assert_array_equal(buf, ACTIVATIONS[name].fn(z))
    np.testing.assert_array_equal(z, z0)


def test_sigmoid_exact_and_finite_at_huge_inputs() -> None:
    """sigmoid(±1e4) is exactly 1 and 0 without overflow, and a wide grid matches torch.sigmoid.

    (``e^{-z}`` underflows to 0 for large ``z``, which is the right rounding; NumPy ignores
    underflow by default.)
    """
    z = np.array([-1e4, -1e3, -700.0, -40.0, -5.0, 0.0, 5.0, 40.0, 700.0, 1e3, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = sigmoid(z)
    assert np.all(np.isfinite(y))
    assert y[0] == 0.0 and y[-1] == 1.0 and y[5] == 0.5
    assert_close(y, torch.sigmoid(torch.from_numpy(z)).numpy())


def test_softplus_exact_and_finite_at_huge_inputs() -> None:
    """softplus(1e4) == 1e4, softplus(-1e4) == 0, and a wide grid matches torch's stable log(1 + e^z)."""
    z = np.array([-1e4, -1e3, -700.0, -40.0, -5.0, 0.0, 5.0, 40.0, 700.0, 1e3, 1e4])
    y = softplus(z)
    assert np.all(np.isfinite(y))
    assert y[0] == 0.0 and y[-1] == 1e4
    zt = torch.from_numpy(z)
    assert_close(y, torch.logaddexp(torch.zeros_like(zt), zt).numpy())
    assert_close(y, torch.nn.functional.softplus(zt).numpy())


@pytest.mark.parametrize("shape", SHAPES)
def test_softplus_matches_torch_relative(shape: tuple[int, ...]) -> None:
    """softplus matches torch's logaddexp(0, z) entry by entry to rtol 1e-9, small values included."""
    rng = np.random.default_rng([22, *shape])
    z = 30.0 * rng.standard_normal(shape)
    zt = torch.from_numpy(z)
    ref = torch.logaddexp(torch.zeros_like(zt), zt).numpy()
    np.testing.assert_allclose(softplus(z), ref, rtol=1e-9, atol=0)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("scale", [1.0, 1e4, 1e300])
def test_softmax_matches_torch_and_sums_to_one(axis: int, scale: float) -> None:
    """softmax matches torch.softmax along any axis, is finite and sums to 1, even for huge logits."""
    rng = np.random.default_rng(23)
    z = scale * rng.standard_normal((4, 3, 5))
    with np.errstate(over="raise", invalid="raise"):
        p = softmax(z, axis=axis)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=0, atol=1e-15)
    assert_close(p, torch.softmax(torch.from_numpy(z), dim=axis).numpy())


def test_softmax_default_axis_is_last_and_input_untouched() -> None:
    """softmax(z) works along the last axis and leaves z unchanged."""
    rng = np.random.default_rng(24)
    z = 1e4 * rng.standard_normal((2, 3, 4))
    z0 = z.copy()
    np.testing.assert_array_equal(softmax(z), softmax(z0, axis=2))
    np.testing.assert_array_equal(z, z0)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(allow_nan=False, allow_infinity=False)))
def test_sigmoid_symmetry(z: np.ndarray) -> None:
    """sigmoid(z) + sigmoid(-z) == 1 within 1e-15 for any finite float64 z."""
    np.testing.assert_allclose(sigmoid(z) + sigmoid(-z), 1.0, rtol=0, atol=1e-15)


def exact_sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) in np.longdouble, from ``e = exp(-|z|)``: ``1 / (1 + e)`` or ``e / (1 + e)``, no cancellation."""
    zl = z.astype(np.longdouble)
    e = np.exp(-np.abs(zl))
    return np.where(zl >= 0, 1 / (1 + e), e / (1 + e))


def ulp_error(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """``|got - exact|`` in units of the last place of ``exact`` rounded to ``got``'s dtype."""
    ulp = np.spacing(np.abs(exact.astype(got.dtype)))  # the smallest subnormal at 0
    return np.abs(got.astype(np.longdouble) - exact) / ulp.astype(np.longdouble)


ANY_F64 = st.floats(allow_nan=False, allow_infinity=False)
ANY_F32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


@needs_wide
@settings(max_examples=300, deadline=None)
@given(
    z64=arrays(np.float64, st.integers(1, 40), elements=st.one_of(st.floats(-760, 60), ANY_F64)),
    z32=arrays(np.float32, st.integers(1, 40), elements=st.one_of(st.floats(-110, 30, width=32), ANY_F32)),
)
def test_sigmoid_is_within_4_ulp_of_exact_everywhere(z64: np.ndarray, z32: np.ndarray) -> None:
    """float64 and float32 sigmoid are within 4 ulp of the exact value, subnormal results included."""
    for z in (z64, z32):
        y = sigmoid(z)
        assert y.dtype == z.dtype
        assert ulp_error(y, exact_sigmoid(z)).max() <= 4


@needs_wide
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_of_large_negative_z_is_relatively_exact(dtype: type) -> None:
    """The cases that used to fail: σ(-30) was off by 1.7e-4 relative, σ(-40) was 0 for 4.2e-18."""
    z = np.array([-20.0, -30.0, -40.0, -100.0, -700.0, -709.5, -740.0], dtype)
    y = sigmoid(z)
    assert ulp_error(y, exact_sigmoid(z)).max() <= 4
    assert y[2] > 0 and (dtype is np.float32 or y[-1] > 0)  # 2.4e-322 is a float64 subnormal


def test_sigmoid_far_tail_beside_a_nan() -> None:
    """Regression: a NaN anywhere hid the far tail (``min`` was NaN), so ``σ(-740)`` became 0."""
    with np.errstate(invalid="ignore"):
        y = sigmoid(np.array([np.nan, -740.0, 0.0]))
    assert np.isnan(y[0]) and y[1] == np.exp(-740.0) > 0 and y[2] == 0.5


@needs_wide
@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 40), elements=st.one_of(st.floats(-760, 60), ANY_F64)))
def test_sigmoid_derivative_from_its_output_is_exact(z: np.ndarray) -> None:
    """σ' = y(1 - y) is within 6 ulp where y ≤ ½; above, 1 - y is exact and σ' off by < eps absolute.

    For z > 0 the output y rounds near 1, so ``1 - y`` (exact in floating point) carries y's own
    rounding: the same formula torch's sigmoid backward uses, and the best y alone allows.
    """
    exact = exact_sigmoid(z)
    d_exact = exact * (1 - exact)
    d = ACTIVATIONS["sigmoid"].grad(sigmoid(z))
    low = z <= 0
    assert np.all(ulp_error(d[low], d_exact[low]) <= 6)
    assert np.all(np.abs(d[~low] - d_exact[~low]) <= np.finfo(np.float64).eps)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 2, 5)])
def test_sigmoid_out_may_be_its_input_including_the_far_tail(shape: tuple[int, ...]) -> None:
    """sigmoid(z, out=z) overwrites z with σ(z), also where e^{-z} would overflow; ints are cast."""
    z = np.linspace(-800.0, 50.0, np.prod(shape)).reshape(shape)
    want = sigmoid(z.copy())
    assert sigmoid(z, out=z) is z
    np.testing.assert_array_equal(z, want)
    np.testing.assert_array_equal(sigmoid(np.array([-1, 0, 2])), sigmoid(np.array([-1.0, 0.0, 2.0])))
