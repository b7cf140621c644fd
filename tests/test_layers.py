"""The contract of ``bptt.layers`` (DESIGN.md, "Layers"): shapes, ownership, errors, dtype, rng.

Agreement with PyTorch autograd is tested in ``test_torch_parity.py``. Here the gradients are
checked against finite differences (``bptt.gradcheck``) and the forward pass against a NumPy
recurrence written out step by step.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bptt

F_IN, F_HID, F_OUT = 3, 4, 2
SHAPES = [(1, 1), (1, 3), (4, 1), (5, 2)]
ACTIVATIONS = ["tanh", "sigmoid", "relu", "identity"]
RNN_KEYS = frozenset({"W_ih", "W_hh", "b"})


def _sequential(dtype: Any = np.float64) -> bptt.Sequential:
    return bptt.Sequential(
        [
            bptt.RNN(F_IN, F_HID, rng=1, dtype=dtype),
            bptt.Tanh(),
            bptt.Dense(F_HID, F_OUT, rng=2, dtype=dtype),
        ]
    )


@dataclass(frozen=True)
class Case:
    """A layer under test: how to build it, what it outputs and how its errors are worded."""

    make: Callable[[], bptt.Layer]
    out: Callable[[int, int], tuple[int, int, int]]  # output shape for x of shape (T, B, F_IN)
    keys: frozenset[str]
    forward_where: str  # the prefix of a forward ShapeError
    in_letters: str
    backward_where: str
    out_letters: str


def _rnn_case(activation: str) -> Case:
    return Case(
        lambda: bptt.RNN(F_IN, F_HID, activation=activation, rng=1),
        lambda T, B: (T, B, F_HID),
        RNN_KEYS,
        "RNN.forward",
        "(T, B, I)",
        "RNN.backward",
        "(T, B, H)",
    )


def _elementwise_case(cls: type[bptt.Layer]) -> Case:
    name = cls.__name__
    return Case(
        cls,
        lambda T, B: (T, B, F_IN),
        frozenset(),
        f"{name}.forward",
        "(T, B, F)",
        f"{name}.backward",
        "(T, B, F)",
    )


CASES: dict[str, Case] = {
    "Dense": Case(
        lambda: bptt.Dense(F_IN, F_HID, rng=1),
        lambda T, B: (T, B, F_HID),
        frozenset({"W", "b"}),
        "Dense.forward",
        "(T, B, I)",
        "Dense.backward",
        "(T, B, O)",
    ),
    **{f"RNN-{a}": _rnn_case(a) for a in ACTIVATIONS},
    "Sigmoid": _elementwise_case(bptt.Sigmoid),
    "Tanh": _elementwise_case(bptt.Tanh),
    "ReLU": _elementwise_case(bptt.ReLU),
    "Last": Case(
        bptt.Last,
        lambda T, B: (1, B, F_IN),
        frozenset(),
        "Last.forward",
        "(T, B, F)",
        "Last.backward",
        "(1, B, F)",
    ),
    "Sequential": Case(
        _sequential,
        lambda T, B: (T, B, F_OUT),
        frozenset({"0.W_ih", "0.W_hh", "0.b", "2.W", "2.b"}),
        "Sequential layer 0: RNN.forward",
        "(T, B, I)",
        "Sequential layer 2: Dense.backward",
        "(T, B, O)",
    ),
}
NAMES = list(CASES)
WEIGHTED = ["Dense", "RNN-tanh", "Sequential"]


def _data(name: str, T: int, B: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input x (T, B, F_IN) and two different random upstream gradients of the output's shape."""
    rng = np.random.default_rng(seed)
    out = CASES[name].out(T, B)
    return rng.normal(size=(T, B, F_IN)), rng.normal(size=out), rng.normal(size=out)


def _snapshot(layer: bptt.Layer) -> dict[str, np.ndarray]:
    """Copies of the layer's gradients (and ``grad_h0`` of an RNN)."""
    snap = {k: v.copy() for k, v in layer.grads.items()}
    if isinstance(layer, bptt.RNN) and layer.grad_h0 is not None:
        snap["h0"] = layer.grad_h0.copy()
    return snap


