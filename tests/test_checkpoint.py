"""Checkpoints, bit-exact resume, divergence and Ctrl-C: a long training run loses nothing."""

from __future__ import annotations

import functools
import json
import operator
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bptt
import bptt.trainer
from bptt.checkpoint import load_checkpoint, save_checkpoint, stop_on_interrupt
from bptt.cli import main
from bptt.tasks import addition
from bptt.tasks.addition import Diverged, Interrupted, train
from bptt.tasks.addition import training as trainer


def _same_weights(a: bptt.Sequential, b: bptt.Sequential) -> None:
    assert a.params.keys() == b.params.keys()
    for k, v in a.params.items():
        assert np.array_equal(v, b.params[k]), k


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_optimizer_state_round_trips(optimizer: str) -> None:
    """state_dict/load_state_dict carry every buffer and the step count; a copy continues identically."""
    rng = np.random.default_rng(0)
    make = lambda: bptt.Sequential([bptt.RNN(2, 3, rng=1), bptt.Dense(3, 1, rng=2)])  # noqa: E731
    a, b = make(), make()
    cls = {
        "adam": lambda m: bptt.optim.Adam(m, lr=0.1),
        "sgd": lambda m: bptt.optim.SGD(m, 0.1, momentum=0.9),
    }
    opt_a = cls[optimizer](a)
    for _ in range(3):
        for g in a.grads.values():
            g[...] = rng.normal(size=g.shape)
        opt_a.step()
    for k, v in a.params.items():
        b.params[k][...] = v
    opt_b = cls[optimizer](b)
    opt_b.load_state_dict(opt_a.state_dict())
    assert opt_b.steps == 3
    for _ in range(2):
        grads = {k: rng.normal(size=g.shape) for k, g in a.grads.items()}
        for model, opt in ((a, opt_a), (b, opt_b)):
            for k, g in model.grads.items():
                g[...] = grads[k]
            opt.step()
    _same_weights(a, b)


def test_load_state_dict_refuses_a_foreign_state() -> None:
    """Buffers that do not fit the model's parameters are refused by name."""
    model = bptt.Sequential([bptt.Dense(2, 3, rng=0)])
    opt = bptt.optim.Adam(model)
    with pytest.raises(ValueError, match="does not match a parameter"):
        opt.load_state_dict({"0.W/exp_avg": np.zeros((5, 5)), "steps": np.array(1)})
    with pytest.raises(ValueError, match="'steps'"):
        opt.load_state_dict({})


@pytest.mark.parametrize("preset, stop_at, every", [("default", 50, 25), ("classic", 140, 70)])
def test_resume_ends_at_exactly_the_uninterrupted_weights(
    tmp_path: Path, preset: str, stop_at: int, every: int
) -> None:
    """Stop after k steps (a checkpoint), resume, and end bit for bit where one run ends."""
    options = {"steps": 300} if preset == "classic" else {}
    whole, history = train(preset=preset, seed=3, **options)
    ckpt = tmp_path / "run.ckpt.npz"
    with pytest.raises(Diverged):  # stop the first run right after the checkpoint at stop_at

        def halt(step: int, loss: float, h: addition.History) -> None:
            if step == stop_at + 1:
                raise Diverged("stop here", whole, h, step)

        train(preset=preset, seed=3, checkpoint=ckpt, checkpoint_every=every, callback=halt, **options)
    assert load_checkpoint(ckpt).step == stop_at
    resumed, resumed_history = train(preset=preset, seed=3, resume=ckpt, **options)
    _same_weights(whole, resumed)
    assert resumed_history.loss == history.loss
    assert resumed_history.check_step == history.check_step


