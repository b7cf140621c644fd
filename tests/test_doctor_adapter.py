"""``bptt.doctor.adapter``: a learner in any convention, driven in the reference convention.

Correct learners are written here natively in each convention (row vectors ``x @ W`` with
cs231n's names, column vectors ``W @ x`` with min-char-rnn's; one sequence, time-major,
batch-major, a list of row steps, a list of column steps; an object with ``forward``/``backward``
or a function ``f(x, y)``): after the probe's conversion, every gradient equals the reference,
which is itself checked against ``bptt.RNN`` + ``bptt.Dense``. Then: telling roles apart and every
refusal, the copies, the pass-through of wrong shapes, exceptions, call forms, files.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bptt
from bptt.doctor.adapter import probe
from bptt.doctor.layouts import DATA
from bptt.doctor.naming import assign, hint
from bptt.doctor.slots import find_weights
from bptt.doctor.spec import Spec

I, H, O = 3, 4, 2  # all different, so shapes say which weight is which
SPEC = Spec()  # tanh, identity output, Σ(ŷ - y)², outputs at every step
ROW_NAMES = {"W_ih": "Wx", "W_hh": "Wh", "b": "b", "W_ho": "Wy", "b_o": "by"}  # cs231n's
COLUMN_NAMES = {"W_ih": "Wxh", "W_hh": "Whh", "b": "bh", "W_ho": "Why", "b_o": "by"}  # min-char-rnn's
SHAPES_TB = [(1, 1), (3, 2), (4, 1)]


def weights(seed: int = 0, biases: bool = True) -> dict[str, np.ndarray]:
    """Reference-convention weights, by role."""
    rng = np.random.default_rng(seed)
    w = {
        "W_ih": rng.normal(size=(I, H)),
        "W_hh": rng.normal(size=(H, H)) * 0.5,
        "W_ho": rng.normal(size=(H, O)),
    }
    if biases:
        w |= {"b": rng.normal(size=H), "b_o": rng.normal(size=O)}
    return w


def data(T: int, B: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, I)), rng.normal(size=(T, B, O))


def reference(w: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Every gradient the doctor compares, by the book: row vectors, time-major, h0 = 0."""
    T, B, _ = x.shape
    h = np.zeros((T + 1, B, H))
    for t in range(T):
        h[t + 1] = np.tanh(x[t] @ w["W_ih"] + h[t] @ w["W_hh"] + w.get("b", 0.0))
    dy = 2 * (h[1:] @ w["W_ho"] + w.get("b_o", 0.0) - y)  # (T, B, O)
    delta, dh_next = np.empty((T, B, H)), np.zeros((B, H))
    for t in reversed(range(T)):
        delta[t] = (dy[t] @ w["W_ho"].T + dh_next) * (1 - h[t + 1] ** 2)
        dh_next = delta[t] @ w["W_hh"].T
    g = {
        "W_ih": np.einsum("tbi,tbh->ih", x, delta),
        "W_hh": np.einsum("tbi,tbh->ih", h[:-1], delta),
        "W_ho": np.einsum("tbh,tbo->ho", h[1:], dy),
        "x": delta @ w["W_ih"].T,
        "h0": dh_next,
        "delta": delta,
    }
    if "b" in w:
        g |= {"b": delta.sum((0, 1)), "b_o": dy.sum((0, 1))}
    return g


