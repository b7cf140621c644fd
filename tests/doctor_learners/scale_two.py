"""A time-major RNN that differentiates Σ(ŷ - y)² as ``ŷ - y``: the 2 is missing.

Convention: row vectors: ``Wxh (I, H)``, ``Whh (H, H)``, ``bh (H,)``, ``Why (H, O)``, ``by (O,)``;
time-major ``x (T, B, I)``, ``y (T, B, O)``; an object with ``forward(x)`` and ``backward(y)``
returning a dict of ``d<name>`` gradients.
Spec: tanh hidden, identity output, squared error summed (``mse``, ``Σ(ŷ - y)²``), an output at
every step.
Planted bug: ``scale``, a factor of 2: ``dy = y_hat - y`` where ``2 * (y_hat - y)`` is due, so every
gradient is half the true one (the derivative of ``½Σ(ŷ - y)²``, not of the loss it reports).
"""

import numpy as np

DOCTOR = {
    "learner": "RNN",
    "check": {"data": "time-major"},
    "roles": {"Wxh": "W_ih", "Whh": "W_hh", "bh": "b", "Why": "W_ho", "by": "b_o"},
    "layout": "row",
    "bug": "scale",
    "detail": "a factor of ½",  # what the diagnosis must say
}


class RNN:
    def __init__(self, n_in=2, n_hidden=6, n_out=3):
        rng = np.random.default_rng(20)
        self.Wxh = rng.normal(0, 0.4, (n_in, n_hidden))
        self.Whh = rng.normal(0, 0.4, (n_hidden, n_hidden))
        self.bh = np.zeros(n_hidden)
        self.Why = rng.normal(0, 0.4, (n_hidden, n_out))
        self.by = np.zeros(n_out)

    def forward(self, x):
        T, B, _ = x.shape
        self.x = x
        self.h = np.zeros((T + 1, B, self.Whh.shape[0]))
        for t in range(T):
            self.h[t + 1] = np.tanh(x[t] @ self.Wxh + self.h[t] @ self.Whh + self.bh)
        self.y_hat = self.h[1:] @ self.Why + self.by
        return self.y_hat

    def backward(self, y):
        self.loss = np.sum((self.y_hat - y) ** 2)
        dy = self.y_hat - y  # dL/dŷ
        T, B, H = len(self.x), self.x.shape[1], self.Whh.shape[0]
        g = {"dWhy": self.h[1:].reshape(T * B, H).T @ dy.reshape(T * B, -1), "dby": dy.sum(axis=(0, 1))}
        dWxh, dWhh, dbh = np.zeros_like(self.Wxh), np.zeros_like(self.Whh), np.zeros_like(self.bh)
        dh_next = np.zeros((B, H))
        for t in reversed(range(T)):
            da = (dy[t] @ self.Why.T + dh_next) * (1 - self.h[t + 1] ** 2)
            dWxh += self.x[t].T @ da
            dWhh += self.h[t].T @ da
            dbh += da.sum(axis=0)
            dh_next = da @ self.Whh.T
        g.update(dWxh=dWxh, dWhh=dWhh, dbh=dbh)
        return g
