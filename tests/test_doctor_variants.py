"""The doctor's reference BPTT (``bptt.doctor.variants``): right without a bug, and each bug as defined.

With no bug it must equal bptt's own layers (``RNN``, ``Dense``, ``Last``) to 1e-12, torch
autograd in float64 at rtol 1e-9, and central differences, for every ``Spec``. Each planted
mistake is then checked against the property that defines it.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import bptt
from bptt.doctor.spec import ACTIVATIONS, LOSSES, OUTPUTS, REDUCTIONS, STEPS, Spec
from bptt.doctor.variants import BUG_KEYS, Bug, Pass, backprop, bias_form

torch = pytest.importorskip("torch")

ROLES = ("W_ih", "W_hh", "b", "W_ho", "b_o")
SPECS = [
    Spec(*combo)
    for combo in itertools.product(ACTIVATIONS, OUTPUTS, LOSSES, REDUCTIONS, STEPS)
    if not (combo[1] == "identity" and combo[2] in ("bce", "cross_entropy"))  # ŷ must be in (0, 1)
]
# (T, B, I, H, O, biases)
SIZES = [(4, 3, 2, 5, 3, True), (1, 1, 2, 3, 2, True), (3, 1, 3, 4, 1, False)]


def setup(spec: Spec, T: int, B: int, I: int, H: int, O: int, biases: bool = True, seed: int = 0) -> Any:
    """Weights, data, targets valid for the loss, and a nonzero ``h0`` (O ≥ 2 under a softmax)."""
    rng = np.random.default_rng(seed)
    O = max(O, 2) if spec.output == "softmax" else O  # a softmax of one output is 1 whatever o is
    shapes = {"W_ih": (I, H), "W_hh": (H, H), "b": (H,), "W_ho": (H, O), "b_o": (O,)}
    W = {r: rng.normal(0.0, 0.5, s) for r, s in shapes.items() if biases or r in ("W_ih", "W_hh", "W_ho")}
    x = rng.normal(size=(T, B, I))
    shape = (T, B, O) if spec.steps == "every" else (B, O)
    if spec.loss == "bce":
        y = rng.uniform(0.05, 0.95, shape)
    elif spec.loss == "cross_entropy":
        y = np.eye(O)[rng.integers(0, O, shape[:-1])]
    else:
        y = rng.normal(size=shape)
    return W, x, y, rng.normal(0.0, 0.5, (B, H))


def torch_reference(spec: Spec, W: dict[str, Any], x: Any, y: Any, h0: Any) -> dict[str, Any]:
    """The same network written in torch, differentiated by autograd (float64)."""
    t = {r: torch.tensor(v, requires_grad=True) for r, v in W.items()}
    tx, th0 = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "identity": lambda z: z}
    h, hs, pre = th0, [], []
    for x_t in tx:
        a = x_t @ t["W_ih"] + h @ t["W_hh"] + t.get("b", 0.0)
        a.retain_grad()
        pre.append(a)
        h = act[spec.activation](a)
        hs.append(h)
    kept = torch.stack(hs) if spec.steps == "every" else hs[-1][None]
    o = kept @ t["W_ho"] + t.get("b_o", 0.0)
    yhat = {"identity": o, "sigmoid": torch.sigmoid(o), "softmax": torch.softmax(o, -1)}[spec.output]
    ty = torch.tensor(y if spec.steps == "every" else y[None])
    terms = {
        "mse": (yhat - ty) ** 2,
        "half_mse": 0.5 * (yhat - ty) ** 2,
        "bce": -(ty * torch.log(yhat) + (1 - ty) * torch.log(1 - yhat)),
        "cross_entropy": -(ty * torch.log(yhat)),
    }[spec.loss]
    n = ty.numel() if spec.loss != "cross_entropy" else ty.shape[0] * ty.shape[1]
    loss = terms.sum() / (n if spec.reduction == "mean" else 1)
    loss.backward()
    out = {r: v.grad.numpy() for r, v in t.items()}
    out.update(x=tx.grad.numpy(), h0=th0.grad.numpy(), delta=np.stack([a.grad.numpy() for a in pre]))
    return {**out, "loss": float(loss.detach())}


def assert_close(ours: Any, theirs: Any, rtol: float, what: str) -> None:
    """Elementwise ``rtol``, with an absolute floor of ``rtol`` times the largest magnitude."""
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * float(np.abs(theirs).max()), err_msg=what)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(vars(s).values()))
def test_the_reference_equals_torch_autograd(spec: Spec) -> None:
    """Every gradient, δa_t and the loss, against torch autograd in float64 at rtol 1e-9.

    Sizes ``(T, B, I, H, O)``: ``(4, 3, 2, 5, 3)``, ``(1, 1, 2, 3, 2)``, and ``(3, 1, 3, 4, 1)``
    without biases."""
    for sizes in SIZES:
        W, x, y, h0 = setup(spec, *sizes)
        ours = backprop(spec, W, x, y, h0=h0)
        theirs = torch_reference(spec, W, x, y, h0)
        for role in [*W, "x", "h0", "delta"]:
            assert_close(ours.grads[role], theirs[role], 1e-9, f"{role} at {sizes}")
        assert ours.loss == pytest.approx(theirs["loss"], rel=1e-12)


def bptt_model(spec: Spec, W: dict[str, Any], h0: Any) -> tuple[Any, Any]:
    """bptt's own layers holding ``W``: ``RNN``, then ``Last`` for one output, then ``Dense``."""
    I, H = W["W_ih"].shape
    rnn = bptt.RNN(I, H, activation=spec.activation, bias="b" in W)
    dense = bptt.Dense(H, W["W_ho"].shape[1], bias="b_o" in W)
    model = bptt.Sequential([rnn, *([bptt.Last()] if spec.steps == "last" else []), dense])
    for role, value in W.items():
        layer = dense if role in ("W_ho", "b_o") else rnn
        layer.params[{"W_ho": "W", "b_o": "b"}.get(role, role)][...] = value
    rnn.h0 = h0
    return model, rnn


