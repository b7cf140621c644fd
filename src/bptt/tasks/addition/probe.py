"""What the adder learned: the true carry, the hidden states, and a linear carry probe."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..._types import Array
from ..._validate import as_array, as_rng, positive_int
from ...errors import ShapeError, fmt_shape
from ...layers import Layer
from ...recurrent import Recurrent
from .bits import carry_chains, make_batch
from .evaluate import check_adder


def carry_bits(x: Array) -> NDArray[np.bool_]:
    """The true carry out of every step, ``(T, B)``: the carry left after adding ``a_t + b_t + c_{t-1}``.

    ``x (T, B, 2)`` holds 0/1 operand bits. The carry *into* step ``t`` is the carry out of
    step ``t - 1`` (0 at ``t = 0``).
    """
    bits = as_array(x, np.dtype(np.float64), "carry_bits", "x")
    if bits.ndim != 3 or bits.shape[2] != 2:
        raise ShapeError(f"carry_bits: x has shape {fmt_shape(bits.shape)}; expected (T, B, 2), operand bits")
    if not np.all((bits == 0) | (bits == 1)):
        raise ValueError("carry_bits: x must hold 0/1 operand bits")
    ones = bits.astype(np.int8)
    out = np.empty(bits.shape[:2], bool)
    carry = np.zeros(bits.shape[1], np.int8)
    for t in range(bits.shape[0]):
        carry = (ones[t, :, 0] + ones[t, :, 1] + carry) >> 1
        out[t] = carry
    return out


def hidden_states(model: Layer, x: Array) -> Array:
    """The hidden states ``h_t (T, B, H)`` of the model's first recurrent layer, starting from zeros."""
    if not isinstance(model, Layer):
        raise TypeError(
            f"hidden_states: model must be a bptt layer or Sequential, got {type(model).__name__}"
        )
    for _, layer in model.sublayers() or [("", model)]:
        x, _ = layer.run(x)  # from zero states
        if isinstance(layer, Recurrent):
            return x
    raise ValueError("hidden_states: the model has no recurrent layer to look inside")


@dataclass(frozen=True, eq=False)
class CarryProbe:
    """A linear read-out of the carry from the first recurrent layer's hidden state.

    ``carry out of step t  ≈  h_t @ weights + bias > 0``, fitted by least squares on ±1 targets.

    Attributes
    ----------
    accuracy : float
        Fraction of held-out steps (sums not used for fitting) whose carry the probe gets right.
    top_units : list of (unit, weight)
        The units with the largest ``|weight|``, largest first.
    weights : ndarray (H,)
    bias : float
    """

    accuracy: float
    top_units: list[tuple[int, float]]
    weights: Array
    bias: float


def carry_probe(
    model: Layer,
    n_bits: int = 64,
    samples: int = 256,
    rng: np.random.Generator | int | None = 0,
    *,
    p_propagate: float | None = None,
    top: int = 5,
) -> CarryProbe:
    """Is the carry linearly readable from the hidden state? Fit a probe and test it on new sums.

    Runs the model's first recurrent layer on ``samples`` random ``n_bits``-bit sums, fits a linear
    probe from ``h_t`` to the true carry out of step ``t`` on the first half of the sums, and
    reports its accuracy on the other half (every step of every held-out sum counts).

    Random sums have short carry chains (about 2 steps on average), which even an untrained
    RNN's fading memory holds well enough for a probe to read most carries. ``p_propagate``
    draws sums rich in carry chains instead (each position propagates the carry, ``a_t ≠ b_t``,
    with that probability), where only a network that really keeps the carry scores high.
    """
    check_adder(model, "carry_probe")
    n_bits = positive_int(n_bits, "carry_probe", "n_bits")
    samples = positive_int(samples, "carry_probe", "samples")
    top = positive_int(top, "carry_probe", "top")
    if samples < 2:
        raise ValueError("carry_probe: samples must be at least 2 (half fit the probe, half test it)")
    rng = as_rng(rng, "carry_probe")
    if p_propagate is None:
        x, _ = make_batch(n_bits, samples, rng)
    else:
        number = isinstance(p_propagate, (int, float)) and not isinstance(p_propagate, bool)
        if not (number and 0 <= p_propagate <= 1):
            raise ValueError(f"carry_probe: p_propagate must be None or in [0, 1], got {p_propagate!r}")
        x, _ = carry_chains(n_bits, samples, float(p_propagate), rng)
    h = hidden_states(model, x)  # (T, B, H)
    carry = carry_bits(x)  # (T, B)
    H, fit = h.shape[2], samples // 2

    def design(cols: slice) -> Array:  # (T·B', H + 1): the states and a bias column
        states = h[:, cols].reshape(-1, H)
        return np.hstack([states, np.ones((states.shape[0], 1))])

    target = np.where(carry[:, :fit], 1.0, -1.0).reshape(-1)
    coef = np.linalg.lstsq(design(slice(0, fit)), target, rcond=None)[0]  # (H + 1,)
    guess = design(slice(fit, None)) @ coef > 0
    acc = float(np.mean(guess == carry[:, fit:].reshape(-1)))
    weights = coef[:H].copy()
    order = np.argsort(-np.abs(weights), kind="stable")[:top]
    return CarryProbe(acc, [(int(i), float(weights[i])) for i in order], weights, float(coef[H]))
