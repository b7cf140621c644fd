"""The character model itself: one-hot inputs, the network, its history and its held-out bpc."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ... import trainer
from ...layers import Dense, Layer, Sequential
from ...losses import CrossEntropyLoss
from ...recurrent import LSTM, RNN, Recurrent

__all__ = [
    "CHECK_CHARS",
    "LN2",
    "STREAM_CHARS",
    "CharHistory",
    "bpc",
    "build_model",
    "held_streams",
    "recurrent_of",
    "split",
    "streams",
]

LN2 = math.log(2.0)
# Held-out text of more characters than this is measured as parallel streams of at most this many
# (one batch): the shipped corpus (about 3,000 held-out characters) stays one stream.
STREAM_CHARS = 50_000
# The most held-out characters a check during training reads: about a second for an LSTM 128 on
# one thread, where the standard library's 1.9 M held-out characters take about 25 s.
CHECK_CHARS = 100_000


def split(ids: NDArray[np.int64], held_out: float = 0.1) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The text's first part for training and its last ``held_out`` fraction for measuring bpc."""
    cut = int(len(ids) * (1.0 - held_out))
    return ids[:cut], ids[cut:]


def streams(ids: NDArray[np.int64], batch: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``batch`` contiguous streams: inputs ``(L, B)`` and next-character targets ``(L, B)``."""
    L = (len(ids) - 1) // batch
    if L < 2:
        raise ValueError(f"the text is too short for {batch} streams: use a smaller batch or more text")
    x = ids[: L * batch].reshape(batch, L).T
    y = ids[1 : L * batch + 1].reshape(batch, L).T
    return x, y


def build_model(
    vocab_size: int, hidden: int, cell: str, rng: np.random.Generator, dtype: DTypeLike = np.float64
) -> Sequential:
    """``RNN`` or ``LSTM`` over one-hot characters, then ``Dense`` to one logit per character."""
    if cell not in ("rnn", "lstm"):
        raise ValueError(f"charlm: cell must be 'rnn' or 'lstm', got {cell!r}")
    kind = RNN if cell == "rnn" else LSTM
    recurrent = kind(vocab_size, hidden, rng=rng, dtype=dtype)
    return Sequential([recurrent, Dense(hidden, vocab_size, rng=rng, dtype=dtype)])


@dataclass
class CharHistory(trainer.History):
    """Training loss (nats per character) per update, and held-out ``bpc`` at each check.

    ``best_step`` and ``best_bpc`` are the update of the lowest held-out bpc and that bpc (the
    first check that reached it; ``None`` before any check): the model ``train`` returns.
    """

    METRICS: ClassVar[tuple[str, ...]] = ("bpc",)

    bpc: list[float] = field(default_factory=list)

    @property
    def best_check(self) -> int | None:
        """Index of the check with the lowest bpc (the first of equals), ``None`` before any."""
        return int(np.argmin(self.bpc)) if self.bpc else None

    @property
    def best_step(self) -> int | None:
        """The update whose model had the lowest held-out bpc."""
        best = self.best_check
        return None if best is None else self.check_step[best]

    @property
    def best_bpc(self) -> float | None:
        """The lowest held-out bpc of any check."""
        best = self.best_check
        return None if best is None else self.bpc[best]

    @property
    def checks_since_best(self) -> int:
        """How many checks came after the best one without beating it."""
        best = self.best_check
        return 0 if best is None else len(self.bpc) - 1 - best


def recurrent_of(model: Layer) -> Recurrent:
    """The model's first layer, which must be recurrent, or ``ValueError``."""
    _, first = next(model.leaves())
    if not isinstance(first, Recurrent):
        raise ValueError(f"charlm: the model must start with a recurrent layer, got {first!r}")
    return first


def held_streams(
    ids: NDArray[np.int64], max_chars: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The held-out text as measured: inputs ``(L, B)`` and next-character targets ``(L, B)``.

    ``n = len(ids) - 1`` predictions. Up to ``STREAM_CHARS`` of them: one stream, all of them.
    More: ``B = ⌈n / STREAM_CHARS⌉`` contiguous streams of ``L = n // B`` each (``streams``; the
    last ``n - B·L < B`` predictions are left out). With ``max_chars`` and ``B·L > max_chars``,
    only the first ``max(max_chars // B, 1)`` steps of every stream.
    """
    n = len(ids) - 1
    xs, ys = (ids[:-1, None], ids[1:, None]) if n <= STREAM_CHARS else streams(ids, -(-n // STREAM_CHARS))
    if max_chars is not None and xs.size > max_chars:
        steps = max(max_chars // xs.shape[1], 1)
        xs, ys = xs[:steps], ys[:steps]
    return xs, ys


def bpc(model: Layer, ids: NDArray[np.int64], chunk: int = 256, max_chars: int | None = None) -> float:
    """Held-out bits per character: mean ``-log₂ p(next char)`` over the streams of ``held_streams``.

    Held-out text of up to ``STREAM_CHARS`` characters is one stream (every prediction); longer
    text is ``B`` parallel streams of equal length run as one batch, each from zero states
    (``held_streams``, which ``max_chars`` cuts to a prefix of every stream). The streams run in
    pieces of ``chunk`` steps, each from the states the last one ended in (``model.run``); the
    model's own state attributes are untouched.
    """
    recurrent_of(model)
    loss_fn = CrossEntropyLoss("sum")
    total, state = 0.0, None
    xs, y = held_streams(ids, max_chars)  # (L, B) each: ids stand for their one-hot vectors
    for s in range(0, len(xs), chunk):
        logits, state = model.run(xs[s : s + chunk], state)  # (chunk, B, V)
        total += loss_fn(logits, y[s : s + chunk])[0]
    return total / y.size / LN2
