"""``bptt.io``: models round-trip exactly, saves are atomic, and every bad file is refused with a reason."""

from __future__ import annotations

import builtins
import copy
import functools
import io
import json
import os
import pickle
import struct
import sys
import tempfile
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch  # noqa: F401  (the test environment must have the oracle installed)
from hypothesis import given, settings
from hypothesis import strategies as st

import bptt
import bptt.io
from bptt.functional import ACTIVATIONS

ACTIVATION_NAMES = ["tanh", "sigmoid", "relu", "identity"]
RECORD = "__bptt__"  # the record's member name, documented in bptt.io's module docstring
UNPICKLED_FLAG = "_bptt_test_io_unpickled"


# ---------------------------------------------------------------------------------------------
# Helpers


def _all_types(rng: np.random.Generator) -> bptt.Sequential:
    """A float64 chain holding every layer type, every activation, with and without bias."""
    return bptt.Sequential(
        [
            bptt.RNN(3, 4, activation="tanh", rng=rng),
            bptt.Sigmoid(),
            bptt.RNN(4, 5, activation="relu", bias=False, rng=rng),
            bptt.Tanh(),
            bptt.Dense(5, 6, rng=rng),
            bptt.ReLU(),
            bptt.RNN(6, 3, activation="identity", rng=rng),
            bptt.RNN(3, 3, activation="sigmoid", bias=False, stateful=True, rng=rng),
            bptt.Dense(3, 2, bias=False, rng=rng),
            bptt.Last(),
        ]
    )


def _float32_chain(rng: np.random.Generator) -> bptt.Sequential:
    """A float32 chain: RNN, activation, Dense."""
    f32 = np.float32
    return bptt.Sequential(
        [bptt.RNN(3, 4, activation="sigmoid", rng=rng, dtype=f32), bptt.Tanh(), bptt.Dense(4, 2, dtype=f32)]
    )


SINGLE_LAYERS: dict[str, Callable[[np.random.Generator], bptt.Layer]] = {
    "dense": lambda r: bptt.Dense(3, 4, rng=r),
    "dense-nobias": lambda r: bptt.Dense(3, 4, bias=False, rng=r),
    "dense-f32": lambda r: bptt.Dense(3, 4, rng=r, dtype=np.float32),
    **{f"rnn-{a}": (lambda r, a=a: bptt.RNN(3, 4, activation=a, rng=r)) for a in ACTIVATION_NAMES},
    **{
        f"rnn-{a}-nobias": (lambda r, a=a: bptt.RNN(3, 4, activation=a, bias=False, rng=r))
        for a in ACTIVATION_NAMES
    },
    "rnn-f32": lambda r: bptt.RNN(3, 4, rng=r, dtype=np.float32),
    "sigmoid": lambda r: bptt.Sigmoid(),
    "tanh": lambda r: bptt.Tanh(),
    "relu": lambda r: bptt.ReLU(),
    "last": lambda r: bptt.Last(),
}


