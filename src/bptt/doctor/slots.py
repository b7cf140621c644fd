"""Where the learner keeps its weights and its gradients.

A ``Slot`` is the place of one array: an attribute of an object or an entry of a dict. The doctor
reads the array from its slot afresh at every call and writes into it in place (``arr[...] =``),
so a learner that rebinds ``self.W = self.W - lr * dW`` is still reached, and so are the nested
layer objects and closures that share the array.

Found by default on an object: its ndarray attributes and its ``params`` dict, and those of its
attribute objects (and of the objects in its list or tuple attributes) one level down, named
``hidden.W`` and ``layers.0.W``; private (``_x``) attributes are skipped. On a function: the
arrays among the globals it reads and its closure, and the entries of dicts among them. Arrays
that are no weight are left out: gradients beside a weight (``dW``), states and caches by their
names (``h``, ``h0``, ``hs``, ...), arrays that are not float, and arrays of more than 2 dimensions.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "EXTRA_ATTRIBUTES",
    "EXTRA_KEYS",
    "GRADIENT_FORMS",
    "Slot",
    "find_weights",
    "function_weights",
    "given_weights",
    "gradient_names",
]

# How a learner names the gradient of its array ``W``.
GRADIENT_FORMS = ("d{}", "grad_{}", "{}_grad", "d_{}")
# The other gradients: the keys of a returned dict, and the attributes of an object.
EXTRA_KEYS = {
    "x": ("x", "dx", "grad_x", "x_grad", "d_x"),
    "h0": ("h0", "dh0", "grad_h0", "h0_grad", "d_h0"),
    "delta": ("delta", "deltas"),
}
EXTRA_ATTRIBUTES = {role: keys[1:] if role != "delta" else keys for role, keys in EXTRA_KEYS.items()}
# Names of states, caches and data, never weights (as written: ``a`` is a cache, ``A`` may be a weight).
_STATE_WORDS = (
    "h h0 h_0 hs h_prev hprev prev_h h_t ht h_init hidden hiddens state states s s0 st x xs inputs "
    "y ys yhat y_hat y_pred targets target a as z zs o os p ps out outs outputs output cache caches "
    "mask loss losses delta deltas"
)
_STATES = frozenset(_STATE_WORDS.split()) | {key for keys in EXTRA_KEYS.values() for key in keys}


@dataclass(frozen=True)
class Slot:
    """The place of one array: ``owner[key]`` (``item``) or ``getattr(owner, key)``.

    ``home`` is the object beside which its gradient is looked for (``home.dW``,
    ``home.grads['W']``); None for a function's arrays.
    """

    owner: Any
    key: str
    item: bool
    home: Any = None

    def get(self) -> Any:
        """The array in the slot now."""
        return self.owner[self.key] if self.item else getattr(self.owner, self.key)


def _usable(value: Any) -> bool:
    """A float array of 1 or 2 dimensions."""
    return isinstance(value, np.ndarray) and value.ndim in (1, 2) and np.issubdtype(value.dtype, np.floating)


def _arrays(obj: Any, prefix: str) -> Iterator[tuple[str, Slot]]:
    """``obj``'s public ndarray attributes and its ``params`` dict's arrays, named with ``prefix``."""
    for key, value in list(getattr(obj, "__dict__", {}).items()):
        if isinstance(value, np.ndarray) and not key.startswith("_"):
            yield prefix + key, Slot(obj, key, False, obj)
    params = getattr(obj, "params", None)
    if isinstance(params, Mapping):
        for key, value in params.items():
            if isinstance(value, np.ndarray):
                yield prefix + str(key), Slot(params, str(key), True, obj)


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    """``obj``'s attribute objects, and the objects in its list and tuple attributes."""
    for key, value in list(getattr(obj, "__dict__", {}).items()):
        if key.startswith("_"):
            continue
        if isinstance(value, list | tuple):
            yield from ((f"{key}.{i}", item) for i, item in enumerate(value) if _is_object(item))
        elif _is_object(value):
            yield key, value


def _is_object(value: Any) -> bool:
    """An instance with attributes of its own (not an array, a class, a module or a function)."""
    plain = (np.ndarray, type, types.ModuleType, types.FunctionType, types.MethodType, Mapping)
    return hasattr(value, "__dict__") and not isinstance(value, plain)


