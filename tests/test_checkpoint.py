"""Checkpoints, bit-exact resume, divergence and Ctrl-C: a long training run loses nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bptt
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
    real = bptt.optim.clip_grad_norm
    monkeypatch.setattr(trainer, "clip_grad_norm", lambda model, max_norm: float("inf"))
    with pytest.raises(Diverged, match="gradient norm became inf at step 1"):
        train(seed=0)
    monkeypatch.setattr(trainer, "clip_grad_norm", real)


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


def start_training(argv: list[str], cwd: Path) -> tuple[subprocess.Popen[bytes], bytes]:
    """Start ``bptt`` and return once its progress bar shows a finished step, with stderr so far.

    The first step runs inside the interrupt handler, so a signal sent after this lands there:
    the child's own output is the readiness signal, never a fixed sleep.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "bptt.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd
    )
    assert proc.stderr is not None
    seen = b""
    while not re.search(rb"\b[1-9]\d*/\d+ \[", seen):
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, f"bptt ended before its first step: {seen.decode(errors='replace')}"
        seen += chunk
    return proc, seen


def test_ctrl_c_during_bptt_train_saves_a_checkpoint_and_exits_130(tmp_path: Path) -> None:
    """A real SIGINT to `bptt train --preset classic`: exit 130, no traceback; --resume finishes the run."""
    out = tmp_path / "m.npz"
    proc, seen = start_training(["train", "--preset", "classic", "--out", str(out)], tmp_path)
    proc.send_signal(signal.SIGINT)
    stdout, rest = proc.communicate(timeout=120)
    stderr = (seen + rest).decode()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stdout.decode() + stderr
    ckpt = tmp_path / "m.ckpt.npz"
    assert f"--resume {ckpt}" in stderr
    assert main(["train", "--quiet", "--resume", str(ckpt), "--out", str(out)]) == 0
    whole, _ = train(preset="classic", seed=0)
    _same_weights(whole, bptt.load(out))
