"""RNN's compiled loops (``bptt.recurrent.rnn_kernels``) against its NumPy loops, the reference.

For every activation, every array a forward and backward produce (outputs, final state, every
gradient, ``grad_h0``, ``grad_x``, ``grad_a``) agrees to round-off: float64 at 1e-12 and float32
at 1e-5, relative to the array's largest magnitude, on both of the kernels' routes (the whole loop
in one call while ``B·H² ≤ SMALL``, else BLAS's matmul and one call a step), forced by
``BPTT_BACKEND=numba``; by default they are taken from ``COMPILE_WORK`` multiply-adds a forward.
The activations agree elementwise to a few ulp, far into saturation. (Which loops a forward
takes, and what the three cells share, are tested in ``test_kernels``.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numba  # noqa: F401  - numba is a dependency; a missing numba must fail, not skip
import numpy as np
import pytest

from bptt import RNN, Dense, Sequential
from bptt.recurrent import kernels, rnn_kernels
from cell_runs import assert_agree, assert_equal, backwards, run, spy

pytestmark = pytest.mark.usefixtures("default_backend")
ACTIVATIONS = sorted(rnn_kernels.ACTIVATION_CODES)
# (T, B, I, H): B·H² from 1 to 524288, both sides of SMALL (8192): 5476 at H = 37, 10000 at H = 50
SHAPES = [
    (1, 1, 1, 1),
    (1, 3, 2, 5),
    (6, 1, 3, 4),
    (8, 1, 2, 16),
    (5, 4, 3, 37),
    (9, 4, 3, 50),
    (64, 32, 64, 128),
]


def test_the_shapes_cover_both_routes() -> None:
    """Some shapes run as one call, some a call a step: the tests below cover both routes."""
    small = {B * H * H <= rnn_kernels.SMALL for _, B, _, H in SHAPES}
    assert small == {True, False}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}-B{}-I{}-H{}".format(*s))
@pytest.mark.parametrize("states", [False, True], ids=["zeros", "h0"])
def test_compiled_loops_agree_with_the_numpy_loops(
    monkeypatch: pytest.MonkeyPatch,
    dtype: Any,
    activation: str,
    shape: tuple[int, int, int, int],
    states: bool,
) -> None:
    """Outputs and every gradient, from a zero or a given initial state."""
    want = run(RNN, "numpy", monkeypatch, shape, dtype, states=states, activation=activation)
    got = run(RNN, "numba", monkeypatch, shape, dtype, states=states, activation=activation)
    assert_agree(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("H", [9, 60], ids=["one-call", "call-a-step"])
@pytest.mark.parametrize(
    "options",
    [{"bias": False}, {"stateful": True}, {"stateful": True, "states": True}, {"ids": True}],
    ids=["no-bias", "stateful", "stateful-h0", "ids"],
)
def test_compiled_loops_agree_without_bias_when_stateful_and_on_ids(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, H: int, options: dict[str, bool]
) -> None:
    """No bias; a stateful layer's second window, which starts from the first one's last state; ids."""
    shape = (7, 3, 5, H)
    want = run(RNN, "numpy", monkeypatch, shape, dtype, **options)
    got = run(RNN, "numba", monkeypatch, shape, dtype, **options)
    assert_agree(got, want, dtype)


@pytest.mark.parametrize("small", [0, 10**9], ids=["call-a-step", "one-call"])
def test_either_route_at_any_shape(monkeypatch: pytest.MonkeyPatch, small: int) -> None:
    """``SMALL`` only chooses the faster route: forced either way, a shape gives the same result."""
    monkeypatch.setattr(rnn_kernels, "SMALL", small)
    for shape in [(4, 1, 2, 3), (6, 5, 3, 40)]:
        want = run(RNN, "numpy", monkeypatch, shape, np.float64, states=True)
        assert_agree(run(RNN, "numba", monkeypatch, shape, np.float64, states=True), want, np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_the_compiled_backward_with_blas_is_the_numpy_backward_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, activation: str
) -> None:
    """From the same forward, the call-a-step backward does the reference's arithmetic in its order
    and dtype, with no fused multiply-add, and BLAS's matmul: every gradient is equal, not close."""
    monkeypatch.setattr(rnn_kernels, "SMALL", 0)
    numpy, compiled = backwards(RNN(5, 37, activation=activation, rng=0, dtype=dtype), monkeypatch)
    assert_equal(compiled, numpy)


