"""The optional compiled adder kernel (numba): parity with the NumPy path, and life without it."""

from __future__ import annotations

from pathlib import Path

import numba  # noqa: F401  - the test extra installs it; a missing numba must fail, not skip
import numpy as np
import pytest

import bptt
from bptt import _accel
from bptt.cli import main, shipped_model
from bptt.tasks import addition
from bptt.tasks.addition.evaluate import _kernel_weights


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "identity"])
@pytest.mark.parametrize("bias", [True, False])
def test_kernel_logits_equal_the_layers(activation: str, bias: bool) -> None:
    """The compiled loop computes the same logits as RNN.forward -> Dense.forward (rtol 1e-12)."""
    rng = np.random.default_rng(3)
    model = bptt.Sequential(
        [bptt.RNN(2, 7, activation=activation, bias=bias, rng=rng), bptt.Dense(7, 1, bias=bias, rng=rng)]
    )
    bits = rng.integers(0, 2, (2, 300)).astype(np.uint8)
    weights, act = _kernel_weights(model)  # type: ignore[misc]
    h = np.zeros(7)
    logits = np.concatenate(
        [_accel.adder_logits(bits[0, s:e], bits[1, s:e], h, weights, act) for s, e in ((0, 120), (120, 300))]
    )
    expected = model.forward(bits.T[:, None, :].astype(float))[:, 0, 0]
    np.testing.assert_allclose(logits, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("T", [1, 40])
def test_kernel_sigmoid_equals_the_layers_relatively_far_below_zero(T: int) -> None:
    """Units held near σ(-2) .. σ(-800) by their biases: kernel and layer states agree at rtol 1e-12, atol 0.

    The kernel takes the layers' formula, ``1 / (1 + e^{-s})``, and ``e^s`` below -709, where
    ``e^{-s}`` would overflow; ``(1 + tanh(s/2)) / 2`` was off by 1.7e-4 relative at -30.
    """
    rng = np.random.default_rng(9)
    rnn = bptt.RNN(2, 7, activation="sigmoid", rng=rng)
    model = bptt.Sequential([rnn, bptt.Dense(7, 1, rng=rng)])
    rnn.params["b"][...] = [-2.0, -30.0, -100.0, -300.0, -700.0, -708.5, -800.0]
    bits = rng.integers(0, 2, (2, T)).astype(np.uint8)
    weights, act = _kernel_weights(model)  # type: ignore[misc]
    h = np.zeros(7)
    logits = _accel.adder_logits(bits[0], bits[1], h, weights, act)
    hs = rnn.forward(bits.T[:, None, :].astype(float))[:, 0]  # (T, H)
    assert 0 < hs[-1, 5] < 1e-300 and hs[-1, 6] == 0.0  # e^-800 underflows: 0 on both paths
    np.testing.assert_allclose(h, hs[-1], rtol=1e-12, atol=0)
    np.testing.assert_allclose(logits, model.forward(bits.T[:, None, :].astype(float))[:, 0, 0], rtol=1e-12)


def test_accelerated_add_equals_the_numpy_path() -> None:
    """Both paths give a + b exactly for long random operands with the shipped adder."""
    model = bptt.load(shipped_model())
    rng = np.random.default_rng(5)
    for n in (1, 70_000, 200_003):
        a, b = (int.from_bytes(rng.bytes(n // 8 + 1), "little") >> (7 - n % 8) for _ in range(2))
        fast = addition.add(model, a, b, accelerate=True)
        assert fast == addition.add(model, a, b, accelerate=False) == a + b


def test_sigmoid_output_adders_use_the_kernel_too() -> None:
    """An RNN -> Dense -> Sigmoid adder (the classic preset) gives the same sums on both paths."""
    model, _ = addition.train(preset="classic", seed=0, steps=50)
    rng = np.random.default_rng(6)
    for _ in range(20):
        a, b = (int(v) for v in rng.integers(0, 127, 2))
        assert addition.add(model, a, b, accelerate=True) == addition.add(model, a, b, accelerate=False)


def test_without_numba_add_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    """With numba missing (installed without dependencies), add falls back to NumPy; asking for
    the kernel says what is needed."""
    monkeypatch.setattr(_accel, "AVAILABLE", False)
    model = bptt.load(shipped_model())
    big = (1 << 70_000) - 1
    assert addition.add(model, big, 1) == big + 1
    with pytest.raises(ValueError, match="needs numba"):
        addition.add(model, 1, 2, accelerate=True)
    with pytest.raises(RuntimeError, match="pip install numba"):
        _accel.adder_logits(np.zeros(1, np.uint8), np.zeros(1, np.uint8), np.zeros(16), {}, "tanh")


def test_a_model_the_kernel_does_not_fit_uses_numpy() -> None:
    """A stacked adder has no kernel; accelerate=None quietly takes the NumPy path."""
    model = bptt.Sequential([bptt.RNN(2, 4, rng=0), bptt.RNN(4, 4, rng=1), bptt.Dense(4, 1, rng=2)])
    assert _kernel_weights(model) is None
    addition.add(model, 5, 9)


def test_cli_hex_and_operand_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`bptt add @a @b --hex --check` reads long operands from files and prints the sum in hex."""
    rng = np.random.default_rng(7)
    a, b = (int.from_bytes(rng.bytes(40_000), "little") for _ in range(2))
    (tmp_path / "a").write_text(f"{a:x}")
    (tmp_path / "b").write_text(f"0x{b:x}")
    assert main(["add", f"@{tmp_path / 'a'}", f"@{tmp_path / 'b'}", "--hex", "--check"]) == 0
    out = capsys.readouterr()
    assert int(out.out, 16) == a + b and "check: exact" in out.err
    assert main(["add", "12", "zz", "--hex"]) == 2
    assert "hexadecimal" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["add", "1", "2"], ["train", "--help"]])
def test_short_commands_do_not_import_numba(argv: list[str]) -> None:
    """numba takes about 0.3 s to import: only the compiled path itself may pay for it."""
    import subprocess
    import sys

    code = (
        "import contextlib, sys, bptt.cli\n"
        f"with contextlib.suppress(SystemExit): bptt.cli.main({argv!r})\n"
        "print('numba' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "False", done.stdout
