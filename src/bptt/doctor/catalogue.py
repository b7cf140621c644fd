"""The twelve classic BPTT mistakes in words: the learner's term, the right term with shapes, and why.

Every term is written in the reference convention (row vectors ``x @ W``, ``W (in, out)``) with
the learner's own sizes ``I, H, O`` and the doctor's ``B, T`` filled in, so the right term can be
typed in and its shapes checked. ``describe`` turns a key (and its option, as in
``variants.Bug``) into a ``report.Diagnosis``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from ..explanation import shape
from .report import Diagnosis
from .spec import Spec

__all__ = [
    "CATALOGUE",
    "KEYS",
    "Entry",
    "Sizes",
    "derivative_text",
    "describe",
    "factor_name",
    "loss_text",
    "simplest_fraction",
]


@dataclass(frozen=True)
class Sizes:
    """The sizes in the terms: input ``I``, hidden ``H``, output ``O``, batch ``B``, steps ``T``."""

    I: int
    H: int
    O: int
    B: int
    T: int


@dataclass(frozen=True)
class Entry:
    """A mistake's number (1-12), key, one-line title, and why the right term is right."""

    number: int
    key: str
    title: str
    why: str


CATALOGUE: dict[str, Entry] = {
    e.key: e
    for e in (
        Entry(
            1,
            "missing-recurrence",
            "δ does not flow back in time: the recurrent term δa_{t+1} @ W_hhᵀ is missing",
            "h_t feeds a_{t+1} as well as its own output, so ∂L/∂h_t collects a term from every later step",
        ),
        Entry(
            2,
            "last-step-only",
            "only the last step enters the weight gradients: the sum over t is missing",
            "the same weights act at every step, so every step adds its own outer product inputᵀ·δ",
        ),
        Entry(
            3,
            "no-activation-derivative",
            "the activation's derivative is missing",
            "the state is f(pre-activation), so the chain rule passes through f', written with f's output",
        ),
        Entry(
            3,
            "activation-derivative-twice",
            "the activation's derivative is applied twice",
            "f' enters once per activation: once on the way from the state back to its pre-activation",
        ),
        Entry(
            3,
            "derivative-of-preactivation",
            "the derivative is written with the pre-activation where the activation's output is due",
            "tanh'(a) = 1 - tanh(a)² = 1 - h² and σ'(a) = σ(a)(1 - σ(a)) = h(1 - h): the formulas take "
            "the output h, not the input a",
        ),
        Entry(
            4,
            "recurrent-weight-not-transposed",
            "the recurrent term multiplies by W_hh where W_hhᵀ is due",
            "a_{t+1} = h_t @ W_hh + …, so ∂L/∂h_t gets δa_{t+1} @ W_hhᵀ; W_hh is square, so NumPy "
            "accepts either and no error warns you",
        ),
        Entry(
            4,
            "gradient-transposed",
            "a weight gradient is returned transposed",
            "a weight's gradient is Σ_t inputᵀ·δ, which has the weight's own shape; δᵀ·input is its "
            "transpose, and for a square weight NumPy cannot tell",
        ),
        Entry(
            5,
            "off-by-one",
            "dW_hh pairs δa_t with h_t where h_{t-1} is due",
            "a_t = x_t @ W_ih + h_{t-1} @ W_hh + b: the input W_hh sees at step t is h_{t-1}, from h_0 on",
        ),
        Entry(
            6,
            "accumulating-gradients",
            "the gradients accumulate across calls: they are never reset",
            "BPTT sums over the steps of one pass; the next pass starts from zero (bptt's backward "
            "overwrites .grads)",
        ),
        Entry(
            7,
            "flipped-sign",
            "the loss gradient has the wrong sign: y - ŷ where ŷ - y is due",
            "L grows with ŷ - y, so its gradient points along ŷ - y; a step along y - ŷ climbs the loss",
        ),
        Entry(
            8,
            "scale",
            "every gradient is off by a constant factor",
            "the factor comes from ∂L/∂ŷ: 2 from the square (½ takes it away), 1/N from a mean over N",
        ),
        Entry(
            9,
            "seed-shape-mistake",
            "a δ meets another layer's whole weight, so the shapes cannot line up",
            "W_hh maps hidden to hidden, so only a hidden-sized δ goes through it; a weight's gradient "
            "is an outer product inputᵀ·δ, which always has the weight's own shape",
        ),
        Entry(
            10,
            "h0-gradient",
            "the gradient of h0 is missing or taken from the wrong step",
            "h_0 enters step 1 only, through a_1 = x_1 @ W_ih + h_0 @ W_hh + b",
        ),
        Entry(
            11,
            "bias-not-summed",
            "the bias gradient is not summed over the batch and the steps",
            "the bias is added at every step to every sequence, so its gradient sums δ over both",
        ),
        Entry(
            12,
            "overwritten-cache",
            "the cached hidden states were overwritten in place: every h_t reads h_T",
            "backward needs each step's own h_t; a list of T references to one array holds the last "
            "state T times",
        ),
    )
}
KEYS = tuple(CATALOGUE)


