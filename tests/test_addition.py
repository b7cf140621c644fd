"""Binary addition: encode/decode, batches, accuracy, streaming add, and the training guarantees.

Everything that says "this is the sum" is checked against Python's own integer arithmetic; the
hand-built adders below are exact by construction (ReLU units holding integers), and the classic
training recipe is replayed by an independent NumPy BPTT checked against torch autograd.
"""

from __future__ import annotations

import re
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bptt.io
from bptt import RNN, Dense, Sequential, ShapeError, Sigmoid
from bptt.checkpoint import load_checkpoint
from bptt.cli import main
from bptt.stopping import Interrupted
from bptt.tasks import addition
from bptt.tasks.addition import CHUNK, accuracy, add, decode, encode, make_batch, train

SHIPPED = Path(addition.__file__).parents[2] / "data" / "adder.npz"
BAD_OPERANDS = [-1, -(1 << 100), 1.0, 2.5, np.float64(3.0), True, False, "3", None, [1]]


# --- helpers -----------------------------------------------------------------------------------


def bits_of(n: int, length: int) -> np.ndarray:
    """The ``length`` lowest bits of ``n``, least significant first, via Python's ``bin``."""
    assert n >= 0 and n.bit_length() <= length
    text = bin(n)[2:].zfill(length)[::-1]
    return np.frombuffer(text.encode(), np.uint8) - ord("0")


def int_of(bits: np.ndarray) -> int:
    """Inverse of ``bits_of`` for a 1-D 0/1 array."""
    return int("".join("1" if v else "0" for v in np.asarray(bits)[::-1]) or "0", 2)


