"""The seed question's 2-16-1 binary adder, one class per layer, with the seed's own mistake.

The learner's conventions: row vectors (``x_t @ W``), ``input.W (2, 16)``, ``hidden.W (16, 16)``,
``output.W (16, 1)``, no biases; one sequence as a list of T arrays ``(1, 2)`` (the bits of the two
operands at step t, least significant first) with targets ``(1, 1)`` (the bit of the sum), which
the doctor calls ``--data steps``; sigmoid hidden and output, ``½Σ(ŷ - y)²`` summed over the steps.
Each layer's ``backward`` keeps its weight's gradient in ``dW``.

The mistake (the seed's): the input layer's ``backward`` tries to carry δ back in time itself. It
takes the δ of its own input, ``delta_pre_hidden`` ``(1, 2)``, and multiplies it by the hidden
layer's whole weight ``W_hidden`` ``(16, 16)``, and NumPy refuses. ``seed_adder_fixed.py`` is the
corrected network.

    bptt doctor examples/seed_adder.py:AdderRNN --data steps \
        --activation sigmoid --output sigmoid --loss half_mse
"""

import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


class InputLayer:
    """x_t @ W: the input's share of the hidden pre-activation."""

    def __init__(self, n_in, n_hidden, rng):
        self.W = rng.uniform(-1, 1, (n_in, n_hidden))

    def forward(self, x):
        return x @ self.W  # (1, 2) @ (2, 16) -> (1, 16)

    def backward(self, xs, deltas, W_hidden):
        """dW = Σ_t x_tᵀ · δ_t, carrying δ back through the steps (the seed's chain rule)."""
        self.dW = np.zeros_like(self.W)
        delta_next = np.zeros_like(deltas[0])
        for t in reversed(range(len(xs))):
            delta = deltas[t] + delta_next
            self.dW += xs[t].T @ delta
            delta_pre_hidden = np.dot(delta, self.W.T)  # (1, 16) · (16, 2) -> (1, 2)
            delta_next = np.dot(delta_pre_hidden, W_hidden)  # back to step t - 1 through W_hidden


class HiddenLayer:
    """h_t = σ(x_t @ W_input + h_{t-1} @ W): the recurrence."""

    def __init__(self, n_hidden, rng):
        self.W = rng.uniform(-1, 1, (n_hidden, n_hidden))

    def forward(self, pre_input, h_prev):
        return sigmoid(pre_input + h_prev @ self.W)

    def backward(self, hs, deltas_from_output):
        """δa_t at every step from its output; dW = Σ_t h_{t-1}ᵀ · δa_t."""
        self.dW = np.zeros_like(self.W)
        deltas = []
        for t, dh in enumerate(deltas_from_output):
            h = hs[t + 1]
            deltas.append(dh * h * (1 - h))
            self.dW += hs[t].T @ deltas[t]
        return deltas


class OutputLayer:
    """ŷ_t = σ(h_t @ W)."""

    def __init__(self, n_hidden, n_out, rng):
        self.W = rng.uniform(-1, 1, (n_hidden, n_out))

    def forward(self, h):
        return sigmoid(h @ self.W)

    def backward(self, hs, y_hats, ys):
        """δ for each h_t from its own output; dW = Σ_t h_tᵀ · δo_t."""
        self.dW = np.zeros_like(self.W)
        deltas = []
        for h, y_hat, y in zip(hs[1:], y_hats, ys, strict=True):
            delta_o = (y_hat - y) * y_hat * (1 - y_hat)  # d ½(ŷ - y)² / do
            self.dW += h.T @ delta_o
            deltas.append(delta_o @ self.W.T)  # (1, 1) @ (1, 16) -> (1, 16)
        return deltas


class AdderRNN:
    """2-16-1: adds two numbers bit by bit, least significant bit first."""

    def __init__(self, n_in=2, n_hidden=16, n_out=1, seed=0):
        rng = np.random.default_rng(seed)
        self.input = InputLayer(n_in, n_hidden, rng)
        self.hidden = HiddenLayer(n_hidden, rng)
        self.output = OutputLayer(n_hidden, n_out, rng)

    def forward(self, xs):
        self.xs = xs
        self.hs = [np.zeros((len(xs[0]), self.hidden.W.shape[0]))]  # h_0: (1, 16) for one sequence
        self.y_hats = []
        for x in xs:
            self.hs.append(self.hidden.forward(self.input.forward(x), self.hs[-1]))
            self.y_hats.append(self.output.forward(self.hs[-1]))
        return self.y_hats

    def backward(self, ys):
        deltas_from_output = self.output.backward(self.hs, self.y_hats, ys)
        deltas = self.hidden.backward(self.hs, deltas_from_output)
        self.input.backward(self.xs, deltas, self.hidden.W)
