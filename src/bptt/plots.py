"""Pictures (matplotlib, Agg backend). matplotlib is the optional ``bptt[plot]`` extra.

- ``plot_history``: the training curves ``bptt train --plot`` draws.
- ``plot_gradnorm``: ``||∂L/∂h_t||`` against ``t`` for tanh, sigmoid and relu RNNs (vanishing gradients).
- ``image_format``, ``pyplot`` and ``save_figure``: what every picture is drawn and saved with,
  here and in the tasks (the adder's own pictures live in ``bptt.tasks.addition.plots``).

Every ``plot_*`` function, here and there, writes the format its path's extension names
(``IMAGE_FORMATS``: ``.png``, ``.svg`` or ``.pdf``; any other is refused before drawing)
atomically (``bptt._files.atomic_write``: a temporary file, then a rename; only a regular file or
a new path) and returns ``None``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._files import atomic_write
from ._types import Array
from ._validate import positive_int
from .layers import Dense, Last, Sequential
from .losses import MSELoss
from .recurrent import RNN

__all__ = [
    "IMAGE_FORMATS",
    "gradient_norms",
    "image_format",
    "plot_gradnorm",
    "plot_history",
    "pyplot",
    "save_figure",
]

GRADNORM_ACTIVATIONS = ("tanh", "sigmoid", "relu")
IMAGE_FORMATS = ("png", "svg", "pdf")  # what Agg writes that a reader opens without help


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed); ``ImportError`` without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_format(path: str | os.PathLike[str]) -> str:
    """The image format ``path``'s extension names (one of ``IMAGE_FORMATS``), or ``ValueError``."""
    suffix = os.path.splitext(os.fspath(path))[1]
    fmt = suffix.lower().removeprefix(".")
    if fmt not in IMAGE_FORMATS:
        allowed = ", ".join(f".{f}" for f in IMAGE_FORMATS)
        said = f"the extension {suffix!r}" if suffix else "no extension"
        raise ValueError(f"plot: {os.fspath(path)!r} has {said}; expected one of {allowed}")
    return fmt


def save_figure(fig: Any, path: str | os.PathLike[str], fmt: str) -> None:
    """Write ``fig`` to ``path`` atomically and close it, leaving no temporary file.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The drawn picture; closed whether or not the write succeeds.
    path : str or os.PathLike
        A regular file or a new path; ``OSError`` when it cannot be written.
    fmt : str
        One of ``IMAGE_FORMATS``: what ``image_format(path)`` returned before drawing began.
    """
    try:
        atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=100), what="plot:")
    finally:
        pyplot().close(fig)


# --- Training curves --------------------------------------------------------------------------


def plot_history(history: Any, path: str | os.PathLike[str]) -> None:
    """Loss per step (log scale) and held-out exact-match accuracy per check, as one picture.

    When the history has margins (the smallest ``|logit|`` over the check set), they are drawn
    on a second axis beside the accuracy.
    """
    fmt = image_format(path)
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    ax_loss.plot(range(1, len(history.loss) + 1), history.loss, lw=1)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("training loss")
    lines = ax_acc.plot(
        history.check_step, [100 * a for a in history.accuracy], marker="o", label="exact match"
    )
    ax_acc.set_ylim(-5, 105)
    ax_acc.set_ylabel("held-out exact match (%)")
    ax_acc.set_xlabel("step")
    margin = list(getattr(history, "margin", []))
    if margin and len(margin) == len(history.check_step):
        ax_margin = ax_acc.twinx()
        lines += ax_margin.plot(
            history.check_step, margin, marker="s", color="tab:orange", label="margin (smallest |output|)"
        )
        ax_margin.set_ylabel("margin", color="tab:orange")
        ax_acc.legend(lines, [line.get_label() for line in lines], loc="upper left", fontsize=8)
    fig.suptitle("bptt: learning binary addition")
    fig.tight_layout()
    save_figure(fig, path, fmt)


# --- Vanishing gradients ----------------------------------------------------------------------


