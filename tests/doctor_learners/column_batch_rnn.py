"""A column-vector RNN over minibatches, one ``(I, B)`` matrix a step, gradients in a ``grads`` dict.

Convention: column vectors (``Wxh @ x_t``): ``Wxh (H, I)``, ``Whh (H, H)``, ``bh (H, 1)``,
``Why (O, H)``, ``by (O, 1)``; a list of T arrays ``(I, B)`` ("column-steps") and, with one output
at the last step, one-hot targets ``y (O, B)``; an object with ``forward(xs)`` and ``backward(y)``
that fills ``self.grads`` with ``d<name>`` entries.
Spec: sigmoid hidden, softmax output, cross-entropy averaged over the B predictions (``mean``),
an output at the last step only.
Planted bug: none (correct).
"""

import numpy as np

DOCTOR = {
    "learner": "ColumnRNN",
    "check": {
        "activation": "sigmoid",
        "output": "softmax",
        "loss": "cross_entropy",
        "reduction": "mean",
        "steps": "last",
        "data": "column-steps",
    },
    "roles": {"Wxh": "W_ih", "Whh": "W_hh", "bh": "b", "Why": "W_ho", "by": "b_o"},
    "layout": "column",
    "bug": None,
}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class ColumnRNN:
    def __init__(self, n_in=3, n_hidden=4, n_out=5):
        rng = np.random.default_rng(7)
        self.Wxh = rng.normal(0, 0.5, (n_hidden, n_in))
        self.Whh = rng.normal(0, 0.5, (n_hidden, n_hidden))
        self.bh = np.zeros((n_hidden, 1))
        self.Why = rng.normal(0, 0.5, (n_out, n_hidden))
        self.by = np.zeros((n_out, 1))
        self.grads = {}

    def forward(self, xs):
        self.xs = xs
        self.hs = [np.zeros((self.Whh.shape[0], xs[0].shape[1]))]
        for x in xs:
            self.hs.append(sigmoid(self.Wxh @ x + self.Whh @ self.hs[-1] + self.bh))
        z = self.Why @ self.hs[-1] + self.by  # (O, B)
        e = np.exp(z - z.max(axis=0))
        self.p = e / e.sum(axis=0)
        return self.p

    def backward(self, y):
        B = y.shape[1]
        dz = (self.p - y) / B  # mean cross-entropy over the batch
        g = {"dWhy": dz @ self.hs[-1].T, "dby": dz.sum(axis=1, keepdims=True)}
        g["dWxh"], g["dWhh"], g["dbh"] = (
            np.zeros_like(self.Wxh),
            np.zeros_like(self.Whh),
            np.zeros_like(self.bh),
        )
        dh = self.Why.T @ dz
        for t in reversed(range(len(self.xs))):
            h = self.hs[t + 1]
            da = dh * h * (1 - h)
            g["dWxh"] += da @ self.xs[t].T
            g["dWhh"] += da @ self.hs[t].T
            g["dbh"] += da.sum(axis=1, keepdims=True)
            dh = self.Whh.T @ da
        self.grads = g
