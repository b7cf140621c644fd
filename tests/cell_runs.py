"""One forward and backward of a recurrent cell under a chosen backend, every array out: what the
compiled-kernel tests (``test_kernels``, ``test_rnn_kernels``, ``test_lstm_kernels``,
``test_gru_kernels``) compare between the NumPy loops and the compiled ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bptt.recurrent.base import Recurrent

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}  # relative to an array's largest magnitude


def run(
    cell: type[Recurrent],
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    shape: tuple[int, int, int, int],
    dtype: Any,
    *,
    states: bool = False,
    stateful: bool = False,
    ids: bool = False,
    lengths: Any = None,
    seed: int = 0,
    **options: Any,
) -> dict[str, np.ndarray]:
    """A fresh ``cell(I, H, **options)`` under ``BPTT_BACKEND=backend``: outputs, final state,
    caches, ``grad_x``, every weight and state gradient, and the per-step δ.

    ``x`` is ids ``(T, B)`` with ``ids``, one-hot (as the character model's) when ``I > 3``, else
    normal; ``states`` draws every initial state; ``stateful`` runs two windows, the second from
    the first's final state."""
    monkeypatch.setenv("BPTT_BACKEND", backend)
    T, B, I, H = shape
    rng = np.random.default_rng([seed, *shape])
    layer = cell(I, H, stateful=stateful, rng=seed, dtype=dtype, **options)
    x: np.ndarray
    if ids:
        x = rng.integers(0, I, (T, B))
    elif I > 3:
        x = np.eye(I, dtype=dtype)[rng.integers(0, I, (T, B))]  # (T, B, I)
    else:
        x = rng.normal(size=(T, B, I)).astype(dtype)
    gy = rng.normal(size=(T, B, H)).astype(dtype)
    if states:
        for name in layer.state_names:
            setattr(layer, name, rng.normal(size=(B, H)).astype(dtype))
    out: dict[str, np.ndarray] = {}
    if stateful:
        out["y_first"] = layer.forward(x[::-1].copy(), lengths=lengths)
    out["y"] = layer.forward(x, lengths=lengths)
    names = layer.state_names  # a State's fields past these are None
    out |= {f"final {k}": v for k, v in zip(names, layer.state_after(T)[: len(names)], strict=True)}
    if hasattr(layer, "forward_cache"):
        out |= {f"cache {k}": v for k, v in layer.forward_cache().items()}
    out["grad_x"] = layer.backward(gy)
    out |= {f"grad {k}": v.copy() for k, v in layer.grads.items()}
    out |= {f"grad {k}": v.copy() for k, v in zip(names, layer.grad_state[: len(names)], strict=True)}
    out["grad_a"] = layer.grad_a
    if hasattr(layer, "grad_r"):
        out["grad_r"] = layer.grad_r
    return out


def assert_agree(got: dict[str, np.ndarray], want: dict[str, np.ndarray], dtype: Any) -> None:
    """Every array within ``TOLERANCE[dtype]`` of the reference, relative to its largest entry."""
    assert got.keys() == want.keys()
    for name, ref in want.items():
        assert got[name].dtype == ref.dtype == dtype, name
        scale = float(np.abs(ref).max())
        np.testing.assert_allclose(got[name], ref, rtol=0, atol=TOLERANCE[dtype] * scale, err_msg=name)


def assert_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    """Every array equal, bit for bit."""
    assert got.keys() == want.keys()
    for name, ref in want.items():
        assert np.array_equal(got[name], ref), name


def backwards(layer: Recurrent, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, np.ndarray], ...]:
    """From one forward of ``layer`` (``I = 5``, ``T = 9``, ``B = 4``, random initial states), a
    backward under ``BPTT_BACKEND=numpy`` and one under ``numba``: each one's ``grad_x``, state
    gradients, per-step δ and weight gradients."""
    rng = np.random.default_rng(4)
    dtype, H = layer.dtype, layer.hidden_size
    for name in layer.state_names:
        setattr(layer, name, rng.normal(size=(4, H)).astype(dtype))
    x, gy = rng.normal(size=(9, 4, 5)).astype(dtype), rng.normal(size=(9, 4, H)).astype(dtype)
    layer.forward(x)
    out = []
    for backend in ("numpy", "numba"):
        monkeypatch.setenv("BPTT_BACKEND", backend)
        got = {"grad_x": layer.backward(gy), "grad_a": layer.grad_a}
        got |= {f"grad {k}": v.copy() for k, v in zip(layer.state_names, layer.grad_state, strict=False)}
        got |= {f"grad {k}": v.copy() for k, v in layer.grads.items()}
        if hasattr(layer, "grad_r"):
            got["grad_r"] = layer.grad_r
        out.append(got)
    return tuple(out)


def spy(module: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each call of ``module.forward`` and ``module.backward`` (a cell's kernel loops) by name."""
    calls: list[str] = []
    for name, kernel in (("forward", module.forward), ("backward", module.backward)):

        def call(*args: Any, name: str = name, kernel: Any = kernel) -> Any:
            calls.append(name)
            return kernel(*args)

        monkeypatch.setattr(module, name, call)
    return calls
