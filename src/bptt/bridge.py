"""Convert models between bptt and ``torch.nn``: the same weights give the same outputs.

``to_torch(model)`` builds a ``torch.nn.Module`` that takes a time-major ``(T, B, I)`` tensor and
returns what ``model.forward`` returns; ``from_torch(module)`` builds a ``bptt.Sequential`` from
``torch.nn`` modules. torch is imported inside these functions only, so ``bptt`` itself runs
without it.

The mapping (bptt multiplies row vectors, ``x @ W``, so its weights are torch's transposed):

================  ===================================================================
bptt              torch
================  ===================================================================
``Dense``         ``nn.Linear``: ``weight = Wᵀ``, ``bias = b``
``RNN``           ``nn.RNN`` (tanh or relu): ``weight_ih_l0 = W_ihᵀ``, ``weight_hh_l0 = W_hhᵀ``,
                  ``bias_ih_l0 = b``, ``bias_hh_l0 = 0``
``LSTM``          ``nn.LSTM``: as ``RNN``, gates ``[i | f | g | o]`` in both
``GRU``           ``nn.GRU``: as ``RNN``, but ``bias_hh_l0 = [0 (r), 0 (z), b_hn]``
``Bidirectional`` ``bidirectional=True``; the ``*_reverse`` weights are ``backward_layer``'s
``Sigmoid`` ...   ``nn.Sigmoid``, ``nn.Tanh``, ``nn.ReLU``
``Last``          a module returning ``x[-1:]``
``Sequential``    ``nn.Sequential``
================  ===================================================================

Going back, torch's two recurrent biases fold into one: ``b = bias_ih + bias_hh`` for RNN and
LSTM; for GRU ``b = bias_ih + [bias_hh_r, bias_hh_z, 0]`` and ``b_hn = bias_hh_n`` (the reset gate
scales ``h W_hn + b_hn``, so that bias cannot fold). A torch recurrent module with
``num_layers = L`` becomes L bptt layers in a row. ``bias=False`` maps to ``bias=False``, and
float32/float64 weights keep their dtype.
"""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace
from typing import Any

import numpy as np

from ._types import Array
from .layers import Dense, Last, Layer, ReLU, Sequential, Sigmoid, Tanh
from .recurrent import GRU, LSTM, RNN, Bidirectional

__all__ = ["from_torch", "to_torch"]

_ELEMENTWISE: tuple[type[Layer], ...] = (Sigmoid, Tanh, ReLU)


def to_torch(model: Layer) -> Any:
    """A ``torch.nn.Module`` computing what ``model.forward`` computes, with copies of its weights.

    Parameters
    ----------
    model : a bptt layer or ``Sequential``
        A ``Sequential`` becomes an ``nn.Sequential``; a single layer becomes one module.

    Returns
    -------
    torch.nn.Module
        It takes ``x`` of shape ``(T, B, I)`` (time-major, like bptt) in the layers' dtype and
        returns the output sequence only (no final states). Parameter dtypes follow each bptt
        layer (float64 -> ``torch.float64``); the input must have that dtype (bptt casts, torch
        does not). A recurrent layer becomes a small wrapper module whose ``.rnn`` is the
        ``nn.RNN``/``nn.LSTM``/``nn.GRU`` and which returns ``rnn(x)[0]``. Its ``h0``/``c0``, when
        set in bptt, are copied into the wrapper as buffers ``h0``/``c0`` of shape ``(D, B, H)``
        (``D = 2`` for a ``Bidirectional``; a state left ``None`` beside a given one becomes
        zeros) and are the initial states of every call; otherwise the buffers are ``None`` and
        torch starts from zeros. ``stateful`` layers are not stateful in torch (their current
        ``h0`` is a snapshot). The module's tensors are copies: training one model does not
        change the other.

    Raises
    ------
    TypeError
        ``model`` is not a bptt layer.
    ValueError
        A layer has no ``torch.nn`` counterpart: an ``RNN`` with activation ``"sigmoid"`` or
        ``"identity"`` (``nn.RNN`` has only tanh and relu), or a layer type unknown here.
    """
    import torch

    if not isinstance(model, Layer):
        raise TypeError(f"to_torch: model must be a bptt layer or Sequential, got {model!r}")
    if isinstance(model, Sequential):
        return torch.nn.Sequential(*(_module(torch, layer, f"layer {i}") for i, layer in enumerate(model)))
    return _module(torch, model, "model")


