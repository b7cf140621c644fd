"""Layers: Dense, RNN, Sigmoid, Tanh, ReLU, Last and Sequential.

Every layer maps a time-major sequence ``(T, B, F_in)`` to ``(T, B, F_out)`` and keeps
``params`` and ``grads`` dicts whose arrays have the same keys and shapes. Weights multiply
row vectors on the right (``x @ W``), so ``W`` is ``(in, out)`` and every weight gradient,
``dW = Σ_t x_tᵀ δ_t``, is computed as one ``(T·B, in)ᵀ @ (T·B, out)`` matmul.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from ._types import Array
from ._validate import (
    as_array,
    as_float_dtype,
    check_same_shape,
    check_sequence,
    positive_int,
    weight_rng,
)
from .errors import ShapeError
from .functional import ACTIVATIONS, column_sums

__all__ = ["Dense", "Last", "Layer", "ReLU", "Sequential", "Sigmoid", "Tanh"]


class Layer:
    """Base class. Subclasses implement ``forward`` and ``backward``.

    Attributes
    ----------
    params : dict[str, ndarray]
        The layer's weights. Optimizers update these arrays in place.
    grads : dict[str, ndarray]
        ``dL/dparam`` with the same keys and shapes; zeros until the first ``backward``,
        which overwrites (never accumulates into) them.
    """

    out_letters = "(T, B, F)"

    def __init__(self) -> None:
        self._params: dict[str, Array] = {}
        self._grads: dict[str, Array] = {}
        self._out_shape: tuple[int, ...] | None = None

    @property
    def params(self) -> dict[str, Array]:
        return self._params

    @property
    def grads(self) -> dict[str, Array]:
        return self._grads

    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments, enough to rebuild the layer (see ``bptt.io``)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """A new layer (with fresh weights) from what ``config()`` returned."""
        return cls(**config)

    def sublayers(self) -> list[tuple[str, Layer]]:
        """The layers this one is made of, with the key prefix of their params (none for a leaf)."""
        return []

    def forward(self, x: Array) -> Array:
        raise NotImplementedError

    def backward(self, grad_y: Array) -> Array:
        raise NotImplementedError

    def _forward(self, x: Array, share: bool) -> Array:
        """``forward``; with ``share`` the result may be a view of an internal cache.

        ``Sequential`` passes ``share=True`` between its own layers, which only read the array
        until the next forward, so no copy is made for them.
        """
        return self.forward(x)

    def _add_param(self, name: str, value: Array) -> None:
        self._params[name] = value
        self._grads[name] = np.zeros_like(value)

    def _check_grad(self, grad_y: Array, dtype: np.dtype[Any] | None) -> Array:
        where = f"{type(self).__name__}.backward"
        if self._out_shape is None:
            raise ShapeError(
                f"{where} called before forward: run forward first, then backward "
                f"with grad_y of the output's shape"
            )
        g = as_array(grad_y, dtype, where, "grad_y")
        check_same_shape(
            g,
            self._out_shape,
            where,
            "grad_y",
            self.out_letters,
            "the shape of the last forward's output",
        )
        return g

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class _Weighted(Layer):
    """A layer with weights of one float dtype, drawn U(-k, k) like PyTorch's defaults.

    The draws come from ``rng``: a Generator, an int seed, or ``None`` for seed 0, so that the
    same code builds the same weights in every process.
    """

    def __init__(self, dtype: DTypeLike, rng: np.random.Generator | int | None) -> None:
        super().__init__()
        name = type(self).__name__
        self.dtype = as_float_dtype(dtype, name)
        self._rng = weight_rng(rng, name)

    def _uniform(self, k: float, shape: tuple[int, ...]) -> Array:
        return self._rng.uniform(-k, k, size=shape).astype(self.dtype)


class Dense(_Weighted):
    """Affine map at every step: ``y_t = x_t @ W + b``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    rng : Generator, int or None
        Source of the initial weights; ``None`` is seed 0.
    dtype : np.float64 (default) or np.float32

    Params: ``W (in, out)``, and ``b (out,)`` when ``bias``.
    """

    out_letters = "(T, B, O)"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        rng: np.random.Generator | int | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype, rng)
        self.in_features = positive_int(in_features, "Dense", "in_features")
        self.out_features = positive_int(out_features, "Dense", "out_features")
        self.bias = bool(bias)
        k = 1.0 / np.sqrt(self.in_features)
        self._add_param("W", self._uniform(k, (self.in_features, self.out_features)))
        if self.bias:
            self._add_param("b", self._uniform(k, (self.out_features,)))
        self._x: Array | None = None

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias,
        }

    def forward(self, x: Array) -> Array:
        """``x (T, B, I) -> y (T, B, O)``."""
        x = as_array(x, self.dtype, "Dense.forward", "x")
        T, B, I = check_sequence(x, "Dense.forward", "x", "(T, B, I)", self.in_features)
        y = x.reshape(T * B, I) @ self.params["W"]  # (T·B, O)
        if self.bias:
            y += self.params["b"]
        self._x, self._out_shape = x, (T, B, self.out_features)
        return y.reshape(self._out_shape)  # (T, B, O)

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, O) -> grad_x (T, B, I)``; fills ``grads["W"]`` and ``grads["b"]``."""
        g = self._check_grad(grad_y, self.dtype)
        assert self._x is not None
        T, B, I = self._x.shape
        G = g.reshape(T * B, self.out_features)  # (T·B, O)
        np.dot(self._x.reshape(T * B, I).T, G, out=self.grads["W"])  # Σ_t x_tᵀ δ_t: (I, O)
        if self.bias:
            column_sums(G, out=self.grads["b"])  # Σ_t δ_t: (O,)
        return (G @ self.params["W"].T).reshape(T, B, I)  # (T, B, I)


