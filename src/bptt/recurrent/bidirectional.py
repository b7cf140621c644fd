"""Bidirectional: a recurrent layer run forward in time beside a copy run backward, concatenated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._types import Array
from .._validate import weight_rng
from ..layers import Layer, State, check_lengths, layer_types, register_layer
from .base import Recurrent
from .torch_form import to_torch_rnn

__all__ = ["Bidirectional"]


@register_layer
class Bidirectional(Layer):
    """Run ``layer`` forward in time and a copy of it backward in time; concatenate.

    ``(T, B, I) -> (T, B, 2H)``: ``[:, :, :H]`` is the forward direction and ``[:, :, H:]`` the
    backward one (its step t has read ``x_t .. x_T``), as in ``torch.nn`` with
    ``bidirectional=True``. It reads the future, so it is not ``causal``: a sequence cannot be
    cut in time under it (``tbptt`` refuses it). With ``lengths`` (a padded batch) the backward
    direction reads each sequence reversed within its own length, as torch's packed one does.

    Parameters
    ----------
    layer : a recurrent layer (RNN, LSTM, GRU, or any other ``Recurrent``), not stateful
        The forward direction. The backward direction is a new layer with the same configuration
        and its own weights drawn from ``rng``.
    rng : Generator, int or None
        ``None`` is seed 1, so that both directions differ when ``layer`` was built without one.

    Attributes
    ----------
    forward_layer, backward_layer : the two directions (each has its own ``h0`` etc.)
    params, grads : keyed ``"fwd.{name}"`` and ``"bwd.{name}"``
    """

    out_letters = "(T, B, 2H)"
    causal = False
    takes_lengths = True

    def __init__(self, layer: Layer, *, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not isinstance(layer, Recurrent) or layer.stateful:
            raise TypeError(f"Bidirectional: needs a non-stateful RNN, LSTM or GRU, got {layer!r}")
        self.forward_layer = layer
        # Seed 1 by default: a forward layer built without rng has seed 0's weights.
        backward_rng = weight_rng(rng, "Bidirectional", default=1)
        self.backward_layer = type(layer)(**layer.config(), rng=backward_rng)
        self.hidden_size = layer.hidden_size
        self.dtype = layer.dtype
        self._reverse: Array | None = None  # (T, B, 1): the step read at step t backwards; None: T-1-t

    @property
    def params(self) -> dict[str, Array]:
        """Both directions' params, keyed ``"fwd.{name}"`` and ``"bwd.{name}"``."""
        return self._prefixed("params")

    @property
    def grads(self) -> dict[str, Array]:
        """Both directions' grads, keyed like ``params``."""
        return self._prefixed("grads")

    @property
    def input_size(self) -> int:
        """``I``, features per step of ``x``."""
        return self.forward_layer.input_size

    @property
    def output_size(self) -> int:
        """``2H``: both directions' hidden states side by side."""
        return 2 * self.hidden_size

    def _prefixed(self, what: str) -> dict[str, Array]:
        out = {}
        for prefix, layer in self.sublayers():
            out.update({f"{prefix}.{k}": v for k, v in getattr(layer, what).items()})
        return out

    def config(self) -> dict[str, Any]:
        """The wrapped cell's type name and its config."""
        return {"layer": type(self.forward_layer).__name__, **self.forward_layer.config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild from ``config()``: the cell named by ``layer``, in both directions."""
        kinds = {name: kind for name, kind in layer_types().items() if issubclass(kind, Recurrent)}
        inner = dict(config)
        kind = inner.pop("layer", None)
        if kind not in kinds:
            raise ValueError(f"Bidirectional: layer must be one of {sorted(kinds)}, got {kind!r}")
        return cls(kinds[kind].from_config(inner))

    def sublayers(self) -> list[tuple[str, Layer]]:
        """``[("fwd", forward_layer), ("bwd", backward_layer)]``."""
        return [("fwd", self.forward_layer), ("bwd", self.backward_layer)]

    def forward(self, x: Array, lengths: Any = None) -> Array:
        """``x (T, B, I) -> y (T, B, 2H)``; ``lengths`` ``(B,)``: each sequence's real length."""
        self._out_shape = None  # a forward that fails part-way leaves nothing to differentiate
        ahead = self.forward_layer.forward(x, lengths)  # (T, B, H)
        x = self._reversal(x, lengths)
        behind = self._flip(self.backward_layer.forward(self._flip(x), lengths))  # (T, B, H), in step order
        y = np.concatenate([ahead, behind], axis=2)  # (T, B, 2H)
        self._out_shape = y.shape
        return y

    def run(
        self, x: Array, state: Mapping[str, State] | None = None, lengths: Any = None
    ) -> tuple[Array, dict[str, State]]:
        """``forward`` from explicit states keyed ``"fwd."`` and ``"bwd."`` (missing: zeros), as
        ``x (T, B, I) -> (y (T, B, 2H), the states after each direction's last step)``."""
        given = dict(state or {})
        self._out_shape = None
        ahead, end_ahead = self.forward_layer.run(x, given.get("fwd."), lengths)  # (T, B, H)
        x = self._reversal(x, lengths)
        behind, end_behind = self.backward_layer.run(self._flip(x), given.get("bwd."), lengths)  # reversed
        y = np.concatenate([ahead, self._flip(behind)], axis=2)  # (T, B, 2H)
        self._out_shape = y.shape
        return y, {"fwd.": end_ahead, "bwd.": end_behind}

    def _reversal(self, x: Array, lengths: Any) -> Array:
        """``x`` as an array; remember how to reverse its steps: within each sequence's length."""
        x = np.asarray(x)
        self._reverse = None
        if lengths is not None:  # step t of sequence b reads L_b - 1 - t; padding stays in place
            T, B = x.shape[:2]
            t, L = np.arange(T)[:, None], check_lengths(lengths, T, B, "Bidirectional.forward")
            self._reverse = np.where(t < L, L - 1 - t, t)[:, :, None]  # (T, B, 1)
        return x

    def _flip(self, a: Array) -> Array:
        """``a (T, B, F)``, or ids ``(T, B)``, reversed in time (each sequence within its length,
        with ``lengths``)."""
        if self._reverse is None:
            return a[::-1]
        return np.take_along_axis(a, self._reverse[..., 0] if a.ndim == 2 else self._reverse, axis=0)

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, 2H) -> grad_x (T, B, I)``, the sum of both directions' ``grad_x``."""
        g = self._check_grad(grad_y, self.dtype)
        H = self.hidden_size
        grad_x = self.forward_layer.backward(g[:, :, :H])
        grad_x += self._flip(self.backward_layer.backward(np.ascontiguousarray(self._flip(g[:, :, H:]))))
        return grad_x

    # --- The torch form: one torch module with bidirectional=True ------------------------------
    def torch_forward(
        self, torch: Any, x: Any, params: Mapping[str, Any], state: Mapping[str, State] | None = None
    ) -> Any:
        """Both directions' torch forms, the backward one on ``x`` flipped in time and flipped back,
        concatenated: ``x (T, B, I) -> y (T, B, 2H)``. ``params`` and ``state`` are keyed
        ``"fwd."``/``"bwd."``."""
        given = dict(state or {})

        def direction(layer: Layer, key: str, x: Any) -> Any:
            own = {k.removeprefix(key): v for k, v in params.items() if k.startswith(key)}
            return layer.torch_forward(torch, x, own, given.get(key))

        ahead = direction(self.forward_layer, "fwd.", x)  # (T, B, H)
        behind = direction(self.backward_layer, "bwd.", x.flip(0)).flip(0)  # (T, B, H), in step order
        return torch.cat([ahead, behind], dim=2)  # (T, B, 2H)

    def to_torch_module(self, torch: Any) -> Any:
        """One ``nn.RNN``/``nn.LSTM``/``nn.GRU`` with ``bidirectional=True``; the ``*_reverse``
        weights are ``backward_layer``'s. Both directions must share one configuration."""
        fwd, bwd = self.forward_layer, self.backward_layer
        if type(fwd) is not type(bwd) or fwd.config() != bwd.config() or self.dtype != bwd.dtype:
            raise ValueError(
                f"a Bidirectional whose directions differ ({fwd!r} and {bwd!r}); "
                f"torch's bidirectional layers share one configuration"
            )
        return to_torch_rnn(torch, [fwd, bwd])
