"""Pictures and the carry probe: every PNG is real and drawn, the probe finds the carry in the shipped
adder and not in an untrained one, ``gradient_norms`` agrees with torch autograd, and ``bptt plot``
works for every kind and refuses bad input with one line."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bptt
import bptt.io
from bptt import plots
from bptt.cli import main, shipped_model
from bptt.tasks.addition import (
    CarryProbe,
    History,
    carry_bits,
    carry_probe,
    encode,
    hidden_states,
    make_batch,
    plot_hidden,
    plot_pca,
)
from bptt.tasks.addition import plots as adder_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TORCH_ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> bptt.Sequential:
    return bptt.load(shipped_model())


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in an empty folder, so no stray ./adder.npz changes which model is used."""
    monkeypatch.chdir(tmp_path)


def assert_png(path: Path) -> None:
    """A real PNG of sane size with something drawn on it, and no temporary file left beside it."""
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    assert 200 <= pixels.shape[0] <= 3000 and 200 <= pixels.shape[1] <= 3000, pixels.shape
    assert float(np.var(pixels[..., :3])) > 1e-3  # not a blank page
    assert not [p.name for p in path.parent.iterdir() if ".tmp" in p.name]


def untrained(seed: int, hidden: int = 16) -> bptt.Sequential:
    """An adder-shaped model with PyTorch-style random weights and no training."""
    rng = np.random.default_rng(seed)
    return bptt.Sequential([bptt.RNN(2, hidden, rng=rng), bptt.Dense(hidden, 1, rng=rng)])


def carry_adder(k: float = 40.0) -> bptt.Sequential:
    """One sigmoid unit that *is* the carry out: ``h_t = σ(k (a_t + b_t + h_{t-1} - 1.5))``."""
    rnn = bptt.RNN(2, 1, activation="sigmoid", rng=0)
    rnn.params["W_ih"][...] = k
    rnn.params["W_hh"][...] = k
    rnn.params["b"][...] = -1.5 * k
    return bptt.Sequential([rnn, bptt.Dense(1, 1, rng=0)])


def torch_grad_h_norms(activation: str, steps: int, hidden: int, seed: int) -> np.ndarray:
    """``||∂L/∂h_t||`` for every step by torch autograd on the same weights, input and target."""
    rnn, dense, x, target = plots._gradnorm_problem(activation, steps, hidden, seed)

    def leaf(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=torch.float64, requires_grad=True)

    W_ih, W_hh, b = (leaf(rnn.params[k]) for k in ("W_ih", "W_hh", "b"))
    h, states = torch.zeros(1, hidden, dtype=torch.float64), []
    for t in range(steps):
        h = TORCH_ACT[activation](torch.tensor(x[t]) @ W_ih + h @ W_hh + b)
        h.retain_grad()
        states.append(h)
    y = h @ leaf(dense.params["W"]) + leaf(dense.params["b"])
    ((y - torch.tensor(target[0])) ** 2).mean().backward()
    return np.array([float(torch.linalg.vector_norm(s.grad)) for s in states])


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``bptt ARGS`` in-process: (exit status, stdout, stderr)."""
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


# --- carry_bits and hidden_states -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**70), st.integers(0, 2**70), st.integers(0, 4))
def test_carry_bits_match_integer_arithmetic(a: int, b: int, pad: int) -> None:
    """The carry out of step t is bit t+1 of (a mod 2^(t+1)) + (b mod 2^(t+1))."""
    n_bits = max(a.bit_length(), b.bit_length(), 1) + pad
    carry = carry_bits(encode(a, b, n_bits))[:, 0]
    assert carry.shape == (n_bits + 1,)
    for t in range(n_bits + 1):
        low = (1 << (t + 1)) - 1
        assert carry[t] == bool(((a & low) + (b & low)) >> (t + 1)), t


@pytest.mark.parametrize("bad", [np.zeros((3, 2)), np.zeros((3, 1, 3)), np.full((2, 1, 2), 0.5)])
def test_carry_bits_refuses_non_bits(bad: np.ndarray) -> None:
    """Wrong shapes and values other than 0/1 raise ValueError (ShapeError is one)."""
    with pytest.raises(ValueError, match="carry_bits"):
        carry_bits(bad)


@pytest.mark.parametrize(("T", "B"), [(1, 1), (5, 1), (1, 4), (9, 3)])
def test_hidden_states_are_the_first_rnn_from_zeros(shipped: bptt.Sequential, T: int, B: int) -> None:
    """``hidden_states`` is the RNN's forward from a zero state, and leaves h0/stateful as they were."""
    rnn = shipped[0]
    x = np.random.default_rng(T * 10 + B).integers(0, 2, (T, B, 2)).astype(float)
    h0 = np.random.default_rng(1).standard_normal((B, 16))
    rnn.h0, rnn.stateful = h0, True
    try:
        got = hidden_states(shipped, x)
        assert rnn.h0 is h0 and rnn.stateful
    finally:
        rnn.h0, rnn.stateful = None, False
    np.testing.assert_array_equal(got, rnn.forward(x))
    assert got.shape == (T, B, 16)


