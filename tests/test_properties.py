"""Properties of the core that hold for every shape, activation and seed (hypothesis).

- backward is linear in the upstream gradient (every parameter gradient, grad_x and grad_h0);
- an RNN run for one step is the recurrence written out in NumPy, forward and backward;
- a Sequential of one layer is that layer;
- save then load reproduces the model bit for bit;
- forward and backward are deterministic and never modify their inputs or earlier results;
- float32 agrees with float64 on the same (cast) weights within float32 round-off;
- a Sequential refuses exactly the layer lists that hold one object twice, naming both positions.

All comparisons are float64 at rtol 1e-9 with an atol of 1e-12 times the reference's scale,
except the float32 one, which says why it is looser.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bptt

ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")
KINDS = ("RNN", "Dense", "Sequential")
RTOL = 1e-9
ATOL_SCALE = 1e-12

seeds = st.integers(0, 2**32 - 1)
steps = st.integers(1, 6)  # T, including T = 1
batches = st.integers(1, 4)  # B, including B = 1
widths = st.integers(1, 5)
activations = st.sampled_from(ACTIVATIONS)


@dataclass(frozen=True)
class Net:
    """What a property needs to know about a model: its sizes and how it was drawn."""

    kind: str
    T: int
    B: int
    I: int
    H: int
    O: int
    activation: str
    bias: bool
    seed: int
    with_h0: bool

    def build(self, dtype: Any = np.float64) -> bptt.Layer:
        """The model in ``dtype``; the same ``Net`` always gives the same weights and ``h0``."""
        rng = np.random.default_rng(self.seed)
        if self.kind == "Dense":
            return bptt.Dense(self.I, self.O, bias=self.bias, rng=rng, dtype=dtype)
        rnn = bptt.RNN(self.I, self.H, activation=self.activation, bias=self.bias, rng=rng, dtype=dtype)
        if self.with_h0:
            rnn.h0 = rng.normal(0.0, 0.5, (self.B, self.H)).astype(dtype)
        if self.kind == "RNN":
            return rnn
        second = bptt.RNN(self.H, self.H, activation="tanh", rng=rng, dtype=dtype)
        return bptt.Sequential(
            [rnn, bptt.Sigmoid(), second, bptt.Dense(self.H, self.O, rng=rng, dtype=dtype)]
        )

    def x(self) -> np.ndarray:
        return np.random.default_rng([self.seed, 1]).normal(size=(self.T, self.B, self.I))


@st.composite
def nets(draw: st.DrawFn, kinds: tuple[str, ...] = KINDS) -> Net:
    return Net(
        draw(st.sampled_from(kinds)),
        draw(steps),
        draw(batches),
        draw(widths),
        draw(widths),
        draw(widths),
        draw(activations),
        draw(st.booleans()),
        draw(seeds),
        draw(st.booleans()),
    )


def rnns(model: bptt.Layer) -> list[tuple[str, bptt.RNN]]:
    layers = list(model) if isinstance(model, bptt.Sequential) else [model]
    return [(f"{i}.h0", layer) for i, layer in enumerate(layers) if isinstance(layer, bptt.RNN)]


def backward_all(model: bptt.Layer, grad_y: np.ndarray) -> dict[str, np.ndarray]:
    """Every gradient one backward gives, copied: the parameters', ``x``'s and each RNN's ``h0``."""
    out = {"x": model.backward(grad_y)}
    out.update({k: v.copy() for k, v in model.grads.items()})
    out.update({k: rnn.grad_h0.copy() for k, rnn in rnns(model)})
    return out


def assert_close(actual: np.ndarray, reference: np.ndarray, scale: float | None = None) -> None:
    """rtol 1e-9 with an atol of 1e-12 × ``scale`` (default: max |reference|)."""
    if scale is None:
        scale = float(np.max(np.abs(reference), initial=0.0))
    # The floor is the smallest normal float: below it subnormals keep too few bits for any rtol.
    np.testing.assert_allclose(actual, reference, rtol=RTOL, atol=ATOL_SCALE * scale + np.finfo(float).tiny)


# --- linearity --------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    net=nets(),
    alpha=st.floats(-3, 3, allow_subnormal=False),
    beta=st.floats(-3, 3, allow_subnormal=False),
)
def test_backward_is_linear_in_the_upstream_gradient(net: Net, alpha: float, beta: float) -> None:
    """backward(α g1 + β g2) = α backward(g1) + β backward(g2) for every gradient it returns."""
    model = net.build()
    y = model.forward(net.x())
    rng = np.random.default_rng([net.seed, 2])
    g1, g2 = rng.normal(size=y.shape), rng.normal(size=y.shape)
    d1, d2 = backward_all(model, g1), backward_all(model, g2)
    d12 = backward_all(model, alpha * g1 + beta * g2)
    assert d12.keys() == d1.keys()
    for k in d12:
        # The scale of the sum's terms: α d1 and β d2 may cancel, their round-off does not.
        scale = abs(alpha) * np.abs(d1[k]).max() + abs(beta) * np.abs(d2[k]).max()
        assert_close(d12[k], alpha * d1[k] + beta * d2[k], scale)


