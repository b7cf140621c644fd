"""The seed question's 2-16-1 binary adder, one class per layer, with its BPTT corrected.

The learner's conventions: row vectors (``x_t @ W``), ``input.W (2, 16)``, ``hidden.W (16, 16)``,
``output.W (16, 1)``, no biases; one sequence as a list of T arrays ``(1, 2)`` (the bits of the two
operands at step t, least significant first) with targets ``(1, 1)`` (the bit of the sum), which
the doctor calls ``--data steps``; sigmoid hidden and output, ``½Σ(ŷ - y)²`` summed over the steps.
Each layer's ``backward`` keeps its weight's gradient in ``dW``.

What changed from ``seed_adder.py``: the hidden layer carries δ back in time with
``δa_{t+1} @ W_hiddenᵀ`` (the transpose of its *own* weight, against a ``(1, 16)`` δ), so the
input layer only has to sum ``x_tᵀ · δa_t`` over the steps.

    bptt doctor examples/seed_adder_fixed.py:AdderRNN --data steps \
        --activation sigmoid --output sigmoid --loss half_mse
    python examples/seed_adder_fixed.py     # trains it on 8-bit sums with plain SGD
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

    def backward(self, xs, deltas):
        """dW = Σ_t x_tᵀ · δa_t: each term (2, 1)·(1, 16) is W's own shape (2, 16)."""
        self.dW = np.zeros_like(self.W)
        for x, delta in zip(xs, deltas, strict=True):
            self.dW += x.T @ delta


class HiddenLayer:
    """h_t = σ(x_t @ W_input + h_{t-1} @ W): the recurrence."""

    def __init__(self, n_hidden, rng):
        self.W = rng.uniform(-1, 1, (n_hidden, n_hidden))

    def forward(self, pre_input, h_prev):
        return sigmoid(pre_input + h_prev @ self.W)

    def backward(self, hs, deltas_from_output):
        """δa_t for every step, from the last back; dW = Σ_t h_{t-1}ᵀ · δa_t."""
        T = len(deltas_from_output)
        self.dW = np.zeros_like(self.W)
        deltas = [None] * T
        delta_next = np.zeros_like(hs[0])  # δa_{T+1} = 0: nothing after the last step
        for t in reversed(range(T)):
            h = hs[t + 1]
            dh = deltas_from_output[t] + delta_next @ self.W.T  # (1, 16) @ (16, 16) -> (1, 16)
            deltas[t] = dh * h * (1 - h)
            self.dW += hs[t].T @ deltas[t]
            delta_next = deltas[t]
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
        self.input.backward(self.xs, deltas)


def bits(n, width):
    return [(n >> i) & 1 for i in range(width)]


def train(steps=10_000, lr=0.1, seed=0):
    """Plain SGD on one random pair of operands below 128 a step; returns the network."""
    net, rng = AdderRNN(seed=seed), np.random.default_rng(seed + 1)
    for _ in range(steps):
        a, b = rng.integers(0, 128, size=2)
        xs = [np.array([[p, q]], dtype=float) for p, q in zip(bits(a, 8), bits(b, 8), strict=True)]
        ys = [np.array([[s]], dtype=float) for s in bits(a + b, 8)]
        net.forward(xs)
        net.backward(ys)
        for layer in (net.input, net.hidden, net.output):
            layer.W -= lr * layer.dW
    return net


if __name__ == "__main__":
    net = train()
    a, b = 77, 45
    xs = [np.array([[p, q]], dtype=float) for p, q in zip(bits(a, 8), bits(b, 8), strict=True)]
    total = sum(int(y[0, 0] > 0.5) << i for i, y in enumerate(net.forward(xs)))
    print(f"{a} + {b} = {total}")