# --- the carry probe --------------------------------------------------------------------------------


@pytest.mark.parametrize("p_propagate", [None, 0.85], ids=["random", "carry-chains"])
def test_probe_reads_the_carry_of_the_shipped_adder(
    shipped: bptt.Sequential, p_propagate: float | None
) -> None:
    """On the shipped adder a linear probe reads the carry at ≥ 99% of held-out steps."""
    probe = carry_probe(shipped, p_propagate=p_propagate)
    assert probe.accuracy >= 0.99


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_probe_is_clearly_lower_untrained(seed: int) -> None:
    """Untrained RNNs: the probe falls below 0.9 on carry-chain sums (below 0.99 on random ones)."""
    model = untrained(seed)
    assert carry_probe(model, p_propagate=0.85).accuracy < 0.9
    assert carry_probe(model).accuracy < 0.99


def test_probe_labels_are_the_carry_out() -> None:
    """A one-unit RNN whose state is the carry out is read exactly (carry-in labels would not be)."""
    probe = carry_probe(carry_adder(), n_bits=32, samples=64, p_propagate=0.5)
    assert probe.accuracy == 1.0
    assert probe.top_units[0][0] == 0 and probe.top_units[0][1] > 0


def test_probe_result_is_consistent(shipped: bptt.Sequential) -> None:
    """A frozen result; top units are the largest |weights|, sorted, and reruns are identical."""
    probe = carry_probe(shipped, n_bits=16, samples=32, rng=3, top=4)
    assert isinstance(probe, CarryProbe)
    assert probe.weights.shape == (16,) and isinstance(probe.bias, float)
    assert [u for u, _ in probe.top_units] == list(np.argsort(-np.abs(probe.weights), kind="stable")[:4])
    assert [w for _, w in probe.top_units] == [probe.weights[u] for u, _ in probe.top_units]
    again = carry_probe(shipped, n_bits=16, samples=32, rng=3, top=4)
    assert again.accuracy == probe.accuracy and np.array_equal(again.weights, probe.weights)
    with pytest.raises(dataclasses.FrozenInstanceError):
        probe.accuracy = 0.0  # type: ignore[misc]
    assert len(carry_probe(carry_adder(), n_bits=4, samples=2, top=5).top_units) == 1  # H = 1


BAD_PROBE = [
    ({"n_bits": 0}, ValueError, "n_bits"),
    ({"samples": 1}, ValueError, "at least 2"),
    ({"samples": 2.0}, ValueError, "samples"),
    ({"top": 0}, ValueError, "top"),
    ({"p_propagate": 1.5}, ValueError, "p_propagate"),
    ({"p_propagate": True}, ValueError, "p_propagate"),
    ({"p_propagate": float("nan")}, ValueError, "p_propagate"),
    ({"rng": "seed"}, TypeError, "rng"),
]


@pytest.mark.parametrize(("kwargs", "error", "says"), BAD_PROBE, ids=[str(k) for k, _, _ in BAD_PROBE])
def test_probe_refuses_bad_arguments(
    shipped: bptt.Sequential, kwargs: dict[str, object], error: type[Exception], says: str
) -> None:
    """Each bad argument raises a clear error naming it."""
    with pytest.raises(error, match=says):
        carry_probe(shipped, **kwargs)  # type: ignore[arg-type]


