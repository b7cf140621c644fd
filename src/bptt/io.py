"""Model files: an ``.npz`` of arrays plus a JSON architecture record. Never pickled.

Layout of the archive:

- ``__bptt__``: the record, UTF-8 JSON stored as a ``uint8`` array:
  ``{"format": "bptt", "version": 1, "layers": [{"type", "config", "params": {name: shape}}],
  "meta": {...}}``;
- ``param/{i}.{name}``: each layer's weights;
- ``extra/{name}``: optional numeric arrays a caller stores beside the model (training history).

``save`` writes to a temporary file in the target's folder and renames it over the target, so
a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._types import Array
from ._version import __version__
from .layers import Dense, Last, Layer, ReLU, Sequential, Sigmoid, Tanh
from .recurrent import GRU, LSTM, RNN, Bidirectional

__all__ = ["FORMAT_VERSION", "load", "read", "save"]

FORMAT_VERSION = 1
RECORD = "__bptt__"
LAYER_TYPES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Dense, RNN, LSTM, GRU, Bidirectional, Sigmoid, Tanh, ReLU, Last)
}


def save(
    model: Layer,
    path: str | os.PathLike[str],
    *,
    meta: dict[str, Any] | None = None,
    extra: dict[str, NDArray[Any]] | None = None,
) -> None:
    """Write ``model`` (a layer or ``Sequential``) to ``path`` atomically.

    Parameters
    ----------
    meta : dict, optional
        JSON-serializable facts to keep with the model (how it was trained, say).
    extra : dict of name -> numeric ndarray, optional
        Arrays kept beside the weights (not part of the model).
    """
    layers = list(model) if isinstance(model, Sequential) else [model]
    record: dict[str, Any] = {
        "format": "bptt",
        "version": FORMAT_VERSION,
        "bptt": __version__,
        "layers": [],
        "meta": meta or {},
    }
    arrays: dict[str, NDArray[Any]] = {}
    for i, layer in enumerate(layers):
        name = type(layer).__name__
        if name not in LAYER_TYPES:
            raise TypeError(f"save: cannot save layer {i} of type {name}")
        config = dict(layer.config())
        if "dtype" in vars(layer):
            config["dtype"] = str(vars(layer)["dtype"])
        entry: dict[str, Any] = {"type": name, "config": config, "params": {}}
        for k, v in layer.params.items():
            arrays[f"param/{i}.{k}"] = v
            entry["params"][k] = list(v.shape)
        record["layers"].append(entry)
    for k, v in (extra or {}).items():
        a = np.asarray(v)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"save: extra array {k!r} must be numeric, got dtype {a.dtype}")
        arrays[f"extra/{k}"] = a
    arrays[RECORD] = np.frombuffer(json.dumps(record).encode(), np.uint8)

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a saved model is an ordinary file
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load(path: str | os.PathLike[str]) -> Sequential:
    """Read a model written by ``save``. Any problem raises ``ValueError`` saying what it is."""
    return read(path)[0]


def read(path: str | os.PathLike[str]) -> tuple[Sequential, dict[str, Any], dict[str, Array]]:
    """Like ``load``, and also return the file's ``meta`` dict and ``extra`` arrays."""
    p = Path(path)
    name = repr(str(p))
    if not p.exists():
        raise ValueError(f"load: {name} does not exist")
    if p.is_dir():
        raise ValueError(f"load: {name} is a directory, not a model file")
    files = _arrays(p, name)
    record = _record(files, name)
    model = Sequential([_layer(i, entry, files, name) for i, entry in enumerate(record["layers"])])
    extra = {k.removeprefix("extra/"): v for k, v in files.items() if k.startswith("extra/")}
    meta = record.get("meta", {})
    return model, meta if isinstance(meta, dict) else {}, extra


