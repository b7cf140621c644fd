"""The doctor on learners whose code raises: the failing product, its operands, the right product.

The learners here are small and written the way the seed's was (one class per layer, each with a
``backward``), driven through a ``Probe`` built by hand, so these tests do not depend on the
adapter. The seed's own mistake: in the input layer's backward, the input's δ ``(1, 2)`` meets
the hidden weight ``W_hh (16, 16)`` and NumPy raises.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from bptt.doctor.crash import analyse, right_product
from bptt.doctor.diagnose import diagnose, make_data
from bptt.doctor.evaluate import CannotEvaluate, evaluate
from bptt.doctor.probe import Probe
from bptt.doctor.spec import Spec
from bptt.doctor.variants import backprop

SEED_SPEC = Spec("sigmoid", "sigmoid", "half_mse")


def sigmoid(z: Any) -> Any:
    return 1 / (1 + np.exp(-z))


# --- the seed's network: one class per layer, one sequence as a list of (1, F) rows ----------------
class InputLayer:
    def __init__(self, W: Any, column: bool = False) -> None:
        self.W, self.column = W, column

    def backward(self, delta_hidden: Any, W_hidden: Any) -> Any:
        delta_pre_hidden = delta_hidden @ self.W.T  # the input's δ, (1, I)
        return np.dot(delta_pre_hidden, W_hidden)  # the seed's mistake: (1, I) @ (H, H)


class HiddenLayer:
    def __init__(self, W: Any) -> None:
        self.W = W


class OutputLayer:
    def __init__(self, W: Any) -> None:
        self.W = W


class SeedRNN:
    """The seed's 2-16-1 adder shape, sigmoid everywhere, ½ squared error: its input layer fails."""

    def __init__(self, W_ih: Any, W_hh: Any, W_ho: Any) -> None:
        self.input, self.hidden, self.output = InputLayer(W_ih), HiddenLayer(W_hh), OutputLayer(W_ho)

    def run(self, xs: list[Any], ys: list[Any]) -> dict[str, Any]:
        h = [np.zeros((1, self.hidden.W.shape[0]))]
        out = []
        for x_t in xs:
            h.append(sigmoid(x_t @ self.input.W + h[-1] @ self.hidden.W))
            out.append(sigmoid(h[-1] @ self.output.W))
        dW_ho = np.zeros_like(self.output.W)
        dh_next = np.zeros_like(h[0])
        for t in reversed(range(len(xs))):
            d_out = (out[t] - ys[t]) * out[t] * (1 - out[t])
            dW_ho += h[t + 1].T @ d_out
            delta_hidden = (d_out @ self.output.W.T + dh_next) * h[t + 1] * (1 - h[t + 1])
            dh_next = self.input.backward(delta_hidden, self.hidden.W)
        return {"W_ho": dW_ho}


