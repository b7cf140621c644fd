"""The chain rule with every shape: ``bptt.explain(model, x)``.

The explanation is generated from the model's actual layers. It runs the model's own forward and
backward passes, then asks each layer (``Layer.explain_forward``/``explain_backward``) to write
out its equations with the shapes of its operands, every printed term evaluated from the arrays
those passes produced. ``Explanation.max_error()`` checks the printed algebra against the engine:
each identity (``δa_t = δh_t ⊙ act'(a_t)``, ``δh_0 = δa_1 @ W_hhᵀ``, ...) and each gradient
written as a sum over steps of ``inputᵀ · δ`` outer products. A layer that writes nothing of its
own gets the protocol's generic lines, so every layer can be explained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._types import Array
from ._validate import as_array, check_sequence
from .explanation import Explanation, GradientSum, Line, Mistake, Step, shape
from .layers import Layer
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss

__all__ = ["Explanation", "GradientSum", "Line", "Mistake", "explain"]


def explain(
    model: Layer,
    x: NDArray[Any],
    target: NDArray[Any] | None = None,
    loss_fn: Loss | None = None,
    *,
    mistakes: bool = True,
    rng: np.random.Generator | int | None = 0,
) -> Explanation:
    """Write out and evaluate the forward pass, BPTT and every weight gradient of ``model`` on ``x``.

    Parameters
    ----------
    model : a layer or ``Sequential`` of any layers
    x : ndarray (T, B, I)
    target : ndarray, optional
        Defaults to random values of the output's shape (class indices for cross-entropy).
    loss_fn : Loss, optional
        Defaults to ``MSELoss("sum")``, ``L = Σ (out - y)²``.
    mistakes : bool
        Also evaluate the wrong products learners typically write (see ``Mistake``).
    rng : seed or Generator for the default target.
    """
    if not isinstance(model, Layer):
        raise TypeError(f"explain: model must be a bptt layer or Sequential, got {model!r}")
    chain = model.explain_chain()
    layers = [layer for _, layer in chain]
    x = as_array(x, np.dtype(np.float64), "explain", "x")
    T, B, _ = check_sequence(x, "explain", "x", "(T, B, I)", None)
    loss_fn = loss_fn or MSELoss("sum")
    steps = _steps(chain, x, loss_fn, target, np.random.default_rng(rng))
    ex = Explanation(
        header=[
            f"{type(model).__name__ if len(layers) > 1 else 'Layer'}: " + " -> ".join(map(repr, layers)),
            f"x: T = {T} steps, B = {B}, shapes below are per step (B, features)",
        ],
        forward=[],
        backward=[],
        gradients=[],
        mistakes=[],
        grads={k: v.copy() for k, v in model.grads.items()},
    )
    for layer, at in zip(layers, steps, strict=True):
        layer.explain_forward(ex, at)
    out = steps[-1]
    ex.forward.append(_loss_line(loss_fn, out.v, out.seq_out))
    shapes = shape(out.grad_y.shape[1:]) + (f", t = 1..{T}" if out.seq_out else "")
    rhs = _loss_grad_text(loss_fn, out.v, out.seq_out)
    ex.backward.append(Line(f"δ{out.v}{out.t_out}", rhs, shapes, out.grad_y))
    for layer, at in reversed(list(zip(layers, steps, strict=True))):
        layer.explain_backward(ex, at)
    if mistakes:
        ex.mistakes = _mistakes(layers, steps)
    if sum(1 for layer in layers if layer.params) > 1:  # say which layer's W or b
        for gs in ex.gradients:
            layer_index, name = gs.param.split(".", 1)
            gs.label = f"d{name} [layer {layer_index}]"
    return ex


def _steps(
    chain: list[tuple[str, Layer]],
    x: Array,
    loss_fn: Loss,
    target: NDArray[Any] | None,
    rng: np.random.Generator,
) -> list[Step]:
    """Run the layers' own forward and backward passes; what each saw, with its variable names."""
    layers = [layer for _, layer in chain]
    ins, outs = [], []
    for layer in layers:
        ins.append(x)
        x = layer.forward(x)
        outs.append(x)
    _, g = loss_fn(x, _default_target(loss_fn, x, rng) if target is None else target)
    ups: list[Array] = [g] * len(layers)
    downs: list[Array] = [g] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        ups[i] = g
        g = downs[i] = layers[i].backward(g)
    names = _names(layers)
    steps, seq = [], True  # the variable is a sequence (t = 1..T) until a layer keeps one step
    for i, (prefix, layer) in enumerate(chain):
        seq_out = seq and not layer.explain_one_step
        u = names[i - 1] if i else "x"
        steps.append(Step(prefix, u, names[i], ins[i], outs[i], ups[i], downs[i], seq, seq_out, layer.params))
        seq = seq_out
    return steps


def _default_target(loss_fn: Loss, y: Array, rng: np.random.Generator) -> Array:
    """Random targets of ``y``'s shape: class indices, probabilities or normal values."""
    if isinstance(loss_fn, CrossEntropyLoss):
        return rng.integers(0, y.shape[2], y.shape[:2])
    return rng.random(y.shape) if isinstance(loss_fn, BCEWithLogitsLoss) else rng.normal(size=y.shape)


def _names(layers: list[Layer]) -> list[str]:
    """A variable name for each layer's output, from its ``explain_stem``; numbered if repeated.

    A layer without a stem (``Last``) keeps its input's name. The model's output is ``ŷ``,
    unless it is a hidden state ``h`` or a kept step.
    """
    counts: dict[str, int] = {}
    names: list[str] = []
    for layer in layers:
        stem = layer.explain_stem
        if stem is None:
            names.append(names[-1] if names else "x")
            continue
        counts[stem] = counts.get(stem, 0) + 1
        names.append(stem if counts[stem] == 1 else f"{stem}{counts[stem]}")
    if layers[-1].explain_stem not in (None, "h"):
        names[-1] = "ŷ"  # the model's output
    return names


def _mistakes(layers: list[Layer], steps: list[Step]) -> list[Mistake]:
    """The wrong products of the first layer that has some to show (the first RNN)."""
    for i, (layer, at) in enumerate(zip(layers, steps, strict=True)):
        found = layer.explain_mistakes(at, steps[i + 1 :])
        if found:
            return found
    return []


def _loss_line(loss_fn: Loss, v: str, seq: bool) -> Line:
    t_ = "_t" if seq else ""
    over = "Σ_t " if seq else ""
    kind = {
        MSELoss: f"({v}{t_} - y{t_})²",
        BCEWithLogitsLoss: f"bce_logits({v}{t_}, y{t_})",
        CrossEntropyLoss: f"-log softmax({v}{t_})[y{t_}]",
    }[type(loss_fn)]
    scale = "" if loss_fn.reduction == "sum" else "mean of "
    return Line("L", f"{scale}{over}Σ {kind}", "a number")


def _loss_grad_text(loss_fn: Loss, v: str, seq: bool) -> str:
    t_ = "_t" if seq else ""
    core = {
        MSELoss: f"2({v}{t_} - y{t_})",
        BCEWithLogitsLoss: f"σ({v}{t_}) - y{t_}",
        CrossEntropyLoss: f"softmax({v}{t_}) - onehot(y{t_})",
    }[type(loss_fn)]
    return core if loss_fn.reduction == "sum" else f"({core}) / N"
