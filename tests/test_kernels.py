"""What RNN, LSTM and GRU share for their compiled loops (``bptt.recurrent.kernels``): the backend
choice and which loops a forward takes (padded batches, ``BPTT_BACKEND=numpy``, a missing numba
and gradcheck's complex probe take the NumPy loops), numba's lazy import and the scalar stubs.
Each cell's parity with its NumPy loops is in ``test_rnn_kernels``, ``test_lstm_kernels`` and
``test_gru_kernels``."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numba  # noqa: F401  - numba is a dependency; a missing numba must fail, not skip
import numpy as np
import pytest

from bptt import GRU, LSTM, RNN
from bptt.gradcheck import gradcheck
from bptt.losses import MSELoss
from bptt.recurrent import gru_kernels, kernels, lstm_kernels, rnn_kernels
from cell_runs import assert_equal, run, spy

CELLS = {"RNN": (RNN, rnn_kernels), "LSTM": (LSTM, lstm_kernels), "GRU": (GRU, gru_kernels)}
pytestmark = pytest.mark.usefixtures("default_backend")


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_bad_backends_are_refused(monkeypatch: pytest.MonkeyPatch, cell: str) -> None:
    """A misspelt ``BPTT_BACKEND`` is an error, as is ``numba`` without numba installed."""
    layer, x = CELLS[cell][0](2, 3, rng=0), np.zeros((2, 1, 2))
    monkeypatch.setenv("BPTT_BACKEND", "numbaa")
    with pytest.raises(ValueError, match="BPTT_BACKEND must be one of auto, numba, numpy"):
        layer.forward(x)
    monkeypatch.setenv("BPTT_BACKEND", "numba")
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    with pytest.raises(RuntimeError, match="numba is not installed"):
        layer.forward(x)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_gradcheck_complex_probe_takes_the_numpy_loops(cell: str) -> None:
    """Complex arrays (gradcheck's probe) are not the kernels' dtypes; the check still passes."""
    assert not kernels.use_compiled(np.complex128)
    assert kernels.use_compiled(np.float32) and kernels.use_compiled(np.float64)
    layer = CELLS[cell][0](2, 3, rng=0)
    layer.h0 = np.full((2, 3), 0.3)
    rng = np.random.default_rng(1)
    report = gradcheck(layer, MSELoss(), rng.normal(size=(4, 2, 2)), rng.normal(size=(4, 2, 3)))
    assert report.ok, report


def test_the_scalar_stubs_are_for_kernels_only() -> None:
    """``kernels.exp``, ``tanh`` and ``sigmoid`` exist for numba to compile; Python calls refuse."""
    for stub in (kernels.exp, kernels.tanh, kernels.sigmoid):
        with pytest.raises(NotImplementedError, match="numba kernels only"):
            stub(0.0)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_importing_bptt_and_building_a_cell_does_not_import_numba(cell: str) -> None:
    """numba takes about 0.3 s to import: only the first compiled step pays for it (forced here,
    as the shape is too small for an RNN to compile by default)."""
    code = (
        "import sys, numpy as np, bptt\n"
        f"layer = bptt.{cell}(2, 3)\n"
        "print('numba' in sys.modules)\n"
        "layer.forward(np.zeros((2, 1, 2)))\n"
        "print('numba' in sys.modules)\n"
    )
    env = os.environ | {"BPTT_BACKEND": "numba"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.split() == ["False", "True"], done.stdout


def _refuse(module: Any, calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``module.forward`` and ``module.backward`` record the call and fail."""
    for name in ("forward", "backward"):

        def refuse(*args: Any, name: str = name) -> Any:
            calls.append(name)
            raise AssertionError(f"{module.__name__}.{name} called")

        monkeypatch.setattr(module, name, refuse)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_padded_batches_take_the_numpy_loops(monkeypatch: pytest.MonkeyPatch, cell: str) -> None:
    """With a padded step the kernels are never called, even when forced, and the results are the reference's;
    ``lengths`` of all ``T`` pads nothing, so that batch takes the kernels, bit for bit."""
    layer, module = CELLS[cell]
    calls: list[str] = []
    with monkeypatch.context() as patch:
        _refuse(module, calls, patch)
        padded = np.array([3, 7, 1])
        got = run(layer, "numba", patch, (7, 3, 2, 9), np.float64, lengths=padded)
        want = run(layer, "numpy", patch, (7, 3, 2, 9), np.float64, lengths=padded)
    assert calls == []
    assert_equal(got, want)
    full = run(layer, "numba", monkeypatch, (7, 3, 2, 9), np.float64, lengths=np.full(3, 7))
    assert_equal(full, run(layer, "numba", monkeypatch, (7, 3, 2, 9), np.float64))


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("how", ["BPTT_BACKEND=numpy", "no numba"])
def test_the_numpy_loops_when_asked_or_without_numba(
    monkeypatch: pytest.MonkeyPatch, cell: str, how: str
) -> None:
    """``BPTT_BACKEND=numpy``, or numba missing, and the kernels are not touched."""
    layer, module = CELLS[cell]
    want = run(layer, "numpy", monkeypatch, (4, 2, 3, 5), np.float32)
    calls: list[str] = []
    _refuse(module, calls, monkeypatch)
    backend = "numpy"
    if how == "no numba":
        monkeypatch.setattr(kernels, "AVAILABLE", False)
        backend = "auto"
    got = run(layer, backend, monkeypatch, (4, 2, 3, 5), np.float32)
    assert calls == []
    assert_equal(got, want)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_the_kernels_are_taken_by_default(monkeypatch: pytest.MonkeyPatch, cell: str) -> None:
    """Unset, ``auto`` and ``numba`` (any case, spaces around) all take the compiled loops, at a
    size where they pay for an RNN too (``T·B·H²`` of 2^22)."""
    layer, module = CELLS[cell]
    calls = spy(module, monkeypatch)
    for backend in ("", "auto", " Numba "):
        run(layer, backend, monkeypatch, (64, 4, 2, 128), np.float64)
    assert calls == ["forward", "backward"] * 3
