"""Training the adder: recipes, the stopping rule, checkpoints and clean stops."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import numpy as np

from ... import trainer
from ..._types import Array
from ..._validate import positive_int
from ...checkpoint import Checkpoints, register_settings, resume_from
from ...functional import ACTIVATIONS
from ...layers import Dense, Layer, Sequential, Sigmoid
from ...losses import BCEWithLogitsLoss, MSELoss
from ...optim import SGD, Adam, Optimizer
from ...recurrent import RNN
from .bits import all_pairs, carry_chains, make_batch, sum_bits


@dataclass(frozen=True)
class Recipe:
    """How ``train`` builds and trains the adder. ``PRESETS`` holds the named ones.

    A recipe with ``steps`` set trains exactly that many steps (the classic recipe); otherwise
    training stops on measured accuracy: every ``check_every`` steps the model predicts a fixed
    held-out set of long sums (random 32-bit sums and 256-bit sums rich in carry chains), and
    training ends once every bit is right with each logit at least ``margin`` from 0.
    """

    activation: str = "tanh"
    output: str = "logits"  # "logits" with BCE, or "sigmoid" with half squared error
    bias: bool = True
    init: float | None = None  # weights U(-init, init); None keeps the layers' defaults
    optimizer: str = "adam"  # "adam" or "sgd"
    lr: float = 0.03
    batch_size: int = 64
    clip: float | None = 5.0
    operand_bits: int | None = None  # training operands' width; None: see operand_width()
    fit_sum: bool = False  # operands of n_bits - 1 bits, so every sum fits in n_bits (classic)
    steps: int | None = None
    max_steps: int = 5000
    check_every: int = 25
    margin: float = 3.0

    def __post_init__(self) -> None:
        choices = {
            "activation": tuple(ACTIVATIONS),
            "output": ("logits", "sigmoid"),
            "optimizer": ("adam", "sgd"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"Recipe: {name} must be one of {list(allowed)}, got {getattr(self, name)!r}"
                )
        for name in ("batch_size", "max_steps", "check_every"):
            positive_int(getattr(self, name), "Recipe", name)
        for name in ("operand_bits", "steps"):
            if getattr(self, name) is not None:
                positive_int(getattr(self, name), "Recipe", name)
        for name in ("lr", "clip", "init"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(
                    f"Recipe: {name} must be a positive number{' or None' * (name != 'lr')}, got {value!r}"
                )
        if not (isinstance(self.margin, (int, float)) and self.margin >= 0):
            raise ValueError(f"Recipe: margin must be a number ≥ 0, got {self.margin!r}")


PRESETS: dict[str, Recipe] = {
    "default": Recipe(),
    # The well-known single-sample recipe: 2-16-1, sigmoid hidden and output, no biases,
    # U(-1, 1), squared error, plain SGD lr 0.1, one pair per step, operands < 2**(n_bits-1).
    "classic": Recipe(
        activation="sigmoid",
        output="sigmoid",
        bias=False,
        init=1.0,
        optimizer="sgd",
        lr=0.1,
        batch_size=1,
        clip=None,
        steps=10_000,
        check_every=500,
        fit_sum=True,
    ),
}

# What ``train`` stores as a checkpoint's ``settings``, checked whenever one is saved or loaded.
register_settings(
    "addition",
    {
        "task": ("'addition'", lambda v: v == "addition"),
        "n_bits": ("an int ≥ 1", lambda v: type(v) is int and v >= 1),
        "hidden": ("an int ≥ 1", lambda v: type(v) is int and v >= 1),
        "seed": ("an int ≥ 0", lambda v: type(v) is int and v >= 0),
        "preset": (f"one of {sorted(PRESETS)}", lambda v: isinstance(v, str) and v in PRESETS),
        "options": ("a dict", lambda v: isinstance(v, dict)),
    },
)


@dataclass
class History(trainer.History):
    """What happened during ``train``.

    ``loss`` has one entry per step; ``check_step``/``accuracy``/``margin`` one per check, where
    ``accuracy`` is the exact-match rate on the held-out set and ``margin`` the smallest
    ``|logit|`` (or ``|p - 0.5|`` for sigmoid outputs) over it.
    """

    METRICS: ClassVar[tuple[str, ...]] = ("accuracy", "margin")

    accuracy: list[float] = field(default_factory=list)
    margin: list[float] = field(default_factory=list)


Callback = Callable[[int, float, History], None]


def build_model(hidden: int, recipe: Recipe, rng: np.random.Generator) -> Sequential:
    """The adder ``RNN(2, hidden) -> Dense(hidden, 1)`` (``-> Sigmoid`` for sigmoid outputs)."""
    rnn = RNN(2, hidden, activation=recipe.activation, bias=recipe.bias, rng=rng)
    dense = Dense(hidden, 1, bias=recipe.bias, rng=rng)
    if recipe.init is not None:
        for layer in (rnn, dense):
            for p in layer.params.values():
                p[...] = rng.uniform(-recipe.init, recipe.init, p.shape)
    return Sequential([rnn, dense, Sigmoid()] if recipe.output == "sigmoid" else [rnn, dense])


def train(
    n_bits: int = 8,
    hidden: int = 16,
    seed: int = 0,
    *,
    preset: str = "default",
    callback: Callback | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike[str] | None = None,
    interruptible: bool = False,
    **options: Any,
) -> tuple[Sequential, History]:
    """Train an RNN adder on random ``n_bits``-bit sums: a recipe for ``bptt.trainer.fit``.

    Parameters
    ----------
    n_bits, hidden, seed : int
        Operand width, hidden units, and the seed of everything random (training is deterministic).
    preset : str
        A key of ``PRESETS``; ``**options`` override its ``Recipe`` fields (``lr=0.01``).
    callback : callable ``(step, loss, history)``, optional
        Called after every step (progress bars).
    checkpoint, checkpoint_every : path and int, optional
        Write a checkpoint (weights, optimizer state, RNG state, history) to ``checkpoint``
        every ``checkpoint_every`` steps, and when interrupted.
    resume : path, optional
        Continue from a checkpoint written with the same settings; the run ends at exactly the
        weights an uninterrupted run reaches.
    interruptible : bool
        Turn the first SIGINT (Ctrl-C) or SIGTERM into a clean stop at the next step boundary
        (``Interrupted``, with ``.signum``), after writing the checkpoint if ``checkpoint`` is
        set; a second one stops at once (``bptt.stopping.stop_on_interrupt``). For command lines.

    Returns ``(model, history)``; ``history.converged`` says whether the stopping rule was met
    (always true for a fixed-step recipe). Raises ``Diverged`` when the loss, the gradient or an
    update becomes NaN or infinite; its ``.model`` holds the finite weights of the last step.
    """
    recipe = _recipe(preset, options)
    settings = _settings(n_bits, hidden, seed, preset, options)
    rng = np.random.default_rng(settings["seed"])
    saving = _checkpoints(checkpoint, checkpoint_every, rng, settings)
    model, opt, history, start = _start(recipe, settings, rng, resume)
    operand_bits = operand_width(settings["n_bits"], recipe)
    batches = _batches(operand_bits, recipe.batch_size, rng)
    trainer.fit(
        model,
        opt,
        trainer.supervised(model, _loss(recipe.output == "sigmoid"), batches),
        recipe.steps or recipe.max_steps,
        history=history,
        start=start,
        clip=recipe.clip,
        evaluation=_evaluation(model, recipe, settings["seed"], operand_bits),
        until=_stopping_rule(recipe),
        callback=callback,
        checkpoints=saving,
        interruptible=interruptible,
    )
    return model, history


def _checkpoints(
    path: str | os.PathLike[str] | None, every: int | None, rng: np.random.Generator, settings: dict[str, Any]
) -> Checkpoints | None:
    """Where and how often the run checkpoints (``None``: it does not)."""
    if every is not None:
        positive_int(every, "train", "checkpoint_every")
        if path is None:
            raise ValueError("train: checkpoint_every needs a checkpoint path")
    return None if path is None else Checkpoints(path, rng, settings, every)


def _start(
    recipe: Recipe, settings: dict[str, Any], rng: np.random.Generator, resume: str | os.PathLike[str] | None
) -> tuple[Sequential, Optimizer, History, int]:
    """The model, optimizer, history and completed steps to start from: fresh, or a checkpoint's."""
    state = None if resume is None else resume_from(resume, settings, rng)
    model = build_model(settings["hidden"], recipe, rng) if state is None else state.model
    opt: Optimizer = Adam(model, lr=recipe.lr) if recipe.optimizer == "adam" else SGD(model, lr=recipe.lr)
    if state is None:
        return model, opt, History(), 0
    opt.load_state_dict(state.optimizer)
    return model, opt, History.from_arrays(state.history), state.step


