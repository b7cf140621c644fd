"""Model files: an ``.npz`` of arrays plus a JSON architecture record. Never pickled.

Layout of the archive:

- ``__bptt__``: the record, UTF-8 JSON stored as a ``uint8`` array:
  ``{"format": "bptt", "version": 1, "layers": [{"type", "config", "params": {name: shape}}],
  "meta": {...}}``;
- ``param/{i}.{name}``: each layer's weights;
- ``extra/{name}``: optional numeric arrays a caller stores beside the model (training history).

``save`` writes through ``bptt._files.atomic_write`` (a temporary file, then a rename), so a
crash leaves either the old file or the new one, never half of one; it writes only to a regular
file or a new path, and refuses weights that ``load`` would refuse.

``load`` reads only a regular file of at most ``MAX_FILE_BYTES``, and checks every member's
declared size before it inflates any: stored members (what ``save`` writes) may not claim more
than the file holds, deflated ones at most ``MAX_INFLATION`` times that. Each array's ``.npy``
header is checked against its member's size before its data is read, so no hostile file can
make ``load`` allocate more than about ``MAX_INFLATION`` times the file's own size.
"""

from __future__ import annotations

import json
import math
import os
import sys
import zipfile
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ._files import atomic_write, format_bytes, open_regular, short_repr
from ._types import Array
from ._version import __version__
from .layers import Layer, Sequential, layer_types
from .recurrent import Recurrent  # noqa: F401  (imported so the recurrent layer types are registered)

__all__ = ["FORMAT_VERSION", "MAX_FILE_BYTES", "MAX_INFLATION", "load", "read", "save"]

FORMAT_VERSION = 1
RECORD = "__bptt__"
# The largest model file ``load`` reads, and the most its arrays may hold together: a 16 GiB
# float64 model is a 46,000-unit RNN, far past what NumPy BPTT trains. Only a hostile or broken
# file comes near it.
MAX_FILE_BYTES = 16 * 2**30
MAX_INFLATION = 16  # a deflated member may hold at most this many times the archive's size
NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def save(
    model: Layer,
    path: str | os.PathLike[str],
    *,
    meta: dict[str, Any] | None = None,
    extra: dict[str, NDArray[Any]] | None = None,
) -> None:
    """Write ``model`` (a layer or ``Sequential``) to ``path`` atomically.

    Each layer must be of a type named with ``bptt.register_layer`` (every built-in one is); its
    record is its type's name and ``config()``, which includes its dtype.

    Parameters
    ----------
    meta : dict, optional
        JSON-serializable facts to keep with the model (how it was trained, say).
    extra : dict of name -> numeric ndarray, optional
        Arrays kept beside the weights (not part of the model).
    """
    types = layer_types()
    # A registered layer is saved whole; an unregistered container (Sequential) as its chain of layers.
    unregistered_container = type(model).__name__ not in types and model.sublayers()
    layers = [sub for _, sub in model.sublayers()] if unregistered_container else [model]
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
        if types.get(name) is not type(layer):
            raise TypeError(
                f"save: cannot save layer {i} of type {name}: register it with bptt.register_layer"
            )
        config = dict(layer.config())
        entry: dict[str, Any] = {"type": name, "config": config, "params": {}}
        for k, v in layer.params.items():
            if not np.all(np.isfinite(v)):
                raise ValueError(f"save: layer {i} ({name}) array {k!r} holds NaN or Inf; load refuses it")
            arrays[f"param/{i}.{k}"] = v
            entry["params"][k] = list(v.shape)
        record["layers"].append(entry)
    for k, v in (extra or {}).items():
        a = np.asarray(v)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"save: extra array {k!r} must be numeric, got dtype {a.dtype}")
        arrays[f"extra/{k}"] = a
    arrays[RECORD] = np.frombuffer(json.dumps(record).encode(), np.uint8)
    atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **arrays), what="save:")


