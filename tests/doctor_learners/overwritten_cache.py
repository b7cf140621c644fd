"""A time-major RNN whose list of states holds T references to one buffer, updated in place.

Convention: row vectors: ``W_ih (I, H)``, ``W_hh (H, H)``, ``b (H,)``, ``W_ho (H, O)``, ``b_o (O,)``;
time-major ``x (T, B, I)``, ``y (T, B, O)``; an object with ``forward(x)`` and ``backward(y)``
returning a dict of ``d<name>`` gradients.
Spec: tanh hidden, identity output, squared error summed, an output at every step.
Planted bug: ``overwritten-cache``: ``h[:] = np.tanh(...)`` then ``self.hs.append(h)`` appends the
same array every step, so the forward's outputs are right (each is computed before the next
write) but after the loop every cached h_t, t = 1..T, holds h_T; ``hs[0]``, the initial state, is
a separate array.
"""

import numpy as np

DOCTOR = {
    "learner": "CachedRNN",
    "check": {"data": "time-major"},
    "roles": {"W_ih": "W_ih", "W_hh": "W_hh", "b": "b", "W_ho": "W_ho", "b_o": "b_o"},
    "layout": "row",
    "bug": "overwritten-cache",
}


class CachedRNN:
    def __init__(self, n_in=2, n_hidden=4, n_out=3):
        rng = np.random.default_rng(24)
        self.W_ih = rng.normal(0, 0.5, (n_in, n_hidden))
        self.W_hh = rng.normal(0, 0.5, (n_hidden, n_hidden))
        self.b = np.zeros(n_hidden)
        self.W_ho = rng.normal(0, 0.5, (n_hidden, n_out))
        self.b_o = np.zeros(n_out)

    def forward(self, x):
        self.x = x
        h0 = np.zeros((x.shape[1], self.W_hh.shape[0]))
        self.hs = [h0]
        h = np.zeros_like(h0)  # one buffer, reused every step
        self.outs = []
        for x_t in x:
            h[:] = np.tanh(x_t @ self.W_ih + self.hs[-1] @ self.W_hh + self.b)
            self.hs.append(h)
            self.outs.append(h @ self.W_ho + self.b_o)
        return np.stack(self.outs)

    def backward(self, y):
        g = {k: np.zeros_like(getattr(self, k)) for k in ("W_ih", "W_hh", "b", "W_ho", "b_o")}
        dh_next = np.zeros_like(self.hs[0])
        for t in reversed(range(len(self.x))):
            dy = 2 * (self.outs[t] - y[t])
            g["W_ho"] += self.hs[t + 1].T @ dy
            g["b_o"] += dy.sum(axis=0)
            da = (dy @ self.W_ho.T + dh_next) * (1 - self.hs[t + 1] ** 2)
            g["W_ih"] += self.x[t].T @ da
            g["W_hh"] += self.hs[t].T @ da
            g["b"] += da.sum(axis=0)
            dh_next = da @ self.W_hh.T
        return {"d" + k: v for k, v in g.items()}
