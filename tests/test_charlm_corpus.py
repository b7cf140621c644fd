"""Many files as one corpus: found, held out whole, read in two passes; the Kneser-Ney baselines."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from bptt.tasks import charlm

LINES = ("def add(a, b):\n    return a + b\n", "class Point:\n    x: int = 0\n", "import os\nprint(os.sep)\n")


def fake_stdlib(root: Path, files: int = 12) -> list[Path]:
    """A small standard library: ``files`` modules, and a test suite, packages and notes to skip."""
    paths = []
    for i in range(files):
        path = root / ("pkg" if i % 2 else "") / f"mod{i:02d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(LINES[i % 3] * 20 + ("é" if i == 3 else ""), encoding="utf-8")
        paths.append(path)
    for skipped in ("test/test_x.py", "site-packages/pkg/m.py", "__pycache__/m.py", "pkg/notes.txt"):
        (root / skipped).parent.mkdir(parents=True, exist_ok=True)
        (root / skipped).write_text("skip me\n" * 50)
    return paths


def test_python_files_are_the_library_alone(tmp_path: Path) -> None:
    """Only .py files, sorted, without tests, installed packages or caches."""
    paths = fake_stdlib(tmp_path)
    assert charlm.python_files(str(tmp_path)) == sorted(map(str, paths))


def test_the_real_standard_library_is_found() -> None:
    """This installation's standard library holds many modules (os.py among them)."""
    files = charlm.python_files()
    assert len(files) > 50 and any(f.endswith(os.sep + "os.py") for f in files)


def test_whole_files_are_held_out_and_rare_characters_are_unknown(tmp_path: Path) -> None:
    """Files 0 and 10 of 12 are held out whole; 'é' (seen once) reads as UNKNOWN."""
    paths = sorted(map(str, fake_stdlib(tmp_path)))
    corpus = charlm.read_corpus(paths)
    texts = [Path(p).read_text(encoding="utf-8") for p in paths]
    held = "".join(texts[i] for i in (0, 10))
    train = "".join(t for i, t in enumerate(texts) if i not in (0, 10)).replace("é", charlm.UNKNOWN)
    assert (corpus.files, corpus.held_files, corpus.skipped) == (12, 2, 0)
    assert corpus.vocab.decode(corpus.held) == held
    assert corpus.vocab.decode(corpus.train) == train
    assert "é" not in corpus.vocab.chars and charlm.UNKNOWN in corpus.vocab.chars
    assert corpus.vocab.decode(corpus.vocab.encode("ä=b")) == charlm.UNKNOWN + "=b"


def test_files_that_are_not_text_are_skipped_and_limits_hold(tmp_path: Path) -> None:
    """A non-UTF-8 file is skipped and counted; too many bytes or too few files are refused."""
    paths = sorted(map(str, fake_stdlib(tmp_path)))
    Path(paths[5]).write_bytes(b"\xff\xfe" * 40)
    assert charlm.read_corpus(paths).skipped == 1
    with pytest.raises(ValueError, match=r"more than 1\.0 KiB"):
        charlm.read_corpus(paths, limit=1024)
    with pytest.raises(ValueError, match="at least 2"):
        charlm.read_corpus(paths[:1])


def test_a_folder_or_a_glob_names_files(tmp_path: Path) -> None:
    """A folder gives its text files (not hidden folders, caches or FIFOs); a glob its matches."""
    fake_stdlib(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("hidden")
    os.mkfifo(tmp_path / "pipe.py")
    found = charlm.find_files(str(tmp_path))
    assert found is not None and len(found) == 15  # 12 modules, the test, the package, notes.txt
    pkg = sorted(str(p) for p in (tmp_path / "pkg").glob("*.py"))
    assert charlm.find_files(str(tmp_path / "pkg" / "*.py")) == pkg
    assert charlm.find_files(str(tmp_path / "mod00.py")) is None  # one file: read whole by load_text
    with pytest.raises(ValueError, match="no text files"):
        charlm.find_files(str(tmp_path / "*.none"))


def _bits(train: np.ndarray, held: list[int], n: int) -> float:
    """Total bits of the order-n Kneser-Ney model on ``held`` (every character after the first)."""
    return charlm.kneser_ney_bpc(train, np.array(held), 6, [n])[n] * (len(held) - 1)


def test_kneser_ney_is_a_distribution_and_learns_context() -> None:
    """At every order, p(next | context) over the V characters sums to 1; higher orders learn more."""
    rng = np.random.default_rng(0)
    ids = np.tile(rng.integers(0, 6, 50), 40)  # a text that repeats: context helps
    train, held = ids[:1800], ids[1800:]
    context = [int(c) for c in held[:4]]
    for n in range(1, 6):
        p = [2 ** -(_bits(train, [*context, c], n) - _bits(train, context, n)) for c in range(6)]
        assert math.fsum(p) == pytest.approx(1.0, abs=1e-9)
    bpcs = charlm.kneser_ney_bpc(train, held, 6)
    assert sorted(bpcs) == [1, 2, 3, 4, 5]
    assert bpcs[5] < bpcs[3] < bpcs[2] < charlm.bigram_bpc(train, held, 6)
    assert bpcs[1] == pytest.approx(charlm.unigram_bpc(train, held, 6), abs=0.05)
    with pytest.raises(ValueError, match="1 to 5"):
        charlm.kneser_ney_bpc(train, held, 6, [6])