def load(path: str | os.PathLike[str]) -> Sequential:
    """Read a model written by ``save``. Any problem raises ``ValueError`` saying what it is."""
    return read(path)[0]


def read(path: str | os.PathLike[str]) -> tuple[Sequential, dict[str, Any], dict[str, Array]]:
    """Like ``load``, and also return the file's ``meta`` dict and ``extra`` arrays."""
    name = repr(os.fspath(path))
    with open_regular(path, limit=MAX_FILE_BYTES, what="load:") as f:
        files = _arrays(f, name)
    record = _record(files, name)
    model = Sequential([_layer(i, entry, files, name) for i, entry in enumerate(record["layers"])])
    extra = {k.removeprefix("extra/"): v for k, v in files.items() if k.startswith("extra/")}
    meta = record.get("meta", {})
    return model, meta if isinstance(meta, dict) else {}, extra


class _Refused(ValueError):
    """A refusal already worded for the user, passed through the catch-all for damaged files."""


def _arrays(f: IO[bytes], name: str) -> dict[str, NDArray[Any]]:
    """Every array in the archive, or ``ValueError``: nothing in a hostile file gets unpickled."""
    magic = f.read(4)
    if not magic:
        raise ValueError(f"load: {name} is empty")
    if magic[:1] == b"\x80":  # a pickle's protocol marker
        raise ValueError(f"load: {name} holds pickled data, not a bptt model file; refused unread")
    if magic != b"PK\x03\x04":
        raise ValueError(f"load: {name} is not a bptt model file (not an .npz archive)")
    size = os.fstat(f.fileno()).st_size
    # zipfile and numpy's .npy header parser raise many types on damaged input; all mean the same.
    try:
        with zipfile.ZipFile(f) as z:
            members = _members(z.infolist(), size, name)
            return {key: _member(z, info, key, name) for key, info in members.items()}
    except _Refused:
        raise
    except Exception as e:
        raise ValueError(f"load: {name} is truncated or corrupt ({type(e).__name__}: {e})") from None


def _members(infos: list[zipfile.ZipInfo], size: int, name: str) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by array name, each one's declared size checked before any is read."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        key = info.filename.removesuffix(".npy")
        if key in members:
            raise _Refused(f"load: {name} is corrupt (member {key!r} appears twice)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Refused(
                f"load: {name} member {key!r} uses zip compression method {info.compress_type}; "
                "expected stored or deflated"
            )
        most = size * (1 if info.compress_type == zipfile.ZIP_STORED else MAX_INFLATION)
        if info.file_size > most:
            raise _Refused(
                f"load: {name} member {key!r} claims {format_bytes(info.file_size)} in a file of "
                f"{format_bytes(size)}; refused unread"
            )
        members[key] = info
    total = sum(info.file_size for info in members.values())
    if total > MAX_FILE_BYTES:
        raise _Refused(
            f"load: {name} claims {format_bytes(total)} of arrays; at most {format_bytes(MAX_FILE_BYTES)}"
        )
    return members


def _member(z: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, name: str) -> NDArray[Any]:
    """One ``.npy`` member, its header checked against the member's size before the data is read."""
    with z.open(info) as m:
        if m.read(6) != np.lib.format.MAGIC_PREFIX:
            raise _Refused(f"load: {name} is truncated or corrupt (member {key!r} is not an array)")
        version = tuple(m.read(2))
        if version not in NPY_HEADERS:
            raise _Refused(f"load: {name} member {key!r} has .npy version {version}; expected 1.0 or 2.0")
        shape, fortran, dtype = NPY_HEADERS[version](m)
        if dtype.hasobject:
            raise _Refused(f"load: {name} holds a pickled object array; refused")
        nbytes = math.prod(shape) * dtype.itemsize
        if min(shape, default=0) < 0 or nbytes != info.file_size - m.tell():
            raise _Refused(
                f"load: {name} is truncated or corrupt (member {key!r} declares shape {shape} of "
                f"{dtype}, which does not fit its {info.file_size} bytes)"
            )
        data = m.read(nbytes)
    if len(data) != nbytes:
        raise _Refused(f"load: {name} is truncated or corrupt (member {key!r} ends early)")
    flat = np.frombuffer(data, dtype).copy()  # a writable array the caller owns
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def _int(digits: str) -> int:
    """JSON integers up to Python's default digit limit, whatever the process-wide setting."""
    if len(digits.lstrip("-")) > sys.int_info.default_max_str_digits:
        raise ValueError(f"an integer of {len(digits)} digits")
    return int(digits)


