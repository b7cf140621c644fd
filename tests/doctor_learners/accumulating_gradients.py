"""A time-major RNN whose gradient attributes are zeroed once, in ``__init__``, and never again.

Convention: row vectors: ``W_xh (I, H)``, ``W_hh (H, H)``, ``b_h (H,)``, ``W_hy (H, O)``,
``b_y (O,)``; time-major ``x (T, B, I)``, ``y (T, B, O)``; an object with ``forward(x)`` and
``backward(y)`` that adds into ``self.dW_xh`` etc.
Spec: tanh hidden, sigmoid output, binary cross-entropy summed, an output at every step.
Planted bug: ``accumulating-gradients``: ``backward`` adds to gradients that no call resets, so
the first call is right and the second returns the sum of both calls.
"""

import numpy as np

DOCTOR = {
    "learner": "TimeMajorRNN",
    "check": {"output": "sigmoid", "loss": "bce", "data": "time-major"},
    "roles": {"W_xh": "W_ih", "W_hh": "W_hh", "b_h": "b", "W_hy": "W_ho", "b_y": "b_o"},
    "layout": "row",
    "bug": "accumulating-gradients",
}

NAMES = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")


class TimeMajorRNN:
    def __init__(self, n_in=3, n_hidden=5, n_out=4):
        rng = np.random.default_rng(18)
        self.W_xh = rng.normal(0, 0.5, (n_in, n_hidden))
        self.W_hh = rng.normal(0, 0.5, (n_hidden, n_hidden))
        self.b_h = np.zeros(n_hidden)
        self.W_hy = rng.normal(0, 0.5, (n_hidden, n_out))
        self.b_y = np.zeros(n_out)
        for name in NAMES:
            setattr(self, "d" + name, np.zeros_like(getattr(self, name)))

    def forward(self, x):
        self.inputs = x
        self.hs = [np.zeros((x.shape[1], self.W_hh.shape[0]))]
        for x_t in x:
            self.hs.append(np.tanh(x_t @ self.W_xh + self.hs[-1] @ self.W_hh + self.b_h))
        self.p = 1 / (1 + np.exp(-(np.stack(self.hs[1:]) @ self.W_hy + self.b_y)))  # (T, B, O)
        return self.p

    def backward(self, y):
        dz = self.p - y  # summed BCE through the sigmoid
        dh_next = np.zeros_like(self.hs[0])
        for t in reversed(range(len(self.inputs))):
            self.dW_hy += self.hs[t + 1].T @ dz[t]
            self.db_y += dz[t].sum(axis=0)
            da = (dz[t] @ self.W_hy.T + dh_next) * (1 - self.hs[t + 1] ** 2)
            self.dW_xh += self.inputs[t].T @ da
            self.dW_hh += self.hs[t].T @ da
            self.db_h += da.sum(axis=0)
            dh_next = da @ self.W_hh.T