def _assert_same_snapshot(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _close(actual: np.ndarray, reference: np.ndarray) -> None:
    """Agreement to rtol 1e-12 with an absolute floor scaled to the reference."""
    atol = 1e-12 * float(np.abs(reference).max(initial=0.0))
    np.testing.assert_allclose(actual, reference, rtol=1e-12, atol=atol)


# ---------------------------------------------------------------------------------------------
# Shapes, params and grads


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_shapes(name: str, T: int, B: int) -> None:
    """forward maps (T, B, F) to the documented output shape; backward returns x's shape."""
    layer = CASES[name].make()
    x, g, _ = _data(name, T, B)
    y = layer.forward(x)
    assert y.shape == CASES[name].out(T, B)
    assert y.dtype == np.float64
    grad_x = layer.backward(g)
    assert grad_x.shape == x.shape
    assert grad_x.dtype == np.float64


@pytest.mark.parametrize("name", NAMES)
def test_params_and_grads_have_same_keys_and_shapes(name: str) -> None:
    """params and grads share keys, shapes and dtype, and the keys are the documented ones."""
    layer = CASES[name].make()
    assert set(layer.params) == CASES[name].keys
    assert layer.params.keys() == layer.grads.keys()
    for k, p in layer.params.items():
        assert layer.grads[k].shape == p.shape, k
        assert layer.grads[k].dtype == p.dtype, k


@pytest.mark.parametrize("name", NAMES)
def test_grads_exist_from_construction_as_zeros(name: str) -> None:
    """Before any backward, every gradient is an array of zeros (and not the weights)."""
    layer = CASES[name].make()
    for k, grad in layer.grads.items():
        assert isinstance(grad, np.ndarray), k
        assert not np.any(grad), k
        assert grad is not layer.params[k]
        assert not np.shares_memory(grad, layer.params[k]), k


def test_weight_shapes_follow_row_vector_convention() -> None:
    """Dense W is (in, out); RNN W_ih is (I, H), W_hh (H, H) and b (H,)."""
    dense = bptt.Dense(5, 7, rng=0)
    assert dense.params["W"].shape == (5, 7)
    assert dense.params["b"].shape == (7,)
    rnn = bptt.RNN(2, 16, rng=0)
    assert rnn.params["W_ih"].shape == (2, 16)
    assert rnn.params["W_hh"].shape == (16, 16)
    assert rnn.params["b"].shape == (16,)


@pytest.mark.parametrize(("T", "B"), SHAPES)
def test_layers_without_bias_have_no_b(T: int, B: int) -> None:
    """bias=False drops "b" from params and grads, and forward/backward still work."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(T, B, F_IN))
    for layer in (bptt.Dense(F_IN, F_HID, bias=False, rng=0), bptt.RNN(F_IN, F_HID, bias=False, rng=0)):
        assert "b" not in layer.params
        assert "b" not in layer.grads
        y = layer.forward(x)
        assert layer.backward(rng.normal(size=y.shape)).shape == x.shape
        assert set(layer.grads) == set(layer.params)


@pytest.mark.parametrize(("T", "B"), SHAPES)
def test_dense_computes_x_at_w_plus_b(T: int, B: int) -> None:
    """Dense is x @ W + b at every step (and x @ W without bias)."""
    x = np.random.default_rng(2).normal(size=(T, B, F_IN))
    dense = bptt.Dense(F_IN, F_HID, rng=3)
    _close(dense.forward(x), np.einsum("tbi,io->tbo", x, dense.params["W"]) + dense.params["b"])
    nobias = bptt.Dense(F_IN, F_HID, bias=False, rng=3)
    _close(nobias.forward(x), np.einsum("tbi,io->tbo", x, nobias.params["W"]))


# ---------------------------------------------------------------------------------------------
# Gradients are the optimizer's arrays, overwritten and never accumulated


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_backward_writes_into_the_same_grad_arrays(name: str, T: int, B: int) -> None:
    """After backward (twice), each grads[k] is the very array that existed before."""
    layer = CASES[name].make()
    before = dict(layer.grads)
    x, g1, g2 = _data(name, T, B)
    layer.forward(x)
    layer.backward(g1)
    layer.backward(g2)
    for k, grad in layer.grads.items():
        assert grad is before[k], k


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_backward_overwrites_instead_of_accumulating(name: str, T: int, B: int) -> None:
    """backward(g1) then backward(g2) leaves exactly the gradients of backward(g2) alone."""
    x, g1, g2 = _data(name, T, B)
    twice, once = CASES[name].make(), CASES[name].make()
    twice.forward(x)
    twice.backward(g1)
    grad_x = twice.backward(g2)
    once.forward(x)
    grad_x_once = once.backward(g2)
    np.testing.assert_array_equal(grad_x, grad_x_once)
    _assert_same_snapshot(_snapshot(twice), _snapshot(once))


def test_backward_overwrites_after_a_new_forward() -> None:
    """Gradients after a second forward/backward do not carry anything from the first."""
    rng = np.random.default_rng(4)
    x1, x2 = rng.normal(size=(3, 2, F_IN)), rng.normal(size=(6, 2, F_IN))
    g1, g2 = rng.normal(size=(3, 2, F_OUT)), rng.normal(size=(6, 2, F_OUT))
    used, fresh = _sequential(), _sequential()
    used.forward(x1)
    used.backward(g1)
    used.forward(x2)
    used.backward(g2)
    fresh.forward(x2)
    fresh.backward(g2)
    _assert_same_snapshot(used.grads, fresh.grads)


# ---------------------------------------------------------------------------------------------
# Returned arrays belong to the caller; backward is repeatable


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_mutating_returned_arrays_does_not_change_backward(name: str, T: int, B: int) -> None:
    """Scribbling over forward's output and backward's grad_x leaves later backwards unchanged."""
    layer = CASES[name].make()
    x, g, _ = _data(name, T, B)
    y = layer.forward(x)
    grad_x = layer.backward(g)
    expected_grad_x, expected = grad_x.copy(), _snapshot(layer)
    y[...] = np.nan
    grad_x[...] = np.nan
    again = layer.backward(g)
    np.testing.assert_array_equal(again, expected_grad_x)
    _assert_same_snapshot(_snapshot(layer), expected)


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_second_call_does_not_overwrite_returned_arrays(name: str, T: int, B: int) -> None:
    """A second forward (same shape, other values) and its backward leave the first results alone."""
    layer = CASES[name].make()
    x1, g1, g2 = _data(name, T, B, seed=5)
    x2, _, _ = _data(name, T, B, seed=6)
    y1 = layer.forward(x1)
    grad_x1 = layer.backward(g1)
    y1_copy, grad_x1_copy = y1.copy(), grad_x1.copy()
    y2 = layer.forward(x2)
    grad_x2 = layer.backward(g2)
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(grad_x1, grad_x1_copy)
    assert not np.shares_memory(y1, y2)
    assert not np.shares_memory(grad_x1, grad_x2)


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_backward_can_be_repeated_after_one_forward(name: str, T: int, B: int) -> None:
    """Two backward calls with the same grad_y after one forward give identical results."""
    layer = CASES[name].make()
    x, g, _ = _data(name, T, B)
    layer.forward(x)
    first_x = layer.backward(g)
    first = _snapshot(layer)
    second_x = layer.backward(g)
    np.testing.assert_array_equal(first_x, second_x)
    _assert_same_snapshot(first, _snapshot(layer))


@pytest.mark.parametrize(
    ("name", "broken", "extra_steps"),
    [
        ("RNN-tanh", "h0", 3),  # x passes its checks, then h0 is refused; x is longer than before
        ("RNN-tanh", "h0", 0),
        ("Sequential", "h0", 0),  # layer 0 runs on the new x, then layer 1 refuses its h0
        ("RNN-tanh", "features", 3),
        ("Dense", "features", 0),
    ],
)
def test_failed_forward_does_not_corrupt_the_previous_one(name: str, broken: str, extra_steps: int) -> None:
    """After a forward that raised, backward gives the last good forward's result or a ShapeError."""
    T, B = 4, 2
    if name == "Sequential":
        layer: bptt.Layer = bptt.Sequential(
            [bptt.Dense(F_IN, F_HID, rng=1), bptt.RNN(F_HID, F_HID, rng=2), bptt.Dense(F_HID, F_OUT, rng=3)]
        )
        rnn = layer[1]
    else:
        layer = CASES[name].make()
        rnn = layer
    x, g, _ = _data(name, T, B)
    layer.forward(x)
    expected_grad_x = layer.backward(g)
    expected = _snapshot(layer)
    bad_x = np.random.default_rng(7).normal(size=(T + extra_steps, B, F_IN))
    if broken == "h0":
        assert isinstance(rnn, bptt.RNN)
        rnn.h0 = np.zeros((B + 1, F_HID))
    else:
        bad_x = bad_x[..., :-1]
    with pytest.raises(bptt.ShapeError):
        layer.forward(bad_x)
    try:
        grad_x = layer.backward(g)
    except bptt.ShapeError:
        return  # refusing is fine; wrong numbers or a raw NumPy error are not
    np.testing.assert_array_equal(grad_x, expected_grad_x)
    _assert_same_snapshot(_snapshot(layer), expected)


# ---------------------------------------------------------------------------------------------
# RNN: the recurrence and h0

_NUMPY_ACT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "relu": lambda z: np.maximum(z, 0.0),
    "identity": lambda z: z,
}