# --- one step -------------------------------------------------------------------------------------


def _act(name: str, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``act(a)`` and ``act'(a)``, written from the definitions."""
    if name == "tanh":
        return np.tanh(a), 1.0 / np.cosh(a) ** 2
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-a))
        return s, np.exp(-a) / (1.0 + np.exp(-a)) ** 2
    if name == "relu":
        return np.where(a > 0, a, 0.0), (a > 0).astype(float)
    return a.copy(), np.ones_like(a)


@settings(max_examples=100, deadline=None)
@given(net=nets(("RNN",)))
def test_one_step_is_the_recurrence(net: Net) -> None:
    """T = 1: h = act(x W_ih + h0 W_hh + b), and its gradients by the chain rule, in NumPy."""
    net = replace(net, T=1)
    rnn = net.build()
    assert isinstance(rnn, bptt.RNN)
    x = net.x()
    p = {k: v.copy() for k, v in rnn.params.items()}
    h0 = np.zeros((net.B, net.H)) if rnn.h0 is None else rnn.h0.copy()
    a = x[0] @ p["W_ih"] + h0 @ p["W_hh"] + (p["b"] if net.bias else 0.0)  # (B, H)
    h, dact = _act(net.activation, a)
    assert_close(rnn.forward(x), h[None])

    g = np.random.default_rng([net.seed, 3]).normal(size=(1, net.B, net.H))
    delta = g[0] * dact  # (B, H)
    got = backward_all(rnn, g)
    assert_close(got["x"], (delta @ p["W_ih"].T)[None])
    assert_close(got["W_ih"], x[0].T @ delta)
    assert_close(got["W_hh"], h0.T @ delta)
    assert_close(got["0.h0"], delta @ p["W_hh"].T)
    if net.bias:
        assert_close(got["b"], delta.sum(axis=0))


# --- Sequential of one layer ------------------------------------------------------------------------

SINGLE: dict[str, Callable[[int, int, str, np.random.Generator], bptt.Layer]] = {
    "Dense": lambda i, o, act, rng: bptt.Dense(i, o, rng=rng),
    "RNN": lambda i, o, act, rng: bptt.RNN(i, o, activation=act, rng=rng),
    "Sigmoid": lambda i, o, act, rng: bptt.Sigmoid(),
    "Tanh": lambda i, o, act, rng: bptt.Tanh(),
    "ReLU": lambda i, o, act, rng: bptt.ReLU(),
    "Last": lambda i, o, act, rng: bptt.Last(),
}


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(sorted(SINGLE)), net=nets(("RNN",)))
def test_sequential_of_one_layer_is_the_layer(kind: str, net: Net) -> None:
    """Sequential([layer]) gives the layer's output, grad_x, grads (keyed "0.name") and grad_h0."""
    layer = SINGLE[kind](net.I, net.H, net.activation, np.random.default_rng(net.seed))
    twin = SINGLE[kind](net.I, net.H, net.activation, np.random.default_rng(net.seed))
    seq = bptt.Sequential([twin])
    if isinstance(layer, bptt.RNN) and net.with_h0:
        layer.h0 = np.random.default_rng([net.seed, 4]).normal(size=(net.B, net.H))
        twin.h0 = layer.h0.copy()
    x = net.x()
    y = layer.forward(x)
    np.testing.assert_array_equal(seq.forward(x), y)
    g = np.random.default_rng([net.seed, 5]).normal(size=y.shape)
    np.testing.assert_array_equal(seq.backward(g), layer.backward(g))
    assert seq.grads.keys() == {f"0.{k}" for k in layer.grads}
    for k, v in layer.grads.items():
        np.testing.assert_array_equal(seq.grads[f"0.{k}"], v)
    if isinstance(layer, bptt.RNN):
        np.testing.assert_array_equal(twin.grad_h0, layer.grad_h0)


# --- save and load ----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    net=nets(("Dense", "RNN", "Sequential")),
    dtype=st.sampled_from([np.float64, np.float32]),
    last=st.booleans(),
)
def test_save_then_load_is_bit_identical(net: Net, dtype: Any, last: bool) -> None:
    """A loaded model has the same weights and dtype, and gives the same outputs and gradients."""
    net = replace(net, with_h0=False)  # h0 is per-call state, not part of the file
    model = net.build(dtype)
    layers = list(model) if isinstance(model, bptt.Sequential) else [model]
    if last:
        model = bptt.Sequential([*layers, bptt.Tanh(), bptt.Last()])
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.npz"
        bptt.save(model, path)
        loaded = bptt.load(path)
    params = (
        model.params if isinstance(model, bptt.Sequential) else {f"0.{k}": v for k, v in model.params.items()}
    )
    assert loaded.params.keys() == params.keys()
    for k, v in params.items():
        assert loaded.params[k].dtype == v.dtype == dtype
        np.testing.assert_array_equal(loaded.params[k], v)
    x = net.x().astype(dtype)
    y = model.forward(x)
    np.testing.assert_array_equal(loaded.forward(x), y)
    g = np.random.default_rng([net.seed, 6]).normal(size=y.shape).astype(dtype)
    np.testing.assert_array_equal(loaded.backward(g), model.backward(g))
    for k in params:
        grad = model.grads[k] if isinstance(model, bptt.Sequential) else model.grads[k[2:]]
        np.testing.assert_array_equal(loaded.grads[k], grad)


