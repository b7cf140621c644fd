"""Truncated backpropagation through time: Williams and Peng's BPTT(k1, k2).

Every ``k1`` steps the weights are updated from the gradient of the loss on those ``k1`` steps,
backpropagated through the last ``k2 ≥ k1`` steps only. Window ``j`` ends at ``e = min(j·k1, T)``
and starts at ``s = max(0, e - k2)``: it runs forward from the recurrent states at step ``s`` (values
only, no gradient flows past them), and its loss covers the steps since the previous update,
``(j-1)·k1 .. e - 1`` (fewer than k1 in a last, shorter window).
With ``k1 = k2 = T`` this is full BPTT.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ._validate import positive_int
from .layers import Layer, State, run_from
from .losses import Loss
from .recurrent import Recurrent

__all__ = ["TimeSliceable", "tbptt", "windows"]


class TimeSliceable(Protocol):
    """Anything time-major that can be sliced along time (an ndarray, or a lazy one-hot stream)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice) -> NDArray[Any]: ...


def windows(T: int, k1: int, k2: int) -> list[tuple[int, int, int]]:
    """``(start, loss_start, end)`` of every window of BPTT(k1, k2) over ``T`` steps."""
    T = positive_int(T, "windows", "T")
    k1, k2 = positive_int(k1, "tbptt", "k1"), positive_int(k2, "tbptt", "k2")
    if k2 < k1:
        raise ValueError(f"tbptt: k2 = {k2} must be at least k1 = {k1}: each update's steps need a backward")
    ends = [*range(k1, T, k1), T]
    return [(max(0, e - k2), previous, e) for previous, e in zip([0, *ends[:-1]], ends, strict=True)]


def tbptt(
    model: Layer, loss_fn: Loss, x: TimeSliceable, target: TimeSliceable, k1: int, k2: int
) -> Iterator[tuple[int, float]]:
    """Run BPTT(k1, k2) over one sequence; after each window ``model.grads`` holds its gradient.

    Yields ``(end, loss)`` after each window's backward, so the caller can clip and step the
    optimizer before the next window. Each window runs (``model.run``) from the recurrent layers'
    states at its first step; the first starts from their ``state`` (``h0``/``c0``, zeros if
    ``None``), and when the iterator is exhausted that holds the states after step T, ready for
    the next piece of a longer stream.

    Parameters
    ----------
    model : a causal layer or Sequential (no Bidirectional inside: it reads the future)
    loss_fn : Loss; its mask restricts each window's loss to its last k1 steps
    x : (T, B, I) sequence; target : (T, B, ...) targets, sliced alongside
    k1, k2 : int, 1 ≤ k1 ≤ k2
    """
    if not model.causal:
        raise TypeError("tbptt: a Bidirectional layer reads the future, so it cannot be truncated in time")
    carriers = [(prefix, leaf) for prefix, leaf in model.leaves() if isinstance(leaf, Recurrent)]
    T = len(x)
    plan = windows(T, k1, k2)
    states: dict[str, State | None] = {prefix: leaf.state for prefix, leaf in carriers}
    for j, (s, loss_from, e) in enumerate(plan):
        y, _ = run_from(model, x[s:e], states)
        mask = np.ones(y.shape[:2])
        mask[: loss_from - s] = 0.0  # the loss covers the window's last k1 steps only
        loss, grad = loss_fn(y, target[s:e], mask)
        model.backward(grad)
        # The next window starts inside this one: keep the states there (values only).
        following = plan[j + 1][0] if j + 1 < len(plan) else T
        states = {prefix: leaf.state_after(following - s) for prefix, leaf in carriers}
        yield e, loss
    for prefix, leaf in carriers:
        leaf.state = states[prefix]