def _manual_rnn(rnn: bptt.RNN, x: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """h_t = act(x_t W_ih + h_{t-1} W_hh + b), one step at a time."""
    p, act = rnn.params, _NUMPY_ACT[rnn.activation]
    h, hs = h0, []
    for x_t in x:
        a = x_t @ p["W_ih"] + h @ p["W_hh"]
        h = act(a + p["b"] if "b" in p else a)
        hs.append(h)
    return np.stack(hs)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_rnn_uses_given_h0(activation: str, T: int, B: int, bias: bool) -> None:
    """With h0 set, forward equals the step-by-step NumPy recurrence started from that h0."""
    rng = np.random.default_rng(8)
    rnn = bptt.RNN(F_IN, F_HID, activation=activation, bias=bias, rng=rng)
    x, h0 = rng.normal(size=(T, B, F_IN)), rng.normal(size=(B, F_HID))
    rnn.h0 = h0
    _close(rnn.forward(x), _manual_rnn(rnn, x, h0))


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_rnn_h0_none_means_zeros(activation: str, T: int, B: int) -> None:
    """h0 = None gives exactly the output of h0 = zeros (B, H), and the manual recurrence from 0."""
    rng = np.random.default_rng(9)
    rnn = bptt.RNN(F_IN, F_HID, activation=activation, rng=rng)
    x = rng.normal(size=(T, B, F_IN))
    assert rnn.h0 is None
    y_none = rnn.forward(x)
    rnn.h0 = np.zeros((B, F_HID))
    np.testing.assert_array_equal(y_none, rnn.forward(x))
    _close(y_none, _manual_rnn(rnn, x, np.zeros((B, F_HID))))


def test_rnn_h0_changes_the_output() -> None:
    """A nonzero h0 is really used: the first step differs from the h0 = 0 run."""
    rng = np.random.default_rng(10)
    rnn = bptt.RNN(F_IN, F_HID, rng=rng)
    x = rng.normal(size=(3, 2, F_IN))
    y0 = rnn.forward(x)
    rnn.h0 = rng.normal(size=(2, F_HID))
    assert np.all(rnn.forward(x)[0] != y0[0])


@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize(("T", "B"), SHAPES)
def test_rnn_grad_h0_has_shape_b_h(T: int, B: int, with_h0: bool) -> None:
    """After backward, grad_h0 is a (B, H) array, whether h0 was None or given."""
    rng = np.random.default_rng(11)
    rnn = bptt.RNN(F_IN, F_HID, rng=rng)
    if with_h0:
        rnn.h0 = rng.normal(size=(B, F_HID))
    rnn.forward(rng.normal(size=(T, B, F_IN)))
    rnn.backward(rng.normal(size=(T, B, F_HID)))
    assert isinstance(rnn.grad_h0, np.ndarray)
    assert rnn.grad_h0.shape == (B, F_HID)
    assert rnn.grad_h0.dtype == np.float64


def test_last_keeps_the_last_step_and_routes_gradient_there() -> None:
    """Last returns x[-1:] and its backward puts grad_y at the last step, zeros elsewhere."""
    rng = np.random.default_rng(12)
    x, g = rng.normal(size=(4, 3, F_IN)), rng.normal(size=(1, 3, F_IN))
    last = bptt.Last()
    np.testing.assert_array_equal(last.forward(x), x[-1:])
    grad_x = last.backward(g)
    np.testing.assert_array_equal(grad_x[-1], g[0])
    assert not np.any(grad_x[:-1])


# ---------------------------------------------------------------------------------------------
# Sequential


def test_sequential_indexes_its_layers() -> None:
    """model[i] is the i-th layer given, len and iteration follow the list."""
    layers = [bptt.RNN(F_IN, F_HID, rng=0), bptt.Tanh(), bptt.Dense(F_HID, F_OUT, rng=1)]
    model = bptt.Sequential(layers)
    assert len(model) == 3
    for i, layer in enumerate(layers):
        assert model[i] is layer
    assert list(model) == layers


def test_sequential_keys_hold_the_layers_own_arrays() -> None:
    """params/grads are keyed "{i}.{name}" and hold the very arrays of layer i."""
    model = _sequential()
    for key in ("params", "grads"):
        flat = getattr(model, key)
        expected = {f"{i}.{k}" for i, layer in enumerate(model) for k in getattr(layer, key)}
        assert set(flat) == expected
        for i, layer in enumerate(model):
            for k, v in getattr(layer, key).items():
                assert flat[f"{i}.{k}"] is v


def test_sequential_inplace_update_reaches_the_layer() -> None:
    """Subtracting from model.params in place changes the layer's weights and the output."""
    rng = np.random.default_rng(13)
    model = _sequential()
    x = rng.normal(size=(3, 2, F_IN))
    y_before = model.forward(x)
    delta = rng.normal(size=(F_HID, F_OUT))
    w_before = model[2].params["W"].copy()
    params = model.params
    params["2.W"] -= delta
    np.testing.assert_array_equal(model[2].params["W"], w_before - delta)
    assert not np.allclose(model.forward(x), y_before)


@pytest.mark.parametrize(("T", "B"), SHAPES)
def test_sequential_equals_chaining_layers_by_hand(T: int, B: int) -> None:
    """Sequential's forward and backward equal calling each layer in turn, forward then reversed."""
    rng = np.random.default_rng(14)
    model = bptt.Sequential(
        [
            bptt.RNN(F_IN, F_HID, activation="relu", rng=1),
            bptt.RNN(F_HID, F_HID, rng=2),
            bptt.Sigmoid(),
            bptt.Last(),
            bptt.Dense(F_HID, F_OUT, rng=3),
        ]
    )
    x, g = rng.normal(size=(T, B, F_IN)), rng.normal(size=(1, B, F_OUT))
    h = x
    for layer in model:
        h = layer.forward(h)
    d = g
    for layer in reversed(list(model)):
        d = layer.backward(d)
    by_hand_y, by_hand_dx, by_hand_grads = h, d, {k: v.copy() for k, v in model.grads.items()}
    np.testing.assert_array_equal(model.forward(x), by_hand_y)
    np.testing.assert_array_equal(model.backward(g), by_hand_dx)
    _assert_same_snapshot(model.grads, by_hand_grads)


@pytest.mark.parametrize(
    ("make", "twice", "message"),
    [
        (lambda: bptt.Dense(F_IN, F_IN, rng=0), (0, 1), "layer 1 is the same object as layer 0"),
        (lambda: bptt.RNN(F_IN, F_IN, rng=0), (0, 2), "layer 2 is the same object as layer 0"),
        (bptt.Tanh, (1, 3), "layer 3 is the same object as layer 1"),
        (bptt.Sigmoid, (0, 3), "layer 3 is the same object as layer 0"),
    ],
)
def test_sequential_refuses_a_layer_object_used_twice(
    make: Callable[[], bptt.Layer], twice: tuple[int, int], message: str
) -> None:
    """A second use would overwrite the first's caches and give silently wrong gradients: ValueError."""
    shared = make()
    layers: list[bptt.Layer] = [bptt.Dense(F_IN, F_IN, rng=i) for i in range(4)]
    layers[twice[0]] = layers[twice[1]] = shared
    with pytest.raises(
        ValueError, match=f"^Sequential: {message}; each position needs a layer object of its own"
    ):
        bptt.Sequential(layers)


def test_sequential_accepts_equal_but_distinct_layers() -> None:
    """Two objects with the same weights are two layers: a deep copy is how to repeat one."""
    rnn = bptt.RNN(F_IN, F_IN, rng=0)
    model = bptt.Sequential([rnn, copy.deepcopy(rnn), bptt.Tanh(), bptt.Tanh()])
    assert len(model) == 4


def test_sequential_refuses_bad_layer_lists() -> None:
    """An empty list is a ValueError; something that is not a layer is a TypeError."""
    with pytest.raises(ValueError, match="at least one layer"):
        bptt.Sequential([])
    with pytest.raises(TypeError, match="item 1"):
        bptt.Sequential([bptt.Tanh(), np.tanh])


# ---------------------------------------------------------------------------------------------
# dtype


def _float32_case(name: str) -> bptt.Layer:
    if name == "Dense":
        return bptt.Dense(F_IN, F_HID, rng=1, dtype=np.float32)
    if name == "Sequential":
        return _sequential(np.float32)
    return bptt.RNN(F_IN, F_HID, activation=name.removeprefix("RNN-"), rng=1, dtype=np.float32)


@pytest.mark.parametrize(("T", "B"), [(1, 1), (4, 3)])
@pytest.mark.parametrize("name", ["Dense", *[f"RNN-{a}" for a in ACTIVATIONS], "Sequential"])
def test_float32_layers_stay_float32(name: str, T: int, B: int) -> None:
    """dtype=np.float32 gives float32 params, grads, outputs, grad_x and grad_h0, even from float64 input."""
    layer = _float32_case(name)
    x, g, _ = _data(name, T, B)  # float64 input and gradient
    for k in layer.params:
        assert layer.params[k].dtype == np.float32, k
        assert layer.grads[k].dtype == np.float32, k
    y = layer.forward(x)
    assert y.dtype == np.float32
    assert layer.backward(g).dtype == np.float32
    for k, grad in layer.grads.items():
        assert grad.dtype == np.float32, k
    rnn = layer[0] if isinstance(layer, bptt.Sequential) else layer
    if isinstance(rnn, bptt.RNN):
        assert rnn.grad_h0 is not None
        assert rnn.grad_h0.dtype == np.float32


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_layer_is_functional_sigmoid_into_the_far_tail(T: int, B: int, dtype: Any) -> None:
    """Sigmoid's forward is ``functional.sigmoid`` and its backward ``g ⊙ y(1 - y)``, down to z = -745.

    ``test_functional`` bounds both within a few ulp of the exact values, small results included.
    """
    z = -np.geomspace(1.0, 745.0, T * B * F_IN).reshape(T, B, F_IN).astype(dtype)  # (T, B, F)
    g = np.random.default_rng([T, B]).normal(size=z.shape).astype(dtype)
    layer = bptt.Sigmoid()
    y = layer.forward(z)
    want = bptt.functional.sigmoid(z)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(layer.backward(g), g * (want * (1 - want)))
    assert y.dtype == dtype and (T * B * F_IN < 3 or y.flat[1] > 0)


@pytest.mark.parametrize("cls", [bptt.Sigmoid, bptt.Tanh, bptt.ReLU, bptt.Last])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameter_free_layers_keep_the_input_float_dtype(cls: type[bptt.Layer], dtype: Any) -> None:
    """Elementwise layers and Last return and backpropagate in the float dtype they were given."""
    rng = np.random.default_rng(15)
    layer = cls()
    y = layer.forward(rng.normal(size=(3, 2, F_IN)).astype(dtype))
    assert y.dtype == dtype
    assert layer.backward(rng.normal(size=y.shape)).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_integer_and_bool_inputs_are_cast_to_the_layer_dtype(name: str, dtype: Any) -> None:
    """int and bool x are cast (to the layer's dtype; float64 for parameter-free layers)."""
    layer = CASES[name].make() if dtype == np.float64 or name not in WEIGHTED else _float32_case(name)
    want = dtype if name in WEIGHTED else np.float64
    ints = np.random.default_rng(16).integers(-3, 4, size=(3, 2, F_IN))
    for x in (ints, ints > 0):
        y = layer.forward(x)
        assert y.dtype == want
        np.testing.assert_array_equal(y, layer.forward(x.astype(want)))


@pytest.mark.parametrize("name", NAMES)
def test_complex_input_raises_type_error(name: str) -> None:
    """A complex x is refused with TypeError by every layer, not silently propagated."""
    layer = CASES[name].make()
    x = np.random.default_rng(17).normal(size=(2, 1, F_IN)) * (1.0 + 1.0j)
    with pytest.raises(TypeError):
        layer.forward(x)


@pytest.mark.parametrize("name", NAMES)
def test_complex_grad_y_raises_type_error(name: str) -> None:
    """A complex grad_y is refused with TypeError."""
    layer = CASES[name].make()
    x, g, _ = _data(name, 2, 1)
    layer.forward(x)
    with pytest.raises(TypeError):
        layer.backward(g * (1.0 + 1.0j))


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.complex128, bool])
def test_non_float_dtype_raises_type_error(dtype: Any) -> None:
    """dtype must be float32 or float64; anything else is a TypeError naming dtype."""
    with pytest.raises(TypeError, match="dtype"):
        bptt.Dense(F_IN, F_HID, dtype=dtype)
    with pytest.raises(TypeError, match="dtype"):
        bptt.RNN(F_IN, F_HID, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# rng and constructor arguments


def _weights(layer: bptt.Layer) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in layer.params.items()}