def random_operands(rng: np.random.Generator, n_bits: int, count: int) -> list[int]:
    """``count`` integers uniform in ``[0, 2**n_bits)``."""
    mask = (1 << n_bits) - 1
    return [int.from_bytes(rng.bytes((n_bits + 7) // 8), "little") & mask for _ in range(count)]


def exact_adder(carry: float = 1.0, sigmoid_out: bool = False) -> Sequential:
    """A hand-built ReLU RNN adder, exact for any length (``carry=0`` drops the carry: a XOR b).

    With ``s = a_t + b_t + c_{t-1}`` the units are ``u = relu(s - (0, 1, 2))``; the carry is
    ``u2 - u3 = [s ≥ 2]`` (fed back through ``W_hh``), the sum bit ``u1 - 2 u2 + 2 u3 = s mod 2``.
    """
    rnn = RNN(2, 3, activation="relu", rng=0)
    rnn.params["W_ih"][...] = 1.0
    rnn.params["W_hh"][...] = [[0.0, 0.0, 0.0], [carry] * 3, [-carry] * 3]
    rnn.params["b"][...] = [0.0, -1.0, -2.0]
    dense = Dense(3, 1, rng=0)
    dense.params["W"][...] = [[1.0], [-2.0], [2.0]]
    dense.params["b"][...] = -0.5  # logits ±0.5; through a Sigmoid, 0.38 / 0.62
    return Sequential([rnn, dense, Sigmoid()] if sigmoid_out else [rnn, dense])


def model_bits(model: Sequential, x: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The logit model's bits ``(T, B)`` for ``x``, fed in time chunks through a stateful RNN."""
    rnn = model[0]
    assert isinstance(rnn, RNN) and not isinstance(model[-1], Sigmoid)
    rnn.h0, rnn.stateful = None, True
    try:
        return np.concatenate([model.forward(x[s : s + chunk])[:, :, 0] > 0 for s in range(0, len(x), chunk)])
    finally:
        rnn.h0, rnn.stateful = None, False


def all_exact(model: Sequential, a: list[int], b: list[int], n_bits: int) -> bool:
    """Whether the model gets every bit of every ``a[i] + b[i]`` right (operands < 2**n_bits)."""
    T = n_bits + 1
    x = np.zeros((T, len(a), 2))
    x[:n_bits, :, 0] = np.stack([bits_of(v, n_bits) for v in a], axis=1)
    x[:n_bits, :, 1] = np.stack([bits_of(v, n_bits) for v in b], axis=1)
    want = np.stack([bits_of(u + v, T) for u, v in zip(a, b, strict=True)], axis=1).astype(bool)
    return bool(np.array_equal(model_bits(model, x), want))


@pytest.fixture(scope="module")
def shipped() -> Sequential:
    """The adder shipped with the package."""
    return bptt.io.load(SHIPPED)


@pytest.fixture(scope="module")
def trained() -> Sequential:
    """A model from the default recipe, seed 0."""
    return train(seed=0)[0]


@pytest.fixture(params=["exact", "exact-sigmoid", "shipped", "trained"])
def adder(request: pytest.FixtureRequest) -> Sequential:
    """Each adder that must add exactly: two hand-built ones, the shipped one, a trained one."""
    if request.param == "exact":
        return exact_adder()
    if request.param == "exact-sigmoid":
        return exact_adder(sigmoid_out=True)
    return request.getfixturevalue(request.param)


# --- encode ------------------------------------------------------------------------------------


ENCODE_CASES = [(0, 0, None), (1, 0, None), (0, 6, None), (5, 3, None), (255, 255, None), (256, 1, None)]
ENCODE_CASES += [(5, 3, 8), (0, 0, 1), (0, 0, 5), (np.int64(9), np.uint8(7), None), (7, 9, np.int32(6))]


@pytest.mark.parametrize(("a", "b", "n_bits"), ENCODE_CASES)
def test_encode_is_lsb_first_with_a_zero_last_step(a: int, b: int, n_bits: int | None) -> None:
    """encode gives (n_bits+1, 1, 2) float64, bit t of a and b at step t, zeros at the last step."""
    width = max(int(a).bit_length(), int(b).bit_length(), 1) if n_bits is None else int(n_bits)
    x = encode(a, b, n_bits)
    assert x.shape == (width + 1, 1, 2)
    assert x.dtype == np.float64
    for t in range(width):
        assert x[t, 0, 0] == (int(a) >> t) & 1
        assert x[t, 0, 1] == (int(b) >> t) & 1
    assert np.all(x[-1] == 0.0)


def test_encode_huge_operands() -> None:
    """Operands of 10,000+ bits encode exactly, with the default width the wider one's length."""
    rng = np.random.default_rng(1)
    a = random_operands(rng, 12_345, 1)[0] | (1 << 12_344)
    b = random_operands(rng, 10_000, 1)[0]
    x = encode(a, b)
    assert x.shape == (12_346, 1, 2)
    np.testing.assert_array_equal(x[:-1, 0, 0], bits_of(a, 12_345))
    np.testing.assert_array_equal(x[:-1, 0, 1], bits_of(b, 12_345))
    assert np.all(x[-1] == 0.0)
    assert encode(b, a, 20_000).shape == (20_001, 1, 2)


@pytest.mark.parametrize(
    ("a", "b", "n_bits"), [(8, 1, 3), (1, 8, 3), (1 << 100, 0, 100), (0, 0, 0), (1, 1, -2)]
)
def test_encode_refuses_too_few_bits(a: int, b: int, n_bits: int) -> None:
    """n_bits below the wider operand's bit length (or below 1) raises ValueError."""
    with pytest.raises(ValueError, match="encode"):
        encode(a, b, n_bits)


@pytest.mark.parametrize("n_bits", [4.0, True, "4"])
def test_encode_refuses_non_integer_n_bits(n_bits: object) -> None:
    """A float, bool or str n_bits raises ValueError."""
    with pytest.raises(ValueError, match="encode"):
        encode(1, 2, n_bits)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", BAD_OPERANDS)
def test_encode_refuses_bad_operands(bad: object) -> None:
    """Negative, float, bool, str (and other non-int) operands raise ValueError, as a or as b."""
    with pytest.raises(ValueError, match="encode"):
        encode(bad, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="encode"):
        encode(1, bad)  # type: ignore[arg-type]


# --- decode ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=0, max_value=1 << 20_000), extra=st.integers(0, 17))
def test_decode_round_trips_int_to_bits(n: int, extra: int) -> None:
    """decode(int_to_bits(n, L)) == n for any n (huge ones too) and any L ≥ its bit length."""
    length = max(n.bit_length(), 1) + extra
    bits = addition.int_to_bits(n, length)
    np.testing.assert_array_equal(bits, bits_of(n, length))
    assert decode(bits) == n
    assert decode(bits.astype(np.float64)) == n
    assert decode(bits.astype(bool)) == n


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decode_thresholds_probabilities_at_half(seed: int) -> None:
    """Probabilities above 0.5 read as 1, those below as 0, including values right next to 0.5."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, 300)
    above = np.nextafter(0.5, 1.0) + rng.uniform(0.0, 0.5, 300) * (rng.random(300) < 0.8)
    below = np.nextafter(0.5, 0.0) - rng.uniform(0.0, 0.5, 300) * (rng.random(300) < 0.8)
    p = np.where(bits == 1, np.minimum(above, 1.0), np.maximum(below, 0.0))
    p[:4] = [np.nextafter(0.5, 1.0), np.nextafter(0.5, 0.0), 1.0, 0.0]
    bits[:4] = [1, 0, 1, 0]
    assert decode(p) == int_of(bits)
    assert decode(p.tolist()) == int_of(bits)


@pytest.mark.parametrize("shape", [(), (3, 1), (1, 3), (2, 2, 2)])
def test_decode_refuses_non_1d(shape: tuple[int, ...]) -> None:
    """Anything but a 1-D array of bits raises bptt.ShapeError."""
    with pytest.raises(ShapeError, match="decode"):
        decode(np.ones(shape))


@pytest.mark.parametrize("bad", [-0.25, -1e-300, 1.0 + 1e-12, 2.0, np.inf, -np.inf, np.nan])
def test_decode_refuses_values_outside_unit_interval(bad: float) -> None:
    """Values below 0, above 1, infinite or NaN raise ValueError (not a shape error)."""
    bits = np.array([1.0, 0.0, 1.0, 0.0])
    bits[2] = bad
    with pytest.raises(ValueError, match="decode") as info:
        decode(bits)
    assert not isinstance(info.value, ShapeError)


# --- make_batch --------------------------------------------------------------------------------


@pytest.mark.parametrize("n_bits", [1, 2, 8, 33])
@pytest.mark.parametrize("batch", [1, 7])
def test_make_batch_targets_are_the_sums(n_bits: int, batch: int) -> None:
    """x (T, B, 2), y (T, B, 1) with T = n_bits+1, and each column of y is the bits of a + b."""
    x, y = make_batch(n_bits, batch, np.random.default_rng(n_bits * 10 + batch))
    T = n_bits + 1
    assert x.shape == (T, batch, 2) and y.shape == (T, batch, 1)
    assert np.all(x[-1] == 0.0)
    assert set(np.unique(x)) <= {0.0, 1.0} and set(np.unique(y)) <= {0.0, 1.0}
    for j in range(batch):
        a, b = int_of(x[:, j, 0]), int_of(x[:, j, 1])
        assert decode(x[:, j, 0]) == a and a < 1 << n_bits and b < 1 << n_bits
        assert decode(y[:, j, 0]) == a + b
        np.testing.assert_array_equal(y[:, j, 0], bits_of(a + b, T))


def test_make_batch_is_deterministic_for_a_seed() -> None:
    """The same seed (Generator or int) gives the same batch; a used Generator gives a new one."""
    x1, y1 = make_batch(16, 9, np.random.default_rng(5))
    x2, y2 = make_batch(16, 9, np.random.default_rng(5))
    x3, y3 = make_batch(16, 9, 5)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert np.array_equal(x1, x3) and np.array_equal(y1, y3)
    rng = np.random.default_rng(5)
    first, _ = make_batch(16, 9, rng)
    second, _ = make_batch(16, 9, rng)
    assert not np.array_equal(first, second)


def test_make_batch_operands_cover_the_range() -> None:
    """Operand bits average 1/2, and 4,096 draws of 8-bit operands hit every value 0..255."""
    x, _ = make_batch(64, 1000, np.random.default_rng(0))
    # 128,000 fair bits per operand: the mean's std is 0.0014, so 0.01 is seven sigmas.
    assert abs(x[:-1].mean() - 0.5) < 0.01
    assert np.all(np.abs(x[:-1].mean(axis=(0, 1)) - 0.5) < 0.01)
    x, _ = make_batch(8, 4096, np.random.default_rng(0))
    weights = 1 << np.arange(8)
    for k in range(2):
        values = (x[:8, :, k] * weights[:, None]).sum(axis=0).astype(int)
        assert set(values.tolist()) == set(range(256))


@pytest.mark.parametrize(("n_bits", "batch"), [(0, 1), (1, 0), (-3, 2), (2.0, 2), (2, True)])
def test_make_batch_refuses_bad_sizes(n_bits: object, batch: object) -> None:
    """Non-positive or non-integer n_bits / batch_size raise ValueError."""
    with pytest.raises(ValueError, match="make_batch"):
        make_batch(n_bits, batch, 0)  # type: ignore[arg-type]


# --- accuracy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sigmoid_out", [False, True])
@pytest.mark.parametrize("n_bits", [1, 2, 5, 8])
def test_hand_built_adder_scores_one_on_every_pair(sigmoid_out: bool, n_bits: int) -> None:
    """accuracy(exact adder, n_bits) == 1.0, with logit or sigmoid outputs."""
    assert accuracy(exact_adder(sigmoid_out=sigmoid_out), n_bits) == 1.0


@pytest.mark.parametrize("sigmoid_out", [False, True])
@pytest.mark.parametrize("n_bits", [1, 2, 3, 6])
def test_accuracy_checks_every_pair(sigmoid_out: bool, n_bits: int) -> None:
    """The carry-less adder is right exactly when a & b == 0: 3**n of the 4**n pairs, no more."""
    assert accuracy(exact_adder(carry=0.0, sigmoid_out=sigmoid_out), n_bits) == 3**n_bits / 4**n_bits


def test_accuracy_with_samples() -> None:
    """Sampled accuracy: 1.0 for the exact adder, near (3/4)**n for the carry-less one, seeded."""
    assert accuracy(exact_adder(), 300, samples=50, rng=0) == 1.0
    xor = exact_adder(carry=0.0)
    got = accuracy(xor, 4, samples=4000, rng=np.random.default_rng(1))
    assert abs(got - 0.75**4) < 0.05  # std 0.0074: 0.05 is nearly seven sigmas
    assert accuracy(xor, 4, samples=4000, rng=np.random.default_rng(1)) == got
    assert accuracy(xor, 4, samples=4000, rng=1) == got


def test_untrained_model_is_not_accurate() -> None:
    """A freshly built model does not add: accuracy < 1."""
    rng = np.random.default_rng(0)
    assert accuracy(Sequential([RNN(2, 16, rng=rng), Dense(16, 1, rng=rng)]), 8) < 1.0
    assert accuracy(addition.build_model(16, addition.PRESETS["default"], rng), 8) < 1.0


@pytest.mark.parametrize("n_bits", [13, 16, 64])
def test_accuracy_refuses_all_pairs_above_12_bits(n_bits: int) -> None:
    """Every pair at more than 12 bits is refused with ValueError; samples= is the way."""
    with pytest.raises(ValueError, match="samples"):
        accuracy(exact_adder(), n_bits)
    assert accuracy(exact_adder(), n_bits, samples=3, rng=0) == 1.0


# --- add ---------------------------------------------------------------------------------------

LENGTHS = [(1, 1), (2, 1), (7, 8), (8, 8), (9, 3), (64, 65), (4095, 4096), (4096, 4097), (8192, 100)]
LENGTHS += [(8193, 8191), (12_000, 20_000), (20_000, 20_000)]


def test_add_random_huge_operands(adder: Sequential) -> None:
    """add(model, a, b) == a + b for random operands of 1 to 20,000 bits, either one wider."""
    rng = np.random.default_rng(7)
    for la, lb in LENGTHS:
        a = random_operands(rng, la, 1)[0] | (1 << (la - 1))
        b = random_operands(rng, lb, 1)[0] | (1 << (lb - 1))
        assert add(adder, a, b) == a + b, (la, lb)
        assert add(adder, b, a) == a + b, (lb, la)


ONES_1, ONES_2 = (1 << CHUNK) - 1, (1 << 2 * CHUNK) - 1  # all-ones over one and two chunks
SMALL_AND_CHUNK_SUMS = [(0, 0), (0, 1), (1, 0), (1, 1), (np.int64(3), np.uint16(5))]
SMALL_AND_CHUNK_SUMS += [(ONES_1, 1), (1, ONES_1), (ONES_2, 1), (1, ONES_2), (ONES_2, ONES_2)]
SMALL_AND_CHUNK_SUMS += [(1 << CHUNK - 1, 1 << CHUNK - 1), ((1 << CHUNK + 3) - 1, 1 << 3)]


@pytest.mark.parametrize(("a", "b"), SMALL_AND_CHUNK_SUMS)
def test_add_small_and_chunk_boundary_carries(adder: Sequential, a: int, b: int) -> None:
    """0 + 0, tiny sums, and carries that run across CHUNK boundaries all come out exact."""
    assert CHUNK == 4096
    assert add(adder, a, b) == int(a) + int(b)


def test_add_restores_rnn_state() -> None:
    """add ignores a stale h0 and gives back every RNN's own h0 object and stateful flag."""
    model = exact_adder()
    stale = np.full((1, 3), 5.0)
    model[0].h0 = stale
    assert add(model, 12345, 54321) == 66666
    assert model[0].h0 is stale and not model[0].stateful
    np.testing.assert_array_equal(stale, np.full((1, 3), 5.0))
    model[0].stateful = True
    assert add(model, (1 << 5000) - 1, 1) == 1 << 5000
    assert model[0].h0 is stale and model[0].stateful

    rnn1, rnn2 = RNN(2, 3, rng=0), RNN(3, 4, stateful=True, rng=1)
    h1, h2 = np.ones((2, 3)), np.ones((5, 4))
    rnn1.h0, rnn2.h0 = h1, h2  # wrong batch sizes on purpose: add must not use them
    deep = Sequential([rnn1, rnn2, Dense(4, 1, rng=2)])
    add(deep, 99, 1)
    assert rnn1.h0 is h1 and rnn2.h0 is h2
    assert not rnn1.stateful and rnn2.stateful


def test_add_restores_rnn_state_when_it_raises() -> None:
    """When the model fails inside add, each RNN's h0 and stateful flag are still given back."""
    rnn1, rnn2 = RNN(2, 3, rng=0), RNN(3, 4, stateful=True, rng=1)
    h1, h2 = np.ones((1, 3)), np.ones((1, 4))
    rnn1.h0, rnn2.h0 = h1, h2
    broken = Sequential([rnn1, rnn2, Dense(5, 1, rng=2)])  # Dense(5, ·) cannot take 4 hidden units
    with pytest.raises(ShapeError):
        add(broken, 3, 4)
    assert rnn1.h0 is h1 and rnn2.h0 is h2
    assert not rnn1.stateful and rnn2.stateful


@pytest.mark.parametrize("bad", BAD_OPERANDS)
def test_add_refuses_bad_operands(bad: object) -> None:
    """Negative, float, bool, str (and other non-int) operands raise ValueError, as a or as b."""
    model = exact_adder()
    with pytest.raises(ValueError, match="add"):
        add(model, bad, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="add"):
        add(model, 1, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "model",
    [
        Sequential([RNN(3, 4, rng=0), Dense(4, 1, rng=0)]),
        Sequential([Dense(3, 2, rng=0), RNN(2, 4, rng=0), Dense(4, 1, rng=0)]),
        RNN(3, 1, rng=0),
        Sequential([RNN(1, 4, rng=0), Dense(4, 1, rng=0)]),
    ],
)
def test_add_refuses_models_not_taking_two_inputs(model: object) -> None:
    """A model whose first layer does not take 2 bits per step raises ValueError."""
    with pytest.raises(ValueError, match="add"):
        add(model, 1, 2)  # type: ignore[arg-type]


def test_add_refuses_models_with_more_than_one_output() -> None:
    """A model with 2 outputs per step is refused by add, as predict_bits refuses it (fails today)."""
    model = Sequential([RNN(2, 4, rng=0), Dense(4, 2, rng=0)])
    with pytest.raises(ValueError, match="1 value per step"):
        addition.predict_bits(model, encode(3, 4))
    with pytest.raises(ValueError, match="add"):
        add(model, 3, 4)


# --- train -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_default_recipe_trains_an_exact_adder(seed: int) -> None:
    """The flagship: for every seed the model converges and is exact on all 65,536 8-bit pairs,
    on 1,000 random 1,000-bit sums and on 100 random 10,000-bit sums."""
    model, history = train(seed=seed)
    assert history.converged is True
    assert accuracy(model, 8) == 1.0
    rng = np.random.default_rng([seed, 2024])
    for n_bits, count in [(1000, 1000), (10_000, 100)]:
        a, b = random_operands(rng, n_bits, count), random_operands(rng, n_bits, count)
        assert all_exact(model, a, b, n_bits), (n_bits, count)
    assert add(model, a[0], b[0]) == a[0] + b[0]  # and through the streaming path


def test_train_is_deterministic() -> None:
    """The same seed gives bit-identical weights and losses; another seed gives other weights."""
    m1, h1 = train(seed=3)
    m2, h2 = train(seed=3)
    m3, _ = train(seed=4)
    assert m1.params.keys() == m2.params.keys()
    for k in m1.params:
        assert np.array_equal(m1.params[k], m2.params[k]), k
    assert h1.loss == h2.loss and h1.check_step == h2.check_step and h1.margin == h2.margin
    assert not np.array_equal(m1.params["0.W_hh"], m3.params["0.W_hh"])


def test_train_history_has_one_loss_per_step() -> None:
    """history.loss has one finite entry per step the callback saw; it converged at a check."""
    seen: list[tuple[int, float]] = []
    _, history = train(seed=1, callback=lambda step, loss, h: seen.append((step, loss)))
    assert [s for s, _ in seen] == list(range(1, len(seen) + 1))
    assert history.loss == [loss for _, loss in seen]
    assert history.steps == len(seen) and np.all(np.isfinite(history.loss))
    assert history.converged
    every = addition.PRESETS["default"].check_every
    assert history.check_step == list(range(every, len(seen) + 1, every))
    assert history.check_step[-1] == len(seen)
    assert history.accuracy[-1] == 1.0 and history.margin[-1] >= addition.PRESETS["default"].margin


def test_train_refuses_unknown_option_and_preset() -> None:
    """An unknown option raises TypeError; an unknown preset raises ValueError."""
    with pytest.raises(TypeError, match="learning_rate"):
        train(learning_rate=0.1)
    with pytest.raises(ValueError, match="fancy"):
        train(preset="fancy")


@pytest.mark.parametrize(
    "option",
    [{"optimizer": "rmsprop"}, {"output": "softmax"}, {"steps": 0}, {"check_every": 0}, {"operand_bits": 0}],
    ids=["optimizer-rmsprop", "output-softmax", "steps-0", "check_every-0", "operand_bits-0"],
)
def test_train_refuses_bad_option_values(option: dict) -> None:
    """Option values no Recipe can mean raise ValueError instead of training something else (fails today)."""
    with pytest.raises(ValueError):
        train(seed=0, max_steps=2, **option)


def test_train_options_override_the_recipe() -> None:
    """max_steps=3 with an unreachable margin stops after 3 steps, not converged; steps=5 runs 5."""
    seen: list[int] = []
    _, history = train(
        seed=0, max_steps=3, margin=1e9, check_every=1, callback=lambda s, _l, _h: seen.append(s)
    )
    assert history.steps == 3 and seen == [1, 2, 3]
    assert history.check_step == [1, 2, 3] and len(history.accuracy) == 3
    assert history.converged is False
    _, history = train(seed=0, steps=5)
    assert history.steps == 5 and history.converged is True
    model, _ = train(seed=0, hidden=5, max_steps=2)
    assert model[0].hidden_size == 5


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interruptible_train_stops_at_the_step_boundary_on_either_signal(tmp_path: Path, signum: int) -> None:
    """SIGINT or SIGTERM: the step finishes, the checkpoint holds it, and Interrupted names the signal."""
    ckpt = tmp_path / "c.npz"

    def press(step: int, loss: float, history: addition.History) -> None:
        if step == 10:
            signal.raise_signal(signum)

    name = signal.Signals(signum).name
    with pytest.raises(Interrupted, match=f"^interrupted by {name} after step 10$") as info:
        train(seed=0, checkpoint=ckpt, interruptible=True, callback=press)
    assert info.value.signum == signum and info.value.exit_status == 128 + signum
    assert info.value.step == 10 == load_checkpoint(ckpt).step == info.value.history.steps


def test_cli_says_when_the_stopping_rule_was_not_met(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bptt train --hidden 2` runs out of steps: it says so, records it, and exits 1."""
    monkeypatch.setitem(addition.PRESETS, "default", replace(addition.PRESETS["default"], max_steps=50))
    out = tmp_path / "m.npz"
    assert main(["train", "--quiet", "--hidden", "2", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert re.search(r"^stopped after 50 steps, \d+ ms, without meeting the stopping rule$", printed, re.M)
    assert "met the stopping rule" not in printed.replace("without meeting", "")
    assert bptt.io.read(out)[1]["converged"] is False


@pytest.mark.parametrize("flag", ["--out", "--plot", "--checkpoint"])
def test_cli_refuses_an_empty_path_before_training(
    flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--out ''` (or --plot, --checkpoint) is a mistake, not a request for the default: exit 2, no work."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--quiet", flag, ""]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{flag} '' is empty" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_says_which_steps_a_resumed_run_trained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resumed run says which steps it trained (those after its checkpoint), not the whole count."""
    ckpt = tmp_path / "m.ckpt.npz"
    assert main(["train", "--quiet", "--checkpoint-every", "50", "--out", str(tmp_path / "m.npz")]) == 0
    steps = int(re.findall(r"trained in (\d+) steps", capsys.readouterr().out)[0])
    resumed_from = load_checkpoint(ckpt).step
    assert 0 < resumed_from < steps
    assert main(["train", "--quiet", "--resume", str(ckpt), "--out", str(tmp_path / "r.npz")]) == 0
    assert f"trained in steps {resumed_from + 1}-{steps}, " in capsys.readouterr().out
