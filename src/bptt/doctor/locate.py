"""Where the learner's BPTT goes wrong: which steps disagree, and whether from the last step or earlier.

BPTT runs from ``t = T`` back to 1, so a mistake in each step's own terms (a derivative, a sign)
shows at the last step already, while a mistake in how δ flows back in time (the recurrent term)
leaves step ``T`` right and starts one step further back. Three ways to see the steps:

- the learner's own per-step quantities: ``δa_t`` (``"delta"``) or ``δx_t`` (``"x"``) where returned;
- the x-impulse: with ``x`` nonzero at step ``s`` only, ``dW_ih = x_sᵀ δa_s`` is step ``s``'s term
  alone, so running the learner once per ``s`` compares its terms step by step;
- the sweep over ``T = 1..5``: agreeing at ``T = 1`` but not later puts the error in the time
  recursion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .._types import Array
from .match import normalise, rel_error
from .spec import Spec
from .variants import Pass, backprop

__all__ = ["Location", "Runner", "by_impulse", "from_returned", "span", "sweep", "variant_steps", "where"]

Runner = Callable[[Mapping[str, Array], Array, Array], Mapping[str, Array]]


@dataclass(frozen=True)
class Location:
    """The steps (1-based) at which ``quantity`` disagrees with the reference, of ``T`` steps."""

    quantity: str
    wrong: tuple[int, ...]
    T: int

    def sentence(self, explain: bool = True) -> str:
        """E.g. ``"δa_t (your delta): steps 1–4 of 5 disagree; step 5 agrees, so ..."``; without
        ``explain``, the facts only: ``"… steps 1–4 of 5 disagree"``."""
        text = where(self.wrong, self.T)
        return f"{self.quantity}: {text if explain else text.split(';')[0]}"


def span(steps: tuple[int, ...]) -> str:
    """``(1, 2, 3, 5) -> "1–3, 5"``."""
    parts: list[str] = []
    for s in sorted(steps):
        if parts and parts[-1].split("–")[-1] == str(s - 1):
            parts[-1] = f"{parts[-1].split('–')[0]}–{s}"
        else:
            parts.append(str(s))
    return ", ".join(parts)


def where(wrong: tuple[int, ...], T: int) -> str:
    """Which steps disagree, and whether the error starts at the last step or further back."""
    if not wrong:
        return f"all {T} steps agree"
    n = "step" if len(wrong) == 1 else "steps"
    said = f"{n} {span(wrong)} of {T} disagree" if len(wrong) < T else f"every step (1–{T}) disagrees"
    if T in wrong:
        return f"{said}; the error starts at the last step, in each step's own terms"
    latest = max(wrong)
    agree = f"step {T} agrees" if latest + 1 == T else f"steps {latest + 1}–{T} agree"
    return f"{said}; {agree}, so the error starts further back, at step {latest}: in how δ flows back in time"


def variant_steps(p: Pass, ref: Pass, roles: tuple[str, ...], tolerance: float) -> tuple[int, ...]:
    """The steps at which a variant's per-step terms (``inputᵀ·δ`` of ``roles``, and ``δa_t``) differ.

    ``p`` and ``ref`` are passes on the same data; ``terms[r]`` is ``(T, ...)`` (``(1, ...)`` for
    the output layer's with outputs at the last step only, which is step ``T``'s).
    """
    T = ref.da.shape[0]
    wrong = set()
    for t in range(T):
        scale = float(np.abs(ref.da).max())
        if rel_error(p.da[t], ref.da[t], scale) > tolerance:
            wrong.add(t + 1)
    for r in roles:
        if r not in ref.terms:
            continue
        mine, theirs = p.terms[r], ref.terms[r]
        scale = float(np.abs(theirs).max())
        offset = T - theirs.shape[0]  # one output term at step T only
        wrong |= {
            offset + i + 1 for i in range(theirs.shape[0]) if rel_error(mine[i], theirs[i], scale) > tolerance
        }
    return tuple(sorted(wrong))


def from_returned(grads: Mapping[str, Array], ref: Pass, tolerance: float) -> Location | None:
    """The learner's own ``δa_t`` (``"delta"`` ``(T, B, H)``) or ``δx_t`` (``"x"`` ``(T, B, I)``), by step."""
    for role, quantity, theirs in (("delta", "δa_t (your delta)", ref.da), ("x", "δx_t (your dx)", ref.dx)):
        g = grads.get(role)
        if g is None or g.shape != theirs.shape:
            continue
        scale = float(np.abs(theirs).max())
        wrong = tuple(t + 1 for t in range(len(g)) if rel_error(g[t], theirs[t], scale) > tolerance)
        return Location(quantity, wrong, len(g))
    return None


