"""Run the learner beside the reference, compare every gradient, name the mistakes, say where they start.

``diagnose(probe, spec)`` draws seeded random weights (scale 0.5) and data (``T = 5``; ``B = 3``
when the learner takes batches, else 1; T, B and 2 differ, so a factor of each is told apart),
with targets valid for the loss. It runs the learner twice on the same input (a second answer
twice the first: the gradients accumulate), compares each gradient with the reference (shape,
then the largest error relative to the reference's largest magnitude), names what is wrong by
``match``, locates it by ``locate``, and explains a crash by ``crash``.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from .._types import Array
from .catalogue import Sizes, describe, factor_name, simplest_fraction
from .crash import analyse
from .derivation import derivation
from .locate import Runner, by_impulse, from_returned, span, sweep, variant_steps, where
from .match import WEIGHT_ROLES, Finding, Match, best_match, normalise, rel_error
from .probe import Probe
from .report import Diagnosis, Report, Row
from .spec import ACTIVATIONS, LOSSES, OUTPUTS, REDUCTIONS, Spec
from .spec import STEPS as STEP_KINDS
from .variants import Pass, backprop

__all__ = ["BATCH", "STEPS", "TOLERANCE", "Data", "diagnose", "make_data"]

TOLERANCE = 1e-7  # learners write float64 but sum in their own order
STEPS, BATCH = 5, 3  # distinct from each other and from 2, so factors of T, B and 2 are told apart
_ORDER = (*WEIGHT_ROLES, "x", "h0", "delta")


@dataclass(frozen=True)
class Data:
    """The doctor's weights by role, ``x (T, B, I)``, ``y`` (``(T, B, O)`` or ``(B, O)``), and the sizes."""

    weights: dict[str, Array]
    x: Array
    y: Array
    sizes: Sizes


def make_data(probe: Probe, spec: Spec, seed: int = 0, T: int = STEPS) -> Data:
    """Seeded random weights of ``probe.shapes`` (normal, scale 0.5), inputs, and targets for the loss."""
    rng = np.random.default_rng(seed)
    weights = {r: rng.normal(0.0, 0.5, probe.shapes[r]) for r in WEIGHT_ROLES if r in probe.shapes}
    (I, H), O = weights["W_ih"].shape, weights["W_ho"].shape[1]
    if spec.output == "softmax" and O == 1:
        raise ValueError(
            "doctor: output='softmax' over O = 1 output is always 1; expected O ≥ 2 (W_ho (H, O))"
        )
    if spec.output == "identity" and spec.loss in ("bce", "cross_entropy"):
        raise ValueError(
            f"doctor: loss={spec.loss!r} takes ŷ in (0, 1); expected output='sigmoid' or 'softmax', "
            "got output='identity'"
        )
    B = BATCH if probe.batched else 1
    x = rng.normal(size=(T, B, I))
    shape = (T, B, O) if spec.steps == "every" else (B, O)
    if spec.loss == "bce":
        y = rng.uniform(0.05, 0.95, shape)
    elif spec.loss == "cross_entropy":
        y = np.eye(O)[rng.integers(0, O, shape[:-1])]  # one-hot
    else:
        y = rng.normal(size=shape)
    return Data(weights, x, y, Sizes(I, H, O, B, T))


def diagnose(probe: Probe, spec: Spec, *, seed: int = 0) -> Report:
    """Check ``probe``'s gradients against the reference of ``spec``; see the module docstring."""
    probe, data, first, remark = _first_run(probe, spec, seed)
    ref = backprop(spec, data.weights, data.x, data.y)
    header = _header(probe, spec, data, seed) + remark
    if isinstance(first, BaseException):  # the learner's own code raised: that is the finding
        return _crashed(first, probe, spec, data, ref, header)
    accumulating, notes, second = _second_call(probe, data, first)
    expected = _expected(probe, data.sizes)
    values, shape_findings, unreadable = normalise(first, expected)
    shape_findings = _merge_shapes(shape_findings)
    errors = {r: _error(v, ref, r) for r, v in values.items()}
    errors.update({r: float("inf") for f in shape_findings for r in f.roles})
    errors.update({r: float("inf") for r in unreadable})
    notes += [
        f"no gradient was found for {probe.names.get(r, r)} ({r})" for r in probe.shapes if r not in first
    ]
    notes += [
        f"{probe.names.get(r, r)} ({r}) has shape {s}, which cannot be read" for r, s in unreadable.items()
    ]
    wrong = any(e > TOLERANCE for e in errors.values())
    healthy = not (wrong or shape_findings or accumulating or notes)
    rows = _rows(probe, first, expected, errors)
    report = Report(healthy, errors, rows=rows, header=header, tolerance=TOLERANCE, findings=notes)
    if not healthy:
        run = _Fresh(probe, accumulating[0].roles, second) if accumulating else probe.run
        _name_and_locate(report, run, probe, spec, data, ref, values, shape_findings + accumulating, seed)
    return report


