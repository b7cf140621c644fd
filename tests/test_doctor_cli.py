"""``bptt doctor PATH.py:NAME``: exit 0 when healthy, 1 when a mistake is found, 2 with one line on
stderr when the learner cannot be checked; the learner's file is imported by its path, with its
own imports working and nothing left behind in ``sys.path`` or ``sys.modules``."""

from __future__ import annotations

import argparse
import inspect
import sys
import textwrap
from pathlib import Path

import pytest

import bptt.doctor
from bptt.cli import doctor as command
from bptt.cli import main
from bptt.doctor import layouts, spec

# A correct learner in min-char-rnn's names and row vectors: tanh, Σ(ŷ - y)², one sequence (T, I).
# BUG is where the planted mistake goes (missing-recurrence drops `+ dh_next`).
LEARNER = """
import numpy as np
from helpers import tanh_grad  # a module beside the learner: its own imports must work


class TinyRNN:
    def __init__(self):
        rng = np.random.default_rng(0)
        self.Wxh, self.Whh = rng.normal(size=(2, 3)), rng.normal(size=(3, 3))
        self.Why = rng.normal(size=(3, 1))
        self.bh, self.by = np.zeros(3), np.zeros(1)

    def forward(self, x):
        self.xs, self.hs = x, [np.zeros(3)]
        for x_t in x:
            self.hs.append(np.tanh(x_t @ self.Wxh + self.hs[-1] @ self.Whh + self.bh))
        return [h @ self.Why + self.by for h in self.hs[1:]]

    def backward(self, y):
        ys = self.forward(self.xs)
        self.dWxh, self.dWhh, self.dWhy = (np.zeros_like(w) for w in (self.Wxh, self.Whh, self.Why))
        self.dbh, self.dby = np.zeros_like(self.bh), np.zeros_like(self.by)
        dh_next = np.zeros(3)
        for t in reversed(range(len(self.xs))):
            dy = 2 * (ys[t] - y[t])
            self.dWhy += np.outer(self.hs[t + 1], dy)
            self.dby += dy
            da = tanh_grad(self.hs[t + 1]) * (self.Why @ dy BUG)
            self.dWxh += np.outer(self.xs[t], da)
            self.dWhh += np.outer(self.hs[t], da)
            self.dbh += da
            dh_next = self.Whh @ da


net = TinyRNN()


def make(n_hidden):
    return TinyRNN()


class NeedsArgs(TinyRNN):
    def __init__(self, n_hidden, *, seed=0):
        super().__init__()


class Broken(TinyRNN):
    def __init__(self):
        1 / 0
"""
BROKEN_LINE = LEARNER.splitlines().index("        1 / 0") + 1  # the file's line of the division
HELPERS = "def tanh_grad(h):\n    return 1 - h**2\n"


def write(folder: Path, bug: str = "+ dh_next", name: str = "tiny_rnn.py") -> Path:
    """The learner file (and its helpers module) in ``folder``."""
    (folder / "helpers.py").write_text(HELPERS)
    path = folder / name
    path.write_text(LEARNER.replace("BUG", bug))
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["doctor", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line(rc: int, out: str, err: str, *words: str) -> None:
    assert rc == 2, (rc, out, err)
    assert out == "" and "Traceback" not in err
    assert err.startswith("bptt doctor: error: ") and err.count("\n") == 1, err
    assert [w for w in words if w not in err] == [], err


# --- the command and its flags --------------------------------------------------------------------


def test_listed_in_help_with_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "doctor" in capsys.readouterr().out
    assert main(["doctor", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in (
        "PATH.py:NAME",
        "--map",
        "--activation",
        "--loss",
        "--reduction",
        "--steps",
        "--layout",
        "--data",
    ):
        assert flag in out


def test_choices_and_defaults_are_the_librarys() -> None:
    assert tuple(spec.ROLES) == command.ROLES
    assert (command.ACTIVATIONS, command.OUTPUTS, command.LOSSES) == (
        spec.ACTIVATIONS,
        spec.OUTPUTS,
        spec.LOSSES,
    )
    assert (command.REDUCTIONS, command.STEPS) == (spec.REDUCTIONS, spec.STEPS)
    assert (command.LAYOUTS, command.DATA) == (layouts.LAYOUTS, layouts.DATA)
    parser = argparse.ArgumentParser()
    command.register(parser)
    args = parser.parse_args(["x.py:Net"])
    defaults = inspect.signature(bptt.doctor.check).parameters
    for name in ("names", "activation", "output", "loss", "reduction", "steps", "layout", "data", "seed"):
        assert getattr(args, name) == defaults[name].default, name


@pytest.mark.parametrize(
    ("text", "names"),
    [("U=W_ih", {"U": "W_ih"}), (" U = W_ih , W=W_hh,V=W_ho", {"U": "W_ih", "W": "W_hh", "V": "W_ho"})],
)
def test_parse_map(text: str, names: dict[str, str]) -> None:
    assert command.parse_map(text) == names


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("U", "NAME=ROLE"),
        ("U=", "NAME=ROLE"),
        ("=W_ih", "NAME=ROLE"),
        ("U=W_xh", "no role"),
        ("U=b,U=b_o", "twice"),
    ],
)
def test_parse_map_refuses(text: str, words: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=words):
        command.parse_map(text)


# --- the learner's file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "words"),
    [
        (None, "missing.py:Net", ["'missing.py' does not exist"]),
        (None, "tiny_rnn.py", ["expected PATH.py:NAME", "'tiny_rnn.py'"]),
        (None, "tiny_rnn.py:", ["expected PATH.py:NAME"]),
        (
            None,
            "tiny_rnn.py:Nope",
            ["tiny_rnn.py has no 'Nope'", "it defines TinyRNN, make, NeedsArgs, Broken"],
        ),
        (None, "tiny_rnn.py:net.Nope", ["has no 'net.Nope'"]),
        (None, "tiny_rnn.py:NeedsArgs", ["NeedsArgs() needs arguments (n_hidden)", "tiny_rnn.py:net"]),
        (None, "tiny_rnn.py:Broken", [f"Broken() raised ZeroDivisionError on line {BROKEN_LINE}", "by zero"]),
        ("import numpy as np\n\nclass Net:\n    def f(self):\n", "bad.py:Net", ["SyntaxError on line 4"]),
        (
            "import numpy as np\n\nW = undefined_name\n",
            "bad.py:Net",
            ["NameError on line 3", "undefined_name"],
        ),
        (
            "import no_such_module_here\n",
            "bad.py:Net",
            ["ModuleNotFoundError on line 1", "no_such_module_here"],
        ),
        ("import helpers\n", "bad.py:Net", ["TypeError on line 5 of helpers.py"]),
        ("import sys\nsys.exit(3)\n", "bad.py:Net", ["SystemExit on line 2"]),
        ("", "bad.py:Net", ["bad.py has no 'Net'; it defines no classes or functions"]),
    ],
)
def test_a_learner_that_cannot_be_loaded_is_one_line(
    source: str | None,
    target: str,
    words: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path)
    if source is not None:
        (tmp_path / "bad.py").write_text(source)
        if source == "import helpers\n":  # an error inside the learner's own helper module
            (tmp_path / "helpers.py").write_text("def tanh_grad(h):\n    return 1 - h**2\n\n\ntanh_grad()\n")
    assert_one_line(*cli(capsys, target), *words)


