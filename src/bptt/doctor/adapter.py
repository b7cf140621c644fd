"""The learner's own object or function, in whatever convention it writes, as a ``probe.Probe``.

    p = probe(net, Spec(activation="sigmoid"), layout="column", data="column-steps")
    grads = p.run({"W_ih": ..., "W_hh": ..., "W_ho": ...}, x, y)   # by role, reference convention

``slots`` finds the learner's arrays, ``naming`` says which is which and whether it writes row or
column vectors, ``layouts`` converts weights, data and gradients. This module calls the learner:
``forward(x)`` then ``backward(y)`` or ``backward(x, y)`` (by how many parameters backward takes;
``forward(x, y)`` and ``backward()`` also work), or ``f(x, y)``; and it collects the gradients:
the dict that backward or ``f`` returns, or the ``gradients`` callable's, or, beside each weight
``W``, an attribute ``dW``/``grad_W``/``W_grad``/``d_W`` or a ``grads`` dict entry; and ``dx``,
``dh0``, ``delta`` the same way (``slots.EXTRA_KEYS``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._types import Array
from .layouts import DATA, LAYOUTS, MATRICES, describe, learner_shape
from .naming import assign
from .probe import Probe
from .running import Driver
from .slots import Slot, find_weights, function_weights, given_weights
from .spec import Spec

__all__ = ["probe"]

Shape = tuple[int, ...]


def probe(
    learner: Any,
    spec: Spec,
    *,
    weights: Mapping[str, Array] | None = None,
    gradients: Callable[[], Mapping[str, Array]] | None = None,
    names: Mapping[str, str] | None = None,
    layout: str | None = None,
    data: str = "sequence",
) -> Probe:
    """The learner as the doctor drives it; see ``bptt.doctor.check`` for the parameters.

    Raises
    ------
    ValueError
        A learner that is neither an object with ``forward``/``backward`` nor a function, no
        weights found, a bad ``names``/``layout``/``data``, weights whose roles cannot be told
        apart (the message lists the candidates and how to name them), a read-only weight.
    """
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"doctor: layout must be 'row' or 'column' (or None: inferred); got {layout!r}")
    if data not in DATA:
        raise ValueError(f"doctor: data must be one of {', '.join(DATA)}; got {data!r}")
    function = _is_function(learner)
    call, words = _caller(learner, function)
    slots = _slots(learner, weights, function, names or {})
    shapes = {name: tuple(slot.get().shape) for name, slot in slots.items()}
    layout, roles = assign(shapes, names, layout)
    for name in roles.values():
        if not slots[name].get().flags.writeable:
            raise ValueError(f"doctor: the learner's {name} is read-only; the doctor writes weights in place")
    reference = _reference_shapes(roles, shapes, layout)
    driver = Driver(
        slots={role: slots[name] for role, name in roles.items()},
        names=dict(roles),
        shapes=reference,
        layout=layout,
        data=data,
        steps=spec.steps,
        call=call,
        gradients=gradients,
        learner=None if function else learner,
        returns_dict=function and gradients is None,
    )
    biases: dict[str, Shape] = {role: shapes[roles[role]] for role in ("b", "b_o") if role in roles}

    def shape_for_learner(role: str, shape: Shape) -> Shape:
        return learner_shape(role, tuple(shape), layout=layout, data=data, biases=biases)

    return Probe(
        shapes=reference,
        names=driver.names,
        batched=data != "sequence",
        run=driver.run,
        learner_shape=shape_for_learner,
        convention=f"{describe(layout, data)}; {words}",
        files=_files(learner, slots.values(), gradients),
    )


def _is_function(learner: Any) -> bool:
    """True for a function ``f(x, y)``, False for an object with ``forward`` and ``backward``."""
    if isinstance(learner, type):
        raise ValueError(f"doctor: got the class {learner.__name__}; pass an instance, {learner.__name__}()")
    has = [callable(getattr(learner, m, None)) for m in ("forward", "backward")]
    if all(has):
        return False
    if callable(learner) and not any(has):
        return True
    kind = type(learner).__name__
    missing = "backward" if has[0] else "forward"
    raise ValueError(
        f"doctor: the learner ({kind}) has no {missing}; expected an object with forward(x) and "
        "backward(y) (or backward(x, y)), or a function f(x, y) -> gradients"
    )


def _slots(
    learner: Any, weights: Mapping[str, Array] | None, function: bool, names: Mapping[str, str]
) -> dict[str, Slot]:
    """The learner's arrays that can be weights, by its names."""
    if weights is not None:
        slots = given_weights(weights, learner)
    elif function:
        slots = function_weights(learner, keep=names)
    else:
        slots = find_weights(learner, keep=names)
    if not slots:
        where = (
            "among the globals and the closure it reads"
            if function
            else "among its attributes, its layer objects' attributes or a params dict"
        )
        raise ValueError(
            f"doctor: found no weights for {_label(learner)}: no float NumPy arrays {where}; give "
            "weights={'U': U, ...}"
        )
    return slots