def assert_gradients(got: dict[str, Any], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for role, value in want.items():
        np.testing.assert_allclose(got[role], value, rtol=1e-12, atol=1e-13, err_msg=role)


@pytest.mark.parametrize(("T", "B"), SHAPES_TB)
def test_the_reference_is_bptt_layers(T: int, B: int) -> None:
    """The reference above agrees with bptt's own RNN, Dense and MSELoss(reduction='sum')."""
    w, (x, y) = weights(), data(T, B)
    rnn, dense = bptt.RNN(I, H), bptt.Dense(H, O)
    for layer, names in ((rnn, ("W_ih", "W_hh", "b")), (dense, ("W", "b"))):
        for name, role in zip(names, ("W_ih", "W_hh", "b") if layer is rnn else ("W_ho", "b_o"), strict=True):
            layer.params[name][...] = w[role]
    _, dy = bptt.MSELoss(reduction="sum")(dense.forward(rnn.forward(x)), y)
    dx = rnn.backward(dense.backward(dy))
    want = reference(w, x, y)
    got = {"W_ih": rnn.grads["W_ih"], "W_hh": rnn.grads["W_hh"], "b": rnn.grads["b"]}
    got |= {"W_ho": dense.grads["W"], "b_o": dense.grads["b"], "x": dx, "h0": rnn.grad_h0}
    assert_gradients(got, {role: want[role] for role in got})


# --- learners in every convention ----------------------------------------------------------------


def steps_in(a: Any, data: str, column: bool) -> list[np.ndarray]:
    """The learner's reading of its ``x`` or ``y``: per-step rows (B, F), or columns (F, B)."""
    rows = {
        "sequence": lambda: [a_t[None, :] for a_t in a],
        "time-major": lambda: list(a),
        "batch-major": lambda: [a[:, t] for t in range(a.shape[1])],
        "steps": lambda: list(a),
        "column-steps": lambda: [a_t.T for a_t in a],
    }[data]()
    return [r.T for r in rows] if column else rows


def steps_out(steps: list[np.ndarray], data: str, column: bool) -> Any:
    """Per-step gradients back in the learner's data layout."""
    rows = [s.T for s in steps] if column else steps
    return {
        "sequence": lambda: np.stack([r[0] for r in rows]),
        "time-major": lambda: np.stack(rows),
        "batch-major": lambda: np.stack(rows, axis=1),
        "steps": lambda: rows,
        "column-steps": lambda: [r.T for r in rows],
    }[data]()


def row_bptt(w: dict[str, np.ndarray], xs: list[np.ndarray], ys: list[np.ndarray]) -> dict[str, Any]:
    """cs231n-style: h = tanh(x @ Wx + h @ Wh + b), ŷ = h @ Wy + by, per step (B, F)."""
    hs = [np.zeros((xs[0].shape[0], H))]
    for x_t in xs:
        hs.append(np.tanh(x_t @ w["Wx"] + hs[-1] @ w["Wh"] + w["b"]))
    g: dict[str, Any] = {f"d{k}": np.zeros_like(v) for k, v in w.items()}
    dxs, deltas, dh_next = [None] * len(xs), [None] * len(xs), np.zeros_like(hs[0])
    for t in reversed(range(len(xs))):
        dy = 2 * (hs[t + 1] @ w["Wy"] + w["by"] - ys[t])
        g["dWy"] += hs[t + 1].T @ dy
        g["dby"] += dy.sum(0)
        da = (dy @ w["Wy"].T + dh_next) * (1 - hs[t + 1] ** 2)
        g["dWx"] += xs[t].T @ da
        g["dWh"] += hs[t].T @ da
        g["db"] += da.sum(0)
        dxs[t], deltas[t], dh_next = da @ w["Wx"].T, da, da @ w["Wh"].T
    return g | {"dxs": dxs, "deltas": deltas, "dh0": dh_next}


def column_bptt(w: dict[str, np.ndarray], xs: list[np.ndarray], ys: list[np.ndarray]) -> dict[str, Any]:
    """min-char-rnn-style: h = tanh(Wxh @ x + Whh @ h + bh), ŷ = Why @ h + by, per step (F, B)."""
    hs = [np.zeros((H, xs[0].shape[1]))]
    for x_t in xs:
        hs.append(np.tanh(w["Wxh"] @ x_t + w["Whh"] @ hs[-1] + w["bh"]))
    g: dict[str, Any] = {f"d{k}": np.zeros_like(v) for k, v in w.items()}
    dxs, deltas, dh_next = [None] * len(xs), [None] * len(xs), np.zeros_like(hs[0])
    for t in reversed(range(len(xs))):
        dy = 2 * (w["Why"] @ hs[t + 1] + w["by"] - ys[t])
        g["dWhy"] += dy @ hs[t + 1].T
        g["dby"] += dy.sum(1, keepdims=True)
        da = (w["Why"].T @ dy + dh_next) * (1 - hs[t + 1] ** 2)
        g["dWxh"] += da @ xs[t].T
        g["dWhh"] += da @ hs[t].T
        g["dbh"] += da.sum(1, keepdims=True)
        dxs[t], deltas[t], dh_next = w["Wxh"].T @ da, da, w["Whh"].T @ da
    return g | {"dxs": dxs, "deltas": deltas, "dh0": dh_next}


def own_weights(layout: str, seed: int = 5) -> dict[str, np.ndarray]:
    """The learner's own arrays, random (the doctor overwrites them)."""
    rng = np.random.default_rng(seed)
    shapes = {"W_ih": (I, H), "W_hh": (H, H), "b": (H,), "W_ho": (H, O), "b_o": (O,)}
    if layout == "row":
        return {ROW_NAMES[role]: rng.normal(size=s) for role, s in shapes.items()}
    column = {"W_ih": (H, I), "W_hh": (H, H), "b": (H, 1), "W_ho": (O, H), "b_o": (O, 1)}
    return {COLUMN_NAMES[role]: rng.normal(size=s) for role, s in column.items()}


class Learner:
    """An object learner in ``layout`` taking ``data``; gradients in attributes ``dWx``, ``dx``,
    ``dh0``, ``deltas``."""

    def __init__(self, layout: str, data: str) -> None:
        self._layout, self._data = layout, data
        for name, value in own_weights(layout).items():
            setattr(self, name, value)

    def forward(self, x: Any) -> None:
        self._xs = steps_in(x, self._data, self._layout == "column")

    def backward(self, y: Any) -> None:
        column = self._layout == "column"
        names = COLUMN_NAMES if column else ROW_NAMES
        w = {name: getattr(self, name) for name in names.values()}
        g = (column_bptt if column else row_bptt)(w, self._xs, steps_in(y, self._data, column))
        for name in names.values():
            setattr(self, f"d{name}", g[f"d{name}"])
        self.dx = steps_out(g["dxs"], self._data, column)
        self.dh0, self.deltas = g["dh0"], g["deltas"]


def function_learner(layout: str, data: str) -> tuple[Callable[..., Any], dict[str, np.ndarray]]:
    """``f(x, y) -> {"dWx": ..., "dx": ..., "dh0": ..., "delta": [...]}`` reading ``w``."""
    w = own_weights(layout)
    column = layout == "column"

    def f(x: Any, y: Any) -> dict[str, Any]:
        core = column_bptt if column else row_bptt
        g = core(w, steps_in(x, data, column), steps_in(y, data, column))
        out = {f"d{name}": g[f"d{name}"] for name in w}
        return out | {"dx": steps_out(g["dxs"], data, column), "dh0": g["dh0"], "delta": g["deltas"]}

    return f, w


CONVENTIONS = [
    pytest.param(layout, d, kind, T, B, id=f"{layout}-{d}-{kind}-T{T}B{B}")
    for layout in ("row", "column")
    for d in DATA
    for kind in ("object", "function")
    for T, B in SHAPES_TB
    if not (d == "sequence" and B > 1)
]


@pytest.mark.parametrize(("layout", "data_", "kind", "T", "B"), CONVENTIONS)
def test_every_convention_gives_the_reference(layout: str, data_: str, kind: str, T: int, B: int) -> None:
    """Roles, layout and every gradient (weights, x, h0, per-step δ) come back as the reference's."""
    if kind == "object":
        learner: Any = Learner(layout, data_)
        p = probe(learner, SPEC, data=data_)
    else:
        f, w = function_learner(layout, data_)
        p = probe(f, SPEC, weights=w, data=data_)
    names = ROW_NAMES if layout == "row" else COLUMN_NAMES
    assert p.names == names
    assert p.shapes == {"W_ih": (I, H), "W_hh": (H, H), "b": (H,), "W_ho": (H, O), "b_o": (O,)}
    assert p.batched is (data_ != "sequence")
    w, (x, y) = weights(), data(T, B)
    got = p.run(w, x, y)
    assert_gradients(got, reference(w, x, y))
    extras = {"x": "dx", "h0": "dh0", "delta": "deltas" if kind == "object" else "delta"}
    assert {role: p.names[role] for role in extras} == extras
    assert (layout == "column") is p.convention.startswith("column vectors (W @ x)")


@pytest.mark.parametrize("data_", DATA)
def test_the_learner_gets_its_own_data_layout(data_: str) -> None:
    """x and y (at every step, and at the last only) reach the learner in its own layout."""
    T, B = 3, 1 if data_ == "sequence" else 2
    seen: list[Any] = []

    class Recorder:
        def __init__(self) -> None:
            self.Wx, self.Wh, self.Wy = np.zeros((I, H)), np.zeros((H, H)), np.zeros((H, O))

        def forward(self, x: Any) -> None:
            seen.append(x)

        def backward(self, y: Any) -> None:
            seen.append(y)

    x, y = data(T, B)
    want_x = {"sequence": x[:, 0], "time-major": x, "batch-major": x.transpose(1, 0, 2)}
    want_y = {"sequence": y[-1, 0], "column-steps": y[-1].T}
    for steps, target in (("every", y), ("last", y[-1])):
        seen.clear()
        probe(Recorder(), Spec(steps=steps), data=data_).run(weights(biases=False), x, target)
        got_x = np.stack(seen[0]) if isinstance(seen[0], list) else seen[0]
        expected = want_x.get(data_, x.transpose(0, 2, 1) if data_ == "column-steps" else x)
        np.testing.assert_array_equal(got_x, expected)
        assert isinstance(seen[0], list) is data_.endswith("steps")
        if steps == "last":
            np.testing.assert_array_equal(seen[1], want_y.get(data_, y[-1]))


# --- learners of other shapes --------------------------------------------------------------------


class Layer:
    def __init__(self, n_in: int, n_out: int, seed: int) -> None:
        self.W = np.random.default_rng(seed).normal(size=(n_in, n_out))


class SeedNet:
    """The seed's structure: one object per layer, each with its own ``W`` and ``dW``."""

    def __init__(self) -> None:
        self.input_layer, self.hidden_layer, self.output_layer = (
            Layer(I, H, 0),
            Layer(H, H, 1),
            Layer(H, O, 2),
        )

    def forward(self, x: np.ndarray) -> None:
        self._x = x

    def backward(self, y: np.ndarray) -> None:
        w = {"W_ih": self.input_layer.W, "W_hh": self.hidden_layer.W, "W_ho": self.output_layer.W}
        g = reference(w, self._x[:, None, :], y[:, None, :])
        for layer, role in (
            (self.input_layer, "W_ih"),
            (self.hidden_layer, "W_hh"),
            (self.output_layer, "W_ho"),
        ):
            layer.dW = g[role]
        self.hidden_layer.delta = g["delta"][:, 0]  # (T, H): the learner's one sequence


def test_one_object_per_layer_as_the_seed() -> None:
    p = probe(SeedNet(), SPEC)
    assert p.names == {"W_ih": "input_layer.W", "W_hh": "hidden_layer.W", "W_ho": "output_layer.W"}
    w, (x, y) = weights(biases=False), data(3, 1)
    got = p.run(w, x, y)
    want = reference(w, x, y)
    assert_gradients(got, {role: want[role] for role in ("W_ih", "W_hh", "W_ho", "delta")})
    assert p.names["delta"] == "hidden_layer.delta"


class LayersNet:
    """A learner built of bptt's layers: ``params``/``grads`` dicts and ``grad_h0``."""

    def __init__(self) -> None:
        self.rnn, self.out = bptt.RNN(I, H, rng=0), bptt.Dense(H, O, rng=1)

    def forward(self, x: np.ndarray) -> None:
        self._y = self.out.forward(self.rnn.forward(x))

    def backward(self, y: np.ndarray) -> np.ndarray:
        _, dy = bptt.MSELoss(reduction="sum")(self._y, y)
        return self.rnn.backward(self.out.backward(dy))


def test_a_learner_of_bptt_layers_with_params_and_grads_dicts() -> None:
    p = probe(LayersNet(), SPEC, data="time-major")
    assert p.names == {"W_ih": "rnn.W_ih", "W_hh": "rnn.W_hh", "b": "rnn.b", "W_ho": "out.W", "b_o": "out.b"}
    w, (x, y) = weights(), data(3, 2)
    want = reference(w, x, y)
    assert_gradients(
        p.run(w, x, y), {role: want[role] for role in ("W_ih", "W_hh", "b", "W_ho", "b_o", "h0")}
    )
    assert p.names["h0"] == "rnn.grad_h0"
    assert all("src/bptt" not in file for file in p.files) and p.files == (__file__,)


# --- telling the roles apart ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shape", "role"),
    [
        ("U", (H, I), "W_ih"),
        ("W", (H, H), "W_hh"),
        ("V", (O, H), "W_ho"),
        ("Wxh", (H, I), "W_ih"),
        ("Whh", (H, H), "W_hh"),
        ("Why", (O, H), "W_ho"),
        ("bh", (H, 1), "b"),
        ("by", (O, 1), "b_o"),
        ("c", (O,), "b_o"),
        ("Wx", (I, H), "W_ih"),
        ("Wh", (H, H), "W_hh"),
        ("b", (H,), "b"),
        ("W_ih", (I, H), "W_ih"),
        ("weight_hh_l0", (H, H), "W_hh"),
        ("input_layer.W", (I, H), "W_ih"),
        ("hidden.W", (H, H), "W_hh"),
        ("output_layer.weights", (H, O), "W_ho"),
        ("hidden.b", (H,), "b"),
        ("output_layer.b", (O,), "b_o"),
        ("layers.2.W", (H, O), None),
        ("W_input", (I, H), "W_ih"),
        ("hidden_weights", (H, H), "W_hh"),
        ("outputBias", (O,), "b_o"),
        ("bias_ho", (O,), "b_o"),  # regression: the generic "bias" took the hidden layer's b
        ("bias_ih", (H,), "b"),
        ("weight_ho", (H, O), "W_ho"),
        ("A", (H, H), None),
        ("mWxh", (H, I), None),
        ("U", (H,), None),
        ("b", (H, H), None),
    ],
)
def test_conventional_names(name: str, shape: tuple[int, ...], role: str | None) -> None:
    assert hint(name, shape) == role


