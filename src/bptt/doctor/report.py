"""What the doctor found, and how it is printed: a table of gradients, then the diagnoses.

``str(report)`` is what ``bptt doctor`` prints: a header (the learner's conventions and the
network), one row per gradient (the learner's name, the role, the shape as the learner wrote it,
the largest relative error, ✓ or ✗), then either the clean bill of health or each mistake, its
term beside the right one with shapes, where it goes wrong, and the lines of ``bptt explain``
that derive the right term.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field

__all__ = ["Diagnosis", "Report", "Row"]


@dataclass(frozen=True)
class Diagnosis:
    """One named mistake.

    Attributes
    ----------
    number : int
        Its number in the catalogue, 1 to 12.
    key : str
        Its key, e.g. ``"missing-recurrence"`` (``catalogue.KEYS``).
    title : str
        One line.
    wrong : str
        The learner's term, in words and maths.
    right : str
        The correct term, with shapes.
    steps : tuple[int, ...]
        The steps (1-based) whose terms disagree with the reference; may be empty.
    detail : str
        What is particular to this case, e.g. ``"a factor of B = 3"``.
    why : str
        A sentence on why the right term is right.
    where : str
        Which steps disagree, and whether the error starts at the last step or further back.
    roles : tuple[str, ...]
        The gradients (by role) this mistake explains.
    """

    number: int
    key: str
    title: str
    wrong: str
    right: str
    steps: tuple[int, ...] = ()
    detail: str = ""
    why: str = ""
    where: str = ""
    roles: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The diagnosis as printed: title, the wrong and the right term, why, where."""
        head = f"#{self.number} {self.key}: {self.title}" + (f" ({self.detail})" if self.detail else "")
        out = [head]
        out += _labelled("yours", self.wrong) + _labelled("right", self.right)
        out += _labelled("why", self.why) + _labelled("where", self.where)
        return out


def _labelled(label: str, text: str, width: int = 104) -> list[str]:
    """``   label: text``, long lines wrapped and continued under the text."""
    if not text:
        return []
    out: list[str] = []
    for line in text.split("\n"):
        out += textwrap.wrap(line, width - 10, break_long_words=False, break_on_hyphens=False) or [""]
    return [f"   {label + ':':<7}{out[0]}", *(f"          {line}" for line in out[1:])]


@dataclass(frozen=True)
class Row:
    """One gradient in the table.

    Attributes
    ----------
    role : str
        ``W_ih``, ``W_hh``, ``b``, ``W_ho``, ``b_o``, ``x``, ``h0`` or ``delta``.
    name : str
        The learner's name for it.
    shape : tuple[int, ...] or None
        Its shape as the learner returned it (``None``: not returned).
    expected : tuple[int, ...]
        The shape due, in the learner's convention.
    error : float
        Largest relative error against the reference (``inf`` for a wrong shape, ``nan``
        when not returned).
    """

    role: str
    name: str
    shape: tuple[int, ...] | None
    expected: tuple[int, ...]
    error: float

    def ok(self, tolerance: float) -> bool:
        """Whether this gradient agrees with the reference."""
        return self.shape is not None and self.error <= tolerance

    def line(self, tolerance: float) -> str:
        """The table row."""
        shape = "—" if self.shape is None else _shape(self.shape)
        if self.shape is None:
            verdict = "not returned"
        elif math.isinf(self.error):
            verdict = f"✗ shape {_shape(self.shape)}, {_shape(self.expected)} due"
            shape = _shape(self.expected)
        else:
            verdict = f"{self.error:.1e}  " + ("✓" if self.ok(tolerance) else "✗")
        return f"  {self.name:<14} {self.role:<6} {shape:<10} {verdict}"


def _shape(s: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, s)) + ("," if len(s) == 1 else "") + ")"


@dataclass
class Report:
    """The doctor's findings on one learner.

    Attributes
    ----------
    healthy : bool
        Every gradient the learner returned agrees with the reference, and nothing crashed.
    errors : dict[str, float]
        Role to the largest relative error of that gradient against the reference, for each
        role compared (``inf`` for a gradient of the wrong shape).
    diagnoses : list[Diagnosis]
        The mistakes named; empty when healthy.
    rows : list[Row]
        The table of gradients.
    header : list[str]
        The learner's conventions and the network, in words.
    tolerance : float
        The largest relative error that counts as agreement.
    findings : list[str]
        What else was found (a crash's product and shapes, a mistake not in the catalogue,
        the per-step location), printed after the diagnoses.
    derivation : list[str]
        The lines of ``bptt explain`` that derive the right terms.
    crashed : bool
        The learner's code raised on the doctor's data.
    crash : list[str]
        What it raised, where, and the failing product's operands, printed before the diagnoses.
    """

    healthy: bool
    errors: dict[str, float]
    diagnoses: list[Diagnosis] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    tolerance: float = 1e-7
    findings: list[str] = field(default_factory=list)
    derivation: list[str] = field(default_factory=list)
    crashed: bool = False
    crash: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """The diagnoses' keys, in order."""
        return [d.key for d in self.diagnoses]

    def __str__(self) -> str:
        out = list(self.header)
        if self.rows:
            out += ["", f"  {'gradient':<14} {'role':<6} {'shape':<10} largest relative error"]
            out += [row.line(self.tolerance) for row in self.rows]
        out.append("")
        out += [*self.crash, ""] if self.crash else []
        if self.healthy:
            worst = max((e for e in self.errors.values() if math.isfinite(e)), default=0.0)
            out.append(
                f"healthy: every gradient agrees with the reference to {worst:.1e} "
                f"(tolerance {self.tolerance:.0e})"
            )
            return "\n".join(out)
        n = len(self.diagnoses)
        if n:
            out.append(f"{n} mistake{'s' if n > 1 else ''} found:")
        for d in self.diagnoses:
            out += d.lines()
        out += self.findings
        if self.derivation:
            out += ["", *self.derivation]
        return "\n".join(out)
