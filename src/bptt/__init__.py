"""bptt: recurrent networks in NumPy, with backpropagation through time proven correct.

Arrays are time-major, ``(T, B, F)``; layers compute ``x @ W`` with ``W (in, out)``.
"""

from __future__ import annotations

from . import functional, optim
from ._version import __version__
from .bridge import from_torch, to_torch
from .errors import ShapeError
from .explain import Explanation, explain
from .gradcheck import GradcheckReport, gradcheck
from .io import load, save
from .layers import Dense, Last, Layer, ReLU, Sequential, Sigmoid, Tanh
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss
from .optim import clip_grad_norm
from .recurrent import GRU, LSTM, RNN, Bidirectional

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "BCEWithLogitsLoss",
    "Bidirectional",
    "CrossEntropyLoss",
    "Dense",
    "Explanation",
    "GradcheckReport",
    "Last",
    "Layer",
    "Loss",
    "MSELoss",
    "ReLU",
    "Sequential",
    "ShapeError",
    "Sigmoid",
    "Tanh",
    "__version__",
    "clip_grad_norm",
    "explain",
    "from_torch",
    "functional",
    "gradcheck",
    "load",
    "optim",
    "save",
    "to_torch",
]