def bptt_upstream(spec: Spec, o: Any, y: Any) -> Any:
    """``∂L/∂o`` from bptt's own losses, where bptt has this output and loss; else ``None``."""
    y3 = y if spec.steps == "every" else y[None]
    reduction = spec.reduction
    if spec.output == "identity" and spec.loss in ("mse", "half_mse"):
        return bptt.MSELoss(reduction)(o, y3)[1] * (0.5 if spec.loss == "half_mse" else 1.0)
    if spec.output == "sigmoid" and spec.loss == "bce":
        return bptt.BCEWithLogitsLoss(reduction)(o, y3)[1]
    if spec.output == "softmax" and spec.loss == "cross_entropy":
        return bptt.CrossEntropyLoss(reduction)(o, y3.argmax(axis=2))[1]
    if spec.output == "sigmoid" and spec.loss in ("mse", "half_mse"):
        act = bptt.Sigmoid()
        g = bptt.MSELoss(reduction)(act.forward(o), y3)[1] * (0.5 if spec.loss == "half_mse" else 1.0)
        return act.backward(g)
    return None


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(vars(s).values()))
def test_the_reference_equals_bptts_own_layers(spec: Spec) -> None:
    """RNN + Dense (+ Last) run by bptt give the same gradients to 1e-12, at every size of ``SIZES``.

    Where bptt has the loss (MSE on identity or sigmoid outputs, BCE with logits, softmax
    cross-entropy) the upstream ``∂L/∂o`` is bptt's too; elsewhere it is the reference's own
    ``δo`` (which the torch test checks), and the layers check the BPTT below it.
    """
    for sizes in SIZES:
        W, x, y, h0 = setup(spec, *sizes)
        ours = backprop(spec, W, x, y, h0=h0)
        model, rnn = bptt_model(spec, W, h0)
        o = model.forward(x)
        upstream = bptt_upstream(spec, o, y)
        if upstream is not None:
            assert_close(upstream, ours.do, 1e-12, "δo")
        grad_x = model.backward(ours.do if upstream is None else upstream)
        dense = "2." if spec.steps == "last" else "1."
        names = {"W_ih": "0.W_ih", "W_hh": "0.W_hh", "b": "0.b", "W_ho": f"{dense}W", "b_o": f"{dense}b"}
        for role in W:
            assert_close(ours.grads[role], model.grads[names[role]], 1e-12, role)
        assert_close(ours.grads["x"], grad_x, 1e-12, "x")
        assert_close(ours.grads["h0"], rnn.grad_h0, 1e-12, "h0")
        assert_close(ours.grads["delta"], rnn.grad_a, 1e-12, "delta")


