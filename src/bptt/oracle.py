"""PyTorch autograd as an independent oracle for bptt's hand-written backward passes.

Each layer writes its forward pass again in torch operations, step by step, independently of
its NumPy ``forward`` (``Layer.torch_forward``); here it runs on float64 tensors and autograd
does the BPTT. torch is imported inside these functions only: it is a test and CLI dependency,
never a runtime one. A layer without a torch form raises ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .layers import Layer, State
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss
from .recurrent import Recurrent

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
    params = {k: leaf(k, v) for k, v in model.params.items()}
    states = _initial_states(model, h.shape[1], leaf)
    h = model.torch_forward(torch, h, params, states if model.sublayers() else states.get(""))
    loss = None
    if loss_fn is not None:
        loss = _loss(torch, loss_fn, h, target, mask)
        loss.backward()
    else:
        h.backward(torch.tensor(np.asarray(grad_y, np.float64)))
    out: dict[str, Any] = {"y": h.detach().numpy(), "loss": None if loss is None else float(loss.detach())}
    out.update({k: v.grad.numpy() for k, v in leaves.items()})
    return out


def _initial_states(model: Layer, batch: int, leaf: Callable[[str, NDArray[Any]], Any]) -> dict[str, State]:
    """Every recurrent leaf's initial state as tensors named ``"{prefix}{h0|c0}"``, keyed by leaf prefix."""
    return {
        prefix: State(*(leaf(prefix + name, layer.initial_state(batch, name)) for name in layer.state_names))
        for prefix, layer in model.leaves()
        if isinstance(layer, Recurrent)
    }


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
