"""Optimizers with PyTorch's exact update rules, and global gradient-norm clipping.

Each optimizer reads ``model.grads`` and updates ``model.params`` in place; both dicts hold
the layers' own arrays, so nothing is copied. The same run in ``torch.optim`` ends at the same
weights to float64 round-off.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ._types import Array

__all__ = ["SGD", "Adagrad", "Adam", "Optimizer", "RMSprop", "clip_grad_norm", "grad_norm"]


class HasParams(Protocol):
    """Anything with ``params`` and ``grads`` dicts of matching arrays (a layer or Sequential)."""

    @property
    def params(self) -> dict[str, Array]:
        """The weights an optimizer updates in place."""
        ...

    @property
    def grads(self) -> dict[str, Array]:
        """Their gradients, same keys and shapes."""
        ...


def _check(
    where: str, name: str, value: float, *, low: float, strict: bool, high: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: {name} must be a number, got {value!r}")
    ok = (value > low if strict else value >= low) and (high is None or value < high)
    if isinstance(value, bool) or not np.isfinite(value) or not ok:
        bound = f"{'>' if strict else '≥'} {low}" + ("" if high is None else f" and < {high}")
        raise ValueError(f"{where}: {name} must be a number {bound}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: pairs each parameter with its gradient and a per-parameter state dict.

    ``BUFFERS`` names the state a parameter has once it has been updated (all of them, or none
    before the first step); ``load_state_dict`` refuses anything else.
    """

    BUFFERS: tuple[str, ...] = ()

    def __init__(self, model: HasParams, lr: float) -> None:
        where = type(self).__name__
        self.lr = _check(where, "lr", lr, low=0.0, strict=True)
        params, grads = model.params, model.grads
        if not params:
            raise ValueError(f"{where}: the model has no parameters to optimize")
        self.names = list(params)
        self._pairs = [(params[k], grads[k]) for k in self.names]
        self.state: dict[str, dict[str, Array]] = {k: {} for k in self.names}
        self.steps = 0

    def state_dict(self) -> dict[str, Array]:
        """The optimizer's state as flat arrays: ``"{param}/{key}"`` per buffer, and ``"steps"``.

        Together with the weights this is everything a resumed run needs to continue bit for bit.
        """
        out = {f"{name}/{key}": buf.copy() for name, st in self.state.items() for key, buf in st.items()}
        out["steps"] = np.array(self.steps)
        return out

    def load_state_dict(self, arrays: dict[str, Array]) -> None:
        """Restore what ``state_dict`` returned; refuses buffers that do not fit the parameters."""
        where = f"{type(self).__name__}.load_state_dict"
        params = dict(zip(self.names, (p for p, _ in self._pairs), strict=True))
        state: dict[str, dict[str, Array]] = {name: {} for name in self.names}
        for key, value in arrays.items():
            if key == "steps":
                continue
            name, _, buf = key.rpartition("/")
            if name not in params or value.shape != params[name].shape:
                raise ValueError(f"{where}: state {key!r} does not match a parameter of the model")
            state[name][buf] = np.array(value, dtype=params[name].dtype)
        for name, bufs in state.items():
            if bufs and set(bufs) != set(self.BUFFERS):
                raise ValueError(
                    f"{where}: parameter {name!r} has buffers {sorted(bufs)}; "
                    f"expected {sorted(self.BUFFERS)} or none"
                )
        if "steps" not in arrays:
            raise ValueError(f"{where}: the state has no 'steps' count")
        self.state, self.steps = state, int(arrays["steps"])

    def step(self) -> None:
        """Apply one update to every parameter, in place."""
        self.steps += 1
        for name, (p, g) in zip(self.names, self._pairs, strict=True):
            self._update(p, g, self.state[name])

    def _update(self, p: Array, g: Array, state: dict[str, Array]) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """``p -= lr · v``, where ``v`` is the gradient, its momentum buffer, or Nesterov's look-ahead.

    PyTorch's rule: ``buf = g`` on the first step, then ``buf = μ buf + g``; the update uses
    ``buf``, or ``g + μ buf`` with ``nesterov=True``.
    """

    BUFFERS = ("momentum",)

    def __init__(self, model: HasParams, lr: float, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(model, lr)
        self.momentum = _check("SGD", "momentum", momentum, low=0.0, strict=False)
        if nesterov and self.momentum == 0.0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)

    def _update(self, p: Array, g: Array, state: dict[str, Array]) -> None:
        if self.momentum == 0.0:
            p -= np.multiply(g, self.lr)
            return
        buf = state.get("momentum")
        if buf is None:
            buf = state["momentum"] = g.copy()
        else:
            buf *= self.momentum
            buf += g
        if self.nesterov:
            step = np.multiply(buf, self.momentum)
            step += g
        else:
            step = buf.copy()
        step *= self.lr
        p -= step


