"""One training loop for every task: ``fit`` steps a model through updates that a recipe supplies.

A recipe (``tasks.addition.train``, ``tasks.charlm.train``) says what is task-specific: the
model, the optimizer, an iterator of updates (each yields its loss once ``model.grads`` holds its
gradient), an ``Evaluation`` on a schedule and a stopping rule. ``fit`` owns the rest, the same
for all of them: clipping, applying each update only while everything stays finite
(``stopping.UpdateGuard``), the ``History``, progress callbacks, keeping the best weights,
checkpoints (``checkpoint.Checkpoints``) and clean stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from ._types import Array
from .checkpoint import Checkpoints
from .layers import Layer, Sequential
from .optim import Optimizer, clip_grad_norm, grad_norm
from .stopping import UpdateGuard, stop_on_interrupt

__all__ = ["Best", "Callback", "Evaluation", "History", "fit", "supervised"]


@dataclass
class History:
    """What happened during ``fit``: the loss of every step and the metrics of every check.

    ``loss`` has one entry per step; ``check_step`` one per evaluation, and so has each metric a
    subclass declares as a ``list[float]`` field named in ``METRICS`` (say ``bpc``).
    ``converged`` says whether training ended by its rule (or ran its fixed schedule);
    ``seconds`` is the wall time of the last ``fit``.
    """

    METRICS: ClassVar[tuple[str, ...]] = ()

    loss: list[float] = field(default_factory=list)
    check_step: list[int] = field(default_factory=list)
    seconds: float = 0.0
    converged: bool = False

    @property
    def steps(self) -> int:
        """Steps taken so far (all of them, across a resume)."""
        return len(self.loss)

    def metric(self, name: str) -> list[float]:
        """The values of the metric ``name`` (one of ``METRICS``), one per check."""
        if name not in self.METRICS:
            raise KeyError(f"{type(self).__name__} has no metric {name!r}; it has {list(self.METRICS)}")
        values: list[float] = getattr(self, name)
        return values

    def record(self, step: int, metrics: Mapping[str, float]) -> None:
        """Add one check: its step and every declared metric's value."""
        self.check_step.append(step)
        for name in self.METRICS:
            self.metric(name).append(float(metrics[name]))

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The history as 1-D arrays, for ``bptt.io.save(..., extra=...)`` and checkpoints."""
        out = {"loss": np.asarray(self.loss), "check_step": np.asarray(self.check_step, np.int64)}
        out.update({name: np.asarray(self.metric(name)) for name in self.METRICS})
        return out

    @classmethod
    def from_arrays(cls: type[H], arrays: Mapping[str, NDArray[Any]]) -> H:
        """The history ``arrays()`` wrote (missing entries are empty)."""
        history = cls(
            loss=[float(v) for v in arrays.get("loss", [])],
            check_step=[int(v) for v in arrays.get("check_step", [])],
        )
        for name in cls.METRICS:
            history.metric(name).extend(float(v) for v in arrays.get(name, []))
        return history


H = TypeVar("H", bound=History)
Callback = Callable[[int, float, H], None]


class Best:
    """Keeps a copy of the weights at the best value of one metric (``mode="min"``: the lowest).

    After ``fit``, ``step`` is the check where it was best (``None`` before any), ``value`` that
    value and ``params`` a copy of the weights then; ``restore(model)`` puts them back.
    """

    def __init__(self, metric: str, mode: Literal["min", "max"] = "min") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"Best: mode must be 'min' or 'max', got {mode!r}")
        self.metric, self.mode = metric, mode
        self.step: int | None = None
        self.value = math.inf if mode == "min" else -math.inf
        self.params: dict[str, Array] = {}

    def offer(self, step: int, metrics: Mapping[str, float], model: Layer) -> bool:
        """Keep ``model``'s weights if ``metrics[self.metric]`` beats the best so far; say whether."""
        value = float(metrics[self.metric])
        if not (value < self.value if self.mode == "min" else value > self.value):
            return False
        self.step, self.value = step, value
        self.params = {name: p.copy() for name, p in model.params.items()}
        return True

    def restore(self, model: Layer) -> None:
        """Copy the best weights into ``model``'s own arrays (in place, as an optimizer would)."""
        if self.step is None:
            raise ValueError(f"Best: no check has reported {self.metric!r} yet")
        for name, p in model.params.items():
            p[...] = self.params[name]