def _label(learner: Any) -> str:
    return getattr(learner, "__name__", None) or type(learner).__name__


def _reference_shapes(roles: Mapping[str, str], shapes: Mapping[str, Shape], layout: str) -> dict[str, Shape]:
    """Each role's shape in the reference convention: ``W_ih (I, H)`` ... ``b_o (O,)``."""
    out: dict[str, Shape] = {}
    for role, name in roles.items():
        shape = shapes[name]
        if role in MATRICES:
            out[role] = shape[::-1] if layout == "column" else shape  # (H, I) -> (I, H)
        else:
            out[role] = (int(np.prod(shape)),)  # (H, 1) -> (H,)
    return {role: out[role] for role in ("W_ih", "W_hh", "b", "W_ho", "b_o") if role in out}


def _arity(function: Any, fallback: int) -> int:
    """How many of ``(x, y)`` to pass: the required positional parameters (at most 2); 1 when
    none is required but some may be given; 0 when none may."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): the usual call
        return fallback
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if required:
        return min(len(required), 2)
    return 1 if positional or any(p.kind == p.VAR_POSITIONAL for p in parameters) else 0


def _caller(learner: Any, function: bool) -> tuple[Callable[[Any, Any], Any], str]:
    """``call(x, y) -> what the learner returned``, and its words for the report."""
    if function:
        if _arity(learner, 2) < 2:
            raise ValueError(
                f"doctor: the function {_label(learner)} must take (x, y) and return its gradients"
            )
        return (lambda x, y: learner(x, y)), f"a function {_label(learner)}(x, y)"
    forward_args = 2 if _arity(learner.forward, 1) == 2 else 1
    backward_args = _arity(learner.backward, 1)

    def call(x: Any, y: Any) -> Any:
        learner.forward(*(x, y)[:forward_args])
        return learner.backward(*(x, y)[2 - backward_args :])

    forward = "forward(x, y)" if forward_args == 2 else "forward(x)"
    backward = {0: "backward()", 1: "backward(y)", 2: "backward(x, y)"}[backward_args]
    return call, f"{forward} then {backward}"


def _files(learner: Any, slots: Any, gradients: Any) -> tuple[str, ...]:
    """The files of the learner's code: its function's or class's, its layer objects' classes',
    the ``gradients`` callable's; never bptt's own (a learner built of bptt layers)."""
    things = [learner if _is_code(learner) else type(learner)]
    things += [type(slot.home) for slot in slots if slot.home is not None]
    things += [gradients] if gradients is not None else []
    ours = Path(__file__).resolve().parents[1]
    files: list[str] = []
    for thing in things:
        try:
            file = inspect.getsourcefile(getattr(thing, "func", thing))  # a functools.partial's function
        except TypeError:  # a builtin
            continue
        if file is not None and file not in files and ours not in Path(file).resolve().parents:
            files.append(file)
    return tuple(files)


def _is_code(thing: Any) -> bool:
    return inspect.isfunction(thing) or inspect.ismethod(thing) or hasattr(thing, "func")
