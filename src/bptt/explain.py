"""The chain rule with every shape: ``bptt.explain(model, x)``.

The explanation is generated from the model's actual layers. It runs the model's own forward and
backward passes, then writes out every equation with the shapes of its operands, and evaluates
every printed term from the arrays those passes produced. ``Explanation.max_error()`` checks the
printed algebra against the engine: each identity (``δa_t = δh_t ⊙ act'(a_t)``, ``δh_0 = δa_1 @
W_hhᵀ``, ...) and each gradient written as a sum over steps of ``inputᵀ · δ`` outer products.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._types import Array
from ._validate import as_array, check_sequence
from .explain_gated import gated_backward, gated_forward
from .functional import ACTIVATIONS
from .layers import Dense, Last, Layer, Sequential
from .layers import Elementwise as _Elementwise
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss
from .recurrent import GRU, LSTM, RNN

__all__ = ["Explanation", "GradientSum", "Line", "Mistake", "explain"]


def _s(shape: tuple[int, ...]) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else "(" + ",".join(str(n) for n in shape) + ")"


def _times(formula: str) -> str:
    """``act'`` as a factor: parenthesized unless it is a single term."""
    return formula if formula == "1" or formula.startswith("[") else f"({formula})"


@dataclass
class Line:
    """One equation ``lhs = rhs`` with the shapes of its operands, and the evaluated ``lhs``."""

    lhs: str
    rhs: str
    shapes: str
    value: Array | None = None

    def __str__(self) -> str:
        return f"{self.lhs} = {self.rhs}".ljust(46) + "  " + self.shapes


@dataclass
class GradientSum:
    """``d{W} = Σ_t input_tᵀ · δ_t``: one evaluated outer product per step, and the weight's shape."""

    param: str
    label: str
    terms: list[Line]
    shape: tuple[int, ...]

    @property
    def total(self) -> Array:
        """The sum of the evaluated terms."""
        values = [t.value for t in self.terms if t.value is not None]
        return np.sum(values, axis=0)

    def __str__(self) -> str:
        rhs = " + ".join(t.rhs for t in self.terms)
        each = "; ".join(dict.fromkeys(t.shapes for t in self.terms))
        verdict = "✓" if self.total.shape == self.shape else "✗"
        name = self.param.rsplit(".", 1)[-1]
        return (
            f"{self.label} = {rhs}\n"
            f"    each term {each}; the sum is {_s(self.total.shape)}, "
            f"exactly {name}'s own shape {_s(self.shape)} {verdict}"
        )


@dataclass
class Mistake:
    """A product a learner typically writes instead, and what NumPy does with it."""

    wrong: str
    why: str
    shapes: str
    outcome: str

    def __str__(self) -> str:
        return f"✗ {self.wrong:<22} {self.why}\n    {self.shapes}: {self.outcome}"


@dataclass
class Explanation:
    """Forward equations, backward equations, gradient sums and typical mistakes, all evaluated.

    Attributes
    ----------
    forward, backward : list[Line]
    gradients : list[GradientSum]
        One per parameter, keyed like ``model.params`` in ``GradientSum.param``.
    mistakes : list[Mistake]
    grads : dict[str, ndarray]
        The engine's ``backward`` gradients, for comparison.
    identities : list[tuple[str, ndarray, ndarray]]
        Each printed relation as (label, left side, right side) evaluated from the engine's arrays.
    """

    header: list[str]
    forward: list[Line]
    backward: list[Line]
    gradients: list[GradientSum]
    mistakes: list[Mistake]
    grads: dict[str, Array]
    identities: list[tuple[str, Array, Array]] = field(default_factory=list)

    def errors(self) -> dict[str, float]:
        """Normwise relative error ``max|a - b| / max|b|`` of every gradient sum and identity."""
        out = {}
        for g in self.gradients:
            out[g.param] = _rel(g.total, self.grads[g.param])
        for label, lhs, rhs in self.identities:
            out[label] = max(out.get(label, 0.0), _rel(lhs, rhs))
        return out

    def max_error(self) -> float:
        return max(self.errors().values(), default=0.0)

    def __str__(self) -> str:
        parts = [*self.header, "", "Forward pass"]
        parts += [f"  {line}" for line in self.forward]
        parts += ["", "Backward pass (δv = ∂L/∂v), from the last step back"]
        parts += [f"  {line}" for line in self.backward]
        parts += ["", "Weight gradients: a sum over steps of inputᵀ · δ outer products"]
        parts += ["  " + str(g).replace("\n", "\n  ") for g in self.gradients]
        if self.mistakes:
            parts += ["", "Products a learner typically writes instead"]
            parts += ["  " + str(m).replace("\n", "\n  ") for m in self.mistakes]
        parts += [
            "",
            f"Every term above was evaluated; the sums equal backward's gradients and every "
            f"relation holds to {self.max_error():.1e}.",
        ]
        return "\n".join(parts)


