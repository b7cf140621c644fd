"""One run of the learner's code: write the weights, call it, collect and convert its gradients.

``Driver.run`` is ``Probe.run``; ``adapter.probe`` builds the driver once it knows the learner's
arrays, their roles and its conventions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._types import Array
from .layouts import (
    data_to_learner,
    series_from_learner,
    state_from_learner,
    weight_grad_from_learner,
    weight_to_learner,
)
from .slots import EXTRA_ATTRIBUTES, EXTRA_KEYS, GRADIENT_FORMS, Slot, gradient_names

__all__ = ["Driver"]

Shape = tuple[int, ...]
Found = dict[str, tuple[str, Any]]  # role -> (the learner's name for it, its value)


@dataclass
class Driver:
    """The learner's code with everything known to call it.

    Attributes
    ----------
    slots : dict[str, Slot]
        Weight role -> where the learner keeps that array.
    names : dict[str, str]
        Role -> the learner's name; the other gradients' names join as they are found.
    shapes : dict[str, tuple of int]
        Weight role -> shape in the reference convention (``W_ih (I, H)``, ..., ``b_o (O,)``).
    layout, data, steps : str
        Row or column vectors; the data layout (``layouts.DATA``); ``Spec.steps``.
    call : Callable
        ``call(x, y)`` with data in the learner's layout: runs forward and backward, or ``f``.
    gradients : Callable, optional
        The ``gradients=`` callable.
    learner : object or None
        The object (to find ``dx`` and the like on it); None for a function.
    returns_dict : bool
        Whether the call must return the gradients as a dict (a function without ``gradients=``).
    """

    slots: dict[str, Slot]
    names: dict[str, str]
    shapes: dict[str, Shape]
    layout: str
    data: str
    steps: str
    call: Callable[[Any, Any], Any]
    gradients: Callable[[], Mapping[str, Any]] | None
    learner: Any
    returns_dict: bool

    def run(self, weights: Mapping[str, Array], x: Array, y: Array) -> dict[str, Array]:
        """Write ``weights`` (role -> reference shape) into the learner's arrays, run it on ``x``
        ``(T, B, I)`` and ``y`` ``(T, B, O)`` (or ``(B, O)``), and return copies of its gradients
        by role in the reference convention. The learner's exceptions propagate unchanged."""
        T, B = self._check(weights, x, y)
        self._write(weights)
        result = self.call(data_to_learner(x, self.data), data_to_learner(y, self.data))
        return self._convert(self._collect(result), T, B)

    def _check(self, weights: Mapping[str, Array], x: Array, y: Array) -> tuple[int, int]:
        """``(T, B)``, once the weights, ``x`` and ``y`` have the shapes the learner needs."""
        for role, shape in self.shapes.items():
            if role not in weights or np.shape(weights[role]) != shape:
                got = np.shape(weights[role]) if role in weights else "nothing"
                raise ValueError(f"doctor: run needs {role} {shape}; got {got}")
        I, O = self.shapes["W_ih"][0], self.shapes["W_ho"][1]
        if np.ndim(x) != 3 or np.shape(x)[2] != I:
            raise ValueError(f"doctor: run needs x (T, B, I) with I = {I}; got {np.shape(x)}")
        T, B = np.shape(x)[:2]
        if B != 1 and self.data == "sequence":
            raise ValueError(
                f"doctor: the learner takes one sequence (data='sequence'), so B must be 1; got B = {B}"
            )
        want = (T, B, O) if self.steps == "every" else (B, O)
        if np.shape(y) != want:
            raise ValueError(f"doctor: run needs y {want} (steps={self.steps!r}); got {np.shape(y)}")
        return T, B

    def _write(self, weights: Mapping[str, Array]) -> None:
        """Each weight into the learner's own array, in place, in the learner's layout."""
        for role, slot in self.slots.items():
            own = slot.get()
            value = np.asarray(weights[role])
            if not isinstance(own, np.ndarray) or own.size != value.size:
                raise ValueError(
                    f"doctor: the learner's {self.names[role]} is now {_what(own)}; it was a "
                    f"{role} of {value.size} entries"
                )
            own[...] = weight_to_learner(role, value, own.shape, self.layout)

    def _collect(self, result: Any) -> Found:
        """The gradients the learner gives, by role, as it gives them (copied)."""
        source: Any = None
        if self.gradients is not None:
            source = self.gradients()
            if not isinstance(source, Mapping):
                raise ValueError(
                    f"doctor: gradients() returned {_what(source)}; expected a dict name -> gradient"
                )
        elif isinstance(result, Mapping):
            source = result
        elif self.returns_dict:
            raise ValueError(
                f"doctor: the function returned {_what(result)}; expected a dict name -> gradient, "
                "e.g. {'dU': dU, 'dW': dW, 'dV': dV}, or give gradients="
            )
        found = self._from_dict(source) if source is not None else self._from_attributes()
        return {role: (label, _copy(value)) for role, (label, value) in found.items()}

    def _from_dict(self, source: Mapping[str, Any]) -> Found:
        """From a dict of gradients: each weight's by its name (or ``dW``, ``grad_W``, ..., or its
        role), and ``x``/``dx``, ``h0``/``dh0``, ``delta``/``deltas``."""
        own = set(self.names[role] for role in self.slots)
        wanted = {
            role: gradient_names(self.names[role]) + ((role,) if role not in own else ())
            for role in self.slots
        }
        wanted.update(EXTRA_KEYS)
        found: Found = {}
        for role, keys in wanted.items():
            key = next((k for k in keys if source.get(k) is not None), None)
            if key is not None:
                found[role] = (key, source[key])
        return found

    def _from_attributes(self) -> Found:
        """From attributes and ``grads`` dicts beside each weight, and ``dx``, ``dh0``, ``delta``
        on the learner or beside ``W_ih`` (for ``x``) or ``W_hh`` (for ``h0`` and ``delta``)."""
        found: Found = {}
        for role, slot in self.slots.items():
            *path, leaf = self.names[role].split(".")
            forms = tuple(form.format(leaf) for form in GRADIENT_FORMS)
            hit = _look(slot.home, _prefix(path), forms, (leaf, *forms))
            if hit is not None:
                found[role] = hit
        beside = {"x": "W_ih", "h0": "W_hh", "delta": "W_hh"}
        for role, weight in beside.items():
            homes = [
                (self.learner, ""),
                (self.slots[weight].home, _prefix(self.names[weight].split(".")[:-1])),
            ]
            for home, prefix in homes:
                hit = _look(home, prefix, EXTRA_ATTRIBUTES[role], EXTRA_KEYS[role])
                if hit is not None:
                    found[role] = hit
                    break
        return found

    def _convert(self, found: Found, T: int, B: int) -> dict[str, Array]:
        """Each gradient in the reference convention (a shape the learner's convention does not
        give it: unchanged); the other gradients' names join ``names``."""
        I, H = self.shapes["W_ih"][0], self.shapes["W_hh"][0]
        out: dict[str, Any] = {}
        for role, (label, g) in found.items():
            if role in self.shapes:
                out[role] = weight_grad_from_learner(role, g, self.shapes[role], self.layout)
                continue
            self.names[role] = label
            if role == "h0":
                out[role] = state_from_learner(g, layout=self.layout, B=B, H=H)
            else:
                F = I if role == "x" else H
                out[role] = series_from_learner(
                    g, what=role, layout=self.layout, data=self.data, T=T, B=B, F=F
                )
        return out