def test_probe_refuses_models_it_cannot_look_inside() -> None:
    """No recurrent layer, three inputs, or not a model at all."""
    with pytest.raises(ValueError, match="no recurrent layer"):
        carry_probe(bptt.Sequential([bptt.Dense(2, 1, rng=0)]))
    with pytest.raises(ValueError, match="2 input bits"):
        carry_probe(bptt.Sequential([bptt.RNN(3, 4, rng=0), bptt.Dense(4, 1, rng=0)]))
    with pytest.raises(TypeError, match="bptt layer"):
        carry_probe("model")  # type: ignore[arg-type]


# --- gradient norms against torch -----------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize(
    ("steps", "hidden", "seed"), [(1, 1, 0), (2, 3, 1), (7, 1, 2), (60, 8, 3), (200, 16, 0)]
)
def test_gradient_norms_match_torch(activation: str, steps: int, hidden: int, seed: int) -> None:
    """||∂L/∂h_t|| from ``RNN.grad_a`` and W_hh equals torch autograd's, also far down the vanishing tail."""
    ours = plots.gradient_norms(activation, steps, hidden, seed)
    ref = torch_grad_h_norms(activation, steps, hidden, seed)
    assert ours.shape == (steps,)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12 * np.max(np.abs(ref)))
    normal = ref > 1e-280  # away from underflow every value agrees to rtol, however tiny
    np.testing.assert_allclose(ours[normal], ref[normal], rtol=1e-9, atol=0)
    np.testing.assert_array_equal(ours == 0, ref == 0)


def test_sigmoid_gradient_vanishes() -> None:
    """With the loss on step 200, sigmoid's ||∂L/∂h_t|| falls by orders of magnitude, faster than tanh's."""
    sig, tanh = plots.gradient_norms("sigmoid"), plots.gradient_norms("tanh")
    assert sig[0] < 1e-100 * sig[-1]
    assert sig[-51] < 1e-20 * sig[-1]
    assert sig[-51] / sig[-1] < tanh[-51] / tanh[-1]


def test_gradient_norms_refuse_bad_arguments() -> None:
    """Unknown activations and non-positive sizes are ValueErrors."""
    for kwargs in [{"activation": "identity"}, {"steps": 0}, {"hidden": -1}, {"seed": 1.5}]:
        with pytest.raises(ValueError, match="gradient_norms"):
            plots.gradient_norms(**kwargs)  # type: ignore[arg-type]


# --- the pictures ---------------------------------------------------------------------------------


def test_generic_plots_know_no_task() -> None:
    """``bptt.plots`` draws for any network and loads no task; the adder's pictures live with it."""
    code = "import sys, bptt.plots; print(sorted(m for m in sys.modules if m.startswith('bptt.tasks')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout == "[]\n"
    assert not {"plot_hidden", "plot_pca"} & {*plots.__all__, *vars(plots)}
    assert plot_hidden.__module__ == plot_pca.__module__ == "bptt.tasks.addition.plots"


@pytest.mark.parametrize(("a", "b"), [(1234, 567), (0, 0), (2**64 - 1, 1)])
def test_plot_hidden_png(shipped: bptt.Sequential, a: int, b: int) -> None:
    """A heatmap with its bit rows, from a 1-step sum to the widest allowed (64-bit operands)."""
    plot_hidden(shipped, a, b, Path("hidden.png"))
    assert_png(Path("hidden.png"))


def test_plot_hidden_of_a_wrong_adder() -> None:
    """An untrained adder (wrong bits outlined) and a non-tanh RNN still draw."""
    plot_hidden(untrained(0, hidden=40), 200, 100, "u.png")
    assert_png(Path("u.png"))
    plot_hidden(carry_adder(), 5, 3, "c.png")
    assert_png(Path("c.png"))


def test_plot_hidden_refuses_bad_input(shipped: bptt.Sequential) -> None:
    """Negative or too-wide operands and non-adders raise ValueError, and nothing is written."""
    for a, b, says in [(-1, 2, "non-negative"), (2**64, 0, "at most 64"), (1.5, 2, "non-negative")]:
        with pytest.raises(ValueError, match=says):
            plot_hidden(shipped, a, b, "x.png")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no recurrent layer"):
        plot_hidden(bptt.Sequential([bptt.Dense(2, 1, rng=0)]), 1, 2, "x.png")
    with pytest.raises(ValueError, match="1 value per step"):
        plot_hidden(bptt.Sequential([bptt.RNN(2, 3, rng=0), bptt.Dense(3, 2, rng=0)]), 1, 2, "x.png")
    assert not Path("x.png").exists()


