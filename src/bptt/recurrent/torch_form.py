"""The ``torch.nn`` form of recurrent layers: one ``nn.RNN``/``nn.LSTM``/``nn.GRU`` per layer.

bptt multiplies row vectors (``x @ W``), so torch's weights are bptt's transposed:
``weight_ih_l0 = W_ihᵀ`` and ``weight_hh_l0 = W_hhᵀ``; each cell says how its biases map
(``Recurrent.torch_biases``). A ``Bidirectional`` is one module with ``bidirectional=True``, its
backward direction in the ``*_l0_reverse`` weights. torch is passed in, never imported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

__all__ = ["to_torch_rnn", "torch_wrapper"]


@cache
def torch_wrapper() -> Any:
    """The module class ``to_torch`` wraps a torch recurrent module in, defined once torch is imported."""
    import torch

    class Recurrent(torch.nn.Module):
        """An ``nn.RNN``/``nn.LSTM``/``nn.GRU`` that returns only its outputs ``(T, B, D·H)``.

        ``h0`` (and ``c0`` for an LSTM) are buffers ``(num_layers·D, B, H)`` or ``None`` (zeros),
        the initial states of every call.
        """

        h0: Any
        c0: Any

        def __init__(self, rnn: Any, h0: Any = None, c0: Any = None) -> None:
            super().__init__()
            self.rnn = rnn
            self.register_buffer("h0", h0)
            self.register_buffer("c0", c0)

        def forward(self, x: Any) -> Any:
            if self.h0 is None:
                return self.rnn(x)[0]
            state = (self.h0, self.c0) if isinstance(self.rnn, torch.nn.LSTM) else self.h0
            return self.rnn(x, state)[0]

    Recurrent.__module__ = __name__
    Recurrent.__qualname__ = "Recurrent"
    return Recurrent


def to_torch_rnn(torch: Any, directions: Sequence[Any]) -> Any:
    """One torch recurrent module (bidirectional when given two layers), wrapped with the states.

    Parameters
    ----------
    directions : one or two ``Recurrent`` layers of one configuration
        The forward direction, and the backward one of a ``Bidirectional``.
    """
    first = directions[0]
    rnn = first.torch_counterpart(torch)(
        first.input_size,
        first.hidden_size,
        bias=first.bias,
        bidirectional=len(directions) == 2,
        dtype=getattr(torch, first.dtype.name),
        **first.torch_options(),
    )
    with torch.no_grad():
        for layer, suffix in zip(directions, ("l0", "l0_reverse"), strict=False):
            weights = {"weight_ih": layer.params["W_ih"].T, "weight_hh": layer.params["W_hh"].T}
            if layer.bias:
                weights["bias_ih"], weights["bias_hh"] = layer.torch_biases()
            for name, value in weights.items():
                getattr(rnn, f"{name}_{suffix}").copy_(torch.as_tensor(value))
    states = [_states(torch, directions, k) for k in range(len(first.state_names))]
    return torch_wrapper()(rnn, *states)


def _states(torch: Any, directions: Sequence[Any], k: int) -> Any:
    """The layers' k-th initial states stacked ``(D, B, H)``, or ``None`` when none is set.

    An LSTM with only one of ``h0``/``c0`` set, or a ``Bidirectional`` with states in only one
    direction, gets zeros for the others; a batch size that disagrees raises ``ShapeError``.
    """
    shaped = [np.shape(s) for layer in directions for s in layer.held() if s is not None]
    if not shaped:
        return None
    B = shaped[0][0] if shaped[0] else 0
    name = directions[0].state_names[k]
    return torch.as_tensor(np.stack([layer.initial_state(B, name) for layer in directions]))
