"""When the learner's code raises: the failing product, its operands by name and shape, and the right one.

The innermost frame of the learner's own files is read back: the statement's source is parsed,
every product in it (``@``, ``np.dot``, ``.dot``, ``np.matmul``, ``np.outer``, ``*``, ``+=``) has
its operands evaluated in that frame (names, attributes, subscripts, ``.T`` and NumPy arithmetic
only: none of the learner's functions or properties is called), and the product that raises is
the one that failed. Each operand is then recognised by value among the reference's quantities
for the same weights and data (a weight or its transpose; ``x_t``, ``h_t``, ``δa_t``, ``δh_t``,
``δo_t``, ``δx_t`` at some step), or else by its size, and the product that belongs there is
written beside it, as ``bptt explain --mistakes`` does.
"""

from __future__ import annotations

import ast
import linecache
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._types import Array
from ..explanation import shape
from .evaluate import CannotEvaluate, evaluate, product_operands
from .variants import Pass

__all__ = ["Crash", "Operand", "analyse"]


@dataclass(frozen=True)
class Operand:
    """One side of the failing product: the learner's expression, its shape, and what it is."""

    text: str
    shape: tuple[int, ...]
    name: str = ""  # "W_hh", "δx_2", "δa_3ᵀ"; "" when not recognised
    kind: str = ""  # "W_ih", "W_hh", "W_ho", "x", "h", "a", "δa", "δh", "δo", "δx", "ŷ", "y"
    size: str = ""  # which of "I", "H", "O" its feature size is, when it says
    step: int = 0


@dataclass(frozen=True)
class Crash:
    """What the learner's code raised, where, and (when a product failed) the product and the right one."""

    error: str
    where: str
    line: str
    operands: tuple[Operand, ...] = ()
    wrong: str = ""
    right: str = ""
    seed: bool = False
    step: int = 0

    def lines(self) -> list[str]:
        """The crash as printed: what, where, and each operand of the failing product recognised."""
        out = [f"your code raised {self.error}", f"  at {self.where}: {self.line}"]
        for op in self.operands:
            what = f"is {op.name}{_GLOSS.get(op.kind, '').format(t=op.step)}" if op.name else _size_words(op)
            out.append(f"    {op.text} {shape(op.shape)} {what}")
        return out


_GLOSS = {
    "δx": " = δa_{t} @ W_ihᵀ, the input's δ",
    "δa": ", the δ of the hidden pre-activation a_{t}",
    "δh": " = ∂L/∂h_{t}, the hidden state's δ",
    "δo": ", the output layer's δ",
    "W_hh": ", the hidden-to-hidden weight",
    "W_ih": ", the input-to-hidden weight",
    "W_ho": ", the hidden-to-output weight",
}


def _size_words(op: Operand) -> str:
    return f"has the {_SIZE_NAMES[op.size]} size" if op.size else "is not one of the reference's quantities"


_SIZE_NAMES = {"I": "input's", "H": "hidden", "O": "output's"}


def analyse(
    exc: BaseException,
    files: tuple[str, ...],
    ref: Pass,
    weights: Mapping[str, Array],
    x: Array,
    column: bool,
) -> Crash:
    """Read the learner's exception: the frame in ``files``, the failing product, the right product."""
    error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    frame = _learner_frame(exc, files)
    if frame is None:
        return Crash(error, "(not in your files)", "")
    f, lineno, lasti = frame
    where = f"{os.path.basename(f.f_code.co_filename)}:{lineno}"
    stmt, source = _statement(f.f_code.co_filename, lineno)
    line = linecache.getline(f.f_code.co_filename, lineno).strip()
    if stmt is None:
        return Crash(error, where, line)
    failing = _failing(stmt, source, f, _position(f.f_code, lasti))
    if failing is None:
        return Crash(error, where, line)
    segment, op, (left, right), (lv, rv), reason = failing
    sizes = _sizes(weights)
    ops = tuple(_identify(text, v, ref, weights, x, sizes) for text, v in ((left, lv), (right, rv)))
    symbol = {"*": "*", "+=": "+=", "+": "+", "-": "-"}.get(op, "@")
    maths = f", that is {ops[0].name} {symbol} {ops[1].name}" if ops[0].name and ops[1].name else ""
    wrong = f"{segment}{maths}   {shape(ops[0].shape)} {symbol} {shape(ops[1].shape)}: {reason}"
    right_term, seed = right_product(ops, sizes, ref.da.shape[1], column)
    step = max((o.step for o in ops), default=0)
    return Crash(error, where, line, ops, wrong, right_term, seed, step)