def central_differences(spec: Spec, W: dict[str, Any], x: Any, y: Any, h0: Any) -> dict[str, Any]:
    """``∂L/∂θ`` for every weight entry, ``x`` and ``h0``, by the five-point stencil (error ~1e-12)."""
    eps = 1e-3
    arrays = {**W, "x": x, "h0": h0}
    out = {}
    for name, arr in arrays.items():
        g = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            keep = arr[i]
            f = []
            for k in (2, 1, -1, -2):
                arr[i] = keep + k * eps
                f.append(backprop(spec, W, x, y, h0=h0).loss)
            arr[i] = keep
            g[i] = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * eps)
        out[name] = g
    return out


@pytest.mark.parametrize(
    "spec",
    [
        Spec(a, o, lo, r, s)
        for a, (o, lo), r, s in itertools.product(
            ACTIVATIONS,
            [("identity", "mse"), ("sigmoid", "bce"), ("softmax", "cross_entropy"), ("sigmoid", "half_mse")],
            REDUCTIONS,
            STEPS,
        )
    ],
    ids=lambda s: "-".join(vars(s).values()),
)
def test_the_reference_equals_central_differences(spec: Spec) -> None:
    """The gradients are the loss's derivatives: central differences agree to 1e-8."""
    W, x, y, h0 = setup(spec, 3, 2, 2, 3, 2, seed=1)
    ours = backprop(spec, W, x, y, h0=h0)
    numeric = central_differences(spec, W, x, y, h0)
    for name, g in numeric.items():
        err = float(np.abs(ours.grads[name] - g).max() / np.abs(g).max())
        assert err < 1e-8, (name, err)


# --- each mistake, by the property that defines it ----------------------------------------------
SPEC = Spec("tanh", "identity", "mse", "sum", "every")


def run(
    bug: Bug | None, T: int = 5, B: int = 3, spec: Spec = SPEC, I: int = 2, H: int = 4, seed: int = 0
) -> Pass:
    W, x, y, _ = setup(spec, T, B, I, H, 3, seed=seed)
    return backprop(spec, W, x, y, bug)


def weights_of(
    T: int = 5, B: int = 3, spec: Spec = SPEC, I: int = 2, H: int = 4, seed: int = 0
) -> dict[str, Any]:
    W: dict[str, Any] = setup(spec, T, B, I, H, 3, seed=seed)[0]
    return W


def same(p: Pass, q: Pass, roles: tuple[str, ...] = (*ROLES, "x", "h0", "delta")) -> bool:
    return all(np.allclose(p.grads[r], q.grads[r], rtol=1e-12, atol=1e-14) for r in roles)


def test_every_bug_differs_from_the_reference() -> None:
    """Each planted bug changes some gradient (on random data, T = 5, B = 3)."""
    ref = run(None)
    for key in BUG_KEYS:
        if key == "seed-shape-mistake":
            continue
        option = {"bias-not-summed": "last", "h0-gradient": "zero", "scale": 3.0}.get(key)
        bugged = run(Bug(key, option))
        assert not all(
            bugged.grads[r].shape == ref.grads[r].shape and np.allclose(bugged.grads[r], ref.grads[r])
            for r in ref.grads
        ), key


def test_missing_recurrence_is_right_at_T1_only() -> None:
    """Without δa_{t+1} @ W_hhᵀ, δh_t is its output's δ alone: right for T = 1, wrong later."""
    bug = Bug("missing-recurrence")
    assert same(run(bug, T=1), run(None, T=1), (*ROLES, "x", "delta"))
    p, ref = run(bug), run(None)
    W = weights_of()
    np.testing.assert_allclose(p.dh, p.do @ W["W_ho"].T)
    np.testing.assert_allclose(p.da[-1], ref.da[-1])  # the last step has no step after it
    assert not np.allclose(p.da[0], ref.da[0])
    np.testing.assert_array_equal(p.grads["h0"], 0.0)