def derivative_text(activation: str, v: str) -> str:
    """``f'`` written with ``v``: ``1 - h_t²``, ``h_t ⊙ (1 - h_t)``, ``[h_t > 0]``, ``1``."""
    return {
        "tanh": f"(1 - {v}²)",
        "sigmoid": f"{v} ⊙ (1 - {v})",
        "relu": f"[{v} > 0]",
        "identity": "1",
    }[activation]


def loss_text(spec: Spec, s: Sizes, sign: int = 1) -> str:
    """``∂L/∂ŷ`` (or ``δo`` where sigmoid + BCE or softmax + cross-entropy combine), with its shape."""
    t = "_t" if spec.steps == "every" else "_T"
    d = f"ŷ{t} - y{t}" if sign > 0 else f"y{t} - ŷ{t}"
    combined = (spec.output, spec.loss) in (("sigmoid", "bce"), ("softmax", "cross_entropy"))
    core = {
        "mse": f"2({d})",
        "half_mse": d,
        "bce": f"({d}) / (ŷ{t} ⊙ (1 - ŷ{t}))",
        "cross_entropy": f"{'-' if sign > 0 else ''}y{t} / ŷ{t}",
    }[spec.loss]
    lhs = f"δo{t}" if combined else f"∂L/∂ŷ{t}"
    core = d if combined else core
    if spec.reduction == "mean":
        n, letters = _mean_count(spec, s)
        core = f"({core}) / N, N = {letters} = {n}" if core[0] != "(" else f"{core} / N, N = {letters} = {n}"
    return f"{lhs} = {core}   {shape((s.B, s.O))}"


def _mean_count(spec: Spec, s: Sizes) -> tuple[int, str]:
    steps = (s.T, "T·") if spec.steps == "every" else (1, "")
    if spec.loss == "cross_entropy":
        return steps[0] * s.B, f"{steps[1]}B"
    return steps[0] * s.B * s.O, f"{steps[1]}B·O"


def factor_name(factor: float, s: Sizes) -> str | None:
    """The factor in words (``"B = 3"``, ``"1/(T·B) = 1/15"``), if a learner makes it; else ``None``."""
    named = [("", 2), ("B", s.B), ("T", s.T), ("T·B", s.T * s.B), ("O", s.O), ("B·O", s.B * s.O)]
    named += [
        ("T·B·O", s.T * s.B * s.O),
        ("2·B", 2 * s.B),
        ("2·T·B", 2 * s.T * s.B),
        ("2·T·B·O", 2 * s.T * s.B * s.O),
    ]
    for name, n in named:
        if n == 1:
            continue
        pairs = (
            ((n, f"{name} = {n}"), (1 / n, f"1/{_paren(name)} = 1/{n}")) if name else ((2, "2"), (0.5, "½"))
        )
        for value, text in pairs:
            if abs(factor - value) <= 1e-9 * value:
                return text
    return None


def _paren(name: str) -> str:
    return f"({name})" if "·" in name else name


def _outer(lhs: str, u: str, d: str, a: int, b: int, B: int, steps: str) -> str:
    """``dW = Σ_t uᵀ·δ   each (a,B)·(B,b) -> (a,b), t = 1..T``."""
    return f"{lhs} = Σ_t {u}ᵀ·{d}   each {shape((a, B))}·{shape((B, b))} -> {shape((a, b))}{steps}"


