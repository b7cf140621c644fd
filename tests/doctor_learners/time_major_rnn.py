"""A many-to-one classifier on time-major minibatches, gradients kept as ``d<name>`` attributes.

Convention: row vectors (``x[t] @ W_xh``): ``W_xh (I, H)``, ``W_hh (H, H)``, ``b_h (H,)``,
``W_hy (H, O)``, ``b_y (O,)``; time-major ``x (T, B, I)`` and, with one output at the last step,
``y (B, O)``; an object with ``forward(x)`` and ``backward(y)`` that sets ``self.dW_xh`` etc.
Spec: ReLU hidden, sigmoid output, binary cross-entropy averaged over y's entries (``mean``), an
output at the last step only.
Planted bug: none (correct).
"""

import numpy as np

DOCTOR = {
    "learner": "ManyToOneRNN",
    "check": {
        "activation": "relu",
        "output": "sigmoid",
        "loss": "bce",
        "reduction": "mean",
        "steps": "last",
        "data": "time-major",
    },
    "roles": {"W_xh": "W_ih", "W_hh": "W_hh", "b_h": "b", "W_hy": "W_ho", "b_y": "b_o"},
    "layout": "row",
    "bug": None,
}


class ManyToOneRNN:
    def __init__(self, n_in=3, n_hidden=5, n_out=2):
        rng = np.random.default_rng(3)
        self.W_xh = rng.normal(0.0, 0.5, (n_in, n_hidden))
        self.W_hh = rng.normal(0.0, 0.3, (n_hidden, n_hidden))
        self.b_h = np.full(n_hidden, 0.1)
        self.W_hy = rng.normal(0.0, 0.5, (n_hidden, n_out))
        self.b_y = np.zeros(n_out)

    def forward(self, x):
        T, B, _ = x.shape
        self.inputs = x
        self.states = np.zeros((T + 1, B, self.W_hh.shape[0]))  # states[0] = h0 = 0
        for t in range(T):
            a = x[t] @ self.W_xh + self.states[t] @ self.W_hh + self.b_h
            self.states[t + 1] = np.maximum(a, 0.0)
        self.prob = 1.0 / (1.0 + np.exp(-(self.states[T] @ self.W_hy + self.b_y)))
        return self.prob

    def backward(self, y):
        T = len(self.inputs)
        dz = (self.prob - y) / y.size  # d mean-BCE / d logits, for a sigmoid output
        self.dW_hy = self.states[T].T @ dz
        self.db_y = dz.sum(axis=0)
        self.dW_xh = np.zeros_like(self.W_xh)
        self.dW_hh = np.zeros_like(self.W_hh)
        self.db_h = np.zeros_like(self.b_h)
        dh = dz @ self.W_hy.T
        for t in reversed(range(T)):
            da = dh * (self.states[t + 1] > 0)
            self.dW_xh += self.inputs[t].T @ da
            self.dW_hh += self.states[t].T @ da
            self.db_h += da.sum(axis=0)
            dh = da @ self.W_hh.T
