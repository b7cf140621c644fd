"""The adder's pictures: its hidden state at every step of one sum, and the states of many sums.

- ``plot_hidden``: an adder's hidden state at every step of one sum, above the bits it works on.
- ``plot_pca``: the hidden states of many sums on their two principal components.

Both are drawn and saved as ``bptt.plots`` draws every picture: the format the path's extension
names (``.png``, ``.svg`` or ``.pdf``; any other is refused before drawing), written atomically;
both return ``None``. matplotlib is the optional ``bptt[plot]`` extra.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..._types import Array
from ..._validate import as_rng, positive_int
from ...layers import Layer
from ...plots import image_format, pyplot, save_figure
from ...recurrent import Recurrent
from .bits import encode, int_to_bits, make_batch
from .evaluate import predict_bits
from .probe import carry_bits, carry_probe, hidden_states

__all__ = ["plot_hidden", "plot_pca"]

MAX_HIDDEN_BITS = 64  # plot_hidden draws one column per step; wider sums are unreadable


def _colour_range(activation: str, h: Array) -> tuple[str, float, float]:
    """Colour map and limits for hidden states: the activation's range where it has one."""
    if activation == "tanh":
        return "RdBu_r", -1.0, 1.0
    if activation == "sigmoid":
        return "viridis", 0.0, 1.0
    top = float(np.max(np.abs(h))) or 1.0
    return "RdBu_r", -top, top


