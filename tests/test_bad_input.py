"""The bad-input catalogue: every public entry point refuses bad input with the documented type
and a message that says what went wrong, and the documented choices hold (design.md, "Errors"
and "Decisions").

Two tables drive most of this file:

- ``ROWS``: one row per bad call of the Python API, ``(id, call, exception type, key words)``;
  ``test_bad_call`` runs each under ``pytest.raises`` and checks every key word is in the message.
- ``CLI_ROWS``: one row per bad ``bptt`` command line; ``test_bad_command_line`` runs each
  in-process and checks exit status 2, one line on stderr, nothing on stdout, no traceback.

``ROW_COUNT``, ``CLI_ROW_COUNT`` and ``CATALOGUE_ROWS`` (their sum) count the rows.

The choices that are *not* refusals (int/bool input is cast, float32/float64 are cast to the
layer's dtype, NaN propagates) are pinned by the tests at the end.
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch  # `bptt bench` rows need it: missing torch must fail here, not pass on "needs torch"

import bptt
import bptt.cli
from bptt import optim
from bptt.tasks import addition

ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")
I, H, O = 2, 3, 4  # input, hidden and output sizes of the layers under test
T, B = 4, 2  # the good input is (T, B, I) = (4, 2, 2)


@dataclass(frozen=True)
class Row:
    """One bad call: ``call()`` must raise ``exc`` with every one of ``words`` in its message."""

    id: str
    call: Callable[[], object]
    exc: type[BaseException]
    words: tuple[str, ...]


ROWS: list[Row] = []


def row(id: str, call: Callable[[], object], exc: type[BaseException], *words: str) -> None:
    ROWS.append(Row(id, call, exc, words))


def zeros(*shape: int, dtype: Any = np.float64) -> np.ndarray:
    return np.zeros(shape, dtype)


def good_x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(T, B, I))


# --- layers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSpec:
    """How to build a layer and how its messages name it."""

    name: str
    make: Callable[[], bptt.Layer]
    fwd: str  # prefix of a forward ShapeError
    fwd_type: str  # prefix of a forward TypeError (Sequential does not rename those)
    bwd: str  # prefix of a backward ShapeError for a wrong grad_y
    bwd_first: str  # prefix of the "backward before forward" ShapeError
    in_letters: str
    checks_features: bool  # does forward know its input width?


def _rnn_spec(activation: str) -> LayerSpec:
    return LayerSpec(
        f"RNN-{activation}",
        lambda: bptt.RNN(I, H, activation=activation, rng=0),
        "RNN.forward",
        "RNN.forward",
        "RNN.backward",
        "RNN.backward",
        "(T, B, I)",
        True,
    )


def _elementwise_spec(cls: type[bptt.Layer]) -> LayerSpec:
    n = cls.__name__
    return LayerSpec(
        n, cls, f"{n}.forward", f"{n}.forward", f"{n}.backward", f"{n}.backward", "(T, B, F)", False
    )


LAYER_SPECS = [
    LayerSpec(
        "Dense",
        lambda: bptt.Dense(I, O, rng=0),
        "Dense.forward",
        "Dense.forward",
        "Dense.backward",
        "Dense.backward",
        "(T, B, I)",
        True,
    ),
    *(_rnn_spec(a) for a in ACTIVATIONS),
    *(_elementwise_spec(c) for c in (bptt.Sigmoid, bptt.Tanh, bptt.ReLU, bptt.Last)),
    LayerSpec(
        "Sequential",
        lambda: bptt.Sequential([bptt.RNN(I, H, rng=0), bptt.Tanh(), bptt.Dense(H, 1, rng=1)]),
        "Sequential layer 0: RNN.forward",
        "RNN.forward",
        "Sequential layer 2: Dense.backward",
        "Sequential.backward",
        "(T, B, I)",
        True,
    ),
]


def _forward(spec: LayerSpec, x: Any) -> Callable[[], object]:
    return lambda: spec.make().forward(x)


def _backward_after_forward(spec: LayerSpec, reshape: Callable[[tuple[int, ...]], tuple[int, ...]]):
    """Run a good forward, then backward with a zero grad_y of ``reshape(output shape)``."""

    def call() -> object:
        layer = spec.make()
        y = layer.forward(good_x())
        return layer.backward(np.zeros(reshape(y.shape)))

    return call


def _backward_dtype(spec: LayerSpec, dtype: Any) -> Callable[[], object]:
    def call() -> object:
        layer = spec.make()
        y = layer.forward(good_x())
        return layer.backward(np.zeros(y.shape, dtype))

    return call


def _wrong_width(s: tuple[int, ...]) -> tuple[int, ...]:
    return (*s[:-1], s[-1] + 1)


def _wrong_steps(s: tuple[int, ...]) -> tuple[int, ...]:
    return (s[0] + 1, *s[1:])


def _no_batch_axis(s: tuple[int, ...]) -> tuple[int, ...]:
    return (s[0], s[2])


for spec in LAYER_SPECS:
    n, fwd = spec.name, spec.fwd
    row(f"{n}-x-2d", _forward(spec, zeros(T, I)), bptt.ShapeError, fwd, "(4, 2)", spec.in_letters, "3 axes")
    row(f"{n}-x-1d", _forward(spec, zeros(T)), bptt.ShapeError, fwd, "(4,)", "3 axes")
    row(f"{n}-x-4d", _forward(spec, zeros(T, B, I, 1)), bptt.ShapeError, fwd, "(4, 2, 2, 1)", "3 axes")
    row(f"{n}-x-0d", _forward(spec, np.float64(1.0)), bptt.ShapeError, fwd, "()", "3 axes")
    if spec.checks_features:
        row(
            f"{n}-x-features",
            _forward(spec, zeros(T, B, I + 3)),
            bptt.ShapeError,
            fwd,
            "(4, 2, 5)",
            "(4, 2, 2)",
        )
    row(f"{n}-T0", _forward(spec, zeros(0, B, I)), bptt.ShapeError, fwd, "(0, 2, 2)", "T ≥ 1")
    row(f"{n}-B0", _forward(spec, zeros(T, 0, I)), bptt.ShapeError, fwd, "(4, 0, 2)", "B ≥ 1")
    row(f"{n}-T0-B0", _forward(spec, zeros(0, 0, I)), bptt.ShapeError, fwd, "(0, 0, 2)", "not an empty")
    row(
        f"{n}-backward-before-forward",
        lambda spec=spec: spec.make().backward(zeros(T, B, H)),
        bptt.ShapeError,
        spec.bwd_first,
        "before forward",
    )
    for what, reshape in [("width", _wrong_width), ("steps", _wrong_steps), ("2d", _no_batch_axis)]:
        row(
            f"{n}-grad_y-{what}",
            _backward_after_forward(spec, reshape),
            bptt.ShapeError,
            spec.bwd,
            "grad_y",
            "the shape of the last forward's output",
        )
    tname = spec.fwd_type
    row(f"{n}-x-complex", _forward(spec, zeros(T, B, I, dtype=complex)), TypeError, tname, "x", "complex128")
    row(
        f"{n}-x-object",
        _forward(spec, zeros(T, B, I).astype(object)),
        TypeError,
        tname,
        "real numbers",
        "object",
    )
    row(f"{n}-x-str", _forward(spec, np.full((T, B, I), "1")), TypeError, tname, "real numbers", "<U1")
    row(f"{n}-x-bytes", _forward(spec, np.full((T, B, I), b"1")), TypeError, tname, "real numbers", "S1")
    row(f"{n}-x-None", _forward(spec, None), TypeError, tname, "real numbers")
    row(
        f"{n}-grad_y-complex",
        _backward_dtype(spec, complex),
        TypeError,
        "backward",
        "grad_y",
        "complex128",
    )


# h0 against x: batch and hidden-size mismatches, for every activation and inside a Sequential.


def _rnn_with_h0(h0: Any, activation: str = "tanh") -> bptt.RNN:
    rnn = bptt.RNN(I, H, activation=activation, rng=0)
    rnn.h0 = h0
    return rnn


for act in ACTIVATIONS:
    row(
        f"RNN-{act}-h0-batch",
        lambda act=act: _rnn_with_h0(zeros(B + 1, H), act).forward(good_x()),
        bptt.ShapeError,
        "RNN.forward",
        "h0",
        "(3, 3)",
        "(B, H) = (2, 3)",
    )
    row(
        f"RNN-{act}-h0-hidden",
        lambda act=act: _rnn_with_h0(zeros(B, H + 1), act).forward(good_x()),
        bptt.ShapeError,
        "RNN.forward",
        "h0",
        "(2, 4)",
        "(2, 3)",
    )
    row(
        f"RNN-{act}-h0-1d",
        lambda act=act: _rnn_with_h0(zeros(H), act).forward(good_x()),
        bptt.ShapeError,
        "RNN.forward",
        "h0",
        "(3,)",
    )
    row(
        f"RNN-{act}-h0-complex",
        lambda act=act: _rnn_with_h0(zeros(B, H, dtype=complex), act).forward(good_x()),
        TypeError,
        "RNN.forward",
        "h0",
        "complex128",
    )


def _sequential_h0_mismatch() -> object:
    model = bptt.Sequential([bptt.Dense(I, I, rng=0), bptt.RNN(I, H, rng=1)])
    model[1].h0 = zeros(B + 1, H)
    return model.forward(good_x())


def _stateful_batch_change() -> object:
    rnn = bptt.RNN(I, H, stateful=True, rng=0)
    rnn.forward(good_x())  # leaves h0 (B, H) = (2, 3) for the next call
    return rnn.forward(zeros(T, 1, I))


row(
    "Sequential-RNN-h0-batch",
    _sequential_h0_mismatch,
    bptt.ShapeError,
    "Sequential layer 1",
    "RNN.forward",
    "h0",
    "(3, 3)",
    "(2, 3)",
)
row(
    "RNN-stateful-batch-change",
    _stateful_batch_change,
    bptt.ShapeError,
    "RNN.forward",
    "h0",
    "(2, 3)",
    "(1, 3)",
)

# Constructors.
for value in (0, -1, 2.5, True):
    for arg, make in [
        ("in_features", lambda v: bptt.Dense(v, O)),
        ("out_features", lambda v: bptt.Dense(I, v)),
        ("input_size", lambda v: bptt.RNN(v, H)),
        ("hidden_size", lambda v: bptt.RNN(I, v)),
    ]:
        cls = "Dense" if "features" in arg else "RNN"
        row(
            f"{cls}-{arg}={value!r}",
            functools.partial(make, value),
            ValueError,
            cls,
            arg,
            "positive integer",
            repr(value),
        )
for cls in (bptt.Dense, bptt.RNN):
    n = cls.__name__
    row(
        f"{n}-dtype=int32",
        lambda cls=cls: cls(I, H, dtype=np.int32),
        TypeError,
        n,
        "dtype",
        "float32",
        "float64",
    )
    row(f"{n}-dtype=float16", lambda cls=cls: cls(I, H, dtype=np.float16), TypeError, n, "dtype", "float16")
    # np.dtype("abc") is a TypeError that as_float_dtype turns into None, and None == float64 in NumPy.
    row(f"{n}-dtype='abc'", lambda cls=cls: cls(I, H, dtype="abc"), TypeError, n, "dtype", "'abc'")
    row(f"{n}-rng='abc'", lambda cls=cls: cls(I, H, rng="abc"), TypeError, n, "rng", "'abc'")
    row(f"{n}-rng=2.5", lambda cls=cls: cls(I, H, rng=2.5), TypeError, n, "rng", "2.5")
row(
    "RNN-activation=softmax",
    lambda: bptt.RNN(I, H, activation="softmax"),
    ValueError,
    "activation",
    "'softmax'",
)
row("RNN-activation=Tanh", lambda: bptt.RNN(I, H, activation="Tanh"), ValueError, "activation", "'Tanh'")
row("Sequential-empty", lambda: bptt.Sequential([]), ValueError, "Sequential", "at least one layer")
row("Sequential-item-int", lambda: bptt.Sequential([3]), TypeError, "Sequential", "item 0", "bptt layer")
row(
    "Sequential-item-class",
    lambda: bptt.Sequential([bptt.Tanh(), bptt.Tanh]),
    TypeError,
    "Sequential",
    "item 1",
    "bptt layer",
)
row(
    "Sequential-nested",
    lambda: bptt.Sequential([bptt.Sequential([bptt.Tanh()])]),
    TypeError,
    "Sequential",
    "item 0",
)

# --- bptt.explain ----------------------------------------------------------------------------------


def _explain(x: Any, target: Any = None, model: Any = None) -> Callable[[], object]:
    return lambda: bptt.explain(bptt.RNN(I, H, rng=0) if model is None else model, x, target)


row("explain-x-2d", _explain(zeros(T, I)), bptt.ShapeError, "explain", "(4, 2)", "3 axes")
row("explain-x-1d", _explain(zeros(T)), bptt.ShapeError, "explain", "(4,)", "3 axes")
row(
    "explain-x-features",
    _explain(zeros(T, B, I + 3)),
    bptt.ShapeError,
    "RNN.forward",
    "(4, 2, 5)",
    "(4, 2, 2)",
)
row("explain-T0", _explain(zeros(0, B, I)), bptt.ShapeError, "explain", "(0, 2, 2)", "T ≥ 1")
row("explain-B0", _explain(zeros(T, 0, I)), bptt.ShapeError, "explain", "(4, 0, 2)", "B ≥ 1")
row("explain-x-complex", _explain(zeros(T, B, I, dtype=complex)), TypeError, "explain", "complex128")
row("explain-x-object", _explain(zeros(T, B, I).astype(object)), TypeError, "explain", "object")
row("explain-x-str", _explain(np.full((T, B, I), "1")), TypeError, "explain", "real numbers")
row(
    "explain-target-shape",
    _explain(good_x(), zeros(T, B, H + 1)),
    bptt.ShapeError,
    "MSELoss",
    "target",
    "(4, 2, 4)",
    "(4, 2, 3)",
)
row(
    "explain-h0-batch",
    _explain(good_x(), model=_rnn_with_h0(zeros(B + 1, H))),
    bptt.ShapeError,
    "RNN.forward",
    "h0",
    "(3, 3)",
)
# Not a layer: design.md promises ValueError/TypeError "saying what was expected", not AttributeError.
row("explain-model-str", _explain(good_x(), model="RNN"), TypeError, "explain", "model")

# --- bptt.gradcheck --------------------------------------------------------------------------------


def _gradcheck(x: Any, target: Any = None, model: Any = None, **kw: Any) -> Callable[[], object]:
    def call() -> object:
        m = bptt.RNN(I, H, rng=0) if model is None else model
        t = np.zeros((T, B, H)) if target is None else target
        return bptt.gradcheck(m, bptt.MSELoss(), x, t, **kw)

    return call


row("gradcheck-x-2d", _gradcheck(zeros(T, I)), bptt.ShapeError, "gradcheck", "(4, 2)", "3 axes")
row("gradcheck-RNN-x-1d", _gradcheck(zeros(T)), bptt.ShapeError, "(4,)", "3 axes")
row(
    "gradcheck-Dense-x-1d",
    _gradcheck(zeros(T), zeros(T, B, O), model=bptt.Dense(I, O, rng=0)),
    bptt.ShapeError,
    "gradcheck",
    "(4,)",
)
row(
    "gradcheck-x-features",
    _gradcheck(zeros(T, B, I + 3)),
    bptt.ShapeError,
    "RNN.forward",
    "(4, 2, 5)",
    "(4, 2, 2)",
)
row("gradcheck-T0", _gradcheck(zeros(0, B, I), zeros(0, B, H)), bptt.ShapeError, "(0, 2, 2)", "T ≥ 1")
row("gradcheck-B0", _gradcheck(zeros(T, 0, I), zeros(T, 0, H)), bptt.ShapeError, "(4, 0, 2)", "B ≥ 1")
row(
    "gradcheck-target-shape",
    _gradcheck(good_x(), zeros(T, B, H + 1)),
    bptt.ShapeError,
    "MSELoss",
    "target",
    "(4, 2, 4)",
)
row(
    "gradcheck-h0-batch",
    _gradcheck(good_x(), model=_rnn_with_h0(zeros(B + 1, H))),
    bptt.ShapeError,
    "RNN.forward",
    "h0",
    "(3, 3)",
    "(2, 3)",
)
# gradcheck converts x with np.asarray(x, float64): complex input loses its imaginary part with a
# ComplexWarning, object arrays are converted silently, strings raise numpy's ValueError.
row("gradcheck-x-complex", _gradcheck(np.full((T, B, I), 1 + 1j)), TypeError, "gradcheck", "complex128")
row("gradcheck-x-object", _gradcheck(good_x().astype(object)), TypeError, "gradcheck", "object")
row("gradcheck-x-str", _gradcheck(np.full((T, B, I), "1")), TypeError, "gradcheck", "real numbers")
row(
    "gradcheck-float32-model",
    _gradcheck(good_x(), model=bptt.RNN(I, H, rng=0, dtype=np.float32)),
    TypeError,
    "gradcheck",
    "float64",
)
row(
    "gradcheck-method", _gradcheck(good_x(), method="forward"), ValueError, "gradcheck", "method", "'forward'"
)
row("gradcheck-model-str", _gradcheck(good_x(), model="RNN"), TypeError, "gradcheck", "model")

# --- losses ----------------------------------------------------------------------------------------

LOSSES = (bptt.MSELoss, bptt.BCEWithLogitsLoss, bptt.CrossEntropyLoss)
C = 4  # classes / features of y_pred (T, B, C)


def _target(cls: type[bptt.Loss]) -> np.ndarray:
    return zeros(T, B, dtype=np.int64) if cls is bptt.CrossEntropyLoss else zeros(T, B, C)


def _loss(cls: type[bptt.Loss], y: Any = None, target: Any = None, mask: Any = None, **kw: Any):
    def call() -> object:
        yy = zeros(T, B, C) if y is None else y
        return cls(**kw)(yy, _target(cls) if target is None else target, mask)

    return call


for cls in LOSSES:
    n = cls.__name__
    if cls is bptt.CrossEntropyLoss:
        row(
            f"{n}-target-shape",
            _loss(cls, target=zeros(T, B + 1, dtype=np.int64)),
            bptt.ShapeError,
            n,
            "target",
            "(4, 3)",
            "(T, B) = (4, 2)",
        )
        row(
            f"{n}-target-3d",
            _loss(cls, target=zeros(T, B, 1, dtype=np.int64)),
            bptt.ShapeError,
            n,
            "target",
            "(4, 2, 1)",
        )
    else:
        row(
            f"{n}-target-shape",
            _loss(cls, target=zeros(T, B, C + 1)),
            bptt.ShapeError,
            n,
            "target",
            "(4, 2, 5)",
            "(4, 2, 4)",
        )
        row(f"{n}-target-complex", _loss(cls, target=zeros(T, B, C, dtype=complex)), TypeError, n, "target")
    row(
        f"{n}-mask-shape",
        _loss(cls, mask=np.ones((T, B + 1))),
        bptt.ShapeError,
        n,
        "mask",
        "(4, 3)",
        "(4, 2)",
    )
    row(f"{n}-mask-3d", _loss(cls, mask=np.ones((T, B, 1))), bptt.ShapeError, n, "mask", "(4, 2, 1)")
    for bad in (2.0, 0.5, -1.0, np.nan):
        row(f"{n}-mask={bad}", _loss(cls, mask=np.full((T, B), bad)), ValueError, n, "mask", "0 and 1")
    row(f"{n}-mask-str", _loss(cls, mask=np.full((T, B), "1")), TypeError, n, "mask")
    for red in ("none", "MEAN", None):
        row(f"{n}-reduction={red!r}", _loss(cls, reduction=red), ValueError, n, "reduction", repr(red))
    row(f"{n}-y-2d", _loss(cls, y=zeros(T, B)), bptt.ShapeError, n, "y_pred", "(4, 2)", "3 axes")
    row(f"{n}-y-T0", _loss(cls, y=zeros(0, B, C), target=_target(cls)[:0]), bptt.ShapeError, n, "T ≥ 1")
    row(f"{n}-y-complex", _loss(cls, y=zeros(T, B, C, dtype=complex)), TypeError, n, "y_pred", "complex128")

CE = "CrossEntropyLoss"
for idx in (C, C + 10, -1, -5):
    row(
        f"{CE}-class-index={idx}",
        _loss(bptt.CrossEntropyLoss, target=np.full((T, B), idx)),
        ValueError,
        CE,
        f"class index {idx}",
        f"C = {C}",
    )
row(
    f"{CE}-float-targets",
    _loss(bptt.CrossEntropyLoss, target=zeros(T, B)),
    TypeError,
    CE,
    "integer",
    "float64",
)
row(
    f"{CE}-integral-float-targets",
    _loss(bptt.CrossEntropyLoss, target=np.ones((T, B))),
    TypeError,
    CE,
    "integer class indices",
)
row(f"{CE}-bool-targets", _loss(bptt.CrossEntropyLoss, target=zeros(T, B, dtype=bool)), TypeError, CE, "bool")

# --- optimizers ------------------------------------------------------------------------------------


def _model() -> bptt.Sequential:
    return bptt.Sequential([bptt.RNN(I, H, rng=0), bptt.Dense(H, 1, rng=1)])


OPTIMIZERS: list[type[optim.Optimizer]] = [optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adam]
for opt in OPTIMIZERS:
    n = opt.__name__
    for lr in (0.0, -0.1, np.nan, np.inf):
        row(f"{n}-lr={lr}", lambda opt=opt, lr=lr: opt(_model(), lr=lr), ValueError, n, "lr")
    row(f"{n}-no-params", lambda opt=opt: opt(bptt.Tanh(), lr=0.1), ValueError, n, "no parameters")
for opt in OPTIMIZERS[1:]:
    n = opt.__name__
    row(f"{n}-eps<0", lambda opt=opt: opt(_model(), eps=-1e-8), ValueError, n, "eps")
row("SGD-momentum<0", lambda: optim.SGD(_model(), 0.1, momentum=-0.1), ValueError, "SGD", "momentum")
row("SGD-momentum=nan", lambda: optim.SGD(_model(), 0.1, momentum=np.nan), ValueError, "SGD", "momentum")
row(
    "SGD-nesterov-without-momentum",
    lambda: optim.SGD(_model(), 0.1, nesterov=True),
    ValueError,
    "SGD",
    "nesterov",
    "momentum",
)
# A string lr fails inside the comparison with a bare "'>' not supported ..." naming neither.
row("SGD-lr-str", lambda: optim.SGD(_model(), "0.1"), TypeError, "SGD", "lr")
row("RMSprop-alpha=1", lambda: optim.RMSprop(_model(), alpha=1.0), ValueError, "RMSprop", "alpha")
for betas, word in [
    ((1.0, 0.999), "betas[0]"),
    ((0.9, 1.5), "betas[1]"),
    ((-0.1, 0.999), "betas[0]"),
    ((0.9, np.nan), "betas[1]"),
    ((0.9,), "pair"),
    (0.9, "pair"),
]:
    row(
        f"Adam-betas={betas!r}",
        lambda betas=betas: optim.Adam(_model(), betas=betas),
        ValueError,
        "Adam",
        word,
    )
for max_norm in (0.0, -1.0, np.nan):
    row(
        f"clip_grad_norm-max_norm={max_norm}",
        lambda max_norm=max_norm: bptt.clip_grad_norm(_model(), max_norm),
        ValueError,
        "clip_grad_norm",
        "max_norm",
    )

# --- tasks.addition --------------------------------------------------------------------------------


@functools.cache
def adder() -> bptt.Sequential:
    """The adder that ships inside the package."""
    return bptt.load(bptt.cli.shipped_model())


BAD_OPERANDS = [-1, -(1 << 80), 2.5, 3.0, np.float64(3.0), True, False, "3", None]
for value in BAD_OPERANDS:
    for fn in ("encode", "add"):
        for arg in ("a", "b"):
            ab = (value, 1) if arg == "a" else (1, value)
            call = (
                functools.partial(addition.encode, *ab)
                if fn == "encode"
                else (lambda ab=ab: addition.add(adder(), *ab))
            )
            row(f"{fn}-{arg}={value!r}", call, ValueError, fn, arg, "non-negative integer")
row("encode-n_bits=0", lambda: addition.encode(1, 1, 0), ValueError, "encode", "n_bits")
row("encode-n_bits-too-small", lambda: addition.encode(8, 1, 2), ValueError, "encode", "n_bits", "too small")
for bits in ([0, 2, 1], [0, -1, 1], [np.nan, 1.0], [1.0, np.inf]):
    row(f"decode-{bits!r}", functools.partial(addition.decode, np.array(bits)), ValueError, "decode", "0/1")
row("decode-2d", lambda: addition.decode(zeros(2, 3)), bptt.ShapeError, "decode", "(2, 3)", "(T,)")
row("decode-str", lambda: addition.decode(np.array(["1", "0"])), TypeError, "decode", "bits")
row("make_batch-n_bits=0", lambda: addition.make_batch(0, 4, 0), ValueError, "make_batch", "n_bits")
row("make_batch-batch_size=0", lambda: addition.make_batch(4, 0, 0), ValueError, "make_batch", "batch_size")
row("make_batch-n_bits=2.5", lambda: addition.make_batch(2.5, 4, 0), ValueError, "make_batch", "n_bits")
row("make_batch-rng='abc'", lambda: addition.make_batch(4, 4, "abc"), TypeError, "make_batch", "rng")
row(
    "accuracy-n_bits=13-all-pairs", lambda: addition.accuracy(adder(), 13), ValueError, "accuracy", "samples="
)
row("accuracy-samples=0", lambda: addition.accuracy(adder(), 4, 0), ValueError, "accuracy", "samples")
row("accuracy-n_bits=0", lambda: addition.accuracy(adder(), 0), ValueError, "accuracy", "n_bits")
row(
    "accuracy-3-input-model",
    lambda: addition.accuracy(bptt.Sequential([bptt.RNN(3, 2, rng=0), bptt.Dense(2, 1, rng=0)]), 4),
    ValueError,
    "2 input bits",
)
row("train-preset=fast", lambda: addition.train(preset="fast"), ValueError, "train", "preset", "'fast'")
row("train-unknown-option", lambda: addition.train(learning_rate=0.1), TypeError, "train", "learning_rate")
row("train-n_bits=0", lambda: addition.train(0), ValueError, "train", "n_bits")
row("train-hidden=0", lambda: addition.train(8, 0), ValueError, "train", "hidden")
for option, value in [
    ("lr", 0),
    ("lr", -0.1),
    ("lr", np.nan),
    ("batch_size", 0),
    ("check_every", 0),
    ("steps", 0),
    ("max_steps", 0),
    ("clip", 0),
    ("optimizer", "rmsprop"),
    ("activation", "gelu"),
    ("output", "softmax"),
]:
    row(
        f"train-{option}={value!r}",
        functools.partial(addition.train, **{option: value}),
        ValueError,
        option,
        repr(value),
    )

# --- io.load ---------------------------------------------------------------------------------------


def _load_file(content: bytes | None, *, directory: bool = False) -> Callable[[], object]:
    """Load ``model.npz`` in a fresh folder: absent (None), a directory, or holding ``content``."""

    def call() -> object:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "model.npz"
            if directory:
                path.mkdir()
            elif content is not None:
                path.write_bytes(content)
            return bptt.load(path)

    return call


RANDOM_BYTES = np.random.default_rng(7).bytes(2000)
row("load-missing", _load_file(None), ValueError, "load", "model.npz", "does not exist")
row("load-directory", _load_file(None, directory=True), ValueError, "load", "is a directory")
row("load-empty", _load_file(b""), ValueError, "load", "is empty")
row("load-random-bytes", _load_file(b"\x00" + RANDOM_BYTES), ValueError, "load", "not a bptt model file")
row(
    "load-random-zip-magic",
    _load_file(b"PK\x03\x04" + RANDOM_BYTES),
    ValueError,
    "load",
    "truncated or corrupt",
)
row("load-pickle", _load_file(b"\x80\x04" + RANDOM_BYTES), ValueError, "load", "pickled")
row("load-text", _load_file(b"hello, model\n"), ValueError, "load", "not a bptt model file")

ROW_COUNT = len(ROWS)


@pytest.mark.parametrize("case", ROWS, ids=[r.id for r in ROWS])
def test_bad_call(case: Row) -> None:
    """The call raises the documented type, and the message holds every key word."""
    with pytest.raises(case.exc) as excinfo:
        case.call()
    message = str(excinfo.value)
    missing = [w for w in case.words if w not in message]
    assert not missing, f"{missing} not in {message!r}"


def test_row_ids_are_unique() -> None:
    """Every catalogue row has its own id, so a failure names exactly one bad call."""
    ids = [r.id for r in ROWS] + [r.id for r in CLI_ROWS]
    assert len(ids) == len(set(ids)) == CATALOGUE_ROWS


def test_huge_operands_work() -> None:
    """Operands of 3,000 decimal digits are valid: encode holds their bits, add gets the sum."""
    a, b = 10**3000, 3**6000 + 12345
    x = addition.encode(a, b)
    n_bits = max(a.bit_length(), b.bit_length())
    assert x.shape == (n_bits + 1, 1, 2)
    assert addition.decode(x[:, 0, 0]) == a
    assert addition.decode(x[:, 0, 1]) == b
    assert addition.add(adder(), a, b) == a + b
    assert addition.add(adder(), a, a - 1) == 2 * a - 1  # a carry chain as long as a


# --- the command line ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliRow:
    """One bad command line: exit 2, one line on stderr holding every one of ``words``."""

    id: str
    argv: tuple[str, ...]
    words: tuple[str, ...]


CLI_ROWS: list[CliRow] = []


def cli_row(argv: str, *words: str) -> None:
    args = tuple(shlex.split(argv))
    CLI_ROWS.append(CliRow(" ".join(args), args, words))


def subcommands() -> list[str]:
    """The subcommands ``bptt --help`` lists right now."""
    parser = bptt.cli.build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [name for action in subs for name in action.choices]


SUBCOMMANDS = subcommands()

# Files the rows name; test_bad_command_line creates them in its empty working folder.
# empty.npz: 0 bytes; folder/: a directory; wrong.npz: a valid model that takes 3 inputs, not 2.
cli_row("nosuchcmd", "nosuchcmd")
cli_row("--bogus", "--bogus")
for cmd in SUBCOMMANDS:
    cli_row(f"{cmd} --no-such-option", "error")
cli_row("gradcheck --seed abc", "--seed", "'abc'")
cli_row("gradcheck --seed -1 --no-torch", "--seed")
cli_row("gradcheck extra", "extra")
cli_row("train --bits 0", "--bits", "'0'")
cli_row("train --bits -3", "--bits")
cli_row("train --hidden x", "--hidden", "'x'")
cli_row("train --preset fast", "--preset", "'fast'")
cli_row("train --seed 1.5", "--seed", "'1.5'")
cli_row("train --seed -1 --quiet", "--seed")
cli_row("train --out folder", "--out", "directory")
cli_row("train --out missing/dir/a.npz", "--out", "does not exist")
cli_row("train --plot missing/dir/a.png", "--plot", "does not exist")
cli_row("add -1 2", "add", "non-negative")
cli_row("add 1 -2", "add", "non-negative")
cli_row("add 1.5 2", "'1.5'")
cli_row("add abc 2", "'abc'")
cli_row("add 1", "required", "b")
cli_row("add 1 2 --model missing.npz", "missing.npz", "does not exist")
cli_row("add 1 2 --model folder", "folder", "directory")
cli_row("add 1 2 --model empty.npz", "empty.npz", "is empty")
cli_row("add 1 2 --model wrong.npz", "2 input bits")
cli_row("eval --bits 0", "--bits", "'0'")
cli_row("eval --bits x", "--bits", "'x'")
cli_row("eval --samples 0", "--samples", "'0'")
cli_row("eval --samples -5", "--samples")
cli_row("eval --seed -1 --bits 4 --samples 2", "--seed")
cli_row("eval --model missing.npz", "does not exist")
cli_row("eval --model empty.npz", "is empty")
cli_row("eval --model wrong.npz --bits 4", "2 input bits")
cli_row("explain --steps 0", "--steps")
cli_row("explain --batch -1", "--batch")
cli_row("explain --hidden 0", "--hidden")
cli_row("explain --input x", "--input", "'x'")
cli_row("explain --activation gelu", "--activation", "'gelu'")
cli_row("explain --seed -1", "--seed")
cli_row("explain --model missing.npz", "does not exist")
cli_row("explain --model folder", "directory")
cli_row("bench --threads x", "--threads", "'x'")
cli_row("bench --threads 0 --quick", "--threads")
cli_row("bench --threads -1 --quick", "--threads")
cli_row("bench --dtypes float16", "--dtypes", "'float16'")
cli_row("bench --budget x", "--budget", "'x'")
cli_row("bench --budget -1 --quick --threads 1 --dtypes float32", "--budget")
cli_row("bench --quick --threads 1 --dtypes float32 --json missing/dir/rows.json", "--json", "does not exist")
if "plot" in SUBCOMMANDS:  # being added while this file was written; its rows follow `bptt plot --help`
    cli_row("plot", "required")
    cli_row("plot nosuchkind --out p.png", "'nosuchkind'")
    cli_row("plot hidden --out folder", "--out", "directory")
    cli_row("plot hidden --out missing/dir/p.png", "--out", "does not exist")
    cli_row("plot hidden --out p.png --model missing.npz", "does not exist")
    cli_row("plot hidden --out p.png --model empty.npz", "is empty")
    cli_row("plot hidden --out p.png --a -1", "--a")
    cli_row("plot hidden --out p.png --seed x", "--seed", "'x'")
    cli_row("plot gradnorm --out p.png --seed -1", "--seed")
    cli_row("plot pca --out p.png --seed -1", "--seed")

# Hostile paths: devices, FIFOs, names too long, files that are not what they claim.
LONG = "a" * 300  # longer than any filesystem's name limit (255 bytes)
cli_row("train --out /dev/null", "--out", "'/dev/null'", "not a regular file")
cli_row("train --out fifo", "--out", "'fifo'", "not a regular file")
cli_row("train --out", "--out", "expected one argument")
cli_row(f"train --out {LONG}.npz", "--out", "too long")
cli_row("train --plot fifo", "--plot", "not a regular file")
cli_row("train --plot curves.gif", "--plot", "'.gif'", "expected one of .png, .svg, .pdf")
cli_row("train --out ''", "--out", "is empty")
cli_row("plot history --out curves", "--out", "no extension", "expected one of")
cli_row("plot hidden --out x.jpeg", "--out", "'.jpeg'")
cli_row("add 1 2 --model fifo", "'fifo'", "not a regular file")
cli_row("add 1 2 --model /dev/zero", "'/dev/zero'", "not a regular file")
cli_row(f"add 1 2 --model {LONG}.npz", "too long")
cli_row("add @fifo 2", "operand file 'fifo'", "not a regular file")
cli_row("add @/dev/zero 2", "operand file '/dev/zero'", "not a regular file")
cli_row("add @missing.txt 2", "'missing.txt'", "does not exist")
cli_row("add @folder 2", "'folder'", "directory")
cli_row("add @latin1.txt 2", "'latin1.txt'", "not UTF-8")
cli_row("add @self.txt 2", "'@self.txt'", "decimal")  # an @ inside the file is not followed
cli_row("add @empty.npz 2", "decimal")
cli_row("eval --model fifo", "not a regular file")
cli_row("explain --model /dev/zero", "not a regular file")
cli_row("sample --model fifo", "not a regular file")
cli_row("bench --quick --threads 1 --dtypes float32 --json /dev/null", "--json", "not a regular file")
# Requests bigger than memory: refused up front with the size named, never a MemoryError or the OOM killer.
cli_row("eval --bits 100000000", "--bits 100000000", "needs about", "TiB")
cli_row("train --hidden 1000000000 --quiet", "--hidden 1000000000", "needs about")
cli_row("train --hidden 100000 --quiet", "--hidden 100000", "needs about")
cli_row("train --bits 100000000 --quiet", "--bits 100000000", "needs about")
cli_row("train --task charlm --hidden 1000000 --quiet", "--hidden 1000000", "needs about")
cli_row("train --task charlm --batch 100000000 --quiet", "--batch 100000000", "needs about")
cli_row("eval --bits 12 --samples 1000000000000", "needs about")
cli_row("explain --hidden 1000000", "needs about", "TiB")
cli_row("explain --steps 1000000000 --batch 1000", "needs about")
cli_row("sample --length 100000000000", "--length", "needs about")
cli_row("bench --shapes 100000,100000,2,1000,1 --threads 1 --dtypes float64", "--shapes", "needs about")
cli_row("train --task charlm --text fifo --quiet", "not a regular file")
cli_row("train --task charlm --text 'folder/*.none' --quiet", "no text files")
cli_row("train --task charlm --corpus java", "--corpus", "'java'")
cli_row("train --task charlm --corpus python --text latin1.txt", "give one")
cli_row("train --corpus python", "--corpus does not apply")
cli_row("sample --top-k 0", "--top-k", "'0'")
# bptt export: a missing or hostile model file, an output that is no regular file, no format flag.
cli_row("export --torch missing.npz x.pt", "'missing.npz'", "does not exist")
cli_row("export --torch folder x.pt", "'folder'", "directory")
cli_row("export --torch empty.npz x.pt", "'empty.npz'", "is empty")
cli_row("export --torch fifo x.pt", "'fifo'", "not a regular file")
cli_row("export --torch /dev/zero x.pt", "'/dev/zero'", "not a regular file")
cli_row("export --torch wrong.npz folder", "OUT", "'folder'", "directory")
cli_row("export --torch wrong.npz fifo", "OUT", "'fifo'", "not a regular file")
cli_row("export --torch wrong.npz /dev/null", "OUT", "not a regular file")
cli_row("export --torch wrong.npz missing/dir/x.pt", "OUT", "does not exist")
cli_row(f"export --torch wrong.npz {LONG}.pt", "OUT", "too long")
cli_row("export wrong.npz x.pt", "--torch", "required")
cli_row("export --torch wrong.npz", "OUT", "required")

# bptt doctor: a learner file that is missing, hostile, not Python or without the name; a bad flag.
cli_row("doctor missing.py:Net", "'missing.py'", "does not exist")
cli_row("doctor folder:Net", "'folder'", "directory")
cli_row("doctor fifo:Net", "'fifo'", "not a regular file")
cli_row("doctor /dev/zero:Net", "'/dev/zero'", "not a regular file")
cli_row("doctor self.txt", "expected PATH.py:NAME")
cli_row("doctor self.txt:Net", "cannot import", "SyntaxError on line 1")
cli_row("doctor latin1.txt:Net", "cannot import", "SyntaxError", "utf-8")
cli_row("doctor empty.npz:Net", "has no 'Net'")
cli_row("doctor empty.npz:Net --map U", "--map", "NAME=ROLE")
cli_row("doctor empty.npz:Net --map U=W_xh", "--map", "'W_xh'", "no role")
cli_row("doctor empty.npz:Net --data rows", "--data", "'rows'")
cli_row("doctor empty.npz:Net --layout diagonal", "--layout", "'diagonal'")
cli_row("doctor empty.npz:Net --seed -1", "--seed")

CLI_ROW_COUNT = len(CLI_ROWS)
CATALOGUE_ROWS = ROW_COUNT + CLI_ROW_COUNT


def _prepare_folder(folder: Path) -> None:
    """The files the CLI rows name: an empty file, a directory, a FIFO, a 3-input model and
    operand files that are not UTF-8 or that name themselves."""
    (folder / "empty.npz").write_bytes(b"")
    (folder / "folder").mkdir()
    os.mkfifo(folder / "fifo")  # opening it to read or write would wait forever for a peer
    (folder / "latin1.txt").write_bytes("1234\xe9".encode("latin-1"))
    (folder / "self.txt").write_text("@self.txt")
    wrong = bptt.Sequential([bptt.RNN(3, 4, rng=0), bptt.Dense(4, 1, rng=1)])
    bptt.save(wrong, folder / "wrong.npz")


def run_main(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``bptt ARGV`` in-process: (exit status, stdout, stderr). An exception escaping ``main``
    is what the console script would show as a traceback, so it fails the test."""
    try:
        rc = bptt.cli.main(list(argv))
    except SystemExit as e:
        rc = 0 if e.code is None else int(e.code)
    except Exception as e:
        out, err = capsys.readouterr()
        pytest.fail(f"main raised {type(e).__name__}: {e} (a traceback from the script); stdout {out!r}")
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("case", CLI_ROWS, ids=[r.id for r in CLI_ROWS])
def test_bad_command_line(
    case: CliRow, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr with the key words, no traceback."""
    monkeypatch.chdir(tmp_path)
    _prepare_folder(tmp_path)
    threads = torch.get_num_threads()
    try:
        rc, out, err = run_main(case.argv, capsys)
    finally:
        torch.set_num_threads(threads)  # `bench` sets torch's thread count for the whole process
    assert "Traceback" not in out + err
    assert rc == 2, (rc, out, err)
    assert out == "", out
    assert err.endswith("\n") and err.count("\n") == 1, err
    missing = [w for w in case.words if w not in err]
    assert not missing, f"{missing} not in {err!r}"


def test_installed_script_bad_input(tmp_path: Path) -> None:
    """The installed ``bptt`` script itself: exit 2, one stderr line, no traceback."""
    script = shutil.which("bptt", path=str(Path(sys.executable).parent))
    assert script is not None, f"no bptt console script next to {sys.executable}"
    done = subprocess.run(
        [script, "add", "1", "2", "--model", "missing.npz"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "does not exist" in done.stderr, done.stderr


# --- the choices: what is cast, and what propagates --------------------------------------------------


def _dense(dtype: Any = np.float64) -> bptt.Dense:
    return bptt.Dense(I, O, rng=3, dtype=dtype)


def _rnn(dtype: Any = np.float64) -> bptt.RNN:
    return bptt.RNN(I, H, rng=3, dtype=dtype)


@pytest.mark.parametrize("make", [_dense, _rnn], ids=["Dense", "RNN"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_int_and_bool_input_is_cast(make: Callable[[], bptt.Layer], dtype: Any) -> None:
    """An integer or boolean array gives exactly what the same values as float64 give."""
    values = np.random.default_rng(1).integers(0, 2 if dtype is np.bool_ else 5, (T, B, I))
    layer, same = make(), make()
    y = layer.forward(values.astype(dtype))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, same.forward(values.astype(np.float64)))


@pytest.mark.parametrize("make", [_dense, _rnn], ids=["Dense", "RNN"])
@pytest.mark.parametrize(
    ("layer_dtype", "input_dtype"),
    [(np.float64, np.float32), (np.float32, np.float64)],
    ids=["float64-layer-float32-input", "float32-layer-float64-input"],
)
def test_float_input_is_cast_to_the_layer_dtype(
    make: Callable[[Any], bptt.Layer], layer_dtype: Any, input_dtype: Any
) -> None:
    """Float input of the other width computes in the layer's dtype, forward and backward."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(T, B, I)).astype(input_dtype)
    layer, same = make(layer_dtype), make(layer_dtype)
    y = layer.forward(x)
    assert y.dtype == layer_dtype
    np.testing.assert_array_equal(y, same.forward(x.astype(layer_dtype)))
    g = rng.normal(size=y.shape).astype(input_dtype)
    grad_x = layer.backward(g)
    assert grad_x.dtype == layer_dtype
    np.testing.assert_array_equal(grad_x, same.backward(g.astype(layer_dtype)))
    for k, v in layer.grads.items():
        assert v.dtype == layer_dtype
        np.testing.assert_array_equal(v, same.grads[k])


def test_nan_in_input_propagates_through_dense() -> None:
    """A NaN in x makes that row of y NaN and leaves every other row finite; nothing raises."""
    x = good_x()
    x[1, 0, 1] = np.nan
    y = _dense().forward(x)
    assert np.isnan(y[1, 0]).all()
    rest = np.ones((T, B), bool)
    rest[1, 0] = False
    assert np.isfinite(y[rest]).all()


def test_nan_in_input_propagates_through_rnn_time() -> None:
    """A NaN at step t of one sequence reaches every later state of that sequence only."""
    x = good_x()
    x[1, 1, 0] = np.nan
    rnn = _rnn()
    h = rnn.forward(x)
    assert np.isfinite(h[:1]).all() and np.isfinite(h[:, 0]).all()
    assert np.isnan(h[1:, 1]).all()
    grad_x = rnn.backward(np.random.default_rng(4).normal(size=h.shape))
    assert np.isnan(grad_x[:, 1]).any() and np.isfinite(grad_x[:, 0]).all()


def test_inf_in_input_propagates() -> None:
    """An Inf in x makes that row of a Dense output non-finite; nothing raises."""
    x = good_x()
    x[0, 0, 0] = np.inf
    with np.errstate(invalid="ignore"):  # NumPy's own note about inf in the matmul; not a refusal
        y = _dense().forward(x)
    assert not np.isfinite(y[0, 0]).any()
    assert np.isfinite(y[1:]).all() and np.isfinite(y[0, 1]).all()
