"""``bptt.to_torch`` and ``bptt.from_torch``: same weights, same outputs and gradients, both ways.

Outputs are compared to 1e-12 in float64. Gradients through ``to_torch`` are torch autograd's,
compared with bptt's ``backward`` at the project's rtol 1e-9. Modules built directly with
``torch.nn`` (``num_layers=2``, ``bidirectional=True``, both biases random) are converted with
``from_torch`` and checked the same way. Weights are read back from torch here by hand, in the
layout the recurrent layers' docstrings give, so the bridge is never its own reference.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bptt
from bptt import (
    GRU,
    LSTM,
    RNN,
    Bidirectional,
    Dense,
    Last,
    Layer,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    from_torch,
    to_torch,
)

OUT_RTOL = 1e-12  # outputs, both ways
RTOL = 1e-9  # gradients against autograd
SHAPES = [(1, 1), (1, 3), (4, 1), (5, 2)]  # (T, B)
I = 3  # input features of every case
STATES = {RNN: ("h0",), GRU: ("h0",), LSTM: ("h0", "c0")}


def close(got: Any, ref: Any, what: str, rtol: float = RTOL) -> None:
    """Same shape, and equal to ``rtol`` with atol ``1e-12 * max|ref|``."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    atol = 1e-12 * float(np.abs(ref).max(initial=0.0))
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, err_msg=what)


def cells(layer: Layer) -> list[Any]:
    """A recurrent layer's directions: itself, or a Bidirectional's forward and backward layers."""
    return [layer.forward_layer, layer.backward_layer] if isinstance(layer, Bidirectional) else [layer]


def is_recurrent(layer: Layer) -> bool:
    return isinstance(layer, (RNN, LSTM, GRU, Bidirectional))


def set_states(model: Sequential, B: int, rng: np.random.Generator) -> None:
    """Give every initial state of every recurrent layer a random value."""
    for layer in model:
        if is_recurrent(layer):
            for cell in cells(layer):
                for name in STATES[type(cell)]:
                    setattr(cell, name, rng.normal(size=(B, cell.hidden_size)))


# Every layer type, alone and in chains; each builder takes a Generator.
CASES: dict[str, Callable[[np.random.Generator], Sequential]] = {
    "Dense": lambda r: Sequential([Dense(I, 4, rng=r)]),
    "Dense-nobias": lambda r: Sequential([Dense(I, 4, bias=False, rng=r)]),
    "Sigmoid": lambda r: Sequential([Sigmoid()]),
    "Tanh": lambda r: Sequential([Tanh()]),
    "ReLU": lambda r: Sequential([ReLU()]),
    "Last": lambda r: Sequential([Last()]),
    "RNN-tanh": lambda r: Sequential([RNN(I, 4, rng=r)]),
    "RNN-relu-nobias": lambda r: Sequential([RNN(I, 4, activation="relu", bias=False, rng=r)]),
    "LSTM": lambda r: Sequential([LSTM(I, 4, rng=r)]),
    "LSTM-nobias": lambda r: Sequential([LSTM(I, 4, bias=False, rng=r)]),
    "GRU": lambda r: Sequential([GRU(I, 4, rng=r)]),
    "GRU-nobias": lambda r: Sequential([GRU(I, 4, bias=False, rng=r)]),
    "Bi-RNN": lambda r: Sequential([Bidirectional(RNN(I, 4, activation="relu", rng=r), rng=r)]),
    "Bi-LSTM": lambda r: Sequential([Bidirectional(LSTM(I, 4, rng=r), rng=r)]),
    "Bi-GRU": lambda r: Sequential([Bidirectional(GRU(I, 4, rng=r), rng=r)]),
    "Bi-GRU-nobias": lambda r: Sequential([Bidirectional(GRU(I, 4, bias=False, rng=r), rng=r)]),
    "stack": lambda r: Sequential(
        [LSTM(I, 5, rng=r), Tanh(), GRU(5, 4, rng=r), RNN(4, 3, rng=r), Last(), Dense(3, 2, rng=r), Sigmoid()]
    ),
    "bi-stack": lambda r: Sequential(
        [
            Bidirectional(LSTM(I, 3, rng=r), rng=r),
            ReLU(),
            Bidirectional(GRU(6, 4, bias=False, rng=r), rng=r),
            Dense(8, 2, rng=r),
        ]
    ),
}