def _settings_hint(probe: Probe, spec: Spec, seed: int) -> list[str]:
    """When no mistake fits, the nearest settings under which every gradient agrees (a learner told the
    wrong loss is right for another); one learner run per target kind, fewest changes first."""
    fields = ("activation", "output", "loss", "reduction", "steps")
    grid = [Spec(*c) for c in itertools.product(ACTIVATIONS, OUTPUTS, LOSSES, REDUCTIONS, STEP_KINDS)]
    runs: dict[tuple[str, str], dict[str, Array] | None] = {}
    for other in sorted(grid, key=lambda s: sum(getattr(s, f) != getattr(spec, f) for f in fields)):
        data, got = (None, None) if other == spec else _learner_under(probe, other, seed, runs)
        if data is None:
            continue
        ref = backprop(other, data.weights, data.x, data.y)
        if got and all(_error(g, ref, r) <= TOLERANCE for r, g in got.items()):
            changed = [f for f in fields if getattr(other, f) != getattr(spec, f)]
            api = ", ".join(f"{f}={getattr(other, f)!r}" for f in changed)
            cli = " ".join(f"--{f} {getattr(other, f)}" for f in changed)
            said = f"check the settings: every gradient agrees with the reference for {api} ({cli})"
            return textwrap.wrap(said, 104, subsequent_indent="  ", break_on_hyphens=False)
    return []


def _learner_under(
    probe: Probe, spec: Spec, seed: int, runs: dict[tuple[str, str], dict[str, Array] | None]
) -> tuple[Data | None, dict[str, Array] | None]:
    """``spec``'s data (``None``: no such network) and the learner's gradients on it, one run per
    kind of target (real, in (0, 1), one-hot) and steps, kept in ``runs``."""
    try:
        data = make_data(probe, spec, seed)
    except ValueError:
        return None, None
    kind = (spec.loss if spec.loss in ("bce", "cross_entropy") else "real", spec.steps)
    if kind not in runs:
        try:
            runs[kind] = normalise(_run(probe, data), _expected(probe, data.sizes))[0]
        except Exception:  # a learner that cannot take these targets says nothing here
            runs[kind] = None
    return data, runs[kind]


def _first_run(
    probe: Probe, spec: Spec, seed: int
) -> tuple[Probe, Data, dict[str, Array] | BaseException, list[str]]:
    """The first call; a batched learner that raises on B sequences is tried on one (a list of columns
    ``(I, 1)`` says nothing about B), and is checked so if that runs."""
    data = make_data(probe, spec, seed)
    try:
        return probe, data, _run(probe, data), []
    except Exception as exc:
        if not probe.batched:
            return probe, data, exc, []
        error = exc
    single = replace(probe, batched=False)
    one = make_data(single, spec, seed)
    try:
        first = _run(single, one)
    except Exception as exc:
        return single, one, exc, []
    said = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return single, one, first, [f"checked on one sequence: with B = {BATCH} at once your code raised {said}"]


def _name_and_locate(
    report: Report,
    run: Runner,
    probe: Probe,
    spec: Spec,
    data: Data,
    ref: Pass,
    values: Mapping[str, Array],
    found: list[Finding],
    seed: int,
) -> None:
    """Fill ``report`` with the diagnoses (or the settings that fit), the location, the derivation."""
    wrong = tuple(r for r in values if _error(values[r], ref, r) > TOLERANCE)
    match = best_match(spec, data.weights, data.x, data.y, values, TOLERANCE) if wrong else None
    findings = found + (match.findings if match else [])
    pairs = sorted(((f, _diagnosis(f, spec, data, ref, match)) for f in findings), key=lambda p: p[1].number)
    report.diagnoses = [d for _, d in pairs]
    if wrong:
        report.findings += [] if report.diagnoses else _settings_hint(probe, spec, seed)
        report.findings += _located(run, spec, data, values, ref, match, wrong)
    keys = [(f.key, f.option) for f, _ in pairs]
    report.derivation = derivation(spec, data.sizes, probe.shapes, keys)


def _run(probe: Probe, data: Data) -> dict[str, Array]:
    """One call of the learner, on copies (it must not change the doctor's arrays)."""
    weights = {r: w.copy() for r, w in data.weights.items()}
    return {r: np.asarray(g) for r, g in probe.run(weights, data.x.copy(), data.y.copy()).items()}


