"""The layer protocol, proven from outside the package: a layer type defined here, with no edit
to ``src/``, works with Sequential, gradcheck, save/load (after one ``register_layer``) and tbptt.
Also: the explicit recurrent state (``run``), ``leaves()``, and uniform ``input_size``/``output_size``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bptt
from bptt.layers import Weighted
from bptt.tasks.addition import accuracy, add, encode, predict_bits
from bptt.tbptt import tbptt


class Scale(Weighted):
    """``y = x ⊙ w`` at every step, one weight per feature: ``w (F,)``."""

    def __init__(self, features: int, *, rng: Any = None, dtype: Any = np.float64) -> None:
        super().__init__(dtype, rng)
        self.features = features
        self._add_param("w", self._uniform(1.0, (features,)))
        self._x: np.ndarray | None = None

    @property
    def input_size(self) -> int:
        return self.features

    @property
    def output_size(self) -> int:
        return self.features

    def config(self) -> dict[str, Any]:
        return {"features": self.features} | super().config()

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (T, B, F) -> y (T, B, F)``."""
        self._x = np.asarray(x, self.dtype)
        self._out_shape = self._x.shape
        return self._x * self.params["w"]

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        """``grad_y (T, B, F) -> grad_x (T, B, F)``; ``dw = Σ_{t,b} x ⊙ grad_y``."""
        assert self._x is not None
        g = self._check_grad(grad_y, self.dtype)
        self.grads["w"][...] = (self._x * g).sum(axis=(0, 1))
        return g * self.params["w"]


bptt.register_layer(Scale)


def model(cell: type[bptt.Recurrent] = bptt.LSTM) -> bptt.Sequential:
    return bptt.Sequential([Scale(3, rng=1), cell(3, 4, rng=2), Scale(4, rng=3), bptt.Dense(4, 2, rng=4)])


def test_a_new_layer_works_with_sequential_and_gradcheck() -> None:
    rng = np.random.default_rng(0)
    m = model()
    x, y = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 2, 2))
    assert m.forward(x).shape == (5, 2, 2)
    report = bptt.gradcheck(m, bptt.MSELoss(), x, y)
    assert report.ok, str(report)
    assert {"0.w", "2.w", "1.h0", "1.c0", "x"} <= report.errors.keys()


def test_a_new_layer_saves_and_loads(tmp_path: Path) -> None:
    m = model(bptt.GRU)
    bptt.save(m, tmp_path / "m.npz")
    back = bptt.load(tmp_path / "m.npz")
    assert [type(layer) for layer in back] == [type(layer) for layer in m]
    x = np.random.default_rng(1).normal(size=(4, 2, 3))
    np.testing.assert_array_equal(back.forward(x), m.forward(x))


def test_an_unregistered_layer_is_refused_by_save(tmp_path: Path) -> None:
    class Unnamed(Scale):
        pass

    with pytest.raises(TypeError, match="register_layer"):
        bptt.save(bptt.Sequential([Unnamed(2)]), tmp_path / "m.npz")
    with pytest.raises(ValueError, match="already registered"):
        bptt.register_layer(type("Scale", (Scale,), {}))


def test_a_new_layer_trains_under_tbptt_like_full_bptt() -> None:
    """With k1 = k2 = T, tbptt is full BPTT: the same gradients, the new layer's included."""
    rng = np.random.default_rng(2)
    m = model()
    x, y = rng.normal(size=(6, 2, 3)), rng.normal(size=(6, 2, 2))
    _, grad = bptt.MSELoss()(m.forward(x), y)
    m.backward(grad)
    full = {k: v.copy() for k, v in m.grads.items()}
    assert [end for end, _ in tbptt(m, bptt.MSELoss(), x, y, 6, 6)] == [6]
    for k, v in full.items():
        np.testing.assert_allclose(m.grads[k], v, rtol=1e-12, atol=1e-15, err_msg=k)


def test_leaves_and_sizes() -> None:
    m = bptt.Sequential([bptt.Bidirectional(bptt.GRU(3, 4)), bptt.Tanh(), bptt.Dense(8, 1)])
    assert [p for p, _ in m.leaves()] == ["0.fwd.", "0.bwd.", "1.", "2."]
    assert (m.input_size, m.output_size, m[1].input_size) == (3, 1, None)
    assert not m.causal and model().causal
    y, states = m.run(np.ones((3, 2, 3)))  # a Bidirectional inside: states under each leaf prefix
    assert y.shape == (3, 2, 1) and states.keys() == {"0.fwd.", "0.bwd."}
    np.testing.assert_array_equal(m.run(np.ones((3, 2, 3)), states)[0].shape, (3, 2, 1))