def build(name: str, T: int, B: int, states: bool, seed: int = 0) -> tuple[Sequential, np.ndarray]:
    """The case's model (with random initial states when ``states``) and an input ``(T, B, I)``."""
    rng = np.random.default_rng([seed, T, B, states, *name.encode()])
    model = CASES[name](rng)
    if states:
        set_states(model, B, rng)
    return model, rng.normal(size=(T, B, I))


def torch_grads(module: Any, model: Sequential) -> dict[str, np.ndarray]:
    """Autograd's gradients in ``model``'s keys, read from the module ``to_torch(model)`` built.

    ``weight = Wᵀ``; ``b``'s gradient is ``bias_ih``'s; ``b_hn``'s is the n part of ``bias_hh``;
    a state's is its buffer's row ``d`` (direction d).
    """
    out: dict[str, np.ndarray] = {}
    for i, (layer, mod) in enumerate(zip(model, module, strict=True)):
        if isinstance(layer, Dense):
            out[f"{i}.W"] = mod.weight.grad.numpy().T
            if layer.bias:
                out[f"{i}.b"] = mod.bias.grad.numpy()
        if not is_recurrent(layer):
            continue
        bi = isinstance(layer, Bidirectional)
        for d, cell in enumerate(cells(layer)):
            key, suffix = f"{i}." + (("fwd.", "bwd.")[d] if bi else ""), ("l0", "l0_reverse")[d]
            out[key + "W_ih"] = getattr(mod.rnn, f"weight_ih_{suffix}").grad.numpy().T
            out[key + "W_hh"] = getattr(mod.rnn, f"weight_hh_{suffix}").grad.numpy().T
            if cell.bias:
                out[key + "b"] = getattr(mod.rnn, f"bias_ih_{suffix}").grad.numpy()
            if cell.bias and isinstance(cell, GRU):
                out[key + "b_hn"] = getattr(mod.rnn, f"bias_hh_{suffix}").grad.numpy()[2 * cell.hidden_size :]
            for name in STATES[type(cell)]:
                buffer = getattr(mod, name)
                if buffer is not None:
                    out[key + name] = buffer.grad.numpy()[d]
    return out


def bptt_state_grads(model: Sequential) -> dict[str, np.ndarray]:
    """grad_h0 / grad_c0 of every direction whose state is set, keyed like ``torch_grads``."""
    out = {}
    for i, layer in enumerate(model):
        if is_recurrent(layer):
            bi = isinstance(layer, Bidirectional)
            for d, cell in enumerate(cells(layer)):
                key = f"{i}." + (("fwd.", "bwd.")[d] if bi else "")
                out |= {key + n: getattr(cell, f"grad_{n}") for n in STATES[type(cell)]}
    return out


# ---------------------------------------------------------------------------------------------
# bptt -> torch


@pytest.mark.parametrize("states", [False, True], ids=["zeros", "states"])
@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", list(CASES))
def test_to_torch_gives_the_same_outputs(name: str, T: int, B: int, states: bool) -> None:
    """The module to_torch builds returns bptt's output to 1e-12, initial states included."""
    model, x = build(name, T, B, states)
    module = to_torch(model)
    assert isinstance(module, torch.nn.Sequential)
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    close(got, model.forward(x), "output", rtol=OUT_RTOL)


@pytest.mark.parametrize(("T", "B"), SHAPES)
@pytest.mark.parametrize("name", list(CASES))
def test_gradients_through_to_torch_match_bptt_backward(name: str, T: int, B: int) -> None:
    """Autograd of the to_torch module equals bptt's backward: grad_x, every param, every state."""
    model, x = build(name, T, B, states=True)
    module = to_torch(model)
    for buffer in module.buffers():
        buffer.requires_grad_(True)
    xt = torch.tensor(x, requires_grad=True)
    out = module(xt)
    grad_y = np.random.default_rng([T, B, 5]).normal(size=tuple(out.shape))
    out.backward(torch.from_numpy(grad_y))
    model.forward(x)
    close(model.backward(grad_y), xt.grad.numpy(), "grad_x")
    ref = torch_grads(module, model)
    ours = {**model.grads, **bptt_state_grads(model)}
    assert set(ref) == set(ours)
    for key, g in ours.items():
        close(g, ref[key], key)


