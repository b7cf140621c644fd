"""Text for the character model: the shipped corpus, one file read whole, and the vocabulary."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..._files import read_regular

__all__ = [
    "MAX_TEXT_BYTES",
    "UNKNOWN",
    "Vocabulary",
    "codepoints",
    "decode_utf8",
    "default_text",
    "load_text",
]

# The largest text load_text reads (and the largest corpus of files): 64 MiB is 12 times the
# complete works of Shakespeare, and about 0.6 GB once it is character ids.
MAX_TEXT_BYTES = 64 * 2**20

# The symbol a vocabulary with it gives every character it does not know (U+FFFD REPLACEMENT CHARACTER).
UNKNOWN = "\ufffd"


def default_text() -> str:
    """The small self-written English corpus that ships with bptt."""
    return (resources.files("bptt") / "data" / "corpus.txt").read_text(encoding="utf-8")


def decode_utf8(raw: bytes, name: str, what: str) -> str:
    """``raw`` as text, or a one-line ``ValueError`` for NUL bytes or bytes that are not UTF-8."""
    if b"\x00" in raw:
        raise ValueError(f"{what} {name} looks binary (it holds NUL bytes); expected UTF-8 text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {name} is not UTF-8 text (byte {e.start} cannot be decoded)") from None


def load_text(path: str | os.PathLike[str]) -> str:
    """Read a UTF-8 text file for training; ``ValueError`` says what is wrong with any other file.

    Only a regular file of at most ``MAX_TEXT_BYTES`` is read (``bptt._files.read_regular``): a
    FIFO, a device or a directory is refused at once.
    """
    name = repr(os.fspath(path))
    raw = read_regular(path, limit=MAX_TEXT_BYTES, what="load_text:")
    if not raw.strip():
        raise ValueError(f"load_text: {name} is empty: a language model needs text to learn from")
    text = decode_utf8(raw, name, "load_text:")
    if len(text) < 100:
        raise ValueError(f"load_text: {name} has {len(text)} characters; expected at least 100")
    return text


def codepoints(text: str) -> NDArray[np.uint32]:
    """The code points of ``text`` ``(N,)``; a lone surrogate (from ``surrogateescape``) keeps its value."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)


@dataclass(frozen=True)
class Vocabulary:
    """The characters a model knows, each with an index (the order of ``chars``, sorted).

    A vocabulary that holds ``UNKNOWN`` encodes every character it lacks as ``UNKNOWN``; any
    other vocabulary refuses such characters.
    """

    chars: str

    @classmethod
    def of(cls, text: str) -> Vocabulary:
        """The characters of ``text``, sorted."""
        return cls("".join(sorted(set(text))))

    @classmethod
    def frequent(cls, counts: dict[str, int], min_count: int) -> Vocabulary:
        """The characters counted at least ``min_count`` times, and ``UNKNOWN`` for all others."""
        return cls("".join(sorted({c for c, n in counts.items() if n >= min_count} | {UNKNOWN})))

    def __len__(self) -> int:
        return len(self.chars)

    @cached_property
    def _points(self) -> NDArray[np.uint32]:
        return codepoints(self.chars)  # ascending: chars is sorted

    def encode(self, text: str) -> NDArray[np.int64]:
        """Character indices of ``text``; characters outside the vocabulary become ``UNKNOWN``
        where the vocabulary holds it, else raise ``ValueError``."""
        points = codepoints(text)
        ids = np.searchsorted(self._points, points).clip(max=len(self) - 1)
        known = self._points[ids] == points
        if not known.all():
            if UNKNOWN not in self.chars:
                missing = "".join(sorted(set(text) - set(self.chars)))
                raise ValueError(f"characters {missing!r} are not in the model's vocabulary")
            ids[~known] = self.chars.index(UNKNOWN)
        return ids.astype(np.int64)

    def decode(self, ids: NDArray[np.integer[Any]]) -> str:
        """The text of indices ``ids (N,)``."""
        return "".join(self.chars[i] for i in ids)
