"""``bptt export --torch`` and ``bptt.bridge.torch_checkpoint``: a model file becomes a PyTorch
checkpoint that ``torch.load`` reads safely and ``bptt.from_torch`` turns back into the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bptt
from bptt.bridge import CHECKPOINT_FORMAT, torch_checkpoint

torch = pytest.importorskip("torch")
# A 10¹⁰-input Dense: built, it would need 160 GB; its size must match a stored weight first.
HUGE = '[{"type": "Dense", "config": {"in_features": 10000000000, "out_features": 2}}]'


def _model() -> bptt.Sequential:
    return bptt.Sequential(
        [bptt.Bidirectional(bptt.LSTM(3, 4, rng=0), rng=1), bptt.GRU(8, 5, rng=2), bptt.Dense(5, 2, rng=3)]
    )


def _x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(6, 2, 3))


def _export(capsys: pytest.CaptureFixture[str], model: str, out: str) -> tuple[int, str, str]:
    rc = bptt.cli.main(["export", "--torch", model, out])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_export_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """export -> torch.load (weights only) -> from_torch computes what the model file does."""
    model = _model()
    bptt.save(model, tmp_path / "m.npz")
    rc, out, err = _export(capsys, str(tmp_path / "m.npz"), str(tmp_path / "m.pt"))
    assert (rc, err) == (0, ""), err
    assert out.startswith(f"wrote {tmp_path / 'm.pt'}: ") and "bptt.from_torch(torch.load(" in out
    checkpoint = torch.load(tmp_path / "m.pt", weights_only=True)
    assert checkpoint["format"] == CHECKPOINT_FORMAT and checkpoint["version"] == 1
    x = _x()
    np.testing.assert_allclose(
        bptt.from_torch(checkpoint).forward(x), model.forward(x), rtol=1e-12, atol=1e-14
    )
    module = bptt.to_torch(bptt.from_torch(checkpoint))
    same = module(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(same, model.forward(x), rtol=1e-12, atol=1e-14)


def test_state_dict_is_to_torchs(tmp_path: Path) -> None:
    """The checkpoint's ``state_dict`` loads into ``to_torch(model)`` as torch's own names."""
    model = _model()
    state = torch_checkpoint(model)["state_dict"]
    assert "0.rnn.weight_ih_l0_reverse" in state and "2.weight" in state
    fresh = bptt.to_torch(
        bptt.Sequential([bptt.Bidirectional(bptt.LSTM(3, 4, rng=9), rng=9), *list(model)[1:]])
    )
    fresh.load_state_dict(state)
    x = torch.from_numpy(_x())
    np.testing.assert_array_equal(fresh(x).detach().numpy(), bptt.to_torch(model)(x).detach().numpy())


def test_single_layer_and_initial_state() -> None:
    """A lone layer with ``h0``/``c0`` set comes back as a ``Sequential`` with the same states."""
    lstm = bptt.LSTM(3, 4, rng=0)
    rng = np.random.default_rng(1)
    lstm.h0, lstm.c0 = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    back = bptt.from_torch(torch_checkpoint(lstm))
    x = _x()
    np.testing.assert_allclose(back.forward(x), lstm.forward(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"format": "bptt"}, "not a bptt-torch checkpoint"),
        ({"version": 2}, "not a bptt-torch checkpoint"),
        ({"state_dict": {"0.weight": 3}}, "not a dict of tensors"),
        ({"architecture": "{"}, "malformed"),
        ({"architecture": "[]"}, "names no layers"),
        ({"architecture": '[{"type": "Nope", "config": {}}]'}, "malformed"),
        ({"architecture": HUGE}, "disagrees"),
        ({"state_dict": {}}, "disagrees"),
    ],
)
def test_bad_checkpoint_is_a_value_error(change: dict[str, Any], says: str) -> None:
    """A damaged or hostile checkpoint is refused in one line, never used to build a huge layer."""
    checkpoint = torch_checkpoint(bptt.Sequential([bptt.Dense(3, 2, rng=0)]))
    with pytest.raises(ValueError, match=says):
        bptt.from_torch({**checkpoint, **change})


def test_weights_that_do_not_fit() -> None:
    """Weights of another shape than the architecture's are refused, not loaded."""
    checkpoint = torch_checkpoint(bptt.Sequential([bptt.Dense(3, 2, rng=0), bptt.Dense(2, 3, rng=1)]))
    checkpoint["state_dict"]["0.weight"] = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="do not fit"):
        bptt.from_torch(checkpoint)


def test_unexportable_model_leaves_the_old_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An RNN torch cannot express is one line, exit 2, and the existing OUT is untouched."""
    bptt.save(bptt.RNN(2, 3, activation="sigmoid", rng=0), tmp_path / "s.npz")
    (tmp_path / "old.pt").write_bytes(b"old")
    rc, out, err = _export(capsys, str(tmp_path / "s.npz"), str(tmp_path / "old.pt"))
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert "cannot be exported" in err and "sigmoid" in err
    assert (tmp_path / "old.pt").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.pt", "s.npz"]


def test_unregistered_layer_is_refused() -> None:
    """A layer type that is not registered could not be rebuilt, so it is not exported."""

    class Mine(bptt.Dense):
        pass

    with pytest.raises(TypeError, match="not a registered layer type"):
        torch_checkpoint(bptt.Sequential([Mine(2, 2, rng=0)]))


def test_help_names_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    """``bptt --help`` lists export, and ``bptt export --help`` shows how to read the file back."""
    assert bptt.cli.main(["--help"]) == 0
    assert "export" in capsys.readouterr().out
    assert bptt.cli.main(["export", "--help"]) == 0
    assert "bptt.from_torch(torch.load(OUT))" in " ".join(capsys.readouterr().out.split())
