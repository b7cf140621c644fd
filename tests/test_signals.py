"""Signals and the edges of training (``bptt.stopping``, the ``bptt train`` command, lazy imports).

SIGINT and SIGTERM stop training at a step boundary and lose nothing; a second one stops at
once; none of it, nor a Ctrl-C while ``bptt`` starts, ever prints a traceback. Child processes
are signalled when their own output shows they are ready, never after a fixed sleep.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest

import bptt
from bptt.checkpoint import load_checkpoint
from bptt.cli import main
from bptt.cli.progress import Progress
from bptt.stopping import Diverged, Terminated, UpdateGuard, stop_on_interrupt
from bptt.tasks import charlm
from bptt.tasks.addition import train
from bptt.tasks.addition import training as trainer

SIGNALS = [signal.SIGINT, signal.SIGTERM]
FINISHED_STEP = rb"\b[1-9]\d*/\d+ \["  # a tqdm count of at least one finished step


def _exit_statuses(signum: int) -> tuple[int, int]:
    """What a child stopped by ``signum`` may end with: the shell's 128 + signum, or death by the
    signal itself when a second one lands after Python has handed signals back to the OS at exit
    (a shell shows both as 128 + signum)."""
    return 128 + signum, -signum


# ---------------------------------------------------------------------------------------------
# stop_on_interrupt


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_the_first_signal_only_sets_the_flag(signum: int) -> None:
    """The first SIGINT or SIGTERM is recorded, not raised; on exit the previous handler is back."""
    previous = signal.getsignal(signum)
    with stop_on_interrupt() as flag:
        signal.raise_signal(signum)  # Python runs the handler before the next line
        assert flag.requested and flag.signum == signum
    assert signal.getsignal(signum) is previous


@pytest.mark.parametrize(
    "first, second, raised",
    [
        (signal.SIGINT, signal.SIGINT, KeyboardInterrupt),
        (signal.SIGTERM, signal.SIGTERM, Terminated),
        (signal.SIGINT, signal.SIGTERM, Terminated),
        (signal.SIGTERM, signal.SIGINT, KeyboardInterrupt),
    ],
)
def test_a_second_signal_stops_at_once(first: int, second: int, raised: type[BaseException]) -> None:
    """A second signal raises at once: KeyboardInterrupt for SIGINT, Terminated (exit 143) for SIGTERM."""
    with pytest.raises(raised) as info, stop_on_interrupt():
        signal.raise_signal(first)
        signal.raise_signal(second)
    if raised is Terminated:
        assert isinstance(info.value, SystemExit) and info.value.code == 143


def test_an_ignored_signal_stays_ignored() -> None:
    """SIGINT ignored on entry (a background job's) is left ignored: it neither stops nor raises."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_on_interrupt() as flag:
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
        assert not flag.requested
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_signal_while_the_handlers_are_restored_goes_to_the_restored_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SIGTERM that arrives as stop_on_interrupt hands back its handlers is not lost: it reaches
    the handler that was there before, once both are back."""
    got: list[int] = []

    def recorder(signum: int, frame: object) -> None:
        got.append(signum)

    before_int, previous = signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, recorder)
    real, calls = signal.signal, []

    def signal_with_one_arriving(signum: int, handler: object) -> object:
        calls.append(signum)
        if len(calls) == 3:  # two installs, then the first restore: SIGTERM arrives now
            os.kill(os.getpid(), signal.SIGTERM)
        return real(signum, handler)

    try:
        monkeypatch.setattr(signal, "signal", signal_with_one_arriving)
        with stop_on_interrupt() as flag:
            pass
        monkeypatch.undo()
        assert got == [signal.SIGTERM] and not flag.requested
        assert signal.getsignal(signal.SIGINT) is before_int and signal.getsignal(signal.SIGTERM) is recorder
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_disabled_or_outside_the_main_thread_changes_no_handler() -> None:
    """enabled=False, or a worker thread (where Python allows no handler), leaves every handler alone."""
    before = [signal.getsignal(s) for s in SIGNALS]
    with stop_on_interrupt(enabled=False) as flag:
        assert [signal.getsignal(s) for s in SIGNALS] == before
    seen: list[object] = []

    def worker() -> None:
        with stop_on_interrupt() as inner:
            seen.extend([signal.getsignal(s) for s in SIGNALS] + [inner.requested])

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [*before, False] and not flag.requested


# ---------------------------------------------------------------------------------------------
# UpdateGuard


def test_update_guard_refuses_non_finite_starting_weights() -> None:
    """The last finite weights must exist from the start: a NaN weight is named."""
    model = bptt.Sequential([bptt.Dense(2, 1, rng=0)])
    model.params["0.b"][0] = np.nan
    with pytest.raises(ValueError, match=r"weight '0\.b' holds NaN or Inf"):
        UpdateGuard(model, bptt.optim.SGD(model, 0.1), history=None)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_update_guard_undoes_a_non_finite_update(dtype: type[np.floating]) -> None:
    """An update that makes one weight infinite is undone exactly, in either precision."""
    model = bptt.Sequential([bptt.RNN(2, 3, rng=0, dtype=dtype), bptt.Dense(3, 1, rng=1, dtype=dtype)])
    guard = UpdateGuard(model, bptt.optim.SGD(model, 0.5), history=[])
    for g in model.grads.values():
        g[...] = 1.0
    guard.apply(1)
    after_one = {k: v.copy() for k, v in model.params.items()}
    model.grads["0.W_hh"][1, 2] = -np.inf
    with pytest.raises(Diverged, match="weights became non-finite at step 2") as info:
        guard.apply(2)
    assert info.value.step == 1
    for k, v in model.params.items():
        assert v.dtype == dtype and np.array_equal(v, after_one[k]), k


def corrupt_adam(before_step: int) -> type[bptt.optim.Adam]:
    """Adam whose state holds a NaN from just before update ``before_step``, as from a corrupt file."""

    class CorruptAdam(bptt.optim.Adam):
        def __init__(self, model: bptt.Sequential, lr: float) -> None:
            super().__init__(model, lr=lr)
            self.params = model.params

        def step(self) -> None:
            if self.steps == before_step - 1:
                state = self.state_dict()
                for name, p in self.params.items():  # the buffers Adam's first update creates
                    for buffer in ("exp_avg", "exp_avg_sq"):
                        state.setdefault(f"{name}/{buffer}", np.zeros_like(p))
                state["0.W_hh/exp_avg"][0, 0] = np.nan
                self.load_state_dict(state)
            super().step()

    return CorruptAdam


def test_a_non_finite_update_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NaN in the optimizer state makes step 4's update NaN: Diverged holds step 3's weights, finite."""
    monkeypatch.setattr(trainer, "Adam", corrupt_adam(4))
    with pytest.raises(Diverged, match="weights became non-finite at step 4") as info:
        train(seed=0)
    assert info.value.step == 3 and info.value.history.steps == 3
    monkeypatch.undo()
    three, _ = train(seed=0, steps=3)
    for k, v in three.params.items():
        assert np.array_equal(v, info.value.model.params[k]), k


@pytest.mark.parametrize(
    "task, argv",
    [
        ("addition", []),
        (
            "charlm",
            ["--task", "charlm", "--hidden", "8", "--batch", "4", "--k1", "5", "--k2", "5", "--steps", "9"],
        ),
    ],
)
@pytest.mark.parametrize("bad_update, saved", [(4, 3), (1, 0)], ids=["at-4", "at-1"])
def test_the_cli_never_saves_non_finite_weights(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    task: str,
    argv: list[str],
    bad_update: int,
    saved: int,
) -> None:
    """A NaN optimizer state: the last good (finite) weights are saved and named, or, when no step
    had completed, nothing is saved and the line says so. Exit 1 either way."""
    monkeypatch.setattr(trainer if task == "addition" else charlm, "Adam", corrupt_adam(bad_update))
    out = tmp_path / "m.npz"
    assert main(["train", "--quiet", *argv, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"weights became non-finite at step {bad_update}" in err
    if saved:
        assert err.rstrip().endswith(f"saved the last good weights (step {saved}) to {out}")
        assert all(np.isfinite(p).all() for p in bptt.load(out).params.values())
    else:
        assert "no step had completed, so there are no good weights to save" in err
        assert not out.exists()


# ---------------------------------------------------------------------------------------------
# The progress bar: a second Ctrl-C at the end of `bptt train` once printed tqdm tracebacks


def test_progress_bar_starts_no_monitor_thread() -> None:
    """tqdm's monitor thread registers an atexit hook, where a late Ctrl-C prints a traceback."""
    with Progress(10, quiet=False) as bar:
        bar.step(1)
        assert not [t for t in threading.enumerate() if "monitor" in t.name.lower()]


def test_progress_bar_is_released_with_signals_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C while the bar closes is held until tqdm's finalizer has run, then raised in our code.

    Raised inside ``tqdm.__del__`` it could only be printed ("Exception ignored in ..."): the
    double-Ctrl-C traceback this guards against.
    """
    import tqdm

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    real_close, pressed = tqdm.tqdm.close, []

    def close_then_ctrl_c(self: tqdm.tqdm) -> None:  # tqdm's __del__ closes again: signal once
        real_close(self)
        if not pressed:
            pressed.append(True)
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(tqdm.tqdm, "close", close_then_ctrl_c)
    bar = Progress(10, quiet=True)
    bar.step(1)
    tqdm_bar = weakref.ref(bar._bar)
    with pytest.raises(KeyboardInterrupt):
        bar.close()
    assert tqdm_bar() is None and not unraisable


# ---------------------------------------------------------------------------------------------
# Lazy imports: `bptt` starts (and can be interrupted) before NumPy loads


def test_importing_the_cli_loads_no_numpy() -> None:
    """`import bptt.cli` (what the `bptt` script does first) imports only the standard library."""
    code = "import sys, bptt.cli; print(sorted(m for m in ('numpy', 'tqdm', 'numba') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves() -> None:
    """Each name in bptt.__all__ resolves, dir() lists it, and unknown names raise AttributeError."""
    for name in bptt.__all__:
        assert getattr(bptt, name) is not None, name
    assert set(bptt.__all__) <= set(dir(bptt))
    assert bptt.RNN.__module__.startswith("bptt.recurrent") and callable(bptt.save)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        bptt.no_such_name  # noqa: B018


def test_submodules_named_like_functions_do_not_hide_them() -> None:
    """Importing bptt.explain or bptt.gradcheck first keeps bptt.explain and bptt.gradcheck functions."""
    code = (
        "import bptt.explain, bptt.gradcheck, bptt, types;"
        "print(isinstance(bptt.explain, types.FunctionType), isinstance(bptt.gradcheck, types.FunctionType))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]


# ---------------------------------------------------------------------------------------------
# Real signals to a real `bptt` process


def start(argv: list[str], cwd: Path, ready: bytes = FINISHED_STEP) -> tuple[subprocess.Popen[bytes], bytes]:
    """Start ``bptt ARGV`` as the installed script does and return once stderr matches ``ready``.

    With the default, that is once the progress bar shows a finished step: training runs inside
    the interrupt handler by then. The child's own output is the readiness signal.
    """
    script = "from bptt.__main__ import run; run()"  # what the console script runs
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-c", script, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
    )
    assert proc.stderr is not None
    seen = b""
    while not re.search(ready, seen):
        chunk = os.read(proc.stderr.fileno(), 65536)
        assert chunk, f"bptt ended before {ready!r}: {seen.decode(errors='replace')[-2000:]}"
        seen += chunk
    return proc, seen


def finish(proc: subprocess.Popen[bytes], seen: bytes) -> tuple[str, str]:
    """Wait for the child; its stdout, and its stderr without -X importtime's lines."""
    out, rest = proc.communicate(timeout=300)
    lines = (seen + rest).decode().splitlines()
    err = "\n".join(line for line in lines if not line.startswith("import time:"))
    assert "Traceback" not in out.decode() + err and "Exception ignored" not in err, err
    return out.decode(), err


def _same_weights(a: bptt.Sequential, b: bptt.Sequential) -> None:
    assert a.params.keys() == b.params.keys()
    for k, v in a.params.items():
        assert np.array_equal(v, b.params[k]), k


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_during_bptt_train_checkpoints_and_says_how_to_resume(tmp_path: Path, signum: int) -> None:
    """SIGINT exits 130, SIGTERM 143, each with one line naming the checkpoint and the command that
    resumes it; resuming ends at exactly the weights of an uninterrupted run."""
    out, ckpt = tmp_path / "m.npz", tmp_path / "m.ckpt.npz"
    proc, seen = start(["train", "--preset", "classic", "--out", str(out)], tmp_path)
    proc.send_signal(signum)
    _, err = finish(proc, seen)
    assert proc.returncode == 128 + signum, err
    line = err.strip().splitlines()[-1]
    step = load_checkpoint(ckpt).step
    name = signal.Signals(signum).name
    assert line.startswith(f"bptt train: interrupted by {name} after step {step}; checkpoint saved to {ckpt}")
    assert line.endswith(f"continue with: bptt train --resume {ckpt} --out {out}")
    if signum == signal.SIGINT:  # the resume itself is signal-independent: prove it once
        assert main(["train", "--quiet", "--resume", str(ckpt), "--out", str(out)]) == 0
        whole, _ = train(preset="classic", seed=0)
        _same_weights(whole, bptt.load(out))


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_during_a_charlm_run_saves_the_model_so_far(tmp_path: Path, signum: int) -> None:
    """`bptt train --task charlm` keeps what it learnt: --out gets the model so far, marked as stopped."""
    out = tmp_path / "c.npz"
    argv = ["train", "--task", "charlm", "--hidden", "8", "--batch", "4", "--k1", "5", "--k2", "5"]
    proc, seen = start([*argv, "--steps", "100000", "--out", str(out)], tmp_path)
    proc.send_signal(signum)
    _, err = finish(proc, seen)
    assert proc.returncode == 128 + signum, err
    _, meta, extra = bptt.io.read(out)
    name = signal.Signals(signum).name
    assert meta["stopped"] == f"interrupted by {name} after step {meta['updates']}" and meta["updates"] >= 1
    assert len(extra["loss"]) == meta["updates"]
    assert err.strip().splitlines()[-1] == (
        f"bptt train: interrupted by {name} after step {meta['updates']} of 100000; "
        f"saved the model trained so far to {out}"
    )
    assert main(["sample", "--model", str(out), "--length", "20"]) == 0


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_second_signal_stops_at_once_without_a_traceback(tmp_path: Path, signum: int) -> None:
    """Two signals back to back (an impatient Ctrl-C Ctrl-C): out at once, with no traceback."""
    for attempt in range(3):  # the second signal lands somewhere else each time
        out = tmp_path / f"m{attempt}.npz"
        proc, seen = start(["train", "--preset", "classic", "--out", str(out)], tmp_path)
        proc.send_signal(signum)
        proc.send_signal(signum)
        finish(proc, seen)
        assert proc.returncode in _exit_statuses(signum)


@pytest.mark.parametrize(
    "ready",
    [rb"", rb"\|\s+numpy\n", rb"\|\s+tqdm\n"],
    ids=["at-once", "while-importing-numpy", "at-the-first-step"],
)
def test_ctrl_c_while_bptt_starts_prints_no_traceback(tmp_path: Path, ready: bytes) -> None:
    """SIGINT as soon as the process exists, while the command imports NumPy, or as the first
    training step ends (the progress bar imports tqdm then): never a traceback. Once the command
    runs, the exit status is 130; a signal sent at once may still find Python starting, before any
    bptt code, and then kills it (-SIGINT, which a shell shows as 130 too)."""
    proc, seen = start(["train", "--quiet", "--out", str(tmp_path / "m.npz")], tmp_path, ready)
    proc.send_signal(signal.SIGINT)
    _, err = finish(proc, seen)
    assert proc.returncode in ((130,) if ready else (130, -signal.SIGINT)), err


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_outside_training_is_one_line(signum: int) -> None:
    """SIGTERM behaves like Ctrl-C in every command, not only in training: one line, 128 + signal.

    `bptt explain` writes more than a pipe holds; once its first line arrives it is inside the
    command (the readiness signal), and with nobody reading it soon blocks in a write.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "bptt", "explain", "--steps", "3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"Sequential")
    proc.send_signal(signum)
    _, err = finish(proc, b"")
    word = "interrupted" if signum == signal.SIGINT else "terminated"
    assert proc.returncode == 128 + signum and err.strip() == f"bptt explain: {word}", err