@pytest.mark.parametrize(
    "make", [lambda rng: bptt.Dense(F_IN, F_HID, rng=rng), lambda rng: bptt.RNN(F_IN, F_HID, rng=rng)]
)
def test_same_int_seed_gives_identical_weights(make: Callable[[Any], bptt.Layer]) -> None:
    """rng=int is reproducible, and a different seed gives different weights."""
    a, b, c = _weights(make(123)), _weights(make(123)), _weights(make(124))
    _assert_same_snapshot(a, b)
    assert all(not np.array_equal(a[k], c[k]) for k in a)


def test_generator_is_used_and_advanced() -> None:
    """A Generator passed as rng is the source: the same stream rebuilds the same layers in turn."""
    gen = np.random.default_rng(99)
    first, second = bptt.RNN(F_IN, F_HID, rng=gen), bptt.RNN(F_IN, F_HID, rng=gen)
    assert not np.array_equal(first.params["W_hh"], second.params["W_hh"])  # the stream moved on
    replay = np.random.default_rng(99)
    _assert_same_snapshot(_weights(bptt.RNN(F_IN, F_HID, rng=replay)), _weights(first))
    _assert_same_snapshot(_weights(bptt.RNN(F_IN, F_HID, rng=replay)), _weights(second))


CONSTRUCTORS: dict[str, Callable[..., bptt.Layer]] = {
    "Dense": lambda **kw: bptt.Dense(F_IN, F_HID, **kw),
    **{f"RNN-{a}": (lambda a=a, **kw: bptt.RNN(F_IN, F_HID, activation=a, **kw)) for a in ACTIVATIONS},
    "RNN-no-bias": lambda **kw: bptt.RNN(F_IN, 1, bias=False, **kw),
    "LSTM": lambda **kw: bptt.LSTM(F_IN, F_HID, **kw),
    "GRU": lambda **kw: bptt.GRU(F_IN, F_HID, **kw),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(CONSTRUCTORS))