def _terms(key: str, spec: Spec, s: Sizes, option: object, roles: tuple[str, ...]) -> tuple[str, str]:
    """The wrong term and the right one for ``key``."""
    I, H, B, T = s.I, s.H, s.B, s.T
    bh, hh, every = shape((B, H)), shape((H, H)), f", t = 1..{T}"
    recurrent = f"δa_{{t+1}} @ W_hhᵀ   {bh}@{hh} -> {bh}"
    dW_ih = _outer("dW_ih", "x_t", "δa_t", I, H, B, every)
    dW_hh = _outer("dW_hh", "h_{t-1}", "δa_t", H, H, B, every)
    make: dict[str, Callable[[], tuple[str, str]]] = {
        "missing-recurrence": lambda: _missing_recurrence(spec, s),
        "last-step-only": lambda: (
            "dW_ih = x_Tᵀ·δa_T, dW_hh = h_{T-1}ᵀ·δa_T, …: step T alone",
            f"{dW_ih}\n{dW_hh}",
        ),
        "recurrent-weight-not-transposed": lambda: ("δh_t ∋ δa_{t+1} @ W_hh", f"δh_t ∋ {recurrent}"),
        "gradient-transposed": lambda: _transposed(str(option or "W_hh"), s),
        "off-by-one": lambda: ("dW_hh = Σ_t h_tᵀ·δa_t", dW_hh + ", h_0 first"),
        "accumulating-gradients": lambda: (
            "dW += … on every call, never reset: the second call returns twice the first",
            f"every dW = 0 at the start of backward; then, for t = T..1, dW_ih += x_tᵀ·δa_t   "
            f"{shape((I, B))}·{bh} -> {shape((I, H))}, and so for every weight",
        ),
        "flipped-sign": lambda: (loss_text(spec, s, -1), loss_text(spec, s)),
        "scale": lambda: (
            f"every gradient {option} times the reference's",
            f"{loss_text(spec, s)}, no other factor",
        ),
        "seed-shape-mistake": lambda: (
            f"δx_t @ W_hh   {shape((B, I))}@{hh}: ValueError",
            f"δh_{{t-1}} = δa_t @ W_hhᵀ   {bh}@{hh} -> {bh}\n{dW_ih}",
        ),
        "h0-gradient": lambda: (
            _H0_WRONG.get(str(option), "δh_0 wrong"),
            f"δh_0 = δa_1 @ W_hhᵀ   {bh}@{hh} -> {bh}",
        ),
        "bias-not-summed": lambda: _bias(option, s, roles),
        "overwritten-cache": lambda: (
            "one h array updated in place (h[:] = …, h += …) and appended T times: "
            "f'(h_T) and h_Tᵀ·δ at every step",
            "keep each step's own state: hs.append(h.copy()), or a fresh h = f(a) each step\n"
            f"δa_t = δh_t ⊙ {derivative_text(spec.activation, 'h_t')}; {dW_hh}",
        ),
    }
    if key in make:
        return make[key]()
    return _derivative_terms(key, spec, s, option)


_H0_WRONG = {
    "zero": "δh_0 = 0 (or not computed)",
    "dh1": "δh_0 = δh_1",
    "da1": "δh_0 = δa_1 (without @ W_hhᵀ)",
    "last": "δh_0 = δa_T @ W_hhᵀ (step T's δ where step 1's is due)",
}


def _missing_recurrence(spec: Spec, s: Sizes) -> tuple[str, str]:
    bh, bo, oh, hh = shape((s.B, s.H)), shape((s.B, s.O)), shape((s.O, s.H)), shape((s.H, s.H))
    if spec.steps == "last":
        return (
            "δh_t = 0 for t < T: only step T gets a δ",
            f"δh_t = δa_{{t+1}} @ W_hhᵀ for t < T   {bh}@{hh} -> {bh}",
        )
    right = f"δh_t = δo_t @ W_hoᵀ + δa_{{t+1}} @ W_hhᵀ   {bo}@{oh} + {bh}@{hh} -> {bh}"
    return "δh_t = δo_t @ W_hoᵀ: its own output's δ only", right