def _prefix(path: list[str]) -> str:
    return "".join(f"{p}." for p in path)


def _look(
    home: Any, prefix: str, attributes: tuple[str, ...], keys: tuple[str, ...]
) -> tuple[str, Any] | None:
    """The first of ``home``'s ``attributes``, then of its ``grads`` dict's ``keys``, that is set:
    ``(its name, its value)``."""
    if home is None:
        return None
    for attribute in attributes:
        value = getattr(home, attribute, None)
        if value is not None and not callable(value):
            return prefix + attribute, value
    grads = getattr(home, "grads", None)
    if isinstance(grads, Mapping):
        for key in keys:
            if grads.get(key) is not None:
                return f"{prefix}grads[{key!r}]", grads[key]
    return None


def _copy(value: Any) -> Any:
    """A copy the learner cannot change: arrays copied, a list of steps as a list of copies."""
    if isinstance(value, list | tuple):
        return [np.array(step) for step in value]
    try:
        return np.array(value)
    except (TypeError, ValueError):  # not numbers: the diagnosis reports what it is
        return value


def _what(value: Any) -> str:
    """``"an array (2, 3)"``, ``"a tuple"``, ``"None"``."""
    if isinstance(value, np.ndarray):
        return f"an array {value.shape}"
    return "None" if value is None else f"a {type(value).__name__}"