def _learner_frame(exc: BaseException, files: tuple[str, ...]) -> tuple[types.FrameType, int, int] | None:
    """The innermost traceback entry in ``files`` (else outside NumPy and the doctor): frame, line, lasti."""
    entries = []
    tb = exc.__traceback__
    while tb is not None:
        entries.append((tb.tb_frame, tb.tb_lineno, tb.tb_lasti))
        tb = tb.tb_next
    wanted = {os.path.realpath(f) for f in files}
    mine = [e for e in entries if os.path.realpath(e[0].f_code.co_filename) in wanted]
    if mine:
        return mine[-1]
    skip = (os.path.dirname(np.__file__), os.path.dirname(__file__))
    others = [e for e in entries if not os.path.realpath(e[0].f_code.co_filename).startswith(skip)]
    return others[-1] if others and not files else None


def _statement(filename: str, lineno: int) -> tuple[ast.stmt | None, str]:
    """The innermost statement of ``filename`` that contains line ``lineno``, and the file's source."""
    source = "".join(linecache.getlines(filename))
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None, source
    inside = [
        (i, n)
        for i, n in enumerate(ast.walk(tree))  # breadth first: a deeper statement comes later
        if isinstance(n, ast.stmt) and n.lineno <= lineno <= (n.end_lineno or n.lineno)
    ]
    best = min(
        inside, key=lambda iN: ((iN[1].end_lineno or iN[1].lineno) - iN[1].lineno, -iN[0]), default=None
    )
    return (best[1] if best else None), source


