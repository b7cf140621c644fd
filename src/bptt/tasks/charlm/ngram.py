"""Counting baselines for the character model, in held-out bits per character.

- ``unigram_bpc`` and ``bigram_bpc``: add-one smoothed character frequencies.
- ``kneser_ney_bpc``: interpolated Kneser-Ney n-gram models, n = 1 to 5, all in one call.

Every n-gram is one int64 key (its characters as digits in base V), so counting is ``np.unique``
and looking up is ``np.searchsorted``: no Python loop over characters, and memory a few arrays
the size of the training text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_ORDER", "bigram_bpc", "kneser_ney_bpc", "unigram_bpc"]

MAX_ORDER = 5
# Discounts outside these bounds would leave no mass for unseen characters, or all of it.
DISCOUNT_RANGE = (0.1, 0.9)

Counts = dict[int, tuple[NDArray[np.int64], NDArray[np.int64]]]  # order -> (sorted keys, counts)


def unigram_bpc(train: NDArray[np.int64], held: NDArray[np.int64], vocab_size: int) -> float:
    """bpc of character frequencies (add-one smoothed) from ``train``, measured on ``held``."""
    counts = np.bincount(train, minlength=vocab_size) + 1.0
    return float(-np.log2(counts[held] / counts.sum()).mean())


def bigram_bpc(train: NDArray[np.int64], held: NDArray[np.int64], vocab_size: int) -> float:
    """bpc of ``p(next | previous)`` with add-one smoothing, from ``train``, measured on ``held``."""
    counts = np.ones((vocab_size, vocab_size))
    np.add.at(counts, (train[:-1], train[1:]), 1.0)
    p = counts / counts.sum(axis=1, keepdims=True)
    return float(-np.log2(p[held[:-1], held[1:]]).mean())


def _keys(ids: NDArray[np.int64], k: int, V: int) -> NDArray[np.int64]:
    """The key of every k-gram of ``ids``: ``(N - k + 1,)``, key ``i`` for ``ids[i : i + k]``."""
    keys = np.zeros(len(ids) - k + 1, np.int64)
    for j in range(k):
        keys = keys * V + ids[j : len(ids) - k + 1 + j]
    return keys


@dataclass(frozen=True)
class _Level:
    """One order's counts ``a`` of k-gram keys ``grams`` (sorted), grouped by context ``g // V``."""

    grams: NDArray[np.int64]
    counts: NDArray[np.int64]
    contexts: NDArray[np.int64]
    totals: NDArray[np.int64]  # Σ_w a(hw) per context
    types: NDArray[np.int64]  # how many w follow the context: N1+(h•)
    discount: float

    @classmethod
    def of(cls, grams: NDArray[np.int64], counts: NDArray[np.int64], V: int) -> _Level:
        contexts, start = np.unique(grams // V, return_index=True)
        n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
        discount = float(np.clip(n1 / (n1 + 2 * n2) if n1 + n2 else 0.5, *DISCOUNT_RANGE))
        types = np.diff(np.append(start, len(grams)))
        return cls(grams, counts, contexts, np.add.reduceat(counts, start), types, discount)

    def smooth(self, keys: NDArray[np.int64], V: int, lower: NDArray[np.float64]) -> NDArray[np.float64]:
        """``p(w | h)`` for k-gram keys ``hw``, interpolated with the lower order's ``p(w | h')``."""
        a = _lookup(self.grams, self.counts, keys)
        total = _lookup(self.contexts, self.totals, keys // V)
        types = _lookup(self.contexts, self.types, keys // V)
        seen = total > 0
        safe = np.where(seen, total, 1)
        mixed = (np.maximum(a - self.discount, 0.0) + self.discount * types * lower) / safe
        return np.where(seen, mixed, lower)


def _lookup(
    keys: NDArray[np.int64], values: NDArray[np.int64], query: NDArray[np.int64]
) -> NDArray[np.int64]:
    """``values`` at ``query``'s place in the sorted ``keys``, 0 where a query is not a key."""
    if not len(keys):
        return np.zeros(len(query), np.int64)
    i = np.searchsorted(keys, query).clip(max=len(keys) - 1)
    return np.where(keys[i] == query, values[i], 0)


def _orders(V: int, orders: Iterable[int]) -> list[int]:
    """The orders asked for, 1 to ``MAX_ORDER``, whose keys fit in an int64."""
    chosen = sorted(set(orders))
    if not chosen or chosen[0] < 1 or chosen[-1] > MAX_ORDER:
        raise ValueError(f"kneser_ney_bpc: orders must be within 1 to {MAX_ORDER}, got {chosen}")
    return [n for n in chosen if V**n < 2**63]


def kneser_ney_bpc(
    train: NDArray[np.int64],
    held: NDArray[np.int64],
    vocab_size: int,
    orders: Iterable[int] = range(1, MAX_ORDER + 1),
) -> dict[int, float]:
    """Held-out bpc of interpolated Kneser-Ney n-gram models trained on ``train``, for each n.

    The order-n model interpolates raw n-gram counts with continuation counts (how many distinct
    characters precede a shorter gram) at every lower order, down to the uniform ``1/V``; each
    order's discount is ``n1 / (n1 + 2 n2)`` of its own counts (clipped to ``DISCOUNT_RANGE``).
    Every character of ``held`` after the first is scored from the up to n - 1 before it, as
    ``bpc`` scores a recurrent model. Orders whose keys would not fit in an int64 (``V**n``)
    are left out of the result.
    """
    V = vocab_size
    chosen = _orders(V, orders)
    top = max(chosen, default=0)
    raw: Counts = {k: np.unique(_keys(train, k, V), return_counts=True) for k in range(1, top + 1)}
    continued: Counts = {k: np.unique(raw[k + 1][0] % V**k, return_counts=True) for k in range(1, top)}
    return {n: _held_out_bpc(n, raw, continued, held, V) for n in chosen}


def _held_out_bpc(n: int, raw: Counts, continued: Counts, held: NDArray[np.int64], V: int) -> float:
    """bpc on ``held`` of the order-n model: raw counts at order n, continuation counts below."""
    p = np.full(len(held) - 1, 1.0 / V)  # p[t - 1]: the probability of held[t]
    for k in range(1, n + 1):
        level = _Level.of(*(raw[k] if k == n else continued[k]), V)
        first = max(1, k - 1)  # the first position with a full context of k - 1 characters
        keys = _keys(held, k, V)[first - (k - 1) :]
        p[first - 1 :] = level.smooth(keys, V, p[first - 1 :])
    return float(-np.log2(p).mean())
