"""``bptt doctor``: run a learner's own BPTT beside the reference, name the mistake, show the right term.

    report = bptt.doctor.check(MyRNN(), activation="sigmoid", output="sigmoid", loss="half_mse")
    print(report)            # every gradient's largest relative error, the diagnosis, the right terms
    report.healthy           # True when every gradient agrees with the reference

Modules: ``spec`` (the architecture and the conventions) and ``probe`` (the one interface between
the two halves). The learner's side: ``adapter`` (the learner's object or function, in any
convention, as a ``probe.Probe``), built from ``slots`` (where its arrays and gradients live),
``naming`` (which is which role), ``layouts`` (row or column vectors, five data layouts) and
``running`` (one call). The reference's side: ``variants`` (the reference BPTT with each classic
mistake as a switch), ``catalogue`` (the mistakes, in words), ``diagnose`` (compare and report),
``match`` (name), ``locate`` (where in time), ``crash`` and ``evaluate`` (a learner's exception),
``derivation`` (the lines of ``bptt explain``), ``report`` (what is printed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._types import Array
from .adapter import probe
from .diagnose import diagnose
from .report import Diagnosis, Report
from .spec import Spec

__all__ = ["Diagnosis", "Report", "Spec", "check"]


def check(
    learner: Any,
    *,
    weights: Mapping[str, Array] | None = None,
    gradients: Callable[[], Mapping[str, Array]] | None = None,
    names: Mapping[str, str] | None = None,
    activation: str = "tanh",
    output: str = "identity",
    loss: str = "mse",
    reduction: str = "sum",
    steps: str = "every",
    layout: str | None = None,
    data: str = "sequence",
    seed: int = 0,
) -> Report:
    """Check a learner's BPTT against the reference; see ``adapter.probe`` and ``Spec``."""
    spec = Spec(activation, output, loss, reduction, steps)
    learner_probe = probe(
        learner, spec, weights=weights, gradients=gradients, names=names, layout=layout, data=data
    )
    return diagnose(learner_probe, spec, seed=seed)
