"""cs231n-style ``rnn_backward`` that returns the first step's δa as the initial state's gradient.

Convention: row vectors: ``Wx (D, H)``, ``Wh (H, H)``, ``b (H,)``, ``W_out (H, M)``, ``b_out (M,)``
in a ``params`` dict; batch-major ``x (N, T, D)``, ``y (N, T, M)``; an object with ``forward(x)``
and ``backward(y)`` returning gradients keyed like ``params``, plus ``"x"`` and ``"h0"``.
Spec: tanh hidden, identity output, squared error averaged over y's entries (``mean``), an
output at every step.
Planted bug: ``h0-gradient``: ``dh0 = da`` after the loop, the δ of the first step's
pre-activation, where ``da.dot(Wh.T)`` (δa_1 @ W_hhᵀ) is due; every other gradient is right.
"""

import numpy as np

DOCTOR = {
    "learner": "VanillaRNN",
    "check": {"loss": "mse", "reduction": "mean", "data": "batch-major"},
    "roles": {"Wx": "W_ih", "Wh": "W_hh", "b": "b", "W_out": "W_ho", "b_out": "b_o"},
    "layout": "row",
    "bug": "h0-gradient",
}


class VanillaRNN:
    def __init__(self, input_dim=5, hidden_dim=3, output_dim=2):
        rng = np.random.default_rng(22)
        self.params = {
            "Wx": rng.standard_normal((input_dim, hidden_dim)) / np.sqrt(input_dim),
            "Wh": rng.standard_normal((hidden_dim, hidden_dim)) / np.sqrt(hidden_dim),
            "b": np.zeros(hidden_dim),
            "W_out": rng.standard_normal((hidden_dim, output_dim)) / np.sqrt(hidden_dim),
            "b_out": np.zeros(output_dim),
        }

    def forward(self, x):
        p = self.params
        N, T, _ = x.shape
        self.x = x
        self.h = np.zeros((N, T + 1, p["Wh"].shape[0]))  # h[:, 0] is h0
        for t in range(T):
            self.h[:, t + 1] = np.tanh(x[:, t].dot(p["Wx"]) + self.h[:, t].dot(p["Wh"]) + p["b"])
        self.scores = self.h[:, 1:].dot(p["W_out"]) + p["b_out"]
        return self.scores

    def backward(self, y):
        p = self.params
        N, T, _ = self.x.shape
        dscores = 2 * (self.scores - y) / y.size
        grads = {"W_out": np.einsum("nth,ntm->hm", self.h[:, 1:], dscores), "b_out": dscores.sum(axis=(0, 1))}
        dh = dscores.dot(p["W_out"].T)
        grads["Wx"], grads["Wh"], grads["b"] = (
            np.zeros_like(p["Wx"]),
            np.zeros_like(p["Wh"]),
            np.zeros_like(p["b"]),
        )
        dx = np.zeros_like(self.x)
        dprev = np.zeros((N, p["Wh"].shape[0]))
        for t in reversed(range(T)):
            da = (dh[:, t] + dprev) * (1 - self.h[:, t + 1] ** 2)
            dx[:, t] = da.dot(p["Wx"].T)
            grads["Wx"] += self.x[:, t].T.dot(da)
            grads["Wh"] += self.h[:, t].T.dot(da)
            grads["b"] += da.sum(axis=0)
            dprev = da.dot(p["Wh"].T)
        grads["x"] = dx
        grads["h0"] = da
        return grads
