"""Binary addition: the task bptt is known for.

Numbers are encoded least significant bit first. At step ``t`` the input is ``(a_t, b_t)`` and
the target is bit ``t`` of ``a + b``; there are ``T = n_bits + 1`` steps so the final carry has
one. An RNN that learns the carry on 8-bit sums adds numbers of any length exactly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _accel
from .._types import Array
from .._validate import as_array, as_rng, positive_int
from ..checkpoint import StopFlag, load_checkpoint, save_checkpoint, stop_on_interrupt
from ..errors import ShapeError, fmt_shape
from ..functional import ACTIVATIONS, sigmoid
from ..layers import Dense, Layer, Sequential, Sigmoid
from ..losses import BCEWithLogitsLoss, MSELoss
from ..optim import SGD, Adam, Optimizer, clip_grad_norm, grad_norm
from ..recurrent import RNN

__all__ = [
    "PRESETS",
    "CarryProbe",
    "History",
    "Recipe",
    "TrainingStopped",
    "accuracy",
    "add",
    "build_model",
    "carry_bits",
    "carry_probe",
    "decode",
    "encode",
    "hidden_states",
    "make_batch",
    "operand_width",
    "predict_bits",
    "train",
]

CHUNK = 4096  # steps per piece when streaming: memory stays O(CHUNK · hidden), whatever the length
EVAL_BUDGET = 1 << 22  # floats per evaluation batch (T · B · H), about 32 MB in float64


def _operand(v: Any, where: str, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{where}: {name} must be a non-negative integer, got {v!r}")
    return int(v)


def int_to_bits(n: int, length: int) -> NDArray[np.uint8]:
    """The ``length`` lowest bits of ``n``, least significant first, as 0/1 ``uint8``."""
    raw = np.frombuffer(n.to_bytes((length + 7) // 8, "little"), np.uint8)
    return np.unpackbits(raw, bitorder="little")[:length]


def bits_to_int(bits: NDArray[Any]) -> int:
    """Inverse of ``int_to_bits``: 0/1 values, least significant first."""
    return int.from_bytes(np.packbits(np.asarray(bits, np.uint8), bitorder="little").tobytes(), "little")


def encode(a: int, b: int, n_bits: int | None = None) -> Array:
    """Encode ``a`` and ``b`` as an input sequence ``x (T, 1, 2)`` with ``T = n_bits + 1``.

    ``n_bits`` defaults to the wider operand's bit length (at least 1).
    """
    a, b = _operand(a, "encode", "a"), _operand(b, "encode", "b")
    need = max(a.bit_length(), b.bit_length(), 1)
    if n_bits is None:
        n_bits = need
    n_bits = positive_int(n_bits, "encode", "n_bits")
    if n_bits < need:
        raise ValueError(f"encode: n_bits = {n_bits} is too small for operands of {need} bits")
    x = np.zeros((n_bits + 1, 1, 2))
    x[:n_bits, 0, 0] = int_to_bits(a, n_bits)
    x[:n_bits, 0, 1] = int_to_bits(b, n_bits)
    return x


def decode(bits: NDArray[Any]) -> int:
    """The integer whose bits, least significant first, are ``bits``.

    Parameters
    ----------
    bits : ndarray (T,)
        0/1 values, or probabilities in ``[0, 1]`` thresholded at 0.5.
    """
    p = as_array(bits, np.dtype(np.float64), "decode", "bits")
    if p.ndim != 1:
        raise ShapeError(f"decode: bits has shape {fmt_shape(p.shape)}; expected (T,), one value per step")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("decode: bits must be 0/1 or probabilities in [0, 1] (NaN is neither)")
    return bits_to_int(p > 0.5)


def make_batch(n_bits: int, batch_size: int, rng: np.random.Generator | int | None) -> tuple[Array, Array]:
    """Random sums with operands uniform in ``[0, 2**n_bits)``.

    Returns
    -------
    x : ndarray (T, B, 2)
        Operand bits; the last step is zeros.
    y : ndarray (T, B, 1)
        Sum bits, the final carry last.
    """
    n_bits = positive_int(n_bits, "make_batch", "n_bits")
    B = positive_int(batch_size, "make_batch", "batch_size")
    rng = as_rng(rng, "make_batch")
    x = np.zeros((n_bits + 1, B, 2))
    x[:n_bits] = rng.integers(0, 2, (n_bits, B, 2))  # uniform bits are uniform operands
    return x, _sum_bits(x)


def _carry_chains(
    length: int, batch: int, p_propagate: float, rng: np.random.Generator
) -> tuple[Array, Array]:
    """Sums where each position propagates a carry (``a_t ≠ b_t``) with probability ``p_propagate``.

    Long runs of propagate positions are where a learned adder forgets its carry; random sums
    of 10,000 bits hold runs of about 14, random 8-bit training sums at most 8.
    """
    x = np.zeros((length + 1, batch, 2))
    a = rng.integers(0, 2, (length, batch))
    propagate = rng.random((length, batch)) < p_propagate
    x[:length, :, 0] = a
    x[:length, :, 1] = np.where(propagate, 1 - a, a)  # elsewhere a generate (1,1) or a kill (0,0)
    return x, _sum_bits(x)


def _sum_bits(x: Array) -> Array:
    """Target bits ``y (T, B, 1)`` of the operands in ``x (T, B, 2)``, by ripple carry."""
    bits = x.astype(np.int8)
    y = np.empty((*x.shape[:2], 1))  # (T, B, 1)
    carry = np.zeros(x.shape[1], np.int8)
    for t in range(x.shape[0]):
        s = bits[t, :, 0] + bits[t, :, 1] + carry
        y[t, :, 0] = s & 1
        carry = s >> 1
    return y


def _all_pairs(n_bits: int) -> Array:
    """Every operand pair at ``n_bits`` bits as ``x (T, 4**n_bits, 2)``."""
    n = np.arange(1 << n_bits)
    a, b = np.repeat(n, n.size), np.tile(n, n.size)
    x = np.zeros((n_bits + 1, a.size, 2))
    shifts = np.arange(n_bits)[:, None]
    x[:n_bits, :, 0] = (a >> shifts) & 1
    x[:n_bits, :, 1] = (b >> shifts) & 1
    return x


def _threshold(model: Layer) -> float:
    """Outputs are probabilities when the model ends in a Sigmoid, logits otherwise."""
    last = model[-1] if isinstance(model, Sequential) else model
    return 0.5 if isinstance(last, Sigmoid) else 0.0


def _check_adder(model: Layer, where: str) -> None:
    first = model[0] if isinstance(model, Sequential) else model
    if getattr(first, "input_size", getattr(first, "in_features", 2)) != 2:
        raise ValueError(f"{where}: the model must take 2 input bits per step, got {first!r}")


def predict_bits(model: Layer, x: Array) -> NDArray[np.bool_]:
    """The model's sum bits ``(T, B)`` for operands ``x (T, B, 2)``, evaluated in batch chunks."""
    _check_adder(model, "predict_bits")
    T, B = x.shape[:2]
    width = max((getattr(layer, "hidden_size", 1) for layer in _layers(model)), default=1)
    step = max(1, EVAL_BUDGET // (T * width))
    cut = _threshold(model)
    out = np.empty((T, B), bool)
    with _fresh_state(model):
        for s in range(0, B, step):
            out[:, s : s + step] = _output(model, x[:, s : s + step], "predict_bits") > cut
    return out


def _output(model: Layer, x: Array, where: str) -> Array:
    """The model's one output per step, ``(T, B)``, refusing models with other output widths."""
    y = model.forward(x)
    if y.ndim != 3 or y.shape[:2] != x.shape[:2] or y.shape[2] != 1:
        raise ValueError(f"{where}: the model must output 1 value per step, (T, B, 1); got {y.shape}")
    return y[:, :, 0]


def accuracy(
    model: Layer, n_bits: int, samples: int | None = None, rng: np.random.Generator | int | None = None
) -> float:
    """Exact-match rate: the fraction of sums with every bit right.

    ``samples=None`` checks every pair of ``n_bits``-bit operands (65,536 at 8 bits; allowed
    up to 12 bits); otherwise ``samples`` random pairs drawn with ``rng``.
    """
    n_bits = positive_int(n_bits, "accuracy", "n_bits")
    if samples is None:
        if n_bits > 12:
            raise ValueError(f"accuracy: every pair at {n_bits} bits is 4**{n_bits} sums; pass samples=")
        x = _all_pairs(n_bits)
        y = _sum_bits(x)
    else:
        x, y = make_batch(n_bits, positive_int(samples, "accuracy", "samples"), as_rng(rng, "accuracy"))
    exact = np.all(predict_bits(model, x) == (y[:, :, 0] > 0.5), axis=0)
    return float(exact.mean())


ACCELERATE_FROM = 1 << 16  # bits; below this, compiling the kernel costs more than it saves


def add(model: Layer, a: int, b: int, *, accelerate: bool | None = None) -> int:
    """``a + b`` computed by the RNN, streamed ``CHUNK`` steps at a time.

    Working memory is O(CHUNK · hidden) however long the operands are; only the result and
    the operands' own bytes grow with the length. ``accelerate`` picks the compiled kernel of
    the ``accel`` extra (numba) for an ``RNN -> Dense`` adder: ``None`` (default) uses it when it
    is installed and the operands have at least ``ACCELERATE_FROM`` bits.
    """
    _check_adder(model, "add")
    a, b = _operand(a, "add", "a"), _operand(b, "add", "b")
    T = max(a.bit_length(), b.bit_length(), 1) + 1
    nbytes = (T + 7) // 8
    raw_a, raw_b = a.to_bytes(nbytes, "little"), b.to_bytes(nbytes, "little")
    kernel = _kernel_weights(model) if accelerate is not False else None
    if accelerate and kernel is None:
        raise ValueError("add: accelerate=True needs numba and an RNN -> Dense(H, 1) adder")
    use_kernel = kernel is not None and (accelerate or T >= ACCELERATE_FROM)
    out = bytearray()
    cut = _threshold(model)
    h = np.zeros(getattr(model[0] if isinstance(model, Sequential) else model, "hidden_size", 1))
    with _fresh_state(model, stateful=True):
        for start in range(0, nbytes, CHUNK // 8):
            stop = min(start + CHUNK // 8, nbytes)
            bits_a = np.unpackbits(np.frombuffer(raw_a[start:stop], np.uint8), bitorder="little")
            bits_b = np.unpackbits(np.frombuffer(raw_b[start:stop], np.uint8), bitorder="little")
            if use_kernel:
                assert kernel is not None
                logits = _accel.adder_logits(bits_a, bits_b, h, kernel[0], kernel[1])
                bits = (sigmoid(logits) if cut == 0.5 else logits) > cut
            else:
                x = np.stack([bits_a, bits_b], axis=1)[:, None, :].astype(np.float64)  # (T, 1, 2)
                bits = _output(model, x, "add")[:, 0] > cut
            out += np.packbits(bits, bitorder="little").tobytes()
    # Steps past T only pad the last byte; the sum is the first T bits.
    return int.from_bytes(out, "little") & ((1 << T) - 1)


def _kernel_weights(model: Layer) -> tuple[dict[str, Any], str] | None:
    """The weights the compiled adder kernel needs, if it is installed and fits this model."""
    layers = _layers(model)
    if not _accel.AVAILABLE or len(layers) not in (2, 3):
        return None
    rnn, dense = layers[0], layers[1]
    if not (isinstance(rnn, RNN) and isinstance(dense, Dense) and dense.out_features == 1):
        return None
    if len(layers) == 3 and not isinstance(layers[2], Sigmoid):
        return None
    H = rnn.hidden_size
    weights = {
        "W_ih": np.ascontiguousarray(rnn.params["W_ih"], np.float64),
        "W_hh": np.ascontiguousarray(rnn.params["W_hh"], np.float64),
        "b": np.asarray(rnn.params["b"], np.float64) if rnn.bias else np.zeros(H),
        "W_out": np.ascontiguousarray(dense.params["W"][:, 0], np.float64),
        "b_out": float(dense.params["b"][0]) if dense.bias else 0.0,
    }
    return weights, rnn.activation


def _layers(model: Layer) -> list[Layer]:
    return list(model) if isinstance(model, Sequential) else [model]


@contextmanager
def _fresh_state(model: Layer, stateful: bool = False) -> Iterator[None]:
    """Run with every RNN starting from zeros (and carrying state if asked); restore after."""
    rnns = [layer for layer in _layers(model) if isinstance(layer, RNN)]
    saved = [(r.h0, r.stateful) for r in rnns]
    try:
        for r in rnns:
            r.h0, r.stateful = None, stateful
        yield
    finally:
        for r, (h0, was_stateful) in zip(rnns, saved, strict=True):
            r.h0, r.stateful = h0, was_stateful


# --- Training ---------------------------------------------------------------------------------


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


class TrainingStopped(Exception):
    """Training ended before its stopping rule; ``model`` holds the last good weights.

    Attributes
    ----------
    model : Sequential
        The weights after the last completed step (never NaN ones).
    history : History
    step : int
        The last completed step.
    """

    def __init__(self, message: str, model: Sequential, history: History, step: int) -> None:
        super().__init__(message)
        self.model, self.history, self.step = model, history, step


class Diverged(TrainingStopped, FloatingPointError):
    """The loss or a gradient stopped being finite; that step was not applied."""


class Interrupted(TrainingStopped):
    """Ctrl-C asked training to stop; it stopped at a step boundary (and checkpointed, if asked)."""


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
        Turn the first Ctrl-C into a clean stop at the next step boundary (``Interrupted``),
        after writing the checkpoint if ``checkpoint`` is set. For command-line use.

    Returns
    -------
    model : Sequential
    history : History
        ``history.converged`` says whether the stopping rule was met (always true for a
        fixed-step recipe).

    Raises
    ------
    Diverged
        The loss or the gradient became NaN or infinite; ``.model`` has the last good weights.
    Interrupted
        Ctrl-C, when ``interruptible``.
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

    start = time.perf_counter()
    with stop_on_interrupt() if interruptible else nullcontext(StopFlag()) as stop:
        for step in range(start_step + 1, (recipe.steps or recipe.max_steps) + 1):
            x, y = make_batch(operand_bits, recipe.batch_size, rng)
            loss, grad = loss_fn(model.forward(x), y)
            if sigmoid_out:  # the classic recipe's ½·Σ(y - ŷ)²
                loss, grad = 0.5 * loss, 0.5 * grad
            if not np.isfinite(loss):
                raise Diverged(f"the loss became {loss} at step {step}", model, history, step - 1)
            model.backward(grad)
            norm = grad_norm(model) if recipe.clip is None else clip_grad_norm(model, recipe.clip)
            if not np.isfinite(norm):
                raise Diverged(f"the gradient norm became {norm} at step {step}", model, history, step - 1)
            opt.step()
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
                raise Interrupted(f"interrupted after step {step}", model, history, step)
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


def carry_bits(x: Array) -> NDArray[np.bool_]:
    """The true carry out of every step, ``(T, B)``: the carry left after adding ``a_t + b_t + c_{t-1}``.

    ``x (T, B, 2)`` holds 0/1 operand bits. The carry *into* step ``t`` is the carry out of
    step ``t - 1`` (0 at ``t = 0``).
    """
    bits = as_array(x, np.dtype(np.float64), "carry_bits", "x")
    if bits.ndim != 3 or bits.shape[2] != 2:
        raise ShapeError(f"carry_bits: x has shape {fmt_shape(bits.shape)}; expected (T, B, 2), operand bits")
    if not np.all((bits == 0) | (bits == 1)):
        raise ValueError("carry_bits: x must hold 0/1 operand bits")
    ones = bits.astype(np.int8)
    out = np.empty(bits.shape[:2], bool)
    carry = np.zeros(bits.shape[1], np.int8)
    for t in range(bits.shape[0]):
        carry = (ones[t, :, 0] + ones[t, :, 1] + carry) >> 1
        out[t] = carry
    return out


def _first_rnn(model: Layer, where: str) -> int:
    """Index of the model's first RNN layer, or ``ValueError``."""
    if not isinstance(model, Layer):
        raise TypeError(f"{where}: model must be a bptt layer or Sequential, got {type(model).__name__}")
    for i, layer in enumerate(_layers(model)):
        if isinstance(layer, RNN):
            return i
    raise ValueError(f"{where}: the model has no RNN layer to look inside")


def hidden_states(model: Layer, x: Array) -> Array:
    """The hidden states ``h_t (T, B, H)`` of the model's first RNN layer, starting from zeros."""
    last = _first_rnn(model, "hidden_states")
    with _fresh_state(model):
        for layer in _layers(model)[: last + 1]:
            x = layer.forward(x)
    return x


@dataclass(frozen=True, eq=False)
class CarryProbe:
    """A linear read-out of the carry from the first RNN layer's hidden state.

    ``carry out of step t  ≈  h_t @ weights + bias > 0``, fitted by least squares on ±1 targets.

    Attributes
    ----------
    accuracy : float
        Fraction of held-out steps (sums not used for fitting) whose carry the probe gets right.
    top_units : list of (unit, weight)
        The units with the largest ``|weight|``, largest first.
    weights : ndarray (H,)
    bias : float
    """

    accuracy: float
    top_units: list[tuple[int, float]]
    weights: Array
    bias: float


def carry_probe(
    model: Layer,
    n_bits: int = 64,
    samples: int = 256,
    rng: np.random.Generator | int | None = 0,
    *,
    p_propagate: float | None = None,
    top: int = 5,
) -> CarryProbe:
    """Is the carry linearly readable from the hidden state? Fit a probe and test it on new sums.

    Runs the model's first RNN layer on ``samples`` random ``n_bits``-bit sums, fits a linear
    probe from ``h_t`` to the true carry out of step ``t`` on the first half of the sums, and
    reports its accuracy on the other half (every step of every held-out sum counts).

    Random sums have short carry chains (about 2 steps on average), which even an untrained
    RNN's fading memory holds well enough for a probe to read most carries. ``p_propagate``
    draws sums rich in carry chains instead (each position propagates the carry, ``a_t ≠ b_t``,
    with that probability), where only a network that really keeps the carry scores high.
    """
    _check_adder(model, "carry_probe")
    n_bits = positive_int(n_bits, "carry_probe", "n_bits")
    samples = positive_int(samples, "carry_probe", "samples")
    top = positive_int(top, "carry_probe", "top")
    if samples < 2:
        raise ValueError("carry_probe: samples must be at least 2 (half fit the probe, half test it)")
    rng = as_rng(rng, "carry_probe")
    if p_propagate is None:
        x, _ = make_batch(n_bits, samples, rng)
    else:
        number = isinstance(p_propagate, (int, float)) and not isinstance(p_propagate, bool)
        if not (number and 0 <= p_propagate <= 1):
            raise ValueError(f"carry_probe: p_propagate must be None or in [0, 1], got {p_propagate!r}")
        x, _ = _carry_chains(n_bits, samples, float(p_propagate), rng)
    h = hidden_states(model, x)  # (T, B, H)
    carry = carry_bits(x)  # (T, B)
    H, fit = h.shape[2], samples // 2

    def design(cols: slice) -> Array:  # (T·B', H + 1): the states and a bias column
        states = h[:, cols].reshape(-1, H)
        return np.hstack([states, np.ones((states.shape[0], 1))])

    target = np.where(carry[:, :fit], 1.0, -1.0).reshape(-1)
    coef = np.linalg.lstsq(design(slice(0, fit)), target, rcond=None)[0]  # (H + 1,)
    guess = design(slice(fit, None)) @ coef > 0
    acc = float(np.mean(guess == carry[:, fit:].reshape(-1)))
    weights = coef[:H].copy()
    order = np.argsort(-np.abs(weights), kind="stable")[:top]
    return CarryProbe(acc, [(int(i), float(weights[i])) for i in order], weights, float(coef[H]))
