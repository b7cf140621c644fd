"""Training checkpoints: weights, optimizer state, RNG state and history in one model file.

A checkpoint is an ordinary ``bptt`` model file (so ``bptt.load`` reads its weights) whose
``meta["checkpoint"]`` holds the step, the RNG state and the run's settings, and whose extra
arrays hold the optimizer's buffers (``opt/...``) and the history. Resuming from it continues
bit for bit where the run stopped. Writes are atomic (see ``bptt.io.save``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._types import Array
from .io import read, save
from .layers import Layer, Sequential
from .optim import Optimizer

__all__ = ["Checkpoint", "StopFlag", "load_checkpoint", "save_checkpoint", "stop_on_interrupt"]


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns."""

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
    """Write everything needed to resume after ``step`` completed steps, atomically."""
    extra = {f"opt/{k}": v for k, v in optimizer.state_dict().items()}
    extra.update({f"history/{k}": v for k, v in history.items()})
    meta = {"checkpoint": {"step": step, "rng": rng.bit_generator.state, "settings": settings}}
    save(model, path, meta=meta, extra=extra)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint; a model file that is not one raises ``ValueError`` saying so."""
    model, meta, extra = read(path)
    info = meta.get("checkpoint")
    if not isinstance(info, dict) or not {"step", "rng", "settings"} <= set(info):
        raise ValueError(f"resume: {os.fspath(path)!r} is a model file but not a training checkpoint")
    step = info["step"]
    if type(step) is not int or step < 0:
        raise ValueError(f"resume: {os.fspath(path)!r} has a corrupt step count {step!r}")
    return Checkpoint(
        model=model,
        step=step,
        optimizer={k.removeprefix("opt/"): v for k, v in extra.items() if k.startswith("opt/")},
        rng_state=info["rng"],
        history={k.removeprefix("history/"): v for k, v in extra.items() if k.startswith("history/")},
        settings=info["settings"],
    )


class StopFlag:
    """Set by the first Ctrl-C while ``stop_on_interrupt`` is active; training stops at the next step."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def stop_on_interrupt() -> Iterator[StopFlag]:
    """Turn the first SIGINT into a request to stop cleanly at a step boundary.

    A second Ctrl-C interrupts at once, as usual. Outside the main thread (where Python does not
    allow signal handlers) the flag is never set and Ctrl-C behaves as usual.
    """
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        flag.requested = True
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
