"""``bptt.gradcheck``: it passes correct models, catches wrong ones, and leaves the model alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import bptt
from bptt.functional import ACTIVATIONS

I, H = 3, 5
ACTIVATION_NAMES = ["tanh", "sigmoid", "relu", "identity"]
LOSSES = ["mse", "bce", "ce"]
RNN_KEYS = {"0.W_ih", "0.W_hh", "0.b", "0.h0", "x"}  # everything upstream of layer 0's output


def _loss_and_target(kind: str, reduction: str, shape: tuple[int, int, int], rng: np.random.Generator) -> Any:
    """A loss of ``kind`` and a random target for predictions of ``shape`` (T, B, O)."""
    if kind == "ce":
        return bptt.CrossEntropyLoss(reduction), rng.integers(0, shape[2], size=shape[:2])
    if kind == "bce":
        return bptt.BCEWithLogitsLoss(reduction), rng.random(shape)
    return bptt.MSELoss(reduction), rng.normal(size=shape)


def _stacked(activation: str, rng: np.random.Generator, B: int, O: int = 4) -> bptt.Sequential:
    """RNN (activation, given h0) -> RNN (tanh, h0 None) -> Dense."""
    first = bptt.RNN(I, H, activation=activation, rng=rng)
    first.h0 = rng.normal(0.0, 0.5, size=(B, H))
    return bptt.Sequential([first, bptt.RNN(H, H, rng=rng), bptt.Dense(H, O, rng=rng)])


def _mask(T: int, B: int, rng: np.random.Generator) -> np.ndarray:
    mask = (rng.random((T, B)) < 0.6).astype(np.float64)
    mask[-1, 0] = 1.0  # at least one term
    return mask


def _failing(report: bptt.GradcheckReport) -> set[str]:
    return {k for k, e in report.errors.items() if e > report.tolerance}


# ---------------------------------------------------------------------------------------------
# Correct models pass, and every gradient is reported


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss_kind", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_correct_models_pass(activation: str, loss_kind: str, reduction: str, masked: bool) -> None:
    """Every activation, loss, reduction and mask: all gradients agree within 1e-7."""
    rng = np.random.default_rng(0)
    T, B = 4, 3
    model = _stacked(activation, rng, B)
    loss, target = _loss_and_target(loss_kind, reduction, (T, B, 4), rng)
    mask = _mask(T, B, rng) if masked else None
    report = bptt.gradcheck(model, loss, rng.normal(size=(T, B, I)), target, mask=mask)
    assert report.tolerance == 1e-7
    assert report.ok, str(report)
    assert 0.0 <= report.max_error <= 1e-7


@pytest.mark.parametrize(("T", "B"), [(1, 1), (1, 4), (5, 1), (3, 2)])
def test_errors_cover_params_x_and_every_rnn_h0(T: int, B: int) -> None:
    """errors has one entry per parameter, one for x and one "{i}.h0" per RNN layer, with shapes."""
    rng = np.random.default_rng(1)
    model = bptt.Sequential(
        [
            bptt.RNN(I, H, rng=rng),
            bptt.Tanh(),
            bptt.RNN(H, H, activation="relu", bias=False, rng=rng),
            bptt.Last(),
            bptt.Dense(H, 2, rng=rng),
        ]
    )
    report = bptt.gradcheck(model, bptt.MSELoss(), rng.normal(size=(T, B, I)), rng.normal(size=(1, B, 2)))
    assert set(report.errors) == {*model.params, "x", "0.h0", "2.h0"}
    expected_shapes = {k: v.shape for k, v in model.params.items()}
    expected_shapes.update({"x": (T, B, I), "0.h0": (B, H), "2.h0": (B, H)})
    assert report.shapes == expected_shapes
    assert report.checked == {k: int(np.prod(s)) for k, s in expected_shapes.items()}
    assert report.ok, str(report)


def test_bare_rnn_keys_have_no_prefix() -> None:
    """A single RNN (not in a Sequential) is reported as W_ih, W_hh, b, x and h0."""
    rng = np.random.default_rng(2)
    rnn = bptt.RNN(I, H, rng=rng)
    report = bptt.gradcheck(rnn, bptt.MSELoss(), rng.normal(size=(3, 2, I)), rng.normal(size=(3, 2, H)))
    assert set(report.errors) == {"W_ih", "W_hh", "b", "x", "h0"}
    assert report.ok, str(report)


def test_str_is_a_table_naming_each_gradient() -> None:
    """str(report) has a row per gradient with its shape, and says the gradients agree."""
    rng = np.random.default_rng(3)
    model = _stacked("tanh", rng, 2)
    report = bptt.gradcheck(model, bptt.MSELoss(), rng.normal(size=(3, 2, I)), rng.normal(size=(3, 2, 4)))
    text = str(report)
    rows = {line.split()[0]: line for line in text.splitlines() if line.split()}
    for k, shape in report.shapes.items():
        assert k in rows, text
        assert str(shape) in rows[k], text
    assert "agree" in text
    assert "FAIL" not in text


# ---------------------------------------------------------------------------------------------
# It catches wrong backward passes


def _scale_w_hh(monkeypatch: pytest.MonkeyPatch) -> None:
    """RNN's dW_hh comes out 0.1% too large."""
    original = bptt.RNN.backward

    def backward(self: bptt.RNN, grad_y: np.ndarray) -> np.ndarray:
        grad_x = original(self, grad_y)
        self.grads["W_hh"] *= 1.001
        return grad_x

    monkeypatch.setattr(bptt.RNN, "backward", backward)


