"""What the learner's network is: the reference it is checked against, and the doctor's words for it.

The doctor checks one architecture, the one learners write by hand (the seed's, min-char-rnn's,
cs231n's): an Elman RNN with an output layer, in the reference's row-vector convention

    a_t = x_t @ W_ih + h_{t-1} @ W_hh + b        (B, H)
    h_t = act(a_t)                               (B, H)
    o_t = h_t @ W_ho + b_o                       (B, O)
    ŷ_t = out(o_t)                               (B, O)
    L   = loss(ŷ, y)                             a number

with outputs at every step, or at the last only. Every array the doctor passes around is in this
convention: weights by *role* (``ROLES``), data time-major ``x (T, B, I)``, ``y (T, B, O)`` (or
``(B, O)`` for outputs at the last step only), and gradients by role plus ``"x"`` ``(T, B, I)``,
``"h0"`` ``(B, H)`` and ``"delta"`` (the per-step ``δa_t``, ``(T, B, H)``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACTIVATIONS", "GRADIENT_ROLES", "LOSSES", "OUTPUTS", "REDUCTIONS", "ROLES", "STEPS", "Spec"]

# The weights' roles and their shapes in the reference convention.
ROLES = {"W_ih": "(I, H)", "W_hh": "(H, H)", "b": "(H,)", "W_ho": "(H, O)", "b_o": "(O,)"}
# Gradients beyond the weights' that a learner may return.
GRADIENT_ROLES = {**ROLES, "x": "(T, B, I)", "h0": "(B, H)", "delta": "(T, B, H)"}
ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")  # the hidden layer's
OUTPUTS = ("identity", "sigmoid", "softmax")  # the output layer's
LOSSES = ("mse", "half_mse", "bce", "cross_entropy")
REDUCTIONS = ("sum", "mean")
STEPS = ("every", "last")


@dataclass(frozen=True)
class Spec:
    """The learner's network, as far as its weights do not say it.

    Parameters
    ----------
    activation : str
        The hidden layer's ``act``: one of ``ACTIVATIONS``.
    output : str
        The output layer's ``out``: one of ``OUTPUTS``.
    loss : str
        ``"mse"`` ``Σ(ŷ - y)²``, ``"half_mse"`` ``½Σ(ŷ - y)²``, ``"bce"`` binary cross-entropy of
        ``ŷ ∈ (0, 1)`` against ``y ∈ [0, 1]``, ``"cross_entropy"`` ``-Σ y·log ŷ`` (``y`` one-hot or a
        distribution, ``ŷ`` a softmax).
    reduction : str
        ``"sum"`` over everything, or ``"mean"``: divided by ``y``'s number of entries (``mse``,
        ``half_mse``, ``bce``), or by its number of predictions ``T·B`` (``cross_entropy``).
    steps : str
        ``"every"``: an output and a loss term at every step; ``"last"``: at the last step only.
    """

    activation: str = "tanh"
    output: str = "identity"
    loss: str = "mse"
    reduction: str = "sum"
    steps: str = "every"

    def __post_init__(self) -> None:
        for name, allowed in (
            ("activation", ACTIVATIONS),
            ("output", OUTPUTS),
            ("loss", LOSSES),
            ("reduction", REDUCTIONS),
            ("steps", STEPS),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"doctor: {name} must be one of {', '.join(allowed)}; got {value!r}")
