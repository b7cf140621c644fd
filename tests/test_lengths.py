"""Variable-length batches: ``lengths=`` against torch's ``pack_padded_sequence`` at 1e-9.

A padded batch holds sequences of different lengths, each followed by padding up to ``T``. Under
``lengths`` the padding must change neither the states nor the gradients: torch's packed
sequences are the reference (outputs zero at padding, ``h_n``/``c_n`` each sequence's last real
state, and every gradient with random upstream gradients), weights copied by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from bptt import (
    GRU,
    LSTM,
    RNN,
    BCEWithLogitsLoss,
    Bidirectional,
    CrossEntropyLoss,
    Dense,
    Last,
    MSELoss,
    Sequential,
    gradcheck,
)
from bptt.layers import Layer

RTOL = 1e-9
CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
# (T, lengths): B = 1, T = 1, all equal to T, and mixed (unsorted, with the shortest at 1)
SHAPES = [(1, [1]), (5, [3]), (1, [1, 1, 1]), (4, [4, 4]), (6, [2, 6, 1, 4]), (5, [5, 3, 3])]


def assert_close(got: Any, ref: Any, what: str) -> None:
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    atol = 1e-12 * float(np.max(np.abs(ref))) if ref.size else 0.0
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=atol, err_msg=what)


def copy_into(net: Any, suffix: str, cell: Any) -> None:
    """``cell``'s weights into ``net``'s ``*_{suffix}`` parameters (bptt's are transposed)."""
    bias_ih, bias_hh = cell.torch_biases()
    with torch.no_grad():
        getattr(net, f"weight_ih_{suffix}").copy_(torch.from_numpy(cell.params["W_ih"].T))
        getattr(net, f"weight_hh_{suffix}").copy_(torch.from_numpy(cell.params["W_hh"].T))
        getattr(net, f"bias_ih_{suffix}").copy_(torch.from_numpy(bias_ih))
        getattr(net, f"bias_hh_{suffix}").copy_(torch.from_numpy(bias_hh))


def torch_packed(
    layer: Layer, x: np.ndarray, lengths: list[int], start: list[np.ndarray], gy: np.ndarray
) -> dict[str, Any]:
    """``nn.RNN``/``LSTM``/``GRU`` over ``pack_padded_sequence(..., enforce_sorted=False)``."""
    bidirectional = isinstance(layer, Bidirectional)
    cells = [layer.forward_layer, layer.backward_layer] if bidirectional else [layer]
    kind = type(cells[0]).torch_counterpart(torch)
    net = kind(x.shape[2], cells[0].hidden_size, bidirectional=bidirectional).double()
    for suffix, cell in zip(("l0", "l0_reverse"), cells, strict=False):
        copy_into(net, suffix, cell)
    xt = torch.tensor(x, requires_grad=True)
    states = [torch.tensor(s, requires_grad=True) for s in start]  # each (D, B, H)
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False)
    out, final = net(packed, states[0] if len(states) == 1 else tuple(states))
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
    y.backward(torch.tensor(gy))
    finals = final if isinstance(final, tuple) else (final,)
    grads = {name: p.grad.numpy() for name, p in net.named_parameters()}
    return {
        "y": y.detach().numpy(),
        "final": [f.detach().numpy() for f in finals],
        "x": xt.grad.numpy(),
        "start": [s.grad.numpy() for s in states],
        "params": grads,
    }


def param_grads(cell: Any, grads: dict[str, np.ndarray], suffix: str) -> dict[str, np.ndarray]:
    """bptt's gradients in torch's names: ``W``s transposed, ``b`` (and GRU's ``b_hn``) as bias grads."""
    H = cell.hidden_size
    out = {f"weight_ih_{suffix}": cell.grads["W_ih"].T, f"weight_hh_{suffix}": cell.grads["W_hh"].T}
    db = cell.grads["b"]
    out[f"bias_ih_{suffix}"] = db
    if "b_hn" in cell.grads:  # bias_hh = [r, z from b; n from b_hn]
        out[f"bias_hh_{suffix}"] = np.concatenate([db[: 2 * H], cell.grads["b_hn"]])
    else:
        out[f"bias_hh_{suffix}"] = db
    return out