def plot_hidden(model: Layer, a: int, b: int, path: str | os.PathLike[str]) -> None:
    """The first recurrent layer's ``h_t`` (units × steps) while the adder computes ``a + b``.

    Beneath the heatmap, on the same step axis: the input bits ``a_t`` and ``b_t``, the true
    carry into step ``t``, the model's sum bit and the true sum bit (a wrong bit is outlined
    in red). The three units with the largest carry-probe weights (``carry_probe``) are marked.
    Operands of up to ``MAX_HIDDEN_BITS`` bits.
    """
    fmt = image_format(path)
    x = encode(a, b)  # validates the operands
    T = x.shape[0]
    if T - 1 > MAX_HIDDEN_BITS:
        raise ValueError(
            f"plot_hidden: a + b has {T - 1}-bit operands; at most {MAX_HIDDEN_BITS} can be drawn"
        )
    predicted = predict_bits(model, x)[:, 0]  # validates the model: 2 inputs, 1 output per step
    h = hidden_states(model, x)[:, 0]  # (T, H)
    rnn = next(leaf for _, leaf in model.leaves() if isinstance(leaf, Recurrent))
    activation = getattr(rnn, "activation", "tanh")  # a gated cell's h = o ⊙ tanh(c) lies in (-1, 1)
    carry_units = [unit for unit, _ in carry_probe(model, top=3).top_units]
    true_sum = int_to_bits(a + b, T).astype(bool)
    rows = [
        ("a_t", x[:, 0, 0] > 0.5),
        ("b_t", x[:, 0, 1] > 0.5),
        ("carry in", np.concatenate([[False], carry_bits(x)[:-1, 0]])),
        ("RNN's sum bit", predicted),
        ("true sum bit", true_sum),
    ]

    plt = pyplot()
    H = h.shape[1]
    fig = plt.figure(figsize=(max(7.0, 2.5 + 0.3 * T), 2.0 + 0.2 * H + 0.3 * len(rows)), layout="constrained")
    grid = fig.add_gridspec(1 + len(rows), 2, height_ratios=[H * 0.6] + [1] * len(rows), width_ratios=[50, 1])
    ax_h = fig.add_subplot(grid[0, 0])
    cmap, lo, hi = _colour_range(activation, h)
    image = ax_h.imshow(h.T, aspect="auto", cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    _mark_units(ax_h, H, carry_units)
    fig.colorbar(image, cax=fig.add_subplot(grid[0, 1]), label=f"h_t ({activation})")
    axes = [ax_h]
    for i, (name, bits) in enumerate(rows, start=1):
        ax = fig.add_subplot(grid[i, 0], sharex=ax_h)
        _bit_row(ax, name, bits, wrong=predicted != true_sum if name == "RNN's sum bit" else None)
        axes.append(ax)
    for ax in axes[:-1]:
        ax.tick_params(axis="x", labelbottom=False)
    axes[-1].set_xlabel("step t (bit position, least significant first)")
    axes[-1].set_xticks(range(0, T, 1 if T <= 33 else 4))
    answer = int(sum(1 << t for t in range(T) if predicted[t]))
    verdict = "exact" if answer == a + b else f"wrong: the exact sum is {a + b}"
    fig.suptitle(f"{a} + {b} = {answer}  ({verdict})\nthe adder's hidden state at every step")
    save_figure(fig, path, fmt)


def _mark_units(ax: Any, H: int, carry_units: list[int]) -> None:
    """Label the heatmap's unit axis, the carry-probe units in red with a marker."""
    shown = range(H) if H <= 32 else carry_units
    ax.set_yticks(list(shown))
    ax.set_yticklabels([f"carry ▶ {u}" if u in carry_units else str(u) for u in shown], fontsize=7)
    for label, unit in zip(ax.get_yticklabels(), shown, strict=True):
        if unit in carry_units:
            label.set_color("tab:red")
    ax.set_ylabel("hidden unit (red: largest carry-probe weights)")


def _bit_row(ax: Any, name: str, bits: Array, wrong: Array | None) -> None:
    """One row of 0/1 cells, labelled with the bit values, wrong cells outlined in red."""
    ax.imshow(bits[None, :].astype(float), aspect="auto", cmap="Greys", vmin=-0.25, vmax=1.25)
    if bits.size <= 40:
        for t, bit in enumerate(bits):
            ax.text(t, 0, str(int(bit)), ha="center", va="center", fontsize=8, color="w" if bit else "k")
    if wrong is not None:
        for step in np.flatnonzero(wrong):
            ax.add_patch(pyplot().Rectangle((step - 0.5, -0.5), 1, 1, fill=False, ec="red", lw=2))
    ax.set_yticks([0])
    ax.set_yticklabels([name], fontsize=9)


PCA_CLASSES = {  # (carry in, sum bit) -> legend label, colour
    (0, 0): ("carry in 0, sum bit 0", "tab:blue"),
    (0, 1): ("carry in 0, sum bit 1", "tab:orange"),
    (1, 0): ("carry in 1, sum bit 0", "tab:green"),
    (1, 1): ("carry in 1, sum bit 1", "tab:red"),
}


def plot_pca(
    model: Layer,
    path: str | os.PathLike[str],
    samples: int = 256,
    n_bits: int = 16,
    rng: np.random.Generator | int | None = 0,
) -> None:
    """Hidden states ``h_t`` of many random sums projected on their first two principal components.

    Each point is one step of one sum, coloured by (carry into the step, sum bit of the step);
    each group of the six input cases (``a_t + b_t`` in 0..2, carry in 0/1) is labelled at its
    centre. For a trained adder the states fall into tight, separate clusters.
    """
    fmt = image_format(path)
    samples = positive_int(samples, "plot_pca", "samples")
    n_bits = positive_int(n_bits, "plot_pca", "n_bits")
    x, y = make_batch(n_bits, samples, as_rng(rng, "plot_pca"))
    predict_bits(model, x[:, :1])  # validates the model before the real work
    h = hidden_states(model, x)  # (T, B, H)
    T, B, _ = h.shape
    points, share = _principal(h)
    carry_in = np.vstack([np.zeros((1, B), bool), carry_bits(x)[:-1]]).reshape(-1)
    sum_bit = (y[:, :, 0] > 0.5).reshape(-1)
    inputs = (x[:, :, 0] + x[:, :, 1]).reshape(-1).astype(int)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 7), layout="constrained")
    for (c, sb), (label, colour) in PCA_CLASSES.items():
        pick = (carry_in == c) & (sum_bit == sb)
        ax.scatter(*points[pick].T, s=8, alpha=0.5, color=colour, label=f"{label} ({pick.sum():,})")
    _label_input_cases(ax, points, inputs, carry_in)
    ax.set_xlabel(f"principal component 1 ({share[0]:.0%} of variance)")
    ax.set_ylabel(f"principal component 2 ({share[1]:.0%} of variance)")
    ax.legend(
        title="colour: step t's (carry in, sum bit); labels: a_t + b_t and carry in c",
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=2,
        fontsize=8,
        markerscale=2,
    )
    ax.set_title(f"hidden states h_t of {B:,} random {n_bits}-bit sums ({T * B:,} steps)")
    save_figure(fig, path, fmt)


def _label_input_cases(ax: Any, points: Array, inputs: Array, carry_in: Array) -> None:
    """Label the centre of each input case (``a_t + b_t`` in 0..2, carry in 0/1) that occurs."""
    for total in range(3):
        for c in (0, 1):
            pick = (inputs == total) & (carry_in == c)
            if pick.any():
                cx, cy = points[pick].mean(axis=0)
                ax.annotate(
                    f"a+b={total}, c={c}",
                    (cx, cy),
                    fontsize=8,
                    ha="center",
                    va="bottom",
                    xytext=(0, 6),
                    textcoords="offset points",
                    bbox={"fc": "w", "alpha": 0.7, "lw": 0},
                )


def _principal(h: Array) -> tuple[Array, Array]:
    """States ``h (T, B, H)`` on their first two principal components ``(T·B, 2)``, and each one's
    share of the variance ``(2,)``; a one-unit RNN has no second component (zeros)."""
    T, B, H = h.shape
    states = h.reshape(T * B, H)
    centred = states - states.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    points = np.zeros((T * B, 2))  # (T·B, 2)
    points[:, : min(H, 2)] = centred @ vt[:2].T
    share = np.zeros(2)
    share[: min(H, 2)] = s[:2] ** 2 / max(float(np.sum(s**2)), np.finfo(float).tiny)
    return points, share
