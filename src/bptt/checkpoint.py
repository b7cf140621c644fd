"""Training checkpoints: weights, optimizer state, RNG state and history in one model file.

A checkpoint is an ordinary ``bptt`` model file (so ``bptt.load`` reads its weights) whose
``meta["checkpoint"]`` holds the step, the RNG state and the run's settings, and whose extra
arrays hold the optimizer's buffers (``opt/...``) and the history. Resuming from it continues
bit for bit where the run stopped. Writes are atomic (see ``bptt.io.save``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._files import short_repr
from ._types import Array
from .io import read, save
from .layers import Layer, Sequential
from .optim import Optimizer
from .stopping import StopFlag, stop_on_interrupt  # re-exported: they lived here first

__all__ = [
    "Checkpoint",
    "Checkpoints",
    "StopFlag",
    "load_checkpoint",
    "register_settings",
    "resume_from",
    "save_checkpoint",
    "stop_on_interrupt",
]


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns; every field has been checked (see ``load_checkpoint``)."""

    model: Sequential
    step: int
    optimizer: dict[str, Array]
    rng_state: dict[str, Any]
    history: dict[str, Array]
    settings: dict[str, Any]


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Layer,
    optimizer: Optimizer,
    rng: np.random.Generator,
    step: int,
    history: dict[str, Array],
    settings: dict[str, Any],
) -> None:
    """Write everything needed to resume after ``step`` completed steps, atomically.

    Refuses with ``ValueError``, writing nothing, what ``load_checkpoint`` would refuse: NaN or
    Inf in the weights, the optimizer's buffers or the history, an RNG other than PCG64
    (``np.random.default_rng``), or settings of the wrong shape.
    """
    state = optimizer.state_dict()
    rng_state = rng.bit_generator.state
    _check_fields("save_checkpoint", model.params, step, rng_state, settings, state, history)
    extra = {f"opt/{k}": v for k, v in state.items()}
    extra.update({f"history/{k}": v for k, v in history.items()})
    meta = {"checkpoint": {"step": step, "rng": rng_state, "settings": settings}}
    save(model, path, meta=meta, extra=extra)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint, checking every field before anything uses it.

    A file that is not a checkpoint, or one with any field of the wrong type, shape or value,
    raises ``ValueError`` naming the field: the step (an int ≥ 0); the RNG state (numpy's
    PCG64 ``bit_generator.state``, proven by setting it on a scratch generator); the settings
    (a dict with a string ``task``; for ``"addition"`` exactly the keys and types
    ``tasks.addition.train`` writes); the optimizer buffers (finite floats shaped like the
    model's parameters, the same buffer names for every parameter, an integer ``steps`` ≥ 0);
    and the history (1-D finite numbers).
    """
    model, meta, extra = read(path)
    where = f"resume: {os.fspath(path)!r}"
    info = meta.get("checkpoint")
    if not isinstance(info, dict) or not {"step", "rng", "settings"} <= set(info):
        raise ValueError(f"{where} is a model file but not a training checkpoint")
    optimizer = {k.removeprefix("opt/"): v for k, v in extra.items() if k.startswith("opt/")}
    history = {k.removeprefix("history/"): v for k, v in extra.items() if k.startswith("history/")}
    step, rng_state, settings = info["step"], info["rng"], info["settings"]
    _check_fields(where, model.params, step, rng_state, settings, optimizer, history)
    return Checkpoint(model, step, optimizer, rng_state, history, settings)


def resume_from(
    path: str | os.PathLike[str], settings: dict[str, Any], rng: np.random.Generator
) -> Checkpoint:
    """Load the checkpoint at ``path`` to continue the run with ``settings``; ``rng`` takes its state.

    A checkpoint written with other settings is refused with ``ValueError``: resuming it would
    not reach the weights either run would.
    """
    state = load_checkpoint(path)
    if state.settings != settings:
        raise ValueError(
            f"train: {os.fspath(path)!r} was written by a run with {state.settings}, not {settings}"
        )
    rng.bit_generator.state = state.rng_state
    return state


@dataclass(frozen=True)
class Checkpoints:
    """Where ``trainer.fit`` writes checkpoints: every ``every`` steps (``None``: only on a stop).

    ``rng`` is the generator the run draws its batches from and ``settings`` what ``resume_from``
    compares; both go into every checkpoint.
    """

    path: str | os.PathLike[str]
    rng: np.random.Generator
    settings: dict[str, Any]
    every: int | None = None

    def due(self, step: int) -> bool:
        """Whether a checkpoint is due after ``step`` on the ``every`` schedule."""
        return self.every is not None and step % self.every == 0

    def save(self, model: Layer, optimizer: Optimizer, step: int, history: dict[str, Array]) -> None:
        """Write the checkpoint for ``step`` completed steps (see ``save_checkpoint``)."""
        save_checkpoint(self.path, model, optimizer, self.rng, step, history, self.settings)


# Each task's ``settings`` schema, registered by the task itself: key -> (what it must be, a test).
SettingsSchema = dict[str, tuple[str, Callable[[Any], bool]]]
_SETTINGS: dict[str, SettingsSchema] = {}
_PCG64_KEYS = {"bit_generator", "state", "has_uint32", "uinteger"}


def register_settings(task: str, schema: SettingsSchema) -> None:
    """Say what a ``task``'s checkpoint ``settings`` hold, so that loading one checks every key.

    A task's training module calls this when it is imported; the settings of a task with no
    schema are checked only as a dict with a ``task`` name (its trainer compares them on resume).
    """
    _SETTINGS[task] = schema


def _need(ok: bool, where: str, field: str, expected: str, value: Any = None, *, got: str = "") -> None:
    """Refuse ``field`` unless ``ok``, naming what was expected and what was found (``got`` or
    ``value``)."""
    if not ok:
        raise ValueError(f"{where}: {field} must be {expected}, got {got or short_repr(value)}")


def _uint(value: Any, bits: int) -> bool:
    return type(value) is int and 0 <= value < 2**bits


def _check_fields(
    where: str,
    params: dict[str, Array],
    step: Any,
    rng_state: Any,
    settings: Any,
    optimizer: dict[str, Array],
    history: dict[str, Array],
) -> None:
    """Refuse, naming the field, anything in a checkpoint that resuming could trip over."""
    _need(type(step) is int and step >= 0, where, "the step count", "an int ≥ 0", step)
    _check_rng(where, rng_state)
    _check_settings(where, settings)
    _check_optimizer(where, params, optimizer)
    for name, a in history.items():
        _check_array(where, f"history {name!r}", a, "iuf")
        _need(a.ndim == 1, where, f"history {name!r}", "1-D", got=f"shape {a.shape}")


def _check_array(where: str, field: str, a: Array, kinds: str) -> None:
    """Finite numbers of one of the dtype ``kinds``."""
    _need(
        a.dtype.kind in kinds, where, field, "numbers" if len(kinds) > 1 else "floats", got=f"dtype {a.dtype}"
    )
    _need(bool(np.all(np.isfinite(a))), where, field, "finite", got="NaN or Inf")


def _check_rng(where: str, state: Any) -> None:
    """numpy's PCG64 ``bit_generator.state``, key by key, then proven on a scratch generator."""
    _need(isinstance(state, dict), where, "the RNG state", "a dict", state)
    _need(state.get("bit_generator") == "PCG64", where, "the RNG", "'PCG64'", state.get("bit_generator"))
    _need(set(state) == _PCG64_KEYS, where, "the RNG state's keys", str(sorted(_PCG64_KEYS)), sorted(state))
    inner = state["state"]
    expected = "a dict of 'state' and 'inc'"
    _need(isinstance(inner, dict) and set(inner) == {"state", "inc"}, where, "the RNG state", expected, inner)
    for key in ("state", "inc"):
        _need(_uint(inner[key], 128), where, f"the RNG's {key}", "an int in [0, 2**128)", inner[key])
    has = state["has_uint32"]
    _need(type(has) is int and has in (0, 1), where, "the RNG's has_uint32", "0 or 1", has)
    _need(
        _uint(state["uinteger"], 32), where, "the RNG's uinteger", "an int in [0, 2**32)", state["uinteger"]
    )
    try:
        np.random.PCG64(0).state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise ValueError(f"{where}: numpy refuses the RNG state ({e})") from None


def _check_settings(where: str, settings: Any) -> None:
    _need(isinstance(settings, dict), where, "the settings", "a dict", settings)
    task = settings.get("task")
    _need(isinstance(task, str), where, "settings['task']", "a string", task)
    schema = _SETTINGS.get(task, {})
    if not schema:
        return  # a task without a schema: its trainer compares the settings when it resumes
    keys = set(schema)
    _need(set(settings) == keys, where, "the settings' keys", str(sorted(keys)), sorted(settings))
    for key, (expected, test) in schema.items():
        _need(test(settings[key]), where, f"settings[{key!r}]", expected, settings[key])


def _check_optimizer(where: str, params: dict[str, Array], state: dict[str, Array]) -> None:
    """Buffers as ``Optimizer.state_dict`` writes them: ``"{param}/{buffer}"`` and ``"steps"``."""
    steps = state.get("steps")
    ok = steps is not None and steps.shape == () and steps.dtype.kind in "iu" and int(steps) >= 0
    _need(ok, where, "the optimizer's 'steps'", "an integer ≥ 0", steps)
    names: dict[str, set[str]] = {p: set() for p in params}
    for key, value in state.items():
        if key == "steps":
            continue
        param, _, buffer = key.rpartition("/")
        field = f"optimizer buffer {key!r}"
        _need(param in params, where, field, f"a buffer of one of {sorted(params)}", key)
        shape = params[param].shape
        _need(value.shape == shape, where, field, f"shaped {shape}", got=f"shape {value.shape}")
        _check_array(where, field, value, "f")
        names[param].add(buffer)
    kinds = {frozenset(v) for v in names.values()}  # every step updates every parameter's buffers
    _need(len(kinds) <= 1, where, "the optimizer buffers", "the same for every parameter", names)