def _weights_only(found: Iterator[tuple[str, Slot]], keep: Collection[str] = ()) -> dict[str, Slot]:
    """The slots that can be weights: float, 1-D or 2-D, not a gradient or a state by its name
    (unless named in ``keep``: the learner's own word), each array once (under its first name)."""
    slots: dict[str, Slot] = {}
    seen: set[int] = set()
    for name, slot in found:
        value = slot.get()
        if name in keep and not _usable(value):
            raise ValueError(f"doctor: names has {name!r}, {_unusable(value)}")
        if id(value) in seen or not _usable(value):
            continue
        seen.add(id(value))
        slots.setdefault(name, slot)
    leaves = {name.rsplit(".", 1)[-1] for name in slots}
    gradients = {form.format(leaf) for leaf in leaves for form in GRADIENT_FORMS}
    return {
        name: slot
        for name, slot in slots.items()
        if name in keep or ((leaf := name.rsplit(".", 1)[-1]) not in gradients and leaf not in _STATES)
    }


def _unusable(value: Any) -> str:
    """Why an array cannot be a weight, e.g. ``"which has 3 dimensions (2, 3, 4); expected ..."``."""
    if value.ndim not in (1, 2):
        what = f"which has {value.ndim} dimensions {value.shape}"
    else:
        what = f"whose dtype is {value.dtype}"
    return f"{what}; a weight is a float matrix (2-D) or vector (1-D)"


def find_weights(learner: Any, keep: Collection[str] = ()) -> dict[str, Slot]:
    """The arrays of an object that can be its weights, name -> slot (the module docstring); the
    names in ``keep`` are kept whatever their names say."""
    found = list(_arrays(learner, ""))
    for name, child in _children(learner):
        found.extend(_arrays(child, f"{name}."))
    return _weights_only(iter(found), keep)


def function_weights(function: Callable[..., Any], keep: Collection[str] = ()) -> dict[str, Slot]:
    """The arrays that a function reads from its globals (in its own code or in functions and
    comprehensions nested in it) and from its closure, and the arrays in dicts among them."""
    code = getattr(function, "__code__", None)
    if code is None:
        return {}
    space = getattr(function, "__globals__", {})
    places = [(name, Slot(space, name, True)) for name in _global_names(code) if name in space]
    cells = getattr(function, "__closure__", None) or ()
    places += [
        (name, Slot(cell, "cell_contents", False)) for name, cell in zip(code.co_freevars, cells, strict=True)
    ]
    found: list[tuple[str, Slot]] = []
    for name, slot in places:
        try:
            value = slot.get()
        except ValueError:  # an empty closure cell
            continue
        if isinstance(value, np.ndarray):
            found.append((name, slot))
        elif isinstance(value, Mapping):
            found.extend(
                (str(k), Slot(value, str(k), True)) for k, v in value.items() if isinstance(v, np.ndarray)
            )
    return _weights_only(iter(found), keep)


def _global_names(code: types.CodeType) -> list[str]:
    """The names ``code`` and the code nested in it look up (globals, and attribute names)."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += [n for n in _global_names(const) if n not in names]
    return names


def given_weights(weights: Mapping[str, Any], learner: Any) -> dict[str, Slot]:
    """The ``weights=`` dict as slots; each must be a float array of 1 or 2 dimensions.

    A dotted name (``hidden.W``) whose path leads to an object of the learner makes that object
    the home of its gradient; otherwise the learner itself is.
    """
    slots = {}
    for name, value in weights.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(
                f"doctor: weights[{name!r}] is a {type(value).__name__}; expected the learner's own "
                "NumPy array (the doctor writes into it in place)"
            )
        if not _usable(value):
            raise ValueError(f"doctor: weights[{name!r}] is an array {_unusable(value)}")
        slots[str(name)] = Slot(weights, name, True, _home(learner, str(name)))
    return slots


def _home(learner: Any, name: str) -> Any:
    """The object at ``name``'s dotted path within ``learner`` (``hidden`` for ``hidden.W``), or
    ``learner``; None for a function."""
    if isinstance(learner, types.FunctionType):
        return None
    home = learner
    for part in name.split(".")[:-1]:
        nxt = (
            home[int(part)]
            if isinstance(home, list | tuple) and part.isdigit()
            else getattr(home, part, None)
        )
        if nxt is None:
            return learner
        home = nxt
    return home


def gradient_names(name: str) -> tuple[str, ...]:
    """The names a learner may give the gradient of its array ``name``, in the order tried:
    ``W`` itself (in a dict of gradients), ``dW``, ``grad_W``, ``W_grad``, ``d_W`` (for
    ``hidden.W`` also ``hidden.dW``, ...)."""
    *path, leaf = name.split(".")
    prefix = "".join(f"{p}." for p in path)
    forms = (prefix + form.format(leaf) for form in GRADIENT_FORMS)
    return (name, *forms, *(form.format(name) for form in GRADIENT_FORMS if path))
