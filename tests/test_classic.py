"""The classic preset beside an independent single-sample loop of the well-known recipe.

``classic_update`` and ``classic_loop`` are that recipe as it is usually told, written here from
its description: weights ``2·random - 1`` drawn in the order input, output, recurrent; one random
pair of operands below ``2**(n_bits-1)`` per step, so every sum fits in ``n_bits``; a forward pass
position by position (least significant bit first) from a zero hidden state, sigmoid everywhere;
output deltas ``(y - ŷ)·ŷ(1 - ŷ)``; a backward pass that accumulates the weight updates over the
sequence; then ``W += update · alpha`` once per sequence. ``benchmarks/classic_study.py`` runs it
over 20 seeds beside ``train(preset="classic")``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bptt.tasks.addition import PRESETS, accuracy, build_model, operand_width, train
from bptt.tasks.addition.bits import all_pairs, sum_bits

ALPHA = 0.1


def logistic(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def classic_init(rng: np.random.RandomState, hidden: int) -> dict[str, np.ndarray]:
    """The recipe's weights: ``2·random - 1``, input then output then recurrent."""
    W_in = 2 * rng.random_sample((2, hidden)) - 1
    W_out = 2 * rng.random_sample((hidden, 1)) - 1
    W_rec = 2 * rng.random_sample((hidden, hidden)) - 1
    return {"in": W_in, "out": W_out, "rec": W_rec}


def classic_forward(
    W: dict[str, np.ndarray], a: int, b: int, n_bits: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hidden states ``(1, H)`` from a zero state, and outputs ``(1, 1)``, position by position."""
    layer_1 = [np.zeros((1, W["rec"].shape[0]))]  # a fresh zero state for every sequence
    layer_2 = []
    for pos in range(n_bits):  # least significant bit first
        X = np.array([[(a >> pos) & 1, (b >> pos) & 1]], dtype=np.float64)
        layer_1.append(logistic(X @ W["in"] + layer_1[-1] @ W["rec"]))
        layer_2.append(logistic(layer_1[-1] @ W["out"]))
    return layer_1, layer_2


def classic_update(W: dict[str, np.ndarray], a: int, b: int, n_bits: int) -> dict[str, np.ndarray]:
    """What one sequence ``a + b`` adds to each weight: ``alpha`` times the accumulated updates."""
    layer_1, layer_2 = classic_forward(W, a, b, n_bits)
    deltas_2 = [(((a + b) >> pos & 1) - out) * out * (1 - out) for pos, out in enumerate(layer_2)]
    upd = {k: np.zeros_like(v) for k, v in W.items()}
    future_delta_1 = np.zeros_like(layer_1[0])
    for pos in range(n_bits - 1, -1, -1):
        X = np.array([[(a >> pos) & 1, (b >> pos) & 1]], dtype=np.float64)
        h, h_prev = layer_1[pos + 1], layer_1[pos]
        delta_1 = (future_delta_1 @ W["rec"].T + deltas_2[pos] @ W["out"].T) * h * (1 - h)
        upd["out"] += h.T @ deltas_2[pos]
        upd["rec"] += h_prev.T @ delta_1
        upd["in"] += X.T @ delta_1
        future_delta_1 = delta_1
    return {k: v * ALPHA for k, v in upd.items()}


def exact_rate(W_in: np.ndarray, W_rec: np.ndarray, W_out: np.ndarray, n_bits: int = 8) -> float:
    """Exact-match rate of a sigmoid 2-H-1 adder on every pair of ``n_bits - 1``-bit operands."""
    x = all_pairs(n_bits - 1)  # (T, B, 2), the last step the carry's
    y = sum_bits(x)[:, :, 0] > 0.5  # (T, B)
    h = np.zeros((x.shape[1], W_rec.shape[0]))  # (B, H)
    right = np.ones(x.shape[1], bool)
    for t in range(x.shape[0]):
        h = logistic(x[t] @ W_in + h @ W_rec)
        right &= (logistic(h @ W_out)[:, 0] > 0.5) == y[t]
    return float(right.mean())


Draws = tuple[dict[str, np.ndarray], Iterator[tuple[int, int]]]


def own_draws(seed: int, hidden: int = 16, n_bits: int = 8) -> Draws:
    """The recipe's own random stream (NumPy's legacy ``RandomState``): weights, then the pairs."""
    rng = np.random.RandomState(seed)
    W = classic_init(rng, hidden)

    def pairs() -> Iterator[tuple[int, int]]:
        while True:
            yield rng.randint(2 ** (n_bits - 1)), rng.randint(2 ** (n_bits - 1))

    return W, pairs()


def bptt_draws(seed: int, hidden: int = 16, n_bits: int = 8) -> Draws:
    """``train(n_bits, hidden, seed, preset="classic")``'s stream: its weights, then its pairs."""
    recipe = PRESETS["classic"]
    rng = np.random.default_rng(seed)
    params = build_model(hidden, recipe, rng).params
    W = {"in": params["0.W_ih"], "rec": params["0.W_hh"], "out": params["1.W"]}
    width = operand_width(n_bits, recipe)

    def pairs() -> Iterator[tuple[int, int]]:
        while True:
            bits = rng.integers(0, 2, (width, 1, 2))[:, 0, :]  # (width, 2), least significant first
            yield int(bits[:, 0] @ (1 << np.arange(width))), int(bits[:, 1] @ (1 << np.arange(width)))

    return W, pairs()