def _rel(a: Array, b: Array) -> float:
    scale = max(float(np.abs(b).max(initial=0.0)), 1e-300)
    return float(np.abs(a - b).max(initial=0.0)) / scale


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
    model : a layer or ``Sequential`` (Dense, RNN, Sigmoid, Tanh, ReLU, Last)
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
    layers = list(model) if isinstance(model, Sequential) else [model]
    for layer in layers:
        if not isinstance(layer, (RNN, LSTM, GRU, Dense, Last, _Elementwise)):
            raise TypeError(f"explain: covers RNN, LSTM, GRU, Dense, Last and activations, not {layer!r}")
    x = as_array(x, np.dtype(np.float64), "explain", "x")
    T, B, _ = check_sequence(x, "explain", "x", "(T, B, I)", None)
    loss_fn = loss_fn or MSELoss("sum")
    rng = np.random.default_rng(rng)

    ins, outs = [], []
    h = x
    for layer in layers:
        ins.append(h)
        h = layer.forward(h)
        outs.append(h)
    if target is None:
        if isinstance(loss_fn, CrossEntropyLoss):
            target = rng.integers(0, h.shape[2], h.shape[:2])
        else:
            target = (
                rng.random(h.shape) if isinstance(loss_fn, BCEWithLogitsLoss) else rng.normal(size=h.shape)
            )
    _, g = loss_fn(h, target)
    ups: list[Array] = [g] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        ups[i] = g
        g = layers[i].backward(g)
    grad_x = g

    names = _names(layers)
    prefix = (lambda i: f"{i}.") if isinstance(model, Sequential) else (lambda i: "")
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
    seq = True  # the variable is a sequence (t = 1..T) until a Last layer keeps one step
    for i, layer in enumerate(layers):
        u, v = names[i - 1] if i else "x", names[i]
        seq = _forward_lines(ex, layer, u, v, ins[i], outs[i], seq)
    ex.forward.append(_loss_line(loss_fn, names[-1], seq))
    out_grad = ups[-1]
    ex.backward.append(
        Line(
            f"δ{names[-1]}{'_t' if seq else ''}",
            _loss_grad_text(loss_fn, names[-1], seq),
            _s(out_grad.shape[1:]) + (f", t = 1..{T}" if seq else ""),
            out_grad,
        )
    )
    seqs = _sequence_flags(layers)
    for i in range(len(layers) - 1, -1, -1):
        u, v = names[i - 1] if i else "x", names[i]
        grad_in = grad_x if i == 0 else ups[i - 1]
        _backward_lines(ex, layers[i], prefix(i), u, v, ins[i], outs[i], ups[i], grad_in, seqs[i])
    if mistakes:
        ex.mistakes = _mistakes(layers, names, ins, ups)
    if sum(1 for layer in layers if layer.params) > 1:  # say which layer's W or b
        for gs in ex.gradients:
            layer_index, name = gs.param.split(".", 1)
            gs.label = f"d{name} [layer {layer_index}]"
    return ex


def _names(layers: list[Layer]) -> list[str]:
    """A variable name for each layer's output: h (RNN), o (Dense), s (activation); numbered if repeated."""
    base = {RNN: "h", LSTM: "h", GRU: "h", Dense: "o"}
    counts: dict[str, int] = {}
    names: list[str] = []
    for layer in layers:
        if isinstance(layer, Last):
            names.append(names[-1] if names else "x")
            continue
        stem = next((n for cls, n in base.items() if isinstance(layer, cls)), "s")
        counts[stem] = counts.get(stem, 0) + 1
        names.append(stem if counts[stem] == 1 else f"{stem}{counts[stem]}")
    if not isinstance(layers[-1], (Last, RNN)):
        names[-1] = "ŷ"  # the model's output
    return names


