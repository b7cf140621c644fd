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

Each layer type carries its own mapping (``Layer.to_torch_module``, ``Layer.torch_counterpart``
and ``Layer.from_torch_module``); this module orchestrates: ``Sequential`` and ``nn.Sequential``,
and torch recurrent modules with ``num_layers > 1`` or ``bidirectional=True`` split into bptt layers.

``torch_checkpoint(model)`` is what ``bptt export --torch`` writes with ``torch.save``: a plain
dict (``torch.load``'s default ``weights_only=True`` reads it, nothing is unpickled) holding the
``state_dict`` of ``to_torch(model)`` and the architecture as JSON; ``from_torch`` takes it back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import ShapeError
from .layers import Layer, Sequential, State, layer_types
from .recurrent import Bidirectional, Recurrent
from .recurrent.torch_form import torch_wrapper

__all__ = ["CHECKPOINT_FORMAT", "from_torch", "to_torch", "torch_checkpoint"]

CHECKPOINT_FORMAT = "bptt-torch"  # the "format" of what torch_checkpoint returns, at version 1


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
    module : torch.nn.Module or dict
        ``nn.RNN`` (tanh or relu), ``nn.LSTM`` and ``nn.GRU`` with any ``num_layers`` and
        ``bidirectional``, with or without bias; ``nn.Linear``; ``nn.Sigmoid``, ``nn.Tanh``,
        ``nn.ReLU``; an ``nn.Sequential`` of these (nested ones are flattened); and anything
        ``to_torch`` built (including its initial-state buffers). Weights must be float32 or
        float64; each bptt layer takes that dtype. Or a dict from ``torch_checkpoint`` (what
        ``torch.load`` returns for a file of ``bptt export --torch``).

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
        ``forward``, or any other module type; or a checkpoint that is malformed or whose
        weights do not fit its architecture.
    """
    import torch

    if isinstance(module, Mapping):
        module = _checkpoint_module(torch, module)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: module must be a torch.nn.Module or a checkpoint dict, got {module!r}")
    layers = _layers(torch, module, "module")
    if not layers:
        raise ValueError("from_torch: module holds no layers")
    return Sequential(layers)


def torch_checkpoint(model: Layer) -> dict[str, Any]:
    """What ``bptt export --torch`` saves: ``to_torch(model)``'s weights and how to rebuild it.

    Parameters
    ----------
    model : a bptt layer or ``Sequential``
        Each layer (a ``Sequential``'s top-level ones) of a type named with ``register_layer``.

    Returns
    -------
    dict
        ``{"format": CHECKPOINT_FORMAT, "version": 1, "architecture": str, "state_dict": dict}``:
        the architecture is JSON, ``[{"type": name, "config": layer.config()}, ...]``, and the
        ``state_dict`` is that of ``to_torch(Sequential(layers))`` (keys ``"0.rnn.weight_ih_l0"``,
        ``"1.weight"``, ...). ``torch.save`` it; ``from_torch`` turns it back into the model, and
        ``to_torch(from_torch(checkpoint))`` into the torch module.

    Raises
    ------
    TypeError
        A layer's type is not registered (it could not be rebuilt).
    """
    types = layer_types()
    # As in a model file: a registered layer is kept whole, an unregistered container as its layers.
    container = type(model).__name__ not in types and model.sublayers()
    layers = [sub for _, sub in model.sublayers()] if container else [model]
    for i, layer in enumerate(layers):
        if types.get(type(layer).__name__) is not type(layer):
            raise TypeError(
                f"torch_checkpoint: layer {i} ({type(layer).__name__}) is not a registered layer type"
            )
    architecture = [{"type": type(layer).__name__, "config": layer.config()} for layer in layers]
    return {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "architecture": json.dumps(architecture),
        "state_dict": to_torch(Sequential(layers)).state_dict(),
    }


def _checkpoint_module(torch: Any, checkpoint: Mapping[str, Any]) -> Any:
    """The ``to_torch`` module a ``torch_checkpoint`` dict describes, with its weights loaded."""
    state = checkpoint.get("state_dict")
    if checkpoint.get("format") != CHECKPOINT_FORMAT or checkpoint.get("version") != 1:
        raise ValueError(f"from_torch: the dict is not a {CHECKPOINT_FORMAT} checkpoint of version 1")
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("from_torch: the checkpoint's state_dict is not a dict of tensors")
    module = to_torch(Sequential(_architecture(checkpoint.get("architecture"), state)))
    for key, value in state.items():  # initial-state buffers are None until given a tensor
        prefix, _, leaf = key.rpartition(".")
        if leaf in ("h0", "c0") and type(module.get_submodule(prefix)) is torch_wrapper():
            setattr(module.get_submodule(prefix), leaf, value.clone())
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"from_torch: the checkpoint's weights do not fit its architecture ({e})") from None
    return module


def _architecture(text: Any, state: Mapping[str, Any]) -> list[Layer]:
    """The layers (fresh weights) a checkpoint's architecture JSON names; every size in a config
    must be a dimension of some weight, so no hostile record builds a huge layer."""
    try:
        entries = json.loads(text)
        kinds = [layer_types()[entry["type"]] for entry in entries]
        configs = [dict(entry["config"]) for entry in entries]
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"from_torch: the checkpoint's architecture is malformed ({e!r})") from None
    dims = {n for tensor in state.values() for n in tensor.shape}
    try:
        if not configs:
            raise ValueError("it names no layers")
        for config in configs:
            if any(type(v) is int and v not in dims for v in config.values()):
                raise ValueError(f"config {config} disagrees with the weights' shapes")
        return [kind.from_config(config) for kind, config in zip(kinds, configs, strict=True)]
    except (TypeError, ValueError) as e:
        raise ValueError(f"from_torch: the checkpoint's architecture is invalid ({e})") from None


def _module(torch: Any, layer: Layer, where: str) -> Any:
    """``layer.to_torch_module``, its refusal prefixed with where the layer sits."""
    try:
        return layer.to_torch_module(torch)
    except ShapeError:
        raise
    except ValueError as e:
        raise ValueError(f"to_torch: {where} is {e}") from None


# ---------------------------------------------------------------------------------------------
# torch -> bptt


def _layers(torch: Any, module: Any, where: str) -> list[Layer]:
    """The bptt layers computing ``module`` (several for a stack or an ``nn.Sequential``)."""
    if type(module) is torch.nn.Sequential:
        return [layer for i, sub in enumerate(module) for layer in _layers(torch, sub, f"{where}[{i}]")]
    if type(module) is torch_wrapper():
        kind = _kind(torch, module.rnn)
        if kind is None or not issubclass(kind, Recurrent):
            raise ValueError(
                f"from_torch: {where} wraps a {type(module.rnn).__name__}, not an nn.RNN, nn.LSTM or nn.GRU"
            )
        return _recurrent_layers(module.rnn, kind, where, (module.h0, module.c0))
    kind = _kind(torch, module)
    if kind is None:
        raise ValueError(
            f"from_torch: {where} is a {type(module).__name__}, which bptt cannot express; supported: "
            f"{', '.join(_supported(torch))}, nn.Sequential and what to_torch builds"
        )
    _same_forward(module, kind.torch_counterpart(torch), where)
    _float_weights(module, where)
    if issubclass(kind, Recurrent):
        return _recurrent_layers(module, kind, where, (None, None))
    return [kind.from_torch_module(module)]


def _kind(torch: Any, module: Any) -> type[Layer] | None:
    """The registered layer type whose ``torch_counterpart`` ``module`` is an instance of."""
    for kind in layer_types().values():
        counterpart = kind.torch_counterpart(torch)
        if counterpart is not None and isinstance(module, counterpart):
            return kind
    return None


def _supported(torch: Any) -> list[str]:
    """The ``torch.nn`` classes some registered layer type maps from, as ``nn.Name``."""
    counterparts = (kind.torch_counterpart(torch) for kind in layer_types().values())
    return [f"nn.{c.__name__}" for c in counterparts if c is not None and c.__module__.startswith("torch.")]


def _same_forward(module: Any, base: Any, where: str) -> None:
    """Refuse a subclass that computes something else than its ``torch.nn`` base."""
    if type(module).forward is not base.forward:
        raise ValueError(
            f"from_torch: {where} is a {type(module).__name__}, a subclass of nn.{base.__name__} "
            f"that overrides forward; bptt can only express nn.{base.__name__}'s own computation"
        )


def _float_weights(module: Any, where: str) -> None:
    """Refuse weights other than float32/float64: each bptt layer takes its weights' dtype."""
    for weight in module.parameters():
        name = str(weight.dtype).removeprefix("torch.")
        if name not in ("float32", "float64"):
            raise ValueError(f"from_torch: {where} has {name} weights; bptt layers are float32 or float64")


def _recurrent_layers(rnn: Any, kind: type[Recurrent], where: str, buffers: tuple[Any, Any]) -> list[Layer]:
    """One ``kind`` layer (or ``Bidirectional``) per layer of a torch ``nn.RNN``/``nn.LSTM``/``nn.GRU``.

    ``buffers`` are the initial states ``h0``, ``c0`` in torch's ``(L·D, B, H)`` layout, or ``None``.
    """
    _refuse_options(rnn, where)
    D = 2 if rnn.bidirectional else 1
    layers: list[Layer] = []
    for k in range(rnn.num_layers):
        directions = []
        for d, suffix in enumerate((f"l{k}", f"l{k}_reverse")[:D]):
            cell = kind.from_torch_module(rnn, suffix)
            cell.state = _state(buffers, k * D + d)
            directions.append(cell)
        layers.append(directions[0] if D == 1 else _bidirectional(*directions))
    return layers


def _refuse_options(rnn: Any, where: str) -> None:
    """Refuse what bptt's recurrent layers do not compute: batch_first, dropout, projections."""
    kind = type(rnn).__name__
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


def _bidirectional(ahead: Recurrent, behind: Recurrent) -> Bidirectional:
    """A ``Bidirectional`` whose directions are the given layers."""
    bi = Bidirectional(ahead, rng=0)
    bi.backward_layer = behind
    return bi


def _state(buffers: tuple[Any, Any], i: int) -> State | None:
    """Direction ``i``'s initial state from torch's ``(L·D, B, H)`` buffers (``None`` when ``h0`` is)."""
    h0, c0 = (None if b is None else b.detach().cpu().numpy()[i].copy() for b in buffers)
    return None if h0 is None else State(h0, c0)