def classic_loop(draws: Draws, steps: int, every: int, n_bits: int = 8) -> list[float]:
    """The recipe for ``steps`` steps from ``draws``; the exact-match rate after every ``every`` steps."""
    W, pairs = draws
    rates = []
    for step, (a, b) in zip(range(1, steps + 1), pairs, strict=False):
        for k, u in classic_update(W, a, b, n_bits).items():
            W[k] += u
        if step % every == 0:
            rates.append(exact_rate(W["in"], W["rec"], W["out"], n_bits))
    return rates


# --- the independent loop is right ---------------------------------------------------------------


@pytest.mark.parametrize(("n_bits", "hidden"), [(1, 1), (2, 1), (3, 4), (8, 16)])
def test_classic_update_is_minus_alpha_times_the_autograd_gradient(n_bits: int, hidden: int) -> None:
    """The loop's update is ``-alpha ∇ ½Σ_t (y_t - ŷ_t)²``, the gradient from torch autograd."""
    import torch  # here, so that benchmarks/classic_study.py can import this module without torch

    rng = np.random.RandomState(n_bits * 10 + hidden)
    W = classic_init(rng, hidden)
    a, b = rng.randint(2 ** max(n_bits - 1, 1)), rng.randint(2 ** max(n_bits - 1, 1))
    upd = classic_update(W, a, b, n_bits)
    Wt = {k: torch.tensor(v, requires_grad=True) for k, v in W.items()}
    h = torch.zeros(1, hidden, dtype=torch.float64)
    loss = torch.zeros((), dtype=torch.float64)
    for pos in range(n_bits):
        X = torch.tensor([[(a >> pos) & 1, (b >> pos) & 1]], dtype=torch.float64)
        h = torch.sigmoid(X @ Wt["in"] + h @ Wt["rec"])
        loss = loss + 0.5 * (((a + b) >> pos & 1) - torch.sigmoid(h @ Wt["out"])[0, 0]) ** 2
    loss.backward()
    for k, w in Wt.items():
        assert w.grad is not None
        want = -ALPHA * w.grad.numpy()
        np.testing.assert_allclose(upd[k], want, rtol=1e-9, atol=1e-15 * np.abs(want).max(), err_msg=k)


@pytest.mark.parametrize(("n_bits", "hidden", "seed"), [(2, 1, 1), (3, 4, 0), (3, 8, 2), (4, 16, 0)])
def test_exact_rate_counts_the_pairs_whose_every_bit_is_right(n_bits: int, hidden: int, seed: int) -> None:
    """The batched evaluator agrees with the loop's own forward pair by pair, and with bptt's."""
    rng = np.random.RandomState(seed)
    W = {k: 4 * v for k, v in classic_init(rng, hidden).items()}  # large weights: varied outputs
    n = 2 ** (n_bits - 1)
    right = [
        all(
            (out[0, 0] > 0.5) == bool((a + b) >> pos & 1)
            for pos, out in enumerate(classic_forward(W, a, b, n_bits)[1])
        )
        for a in range(n)
        for b in range(n)
    ]
    rate = exact_rate(W["in"], W["rec"], W["out"], n_bits)
    assert rate == np.mean(right) > 0
    model = build_model(hidden, PRESETS["classic"], np.random.default_rng(0))
    for name, key in (("0.W_ih", "in"), ("0.W_hh", "rec"), ("1.W", "out")):
        model.params[name][...] = W[key]
    assert rate == accuracy(model, n_bits - 1)