def _merge_shapes(findings: list[Finding]) -> list[Finding]:
    """One bias-not-summed finding for ``b`` and ``b_o`` together, its option their shapes."""
    bias = [f for f in findings if f.key == "bias-not-summed"]
    rest = [f for f in findings if f.key != "bias-not-summed"]
    if not bias:
        return rest
    return [*rest, Finding("bias-not-summed", tuple(f.option for f in bias), tuple(f.roles[0] for f in bias))]


def _error(g: Array, ref: Pass, role: str) -> float:
    """``g``'s largest relative error; a ``delta`` may be ``δa_t`` (the contract's) or ``δh_t``."""
    if role == "delta":
        return min(rel_error(g, ref.da), rel_error(g, ref.dh))
    return rel_error(g, ref.grads[role])


def _expected(probe: Probe, s: Sizes) -> dict[str, tuple[int, ...]]:
    return {**probe.shapes, **_sizes_expected(s)}


def _sizes_expected(s: Sizes) -> dict[str, tuple[int, ...]]:
    return {"x": (s.T, s.B, s.I), "h0": (s.B, s.H), "delta": (s.T, s.B, s.H)}


def _second_call(
    probe: Probe, data: Data, first: Mapping[str, Array]
) -> tuple[list[Finding], list[str], dict[str, Array]]:
    """Run again on the same input: twice the first answer means the gradients accumulate."""
    try:
        second = _run(probe, data)
    except Exception as exc:
        return [], [f"a second call on the same input raised {type(exc).__name__}: {exc}"], {}
    twice: list[str] = []
    other: list[str] = []
    for r in WEIGHT_ROLES:
        if r not in first or r not in second or first[r].shape != second[r].shape:
            continue
        if rel_error(second[r], first[r]) <= TOLERANCE:
            continue
        (twice if rel_error(second[r], 2 * first[r]) <= TOLERANCE else other).append(r)
    notes = [f"a second call on the same input returned other values for {', '.join(other)}"] if other else []
    return ([Finding("accumulating-gradients", None, tuple(twice))] if twice else []), notes, second


class _Fresh:
    """The learner with accumulated gradients taken back out: each call returns that call's own part."""

    def __init__(self, probe: Probe, roles: tuple[str, ...], total: Mapping[str, Array]) -> None:
        self.probe, self.roles = probe, roles
        self.total = {r: g for r, g in total.items() if r in roles}  # what the learner holds so far

    def __call__(self, weights: Mapping[str, Array], x: Array, y: Array) -> dict[str, Array]:
        got = {
            r: np.asarray(g)
            for r, g in self.probe.run({r: w.copy() for r, w in weights.items()}, x, y).items()
        }
        out = dict(got)
        for r in self.roles:
            if r in got:
                out[r], self.total[r] = got[r] - self.total[r], got[r]
        return out


def _located(
    run: Runner,
    spec: Spec,
    data: Data,
    values: Mapping[str, Array],
    ref: Pass,
    match: Match | None,
    wrong: tuple[str, ...],
) -> list[str]:
    """The measured location (the learner's δ, or the x-impulse) and the sweep over T, as report lines."""
    expected = {**{r: v.shape for r, v in data.weights.items()}, **_sizes_expected(data.sizes)}
    loc = from_returned(values, ref, TOLERANCE) or by_impulse(
        run, spec, data.weights, data.x, data.y, expected, TOLERANCE
    )
    lines = (
        []
        if match
        else [
            f"not one of the catalogue's mistakes: {', '.join(wrong)} "
            f"disagree{'s' if len(wrong) == 1 else ''} with the reference"
        ]
    )
    measured = [loc.sentence(explain=match is None)] if loc is not None else []
    measured.append(sweep(run, spec, data.weights, data.x, data.y, expected, TOLERANCE))
    for i, m in enumerate(measured):
        wrapped = textwrap.wrap(m, 94, break_on_hyphens=False)
        lines += [f"{'measured:' if i == 0 and j == 0 else '':<10}{w}" for j, w in enumerate(wrapped)]
    return lines


def _diagnosis(f: Finding, spec: Spec, data: Data, ref: Pass, match: Match | None) -> Diagnosis:
    """A finding in the catalogue's words, with its factor, steps and where it starts."""
    detail, option = _detail(f, data.sizes)
    steps, text = _steps(f, spec, data, ref, match)
    d = describe(f.key, spec, data.sizes, option, steps=steps, detail=detail, where=text, roles=f.roles)
    return d


def _detail(f: Finding, s: Sizes) -> tuple[str, object]:
    """What is particular to this finding (``"a factor of B = 3"``), and the option to describe it by."""
    if f.key == "scale":
        factor = float(f.option)  # type: ignore[arg-type]
        named = factor_name(factor, s) or simplest_fraction(factor)
        return f"a factor of {named}", named
    if f.key == "bias-not-summed" and isinstance(f.option, tuple):
        shapes = zip(f.roles, f.option, strict=True)
        return ", ".join(f"{r} returned with shape {shape}" for r, shape in shapes), f.option
    return (str(f.option) if f.key == "gradient-transposed" else ""), f.option


