"""Reading sums off a trained adder: exact-match accuracy, and streaming `add` of any length."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ... import _accel
from ..._types import Array
from ..._validate import as_rng, positive_int
from ...functional import sigmoid
from ...layers import Dense, Layer
from ...recurrent import RNN
from ...recurrent.kernels import short_job
from .bits import all_pairs, make_batch, operand, sum_bits

__all__ = [
    "ACCELERATE_FROM",
    "CHUNK",
    "EVAL_BUDGET",
    "accuracy",
    "add",
    "check_adder",
    "predict_bits",
    "threshold",
]

CHUNK = 4096  # steps per piece when streaming: memory stays O(CHUNK · hidden), whatever the length
EVAL_BUDGET = 1 << 22  # floats per evaluation batch (T · B · H), about 32 MB in float64


def threshold(model: Layer) -> float:
    """The decision boundary of the model's output: 0.5 when it ends in a sigmoid, else 0 (logits)."""
    _, last = list(model.leaves())[-1]
    return 0.5 if getattr(last, "activation", None) == "sigmoid" else 0.0


def check_adder(model: Layer, where: str) -> None:
    """``ValueError`` unless ``model`` is a layer taking 2 input bits per step (``TypeError``: no layer)."""
    if not isinstance(model, Layer):
        raise TypeError(f"{where}: model must be a bptt layer or Sequential, got {type(model).__name__}")
    if model.input_size not in (None, 2):
        raise ValueError(
            f"{where}: the model must take 2 input bits per step, got {next(model.leaves())[1]!r}"
        )


def predict_bits(model: Layer, x: Array) -> NDArray[np.bool_]:
    """The model's sum bits ``(T, B)`` for operands ``x (T, B, 2)``, evaluated in batch chunks.

    Every sum starts from zero states (``model.run``), whatever state the model carries.
    """
    check_adder(model, "predict_bits")
    T, B = x.shape[:2]
    width = max(leaf.output_size or 1 for _, leaf in model.leaves())
    step = max(1, EVAL_BUDGET // (T * width))
    cut = threshold(model)
    out = np.empty((T, B), bool)
    for s in range(0, B, step):
        chunk = x[:, s : s + step]  # (T, B', 2)
        out[:, s : s + step] = _output(model.run(chunk)[0], chunk, "predict_bits") > cut
    return out


def _output(y: Array, x: Array, where: str) -> Array:
    """The model's one output per step ``(T, B)`` from ``y``, refusing models with other output widths."""
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
        x = all_pairs(n_bits)
        y = sum_bits(x)
    else:
        x, y = make_batch(n_bits, positive_int(samples, "accuracy", "samples"), as_rng(rng, "accuracy"))
    with short_job():  # a few forwards: the NumPy loops, with nothing to import or compile
        exact = np.all(predict_bits(model, x) == (y[:, :, 0] > 0.5), axis=0)
    return float(exact.mean())


ACCELERATE_FROM = 1 << 16  # bits; below this, compiling the kernel costs more than it saves


def add(model: Layer, a: int, b: int, *, accelerate: bool | None = None) -> int:
    """``a + b`` computed by the RNN, streamed ``CHUNK`` steps at a time.

    Working memory is O(CHUNK · hidden) however long the operands are; only the result and
    the operands' own bytes grow with the length. The sum starts from zero states, and each
    piece runs from the states the last one ended in (``model.run``). ``accelerate`` picks the
    compiled kernel (numba) for an ``RNN -> Dense`` adder: ``None``
    (default) uses it when it is installed and the operands have at least ``ACCELERATE_FROM`` bits.
    """
    check_adder(model, "add")
    a, b = operand(a, "add", "a"), operand(b, "add", "b")
    T = max(a.bit_length(), b.bit_length(), 1) + 1
    nbytes = (T + 7) // 8
    raw_a, raw_b = a.to_bytes(nbytes, "little"), b.to_bytes(nbytes, "little")
    kernel = _kernel_weights(model) if accelerate is not False else None
    if accelerate and kernel is None:
        raise ValueError("add: accelerate=True needs numba and an RNN -> Dense(H, 1) adder")
    use_kernel = kernel is not None and (accelerate or T >= ACCELERATE_FROM)
    out = bytearray()
    cut = threshold(model)
    state: Any = None  # zeros: every recurrent layer starts fresh
    h = np.zeros(kernel[0]["W_hh"].shape[0]) if kernel is not None else None  # the kernel's own state
    for start in range(0, nbytes, CHUNK // 8):
        stop = min(start + CHUNK // 8, nbytes)
        bits_a = np.unpackbits(np.frombuffer(raw_a[start:stop], np.uint8), bitorder="little")
        bits_b = np.unpackbits(np.frombuffer(raw_b[start:stop], np.uint8), bitorder="little")
        if use_kernel:
            assert kernel is not None and h is not None
            logits = _accel.adder_logits(bits_a, bits_b, h, kernel[0], kernel[1])
            bits = (sigmoid(logits) if cut == 0.5 else logits) > cut
        else:
            x = np.stack([bits_a, bits_b], axis=1)[:, None, :].astype(np.float64)  # (T, 1, 2)
            y, state = model.run(x, state)  # (T, 1, 1), and the states after it
            bits = _output(y, x, "add")[:, 0] > cut
        out += np.packbits(bits, bitorder="little").tobytes()
    # Steps past T only pad the last byte; the sum is the first T bits.
    return int.from_bytes(out, "little") & ((1 << T) - 1)


def _kernel_weights(model: Layer) -> tuple[dict[str, Any], str] | None:
    """The weights the compiled adder kernel needs, if it is installed and fits this model.

    The kernel computes exactly ``RNN -> Dense(H, 1)``, optionally then a sigmoid.
    """
    leaves = [leaf for _, leaf in model.leaves()]
    if not _accel.AVAILABLE or len(leaves) not in (2, 3):
        return None
    rnn, dense = leaves[0], leaves[1]
    if not (isinstance(rnn, RNN) and isinstance(dense, Dense) and dense.out_features == 1):
        return None
    if len(leaves) == 3 and (leaves[2].params or getattr(leaves[2], "activation", None) != "sigmoid"):
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
