"""Evaluate a learner's expression in its own frame, safely: names, attributes, subscripts, NumPy arithmetic.

``crash`` needs the operands of the product that raised, as values. The expression is walked
here rather than passed to ``eval``: only names, constants, plain data attributes (an instance's
own arrays, never a property), subscripts of lists, tuples, dicts and arrays, ``.T``, arithmetic
operators and a few NumPy functions are evaluated, so none of the learner's code runs again.
"""

from __future__ import annotations

import ast
import inspect
import operator
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["CannotEvaluate", "evaluate", "product_operands"]


class CannotEvaluate(Exception):
    """The expression holds something the evaluator will not run (a call, a property, an unknown name)."""


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.MatMult: np.matmul,
    ast.Mult: np.multiply,
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Div: np.divide,
    ast.Pow: np.power,
}
_SAFE: tuple[Callable[..., Any], ...] = (np.dot, np.matmul, np.outer, np.multiply, np.add, np.subtract)
_SAFE += (np.transpose, np.tanh, np.exp, np.sum, np.square, np.zeros_like, np.ones_like)
_SAFE_FUNCTIONS: dict[int, Callable[..., Any]] = {id(f): f for f in _SAFE}
_SAFE_METHODS = ("dot", "transpose", "copy", "sum")
_DATA = (np.ndarray, np.generic, int, float, list, tuple, dict)


def evaluate(node: ast.AST, env: Mapping[str, Any]) -> Any:
    """The value of expression ``node`` in ``env`` (a frame's globals and locals), or ``CannotEvaluate``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        raise CannotEvaluate(node.id)
    if isinstance(node, ast.Attribute):
        return _attribute(evaluate(node.value, env), node.attr)
    if isinstance(node, ast.Subscript):
        base = evaluate(node.value, env)
        if not isinstance(base, (list, tuple, dict, np.ndarray)):
            raise CannotEvaluate("subscript")
        return _quietly(operator.getitem, base, _index(node.slice, env))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = evaluate(node.operand, env)
        return _quietly(operator.neg, value) if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _quietly(_BINARY[type(node.op)], evaluate(node.left, env), evaluate(node.right, env))
    if isinstance(node, ast.Call):
        return _call(node, env)
    raise CannotEvaluate(type(node).__name__)


def _quietly(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``f(*args)``, any failure (an inner product that raises, say) reported as ``CannotEvaluate``."""
    try:
        with np.errstate(all="ignore"):
            return f(*args, **kwargs)
    except Exception as e:
        raise CannotEvaluate(str(e)) from e


def _attribute(base: Any, name: str) -> Any:
    """``base.name`` for ``.T``, a module's member, or plain data on an object: nothing that runs code."""
    if isinstance(base, np.ndarray) and name == "T":
        return base.T
    if isinstance(base, types.ModuleType):
        return _quietly(getattr, base, name)
    missing = object()
    value = inspect.getattr_static(base, name, missing)
    if not isinstance(value, _DATA):
        raise CannotEvaluate(name)  # a property, a method, a descriptor: not run
    return value


def _index(node: ast.AST, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Slice):
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if p is None else evaluate(p, env) for p in parts))
    if isinstance(node, ast.Tuple):
        return tuple(_index(e, env) for e in node.elts)
    return evaluate(node, env)


def _call(node: ast.Call, env: Mapping[str, Any]) -> Any:
    """A NumPy function of ``_SAFE_FUNCTIONS``, or an array method of ``_SAFE_METHODS``."""
    kwargs = {k.arg: evaluate(k.value, env) for k in node.keywords if k.arg in ("axis", "keepdims")}
    if len(kwargs) != len(node.keywords):
        raise CannotEvaluate("keywords")
    args = [evaluate(a, env) for a in node.args]
    if isinstance(node.func, ast.Attribute) and node.func.attr in _SAFE_METHODS:
        base = evaluate(node.func.value, env)
        if isinstance(base, np.ndarray):
            return _quietly(getattr(base, node.func.attr), *args, **kwargs)
    f = evaluate(node.func, env)
    if id(f) in _SAFE_FUNCTIONS and _SAFE_FUNCTIONS[id(f)] is f:
        return _quietly(f, *args, **kwargs)
    raise CannotEvaluate("call")


def product_operands(
    node: ast.AST, env: Mapping[str, Any]
) -> tuple[str, tuple[ast.expr, ast.expr], Callable[[Any, Any], Any]] | None:
    """If ``node`` is a product (or a sum that may fail to broadcast): operator, operands, operation."""
    if isinstance(node, ast.BinOp):
        ops = {ast.MatMult: "@", ast.Mult: "*", ast.Add: "+", ast.Sub: "-"}
        if type(node.op) in ops:
            return ops[type(node.op)], (node.left, node.right), _BINARY[type(node.op)]
    if isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Add, ast.Sub)):
        return "+=", (node.target, node.value), _in_place
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _call_product(node, env)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2:
        try:
            f = evaluate(node.func, env)
        except CannotEvaluate:
            return None
        named: dict[int, tuple[str, Callable[[Any, Any], Any]]] = {
            id(np.dot): ("np.dot", np.dot),
            id(np.matmul): ("np.matmul", np.matmul),
            id(np.outer): ("np.outer", np.outer),
        }
        if id(f) in named and named[id(f)][1] is f:
            return named[id(f)][0], (node.args[0], node.args[1]), named[id(f)][1]
        return None
    return None


def _call_product(
    node: ast.Call, env: Mapping[str, Any]
) -> tuple[str, tuple[ast.expr, ast.expr], Callable[[Any, Any], Any]] | None:
    attr = node.func.attr if isinstance(node.func, ast.Attribute) else ""
    funcs: dict[str, Callable[[Any, Any], Any]] = {
        "dot": np.dot,
        "matmul": np.matmul,
        "outer": np.outer,
        "multiply": np.multiply,
    }
    if attr not in funcs or not isinstance(node.func, ast.Attribute):
        return None
    try:
        base = evaluate(node.func.value, env)
    except CannotEvaluate:
        base = None
    if isinstance(base, types.ModuleType) and len(node.args) == 2:
        return f"np.{attr}", (node.args[0], node.args[1]), funcs[attr]
    if attr == "dot" and len(node.args) == 1:
        return ".dot", (node.func.value, node.args[0]), np.dot
    return None


def _in_place(a: Any, b: Any) -> Any:
    """``a += b`` without touching ``a``: an output of ``a``'s shape, as in-place addition requires."""
    if not isinstance(a, np.ndarray):
        return a + b
    return np.add(a, b, out=np.array(a, dtype=np.result_type(a, b)))
