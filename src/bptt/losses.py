"""Losses over sequences: ``loss_fn(y_pred, target, mask=None) -> (loss, grad)``.

``y_pred`` is ``(T, B, F)``; ``mask`` is ``(T, B)`` of 0/1 and drops whole steps of whole
sequences; ``lengths=`` ``(B,)`` (each in ``1..T``) stands for the mask of a padded batch,
``t < lengths[b]``. ``reduction="sum"`` adds the unmasked terms; ``"mean"`` divides by their count
(per feature for MSE and BCE, per step for cross-entropy), as PyTorch does without a mask.
With a mask of all zeros there are no terms: the loss is 0 and the gradient is zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._types import Array
from ._validate import as_array, check_same_shape, check_sequence
from .functional import sigmoid, softmax, softplus
from .layers import length_mask

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "Loss", "MSELoss"]


class Loss:
    """Base class: validates arguments, applies the mask and the reduction.

    Subclasses implement ``_terms(y_pred, target) -> (terms, grad_terms)``, the unreduced
    loss and its derivative, each ``(T, B, F)`` (``(T, B, 1)`` for cross-entropy terms).
    """

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"

    def _scratch(self, like: Array) -> Array:
        """A work array shaped like ``like``, reused across calls (never returned)."""
        buf: Array | None = getattr(self, "_buf", None)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = self._buf = np.empty_like(like)
        return buf

    def __call__(
        self,
        y_pred: Array,
        target: NDArray[Any],
        mask: NDArray[Any] | None = None,
        *,
        lengths: NDArray[Any] | None = None,
    ) -> tuple[float, Array]:
        """Return ``(loss, dloss/dy_pred)``; the gradient has ``y_pred``'s shape ``(T, B, F)``.

        ``lengths`` ``(B,)`` stands for the mask ``t < lengths[b]`` (give one or the other)."""
        loss, grad = self.evaluate(y_pred, target, mask, lengths=lengths)
        return float(loss), grad

    def evaluate(
        self,
        y_pred: Array,
        target: NDArray[Any],
        mask: NDArray[Any] | None = None,
        *,
        lengths: NDArray[Any] | None = None,
    ) -> tuple[Any, Array]:
        """Like calling the loss, but the loss stays a NumPy scalar (complex under complex step)."""
        where = f"{type(self).__name__}"
        y = as_array(y_pred, None, where, "y_pred")
        T, B, _ = check_sequence(y, where, "y_pred", "(T, B, F)", None)
        target = self._check_target(target, y)
        if lengths is not None:
            if mask is not None:
                raise ValueError(f"{where}: give mask or lengths, not both")
            mask = length_mask(lengths, T, B, where)
        terms, grad = self._terms(y, target)  # (T, B, F') and (T, B, F)
        if mask is not None:
            m = as_array(mask, y.real.dtype, where, "mask")
            check_same_shape(m, (T, B), where, "mask", "(T, B)", "one 0/1 flag per step and sequence")
            if not np.all((m == 0) | (m == 1)):
                raise ValueError(f"{where}: mask must hold only 0 and 1")
            terms *= m[:, :, None]
            grad *= m[:, :, None]
            count = float(m.sum()) * terms.shape[2]
        else:
            count = float(terms.size)
        loss = terms.sum()
        if self.reduction == "mean":
            scale = 1.0 / count if count else 0.0
            loss *= scale
            grad *= scale
        return loss, grad

    def _check_target(self, target: NDArray[Any], y: Array) -> NDArray[Any]:
        t = as_array(target, y.dtype, type(self).__name__, "target")
        check_same_shape(t, y.shape, type(self).__name__, "target", "(T, B, F)", "the shape of y_pred")
        return t

    def _terms(self, y: Array, target: NDArray[Any]) -> tuple[Array, Array]:
        raise NotImplementedError


class MSELoss(Loss):
    """Squared error ``(y - t)²`` per entry."""

    def _terms(self, y: Array, target: NDArray[Any]) -> tuple[Array, Array]:
        diff = np.subtract(y, target)
        terms = np.square(diff, out=self._scratch(diff))
        diff *= 2.0
        return terms, diff


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits ``z`` with targets ``t ∈ [0, 1]``.

    ``ℓ = -t log σ(z) - (1-t) log(1-σ(z)) = softplus(z) - t z``, which never overflows;
    ``dℓ/dz = σ(z) - t``.
    """

    def _terms(self, z: Array, target: NDArray[Any]) -> tuple[Array, Array]:
        terms = softplus(z)
        terms -= np.multiply(z, target)
        grad = sigmoid(z)
        grad -= target
        return terms, grad


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits ``(T, B, C)`` with integer class targets ``(T, B)``.

    ``ℓ = logsumexp(z) - z_target``, shifted by ``max z`` so no ``exp`` overflows;
    ``dℓ/dz = softmax(z) - onehot(target)``.
    """

    def _check_target(self, target: NDArray[Any], y: Array) -> NDArray[Any]:
        where = "CrossEntropyLoss"
        t = np.asarray(target)
        if t.dtype.kind not in "iu":
            raise TypeError(f"{where}: target must hold integer class indices, got dtype {t.dtype}")
        check_same_shape(t, y.shape[:2], where, "target", "(T, B)", "one class index per step and sequence")
        C = y.shape[2]
        if t.size and (t.min() < 0 or t.max() >= C):
            bad = int(t.min()) if t.min() < 0 else int(t.max())
            raise ValueError(f"{where}: target holds class index {bad}; expected 0 ≤ index < C = {C}")
        return t

    def _terms(self, z: Array, target: NDArray[Any]) -> tuple[Array, Array]:
        idx = target[:, :, None]  # (T, B, 1)
        shifted = z - np.real(z).max(axis=2, keepdims=True)  # (T, B, C)
        log_sum = np.log(np.exp(shifted).sum(axis=2, keepdims=True))  # (T, B, 1)
        terms = log_sum - np.take_along_axis(shifted, idx, axis=2)  # (T, B, 1)
        grad = softmax(z, axis=2)  # (T, B, C)
        np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, axis=2) - 1.0, axis=2)
        return terms, grad
