"""Losses against PyTorch (float64): values, gradients, masks, stability and argument errors."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as tf

from bptt import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, ShapeError

SHAPES = [(1, 1, 1), (1, 1, 3), (1, 4, 2), (5, 1, 3), (4, 3, 5), (7, 2, 1)]
REDUCTIONS = ["mean", "sum"]
KINDS = ["mse", "bce", "ce"]
LOSSES = {"mse": MSELoss, "bce": BCEWithLogitsLoss, "ce": CrossEntropyLoss}


def assert_close(got: object, ref: object) -> None:
    """float64 agreement: rtol 1e-9 with an atol of 1e-12 times the reference's largest entry."""
    ref_arr = np.asarray(ref, dtype=np.float64)
    atol = 1e-12 * float(np.max(np.abs(ref_arr))) if ref_arr.size else 0.0
    np.testing.assert_allclose(np.asarray(got), ref_arr, rtol=1e-9, atol=atol)


def make_case(kind: str, shape: tuple[int, int, int], rng: np.random.Generator, scale: float = 2.0):
    """Random logits or predictions ``(T, B, F)`` and a matching target for loss ``kind``."""
    T, B, C = shape
    y = scale * rng.standard_normal(shape)
    if kind == "mse":
        target = rng.standard_normal(shape)
    elif kind == "bce":
        target = rng.uniform(0.0, 1.0, shape)
        target[rng.random(shape) < 0.3] = 0.0
        target[rng.random(shape) < 0.3] = 1.0
    else:
        target = rng.integers(0, C, size=(T, B))
    return y, target


def make_mask(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A random 0/1 float mask ``(T, B)`` with at least one kept step."""
    mask = (rng.random(shape[:2]) < 0.6).astype(np.float64)
    mask[0, 0] = 1.0
    return mask


def torch_terms(kind: str, yt: torch.Tensor, target: np.ndarray) -> torch.Tensor:
    """Unreduced torch loss terms: ``(T, B, F)`` for MSE/BCE, ``(T, B, 1)`` for cross-entropy."""
    if kind == "mse":
        return tf.mse_loss(yt, torch.from_numpy(target), reduction="none")
    if kind == "bce":
        return tf.binary_cross_entropy_with_logits(yt, torch.from_numpy(target), reduction="none")
    T, B, C = yt.shape
    ce = tf.cross_entropy(yt.reshape(T * B, C), torch.from_numpy(target).reshape(T * B), reduction="none")
    return ce.reshape(T, B, 1)


def torch_reference(
    kind: str, y: np.ndarray, target: np.ndarray, reduction: str, mask: np.ndarray | None
) -> tuple[float, np.ndarray]:
    """Loss and autograd gradient from torch; with a mask, ``(terms * mask).sum() / count``."""
    yt = torch.tensor(y, dtype=torch.float64, requires_grad=True)
    if mask is None and kind == "mse":
        loss = tf.mse_loss(yt, torch.from_numpy(target), reduction=reduction)
    elif mask is None and kind == "bce":
        loss = tf.binary_cross_entropy_with_logits(yt, torch.from_numpy(target), reduction=reduction)
    elif mask is None:
        T, B, C = y.shape
        loss = tf.cross_entropy(
            yt.reshape(T * B, C), torch.from_numpy(target).reshape(T * B), reduction=reduction
        )
    else:
        terms = torch_terms(kind, yt, target)
        m = torch.from_numpy(mask)[:, :, None]
        loss = (terms * m).sum()
        if reduction == "mean":
            loss = loss / (m.sum() * terms.shape[2])
    loss.backward()
    return loss.item(), yt.grad.numpy()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_loss_and_grad_match_torch(kind: str, reduction: str, shape: tuple[int, int, int]) -> None:
    """Unmasked loss value and gradient equal torch's functional loss and its autograd."""
    rng = np.random.default_rng([1, *shape])
    y, target = make_case(kind, shape, rng)
    loss, grad = LOSSES[kind](reduction=reduction)(y, target)
    ref_loss, ref_grad = torch_reference(kind, y, target, reduction, None)
    assert isinstance(loss, float)
    assert grad.shape == y.shape
    assert_close(loss, ref_loss)
    assert_close(grad, ref_grad)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_masked_loss_and_grad_match_torch(kind: str, reduction: str, shape: tuple[int, int, int]) -> None:
    """With a (T, B) mask, "sum" adds kept terms and "mean" divides by the kept count, as in torch."""
    rng = np.random.default_rng([2, *shape])
    y, target = make_case(kind, shape, rng)
    mask = make_mask(shape, rng)
    loss, grad = LOSSES[kind](reduction=reduction)(y, target, mask)
    ref_loss, ref_grad = torch_reference(kind, y, target, reduction, mask)
    assert grad.shape == y.shape
    assert_close(loss, ref_loss)
    assert_close(grad, ref_grad)
    assert np.all(grad[mask == 0] == 0.0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.bool_, np.int64, np.float32])
