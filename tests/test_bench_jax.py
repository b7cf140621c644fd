"""`bptt bench`'s JAX column: the JAX model is bptt's twin (loss and every gradient equal), the
table prints it with its compile time, and without jax the column is n/a.

jax is in the ``test`` extra: a missing jax fails here, it does not skip.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bptt import bench_jax
from bptt.bench_engines import bptt_setup
from bptt.cli import main
from bptt.losses import CrossEntropyLoss, MSELoss
from bptt.optim import Adam

SHAPE = (5, 3, 4, 6, 2)  # T, B, I, H, O: tiny, every gate block distinct
CHARLM = (5, 3, 7, 6, 7)  # T, B, V, H, V


def _jax() -> bench_jax.JaxRuntime:
    runtime = bench_jax.load([1], float64=True)
    assert runtime is not None, "jax is in the test extra"
    return runtime


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "charlm"])
def test_jax_twin_matches_bptt(cell: str) -> None:
    """Loss, every parameter gradient and grad_x of the JAX model equal bptt's (float64, rtol 1e-9)."""
    jax = _jax().jax
    model, x, target = bptt_setup(CHARLM if cell == "charlm" else SHAPE, np.float64, cell)
    params = {k: v.copy() for k, v in model.params.items()}
    loss_fn = CrossEntropyLoss() if cell == "charlm" else MSELoss()
    loss, grad = loss_fn(model.forward(x), target)
    grad_x = model.backward(grad)
    j_loss, j_grads, j_grad_x = bench_jax.value_and_grads(jax, cell, params, x, target)
    np.testing.assert_allclose(j_loss, loss, rtol=1e-9)
    assert set(j_grads) == set(model.grads)
    for name, g in model.grads.items():
        np.testing.assert_allclose(j_grads[name], g, rtol=1e-9, atol=1e-13, err_msg=name)
    if cell != "charlm":
        np.testing.assert_allclose(j_grad_x, grad_x, rtol=1e-9, atol=1e-13)


def test_jax_adam_update_matches_bptt() -> None:
    """The charlm row's JAX update (cross-entropy, one Adam step) lands on bptt's parameters."""
    jax = _jax().jax
    model, x, target = bptt_setup(CHARLM, np.float64, "charlm")
    params = {k: jax.numpy.asarray(v.copy()) for k, v in model.params.items()}
    zeros = {k: jax.numpy.zeros_like(v) for k, v in params.items()}
    hot = np.eye(CHARLM[2])[x]
    a = bench_jax.ADAM
    step_size, bias2 = a["lr"] / (1.0 - a["b1"]), np.sqrt(1.0 - a["b2"])
    loss, new, _, _ = jax.jit(bench_jax.adam_update(jax))(params, zeros, zeros, hot, target, step_size, bias2)
    ce, opt = CrossEntropyLoss(), Adam(model, lr=a["lr"])
    expected, grad = ce(model.forward(x), target)
    model.backward(grad)
    opt.step()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-9)
    for name, p in model.params.items():
        np.testing.assert_allclose(np.asarray(new[name]), p, rtol=1e-9, atol=1e-13, err_msg=name)


def test_table_prints_jax_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The table has the JAX column, both ratios, the best one, and the compile-time line."""
    out = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--threads", "1", "--dtypes", "float64", "--cells", "rnn"]
    assert main([*argv, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["cell"] for r in rows] == ["rnn"]
    for r in rows:
        assert r["jax_ms"] > 0 and r["jax_compile_s"] > 0 and r["jax_threads"] == 1
        assert r["ratio_jax"] == pytest.approx(r["bptt_ms"] / r["jax_ms"])
        assert r["ratio_best"] == pytest.approx(max(r["ratio"], r["ratio_jax"]))
    printed = capsys.readouterr().out
    assert "jax ms" in printed and "jit s" in printed and "/best" in printed
    assert "JAX compile time (jit s, excluded from the timing)" in printed and "JAX threads: 1" in printed


def test_without_jax_the_column_is_na(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With jax not importable the JAX cells read n/a and one line says how to install it."""
    monkeypatch.setitem(sys.modules, "jax", None)
    out = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--threads", "1", "--dtypes", "float32", "--json", str(out)]
    assert main(argv) == 0
    (row,) = json.loads(out.read_text())
    assert row["jax_ms"] is None and row["ratio_jax"] is None and row["ratio_best"] == row["ratio"]
    printed = capsys.readouterr().out
    assert "n/a" in printed and bench_jax.INSTALL in printed.splitlines()


def test_help_does_not_import_jax() -> None:
    """`bptt --help` and `bptt bench --help` import no jax (jax takes about 0.3 s to import)."""
    code = (
        "import sys, bptt.cli\n"
        "assert bptt.cli.main(['--help']) == 0\n"
        "assert bptt.cli.main(['bench', '--help']) == 0\n"
        "print('jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "False"


def test_no_jax_never_loads_jax(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """With --no-jax the benchmark never asks for jax and says the column was left out."""

    def refuse(*args: object) -> None:
        raise AssertionError("--no-jax loaded jax")

    monkeypatch.setattr(bench_jax, "load", refuse)
    assert main(["bench", "--quick", "--no-jax", "--threads", "1", "--dtypes", "float32"]) == 0
    assert "JAX column left out (--no-jax)" in capsys.readouterr().out