def _transposed(role: str, s: Sizes) -> tuple[str, str]:
    I, H, O, B = s.I, s.H, s.O, s.B
    u, d, a, b = {
        "W_ih": ("x_t", "δa_t", I, H),
        "W_hh": ("h_{t-1}", "δa_t", H, H),
        "W_ho": ("h_t", "δo_t", H, O),
    }[role]
    wrong = f"d{role} = Σ_t {d}ᵀ·{u}   {shape((b, a))}, the transpose"
    return wrong, _outer(f"d{role}", u, d, a, b, B, f", {role}'s own shape {shape((a, b))}")


def _bias(option: object, s: Sizes, roles: tuple[str, ...]) -> tuple[str, str]:
    T, B, H, O = s.T, s.B, s.H, s.O
    if isinstance(option, str) and option != "last":
        wrong = {
            "steps": f"db with one row per step {shape((T, H))}",
            "batch": f"db with one row per sequence {shape((B, H))}",
            "steps-batch": f"db = δa, one row per step and sequence {shape((T, B, H))}",
            "columns": f"db with one column per step {shape((H, T))}",
        }.get(option, "db not summed")
    elif option == "last":
        wrong = "db = Σ_b δa_T: the last step only"
    else:
        wrong = "kept per step or per sequence, not summed to the bias's shape"
    lines = []
    if "b" in roles or not roles:
        lines.append(f"db = Σ_t Σ_b δa_t   each {shape((B, H))} -> {shape((H,))}, t = 1..{T}")
    if "b_o" in roles:
        lines.append(f"db_o = Σ_t Σ_b δo_t   each {shape((B, O))} -> {shape((O,))}")
    return wrong, "\n".join(lines)


def _derivative_terms(key: str, spec: Spec, s: Sizes, option: object) -> tuple[str, str]:
    """The three derivative mistakes, in the hidden layer (``δa_t``) or a sigmoid output (``δo_t``)."""
    if option == "output":
        lhs, up, act, v, z, dims = "δo_t", "∂L/∂ŷ_t", "sigmoid", "ŷ_t", "o_t", (s.B, s.O)
    else:
        lhs, up, act, v, z, dims = "δa_t", "δh_t", spec.activation, "h_t", "a_t", (s.B, s.H)
    f = derivative_text(act, v)
    right = f"{lhs} = {up} ⊙ {f}   {shape(dims)} ⊙ {shape(dims)} -> {shape(dims)}"
    wrong = {
        "no-activation-derivative": f"{lhs} = {up}",
        "activation-derivative-twice": f"{lhs} = {up} ⊙ {f} ⊙ {f}",
        "derivative-of-preactivation": f"{lhs} = {up} ⊙ {derivative_text(act, z)}",
    }[key]
    return wrong, right


def describe(
    key: str,
    spec: Spec,
    sizes: Sizes,
    option: object = None,
    *,
    steps: tuple[int, ...] = (),
    detail: str = "",
    where: str = "",
    roles: tuple[str, ...] = (),
) -> Diagnosis:
    """The diagnosis for mistake ``key`` (with ``option`` as in ``variants.Bug``), its terms filled in."""
    if key not in CATALOGUE:
        raise ValueError(f"doctor: unknown mistake {key!r}; expected one of {', '.join(KEYS)}")
    entry = CATALOGUE[key]
    wrong, right = _terms(key, spec, sizes, option, roles)
    title = entry.title
    if key in ("no-activation-derivative", "activation-derivative-twice", "derivative-of-preactivation"):
        title += " in the output layer's δo_t" if option == "output" else " in the hidden layer's δa_t"
    elif key == "gradient-transposed":
        title = f"the gradient of {option or 'W_hh'} is returned transposed"
    return Diagnosis(entry.number, key, title, wrong, right, steps, detail, entry.why, where, roles)


def simplest_fraction(value: float) -> str:
    """A factor that is no named one, as a small fraction where it is one (``0.4 -> "2/5"``), else decimal."""
    f = Fraction(value).limit_denominator(20)
    return str(f) if abs(float(f) - value) <= 1e-9 * abs(value) else f"{value:.4g}"
