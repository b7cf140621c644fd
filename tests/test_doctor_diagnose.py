"""The doctor's engine (``diagnose``, ``match``, ``locate``, ``catalogue``, ``report``) on planted bugs.

Every learner here is a ``Probe`` made by hand from the reference with one mistake switched on
(``variants.Bug``), so these tests hold the engine to the catalogue without the adapter: each
mistake must be named with its key (and its factor), batched and one sequence at a time; the
reference must get a clean bill of health for every spec; nothing else may be named.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from bptt.doctor.catalogue import CATALOGUE, KEYS, Sizes, describe, factor_name
from bptt.doctor.diagnose import BATCH, STEPS, diagnose, make_data
from bptt.doctor.probe import Probe
from bptt.doctor.spec import ACTIVATIONS, LOSSES, OUTPUTS, REDUCTIONS, Spec
from bptt.doctor.spec import STEPS as STEP_KINDS
from bptt.doctor.variants import Bug, backprop

ALL = ("W_ih", "W_hh", "b", "W_ho", "b_o")
EXTRA = ("x", "h0", "delta")
SPECS = [
    Spec(*c)
    for c in itertools.product(ACTIVATIONS, OUTPUTS, LOSSES, REDUCTIONS, STEP_KINDS)
    if not (c[1] == "identity" and c[2] in ("bce", "cross_entropy"))
]


def make_probe(
    spec: Spec,
    bug: Bug | None = None,
    *,
    I: int = 2,
    H: int = 4,
    O: int = 3,
    batched: bool = True,
    roles: tuple[str, ...] = ALL,
    extra: tuple[str, ...] = EXTRA,
    run: Callable[..., dict[str, Any]] | None = None,
) -> Probe:
    """A learner in the reference convention with ``bug`` planted (``accumulating-gradients``: the
    n-th call returns n times the gradients, as a learner that never resets them does)."""
    shapes = {
        r: s for r, s in {"W_ih": (I, H), "W_hh": (H, H), "b": (H,), "W_ho": (H, O), "b_o": (O,)}.items()
    }
    shapes = {r: s for r, s in shapes.items() if r in roles}
    calls = [0]

    def planted(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
        calls[0] += 1
        b = Bug(bug.key, calls[0]) if bug is not None and bug.key == "accumulating-gradients" else bug
        grads = backprop(spec, weights, x, y, b).grads
        return {r: g for r, g in grads.items() if r in shapes or r in extra}

    names = {r: f"d{r}" for r in shapes}
    return Probe(shapes, names, batched, run or planted, lambda r, s: s, "a planted learner", (__file__,))


BASE = Spec("tanh", "identity", "mse", "sum", "every")
SIGMOID_OUT = Spec("sigmoid", "sigmoid", "half_mse", "sum", "every")
# (key, option, spec, sizes (I, H, O))
CASES = [
    ("missing-recurrence", None, BASE, (2, 4, 3)),
    ("missing-recurrence", None, Spec("sigmoid", "sigmoid", "bce", "mean", "last"), (2, 4, 3)),
    ("last-step-only", None, BASE, (2, 4, 3)),
    ("no-activation-derivative", "hidden", BASE, (2, 4, 3)),
    ("no-activation-derivative", "hidden", Spec("relu"), (2, 4, 3)),
    ("no-activation-derivative", "output", SIGMOID_OUT, (2, 4, 3)),
    ("activation-derivative-twice", "hidden", SIGMOID_OUT, (2, 4, 3)),
    ("activation-derivative-twice", "output", Spec("tanh", "sigmoid", "bce"), (2, 4, 3)),
    ("derivative-of-preactivation", "hidden", BASE, (2, 4, 3)),
    ("derivative-of-preactivation", "output", SIGMOID_OUT, (2, 4, 3)),
    ("recurrent-weight-not-transposed", None, BASE, (2, 4, 3)),
    ("gradient-transposed", "W_hh", BASE, (2, 4, 3)),
    ("gradient-transposed", "W_ih", BASE, (2, 4, 3)),  # not square: a shape mistake
    ("gradient-transposed", "W_ho", BASE, (2, 4, 4)),  # square: only the values tell
    ("off-by-one", None, BASE, (2, 4, 3)),
    ("accumulating-gradients", None, BASE, (2, 4, 3)),
    ("flipped-sign", None, BASE, (2, 4, 3)),
    ("flipped-sign", None, Spec("tanh", "softmax", "cross_entropy", "mean"), (2, 4, 3)),
    ("h0-gradient", "zero", BASE, (2, 4, 3)),
    ("h0-gradient", "dh1", BASE, (2, 4, 3)),
    ("h0-gradient", "da1", BASE, (2, 4, 3)),
    ("h0-gradient", "last", BASE, (2, 4, 3)),
    ("bias-not-summed", "steps", BASE, (2, 4, 3)),
    ("bias-not-summed", "steps-batch", BASE, (2, 4, 3)),
    ("bias-not-summed", "columns", BASE, (2, 4, 3)),
    ("bias-not-summed", "last", BASE, (2, 4, 3)),
    ("overwritten-cache", None, BASE, (2, 4, 3)),
    ("overwritten-cache", None, SIGMOID_OUT, (3, 5, 2)),
]


def _id(case: tuple[Any, ...]) -> str:
    key, option, spec, _ = case
    return f"{key}-{option}-{spec.activation}-{spec.output}-{spec.loss}-{spec.steps}"


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one-sequence"])
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_every_planted_mistake_is_named(case: tuple[Any, ...], batched: bool) -> None:
    """The planted mistake, and nothing else, is named; the report is not healthy."""
    key, option, spec, (I, H, O) = case
    report = diagnose(make_probe(spec, Bug(key, option), I=I, H=H, O=O, batched=batched), spec)
    assert not report.healthy
    assert report.keys == [key], str(report)
    d = report.diagnoses[0]
    assert (d.number, d.title) == (
        CATALOGUE[key].number,
        describe(key, spec, _sizes(I, H, O, batched), option).title,
    )
    assert d.wrong and d.right and d.why


def _sizes(I: int, H: int, O: int, batched: bool) -> Sizes:
    return Sizes(I, H, O, BATCH if batched else 1, STEPS)


def test_bias_per_sequence_is_a_mistake_only_with_a_batch() -> None:
    """``db`` of shape ``(B, H)``: with ``B = 1`` it is the sum already."""
    report = diagnose(make_probe(BASE, Bug("bias-not-summed", "batch")), BASE)
    assert report.keys == ["bias-not-summed"]
    assert report.diagnoses[0].detail == "b returned with shape (3, 4), b_o returned with shape (3, 3)"
    assert diagnose(make_probe(BASE, Bug("bias-not-summed", "batch"), batched=False), BASE).healthy


@pytest.mark.parametrize(
    ("factor", "batched", "name"),
    [
        (2.0, True, "2"),
        (0.5, True, "½"),
        (3.0, True, "B = 3"),
        (1 / 3, True, "1/B = 1/3"),
        (5.0, True, "T = 5"),
        (0.2, True, "1/T = 1/5"),
        (15.0, True, "T·B = 15"),
        (1 / 15, True, "1/(T·B) = 1/15"),
        (2.0, False, "2"),
        (5.0, False, "T = 5"),
        (0.2, False, "1/T = 1/5"),
        (0.37, True, "0.37"),
    ],
)
def test_scale_names_its_factor(factor: float, batched: bool, name: str) -> None:
    report = diagnose(make_probe(BASE, Bug("scale", factor), batched=batched), BASE)
    assert report.keys == ["scale"]
    assert report.diagnoses[0].detail == f"a factor of {name}"
    assert report.diagnoses[0].steps == (1, 2, 3, 4, 5)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(vars(s).values()))
def test_the_reference_is_healthy(spec: Spec) -> None:
    """A correct learner gets a clean bill of health, batched or not, with or without biases."""
    for batched, roles in ((True, ALL), (False, ("W_ih", "W_hh", "W_ho"))):
        report = diagnose(make_probe(spec, None, batched=batched, roles=roles), spec)
        assert report.healthy and report.diagnoses == [], str(report)
        assert set(report.errors) == {*roles, *EXTRA}
        assert max(report.errors.values()) < 1e-12
        assert "healthy: every gradient agrees with the reference" in str(report)


@pytest.mark.parametrize(
    "spec",
    [Spec("sigmoid", "sigmoid", "bce", "mean", "last"), Spec("relu", "softmax", "cross_entropy", "sum")],
    ids=str,
)
def test_no_false_alarm_across_specs(spec: Spec) -> None:
    """Under other specs each planted bug is named, or, where it changes no gradient there
    (relu's derivative is its own square), the learner is healthy: never another key."""
    for key, option, _, sizes in CASES:
        if option == "output" and spec.output != "sigmoid":
            continue
        report = diagnose(make_probe(spec, Bug(key, option), I=sizes[0], H=sizes[1], O=sizes[2]), spec)
        assert report.keys in ([key], []), (key, option, str(report))
        assert report.healthy == (report.keys == []), (key, option)


# --- what the report says ----------------------------------------------------------------------------
def test_a_healthy_report_lists_every_gradient() -> None:
    text = str(diagnose(make_probe(BASE), BASE))
    for name, role in (("dW_ih", "W_ih"), ("dW_hh", "W_hh"), ("db_o", "b_o"), ("x", "x"), ("delta", "delta")):
        assert any(line.split()[:2] == [name, role] and line.endswith("✓") for line in text.splitlines())
    assert "(5, 3, 2)" in text  # x's shape


def test_an_unhealthy_report_marks_the_wrong_gradients() -> None:
    report = diagnose(make_probe(BASE, Bug("off-by-one")), BASE)
    rows = {row.role: row for row in report.rows}
    assert not rows["W_hh"].ok(report.tolerance) and rows["W_ih"].ok(report.tolerance)
    text = str(report)
    assert "#5 off-by-one: dW_hh pairs δa_t with h_t where h_{t-1} is due" in text
    assert "right: dW_hh = Σ_t h_{t-1}ᵀ·δa_t   each (4,3)·(3,4) -> (4,4), t = 1..5" in text
    assert "dW_hh = h_0ᵀ·δa_1 + h_1ᵀ·δa_2 + h_2ᵀ·δa_3" in text  # bptt explain's sum


def test_missing_recurrence_located_by_the_learners_delta() -> None:
    """δa_T agrees, δa_t for t < T do not: the error starts one step back, in the recursion."""
    report = diagnose(make_probe(BASE, Bug("missing-recurrence")), BASE)
    d = report.diagnoses[0]
    assert d.steps == (1, 2, 3, 4)
    assert "step 5 agrees, so the error starts further back, at step 4" in d.where
    text = str(report)
    assert "measured: δa_t (your delta): steps 1–4 of 5 disagree" in text
    assert "right at T = 1, wrong from T = 2 on" in text


def test_missing_recurrence_located_by_the_x_impulse() -> None:
    """Without δ or dx returned, dW_ih with x at one step only gives each step's term."""
    report = diagnose(make_probe(BASE, Bug("missing-recurrence"), extra=()), BASE)
    assert report.keys == ["missing-recurrence"]
    assert "measured: x_tᵀ·δa_t (your dW_ih, with x at step t only): steps 1–4 of 5 disagree" in str(report)


def test_a_derivative_mistake_starts_at_the_last_step() -> None:
    report = diagnose(make_probe(BASE, Bug("no-activation-derivative")), BASE)
    assert "the error starts at the last step" in report.diagnoses[0].where
    assert "wrong already at T = 1" in str(report)


def test_last_step_only_says_which_terms_are_missing() -> None:
    report = diagnose(make_probe(BASE, Bug("last-step-only")), BASE)
    assert report.diagnoses[0].steps == (1, 2, 3, 4)
    assert "those of steps 1–4 are missing" in report.diagnoses[0].where


def test_an_unknown_mistake_is_reported_unnamed() -> None:
    """A gradient off in a way no variant explains: not healthy, no key, the roles said."""

    def run(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
        g = backprop(BASE, weights, x, y).grads
        g["W_hh"] = g["W_hh"] + 0.01 * np.arange(g["W_hh"].size).reshape(g["W_hh"].shape)
        return {r: g[r] for r in ALL}

    report = diagnose(make_probe(BASE, run=run), BASE)
    assert not report.healthy and report.diagnoses == []
    assert "not one of the catalogue's mistakes: W_hh disagrees with the reference" in str(report)


def test_a_missing_gradient_is_not_healthy() -> None:
    def run(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
        g = backprop(BASE, weights, x, y).grads
        return {r: g[r] for r in ("W_ih", "W_hh", "b", "b_o")}

    report = diagnose(make_probe(BASE, run=run), BASE)
    assert not report.healthy and report.diagnoses == []
    assert "no gradient was found for dW_ho (W_ho)" in str(report)
    assert "not returned" in str(report)


def test_a_gradient_of_an_unreadable_shape() -> None:
    def run(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
        g = backprop(BASE, weights, x, y).grads
        return {**{r: g[r] for r in ALL}, "W_ih": np.zeros((3, 3))}

    report = diagnose(make_probe(BASE, run=run), BASE)
    assert not report.healthy and report.errors["W_ih"] == float("inf")
    assert "dW_ih (W_ih) has shape (3, 3), which cannot be read" in str(report)
    assert "✗ shape (3, 3), (2, 4) due" in str(report)


def _and(main: Bug, change: Callable[[dict[str, Any], Any, int], None]) -> Callable[..., dict[str, Any]]:
    """A learner with ``main`` planted whose returned gradients ``change`` also spoils (given the
    variant's pass and the call number)."""
    calls = [0]

    def run(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
        calls[0] += 1
        p = backprop(BASE, weights, x, y, main)
        g = dict(p.grads)
        change(g, p, calls[0])
        return g

    return run


def _bias_per_step(g: dict[str, Any], p: Any, n: int) -> None:
    g["b"] = p.da.sum(axis=1)  # (T, H)


def _accumulate(g: dict[str, Any], p: Any, n: int) -> None:
    g.update({r: n * g[r] for r in ALL})


def _h0_is_da1(g: dict[str, Any], p: Any, n: int) -> None:
    g["h0"] = p.da[0]


def _transpose_W_hh(g: dict[str, Any], p: Any, n: int) -> None:
    g["W_hh"] = g["W_hh"].T


TWO = [
    (Bug("missing-recurrence"), _bias_per_step, ["missing-recurrence", "bias-not-summed"]),
    (Bug("off-by-one"), _accumulate, ["off-by-one", "accumulating-gradients"]),
    (Bug("scale", -3.0), lambda g, p, n: None, ["flipped-sign", "scale"]),
    (Bug("derivative-of-preactivation"), _h0_is_da1, ["derivative-of-preactivation", "h0-gradient"]),
    (Bug("missing-recurrence"), _transpose_W_hh, ["missing-recurrence", "gradient-transposed"]),
]


@pytest.mark.parametrize(("main", "change", "keys"), TWO, ids=["+".join(k) for *_, k in TWO])
def test_two_mistakes_at_once(main: Bug, change: Any, keys: list[str]) -> None:
    """A mistake in how δ is computed, with one in what backward returns: both named, in catalogue order."""
    report = diagnose(make_probe(BASE, run=_and(main, change)), BASE)
    assert report.keys == keys, str(report)


def test_a_learner_that_cannot_take_T1_is_still_diagnosed() -> None:
    def run(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
        if len(x) == 1:
            raise IndexError("needs two steps")
        return {
            r: g
            for r, g in backprop(BASE, weights, x, y, Bug("missing-recurrence")).grads.items()
            if r in ALL
        }

    report = diagnose(make_probe(BASE, run=run), BASE)
    assert report.keys == ["missing-recurrence"]
    assert "raised at T = 1" in str(report)


def test_a_batched_probe_that_takes_one_sequence_only() -> None:
    """Lists of (I, 1) columns may be one sequence: when B = 3 raises and B = 1 runs, B = 1 it is."""

    def run(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
        if x.shape[1] != 1:
            raise ValueError("operands could not be broadcast together with shapes (4,1) (4,3)")
        return {r: g for r, g in backprop(BASE, weights, x, y).grads.items() if r in ALL}

    report = diagnose(make_probe(BASE, run=run), BASE)
    assert report.healthy
    assert "checked on one sequence: with B = 3 at once your code raised ValueError" in str(report)
    assert "B = 1" in report.header[2]


def test_the_seed_chooses_the_data() -> None:
    probe = make_probe(BASE)
    a, b = make_data(probe, BASE, seed=0), make_data(probe, BASE, seed=1)
    assert not np.allclose(a.x, b.x)
    np.testing.assert_array_equal(a.x, make_data(probe, BASE, seed=0).x)
    assert str(diagnose(make_probe(BASE, Bug("off-by-one")), BASE, seed=3)) == str(
        diagnose(make_probe(BASE, Bug("off-by-one")), BASE, seed=3)
    )


@pytest.mark.parametrize("loss", LOSSES)
def test_targets_are_valid_for_the_loss(loss: str) -> None:
    spec = Spec("tanh", "softmax" if loss == "cross_entropy" else "sigmoid", loss)
    y = make_data(make_probe(spec), spec).y
    if loss == "bce":
        assert (y > 0).all() and (y < 1).all()
    if loss == "cross_entropy":
        np.testing.assert_array_equal(y.sum(axis=-1), 1.0)
        assert set(np.unique(y)) == {0.0, 1.0}


@pytest.mark.parametrize("loss", ["bce", "cross_entropy"])
def test_a_probability_loss_on_an_identity_output_is_refused(loss: str) -> None:
    spec = Spec("tanh", "identity", loss)
    with pytest.raises(ValueError, match=rf"loss='{loss}' takes ŷ in \(0, 1\); expected output='sigmoid'"):
        diagnose(make_probe(spec), spec)


def test_a_softmax_over_one_output_is_refused() -> None:
    spec = Spec("tanh", "softmax", "cross_entropy")
    with pytest.raises(ValueError, match=r"softmax.*O = 1.*expected O ≥ 2"):
        diagnose(make_probe(spec, O=1), spec)


# --- the catalogue -----------------------------------------------------------------------------------
def test_the_catalogue_has_twelve_numbers_and_the_issues_keys() -> None:
    assert sorted({e.number for e in CATALOGUE.values()}) == list(range(1, 13))
    assert len(KEYS) == 15 and KEYS[0] == "missing-recurrence" and KEYS[-1] == "overwritten-cache"
    sizes = Sizes(2, 16, 1, 1, 5)
    for key in KEYS:
        d = describe(key, Spec("sigmoid", "sigmoid", "half_mse"), sizes)
        assert d.key == key and d.title and d.wrong and d.right and d.why
        assert "(1,16)" in d.right or "(16,)" in d.right or "(1,1)" in d.right or "(2,16)" in d.right, key
    with pytest.raises(ValueError, match="unknown mistake 'typo'"):
        describe("typo", Spec(), sizes)


def test_factor_names() -> None:
    s = Sizes(2, 4, 3, 3, 5)
    assert factor_name(45.0, s) == "T·B·O = 45"
    assert factor_name(1 / 9, s) == "1/(B·O) = 1/9"
    assert factor_name(0.37, s) is None
    assert factor_name(3.0, Sizes(2, 4, 3, 1, 5)) == "O = 3"  # B = 1: no factor of B to find


# --- the right derivation: bptt explain's lines ------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "option", "spec", "expect"),
    [
        ("missing-recurrence", None, BASE, "δh_2 = ∂L/∂h_2 from its output + δa_3 @ W_hhᵀ from step 3"),
        ("flipped-sign", None, BASE, "δŷ_t = 2(ŷ_t - y_t)"),
        ("scale", None, Spec("sigmoid", "sigmoid", "mse"), "δo_t = δŷ_t ⊙ (ŷ_t ⊙ (1 - ŷ_t))"),
        ("h0-gradient", "zero", BASE, "δh_0 = δa_1 @ W_hhᵀ"),
        ("bias-not-summed", "steps", BASE, "db_o = Σ_b δŷ_1"),  # identity output: o is ŷ
        ("gradient-transposed", "W_ho", BASE, "exactly W_ho's own shape (4,3) ✓"),
        ("missing-recurrence", None, Spec("tanh", "softmax", "cross_entropy"), "δh_t = δo_t @ W_hoᵀ"),
    ],
)
def test_the_derivation_holds_the_right_term(key: str, option: Any, spec: Spec, expect: str) -> None:
    from bptt.doctor.derivation import derivation

    lines = derivation(spec, Sizes(2, 4, 3, 3, 5), ALL, [(key, option)])
    assert lines[0].startswith("The right derivation (bptt explain, T = 3, B = 3")
    assert any(expect in line for line in lines), "\n".join(lines)
    assert not any(
        " W " in line or "Wᵀ" in line.replace("W_hhᵀ", "").replace("W_ihᵀ", "").replace("W_hoᵀ", "")
        for line in lines
    )


def test_a_column_learner_is_told_how_to_read_the_terms() -> None:
    probe = make_probe(BASE, Bug("recurrent-weight-not-transposed"))
    column = Probe(
        probe.shapes, probe.names, True, probe.run, lambda r, s: s[::-1] if len(s) == 2 else s, "columns", ()
    )
    report = diagnose(column, BASE)
    assert report.keys == ["recurrent-weight-not-transposed"]
    assert "in your column vectors read δa @ W_hhᵀ as W_hhᵀ @ δa" in str(report)
    assert {row.role: row.shape for row in report.rows}["W_ih"] == (4, 2)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one-sequence"])
def test_the_seed_shape_variant_is_named_from_its_crash(batched: bool) -> None:
    """The variant's own ``dx_t @ W_hh`` raises in ``variants.py``: read back as the seed's mistake."""
    import bptt.doctor.variants as variants

    probe = make_probe(BASE, Bug("seed-shape-mistake"), batched=batched)
    probe = Probe(
        probe.shapes, probe.names, batched, probe.run, probe.learner_shape, "", (variants.__file__,)
    )
    report = diagnose(probe, BASE)
    assert report.crashed and report.keys == ["seed-shape-mistake"]
    assert "dx_t @ W_hh, that is δx_5 @ W_hh   (1,2) @ (4,4)" in report.diagnoses[0].wrong
    assert report.diagnoses[0].right.startswith("δh_{t-1} = δa_t @ W_hhᵀ   (1,4)@(4,4) -> (1,4)")


PAIRS = [
    (Bug("missing-recurrence"), Bug("no-activation-derivative"), BASE),
    (Bug("recurrent-weight-not-transposed"), Bug("off-by-one"), BASE),
    (Bug("last-step-only"), Bug("derivative-of-preactivation"), SIGMOID_OUT),
    (Bug("overwritten-cache"), Bug("activation-derivative-twice", "output"), SIGMOID_OUT),
]


@pytest.mark.parametrize(("first", "second", "spec"), PAIRS, ids=[f"{a.key}+{b.key}" for a, b, _ in PAIRS])
def test_two_mistakes_in_how_delta_is_computed(first: Bug, second: Bug, spec: Spec) -> None:
    """No single variant fits, a pair does: both named, and only they."""

    def run(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
        return dict(backprop(spec, weights, x, y, (first, second)).grads)

    report = diagnose(make_probe(spec, run=run), spec)
    assert report.keys == sorted([first.key, second.key], key=KEYS.index), str(report)


def test_each_of_two_mistakes_keeps_its_own_steps() -> None:
    """Missing recurrence leaves step T right; a missing derivative is wrong from step T on."""

    def run(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
        return dict(
            backprop(BASE, weights, x, y, (Bug("missing-recurrence"), Bug("no-activation-derivative"))).grads
        )

    report = diagnose(make_probe(BASE, run=run), BASE)
    assert [(d.key, d.steps) for d in report.diagnoses] == [
        ("missing-recurrence", (1, 2, 3, 4)),
        ("no-activation-derivative", (1, 2, 3, 4, 5)),
    ]


SOFTMAX_CE = Spec("tanh", "softmax", "cross_entropy", "sum")


@pytest.mark.parametrize(
    ("truth", "told", "words"),
    [
        (SOFTMAX_CE, Spec("tanh", "identity", "mse", "sum"), "output='softmax', loss='cross_entropy'"),
        (
            SOFTMAX_CE,
            Spec("sigmoid", "softmax", "cross_entropy", "sum"),
            "activation='tanh' (--activation tanh)",
        ),
    ],
)
def test_a_right_learner_told_the_wrong_settings_is_told_which_fit(
    truth: Spec, told: Spec, words: str
) -> None:
    """No mistake fits, but every gradient agrees under other settings: the report names the nearest.
    (A wrong reduction is the catalogue's scale mistake, and bce told as mse a missing output
    derivative: those are named as such.)"""
    report = diagnose(make_probe(truth), told)
    assert not report.healthy and report.diagnoses == []
    assert f"check the settings: every gradient agrees with the reference for {words}" in " ".join(
        str(report).replace("\n  ", " ").splitlines()
    )


def test_no_settings_hint_when_no_setting_fits() -> None:
    """A gradient wrong under every setting gets no hint, and a named mistake never does."""

    def run(weights: Mapping[str, Any], x: Any, y: Any) -> dict[str, Any]:
        g = backprop(BASE, weights, x, y).grads
        g["W_hh"] = g["W_hh"] + 0.01 * np.arange(g["W_hh"].size).reshape(g["W_hh"].shape)
        return {r: g[r] for r in ALL}

    assert "check the settings" not in str(diagnose(make_probe(BASE, run=run), BASE))
    named = diagnose(make_probe(BASE, Bug("missing-recurrence")), BASE)
    assert named.diagnoses and "check the settings" not in str(named)
