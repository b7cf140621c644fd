"""PyTorch autograd as an independent oracle for bptt's hand-written backward passes.

The forward pass is re-expressed with torch operations on float64 tensors, step by step,
and autograd differentiates it. torch is imported inside these functions only: it is a test
and CLI dependency, never a runtime one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .layers import Dense, Last, Layer, ReLU, Sequential, Sigmoid, Tanh
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss
from .recurrent import GRU, LSTM, RNN, Bidirectional

__all__ = ["torch_gradients"]


def torch_gradients(
    model: Layer,
    x: NDArray[Any],
    *,
    grad_y: NDArray[Any] | None = None,
    loss_fn: Loss | None = None,
    target: NDArray[Any] | None = None,
    mask: NDArray[Any] | None = None,
) -> dict[str, Any]:
    """Run ``model``'s forward pass in torch and differentiate it with autograd.

    Either ``grad_y`` (an upstream gradient of the output's shape) or ``loss_fn`` with
    ``target`` (and ``mask``) says what to differentiate.

    Returns
    -------
    dict with ``"y"`` (the output), ``"loss"`` (float or None), ``"x"`` (dL/dx),
    each parameter's gradient keyed like ``model.params``, and every recurrent layer's initial
    states keyed as ``bptt.gradcheck`` names them: ``"{i}.h0"`` (and ``"{i}.c0"`` for an LSTM),
    ``"{i}.fwd.h0"`` and ``"{i}.bwd.h0"`` inside a ``Bidirectional`` (no ``"{i}."`` when ``model``
    is a single layer). A state that is ``None`` is differentiated at zeros.
    """
    import torch

    leaves: dict[str, Any] = {}

    def leaf(name: str, a: NDArray[Any]) -> Any:
        leaves[name] = torch.tensor(np.asarray(a, np.float64), requires_grad=True)
        return leaves[name]

    h = leaf("x", x)
    if isinstance(model, Sequential):
        for i, layer in enumerate(model):
            h = _layer(torch, layer, h, f"{i}.", leaf)
    else:
        h = _layer(torch, model, h, "", leaf)
    loss = None
    if loss_fn is not None:
        loss = _loss(torch, loss_fn, h, target, mask)
        loss.backward()
    else:
        h.backward(torch.tensor(np.asarray(grad_y, np.float64)))
    out: dict[str, Any] = {"y": h.detach().numpy(), "loss": None if loss is None else float(loss.detach())}
    out.update({k: v.grad.numpy() for k, v in leaves.items()})
    return out


_ACT = {
    "tanh": lambda torch, z: torch.tanh(z),
    "sigmoid": lambda torch, z: torch.sigmoid(z),
    "relu": lambda torch, z: torch.relu(z),
    "identity": lambda torch, z: z,
}

Leaf = Callable[[str, NDArray[Any]], Any]


def _layer(torch: Any, layer: Layer, h: Any, prefix: str, leaf: Leaf) -> Any:
    """``layer``'s forward pass on the tensor ``h (T, B, F)``; its params and states become leaves."""
    if isinstance(layer, Bidirectional):
        ahead = _layer(torch, layer.forward_layer, h, f"{prefix}fwd.", leaf)
        behind = _layer(torch, layer.backward_layer, h.flip(0), f"{prefix}bwd.", leaf).flip(0)
        return torch.cat([ahead, behind], dim=2)  # (T, B, 2H)
    p = {k: leaf(prefix + k, v) for k, v in layer.params.items()}
    if isinstance(layer, (RNN, LSTM, GRU)):
        B = h.shape[1]
        states = [leaf(prefix + name, layer.initial_state(B, name)) for name in layer.state_names]
        if isinstance(layer, RNN):
            return _rnn(torch, h, p, states[0], layer.activation)
        if isinstance(layer, LSTM):
            return _lstm(torch, h, p, states[0], states[1])
        return _gru(torch, h, p, states[0])
    if isinstance(layer, Dense):
        return h @ p["W"] + p["b"] if "b" in p else h @ p["W"]
    if isinstance(layer, (Sigmoid, Tanh, ReLU)):
        return _ACT[layer.activation](torch, h)
    if isinstance(layer, Last):
        return h[-1:]
    raise TypeError(f"torch_gradients: no torch form for {type(layer).__name__}")


def _rnn(torch: Any, x: Any, p: dict[str, Any], h: Any, activation: str) -> Any:
    """``h_t = act(x_t W_ih + h_{t-1} W_hh + b)`` one step at a time; autograd does BPTT."""
    hs = []
    for t in range(x.shape[0]):
        a = x[t] @ p["W_ih"] + h @ p["W_hh"]
        h = _ACT[activation](torch, a + p["b"] if "b" in p else a)
        hs.append(h)
    return torch.stack(hs)


def _lstm(torch: Any, x: Any, p: dict[str, Any], h: Any, c: Any) -> Any:
    """PyTorch's LSTM equations, gates packed ``[i | f | g | o]``, one step at a time."""
    H = h.shape[1]
    hs = []
    for t in range(x.shape[0]):
        z = x[t] @ p["W_ih"] + h @ p["W_hh"]
        if "b" in p:
            z = z + p["b"]
        i, f = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H : 2 * H])
        g, o = torch.tanh(z[:, 2 * H : 3 * H]), torch.sigmoid(z[:, 3 * H :])
        c = f * c + i * g
        h = o * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs)


def _gru(torch: Any, x: Any, p: dict[str, Any], h: Any) -> Any:
    """PyTorch's GRU equations, gates packed ``[r | z | n]``; the reset gate scales ``h W_hn + b_hn``."""
    H = h.shape[1]
    hs = []
    for t in range(x.shape[0]):
        a, rec = x[t] @ p["W_ih"], h @ p["W_hh"]
        if "b" in p:
            a = a + p["b"]
        rec_n = rec[:, 2 * H :] + p["b_hn"] if "b_hn" in p else rec[:, 2 * H :]
        r = torch.sigmoid(a[:, :H] + rec[:, :H])
        z = torch.sigmoid(a[:, H : 2 * H] + rec[:, H : 2 * H])
        n = torch.tanh(a[:, 2 * H :] + r * rec_n)
        h = (1.0 - z) * n + z * h
        hs.append(h)
    return torch.stack(hs)


def _loss(torch: Any, loss_fn: Loss, y: Any, target: Any, mask: Any) -> Any:
    F = torch.nn.functional
    if isinstance(loss_fn, CrossEntropyLoss):
        t = torch.tensor(np.asarray(target, np.int64))
        terms = F.cross_entropy(y.permute(1, 2, 0), t.T, reduction="none").T[..., None]
    else:
        t = torch.tensor(np.asarray(target, np.float64))
        if isinstance(loss_fn, MSELoss):
            terms = F.mse_loss(y, t, reduction="none")
        elif isinstance(loss_fn, BCEWithLogitsLoss):
            terms = F.binary_cross_entropy_with_logits(y, t, reduction="none")
        else:
            raise TypeError(f"torch_gradients: no torch form for {type(loss_fn).__name__}")
    if mask is None:
        return terms.sum() if loss_fn.reduction == "sum" else terms.mean()
    m = torch.tensor(np.asarray(mask, np.float64))[..., None]
    total = (terms * m).sum()
    if loss_fn.reduction == "sum":
        return total
    count = m.sum() * terms.shape[2]
    return total / count if float(count) > 0 else total * 0.0