def test_plot_pca_png(shipped: bptt.Sequential) -> None:
    """The trained adder's states, and a one-unit RNN's (only one principal component exists)."""
    plot_pca(shipped, "pca.png", samples=64, n_bits=16, rng=0)
    assert_png(Path("pca.png"))
    plot_pca(carry_adder(), "one.png", samples=8, n_bits=4, rng=np.random.default_rng(1))
    assert_png(Path("one.png"))


def nearest_centre_rate(model: bptt.Sequential, samples: int, seed: int, components: int | None) -> float:
    """Fraction of states ``h_t`` nearest the centre of their own (a_t + b_t, carry in) case.

    ``components=2`` measures on the two principal components that ``plot_pca`` draws; ``None``
    in the full state space.
    """
    x, _ = make_batch(16, samples, np.random.default_rng(seed))
    h = hidden_states(model, x).reshape(-1, model[0].hidden_size)
    points = h - h.mean(axis=0)
    if components is not None:
        points = points @ np.linalg.svd(points, full_matrices=False)[2][:components].T
    carry_in = np.vstack([np.zeros((1, samples), bool), carry_bits(x)[:-1]]).reshape(-1)
    case = (x[:, :, 0] + x[:, :, 1]).reshape(-1).astype(int) * 2 + carry_in
    centres = np.array([points[case == k].mean(axis=0) for k in range(6)])
    nearest = np.linalg.norm(points[:, None] - centres[None], axis=2).argmin(axis=1)
    return float(np.mean(nearest == case))


@pytest.mark.parametrize("seed", [0, 4])
def test_states_cluster_by_input_case(shipped: bptt.Sequential, seed: int) -> None:
    """Trained: every state lies nearest its own case's centre (six clusters); untrained: far from it."""
    assert nearest_centre_rate(shipped, 64, seed, None) == 1.0
    assert nearest_centre_rate(untrained(seed), 64, seed, None) < 0.9


def test_default_pca_picture_separates_the_clusters(shipped: bptt.Sequential) -> None:
    """On the two components that ``plot_pca``'s defaults draw, the six clusters do not mix."""
    assert nearest_centre_rate(shipped, 256, 0, 2) == 1.0
    assert nearest_centre_rate(untrained(0), 256, 0, 2) < 0.9


def test_plot_pca_refuses_bad_input(shipped: bptt.Sequential) -> None:
    """Non-positive sizes and non-adders raise ValueError."""
    with pytest.raises(ValueError, match="samples"):
        plot_pca(shipped, "x.png", samples=0)
    with pytest.raises(ValueError, match="n_bits"):
        plot_pca(shipped, "x.png", n_bits=-2)
    with pytest.raises(ValueError, match="2 input bits"):
        plot_pca(bptt.Sequential([bptt.RNN(3, 4, rng=0), bptt.Dense(4, 1, rng=0)]), "x.png")


@pytest.mark.parametrize(("steps", "hidden"), [(1, 1), (30, 4)])
def test_plot_gradnorm_png(steps: int, hidden: int) -> None:
    """The three curves on one log axes, down to T = 1."""
    plots.plot_gradnorm("g.png", steps=steps, hidden=hidden, seed=1)
    assert_png(Path("g.png"))


@pytest.mark.parametrize("margins", [True, False])
def test_plot_history_png(margins: bool) -> None:
    """The shipped training history, with or without its margins."""
    extra = bptt.io.read(shipped_model())[2]
    if not margins:
        extra = {k: v for k, v in extra.items() if k != "margin"}
    plots.plot_history(History.from_arrays(extra), "h.png")
    assert_png(Path("h.png"))


def test_plots_replace_atomically(shipped: bptt.Sequential) -> None:
    """An existing file is replaced whole; a folder that does not exist raises and leaves nothing."""
    Path("p.png").write_bytes(b"old")
    plots.plot_gradnorm("p.png", steps=5, hidden=2)
    assert_png(Path("p.png"))
    with pytest.raises(FileNotFoundError):
        plot_pca(shipped, Path("missing") / "p.png", samples=4, n_bits=4)
    assert sorted(p.name for p in Path().iterdir()) == ["p.png"]


