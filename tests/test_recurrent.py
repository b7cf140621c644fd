"""The layer contract (DESIGN.md, "Layers") for LSTM, GRU and Bidirectional.

Shapes, gradient arrays, ownership of returned arrays, repeated backward, stateful streaming,
float32, shape errors, saving, and finite differences (complex step) for every gradient
including the initial states. Agreement with torch autograd is in ``test_torch_parity.py``;
here the float32 check uses the oracle and the forward pass is also compared with the
docstrings' equations written out in NumPy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch  # noqa: F401  (the oracle below needs it; a missing torch must fail, not skip)
from hypothesis import given, settings
from hypothesis import strategies as st

import bptt
from bptt import GRU, LSTM, RNN, Bidirectional, Dense, Layer, Sequential, ShapeError
from bptt.functional import one_hot
from bptt.oracle import torch_gradients

I, H = 3, 4
SHAPES = [(1, 1), (1, 3), (4, 1), (5, 2)]  # (T, B)
STATES = {RNN: ("h0",), GRU: ("h0",), LSTM: ("h0", "c0")}

MAKERS: dict[str, Callable[..., Layer]] = {
    "LSTM": lambda **kw: LSTM(I, H, rng=1, **kw),
    "GRU": lambda **kw: GRU(I, H, rng=1, **kw),
    "Bi-RNN": lambda **kw: Bidirectional(RNN(I, H, rng=1, **kw), rng=2),
    "Bi-LSTM": lambda **kw: Bidirectional(LSTM(I, H, rng=1, **kw), rng=2),
    "Bi-GRU": lambda **kw: Bidirectional(GRU(I, H, rng=1, **kw), rng=2),
}
NAMES = list(MAKERS)
CELL_PARAMS = {
    RNN: {"W_ih": (I, H), "W_hh": (H, H), "b": (H,)},
    LSTM: {"W_ih": (I, 4 * H), "W_hh": (H, 4 * H), "b": (4 * H,)},
    GRU: {"W_ih": (I, 3 * H), "W_hh": (H, 3 * H), "b": (3 * H,), "b_hn": (H,)},
}


def cells(layer: Layer) -> list[Any]:
    """The layer itself, or a Bidirectional's forward and backward layers."""
    return [layer.forward_layer, layer.backward_layer] if isinstance(layer, Bidirectional) else [layer]


def width(name: str) -> int:
    """Output features: H, or 2H for a Bidirectional."""
    return 2 * H if name.startswith("Bi-") else H