def _position(code: types.CodeType, lasti: int) -> tuple[int | None, ...] | None:
    """The source span of the instruction that raised (Python 3.11+), else ``None``."""
    positions = getattr(code, "co_positions", None)
    if positions is None or lasti < 0:
        return None
    spans = list(positions())
    return spans[lasti // 2] if lasti // 2 < len(spans) else None


def _failing(
    stmt: ast.stmt, source: str, frame: types.FrameType, position: tuple[int | None, ...] | None
) -> tuple[str, str, tuple[str, str], tuple[Any, Any], str] | None:
    """The product in ``stmt`` whose operands evaluate and whose operation raises: the innermost first."""
    env = {**frame.f_globals, **frame.f_locals}
    nodes = _products(stmt)
    if position is not None:  # the very expression the interpreter was at, when it is a product
        exact = [n for n in nodes if (n.lineno, n.end_lineno, n.col_offset, n.end_col_offset) == position]
        nodes = exact + [n for n in nodes if n not in exact]
    for node in nodes:
        found = product_operands(node, env)
        if found is None:
            continue
        op, (left, right), apply = found
        try:
            lv, rv = evaluate(left, env), evaluate(right, env)
        except CannotEvaluate:
            continue
        try:
            apply(lv, rv)
        except ValueError as e:
            segment = ast.get_source_segment(source, node) or "?"
            texts = (
                ast.get_source_segment(source, left) or "?",
                ast.get_source_segment(source, right) or "?",
            )
            return segment, op, texts, (lv, rv), _reason(op, np.shape(lv), np.shape(rv), str(e))
    return None


def _products(stmt: ast.stmt) -> list[ast.BinOp | ast.Call | ast.AugAssign]:
    """Every node of ``stmt`` that may be a product, the deepest first."""
    found: list[tuple[int, ast.BinOp | ast.Call | ast.AugAssign]] = []

    def visit(node: ast.AST, depth: int) -> None:
        if isinstance(node, (ast.BinOp, ast.Call, ast.AugAssign)):
            found.append((depth, node))
        for child in ast.iter_child_nodes(node):
            visit(child, depth + 1)

    visit(stmt, 0)
    return [n for _, n in sorted(found, key=lambda dn: -dn[0])]


def _reason(op: str, a: tuple[int, ...], b: tuple[int, ...], message: str) -> str:
    """NumPy's complaint in a learner's words."""
    if op in ("@", "np.dot", ".dot", "np.matmul") and a and b:
        inner = b[-2] if len(b) > 1 else b[0]
        return f"ValueError, inner sizes {a[-1]} (columns of the left) ≠ {inner} (rows of the right)"
    if "broadcast" in message:
        return f"ValueError, shapes that cannot be combined elementwise: {shape(a)} and {shape(b)}"
    return "ValueError, " + message.splitlines()[0]


def _sizes(weights: Mapping[str, Array]) -> dict[str, int]:
    I, H = weights["W_ih"].shape
    return {"I": I, "H": H, "O": weights["W_ho"].shape[1]}


def _identify(
    text: str, value: Any, ref: Pass, weights: Mapping[str, Array], x: Array, sizes: Mapping[str, int]
) -> Operand:
    """What ``value`` is among the reference's quantities, by value, else by size."""
    v = (
        np.asarray(value, dtype=np.float64)
        if isinstance(value, (np.ndarray, list, float, int))
        else np.zeros(0)
    )
    dims = tuple(v.shape)
    for name, kind, step, q in _quantities(ref, weights, x):
        for transposed, cand in ((False, q), (True, q.T)):
            if cand.size == v.size and cand.size and _equal(v.ravel(), cand.ravel()):
                mark = "ᵀ" if transposed and min(q.shape) > 1 else ""
                return Operand(text, dims, name + mark, kind, _size_of(kind), step)
    kind = next(
        (w for w in ("W_hh", "W_ih", "W_ho") if dims in (weights[w].shape, weights[w].shape[::-1])), ""
    )
    if (
        kind
        and sum(dims in (weights[w].shape, weights[w].shape[::-1]) for w in ("W_hh", "W_ih", "W_ho")) == 1
    ):
        return Operand(text, dims, kind + ("ᵀ" if dims != weights[kind].shape else ""), kind)
    return Operand(text, dims, "", "", _feature_size(dims, sizes))


def _equal(a: Array, b: Array) -> bool:
    scale = float(np.abs(b).max())
    return scale > 0 and float(np.abs(a - b).max()) <= 1e-9 * scale


def _quantities(ref: Pass, weights: Mapping[str, Array], x: Array) -> list[tuple[str, str, int, Array]]:
    """The reference's named quantities: the weights, then each step's δ's, then its states."""
    found = [(w, w, 0, weights[w]) for w in ("W_hh", "W_ih", "W_ho")]
    T, offset = ref.da.shape[0], ref.da.shape[0] - ref.do.shape[0]
    for t in range(T, 0, -1):
        found += [(f"δa_{t}", "δa", t, ref.da[t - 1]), (f"δh_{t}", "δh", t, ref.dh[t - 1])]
        found += [(f"δx_{t}", "δx", t, ref.dx[t - 1])]
        if t - 1 - offset >= 0:
            found.append((f"δo_{t}", "δo", t, ref.do[t - 1 - offset]))
    for t in range(T, 0, -1):
        found += [
            (f"h_{t}", "h", t, ref.h[t]),
            (f"x_{t}", "x", t, x[t - 1]),
            (f"a_{t}", "a", t, ref.a[t - 1]),
        ]
    return found


def _size_of(kind: str) -> str:
    return {"δa": "H", "δh": "H", "h": "H", "a": "H", "δo": "O", "ŷ": "O", "y": "O", "δx": "I", "x": "I"}.get(
        kind, ""
    )


def _feature_size(dims: tuple[int, ...], sizes: Mapping[str, int]) -> str:
    """Which of I, H, O a vector or a ``(B, F)`` / ``(F, B)`` batch has as its feature size, if one."""
    for letter in ("H", "I", "O"):
        if len(dims) <= 2 and sizes[letter] in dims and min(dims, default=0) <= sizes[letter]:
            return letter
    return ""


def right_product(
    ops: tuple[Operand, ...], sizes: Mapping[str, int], B: int, column: bool
) -> tuple[str, bool]:
    """The product that belongs where the failing one is, with shapes, and whether it is the seed's mistake.

    The seed's mistake: a δ whose size is neither dimension of the weight it meets, that is a
    δ of another layer against a whole weight, as the seed's ``(1, 2)`` δ met ``W_hh (16, 16)``.
    """
    weight = next((o for o in ops if o.kind.startswith("W_")), None)
    other = next((o for o in ops if o is not weight), None)
    I, H, O = sizes["I"], sizes["H"], sizes["O"]
    if weight is None or other is None:
        kinds = {o.size or _size_of(o.kind) for o in ops}
        pick = {frozenset("IH"): "W_ih", frozenset("H"): "W_hh", frozenset("HO"): "W_ho"}.get(
            frozenset(kinds)
        )
        return (_outer(pick, sizes, B, column), False) if pick else ("", False)
    size = other.size or _size_of(other.kind)
    dims = {"W_ih": (I, H), "W_hh": (H, H), "W_ho": (H, O)}[weight.kind]
    seed = bool(size) and sizes[size] not in dims
    if other.kind in ("x", "h"):  # the forward pass
        u = {"W_ih": ("x_t", I), "W_hh": ("h_{t-1}", H), "W_ho": ("h_t", H)}[weight.kind]
        return _mat(u[0], (B, u[1]), weight.kind, dims, False, column), False
    back = {"W_ih": ("δa_t", (B, H)), "W_hh": ("δa_t", (B, H)), "W_ho": ("δo_t", (B, O))}[weight.kind]
    text = _mat(back[0], back[1], weight.kind, dims[::-1], True, column)
    lhs = {"W_ih": "δx_t", "W_hh": "δh_{t-1}", "W_ho": "δh_t"}[weight.kind]
    text = f"{lhs} = {text}"
    if seed and weight.kind == "W_hh":
        text += "\n" + _outer("W_ih", sizes, B, column)
    return text, seed


def _mat(
    u: str, u_shape: tuple[int, int], w: str, w_shape: tuple[int, int], transpose: bool, column: bool
) -> str:
    """``u @ W`` (or ``@ Wᵀ``) with shapes; in column layout ``W @ u`` (``Wᵀ @ u``) on ``(F, B)``."""
    t = "ᵀ" if transpose else ""
    out = (u_shape[0], w_shape[1])
    if column:
        return f"{w}{t} @ {u}   {shape(w_shape[::-1])}@{shape(u_shape[::-1])} -> {shape(out[::-1])}"
    return f"{u} @ {w}{t}   {shape(u_shape)}@{shape(w_shape)} -> {shape(out)}"


def _outer(role: str, sizes: Mapping[str, int], B: int, column: bool) -> str:
    """``dW = Σ_t inputᵀ·δ`` for ``role``, with shapes (``δ·inputᵀ`` in column layout)."""
    u, d, a, b = {
        "W_ih": ("x_t", "δa_t", sizes["I"], sizes["H"]),
        "W_hh": ("h_{t-1}", "δa_t", sizes["H"], sizes["H"]),
        "W_ho": ("h_t", "δo_t", sizes["H"], sizes["O"]),
    }[role]
    if column:
        return f"d{role} = Σ_t {d}·{u}ᵀ   each {shape((b, B))}·{shape((B, a))} -> {shape((b, a))}"
    return f"d{role} = Σ_t {u}ᵀ·{d}   each {shape((a, B))}·{shape((B, b))} -> {shape((a, b))}"
