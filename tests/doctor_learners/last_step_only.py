"""A time-major RNN that assigns each step's weight-gradient term instead of adding it.

Convention: row vectors: ``Wxh (I, H)``, ``Whh (H, H)``, ``bh (H,)``, ``Why (H, O)``, ``by (O,)``;
time-major ``x (T, B, I)``, ``y (T, B, O)``; an object with ``forward(x)`` and ``backward(y)``
that sets ``self.dWxh`` etc.
Spec: tanh hidden, identity output, squared error averaged over y's entries (``mean``), an output
at every step.
Planted bug: ``last-step-only``: the δs are carried back in time correctly, but the weight
gradients are then gathered in a forward loop with ``=`` where ``+=`` is due, so each ends up
holding its step-T term alone (``x_Tᵀ δa_T``, ``h_{T-1}ᵀ δa_T``, ``h_Tᵀ δo_T``, ...).
"""

import numpy as np

DOCTOR = {
    "learner": "LoopRNN",
    "check": {"reduction": "mean", "data": "time-major"},
    "roles": {"Wxh": "W_ih", "Whh": "W_hh", "bh": "b", "Why": "W_ho", "by": "b_o"},
    "layout": "row",
    "bug": "last-step-only",
}


class LoopRNN:
    def __init__(self, n_in=3, n_hidden=4, n_out=2):
        rng = np.random.default_rng(10)
        self.Wxh = rng.normal(0, 0.5, (n_in, n_hidden))
        self.Whh = rng.normal(0, 0.5, (n_hidden, n_hidden))
        self.bh = np.zeros(n_hidden)
        self.Why = rng.normal(0, 0.5, (n_hidden, n_out))
        self.by = np.zeros(n_out)

    def forward(self, x):
        self.x = x
        self.hs = [np.zeros((x.shape[1], self.Whh.shape[0]))]
        for x_t in x:
            self.hs.append(np.tanh(x_t @ self.Wxh + self.hs[-1] @ self.Whh + self.bh))
        self.y_hat = np.stack(self.hs[1:]) @ self.Why + self.by
        return self.y_hat

    def backward(self, y):
        T = len(self.x)
        dy = 2 * (self.y_hat - y) / y.size
        das = [None] * T
        dh_next = np.zeros_like(self.hs[0])
        for t in reversed(range(T)):
            das[t] = (dy[t] @ self.Why.T + dh_next) * (1 - self.hs[t + 1] ** 2)
            dh_next = das[t] @ self.Whh.T
        for t in range(T):
            self.dWxh = self.x[t].T @ das[t]
            self.dWhh = self.hs[t].T @ das[t]
            self.dbh = das[t].sum(axis=0)
            self.dWhy = self.hs[t + 1].T @ dy[t]
            self.dby = dy[t].sum(axis=0)