def test_to_torch_of_a_single_layer_is_one_module() -> None:
    """A layer that is not a Sequential becomes one module computing the same thing."""
    rng = np.random.default_rng(1)
    layer = Bidirectional(LSTM(2, 3, rng=rng), rng=rng)
    x = rng.normal(size=(4, 2, 2))
    module = to_torch(layer)
    assert not isinstance(module, torch.nn.Sequential)
    assert isinstance(module.rnn, torch.nn.LSTM) and module.rnn.bidirectional
    with torch.no_grad():
        close(module(torch.from_numpy(x)).numpy(), layer.forward(x), "output", rtol=OUT_RTOL)


def test_to_torch_maps_weights_exactly_as_documented() -> None:
    """weight_ih = W_ihᵀ, weight_hh = W_hhᵀ, bias_ih = b, bias_hh = 0 (GRU: [0, 0, b_hn]), bit for bit."""
    rng = np.random.default_rng(2)
    for cell in (RNN(2, 3, rng=rng), LSTM(2, 3, rng=rng), GRU(2, 3, rng=rng)):
        rnn = to_torch(cell).rnn
        p = {k: v.detach().numpy() for k, v in rnn.named_parameters()}
        np.testing.assert_array_equal(p["weight_ih_l0"], cell.params["W_ih"].T)
        np.testing.assert_array_equal(p["weight_hh_l0"], cell.params["W_hh"].T)
        np.testing.assert_array_equal(p["bias_ih_l0"], cell.params["b"])
        hh = np.zeros_like(cell.params["b"])
        if isinstance(cell, GRU):
            hh[6:] = cell.params["b_hn"]
        np.testing.assert_array_equal(p["bias_hh_l0"], hh)
    bi = Bidirectional(GRU(2, 3, rng=rng), rng=rng)
    p = {k: v.detach().numpy() for k, v in to_torch(bi).rnn.named_parameters()}
    np.testing.assert_array_equal(p["weight_ih_l0_reverse"], bi.backward_layer.params["W_ih"].T)
    np.testing.assert_array_equal(p["bias_hh_l0_reverse"][6:], bi.backward_layer.params["b_hn"])


def test_to_torch_bias_false_maps_to_bias_false() -> None:
    """A bias-free bptt layer becomes a torch module without bias parameters."""
    model = Sequential(
        [LSTM(2, 3, bias=False, rng=0), GRU(3, 3, bias=False, rng=1), Dense(3, 1, bias=False, rng=2)]
    )
    names = [n for n, _ in to_torch(model).named_parameters()]
    assert names and not any("bias" in n for n in names), names


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_torch_follows_the_layer_dtype(dtype: Any) -> None:
    """float32 layers give float32 torch parameters and buffers; float64 gives float64."""
    rng = np.random.default_rng(3)
    model = Sequential(
        [Bidirectional(LSTM(2, 3, rng=rng, dtype=dtype), rng=rng), Dense(6, 2, rng=rng, dtype=dtype)]
    )
    model[0].forward_layer.h0 = np.ones((2, 3))  # type: ignore[attr-defined]
    module = to_torch(model)
    want = torch.float32 if dtype == np.float32 else torch.float64
    tensors = [*module.parameters(), *module.buffers()]
    assert len(tensors) == 12 and all(t.dtype == want for t in tensors)
    x = rng.normal(size=(4, 2, 2)).astype(dtype)
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    assert got.dtype == dtype
    if dtype == np.float64:
        close(got, model.forward(x), "output", rtol=OUT_RTOL)
    else:  # both sides round every operation to 24 bits, in different orders
        np.testing.assert_allclose(got, model.forward(x), rtol=1e-5, atol=1e-6)