def test_rng_none_is_seed_zero_and_leaves_global_state_alone(name: str, dtype: Any) -> None:
    """Without rng, every weighted layer draws from seed 0: the same weights every time, in any process.

    The legacy global NumPy state is neither read nor advanced.
    """
    make = CONSTRUCTORS[name]
    state = np.random.get_state()  # noqa: NPY002 (reads, never draws)
    a, b = make(dtype=dtype), make(dtype=dtype)
    after = np.random.get_state()  # noqa: NPY002
    assert state[0] == after[0]
    np.testing.assert_array_equal(state[1], after[1])
    assert state[2:] == after[2:]
    _assert_same_snapshot(_weights(a), _weights(b))
    _assert_same_snapshot(_weights(a), _weights(make(rng=0, dtype=dtype)))
    assert all(not np.array_equal(a.params[k], make(rng=1, dtype=dtype).params[k]) for k in a.params)


@pytest.mark.parametrize("bad", ["seed", 1.5, True, np.random.RandomState(0), [1, 2]])
def test_bad_rng_type_raises_type_error(bad: Any) -> None:
    """rng must be a Generator, an int or None; anything else is a TypeError naming rng."""
    with pytest.raises(TypeError, match="rng"):
        bptt.Dense(F_IN, F_HID, rng=bad)
    with pytest.raises(TypeError, match="rng"):
        bptt.RNN(F_IN, F_HID, rng=bad)


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: bptt.RNN(F_IN, 0), "hidden_size"),
        (lambda: bptt.RNN(F_IN, -3), "hidden_size"),
        (lambda: bptt.RNN(0, F_HID), "input_size"),
        (lambda: bptt.RNN(F_IN, F_HID, activation="softmax"), "activation"),
        (lambda: bptt.Dense(0, F_HID), "in_features"),
        (lambda: bptt.Dense(F_IN, 0), "out_features"),
        (lambda: bptt.Dense(F_IN, True), "out_features"),
    ],
)
def test_bad_constructor_arguments_raise_value_error_naming_them(
    make: Callable[[], bptt.Layer], argument: str
) -> None:
    """Nonpositive sizes and unknown activations raise ValueError naming the argument."""
    with pytest.raises(ValueError, match=argument):
        make()


