"""The training loop (``bptt.trainer.fit``) on a tiny model: hook order, clipping, divergence,
interrupt → checkpoint → bit-exact resume, the stopping rule and keeping the best weights."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytest

import bptt
from bptt.checkpoint import Checkpoints, load_checkpoint, resume_from
from bptt.stopping import Diverged, Interrupted
from bptt.trainer import Best, Evaluation, History, fit, supervised

SETTINGS = {"task": "tiny"}


@dataclass
class ScoreHistory(History):
    METRICS: ClassVar[tuple[str, ...]] = ("score",)

    score: list[float] = field(default_factory=list)


def _model() -> bptt.Sequential:
    return bptt.Sequential([bptt.RNN(2, 3, rng=0), bptt.Dense(3, 1, rng=1)])


def _batches(rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        yield rng.normal(size=(4, 2, 2)), rng.normal(size=(4, 2, 1))


def _updates(model: bptt.Sequential, rng: np.random.Generator) -> Iterator[float]:
    return supervised(model, bptt.MSELoss(), _batches(rng))


def _params(model: bptt.Sequential) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in model.params.items()}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def _run(
    steps: int, evaluation: Callable[[bptt.Sequential], Evaluation] | None = None, **kwargs: Any
) -> tuple[bptt.Sequential, Any]:
    """A fresh tiny model trained with Adam on seeded random batches; ``evaluation(model)`` if given."""
    model = _model()
    history = fit(
        model,
        bptt.optim.Adam(model, lr=0.01),
        _updates(model, np.random.default_rng(0)),
        steps,
        history=kwargs.pop("history", History()),
        evaluation=None if evaluation is None else evaluation(model),
        **kwargs,
    )
    return model, history


def _bias(model: bptt.Sequential) -> Evaluation:
    """The output bias as the score, every 3 steps and at the end."""
    return Evaluation(lambda: {"score": float(model.params["1.b"][0])}, every=3)


def _scores(best: Best | None = None) -> Evaluation:
    """Scores 1, 2, 0, 1, 2, 0, ... one per check, every 3 steps and at the end."""
    scores = itertools.cycle([1.0, 2.0, 0.0])
    return Evaluation(lambda: {"score": next(scores)}, every=3, best=best)


def test_hooks_run_in_order_each_step(tmp_path: Path) -> None:
    """update, evaluation (then the stopping rule), callback, checkpoint; evaluation at the end too."""
    events: list[str] = []
    model = _model()
    rng = np.random.default_rng(0)

    def updates() -> Iterator[float]:
        for loss in _updates(model, rng):
            events.append("update")
            yield loss

    def until(h: ScoreHistory) -> bool:
        events.append("until")
        return False

    class Logged(Checkpoints):
        def save(self, *args: Any) -> None:
            events.append("checkpoint")
            super().save(*args)

    history = fit(
        model,
        bptt.optim.SGD(model, 0.1),
        updates(),
        5,
        history=ScoreHistory(),
        evaluation=Evaluation(lambda: events.append("evaluate") or {"score": 1.0}, every=2),
        until=until,
        callback=lambda step, loss, h: events.append(f"callback {step}"),
        checkpoints=Logged(tmp_path / "c.npz", rng, SETTINGS, every=2),
    )
    assert events == [
        *("update", "callback 1"),
        *("update", "evaluate", "until", "callback 2", "checkpoint"),
        *("update", "callback 3"),
        *("update", "evaluate", "until", "callback 4", "checkpoint"),
        *("update", "evaluate", "until", "callback 5"),  # the last step is checked too
    ]
    assert history.check_step == [2, 4, 5] and history.steps == 5 and not history.converged
    assert load_checkpoint(tmp_path / "c.npz").step == 4


@pytest.mark.parametrize("clip", [None, 0.5])
def test_clipping_is_applied_before_the_update(clip: float | None) -> None:
    """One SGD(lr=1) step moves the weights by exactly minus the (clipped) gradient."""
    model, reference = _model(), _model()
    x, target = next(_batches(np.random.default_rng(0)))
    _, grad = bptt.MSELoss()(reference.forward(x), target)
    reference.backward(grad)
    if clip is not None:
        assert bptt.clip_grad_norm(reference, clip) > clip  # the clip bites
    updates = supervised(model, bptt.MSELoss(), iter([(x, target)]))
    fit(model, bptt.optim.SGD(model, 1.0), updates, 1, history=History(), clip=clip)
    for k, p in model.params.items():
        assert np.array_equal(p, reference.params[k] - reference.grads[k]), k


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("where", ["loss", "gradient norm", "update"])
def test_a_non_finite_step_is_refused_with_the_last_good_weights(where: str) -> None:
    """A NaN loss, gradient or update at step 3: Diverged names it, and the weights are step 2's."""
    model = _model()
    inner = _updates(model, np.random.default_rng(0))

    def updates() -> Iterator[float]:
        for step, loss in enumerate(inner, 1):
            if step == 3 and where == "loss":
                loss = float("nan")
            if step == 3 and where == "gradient norm":
                model.grads["0.W_hh"][0, 0] = np.inf
            yield loss

    class Poisoned(bptt.optim.SGD):
        def step(self) -> None:
            super().step()
            if self.steps == 3 and where == "update":
                model.params["1.b"][0] = np.nan

    with pytest.raises(Diverged, match="at step 3") as info:
        fit(model, Poisoned(model, 0.1), updates(), 10, history=History())
    assert info.value.step == 2 and info.value.history.steps == 2
    two, _ = _run_sgd(2)
    _same(_params(info.value.model), _params(two))