def _steps(f: Finding, spec: Spec, data: Data, ref: Pass, match: Match | None) -> tuple[tuple[int, ...], str]:
    """The steps whose terms disagree, and where the error starts, in words."""
    T = data.sizes.T
    if f.key == "last-step-only":
        steps = tuple(range(1, T))
        text = f"only step {T}'s terms are summed; those of steps {span(steps)} are missing from every"
        return steps, text + " weight gradient"
    if f.key in ("scale", "flipped-sign"):
        steps = tuple(range(1, T + 1))  # every term carries the factor
    elif match is not None and f.key in {b.key for b in match.bugs} and match.pass_ is not None:
        roles = tuple(r for r in WEIGHT_ROLES if r in data.weights)
        alone = match.pass_  # one of two: its own steps
        if len(match.bugs) > 1:
            bug = next(b for b in match.bugs if b.key == f.key)
            alone = backprop(spec, data.weights, data.x, data.y, bug)
        steps = variant_steps(alone, ref, roles, TOLERANCE)
    else:
        steps = ()
    return steps, (where(steps, T) if steps else "")


def _rows(
    probe: Probe,
    got: Mapping[str, Array],
    expected: Mapping[str, tuple[int, ...]],
    errors: Mapping[str, float],
) -> list[Row]:
    """One row per gradient: every weight role, and ``x``, ``h0``, ``delta`` where returned."""
    rows = []
    for r in _ORDER:
        if r not in expected or (r not in probe.shapes and r not in got):
            continue
        want = probe.learner_shape(r, expected[r])
        if r not in got:
            rows.append(Row(r, probe.names.get(r, r), None, want, float("nan")))
            continue
        g = got[r]
        shape = probe.learner_shape(r, g.shape) if g.shape == expected[r] else tuple(g.shape)
        rows.append(Row(r, probe.names.get(r, r), shape, want, errors[r]))
    return rows


def _header(probe: Probe, spec: Spec, data: Data, seed: int) -> list[str]:
    s = data.sizes
    hidden = f"h_t = {spec.activation}(x_t @ W_ih + h_{{t-1}} @ W_hh{' + b' if 'b' in probe.shapes else ''})"
    o = f"h_t @ W_ho{' + b_o' if 'b_o' in probe.shapes else ''}"
    out = {"identity": o, "sigmoid": f"σ({o})", "softmax": f"softmax({o})"}[spec.output]
    loss = {
        "mse": "Σ (ŷ - y)²",
        "half_mse": "½ Σ (ŷ - y)²",
        "bce": "-Σ [y log ŷ + (1 - y) log(1 - ŷ)]",
        "cross_entropy": "-Σ y log ŷ",
    }[spec.loss]
    when = "at every step" if spec.steps == "every" else "at the last step only"
    mean = ", divided by N (mean)" if spec.reduction == "mean" else ", summed"
    hint = (
        [
            "terms are written in row vectors (x @ W); in your column vectors read δa @ W_hhᵀ as "
            "W_hhᵀ @ δa, and xᵀ·δ as δ·xᵀ"
        ]
        if _column(probe)
        else []
    )
    return [
        f"bptt doctor: {probe.convention}",
        f"network: {hidden}; ŷ_t = {out} {when}; L = {loss}{mean}",
        f"checked on seeded random weights and data (seed {seed}): "
        f"T = {s.T}, B = {s.B}, I = {s.I}, H = {s.H}, O = {s.O}",
        *hint,
    ]


def _column(probe: Probe) -> bool:
    """Whether the learner writes column vectors ``W @ x`` (its weights are the reference's transposes)."""
    return probe.learner_shape("W_ih", (1, 2)) == (2, 1)


def _crashed(
    exc: BaseException, probe: Probe, spec: Spec, data: Data, ref: Pass, header: list[str]
) -> Report:
    """The report for a learner whose code raised: where, the failing product, the right one."""
    crash = analyse(exc, probe.files, ref, data.weights, data.x, _column(probe))
    report = Report(False, {}, header=header, tolerance=TOLERANCE, crashed=True, crash=crash.lines())
    if crash.seed:
        d = describe("seed-shape-mistake", spec, data.sizes, steps=(crash.step,) if crash.step else ())
        report.diagnoses = [replace(d, wrong=crash.wrong, right=crash.right, detail=crash.where)]
        report.derivation = derivation(spec, data.sizes, probe.shapes, [("seed-shape-mistake", None)])
    elif crash.wrong:
        report.findings = [f"failing product: {crash.wrong}"]
        report.findings += [f"the product that belongs there: {crash.right}"] if crash.right else []
    return report
