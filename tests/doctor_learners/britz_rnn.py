"""Denny Britz's ``RNNNumpy`` (WildML's RNN tutorial, part 2), with real-valued inputs.

Convention: column vectors (``U.dot(x[t])``): ``U (H, I)``, ``W (H, H)``, ``V (O, H)``, no biases;
one sequence, ``x (T, I)`` and one-hot targets ``y (T, O)``; an object with ``forward(x)`` and
``backward(x, y)`` (Britz's ``bptt``) returning a dict of ``d<name>`` gradients.
Spec: tanh hidden, softmax output, cross-entropy summed over the steps, an output at every step.
Britz looks words up with ``U[:, x[t]]``; real-valued inputs need ``U.dot(x[t])``, and his
truncation (``bptt_truncate``) is set past any sequence so that the gradient is the full one.
Planted bug: none (correct). The doctor infers the roles from Britz's names U, W, V.
"""

import numpy as np

DOCTOR = {
    "learner": "RNNNumpy",
    "check": {"activation": "tanh", "output": "softmax", "loss": "cross_entropy", "data": "sequence"},
    "roles": {"U": "W_ih", "W": "W_hh", "V": "W_ho"},
    "layout": "column",
    "bug": None,
}


def softmax(x):
    xt = np.exp(x - np.max(x))
    return xt / np.sum(xt)


class RNNNumpy:
    def __init__(self, word_dim=8, hidden_dim=5, bptt_truncate=1000):
        self.word_dim = word_dim
        self.hidden_dim = hidden_dim
        self.bptt_truncate = bptt_truncate
        rng = np.random.default_rng(0)
        self.U = rng.uniform(-np.sqrt(1.0 / word_dim), np.sqrt(1.0 / word_dim), (hidden_dim, word_dim))
        self.V = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (word_dim, hidden_dim))
        self.W = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (hidden_dim, hidden_dim))

    def forward(self, x):
        T = len(x)
        # s[-1], the extra last row, is the initial state (zeros)
        s = np.zeros((T + 1, self.hidden_dim))
        o = np.zeros((T, self.word_dim))
        for t in np.arange(T):
            s[t] = np.tanh(self.U.dot(x[t]) + self.W.dot(s[t - 1]))
            o[t] = softmax(self.V.dot(s[t]))
        self.o, self.s = o, s
        return o

    def backward(self, x, y):
        T = len(y)
        o, s = self.o, self.s
        dLdU = np.zeros(self.U.shape)
        dLdV = np.zeros(self.V.shape)
        dLdW = np.zeros(self.W.shape)
        delta_o = o - y  # Britz: delta_o[np.arange(len(y)), y] -= 1.0
        for t in np.arange(T)[::-1]:
            dLdV += np.outer(delta_o[t], s[t].T)
            delta_t = self.V.T.dot(delta_o[t]) * (1 - (s[t] ** 2))
            # backpropagation through time (for at most self.bptt_truncate steps)
            for bptt_step in np.arange(max(0, t - self.bptt_truncate), t + 1)[::-1]:
                dLdW += np.outer(delta_t, s[bptt_step - 1])
                dLdU += np.outer(delta_t, x[bptt_step])
                delta_t = self.W.T.dot(delta_t) * (1 - s[bptt_step - 1] ** 2)
        return {"dU": dLdU, "dV": dLdV, "dW": dLdW}
