"""bptt.explain: generated from the layers, every printed term evaluated and equal to backward's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import bptt
from bptt.cli import main

Build = Callable[[np.random.Generator], tuple[bptt.Sequential, np.ndarray, bptt.Loss]]


def _seed(rng: np.random.Generator) -> tuple[bptt.Sequential, np.ndarray, bptt.Loss]:
    rnn = bptt.RNN(8, 16, activation="identity", bias=False, rng=rng)
    rnn.h0 = rng.normal(0, 0.01, (1, 16))
    layers = [rnn, bptt.Last(), bptt.Sigmoid(), bptt.Dense(16, 8, bias=False, rng=rng), bptt.Sigmoid()]
    return bptt.Sequential(layers), rng.normal(0, 0.01, (2, 1, 8)), bptt.MSELoss("sum")


def _adder(rng: np.random.Generator) -> tuple[bptt.Sequential, np.ndarray, bptt.Loss]:
    model = bptt.Sequential([bptt.RNN(2, 6, rng=rng), bptt.Dense(6, 1, rng=rng)])
    return model, rng.integers(0, 2, (5, 3, 2)).astype(float), bptt.BCEWithLogitsLoss()


def _stacked(rng: np.random.Generator) -> tuple[bptt.Sequential, np.ndarray, bptt.Loss]:
    layers = [
        bptt.RNN(3, 5, activation="tanh", rng=rng),
        bptt.Tanh(),
        bptt.RNN(5, 4, activation="relu", rng=rng),
        bptt.Dense(4, 3, rng=rng),
    ]
    return bptt.Sequential(layers), rng.normal(size=(4, 2, 3)), bptt.CrossEntropyLoss()


def _many_to_one(rng: np.random.Generator) -> tuple[bptt.Sequential, np.ndarray, bptt.Loss]:
    layers = [
        bptt.RNN(2, 3, activation="sigmoid", rng=rng),
        bptt.Last(),
        bptt.ReLU(),
        bptt.Dense(3, 2, rng=rng),
    ]
    return bptt.Sequential(layers), rng.normal(size=(6, 4, 2)), bptt.MSELoss()


def _one_step(rng: np.random.Generator) -> tuple[bptt.Sequential, np.ndarray, bptt.Loss]:
    return (
        bptt.Sequential([bptt.RNN(1, 2, rng=rng), bptt.Dense(2, 1, rng=rng)]),
        rng.normal(size=(1, 1, 1)),
        bptt.MSELoss(),
    )


def _gated(rng: np.random.Generator) -> tuple[bptt.Sequential, np.ndarray, bptt.Loss]:
    layers = [bptt.GRU(3, 4, rng=rng), bptt.LSTM(4, 5, rng=rng), bptt.Last(), bptt.Dense(5, 2, rng=rng)]
    lstm = layers[1]
    assert isinstance(lstm, bptt.LSTM)
    lstm.h0, lstm.c0 = rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    return bptt.Sequential(layers), rng.normal(size=(4, 2, 3)), bptt.MSELoss()


def _gated_no_bias(rng: np.random.Generator) -> tuple[bptt.Sequential, np.ndarray, bptt.Loss]:
    layers = [
        bptt.LSTM(2, 3, bias=False, rng=rng),
        bptt.GRU(3, 3, bias=False, rng=rng),
        bptt.Dense(3, 1, rng=rng),
    ]
    return bptt.Sequential(layers), rng.normal(size=(3, 1, 2)), bptt.BCEWithLogitsLoss()


ARCHITECTURES: dict[str, Build] = {
    "seed": _seed,
    "gated": _gated,
    "gated without bias": _gated_no_bias,
    "adder": _adder,
    "stacked": _stacked,
    "many-to-one": _many_to_one,
    "T=1 B=1": _one_step,
}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_term_sums_to_backwards_gradients(name: str) -> None:
    """Each printed sum of outer products equals backward's gradient to 1e-12; so does every relation."""
    model, x, loss = ARCHITECTURES[name](np.random.default_rng(1))
    ex = bptt.explain(model, x, loss_fn=loss)
    assert {g.param for g in ex.gradients} == set(model.params)
    for g in ex.gradients:
        assert g.total.shape == g.shape == model.params[g.param].shape
        assert len(g.terms) == (
            1 if "Last" in repr(model) and g.param.startswith(("3.", "4.")) else len(g.terms)
        )
    errors = ex.errors()
    assert len(errors) > len(ex.gradients)  # relations are checked too
    assert max(errors.values()) <= 1e-12, errors
    for line in ex.forward + ex.backward:
        assert line.value is None or np.all(np.isfinite(line.value))


def test_the_seed_network_reads_like_the_issue() -> None:
    """The forward equations carry the operands' shapes, e.g. a_2 = x_2 @ W_ih + h_1 @ W_hh."""
    model, x, loss = _seed(np.random.default_rng(0))
    text = str(bptt.explain(model, x, loss_fn=loss))
    assert "a_2 = x_2 @ W_ih + h_1 @ W_hh" in text
    assert "(1,8)@(8,16) + (1,16)@(16,16) -> (1,16)" in text
    assert "dW_hh [layer 0] = h_0ᵀ·δa_1 + h_1ᵀ·δa_2" in text
    assert "exactly W_ih's own shape (8,16) ✓" in text
    assert "δh_1 = ∂L/∂h_1 from its output + δa_2 @ W_hhᵀ from step 2" in text


