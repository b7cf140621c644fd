"""The reference BPTT of ``spec``'s network, with each classic mistake as a switch.

This is a second RNN backward loop in bptt, by necessity: ``bptt.RNN`` is correct by
construction and cannot be told to be wrong, while this one can, in exactly the ways learners
are wrong. The doctor runs it once per mistake on the learner's weights and data and keeps the
mistake whose gradients match the learner's. With ``bug=None`` it is the reference, and equals
bptt's own layers and torch autograd (``tests/test_doctor_variants.py``).

Everything is in the reference convention of ``spec``: ``x (T, B, I)``, ``y (T, B, O)`` (or
``(B, O)`` with outputs at the last step only), weights by role, row vectors ``x @ W``.

The switches (``Bug.key``, with ``Bug.option``):

- ``missing-recurrence``: ``δh_t`` lacks ``δa_{t+1} @ W_hhᵀ`` (so ``δh_0`` is zero too).
- ``last-step-only``: each weight gradient is its step-``T`` term alone.
- ``no-activation-derivative`` / ``activation-derivative-twice`` / ``derivative-of-preactivation``
  (option ``"hidden"``, the default, or ``"output"`` for a sigmoid output): ``δa_t = δh_t``,
  ``δh_t ⊙ f'(h_t)²``, or ``f'``'s formula in ``h`` applied to ``a_t`` (``1 - a_t²``).
- ``recurrent-weight-not-transposed``: ``δa_{t+1} @ W_hh`` for ``δa_{t+1} @ W_hhᵀ``.
- ``gradient-transposed`` (option: the role, default ``"W_hh"``): that gradient returned transposed.
- ``off-by-one``: ``dW_hh = Σ_t h_tᵀ δa_t`` instead of ``h_{t-1}ᵀ δa_t``.
- ``accumulating-gradients`` (option: the call number ``n``, default 2): the weight gradients of
  the ``n``-th call of a learner that never resets them, ``n`` times the reference.
- ``flipped-sign``: ``∂L/∂ŷ`` written ``y - ŷ``: every gradient negated.
- ``scale`` (option: the factor): every gradient times the factor.
- ``seed-shape-mistake``: the seed's product ``δx_t @ W_hh``, an input-sized δ against the
  hidden weight; NumPy raises ``ValueError`` unless ``I = H``.
- ``h0-gradient`` (option ``"zero"``, ``"dh1"`` (δh_1), ``"da1"`` (δa_1, no ``W_hhᵀ``) or
  ``"last"`` (``δa_T @ W_hhᵀ``)): the gradient of ``h0``.
- ``bias-not-summed`` (option ``"steps"`` ``(T, H)``, ``"batch"`` ``(B, H)``, ``"steps-batch"``
  ``(T, B, H)``, ``"columns"`` ``(H, T)``, or ``"last"``: ``Σ_b δa_T`` only), for ``b`` and ``b_o``.
- ``overwritten-cache``: the forward keeps T references to one buffer updated in place, so every
  ``h_t`` (``t = 1..T``) read by the backward is ``h_T``, in ``f'`` and in the outer products;
  ``h_0`` is a separate array. The forward's outputs are right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .._types import Array
from ..functional import ACTIVATIONS, sigmoid, softmax
from .spec import Spec

__all__ = ["BUG_KEYS", "DERIVATIVE_KEYS", "Bug", "Pass", "backprop", "bias_form", "loss_gradient"]

DERIVATIVE_KEYS = ("no-activation-derivative", "activation-derivative-twice", "derivative-of-preactivation")
BUG_KEYS = (
    "missing-recurrence",
    "last-step-only",
    *DERIVATIVE_KEYS,
    "recurrent-weight-not-transposed",
    "gradient-transposed",
    "off-by-one",
    "accumulating-gradients",
    "flipped-sign",
    "scale",
    "seed-shape-mistake",
    "h0-gradient",
    "bias-not-summed",
    "overwritten-cache",
)
_BIAS_FORMS = ("steps", "batch", "steps-batch", "columns", "last")
_H0_FORMS = ("zero", "dh1", "da1", "last")


@dataclass(frozen=True)
class Bug:
    """One deliberate mistake: its catalogue key and, for some, an option (see the module docstring)."""

    key: str
    option: str | float | None = None

    def __post_init__(self) -> None:
        if self.key not in BUG_KEYS:
            raise ValueError(f"doctor: unknown mistake {self.key!r}; expected one of {', '.join(BUG_KEYS)}")
        allowed = {"bias-not-summed": _BIAS_FORMS, "h0-gradient": _H0_FORMS}.get(self.key)
        if allowed is not None and self.option not in allowed:
            raise ValueError(f"doctor: {self.key} takes option one of {allowed}; got {self.option!r}")


@dataclass
class Pass:
    """One forward and backward pass, with every per-step quantity the diagnosis reads.

    ``T'`` is ``T`` with outputs at every step, 1 with outputs at the last step only.

    Attributes
    ----------
    grads : dict[str, ndarray]
        By role, as the (possibly buggy) learner would return them: each weight role present,
        ``"x" (T, B, I)``, ``"h0" (B, H)``, ``"delta" (T, B, H)``.
    h : ndarray (T + 1, B, H)
        ``h_0 .. h_T``, the forward's true values.
    a : ndarray (T, B, H)
        The pre-activations ``a_t``.
    o, yhat : ndarray (T', B, O)
        The output layer's pre-activation and output.
    do : ndarray (T', B, O)
        ``δo_t = ∂L/∂o_t``.
    dh, da : ndarray (T, B, H)
        ``δh_t = ∂L/∂h_t`` and ``δa_t = ∂L/∂a_t``, as the variant computes them.
    dx : ndarray (T, B, I)
        ``δx_t = δa_t @ W_ihᵀ``.
    terms : dict[str, ndarray]
        Each weight role's per-step terms, whose sum over axis 0 is its gradient:
        ``W_ih (T, I, H)``, ``W_hh (T, H, H)``, ``b (T, H)``, ``W_ho (T', H, O)``, ``b_o (T', O)``.
    loss : float
    """

    grads: dict[str, Array]
    h: Array
    a: Array
    o: Array
    yhat: Array
    do: Array
    dh: Array
    da: Array
    dx: Array
    terms: dict[str, Array] = field(default_factory=dict)
    loss: float = 0.0


def backprop(
    spec: Spec,
    weights: Mapping[str, Array],
    x: Array,
    y: Array,
    bug: Bug | Sequence[Bug] | None = None,
    *,
    h0: Array | None = None,
) -> Pass:
    """Forward and BPTT through ``spec``'s network, with ``bug`` planted (``None``: the reference).

    Several bugs may be planted at once (a sequence), as long as they change different things
    (not two derivatives of one layer, say): the doctor tries pairs when no one bug explains a
    learner.

    Parameters
    ----------
    spec : Spec
    weights : Mapping[str, ndarray]
        ``W_ih (I, H)``, ``W_hh (H, H)``, ``W_ho (H, O)``; ``b (H,)`` and ``b_o (O,)`` optional.
    x : ndarray (T, B, I)
    y : ndarray (T, B, O), or (B, O) when ``spec.steps == "last"``
    bug : Bug, a sequence of Bug, or None
    h0 : ndarray (B, H), optional; zeros by default

    Returns
    -------
    Pass
    """
    bugs = _planted(bug)
    keys = {b.key for b in bugs}
    W_hh = weights["W_hh"]
    T, B, _ = x.shape
    h, a = _forward(spec, weights, x, np.zeros((B, W_hh.shape[0])) if h0 is None else h0)
    kept = h[1:] if spec.steps == "every" else h[-1:]  # (T', B, H): the states with an output
    o = kept @ weights["W_ho"] + weights.get("b_o", 0.0)  # (T', B, O)
    yhat = _output(spec.output, o)
    y = y if spec.steps == "every" else y[None]  # (T', B, O)
    loss, g = loss_gradient(spec, yhat, y)
    if "flipped-sign" in keys:
        g = -g  # y - ŷ instead of ŷ - y
    do = _output_backward(spec.output, o, yhat, g, _derivative_key(bugs, "output"))  # (T', B, O)
    g_h = np.zeros_like(h[1:])  # ∂L/∂h_t through the output layer only: (T, B, H)
    g_h[T - len(kept) :] = do @ weights["W_ho"].T
    dh, da, dh0 = _through_time(spec, weights, h, a, g_h, keys, _derivative_key(bugs, "hidden"))
    p = Pass({}, h, a, o, yhat, do, dh, da, da @ weights["W_ih"].T, loss=loss)
    p.terms = _terms(p, x, h, keys, spec.steps, weights)
    last = "last-step-only" in keys
    p.grads = {r: (t[-1] if last else t.sum(axis=0)) for r, t in p.terms.items()}
    p.grads.update(x=p.dx.copy(), h0=dh0, delta=da.copy())
    for b in bugs:
        _returned(p, weights, b)
    return p


def _planted(bug: Bug | Sequence[Bug] | None) -> tuple[Bug, ...]:
    if bug is None:
        return ()
    return (bug,) if isinstance(bug, Bug) else tuple(bug)


def _derivative_key(bugs: tuple[Bug, ...], layer: str) -> str:
    """The derivative mistake planted in ``layer`` (``"hidden"``, the default, or ``"output"``), or ``""``."""
    return next((b.key for b in bugs if b.key in DERIVATIVE_KEYS and (b.option or "hidden") == layer), "")


def loss_gradient(spec: Spec, yhat: Array, y: Array) -> tuple[float, Array]:
    """The loss and ``∂L/∂ŷ``, both reduced as ``spec.reduction`` says; ``yhat``, ``y`` ``(T', B, O)``."""
    diff = yhat - y
    if spec.loss in ("mse", "half_mse"):
        half = spec.loss == "half_mse"
        loss, g = float((diff**2).sum()) * (0.5 if half else 1.0), diff * (1.0 if half else 2.0)
    elif spec.loss == "bce":
        loss = float(-(y * np.log(yhat) + (1 - y) * np.log1p(-yhat)).sum())
        g = diff / (yhat * (1 - yhat))
    else:  # cross_entropy
        loss, g = float(-(y * np.log(yhat)).sum()), -y / yhat
    if spec.reduction == "mean":
        n = y.size if spec.loss != "cross_entropy" else y.shape[0] * y.shape[1]  # entries; predictions
        loss, g = loss / n, g / n
    return loss, g


def _forward(spec: Spec, weights: Mapping[str, Array], x: Array, h0: Array) -> tuple[Array, Array]:
    """``h (T + 1, B, H)`` with ``h[0] = h0``, and ``a (T, B, H)``."""
    act = ACTIVATIONS[spec.activation].fn
    T = x.shape[0]
    h = np.empty((T + 1, *h0.shape))
    h[0] = h0
    a = x @ weights["W_ih"] + weights.get("b", 0.0)  # (T, B, H): the input side of every step
    for t in range(T):
        a[t] += h[t] @ weights["W_hh"]  # a_t = x_t W_ih + b + h_{t-1} W_hh
        h[t + 1] = act(a[t].copy())
    return h, a


def _output(output: str, o: Array) -> Array:
    """``ŷ = out(o)``."""
    if output == "sigmoid":
        return sigmoid(o)
    return softmax(o, axis=-1) if output == "softmax" else o.copy()


def _output_backward(output: str, o: Array, yhat: Array, g: Array, key: str) -> Array:
    """``δo = ∂L/∂o`` from ``g = ∂L/∂ŷ``: ``g ⊙ ŷ(1 - ŷ)`` for a sigmoid, ``J_softmaxᵀ g`` for a softmax."""
    if output == "softmax":
        return yhat * (g - (g * yhat).sum(axis=-1, keepdims=True))
    if output == "identity":
        return g.copy()
    return g * _derivative(key, "sigmoid", yhat, o)


def _derivative(key: str, activation: str, y: Array, z: Array) -> Array:
    """``f'`` as the learner writes it: ``f'(y)`` (right), 1, ``f'(y)²``, or ``f'``'s formula at ``z``."""
    grad = ACTIVATIONS[activation].grad
    if key == "no-activation-derivative":
        return np.ones_like(y)
    if key == "activation-derivative-twice":
        return grad(y) ** 2
    if key == "derivative-of-preactivation":
        return grad(z.copy())  # the formula in y (1 - y², y(1 - y)) applied to the pre-activation
    return grad(y)


def _through_time(
    spec: Spec,
    weights: Mapping[str, Array],
    h: Array,
    a: Array,
    g_h: Array,
    keys: set[str],
    derivative: str,
) -> tuple[Array, Array, Array]:
    """BPTT from ``t = T`` down to 1: ``δh_t``, ``δa_t`` (both ``(T, B, H)``) and ``δh_0 (B, H)``."""
    W_hh, W_ih = weights["W_hh"], weights["W_ih"]
    T = a.shape[0]
    cached = _cached(h, keys)
    dh, da = np.empty_like(a), np.empty_like(a)
    dh_next = np.zeros_like(h[0])  # ∂L/∂h_t through step t + 1
    for t in range(T - 1, -1, -1):
        dh[t] = g_h[t] + dh_next  # ∂L/∂h_t: from the output and from step t + 1
        da[t] = dh[t] * _derivative(derivative, spec.activation, cached[t + 1], a[t])
        if "seed-shape-mistake" in keys:
            dx_t = da[t] @ W_ih.T  # (B, I): the input's δ ...
            dh_next = dx_t @ W_hh  # ... against the hidden weight (H, H): NumPy raises unless I = H
        elif "missing-recurrence" in keys:
            dh_next = np.zeros_like(dh_next)
        elif "recurrent-weight-not-transposed" in keys:
            dh_next = da[t] @ W_hh  # square, so NumPy says nothing
        else:
            dh_next = da[t] @ W_hh.T  # (B, H)
    return dh, da, dh_next


def _cached(h: Array, keys: set[str]) -> Array:
    """The states ``h_0 .. h_T`` ``(T + 1, B, H)`` as the backward reads them."""
    cached = h.copy()
    if "overwritten-cache" in keys:
        cached[1:] = h[-1]  # T references to one buffer: every h_t reads h_T
    return cached


def _terms(
    p: Pass, x: Array, h: Array, keys: set[str], steps: str, weights: Mapping[str, Array]
) -> dict[str, Array]:
    """Each weight role's per-step outer products ``inputᵀ · δ``."""
    cached = _cached(h, keys)
    h_in = cached[1:] if "off-by-one" in keys else cached[:-1]  # h_{t-1} (h_t off by one): (T, B, H)
    kept = cached[1:] if steps == "every" else cached[-1:]  # (T', B, H)
    terms = {
        "W_ih": np.einsum("tbi,tbh->tih", x, p.da),  # x_tᵀ δa_t: (T, I, H)
        "W_hh": np.einsum("tbi,tbh->tih", h_in, p.da),  # h_{t-1}ᵀ δa_t: (T, H, H)
        "b": p.da.sum(axis=1),  # Σ_b δa_t: (T, H)
        "W_ho": np.einsum("tbi,tbh->tih", kept, p.do),  # h_tᵀ δo_t: (T', H, O)
        "b_o": p.do.sum(axis=1),  # (T', O)
    }
    return {r: v for r, v in terms.items() if r in weights}


def _returned(p: Pass, weights: Mapping[str, Array], bug: Bug | None) -> None:
    """The mistakes made in what backward returns rather than in how it computes it."""
    if bug is None:
        return
    g, option = p.grads, bug.option
    number = float(option) if isinstance(option, (int, float)) else 2.0
    if bug.key == "scale":
        g.update({r: v * number for r, v in g.items()})
    elif bug.key == "accumulating-gradients":
        g.update({r: g[r] * number for r in p.terms})  # the weights' gradients only
    elif bug.key == "gradient-transposed":
        role = str(option or "W_hh")
        g[role] = g[role].T.copy()
    elif bug.key == "h0-gradient":
        forms = {"zero": 0.0 * p.da[0], "dh1": p.dh[0], "da1": p.da[0], "last": p.da[-1] @ weights["W_hh"].T}
        g["h0"] = forms[str(option)].copy()
    elif bug.key == "bias-not-summed":
        g.update({r: bias_form(d, str(option)) for r, d in (("b", p.da), ("b_o", p.do)) if r in g})


def bias_form(d: Array, form: str) -> Array:
    """A bias gradient not summed as it should be, from the per-step δ ``d (T, B, F)``."""
    return {
        "steps": lambda: d.sum(axis=1),  # (T, F)
        "batch": lambda: d.sum(axis=0),  # (B, F)
        "steps-batch": lambda: d.copy(),  # (T, B, F)
        "columns": lambda: d.sum(axis=1).T.copy(),  # (F, T)
        "last": lambda: d[-1].sum(axis=0),  # (F,): the last step only
    }[form]()
