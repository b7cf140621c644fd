"""Training the adder: recipes, the stopping rule, checkpoints and clean stops."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..._types import Array
from ..._validate import positive_int
from ...checkpoint import load_checkpoint, save_checkpoint
from ...functional import ACTIVATIONS
from ...layers import Dense, Layer, Sequential, Sigmoid
from ...losses import BCEWithLogitsLoss, MSELoss
from ...optim import SGD, Adam, Optimizer, clip_grad_norm, grad_norm
from ...recurrent import RNN
from ...stopping import UpdateGuard, stop_on_interrupt
from .bits import _all_pairs, _carry_chains, _sum_bits, make_batch
from .evaluate import _fresh_state


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


@dataclass
class History:
    """What happened during ``train``.

    ``loss`` has one entry per step; ``check_step``/``accuracy``/``margin`` one per check, where
    ``accuracy`` is the exact-match rate on the held-out set and ``margin`` the smallest
    ``|logit|`` (or ``|p - 0.5|`` for sigmoid outputs) over it.
    """

    loss: list[float] = field(default_factory=list)
    check_step: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    margin: list[float] = field(default_factory=list)
    seconds: float = 0.0
    converged: bool = False

    @property
    def steps(self) -> int:
        return len(self.loss)

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The history as arrays, for ``bptt.io.save(..., extra=...)``."""
        return {
            "loss": np.asarray(self.loss),
            "check_step": np.asarray(self.check_step, np.int64),
            "accuracy": np.asarray(self.accuracy),
            "margin": np.asarray(self.margin),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, NDArray[Any]]) -> History:
        return cls(
            loss=[float(v) for v in arrays.get("loss", [])],
            check_step=[int(v) for v in arrays.get("check_step", [])],
            accuracy=[float(v) for v in arrays.get("accuracy", [])],
            margin=[float(v) for v in arrays.get("margin", [])],
        )


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
    """Train an RNN adder on random ``n_bits``-bit sums.

    Parameters
    ----------
    n_bits, hidden, seed : int
        Operand width, hidden units, and the seed of everything random (training is
        deterministic).
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
        (``Interrupted``), after writing the checkpoint if ``checkpoint`` is set; a second one
        stops at once (see ``bptt.stopping.stop_on_interrupt``). For command-line use.

    Returns
    -------
    model : Sequential
    history : History
        ``history.converged`` says whether the stopping rule was met (always true for a
        fixed-step recipe).

    Raises
    ------
    Diverged
        The loss, the gradient or an update became NaN or infinite; ``.model`` has the weights
        after the last completed step, which are always finite.
    Interrupted
        SIGINT or SIGTERM, when ``interruptible``; ``.signum`` says which.
    """
    if preset not in PRESETS:
        raise ValueError(f"train: preset must be one of {sorted(PRESETS)}, got {preset!r}")
    known = {f.name for f in fields(Recipe)}
    if unknown := sorted(set(options) - known):
        raise TypeError(f"train: unknown option(s) {unknown}; a Recipe has {sorted(known)}")
    recipe = replace(PRESETS[preset], **options)
    n_bits = positive_int(n_bits, "train", "n_bits")
    hidden = positive_int(hidden, "train", "hidden")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"train: seed must be an integer ≥ 0, got {seed!r}")
    seed = int(seed)
    if checkpoint_every is not None:
        positive_int(checkpoint_every, "train", "checkpoint_every")
        if checkpoint is None:
            raise ValueError("train: checkpoint_every needs a checkpoint path")
    settings = {"task": "addition", "n_bits": n_bits, "hidden": hidden, "seed": seed, "preset": preset}
    settings["options"] = options

    rng = np.random.default_rng(seed)
    history, start_step = History(), 0
    if resume is None:
        model = build_model(hidden, recipe, rng)
    else:
        state = load_checkpoint(resume)
        if state.settings != settings:
            raise ValueError(
                f"train: {os.fspath(resume)!r} was written by a run with {state.settings}, not {settings}"
            )
        model, start_step = state.model, state.step
        rng.bit_generator.state = state.rng_state
        history = History.from_arrays(state.history)
    opt: Optimizer = Adam(model, lr=recipe.lr) if recipe.optimizer == "adam" else SGD(model, lr=recipe.lr)
    if resume is not None:
        opt.load_state_dict(state.optimizer)
    sigmoid_out = recipe.output == "sigmoid"
    loss_fn = MSELoss("sum") if sigmoid_out else BCEWithLogitsLoss()
    operand_bits = operand_width(n_bits, recipe)
    checks = _held_out(np.random.default_rng([seed, 1]), operand_bits if recipe.fit_sum else None)

    def save_state(step: int) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, opt, rng, step, history.arrays(), settings)

    guard = UpdateGuard(model, opt, history)
    start = time.perf_counter()
    with stop_on_interrupt(interruptible) as stop:
        for step in range(start_step + 1, (recipe.steps or recipe.max_steps) + 1):
            x, y = make_batch(operand_bits, recipe.batch_size, rng)
            loss, grad = loss_fn(model.forward(x), y)
            if sigmoid_out:  # the classic recipe's ½·Σ(y - ŷ)²
                loss, grad = 0.5 * loss, 0.5 * grad
            guard.check("loss", loss, step)
            model.backward(grad)
            norm = grad_norm(model) if recipe.clip is None else clip_grad_norm(model, recipe.clip)
            guard.check("gradient norm", norm, step)
            guard.apply(step)
            history.loss.append(loss)
            if step % recipe.check_every == 0 or step == recipe.steps:
                acc, margin = _check(model, checks, sigmoid_out)
                history.check_step.append(step)
                history.accuracy.append(acc)
                history.margin.append(margin)
                if recipe.steps is None and acc == 1.0 and margin >= recipe.margin:
                    history.converged = True
            if callback is not None:
                callback(step, loss, history)
            if history.converged:
                break
            if checkpoint_every is not None and step % checkpoint_every == 0:
                save_state(step)
            if stop.requested:
                save_state(step)
                raise stop.interrupted(model, history, step)
    history.converged = history.converged or recipe.steps is not None
    history.seconds = time.perf_counter() - start
    return model, history


