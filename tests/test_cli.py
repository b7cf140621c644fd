"""The ``bptt`` command: every subcommand works, bad input is one line on stderr with exit 2, and
the shipped adder is reproducible from the command recorded inside it."""

from __future__ import annotations

import contextlib
import importlib.metadata
import inspect
import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch  # noqa: F401  (gradcheck's torch column must run; torch missing is a failure)

import bptt
import bptt.io
from bptt.cli import build_parser, main, shipped_model

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in an empty folder, so no stray ./adder.npz changes which model is used."""
    monkeypatch.chdir(tmp_path)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``bptt ARGS`` in-process: (exit status, stdout, stderr)."""
    try:
        rc = main(list(args))
    except SystemExit as e:  # argparse's --help and --version exit directly
        rc = 0 if e.code is None else int(e.code)
    out, err = capsys.readouterr()
    return rc, out, err


def _table(out: str) -> list[str]:
    """The result rows of the accuracy table that train and eval print."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("exact-match accuracy"))
    return [line for line in lines[head + 1 :] if line.strip()]


def _assert_all_exact(out: str, rows: int) -> None:
    table = _table(out)
    assert len(table) == rows, out
    assert all(row.endswith("100.00%") for row in table), out


def _assert_one_line_error(rc: int, out: str, err: str) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr, no traceback."""
    assert rc == 2, (out, err)
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err


def _script() -> str:
    """The installed ``bptt`` console script beside this interpreter."""
    found = shutil.which("bptt", path=str(Path(sys.executable).parent))
    assert found is not None, f"no bptt console script next to {sys.executable}"
    return found


def _zero_adder(path: Path) -> Path:
    """An adder-shaped model whose every output bit is 0 (zero Dense weights, negative bias)."""
    rng = np.random.default_rng(0)
    model = bptt.Sequential([bptt.RNN(2, 4, rng=rng), bptt.Dense(4, 1, rng=rng)])
    model[1].params["W"][...] = 0.0
    model[1].params["b"][...] = -1.0
    bptt.io.save(model, path)
    return path


