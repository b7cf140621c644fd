"""Layers: the protocol (``Layer``, ``State``, ``register_layer``), and Dense, Sigmoid, Tanh, ReLU,
Last and Sequential, one per module. The recurrent layers live in ``bptt.recurrent``.

Weights multiply row vectors on the right (``x @ W``), so ``W`` is ``(in, out)`` and every weight
gradient, ``dW = Σ_t x_tᵀ δ_t``, is computed as one ``(T·B, in)ᵀ @ (T·B, out)`` matmul.
"""

from .base import Layer, State, Weighted, check_lengths, layer_types, length_mask, register_layer, run_from
from .dense import Dense
from .elementwise import Elementwise, ReLU, Sigmoid, Tanh
from .last import Last
from .sequential import Sequential

__all__ = [
    "Dense",
    "Elementwise",
    "Last",
    "Layer",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "State",
    "Tanh",
    "Weighted",
    "check_lengths",
    "layer_types",
    "length_mask",
    "register_layer",
    "run_from",
]