def random_start(kind: str, D: int, B: int, H: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.normal(size=(D, B, H)) for _ in range(2 if kind == "lstm" else 1)]


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize(("T", "lengths"), SHAPES)
def test_cell_matches_torch_packed(kind: str, T: int, lengths: list[int]) -> None:
    rng = np.random.default_rng(T * 10 + len(lengths))
    B, I, H = len(lengths), 3, 4
    cell = CELLS[kind](I, H, rng=rng)
    x, gy = rng.normal(size=(T, B, I)), rng.normal(size=(T, B, H))
    start = random_start(kind, 1, B, H, rng)
    ref = torch_packed(cell, x, lengths, start, gy)

    y, final = cell.run(x, cell.start([s[0] for s in start], B), lengths=np.array(lengths))
    assert_close(y, ref["y"], "outputs (zero at padding)")
    for got, want, name in zip(final, ref["final"], ("h_n", "c_n"), strict=False):
        assert_close(got, want[0], f"{name}: each sequence's last real state")
    grad_x = cell.backward(gy)
    real = np.arange(T)[:, None] < np.array(lengths)[None, :]  # (T, B)
    assert_close(grad_x * real[:, :, None], ref["x"], "dL/dx at real positions (zero at padding)")
    for got, want in zip(cell.grad_state, ref["start"], strict=False):
        assert_close(got, want[0], "dL/d(initial state)")
    for name, got in param_grads(cell, cell.grads, "l0").items():
        assert_close(got, ref["params"][name], name)


@pytest.mark.parametrize("kind", CELLS)
def test_bidirectional_reads_each_sequence_reversed_within_its_length(kind: str) -> None:
    rng = np.random.default_rng(7)
    T, lengths, I, H = 5, [3, 5, 1], 2, 3
    B = len(lengths)
    layer = Bidirectional(CELLS[kind](I, H, rng=rng), rng=rng)
    x, gy = rng.normal(size=(T, B, I)), rng.normal(size=(T, B, 2 * H))
    start = random_start(kind, 2, B, H, rng)
    ref = torch_packed(layer, x, lengths, start, gy)

    states = {p: layer.forward_layer.start([s[d] for s in start], B) for d, p in enumerate(("fwd.", "bwd."))}
    y, final = layer.run(x, states, lengths=np.array(lengths))
    assert_close(y, ref["y"], "outputs of both directions")
    for d, p in enumerate(("fwd.", "bwd.")):
        for got, want in zip(final[p], ref["final"], strict=False):
            assert_close(got, want[d], f"{p} final state")
    grad_x = layer.backward(gy)
    real = np.arange(T)[:, None] < np.array(lengths)[None, :]
    assert_close(grad_x * real[:, :, None], ref["x"], "dL/dx")
    for d, (suffix, cell) in enumerate((("l0", layer.forward_layer), ("l0_reverse", layer.backward_layer))):
        for got, want in zip(cell.grad_state, ref["start"], strict=False):
            assert_close(got, want[d], f"{suffix} dL/d(initial state)")
        for name, got in param_grads(cell, cell.grads, suffix).items():
            assert_close(got, ref["params"][name], name)


@pytest.mark.parametrize("kind", CELLS)
def test_lengths_all_T_is_bit_identical_to_no_lengths(kind: str) -> None:
    rng = np.random.default_rng(3)
    T, B, I, H = 6, 3, 2, 5
    a, b = CELLS[kind](I, H, rng=1), CELLS[kind](I, H, rng=1)
    x, gy = rng.normal(size=(T, B, I)), rng.normal(size=(T, B, H))
    ya, sa = a.run(x)
    yb, sb = b.run(x, lengths=np.full(B, T))
    assert np.array_equal(ya, yb) and all(
        np.array_equal(p, q) for p, q in zip(sa, sb, strict=True) if p is not None
    )
    assert np.array_equal(a.backward(gy), b.backward(gy))
    assert all(np.array_equal(a.grads[k], b.grads[k]) for k in a.grads)
    assert all(np.array_equal(p, q) for p, q in zip(a.grad_state, b.grad_state, strict=True) if p is not None)


def test_padding_never_reaches_states_or_gradients() -> None:
    """Garbage in the padding, and a gradient there, change nothing."""
    rng = np.random.default_rng(0)
    x, lengths = rng.normal(size=(4, 2, 2)), np.array([2, 4])
    noisy = x.copy()
    noisy[2:, 0] = 1e3
    gy = rng.normal(size=(4, 2, 3))
    results = []
    for inp in (x, noisy):
        model = Sequential([LSTM(2, 3), Dense(3, 3)])
        y = model.forward(inp, lengths=lengths)
        results.append(
            (y, model.backward(gy * (np.arange(4)[:, None, None] < lengths[None, :, None])), model.grads)
        )
    (y0, gx0, g0), (y1, gx1, g1) = results
    real = (np.arange(4)[:, None] < lengths)[:, :, None]
    assert np.array_equal(y0 * real, y1 * real) and np.array_equal(gx0 * real, gx1 * real)
    assert all(np.array_equal(g0[k], g1[k]) for k in g0)


