"""A character-level language model trained with truncated BPTT, and the text it writes.

The model is ``RNN`` or ``LSTM`` over one-hot characters, then ``Dense`` to one logit per
character, trained with softmax cross-entropy. The training text is cut into ``batch`` parallel
streams; each update covers ``k1`` new characters of every stream and backpropagates through the
last ``k2`` (``bptt.tbptt``), and the recurrent state flows on from one update to the next.
Quality is held-out bits per character (bpc), reported beside unigram and bigram baselines;
training keeps the model of the best check and stops once ``patience`` checks bring no better one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .. import trainer
from .._files import read_regular
from .._types import Array
from .._validate import as_rng, positive_int
from ..layers import Dense, Layer, Sequential
from ..losses import CrossEntropyLoss
from ..optim import Adagrad, Adam, Optimizer
from ..recurrent import LSTM, RNN, Recurrent
from ..tbptt import tbptt

__all__ = [
    "PATIENCE",
    "CharHistory",
    "OneHot",
    "Vocabulary",
    "bigram_bpc",
    "bpc",
    "build_model",
    "default_text",
    "load_text",
    "sample",
    "split",
    "train",
    "unigram_bpc",
]

LN2 = math.log(2.0)

# Checks without a better held-out bpc before training stops: 5 checks are 500 updates at the
# default schedule, a third of the default run. The held-out bpc of a model that still learns
# falls well within that, while one that overfits (best at update 700, worse ever after, on the
# shipped corpus) stops at update 1,200 instead of training on to 1,500.
PATIENCE = 5


def default_text() -> str:
    """The small self-written English corpus that ships with bptt."""
    return (resources.files("bptt") / "data" / "corpus.txt").read_text(encoding="utf-8")


# The largest text load_text reads: 64 MiB is 12 times the complete works of Shakespeare, and
# about 0.6 GB once it is a string and its character ids.
MAX_TEXT_BYTES = 64 * 2**20


def load_text(path: str | os.PathLike[str]) -> str:
    """Read a UTF-8 text file for training; ``ValueError`` says what is wrong with any other file.

    Only a regular file of at most ``MAX_TEXT_BYTES`` is read (``bptt._files.read_regular``): a
    FIFO, a device or a directory is refused at once.
    """
    name = repr(os.fspath(path))
    raw = read_regular(path, limit=MAX_TEXT_BYTES, what="load_text:")
    if not raw.strip():
        raise ValueError(f"load_text: {name} is empty: a language model needs text to learn from")
    if b"\x00" in raw:
        raise ValueError(f"load_text: {name} looks binary (it holds NUL bytes); expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"load_text: {name} is not UTF-8 text (byte {e.start} cannot be decoded)") from None
    if len(text) < 100:
        raise ValueError(f"load_text: {name} has {len(text)} characters; expected at least 100")
    return text


@dataclass(frozen=True)
class Vocabulary:
    """The characters a model knows, each with an index (the order of ``chars``)."""

    chars: str

    @classmethod
    def of(cls, text: str) -> Vocabulary:
        """The characters of ``text``, sorted."""
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> NDArray[np.int64]:
        """Character indices of ``text``; characters outside the vocabulary raise ``ValueError``."""
        index = {c: i for i, c in enumerate(self.chars)}
        missing = sorted(set(text) - index.keys())
        if missing:
            raise ValueError(f"characters {''.join(missing)!r} are not in the model's vocabulary")
        return np.fromiter((index[c] for c in text), np.int64, len(text))

    def decode(self, ids: NDArray[np.integer[Any]]) -> str:
        """The text of indices ``ids (N,)``."""
        return "".join(self.chars[i] for i in ids)


class OneHot:
    """A lazy one-hot view of character ids ``(T, B)``: slicing time gives ``(t, B, V)`` floats."""

    def __init__(self, ids: NDArray[np.integer[Any]], size: int) -> None:
        self.ids, self.size = ids, size

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: slice) -> Array:
        ids = self.ids[index]  # (t, B)
        out = np.zeros((*ids.shape, self.size))
        np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
        return out


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


def build_model(vocab_size: int, hidden: int, cell: str, rng: np.random.Generator) -> Sequential:
    """``RNN`` or ``LSTM`` over one-hot characters, then ``Dense`` to one logit per character."""
    if cell not in ("rnn", "lstm"):
        raise ValueError(f"charlm: cell must be 'rnn' or 'lstm', got {cell!r}")
    recurrent = RNN(vocab_size, hidden, rng=rng) if cell == "rnn" else LSTM(vocab_size, hidden, rng=rng)
    return Sequential([recurrent, Dense(hidden, vocab_size, rng=rng)])


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


def _recurrent(model: Layer) -> Recurrent:
    """The model's first layer, which must be recurrent, or ``ValueError``."""
    _, first = next(model.leaves())
    if not isinstance(first, Recurrent):
        raise ValueError(f"charlm: the model must start with a recurrent layer, got {first!r}")
    return first


