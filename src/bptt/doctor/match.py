"""Name the mistake: the deliberate variant of the reference whose gradients are the learner's.

First the shapes: a weight gradient returned transposed, or a bias gradient not summed over
steps or sequences, is put right and noted (``normalise``). Then the values: every variant of
``variants`` runs on the same weights and data, and a variant *fits* when each gradient the
learner returned equals one of the values that variant allows for it, all times one common
factor ``c`` (``-1``: the sign is flipped; ``B``, ``1/T``, ...: a scale). A variant allows, beside
its own value: a square weight gradient transposed, a bias gradient of the last step only, and
the ``h0`` gradient of the other classic forms, each noted as a further finding. Of the variants
that fit, the one with the fewest findings wins (the reference itself, when only sign, scale,
transposes or ``h0`` are wrong). When no single variant fits, pairs of compatible variants are
tried: a learner may well get both the recurrent term and a derivative wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .._types import Array
from .spec import Spec
from .variants import DERIVATIVE_KEYS, Bug, Pass, backprop

__all__ = ["WEIGHT_ROLES", "Finding", "Match", "best_match", "candidates", "normalise", "rel_error"]

WEIGHT_ROLES = ("W_ih", "W_hh", "b", "W_ho", "b_o")


@dataclass(frozen=True)
class Finding:
    """One mistake found: its catalogue key, its option (as in ``variants.Bug``), the roles it explains."""

    key: str
    option: object = None
    roles: tuple[str, ...] = ()


@dataclass
class Match:
    """The variant that fits (the bugs it plants, none for the reference), the common factor, and every
    finding (the variant's first)."""

    bugs: tuple[Bug, ...]
    factor: float
    findings: list[Finding] = field(default_factory=list)
    pass_: Pass | None = None


def rel_error(got: Array, want: Array, scale: float | None = None) -> float:
    """``max|got - want| / scale`` (``scale``: the reference's largest magnitude; ``inf`` for shapes)."""
    if got.shape != want.shape:
        return float("inf")
    if scale is None:
        scale = float(np.abs(want).max(initial=0.0))
    diff = float(np.abs(got - want).max(initial=0.0))
    if not np.isfinite(diff):
        return float("inf")
    return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


def normalise(
    grads: Mapping[str, Array], expected: Mapping[str, tuple[int, ...]]
) -> tuple[dict[str, Array], list[Finding], dict[str, tuple[int, ...]]]:
    """Put the learner's shape mistakes right where they can be read.

    Parameters
    ----------
    grads : Mapping[str, ndarray]
        By role, as the probe returned them (a shape that fits no convention passed on as is).
    expected : Mapping[str, tuple[int, ...]]
        The shape due for each role: ``W_ih (I, H)``, ..., ``x (T, B, I)``, ``h0 (B, H)``,
        ``delta (T, B, H)``.

    Returns
    -------
    values : dict[str, ndarray]
        The gradients in the expected shapes (a non-square weight gradient transposed back, a
        bias gradient with steps or sequences left in, e.g. ``(T, H)``, summed to ``(H,)``).
    findings : list[Finding]
        One per gradient put right so.
    unreadable : dict[str, tuple[int, ...]]
        The roles whose shape could not be read, with that shape.
    """
    out: dict[str, Array] = {}
    findings: list[Finding] = []
    unreadable: dict[str, tuple[int, ...]] = {}
    for role, g in grads.items():
        if role not in expected:
            continue  # nothing to compare it with
        try:
            g = np.asarray(g, dtype=np.float64)
        except (TypeError, ValueError):  # None, a ragged list: nothing to read
            unreadable[role] = ()
            continue
        want = expected[role]
        if g.shape == want:
            out[role] = g
        elif len(want) == 2 and g.shape == want[::-1] and role in WEIGHT_ROLES:
            out[role] = g.T
            findings.append(Finding("gradient-transposed", role, (role,)))
        elif len(want) == 1 and g.size == want[0]:
            out[role] = g.reshape(want)  # (H, 1) or (1, H): the same vector
        elif role in ("b", "b_o") and want[0] in g.shape:
            axis = len(g.shape) - 1 - g.shape[::-1].index(want[0])  # the last axis of size F
            out[role] = g.sum(axis=tuple(i for i in range(g.ndim) if i != axis))
            findings.append(Finding("bias-not-summed", g.shape, (role,)))
        else:
            unreadable[role] = g.shape
    return out, findings, unreadable


def candidates(spec: Spec) -> list[Bug | None]:
    """The variants whose values are tried, in catalogue order: ``None`` (the reference) first."""
    found: list[Bug | None] = [None, Bug("missing-recurrence"), Bug("last-step-only")]
    found += [Bug(k, "hidden") for k in DERIVATIVE_KEYS if spec.activation in ("tanh", "sigmoid")]
    found += [Bug("no-activation-derivative", "hidden")] if spec.activation == "relu" else []
    found += [Bug(k, "output") for k in DERIVATIVE_KEYS if spec.output == "sigmoid"]
    found += [Bug("recurrent-weight-not-transposed"), Bug("off-by-one"), Bug("overwritten-cache")]
    return found


def best_match(
    spec: Spec,
    weights: Mapping[str, Array],
    x: Array,
    y: Array,
    grads: Mapping[str, Array],
    tolerance: float,
) -> Match | None:
    """The variant (with factor and per-role findings) that explains every gradient, or ``None``.

    Parameters
    ----------
    spec : Spec
    weights : Mapping[str, ndarray]
        The doctor's weights by role (``W_ih (I, H)``, ...).
    x : ndarray (T, B, I)
    y : ndarray (T, B, O), or (B, O) with outputs at the last step only
    grads : Mapping[str, ndarray]
        The learner's gradients by role, in the expected shapes (``normalise``'s values).
    tolerance : float
        The largest relative error that counts as equal.
    """
    ref = backprop(spec, weights, x, y)
    scales = {r: max(float(np.abs(_value(ref, r)).max(initial=0.0)), 1e-300) for r in grads}
    problem = _Problem(spec, weights, x, y, grads, ref, scales, tolerance)
    singles = [b for b in candidates(spec) if b is not None]
    best = _best_of([(), *((b,) for b in singles)], problem)
    if best is None:  # two mistakes in how δ is computed: each compatible pair
        best = _best_of([pair for pair in itertools.combinations(singles, 2) if _compatible(*pair)], problem)
    return best


@dataclass(frozen=True)
class _Problem:
    """What every variant is fitted to: the data, the learner's gradients, the reference, the scales."""

    spec: Spec
    weights: Mapping[str, Array]
    x: Array
    y: Array
    grads: Mapping[str, Array]
    ref: Pass
    scales: Mapping[str, float]
    tolerance: float


def _best_of(bug_sets: list[tuple[Bug, ...]], pr: _Problem) -> Match | None:
    """Of the variants planting each of ``bug_sets``, the fitting one with the fewest findings."""
    best: Match | None = None
    for bugs in bug_sets:
        try:
            p = backprop(pr.spec, pr.weights, pr.x, pr.y, bugs) if bugs else pr.ref
        except (ValueError, FloatingPointError):  # a variant that cannot run here explains nothing
            continue
        roles = pr.grads
        changed = tuple(
            r for r in roles if rel_error(_value(p, r), _value(pr.ref, r), pr.scales[r]) > pr.tolerance
        )
        if bugs and not changed:
            continue  # indistinguishable from the reference on what the learner returns
        m = _fit(bugs, p, pr.weights, pr.grads, pr.scales, pr.tolerance)
        if m is None:
            continue
        m.findings[0:0] = [Finding(b.key, b.option, changed) for b in bugs]
        if best is None or len(m.findings) < len(best.findings):
            best = m
    return best


_EXCLUSIVE = (
    {"missing-recurrence", "recurrent-weight-not-transposed"},  # both are the recurrent term
    {"no-activation-derivative", "activation-derivative-twice", "derivative-of-preactivation"},
)


def _compatible(a: Bug, b: Bug) -> bool:
    """Whether two bugs change different things (not one term two ways)."""
    if a.key in DERIVATIVE_KEYS and b.key in DERIVATIVE_KEYS:
        return (a.option or "hidden") != (b.option or "hidden")
    return not any(a.key in group and b.key in group for group in _EXCLUSIVE)


def _value(p: Pass, role: str) -> Array:
    return p.da if role == "delta" else p.grads[role]


def _options(
    bugs: tuple[Bug, ...], p: Pass, weights: Mapping[str, Array]
) -> dict[str, list[tuple[Array, Finding | None]]]:
    """For each role, the values the variant allows, each with the finding it would add."""
    keys = {b.key for b in bugs}
    W_hh = weights["W_hh"]
    opts: dict[str, list[tuple[Array, Finding | None]]] = {}
    for r in p.terms:
        values: list[tuple[Array, Finding | None]] = [(p.grads[r], None)]
        if "last-step-only" in keys:
            values.append((p.terms[r].sum(axis=0), None))  # a layer summed apart, e.g. the output's
        if r in ("b", "b_o"):
            values.append((p.terms[r][-1], Finding("bias-not-summed", "last", (r,))))
        g = p.grads[r]
        if g.ndim == 2 and g.shape[0] == g.shape[1]:
            values.append((g.T, Finding("gradient-transposed", r, (r,))))
        opts[r] = values
    opts["x"] = [(p.grads["x"], None)]
    opts["delta"] = [(p.da, None), (p.dh, None)]
    h0: list[tuple[Array, Finding | None]] = [(p.grads["h0"], None)]
    if "missing-recurrence" in keys:
        h0.append((p.da[0] @ W_hh.T, None))  # δ flows to h_0 even where it does not between steps
    forms = {"zero": np.zeros_like(p.da[0]), "dh1": p.dh[0], "da1": p.da[0], "last": p.da[-1] @ W_hh.T}
    h0 += [(v, Finding("h0-gradient", form, ("h0",))) for form, v in forms.items()]
    opts["h0"] = h0
    return opts


def _fit(
    bugs: tuple[Bug, ...],
    p: Pass,
    weights: Mapping[str, Array],
    grads: Mapping[str, Array],
    scales: Mapping[str, float],
    tolerance: float,
) -> Match | None:
    """The first common factor under which every returned gradient is one of the allowed values."""
    opts = _options(bugs, p, weights)
    for c in _factors(grads, opts):
        found: list[Finding] = []
        for role, g in grads.items():
            factors = (c,) if role in WEIGHT_ROLES else (c, 1.0)  # x, h0, δ: scaled with ∂L/∂ŷ or not
            hit = _first_fit(g, opts[role], factors, scales[role], tolerance)
            if hit is None:
                break
            if hit.key:
                found.append(hit)
        else:
            return Match(bugs, c, _sign_and_scale(c, tuple(grads)) + _merge(found), p)
    return None


_NO_FINDING = Finding("")


def _first_fit(
    g: Array,
    options: list[tuple[Array, Finding | None]],
    factors: tuple[float, ...],
    scale: float,
    tol: float,
) -> Finding | None:
    """The finding of the first allowed value ``g`` equals (``_NO_FINDING`` for the plain one)."""
    for value, finding in options:
        for c in factors:
            if rel_error(g, c * value, scale * abs(c)) <= tol:
                return finding or _NO_FINDING
    return None


def _factors(
    grads: Mapping[str, Array], opts: Mapping[str, list[tuple[Array, Finding | None]]]
) -> list[float]:
    """1, then every ratio ``<g, v> / <v, v>`` of a returned weight gradient to an allowed value."""
    found = [1.0]
    for role, g in grads.items():
        if role not in WEIGHT_ROLES:
            continue
        for value, _ in opts[role]:
            vv = float(np.vdot(value, value)) if value.shape == g.shape else 0.0
            if vv <= 0.0:
                continue
            c = float(np.vdot(g, value)) / vv
            if np.isfinite(c) and abs(c) > 1e-6 and all(abs(c - f) > 1e-9 * abs(f) for f in found):
                found.append(c)
    return found


def _sign_and_scale(c: float, roles: tuple[str, ...]) -> list[Finding]:
    out = [Finding("flipped-sign", None, roles)] if c < 0 else []
    if abs(abs(c) - 1.0) > 1e-9:
        out.append(Finding("scale", abs(c), roles))
    return out


def _merge(found: Iterable[Finding]) -> list[Finding]:
    """One finding per key and option, with the roles of all."""
    merged: dict[tuple[str, object], list[str]] = {}
    for f in found:
        merged.setdefault((f.key, f.option), []).extend(f.roles)
    return [Finding(k, o, tuple(dict.fromkeys(r))) for (k, o), r in merged.items()]