def test_stateful_carries_each_sequences_last_real_state() -> None:
    rng = np.random.default_rng(1)
    x, lengths = rng.normal(size=(5, 3, 2)), np.array([5, 2, 3])
    cell = GRU(2, 4, stateful=True)
    cell.forward(x, lengths=lengths)
    for b, n in enumerate(lengths):
        _, alone = GRU(2, 4).run(x[:n, b : b + 1])
        assert_close(cell.h0[b : b + 1], alone.h, f"sequence {b}'s last real state")
        assert_close(cell.state_after(5).h[b], alone.h[0], "state_after(T)")


def test_last_takes_each_sequences_last_real_step() -> None:
    rng = np.random.default_rng(2)
    x, lengths = rng.normal(size=(4, 3, 2)), np.array([1, 4, 2])
    last = Last()
    y = last.forward(x, lengths=lengths)
    assert np.array_equal(y[0], x[lengths - 1, np.arange(3)])
    g = rng.normal(size=(1, 3, 2))
    grad_x = last.backward(g)
    want = np.zeros_like(x)
    want[lengths - 1, np.arange(3)] = g[0]
    assert np.array_equal(grad_x, want)
    assert np.array_equal(Last().forward(x, lengths=np.full(3, 4)), Last().forward(x))


@pytest.mark.parametrize("loss_fn", [MSELoss(), BCEWithLogitsLoss(reduction="sum"), CrossEntropyLoss()])
def test_losses_take_lengths_as_a_mask(loss_fn: Any) -> None:
    rng = np.random.default_rng(4)
    y, lengths = rng.normal(size=(4, 3, 2)), np.array([4, 1, 3])
    if isinstance(loss_fn, CrossEntropyLoss):
        target = rng.integers(0, 2, size=(4, 3))
    else:
        target = rng.uniform(size=(4, 3, 2))
    mask = (np.arange(4)[:, None] < lengths).astype(float)
    want = loss_fn(y, target, mask=mask)
    got = loss_fn(y, target, lengths=lengths)
    assert got[0] == want[0] and np.array_equal(got[1], want[1])
    with pytest.raises(ValueError, match="mask or lengths"):
        loss_fn(y, target, mask=mask, lengths=lengths)


class FixedLengths(Layer):
    """A model with its batch's lengths fixed, so ``gradcheck`` (which takes none) can drive it."""

    def __init__(self, model: Sequential, lengths: np.ndarray) -> None:
        super().__init__()
        self.model, self.lengths = model, lengths

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self.model.params

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return self.model.grads

    def sublayers(self) -> list[tuple[str, Layer]]:
        return self.model.sublayers()

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.model.forward(x, lengths=self.lengths)

    def run(self, x: np.ndarray, state: Any = None, lengths: Any = None) -> tuple[np.ndarray, Any]:
        return self.model.run(x, state, lengths=self.lengths)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        return self.model.backward(grad_y)


@pytest.mark.parametrize("kind", CELLS)
def test_gradcheck_with_lengths(kind: str) -> None:
    rng = np.random.default_rng(5)
    lengths = np.array([3, 1, 2])
    model = FixedLengths(Sequential([CELLS[kind](2, 3, rng=rng), Last(), Dense(3, 1, rng=rng)]), lengths)
    report = gradcheck(model, MSELoss(), rng.normal(size=(3, 3, 2)), rng.normal(size=(1, 3, 1)))
    assert report.ok, str(report)


def test_sequential_passes_lengths_until_time_is_reduced() -> None:
    rng = np.random.default_rng(6)
    x, lengths = rng.normal(size=(5, 2, 2)), np.array([2, 5])
    model = Sequential([RNN(2, 3), Dense(3, 3), Last(), Dense(3, 1)])
    y, states = model.run(x, lengths=lengths)
    cell = RNN(2, 3)
    for b, n in enumerate(lengths):
        h, end = cell.run(x[:n, b : b + 1])
        want = Sequential([Dense(3, 3), Dense(3, 1)])
        want[0].params.update(model[1].params), want[1].params.update(model[3].params)
        assert_close(y[:, b], want.forward(h[-1:])[:, 0], f"sequence {b} through Last")
        assert_close(states["0."].h[b], end.h[0], "final state")


@pytest.mark.parametrize(
    ("lengths", "error"),
    [([0, 2], ValueError), ([1, 4], ValueError), ([1], ValueError), ([1.0, 2.0], TypeError)],
)
def test_bad_lengths_are_refused(lengths: list[Any], error: type[Exception]) -> None:
    with pytest.raises(error, match="lengths"):
        RNN(2, 3).forward(np.zeros((3, 2, 2)), lengths=np.array(lengths))


def test_a_layer_without_lengths_refuses_them() -> None:
    with pytest.raises(TypeError, match="takes no lengths"):
        Dense(2, 2).run(np.zeros((3, 1, 2)), lengths=np.array([2]))