class _Elementwise(Layer):
    """``y = f(x)`` at every entry; ``backward`` uses ``f'`` written in terms of ``y``."""

    activation = "identity"

    def __init__(self) -> None:
        super().__init__()
        self._y: Array | None = None

    def forward(self, x: Array) -> Array:
        """``x (T, B, F) -> y (T, B, F)``."""
        return self._forward(x, share=False)

    def _forward(self, x: Array, share: bool) -> Array:
        name = f"{type(self).__name__}.forward"
        x = as_array(x, None, name, "x")
        check_sequence(x, name, "x", "(T, B, F)", None)
        self._y = ACTIVATIONS[self.activation].fn(x)
        self._out_shape = x.shape
        return self._y if share else self._y.copy()

    def backward(self, grad_y: Array) -> Array:
        """``grad_y (T, B, F) -> grad_x (T, B, F)``."""
        assert self._y is not None or self._out_shape is None
        g = self._check_grad(grad_y, None if self._y is None else self._y.dtype)
        assert self._y is not None
        grad_x = ACTIVATIONS[self.activation].grad(self._y)
        grad_x *= g
        return grad_x


class Sigmoid(_Elementwise):
    """Elementwise logistic ``σ(x)``; ``σ' = y (1 - y)``."""

    activation = "sigmoid"


class Tanh(_Elementwise):
    """Elementwise ``tanh(x)``; ``tanh' = 1 - y²``."""

    activation = "tanh"


class ReLU(_Elementwise):
    """Elementwise ``max(x, 0)``; ``relu' = [y > 0]``."""

    activation = "relu"


class Last(Layer):
    """Keep only the last step (many-to-one): ``(T, B, F) -> (1, B, F)``."""

    out_letters = "(1, B, F)"

    def __init__(self) -> None:
        super().__init__()
        self._in_shape: tuple[int, ...] = ()
        self._dtype: np.dtype[Any] | None = None

    def forward(self, x: Array) -> Array:
        x = as_array(x, None, "Last.forward", "x")
        _, B, F = check_sequence(x, "Last.forward", "x", "(T, B, F)", None)
        self._in_shape, self._out_shape, self._dtype = x.shape, (1, B, F), x.dtype
        return x[-1:].copy()  # (1, B, F)

    def backward(self, grad_y: Array) -> Array:
        """The gradient lands on the last step; earlier steps get zeros."""
        g = self._check_grad(grad_y, self._dtype)
        grad_x = np.zeros(self._in_shape, g.dtype)  # (T, B, F)
        grad_x[-1] = g[0]
        return grad_x


class Sequential(Layer):
    """Layers applied in order; ``backward`` runs them in reverse.

    ``params`` and ``grads`` are flat dicts keyed ``"{i}.{name}"`` (e.g. ``"0.W_ih"``) holding
    the layers' own arrays, so an in-place update reaches the layer.
    """

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
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    @property
    def grads(self) -> dict[str, Array]:
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    def sublayers(self) -> list[tuple[str, Layer]]:
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def forward(self, x: Array) -> Array:
        self._out_shape = None  # a forward that fails part-way leaves nothing to differentiate
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = self._named(i, lambda a, layer=layer, i=i: layer._forward(a, share=i < last), x)
        self._out_shape = x.shape
        return x

    def backward(self, grad_y: Array) -> Array:
        if self._out_shape is None:
            raise ShapeError("Sequential.backward called before forward: run forward first")
        for i in range(len(self.layers) - 1, -1, -1):
            grad_y = self._named(i, self.layers[i].backward, grad_y)
        return grad_y

    @staticmethod
    def _named(i: int, method: Any, arg: Array) -> Array:
        try:
            out: Array = method(arg)
        except ShapeError as e:
            raise ShapeError(f"Sequential layer {i}: {e}") from None
        return out

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


def _walk(named: list[tuple[str, Layer]]) -> Iterator[tuple[str, Layer]]:
    """Every layer in ``named`` and inside it, depth first, with its dotted path (``"0"``, ``"0.fwd"``)."""
    for name, layer in named:
        yield name, layer
        yield from _walk([(f"{name}.{sub_name}", sub) for sub_name, sub in layer.sublayers()])
