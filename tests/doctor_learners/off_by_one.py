"""A step-list RNN whose ``dW_hh`` pairs δa_t with h_t instead of h_{t-1}.

Convention: row vectors: ``W_x (I, H)``, ``W_h (H, H)``, ``b_h (H,)``, ``W_y (H, O)``, ``b_y (O,)``;
a list of T arrays ``(B, I)``, targets ``(B, O)`` ("steps"); an object with ``forward(xs)`` and
``backward(xs, ys)`` returning ``d<name>`` gradients.
Spec: tanh hidden, identity output, squared error summed, an output at every step.
Planted bug: ``off-by-one``: ``dW_h += hs[t + 1].T @ da`` (h_t, this step's own state) where
``hs[t].T @ da`` (h_{t-1}, the state that went into the step) is due.
"""

import numpy as np

DOCTOR = {
    "learner": "StepRNN",
    "check": {"data": "steps"},
    "roles": {"W_x": "W_ih", "W_h": "W_hh", "b_h": "b", "W_y": "W_ho", "b_y": "b_o"},
    "layout": "row",
    "bug": "off-by-one",
}


class StepRNN:
    def __init__(self, n_in=4, n_hidden=3, n_out=2):
        rng = np.random.default_rng(17)
        self.W_x = rng.normal(0, 0.5, (n_in, n_hidden))
        self.W_h = rng.normal(0, 0.5, (n_hidden, n_hidden))
        self.b_h = np.zeros(n_hidden)
        self.W_y = rng.normal(0, 0.5, (n_hidden, n_out))
        self.b_y = np.zeros(n_out)

    def forward(self, xs):
        self.hs = [np.zeros((xs[0].shape[0], self.W_h.shape[0]))]  # hs[t] is h_t; hs[0] = h_0
        self.outs = []
        for x in xs:
            self.hs.append(np.tanh(x @ self.W_x + self.hs[-1] @ self.W_h + self.b_h))
            self.outs.append(self.hs[-1] @ self.W_y + self.b_y)
        return self.outs

    def backward(self, xs, ys):
        g = {k: np.zeros_like(getattr(self, k)) for k in ("W_x", "W_h", "b_h", "W_y", "b_y")}
        dh_next = np.zeros_like(self.hs[0])
        for t in reversed(range(len(xs))):
            dy = 2 * (self.outs[t] - ys[t])
            g["W_y"] += self.hs[t + 1].T @ dy
            g["b_y"] += dy.sum(axis=0)
            da = (dy @ self.W_y.T + dh_next) * (1 - self.hs[t + 1] ** 2)
            g["W_x"] += xs[t].T @ da
            g["W_h"] += self.hs[t + 1].T @ da
            g["b_h"] += da.sum(axis=0)
            dh_next = da @ self.W_h.T
        return {"d" + k: v for k, v in g.items()}