def test_mask_dtypes_agree_with_float64_mask(kind: str, dtype: type) -> None:
    """A bool, int or float32 mask of the same 0/1 pattern gives the float64 mask's result."""
    rng = np.random.default_rng(3)
    shape = (4, 3, 2)
    y, target = make_case(kind, shape, rng)
    mask = make_mask(shape, rng)
    loss_fn = LOSSES[kind]()
    loss, grad = loss_fn(y, target, mask.astype(dtype))
    ref_loss, ref_grad = loss_fn(y, target, mask)
    assert loss == ref_loss
    np.testing.assert_array_equal(grad, ref_grad)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_zero_mask_gives_zero_loss_and_grad(kind: str, reduction: str) -> None:
    """A mask of all zeros keeps no terms: loss 0.0 and an all-zero gradient, with no warning."""
    rng = np.random.default_rng(4)
    shape = (3, 2, 4)
    y, target = make_case(kind, shape, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = LOSSES[kind](reduction=reduction)(y, target, np.zeros(shape[:2]))
    assert loss == 0.0
    assert grad.shape == y.shape
    assert np.all(grad == 0.0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("mask_on", [False, True])
def test_bce_stable_at_huge_logits(reduction: str, mask_on: bool) -> None:
    """BCE at logits of ±1e4 gives a finite loss and gradient equal to torch's."""
    rng = np.random.default_rng(5)
    shape = (3, 4, 3)
    y = rng.choice([-1e4, 1e4], size=shape) * rng.uniform(0.5, 1.0, shape)
    y[0, 0] = [1e4, -1e4, 1e4]
    target = rng.choice([0.0, 0.25, 1.0], size=shape)
    target[0, 0] = [0.0, 1.0, 1.0]
    mask = make_mask(shape, rng) if mask_on else None
    loss, grad = BCEWithLogitsLoss(reduction=reduction)(y, target, mask)
    ref_loss, ref_grad = torch_reference("bce", y, target, reduction, mask)
    assert np.isfinite(loss)
    assert np.all(np.isfinite(grad))
    assert_close(loss, ref_loss)
    assert_close(grad, ref_grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 4, 2), (6, 1, 3), (5, 3, 4)])