@pytest.mark.parametrize(
    ("shapes", "names", "layout", "want"),
    [
        (
            {"U": (H, I), "W": (H, H), "V": (O, H)},
            None,
            None,
            ("column", {"W_ih": "U", "W_hh": "W", "W_ho": "V"}),
        ),
        (
            {"A": (I, H), "B": (H, H), "C": (H, O)},
            None,
            "row",
            ("row", {"W_ih": "A", "W_hh": "B", "W_ho": "C"}),
        ),
        (
            {"A": (I, H), "B": (H, H), "C": (H, O)},
            {"A": "W_ih"},
            None,
            ("row", {"W_ih": "A", "W_hh": "B", "W_ho": "C"}),
        ),
        # I = H: W_ho's shape tells the layout, names tell the squares apart
        (
            {"U": (H, H), "W": (H, H), "V": (H, O)},
            None,
            None,
            ("row", {"W_ih": "U", "W_hh": "W", "W_ho": "V"}),
        ),
        # min-char-rnn's adagrad memories mWxh ... have the weights' shapes; the names decide
        (
            {
                "Wxh": (H, I),
                "mWxh": (H, I),
                "Whh": (H, H),
                "mWhh": (H, H),
                "Why": (O, H),
                "bh": (H, 1),
                "p": (O, 1),
            },
            None,
            None,
            ("column", {"W_ih": "Wxh", "W_hh": "Whh", "W_ho": "Why", "b": "bh", "b_o": "p"}),
        ),
        # H = O: the biases by their names
        (
            {"Wx": (I, H), "Wh": (H, H), "Wy": (H, H), "bias_out": (H,), "bh": (H,)},
            None,
            None,
            ("row", {"W_ih": "Wx", "W_hh": "Wh", "W_ho": "Wy", "b": "bh", "b_o": "bias_out"}),
        ),
    ],
)
def test_assign(shapes: dict[str, Any], names: Any, layout: str | None, want: Any) -> None:
    assert assign(shapes, names, layout) == want


