"""Recurrent layers: RNN, LSTM, GRU, and Bidirectional around any of them, one per module.

``base.Recurrent`` holds what the cells share (weights, the explicit ``State``, caches, weight
gradients), so each cell module holds only its equations: one forward loop and one BPTT loop.
Gates are packed in PyTorch's order (LSTM ``i, f, g, o``; GRU ``r, z, n``) so weights map onto
``torch.nn`` by a transpose (see ``bptt.bridge``).
"""

from .base import Recurrent
from .bidirectional import Bidirectional
from .gru import GRU
from .lstm import LSTM
from .rnn import RNN

__all__ = ["GRU", "LSTM", "RNN", "Bidirectional", "Recurrent"]