def bpc(model: Layer, ids: NDArray[np.int64], vocab_size: int, chunk: int = 256) -> float:
    """Held-out bits per character: mean ``-log₂ p(next char)`` over ``ids``, one stream.

    The stream runs in pieces of ``chunk`` characters from zero states, each piece from the
    states the last one ended in (``model.run``); the model's own state attributes are untouched.
    """
    _recurrent(model)
    loss_fn = CrossEntropyLoss("sum")
    total, state = 0.0, None
    x, y = OneHot(ids[:-1, None], vocab_size), ids[1:, None]
    for s in range(0, len(ids) - 1, chunk):
        logits, state = model.run(x[s : s + chunk], state)  # (chunk, 1, V)
        total += loss_fn(logits, y[s : s + chunk])[0]
    return total / (len(ids) - 1) / LN2


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


Callback = Callable[[int, float, CharHistory], None]


def train(
    text: str | None = None,
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
) -> tuple[Sequential, Vocabulary, CharHistory]:
    """Train a character model on ``text`` (default: the shipped corpus) with BPTT(k1, k2).

    Held-out bpc is checked every ``check_every`` updates and at the last; training stops once
    ``patience`` checks in a row bring no lower bpc (``None``: never). Returns the best check's
    model (``history.best_step``), its vocabulary and the history. Deterministic for a seed.

    ``callback(update, loss, history)`` is called after every update. With ``interruptible``,
    the first SIGINT or SIGTERM stops training after the current update by raising
    ``bptt.stopping.Interrupted`` (``.model`` is the model trained so far, not the best one,
    ``.step`` its last update); a second one stops at once. A non-finite loss, gradient or
    update raises ``bptt.stopping.Diverged`` carrying the last finite weights.
    """
    text = default_text() if text is None else text
    sizes = {"hidden": hidden, "steps": steps, "batch": batch, "check_every": check_every}
    _check(sizes | ({} if patience is None else {"patience": patience}), optimizer)
    rng = as_rng(seed, "charlm.train")
    vocab = Vocabulary.of(text)
    train_ids, held = split(vocab.encode(text))
    xs, ys = streams(train_ids, batch)
    model = build_model(len(vocab), hidden, cell, rng)
    opt: Optimizer = Adam(model, lr=lr) if optimizer == "adam" else Adagrad(model, lr=lr)
    history, best = CharHistory(), trainer.Best("bpc")
    # bpc runs its own pass over the held-out text; tbptt keeps the training streams' state apart.
    evaluation = trainer.Evaluation(lambda: {"bpc": bpc(model, held, len(vocab))}, check_every, best=best)
    updates = _updates(model, OneHot(xs, len(vocab)), ys, k1, k2)
    try:
        trainer.fit(
            model,
            opt,
            updates,
            steps,
            history=history,
            clip=clip,
            evaluation=evaluation,
            until=None if patience is None else _stop_after(patience),
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


def _stop_after(patience: int) -> Callable[[CharHistory], bool]:
    """The stopping rule: ``patience`` checks in a row without a lower held-out bpc."""
    return lambda history: history.checks_since_best >= patience


def _updates(model: Layer, x: OneHot, ys: NDArray[np.int64], k1: int, k2: int) -> Iterator[float]:
    """The BPTT(k1, k2) updates over the streams, pass after pass, each pass from zero states."""
    _recurrent(model)
    loss_fn = CrossEntropyLoss()
    while True:
        model.reset_state()
        for _, loss in tbptt(model, loss_fn, x, ys, k1, k2):
            yield loss


def sample(
    model: Layer,
    vocab: Vocabulary,
    length: int,
    *,
    temperature: float = 1.0,
    prime: str = "",
    rng: np.random.Generator | int | None = None,
) -> str:
    """Generate ``length`` characters after ``prime``, sampling ``softmax(logits / temperature)``."""
    length = positive_int(length, "sample", "length")
    if not (isinstance(temperature, (int, float)) and 0 < temperature < math.inf):
        raise ValueError(f"sample: temperature must be a positive number, got {temperature!r}")
    rng = as_rng(rng, "sample")
    _recurrent(model)
    V = len(vocab)
    primed = vocab.encode(prime) if prime else vocab.encode(vocab.chars[rng.integers(V)])
    out = []
    y, state = model.run(OneHot(primed[:, None], V)[:])  # from zero states: (T, 1, V)
    logits = y[-1, 0]  # after the prime
    for _ in range(length):
        z = logits / temperature
        p = np.exp(z - z.max())
        nxt = int(rng.choice(V, p=p / p.sum()))
        out.append(nxt)
        y, state = model.run(OneHot(np.array([[nxt]]), V)[:], state)  # one step on: (1, 1, V)
        logits = y[0, 0]
    return prime + vocab.decode(np.array(out))
