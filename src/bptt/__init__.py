"""bptt: recurrent networks in NumPy, with backpropagation through time proven correct.

Arrays are time-major, ``(T, B, F)``; layers compute ``x @ W`` with ``W (in, out)``.

Every name is imported on first use (PEP 562), so ``import bptt`` and ``import bptt.cli`` load
only the standard library: the ``bptt`` command starts, and can be interrupted cleanly, before
NumPy is loaded.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from . import functional, optim
    from .bridge import from_torch, to_torch
    from .errors import ShapeError
    from .explain import Explanation, explain
    from .gradcheck import GradcheckReport, gradcheck
    from .io import load, save
    from .layers import Dense, Last, Layer, ReLU, Sequential, Sigmoid, State, Tanh, register_layer
    from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss
    from .optim import clip_grad_norm
    from .recurrent import GRU, LSTM, RNN, Bidirectional, Recurrent

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
    "Recurrent",
    "Sequential",
    "ShapeError",
    "Sigmoid",
    "State",
    "Tanh",
    "__version__",
    "clip_grad_norm",
    "explain",
    "from_torch",
    "functional",
    "gradcheck",
    "load",
    "optim",
    "register_layer",
    "save",
    "to_torch",
]

# The submodule that defines each public name that is not a submodule itself.
_HOME = {
    "BCEWithLogitsLoss": "losses",
    "Bidirectional": "recurrent",
    "CrossEntropyLoss": "losses",
    "Dense": "layers",
    "Explanation": "explain",
    "GRU": "recurrent",
    "GradcheckReport": "gradcheck",
    "LSTM": "recurrent",
    "Last": "layers",
    "Layer": "layers",
    "Loss": "losses",
    "MSELoss": "losses",
    "RNN": "recurrent",
    "ReLU": "layers",
    "Recurrent": "recurrent",
    "Sequential": "layers",
    "ShapeError": "errors",
    "Sigmoid": "layers",
    "State": "layers",
    "Tanh": "layers",
    "clip_grad_norm": "optim",
    "explain": "explain",
    "from_torch": "bridge",
    "gradcheck": "gradcheck",
    "load": "io",
    "register_layer": "layers",
    "save": "io",
    "to_torch": "bridge",
}

if not TYPE_CHECKING:  # for mypy, the imports above define every name, and unknown ones stay errors

    def __getattr__(name: str) -> Any:
        """Import a public name, or any submodule (``bptt.io``, ``bptt.tasks``), on first use."""
        if name in _HOME:
            value = getattr(import_module(f"{__name__}.{_HOME[name]}"), name)
        elif name.startswith("__"):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        else:
            try:
                value = import_module(f"{__name__}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{__name__}.{name}":
                    raise  # the submodule exists but needs something missing: say that
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The ``bptt`` module, keeping ``bptt.explain`` and ``bptt.gradcheck`` the functions.

    Importing a submodule sets it as an attribute of its package; the submodules ``explain``
    and ``gradcheck`` would then hide the functions of the same name.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if not (name in _HOME and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
