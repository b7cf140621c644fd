"""The right derivation for a diagnosis: the lines of ``bptt explain`` that hold the right term.

``bptt explain`` runs a reference model of the learner's sizes (``RNN``, ``Dense``, and ``Last``
or ``Sigmoid`` where the spec has them) for ``T = 3`` steps and writes every equation with its
shapes, each evaluated. The doctor prints the few lines each mistake is about: the recursion
``δh_t``/``δa_t`` for a missing or untransposed recurrent term, the gradient sums for a missing
sum over t, and so on. The output layer's ``W``/``b`` are renamed ``W_ho``/``b_o`` to match the
doctor's roles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from ..explain import explain
from ..explanation import Explanation, GradientSum, Line
from ..layers import Dense, Last, Layer, Sequential, Sigmoid
from ..losses import MSELoss
from ..recurrent import RNN
from .catalogue import Sizes
from .spec import Spec

__all__ = ["STEPS", "derivation"]

STEPS = 3  # the explained sequence's length: long enough for "from step t + 1" to show

# What each mistake is about: backward lines (by the lhs's pattern), forward lines, gradient sums.
_RECURSION = (r"δh_t", r"δh_[1-9]\d*", r"δa_\d+")
_PICKS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "missing-recurrence": (_RECURSION, (), ()),
    "recurrent-weight-not-transposed": (_RECURSION, (), ()),
    "seed-shape-mistake": (_RECURSION, (), ("W_ih",)),
    "last-step-only": ((), (), ("W_ih", "W_hh")),
    "no-activation-derivative": ((r"δh_[1-9]\d*", r"δa_\d+"), (r"h_[1-9]\d*",), ()),
    "activation-derivative-twice": ((r"δh_[1-9]\d*", r"δa_\d+"), (r"h_[1-9]\d*",), ()),
    "derivative-of-preactivation": ((r"δh_[1-9]\d*", r"δa_\d+"), (r"h_[1-9]\d*",), ()),
    "off-by-one": ((), (r"a_\d+",), ("W_hh",)),
    "accumulating-gradients": ((), (), ("W_ih",)),
    "flipped-sign": ((r"δŷ_?t?", r"δo_?t?"), ("L",), ()),
    "scale": ((r"δŷ_?t?", r"δo_?t?"), ("L",), ()),
    "h0-gradient": ((r"δh_1", r"δa_1", r"δh_0"), (), ()),
    "bias-not-summed": ((), (), ("b", "b_o")),
    "overwritten-cache": ((r"δa_\d+",), (r"h_[1-9]\d*",), ("W_hh",)),
}
_OUTPUT_PICKS = ((r"δŷ_?t?", r"δo_?t?"), (r"ŷ_?t?",), ())


def derivation(
    spec: Spec, sizes: Sizes, roles: Iterable[str], keys: Iterable[tuple[str, object]]
) -> list[str]:
    """The explain lines for the mistakes ``keys`` (key, option), under a one-line heading; ``[]`` if none."""
    roles = set(roles)
    ex = _explain(spec, sizes, roles)
    backward, forward, sums = _wanted(spec, roles, keys)
    logits = spec.output != "identity" and not _has_output_layer(spec)  # explain's ŷ is our o there
    lines = [_renamed(line, logits) for line in ex.forward if _picked(line, forward)]
    lines += [_renamed(line, logits) for line in ex.backward if _picked(line, backward)]
    by_role = _sums_by_role(ex)
    for role in sums:
        lines += ["  " + text for text in str(by_role[role]).split("\n")] if role in by_role else []
    if not lines:
        return []
    head = f"The right derivation (bptt explain, T = {STEPS}, B = {sizes.B}, row vectors x @ W):"
    return [head, *lines]


def _wanted(
    spec: Spec, roles: set[str], keys: Iterable[tuple[str, object]]
) -> tuple[set[str], set[str], list[str]]:
    """The backward and forward lines' patterns and the gradient sums' roles the mistakes are about."""
    backward: set[str] = set()
    forward: set[str] = set()
    sums: list[str] = []
    for key, option in keys:
        b, f, s = _OUTPUT_PICKS if option == "output" else _PICKS.get(key, ((), (), ()))
        s = (str(option or "W_hh"),) if key == "gradient-transposed" else s
        if key in ("flipped-sign", "scale") and not _explain_has_loss(spec):
            continue  # bptt explain writes MSE only among the doctor's losses; the catalogue says the rest
        backward.update(b)
        forward.update(f)
        sums += [r for r in s if r in roles and r not in sums]
    return backward, forward, sums


def _explain_has_loss(spec: Spec) -> bool:
    return spec.loss == "mse" and spec.output in ("identity", "sigmoid")


def _picked(line: Line, patterns: set[str]) -> bool:
    return any(re.fullmatch(p, line.lhs) for p in patterns)


def _renamed(line: Line, logits: bool) -> str:
    """The line with the doctor's names; ``ŷ`` as ``o`` where explain's model ends at the logits."""
    lhs, rhs = _rename(line.lhs), _rename(line.rhs)
    if logits:
        lhs, rhs = lhs.replace("ŷ", "o"), rhs.replace("ŷ", "o")
    return f"  {Line(lhs, rhs, line.shapes)}"


def _has_output_layer(spec: Spec) -> bool:
    return spec.output == "sigmoid" and spec.loss in ("mse", "half_mse")


def _rename(text: str) -> str:
    """The output layer's ``W``/``b`` (its lines are those with a bare ``W``) as ``W_ho``/``b_o``."""
    if not re.search(_BARE.format("W"), text):
        return text
    return re.sub(_BARE.format("b"), "b_o", re.sub(_BARE.format("W"), "W_ho", text))


_BARE = r"(?<![\w]){}(?![_A-Za-z0-9])"  # a name standing alone; ᵀ after it is a letter to \w


def _explain(spec: Spec, sizes: Sizes, roles: set[str]) -> Explanation:
    """``bptt explain`` on a reference model of the learner's sizes and spec, ``T = STEPS``."""
    rnn = RNN(sizes.I, sizes.H, activation=spec.activation, bias="b" in roles, rng=0)
    layers: list[Layer] = [rnn, *([Last()] if spec.steps == "last" else [])]
    layers.append(Dense(sizes.H, sizes.O, bias="b_o" in roles, rng=1))
    if _has_output_layer(spec):
        layers.append(Sigmoid())
    x = np.random.default_rng(0).normal(size=(STEPS, sizes.B, sizes.I))
    return explain(Sequential(layers), x, loss_fn=MSELoss(spec.reduction), mistakes=False, rng=0)


def _sums_by_role(ex: Explanation) -> dict[str, GradientSum]:
    """The gradient sums by role: the RNN's ``W_ih``, ``W_hh``, ``b``; the Dense's as ``W_ho``, ``b_o``."""
    out: dict[str, GradientSum] = {}
    for gs in ex.gradients:
        layer, name = gs.param.split(".", 1)
        role = name if layer == "0" else {"W": "W_ho", "b": "b_o"}[name]
        out[role] = GradientSum(role, f"d{role}", gs.terms, gs.shape)
    return out