def _run_sgd(steps: int) -> tuple[bptt.Sequential, History]:
    model = _model()
    updates = _updates(model, np.random.default_rng(0))
    return model, fit(model, bptt.optim.SGD(model, 0.1), updates, steps, history=History())


def test_interrupt_checkpoints_and_resume_is_bit_exact(tmp_path: Path) -> None:
    """Ctrl-C at step 7: Interrupted after a checkpoint; resuming it ends where one run ends."""
    whole, whole_history = _run(20, history=ScoreHistory(), evaluation=_bias)
    path = tmp_path / "c.npz"
    model, rng = _model(), np.random.default_rng(0)

    def press(step: int, loss: float, h: ScoreHistory) -> None:
        if step == 7:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(Interrupted, match="after step 7"):
        fit(
            model,
            bptt.optim.Adam(model, lr=0.01),
            _updates(model, rng),
            20,
            history=ScoreHistory(),
            evaluation=_bias(model),
            callback=press,
            checkpoints=Checkpoints(path, rng, SETTINGS),
            interruptible=True,
        )
    rng = np.random.default_rng(0)
    state = resume_from(path, SETTINGS, rng)
    assert state.step == 7
    opt = bptt.optim.Adam(state.model, lr=0.01)
    opt.load_state_dict(state.optimizer)
    history = ScoreHistory.from_arrays(state.history)
    updates = _updates(state.model, rng)
    fit(state.model, opt, updates, 20, history=history, start=7, evaluation=_bias(state.model))
    _same(_params(state.model), _params(whole))
    assert history.loss == whole_history.loss and history.score == whole_history.score
    assert history.check_step == whole_history.check_step == [3, 6, 9, 12, 15, 18, 20]


def test_updates_that_run_out_end_the_run() -> None:
    """A finite source of updates (one pass over a data set) ends the run after its last update."""
    model = _model()
    batches = [next(_batches(np.random.default_rng(i))) for i in range(3)]
    updates = supervised(model, bptt.MSELoss(), batches)
    history = fit(model, bptt.optim.SGD(model, 0.1), updates, 10, history=History())
    assert history.steps == 3


def test_a_stop_requested_in_the_last_step_ends_the_run() -> None:
    """The last step ends the run: a signal during it does not turn a finished run into Interrupted."""
    press = lambda step, loss, h: signal.raise_signal(signal.SIGINT) if step == 4 else None  # noqa: E731
    _, history = _run(4, callback=press, interruptible=True)
    assert history.steps == 4 and history.converged


@pytest.mark.parametrize("mode, best_check", [("min", 2), ("max", 1)])
def test_best_keeps_a_copy_of_the_best_weights(mode: Literal["min", "max"], best_check: int) -> None:
    """Best keeps the weights of the check with the lowest (or highest) score, and restores them."""
    seen: dict[int, dict[str, np.ndarray]] = {}
    best = Best("score", mode=mode)
    model, history = _best_run(best, seen)
    assert history.check_step == [3, 6, 8] and history.score == [1.0, 2.0, 0.0]
    assert best.step == history.check_step[best_check] and best.value == history.score[best_check]
    _same(best.params, seen[best.step])
    assert best.step == 8 or not np.array_equal(model.params["0.W_hh"], best.params["0.W_hh"])
    best.restore(model)
    _same(_params(model), seen[best.step])


def _best_run(best: Best, seen: dict[int, dict[str, np.ndarray]]) -> tuple[bptt.Sequential, ScoreHistory]:
    model = _model()
    history = fit(
        model,
        bptt.optim.Adam(model, lr=0.01),
        _updates(model, np.random.default_rng(0)),
        8,
        history=ScoreHistory(),
        evaluation=_scores(best),
        callback=lambda step, loss, h: seen.__setitem__(step, _params(model)),
    )
    return model, history


def test_best_refuses_what_it_cannot_mean() -> None:
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        Best("score", mode="lowest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no check has reported 'score'"):
        Best("score").restore(_model())


@pytest.mark.parametrize("met_at, steps, converged", [(2, 4, True), (None, 6, False)])
def test_the_stopping_rule_ends_training(met_at: int | None, steps: int, converged: bool) -> None:
    """until(history) is asked after each check; a rule never met runs every step, unconverged."""
    rule = lambda h: met_at is not None and len(h.check_step) == met_at  # noqa: E731
    evaluation = lambda model: Evaluation(lambda: {"score": 0.0}, every=2)  # noqa: E731
    _, history = _run(10 if met_at else steps, evaluation, history=ScoreHistory(), until=rule)
    assert history.steps == steps and history.converged is converged
    _, fixed = _run(3)
    assert fixed.converged and fixed.seconds > 0  # a fixed schedule that ran to its end


def test_history_arrays_round_trip() -> None:
    """arrays() gives 1-D arrays (check steps as int64) and from_arrays reads them back."""
    history = ScoreHistory(loss=[0.5, 0.25], check_step=[2])
    history.record(2, {"score": 3.0})
    history.record(4, {"score": 1.5})
    arrays = history.arrays()
    assert list(arrays) == ["loss", "check_step", "score"] and arrays["check_step"].dtype == np.int64
    back = ScoreHistory.from_arrays(arrays)
    assert back.loss == [0.5, 0.25] and back.check_step == [2, 2, 4] and back.score == [3.0, 1.5]
    with pytest.raises(KeyError, match="no metric 'bpc'"):
        history.metric("bpc")
