"""A character-level language model trained with truncated BPTT, and the text it writes.

The model is ``RNN`` or ``LSTM`` over one-hot characters, then ``Dense`` to one logit per
character, trained with softmax cross-entropy. The training text is cut into ``batch`` parallel
streams; each update covers ``k1`` new characters of every stream and backpropagates through the
last ``k2`` (``bptt.tbptt``), and the recurrent state flows on from one update to the next.
Quality is held-out bits per character (bpc), reported beside unigram, bigram and Kneser-Ney
n-gram baselines; training keeps the model of the best check and stops once ``patience`` checks
bring no better one.

The text is the shipped corpus, one file (its last tenth held out), or a ``Corpus`` of many
files with whole files held out (``corpus``: a folder, a glob, the Python standard library).
Modules: ``text`` (reading, the vocabulary), ``corpus`` (many files), ``model`` (the network and
its bpc), ``ngram`` (the baselines), ``sampling`` (writing); this one holds the training recipe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import DTypeLike

from ... import trainer
from ..._validate import as_float_dtype, as_rng, positive_int
from ...layers import Layer, Sequential
from ...losses import CrossEntropyLoss
from ...optim import Adagrad, Adam, Optimizer
from ...tbptt import tbptt
from .corpus import Corpus, find_files, python_files, read_corpus
from .model import (
    CHECK_CHARS,
    STREAM_CHARS,
    CharHistory,
    bpc,
    build_model,
    held_streams,
    split,
    streams,
)
from .ngram import MAX_ORDER, bigram_bpc, kneser_ney_bpc, unigram_bpc
from .sampling import generate, sample
from .text import MAX_TEXT_BYTES, UNKNOWN, Vocabulary, default_text, load_text

__all__ = [
    "CHECK_CHARS",
    "MAX_ORDER",
    "MAX_TEXT_BYTES",
    "PATIENCE",
    "STREAM_CHARS",
    "UNKNOWN",
    "CharHistory",
    "Corpus",
    "Vocabulary",
    "as_corpus",
    "bigram_bpc",
    "bpc",
    "build_model",
    "default_text",
    "find_files",
    "generate",
    "held_streams",
    "kneser_ney_bpc",
    "load_text",
    "python_files",
    "read_corpus",
    "sample",
    "split",
    "streams",
    "train",
    "unigram_bpc",
]

# Checks without a better held-out bpc before training stops: 5 checks are 500 updates at the
# default schedule, a third of the default run. The held-out bpc of a model that still learns
# falls well within that, while one that overfits (best at update 700, worse ever after, on the
# shipped corpus) stops at update 1,200 instead of training on to 1,500.
PATIENCE = 5


def as_corpus(text: str | Corpus | None) -> Corpus:
    """``text`` as a ``Corpus``: a string's vocabulary is its characters, its last tenth held out.

    ``None`` is the shipped corpus; a ``Corpus`` is itself.
    """
    if isinstance(text, Corpus):
        return text
    text = default_text() if text is None else text
    vocab = Vocabulary.of(text)
    train_ids, held = split(vocab.encode(text))
    return Corpus(vocab, train_ids, held)


Callback = Callable[[int, float, CharHistory], None]


def train(
    text: str | Corpus | None = None,
    *,
    cell: str = "lstm",
    hidden: int = 128,
    steps: int = 1500,
    batch: int = 32,
    k1: int = 25,
    k2: int = 50,
    optimizer: str = "adam",
    lr: float = 0.005,
    clip: float = 5.0,
    check_every: int = 100,
    patience: int | None = PATIENCE,
    seed: int = 0,
    callback: Callback | None = None,
    interruptible: bool = False,
    seconds: float | None = None,
    dtype: DTypeLike = np.float32,
) -> tuple[Sequential, Vocabulary, CharHistory]:
    """Train a character model on ``text`` (default: the shipped corpus) with BPTT(k1, k2).

    ``text`` is a string, whose last tenth is held out, or a ``Corpus`` of whole files. Held-out
    bpc (at most ``CHECK_CHARS`` characters) is checked every ``check_every`` updates and at the
    last; training stops once ``patience`` checks in a row bring no lower bpc (``None``: never),
    or, with ``seconds``, after one last check at the first update that finds that much wall time
    spent on updates (checks excluded). Returns the best check's model (``history.best_step``),
    its vocabulary and the history. Deterministic for a seed (without ``seconds``). ``dtype``:
    float32 by default, twice float64's updates per second for the same bpc (README).

    ``callback(update, loss, history)`` is called after every update. With ``interruptible``,
    the first SIGINT or SIGTERM stops training after the current update by raising
    ``bptt.stopping.Interrupted`` (``.model`` is the model trained so far, not the best one,
    ``.step`` its last update); a second one stops at once. A non-finite loss, gradient or
    update raises ``bptt.stopping.Diverged`` carrying the last finite weights.
    """
    sizes = {"hidden": hidden, "steps": steps, "batch": batch, "check_every": check_every}
    _check(sizes | ({} if patience is None else {"patience": patience}), optimizer)
    rng = as_rng(seed, "charlm.train")
    vocab = (corpus := as_corpus(text)).vocab
    model = build_model(len(vocab), hidden, cell, rng, as_float_dtype(dtype, "charlm.train"))
    opt: Optimizer = Adam(model, lr=lr) if optimizer == "adam" else Adagrad(model, lr=lr)
    history, best, clock = CharHistory(), trainer.Best("bpc"), Budget(seconds)
    try:
        trainer.fit(
            model,
            opt,
            _updates(model, corpus, batch, k1, k2),
            steps,
            history=history,
            clip=clip,
            evaluation=_checks(model, corpus, check_every, best, clock),
            until=_stop_after(patience, clock),
            callback=callback,
            interruptible=interruptible,
        )
    finally:  # an interrupted or diverged model is handed out clean too
        model.reset_state()
    best.restore(model)  # the last update is always checked, so there is a best
    return model, vocab, history


def _check(counts: dict[str, int], optimizer: str) -> None:
    """Refuse a count that is not a positive integer, or an unknown optimizer."""
    for name, value in counts.items():
        positive_int(value, "charlm.train", name)
    if optimizer not in ("adam", "adagrad"):
        raise ValueError(f"charlm.train: optimizer must be 'adam' or 'adagrad', got {optimizer!r}")


def _checks(model: Layer, corpus: Corpus, every: int, best: trainer.Best, clock: Budget) -> _Timed:
    """Held-out bpc of at most ``CHECK_CHARS`` characters every ``every`` updates, at the last and
    once time is spent; its time does not count against ``clock``. ``bpc`` runs its own pass over
    the held-out text; tbptt keeps the training streams' state apart."""
    measure = clock.excluded(lambda: {"bpc": bpc(model, corpus.held, max_chars=CHECK_CHARS)})
    return _Timed(measure, every, best=best, clock=clock)