def operand_width(n_bits: int, recipe: Recipe) -> int:
    """The training operands' bit width under ``recipe``."""
    return recipe.operand_bits or max(n_bits - 1 if recipe.fit_sum else n_bits, 1)


def _held_out(rng: np.random.Generator, all_pairs_bits: int | None) -> list[tuple[Array, Array]]:
    """The fixed check set: every pair of ``all_pairs_bits``-bit operands, or long sums."""
    if all_pairs_bits is not None:
        x = _all_pairs(all_pairs_bits)
        return [(x, _sum_bits(x))]
    return _check_set(rng)


def _check_set(rng: np.random.Generator) -> list[tuple[Array, Array]]:
    """The stopping rule's held-out sums: 64 random 32-bit ones and 32 carry-chain-rich 256-bit ones."""
    return [make_batch(32, 64, rng), _carry_chains(256, 32, 0.85, rng)]


def _check(model: Layer, checks: list[tuple[Array, Array]], sigmoid_out: bool) -> tuple[float, float]:
    """Exact-match rate and the smallest margin from the decision boundary over the check set."""
    exact, margin = [], np.inf
    with _fresh_state(model):
        for x, y in checks:
            out = model.forward(x)[:, :, 0] - (0.5 if sigmoid_out else 0.0)  # (T, B)
            exact.append(np.all((out > 0) == (y[:, :, 0] > 0.5), axis=0))
            margin = min(margin, float(np.abs(out).min()))
    return float(np.concatenate(exact).mean()), margin


# --- Looking inside: the carry ------------------------------------------------------------------
