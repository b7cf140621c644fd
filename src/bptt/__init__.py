"""bptt: recurrent networks in NumPy, with backpropagation through time proven correct.

Arrays are time-major, ``(T, B, F)``; layers compute ``x @ W`` with ``W (in, out)``.
"""

from __future__ import annotations

from . import functional, optim
from .errors import ShapeError
from .gradcheck import GradcheckReport, gradcheck
from .layers import RNN, Dense, Last, Layer, ReLU, Sequential, Sigmoid, Tanh
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss
from .optim import clip_grad_norm

__version__ = "0.1.0"

__all__ = [
    "RNN",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "Dense",
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
    "functional",
    "gradcheck",
    "optim",
]
