"""Sequential: layers applied in order, with flat ``"{i}.{name}"`` params."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar

from .._types import Array
from ..errors import ShapeError
from .base import Layer

__all__ = ["Sequential"]

R = TypeVar("R")


class Sequential(Layer):
    """Layers applied in order; ``backward`` runs them in reverse.

    ``params`` and ``grads`` are flat dicts keyed ``"{i}.{name}"`` (e.g. ``"0.W_ih"``) holding
    the layers' own arrays, so an in-place update reaches the layer. ``model[i]`` is layer i.

    ``forward(x, lengths)`` and ``run(x, state, lengths)`` pass ``lengths`` (a padded batch) to
    every layer that ``takes_lengths``, until a layer changes the number of steps (``Last``).
    """

    takes_lengths = True

    def __init__(self, layers: Iterable[Layer]) -> None:
        super().__init__()
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer) or isinstance(layer, Sequential):
                raise TypeError(f"Sequential: item {i} must be a bptt layer, got {layer!r}")
        if not self.layers:
            raise ValueError("Sequential: needs at least one layer")
        # A layer keeps the caches of its last forward, so a second use would overwrite the
        # first's and its backward would be silently wrong: refuse any object met twice.
        seen: dict[int, str] = {}
        for path, layer in _walk(self.sublayers()):
            if id(layer) in seen:
                raise ValueError(
                    f"Sequential: layer {path} is the same object as layer {seen[id(layer)]}; "
                    f"each position needs a layer object of its own (a layer caches its last forward)"
                )
            seen[id(layer)] = path

    @property
    def params(self) -> dict[str, Array]:
        """Every layer's params keyed ``"{i}.{name}"``: the layers' own arrays."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    @property
    def grads(self) -> dict[str, Array]:
        """Every layer's grads keyed ``"{i}.{name}"``: the layers' own arrays."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    @property
    def input_size(self) -> int | None:
        """The first sized layer's input features (``None``: any)."""
        return next((n for n in (layer.input_size for layer in self.layers) if n is not None), None)

    @property
    def output_size(self) -> int | None:
        """The last sized layer's output features (``None``: the input's)."""
        sizes = (layer.output_size for layer in reversed(self.layers))
        return next((n for n in sizes if n is not None), None)

    def sublayers(self) -> list[tuple[str, Layer]]:
        """``[("0", layer_0), ("1", layer_1), ...]``."""
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def explain_chain(self) -> list[tuple[str, Layer]]:
        """Every layer in order, with its param-key prefix ``"{i}."``."""
        return [(f"{i}.", layer) for i, layer in enumerate(self.layers)]

    def forward(self, x: Array, lengths: Any = None) -> Array:
        """``x (T, B, F_in) -> y (T', B, F_out)`` through every layer in order.

        ``lengths`` ``(B,)``: each sequence's real length, for the layers that take it."""
        self._out_shape = None  # a forward that fails part-way leaves nothing to differentiate
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if lengths is not None and layer.takes_lengths:
                step = layer.with_lengths(lengths)
            else:
                step = partial(layer._forward, share=i < last)
            y = self._named(i, step, x)
            x, lengths = y, _still(lengths, x, y)
        self._out_shape = x.shape
        return x

    def run(
        self, x: Array, state: Mapping[str, Any] | None = None, lengths: Any = None
    ) -> tuple[Array, dict[str, Any]]:
        """``forward`` from explicit states: ``x (T, B, F_in) -> (y, states after the last step)``.

        ``state`` maps the leaf prefix of a recurrent layer (``"0."``, ``"1.fwd."``, as in
        ``leaves()``) to its ``State``; a layer it leaves out starts from zeros. The returned dict
        holds every recurrent leaf's final ``State`` under the same keys, ready for the next piece
        (with ``lengths``, each sequence's last real state).
        """
        given = dict(state or {})
        prefixes = [f"{i}." for i in range(len(self.layers))]
        unknown = sorted(k for k in given if not k.startswith(tuple(prefixes)))
        if unknown:
            raise KeyError(f"Sequential.run: no layer has the state keys {unknown}; expected leaf prefixes")
        self._out_shape = None
        after: dict[str, Any] = {}
        for i, (p, layer) in enumerate(zip(prefixes, self.layers, strict=True)):
            inner = {k[len(p) :]: v for k, v in given.items() if k.startswith(p)}  # "1.fwd." -> "fwd."
            kw = {"lengths": lengths} if lengths is not None and layer.takes_lengths else {}
            y, final = self._named(i, partial(layer.run, state=inner.get("", inner or None), **kw), x)
            x, lengths = y, _still(lengths, x, y)
            if isinstance(final, dict):
                after.update({p + k: v for k, v in final.items()})
            elif final is not None:
                after[p] = final
        self._out_shape = x.shape
        return x, after

    def torch_forward(
        self, torch: Any, x: Any, params: Mapping[str, Any], state: Mapping[str, Any] | None = None
    ) -> Any:
        """Every layer's ``torch_forward`` in order; ``params`` keyed ``"{i}.{name}"`` and ``state``
        by leaf prefix, as in ``params`` and ``run``."""
        given = dict(state or {})
        for i, layer in enumerate(self.layers):
            p = f"{i}."
            own = {k[len(p) :]: v for k, v in params.items() if k.startswith(p)}
            inner = {k[len(p) :]: v for k, v in given.items() if k.startswith(p)}  # "1.fwd." -> "fwd."
            x = layer.torch_forward(torch, x, own, inner.get("", inner or None))
        return x

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T', B, F_out) -> grad_x (T, B, F_in)`` through every layer in reverse."""
        if self._out_shape is None:
            raise ShapeError("Sequential.backward called before forward: run forward first")
        last = len(self.layers) - 1
        for i in range(last, -1, -1):  # the caller's grad_y is read only, and the caller's grad_x its own
            grad_y = self._named(i, partial(self.layers[i]._backward, own=i < last, share=i > 0), grad_y)
        return grad_y

    @staticmethod
    def _named(i: int, method: Callable[[Array], R], arg: Array) -> R:
        try:
            return method(arg)
        except ShapeError as e:
            raise ShapeError(f"Sequential layer {i}: {e}") from None

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


def _still(lengths: Any, x: Any, y: Array) -> Any:
    """``lengths`` while a layer kept the number of steps (``x`` in, ``y`` out), else ``None``."""
    return lengths if len(x) == len(y) else None


def _walk(named: list[tuple[str, Layer]]) -> Iterator[tuple[str, Layer]]:
    """Every layer in ``named`` and inside it, depth first, with its dotted path (``"0"``, ``"0.fwd"``)."""
    for name, layer in named:
        yield name, layer
        yield from _walk([(f"{name}.{sub_name}", sub) for sub_name, sub in layer.sublayers()])
