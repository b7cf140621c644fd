"""PyTorch autograd as an independent oracle for bptt's hand-written backward passes.

The forward pass is re-expressed with torch operations on float64 tensors, step by step,
and autograd differentiates it. torch is imported inside these functions only: it is a test
and CLI dependency, never a runtime one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .layers import Dense, Last, Layer, ReLU, Sequential, Sigmoid, Tanh
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss
from .recurrent import RNN

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
    each parameter's gradient keyed like ``model.params``, and ``"{i}.h0"`` for every RNN.
    """
    import torch

    layers = list(model) if isinstance(model, Sequential) else [model]
    prefix = (lambda i: f"{i}.") if isinstance(model, Sequential) else (lambda i: "")
    leaves: dict[str, Any] = {}

    def leaf(name: str, a: NDArray[Any]) -> Any:
        leaves[name] = torch.tensor(np.asarray(a, np.float64), requires_grad=True)
        return leaves[name]

    h = leaf("x", x)
    for i, layer in enumerate(layers):
        p = {k: leaf(prefix(i) + k, v) for k, v in layer.params.items()}
        if isinstance(layer, RNN):
            h0 = layer.initial_state(h.shape[1])
            h = _rnn(torch, h, p, leaf(f"{prefix(i)}h0", h0), layer.activation)
        elif isinstance(layer, Dense):
            h = h @ p["W"] + p["b"] if "b" in p else h @ p["W"]
        elif isinstance(layer, (Sigmoid, Tanh, ReLU)):
            h = _ACT[layer.activation](torch, h)
        elif isinstance(layer, Last):
            h = h[-1:]
        else:
            raise TypeError(f"torch_gradients: no torch form for {type(layer).__name__}")
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


def _rnn(torch: Any, x: Any, p: dict[str, Any], h: Any, activation: str) -> Any:
    """``h_t = act(x_t W_ih + h_{t-1} W_hh + b)`` one step at a time; autograd does BPTT."""
    hs = []
    for t in range(x.shape[0]):
        a = x[t] @ p["W_ih"] + h @ p["W_hh"]
        h = _ACT[activation](torch, a + p["b"] if "b" in p else a)
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
