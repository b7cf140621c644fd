"""A corpus of many text files: found, split by whole files, and read one file at a time.

``--text`` may name one file, a folder or a glob; ``--corpus python`` is the Python standard
library's own ``.py`` files, found at run time in this installation. Every ``HELD_OUT_EVERY``-th
file in sorted order (the first, the 11th, ...) is held out whole for measuring bpc.

Reading makes two passes, one file in memory at a time: the first counts the characters of the
training files (the vocabulary) and the files' lengths, the second writes each file's ids into
one array made for them. No string of the whole corpus is ever built.
"""

from __future__ import annotations

import glob
import os
import stat
import sysconfig
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..._files import format_bytes, read_regular
from .text import MAX_TEXT_BYTES, Vocabulary, decode_utf8

__all__ = [
    "HELD_OUT_EVERY",
    "MAX_FILES",
    "MIN_COUNT",
    "TEXT_SUFFIXES",
    "Corpus",
    "find_files",
    "python_files",
    "read_corpus",
]

HELD_OUT_EVERY = 10
MAX_FILES = 100_000
# A character seen fewer times in the training files is too rare to learn; it is read as UNKNOWN.
MIN_COUNT = 10
TEXT_SUFFIXES = (".py", ".txt", ".md", ".rst")
# Folders of the standard library that are not the library itself: installed packages, its tests.
NOT_STDLIB = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"})


@dataclass(frozen=True)
class Corpus:
    """Character ids of the training files and of the held-out files, one array each.

    ``files`` and ``held_files`` count the files read (0 held-out files: a single text split by
    its tail); ``skipped`` counts the files left out for not being UTF-8 text.
    """

    vocab: Vocabulary
    train: NDArray[np.int64]
    held: NDArray[np.int64]
    files: int = 1
    held_files: int = 0
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.train) + len(self.held)


def _walk(root: str, skip: frozenset[str], suffixes: tuple[str, ...]) -> Iterator[str]:
    """Regular files with one of ``suffixes`` under ``root``, skipping hidden folders and ``skip``."""
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".")]
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(suffixes) and _is_regular(path):
                yield path


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _bounded(paths: Iterator[str], what: str) -> list[str]:
    """The paths sorted, or ``ValueError`` if there are none or more than ``MAX_FILES``."""
    found = []
    for path in paths:
        found.append(path)
        if len(found) > MAX_FILES:
            raise ValueError(f"{what} holds more than {MAX_FILES:,} files; expected fewer")
    if not found:
        raise ValueError(f"{what} holds no text files ({', '.join(TEXT_SUFFIXES)})")
    return sorted(found)


def find_files(spec: str) -> list[str] | None:
    """The files a ``--text`` of a folder or a glob names, sorted; ``None`` for a single file.

    A folder gives its ``TEXT_SUFFIXES`` files at any depth (not in hidden folders); a glob
    (``*``, ``?``, ``[``; ``**`` for any depth) gives the regular files it matches.
    """
    if os.path.isdir(spec):
        return _bounded(_walk(spec, frozenset({"__pycache__"}), TEXT_SUFFIXES), f"--text {spec!r}")
    if any(c in spec for c in "*?["):
        return _bounded((p for p in glob.iglob(spec, recursive=True) if _is_regular(p)), f"--text {spec!r}")
    return None


def python_files(root: str | None = None) -> list[str]:
    """The standard library's own ``.py`` files under ``root`` (default: this installation's), sorted.

    Installed packages (``site-packages``, ``dist-packages``) and the test suites are left out.
    """
    root = sysconfig.get_paths()["stdlib"] if root is None else root
    return _bounded(_walk(root, NOT_STDLIB, (".py",)), f"--corpus python: the standard library {root!r}")


def read_corpus(
    paths: Sequence[str], *, limit: int = MAX_TEXT_BYTES, min_count: int = MIN_COUNT, what: str = "corpus:"
) -> Corpus:
    """Read ``paths``, holding out every ``HELD_OUT_EVERY``-th whole file, into a ``Corpus``.

    The vocabulary is every character seen at least ``min_count`` times in the training files,
    and ``UNKNOWN`` for the others (held-out characters it lacks included). A file that is not
    UTF-8 text is skipped and counted; one that is not a regular file is refused, as is a corpus
    of more than ``limit`` bytes, fewer than 2 files, or no text in either part.
    """
    if len(paths) < 2:
        raise ValueError(f"{what} {len(paths)} file; holding out whole files needs at least 2")
    held_out = [i % HELD_OUT_EVERY == 0 for i in range(len(paths))]
    counts: Counter[str] = Counter()
    lengths: list[int | None] = []
    budget = limit
    for path, held in zip(paths, held_out, strict=True):
        text, size = _read(path, limit, what)
        budget -= size
        if budget < 0:
            raise ValueError(f"{what} the files hold more than {format_bytes(limit)}; expected at most that")
        lengths.append(None if text is None else len(text))
        if text is not None and not held:
            counts.update(text)
    vocab = Vocabulary.frequent(counts, min_count)
    parts = {held: _encode(paths, lengths, held_out, held, vocab, what) for held in (False, True)}
    if not (len(parts[False]) > 1 and len(parts[True]) > 1):
        raise ValueError(f"{what} the training or the held-out files hold no text")
    n_held = sum(h and n is not None for h, n in zip(held_out, lengths, strict=True))
    skipped = lengths.count(None)
    return Corpus(vocab, parts[False], parts[True], len(paths) - skipped, n_held, skipped)


def _read(path: str, limit: int, what: str) -> tuple[str | None, int]:
    """A file's text (``None`` if it is not UTF-8 text) and its size in bytes."""
    raw = read_regular(path, limit=limit, what=what)
    try:
        return decode_utf8(raw, repr(path), what), len(raw)
    except ValueError:
        return None, len(raw)


def _encode(
    paths: Sequence[str],
    lengths: list[int | None],
    held_out: list[bool],
    held: bool,
    vocab: Vocabulary,
    what: str,
) -> NDArray[np.int64]:
    """The ids of the files of one part (held-out or training), read again one at a time."""
    chosen = [(p, n) for p, n, h in zip(paths, lengths, held_out, strict=True) if h == held and n is not None]
    ids = np.empty(sum(n for _, n in chosen), np.int64)
    at = 0
    for path, n in chosen:
        text, _ = _read(path, MAX_TEXT_BYTES, what)
        if text is None or len(text) != n:
            raise ValueError(f"{what} {path!r} changed while it was read")
        ids[at : at + n] = vocab.encode(text)
        at += n
    return ids