def seed_probe(I: int = 2, H: int = 16, O: int = 1) -> Probe:
    shapes = {"W_ih": (I, H), "W_hh": (H, H), "W_ho": (H, O)}
    net = SeedRNN(np.zeros(shapes["W_ih"]), np.zeros(shapes["W_hh"]), np.zeros(shapes["W_ho"]))

    def run(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
        net.input.W[...], net.hidden.W[...], net.output.W[...] = (
            weights["W_ih"],
            weights["W_hh"],
            weights["W_ho"],
        )
        return net.run(list(x), list(y))

    names = {"W_ih": "input.W", "W_hh": "hidden.W", "W_ho": "output.W"}
    return Probe(
        shapes,
        names,
        False,
        run,
        lambda r, s: s,
        "row vectors (x @ W), one sequence as a list of (1, I) steps",
        (__file__,),
    )


def test_the_seeds_mistake_is_named_and_the_right_term_printed() -> None:
    report = diagnose(seed_probe(), SEED_SPEC)
    assert not report.healthy and report.crashed
    assert [d.key for d in report.diagnoses] == ["seed-shape-mistake"]
    d = report.diagnoses[0]
    assert d.number == 9
    assert "delta_pre_hidden" in d.wrong and "W_hidden" in d.wrong
    assert "that is δx_5 @ W_hh   (1,2) @ (16,16): ValueError" in d.wrong
    assert d.right.splitlines()[0] == "δh_{t-1} = δa_t @ W_hhᵀ   (1,16)@(16,16) -> (1,16)"
    assert d.right.splitlines()[1] == "dW_ih = Σ_t x_tᵀ·δa_t   each (2,1)·(1,16) -> (2,16)"
    assert d.steps == (5,)  # the first step BPTT reaches: the last
    text = str(report)
    assert "delta_pre_hidden (1,2) is δx_5 = δa_5 @ W_ihᵀ, the input's δ" in text
    assert "W_hidden (16,16) is W_hh, the hidden-to-hidden weight" in text
    line = _line_of("return np.dot(delta_pre_hidden, W_hidden)")
    assert report.crash[0] == f"your code raised ValueError: {_NUMPY_DOT_ERROR}"
    where = f"  at test_doctor_crash.py:{line}: return np.dot(delta_pre_hidden, W_hidden)"
    assert report.crash[1].startswith(where)
    assert "δh_2 = ∂L/∂h_2 from its output + δa_3 @ W_hhᵀ from step 3" in text  # bptt explain's line
    assert len(text.splitlines()) <= 40


_NUMPY_DOT_ERROR = "shapes (1,2) and (16,16) not aligned: 2 (dim 1) != 16 (dim 0)"


def _line_of(source: str) -> int:
    with open(__file__, encoding="utf-8") as f:
        return next(i for i, line in enumerate(f, 1) if source in line and "_line_of" not in line)


@pytest.mark.parametrize(("I", "H", "O"), [(2, 16, 1), (3, 5, 2), (8, 16, 8)])
def test_the_seeds_mistake_at_other_sizes(I: int, H: int, O: int) -> None:
    """Any input size other than H: the input's δ cannot meet W_hh."""
    report = diagnose(seed_probe(I, H, O), SEED_SPEC)
    assert report.keys == ["seed-shape-mistake"]
    assert f"({1},{I}) @ ({H},{H})" in report.diagnoses[0].wrong


# --- other products that fail ------------------------------------------------------------------------
def _probe(
    run: Callable[..., dict[str, Any]], I: int = 2, H: int = 4, O: int = 3, column: bool = False
) -> Probe:
    shapes = {"W_ih": (I, H), "W_hh": (H, H), "W_ho": (H, O)}

    def learner_shape(role: str, s: tuple[int, ...]) -> tuple[int, ...]:
        return s[::-1] if column and role.startswith("W_") else s

    return Probe(shapes, {r: r for r in shapes}, False, run, learner_shape, "a test learner", (__file__,))


def _deltas(weights: Mapping[str, Any], x: Any, y: Any) -> Any:
    return backprop(Spec(), weights, x, y)


def wrong_side(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
    da = _deltas(weights, x, y).da
    W_hh = weights["W_hh"]
    dh_prev = W_hh @ da[-1]  # multiplied on the wrong side: (4, 4) @ (1, 4)
    return {"W_hh": dh_prev}


def outer_as_inner(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
    p = _deltas(weights, x, y)
    dW_ih = np.zeros_like(weights["W_ih"])
    for t in range(len(x)):
        x_t, da_t = x[t], p.da[t]
        dW_ih += x_t @ da_t  # an inner product where the outer xᵀ·δ is due
    return {"W_ih": dW_ih}


def outer_the_wrong_way(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
    p = _deltas(weights, x, y)
    grads = {"W_ih": np.zeros_like(weights["W_ih"])}
    for t in range(len(x)):
        grads["W_ih"] += p.da[t].T @ x[t]  # (H, I) added to (I, H)
    return grads


def not_a_product(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
    raise KeyError("dWxh")


def test_a_product_on_the_wrong_side() -> None:
    report = diagnose(_probe(wrong_side), Spec())
    assert report.crashed and report.diagnoses == []  # a shape error, but not the seed's
    text = "\n".join(report.crash + report.findings)
    assert "W_hh @ da[-1], that is W_hh @ δa_5   (4,4) @ (1,4): ValueError, inner sizes 4 (columns of" in text
    assert "W_hh (4,4) is W_hh," in text and "da[-1] (1,4) is δa_5," in text
    assert "δh_{t-1} = δa_t @ W_hhᵀ   (1,4)@(4,4) -> (1,4)" in text


def test_an_inner_product_where_the_outer_is_due() -> None:
    report = diagnose(_probe(outer_as_inner), Spec())
    text = "\n".join(report.crash + report.findings)
    assert "x_t @ da_t, that is x_1 @ δa_1   (1,2) @ (1,4)" in text
    assert "x_t (1,2) is x_1" in text and "da_t (1,4) is δa_1" in text
    assert "dW_ih = Σ_t x_tᵀ·δa_t   each (2,1)·(1,4) -> (2,4)" in text


def test_an_outer_product_the_wrong_way_round() -> None:
    report = diagnose(_probe(outer_the_wrong_way), Spec())
    text = "\n".join(report.crash + report.findings)
    assert 'grads["W_ih"] += p.da[t].T @ x[t]' in text
    assert "(2,4) += (4,2): ValueError, shapes that cannot be combined elementwise" in text


def test_any_other_exception_is_shown_with_its_place_and_line() -> None:
    report = diagnose(_probe(not_a_product), Spec())
    assert report.crashed and not report.healthy and report.diagnoses == []
    line = _line_of('raise KeyError("dWxh")')
    assert report.crash == [
        "your code raised KeyError: 'dWxh'",
        f'  at test_doctor_crash.py:{line}: raise KeyError("dWxh")',
    ]


def column_backward(W_hidden: Any, delta_input: Any) -> Any:
    return np.dot(W_hidden, delta_input)  # column vectors: (H, H) @ (I, 1)


def test_column_layout_prints_the_right_product_in_columns() -> None:
    """``W @ x`` learners get ``W_hhᵀ @ δa_t`` on (H, B) columns, and the seed's mistake by size."""
    data = make_data(_probe(wrong_side, I=2, H=16, O=1), Spec())
    ref = backprop(Spec(), data.weights, data.x, data.y)
    with pytest.raises(ValueError) as info:
        column_backward(data.weights["W_hh"].T, np.ones((2, 1)))
    crash = analyse(info.value, (__file__,), ref, data.weights, data.x, True)
    assert [op.name for op in crash.operands] == ["W_hhᵀ", ""]
    assert crash.operands[1].size == "I" and "has the input's size" in crash.lines()[-1]
    assert crash.seed
    assert crash.right.splitlines() == [
        "δh_{t-1} = W_hhᵀ @ δa_t   (16,16)@(16,1) -> (16,1)",
        "dW_ih = Σ_t δa_t·x_tᵀ   each (16,1)·(1,2) -> (16,2)",
    ]
    text, seed = right_product(crash.operands, {"I": 2, "H": 16, "O": 1}, 1, column=False)
    assert seed and text.splitlines()[0] == "δh_{t-1} = δa_t @ W_hhᵀ   (1,16)@(16,16) -> (1,16)"


# --- the evaluator runs nothing of the learner's -----------------------------------------------------
class Sneaky:
    def __init__(self) -> None:
        self.W = np.eye(2)
        self.calls = 0

    @property
    def grad(self) -> Any:
        self.calls += 1
        return self.W

    def method(self) -> Any:
        self.calls += 1
        return self.W


def test_the_evaluator_reads_data_and_runs_no_code() -> None:
    obj = Sneaky()
    env = {"obj": obj, "np": np, "xs": [np.ones(2), np.zeros(2)], "t": 1}
    assert np.array_equal(evaluate(ast.parse("obj.W.T @ xs[t - 1]", mode="eval").body, env), np.ones(2))
    for expr in ("obj.grad", "obj.method()", "open('x')", "__import__('os')"):
        with pytest.raises(CannotEvaluate):
            evaluate(ast.parse(expr, mode="eval").body, env)
    assert obj.calls == 0