def test_resume_refuses_other_settings_and_non_checkpoints(tmp_path: Path) -> None:
    """A checkpoint resumes only the run that wrote it; a plain model file is not a checkpoint."""
    ckpt = tmp_path / "c.npz"
    train(seed=1, steps=5, checkpoint=ckpt, checkpoint_every=5)
    with pytest.raises(ValueError, match="was written by a run with"):
        train(seed=2, steps=5, resume=ckpt)
    bptt.save(bptt.Sequential([bptt.Dense(2, 1, rng=0)]), tmp_path / "m.npz")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        train(resume=tmp_path / "m.npz")
    with pytest.raises(ValueError, match="needs a checkpoint path"):
        train(checkpoint_every=5)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_a_nan_batch_stops_training_with_the_last_good_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NaN batch at step 7: Diverged names the step, and the model holds step 6's finite weights."""
    real = addition.make_batch
    calls = {"n": 0}

    def poisoned(n_bits: int, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        calls["n"] += n_bits == 8  # training batches; the held-out set is drawn at 32 bits
        x, y = real(n_bits, batch_size, rng)
        if calls["n"] == 7 and n_bits == 8:
            x[0, 0, 0] = np.nan
        return x, y

    monkeypatch.setattr(trainer, "make_batch", poisoned)
    with pytest.raises(Diverged, match="the loss became nan at step 7") as info:
        train(seed=0)
    assert info.value.step == 6 and info.value.history.steps == 6
    assert all(np.all(np.isfinite(p)) for p in info.value.model.params.values())
    monkeypatch.setattr(trainer, "make_batch", real)
    six, _ = train(seed=0, steps=6)
    _same_weights(six, info.value.model)


def test_an_infinite_gradient_stops_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gradient that overflows is caught before the optimizer applies it."""
    monkeypatch.setattr(bptt.trainer, "clip_grad_norm", lambda model, max_norm: float("inf"))
    with pytest.raises(Diverged, match="gradient norm became inf at step 1"):
        train(seed=0)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_cli_divergence_saves_the_last_good_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bptt train` on a diverging run writes finite weights to --out and exits 1 with one line."""
    real = addition.make_batch
    calls = {"n": 0}

    def poisoned(n_bits: int, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        calls["n"] += n_bits == 8  # training batches; the held-out set is drawn at 32 bits
        x, y = real(n_bits, batch_size, rng)
        if calls["n"] >= 4 and n_bits == 8:
            x[...] = np.inf
        return x, y

    monkeypatch.setattr(trainer, "make_batch", poisoned)
    out = tmp_path / "m.npz"
    assert main(["train", "--quiet", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "step 4" in err and "last good weights (step 3)" in err and "Traceback" not in err
    assert all(np.all(np.isfinite(p)) for p in bptt.load(out).params.values())


def test_checkpoint_file_holds_weights_optimizer_and_rng(tmp_path: Path) -> None:
    """`--checkpoint-every` writes weights (readable by bptt.load), optimizer buffers and RNG state."""
    ckpt = tmp_path / "m.ckpt.npz"
    assert main(["train", "--quiet", "--out", str(tmp_path / "m.npz"), "--checkpoint-every", "25"]) == 0
    state = load_checkpoint(ckpt)
    assert state.step % 25 == 0 and state.step > 0
    assert {"0.W_hh/exp_avg", "0.W_hh/exp_avg_sq", "steps"} <= set(state.optimizer)
    assert state.rng_state["bit_generator"] == "PCG64"
    assert bptt.load(ckpt).params.keys() == state.model.params.keys()


def test_save_checkpoint_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash while writing a checkpoint leaves the previous one intact and no temporary file."""
    model = bptt.Sequential([bptt.Dense(2, 1, rng=0)])
    opt = bptt.optim.Adam(model)
    path = tmp_path / "c.npz"
    rng = np.random.default_rng(0)
    save_checkpoint(path, model, opt, rng, 1, {}, {"task": "t"})
    before = path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, model, opt, rng, 2, {}, {"task": "t"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]


def test_first_interrupt_only_sets_the_flag() -> None:
    """Inside stop_on_interrupt, SIGINT requests a stop instead of raising; afterwards it raises again."""
    with stop_on_interrupt() as flag:
        signal.raise_signal(signal.SIGINT)  # Python runs the handler before the next line
        assert flag.requested
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_interruptible_train_checkpoints_and_raises(tmp_path: Path) -> None:
    """interruptible=True: Ctrl-C stops at the step boundary, checkpoints and raises Interrupted."""
    ckpt = tmp_path / "c.npz"

    def press_ctrl_c(step: int, loss: float, h: addition.History) -> None:
        if step == 10:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted, match="after step 10"):
        train(seed=0, checkpoint=ckpt, interruptible=True, callback=press_ctrl_c)
    assert load_checkpoint(ckpt).step == 10
    whole, _ = train(seed=0)
    resumed, _ = train(seed=0, resume=ckpt)
    _same_weights(whole, resumed)


# --- A tampered checkpoint is refused field by field, never with a traceback -------------------


class _Stop(Exception):
    """Ends a training run right after its checkpoint, without options in its settings."""


@pytest.fixture(scope="module")
def valid_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of `bptt train`'s default run after 5 steps (Adam buffers, history, PCG64)."""
    path = tmp_path_factory.mktemp("ckpt") / "c.npz"

    def stop(step: int, loss: float, history: addition.History) -> None:
        if step == 6:
            raise _Stop

    with pytest.raises(_Stop):
        train(seed=1, checkpoint=path, checkpoint_every=5, callback=stop)
    return path


Change = Callable[[dict[str, Any], dict[str, np.ndarray]], None]


def _set(*keys: Any) -> Change:
    """Set ``meta["checkpoint"][k1][k2]... = value`` (the last argument)."""
    *path, value = keys
    return lambda info, arrays: functools.reduce(operator.getitem, path[:-1], info).__setitem__(
        path[-1], value
    )


def _delete(*path: str) -> Change:
    return lambda info, arrays: functools.reduce(operator.getitem, path[:-1], info).pop(path[-1])


def _put(key: str, value: np.ndarray) -> Change:
    """Store ``value`` as the extra array ``key`` (``opt/...`` or ``history/...``)."""
    return lambda info, arrays: arrays.__setitem__(f"extra/{key}", value)


def _drop(key: str) -> Change:
    return lambda info, arrays: arrays.pop(f"extra/{key}")


def _nan(key: str) -> Change:
    def change(info: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        arrays[f"extra/{key}"] = arrays[f"extra/{key}"].copy()
        arrays[f"extra/{key}"].flat[-1] = np.nan

    return change


TAMPERED: dict[str, tuple[Change, str]] = {
    "step-str": (_set("step", "5"), "the step count must be an int ≥ 0, got '5'"),
    "step-negative": (_set("step", -1), "the step count must be an int ≥ 0, got -1"),
    "step-float": (_set("step", 5.0), "the step count must be an int ≥ 0, got 5.0"),
    "rng-str": (_set("rng", "PCG64"), "the RNG state must be a dict, got 'PCG64'"),
    "rng-missing-key": (_delete("rng", "uinteger"), "the RNG state's keys must be"),
    "rng-other-generator": (
        _set("rng", "bit_generator", "MT19937"),
        "the RNG must be 'PCG64', got 'MT19937'",
    ),
    "rng-state-list": (_set("rng", "state", [1, 2]), "the RNG state must be a dict of 'state' and 'inc'"),
    "rng-state-str": (_set("rng", "state", "state", "12"), "the RNG's state must be an int in [0, 2**128)"),
    "rng-inc-huge": (_set("rng", "state", "inc", 2**130), "the RNG's inc must be an int in [0, 2**128)"),
    "rng-has-uint32": (_set("rng", "has_uint32", 2), "the RNG's has_uint32 must be 0 or 1, got 2"),
    "rng-uinteger": (_set("rng", "uinteger", -1), "the RNG's uinteger must be an int in [0, 2**32)"),
    "settings-list": (_set("settings", []), "the settings must be a dict, got []"),
    "settings-no-hidden": (_delete("settings", "hidden"), "the settings' keys must be"),
    "settings-extra-key": (_set("settings", "lr", 0.1), "the settings' keys must be"),
    "settings-hidden-str": (
        _set("settings", "hidden", "16"),
        "settings['hidden'] must be an int ≥ 1, got '16'",
    ),
    "settings-seed-negative": (_set("settings", "seed", -1), "settings['seed'] must be an int ≥ 0, got -1"),
    "settings-bits-bool": (
        _set("settings", "n_bits", True),
        "settings['n_bits'] must be an int ≥ 1, got True",
    ),
    "settings-options-list": (_set("settings", "options", []), "settings['options'] must be a dict, got []"),
    "settings-task-int": (_set("settings", "task", 5), "settings['task'] must be a string, got 5"),
    "settings-preset-null": (_set("settings", "preset", None), "settings['preset'] must be one of"),
    "settings-preset-unknown": (
        _set("settings", "preset", "nope"),
        "one of ['classic', 'default'], got 'nope'",
    ),
    "opt-nan": (
        _nan("opt/0.W_hh/exp_avg"),
        "optimizer buffer '0.W_hh/exp_avg' must be finite, got NaN or Inf",
    ),
    "opt-shape": (_put("opt/0.W_hh/exp_avg", np.zeros((3, 3))), "must be shaped (16, 16), got shape (3, 3)"),
    "opt-int": (_put("opt/0.W_hh/exp_avg", np.zeros((16, 16), np.int64)), "must be floats, got dtype int64"),
    "opt-unknown-param": (
        _put("opt/7.W/exp_avg", np.zeros(2)),
        "optimizer buffer '7.W/exp_avg' must be a buffer",
    ),
    "opt-one-missing": (_drop("opt/0.W_hh/exp_avg_sq"), "the optimizer buffers must be the same for every"),
    "opt-no-steps": (_drop("opt/steps"), "the optimizer's 'steps' must be an integer ≥ 0, got None"),
    "opt-steps-float": (_put("opt/steps", np.array(5.0)), "the optimizer's 'steps' must be an integer ≥ 0"),
    "opt-steps-2d": (_put("opt/steps", np.zeros((2, 2), np.int64)), "the optimizer's 'steps' must be"),
    "opt-steps-negative": (_put("opt/steps", np.array(-1)), "the optimizer's 'steps' must be an integer ≥ 0"),
    "history-2d": (_put("history/loss", np.zeros((2, 2))), "history 'loss' must be 1-D, got shape (2, 2)"),
    "history-nan": (_nan("history/loss"), "history 'loss' must be finite, got NaN or Inf"),
    "history-text": (_put("history/loss", np.array(["a"])), "history 'loss' must be numbers, got dtype <U1"),
}


def _tamper(src: Path, dst: Path, change: Change) -> Path:
    """``src`` with its checkpoint record and arrays passed through ``change``, stored as bptt stores."""
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    record = json.loads(arrays.pop("__bptt__").tobytes())
    change(record["meta"]["checkpoint"], arrays)
    np.savez(dst, **arrays, __bptt__=np.frombuffer(json.dumps(record).encode(), np.uint8))
    return dst


@pytest.mark.parametrize("variant", sorted(TAMPERED))
def test_a_tampered_checkpoint_is_refused_naming_the_field(
    valid_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], variant: str
) -> None:
    """load_checkpoint, train(resume=) and `bptt train --resume` refuse it with one line naming the field."""
    change, words = TAMPERED[variant]
    path = _tamper(valid_checkpoint, tmp_path / "t.npz", change)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(f"resume: {str(path)!r}: ") and words in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=re.escape(words)):
        train(seed=1, resume=path)
    assert main(["train", "--quiet", "--resume", str(path), "--out", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert not (tmp_path / "m.npz").exists()


def test_the_untampered_checkpoint_loads(valid_checkpoint: Path, tmp_path: Path) -> None:
    """The control: the same rewrite with no change passes every check."""
    state = load_checkpoint(_tamper(valid_checkpoint, tmp_path / "t.npz", lambda info, arrays: None))
    assert state.step == 5 and state.settings["task"] == "addition"


def _one_step(model: bptt.Sequential) -> bptt.optim.Adam:
    opt = bptt.optim.Adam(model)
    for g in model.grads.values():
        g[...] = 0.5
    opt.step()
    return opt


def _poison_weight(model: bptt.Sequential, opt: bptt.optim.Optimizer) -> None:
    model.params["0.W_hh"][0, 0] = np.nan


def _poison_buffer(model: bptt.Sequential, opt: bptt.optim.Optimizer) -> None:
    opt.state["0.W_hh"]["exp_avg"][0, 0] = np.inf


@pytest.mark.parametrize(
    "poison, argument, words",
    [
        (_poison_weight, {}, "save: layer 0 (RNN) array 'W_hh' holds NaN or Inf"),
        (_poison_buffer, {}, "save_checkpoint: optimizer buffer '0.W_hh/exp_avg' must be finite"),
        (
            None,
            {"history": {"loss": np.array([0.5, np.nan])}},
            "save_checkpoint: history 'loss' must be finite",
        ),
        (
            None,
            {"rng": np.random.Generator(np.random.MT19937(0))},
            "save_checkpoint: the RNG must be 'PCG64'",
        ),
        (None, {"settings": ["addition"]}, "save_checkpoint: the settings must be a dict"),
        (None, {"step": -1}, "save_checkpoint: the step count must be an int ≥ 0"),
    ],
    ids=["nan-weight", "inf-buffer", "nan-history", "mt19937", "settings-list", "negative-step"],
)
def test_save_checkpoint_refuses_what_load_would_refuse(
    tmp_path: Path, poison: Callable[..., None] | None, argument: dict[str, Any], words: str
) -> None:
    """Non-finite weights, buffers or history (never 'good' weights), another RNG or bad settings:
    ValueError, and the previous checkpoint stays as it was."""
    model = bptt.Sequential([bptt.RNN(2, 3, rng=0), bptt.Dense(3, 1, rng=1)])
    opt = _one_step(model)
    path = tmp_path / "c.npz"
    good = {"rng": np.random.default_rng(0), "step": 1, "history": {}, "settings": {"task": "t"}}
    save_checkpoint(path, model, opt, **good)
    before = path.read_bytes()
    if poison is not None:
        poison(model, opt)
    with pytest.raises(ValueError, match=f"^{re.escape(words)}"):
        save_checkpoint(path, model, opt, **{**good, **argument})
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]