def _sequence_flags(layers: list[Layer]) -> list[bool]:
    """Whether each layer's input is still a whole sequence (no ``Last`` before it)."""
    flags, seq = [], True
    for layer in layers:
        flags.append(seq)
        seq = seq and not isinstance(layer, Last)
    return flags


def _pre(v: str) -> str:
    return "a" + v[1:] if v.startswith("h") else f"a_{v}"


def _forward_lines(ex: Explanation, layer: Layer, u: str, v: str, xin: Array, out: Array, seq: bool) -> bool:
    B = xin.shape[1]
    t_ = "_t" if seq else ""
    T = xin.shape[0]
    steps = f", t = 1..{T}" if seq else ""
    if isinstance(layer, RNN):
        W_ih, W_hh = layer.params["W_ih"], layer.params["W_hh"]
        I, H = W_ih.shape
        a = _pre(v)
        h0 = layer.h0 if layer.h0 is not None else np.zeros((B, H))
        ex.forward.append(Line(f"{v}_0", "given h0" if layer.h0 is not None else "0", _s((B, H)), h0))
        f = ACTIVATIONS[layer.activation].fn
        for t in range(1, T + 1):
            prev = h0 if t == 1 else out[t - 2]
            at = xin[t - 1] @ W_ih + prev @ W_hh + (layer.params["b"] if layer.bias else 0.0)
            rhs = f"{u}_{t} @ W_ih + {v}_{t - 1} @ W_hh" + (" + b" if layer.bias else "")
            shapes = f"{_s((B, I))}@{_s((I, H))} + {_s((B, H))}@{_s((H, H))}"
            shapes += (f" + {_s((H,))}" if layer.bias else "") + f" -> {_s((B, H))}"
            ex.forward.append(Line(f"{a}_{t}", rhs, shapes, at))
            act = f"{a}_{t}  (identity)" if layer.activation == "identity" else f"{layer.activation}({a}_{t})"
            ex.forward.append(Line(f"{v}_{t}", act, _s((B, H)), out[t - 1]))
            ex.identities.append((f"{v}_{t} = {layer.activation}({a}_{t})", f(at.copy()), out[t - 1]))
    elif isinstance(layer, (LSTM, GRU)):
        gated_forward(ex, layer, u, v, xin, out)
    elif isinstance(layer, Dense):
        W = layer.params["W"]
        rhs = f"{u}{t_} @ W" + (" + b" if layer.bias else "")
        shapes = f"{_s((B, W.shape[0]))}@{_s(W.shape)}" + (f" + {_s((W.shape[1],))}" if layer.bias else "")
        ex.forward.append(Line(f"{v}{t_}", rhs, shapes + f" -> {_s((B, W.shape[1]))}{steps}", out))
    elif isinstance(layer, _Elementwise):
        fn = {"sigmoid": "σ", "tanh": "tanh", "relu": "relu"}[layer.activation]
        ex.forward.append(Line(f"{v}{t_}", f"{fn}({u}{t_})", _s(xin.shape[1:]) + steps, out))
    elif isinstance(layer, Last):
        ex.forward.append(Line(f"{v}", f"{u}_{T}  (Last: only step T goes on)", _s(xin.shape[1:]), out[0]))
        return False
    return seq


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