def _stop_after(patience: int | None, clock: Budget) -> Callable[[CharHistory], bool] | None:
    """The stopping rule: ``patience`` checks in a row without a lower held-out bpc, or no time left."""
    if patience is None and clock.seconds is None:
        return None
    return lambda history: clock.spent() or (patience is not None and history.checks_since_best >= patience)


class Budget:
    """Wall time spent outside the calls wrapped by ``excluded``, against ``seconds`` (``None``: none)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds, self.start, self.outside = seconds, time.perf_counter(), 0.0

    def elapsed(self) -> float:
        """Seconds since the start, less those spent in excluded calls."""
        return time.perf_counter() - self.start - self.outside

    def spent(self) -> bool:
        """Whether the budget has run out."""
        return self.seconds is not None and self.elapsed() >= self.seconds

    def excluded(self, measure: Callable[[], dict[str, float]]) -> Callable[[], dict[str, float]]:
        """``measure``, its time not counted."""

        def timed() -> dict[str, float]:
            begin = time.perf_counter()
            try:
                return measure()
            finally:
                self.outside += time.perf_counter() - begin

        return timed


@dataclass(frozen=True)
class _Timed(trainer.Evaluation):
    """The check schedule, and one more check at the first step after the budget has run out."""

    clock: Budget = field(default_factory=lambda: Budget(None))

    def due(self, step: int, last: int) -> bool:
        """On the schedule, at the last step, or once the time is spent."""
        return super().due(step, last) or self.clock.spent()


def _updates(model: Layer, corpus: Corpus, batch: int, k1: int, k2: int) -> Iterator[float]:
    """The BPTT(k1, k2) updates over ``batch`` streams of the training text, pass after pass, each
    pass from zero states. The streams are cut here, so a text too short for them fails at once."""
    xs, ys = streams(corpus.train, batch)  # (L, B) each: ids, which the model takes as one-hot vectors
    loss_fn = CrossEntropyLoss()

    def passes() -> Iterator[float]:
        while True:
            model.reset_state()
            for _, loss in tbptt(model, loss_fn, xs, ys, k1, k2):
                yield loss

    return passes()