def _arrays(p: Path, name: str) -> dict[str, NDArray[Any]]:
    """Every array in the archive, or ``ValueError``: nothing in a hostile file gets unpickled."""
    with open(p, "rb") as f:
        magic = f.read(4)
    if not magic:
        raise ValueError(f"load: {name} is empty")
    if magic[:1] == b"\x80":  # a pickle's protocol marker
        raise ValueError(f"load: {name} holds pickled data, not a bptt model file; refused unread")
    if magic != b"PK\x03\x04":
        raise ValueError(f"load: {name} is not a bptt model file (not an .npz archive)")
    try:
        with np.load(p, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e) or "Object arrays" in str(e):
            raise ValueError(f"load: {name} holds a pickled object array; refused") from None
        raise ValueError(f"load: {name} is truncated or corrupt ({e})") from None
    # numpy's zip and .npy header parsers raise many types on damaged input; all mean the same.
    except Exception as e:
        raise ValueError(f"load: {name} is truncated or corrupt ({type(e).__name__}: {e})") from None
    for k, v in files.items():
        if not isinstance(v, np.ndarray):
            raise ValueError(f"load: {name} is truncated or corrupt (member {k!r} is not an array)")
    return files


def _record(files: dict[str, NDArray[Any]], name: str) -> dict[str, Any]:
    if RECORD not in files:
        raise ValueError(f"load: {name} is an .npz but not a bptt model file (no {RECORD} record)")
    try:
        record = json.loads(files[RECORD].astype(np.uint8).tobytes().decode())
    except (UnicodeDecodeError, ValueError, RecursionError, TypeError) as e:
        raise ValueError(f"load: {name} has a corrupt architecture record ({type(e).__name__})") from None
    if not isinstance(record, dict) or record.get("format") != "bptt":
        raise ValueError(f"load: {name} has a record that is not a bptt architecture record")
    version = record.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ValueError(
            f"load: {name} has format version {version!r}; this bptt reads version {FORMAT_VERSION}"
        )
    if not isinstance(record.get("layers"), list) or not record["layers"]:
        raise ValueError(f"load: {name} has a record with no layers")
    return record


def _layer(i: int, entry: Any, files: dict[str, NDArray[Any]], name: str) -> Layer:
    where = f"load: {name} layer {i}"
    if not isinstance(entry, dict) or entry.get("type") not in LAYER_TYPES:
        kind = entry.get("type") if isinstance(entry, dict) else entry
        raise ValueError(f"{where} has unknown type {kind!r}; expected one of {sorted(LAYER_TYPES)}")
    config, shapes = entry.get("config"), entry.get("params")
    if not isinstance(config, dict) or not isinstance(shapes, dict):
        raise ValueError(f"{where} has a malformed record entry")
    arrays = _recorded_arrays(where, i, shapes, files)
    dims = {n for a in arrays.values() for n in a.shape}
    for k, v in config.items():  # sizes must be those of the stored arrays: never build a huge layer
        if type(v) is int and v not in dims:
            raise ValueError(f"{where}: config {k}={v} disagrees with the stored arrays' shapes")
    try:
        layer = LAYER_TYPES[entry["type"]].from_config(config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where} has an invalid configuration ({e})") from None
    if set(arrays) != set(layer.params):
        raise ValueError(
            f"{where} records params {sorted(arrays)}; a {entry['type']} has {sorted(layer.params)}"
        )
    for k, target in layer.params.items():
        a = arrays[k]
        if a.shape != target.shape:
            raise ValueError(f"{where}: array {k!r} has shape {a.shape}; the layer needs {target.shape}")
        target[...] = a
    return layer


def _recorded_arrays(
    where: str, i: int, shapes: dict[str, Any], files: dict[str, NDArray[Any]]
) -> dict[str, NDArray[Any]]:
    """The layer's stored arrays, each checked against the record's shape, dtype and finiteness."""
    arrays = {}
    for k, shape in shapes.items():
        key = f"param/{i}.{k}"
        if key not in files:
            raise ValueError(f"{where} is missing the array {key!r}")
        a = files[key]
        if not isinstance(shape, list) or list(a.shape) != shape:
            said = tuple(shape) if isinstance(shape, list) else shape
            raise ValueError(f"{where}: array {k!r} has shape {a.shape}; the record says {said!r}")
        if a.dtype.kind != "f":
            raise ValueError(f"{where}: array {k!r} has dtype {a.dtype}; expected floats")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{where}: array {k!r} holds NaN or Inf")
        arrays[k] = a
    return arrays