# ---------------------------------------------------------------------------------------------
# ShapeError: every case names the function, the argument, the shape received and expected


def test_shape_error_is_a_value_error() -> None:
    """ShapeError subclasses ValueError, so `except ValueError` catches it."""
    assert issubclass(bptt.ShapeError, ValueError)
    with pytest.raises(ValueError):
        bptt.Dense(F_IN, F_HID).forward(np.zeros((2, F_IN)))


def test_the_issues_example_names_the_broken_term() -> None:
    """RNN(2, 16) on x (8, 1, 2) with a (1, 2) upstream gradient: the seed's BPTT bug, caught."""
    rnn = bptt.RNN(2, 16, rng=0)
    rnn.forward(np.random.default_rng(18).normal(size=(8, 1, 2)))
    with pytest.raises(
        bptt.ShapeError, match=re.escape("grad_y has shape (1, 2); expected (T, B, H) = (8, 1, 16)")
    ):
        rnn.backward(np.ones((1, 2)))


@pytest.mark.parametrize("bad_shape", [(8, F_IN), (2, 1, 1, F_IN), (F_IN,)])
@pytest.mark.parametrize("name", NAMES)
def test_wrong_rank_input(name: str, bad_shape: tuple[int, ...]) -> None:
    """x that is not (T, B, F) is refused with the letters expected and the shape received."""
    case = CASES[name]
    layer = case.make()
    message = f"{case.forward_where}: x has shape {bad_shape}; expected {case.in_letters}"
    with pytest.raises(bptt.ShapeError, match=re.escape(message)):
        layer.forward(np.zeros(bad_shape))


