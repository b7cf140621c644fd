"""What RNN, LSTM and GRU share for their compiled loops (``bptt.recurrent.kernels``): the backend
choice and which loops a forward takes (padded batches, ``BPTT_BACKEND=numpy``, a missing numba
and gradcheck's complex probe take the NumPy loops), numba's lazy import and the scalar stubs.
LSTM's and GRU's parity with their NumPy loops is here too (the same tests for both); RNN's, and
what is each cell's own, are in ``test_rnn_kernels``, ``test_lstm_kernels`` and ``test_gru_kernels``."""

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
from cell_runs import assert_agree, assert_equal, backwards, run, spy

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


# --- LSTM and GRU against their NumPy loops (RNN's, with its activations and routes: test_rnn_kernels)
GATED = {"LSTM": (LSTM, (50, 32, 98, 128)), "GRU": (GRU, (64, 32, 64, 128))}  # each with a bench-sized shape
SHAPES = [(1, 1, 1, 1), (1, 3, 2, 5), (6, 1, 3, 4), (5, 4, 3, 37)]  # (T, B, I, H)
GATED_SHAPES = [(c, s) for c, (_, big) in GATED.items() for s in [*SHAPES, big]]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("cell", "shape"), GATED_SHAPES, ids=lambda v: "T{}-B{}-I{}-H{}".format(*v) if isinstance(v, tuple) else v
)
@pytest.mark.parametrize("states", [False, True], ids=["zeros", "states"])
def test_gated_compiled_steps_agree_with_the_numpy_loops(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, cell: str, shape: tuple[int, int, int, int], states: bool
) -> None:
    """Outputs, caches and every gradient, from zero or given initial states, to round-off."""
    layer = GATED[cell][0]
    want = run(layer, "numpy", monkeypatch, shape, dtype, states=states)
    assert_agree(run(layer, "auto", monkeypatch, shape, dtype, states=states), want, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", sorted(GATED))
@pytest.mark.parametrize(
    "options",
    [{"bias": False}, {"stateful": True}, {"stateful": True, "states": True}, {"ids": True}],
    ids=["no-bias", "stateful", "stateful-states", "ids"],
)
def test_gated_compiled_steps_agree_without_bias_when_stateful_and_on_ids(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, cell: str, options: dict[str, bool]
) -> None:
    """No bias; a stateful layer's second window, which starts from the first one's last state;
    ids, whose ``dW_ih`` the compiled path sums by id (``ids_kernels``) instead of a one-hot matmul."""
    layer = GATED[cell][0]
    want = run(layer, "numpy", monkeypatch, (7, 3, 5, 9), dtype, **options)
    assert_agree(run(layer, "auto", monkeypatch, (7, 3, 5, 9), dtype, **options), want, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", sorted(GATED))
@pytest.mark.parametrize("bias", [True, False])
def test_gated_compiled_backward_is_the_numpy_backward_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, cell: str, bias: bool
) -> None:
    """From the same forward caches, the backward kernel's arithmetic is the reference's, in its
    order and dtype, with no fused multiply-add: every gradient is equal, not just close."""
    numpy, compiled = backwards(GATED[cell][0](5, 37, bias=bias, rng=0, dtype=dtype), monkeypatch)
    assert_equal(compiled, numpy)