def _big(bits: int, rng: np.random.Generator) -> int:
    """A random operand of exactly ``bits`` bits."""
    return int.from_bytes(rng.bytes((bits + 7) // 8), "little") % (1 << (bits - 1)) | (1 << (bits - 1))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """One ``bptt train --quiet --seed 3`` run: (exit status, stdout, model path)."""
    path = tmp_path_factory.mktemp("trained") / "mine.npz"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["train", "--quiet", "--seed", "3", "--out", str(path)])
    return rc, out.getvalue(), path


# ---------------------------------------------------------------------------------------------
# Help, version and the console script


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints ``bptt <version>``, matching the package and its installed metadata."""
    rc, out, _ = _cli(capsys, "--version")
    assert rc == 0
    assert out == f"bptt {bptt.__version__}\n"
    assert importlib.metadata.version("bptt") == bptt.__version__


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    """``bptt`` alone prints usage listing every subcommand and exits 0."""
    rc, out, err = _cli(capsys)
    assert rc == 0 and err == ""
    assert out.startswith("usage: bptt")
    for command in ("gradcheck", "train", "add", "eval"):
        assert command in out


def test_console_script_help() -> None:
    """The installed ``bptt --help`` runs and prints usage, and nothing on stderr."""
    r = subprocess.run([_script(), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith("usage: bptt") and "train" in r.stdout


def test_help_loads_no_numpy() -> None:
    """``bptt --help`` declares no command's flags, so it imports nothing beyond the standard library."""
    code = (
        "import sys, bptt.cli\n"
        "assert bptt.cli.main(['--help']) == 0\n"
        "print(sorted(m for m in ('numpy', 'tqdm', 'numba') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"


def test_console_script_version() -> None:
    """The installed ``bptt --version`` prints the package version."""
    r = subprocess.run([_script(), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout == f"bptt {bptt.__version__}\n"


def test_console_script_bad_input(tmp_path: Path) -> None:
    """The installed script turns a bad operand into one stderr line and exit 2, no traceback."""
    r = subprocess.run(
        [_script(), "add", "abc", "1"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    _assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert "abc" in r.stderr


def test_console_script_adds(tmp_path: Path) -> None:
    """The installed script adds with the shipped model and exits 0."""
    r = subprocess.run([_script(), "add", "19", "23", "--check"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "42\n"


# ---------------------------------------------------------------------------------------------
# gradcheck


def _gradcheck_rows(out: str) -> list[str]:
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line) == {"-"})
    return [line for line in lines[rule + 1 :] if line.strip() and not line.endswith(("pass", "FAIL"))]


def test_gradcheck_all_ok_with_torch(capsys: pytest.CaptureFixture[str]) -> None:
    """``bptt gradcheck`` exits 0, every row says ok and carries a torch autograd figure."""
    rc, out, _ = _cli(capsys, "gradcheck")
    assert rc == 0, out
    assert "torch" in out and "autograd" in out and "not importable" not in out
    rows = _gradcheck_rows(out)
    assert len(rows) >= 7
    for row in rows:
        assert row.endswith("  ok"), row
        assert row.split()[-2] != "-", row  # the torch column ran
    assert "FAIL" not in out and out.rstrip().endswith("all gradients pass")


def test_gradcheck_no_torch(capsys: pytest.CaptureFixture[str]) -> None:
    """``bptt gradcheck --no-torch --seed 1`` passes with the torch column skipped."""
    rc, out, _ = _cli(capsys, "gradcheck", "--no-torch", "--seed", "1")
    assert rc == 0, out
    rows = _gradcheck_rows(out)
    assert rows and all(row.endswith("  ok") and row.split()[-2] == "-" for row in rows)


# ---------------------------------------------------------------------------------------------
# train


def test_train_help_shows_the_librarys_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """Each default in ``bptt train --help`` is read from ``addition.train`` or ``charlm.train``."""
    from bptt.tasks import addition, charlm

    rc, out, _ = _cli(capsys, "train", "--help")
    assert rc == 0
    add, lm = inspect.signature(addition.train).parameters, inspect.signature(charlm.train).parameters
    help_text = " ".join(out.split())
    assert f"operand bits (default {add['n_bits'].default})" in help_text
    assert f"hidden units (default {add['hidden'].default}; charlm {lm['hidden'].default})" in help_text
    assert f"seed of everything random (default {add['seed'].default})" in help_text
    for flag, name in [
        ("--cell", "cell"),
        ("--steps", "steps"),
        ("--k1", "k1"),
        ("--k2", "k2"),
        ("--batch", "batch"),
    ]:
        assert re.search(rf"{flag} \S+ [^\[\]-]*\(default {lm[name].default}\b", help_text), flag


def test_train_charlm_defaults_follow_the_library(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A default changed in ``charlm.train``'s signature changes what ``bptt train`` passes and shows."""
    from bptt.tasks import charlm

    calls: list[dict[str, object]] = []

    def train(
        text: str | None = None,
        *,
        cell: str = "rnn",
        hidden: int = 7,
        steps: int = 3,
        batch: int = 2,
        k1: int = 4,
        k2: int = 9,
        seed: int = 5,
        patience: int | None = 4,
        check_every: int = 50,
        dtype: str = "float64",
        **hooks: object,
    ) -> None:
        calls.append({"cell": cell, "hidden": hidden, "steps": steps, "batch": batch, "k1": k1, "k2": k2})
        calls[-1] |= {"seed": seed, "patience": patience, "check_every": check_every, "dtype": dtype}
        raise ValueError("stopped by the test")

    monkeypatch.setattr(charlm, "train", train)
    rc, out, err = _cli(capsys, "train", "--task", "charlm", "--quiet")
    _assert_one_line_error(rc, out, err)
    assert calls == [
        {"cell": "rnn", "hidden": 7, "steps": 3, "batch": 2, "k1": 4, "k2": 9}
        | {"seed": 5, "patience": 4, "check_every": 50, "dtype": "float64"}
    ]
    rc, out, _ = _cli(capsys, "train", "--help")
    assert "(default 16; charlm 7)" in out and "updates (default 3)" in out and "(default float64:" in out
    assert "one every 50 updates" in " ".join(out.split()) and "(default 4)" in out
    _cli(capsys, "train", "--task", "charlm", "--k1", "12", "--quiet")  # k2 defaults to at least k1
    assert calls[-1]["k1"] == calls[-1]["k2"] == 12


def test_train_refuses_every_flag_of_the_other_task(capsys: pytest.CaptureFixture[str]) -> None:
    """Each task's declared flags are refused under the other task, naming the flag and the task."""
    task_flags = build_parser(["train"]).parse_args(["train"]).task_flags
    assert set(task_flags) == {"addition", "charlm"}
    for task, actions in task_flags.items():
        other = next(t for t in task_flags if t != task)
        assert actions
        for action in actions:
            flag = action.option_strings[0]
            value = [] if action.nargs == 0 else [str(action.choices[0]) if action.choices else "1"]
            rc, out, err = _cli(capsys, "train", "--task", other, flag, *value)
            _assert_one_line_error(rc, out, err)
            assert f"{flag} does not apply to --task {other}" in err


def test_train_writes_model_and_prints_table(trained: tuple[int, str, Path]) -> None:
    """``bptt train`` exits 0, saves a loadable adder with its command, and is exact everywhere."""
    rc, out, path = trained
    assert rc == 0, out
    assert f"saved {path}" in out
    _assert_all_exact(out, 3)
    assert "65,536" in out
    model, meta, extra = bptt.io.read(path)
    assert meta["command"] == shlex.join(["bptt", "train", "--quiet", "--seed", "3", "--out", str(path)])
    assert meta["seed"] == 3 and meta["converged"] is True
    assert {"loss", "accuracy"} <= extra.keys()
    assert model[0].params["W_ih"].shape == (2, 16)


def test_train_classic_preset(capsys: pytest.CaptureFixture[str]) -> None:
    """The classic recipe trains 7-bit operands and is exact on all 16,384 pairs and long sums."""
    rc, out, _ = _cli(capsys, "train", "--preset", "classic", "--quiet", "--out", "classic.npz")
    assert rc == 0, out
    assert "16,384" in out
    _assert_all_exact(out, 3)
    assert Path("classic.npz").is_file()


def test_train_default_out_and_progress_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --out the model goes to ./adder.npz; the progress bar goes to stderr, not stdout."""
    rc, out, err = _cli(capsys, "train")
    assert rc == 0, out
    assert Path("adder.npz").is_file()
    assert "training" in err
    assert "\r" not in out and "training" not in out


def test_train_plot_writes_png(capsys: pytest.CaptureFixture[str]) -> None:
    """``--plot`` writes a real PNG with a drawn picture and leaves no temporary file."""
    import matplotlib.image

    rc, out, _ = _cli(capsys, "train", "--quiet", "--out", "m.npz", "--plot", "out.png")
    assert rc == 0, out
    blob = Path("out.png").read_bytes()
    assert blob.startswith(PNG_SIGNATURE)
    pixels = matplotlib.image.imread("out.png")
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(np.var(pixels[..., :3])) > 1e-3
    assert sorted(p.name for p in Path().iterdir()) == ["m.npz", "out.png"]


def test_shipped_model_is_reproducible(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Re-running the command recorded in the shipped adder gives an exact adder with the same weights.

    Bit identity is promised only on one machine and NumPy build: another BLAS kernel sums in
    another order (3e-14 apart on one AMD machine), so weights and history are compared to a
    tight relative tolerance, and exactness is what ``rc == 0`` proves (every table row at 100%).
    """
    shipped, meta, extra = bptt.io.read(shipped_model())
    argv = shlex.split(meta["command"])
    assert argv[0] == "bptt" and argv[1] == "train"
    out_at = argv.index("--out")
    argv[out_at + 1] = str(tmp_path / "again.npz")
    rc, out, _ = _cli(capsys, *argv[1:])
    assert rc == 0, out
    again, meta2, extra2 = bptt.io.read(tmp_path / "again.npz")
    assert again.params.keys() == shipped.params.keys()
    for k, v in shipped.params.items():
        assert again.params[k].dtype == v.dtype, k
        np.testing.assert_allclose(again.params[k], v, rtol=1e-9, atol=1e-12, err_msg=k)
    assert meta2["steps"] == meta["steps"]
    assert extra2.keys() == extra.keys()
    for k, v in extra.items():
        np.testing.assert_allclose(extra2[k], v, rtol=1e-9, atol=1e-12, err_msg=k)


# ---------------------------------------------------------------------------------------------
# add and eval

SMALL_PAIRS = [(0, 0), (1, 0), (0, 1), (255, 255), (12345, 67890), (2**64 - 1, 1)]


@pytest.mark.parametrize("explicit", [True, False], ids=["--model", "default"])
@pytest.mark.parametrize(("a", "b"), SMALL_PAIRS)
def test_add_small_shipped(capsys: pytest.CaptureFixture[str], a: int, b: int, explicit: bool) -> None:
    """``add A B --check`` prints the exact sum with the shipped model (named or by default)."""
    model = ["--model", str(shipped_model())] if explicit else []
    rc, out, err = _cli(capsys, "add", str(a), str(b), "--check", *model)
    assert rc == 0, err
    assert out == f"{a + b}\n"
    assert "exact" in err


@pytest.mark.parametrize("seed", [0, 1])
def test_add_ten_thousand_bits(capsys: pytest.CaptureFixture[str], seed: int) -> None:
    """~10,000-bit decimal operands come back as the exact decimal sum."""
    rng = np.random.default_rng(seed)
    a, b = _big(10_000, rng), _big(9_990, rng)
    rc, out, err = _cli(capsys, "add", str(a), str(b), "--check")
    assert rc == 0, err
    assert out == f"{a + b}\n"


def test_add_with_trained_model(capsys: pytest.CaptureFixture[str], trained: tuple[int, str, Path]) -> None:
    """``add --model`` uses a model trained here, exact on small and long operands."""
    rng = np.random.default_rng(2)
    for a, b in [(3, 4), (250, 250), (_big(3000, rng), _big(2999, rng))]:
        rc, out, err = _cli(capsys, "add", str(a), str(b), "--model", str(trained[2]), "--check")
        assert rc == 0, err
        assert out == f"{a + b}\n"


def test_add_prefers_local_adder(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --model, ./adder.npz is used when present (here one that always answers 0)."""
    _zero_adder(Path("adder.npz"))
    rc, out, _ = _cli(capsys, "add", "3", "4")
    assert rc == 0
    assert out == "0\n"


def test_add_check_mismatch_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``--check`` with a wrong adder exits 1 and says MISMATCH on stderr."""
    rc, out, err = _cli(capsys, "add", "5", "3", "--check", "--model", str(_zero_adder(tmp_path / "z.npz")))
    assert rc == 1
    assert out == "0\n"
    assert "MISMATCH" in err and "Traceback" not in err


def test_eval_random_sums(capsys: pytest.CaptureFixture[str]) -> None:
    """``eval --bits 16 --samples 200`` reports 200 exact 16-bit sums."""
    rc, out, _ = _cli(capsys, "eval", "--bits", "16", "--samples", "200")
    assert rc == 0, out
    assert "200 random sums of 16-bit operands" in out
    _assert_all_exact(out, 1)


def test_eval_all_pairs_trained(capsys: pytest.CaptureFixture[str], trained: tuple[int, str, Path]) -> None:
    """``eval --model`` with the default bits checks all 65,536 8-bit pairs."""
    rc, out, _ = _cli(capsys, "eval", "--model", str(trained[2]))
    assert rc == 0, out
    assert "65,536" in out
    _assert_all_exact(out, 1)


# ---------------------------------------------------------------------------------------------
# Bad input: exit 2, one stderr line, nothing on stdout, no traceback, no file written

BAD_INPUT = [
    (["add", "-5", "1"], "-5"),
    (["add", "1", "-5"], "-5"),
    (["add", "1.5", "2"], "1.5"),
    (["add", "abc", "1"], "abc"),
    (["add", "", "1"], "''"),
    (["add", "1"], "required"),
    (["add", "1", "2", "--model", "missing.npz"], "does not exist"),
    (["add", "1", "2", "--model", "corrupt.npz"], "truncated or corrupt"),
    (["add", "1", "2", "--model", "three_inputs.npz"], "2 input bits"),
    (["add", "1", "2", "--model", "."], "directory"),
    (["train", "--bits", "0"], "positive integer"),
    (["train", "--bits", "x"], "'x'"),
    (["train", "--hidden", "-1"], "positive integer"),
    (["train", "--preset", "nope"], "nope"),
    (["train", "--quiet", "--out", "no_such_dir/m.npz"], "no_such_dir"),
    (["train", "--quiet", "--out", "."], None),
    (["train", "--quiet", "--plot", "no_such_dir/p.png"], "no_such_dir"),
    (["eval", "--bits", "x"], "'x'"),
    (["eval", "--samples", "0"], "positive integer"),
    (["eval", "--model", "missing.npz"], "does not exist"),
    (["eval", "--model", "corrupt.npz"], "truncated or corrupt"),
    (["eval", "--model", "three_inputs.npz"], "2 input bits"),
    (["gradcheck", "--seed", "x"], "'x'"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize(("args", "says"), BAD_INPUT, ids=[" ".join(a) or "empty" for a, _ in BAD_INPUT])
def test_bad_input(capsys: pytest.CaptureFixture[str], args: list[str], says: str | None) -> None:
    """Each bad value exits 2 with one stderr line naming the problem, and writes no file."""
    blob = shipped_model().read_bytes()
    Path("corrupt.npz").write_bytes(blob[: len(blob) // 2])
    bptt.io.save(bptt.Sequential([bptt.RNN(3, 4, rng=0), bptt.Dense(4, 1, rng=0)]), "three_inputs.npz")
    before = {p.name: p.read_bytes() for p in Path().iterdir()}
    rc, out, err = _cli(capsys, *args)
    _assert_one_line_error(rc, out, err)
    assert err.startswith("bptt")
    if says is not None:
        assert says in err
    assert {p.name: p.read_bytes() for p in Path().iterdir()} == before


# The world outside: closed pipes, full disks, the int-string limit


def test_closed_pipe_is_one_line_and_exit_2() -> None:
    """`bptt explain | head -1`: the reader goes away; bptt says so in one line, no traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bptt.cli", "explain", "--steps", "3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"Sequential")  # it is writing: now close the pipe
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 2, err
    assert err.count("\n") == 1 and "output was closed" in err and "Traceback" not in err, err


def test_full_disk_while_saving_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC while writing the model: exit 2, one line naming the reason, no file left behind."""
    import errno

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    rc, out, err = _cli(capsys, "train", "--quiet", "--out", "m.npz")
    assert rc == 2 and "No space left on device" in err and err.count("\n") == 1, err
    assert "Traceback" not in out + err
    assert not any(p.name.startswith(".m.npz") or p.name == "m.npz" for p in Path().iterdir())


def test_main_keeps_the_int_string_limit(capsys: pytest.CaptureFixture[str]) -> None:
    """`add` lifts the limit only around its own conversions: a hostile JSON integer still fails fast."""
    limit = sys.get_int_max_str_digits()
    rc, out, _ = _cli(capsys, "add", "9" * 5000, "1", "--check")
    assert rc == 0 and out == "1" + "0" * 5000 + "\n"
    assert sys.get_int_max_str_digits() == limit
    with pytest.raises(ValueError, match="limit"):
        int("9" * (limit + 1))