def _backward_lines(
    ex: Explanation,
    layer: Layer,
    pre: str,
    u: str,
    v: str,
    xin: Array,
    out: Array,
    up: Array,
    grad_in: Array,
    seq: bool,
) -> None:
    T, B = xin.shape[:2]
    t_ = "_t" if seq else ""
    steps = f", t = 1..{T}" if seq else ""
    if isinstance(layer, Dense):
        W = layer.params["W"]
        I, O = W.shape
        ex.backward.append(
            Line(f"δ{u}{t_}", f"δ{v}{t_} @ Wᵀ", f"{_s((B, O))}@{_s((O, I))} -> {_s((B, I))}{steps}", grad_in)
        )
        ex.identities.append((f"δ{u} = δ{v} @ Wᵀ", up @ W.T, grad_in))
        n = T if seq else 1
        idx = (lambda t: f"_{t}") if seq else (lambda t: "")
        deltas = [(f"δ{v}{idx(t)}", up[t - 1]) for t in range(1, n + 1)]
        inputs = [(f"{u}{idx(t)}", xin[t - 1] if seq else xin[0]) for t in range(1, n + 1)]
        ex.gradients[0:0] = [_outer_sum(pre + "W", W.shape, inputs, deltas)]
        if layer.bias:
            ex.gradients.insert(1, _bias_sum(pre + "b", deltas))
    elif isinstance(layer, _Elementwise):
        d = ACTIVATIONS[layer.activation]
        formula = _times(d.formula.replace("y", f"{v}{t_}"))
        ex.backward.append(Line(f"δ{u}{t_}", f"δ{v}{t_} ⊙ {formula}", f"{_s(up.shape[1:])}{steps}", grad_in))
        ex.identities.append((f"δ{u} = δ{v} ⊙ {d.formula}", up * d.grad(out), grad_in))
    elif isinstance(layer, Last):
        ex.backward.append(Line(f"δ{u}_{T}", f"δ{v}; δ{u}_t = 0 for t < {T}", _s(up.shape[1:]), grad_in))
    elif isinstance(layer, RNN):
        _rnn_backward(ex, layer, pre, u, v, xin, out, up, grad_in)
    elif isinstance(layer, (LSTM, GRU)):
        gated_backward(ex, layer, pre, u, v, xin, out, up, grad_in)


def _rnn_backward(
    ex: Explanation, layer: RNN, pre: str, u: str, v: str, xin: Array, out: Array, up: Array, grad_in: Array
) -> None:
    T, B, I = xin.shape
    H = layer.hidden_size
    W_ih, W_hh = layer.params["W_ih"], layer.params["W_hh"]
    a = _pre(v)
    da = layer.grad_a  # the engine's δa_t, (T, B, H)
    dact = ACTIVATIONS[layer.activation]
    h0 = layer.h0 if layer.h0 is not None else np.zeros((B, H))
    hs = np.concatenate([h0[None], out])  # h_0 .. h_T
    bh = _s((B, H))
    for t in range(T, 0, -1):
        from_out = up[t - 1]
        if t == T:
            dh = from_out
            ex.backward.append(Line(f"δ{v}_{t}", f"∂L/∂{v}_{t} from its output (no step {T + 1})", bh, dh))
        else:
            dh = from_out + da[t] @ W_hh.T
            ex.backward.append(
                Line(
                    f"δ{v}_{t}",
                    f"∂L/∂{v}_{t} from its output + δ{a}_{t + 1} @ W_hhᵀ from step {t + 1}",
                    f"{bh} + {bh}@{_s((H, H))} -> {bh}",
                    dh,
                )
            )
        formula = _times(dact.formula.replace("y", f"{v}_{t}"))
        ex.backward.append(Line(f"δ{a}_{t}", f"δ{v}_{t} ⊙ {formula}", f"{bh} ⊙ {bh} -> {bh}", da[t - 1]))
        ex.identities.append((f"δ{a}_t = δ{v}_t ⊙ act'", dh * dact.grad(hs[t]), da[t - 1]))
    assert layer.grad_h0 is not None
    ex.backward.append(Line(f"δ{v}_0", f"δ{a}_1 @ W_hhᵀ", f"{bh}@{_s((H, H))} -> {bh}", layer.grad_h0))
    ex.identities.append((f"δ{v}_0 = δ{a}_1 @ W_hhᵀ", da[0] @ W_hh.T, layer.grad_h0))
    ex.backward.append(
        Line(f"δ{u}_t", f"δ{a}_t @ W_ihᵀ", f"{bh}@{_s((H, I))} -> {_s((B, I))}, t = 1..{T}", grad_in)
    )
    ex.identities.append((f"δ{u} = δ{a} @ W_ihᵀ", da @ W_ih.T, grad_in))
    deltas = [(f"δ{a}_{t}", da[t - 1]) for t in range(1, T + 1)]
    grads = [
        _outer_sum(pre + "W_ih", W_ih.shape, [(f"{u}_{t}", xin[t - 1]) for t in range(1, T + 1)], deltas),
        _outer_sum(pre + "W_hh", W_hh.shape, [(f"{v}_{t - 1}", hs[t - 1]) for t in range(1, T + 1)], deltas),
    ]
    if layer.bias:
        grads.append(_bias_sum(pre + "b", deltas))
    ex.gradients[0:0] = grads


