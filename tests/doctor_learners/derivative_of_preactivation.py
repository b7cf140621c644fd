"""Britz's ``RNNNumpy`` with the tanh derivative written from the pre-activation: ``1 - a²``.

Convention: column vectors: ``U (H, I)``, ``W (H, H)``, ``V (O, H)``, no biases; one sequence
``x (T, I)``, one-hot ``y (T, O)``; an object with ``forward(x)`` and ``backward(x, y)``
returning ``d<name>`` gradients.
Spec: tanh hidden, softmax output, cross-entropy summed, an output at every step.
Planted bug: ``derivative-of-preactivation``: the forward keeps the pre-activations ``a[t]``, and
the backward writes ``1 - a[t] ** 2`` where ``1 - s[t] ** 2`` (from the output ``h = tanh(a)``) is
due.
"""

import numpy as np

DOCTOR = {
    "learner": "RNNNumpy",
    "check": {"output": "softmax", "loss": "cross_entropy", "data": "sequence"},
    "roles": {"U": "W_ih", "W": "W_hh", "V": "W_ho"},
    "layout": "column",
    "bug": "derivative-of-preactivation",
}


def softmax(x):
    xt = np.exp(x - np.max(x))
    return xt / np.sum(xt)


class RNNNumpy:
    def __init__(self, word_dim=6, hidden_dim=4):
        rng = np.random.default_rng(14)
        self.hidden_dim = hidden_dim
        self.U = rng.uniform(-np.sqrt(1.0 / word_dim), np.sqrt(1.0 / word_dim), (hidden_dim, word_dim))
        self.V = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (word_dim, hidden_dim))
        self.W = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (hidden_dim, hidden_dim))

    def forward(self, x):
        T = len(x)
        self.a = np.zeros((T, self.hidden_dim))
        self.s = np.zeros((T + 1, self.hidden_dim))  # s[-1] is the initial state
        self.o = np.zeros((T, self.V.shape[0]))
        for t in range(T):
            self.a[t] = self.U.dot(x[t]) + self.W.dot(self.s[t - 1])
            self.s[t] = np.tanh(self.a[t])
            self.o[t] = softmax(self.V.dot(self.s[t]))
        return self.o

    def backward(self, x, y):
        T = len(y)
        dLdU, dLdV, dLdW = np.zeros(self.U.shape), np.zeros(self.V.shape), np.zeros(self.W.shape)
        delta_o = self.o - y
        for t in np.arange(T)[::-1]:
            dLdV += np.outer(delta_o[t], self.s[t])
            delta_t = self.V.T.dot(delta_o[t]) * (1 - self.a[t] ** 2)
            for step in np.arange(t + 1)[::-1]:
                dLdW += np.outer(delta_t, self.s[step - 1])
                dLdU += np.outer(delta_t, x[step])
                delta_t = self.W.T.dot(delta_t) * (1 - self.a[step - 1] ** 2)
        return {"dU": dLdU, "dV": dLdV, "dW": dLdW}