@pytest.mark.parametrize(
    ("shapes", "names", "layout", "words"),
    [
        (
            {"A": (2, 16), "B": (16, 16), "C": (16, 1)},
            None,
            None,
            [
                "cannot tell which of A (2, 16), C (16, 1) is W_ih",
                "names={'A': 'W_ih', ...}",
                "--map A=W_ih",
                "--layout",
            ],
        ),
        (
            {"A": (H, H), "B": (H, H), "C": (H, O)},
            None,
            "row",
            ["cannot tell which of A (4, 4), B (4, 4) is W_ih", "--map A=W_ih"],
        ),
        (
            {"A": (H, H), "B": (H, H), "C": (H, O)},
            None,
            None,
            ["cannot tell which of A (4, 4), B (4, 4), C (4, 2) is W_ih", "--layout"],
        ),
        (
            {"Wx": (I, H), "Wh": (H, H), "Wy": (H, H), "p": (H,), "q": (H,)},
            None,
            None,
            ["cannot tell which of p (4,), q (4,) is b", "--map p=b"],
        ),
        (
            {"U": (H, H), "W": (H, H), "V": (H, H)},
            None,
            None,
            ["cannot tell whether", "row vectors", "column vectors", "layout='row'", "--layout row"],
        ),
        (
            {"A": (I, H), "C": (H, O)},
            None,
            None,
            ["none of the learner's weights is square", "A (3, 4), C (4, 2)"],
        ),
        ({"A": (I, H), "B": (H, H), "C": (H, O)}, {"A": "W_hh"}, None, ["W_hh is square", "'A' (3, 4)"]),
        (
            {"A": (I, H), "B": (H, H), "C": (H, O)},
            {"Q": "W_ih"},
            None,
            ["'Q'", "not one of the learner's weights", "A (3, 4), B (4, 4), C (4, 2)"],
        ),
        (
            {"A": (I, H), "B": (H, H), "C": (H, O)},
            {"A": "W_xh"},
            None,
            ["'W_xh'", "no role", "W_ih, W_hh, b"],
        ),
        ({"A": (I, H), "B": (H, H), "C": (H, O)}, {"A": "W_ih", "C": "W_ih"}, None, ["two names for W_ih"]),
        (
            {"A": (I, H), "B": (H, H), "C": (H, O)},
            {"A": "W_ho"},
            "row",
            ["fit no RNN as row vectors", "'A': 'W_ho'"],
        ),
        ({"A": (I, H), "B": (H, H), "C": (5, 7)}, None, None, ["fit no RNN", "C (5, 7)"]),
    ],
)
def test_assign_refuses(shapes: dict[str, Any], names: Any, layout: str | None, words: list[str]) -> None:
    with pytest.raises(ValueError) as e:
        assign(shapes, names, layout)
    message = str(e.value)
    assert message.startswith("doctor: ") and "\n" not in message
    assert [w for w in words if w not in message] == []


