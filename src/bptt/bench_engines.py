"""The rows of ``bptt bench``: each row's model and data, and one training iteration per engine.

``bptt_setup`` builds a row's bptt model (seed 0) and data; ``bptt_iteration`` and
``torch_iteration`` time the same iteration in bptt and torch, and ``bench_jax.jax_iteration``
(given ``bptt_setup``'s initial values) in JAX. torch is imported only by ``torch_iteration``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .bench_jax import ADAM
from .layers import Dense, Sequential
from .losses import CrossEntropyLoss, MSELoss
from .optim import Adam
from .recurrent import GRU, LSTM, RNN

__all__ = [
    "CELLS",
    "CHARLM_SHAPE",
    "DEFAULT_ROWS",
    "PAUSE",
    "ROW_KINDS",
    "SHAPES",
    "bptt_iteration",
    "bptt_setup",
    "flops",
    "nbytes",
    "torch_iteration",
]

SHAPES = [  # (T, B, I, H, O)
    (8, 1, 2, 16, 1),
    (8, 64, 2, 16, 1),
    (32, 64, 2, 64, 1),
    (64, 32, 64, 128, 64),
    (128, 64, 128, 512, 128),
    (256, 16, 32, 32, 32),
]
CHARLM_SHAPE = (50, 32, 98, 128, 98)  # T, B, V, H, V: LSTM 128 over one-hot characters
DEFAULT_ROWS = [
    *(("rnn", s) for s in SHAPES),
    *((c, s) for c in ("lstm", "gru") for s in ((32, 64, 2, 64, 1), (64, 32, 64, 128, 64))),
    ("charlm", CHARLM_SHAPE),
]
PAUSE = 0.02  # seconds between engines: idle OpenBLAS workers stop spinning


CELLS = {"rnn": (RNN, "RNN"), "lstm": (LSTM, "LSTM"), "gru": (GRU, "GRU")}  # bptt class, torch.nn name
ROW_KINDS = [*CELLS, "charlm"]


def flops(T: int, B: int, I: int, H: int, O: int, cell: str = "rnn") -> float:
    """FLOPs of fwd+bwd: 2·T·B·(2·I·G·H + 3·G·H² + 3·H·O) with G gates (1 RNN, 4 LSTM and charlm, 3 GRU)."""
    G = {"rnn": 1, "lstm": 4, "gru": 3, "charlm": 4}[cell]
    return 2.0 * T * B * (2 * I * G * H + 3 * G * H * H + 3 * H * O)


def bptt_setup(shape: tuple[int, ...], dtype: Any, cell: str = "rnn") -> tuple[Sequential, Any, Any]:
    """A row's bptt model ``cell(I, H) -> Dense(H, O)`` (seed 0) with its input and target.

    MSE rows: ``x (T, B, I)`` and ``target (T, B, O)`` normal. ``charlm``: an LSTM over ids
    ``x (T, B)`` in ``0..I-1`` (one-hot inputs) and next-character ids ``target (T, B)``.
    """
    T, B, I, H, O = shape
    rng = np.random.default_rng(0)
    layer = CELLS["lstm" if cell == "charlm" else cell][0](I, H, rng=rng, dtype=dtype)
    model = Sequential([layer, Dense(H, O, rng=rng, dtype=dtype)])
    if cell == "charlm":
        return model, rng.integers(0, I, size=(T, B)), rng.integers(0, O, size=(T, B))
    return model, rng.normal(size=(T, B, I)).astype(dtype), rng.normal(size=(T, B, O)).astype(dtype)


def bptt_iteration(shape: tuple[int, ...], dtype: Any, cell: str = "rnn") -> Callable[[], None]:
    """One bptt training iteration of ``bptt_setup``'s row: MSE and backward, or for ``charlm``
    cross-entropy, backward and one Adam step."""
    model, x, target = bptt_setup(shape, dtype, cell)
    if cell == "charlm":
        ce, opt = CrossEntropyLoss(), Adam(model, lr=ADAM["lr"])

        def update() -> None:
            _, grad = ce(model.forward(x), target)
            model.backward(grad)
            opt.step()

        return update
    loss_fn = MSELoss()

    def step() -> None:
        _, grad = loss_fn(model.forward(x), target)
        model.backward(grad)

    return step


def torch_iteration(shape: tuple[int, ...], dtype: Any, cell: str = "rnn") -> Callable[[], None]:
    """The same iteration in torch: ``nn.RNN``/``LSTM``/``GRU`` + ``nn.Linear``, MSE, backward;
    for ``charlm`` ``nn.LSTM`` on one-hot floats, cross-entropy, backward, ``torch.optim.Adam``."""
    import torch

    T, B, I, H, O = shape
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    torch.manual_seed(0)
    rnn = getattr(torch.nn, CELLS["lstm" if cell == "charlm" else cell][1])(I, H, dtype=tdtype)
    lin = torch.nn.Linear(H, O, dtype=tdtype)
    params = [*rnn.parameters(), *lin.parameters()]
    if cell == "charlm":
        ids = torch.randint(0, I, (T, B))
        hot, labels = torch.nn.functional.one_hot(ids, I).to(tdtype), torch.randint(0, O, (T * B,))
        opt = torch.optim.Adam(params, lr=ADAM["lr"])

        def update() -> None:
            opt.zero_grad()
            logits = lin(rnn(hot)[0]).reshape(T * B, O)
            torch.nn.functional.cross_entropy(logits, labels).backward()
            opt.step()

        return update
    x = torch.randn(T, B, I, dtype=tdtype, requires_grad=True)
    target = torch.randn(T, B, O, dtype=tdtype)

    def step() -> None:
        for p in params:
            p.grad = None
        x.grad = None
        out, _ = rnn(x)
        torch.nn.functional.mse_loss(lin(out), target).backward()

    return step


def nbytes(shape: tuple[int, ...], dtype: Any, cell: str = "rnn") -> int:
    """Memory one row needs, both engines together: inputs, states, gates and weights with gradients."""
    T, B, I, H, O = shape
    G = {"rnn": 1, "lstm": 4, "gru": 3, "charlm": 4}[cell]
    per_engine = 4 * T * B * (I + G * H + O) + 4 * G * H * (I + H + 1) + 4 * H * O
    return 2 * per_engine * np.dtype(dtype).itemsize