def _evaluation(model: Layer, recipe: Recipe, seed: int, operand_bits: int) -> trainer.Evaluation:
    """Accuracy and margin on a fixed held-out set every ``check_every`` steps (and at the end of
    a fixed schedule)."""
    sigmoid_out = recipe.output == "sigmoid"
    checks = _held_out(np.random.default_rng([seed, 1]), operand_bits if recipe.fit_sum else None)
    return trainer.Evaluation(
        lambda: _check(model, checks, sigmoid_out), recipe.check_every, at_end=recipe.steps is not None
    )


def _stopping_rule(recipe: Recipe) -> Callable[[History], bool] | None:
    """Every held-out bit right, each at least ``margin`` from the boundary; none for fixed steps."""
    if recipe.steps is not None:
        return None
    return lambda h: h.accuracy[-1] == 1.0 and h.margin[-1] >= recipe.margin


def _recipe(preset: str, options: dict[str, Any]) -> Recipe:
    """The preset's recipe with ``options`` overriding its fields."""
    if preset not in PRESETS:
        raise ValueError(f"train: preset must be one of {sorted(PRESETS)}, got {preset!r}")
    known = {f.name for f in fields(Recipe)}
    if unknown := sorted(set(options) - known):
        raise TypeError(f"train: unknown option(s) {unknown}; a Recipe has {sorted(known)}")
    return replace(PRESETS[preset], **options)


