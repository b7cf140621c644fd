"""Text written by a character model, one character at a time."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..._types import Array
from ..._validate import as_rng, positive_int
from ...layers import Layer
from .model import recurrent_of
from .text import Vocabulary

__all__ = ["generate", "sample"]


def generate(
    model: Layer,
    vocab: Vocabulary,
    length: int,
    *,
    temperature: float = 1.0,
    prime: str = "",
    top_k: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> Iterator[str]:
    """The ``length`` characters ``sample`` writes after ``prime``, each as soon as it is drawn.

    The arguments are checked at the call, before the first character is asked for.
    """
    length = positive_int(length, "sample", "length")
    if not (isinstance(temperature, (int, float)) and 0 < temperature < math.inf):
        raise ValueError(f"sample: temperature must be a positive number, got {temperature!r}")
    top_k = None if top_k is None else positive_int(top_k, "sample", "top_k")
    rng = as_rng(rng, "sample")
    recurrent_of(model)
    V = len(vocab)
    primed = vocab.encode(prime) if prime else vocab.encode(vocab.chars[rng.integers(V)])
    y, state = model.run(primed[:, None])  # the prime's ids (T, 1), from zero states: (T, 1, V)
    return _draw(model, vocab, y[-1, 0], state, length, temperature, top_k, rng)


def _draw(
    model: Layer,
    vocab: Vocabulary,
    logits: Array,
    state: Any,
    length: int,
    temperature: float,
    top_k: int | None,
    rng: np.random.Generator,
) -> Iterator[str]:
    """Draw ``length`` characters, one model step each, from the logits after the prime on."""
    V = len(vocab)
    for _ in range(length):
        p = probabilities(logits, temperature, top_k)
        nxt = int(rng.choice(V, p=p))
        yield vocab.chars[nxt]
        y, state = model.run(np.array([[nxt]]), state)  # one step on: (1, 1, V)
        logits = y[0, 0]


def probabilities(logits: Array, temperature: float, top_k: int | None) -> Array:
    """``softmax(logits / temperature)`` over the ``top_k`` largest logits (all: ``None``), 0 elsewhere.

    In float64 whatever the model's dtype: ``Generator.choice`` wants ``p`` to sum to 1 within
    float64 round-off.
    """
    z = np.asarray(logits, np.float64) / temperature
    if top_k is not None and top_k < len(z):
        cut = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cut, z, -np.inf)  # ties at the cut stay in
    p = np.exp(z - z.max())
    return p / p.sum()


def sample(
    model: Layer,
    vocab: Vocabulary,
    length: int,
    *,
    temperature: float = 1.0,
    prime: str = "",
    top_k: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> str:
    """Generate ``length`` characters after ``prime``, sampling ``softmax(logits / temperature)``.

    With ``top_k``, each character is drawn from the ``top_k`` most likely ones only.
    """
    chars = generate(model, vocab, length, temperature=temperature, prime=prime, top_k=top_k, rng=rng)
    return prime + "".join(chars)