# --- determinism and ownership ------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from([*KINDS, "Sigmoid", "Tanh", "ReLU", "Last"]), net=nets(("RNN",)))
def test_forward_and_backward_are_deterministic_and_leave_inputs_alone(kind: str, net: Net) -> None:
    """Two forwards (and two backwards) agree bit for bit; x, grad_y and earlier results are untouched."""
    if kind in KINDS:
        model = replace(net, kind=kind).build()
    else:
        model = SINGLE[kind](net.I, net.H, net.activation, np.random.default_rng(net.seed))
    x = net.x()
    x_copy = x.copy()
    y1 = model.forward(x)
    y1_copy = y1.copy()
    y2 = model.forward(x)
    np.testing.assert_array_equal(y2, y1_copy)
    np.testing.assert_array_equal(y1, y1_copy)  # the second call did not overwrite the first result
    np.testing.assert_array_equal(x, x_copy)
    g = np.random.default_rng([net.seed, 7]).normal(size=y1.shape)
    g_copy = g.copy()
    first = backward_all(model, g)
    first_x = first["x"].copy()
    second = backward_all(model, g)
    np.testing.assert_array_equal(g, g_copy)
    np.testing.assert_array_equal(first["x"], first_x)
    for k in first:
        np.testing.assert_array_equal(second[k], first[k])


# --- float32 against float64 ------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(net=nets())
def test_float32_agrees_with_float64(net: Net) -> None:
    """The same weights, h0, x and grad_y, rounded to float32, give float64's results to float32 accuracy."""
    m32, m64 = net.build(np.float32), net.build(np.float64)
    for k, p in m64.params.items():  # float64 gets exactly the float32 weights: only arithmetic differs
        p[...] = m32.params[k]
    for (_, r32), (_, r64) in zip(rnns(m32), rnns(m64), strict=True):
        if r32.h0 is not None:
            r64.h0 = r32.h0.astype(np.float64)
    x = net.x().astype(np.float32)
    y32, y64 = m32.forward(x), m64.forward(x.astype(np.float64))
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    g = np.random.default_rng([net.seed, 8]).normal(size=y64.shape).astype(np.float32)
    d32, d64 = backward_all(m32, g), backward_all(m64, g.astype(np.float64))
    d32["y"], d64["y"] = y32, y64
    # The one loose tolerance in this file: float32 carries 24 bits (eps 1.2e-7), and a few
    # steps of matmuls and activations lose a few more; measured worst over 400 seeds was 0.15
    # of this bound. float32 rounds each term of a gradient's sum over steps at its own size, so
    # a gradient that cancels to near zero is judged against the scale of the terms, which the
    # largest gradient of the same backward pass bounds (hypothesis found a one-entry W_hh of
    # -1.07e-4, summed from larger terms of both signs, off by 1.2e-8 in float32).
    scale = max(float(np.abs(ref).max()) for k, ref in d64.items() if k != "y")
    for k, ref in d64.items():
        assert d32[k].dtype == np.float32, k
        atol = 1e-5 * (float(np.abs(ref).max()) if k == "y" else scale)
        np.testing.assert_allclose(d32[k], ref, rtol=1e-4, atol=atol, err_msg=k)


@settings(max_examples=100, deadline=None)
@given(picks=st.lists(st.integers(0, 5), min_size=1, max_size=8))
def test_sequential_refuses_exactly_the_lists_with_a_repeated_object(picks: list[int]) -> None:
    """Built from a pool of six layers by index: refused iff an index repeats, naming its first repeat."""
    pool: list[bptt.Layer] = [bptt.Tanh(), bptt.Sigmoid(), bptt.Dense(2, 2, rng=0), bptt.RNN(2, 2, rng=1)]
    pool += [bptt.Bidirectional(bptt.GRU(2, 1, rng=2), rng=3), bptt.Last()]
    first_seen: dict[int, int] = {}
    repeat = next(((i, first_seen[k]) for i, k in enumerate(picks) if first_seen.setdefault(k, i) != i), None)
    layers = [pool[k] for k in picks]
    if repeat is None:
        assert len(bptt.Sequential(layers)) == len(picks)
    else:
        with pytest.raises(
            ValueError, match=f"^Sequential: layer {repeat[0]} is the same object as layer {repeat[1]};"
        ):
            bptt.Sequential(layers)