def _settings(n_bits: int, hidden: int, seed: int, preset: str, options: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint records of the run, checked: a resume must match it exactly."""
    n_bits = positive_int(n_bits, "train", "n_bits")
    hidden = positive_int(hidden, "train", "hidden")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"train: seed must be an integer ≥ 0, got {seed!r}")
    return {"task": "addition", "n_bits": n_bits, "hidden": hidden, "seed": int(seed), "preset": preset} | {
        "options": options
    }


def _batches(operand_bits: int, batch_size: int, rng: np.random.Generator) -> Iterator[tuple[Array, Array]]:
    """Fresh random sums for every step, drawn from the run's ``rng``."""
    while True:
        yield make_batch(operand_bits, batch_size, rng)


def _loss(sigmoid_out: bool) -> Callable[[Array, Array], tuple[float, Array]]:
    """BCE on logits, or for sigmoid outputs the classic recipe's ½·Σ(y - ŷ)²."""
    if not sigmoid_out:
        return BCEWithLogitsLoss()
    squared_error = MSELoss("sum")

    def half_squared_error(y: Array, target: Array) -> tuple[float, Array]:
        loss, grad = squared_error(y, target)
        return 0.5 * loss, 0.5 * grad

    return half_squared_error


def operand_width(n_bits: int, recipe: Recipe) -> int:
    """The training operands' bit width under ``recipe``."""
    return recipe.operand_bits or max(n_bits - 1 if recipe.fit_sum else n_bits, 1)


def _held_out(rng: np.random.Generator, all_pairs_bits: int | None) -> list[tuple[Array, Array]]:
    """The fixed check set: every pair of ``all_pairs_bits``-bit operands, or long sums."""
    if all_pairs_bits is not None:
        x = all_pairs(all_pairs_bits)
        return [(x, sum_bits(x))]
    return _check_set(rng)


def _check_set(rng: np.random.Generator) -> list[tuple[Array, Array]]:
    """The stopping rule's held-out sums: 64 random 32-bit ones and 32 carry-chain-rich 256-bit ones."""
    return [make_batch(32, 64, rng), carry_chains(256, 32, 0.85, rng)]


def _check(model: Layer, checks: list[tuple[Array, Array]], sigmoid_out: bool) -> dict[str, float]:
    """The exact-match rate (``accuracy``) and the smallest distance from the decision boundary
    (``margin``) over the check set."""
    exact, margin = [], np.inf
    for x, y in checks:  # the adder being trained has no h0 and keeps no state: each sum starts at zeros
        out = model.forward(x)[:, :, 0] - (0.5 if sigmoid_out else 0.0)  # (T, B)
        exact.append(np.all((out > 0) == (y[:, :, 0] > 0.5), axis=0))
        margin = min(margin, float(np.abs(out).min()))
    return {"accuracy": float(np.concatenate(exact).mean()), "margin": margin}