def _record(files: dict[str, NDArray[Any]], name: str) -> dict[str, Any]:
    if RECORD not in files:
        raise ValueError(f"load: {name} is an .npz but not a bptt model file (no {RECORD} record)")
    try:
        record = json.loads(files[RECORD].astype(np.uint8).tobytes().decode(), parse_int=_int)
    except (ValueError, RecursionError, TypeError) as e:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"load: {name} has a corrupt architecture record ({type(e).__name__})") from None
    if not isinstance(record, dict) or record.get("format") != "bptt":
        raise ValueError(f"load: {name} has a record that is not a bptt architecture record")
    version = record.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ValueError(
            f"load: {name} has format version {short_repr(version)}; this bptt reads version {FORMAT_VERSION}"
        )
    if not isinstance(record.get("layers"), list) or not record["layers"]:
        raise ValueError(f"load: {name} has a record with no layers")
    return record


def _layer(i: int, entry: Any, files: dict[str, NDArray[Any]], name: str) -> Layer:
    where = f"load: {name} layer {i}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is {short_repr(entry)}; expected a layer record (a JSON object)")
    kind, types = entry.get("type"), layer_types()
    if not isinstance(kind, str) or kind not in types:
        raise ValueError(f"{where} has unknown type {short_repr(kind)}; expected one of {sorted(types)}")
    config, shapes = entry.get("config"), entry.get("params")
    if not isinstance(config, dict) or not isinstance(shapes, dict):
        raise ValueError(f"{where} has a malformed record entry")
    arrays = _recorded_arrays(where, i, shapes, files)
    dims = {n for a in arrays.values() for n in a.shape}
    for k, v in config.items():  # sizes must be those of the stored arrays: never build a huge layer
        if type(v) is int and v not in dims:
            raise ValueError(f"{where}: config {k}={v} disagrees with the stored arrays' shapes")
    try:
        layer = types[kind].from_config(config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where} has an invalid configuration ({e})") from None
    _fill(where, kind, layer, arrays)
    return layer


def _fill(where: str, kind: str, layer: Layer, arrays: dict[str, NDArray[Any]]) -> None:
    """Copy the stored arrays into the new layer's params, each checked against its shape and dtype."""
    if set(arrays) != set(layer.params):
        raise ValueError(f"{where} records params {sorted(arrays)}; a {kind} has {sorted(layer.params)}")
    for k, target in layer.params.items():
        a = arrays[k]
        if a.shape != target.shape:
            raise ValueError(f"{where}: array {k!r} has shape {a.shape}; the layer needs {target.shape}")
        with np.errstate(over="ignore"):  # a float64 1e300 overflows float32: refused just below
            cast = a.astype(target.dtype)
        if not np.all(np.isfinite(cast)):
            raise ValueError(f"{where}: array {k!r} holds values beyond {target.dtype}'s range")
        target[...] = cast


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
            raise ValueError(f"{where}: array {k!r} has shape {a.shape}; the record says {short_repr(said)}")
        if a.dtype.kind != "f":
            raise ValueError(f"{where}: array {k!r} has dtype {a.dtype}; expected floats")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{where}: array {k!r} holds NaN or Inf")
        arrays[k] = a
    return arrays