def _gradnorm_problem(activation: str, steps: int, hidden: int, seed: int) -> tuple[RNN, Dense, Array, Array]:
    """``RNN(1, hidden)`` and the head ``Dense(hidden, 1)`` that follows ``Last``, a random input
    ``(steps, 1, 1)`` and target ``(1, 1, 1)``.

    Every activation gets the same weights, input and target from the same seed.
    """
    rng = np.random.default_rng(seed)
    rnn, head = RNN(1, hidden, activation=activation, rng=rng), Dense(hidden, 1, rng=rng)
    x = rng.standard_normal((steps, 1, 1))
    target = rng.standard_normal((1, 1, 1))
    return rnn, head, x, target


def gradient_norms(activation: str = "tanh", steps: int = 200, hidden: int = 16, seed: int = 0) -> Array:
    """``||∂L/∂h_t||`` for ``t = 1..steps`` (as a ``(steps,)`` array) of a many-to-one RNN.

    The model is ``RNN(1, hidden, activation) -> Last -> Dense(hidden, 1)`` with default
    initialisation from ``seed``, on a random input sequence (B = 1), with MSE on the last
    step. After ``backward``, ``∂L/∂h_t = δa_{t+1} @ W_hhᵀ`` for ``t < T`` (``RNN.grad_a``)
    and ``∂L/∂h_T`` is the gradient that ``Last`` receives.
    """
    if activation not in GRADNORM_ACTIVATIONS:
        raise ValueError(f"gradient_norms: activation must be one of {list(GRADNORM_ACTIVATIONS)}")
    steps = positive_int(steps, "gradient_norms", "steps")
    hidden = positive_int(hidden, "gradient_norms", "hidden")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"gradient_norms: seed must be an integer, got {seed!r}")
    rnn, head, x, target = _gradnorm_problem(activation, steps, hidden, int(seed))
    model = Sequential([rnn, Last(), head])
    _, grad = MSELoss()(model.forward(x), target)
    model.backward(grad)
    grad_h = np.empty((steps, hidden))
    grad_h[:-1] = rnn.grad_a[1:, 0] @ rnn.params["W_hh"].T  # through step t+1: (T-1, H)
    grad_h[-1] = head.backward(grad)[0, 0]  # ∂L/∂h_T: what Last receives from the head
    return np.linalg.norm(grad_h, axis=1)


def plot_gradnorm(path: str | os.PathLike[str], steps: int = 200, hidden: int = 16, seed: int = 0) -> None:
    """``||∂L/∂h_t||`` against ``t`` (log scale) for tanh, sigmoid and relu RNNs on one axes.

    The loss sits on the last step only, so the curve shows how much of its gradient reaches
    each earlier state: a straight falling line on the log scale is a gradient that vanishes
    geometrically, a rising one explodes. Norms that are exactly zero are not drawn.
    """
    fmt = image_format(path)
    curves = {act: gradient_norms(act, steps, hidden, seed) for act in GRADNORM_ACTIVATIONS}
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    t = np.arange(1, steps + 1)
    for act, norms in curves.items():
        ax.plot(
            t,
            np.where(norms > 0, norms, np.nan),
            marker="." if steps <= 50 else None,
            label=_rate(act, norms),
        )
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("‖∂L/∂h_t‖ (log scale)")
    ax.set_title(
        f"‖∂L/∂h_t‖ with the loss on step T = {steps} only: RNN(1, {hidden}), default init, seed {seed}"
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    save_figure(fig, path, fmt)


def _rate(activation: str, norms: Array) -> str:
    """Legend text: the mean factor per step back in time, and where the norm underflows to 0."""
    alive = np.flatnonzero(norms > 0)
    if norms[-1] <= 0 or alive[0] == norms.size - 1:
        return f"{activation}: no gradient reaches earlier steps"
    first = alive[0]
    factor = (norms[first] / norms[-1]) ** (1.0 / (norms.size - 1 - first))
    text = f"{activation}: ×{factor:.2g} per step back"
    if first > 0:
        text += f"; exactly 0 (underflow) for t ≤ {first}"
    return text