def test_to_torch_copies_the_weights() -> None:
    """Changing the torch module's weights leaves the bptt model alone, and the reverse."""
    model = Sequential([GRU(2, 3, rng=4), Dense(3, 1, rng=5)])
    before = {k: v.copy() for k, v in model.params.items()}
    module = to_torch(model)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])
    snapshot = [p.detach().clone() for p in module.parameters()]
    for v in model.params.values():
        v += 1.0
    for p, s in zip(module.parameters(), snapshot, strict=True):
        assert torch.equal(p, s)


# ---------------------------------------------------------------------------------------------
# torch -> bptt


def torch_net(kind: str, I: int, H: int, layers: int, bidirectional: bool, bias: bool) -> Any:
    """A torch.nn recurrent module with torch's own random init (both biases nonzero)."""
    if kind.startswith("RNN"):
        return torch.nn.RNN(
            I, H, layers, nonlinearity=kind[4:], bias=bias, bidirectional=bidirectional, dtype=torch.float64
        )
    cls = torch.nn.LSTM if kind == "LSTM" else torch.nn.GRU
    return cls(I, H, layers, bias=bias, bidirectional=bidirectional, dtype=torch.float64)


def torch_layer_grads(net: Any, kind: str) -> dict[str, np.ndarray]:
    """``net``'s parameter gradients in the keys ``from_torch(net)`` has, written out by hand."""
    D, H = (2 if net.bidirectional else 1), net.hidden_size
    out = {}
    for k in range(net.num_layers):
        for d in range(D):
            key, suffix = f"{k}." + (("fwd.", "bwd.")[d] if D == 2 else ""), f"l{k}" + ("", "_reverse")[d]
            out[key + "W_ih"] = getattr(net, f"weight_ih_{suffix}").grad.numpy().T
            out[key + "W_hh"] = getattr(net, f"weight_hh_{suffix}").grad.numpy().T
            if net.bias:
                out[key + "b"] = getattr(net, f"bias_ih_{suffix}").grad.numpy()
            if net.bias and kind == "GRU":
                out[key + "b_hn"] = getattr(net, f"bias_hh_{suffix}").grad.numpy()[2 * H :]
    return out


KINDS = ["LSTM", "GRU", "RNN-tanh", "RNN-relu"]


@pytest.mark.parametrize(("T", "B"), [(1, 1), (5, 3)])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_matches_torch_nn(
    kind: str, num_layers: int, bidirectional: bool, bias: bool, T: int, B: int
) -> None:
    """from_torch(nn.LSTM/GRU/RNN) gives torch's output to 1e-12 and its gradients, states included."""
    seed = [KINDS.index(kind), num_layers, bidirectional, bias, T, B]
    torch.manual_seed(int(np.random.default_rng(seed).integers(2**31)))
    rng = np.random.default_rng([*seed, 1])
    H, D = 4, 2 if bidirectional else 1
    net = torch_net(kind, I, H, num_layers, bidirectional, bias)
    model = from_torch(net)
    assert len(model) == num_layers
    names = STATES[LSTM] if kind == "LSTM" else STATES[GRU]
    states = {n: torch.tensor(rng.normal(size=(num_layers * D, B, H)), requires_grad=True) for n in names}
    for k, layer in enumerate(model):
        assert isinstance(layer, Bidirectional) == bidirectional
        for d, cell in enumerate(cells(layer)):
            for n, s in states.items():
                setattr(cell, n, s.detach().numpy()[k * D + d].copy())
    x = rng.normal(size=(T, B, I))
    xt = torch.tensor(x, requires_grad=True)
    out, _ = net(xt, (states["h0"], states["c0"]) if kind == "LSTM" else states["h0"])
    grad_y = rng.normal(size=tuple(out.shape))
    out.backward(torch.from_numpy(grad_y))
    close(model.forward(x), out.detach().numpy(), "output", rtol=OUT_RTOL)
    close(model.backward(grad_y), xt.grad.numpy(), "grad_x")
    ref = torch_layer_grads(net, kind)
    assert set(ref) == set(model.grads)
    for key, g in model.grads.items():
        close(g, ref[key], key)
    for k, layer in enumerate(model):
        for d, cell in enumerate(cells(layer)):
            for n, s in states.items():
                close(getattr(cell, f"grad_{n}"), s.grad.numpy()[k * D + d], f"layer {k} direction {d} {n}")