class Adagrad(Optimizer):
    """``s += g²``; ``p -= lr · g / (√s + eps)``."""

    BUFFERS = ("sum",)

    def __init__(self, model: HasParams, lr: float = 0.01, eps: float = 1e-10) -> None:
        super().__init__(model, lr)
        self.eps = _check("Adagrad", "eps", eps, low=0.0, strict=False)

    def _update(self, p: Array, g: Array, state: dict[str, Array]) -> None:
        if "sum" not in state:
            state["sum"] = np.zeros_like(p)
        s = state["sum"]
        s += np.square(g)
        p -= _scaled_ratio(g, s, self.eps, self.lr)


class RMSprop(Optimizer):
    """``s = α s + (1-α) g²``; ``p -= lr · g / (√s + eps)``."""

    BUFFERS = ("square_avg",)

    def __init__(self, model: HasParams, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(model, lr)
        self.alpha = _check("RMSprop", "alpha", alpha, low=0.0, strict=False, high=1.0)
        self.eps = _check("RMSprop", "eps", eps, low=0.0, strict=False)

    def _update(self, p: Array, g: Array, state: dict[str, Array]) -> None:
        if "square_avg" not in state:
            state["square_avg"] = np.zeros_like(p)
        s = state["square_avg"]
        s *= self.alpha
        sq = np.multiply(g, 1.0 - self.alpha)
        sq *= g
        s += sq
        p -= _scaled_ratio(g, s, self.eps, self.lr)


class Adam(Optimizer):
    """Adam with PyTorch's bias correction.

    ``m = β₁ m + (1-β₁) g``, ``v = β₂ v + (1-β₂) g²``,
    ``p -= (lr / (1-β₁ᵗ)) · m / (√v / √(1-β₂ᵗ) + eps)``.
    """

    BUFFERS = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        model: HasParams,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(model, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (β₁, β₂), got {betas!r}")
        self.betas = (
            _check("Adam", "betas[0]", betas[0], low=0.0, strict=False, high=1.0),
            _check("Adam", "betas[1]", betas[1], low=0.0, strict=False, high=1.0),
        )
        self.eps = _check("Adam", "eps", eps, low=0.0, strict=False)

    def _update(self, p: Array, g: Array, state: dict[str, Array]) -> None:
        b1, b2 = self.betas
        if not state:
            state["exp_avg"], state["exp_avg_sq"] = np.zeros_like(p), np.zeros_like(p)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        delta = np.subtract(g, m)
        delta *= 1.0 - b1
        m += delta  # torch's lerp form of β₁ m + (1-β₁) g
        v *= b2
        sq = np.multiply(g, 1.0 - b2)
        sq *= g
        v += sq
        step_size = self.lr / (1.0 - b1**self.steps)
        denom = np.sqrt(v)
        denom /= np.sqrt(1.0 - b2**self.steps)
        p -= _scaled_ratio(m, denom, self.eps, step_size, root=False)


def _scaled_ratio(num: Array, acc: Array, eps: float, scale: float, root: bool = True) -> Array:
    """``scale · num / (√acc + eps)`` (or ``/ (acc + eps)`` when ``root`` is false), in one buffer."""
    out = np.sqrt(acc) if root else acc.copy()
    out += eps
    np.divide(num, out, out=out)
    out *= scale
    return out


def grad_norm(model: HasParams) -> float:
    """The global L2 norm of all gradients (``inf`` or ``nan`` if any entry is)."""
    return float(np.sqrt(sum(float(np.vdot(g, g)) for g in model.grads.values())))


def clip_grad_norm(model: HasParams, max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most about ``max_norm``.

    Like ``torch.nn.utils.clip_grad_norm_``: the factor is ``max_norm / (norm + 1e-6)``, applied
    only when it is below 1. Returns the norm before clipping.
    """
    max_norm = _check("clip_grad_norm", "max_norm", max_norm, low=0.0, strict=True)
    grads = list(model.grads.values())
    norm = grad_norm(model)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return norm