def _run(model: bptt.Layer, x: np.ndarray, g_seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Forward, then backward with a seeded random upstream gradient: (y, grad_x, grads copy)."""
    y = model.forward(x)
    g = np.random.default_rng(g_seed).normal(size=y.shape).astype(y.dtype)
    gx = model.backward(g)
    return y, gx, {k: v.copy() for k, v in model.grads.items()}


def _prefixed(model: bptt.Layer, d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A single layer's dict keyed like the one-layer Sequential that load returns."""
    return d if isinstance(model, bptt.Sequential) else {f"0.{k}": v for k, v in d.items()}


def _assert_same_model(original: bptt.Layer, loaded: bptt.Sequential, x: np.ndarray) -> None:
    """Same layer types and configs, bit-identical params, outputs and gradients, same dtypes."""
    layers = list(original) if isinstance(original, bptt.Sequential) else [original]
    assert isinstance(loaded, bptt.Sequential)
    assert [type(layer) for layer in loaded] == [type(layer) for layer in layers]
    assert [layer.config() for layer in loaded] == [layer.config() for layer in layers]
    want = _prefixed(original, original.params)
    assert loaded.params.keys() == want.keys()
    for k, v in want.items():
        assert loaded.params[k].dtype == v.dtype, k
        assert np.array_equal(loaded.params[k], v), k
    y0, gx0, grads0 = _run(original, x, 7)
    y1, gx1, grads1 = _run(loaded, x, 7)
    assert y1.dtype == y0.dtype and gx1.dtype == gx0.dtype
    assert np.array_equal(y1, y0)
    assert np.array_equal(gx1, gx0)
    grads0 = _prefixed(original, grads0)
    assert grads1.keys() == grads0.keys()
    for k in grads0:
        assert np.array_equal(grads1[k], grads0[k]), k


def _small_model() -> bptt.Sequential:
    return bptt.Sequential([bptt.RNN(2, 3, rng=0), bptt.Dense(3, 1, rng=1)])


def _members(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The record (as a dict) and the other arrays of a saved file."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    record = json.loads(arrays.pop(RECORD).tobytes().decode())
    return record, arrays


def _write(path: Path, record: dict[str, Any] | bytes, arrays: dict[str, np.ndarray]) -> Path:
    """An npz of ``arrays`` plus a record (a dict as JSON, or raw bytes) stored the way bptt stores it."""
    blob = record if isinstance(record, bytes) else json.dumps(record).encode()
    np.savez(path, **arrays, **{RECORD: np.frombuffer(blob, np.uint8)})
    return path


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _refusal(path: Path) -> str:
    """Load ``path``, which must raise ValueError; return the message."""
    with pytest.raises(ValueError) as info:
        bptt.io.load(path)
    return str(info.value)


def _folder(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A valid small model file."""
    path = tmp_path / "model.npz"
    bptt.io.save(_small_model(), path)
    return path


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    """Set the process umask for one test; restore it after."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


class Armed:
    """Unpickling this runs ``action(*args)``; pickling it records that call."""

    def __init__(self, action: Callable[..., Any], *args: Any) -> None:
        self.action, self.args = action, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.action, self.args


def _armed_array(marker: Path) -> np.ndarray:
    """An object array whose unpickling creates ``marker`` and sets a builtins flag."""
    flag = f"import builtins; builtins.{UNPICKLED_FLAG} = True"
    return np.array([Armed(os.mkdir, str(marker)), Armed(exec, flag)], dtype=object)


# ---------------------------------------------------------------------------------------------
# Round trips


def test_top_level_names() -> None:
    """The contract's ``bptt.save`` and ``bptt.load`` are the functions in ``bptt.io``."""
    assert getattr(bptt, "save", None) is bptt.io.save
    assert getattr(bptt, "load", None) is bptt.io.load


@pytest.mark.parametrize(("T", "B"), [(1, 1), (4, 3)])
@pytest.mark.parametrize("build", [_all_types, _float32_chain], ids=["all-types", "float32"])
def test_sequential_round_trip(tmp_path: Path, build: Callable[..., bptt.Sequential], T: int, B: int) -> None:
    """A Sequential of every layer type comes back with identical params, outputs and gradients."""
    rng = np.random.default_rng(0)
    model = build(rng)
    bptt.io.save(model, tmp_path / "m.npz")
    x = rng.normal(size=(T, B, 3))
    _assert_same_model(model, bptt.io.load(tmp_path / "m.npz"), x)


@pytest.mark.parametrize(("T", "B"), [(1, 1), (5, 2)])
@pytest.mark.parametrize("name", sorted(SINGLE_LAYERS))
def test_single_layer_round_trip(tmp_path: Path, name: str, T: int, B: int) -> None:
    """A lone layer saves and loads as a one-layer Sequential that computes exactly the same."""
    rng = np.random.default_rng(1)
    layer = SINGLE_LAYERS[name](rng)
    bptt.io.save(layer, str(tmp_path / "one.npz"))
    x = rng.normal(size=(T, B, 3))
    _assert_same_model(layer, bptt.io.load(str(tmp_path / "one.npz")), x)


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 4)),
    activation=st.sampled_from(ACTIVATION_NAMES),
    biases=st.tuples(st.booleans(), st.booleans()),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_property(
    sizes: tuple[int, int, int], activation: str, biases: tuple[bool, bool], dtype: Any, seed: int
) -> None:
    """Any RNN -> Dense architecture, dtype and weights round-trips bit for bit."""
    I, H, O = sizes
    rng = np.random.default_rng(seed)
    model = bptt.Sequential(
        [
            bptt.RNN(I, H, activation=activation, bias=biases[0], rng=rng, dtype=dtype),
            bptt.Dense(H, O, bias=biases[1], rng=rng, dtype=dtype),
        ]
    )
    with tempfile.TemporaryDirectory() as d:
        bptt.io.save(model, Path(d) / "p.npz")
        loaded = bptt.io.load(Path(d) / "p.npz")
    _assert_same_model(model, loaded, rng.normal(size=(3, 2, I)))


def test_meta_and_extra_come_back(tmp_path: Path) -> None:
    """``read`` returns the saved meta dict and extra arrays with their values and dtypes."""
    rng = np.random.default_rng(2)
    meta = {"command": "bptt train --seed 0", "steps": 125, "lr": 0.05, "ok": True, "none": None,
            "nested": {"list": [1, 2.5, "x"]}}  # fmt: skip
    extra = {
        "loss": rng.random(17),
        "step": np.arange(5, dtype=np.int64),
        "acc32": rng.random((2, 3)).astype(np.float32),
        "flags": rng.random(4) < 0.5,
        "bytes": rng.integers(0, 256, 6).astype(np.uint8),
    }
    model = _small_model()
    bptt.io.save(model, tmp_path / "m.npz", meta=meta, extra=extra)
    loaded, meta_back, extra_back = bptt.io.read(tmp_path / "m.npz")
    assert meta_back == meta
    assert extra_back.keys() == extra.keys()
    for k, v in extra.items():
        assert extra_back[k].dtype == v.dtype, k
        assert np.array_equal(extra_back[k], v), k
    _assert_same_model(model, loaded, rng.normal(size=(4, 2, 2)))


def test_read_without_meta_or_extra(saved: Path) -> None:
    """A file saved without meta or extra reads back an empty dict of each."""
    _, meta, extra = bptt.io.read(saved)
    assert meta == {} and extra == {}


def test_save_overwrites(tmp_path: Path) -> None:
    """Saving over an existing file replaces it with the new model."""
    rng = np.random.default_rng(3)
    bptt.io.save(_small_model(), tmp_path / "m.npz")
    newer = bptt.Sequential([bptt.RNN(2, 3, rng=rng), bptt.Dense(3, 1, rng=rng)])
    bptt.io.save(newer, tmp_path / "m.npz")
    _assert_same_model(newer, bptt.io.load(tmp_path / "m.npz"), rng.normal(size=(3, 1, 2)))
    assert _folder(tmp_path) == ["m.npz"]


# ---------------------------------------------------------------------------------------------
# Refusals: each bad file raises ValueError naming the reason


def test_missing_path(tmp_path: Path) -> None:
    """A path that does not exist is refused as such."""
    assert "does not exist" in _refusal(tmp_path / "nope.npz")


def test_directory(tmp_path: Path) -> None:
    """A directory is refused as a directory."""
    assert "directory" in _refusal(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    """A zero-byte file is refused as empty."""
    (tmp_path / "e.npz").write_bytes(b"")
    assert "empty" in _refusal(tmp_path / "e.npz")


def test_random_bytes(tmp_path: Path) -> None:
    """Random bytes are refused as not a model file (and not misreported as pickled data)."""
    blob = np.random.default_rng(4).bytes(600)
    assert not blob.startswith((b"PK", b"\x93NUMPY"))
    (tmp_path / "r.npz").write_bytes(blob)
    msg = _refusal(tmp_path / "r.npz")
    assert "pickled" not in msg
    assert "not a bptt model file" in msg or "not a readable .npz" in msg


def test_truncated(saved: Path) -> None:
    """A valid file cut in half is refused as truncated or corrupt."""
    blob = saved.read_bytes()
    saved.write_bytes(blob[: len(blob) // 2])
    assert "truncated or corrupt" in _refusal(saved)


def test_npy_file(tmp_path: Path) -> None:
    """A plain ``.npy`` array (np.save) is refused with ValueError, not a TypeError."""
    np.save(tmp_path / "a.npy", np.random.default_rng(5).random(3))
    assert "not a bptt model file" in _refusal(tmp_path / "a.npy")


@pytest.mark.parametrize("with_model", [False, True], ids=["alone", "beside-a-model"])
def test_pickled_object_array_is_never_unpickled(tmp_path: Path, with_model: bool) -> None:
    """An npz holding a pickled object array is refused, and its payload never runs."""
    marker = tmp_path / "unpickled-marker"
    path = tmp_path / "evil.npz"
    if with_model:
        bptt.io.save(_small_model(), path)
        record, arrays = _members(path)
        _write(path, record, {**arrays, "extra/evil": _armed_array(marker)})
    else:
        np.savez(path, evil=_armed_array(marker), allow_pickle=True)
    try:
        assert "pickled" in _refusal(path)
        assert not marker.exists()
        assert not hasattr(builtins, UNPICKLED_FLAG)
        with np.load(path, allow_pickle=True) as z:  # the payload is live: numpy's pickling path runs it
            z["extra/evil" if with_model else "evil"]
        assert marker.is_dir() and getattr(builtins, UNPICKLED_FLAG) is True
    finally:
        if hasattr(builtins, UNPICKLED_FLAG):
            delattr(builtins, UNPICKLED_FLAG)


def test_raw_pickle_file_is_never_unpickled(tmp_path: Path) -> None:
    """A bare pickle file is refused without running its payload."""
    marker = tmp_path / "unpickled-marker"
    (tmp_path / "p.npz").write_bytes(pickle.dumps(Armed(os.mkdir, str(marker))))
    assert "pickled" in _refusal(tmp_path / "p.npz")
    assert not marker.exists()


def test_npz_without_record(tmp_path: Path) -> None:
    """A valid npz with no bptt record is refused as not a bptt model file."""
    np.savez(tmp_path / "plain.npz", W=np.random.default_rng(6).random((2, 3)))
    assert "not a bptt model file" in _refusal(tmp_path / "plain.npz")


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_unknown_version(saved: Path, version: Any) -> None:
    """A record with any other format version is refused naming the version."""
    record, arrays = _members(saved)
    record["version"] = version
    msg = _refusal(_write(saved, record, arrays))
    assert "version" in msg and repr(version) in msg


def test_not_a_bptt_record(saved: Path) -> None:
    """A record whose format is not bptt is refused."""
    record, arrays = _members(saved)
    record["format"] = "keras"
    assert "not a bptt" in _refusal(_write(saved, record, arrays))


def test_corrupt_record_json(saved: Path) -> None:
    """A record that is not valid JSON is refused as corrupt."""
    _, arrays = _members(saved)
    assert "corrupt" in _refusal(_write(saved, b'{"format": "bptt", "vers', arrays))


def test_record_shape_disagrees_with_array(saved: Path) -> None:
    """A record whose recorded shape differs from the stored array is refused naming the shape."""
    record, arrays = _members(saved)
    record["layers"][1]["params"]["W"] = [3, 2]
    msg = _refusal(_write(saved, record, arrays))
    assert "shape" in msg and "(3, 2)" in msg


def test_array_shape_disagrees_with_record(saved: Path) -> None:
    """A stored array of another shape than record and config say is refused naming the shape."""
    record, arrays = _members(saved)
    arrays["param/0.W_hh"] = np.random.default_rng(7).random((3, 4))
    msg = _refusal(_write(saved, record, arrays))
    assert "shape" in msg and "(3, 4)" in msg


def test_missing_param_array(saved: Path) -> None:
    """A record that names a param whose array is absent is refused."""
    record, arrays = _members(saved)
    del arrays["param/1.b"]
    assert "missing" in _refusal(_write(saved, record, arrays))


def test_integer_param_array(saved: Path) -> None:
    """A param stored as integers is refused naming the dtype."""
    record, arrays = _members(saved)
    arrays["param/1.W"] = np.ones((3, 1), np.int64)
    assert "dtype" in _refusal(_write(saved, record, arrays))


def test_unknown_layer_type(saved: Path) -> None:
    """An unknown layer type is refused naming it."""
    record, arrays = _members(saved)
    record["layers"][0]["type"] = "Conv1d"
    msg = _refusal(_write(saved, record, arrays))
    assert "unknown type" in msg and "Conv1d" in msg


def test_invalid_layer_config(saved: Path) -> None:
    """A config the layer's constructor rejects is refused as invalid."""
    record, arrays = _members(saved)
    record["layers"][0]["config"]["activation"] = "softsign"
    assert "invalid configuration" in _refusal(_write(saved, record, arrays))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("key", ["param/0.W_hh", "param/1.b"])
def test_non_finite_param(saved: Path, key: str, value: float) -> None:
    """A param with one entry flipped to NaN or Inf is refused."""
    record, arrays = _members(saved)
    arrays[key] = arrays[key].copy()
    arrays[key].flat[np.random.default_rng(8).integers(arrays[key].size)] = value
    assert "NaN" in _refusal(_write(saved, record, arrays))


# Crafted files that reach code paths past the checks above. Each must still be a ValueError.
def _with_member(d: Path, rec: dict[str, Any], arrays: dict[str, np.ndarray], name: str, body: bytes) -> Path:
    """A model zip whose member ``name`` (replacing ``name`` or ``name.npy``) holds ``body``."""
    members = {f"{k}.npy": _npy(v) for k, v in arrays.items()}
    members[f"{RECORD}.npy"] = _npy(np.frombuffer(json.dumps(rec).encode(), np.uint8))
    members.pop(f"{name}.npy", None)
    return _zip(d / "f.npz", {**members, name: body})


def _npy_with_header_byte(pos: int, char: str) -> bytes:
    """The .npy bytes of a (3, 1) float64 array with header byte ``pos`` replaced by ``char``."""
    blob = bytearray(_npy(np.zeros((3, 1))))
    blob[pos] = ord(char)
    return bytes(blob)


def _raw_record_member(d: Path, rec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """The record stored as a plain zip member, not an .npy array."""
    return _with_member(d, rec, arrays, RECORD, json.dumps(rec).encode())


def _raw_param_member(d: Path, rec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """One param stored as a plain zip member, not an .npy array."""
    return _with_member(d, rec, arrays, "param/1.W", b"\x00" * 24)


def _empty_record_member(d: Path, rec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """The record's .npy member truncated to zero bytes (so not even the magic is left)."""
    return _with_member(d, rec, arrays, f"{RECORD}.npy", b"")


def _npy_header_syntax_error(d: Path, rec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """A param's .npy header with one byte changed so Python's parser rejects it."""
    return _with_member(d, rec, arrays, "param/1.W.npy", _npy_with_header_byte(21, ","))


def _npy_header_unclosed(d: Path, rec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """A param's .npy header with an unclosed bracket in its padding."""
    return _with_member(d, rec, arrays, "param/1.W.npy", _npy_with_header_byte(100, "("))


def _huge_npy_header(d: Path, rec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """A param whose .npy header claims 10**16 elements but holds 24 bytes."""
    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**8, 10**8)}
    np.lib.format.write_array_header_1_0(buf, header)
    return _with_member(d, rec, arrays, "param/1.W.npy", buf.getvalue() + b"\x00" * 24)


def _deeply_nested_record(d: Path, rec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """A record of 100,000 nested JSON lists."""
    return _write(d / "f.npz", b"[" * 100_000 + b"]" * 100_000, arrays)


def _shape_not_a_list(d: Path, rec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """A recorded param shape that is a number, not a list."""
    rec["layers"][1]["params"]["W"] = 3
    return _write(d / "f.npz", rec, arrays)


def _huge_config(d: Path, rec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """A Dense config of 10**7 x 10**7 (the record's shapes and the stored arrays stay small)."""
    rec["layers"][1]["config"].update(in_features=10**7, out_features=10**7)
    return _write(d / "f.npz", rec, arrays)


@pytest.mark.parametrize(
    "craft",
    [
        _raw_record_member,
        _raw_param_member,
        _empty_record_member,
        _npy_header_syntax_error,
        _npy_header_unclosed,
        _huge_npy_header,
        _deeply_nested_record,
        _shape_not_a_list,
        _huge_config,
    ],
)
def test_crafted_files_raise_value_error(
    tmp_path: Path, saved: Path, craft: Callable[[Path, dict[str, Any], dict[str, np.ndarray]], Path]
) -> None:
    """Files crafted to reach deeper code paths are still refused with ValueError, nothing else."""
    record, arrays = _members(saved)
    _refusal(craft(tmp_path, record, arrays))


# ---------------------------------------------------------------------------------------------
# Fuzzing: a damaged file either loads (with finite weights) or raises ValueError


@functools.cache
def _small_bytes() -> bytes:
    """The bytes of a small model file with meta and an extra array (a cache, not a fixture, so
    hypothesis does not print 2 kB of it with every failure)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "small.npz"
        bptt.io.save(_small_model(), path, meta={"seed": 0}, extra={"loss": np.linspace(1.0, 0.1, 5)})
        return path.read_bytes()


@pytest.fixture(scope="module")
def fuzz_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "fuzzed.npz"


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "small.npz"
    path.write_bytes(_small_bytes())
    return path


def _loads_or_refuses(path: Path, blob: bytes) -> None:
    path.write_bytes(blob)
    try:
        model = bptt.io.load(path)
    except ValueError:
        return
    assert isinstance(model, bptt.Sequential)
    assert all(np.all(np.isfinite(v)) for v in model.params.values())


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fuzz_file_bytes(fuzz_path: Path, data: st.DataObject) -> None:
    """Random byte overwrites or truncations of a model file load or raise ValueError, nothing else."""
    raw = bytearray(_small_bytes())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="length")]
    else:
        edit = st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255))
        for pos, value in data.draw(st.lists(edit, min_size=1, max_size=8), label="edits"):
            raw[pos] = value
    _loads_or_refuses(fuzz_path, bytes(raw))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::SyntaxWarning")
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fuzz_member_bytes(fuzz_path: Path, data: st.DataObject) -> None:
    """Byte edits inside one archive member (npy header, record JSON or data), repacked with valid
    CRCs, load or raise ValueError, nothing else."""
    with zipfile.ZipFile(io.BytesIO(_small_bytes())) as z:
        members = {name: bytearray(z.read(name)) for name in z.namelist()}
    name = data.draw(st.sampled_from(sorted(members)), label="member")
    body = members[name]
    if data.draw(st.booleans(), label="truncate"):
        members[name] = body[: data.draw(st.integers(0, len(body) - 1), label="length")]
    else:
        edit = st.tuples(st.integers(0, len(body) - 1), st.integers(0, 255))
        for pos, value in data.draw(st.lists(edit, min_size=1, max_size=4), label="edits"):
            body[pos] = value
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for k, v in members.items():
            z.writestr(k, bytes(v))
    _loads_or_refuses(fuzz_path, buf.getvalue())


# ---------------------------------------------------------------------------------------------
# Saving: atomic, ordinary file mode, and refusals


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()], ids=["oserror", "interrupt"])
def test_failed_save_keeps_old_file(
    saved: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    """A write that dies half-way leaves the previous file byte-identical and no temporary file."""
    before = saved.read_bytes()
    names = _folder(saved.parent)
    calls = []

    def dying_savez(file: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(file)
        file.write(b"PK\x03\x04 half a model")
        raise error

    monkeypatch.setattr(bptt.io.np, "savez", dying_savez)
    with pytest.raises(type(error)):
        bptt.io.save(bptt.Sequential([bptt.RNN(2, 5, rng=9), bptt.Dense(5, 1, rng=9)]), saved)
    assert calls, "save did not go through numpy.savez"
    assert saved.read_bytes() == before
    assert _folder(saved.parent) == names


def test_failed_first_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed save to a new path creates no file at all."""

    def dying_savez(file: Any, *args: Any, **kwargs: Any) -> None:
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(bptt.io.np, "savez", dying_savez)
    with pytest.raises(OSError, match="disk full"):
        bptt.io.save(_small_model(), tmp_path / "new.npz")
    assert _folder(tmp_path) == []


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_saved_file_mode_follows_umask(tmp_path: Path, umask: Callable[[int], int], mask: int) -> None:
    """A saved model has the mode an ordinary new file gets (0o666 & ~umask) and no temp file remains."""
    umask(mask)
    bptt.io.save(_small_model(), tmp_path / "m.npz")
    (tmp_path / "plain").write_bytes(b"")
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777
    assert _folder(tmp_path) == ["m.npz", "plain"]


def test_save_refuses_unsupported_layer(tmp_path: Path) -> None:
    """A layer type that load could not rebuild is refused with TypeError, writing nothing."""

    class Custom(bptt.Layer):
        def forward(self, x: np.ndarray) -> np.ndarray:
            return x

    with pytest.raises(TypeError, match="Custom"):
        bptt.io.save(bptt.Sequential([bptt.Dense(2, 2, rng=0), Custom()]), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="Custom"):
        bptt.io.save(Custom(), tmp_path / "m.npz")
    assert _folder(tmp_path) == []


@pytest.mark.parametrize(
    "value",
    [
        np.array(["a", "b"]),
        np.array([b"x"]),
        np.array([{"a": 1}], dtype=object),
        np.array(["2024-01-01"], "M8[D]"),
    ],
    ids=["str", "bytes", "object", "datetime"],
)
def test_save_refuses_non_numeric_extra(tmp_path: Path, value: np.ndarray) -> None:
    """A non-numeric extra array is refused with TypeError naming it, writing nothing."""
    with pytest.raises(TypeError, match="history"):
        bptt.io.save(_small_model(), tmp_path / "m.npz", extra={"history": value})
    assert _folder(tmp_path) == []


def test_activation_names_cover_library() -> None:
    """The activations round-tripped above are exactly the library's."""
    assert set(ACTIVATION_NAMES) == set(ACTIVATIONS)


# ---------------------------------------------------------------------------------------------
# A hostile world: where save writes, what load reads, and how much memory a file may cost


def _nan_at(model: bptt.Sequential, key: str, value: float) -> bptt.Sequential:
    model.params[key].flat[0] = value
    return model


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("key", ["0.W_hh", "1.b"])
def test_save_refuses_non_finite_weights(saved: Path, key: str, value: float) -> None:
    """save refuses what load would refuse, naming the layer and array; the old file stays."""
    before = saved.read_bytes()
    layer, name = key.split(".")
    with pytest.raises(ValueError, match=f"^save: layer {layer} .* array {name!r} holds NaN or Inf"):
        bptt.io.save(_nan_at(_small_model(), key, value), saved)
    assert saved.read_bytes() == before and _folder(saved.parent) == ["model.npz"]


def test_save_refuses_a_device_and_keeps_a_files_mode(tmp_path: Path) -> None:
    """`save` to /dev/null is refused (run as root, it once turned the device into a file); a 0600
    model stays 0600 when saved over."""
    with pytest.raises(ValueError, match="'/dev/null' is a character device, not a regular file"):
        bptt.io.save(_small_model(), "/dev/null")
    assert Path("/dev/null").is_char_device()
    path = tmp_path / "m.npz"
    bptt.io.save(_small_model(), path)
    path.chmod(0o600)
    bptt.io.save(_small_model(), path)
    assert path.stat().st_mode & 0o777 == 0o600 and _folder(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_load_refuses_fifos_and_devices_at_once(tmp_path: Path, kind: str) -> None:
    """A FIFO (no writer: an open would block) or /dev/zero (endless) is refused without reading it."""
    if kind == "fifo":
        os.mkfifo(tmp_path / "m.npz")
        path, words = tmp_path / "m.npz", "is a FIFO (named pipe), not a regular file"
    else:
        path, words = Path("/dev/zero"), "is a character device, not a regular file"
    assert words in _refusal(path)


def test_load_refuses_a_file_over_the_limit(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bptt.io, "MAX_FILE_BYTES", 1024)
    assert "expected at most 1.0 KiB" in _refusal(saved)


def _zip_by_hand(path: Path, members: list[tuple[str, int, bytes, int, int]]) -> Path:
    """A zip of ``(name, method, payload, crc, declared size)`` members, written field by field, so a
    member can declare any size without anyone having to inflate it."""
    out, central = bytearray(), bytearray()
    for name, method, payload, crc, size in members:
        raw = name.encode()
        fields = (20, 0, method, 0, 0x21, crc, len(payload), size, len(raw))
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, 0, len(out)) + raw
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields, 0) + raw + payload
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def _model_members(saved: Path) -> list[tuple[str, int, bytes, int, int]]:
    """The members of a saved model, as ``_zip_by_hand`` takes them (stored, honest sizes)."""
    with zipfile.ZipFile(saved) as z:
        return [(i.filename, zipfile.ZIP_STORED, z.read(i), i.CRC, i.file_size) for i in z.infolist()]


def _deflated_zeros(size: int) -> tuple[bytes, int]:
    """A real deflate stream of an .npy of ``size`` bytes of zeros, and its CRC, built from one
    repeated 1 MiB block (after a full flush, equal input deflates to equal bytes)."""
    chunk = 2**20
    assert size % chunk == 0
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": ((size - 128) // 8,)}
    )
    assert len(header.getvalue()) == 128
    first = header.getvalue() + bytes(chunk - 128)
    zeros = bytes(chunk)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(first) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.compress(zeros) + c.flush()
    crc = zlib.crc32(first)
    for _ in range(size // chunk - 1):
        crc = zlib.crc32(zeros, crc)
    return head + block * (size // chunk - 2) + tail, crc


def test_a_zip_bomb_is_refused_before_inflating(tmp_path: Path, saved: Path) -> None:
    """A 2 MB model file carrying a 2 GiB member of zeros is refused unread, with little memory."""
    stream, crc = _deflated_zeros(2 * 2**30)
    members = [*_model_members(saved), ("extra/zeros.npy", zipfile.ZIP_DEFLATED, stream, crc, 2 * 2**30)]
    bomb = _zip_by_hand(tmp_path / "bomb.npz", members)
    assert bomb.stat().st_size < 3 * 2**20
    tracemalloc.start()
    try:
        msg = _refusal(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "member 'extra/zeros' claims 2.0 GiB in a file of 2.0 MiB; refused unread" in msg
    assert peak < 16 * 2**20, peak


def test_a_stored_member_may_not_claim_more_than_the_file(tmp_path: Path, saved: Path) -> None:
    """A stored member's declared size above the file's is a lie; it is refused before any read."""
    members = _model_members(saved)
    name, method, payload, crc, _ = members[0]
    members[0] = (name, method, payload, crc, 3 * 2**30)
    assert "claims 3.0 GiB in a file of" in _refusal(_zip_by_hand(tmp_path / "lie.npz", members))


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, 99])
def test_other_compression_methods_are_refused(tmp_path: Path, saved: Path, method: int) -> None:
    members = _model_members(saved)
    members[0] = (members[0][0], method, *members[0][2:])
    msg = _refusal(_zip_by_hand(tmp_path / "m.npz", members))
    assert f"uses zip compression method {method}; expected stored or deflated" in msg


def test_a_duplicate_member_is_refused(tmp_path: Path, saved: Path) -> None:
    members = _model_members(saved)
    assert "appears twice" in _refusal(_zip_by_hand(tmp_path / "m.npz", [*members, members[1]]))


def _repacked(saved: Path, path: Path, method: int, change: Callable[[str, np.ndarray], np.ndarray]) -> Path:
    """``saved``'s arrays, each passed through ``change``, written with zipfile's ``method``."""
    with np.load(saved) as z:
        arrays = {k: change(k, z[k]) for k in z.files}
    with zipfile.ZipFile(path, "w", method) as z:
        for k, v in arrays.items():
            z.writestr(f"{k}.npy", _npy(v))
    return path


def test_deflated_and_fortran_order_files_load(tmp_path: Path, saved: Path) -> None:
    """Members bptt does not write itself but may meet (deflated, Fortran order) load exactly."""
    path = _repacked(saved, tmp_path / "f.npz", zipfile.ZIP_DEFLATED, lambda k, v: np.asfortranarray(v))
    loaded, original = bptt.io.load(path), bptt.io.load(saved)
    for k, v in original.params.items():
        assert np.array_equal(loaded.params[k], v) and loaded.params[k].flags.writeable, k


def test_arrays_together_may_not_exceed_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deflated file within MAX_FILE_BYTES whose arrays inflate past it together is refused."""
    model = bptt.Sequential([bptt.Dense(64, 64, rng=0)])
    model.params["0.W"][:32] = 0.0  # half zeros: the file deflates to about half the arrays' size
    bptt.io.save(model, tmp_path / "m.npz")
    path = _repacked(tmp_path / "m.npz", tmp_path / "z.npz", zipfile.ZIP_DEFLATED, lambda k, v: v)
    monkeypatch.setattr(bptt.io, "MAX_FILE_BYTES", path.stat().st_size)
    assert "of arrays; at most" in _refusal(path)


def test_npy_version_3_is_refused(tmp_path: Path, saved: Path) -> None:
    path = _repacked(saved, tmp_path / "v.npz", zipfile.ZIP_STORED, lambda k, v: v)
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    members["param/0.W_hh.npy"] = b"\x93NUMPY\x03\x00" + members["param/0.W_hh.npy"][8:]
    assert ".npy version (3, 0); expected 1.0 or 2.0" in _refusal(_zip(tmp_path / "v3.npz", members))


@pytest.mark.parametrize("kind", [["RNN"], {"RNN": 1}, 7, None, "rnn"])
def test_a_layer_type_of_any_json_type_is_a_value_error(saved: Path, kind: Any) -> None:
    """A list or dict as a layer's type used to raise TypeError (unhashable)."""
    record, arrays = _members(saved)
    record["layers"][0]["type"] = kind
    assert "unknown type" in _refusal(_write(saved, record, arrays))


@pytest.mark.parametrize(
    "stored, layer_dtype",
    [
        (np.float64(1e300), np.float32),
        (np.longdouble("1e400"), np.float64),
        (np.longdouble("1e4000"), np.float32),
    ],
    ids=["f64-1e300-to-f32", "f128-1e400-to-f64", "f128-1e4000-to-f32"],
)
def test_a_weight_beyond_the_layers_dtype_is_refused(
    tmp_path: Path, stored: np.generic, layer_dtype: type
) -> None:
    """A finite weight that becomes inf when cast to the layer's dtype is refused, not loaded as inf."""
    if not np.isfinite(stored):
        pytest.skip("this platform's long double is float64")
    path = tmp_path / "m.npz"
    bptt.io.save(bptt.Sequential([bptt.Dense(2, 3, rng=0, dtype=layer_dtype)]), path)
    record, arrays = _members(path)
    arrays["param/0.W"] = arrays["param/0.W"].astype(stored.dtype)
    arrays["param/0.W"][0, 0] = stored
    msg = _refusal(_write(path, record, arrays))
    assert f"array 'W' holds values beyond {np.dtype(layer_dtype)}'s range" in msg


@pytest.mark.parametrize("limit", ["default", "lifted"])
def test_a_five_million_digit_integer_is_refused_quickly(saved: Path, limit: str) -> None:
    """A record holding a 5-million-digit integer is corrupt, with Python's default int-string limit
    and even when a program lifted it process-wide (converting it would take minutes)."""
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(sys.int_info.default_max_str_digits if limit == "default" else 0)
    try:
        _, arrays = _members(saved)
        blob = b'{"format": "bptt", "version": 1, "layers": [], "meta": ' + b"7" * 5_000_000 + b"}"
        assert "corrupt architecture record (ValueError)" in _refusal(_write(saved, blob, arrays))
    finally:
        sys.set_int_max_str_digits(before)


HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([-1, 0, 1, 2, 3, 4, 5, 2**31, 2**63, 10**300, -(10**300)]),
    st.floats(),
    st.text(max_size=6),
    st.sampled_from(
        [*sorted(bptt.layers.layer_types()), "float16", "float128", "int8", "object", "V8", "tanh"]
    ),
    st.lists(st.integers(-3, 5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-2, 5), max_size=3),
    st.just([[1, 2]]),
    st.just({"type": "Dense", "config": {}, "params": {}}),
).map(copy.deepcopy)  # never share one drawn list between places (or examples)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value: the keys or indices that lead to it."""
    if prefix:
        yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in children:
        yield from _paths(child, (*prefix, key))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fuzz_record_values(fuzz_path: Path, small_file: Path, data: st.DataObject) -> None:
    """Any value of the record replaced by a value of another JSON type (or deleted, or a new key
    added) loads or raises ValueError: never TypeError, KeyError, OverflowError or MemoryError."""
    record, arrays = _members(small_file)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        path = data.draw(st.sampled_from(list(_paths(record))), label="path")
        parent = functools.reduce(lambda node, key: node[key], path[:-1], record)
        action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=6), label="key")] = data.draw(HOSTILE_VALUES, label="value")
        else:
            parent[path[-1]] = data.draw(HOSTILE_VALUES, label="value")
    _write(fuzz_path, record, arrays)
    _loads_or_refuses(fuzz_path, fuzz_path.read_bytes())
