"""The pieces of ``bptt.explain``: evaluated equations, gradient sums, mistakes, and what a layer saw.

A layer writes its own lines (``Layer.explain_forward``/``explain_backward``) into an
``Explanation`` from a ``Step``: the arrays its forward and backward passes produced, and the
names they are written with. Every printed term carries its value, and every relation is recorded
as an identity, so ``Explanation.max_error()`` checks the printed algebra against the engine.
This module imports no layer, so every layer module can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ._types import Array

__all__ = [
    "Explanation",
    "GradientSum",
    "Line",
    "Mistake",
    "Step",
    "as_factor",
    "bias_sum",
    "numbered",
    "outer_sum",
    "shape",
    "try_product",
]


def shape(dims: tuple[int, ...]) -> str:
    """A shape as printed in explanations: ``(1,16)``, and ``(16,)`` for one dimension."""
    return f"({dims[0]},)" if len(dims) == 1 else "(" + ",".join(str(n) for n in dims) + ")"


def as_factor(formula: str) -> str:
    """A derivative such as ``1 - y²`` as a factor: parenthesized unless it is a single term."""
    return formula if formula == "1" or formula.startswith("[") else f"({formula})"


def numbered(letter: str, v: str) -> str:
    """``letter`` with the number of the state ``v``: ``("a", "h2") -> "a2"``, ``("c", "ŷ") -> "c_ŷ"``."""
    return letter + (v[1:] if v.startswith("h") else f"_{v}")


@dataclass
class Line:
    """One equation ``lhs = rhs`` with the shapes of its operands, and the evaluated ``lhs``."""

    lhs: str
    rhs: str
    shapes: str
    value: Array | None = None

    def __str__(self) -> str:
        return f"{self.lhs} = {self.rhs}".ljust(46) + "  " + self.shapes


@dataclass
class GradientSum:
    """``d{W} = Σ_t input_tᵀ · δ_t``: one evaluated outer product per step, and the weight's shape."""

    param: str
    label: str
    terms: list[Line]
    shape: tuple[int, ...]

    @property
    def total(self) -> Array:
        """The sum of the evaluated terms."""
        values = [t.value for t in self.terms if t.value is not None]
        return np.sum(values, axis=0)

    def __str__(self) -> str:
        rhs = " + ".join(t.rhs for t in self.terms)
        each = "; ".join(dict.fromkeys(t.shapes for t in self.terms))
        verdict = "✓" if self.total.shape == self.shape else "✗"
        name = self.param.rsplit(".", 1)[-1]
        return (
            f"{self.label} = {rhs}\n"
            f"    each term {each}; the sum is {shape(self.total.shape)}, "
            f"exactly {name}'s own shape {shape(self.shape)} {verdict}"
        )


@dataclass
class Mistake:
    """A product a learner typically writes instead, and what NumPy does with it."""

    wrong: str
    why: str
    shapes: str
    outcome: str

    def __str__(self) -> str:
        return f"✗ {self.wrong:<22} {self.why}\n    {self.shapes}: {self.outcome}"


@dataclass
class Explanation:
    """Forward equations, backward equations, gradient sums and typical mistakes, all evaluated.

    Attributes
    ----------
    forward, backward : list[Line]
    gradients : list[GradientSum]
        One per parameter, keyed like ``model.params`` in ``GradientSum.param``.
    mistakes : list[Mistake]
    grads : dict[str, ndarray]
        The engine's ``backward`` gradients, for comparison.
    identities : list[tuple[str, ndarray, ndarray]]
        Each printed relation as (label, left side, right side) evaluated from the engine's arrays.
    """

    header: list[str]
    forward: list[Line]
    backward: list[Line]
    gradients: list[GradientSum]
    mistakes: list[Mistake]
    grads: dict[str, Array]
    identities: list[tuple[str, Array, Array]] = field(default_factory=list)

    def errors(self) -> dict[str, float]:
        """Normwise relative error ``max|a - b| / max|b|`` of every gradient sum and identity."""
        out = {}
        for g in self.gradients:
            out[g.param] = _rel(g.total, self.grads[g.param])
        for label, lhs, rhs in self.identities:
            out[label] = max(out.get(label, 0.0), _rel(lhs, rhs))
        return out

    def max_error(self) -> float:
        """The largest of ``errors()``: how far the printed algebra is from the engine."""
        return max(self.errors().values(), default=0.0)

    def __str__(self) -> str:
        parts = [*self.header, "", "Forward pass"]
        parts += [f"  {line}" for line in self.forward]
        parts += ["", "Backward pass (δv = ∂L/∂v), from the last step back"]
        parts += [f"  {line}" for line in self.backward]
        parts += ["", "Weight gradients: a sum over steps of inputᵀ · δ outer products"]
        parts += ["  " + str(g).replace("\n", "\n  ") for g in self.gradients]
        if self.mistakes:
            parts += ["", "Products a learner typically writes instead"]
            parts += ["  " + str(m).replace("\n", "\n  ") for m in self.mistakes]
        parts += [
            "",
            f"Every term above was evaluated; the sums equal backward's gradients and every "
            f"relation holds to {self.max_error():.1e}.",
        ]
        return "\n".join(parts)