def _drop_recurrence(monkeypatch: pytest.MonkeyPatch) -> None:
    """BPTT forgets the path through h_{t-1} @ W_hh (backward runs with W_hh = 0)."""
    original = bptt.RNN.backward

    def backward(self: bptt.RNN, grad_y: np.ndarray) -> np.ndarray:
        W_hh = self.params["W_hh"]
        self.params["W_hh"] = np.zeros_like(W_hh)
        try:
            return original(self, grad_y)
        finally:
            self.params["W_hh"] = W_hh

    monkeypatch.setattr(bptt.RNN, "backward", backward)


def _sigmoid_derivative_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """sigmoid' is 0.01% too large in backward (the forward pass is untouched)."""
    activation = ACTIVATIONS["sigmoid"]
    original = activation.grad
    monkeypatch.setattr(activation, "grad", lambda y, out=None: original(y, out=out) * 1.0001)


def _last_routes_to_first_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Last.backward puts the gradient at step 0 instead of step T-1."""
    original = bptt.Last.backward

    def backward(self: bptt.Last, grad_y: np.ndarray) -> np.ndarray:
        return original(self, grad_y)[::-1].copy()

    monkeypatch.setattr(bptt.Last, "backward", backward)


def _dense_forgets_bias(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dense.backward leaves db at zero."""
    original = bptt.Dense.backward

    def backward(self: bptt.Dense, grad_y: np.ndarray) -> np.ndarray:
        grad_x = original(self, grad_y)
        self.grads["b"][...] = 0.0
        return grad_x

    monkeypatch.setattr(bptt.Dense, "backward", backward)


def _dense_grad_x_slightly_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dense's grad_x is 1e-6 relative too large: a bug below what loose checks see."""
    original = bptt.Dense.backward
    monkeypatch.setattr(bptt.Dense, "backward", lambda self, g: original(self, g) * (1.0 + 1e-6))


BUGS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], set[str]]] = {
    "scale W_hh": (_scale_w_hh, {"0.W_hh"}),
    "drop recurrence": (_drop_recurrence, RNN_KEYS),
    "sigmoid derivative": (_sigmoid_derivative_off, RNN_KEYS),
    "Last at step 0": (_last_routes_to_first_step, RNN_KEYS),
    "Dense forgets db": (_dense_forgets_bias, {"2.b"}),
    "Dense grad_x 1e-6": (_dense_grad_x_slightly_off, RNN_KEYS),
}


def _bug_setup() -> tuple[bptt.Sequential, bptt.MSELoss, np.ndarray, np.ndarray]:
    """A many-to-one sigmoid RNN with h0, Last and a Dense head, and its data."""
    rng = np.random.default_rng(4)
    T, B = 4, 2
    rnn = bptt.RNN(I, H, activation="sigmoid", rng=rng)
    rnn.h0 = rng.normal(size=(B, H))
    model = bptt.Sequential([rnn, bptt.Last(), bptt.Dense(H, 2, rng=rng)])
    return model, bptt.MSELoss(), rng.normal(size=(T, B, I)), rng.normal(size=(1, B, 2))