def test_last_step_only_keeps_the_last_term() -> None:
    """Each weight gradient is its step-T term: x_Tᵀ δa_T, h_{T-1}ᵀ δa_T, Σ_b δa_T, h_Tᵀ δo_T."""
    p, ref = run(Bug("last-step-only")), run(None)
    for role in ROLES:
        np.testing.assert_allclose(p.grads[role], ref.terms[role][-1], rtol=1e-13)
        np.testing.assert_allclose(ref.grads[role], ref.terms[role].sum(axis=0), rtol=1e-13)
    assert same(p, ref, ("x", "h0", "delta"))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_the_derivative_mistakes(activation: str) -> None:
    """δa_t = δh_t; δh_t ⊙ f'(h_t)²; f'(a_t) written with a (1 - a², a(1 - a))."""
    spec = Spec(activation)
    ref = run(None, spec=spec)
    none = run(Bug("no-activation-derivative"), spec=spec)
    np.testing.assert_allclose(none.da, none.dh)
    twice = run(Bug("activation-derivative-twice"), spec=spec)
    f = {"tanh": lambda v: 1 - v**2, "sigmoid": lambda v: v * (1 - v)}[activation]
    np.testing.assert_allclose(twice.da, twice.dh * f(twice.h[1:]) ** 2, rtol=1e-13)
    pre = run(Bug("derivative-of-preactivation"), spec=spec)
    np.testing.assert_allclose(pre.da, pre.dh * f(pre.a), rtol=1e-13)
    np.testing.assert_allclose(ref.da, ref.dh * f(ref.h[1:]), rtol=1e-13)
    for p in (none, twice, pre):
        np.testing.assert_allclose(p.do, ref.do)  # the output layer is untouched
        assert not np.allclose(p.grads["W_ih"], ref.grads["W_ih"])


@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_derivative_mistakes_that_change_nothing(activation: str) -> None:
    """relu' = [y > 0] = [a > 0] and its square is itself; identity' = 1: no difference to find."""
    spec = Spec(activation)
    ref = run(None, spec=spec)
    assert same(run(Bug("derivative-of-preactivation"), spec=spec), ref)
    assert same(run(Bug("activation-derivative-twice"), spec=spec), ref)
    if activation == "identity":
        assert same(run(Bug("no-activation-derivative"), spec=spec), ref)


def test_output_derivative_mistakes() -> None:
    """With a sigmoid output, the same three mistakes in δo_t = ∂L/∂ŷ_t ⊙ ŷ_t(1 - ŷ_t)."""
    spec = Spec("tanh", "sigmoid", "mse")
    ref = run(None, spec=spec)
    g = 2 * (ref.yhat - setup(spec, 5, 3, 2, 4, 3)[2])
    np.testing.assert_allclose(ref.do, g * ref.yhat * (1 - ref.yhat), rtol=1e-12)
    np.testing.assert_allclose(run(Bug("no-activation-derivative", "output"), spec=spec).do, g, rtol=1e-12)
    twice = run(Bug("activation-derivative-twice", "output"), spec=spec).do
    np.testing.assert_allclose(twice, g * (ref.yhat * (1 - ref.yhat)) ** 2, rtol=1e-12)
    pre = run(Bug("derivative-of-preactivation", "output"), spec=spec).do
    np.testing.assert_allclose(pre, g * ref.o * (1 - ref.o), rtol=1e-12)
    hidden = run(Bug("no-activation-derivative", "output"), spec=spec)
    np.testing.assert_allclose(hidden.da, hidden.dh * (1 - hidden.h[1:] ** 2), rtol=1e-13)


def test_recurrent_weight_not_transposed() -> None:
    """δa_{t+1} @ W_hh: the same as the reference exactly when W_hh is symmetric."""
    spec = SPEC
    W, x, y, _ = setup(spec, 5, 3, 2, 4, 3)
    bug = Bug("recurrent-weight-not-transposed")
    assert not same(backprop(spec, W, x, y, bug), backprop(spec, W, x, y))
    W["W_hh"] = W["W_hh"] + W["W_hh"].T
    assert same(backprop(spec, W, x, y, bug), backprop(spec, W, x, y))


@pytest.mark.parametrize("role", ["W_hh", "W_ih", "W_ho"])
def test_gradient_transposed(role: str) -> None:
    p, ref = run(Bug("gradient-transposed", role)), run(None)
    np.testing.assert_array_equal(p.grads[role], ref.grads[role].T)
    assert same(p, ref, tuple(r for r in (*ROLES, "x", "h0", "delta") if r != role))


def test_off_by_one_pairs_delta_with_the_same_step() -> None:
    """dW_hh = Σ_t h_tᵀ δa_t; nothing else changes."""
    p, ref = run(Bug("off-by-one")), run(None)
    np.testing.assert_allclose(p.grads["W_hh"], np.einsum("tbi,tbh->ih", ref.h[1:], ref.da), rtol=1e-13)
    assert same(p, ref, ("W_ih", "b", "W_ho", "b_o", "x", "h0", "delta"))