def _each_plot(shipped: bptt.Sequential) -> dict[str, Any]:
    """Each plot function, as a call that draws a small picture to a given path."""
    extra = bptt.io.read(shipped_model())[2]
    return {
        "history": lambda path: plots.plot_history(History.from_arrays(extra), path),
        "hidden": lambda path: plot_hidden(shipped, 5, 9, path),
        "pca": lambda path: plot_pca(shipped, path, samples=4, n_bits=4),
        "gradnorm": lambda path: plots.plot_gradnorm(path, steps=5, hidden=2),
    }


@pytest.mark.parametrize(
    "name, magic",
    [("p.svg", b"<?xml"), ("p.pdf", b"%PDF-"), ("P.PNG", PNG_SIGNATURE), ("p.png", PNG_SIGNATURE)],
)
@pytest.mark.parametrize("kind", ["history", "hidden", "pca", "gradnorm"])
def test_the_format_follows_the_extension(
    shipped: bptt.Sequential, kind: str, name: str, magic: bytes
) -> None:
    """`x.svg` gets SVG bytes (it once got PNG bytes), `x.pdf` a PDF, and nothing else is left."""
    _each_plot(shipped)[kind](name)
    data = Path(name).read_bytes()
    assert data.startswith(magic) and len(data) > 1000
    if name.endswith(".svg"):
        assert b"<svg" in data[:1000]
    assert [p.name for p in Path().iterdir()] == [name]


@pytest.mark.parametrize("name", ["p.jpg", "p.npz", "p", "p.png.tmp", ".svg"])
@pytest.mark.parametrize("kind", ["history", "hidden", "pca", "gradnorm"])
def test_other_extensions_are_refused_before_drawing(
    shipped: bptt.Sequential, monkeypatch: pytest.MonkeyPatch, kind: str, name: str
) -> None:
    """An extension matplotlib would not write as asked is refused, listing the allowed ones, before
    any drawing (matplotlib is never reached) and without writing anything."""
    plot = _each_plot(shipped)[kind]

    def no_drawing() -> None:
        raise AssertionError("drew a picture for a path it then refused")

    for module in (plots, adder_plots):
        monkeypatch.setattr(module, "pyplot", no_drawing)
    with pytest.raises(ValueError, match=r"; expected one of \.png, \.svg, \.pdf$") as info:
        plot(name)
    assert repr(name) in str(info.value)
    assert list(Path().iterdir()) == []


def test_a_users_tmp_file_survives_a_plot() -> None:
    """The old fixed temporary name `X.tmp.png` was deleted after each plot; the user's file stays."""
    for own in ("g.png.tmp.png", ".g.png.tmp"):
        Path(own).write_bytes(b"mine")
    plots.plot_gradnorm("g.png", steps=5, hidden=2)
    assert Path("g.png").read_bytes().startswith(PNG_SIGNATURE)
    assert sorted(p.name for p in Path().iterdir()) == [".g.png.tmp", "g.png", "g.png.tmp.png"]
    assert Path("g.png.tmp.png").read_bytes() == b"mine" and Path(".g.png.tmp").read_bytes() == b"mine"


def test_plots_write_only_regular_files() -> None:
    """A plot to /dev/null or a directory named like a picture is refused; a symlink is written through."""
    Path("null.png").symlink_to("/dev/null")
    with pytest.raises(ValueError, match=r"'null\.png' is a character device, not a regular file"):
        plots.plot_gradnorm("null.png", steps=5, hidden=2)
    assert Path("/dev/null").is_char_device()
    Path("d.png").mkdir()
    with pytest.raises(ValueError, match=r"'d\.png' is a directory, not a regular file"):
        plots.plot_gradnorm("d.png", steps=5, hidden=2)
    Path("real.png").write_bytes(b"old")
    Path("link.png").symlink_to("real.png")
    plots.plot_gradnorm("link.png", steps=5, hidden=2)
    assert Path("link.png").is_symlink()
    assert_png(Path("real.png"))


