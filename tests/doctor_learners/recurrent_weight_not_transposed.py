"""A column-vector minibatch RNN that sends δ back in time through ``Whh`` instead of ``Whhᵀ``.

Convention: column vectors: ``Wxh (H, I)``, ``Whh (H, H)``, ``bh (H, 1)``, ``Why (O, H)``,
``by (O, 1)``; a list of T arrays ``(I, B)``, targets ``(O, B)`` ("column-steps"); an object with
``forward(xs)`` and ``backward(ys)`` that fills ``self.grads`` with ``d<name>`` entries.
Spec: tanh hidden, identity output, squared error summed, an output at every step.
Planted bug: ``recurrent-weight-not-transposed``: ``dh_next = self.Whh @ da`` where
``self.Whh.T @ da`` is due; ``Whh`` is square, so NumPy says nothing.
"""

import numpy as np

DOCTOR = {
    "learner": "ColumnRNN",
    "check": {"data": "column-steps"},
    "roles": {"Wxh": "W_ih", "Whh": "W_hh", "bh": "b", "Why": "W_ho", "by": "b_o"},
    "layout": "column",
    "bug": "recurrent-weight-not-transposed",
}


class ColumnRNN:
    def __init__(self, n_in=2, n_hidden=5, n_out=3):
        rng = np.random.default_rng(15)
        self.Wxh = rng.normal(0, 0.5, (n_hidden, n_in))
        self.Whh = rng.normal(0, 0.5, (n_hidden, n_hidden))
        self.bh = np.zeros((n_hidden, 1))
        self.Why = rng.normal(0, 0.5, (n_out, n_hidden))
        self.by = np.zeros((n_out, 1))
        self.grads = {}

    def forward(self, xs):
        self.xs = xs
        self.hs = [np.zeros((self.Whh.shape[0], xs[0].shape[1]))]
        self.ys = []
        for x in xs:
            self.hs.append(np.tanh(self.Wxh @ x + self.Whh @ self.hs[-1] + self.bh))
            self.ys.append(self.Why @ self.hs[-1] + self.by)
        return self.ys

    def backward(self, ys):
        g = {k: np.zeros_like(getattr(self, k)) for k in ("Wxh", "Whh", "bh", "Why", "by")}
        dh_next = np.zeros_like(self.hs[0])
        for t in reversed(range(len(self.xs))):
            dy = 2 * (self.ys[t] - ys[t])
            g["Why"] += dy @ self.hs[t + 1].T
            g["by"] += dy.sum(axis=1, keepdims=True)
            dh = self.Why.T @ dy + dh_next
            da = dh * (1 - self.hs[t + 1] ** 2)
            g["Wxh"] += da @ self.xs[t].T
            g["Whh"] += da @ self.hs[t].T
            g["bh"] += da.sum(axis=1, keepdims=True)
            dh_next = self.Whh @ da
        self.grads = {"d" + k: v for k, v in g.items()}
