"""A one-sequence RNN that keeps the hidden bias's gradient per step, ``(T, H)``.

Convention: row vectors: ``W_xh (I, H)``, ``W_hh (H, H)``, ``b_h (H,)``, ``W_hy (H, O)``, ``b_y (O,)``;
one sequence ``x (T, I)``, ``y (T, O)``; an object with ``forward(x)`` and ``backward(y)`` that sets
``self.dW_xh`` etc.
Spec: sigmoid hidden, sigmoid output, half squared error summed, an output at every step.
Planted bug: ``bias-not-summed``: ``self.db_h = deltas``, the per-step ``δa_t`` stacked ``(T, H)``,
where their sum over the steps ``(H,)`` is due (``db_y`` is summed).
"""

import numpy as np

DOCTOR = {
    "learner": "SequenceRNN",
    "check": {"activation": "sigmoid", "output": "sigmoid", "loss": "half_mse", "data": "sequence"},
    "roles": {"W_xh": "W_ih", "W_hh": "W_hh", "b_h": "b", "W_hy": "W_ho", "b_y": "b_o"},
    "layout": "row",
    "bug": "bias-not-summed",
}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


class SequenceRNN:
    def __init__(self, n_in=3, n_hidden=4, n_out=2):
        rng = np.random.default_rng(23)
        self.W_xh = rng.uniform(-1, 1, (n_in, n_hidden))
        self.W_hh = rng.uniform(-1, 1, (n_hidden, n_hidden))
        self.b_h = np.zeros(n_hidden)
        self.W_hy = rng.uniform(-1, 1, (n_hidden, n_out))
        self.b_y = np.zeros(n_out)

    def forward(self, x):
        T = len(x)
        self.x = x
        self.h = np.zeros((T + 1, self.W_hh.shape[0]))
        for t in range(T):
            self.h[t + 1] = sigmoid(x[t] @ self.W_xh + self.h[t] @ self.W_hh + self.b_h)
        self.y_hat = sigmoid(self.h[1:] @ self.W_hy + self.b_y)
        return self.y_hat

    def backward(self, y):
        T = len(self.x)
        do = (self.y_hat - y) * self.y_hat * (1 - self.y_hat)  # (T, O)
        self.dW_hy = self.h[1:].T @ do
        self.db_y = do.sum(axis=0)
        deltas = np.zeros((T, self.W_hh.shape[0]))
        dh_next = np.zeros(self.W_hh.shape[0])
        for t in reversed(range(T)):
            h = self.h[t + 1]
            deltas[t] = (do[t] @ self.W_hy.T + dh_next) * h * (1 - h)
            dh_next = deltas[t] @ self.W_hh.T
        self.dW_xh = self.x.T @ deltas
        self.dW_hh = self.h[:-1].T @ deltas
        self.db_h = deltas