@pytest.mark.parametrize("n", [2, 3])
def test_accumulating_gradients(n: int) -> None:
    p, ref = run(Bug("accumulating-gradients", n)), run(None)
    for role in ROLES:
        np.testing.assert_allclose(p.grads[role], n * ref.grads[role], rtol=1e-14)
    assert same(p, ref, ("x", "h0", "delta"))


@pytest.mark.parametrize("spec", [SPEC, Spec("sigmoid", "sigmoid", "bce", "mean", "last")], ids=str)
def test_flipped_sign_negates_everything(spec: Spec) -> None:
    p, ref = run(Bug("flipped-sign"), spec=spec), run(None, spec=spec)
    for role, g in ref.grads.items():
        np.testing.assert_array_equal(p.grads[role], -g)


@pytest.mark.parametrize("factor", [2.0, 0.5, 3.0, 1 / 15])
def test_scale(factor: float) -> None:
    p, ref = run(Bug("scale", factor)), run(None)
    for role, g in ref.grads.items():
        np.testing.assert_allclose(p.grads[role], factor * g, rtol=1e-15)


@pytest.mark.parametrize(("B", "I", "H"), [(1, 2, 16), (3, 2, 5)])
def test_seed_shape_mistake_raises_as_numpy_does(B: int, I: int, H: int) -> None:
    """The input's δ (B, I) against W_hh (H, H): the seed's ValueError."""
    with pytest.raises(ValueError, match="mismatch"):
        run(Bug("seed-shape-mistake"), B=B, I=I, H=H)


def test_h0_gradient_forms() -> None:
    ref = run(None)
    W = weights_of()
    np.testing.assert_allclose(ref.grads["h0"], ref.da[0] @ W["W_hh"].T, rtol=1e-14)
    expect = {"zero": 0 * ref.da[0], "dh1": ref.dh[0], "da1": ref.da[0], "last": ref.da[-1] @ W["W_hh"].T}
    for form, value in expect.items():
        p = run(Bug("h0-gradient", form))
        np.testing.assert_allclose(p.grads["h0"], value, rtol=1e-14)
        assert same(p, ref, (*ROLES, "x", "delta"))


@pytest.mark.parametrize(
    ("form", "shape"), [("steps", (5, 4)), ("batch", (3, 4)), ("steps-batch", (5, 3, 4)), ("columns", (4, 5))]
)
def test_bias_not_summed_forms_sum_to_the_bias_gradient(form: str, shape: tuple[int, ...]) -> None:
    p, ref = run(Bug("bias-not-summed", form)), run(None)
    assert p.grads["b"].shape == shape
    axes = tuple(i for i, n in enumerate(shape) if n != 4) if form != "steps-batch" else (0, 1)
    np.testing.assert_allclose(p.grads["b"].sum(axis=axes), ref.grads["b"], rtol=1e-13)
    assert same(p, ref, ("W_ih", "W_hh", "W_ho", "x", "h0", "delta"))


def test_bias_not_summed_last_step_only() -> None:
    p, ref = run(Bug("bias-not-summed", "last")), run(None)
    np.testing.assert_allclose(p.grads["b"], ref.da[-1].sum(axis=0), rtol=1e-14)
    np.testing.assert_allclose(bias_form(ref.da, "steps").sum(axis=0), ref.grads["b"], rtol=1e-13)


def test_overwritten_cache_reads_h_T_everywhere() -> None:
    """Every h_t (t ≥ 1) is h_T, in f' and in the outer products; h_0 is its own; right at T = 1."""
    p, ref = run(Bug("overwritten-cache")), run(None)
    hT = ref.h[-1]
    np.testing.assert_allclose(p.h, ref.h)  # the forward is right
    np.testing.assert_allclose(p.da, p.dh * (1 - hT**2), rtol=1e-13)
    np.testing.assert_allclose(p.terms["W_ho"], np.einsum("bi,tbo->tio", hT, ref.do), rtol=1e-13)
    np.testing.assert_allclose(p.terms["W_hh"][0], ref.h[0].T @ p.da[0], rtol=1e-13)
    np.testing.assert_allclose(p.terms["W_hh"][1:], np.einsum("bi,tbh->tih", hT, p.da[1:]), rtol=1e-13)
    np.testing.assert_allclose(p.da[-1], ref.da[-1], rtol=1e-13)
    assert same(run(Bug("overwritten-cache"), T=1), run(None, T=1))


def test_unknown_bugs_and_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown mistake 'typo'"):
        Bug("typo")
    with pytest.raises(ValueError, match="bias-not-summed takes option"):
        Bug("bias-not-summed", "sideways")