def data(name: str, T: int, B: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (T, B, I) and two different random upstream gradients (T, B, H or 2H)."""
    rng = np.random.default_rng([seed, T, B, len(name)])
    out = (T, B, width(name))
    return rng.normal(size=(T, B, I)), rng.normal(size=out), rng.normal(size=out)


def give_states(layer: Layer, B: int, seed: int = 3) -> None:
    """Random h0 (and c0) for every direction."""
    rng = np.random.default_rng(seed)
    for cell in cells(layer):
        for n in STATES[type(cell)]:
            setattr(cell, n, rng.normal(size=(B, H)))


def snapshot(layer: Layer) -> dict[str, np.ndarray]:
    """Copies of the grads and of every direction's grad_h0 / grad_c0."""
    snap = {k: v.copy() for k, v in layer.grads.items()}
    for d, cell in enumerate(cells(layer)):
        snap |= {f"{d}.{n}": getattr(cell, f"grad_{n}").copy() for n in STATES[type(cell)]}
    return snap


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ---------------------------------------------------------------------------------------------
# Shapes and gradient arrays


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_and_state_gradient_shapes(name: str, T: int, B: int) -> None:
    """forward gives (T, B, H) or (T, B, 2H); backward gives x's shape; grad_h0/grad_c0 are (B, H)."""
    layer = MAKERS[name]()
    x, g, _ = data(name, T, B)
    assert layer.forward(x).shape == (T, B, width(name))
    assert layer.backward(g).shape == (T, B, I)
    for cell in cells(layer):
        for n in STATES[type(cell)]:
            assert getattr(cell, f"grad_{n}").shape == (B, H), n


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("name", NAMES)
def test_params_are_packed_by_gate_and_grads_mirror_them(name: str, bias: bool) -> None:
    """params have the documented keys and gate-packed shapes; grads the same, zeros from construction."""
    layer = MAKERS[name](bias=bias)
    expected: dict[str, tuple[int, ...]] = {}
    for prefix, cell in zip(("fwd.", "bwd.") if len(cells(layer)) == 2 else ("",), cells(layer), strict=True):
        shapes = CELL_PARAMS[type(cell)]
        expected |= {prefix + k: s for k, s in shapes.items() if bias or k in ("W_ih", "W_hh")}
    assert {k: v.shape for k, v in layer.params.items()} == expected
    assert {k: v.shape for k, v in layer.grads.items()} == expected
    assert all(not g.any() for g in layer.grads.values())


@pytest.mark.parametrize("name", NAMES)
def test_backward_writes_into_the_same_grad_arrays(name: str) -> None:
    """The grad arrays an optimizer holds are the ones backward fills (identity, not a new dict)."""
    layer = MAKERS[name]()
    held = dict(layer.grads)
    x, g, _ = data(name, 4, 2)
    layer.forward(x)
    layer.backward(g)
    for k, arr in layer.grads.items():
        assert arr is held[k], k
        assert held[k].any(), k


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_backward_overwrites_instead_of_accumulating(name: str, T: int, B: int) -> None:
    """backward(g1) then backward(g2) leaves exactly what backward(g2) alone leaves."""
    layer = MAKERS[name]()
    give_states(layer, B)
    x, g1, g2 = data(name, T, B)
    layer.forward(x)
    layer.backward(g2)
    alone = snapshot(layer)
    layer.backward(g1)
    layer.backward(g2)
    assert_same(snapshot(layer), alone)


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_backward_twice_gives_the_same_result(name: str, T: int, B: int) -> None:
    """Two backward calls after one forward return equal grad_x and leave equal gradients."""
    layer = MAKERS[name]()
    give_states(layer, B)
    x, g, _ = data(name, T, B)
    layer.forward(x)
    first_x = layer.backward(g)
    first = snapshot(layer)
    second_x = layer.backward(g)
    assert second_x is not first_x
    np.testing.assert_array_equal(second_x, first_x)
    assert_same(snapshot(layer), first)


@pytest.mark.parametrize("name", NAMES)
def test_returned_arrays_belong_to_the_caller(name: str) -> None:
    """Later calls never overwrite y or grad_x, and writing into them changes nothing inside."""
    layer, twin = MAKERS[name](), MAKERS[name]()
    x, g1, g2 = data(name, 4, 2)
    y, grad_x = layer.forward(x), layer.backward(g1)
    y_copy, grad_x_copy = y.copy(), grad_x.copy()
    x2, _, _ = data(name, 4, 2, seed=1)
    layer.forward(x2)
    layer.backward(g2)
    np.testing.assert_array_equal(y, y_copy)
    np.testing.assert_array_equal(grad_x, grad_x_copy)
    y2 = layer.forward(x)
    y2[...] = 7.0  # the caller scribbles on its arrays
    got = layer.backward(g1)
    got_snap = snapshot(layer)
    got[...] = 7.0
    twin.forward(x)
    np.testing.assert_array_equal(twin.backward(g1), grad_x_copy)
    assert_same(snapshot(twin), got_snap)
    np.testing.assert_array_equal(layer.backward(g1), grad_x_copy)


# ---------------------------------------------------------------------------------------------
# Initial states and stateful streaming


@pytest.mark.parametrize("with_states", [False, True], ids=["zeros", "given"])
@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_stateful_three_chunks_equal_one_long_forward(cls: type[Any], with_states: bool) -> None:
    """A stateful layer fed 3 chunks returns the long forward's output and carries h0 (and c0)."""
    rng = np.random.default_rng([with_states, len(cls.__name__)])
    long, streaming = cls(I, H, rng=5), cls(I, H, rng=5, stateful=True)
    B = 3
    if with_states:
        for n in STATES[cls]:
            value = rng.normal(size=(B, H))
            setattr(long, n, value)
            setattr(streaming, n, value.copy())
    x = rng.normal(size=(9, B, I))
    whole = long.forward(x)
    pieces = [streaming.forward(x[a:b]) for a, b in ((0, 2), (2, 3), (3, 9))]
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(streaming.h0, whole[-1], rtol=1e-13, atol=1e-15)
    for n in STATES[cls]:  # a layer that is not stateful leaves its states as they were
        assert (getattr(long, n) is None) != with_states


def test_stateful_lstm_carries_the_cell_state() -> None:
    """c0 after a stateful call is c_T: it changes the next chunk exactly as one long forward does."""
    rng = np.random.default_rng(11)
    streaming = LSTM(I, H, rng=6, stateful=True)
    x = rng.normal(size=(6, 2, I))
    streaming.forward(x[:4])
    c0 = streaming.c0
    assert c0 is not None and c0.shape == (2, H)
    resumed = LSTM(I, H, rng=6)  # a plain layer started from the carried states
    resumed.h0, resumed.c0 = streaming.h0.copy(), c0.copy()  # type: ignore[union-attr]
    without_c = LSTM(I, H, rng=6)
    without_c.h0 = streaming.h0.copy()  # type: ignore[union-attr]
    tail = resumed.forward(x[4:])
    np.testing.assert_array_equal(streaming.forward(x[4:]), tail)
    assert not np.allclose(without_c.forward(x[4:]), tail)  # c0 matters


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_reset_state_starts_again_from_zeros(cls: type[Any]) -> None:
    """reset_state() clears h0 (and c0); the next forward equals a fresh layer's."""
    x = np.random.default_rng(12).normal(size=(3, 2, I))
    streaming, fresh = cls(I, H, rng=7, stateful=True), cls(I, H, rng=7)
    first = streaming.forward(x)
    assert all(getattr(streaming, n) is not None for n in STATES[cls])
    assert not np.array_equal(streaming.forward(x), first)  # the carried state is used
    streaming.reset_state()
    assert all(getattr(streaming, n) is None for n in STATES[cls])
    np.testing.assert_array_equal(streaming.forward(x), fresh.forward(x))


def test_stateful_backward_does_not_cross_calls() -> None:
    """After a stateful chunk, grad_h0 is dL/d(the carried state), and the earlier chunk is untouched."""
    rng = np.random.default_rng(13)
    streaming = GRU(I, H, rng=8, stateful=True)
    x = rng.normal(size=(5, 2, I))
    streaming.forward(x[:2])
    carried = streaming.h0.copy()  # type: ignore[union-attr]
    streaming.forward(x[2:])
    g = rng.normal(size=(3, 2, H))
    grad_x = streaming.backward(g)
    plain = GRU(I, H, rng=8)
    plain.h0 = carried
    plain.forward(x[2:])
    np.testing.assert_array_equal(grad_x, plain.backward(g))
    np.testing.assert_array_equal(streaming.grad_h0, plain.grad_h0)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The equations in the docstrings, written out in NumPy


def _sig(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def numpy_lstm(p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``c_t = f c_{t-1} + i g``, ``h_t = o tanh(c_t)`` with gates ``[i | f | g | o]``."""
    out = []
    for x_t in x:
        z = x_t @ p["W_ih"] + h @ p["W_hh"] + p["b"]
        i, f, g, o = _sig(z[:, :H]), _sig(z[:, H : 2 * H]), np.tanh(z[:, 2 * H : 3 * H]), _sig(z[:, 3 * H :])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out)


def numpy_gru(p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``n = tanh(x W_in + b_n + r (h W_hn + b_hn))``, ``h_t = (1 - z) n + z h_{t-1}``."""
    out = []
    for x_t in x:
        a, rec = x_t @ p["W_ih"] + p["b"], h @ p["W_hh"]
        r, z = _sig(a[:, :H] + rec[:, :H]), _sig(a[:, H : 2 * H] + rec[:, H : 2 * H])
        n = np.tanh(a[:, 2 * H :] + r * (rec[:, 2 * H :] + p["b_hn"]))
        h = (1.0 - z) * n + z * h
        out.append(h)
    return np.stack(out)


@pytest.mark.parametrize(("T", "B"), SHAPES)
def test_lstm_and_gru_compute_their_docstring_equations(T: int, B: int) -> None:
    """LSTM and GRU forward equal the documented equations, with given h0 and c0."""
    rng = np.random.default_rng([T, B, 14])
    x = rng.normal(size=(T, B, I))
    h0, c0 = rng.normal(size=(B, H)), rng.normal(size=(B, H))
    lstm, gru = LSTM(I, H, rng=rng), GRU(I, H, rng=rng)
    lstm.h0, lstm.c0, gru.h0 = h0, c0, h0
    np.testing.assert_allclose(lstm.forward(x), numpy_lstm(lstm.params, x, h0, c0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gru.forward(x), numpy_gru(gru.params, x, h0), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_bidirectional_backward_half_reads_only_the_future(cls: type[Any]) -> None:
    """Changing x at step 0 moves every forward-half output but only step 0 of the backward half."""
    rng = np.random.default_rng(15)
    layer = Bidirectional(cls(I, H, rng=rng), rng=rng)
    x = rng.normal(size=(5, 2, I))
    y = layer.forward(x)
    x[0] += 1.0
    moved = np.abs(layer.forward(x) - y).max(axis=1)  # (T, 2H): the largest change over the batch
    assert np.all(moved[:, :H].max(axis=1) > 0)  # forward half: step 0 feeds every later step
    assert moved[0, H:].max() > 0 and not moved[1:, H:].any()  # backward half: only step 0 reads x_0


def test_lstm_grad_a_is_the_per_step_delta_of_the_gates() -> None:
    """LSTM.grad_a is (T, B, 4H), and dW_ih = Σ_t x_tᵀ δz_t and db = Σ δz_t hold with it."""
    rng = np.random.default_rng(16)
    lstm = LSTM(I, H, rng=rng)
    with pytest.raises(bptt.ShapeError, match="before backward"):
        _ = lstm.grad_a
    x, g = rng.normal(size=(4, 2, I)), rng.normal(size=(4, 2, H))
    lstm.forward(x)
    lstm.backward(g)
    dz = lstm.grad_a
    assert dz.shape == (4, 2, 4 * H)
    np.testing.assert_allclose(np.einsum("tbi,tbg->ig", x, dz), lstm.grads["W_ih"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dz.sum(axis=(0, 1)), lstm.grads["b"], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# float32


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_float32_layers_stay_float32_and_agree_with_float64_autograd(name: str, T: int, B: int) -> None:
    """A float32 layer returns float32 everywhere and matches the float64 oracle to float32 precision."""
    layer = MAKERS[name](dtype=np.float32)
    give_states(layer, B)
    x, g, _ = data(name, T, B)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    ref = torch_gradients(layer, x32, grad_y=g32)
    y = layer.forward(x32)
    grad_x = layer.backward(g32)
    assert y.dtype == grad_x.dtype == np.float32
    assert all(v.dtype == np.float32 for v in [*layer.params.values(), *layer.grads.values()])
    # float32 rounds every operation to 24 bits (eps ≈ 1.2e-7) and the recurrence compounds it.
    tol = {"rtol": 1e-4, "atol": 1e-5}
    np.testing.assert_allclose(y, ref["y"], **tol)
    np.testing.assert_allclose(grad_x, ref["x"], **tol)
    for k, v in layer.grads.items():
        np.testing.assert_allclose(v, ref[k], err_msg=k, **tol)
    prefixes = ("fwd.", "bwd.") if isinstance(layer, Bidirectional) else ("",)
    for prefix, cell in zip(prefixes, cells(layer), strict=True):
        for n in STATES[type(cell)]:
            grad = getattr(cell, f"grad_{n}")
            assert grad.dtype == np.float32
            np.testing.assert_allclose(grad, ref[prefix + n], err_msg=prefix + n, **tol)


# ---------------------------------------------------------------------------------------------
# Errors


def where(layer: Layer) -> str:
    """The prefix a forward error must carry: the cell's name, when the layer is not a Bidirectional.

    A Bidirectional's errors come from the direction that refused; which name it shows is not
    pinned down here.
    """
    return "" if isinstance(layer, Bidirectional) else f"{type(layer).__name__}.forward: "


@pytest.mark.parametrize("name", NAMES)
def test_bad_x_is_a_shape_error_with_both_shapes(name: str) -> None:
    """x with the wrong features, rank or an empty axis names the shape received and (T, B, I)."""
    layer = MAKERS[name]()
    bad = {
        (4, 2, I + 2): "x has shape (4, 2, 5); expected (T, B, I) = (4, 2, 3)",
        (4, I): "x has shape (4, 3); expected (T, B, I) = (T, B, 3)",
        (0, 2, I): "x has shape (0, 2, 3); expected (T, B, I) with T ≥ 1",
    }
    for shape, message in bad.items():
        with pytest.raises(bptt.ShapeError, match=re.escape(where(layer) + message)):
            layer.forward(np.zeros(shape))


@pytest.mark.parametrize("which", ["fwd", "bwd"])
@pytest.mark.parametrize("name", NAMES)
def test_initial_state_of_the_wrong_batch_is_a_shape_error(name: str, which: str) -> None:
    """An h0 or c0 whose batch is not x's names the state, its shape and (B, H)."""
    for n in STATES[type(cells(MAKERS[name]())[0])]:
        layer = MAKERS[name]()
        cell = cells(layer)[-1 if which == "bwd" else 0]
        setattr(cell, n, np.zeros((3, H)))
        message = where(layer) + f"{n} has shape (3, 4); expected (B, H) = (2, 4)"
        with pytest.raises(bptt.ShapeError, match=re.escape(message)):
            layer.forward(np.zeros((5, 2, I)))


@pytest.mark.parametrize("name", NAMES)
def test_bad_grad_y_and_backward_before_forward(name: str) -> None:
    """backward first, or with grad_y not of the output's shape, is a ShapeError naming both shapes."""
    layer = MAKERS[name]()
    kind = type(layer).__name__
    with pytest.raises(bptt.ShapeError, match=re.escape(f"{kind}.backward called before forward")):
        layer.backward(np.zeros((2, 1, width(name))))
    layer.forward(np.zeros((2, 1, I)))
    letters = "(T, B, 2H)" if kind == "Bidirectional" else "(T, B, H)"
    good = (2, 1, width(name))
    for bad in [(2, 1, width(name) + 1), (3, 1, width(name)), (1, width(name))]:
        message = f"{kind}.backward: grad_y has shape {bad}; expected {letters} = {good}"
        with pytest.raises(bptt.ShapeError, match=re.escape(message)):
            layer.backward(np.zeros(bad))


FAILED_FORWARDS = [
    ("LSTM", "fwd", "c0"),
    ("GRU", "fwd", "h0"),
    ("Bi-LSTM", "fwd", "h0"),
    ("Bi-GRU", "bwd", "h0"),  # fails: see the docstring below
    ("Bi-LSTM", "bwd", "c0"),  # fails: see the docstring below
]


@pytest.mark.parametrize(("name", "which", "state"), FAILED_FORWARDS)
def test_failed_forward_does_not_corrupt_the_previous_one(name: str, which: str, state: str) -> None:
    """After a forward that raised, backward gives the last good forward's result or a ShapeError.

    Known bug: when a Bidirectional's backward direction refuses its state, the forward direction
    has already run on the new x and ``_out_shape`` still holds the old shape, so backward mixes
    the new forward-direction caches with the old backward-direction ones.
    """
    layer = MAKERS[name]()
    x, g, _ = data(name, 4, 2)
    layer.forward(x)
    expected_x, expected = layer.backward(g), snapshot(layer)
    cell = cells(layer)[-1 if which == "bwd" else 0]
    setattr(cell, state, np.zeros((3, H)))  # x passes its checks; this state is refused
    with pytest.raises(bptt.ShapeError):
        layer.forward(data(name, 4, 2, seed=9)[0])  # same shape as x, other values
    setattr(cell, state, None)
    try:
        grad_x = layer.backward(g)
    except bptt.ShapeError:
        return  # refusing is fine; numbers mixed from two forwards are not
    np.testing.assert_array_equal(grad_x, expected_x)
    assert_same(snapshot(layer), expected)


@pytest.mark.parametrize(
    "inner",
    [
        lambda: LSTM(I, H, stateful=True),
        lambda: GRU(I, H, stateful=True),
        lambda: Dense(I, H),
        lambda: Bidirectional(RNN(I, H)),
        lambda: Sequential([RNN(I, H)]),
    ],
    ids=["stateful-LSTM", "stateful-GRU", "Dense", "Bidirectional", "Sequential"],
)
def test_bidirectional_refuses_a_stateful_or_non_recurrent_layer(inner: Callable[[], Any]) -> None:
    """Bidirectional takes a non-stateful RNN, LSTM or GRU only, and says so."""
    with pytest.raises(TypeError, match="Bidirectional: needs a non-stateful RNN, LSTM or GRU"):
        Bidirectional(inner())


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_bidirectional_without_rng_is_reproducible_and_its_directions_differ(cls: type[Any]) -> None:
    """rng=None draws the backward direction from seed 1: a forward layer built without rng has seed 0's."""
    a, b = Bidirectional(cls(I, H)), Bidirectional(cls(I, H))
    assert_same(a.params, b.params)
    assert_same(a.backward_layer.params, cls(I, H, rng=1).params)
    assert all(not np.array_equal(a.params[f"fwd.{k}"], a.params[f"bwd.{k}"]) for k in CELL_PARAMS[cls])


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (lambda r: [Bidirectional(r), r], "layer 1 is the same object as layer 0.fwd"),
        (lambda r: [r, Bidirectional(r)], "layer 1.fwd is the same object as layer 0"),
        (lambda r: [Bidirectional(r), Bidirectional(r)], "layer 1.fwd is the same object as layer 0.fwd"),
        (lambda r: [b := Bidirectional(r), Dense(2 * H, I), b], "layer 2 is the same object as layer 0"),
    ],
    ids=["bi-then-cell", "cell-then-bi", "two-bi-one-cell", "bi-twice"],
)
def test_sequential_refuses_a_cell_shared_through_bidirectional(
    layers: Callable[[Layer], list[Layer]], message: str
) -> None:
    """A cell met twice anywhere inside one Sequential is refused with both positions named."""
    with pytest.raises(ValueError, match=f"^Sequential: {re.escape(message)}; each position"):
        Sequential(layers(RNN(I, I, rng=0)))


# ---------------------------------------------------------------------------------------------
# Saving


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(tmp_path: Path, name: str, dtype: Any) -> None:
    """bptt.save then bptt.load rebuilds the layer types, configs, dtypes and weights bit for bit."""
    model = Sequential([MAKERS[name](dtype=dtype), Dense(width(name), 2, rng=3, dtype=dtype)])
    path = tmp_path / "model.npz"
    bptt.save(model, path)
    loaded = bptt.load(path)
    assert [type(la) for la in loaded] == [type(la) for la in model]
    assert [la.config() for la in loaded] == [la.config() for la in model]
    assert loaded.params.keys() == model.params.keys()
    for k, v in model.params.items():
        assert loaded.params[k].dtype == v.dtype, k
        np.testing.assert_array_equal(loaded.params[k], v, err_msg=k)
    x = np.random.default_rng(17).normal(size=(3, 2, I)).astype(dtype)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


# ---------------------------------------------------------------------------------------------
# Finite differences


@pytest.mark.parametrize("states", [False, True], ids=["zeros", "given"])
@pytest.mark.parametrize(("T", "B"), [(1, 1), (3, 2)])
@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_passes_including_initial_states(name: str, T: int, B: int, states: bool) -> None:
    """Complex-step gradcheck of [layer, Dense] passes for every param, x, h0 and c0 of each direction."""
    layer = MAKERS[name]()
    if states:
        give_states(layer, B)
    model = Sequential([layer, Dense(width(name), 2, rng=4)])
    rng = np.random.default_rng([T, B, 18])
    x, target = rng.normal(size=(T, B, I)), rng.normal(size=(T, B, 2))
    report = bptt.gradcheck(model, bptt.MSELoss(), x, target)
    prefixes = ("0.fwd.", "0.bwd.") if isinstance(layer, Bidirectional) else ("0.",)
    state_keys = {p + n for p, cell in zip(prefixes, cells(layer), strict=True) for n in STATES[type(cell)]}
    assert set(report.errors) == {"x", *model.params, *state_keys}
    assert report.ok, str(report)


@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    T=st.integers(1, 5),
    B=st.integers(1, 3),
    scale=st.floats(-3.0, 3.0, allow_nan=False),
    seed=st.integers(0, 2**32 - 1),
)
def test_backward_is_linear_in_grad_y(name: str, T: int, B: int, scale: float, seed: int) -> None:
    """backward(a·g1 + g2) = a·backward(g1) + backward(g2) for grad_x, every grad and every state grad."""
    layer = MAKERS[name]()
    give_states(layer, B, seed=seed % 1000)
    x, g1, g2 = data(name, T, B, seed=seed)
    layer.forward(x)
    x1, s1 = layer.backward(g1), snapshot(layer)
    x2, s2 = layer.backward(g2), snapshot(layer)
    xs, ss = layer.backward(scale * g1 + g2), snapshot(layer)

    def close(got: np.ndarray, want: np.ndarray, what: str) -> None:
        np.testing.assert_allclose(
            got, want, rtol=1e-9, atol=1e-12 * (np.abs(want).max() + 1.0), err_msg=what
        )

    close(xs, scale * x1 + x2, "grad_x")
    for k in ss:
        close(ss[k], scale * s1[k] + s2[k], k)


# --- integer ids as one-hot inputs -----------------------------------------------------------------

IDS_CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


@pytest.mark.parametrize("kind", sorted(IDS_CELLS))
@pytest.mark.parametrize(("T", "B"), [(1, 1), (1, 4), (5, 1), (6, 3)])
def test_ids_match_torch_on_their_one_hot_vectors(kind: str, T: int, B: int) -> None:
    """Ids (T, B) are their one-hot vectors: the output, every weight gradient and the initial
    state's gradient equal torch autograd's on the one-hot floats (rtol 1e-9); grad_x is zeros (T, B)."""
    rng = np.random.default_rng(T * 10 + B)
    V, H = 7, 5
    model = Sequential([IDS_CELLS[kind](V, H, rng=1), Dense(H, 3, rng=2)])
    ids = rng.integers(0, V, (T, B))
    g = rng.standard_normal((T, B, 3))
    ref = torch_gradients(model, one_hot(ids, V), grad_y=g)
    y = model.forward(ids)
    grad_x = model.backward(g)
    np.testing.assert_allclose(y, ref["y"], rtol=1e-9, atol=1e-12)
    for k, v in model.grads.items():
        np.testing.assert_allclose(v, ref[k], rtol=1e-9, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(model.layers[0].grad_h0, ref["0.h0"], rtol=1e-9, atol=1e-12)
    assert grad_x.shape == (T, B) and not grad_x.any()


@pytest.mark.parametrize("kind", sorted(IDS_CELLS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ids_equal_one_hot_with_lengths_and_both_directions(kind: str, dtype: type) -> None:
    """A bidirectional layer over padded ids gives the one-hot input's outputs, states and grads."""
    rng = np.random.default_rng(3)
    V, T, B = 6, 5, 3
    layer = Bidirectional(IDS_CELLS[kind](V, 4, rng=1, dtype=dtype), rng=2)
    ids, lengths = rng.integers(0, V, (T, B)), [5, 2, 4]
    g = rng.standard_normal((T, B, 8)).astype(dtype)
    y_ids, end_ids = layer.run(ids, lengths=lengths)
    layer.backward(g)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    y_hot, end_hot = layer.run(one_hot(ids, V, dtype), lengths=lengths)
    layer.backward(g)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y_ids, y_hot, rtol=rtol, atol=rtol)
    for k in end_ids:
        np.testing.assert_allclose(end_ids[k].h, end_hot[k].h, rtol=rtol, atol=rtol)
    for k, v in grads.items():
        np.testing.assert_allclose(v, layer.grads[k], rtol=rtol, atol=rtol, err_msg=k)


@pytest.mark.parametrize(
    ("ids", "error", "words"),
    [
        (np.array([[0, 7]]), ValueError, "x holds id 7; expected integer ids in 0..6"),
        (np.array([[-1, 2]]), ValueError, "x holds id -1"),
        (np.zeros((0, 2), int), ShapeError, "expected ids (T, B) with T, B ≥ 1"),
    ],
)
def test_bad_ids_are_refused(ids: np.ndarray, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=re.escape(words)):
        LSTM(7, 3, rng=0).forward(ids)
