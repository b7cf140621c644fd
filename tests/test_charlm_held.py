"""The held-out measure: one stream for short text, parallel streams for long text, in both engines."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import bptt
from bptt.cli import main
from bptt.tasks import charlm
from bptt.tasks.charlm import model as charlm_model

TEXT = "the cat sat on the mat. the dog sat on the log. " * 12
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _ids() -> tuple[charlm.Vocabulary, np.ndarray]:
    vocab = charlm.Vocabulary.of(TEXT)
    return vocab, vocab.encode(TEXT[:211])


def test_short_text_is_one_stream_of_every_prediction() -> None:
    """Up to STREAM_CHARS predictions: inputs ids[:-1] and targets ids[1:], one stream, whole."""
    _, ids = _ids()
    xs, ys = charlm.held_streams(ids)
    assert xs.shape == (210, 1) and np.array_equal(xs[:, 0], ids[:-1]) and np.array_equal(ys[:, 0], ids[1:])
    assert charlm.held_streams(ids, max_chars=1000)[0].shape == (210, 1)


def test_long_text_is_parallel_streams_of_equal_length(monkeypatch: pytest.MonkeyPatch) -> None:
    """More: ceil(n / STREAM_CHARS) contiguous streams (``streams``); max_chars keeps a prefix of each."""
    monkeypatch.setattr(charlm_model, "STREAM_CHARS", 40)
    _, ids = _ids()
    xs, ys = charlm.held_streams(ids)  # 210 predictions -> 6 streams of 35
    ex, ey = charlm.streams(ids, 6)
    assert xs.shape == (35, 6) and np.array_equal(xs, ex) and np.array_equal(ys, ey)
    cut, cut_y = charlm.held_streams(ids, max_chars=60)
    assert np.array_equal(cut, ex[:10]) and np.array_equal(cut_y, ey[:10])


def test_bpc_of_streams_is_the_mean_over_streams_each_from_zero_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batched measure equals each stream measured alone from zero states, averaged."""
    vocab, ids = _ids()
    V = len(vocab)
    model = charlm.build_model(V, 8, "lstm", np.random.default_rng(0))
    alone = [charlm.bpc(model, ids[b * 35 : b * 35 + 36]) for b in range(6)]
    monkeypatch.setattr(charlm_model, "STREAM_CHARS", 40)
    assert charlm.bpc(model, ids, chunk=13) == pytest.approx(np.mean(alone), rel=1e-12)
    first = [charlm.bpc(model, ids[b * 35 : b * 35 + 11]) for b in range(6)]
    assert charlm.bpc(model, ids, max_chars=60) == pytest.approx(np.mean(first), rel=1e-12)


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("stream_chars", [charlm.STREAM_CHARS, 40])
def test_the_torch_benchmark_measures_what_charlm_bpc_measures(
    monkeypatch: pytest.MonkeyPatch, stream_chars: int
) -> None:
    """TorchRun.bpc and charlm.bpc give the same figure for the same weights, split or not."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(charlm_model, "STREAM_CHARS", stream_chars)
    vocab, ids = _ids()
    corpus = charlm.Corpus(vocab, ids, ids)
    run = _script("charlm_vs_torch").TorchRun(corpus, "lstm", 8, 4, seed=0, dtype="float64")
    model = bptt.from_torch(torch.nn.Sequential(run.rnn, run.head))
    for limit in (None, 60):
        ours = charlm.bpc(model, ids, max_chars=limit)
        assert run.bpc(limit, chunk=17) == pytest.approx(ours, rel=1e-12)


def test_a_time_budget_ends_training_after_a_last_check() -> None:
    """With seconds=0 the first update finds the budget spent: it is checked, and training ends."""
    _, _, history = charlm.train(TEXT, hidden=6, steps=50, batch=4, k1=5, k2=9, check_every=20, seconds=0.0)
    assert len(history.loss) == 1 and history.check_step == [1] and history.best_step == 1
    assert math.isfinite(history.bpc[0])


def test_the_benchmark_takes_a_time_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--minutes 0: each engine makes one update and one check; the table says so. --save writes
    bptt's best model in float32 (the default), one that `bptt sample` reads."""
    saved = tmp_path / "best.npz"
    _script("charlm_vs_torch").main(["--minutes", "0", "--hidden", "8", "--batch", "4", "--save", str(saved)])
    printed = capsys.readouterr().out
    assert "0 min of updates each (checks excluded); float32" in printed
    model, meta, _ = bptt.io.read(saved)
    assert meta["best_step"] == 1 and {p.dtype.name for p in model.params.values()} == {"float32"}
    assert main(["sample", "--model", str(saved), "--length", "5"]) == 0
    assert re.search(r"bptt LSTM 8 +\d\.\d{3} +\d\.\d{3} +1 +1 ", printed), printed
    assert re.search(r"torch LSTM 8 +\d\.\d{3} +\d\.\d{3} +1 +1 ", printed), printed