def test_the_seed_example_message_and_its_answers() -> None:
    """Shapes alone cannot tell W_ih from W_ho (row (2, 16) or column (16, 1)); a name or a
    layout can."""

    class Net:
        def __init__(self) -> None:
            self.A, self.B, self.C = np.zeros((2, 16)), np.zeros((16, 16)), np.zeros((16, 1))

        def forward(self, x: Any) -> None: ...

        def backward(self, y: Any) -> None: ...

    with pytest.raises(ValueError, match=r"A \(2, 16\), C \(16, 1\) is W_ih"):
        probe(Net(), SPEC)
    assert probe(Net(), SPEC, names={"A": "W_ih"}).shapes["W_ih"] == (2, 16)
    assert probe(Net(), SPEC, layout="row").names["W_ih"] == "A"
    assert probe(Net(), SPEC, layout="column").names["W_ih"] == "C"


def test_which_arrays_can_be_weights() -> None:
    """Gradients beside weights, states and caches, private, int and 3-D arrays are left out; a
    params dict, layer objects and lists of them are searched; an array is named once."""

    class Child:
        def __init__(self) -> None:
            self.W, self.dW, self._cache = np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2))

    class Net:
        def __init__(self) -> None:
            self.U, self.grad_U, self.U_grad, self.d_U = (np.ones((3, 2)) for _ in range(4))
            self.h, self.hs, self.dx, self.dh0 = (
                np.ones((1, 2)),
                np.ones((3, 1, 2)),
                np.ones((3, 3)),
                np.ones((1, 2)),
            )
            self.bits, self.big = np.ones((2, 2), dtype=int), np.ones((2, 2, 2))
            self.params = {"V": np.ones((2, 1)), "U": self.U}
            self.hidden, self.layers = Child(), [Child(), 3]

    assert sorted(find_weights(Net())) == ["U", "V", "hidden.W", "layers.0.W"]
    assert sorted(find_weights(Net(), keep=["h"])) == ["U", "V", "h", "hidden.W", "layers.0.W"]
    with pytest.raises(ValueError, match=r"'big', which has 3 dimensions \(2, 2, 2\)"):
        find_weights(Net(), keep=["big"])
    with pytest.raises(ValueError, match=r"'bits', whose dtype is int"):
        find_weights(Net(), keep=["bits"])