def test_a_folder_and_a_fifo_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    os.mkfifo(tmp_path / "fifo")  # opening it to read would wait forever
    assert_one_line(*cli(capsys, f"{tmp_path}:Net"), "is a directory")
    assert_one_line(*cli(capsys, f"{tmp_path / 'fifo'}:Net"), "not a regular file")


def test_nothing_is_left_behind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The learner's folder leaves sys.path and its modules leave sys.modules, even on an error,
    so a second learner with a helpers module of the same name gets its own."""
    path, modules = write(tmp_path), set(sys.modules)
    search = list(sys.path)
    assert_one_line(*cli(capsys, f"{path}:Nope"), "has no 'Nope'")
    assert sys.path == search
    assert not [m for m in set(sys.modules) - modules if m in ("helpers", "bptt_doctor_tiny_rnn")]


# --- checks (the engine's report) -------------------------------------------------------------------


@pytest.mark.parametrize("target", ["TinyRNN", "net"])
def test_a_correct_learner_exits_0(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A class (built with no arguments) or an object."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path)
    rc, out, err = cli(capsys, f"tiny_rnn.py:{target}")
    assert (rc, err) == (0, ""), out + err
    assert "W_hh" in out and "Whh" in out


def test_a_mistake_exits_1_and_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, bug="")  # δ does not flow back in time
    rc, out, err = cli(capsys, "tiny_rnn.py:TinyRNN", "--map", "Wxh=W_ih,Whh=W_hh,Why=W_ho")
    assert (rc, err) == (1, ""), out + err
    assert "missing-recurrence" in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--map", "Q=W_ih"], ["'Q'", "not one of the learner's weights", "Wxh (2, 3)"]),
        (["--map", "Wxh=W_ih,Why=W_ih"], ["two names for W_ih"]),
        (["--map", "Wxh=W_hh"], ["W_hh is square (H, H), but names maps 'Wxh' (2, 3) to it"]),
        (["--layout", "column", "--map", "Wxh=W_ih"], ["fit no RNN as column vectors"]),
        (["--target", "make"], ["the function make must take (x, y)"]),
    ],
)
def test_the_doctors_refusal_is_one_line(
    args: list[str],
    words: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path)
    target = args[1] if args[0] == "--target" else "TinyRNN"
    args = [] if args[0] == "--target" else args
    assert_one_line(*cli(capsys, f"tiny_rnn.py:{target}", *args), *words)


def test_an_ambiguous_mapping_says_how_to_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    source = textwrap.dedent(
        """
        import numpy as np

        class Net:
            def __init__(self):
                self.A, self.B, self.C = np.zeros((2, 16)), np.zeros((16, 16)), np.zeros((16, 1))

            def forward(self, x):
                pass

            def backward(self, y):
                pass
        """
    )
    (tmp_path / "seed_rnn.py").write_text(source)
    words = ["cannot tell which of A (2, 16), C (16, 1) is W_ih", "--map A=W_ih"]
    assert_one_line(*cli(capsys, "seed_rnn.py:Net"), *words)
    assert not (cli(capsys, "seed_rnn.py:Net", "--map", "A=W_ih")[2]).startswith(
        "bptt doctor: error: cannot tell"
    )