def test_from_torch_folds_the_biases_as_documented() -> None:
    """RNN/LSTM: b = bias_ih + bias_hh; GRU: b = bias_ih + [bias_hh_r, bias_hh_z, 0], b_hn = bias_hh_n."""
    torch.manual_seed(0)
    H = 3
    for cls in (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU):
        net = cls(2, H, dtype=torch.float64)
        (cell,) = from_torch(net)
        ih, hh = net.bias_ih_l0.detach().numpy(), net.bias_hh_l0.detach().numpy()
        if cls is torch.nn.GRU:
            np.testing.assert_array_equal(cell.params["b"][: 2 * H], ih[: 2 * H] + hh[: 2 * H])
            np.testing.assert_array_equal(cell.params["b"][2 * H :], ih[2 * H :])
            np.testing.assert_array_equal(cell.params["b_hn"], hh[2 * H :])
        else:
            np.testing.assert_array_equal(cell.params["b"], ih + hh)
        np.testing.assert_array_equal(cell.params["W_ih"], net.weight_ih_l0.detach().numpy().T)
        np.testing.assert_array_equal(cell.params["W_hh"], net.weight_hh_l0.detach().numpy().T)


def test_from_torch_converts_linear_activations_and_nested_sequentials() -> None:
    """nn.Sequential (nested ones flattened) of Linear, Sigmoid, Tanh, ReLU gives torch's output."""
    torch.manual_seed(1)
    f64 = torch.float64
    net = torch.nn.Sequential(
        torch.nn.Linear(I, 5, dtype=f64),
        torch.nn.Tanh(),
        torch.nn.Sequential(torch.nn.Linear(5, 4, bias=False, dtype=f64), torch.nn.ReLU()),
        torch.nn.Linear(4, 2, dtype=f64),
        torch.nn.Sigmoid(),
    )
    model = from_torch(net)
    assert [type(la) for la in model] == [Dense, Tanh, Dense, ReLU, Dense, Sigmoid]
    assert model[2].bias is False  # type: ignore[attr-defined]
    x = np.random.default_rng(2).normal(size=(3, 2, I))
    with torch.no_grad():
        close(model.forward(x), net(torch.from_numpy(x)).numpy(), "output", rtol=OUT_RTOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_from_torch_follows_the_torch_dtype(dtype: Any) -> None:
    """float32 torch weights give float32 bptt layers, float64 give float64."""
    net = torch.nn.Sequential(torch.nn.Linear(2, 3, dtype=dtype))
    rnn = torch.nn.GRU(2, 3, num_layers=2, bidirectional=True, dtype=dtype)
    want = np.dtype(np.float32 if dtype == torch.float32 else np.float64)
    for model in (from_torch(net), from_torch(rnn)):
        assert all(v.dtype == want for v in model.params.values())


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_from_torch_to_torch_is_identical(name: str, dtype: Any) -> None:
    """from_torch(to_torch(m)) has m's layer types, configs, dtypes, params and states, bit for bit."""
    model, x = build(name, 3, 2, states=True)
    if dtype == np.float32:
        model = from_torch(to_torch(model).float())
        assert all(v.dtype == np.float32 for v in model.params.values())
    back = from_torch(to_torch(model))
    assert [type(la) for la in back] == [type(la) for la in model]
    assert [la.config() for la in back] == [la.config() for la in model]
    assert back.params.keys() == model.params.keys()
    for k, v in model.params.items():
        assert back.params[k].dtype == v.dtype, k
        np.testing.assert_array_equal(back.params[k], v, err_msg=k)
    for la, lb in zip(model, back, strict=True):
        if is_recurrent(la):
            for ca, cb in zip(cells(la), cells(lb), strict=True):
                for n in STATES[type(ca)]:
                    np.testing.assert_array_equal(getattr(cb, n), getattr(ca, n), err_msg=n)
    np.testing.assert_array_equal(back.forward(x), model.forward(x))


@settings(max_examples=20, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    num_layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    bias=st.booleans(),
    sizes=st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5)),
)
def test_round_trip_to_torch_from_torch_keeps_torch_outputs(
    kind: str, num_layers: int, bidirectional: bool, bias: bool, sizes: tuple[int, int, int, int]
) -> None:
    """to_torch(from_torch(net)) computes what net computes, to 1e-12, for any shape and stack."""
    T, B, I_, H = sizes
    torch.manual_seed(T * 1000 + B * 100 + I_ * 10 + H)
    net = torch_net(kind, I_, H, num_layers, bidirectional, bias)
    x = torch.from_numpy(np.random.default_rng(list(sizes)).normal(size=(T, B, I_)))
    with torch.no_grad():
        close(to_torch(from_torch(net))(x).numpy(), net(x)[0].numpy(), "output", rtol=OUT_RTOL)