# --- bptt plot --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["history", "hidden", "pca", "gradnorm"])
def test_cli_plot_each_kind(capsys: pytest.CaptureFixture[str], kind: str) -> None:
    """``bptt plot KIND --out F.png`` exits 0 and writes the picture; hidden and pca print the probe."""
    rc, out, err = cli(capsys, "plot", kind, "--out", f"{kind}.png")
    assert rc == 0, err
    assert_png(Path(f"{kind}.png"))
    lines = out.splitlines()
    assert lines[-1] == f"plotted {kind}.png"
    if kind in ("hidden", "pca"):
        assert len(lines) == 3
        assert lines[0].startswith("carry probe:") and "100.00%" in lines[0]
        assert lines[1].startswith("carry units")
    else:
        assert len(lines) == 1


def test_cli_plot_hidden_options(capsys: pytest.CaptureFixture[str]) -> None:
    """--model, --a, --b and --seed are taken (here an untrained model: its probe is below 100%)."""
    bptt.io.save(untrained(3), "u.npz")
    rc, out, err = cli(
        capsys, "plot", "hidden", "--model", "u.npz", "--a", "99", "--b", "7", "--seed", "2", "--out", "u.png"
    )
    assert rc == 0, err
    assert "100.00%" not in out.splitlines()[0]
    assert_png(Path("u.png"))


def test_cli_plot_default_model_is_local(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --model, ./adder.npz is used when present: here one saved without a history."""
    bptt.io.save(untrained(0), "adder.npz")
    rc, out, err = cli(capsys, "plot", "history", "--out", "h.png")
    assert rc == 2 and out == ""
    assert "'adder.npz' holds no training history" in err


def test_cli_plot_without_matplotlib(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without matplotlib the existing install hint is printed, with exit 2."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc, out, err = cli(capsys, "plot", "gradnorm", "--out", "g.png")
    assert rc == 2 and out == ""
    assert err == "bptt plot: error: plots need matplotlib: pip install 'bptt[plot]'\n"
    assert not Path("g.png").exists()


BAD_PLOT = [
    (["plot"], "kind"),
    (["plot", "hidden"], "--out"),
    (["plot", "nope", "--out", "x.png"], "nope"),
    (["plot", "hidden", "--out", "missing/x.png"], "missing"),
    (["plot", "hidden", "--out", "."], "directory"),
    (["plot", "hidden", "--a", "-3", "--out", "x.png"], "-3"),
    (["plot", "hidden", "--a", str(2**64), "--out", "x.png"], "at most 64"),
    (["plot", "pca", "--a", "1", "--out", "x.png"], "--a"),
    (["plot", "gradnorm", "--model", "m.npz", "--out", "x.png"], "--model"),
    (["plot", "gradnorm", "--seed", "x", "--out", "x.png"], "'x'"),
    (["plot", "history", "--model", "nohistory.npz", "--out", "x.png"], "no training history"),
    (["plot", "history", "--model", "badhistory.npz", "--out", "x.png"], "malformed"),
    (["plot", "history", "--model", "corrupt.npz", "--out", "x.png"], "truncated or corrupt"),
    (["plot", "hidden", "--model", "missing.npz", "--out", "x.png"], "does not exist"),
    (["plot", "pca", "--model", "dense.npz", "--out", "x.png"], "no recurrent layer"),
    (["plot", "hidden", "--model", "three.npz", "--out", "x.png"], "2 input bits"),
]


@pytest.mark.parametrize(("args", "says"), BAD_PLOT, ids=[" ".join(a) for a, _ in BAD_PLOT])
def test_cli_plot_bad_input(capsys: pytest.CaptureFixture[str], args: list[str], says: str) -> None:
    """Each bad input exits 2 with one stderr line naming the problem, and writes no picture."""
    blob = shipped_model().read_bytes()
    Path("corrupt.npz").write_bytes(blob[: len(blob) // 2])
    bptt.io.save(untrained(0), "nohistory.npz")
    bptt.io.save(untrained(0), "badhistory.npz", extra={"loss": np.ones(3), "check_step": np.ones(2)})
    bptt.io.save(bptt.Sequential([bptt.Dense(2, 1, rng=0)]), "dense.npz")
    bptt.io.save(bptt.Sequential([bptt.RNN(3, 4, rng=0), bptt.Dense(4, 1, rng=0)]), "three.npz")
    rc, out, err = cli(capsys, *args)
    assert rc == 2, (out, err)
    assert out == ""
    assert err.startswith("bptt") and err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert says in err
    assert not [p for p in Path().rglob("*.png")]