@pytest.mark.parametrize("cell", [bptt.RNN, bptt.LSTM, bptt.GRU])
def test_run_in_pieces_equals_one_run_and_touches_no_attribute(cell: type[bptt.Recurrent]) -> None:
    rng = np.random.default_rng(3)
    m = model(cell)
    x = rng.normal(size=(7, 2, 3))
    whole, end = m.run(x)
    y1, mid = m.run(x[:3])
    y2, end2 = m.run(x[3:], mid)
    np.testing.assert_allclose(np.concatenate([y1, y2]), whole, rtol=1e-13, atol=1e-15)
    assert end.keys() == {"1."} and m[1].h0 is None and m[1].state is None
    for a, b in zip(end["1."], end2["1."], strict=True):
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    with pytest.raises(KeyError, match="state keys"):
        m.run(x, {"5.": end["1."]})


def adder(cell: type[bptt.Recurrent]) -> bptt.Sequential:
    return bptt.Sequential([cell(2, 6, rng=5), bptt.Dense(6, 1, rng=6)])


@pytest.mark.parametrize("cell", [bptt.LSTM, bptt.GRU, bptt.RNN])
def test_adders_of_every_cell_start_fresh_and_stream(cell: type[bptt.Recurrent]) -> None:
    """A carried state (stateful, or h0/c0 set) changes nothing in accuracy, predict_bits or add."""
    m = adder(cell)
    x = encode(200, 55, 9)
    fresh = predict_bits(m, x)
    acc = accuracy(m, 3)
    a, b = (3 << 5000) // 7, 987654321  # longer than CHUNK: streamed in two pieces
    plain = add(m, a, b, accelerate=False)
    rnn = m[0]
    assert isinstance(rnn, bptt.Recurrent)
    rnn.stateful = True
    rnn.state = bptt.State(*(np.full((1, 6), 0.9) for _ in rnn.state_names))
    np.testing.assert_array_equal(predict_bits(m, x), fresh)
    assert accuracy(m, 3) == acc
    assert add(m, a, b, accelerate=False) == plain
    # Streaming in CHUNK pieces equals one run over the whole sum.
    T = max(a.bit_length(), b.bit_length()) + 1
    whole = predict_bits(m, encode(a, b, T - 1))[:, 0]
    assert plain == int(sum(1 << t for t in range(T) if whole[t]))
    assert rnn.stateful and rnn.h0 is not None  # the caller's settings are left as they were


class TorchScale(Scale):
    """``Scale`` with its torch form: the same equation in torch ops, for the autograd oracle."""

    def torch_forward(self, torch: Any, x: Any, params: Any, state: Any = None) -> Any:
        return x * params["w"]


def test_a_new_layer_with_a_torch_form_gets_an_autograd_oracle() -> None:
    """``torch_gradients`` asks each layer for its torch form: a new layer's own one checks its
    backward against autograd; a layer without one is a TypeError naming it."""
    pytest.importorskip("torch")
    from bptt.oracle import torch_gradients

    rng = np.random.default_rng(4)
    m = bptt.Sequential(
        [TorchScale(3, rng=1), bptt.LSTM(3, 4, rng=2), TorchScale(4, rng=3), bptt.Dense(4, 2, rng=4)]
    )
    lstm = m[1]
    assert isinstance(lstm, bptt.LSTM)
    lstm.h0, lstm.c0 = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    x, grad_y = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 2, 2))
    m.forward(x)
    grad_x = m.backward(grad_y)
    ref = torch_gradients(m, x, grad_y=grad_y)
    ours = {**m.grads, "x": grad_x, "1.h0": lstm.grad_h0, "1.c0": lstm.grad_c0}
    assert ours.keys() == ref.keys() - {"y", "loss"}
    for key, grad in ours.items():
        np.testing.assert_allclose(grad, ref[key], rtol=1e-9, err_msg=key)
    with pytest.raises(TypeError, match="Scale has no torch form"):
        torch_gradients(bptt.Sequential([bptt.Tanh(), Scale(3)]), x, grad_y=x)


def test_a_new_layer_is_explained() -> None:
    """explain writes the protocol's generic lines for Scale, alone and between an RNN and a Dense."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 2, 3))
    alone = bptt.explain(Scale(3, rng=1), x)
    assert "ŷ_t = Scale(x_t)" in str(alone) and "δx_t = Scale.backward(δŷ_t)" in str(alone)
    assert alone.max_error() <= 1e-12
    m = bptt.Sequential([Scale(3, rng=1), bptt.RNN(3, 4, rng=2), Scale(4, rng=3), bptt.Dense(4, 2, rng=4)])
    ex = bptt.explain(m, x)
    text = str(ex)
    assert "a_2 = s_2 @ W_ih + h_1 @ W_hh + b" in text and "s2_t = Scale(h_t)" in text
    assert "exactly w's own shape (4,) ✓" in text
    assert {g.param for g in ex.gradients} == set(m.params)
    assert ex.mistakes and ex.max_error() <= 1e-12