# ---------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (RNN(2, 3, activation="sigmoid"), "activation 'sigmoid'"),
        (RNN(2, 3, activation="identity"), "activation 'identity'"),
        (Bidirectional(RNN(2, 3, activation="sigmoid")), "activation 'sigmoid'"),
        (Sequential([Dense(2, 2), RNN(2, 3, activation="identity")]), "layer 1 is an RNN"),
    ],
)
def test_to_torch_refuses_activations_torch_lacks(model: Layer, message: str) -> None:
    """nn.RNN has tanh and relu only: sigmoid and identity RNNs raise a ValueError saying so."""
    with pytest.raises(ValueError, match=message):
        to_torch(model)


def test_to_torch_refuses_what_is_not_a_known_layer() -> None:
    """A non-layer is a TypeError; a Layer subclass without a torch form is a ValueError naming it."""

    class Doubler(Layer):
        def forward(self, x: np.ndarray) -> np.ndarray:
            return 2 * x

    with pytest.raises(TypeError, match="bptt layer"):
        to_torch(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="Doubler"):
        to_torch(Sequential([Tanh(), Doubler()]))


class LoudLinear(torch.nn.Linear):
    """A subclass that computes something else than nn.Linear."""

    def forward(self, x: Any) -> Any:
        return 2 * super().forward(x)


class QuietLinear(torch.nn.Linear):
    """A subclass that keeps nn.Linear's computation."""


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (torch.nn.LSTM(2, 3, batch_first=True), "batch_first=True"),
        (torch.nn.GRU(2, 3, num_layers=2, dropout=0.5), "dropout=0.5"),
        (torch.nn.LSTM(2, 4, proj_size=2), "proj_size=2"),
        (torch.nn.Conv1d(2, 2, 1), "Conv1d"),
        (torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1)), r"module\[1\] is a Dropout"),
        (torch.nn.Linear(2, 2, dtype=torch.float16), "float16"),
        (LoudLinear(2, 2), "overrides forward"),
        (torch.nn.Sequential(), "no layers"),
    ],
    ids=["batch_first", "dropout", "proj_size", "conv", "dropout-module", "float16", "subclass", "empty"],
)
def test_from_torch_refuses_what_bptt_cannot_compute(module: Any, message: str) -> None:
    """Each unsupported torch feature raises a ValueError that names it."""
    with pytest.raises(ValueError, match=message):
        from_torch(module)


def test_from_torch_accepts_a_subclass_that_keeps_forward_and_refuses_non_modules() -> None:
    """A subclass without its own forward converts; a non-module is a TypeError."""
    (dense,) = from_torch(QuietLinear(2, 3, dtype=torch.float64))
    assert isinstance(dense, Dense)
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        from_torch(Dense(2, 2))


# ---------------------------------------------------------------------------------------------
# Packaging


def test_exported_from_bptt() -> None:
    """to_torch and from_torch are public names of bptt."""
    assert {"to_torch", "from_torch"} <= set(bptt.__all__)
    assert bptt.to_torch is to_torch and bptt.from_torch is from_torch


def test_bptt_and_the_bridge_import_without_torch() -> None:
    """With torch unimportable, bptt and bptt.bridge import; to_torch then raises ImportError."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import bptt, bptt.bridge\n"
        "try:\n"
        "    bptt.to_torch(bptt.Dense(2, 2))\n"
        "except ImportError:\n"
        "    print('refused')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "refused"