# --- bptt's classic preset is the same algorithm -------------------------------------------------


@pytest.mark.parametrize(
    ("n_bits", "hidden", "seed"), [(1, 1, 0), (2, 3, 1), (8, 1, 2), (8, 16, 3), (8, 16, 4)]
)
def test_one_step_of_the_classic_preset_is_the_loops_update(n_bits: int, hidden: int, seed: int) -> None:
    """From the same weights on the same pair, train's first step adds the loop's update (rtol 1e-12).

    This pins the loss's scale (½Σ over the sequence, not a mean), the learning rate, plain SGD,
    the zero initial state, the sigmoid output and the sequence length n_bits; the atol is the
    rounding of ``W1 - W0`` at the weights' own size.
    """
    W, pairs = bptt_draws(seed, hidden, n_bits)
    before = {"0.W_ih": W["in"].copy(), "0.W_hh": W["rec"].copy(), "1.W": W["out"].copy()}
    a, b = next(pairs)
    model = train(n_bits, hidden, seed, preset="classic", steps=1)[0]
    after = model.params

    upd = classic_update(W, a, b, operand_width(n_bits, PRESETS["classic"]) + 1)  # the carry's step last
    assert set(after) == set(before)  # no biases
    for name, key in (("0.W_ih", "in"), ("0.W_hh", "rec"), ("1.W", "out")):
        np.testing.assert_allclose(
            after[name] - before[name], upd[key], rtol=1e-12, atol=2 * np.finfo(float).eps, err_msg=name
        )


@pytest.mark.parametrize(("n_bits", "hidden", "seed"), [(8, 16, 0), (8, 16, 1), (5, 3, 2)])
def test_classic_preset_follows_the_loop_for_300_steps(n_bits: int, hidden: int, seed: int) -> None:
    """On train's own draws, 300 steps of the loop end at train's weights (rtol 1e-10)."""
    W, pairs = bptt_draws(seed, hidden, n_bits)
    T = operand_width(n_bits, PRESETS["classic"]) + 1
    for _, (a, b) in zip(range(300), pairs, strict=False):
        for k, u in classic_update(W, a, b, T).items():
            W[k] += u
    model, history = train(n_bits, hidden, seed, preset="classic", steps=300)
    assert history.steps == 300 and history.converged is True
    for name, key in (("0.W_ih", "in"), ("0.W_hh", "rec"), ("1.W", "out")):
        want = W[key]
        np.testing.assert_allclose(
            model.params[name], want, rtol=1e-10, atol=1e-12 * np.abs(want).max(), err_msg=name
        )


def test_classic_preset_is_the_published_recipe() -> None:
    """2-16-1, sigmoid hidden and output, no bias, U(-1, 1), SGD lr 0.1, one pair, operands < 128."""
    recipe = PRESETS["classic"]
    assert (recipe.activation, recipe.output, recipe.bias, recipe.init) == ("sigmoid", "sigmoid", False, 1.0)
    assert (recipe.optimizer, recipe.lr, recipe.batch_size, recipe.clip) == ("sgd", 0.1, 1, None)
    assert recipe.steps == 10_000 and operand_width(8, recipe) == 7
    model = build_model(16, recipe, np.random.default_rng(0))
    assert [type(layer).__name__ for layer in model] == ["RNN", "Dense", "Sigmoid"]
    for w in model.params.values():
        assert w.min() >= -1.0 and w.max() <= 1.0 and np.abs(w).max() > 0.5


def test_classic_study_runs_and_the_loop_on_bptts_draws_follows_the_preset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """benchmarks/classic_study.py on a tiny budget: its table, and the loop on train's draws tracks train."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "classic_study.py"
    spec = importlib.util.spec_from_file_location("classic_study", path)
    assert spec is not None and spec.loader is not None
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    rows = study.main(["--seeds", "2", "--steps", "1500", "--every", "500"])
    assert [r["method"] for r in rows] == [
        "bptt classic preset",
        "independent loop",
        "independent loop, bptt's draws",
    ]
    assert rows[0]["final_rates"] == rows[2]["final_rates"]
    assert "| bptt classic preset | " in capsys.readouterr().out