def _rel(a: Array, b: Array) -> float:
    scale = max(float(np.abs(b).max(initial=0.0)), 1e-300)
    return float(np.abs(a - b).max(initial=0.0)) / scale


@dataclass
class Step:
    """What one layer saw in explain's forward and backward pass, and the names it is written with.

    Attributes
    ----------
    prefix : str
        The layer's param-key prefix in the model (``"0."``; ``""`` for a lone layer).
    u, v : str
        The names of its input and output (``"x"``, ``"h"``, ``"o"``, ``"s2"``, ``"ŷ"``).
    x : ndarray (T, B, F_in)
        Its input.
    y : ndarray (T', B, F_out)
        Its output.
    grad_y : ndarray (T', B, F_out)
        ``∂L/∂y``, the δ its ``backward`` received.
    grad_x : ndarray (T, B, F_in)
        ``∂L/∂x``, what its ``backward`` returned.
    seq, seq_out : bool
        Whether its input and its output are still sequences ``t = 1..T`` (no ``Last`` before).
    params : dict[str, ndarray]
        Its params.
    """

    prefix: str
    u: str
    v: str
    x: Array
    y: Array
    grad_y: Array
    grad_x: Array
    seq: bool
    seq_out: bool
    params: Mapping[str, Array]

    @property
    def t_in(self) -> str:
        """``"_t"`` when the input is a sequence, else ``""``."""
        return "_t" if self.seq else ""

    @property
    def t_out(self) -> str:
        """``"_t"`` when the output is a sequence, else ``""``."""
        return "_t" if self.seq_out else ""

    @property
    def steps(self) -> str:
        """``", t = 1..T"`` when the input is a sequence, else ``""``."""
        return f", t = 1..{self.x.shape[0]}" if self.seq else ""


def outer_sum(
    param: str, dims: tuple[int, ...], inputs: list[tuple[str, Array]], deltas: list[tuple[str, Array]]
) -> GradientSum:
    """``dW = Σ_t input_tᵀ · δ_t``, each term an ``(in, B)·(B, out)`` outer product, evaluated."""
    terms = [
        Line(
            "",
            f"{xn}ᵀ·{dn}",
            f"{shape(x.T.shape)}·{shape(d.shape)} -> {shape(x.T.shape[:1] + d.shape[1:])}",
            x.T @ d,
        )
        for (xn, x), (dn, d) in zip(inputs, deltas, strict=True)
    ]
    return GradientSum(param, "d" + param.rsplit(".", 1)[-1], terms, dims)


def bias_sum(param: str, deltas: list[tuple[str, Array]]) -> GradientSum:
    """``db = Σ_t Σ_b δ_t``: the bias's input is 1 at every step."""
    terms = [
        Line("", f"Σ_b {dn}", f"{shape(d.shape)} -> {shape(d.shape[1:])}", d.sum(axis=0)) for dn, d in deltas
    ]
    return GradientSum(param, "db", terms, deltas[0][1].shape[1:])


def try_product(
    wrong: str, why: str, f: Callable[..., Array], *operands: Array, expect: Array | None = None
) -> Mistake:
    """Evaluate the wrong product ``f(*operands)`` and say what NumPy does with it.

    With ``expect`` (the right result), a product that runs with the right shape is shown to
    give the wrong numbers.
    """
    shapes = " @ ".join(shape(o.shape) for o in operands)
    try:
        result = f(*operands)
    except ValueError as e:
        return Mistake(wrong, why, shapes, "ValueError, " + _why(operands, str(e)))
    if expect is not None and result.shape == expect.shape:
        diff = float(np.abs(result - expect).max())
        outcome = f"runs, shape {shape(result.shape)}, but the numbers are wrong (max error {diff:.2g})"
    else:
        outcome = f"runs, but gives shape {shape(result.shape)}"
    return Mistake(wrong, why, shapes, outcome)


def _why(operands: tuple[Array, ...], message: str) -> str:
    """NumPy's complaint in a learner's words."""
    if "broadcast" in message:
        return "shapes that cannot be added: " + message.split("shapes", 1)[-1].strip()
    left, right = operands
    cols, rows = left.shape[-1], right.shape[0]
    return f"the inner sizes differ: {cols} (columns of the left) ≠ {rows} (rows of the right)"