# --- refusals -------------------------------------------------------------------------------------


class NoBackward:
    def __init__(self) -> None:
        self.W = np.zeros((H, H))

    def forward(self, x: Any) -> None: ...


class Empty:
    def forward(self, x: Any) -> None: ...

    def backward(self, y: Any) -> None: ...


def _read_only() -> Learner:
    learner = Learner("row", "time-major")
    learner.Wh.flags.writeable = False
    return learner


@pytest.mark.parametrize(
    ("make", "kwargs", "words"),
    [
        (lambda: Learner, {}, ["got the class Learner", "pass an instance, Learner()"]),
        (NoBackward, {}, ["has no backward", "forward(x) and backward(y)"]),
        (lambda: 3, {}, ["has no forward"]),
        (lambda: lambda x: x, {"weights": {"W": np.zeros((2, 2))}}, ["must take (x, y)"]),
        (lambda: lambda x, y: {}, {}, ["found no weights for <lambda>", "weights="]),
        (Empty, {}, ["found no weights for Empty", "params dict"]),
        (lambda: lambda x, y: {}, {"weights": {"W": [[1.0]]}}, ["weights['W'] is a list", "in place"]),
        (lambda: lambda x, y: {}, {"weights": {"W": np.zeros((2, 2, 2))}}, ["weights['W']", "3 dimensions"]),
        (lambda: lambda x, y: {}, {"weights": {"W": np.zeros((2, 2), int)}}, ["dtype is int64"]),
        (lambda: Learner("row", "steps"), {"layout": "rows"}, ["layout must be 'row' or 'column'", "'rows'"]),
        (lambda: Learner("row", "steps"), {"data": "batch"}, ["data must be one of sequence", "'batch'"]),
        (_read_only, {}, ["Wh is read-only"]),
    ],
)
def test_probe_refuses(make: Callable[[], Any], kwargs: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ValueError) as e:
        probe(make(), SPEC, **kwargs)
    assert [w for w in words if w not in str(e.value)] == [], str(e.value)