def from_torch(module: Any) -> Sequential:
    """A ``bptt.Sequential`` computing what ``module`` computes (time-major), with its weights.

    Parameters
    ----------
    module : torch.nn.Module
        ``nn.RNN`` (tanh or relu), ``nn.LSTM`` and ``nn.GRU`` with any ``num_layers`` and
        ``bidirectional``, with or without bias; ``nn.Linear``; ``nn.Sigmoid``, ``nn.Tanh``,
        ``nn.ReLU``; an ``nn.Sequential`` of these (nested ones are flattened); and anything
        ``to_torch`` built (including its initial-state buffers). Weights must be float32 or
        float64; each bptt layer takes that dtype.

    Returns
    -------
    Sequential
        Recurrent layers return their output sequence, as ``module(x)[0]`` does in torch;
        ``h0``/``c0`` are ``None`` (zeros) unless ``module`` came from ``to_torch`` with states.

    Raises
    ------
    TypeError
        ``module`` is not a ``torch.nn.Module``.
    ValueError
        Something bptt does not compute: ``batch_first=True``, ``dropout > 0``, an LSTM with
        ``proj_size > 0``, weights that are not float32/float64, a subclass that overrides
        ``forward``, or any other module type.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: module must be a torch.nn.Module, got {module!r}")
    layers = _layers(torch, module, "module")
    if not layers:
        raise ValueError("from_torch: module holds no layers")
    return Sequential(layers)


# ---------------------------------------------------------------------------------------------
# bptt -> torch


@cache
def _torch_modules() -> SimpleNamespace:
    """The two torch modules bptt needs that ``torch.nn`` lacks, defined once torch is imported."""
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

    class Last(torch.nn.Module):
        """Keep only the last step: ``(T, B, F) -> (1, B, F)``, like ``bptt.Last``."""

        def forward(self, x: Any) -> Any:
            return x[-1:]

    for cls in (Recurrent, Last):
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
    return SimpleNamespace(Recurrent=Recurrent, Last=Last)


def _module(torch: Any, layer: Layer, where: str) -> Any:
    """One bptt layer as one torch module."""
    if isinstance(layer, Dense):
        linear = torch.nn.Linear(
            layer.in_features, layer.out_features, bias=layer.bias, dtype=_torch_dtype(torch, layer.dtype)
        )
        with torch.no_grad():
            linear.weight.copy_(_tensor(torch, layer.params["W"].T))
            if layer.bias:
                linear.bias.copy_(_tensor(torch, layer.params["b"]))
        return linear
    if isinstance(layer, (RNN, LSTM, GRU)):
        return _recurrent_module(torch, [layer], where)
    if isinstance(layer, Bidirectional):
        fwd, bwd = layer.forward_layer, layer.backward_layer
        if type(fwd) is not type(bwd) or fwd.config() != bwd.config() or fwd.dtype != bwd.dtype:
            raise ValueError(
                f"to_torch: {where} is a Bidirectional whose directions differ ({fwd!r} and {bwd!r}); "
                f"torch's bidirectional layers share one configuration"
            )
        return _recurrent_module(torch, [fwd, bwd], where)
    if isinstance(layer, Sigmoid):
        return torch.nn.Sigmoid()
    if isinstance(layer, Tanh):
        return torch.nn.Tanh()
    if isinstance(layer, ReLU):
        return torch.nn.ReLU()
    if isinstance(layer, Last):
        return _torch_modules().Last()
    raise ValueError(f"to_torch: {where} ({type(layer).__name__}) has no torch.nn counterpart")


def _recurrent_module(torch: Any, directions: list[Any], where: str) -> Any:
    """``nn.RNN``/``nn.LSTM``/``nn.GRU`` (bidirectional when given two layers) with their weights."""
    first = directions[0]
    I, H = first.input_size, first.hidden_size
    options = {
        "bias": first.bias,
        "bidirectional": len(directions) == 2,
        "dtype": _torch_dtype(torch, first.dtype),
    }
    if isinstance(first, RNN):
        if first.activation not in ("tanh", "relu"):
            raise ValueError(
                f"to_torch: {where} is an RNN with activation {first.activation!r}; torch.nn.RNN "
                f"has only 'tanh' and 'relu'"
            )
        rnn = torch.nn.RNN(I, H, nonlinearity=first.activation, **options)
    else:
        rnn = (torch.nn.LSTM if isinstance(first, LSTM) else torch.nn.GRU)(I, H, **options)
    with torch.no_grad():
        for layer, suffix in zip(directions, ("l0", "l0_reverse"), strict=False):
            p = layer.params
            getattr(rnn, f"weight_ih_{suffix}").copy_(_tensor(torch, p["W_ih"].T))
            getattr(rnn, f"weight_hh_{suffix}").copy_(_tensor(torch, p["W_hh"].T))
            if layer.bias:
                getattr(rnn, f"bias_ih_{suffix}").copy_(_tensor(torch, p["b"]))
                bias_hh = getattr(rnn, f"bias_hh_{suffix}")
                bias_hh.zero_()
                if isinstance(layer, GRU):
                    bias_hh[2 * H :].copy_(_tensor(torch, p["b_hn"]))
    states = [_states(torch, directions, name) for name in first.state_names]
    return _torch_modules().Recurrent(rnn, *states)


def _states(torch: Any, directions: list[Any], name: str) -> Any:
    """The layers' initial states ``name`` stacked ``(D, B, H)``, or ``None`` when none is set.

    An LSTM with only one of ``h0``/``c0`` set, or a ``Bidirectional`` with states in only one
    direction, gets zeros for the others; a batch size that disagrees raises ``ShapeError``.
    """
    given = [getattr(layer, s) for layer in directions for s in layer.state_names]
    shaped = [np.shape(s) for s in given if s is not None]
    if not shaped:
        return None
    B = shaped[0][0] if shaped[0] else 0
    return _tensor(torch, np.stack([layer.initial_state(B, name) for layer in directions]))


def _torch_dtype(torch: Any, dtype: np.dtype[Any]) -> Any:
    return torch.float64 if dtype == np.float64 else torch.float32


def _tensor(torch: Any, a: Array) -> Any:
    return torch.from_numpy(np.ascontiguousarray(a))


# ---------------------------------------------------------------------------------------------
# torch -> bptt


def _layers(torch: Any, module: Any, where: str) -> list[Layer]:
    """The bptt layers computing ``module`` (several for a stack or an ``nn.Sequential``)."""
    nn = torch.nn
    ours = _torch_modules()
    if type(module) is nn.Sequential:
        return [layer for i, sub in enumerate(module) for layer in _layers(torch, sub, f"{where}[{i}]")]
    if type(module) is ours.Recurrent:
        layers = _recurrent_layers(torch, module.rnn, where)
        for name, buffer in (("h0", module.h0), ("c0", module.c0)):
            if buffer is not None:
                _set_states(layers, name, buffer.detach().cpu().numpy(), module.rnn.num_layers)
        return layers
    if type(module) is ours.Last:
        return [Last()]
    for base in (nn.RNN, nn.LSTM, nn.GRU):
        if isinstance(module, base):
            _same_forward(module, base, where)
            return _recurrent_layers(torch, module, where)
    if isinstance(module, nn.Linear):
        _same_forward(module, nn.Linear, where)
        dense = Dense(
            module.in_features,
            module.out_features,
            bias=module.bias is not None,
            rng=0,
            dtype=_numpy_dtype(module.weight, where),
        )
        dense.params["W"][...] = _array(module.weight).T
        if module.bias is not None:
            dense.params["b"][...] = _array(module.bias)
        return [dense]
    for base, cls in zip((nn.Sigmoid, nn.Tanh, nn.ReLU), _ELEMENTWISE, strict=True):
        if isinstance(module, base):
            _same_forward(module, base, where)
            return [cls()]
    raise ValueError(
        f"from_torch: {where} is a {type(module).__name__}, which bptt cannot express; supported: "
        f"nn.RNN, nn.LSTM, nn.GRU, nn.Linear, nn.Sigmoid, nn.Tanh, nn.ReLU, nn.Sequential and "
        f"what to_torch builds"
    )


def _same_forward(module: Any, base: Any, where: str) -> None:
    """Refuse a subclass that computes something else than its ``torch.nn`` base."""
    if type(module).forward is not base.forward:
        raise ValueError(
            f"from_torch: {where} is a {type(module).__name__}, a subclass of nn.{base.__name__} "
            f"that overrides forward; bptt can only express nn.{base.__name__}'s own computation"
        )


def _recurrent_layers(torch: Any, rnn: Any, where: str) -> list[Layer]:
    """One bptt layer (or ``Bidirectional``) per layer of a torch ``nn.RNN``/``nn.LSTM``/``nn.GRU``."""
    kind = type(rnn).__name__
    if not any(isinstance(rnn, base) for base in (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU)):
        raise ValueError(f"from_torch: {where} wraps a {kind}, not an nn.RNN, nn.LSTM or nn.GRU")
    if rnn.batch_first:
        raise ValueError(
            f"from_torch: {where} ({kind}) has batch_first=True; bptt is time-major (T, B, F), "
            f"so build it with batch_first=False and transpose the data"
        )
    if rnn.dropout > 0:
        raise ValueError(
            f"from_torch: {where} ({kind}) has dropout={rnn.dropout}; bptt has no dropout between layers"
        )
    if getattr(rnn, "proj_size", 0) > 0:
        raise ValueError(f"from_torch: {where} ({kind}) has proj_size={rnn.proj_size}; bptt's LSTM has none")
    dtype = _numpy_dtype(rnn.weight_ih_l0, where)
    H, D = rnn.hidden_size, 2 if rnn.bidirectional else 1
    layers: list[Layer] = []
    for k in range(rnn.num_layers):
        I = rnn.input_size if k == 0 else D * H
        directions = []
        for suffix in (f"l{k}", f"l{k}_reverse")[:D]:
            layer: RNN | LSTM | GRU
            if isinstance(rnn, torch.nn.LSTM):
                layer = LSTM(I, H, bias=rnn.bias, rng=0, dtype=dtype)
            elif isinstance(rnn, torch.nn.GRU):
                layer = GRU(I, H, bias=rnn.bias, rng=0, dtype=dtype)
            else:
                layer = RNN(I, H, activation=rnn.nonlinearity, bias=rnn.bias, rng=0, dtype=dtype)
            _copy_recurrent(rnn, suffix, layer)
            directions.append(layer)
        if D == 1:
            layers.append(directions[0])
        else:
            bi = Bidirectional(directions[0], rng=0)
            bi.backward_layer = directions[1]
            layers.append(bi)
    return layers


def _copy_recurrent(rnn: Any, suffix: str, layer: RNN | LSTM | GRU) -> None:
    """Copy the weights of one direction of one torch layer into ``layer``, folding the biases."""
    p, H = layer.params, layer.hidden_size
    p["W_ih"][...] = _array(getattr(rnn, f"weight_ih_{suffix}")).T
    p["W_hh"][...] = _array(getattr(rnn, f"weight_hh_{suffix}")).T
    if not layer.bias:
        return
    bias_ih, bias_hh = _array(getattr(rnn, f"bias_ih_{suffix}")), _array(getattr(rnn, f"bias_hh_{suffix}"))
    if isinstance(layer, GRU):
        p["b"][...] = bias_ih
        p["b"][: 2 * H] += bias_hh[: 2 * H]  # r and z: both biases sit outside the reset gate
        p["b_hn"][...] = bias_hh[2 * H :]  # n: the reset gate scales h W_hn + b_hn
    else:
        p["b"][...] = bias_ih + bias_hh


def _set_states(layers: list[Layer], name: str, states: Array, num_layers: int) -> None:
    """Give each direction of each layer its initial state from torch's ``(L·D, B, H)`` layout."""
    for k, layer in enumerate(layers[:num_layers]):
        directions = (
            [layer.forward_layer, layer.backward_layer] if isinstance(layer, Bidirectional) else [layer]
        )
        for d, direction in enumerate(directions):
            setattr(direction, name, states[k * len(directions) + d].copy())


def _numpy_dtype(weight: Any, where: str) -> np.dtype[Any]:
    name = str(weight.dtype).removeprefix("torch.")
    if name not in ("float32", "float64"):
        raise ValueError(f"from_torch: {where} has {name} weights; bptt layers are float32 or float64")
    return np.dtype(name)


def _array(t: Any) -> Array:
    return t.detach().cpu().numpy()