def test_text_is_generated_from_the_layers() -> None:
    """Other sizes and depths give other equations: nothing is canned."""
    rng = np.random.default_rng(0)
    model = bptt.Sequential([bptt.RNN(3, 5, rng=rng), bptt.RNN(5, 7, rng=rng), bptt.Dense(7, 2, rng=rng)])
    text = str(bptt.explain(model, rng.normal(size=(3, 2, 3))))
    assert "a_3 = x_3 @ W_ih + h_2 @ W_hh + b" in text
    assert "a2_1 = h_1 @ W_ih + h2_0 @ W_hh + b" in text
    assert "(2,5)@(5,7) + (2,7)@(7,7) + (7,) -> (2,7)" in text
    assert "exactly W_hh's own shape (7,7) ✓" in text


def test_a_wrong_engine_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """If backward's dW_hh disagreed with the printed sum, max_error would show it."""
    original = bptt.RNN.backward

    def skewed(self: bptt.RNN, grad_y: np.ndarray) -> np.ndarray:
        out = original(self, grad_y)
        self.grads["W_hh"] *= 1.001
        return out

    monkeypatch.setattr(bptt.RNN, "backward", skewed)
    model, x, loss = _adder(np.random.default_rng(2))
    errors = bptt.explain(model, x, loss_fn=loss).errors()
    assert errors["0.W_hh"] > 1e-4
    assert errors["0.W_ih"] <= 1e-12


def test_mistakes_show_numpys_verdict() -> None:
    """The typical wrong products: a missing transpose on square W_hh runs but is wrong; the rest raise."""
    model, x, loss = _seed(np.random.default_rng(0))
    mistakes = {m.wrong: m for m in bptt.explain(model, x, loss_fn=loss).mistakes}
    assert "wrong" in mistakes["δa_2 @ W_hh"].outcome
    assert mistakes["W_hh @ δa_2"].outcome.startswith("ValueError")
    assert "16 (columns of the left) ≠ 1 (rows of the right)" in mistakes["W_hh @ δa_2"].outcome
    assert mistakes["δo @ W_hh"].outcome.startswith("ValueError")  # the seed's own mismatch
    assert bptt.explain(model, x, loss_fn=loss, mistakes=False).mistakes == []


def test_explain_refuses_bad_input() -> None:
    """x must be a (T, B, I) sequence."""
    model, _, _ = _adder(np.random.default_rng(0))
    with pytest.raises(bptt.ShapeError, match=r"\(T, B, I\)"):
        bptt.explain(model, np.zeros((3, 2)))


def test_cli_explains_the_seed_network_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    """`bptt explain` with no arguments: input 8, hidden 16, output 8, two steps."""
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    assert "RNN(input_size=8, hidden_size=16, activation='identity', bias=False" in out
    assert "(1,8)@(8,16) + (1,16)@(16,16) -> (1,16)" in out
    assert "exactly W_hh's own shape (16,16) ✓" in out
    assert "Products a learner" not in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["explain", "--mistakes"], "✗ W_hh @ δa_2"),
        (
            ["explain", "--hidden", "5", "--steps", "3", "--activation", "tanh"],
            "a_3 = x_3 @ W_ih + h_2 @ W_hh",
        ),
        (["explain", "--model", str(bptt.cli.shipped_model())], "activation='tanh'"),
    ],
)
def test_cli_options(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--mistakes, sizes and --model change what is explained."""
    assert main(argv) == 0
    assert needle in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [["explain", "--steps", "0"], ["explain", "--activation", "softmax"], ["explain", "--model", "nope.npz"]],
)
def test_cli_bad_input(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad values exit 2 with one line on stderr."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_gated_cells_show_each_gates_share() -> None:
    """LSTM and GRU explanations print the gate equations and each gate's part of δ."""
    model, x, loss = _gated(np.random.default_rng(0))
    text = str(bptt.explain(model, x, loss_fn=loss))
    assert "n_1 = tanh(â_n + r ⊙ ĥ_n)" in text
    assert "c2_1 = f ⊙ c2_0 + i ⊙ g" in text
    assert "δc ⊙ g ⊙ i(1-i) | δc ⊙ c_{t-1} ⊙ f(1-f) | δc ⊙ i ⊙ (1-g²) | δh ⊙ tanh(c) ⊙ o(1-o)" in text
    assert "δh_2 = ∂L/∂h_2 from its output + δh_3 ⊙ z_3 + δĥ_3 @ W_hhᵀ" in text
    assert "exactly b_hn's own shape (4,) ✓" in text


def test_a_layer_without_lines_of_its_own_gets_the_generic_ones() -> None:
    """Bidirectional writes no lines itself: the protocol's ``v_t = Name(u_1..T)`` and its gradients."""
    rng = np.random.default_rng(0)
    model = bptt.Sequential([bptt.Bidirectional(bptt.GRU(2, 3, rng=0), rng=1), bptt.Dense(6, 1, rng=2)])
    ex = bptt.explain(model, rng.normal(size=(3, 2, 2)))
    text = str(ex)
    assert "s_t = Bidirectional(x_1..3)" in text
    assert "δx_t = Bidirectional.backward(δs_t)" in text
    assert "exactly W_hh's own shape (3,9) ✓" in text
    assert {g.param for g in ex.gradients} == set(model.params)
    assert ex.max_error() <= 1e-12


def test_explain_refuses_what_is_not_a_layer() -> None:
    """Any bptt layer is explained; anything else is a TypeError."""
    with pytest.raises(TypeError, match="must be a bptt layer"):
        bptt.explain(object(), np.zeros((2, 1, 2)))  # type: ignore[arg-type]