def test_bce_gradient_of_confident_negatives_is_relatively_exact(
    reduction: str, shape: tuple[int, int, int]
) -> None:
    """Logits from -1 down to -700 with target 0: loss and gradient agree with torch autograd relatively.

    The gradient σ(z) - 0 is as small as 1e-304 there; with no absolute tolerance, only a sigmoid
    that is accurate in relative terms passes (``(1 + tanh(z/2)) / 2`` gave 0 from z ≈ -38). The
    loss is checked against the exact value, since torch's own cancels to 0 for a single z = -700.
    """
    rng = np.random.default_rng([9, *shape])
    y = -np.exp(rng.uniform(0.0, np.log(700.0), shape))  # (T, B, F), spread over -1 .. -700
    y.flat[0] = -700.0
    target = np.zeros(shape)
    loss, grad = BCEWithLogitsLoss(reduction=reduction)(y, target)
    _, ref_grad = torch_reference("bce", y, target, reduction, None)
    assert np.all(grad > 0)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=0)
    # torch's loss cancels here (0 at z = -700); the exact one is Σ log(1 + e^z), in np.longdouble.
    exact = np.log1p(np.exp(y.astype(np.longdouble))).sum() / (y.size if reduction == "mean" else 1)
    np.testing.assert_allclose(loss, float(exact), rtol=1e-12, atol=0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("mask_on", [False, True])
def test_cross_entropy_stable_at_huge_logits(reduction: str, mask_on: bool) -> None:
    """Cross-entropy at logits of ±1e4 gives a finite loss and gradient equal to torch's."""
    rng = np.random.default_rng(6)
    shape = (3, 4, 5)
    y = rng.choice([-1e4, 1e4], size=shape) * rng.uniform(0.5, 1.0, shape)
    y[0, 0] = [1e4, -1e4, -1e4, 1e4, -1e4]
    target = rng.integers(0, shape[2], size=shape[:2])
    target[0, 0] = 1  # the target class sits at -1e4: loss ≈ 2e4
    mask = make_mask(shape, rng) if mask_on else None
    loss, grad = CrossEntropyLoss(reduction=reduction)(y, target, mask)
    ref_loss, ref_grad = torch_reference("ce", y, target, reduction, mask)
    assert np.isfinite(loss)
    assert np.all(np.isfinite(grad))
    assert_close(loss, ref_loss)
    assert_close(grad, ref_grad)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mask_on", [False, True])
def test_call_does_not_modify_inputs(kind: str, mask_on: bool) -> None:
    """Calling a loss leaves y_pred, target and mask unchanged and returns a fresh gradient array."""
    rng = np.random.default_rng(7)
    shape = (4, 2, 3)
    y, target = make_case(kind, shape, rng)
    mask = make_mask(shape, rng) if mask_on else None
    y0, target0 = y.copy(), target.copy()
    mask0 = None if mask is None else mask.copy()
    _, grad = LOSSES[kind]()(y, target, mask)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(target, target0)
    if mask is not None:
        np.testing.assert_array_equal(mask, mask0)
    assert not np.shares_memory(grad, y)


@pytest.mark.parametrize("kind", ["mse", "bce"])
def test_target_shape_mismatch_raises_shape_error(kind: str) -> None:
    """A target whose shape differs from y_pred's raises ShapeError naming both shapes."""
    y = np.zeros((2, 3, 4))
    msg = re.escape("target has shape (2, 3, 5); expected (T, B, F) = (2, 3, 4)")
    with pytest.raises(ShapeError, match=msg):
        LOSSES[kind]()(y, np.zeros((2, 3, 5)))


def test_cross_entropy_target_shape_mismatch_raises_shape_error() -> None:
    """Cross-entropy targets must be (T, B); a (T, B, C) target raises ShapeError naming both shapes."""
    y = np.zeros((2, 3, 4))
    msg = re.escape("target has shape (2, 3, 4); expected (T, B) = (2, 3)")
    with pytest.raises(ShapeError, match=msg):
        CrossEntropyLoss()(y, np.zeros((2, 3, 4), dtype=np.int64))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mask_shape", [(2, 4), (3, 3), (2, 3, 1), (6,)])
def test_mask_shape_mismatch_raises_shape_error(kind: str, mask_shape: tuple[int, ...]) -> None:
    """A mask that is not (T, B) raises ShapeError naming the mask's shape and the expected one."""
    rng = np.random.default_rng(8)
    y, target = make_case(kind, (2, 3, 4), rng)
    got = ", ".join(str(n) for n in mask_shape) + ("," if len(mask_shape) == 1 else "")
    msg = re.escape(f"mask has shape ({got}); expected (T, B) = (2, 3)")
    with pytest.raises(ShapeError, match=msg):
        LOSSES[kind]()(y, target, np.ones(mask_shape))


@pytest.mark.parametrize("kind", KINDS)
def test_two_dimensional_y_pred_raises_shape_error(kind: str) -> None:
    """A 2-D y_pred is not a time-major sequence: ShapeError naming its shape and (T, B, F)."""
    y = np.zeros((3, 4))
    target = np.zeros((3, 4)) if kind != "ce" else np.zeros(3, dtype=np.int64)
    with pytest.raises(ShapeError, match=re.escape("y_pred has shape (3, 4); expected (T, B, F)")):
        LOSSES[kind]()(y, target)


def test_shape_error_is_a_value_error() -> None:
    """ShapeError subclasses ValueError, so callers catching ValueError see loss shape errors."""
    with pytest.raises(ValueError, match="target has shape"):
        MSELoss()(np.zeros((1, 1, 2)), np.zeros((1, 1, 3)))


@pytest.mark.parametrize("bad", [4, 7, -1])
def test_cross_entropy_out_of_range_class_raises(bad: int) -> None:
    """A class index outside [0, C) raises ValueError naming that index and C."""
    target = np.array([[0, 1], [2, bad]])
    msg = re.escape(f"class index {bad}; expected 0 ≤ index < C = 4")
    with pytest.raises(ValueError, match=msg):
        CrossEntropyLoss()(np.zeros((2, 2, 4)), target)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0])
def test_non_binary_mask_raises_value_error(kind: str, bad: float) -> None:
    """A mask entry other than 0 or 1 raises ValueError saying the mask must hold 0 and 1."""
    rng = np.random.default_rng(9)
    y, target = make_case(kind, (2, 3, 2), rng)
    mask = np.ones((2, 3))
    mask[1, 2] = bad
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        LOSSES[kind]()(y, target, mask)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", ["none", "Mean", "", None])
def test_bad_reduction_raises_value_error(kind: str, bad: object) -> None:
    """An unknown reduction raises ValueError listing 'mean' and 'sum' and the value given."""
    msg = re.escape(f"reduction must be 'mean' or 'sum', got {bad!r}")
    with pytest.raises(ValueError, match=msg):
        LOSSES[kind](reduction=bad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_float_targets_raise_type_error(dtype: type) -> None:
    """Float class targets, even integral-valued, raise TypeError asking for integer indices."""
    target = np.array([[0, 1], [2, 3]], dtype=dtype)
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        CrossEntropyLoss()(np.zeros((2, 2, 4)), target)
