"""A step-list RNN that takes the sigmoid's derivative twice: once in a helper, once inline.

Convention: row vectors: ``W_in (I, H)``, ``W_rec (H, H)``, ``b_rec (H,)``, ``W_out (H, O)``,
``b_out (O,)``; a list of T arrays ``(B, I)`` and targets ``(B, O)`` ("steps"); an object with
``forward(xs)`` and ``backward(xs, ys)`` returning ``d<name>`` gradients.
Spec: sigmoid hidden, identity output, squared error averaged over y's entries (``mean``), an
output at every step.
Planted bug: ``activation-derivative-twice``: ``dh = backprop_sigmoid(dh, h)`` and then
``da = dh * h * (1 - h)`` again, so δa_t = δh_t ⊙ (h_t(1 - h_t))².
"""

import numpy as np

DOCTOR = {
    "learner": "TwiceRNN",
    "check": {"activation": "sigmoid", "loss": "mse", "reduction": "mean", "data": "steps"},
    "roles": {"W_in": "W_ih", "W_rec": "W_hh", "b_rec": "b", "W_out": "W_ho", "b_out": "b_o"},
    "layout": "row",
    "bug": "activation-derivative-twice",
}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def backprop_sigmoid(grad, out):
    """The gradient through y = σ(z), from the output y."""
    return grad * out * (1.0 - out)


class TwiceRNN:
    def __init__(self, n_in=3, n_hidden=6, n_out=2):
        rng = np.random.default_rng(13)
        self.W_in = rng.uniform(-1, 1, (n_in, n_hidden))
        self.W_rec = rng.uniform(-1, 1, (n_hidden, n_hidden))
        self.b_rec = np.zeros(n_hidden)
        self.W_out = rng.uniform(-1, 1, (n_hidden, n_out))
        self.b_out = np.zeros(n_out)

    def forward(self, xs):
        self.hs = [np.zeros((xs[0].shape[0], self.W_rec.shape[0]))]
        self.outs = []
        for x in xs:
            self.hs.append(sigmoid(x @ self.W_in + self.hs[-1] @ self.W_rec + self.b_rec))
            self.outs.append(self.hs[-1] @ self.W_out + self.b_out)
        return self.outs

    def backward(self, xs, ys):
        n = len(ys) * ys[0].size  # mean over every entry of y
        g = {k: np.zeros_like(getattr(self, k)) for k in ("W_in", "W_rec", "b_rec", "W_out", "b_out")}
        dh_next = np.zeros_like(self.hs[0])
        for t in reversed(range(len(xs))):
            dout = 2 * (self.outs[t] - ys[t]) / n
            g["W_out"] += self.hs[t + 1].T @ dout
            g["b_out"] += dout.sum(axis=0)
            h = self.hs[t + 1]
            dh = backprop_sigmoid(dout @ self.W_out.T + dh_next, h)
            da = dh * h * (1 - h)
            g["W_in"] += xs[t].T @ da
            g["W_rec"] += self.hs[t].T @ da
            g["b_rec"] += da.sum(axis=0)
            dh_next = da @ self.W_rec.T
        return {"d" + k: v for k, v in g.items()}
