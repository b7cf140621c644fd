"""The fixed set of configurations that ``bptt gradcheck`` proves, with their runner.

Each configuration is small enough to check every entry. The numerical check is
``bptt.gradcheck``; the autograd check (when torch is importable) is ``bptt.oracle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._types import Array
from .gradcheck import gradcheck
from .layers import Dense, Last, Layer, ReLU, Sequential, Sigmoid, State, Tanh
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss
from .recurrent import GRU, LSTM, RNN, Bidirectional, Recurrent

__all__ = ["CONFIGS", "TORCH_TOLERANCE", "Config", "Row", "build", "run_config"]

TORCH_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Config:
    """One network to check: ``RNN`` layer(s), a head, a loss, and the data's shape."""

    name: str
    sizes: tuple[int, int, int]  # input I, hidden H, output O
    steps: int  # T
    batch: int  # B
    activations: tuple[str, ...] = ("tanh",)  # one layer per entry, stacked: an RNN activation,
    # or "lstm", "gru", "bi-lstm", "bi-gru" (Bidirectional)
    bias: bool = True
    head: str = "dense"  # "dense", "last" (many-to-one) or "seed" (the seed's network)
    loss: str = "mse"  # "mse", "bce" or "ce"
    reduction: str = "mean"
    masked: bool = False
    h0: bool = False


CONFIGS: tuple[Config, ...] = (
    Config(
        "seed: 8-16-8, 2 steps, identity, h0",
        (8, 16, 8),
        2,
        1,
        ("identity",),
        bias=False,
        head="seed",
        reduction="sum",
        h0=True,
    ),
    Config("tanh, BCE, mask", (3, 6, 1), 5, 3, ("tanh",), loss="bce", masked=True),
    Config("sigmoid, no bias, CE", (2, 5, 4), 4, 2, ("sigmoid",), bias=False, loss="ce", h0=True),
    Config("relu, MSE sum", (4, 7, 3), 6, 2, ("relu",), reduction="sum"),
    Config("identity, many-to-one, CE", (3, 4, 5), 5, 4, ("identity",), head="last", loss="ce"),
    Config("T=1, B=1", (2, 3, 1), 1, 1, ("tanh",), loss="bce"),
    Config("stacked tanh-relu, mask", (3, 5, 2), 4, 3, ("tanh", "relu"), masked=True, h0=True),
    Config("LSTM, h0 and c0, CE", (3, 4, 3), 5, 2, ("lstm",), loss="ce", h0=True),
    Config("GRU, no bias, BCE", (2, 4, 1), 4, 3, ("gru",), bias=False, loss="bce", h0=True),
    Config("bidirectional GRU then LSTM", (3, 3, 2), 4, 2, ("bi-gru", "lstm"), masked=True),
)


def build(cfg: Config, rng: np.random.Generator) -> tuple[Sequential, Loss, Array, Any, Array | None]:
    """The model, loss, ``x (T, B, I)``, target and mask (or ``None``) that ``cfg`` describes."""
    (I, H, O), T, B = cfg.sizes, cfg.steps, cfg.batch
    layers: list[Layer] = []
    width = I
    for act in cfg.activations:
        cell = act.removeprefix("bi-")
        rnn: Recurrent
        if cell in ("lstm", "gru"):
            rnn = (LSTM if cell == "lstm" else GRU)(width, H, bias=cfg.bias, rng=rng)
        else:
            rnn = RNN(width, H, activation=act, bias=cfg.bias, rng=rng)
        if cfg.h0:
            rnn.state = State(*(rng.normal(0.0, 0.5, (B, H)) for _ in rnn.state_names))
        layers.append(Bidirectional(rnn, rng=rng) if act.startswith("bi-") else rnn)
        width = 2 * H if act.startswith("bi-") else H
    if cfg.head == "seed":  # sigmoid on the last state, then a bias-free sigmoid output layer
        layers += [Last(), Sigmoid(), Dense(width, O, bias=False, rng=rng), Sigmoid()]
    elif cfg.head == "last":
        layers += [Last(), Tanh(), Dense(width, O, bias=cfg.bias, rng=rng)]
    else:
        layers += (
            [ReLU(), Dense(width, O, bias=cfg.bias, rng=rng)] if cfg.bias else [Dense(width, O, rng=rng)]
        )
    T_out = 1 if cfg.head in ("seed", "last") else T
    loss: Loss
    target: Array
    if cfg.loss == "ce":
        loss, target = CrossEntropyLoss(cfg.reduction), rng.integers(0, O, (T_out, B))
    elif cfg.loss == "bce":
        loss, target = BCEWithLogitsLoss(cfg.reduction), rng.random((T_out, B, O))
    else:
        loss, target = MSELoss(cfg.reduction), rng.normal(size=(T_out, B, O))
    x = rng.normal(size=(T, B, I))
    mask = None
    if cfg.masked:
        mask = (rng.random((T_out, B)) < 0.7).astype(np.float64)
        mask[0, 0] = 1.0  # at least one term
    return Sequential(layers), loss, x, target, mask


@dataclass(frozen=True)
class Row:
    """One gradient of one configuration: its errors against each reference."""

    config: str
    name: str
    shape: tuple[int, ...]
    numeric: float
    torch: float | None

    @property
    def ok(self) -> bool:
        """Within both tolerances: the numerical reference and, if run, torch autograd."""
        from .gradcheck import TOLERANCE

        return self.numeric <= TOLERANCE and (self.torch is None or self.torch <= TORCH_TOLERANCE)


def run_config(cfg: Config, seed: int = 0, use_torch: bool = True) -> list[Row]:
    """Check every gradient of ``cfg`` numerically and, when ``use_torch``, against autograd.

    The torch error is normwise, ``max|a - t| / max|t|``, so entries that are zero up to
    round-off do not dominate it.
    """
    model, loss, x, target, mask = build(cfg, np.random.default_rng(seed))
    report = gradcheck(model, loss, x, target, mask=mask)
    torch_err: dict[str, float] = {}
    if use_torch:
        from .oracle import torch_gradients

        ref = torch_gradients(model, x, loss_fn=loss, target=target, mask=mask)
        _, grad_y = loss(model.forward(x), target, mask)
        ours: dict[str, Array] = {**model.grads, "x": model.backward(grad_y)}
        for prefix, leaf in model.leaves():
            if isinstance(leaf, Recurrent):
                parts = zip(leaf.state_names, leaf.grad_state, strict=False)
                ours.update({prefix + name: grad for name, grad in parts if grad is not None})
        for k, a in ours.items():
            scale = max(float(np.abs(ref[k]).max()), 1e-300)
            torch_err[k] = float(np.abs(a - ref[k]).max()) / scale
    return [
        Row(cfg.name, k, report.shapes[k], e, torch_err.get(k) if use_torch else None)
        for k, e in report.errors.items()
    ]