def test_run_refuses_what_the_learner_cannot_take() -> None:
    w, (x, y) = weights(), data(2, 2)
    with pytest.raises(ValueError, match=r"one sequence .data='sequence'., so B must be 1; got B = 2"):
        probe(Learner("row", "sequence"), SPEC).run(w, x, y)
    with pytest.raises(ValueError, match=r"run needs y \(2, 2\) \(steps='last'\); got \(2, 2, 2\)"):
        probe(Learner("row", "time-major"), Spec(steps="last"), data="time-major").run(w, x, y)
    f, own = function_learner("row", "time-major")
    with pytest.raises(ValueError, match="the function returned a tuple; expected a dict"):
        probe(lambda x, y: tuple(f(x, y).values()), SPEC, weights=own, data="time-major").run(w, x, y)


# --- copies, shapes passed through, exceptions ------------------------------------------------------


class Accumulating:
    """Forgets to reset: ``dWx += ...`` across calls, into the same arrays."""

    def __init__(self) -> None:
        self.Wx, self.Wh, self.Wy = np.zeros((I, H)), np.zeros((H, H)), np.zeros((H, O))
        self.dWx, self.dWh, self.dWy = np.zeros((I, H)), np.zeros((H, H)), np.zeros((H, O))

    def forward(self, x: np.ndarray) -> None:
        self._x = x

    def backward(self, y: np.ndarray) -> None:
        g = reference({"W_ih": self.Wx, "W_hh": self.Wh, "W_ho": self.Wy}, self._x, y)
        self.dWx += g["W_ih"]
        self.dWh += g["W_hh"]
        self.dWy += g["W_ho"]


def test_gradients_are_copies_so_accumulation_shows() -> None:
    p = probe(Accumulating(), SPEC, data="time-major")
    w, (x, y) = weights(biases=False), data(3, 2)
    first = p.run(w, x, y)
    kept = copy.deepcopy(first)
    second = p.run(w, x, y)
    for role in ("W_ih", "W_hh", "W_ho"):
        np.testing.assert_array_equal(first[role], kept[role])
        np.testing.assert_allclose(second[role], 2 * first[role], rtol=1e-14)
        np.testing.assert_allclose(first[role], reference(w, x, y)[role], rtol=1e-12)


def test_a_learner_that_rebinds_its_weights_is_still_reached() -> None:
    """``self.Wx = self.Wx - lr * dWx`` in backward: the next run writes into the new array."""

    class Stepping(Learner):
        def backward(self, y: Any) -> None:
            super().backward(y)
            for name in ROW_NAMES.values():
                setattr(self, name, getattr(self, name) - 0.1 * getattr(self, f"d{name}"))

    p = probe(Stepping("row", "time-major"), SPEC, data="time-major")
    w, (x, y) = weights(), data(3, 2)
    first, second = p.run(w, x, y), p.run(w, x, y)
    assert_gradients(second, first)


def test_wrong_shapes_pass_through_and_learner_transposes_stay_visible() -> None:
    """A shape the convention does not give is passed on as returned; a column learner's
    transposed ``dU`` arrives transposed; an unsummed bias gradient arrives as ``(B, H)``."""
    own = own_weights("column")
    T, B = 3, 2
    wrong = {
        "dWxh": np.arange(float(I * H)).reshape(I, H),  # transposed: (I, H) for Wxh (H, I)
        "dWhh": np.ones((1, 2)),  # the seed's shape: fits nothing
        "dbh": np.arange(float(H * B)).reshape(H, B),  # not summed over the batch
        "dx": np.ones((T, B + 1, I)),
        "delta": [np.ones((H, B)), np.ones((H, B + 1))],  # ragged
    }
    p = probe(lambda x, y: wrong, SPEC, weights=own, data="column-steps")
    got = p.run(weights(), *data(T, B))
    np.testing.assert_array_equal(got["W_ih"], wrong["dWxh"].T)
    np.testing.assert_array_equal(got["W_hh"], wrong["dWhh"])
    np.testing.assert_array_equal(got["b"], wrong["dbh"].T)
    np.testing.assert_array_equal(got["x"], wrong["dx"])
    assert isinstance(got["delta"], list) and [d.shape for d in got["delta"]] == [(H, B), (H, B + 1)]
    row = probe(
        lambda x, y: {"dWx": np.ones((H, I)), "db": np.ones((B, H))},
        SPEC,
        weights=own_weights("row"),
        data="time-major",
    ).run(weights(), *data(T, B))
    assert row["W_ih"].shape == (H, I) and row["b"].shape == (B, H)


