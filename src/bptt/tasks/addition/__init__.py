"""Binary addition: the task bptt is known for.

Numbers are encoded least significant bit first. At step ``t`` the input is ``(a_t, b_t)`` and
the target is bit ``t`` of ``a + b``; there are ``T = n_bits + 1`` steps so the final carry has
one. An RNN that learns the carry on 8-bit sums adds numbers of any length exactly.

``bits`` encodes numbers and draws sums, ``evaluate`` measures and streams an adder,
``training`` trains one, ``probe`` looks inside it, and ``plots`` draws what it finds there
(matplotlib, the optional ``bptt[plot]`` extra, is imported only when a picture is drawn).
"""

from ...stopping import Diverged, Interrupted, TrainingStopped
from .bits import bits_to_int, decode, encode, int_to_bits, make_batch
from .evaluate import ACCELERATE_FROM, CHUNK, accuracy, add, predict_bits
from .plots import plot_hidden, plot_pca
from .probe import CarryProbe, carry_bits, carry_probe, hidden_states
from .training import PRESETS, History, Recipe, build_model, operand_width, train

__all__ = [
    "ACCELERATE_FROM",
    "CHUNK",
    "PRESETS",
    "CarryProbe",
    "Diverged",
    "History",
    "Interrupted",
    "Recipe",
    "TrainingStopped",
    "accuracy",
    "add",
    "bits_to_int",
    "build_model",
    "carry_bits",
    "carry_probe",
    "decode",
    "encode",
    "hidden_states",
    "int_to_bits",
    "make_batch",
    "operand_width",
    "plot_hidden",
    "plot_pca",
    "predict_bits",
    "train",
]
