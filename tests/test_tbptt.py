"""Truncated BPTT(k1, k2): windows, parity with torch autograd with detach() at the same points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bptt
from bptt.recurrent import Recurrent
from bptt.tbptt import tbptt, windows


def test_windows_cover_the_sequence() -> None:
    """Each update covers k1 new steps; each backward reaches back k2 steps (or to the start)."""
    assert windows(10, 3, 5) == [(0, 0, 3), (1, 3, 6), (4, 6, 9), (5, 9, 10)]
    assert windows(6, 6, 6) == [(0, 0, 6)]
    assert windows(7, 2, 2) == [(0, 0, 2), (2, 2, 4), (4, 4, 6), (5, 6, 7)]
    with pytest.raises(ValueError, match="k2 = 2 must be at least k1 = 3"):
        windows(10, 3, 2)
    with pytest.raises(ValueError, match="k1"):
        windows(10, 0, 2)


def _model(cell: str, rng: np.random.Generator) -> bptt.Sequential:
    layer = {
        "rnn": bptt.RNN(3, 4, rng=rng),
        "lstm": bptt.LSTM(3, 4, rng=rng),
        "gru": bptt.GRU(3, 4, rng=rng),
    }[cell]
    return bptt.Sequential([layer, bptt.Dense(4, 2, rng=rng)])


def _torch_cell(
    cell: str, p: dict[str, torch.Tensor], x: torch.Tensor, state: tuple[torch.Tensor, ...]
) -> tuple:
    """One step of each cell in torch ops, from the equations (independent of bptt's code)."""
    H = p["0.W_hh"].shape[0]
    if cell == "rnn":
        h = torch.tanh(x @ p["0.W_ih"] + state[0] @ p["0.W_hh"] + p["0.b"])
        return (h,)
    if cell == "lstm":
        h, c = state
        z = x @ p["0.W_ih"] + h @ p["0.W_hh"] + p["0.b"]
        i, f, g, o = (
            torch.sigmoid(z[:, :H]),
            torch.sigmoid(z[:, H : 2 * H]),
            torch.tanh(z[:, 2 * H : 3 * H]),
            torch.sigmoid(z[:, 3 * H :]),
        )
        c = f * c + i * g
        return (o * torch.tanh(c), c)
    (h,) = state
    a, r_ = x @ p["0.W_ih"] + p["0.b"], h @ p["0.W_hh"]
    r = torch.sigmoid(a[:, :H] + r_[:, :H])
    z = torch.sigmoid(a[:, H : 2 * H] + r_[:, H : 2 * H])
    n = torch.tanh(a[:, 2 * H :] + r * (r_[:, 2 * H :] + p["0.b_hn"]))
    return ((1 - z) * n + z * h,)


def _torch_tbptt(model: bptt.Sequential, cell: str, x: np.ndarray, y: np.ndarray, k1: int, k2: int) -> dict:
    """Σ over windows of ∇ (masked mean MSE on the last k1 steps), the states cut with detach()."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    T, B, _ = x.shape
    xt, yt = torch.tensor(x), torch.tensor(y)
    zeros = torch.zeros(B, 4, dtype=torch.float64)
    state: tuple = (zeros, zeros.clone()) if cell == "lstm" else (zeros,)
    states = {0: state}
    with torch.no_grad():
        for t in range(T):
            state = _torch_cell(cell, p, xt[t], state)
            states[t + 1] = state
    for s, loss_from, e in windows(T, k1, k2):
        state = tuple(v.detach() for v in states[s])
        outs = []
        for t in range(s, e):
            state = _torch_cell(cell, p, xt[t], state)
            outs.append(state[0] @ p["1.W"] + p["1.b"])
        out = torch.stack(outs)[loss_from - s :]
        torch.nn.functional.mse_loss(out, yt[loss_from:e]).backward()
    return {k: v.grad.numpy() for k, v in p.items()}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(
    "T, B, k1, k2", [(9, 2, 3, 5), (7, 1, 2, 2), (8, 3, 3, 8), (6, 2, 1, 3), (5, 1, 5, 5)]
)
def test_tbptt_gradient_matches_torch_with_detach(cell: str, T: int, B: int, k1: int, k2: int) -> None:
    """The summed window gradients equal torch autograd's on the same truncated objective (rtol 1e-9)."""
    rng = np.random.default_rng(T * 10 + k1 + k2)
    model = _model(cell, rng)
    x, y = rng.normal(size=(T, B, 3)), rng.normal(size=(T, B, 2))
    total = {k: np.zeros_like(v) for k, v in model.params.items()}
    for _, _loss in tbptt(model, bptt.MSELoss(), x, y, k1, k2):
        for k, g in model.grads.items():
            total[k] += g
    ref = _torch_tbptt(model, cell, x, y, k1, k2)
    for k, v in ref.items():
        np.testing.assert_allclose(total[k], v, rtol=1e-9, atol=1e-12 * np.abs(v).max(), err_msg=k)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_k1_equal_k2_equal_T_is_full_bptt(cell: str) -> None:
    """One window over the whole sequence is exactly the ordinary backward."""
    rng = np.random.default_rng(5)
    model = _model(cell, rng)
    x, y = rng.normal(size=(6, 2, 3)), rng.normal(size=(6, 2, 2))
    loss_fn = bptt.MSELoss()
    _, grad = loss_fn(model.forward(x), y)
    model.backward(grad)
    full = {k: g.copy() for k, g in model.grads.items()}
    model[0].reset_state()
    assert len(list(tbptt(model, loss_fn, x, y, 6, 6))) == 1
    for k, g in model.grads.items():
        np.testing.assert_allclose(g, full[k], rtol=1e-12, atol=0, err_msg=k)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_states_are_carried_to_the_next_piece(cell: str) -> None:
    """After tbptt the recurrent states are those after step T of an uninterrupted forward."""
    rng = np.random.default_rng(6)
    model = _model(cell, rng)
    x, y = rng.normal(size=(7, 2, 3)), rng.normal(size=(7, 2, 2))
    model.forward(x)
    rnn = model[0]
    assert isinstance(rnn, Recurrent)
    expected = rnn.state_after(7)
    rnn.reset_state()
    for _ in tbptt(model, bptt.MSELoss(), x, y, 2, 3):
        pass
    carried = rnn.state
    assert carried is not None and (carried.c is None) == (expected.c is None) == (cell != "lstm")
    for value, want in zip(carried, expected, strict=True):
        if want is not None:
            np.testing.assert_allclose(value, want, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(rnn.h0, carried.h)  # the convenience attributes hold it too


@pytest.mark.parametrize("cell", [bptt.RNN, bptt.LSTM, bptt.GRU])
def test_stateful_state_over_three_calls_equals_one_long_forward(cell: type) -> None:
    """stateful=True: three forward calls on consecutive pieces equal one forward on the whole."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(9, 2, 3))
    whole = cell(3, 4, rng=1).forward(x)
    layer = cell(3, 4, stateful=True, rng=1)
    pieces = [layer.forward(x[i : i + 3]) for i in (0, 3, 6)]
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=1e-13, atol=1e-15)
    layer.reset_state()
    np.testing.assert_allclose(layer.forward(x[:3]), whole[:3], rtol=1e-13, atol=1e-15)


def test_tbptt_refuses_bidirectional() -> None:
    """A layer that reads the future cannot be truncated in time."""
    model = bptt.Sequential([bptt.Bidirectional(bptt.RNN(3, 4, rng=0), rng=1), bptt.Dense(8, 2, rng=2)])
    with pytest.raises(TypeError, match="Bidirectional"):
        next(tbptt(model, bptt.MSELoss(), np.zeros((4, 1, 3)), np.zeros((4, 1, 2)), 2, 2))
