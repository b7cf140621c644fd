"""GRU's compiled steps (``bptt.recurrent.gru_kernels``) against its NumPy loops, the reference.

Every array a forward and backward produce (outputs, final state, the caches ``explain`` reads,
every gradient, ``grad_h0``, ``grad_x``, ``grad_a``, ``grad_r``) agrees to round-off: float64 at
1e-12 and float32 at 1e-5, relative to the array's largest magnitude; the gates agree elementwise
to a few ulp, far into saturation and the tail where ``σ(z) = e^z``. Padded batches,
``BPTT_BACKEND=numpy``, a missing numba and gradcheck's complex probe take the NumPy loops.
"""

from __future__ import annotations

from typing import Any

import numba  # noqa: F401  - numba is a dependency; a missing numba must fail, not skip
import numpy as np
import pytest

from bptt import GRU
from bptt.recurrent import gru_kernels, kernels

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
SHAPES = [(1, 1, 1, 1), (1, 3, 2, 5), (6, 1, 3, 4), (5, 4, 3, 37), (64, 32, 64, 128)]  # (T, B, I, H)


@pytest.fixture(autouse=True)
def _auto_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the default backend, whatever the shell running pytest has set."""
    monkeypatch.delenv("BPTT_BACKEND", raising=False)


def run(
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    shape: tuple[int, int, int, int],
    dtype: Any,
    *,
    states: bool = False,
    bias: bool = True,
    stateful: bool = False,
    ids: bool = False,
    lengths: Any = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """One forward and backward of a fresh GRU under ``BPTT_BACKEND=backend``: every array out.

    ``x`` is one-hot (as the character model's) when ``I > 3``, else normal, or ids ``(T, B)``
    with ``ids``; ``stateful`` runs two windows, the second from the first's final state."""
    monkeypatch.setenv("BPTT_BACKEND", backend)
    T, B, I, H = shape
    rng = np.random.default_rng([seed, *shape])
    layer = GRU(I, H, bias=bias, stateful=stateful, rng=seed, dtype=dtype)
    x: np.ndarray
    if ids:
        x = rng.integers(0, I, (T, B))
    elif I > 3:
        x = np.eye(I, dtype=dtype)[rng.integers(0, I, (T, B))]  # (T, B, I)
    else:
        x = rng.normal(size=(T, B, I)).astype(dtype)
    gy = rng.normal(size=(T, B, H)).astype(dtype)
    if states:
        layer.h0 = rng.normal(size=(B, H)).astype(dtype)
    out: dict[str, np.ndarray] = {}
    if stateful:
        out["y_first"] = layer.forward(x[::-1].copy(), lengths=lengths)
    out["y"] = layer.forward(x, lengths=lengths)
    out["h_T"] = layer.state_after(T).h
    out |= {f"cache {k}": v for k, v in layer.forward_cache().items()}
    out["grad_x"] = layer.backward(gy)
    out |= {f"grad {k}": v.copy() for k, v in layer.grads.items()}
    assert layer.grad_h0 is not None
    out["grad_h0"], out["grad_a"], out["grad_r"] = layer.grad_h0.copy(), layer.grad_a, layer.grad_r
    return out


def assert_agree(got: dict[str, np.ndarray], want: dict[str, np.ndarray], dtype: Any) -> None:
    """Every array within ``TOLERANCE[dtype]`` of the reference, relative to its largest entry."""
    assert got.keys() == want.keys()
    for name, ref in want.items():
        assert got[name].dtype == ref.dtype == dtype, name
        scale = float(np.abs(ref).max())
        np.testing.assert_allclose(got[name], ref, rtol=0, atol=TOLERANCE[dtype] * scale, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}-B{}-I{}-H{}".format(*s))
@pytest.mark.parametrize("states", [False, True], ids=["zeros", "h0"])
def test_compiled_steps_agree_with_the_numpy_loops(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, shape: tuple[int, int, int, int], states: bool
) -> None:
    """Outputs, caches and every gradient, from zero or given initial states."""
    want = run("numpy", monkeypatch, shape, dtype, states=states)
    got = run("auto", monkeypatch, shape, dtype, states=states)
    assert_agree(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "options",
    [{"bias": False}, {"stateful": True}, {"stateful": True, "states": True}, {"ids": True}],
    ids=["no-bias", "stateful", "stateful-h0", "ids"],
)
def test_compiled_steps_agree_without_bias_when_stateful_and_on_ids(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, options: dict[str, bool]
) -> None:
    """No bias; a stateful layer's second window, which starts from the first one's last state; ids."""
    shape = (7, 3, 5, 9)
    want = run("numpy", monkeypatch, shape, dtype, **options)
    got = run("auto", monkeypatch, shape, dtype, **options)
    assert_agree(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_the_compiled_backward_is_the_numpy_backward_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, bias: bool
) -> None:
    """From the same forward caches, the backward kernel's arithmetic is the reference's, in its
    order and dtype, with no fused multiply-add: every gradient is equal, not just close."""
    rng = np.random.default_rng(4)
    layer = GRU(5, 37, bias=bias, rng=0, dtype=dtype)
    layer.h0 = rng.normal(size=(4, 37)).astype(dtype)
    x, gy = rng.normal(size=(9, 4, 5)).astype(dtype), rng.normal(size=(9, 4, 37)).astype(dtype)
    layer.forward(x)
    grads = {}
    for backend in ("numpy", "auto"):
        monkeypatch.setenv("BPTT_BACKEND", backend)
        grad_x = layer.backward(gy)
        assert layer.grad_h0 is not None
        grads[backend] = [grad_x, layer.grad_h0.copy(), layer.grad_a, layer.grad_r]
        grads[backend] += [g.copy() for g in layer.grads.values()]
    assert all(np.array_equal(a, b) for a, b in zip(grads["numpy"], grads["auto"], strict=True))


@pytest.mark.parametrize(
    ("dtype", "reach", "rtol"),
    [(np.float64, 800.0, 4e-15), (np.float32, 110.0, 2e-6)],  # a few ulp: ε64 = 2.2e-16, ε32 = 1.2e-7
)
def test_gates_agree_elementwise_into_saturation_and_the_tail(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, reach: float, rtol: float
) -> None:
    """σ and tanh of pre-activations out to ±800 (float64), ±110 (float32), crossing ``-709``
    (``-88``), where ``σ(z)`` becomes ``e^z``, agree entry by entry, relatively, to a few ulp."""
    H = 512
    z = np.concatenate([np.linspace(-reach, reach, H // 2), np.linspace(-3.0, 3.0, H // 2)])
    z[[0, 1]] = [-1e-30, 0.0]

    def gates_and_state(backend: str) -> tuple[np.ndarray, ...]:
        monkeypatch.setenv("BPTT_BACKEND", backend)
        layer = GRU(1, H, rng=0, dtype=dtype)  # r, z = σ(b), n = tanh(b_n + r ⊙ 0): every z
        layer.params["W_ih"][...], layer.params["W_hh"][...] = 0.0, 0.0
        layer.params["b"][...], layer.params["b_hn"][...] = np.tile(z, 3), 0.0
        layer.h0 = np.linspace(-1.0, 1.0, H)[None].astype(dtype)
        layer.forward(np.zeros((1, 1, 1), dtype))
        return layer.forward_cache()["gates"][0, 0], layer.state_after(1).h[0]  # (3H,), (H,)

    (gates, h), (want_gates, want_h) = gates_and_state("auto"), gates_and_state("numpy")
    assert gates.dtype == dtype
    tiny = np.finfo(dtype).smallest_subnormal  # e^z rounded into the subnormals: within one unit
    np.testing.assert_allclose(gates, want_gates, rtol=rtol, atol=2 * tiny)
    np.testing.assert_allclose(h, want_h, rtol=0, atol=rtol)  # (h0 - n) z + n, |h| ≤ 1
    subnormal = (gates[:H] > 0) & (gates[:H] < np.finfo(dtype).tiny)
    assert subnormal.sum() >= 2  # the tail holds e^z, not 0, until it underflows


def _refuse(name: str, calls: list[str]) -> Any:
    def refuse(*args: Any) -> Any:
        calls.append(name)
        raise AssertionError(f"gru_kernels.{name} called")

    return refuse


def test_padded_batches_take_the_numpy_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a padded step the kernels are never called and the results are the reference's;
    ``lengths`` of all ``T`` pads nothing, so that batch takes the kernels, bit for bit."""
    calls: list[str] = []
    monkeypatch.setattr(gru_kernels, "forward", _refuse("forward", calls))
    monkeypatch.setattr(gru_kernels, "backward", _refuse("backward", calls))
    padded = np.array([3, 7, 1])
    got = run("auto", monkeypatch, (7, 3, 2, 9), np.float64, lengths=padded)
    want = run("numpy", monkeypatch, (7, 3, 2, 9), np.float64, lengths=padded)
    assert calls == []
    for name, ref in want.items():
        assert np.array_equal(got[name], ref), name

    monkeypatch.undo()
    monkeypatch.delenv("BPTT_BACKEND", raising=False)
    full = run("auto", monkeypatch, (7, 3, 2, 9), np.float64, lengths=np.full(3, 7))
    none = run("auto", monkeypatch, (7, 3, 2, 9), np.float64)
    for name, ref in none.items():
        assert np.array_equal(full[name], ref), name


@pytest.mark.parametrize("how", ["BPTT_BACKEND=numpy", "no numba"])
def test_the_numpy_loops_when_asked_or_without_numba(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """``BPTT_BACKEND=numpy``, or numba missing, and the kernels are not touched."""
    want = run("numpy", monkeypatch, (4, 2, 3, 5), np.float32)
    calls: list[str] = []
    monkeypatch.setattr(gru_kernels, "forward", _refuse("forward", calls))
    monkeypatch.setattr(gru_kernels, "backward", _refuse("backward", calls))
    backend = "numpy"
    if how == "no numba":
        monkeypatch.setattr(kernels, "AVAILABLE", False)
        backend = "auto"
    got = run(backend, monkeypatch, (4, 2, 3, 5), np.float32)
    assert calls == []
    for name, ref in want.items():
        assert np.array_equal(got[name], ref), name


def test_the_kernels_are_taken_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, ``auto`` and ``numba`` (any case, spaces around) all take the compiled steps."""
    calls: list[str] = []
    forward, backward = gru_kernels.forward, gru_kernels.backward

    def spy(name: str, kernel: Any) -> Any:
        def call(*args: Any) -> Any:
            calls.append(name)
            return kernel(*args)

        return call

    monkeypatch.setattr(gru_kernels, "forward", spy("forward", forward))
    monkeypatch.setattr(gru_kernels, "backward", spy("backward", backward))
    for backend in ("", "auto", " Numba "):
        run(backend, monkeypatch, (3, 2, 2, 4), np.float64)
    assert calls == ["forward", "backward"] * 3
