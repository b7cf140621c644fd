"""What LSTM and GRU share for their compiled steps (``bptt.recurrent.kernels``): the backend
choice, numba's lazy import, the scalar stubs, and gradcheck's complex probe taking the NumPy
loops. Each cell's own parity and dispatch tests are in ``test_lstm_kernels`` and ``test_gru_kernels``."""

from __future__ import annotations

import os
import subprocess
import sys

import numba  # noqa: F401  - numba is a dependency; a missing numba must fail, not skip
import numpy as np
import pytest

from bptt import GRU, LSTM
from bptt.gradcheck import gradcheck
from bptt.losses import MSELoss
from bptt.recurrent import kernels

CELLS = {"LSTM": LSTM, "GRU": GRU}


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_bad_backends_are_refused(monkeypatch: pytest.MonkeyPatch, cell: str) -> None:
    """A misspelt ``BPTT_BACKEND`` is an error, as is ``numba`` without numba installed."""
    layer, x = CELLS[cell](2, 3, rng=0), np.zeros((2, 1, 2))
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
    layer = CELLS[cell](2, 3, rng=0)
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
    """numba takes about 0.3 s to import: only the first compiled step pays for it."""
    code = (
        "import sys, numpy as np, bptt\n"
        f"layer = bptt.{cell}(2, 3)\n"
        "print('numba' in sys.modules)\n"
        "layer.forward(np.zeros((2, 1, 2)))\n"
        "print('numba' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BPTT_BACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.split() == ["False", "True"], done.stdout