def by_impulse(
    run: Runner,
    spec: Spec,
    weights: Mapping[str, Array],
    x: Array,
    y: Array,
    expected: Mapping[str, tuple[int, ...]],
    tolerance: float,
) -> Location | None:
    """``dW_ih`` with ``x`` nonzero at one step ``s`` only, each ``s``: its step-``s`` term ``x_sᵀ δa_s``.

    ``run(weights, x (T, B, I), y) -> gradients`` is the learner; ``expected`` the shapes due by
    role. ``None`` when the learner returns no ``dW_ih`` or raises on such input.
    """
    T = x.shape[0]
    wrong = []
    for s in range(T):
        impulse = np.zeros_like(x)
        impulse[s] = x[s]
        try:
            got = normalise(run(weights, impulse, y), expected)[0].get("W_ih")
        except Exception:  # the learner's code is checked elsewhere; here it only fails to say more
            return None
        if got is None:
            return None
        want = backprop(spec, weights, impulse, y).grads["W_ih"]
        if rel_error(got, want) > tolerance:
            wrong.append(s + 1)
    return Location("x_tᵀ·δa_t (your dW_ih, with x at step t only)", tuple(wrong), T)


def sweep(
    run: Runner,
    spec: Spec,
    weights: Mapping[str, Array],
    x: Array,
    y: Array,
    expected: Mapping[str, tuple[int, ...]],
    tolerance: float,
) -> str:
    """Run the learner on the first ``T' = 1..T`` steps: which lengths agree (``h0`` aside), in words.

    ``x (T, B, I)``; ``y (T, B, O)`` is cut to ``(T', B, O)``, while ``(B, O)`` (outputs at the
    last step only) stays as it is.
    """
    T = x.shape[0]
    verdicts: list[bool | None] = []
    for n in range(1, T + 1):
        xs, ys = x[:n], (y[:n] if spec.steps == "every" else y)
        shapes = {**expected, "x": xs.shape, "delta": (n, *expected["delta"][1:])}
        try:
            got = normalise(run(weights, xs, ys), shapes)[0]
        except Exception:  # e.g. a learner that cannot take T = 1
            verdicts.append(None)
            continue
        ref = backprop(spec, weights, xs, ys)
        roles = [r for r in got if r != "h0"]  # δh_0 is itself a link back in time, reported on its own
        verdicts.append(
            all(rel_error(got[r], ref.da if r == "delta" else ref.grads[r]) <= tolerance for r in roles)
        )
    return _sweep_sentence(verdicts)


def _sweep_sentence(verdicts: list[bool | None]) -> str:
    T = len(verdicts)
    good = tuple(i + 1 for i, v in enumerate(verdicts) if v)
    bad = tuple(i + 1 for i, v in enumerate(verdicts) if v is False)
    failed = tuple(i + 1 for i, v in enumerate(verdicts) if v is None)
    text = f"run on the first T = 1..{T} steps: "
    if good == (1,) and bad == tuple(range(2, T + 1)):
        text += "right at T = 1, wrong from T = 2 on: the error is in what links the steps"
    elif verdicts[0] is False and not good and not failed:
        text += "wrong already at T = 1: the error is within a single step, not (only) in the recursion"
    elif len(good) == T:
        text += "right at every length"
    else:
        text += ", ".join(
            p for p in (_part("right", good), _part("wrong", bad), _part("raised", failed)) if p
        )
    return text


def _part(word: str, steps: tuple[int, ...]) -> str:
    return f"{word} at T = {span(steps)}" if steps else ""