@dataclass(frozen=True)
class Evaluation:
    """Measure the model every ``every`` steps, and at the last one when ``at_end``.

    ``measure()`` returns the metrics (a value for each of the history's ``METRICS``); ``best``,
    if given, is offered each result and keeps the best weights.
    """

    measure: Callable[[], Mapping[str, float]]
    every: int
    at_end: bool = True
    best: Best | None = None

    def due(self, step: int, last: int) -> bool:
        """Whether to evaluate after ``step``: on the schedule, or at the run's ``last`` step."""
        return step % self.every == 0 or (self.at_end and step == last)


def supervised(
    model: Layer,
    loss_fn: Callable[[Array, Array], tuple[float, Array]],
    batches: Iterable[tuple[Array, Array]],
) -> Iterator[float]:
    """The updates of plain minibatch training: forward, loss and backward for each ``(x, target)``.

    A non-finite loss is yielded without its backward: ``fit`` refuses it before any update.
    """
    for x, target in batches:
        loss, grad = loss_fn(model.forward(x), target)
        if math.isfinite(loss):
            model.backward(grad)
        yield loss


def fit(
    model: Sequential,
    optimizer: Optimizer,
    updates: Iterable[float],
    steps: int,
    *,
    history: H,
    start: int = 0,
    clip: float | None = None,
    evaluation: Evaluation | None = None,
    until: Callable[[H], bool] | None = None,
    callback: Callback[H] | None = None,
    checkpoints: Checkpoints | None = None,
    interruptible: bool = False,
) -> H:
    """Take steps ``start + 1 .. steps``, one update from ``updates`` each, and return ``history``.

    Each step, in this order: the next loss (``model.grads`` then hold its gradient); the
    gradients clipped to global norm ``clip`` (``None``: none); the optimizer's step, applied
    only while loss, gradient norm and weights stay finite; the loss appended to ``history``;
    ``evaluation`` when due (its metrics recorded, the best weights kept, then ``until(history)``,
    the stopping rule, asked whether to end here); ``callback(step, loss, history)``; a
    checkpoint every ``checkpoints.every`` steps; a requested stop. The run ends after step
    ``steps``, when ``updates`` runs out, or when ``until`` says so, with ``history.converged``
    true when ``until`` ended it or when there is no ``until`` (a fixed schedule that ran out).

    Raises ``Diverged`` when a loss, gradient norm or update becomes non-finite (``.model`` holds
    the weights after the last completed step), and, when ``interruptible``, ``Interrupted`` on
    SIGINT or SIGTERM at the boundary after the current step (the last step ends the run
    instead), after writing a checkpoint if ``checkpoints`` is set.
    """
    guard = UpdateGuard(model, optimizer, history)
    clock = time.perf_counter()
    try:
        with stop_on_interrupt(interruptible) as stop:
            # zip asks the range first: no update is drawn past step `steps`.
            for step, loss in zip(range(start + 1, steps + 1), updates, strict=False):
                _update(guard, model, clip, loss, step)
                history.loss.append(loss)
                if evaluation is not None and evaluation.due(step, steps):
                    history.converged = _evaluate(evaluation, model, history, step, until)
                if callback is not None:
                    callback(step, loss, history)
                if history.converged:
                    break
                if checkpoints is not None and checkpoints.due(step):
                    checkpoints.save(model, optimizer, step, history.arrays())
                if stop.requested and step < steps:  # after the last step, the run is complete
                    if checkpoints is not None:
                        checkpoints.save(model, optimizer, step, history.arrays())
                    raise stop.interrupted(model, history, step)
        history.converged = history.converged or until is None
    finally:  # an interrupted or diverged run reports its time too
        history.seconds = time.perf_counter() - clock
    return history


def _update(guard: UpdateGuard, model: Layer, clip: float | None, loss: float, step: int) -> None:
    """Clip the gradients and apply the optimizer's step, refusing anything non-finite."""
    guard.check("loss", loss, step)
    norm = grad_norm(model) if clip is None else clip_grad_norm(model, clip)
    guard.check("gradient norm", norm, step)
    guard.apply(step)


def _evaluate(
    evaluation: Evaluation, model: Layer, history: H, step: int, until: Callable[[H], bool] | None
) -> bool:
    """Record a check, offer it to ``best``, and say whether the stopping rule is met."""
    metrics = evaluation.measure()
    history.record(step, metrics)
    if evaluation.best is not None:
        evaluation.best.offer(step, metrics, model)
    return until is not None and until(history)