@pytest.mark.parametrize("name", ["Dense", "RNN-tanh", "Sequential"])
def test_wrong_feature_size(name: str) -> None:
    """x with the wrong number of features names the received and the expected shape."""
    case = CASES[name]
    message = f"{case.forward_where}: x has shape (5, 2, 4); expected (T, B, I) = (5, 2, {F_IN})"
    with pytest.raises(bptt.ShapeError, match=re.escape(message)):
        case.make().forward(np.zeros((5, 2, F_IN + 1)))


@pytest.mark.parametrize("bad_shape", [(0, 2, F_IN), (3, 0, F_IN), (0, 0, F_IN)])
@pytest.mark.parametrize("name", NAMES)
def test_empty_sequence_or_batch(name: str, bad_shape: tuple[int, int, int]) -> None:
    """T = 0 or B = 0 is refused as a ShapeError that shows the shape received."""
    case = CASES[name]
    message = f"{case.forward_where}: x has shape {bad_shape}; expected {case.in_letters}"
    with pytest.raises(bptt.ShapeError, match=re.escape(message)):
        case.make().forward(np.zeros(bad_shape))


@pytest.mark.parametrize("bad_h0", [(3, 16), (1, 15), (16,), (1, 1, 16)])
def test_h0_of_the_wrong_shape(bad_h0: tuple[int, ...]) -> None:
    """An h0 that is not (B, H) is refused, naming h0 and (B, H) with the numbers."""
    rnn = bptt.RNN(2, 16, rng=0)
    rnn.h0 = np.zeros(bad_h0)
    message = f"RNN.forward: h0 has shape {bad_h0}; expected (B, H) = (1, 16)"
    with pytest.raises(bptt.ShapeError, match=re.escape(message)):
        rnn.forward(np.zeros((8, 1, 2)))


@pytest.mark.parametrize("name", NAMES)
def test_backward_before_forward(name: str) -> None:
    """backward on a fresh layer says it came before forward."""
    layer = CASES[name].make()
    cls = type(layer).__name__
    with pytest.raises(bptt.ShapeError, match=re.escape(f"{cls}.backward called before forward")):
        layer.backward(np.zeros(CASES[name].out(2, 1)))


@pytest.mark.parametrize("name", NAMES)
def test_grad_y_of_the_wrong_shape(name: str) -> None:
    """grad_y that is not the last output's shape names both shapes and the output letters."""
    case = CASES[name]
    layer = case.make()
    x, _, _ = _data(name, 5, 2)
    good = layer.forward(x).shape
    for bad in [(*good[:2], good[2] + 1), good[1:], (good[0] + 1, *good[1:])]:
        message = f"{case.backward_where}: grad_y has shape {bad}; expected {case.out_letters} = {good}"
        with pytest.raises(bptt.ShapeError, match=re.escape(message)):
            layer.backward(np.zeros(bad))


@pytest.mark.parametrize("name", NAMES)
def test_grad_y_must_match_the_latest_forward(name: str) -> None:
    """After a second forward of another length, the first output's shape is refused."""
    case = CASES[name]
    layer = case.make()
    x_long, g_long, _ = _data(name, 6, 2)
    x_short, _, _ = _data(name, 3, 2)
    layer.forward(x_long)
    new_shape = layer.forward(x_short).shape
    if new_shape == g_long.shape:  # Last maps every T to one step
        assert name == "Last"
        return
    message = f"grad_y has shape {g_long.shape}; expected {case.out_letters} = {new_shape}"
    with pytest.raises(bptt.ShapeError, match=re.escape(message)):
        layer.backward(g_long)