@pytest.mark.parametrize("bug", list(BUGS))
def test_catches_a_wrong_backward_and_names_the_gradient(bug: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a subtly wrong backward patched in, report.ok is False and exactly the affected keys fail."""
    model, loss, x, target = _bug_setup()
    control = bptt.gradcheck(model, loss, x, target)
    assert control.ok, str(control)
    patch, expected_failing = BUGS[bug]
    patch(monkeypatch)
    report = bptt.gradcheck(model, loss, x, target)
    assert not report.ok
    assert _failing(report) == expected_failing, str(report)
    text = str(report)
    assert "FAIL" in text
    assert "all gradients agree" not in text
    for line in text.splitlines()[1:-1]:
        assert ("FAIL" in line) == (line.split()[0] in expected_failing), line


def test_scaled_w_hh_error_is_measured_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gradient 1.001 times too large has relative error 0.001 / 1.001 (to 1e-9)."""
    model, loss, x, target = _bug_setup()
    _scale_w_hh(monkeypatch)
    report = bptt.gradcheck(model, loss, x, target)
    assert report.errors["0.W_hh"] == pytest.approx(0.001 / 1.001, rel=1e-9)


@pytest.mark.parametrize("bug", ["scale W_hh", "drop recurrence", "Last at step 0", "Dense forgets db"])
def test_central_differences_catch_gross_bugs_too(bug: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """method="central" also flags the broken gradients."""
    model, loss, x, target = _bug_setup()
    patch, expected_failing = BUGS[bug]
    patch(monkeypatch)
    report = bptt.gradcheck(model, loss, x, target, method="central")
    assert report.method == "central"
    assert not report.ok
    assert _failing(report) >= expected_failing, str(report)


# ---------------------------------------------------------------------------------------------
# Complex step against central differences


def test_complex_step_resolves_near_zero_entries_that_central_cannot() -> None:
    """With an input feature ~1e-9, dL/dW ~ 1e-10: central differences drown it, complex step does not."""
    rng = np.random.default_rng(5)
    dense = bptt.Dense(1, 3, rng=rng)
    x = rng.normal(size=(4, 3, 1)) * 1e-9
    target = rng.normal(size=(4, 3, 3))
    central = bptt.gradcheck(dense, bptt.MSELoss(), x, target, method="central")
    complex_step = bptt.gradcheck(dense, bptt.MSELoss(), x, target, method="complex")
    assert central.errors["W"] > 1e-3 > central.tolerance  # round-off ~1e-10 against ~1e-10
    assert not central.ok
    assert complex_step.ok, str(complex_step)
    assert complex_step.errors["W"] < 1e-13
    # The well-scaled entries (db and dx are O(0.1)) agree under central differences too.
    assert central.errors["b"] < 1e-6
    assert central.errors["x"] < 1e-6


def test_central_differences_agree_to_about_1e_6_on_a_well_scaled_model() -> None:
    """On an ordinary tanh RNN, central differences agree to < 1e-6 relative; complex step to ~1e-13."""
    rng = np.random.default_rng(6)
    model = bptt.Sequential([bptt.RNN(I, H, rng=rng), bptt.Dense(H, 2, rng=rng)])
    x, target = rng.normal(size=(5, 3, I)), rng.normal(size=(5, 3, 2))
    central = bptt.gradcheck(model, bptt.MSELoss(), x, target, method="central")
    complex_step = bptt.gradcheck(model, bptt.MSELoss(), x, target)
    assert central.max_error < 1e-6, str(central)
    assert complex_step.max_error < 1e-12, str(complex_step)


def test_central_uses_eps() -> None:
    """A large eps (0.1) makes central differences fail by truncation error; eps=1e-6 does not."""
    rng = np.random.default_rng(6)
    model = bptt.Sequential([bptt.RNN(I, H, rng=rng), bptt.Dense(H, 2, rng=rng)])
    x, target = rng.normal(size=(5, 3, I)), rng.normal(size=(5, 3, 2))
    coarse = bptt.gradcheck(model, bptt.MSELoss(), x, target, method="central", eps=0.1)
    assert coarse.max_error > 1e-3
    assert bptt.gradcheck(model, bptt.MSELoss(), x, target, method="central", eps=1e-6).max_error < 1e-6


# ---------------------------------------------------------------------------------------------
# Sampling large arrays


def _wide(rng: np.random.Generator) -> tuple[bptt.Sequential, np.ndarray, np.ndarray]:
    model = bptt.Sequential([bptt.RNN(I, 12, rng=rng), bptt.Dense(12, 2, rng=rng)])
    return model, rng.normal(size=(3, 2, I)), rng.normal(size=(3, 2, 2))


@pytest.mark.parametrize("method", ["complex", "central"])
def test_max_entries_checks_exactly_that_many(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrays larger than max_entries are checked on exactly max_entries entries; smaller ones fully."""
    model, x, target = _wide(np.random.default_rng(7))
    calls = 0
    run = model.run  # gradcheck runs the model from explicit states

    def counting_run(a: np.ndarray, state: object = None) -> tuple[np.ndarray, object]:
        nonlocal calls
        calls += 1
        return run(a, state)  # type: ignore[arg-type]

    monkeypatch.setattr(model, "run", counting_run)
    report = bptt.gradcheck(model, bptt.MSELoss(), x, target, method=method, max_entries=10)
    sizes = {**{k: v.size for k, v in model.params.items()}, "x": x.size, "0.h0": 2 * 12}
    assert report.checked == {k: min(n, 10) for k, n in sizes.items()}
    assert report.checked["0.W_hh"] == 10  # 144 entries, 10 checked
    assert report.checked["1.b"] == 2
    # Each checked entry costs one loss evaluation (complex) or two (central), plus the analytic pass.
    per_entry = 1 if method == "complex" else 2
    probes = per_entry * sum(report.checked.values())
    assert probes <= calls <= probes + 2
    if method == "complex":
        assert report.ok, str(report)


def test_same_seed_gives_the_same_report() -> None:
    """The sample is seeded: two runs with one seed report the same errors and counts."""
    model, x, target = _wide(np.random.default_rng(8))
    a = bptt.gradcheck(model, bptt.MSELoss(), x, target, max_entries=7, seed=3, method="central")
    b = bptt.gradcheck(model, bptt.MSELoss(), x, target, max_entries=7, seed=3, method="central")
    assert a.errors == b.errors
    assert a.checked == b.checked


def test_sampled_check_still_catches_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug that touches every entry of a large array is caught from a sample of it."""
    model, x, target = _wide(np.random.default_rng(9))
    _scale_w_hh(monkeypatch)
    report = bptt.gradcheck(model, bptt.MSELoss(), x, target, max_entries=5)
    assert report.checked["0.W_hh"] == 5
    assert _failing(report) == {"0.W_hh"}


# ---------------------------------------------------------------------------------------------
# The model is left as it was


def _restoration_setup() -> tuple[bptt.Sequential, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(10)
    first = bptt.RNN(I, H, rng=rng)
    h0 = rng.normal(size=(2, H))
    first.h0 = h0
    model = bptt.Sequential([first, bptt.RNN(H, H, rng=rng), bptt.Dense(H, 2, rng=rng)])
    return model, h0, rng.normal(size=(3, 2, I)), rng.normal(size=(3, 2, 2))


def _assert_untouched(
    model: bptt.Sequential,
    params: dict[str, np.ndarray],
    values: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    h0: np.ndarray,
    h0_copy: np.ndarray,
) -> None:
    for k, v in model.params.items():
        assert v is params[k], k
        assert v.dtype == np.float64, k
        np.testing.assert_array_equal(v, values[k], err_msg=k)
    for k, g in model.grads.items():
        assert g is grads[k], k
    for layer in (model[0], model[1], model[2]):
        assert layer.dtype == np.float64  # type: ignore[attr-defined]
    assert model[0].h0 is h0
    np.testing.assert_array_equal(h0, h0_copy)
    assert model[1].h0 is None


@pytest.mark.parametrize("method", ["complex", "central"])
def test_gradcheck_leaves_the_model_as_it_was(method: str) -> None:
    """Same param arrays, bit-identical values, float64 layers, h0 restored and None kept None."""
    model, h0, x, target = _restoration_setup()
    params, grads = model.params, model.grads
    values = {k: v.copy() for k, v in params.items()}
    h0_copy, x_copy, y_before = h0.copy(), x.copy(), model.forward(x)
    report = bptt.gradcheck(model, bptt.MSELoss(), x, target, method=method)
    assert set(report.errors) >= {"0.h0", "1.h0"}
    _assert_untouched(model, params, values, grads, h0, h0_copy)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(model.forward(x), y_before)


def test_gradcheck_restores_the_model_when_the_loss_raises() -> None:
    """A ShapeError from the loss (bad target) still leaves the model as it was."""
    model, h0, x, _ = _restoration_setup()
    params, grads = model.params, model.grads
    values = {k: v.copy() for k, v in params.items()}
    with pytest.raises(bptt.ShapeError):
        bptt.gradcheck(model, bptt.MSELoss(), x, np.zeros((3, 2, 5)))
    _assert_untouched(model, params, values, grads, h0, h0.copy())


def test_gradcheck_refuses_a_float32_model() -> None:
    """gradcheck needs float64 weights: a float32 layer anywhere is a TypeError."""
    rng = np.random.default_rng(11)
    x, target = rng.normal(size=(2, 1, I)), rng.normal(size=(2, 1, H))
    with pytest.raises(TypeError, match="float64"):
        bptt.gradcheck(bptt.RNN(I, H, rng=0, dtype=np.float32), bptt.MSELoss(), x, target)
    model = bptt.Sequential([bptt.RNN(I, H, rng=0), bptt.Dense(H, H, rng=1, dtype=np.float32)])
    with pytest.raises(TypeError, match="float64"):
        bptt.gradcheck(model, bptt.MSELoss(), x, target)


@pytest.mark.parametrize("method", ["forward", "Complex", "", None])
def test_bad_method_raises_value_error(method: Any) -> None:
    """method must be "complex" or "central"."""
    rng = np.random.default_rng(12)
    with pytest.raises(ValueError, match="method"):
        bptt.gradcheck(
            bptt.Dense(I, 2, rng=0),
            bptt.MSELoss(),
            rng.normal(size=(2, 1, I)),
            rng.normal(size=(2, 1, 2)),
            method=method,
        )