@pytest.mark.parametrize(
    ("dtype", "reach", "rtol"),
    [(np.float64, 800.0, 4e-15), (np.float32, 110.0, 2e-6)],  # a few ulp: ε64 = 2.2e-16, ε32 = 1.2e-7
)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations_agree_elementwise_into_saturation(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, reach: float, rtol: float, activation: str
) -> None:
    """``act(z)`` for pre-activations out to ±800 (float64), ±110 (float32), and ±0 and NaN,
    entry by entry, relatively, to a few ulp; NaN stays NaN, as with NumPy."""
    H = 512
    z = np.concatenate([np.linspace(-reach, reach, H // 2), np.linspace(-3.0, 3.0, H // 2)])
    z[[0, 1, 2]] = [-1e-30, -0.0, np.nan]

    def h1(backend: str) -> np.ndarray:
        monkeypatch.setenv("BPTT_BACKEND", backend)
        layer = RNN(1, H, activation=activation, rng=0, dtype=dtype)  # h_1 = act(b)
        layer.params["W_ih"][...], layer.params["W_hh"][...], layer.params["b"][...] = 0.0, 0.0, z
        return layer.forward(np.zeros((1, 1, 1), dtype))[0, 0]  # (H,)

    with np.errstate(invalid="ignore"):
        got, want = h1("numba"), h1("numpy")
    assert got.dtype == dtype
    tiny = np.finfo(dtype).smallest_subnormal  # σ(z) = e^z rounded into the subnormals: one unit
    np.testing.assert_allclose(got, want, rtol=rtol, atol=2 * tiny, equal_nan=True)


@pytest.mark.parametrize(
    ("shape", "compiled"),
    [((8, 64, 2, 16), False), ((257, 32, 2, 16), False), ((64, 4, 2, 128), True), ((32, 64, 2, 64), True)],
)
def test_by_default_a_recurrence_worth_compiling_is_compiled(
    monkeypatch: pytest.MonkeyPatch, shape: tuple[int, int, int, int], compiled: bool
) -> None:
    """``auto`` compiles from ``COMPILE_WORK`` multiply-adds (``T·B·H²``: 2^22 at ``(64, 4, ·, 128)``);
    the adder's longest check ``(257, 32, ·, 16)`` stays in NumPy. ``numba`` compiles any size."""
    T, B, _, H = shape
    assert (T * B * H * H >= rnn_kernels.COMPILE_WORK) is compiled
    calls = spy(rnn_kernels, monkeypatch)
    run(RNN, "auto", monkeypatch, shape, np.float32)
    assert calls == (["forward", "backward"] if compiled else [])
    run(RNN, "numba", monkeypatch, shape, np.float32)
    assert calls[-2:] == ["forward", "backward"]


def test_bptt_train_never_imports_numba(tmp_path: Path) -> None:
    """The adder's training is below ``COMPILE_WORK``, and its accuracy table a ``short_job``: a
    whole ``bptt train`` in a fresh process, with the default backend, never imports numba."""
    code = (
        "import contextlib, io, sys, bptt.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"    assert bptt.cli.main(['train', '--quiet', '--out', {str(tmp_path / 'adder.npz')!r}]) == 0\n"
        "print('numba' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "BPTT_BACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["False"], done.stdout + done.stderr


@pytest.mark.parametrize(("backend", "compiled"), [("auto", False), ("numba", True)])
def test_a_short_job_compiles_only_when_forced(
    monkeypatch: pytest.MonkeyPatch, backend: str, compiled: bool
) -> None:
    """Inside ``kernels.short_job()`` ``auto`` keeps the NumPy loops at any size; ``numba`` compiles;
    outside it, the size rule holds again."""
    calls = spy(rnn_kernels, monkeypatch)
    with kernels.short_job():
        run(RNN, backend, monkeypatch, (64, 4, 2, 128), np.float32)
    assert calls == (["forward", "backward"] if compiled else [])
    run(RNN, "auto", monkeypatch, (64, 4, 2, 128), np.float32)
    assert calls[-2:] == ["forward", "backward"]


def test_sequential_hands_its_own_gradients_over_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    """In ``Sequential([RNN, Dense])`` the compiled loop writes δa over the gradient Dense made (one
    ``(T, B, H)`` array fewer at the peak); the caller's ``grad_y`` and a direct ``backward``'s are
    never written; every gradient is that of the layers called one by one, bit for bit; and the
    borrowed array is let go at the next forward."""
    monkeypatch.setenv("BPTT_BACKEND", "numba")
    rng = np.random.default_rng(3)
    model = Sequential([RNN(3, 40, rng=0), Dense(40, 2, rng=1)])
    rnn, dense = model.layers
    x, gy = rng.normal(size=(6, 5, 3)), rng.normal(size=(6, 5, 2))
    kept = gy.copy()
    model.forward(x)
    grad_x = model.backward(gy)
    assert np.array_equal(gy, kept) and rnn._lent
    got = [grad_x, rnn.grad_a, *(g.copy() for g in model.grads.values())]

    gh = dense.backward(gy)  # the same forward's caches, called one by one
    gh_kept = gh.copy()
    want = [rnn.backward(gh), rnn.grad_a, *(g.copy() for g in model.grads.values())]
    assert np.array_equal(gh, gh_kept) and not rnn._lent
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))

    model.forward(x)
    model.backward(gy)
    assert rnn._lent
    model.forward(x)
    assert "da" not in rnn._work and not rnn._lent


def test_a_handed_over_gradient_is_never_reused_as_a_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: after a compiled backward wrote δa over a gradient Sequential handed it, a second
    backward of the same forward in NumPy took that array for its δa buffer, and so overwrote the
    gradient it was reading (Dense's reused one). Both backends now give the one-by-one gradients."""
    rng = np.random.default_rng(5)
    model = Sequential([RNN(3, 40, rng=0), Dense(40, 2, rng=1)])
    x, gy = rng.normal(size=(6, 5, 3)), rng.normal(size=(6, 5, 2))
    model.forward(x)
    grads = {}
    for backend in ("numba", "numpy", "numba"):
        monkeypatch.setenv("BPTT_BACKEND", backend)
        grads[backend] = [model.backward(gy), *(g.copy() for g in model.grads.values())]
    rnn, dense = model.layers
    want = [rnn.backward(dense.backward(gy)), *(g.copy() for g in model.grads.values())]
    for got in grads.values():
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * float(np.abs(b).max()))