def test_sequential_errors_name_the_layer() -> None:
    """Errors inside Sequential are prefixed "Sequential layer i: " with the inner layer's message."""
    model = bptt.Sequential(
        [bptt.RNN(2, 16, rng=0), bptt.RNN(16, 16, rng=1), bptt.Last(), bptt.Dense(16, 8, rng=2)]
    )
    with pytest.raises(
        bptt.ShapeError,
        match=re.escape(
            "Sequential layer 0: RNN.forward: x has shape (8, 1, 3); expected (T, B, I) = (8, 1, 2)"
        ),
    ):
        model.forward(np.zeros((8, 1, 3)))
    model[1].h0 = np.zeros((2, 16))
    with pytest.raises(
        bptt.ShapeError,
        match=re.escape("Sequential layer 1: RNN.forward: h0 has shape (2, 16); expected (B, H) = (1, 16)"),
    ):
        model.forward(np.zeros((8, 1, 2)))
    model[1].h0 = None
    model.forward(np.zeros((8, 1, 2)))
    with pytest.raises(
        bptt.ShapeError,
        match=re.escape(
            "Sequential layer 3: Dense.backward: grad_y has shape (8, 1, 8); expected (T, B, O) = (1, 1, 8)"
        ),
    ):
        model.backward(np.zeros((8, 1, 8)))


# ---------------------------------------------------------------------------------------------
# Finite differences (complex step) through bptt.gradcheck


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_passes_for_every_layer(name: str, T: int, B: int) -> None:
    """Every layer's backward agrees with numerical derivatives of an MSE loss."""
    rng = np.random.default_rng(19)
    layer = CASES[name].make()
    x = rng.normal(size=(T, B, F_IN))
    target = rng.normal(size=CASES[name].out(T, B))
    report = bptt.gradcheck(layer, bptt.MSELoss(), x, target)
    assert set(report.errors) >= {"x", *CASES[name].keys}
    assert report.ok, str(report)


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradcheck_passes_for_rnn_with_h0_and_no_bias(activation: str, T: int, B: int) -> None:
    """An RNN without bias and with a given h0 agrees with numerical derivatives, h0 included."""
    rng = np.random.default_rng(20)
    rnn = bptt.RNN(F_IN, F_HID, activation=activation, bias=False, rng=rng)
    rnn.h0 = rng.normal(size=(B, F_HID))
    x, target = rng.normal(size=(T, B, F_IN)), rng.normal(size=(T, B, F_HID))
    report = bptt.gradcheck(rnn, bptt.MSELoss(reduction="sum"), x, target)
    assert set(report.errors) == {"W_ih", "W_hh", "x", "h0"}
    assert report.ok, str(report)


# ---------------------------------------------------------------------------------------------
# Properties


@settings(max_examples=25, deadline=None)
@given(
    T=st.integers(1, 5),
    B=st.integers(1, 3),
    inputs=st.integers(1, 4),
    hidden=st.integers(1, 5),
    activation=st.sampled_from(ACTIVATIONS),
    seed=st.integers(0, 2**32 - 1),
)
def test_rnn_backward_is_linear_in_grad_y(
    T: int, B: int, inputs: int, hidden: int, activation: str, seed: int
) -> None:
    """For one forward, backward(a g1 + g2) = a backward(g1) + backward(g2), for every output."""
    rng = np.random.default_rng(seed)
    rnn = bptt.RNN(inputs, hidden, activation=activation, rng=rng)
    rnn.h0 = rng.normal(size=(B, hidden))
    y = rnn.forward(rng.normal(size=(T, B, inputs)))
    assert y.shape == (T, B, hidden)
    g1, g2, a = rng.normal(size=y.shape), rng.normal(size=y.shape), float(rng.normal())
    outs = []
    for g in (g1, g2, a * g1 + g2):
        outs.append({"x": rnn.backward(g), **_snapshot(rnn)})
    for k in outs[0]:
        _close(outs[2][k], a * outs[0][k] + outs[1][k])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_sequential_backward_hands_gradients_between_its_layers(
    monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """Between its own layers ``Sequential`` hands each gradient over (``own``) and lets a layer
    return a reused buffer (``share``): the results are those of the layers called one by one, bit
    for bit, twice over; the caller's ``grad_y`` is never written, and the ``grad_x`` it gets back
    is its own, which a later backward leaves alone."""
    monkeypatch.setenv("BPTT_BACKEND", backend)
    rng = np.random.default_rng(8)
    layers = [
        bptt.Dense(3, 6, rng=1),
        bptt.RNN(6, 40, rng=2),
        bptt.RNN(40, 30, rng=3),
        bptt.Dense(30, 2, rng=4),
    ]
    model = bptt.Sequential(layers)
    x, gy = rng.normal(size=(5, 4, 3)), rng.normal(size=(5, 4, 2))
    kept = gy.copy()
    model.forward(x)
    first = model.backward(gy)
    got = [first.copy(), *(g.copy() for g in model.grads.values())]
    second = model.backward(gy)
    assert np.array_equal(second, got[0]) and np.array_equal(first, got[0]) and np.array_equal(gy, kept)
    assert not any(np.shares_memory(first, a) for layer in layers for a in layer._work.values())

    grad = gy  # the same forward's caches, each layer's plain backward in turn
    for layer in reversed(layers):
        grad = layer.backward(grad.copy())
    want = [grad, *(w.copy() for w in model.grads.values())]
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
