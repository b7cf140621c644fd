"""Smoke runs of every benchmark on tiny settings: they run, print their tables and JSON.

Speed itself is measured by the benchmarks, never asserted in tests.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from bptt.cli import main

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bptt_bench_quick_writes_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`bptt bench --quick` times both engines and writes one JSON row per thread count and dtype."""
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--threads", "1", "--memory", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert {(r["threads"], r["dtype"]) for r in rows} == {(1, "float32"), (1, "float64")}
    assert all(r["bptt_ms"] > 0 and r["torch_ms"] > 0 and r["ratio"] > 0 for r in rows)
    printed = capsys.readouterr().out
    assert "ratio" in printed and "memory float64" in printed


def test_peak_memory_holds_one_gradient_of_the_hidden_states(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: fwd+bwd of RNN -> Dense peaked at 2.6x what BPTT must keep; the compiled loop now
    writes δa over the gradient Dense hands it, so one ``(T, B, H)`` array is gone (1.9x), and live
    memory does not grow from one iteration to the next."""
    from bptt.bench import peak_memory

    monkeypatch.setenv("BPTT_BACKEND", "numba")
    m = peak_memory((32, 32, 8, 128, 8), np.float64)
    assert m["peak_bytes"] <= 2.0 * m["must_keep_bytes"]
    assert m["growth"] < 1024


def test_rnn_fwd_bwd_script_runs() -> None:
    """benchmarks/rnn_fwd_bwd.py is the same benchmark as a script."""
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "rnn_fwd_bwd.py"),
            "--quick",
            "--threads",
            "1",
            "--dtypes",
            "float32",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "(4, 2, 2, 8, 1)" in done.stdout


def test_addition_study_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The seeds-and-sizes study prints its table and records every run."""
    out = tmp_path / "study.json"
    _script("addition_study").main(["--seeds", "1", "--hidden", "8", "--json", str(out)])
    (row,) = json.loads(out.read_text())
    assert row["hidden"] == 8 and row["success"] is True
    assert "| 8 | 1/1 |" in capsys.readouterr().out


def test_addition_vs_torch_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """Training against torch with the same recipe prints both engines and a ratio."""
    _script("addition_vs_torch").main(["--seeds", "1", "--repeat", "2"])
    printed = capsys.readouterr().out
    assert "bptt" in printed and "torch" in printed and "ratio" in printed


def test_charlm_vs_torch_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The character-model comparison prints both engines' bpc and time per update."""
    _script("charlm_vs_torch").main(["--steps", "3", "--hidden", "8", "--batch", "4"])
    printed = capsys.readouterr().out
    assert "bigram, add-one smoothing" in printed and "torch LSTM 8" in printed and "bptt / torch" in printed
