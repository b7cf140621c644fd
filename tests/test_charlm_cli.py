"""``bptt train --task charlm`` on many files (--text FOLDER/GLOB, --corpus python), and top-k sampling."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import bptt
from bptt.cli import main
from bptt.tasks import charlm
from bptt.tasks.charlm.sampling import probabilities
from test_charlm_corpus import fake_stdlib

SMALL = ["--hidden", "8", "--batch", "2", "--k1", "5", "--k2", "5", "--steps", "3", "--quiet"]


def test_top_k_keeps_the_k_most_likely() -> None:
    """top_k keeps the k largest logits (ties at the cut too), renormalized; None keeps all."""
    logits = np.log(np.array([0.1, 0.4, 0.2, 0.3]))
    assert probabilities(logits, 1.0, 2) == pytest.approx([0, 4 / 7, 0, 3 / 7])
    assert probabilities(logits, 1.0, None) == pytest.approx([0.1, 0.4, 0.2, 0.3])
    assert probabilities(logits, 1.0, 9) == pytest.approx([0.1, 0.4, 0.2, 0.3])


def test_sample_with_top_k_one_is_greedy() -> None:
    """top_k=1 always takes the most likely character, whatever the seed."""
    model, vocab, _ = charlm.train("abcab" * 40, hidden=8, steps=2, batch=2, k1=5, k2=5)
    texts = {charlm.sample(model, vocab, 20, top_k=1, rng=seed) for seed in range(3)}
    assert len({t[1:] for t in texts if t[0] == "a"}) <= 1
    with pytest.raises(ValueError, match="top_k"):
        charlm.sample(model, vocab, 5, top_k=0)


def test_cli_trains_on_a_folder_with_all_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--text FOLDER holds out whole files; the table has every n-gram order and the best one."""
    fake_stdlib(tmp_path / "lib")
    out = tmp_path / "m.npz"
    assert (
        main(["train", "--task", "charlm", "--text", str(tmp_path / "lib"), *SMALL, "--out", str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert "5-gram, Kneser-Ney" in text and "(best n)" in text and "bigram, add-one" in text
    assert charlm.UNKNOWN in bptt.io.read(out)[1]["vocab"]


def test_cli_corpus_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--corpus python reads the standard library that sysconfig names."""
    fake_stdlib(tmp_path / "lib")
    monkeypatch.setattr("sysconfig.get_paths", lambda: {"stdlib": str(tmp_path / "lib")})
    argv = ["train", "--task", "charlm", "--corpus", "python", *SMALL[:-1], "--out", str(tmp_path / "m.npz")]
    assert main(argv) == 0
    assert "corpus: 12 files, 2 held out whole" in capsys.readouterr().out


def test_cli_sample_prints_as_it_goes_with_top_k(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bptt sample --top-k 1 writes the prime, then the characters, then a newline."""
    out = tmp_path / "m.npz"
    assert main(["train", "--task", "charlm", "--text", str(tmp_path / "t.txt"), "--out", str(out)]) == 2
    (tmp_path / "t.txt").write_text("the cat sat on the mat. " * 20)
    assert (
        main(["train", "--task", "charlm", "--text", str(tmp_path / "t.txt"), *SMALL, "--out", str(out)]) == 0
    )
    capsys.readouterr()
    assert main(["sample", "--model", str(out), "--length", "30", "--prime", "the", "--top-k", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("the") and len(text) == 34 and text.endswith("\n")


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--task", "charlm", "--corpus", "python", "--text", "x"], "give one"),
        (["train", "--task", "charlm", "--text", "nothing/*.py"], "no text files"),
        (["sample", "--top-k", "0"], "--top-k"),
    ],
)
def test_cli_bad_corpus_flags(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Two corpora, an empty glob or a top-k of 0: one line, exit 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


@pytest.mark.parametrize("dtype", [None, "float64"])
def test_cli_dtype(tmp_path: Path, dtype: str | None) -> None:
    """The model trains and is saved in float32 by default, in float64 with --dtype float64."""
    text, out = tmp_path / "t.txt", tmp_path / "m.npz"
    text.write_text("the cat sat on the mat. " * 20)
    flags = [] if dtype is None else ["--dtype", dtype]
    assert main(["train", "--task", "charlm", "--text", str(text), *SMALL, *flags, "--out", str(out)]) == 0
    model, meta, _ = bptt.io.read(out)
    assert {v.dtype.name for v in model.params.values()} == {dtype or "float32"} == {meta["dtype"]}


def test_cli_minutes_is_a_time_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--minutes without --steps: no limit on updates; the budget ends the run, and the report says so."""
    text, out = tmp_path / "t.txt", tmp_path / "m.npz"
    text.write_text("the cat sat on the mat. " * 20)
    flags = ["--hidden", "4", "--batch", "2", "--k1", "5", "--k2", "5", "--patience", "0", "--quiet"]
    argv = ["train", "--task", "charlm", "--text", str(text), *flags, "--minutes", "1e-5", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert re.search(
        r"best held-out bpc \d\.\d{3} at update \d+ \(of \d+; 1e-05 minutes of updates spent\)", printed
    )
    meta = bptt.io.read(out)[1]
    assert meta["steps"] is None and meta["seconds"] == pytest.approx(6e-4)