def _outer_sum(
    param: str, shape: tuple[int, ...], inputs: list[tuple[str, Array]], deltas: list[tuple[str, Array]]
) -> GradientSum:
    """``dW = Σ_t input_tᵀ · δ_t``, each term an ``(in, B)·(B, out)`` outer product, evaluated."""
    terms = [
        Line("", f"{xn}ᵀ·{dn}", f"{_s(x.T.shape)}·{_s(d.shape)} -> {_s((x.shape[1], d.shape[1]))}", x.T @ d)
        for (xn, x), (dn, d) in zip(inputs, deltas, strict=True)
    ]
    return GradientSum(param, "d" + param.rsplit(".", 1)[-1], terms, shape)


def _bias_sum(param: str, deltas: list[tuple[str, Array]]) -> GradientSum:
    """``db = Σ_t Σ_b δ_t``: the bias's input is 1 at every step."""
    terms = [Line("", f"Σ_b {dn}", f"{_s(d.shape)} -> {_s(d.shape[1:])}", d.sum(axis=0)) for dn, d in deltas]
    return GradientSum(param, "db", terms, deltas[0][1].shape[1:])


def _mistakes(layers: list[Layer], names: list[str], ins: list[Array], ups: list[Array]) -> list[Mistake]:
    """Wrong products at the first RNN layer's last step, each evaluated with NumPy."""
    i = next((k for k, layer in enumerate(layers) if isinstance(layer, RNN)), None)
    if i is None:
        return []
    rnn = layers[i]
    assert isinstance(rnn, RNN)
    u, v = (names[i - 1] if i else "x"), names[i]
    a = _pre(v)
    T = ins[i].shape[0]
    da_T, x_T = rnn.grad_a[-1], ins[i][-1]
    W_ih, W_hh = rnn.params["W_ih"], rnn.params["W_hh"]
    right = da_T @ W_hh.T
    out: list[Mistake] = []

    def attempt(wrong: str, why: str, f: Any, *operands: Array, expect: Array | None = None) -> None:
        shapes = " @ ".join(_s(o.shape) for o in operands)
        try:
            result = f(*operands)
        except ValueError as e:
            outcome = "ValueError, " + _why(operands, str(e))
        else:
            if expect is not None and result.shape == expect.shape:
                diff = float(np.abs(result - expect).max())
                outcome = f"runs, shape {_s(result.shape)}, but the numbers are wrong (max error {diff:.2g})"
            else:
                outcome = f"runs, but gives shape {_s(result.shape)}"
        out.append(Mistake(wrong, why, shapes, outcome))

    attempt(
        f"δ{a}_{T} @ W_hh",
        "forgot the transpose: W_hh is square, so no error warns you",
        np.matmul,
        da_T,
        W_hh,
        expect=right,
    )
    attempt(f"W_hh @ δ{a}_{T}", "multiplied on the wrong side", np.matmul, W_hh, da_T)
    attempt(f"δ{a}_{T} @ W_ih", "forgot the transpose of the input weight", np.matmul, da_T, W_ih)
    attempt(
        f"{u}_{T} @ δ{a}_{T}",
        f"inner product instead of the outer product {u}ᵀ·δ",
        np.matmul,
        x_T,
        da_T,
    )
    dW = np.zeros_like(W_ih)
    attempt(
        f"dW_ih += δ{a}_{T}ᵀ·{u}_{T}",
        "outer product the wrong way round: (H, I), not (I, H)",
        lambda d, x: np.add(dW, d.T @ x),
        da_T,
        x_T,
    )
    j = next((k for k in range(i + 1, len(layers)) if isinstance(layers[k], Dense)), None)
    if j is not None:
        attempt(
            f"δ{names[j]} @ W_hh",
            "the seed's mistake: another layer's δ against a whole weight",
            np.matmul,
            ups[j][-1],
            W_hh,
        )
    return out


def _why(operands: tuple[Array, ...], message: str) -> str:
    """NumPy's complaint in a learner's words."""
    if "broadcast" in message:
        return "shapes that cannot be added: " + message.split("shapes", 1)[-1].strip()
    left, right = operands
    cols, rows = left.shape[-1], right.shape[0]
    return f"the inner sizes differ: {cols} (columns of the left) ≠ {rows} (rows of the right)"