def test_the_learners_exception_propagates_unchanged() -> None:
    class Broken(Learner):
        def backward(self, y: Any) -> None:
            self.error = ValueError("shapes (1,2) and (16,16) not aligned")
            raise self.error

    learner = Broken("row", "time-major")
    with pytest.raises(ValueError) as e:
        probe(learner, SPEC, data="time-major").run(weights(), *data(2, 1))
    assert e.value is learner.error
    assert e.traceback[-1].name == "backward"


# --- call forms, gradient sources, function weights, words for the report -----------------------------


def test_call_forms_follow_the_parameters() -> None:
    calls: list[str] = []

    class XY:
        def __init__(self) -> None:
            self.Wx, self.Wh, self.Wy = np.zeros((I, H)), np.zeros((H, H)), np.zeros((H, O))

        def forward(self, x: Any, y: Any) -> None:
            calls.append("forward(x, y)")

        def backward(self) -> None:
            calls.append("backward()")

    class BackwardXY(XY):
        def forward(self, x: Any) -> None:  # type: ignore[override]
            calls.append("forward(x)")

        def backward(self, x: Any, y: Any, lr: float = 0.1) -> None:  # type: ignore[override]
            calls.append("backward(x, y)")

    for cls, want in ((XY, ["forward(x, y)", "backward()"]), (BackwardXY, ["forward(x)", "backward(x, y)"])):
        calls.clear()
        p = probe(cls(), SPEC)
        p.run(weights(biases=False), *data(2, 1))
        assert calls == want
        assert p.convention.endswith(" then ".join(want))


def test_gradients_callable_and_returned_dict() -> None:
    learner = Learner("row", "time-major")
    w, (x, y) = weights(), data(2, 2)
    want = reference(w, x, y)

    def grads() -> dict[str, Any]:
        return {"grad_Wx": learner.dWx, "W_hh": learner.dWh}  # its own name's form, and a role

    got = probe(learner, SPEC, data="time-major", gradients=grads).run(w, x, y)
    assert_gradients(got, {"W_ih": want["W_ih"], "W_hh": want["W_hh"]})


def test_a_function_reads_its_weights_from_globals_and_closures() -> None:
    """Without weights=, a function's arrays are found where it reads them: its closure, its
    globals and the dicts among them."""
    f, own = function_learner("row", "time-major")
    namespace: dict[str, Any] = {
        "f": f,
        "params": {"Wx": own["Wx"], "Wh": own["Wh"]},
        "Wy": own["Wy"],
        "b": own["b"],
    }
    namespace["by"] = own["by"]
    exec("def g(x, y):\n    params, Wy, b, by\n    return f(x, y)\n", namespace)
    p = probe(namespace["g"], SPEC, data="time-major")
    assert p.names == ROW_NAMES
    w, (x, y) = weights(), data(2, 2)
    assert_gradients(p.run(w, x, y), reference(w, x, y))
    assert probe(f, SPEC, data="time-major").names == ROW_NAMES  # the closure over w's arrays


@pytest.mark.parametrize("layout", ["row", "column"])
def test_shapes_and_words_for_the_report(layout: str) -> None:
    data_ = "column-steps" if layout == "column" else "batch-major"
    p = probe(Learner(layout, data_), SPEC, data=data_)
    column = layout == "column"
    assert p.learner_shape("W_ih", (I, H)) == ((H, I) if column else (I, H))
    assert p.learner_shape("b", (H,)) == ((H, 1) if column else (H,))
    assert p.learner_shape("h0", (2, H)) == ((H, 2) if column else (2, H))
    assert p.learner_shape("x", (5, 2, I)) == ((5, I, 2) if column else (2, 5, I))
    assert p.learner_shape("delta", (5, 2, H)) == ((5, H, 2) if column else (2, 5, H))
    words = "column vectors (W @ x), a list of T column steps x_t (I, B)" if column else "row vectors (x @ W)"
    assert p.convention.startswith(words)
    assert p.files == (__file__,)
    assert Path(p.files[0]).name == "test_doctor_adapter.py"
