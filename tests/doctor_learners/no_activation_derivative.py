"""cs231n-style step functions with the tanh derivative left out of the step backward.

Convention: row vectors: ``Wx (D, H)``, ``Wh (H, H)``, ``b (H,)``, ``W_out (H, M)``, ``b_out (M,)``
in a ``params`` dict; batch-major ``x (N, T, D)``, ``y (N, T, M)``; an object with ``forward(x)``
and ``backward(y)`` returning gradients keyed like ``params``, plus ``"x"``.
Spec: tanh hidden, sigmoid output, binary cross-entropy summed, an output at every step.
Planted bug: ``no-activation-derivative``: ``da = dnext_h`` where ``dnext_h * (1 - next_h**2)``
is due.
"""

import numpy as np

DOCTOR = {
    "learner": "SigmoidTagger",
    "check": {"output": "sigmoid", "loss": "bce", "data": "batch-major"},
    "roles": {"Wx": "W_ih", "Wh": "W_hh", "b": "b", "W_out": "W_ho", "b_out": "b_o"},
    "layout": "row",
    "bug": "no-activation-derivative",
}


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, _ = cache  # next_h, whose derivative belongs here
    da = dnext_h  # the pre-activation's gradient
    return da.dot(Wx.T), da.dot(Wh.T), x.T.dot(da), prev_h.T.dot(da), da.sum(axis=0)


class SigmoidTagger:
    def __init__(self, input_dim=3, hidden_dim=5, output_dim=2):
        rng = np.random.default_rng(12)
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
        prev_h = np.zeros((N, p["Wh"].shape[0]))
        self.h = np.zeros((N, T, p["Wh"].shape[0]))
        self.cache = []
        for t in range(T):
            next_h = np.tanh(x[:, t, :].dot(p["Wx"]) + prev_h.dot(p["Wh"]) + p["b"])
            self.cache.append((x[:, t, :], prev_h, p["Wx"], p["Wh"], next_h))
            self.h[:, t, :] = prev_h = next_h
        self.prob = 1 / (1 + np.exp(-(self.h.dot(p["W_out"]) + p["b_out"])))
        return self.prob

    def backward(self, y):
        p = self.params
        N, T, H = self.h.shape
        dscores = self.prob - y  # BCE through the sigmoid
        grads = {"W_out": self.h.reshape(N * T, H).T.dot(dscores.reshape(N * T, -1))}
        grads["b_out"] = dscores.sum(axis=(0, 1))
        dh = dscores.dot(p["W_out"].T)
        grads["Wx"], grads["Wh"], grads["b"] = (
            np.zeros_like(p["Wx"]),
            np.zeros_like(p["Wh"]),
            np.zeros_like(p["b"]),
        )
        dx = np.zeros((N, T, p["Wx"].shape[0]))
        dprev_h = np.zeros((N, H))
        for t in reversed(range(T)):
            dx[:, t, :], dprev_h, dWx, dWh, db = rnn_step_backward(dh[:, t, :] + dprev_h, self.cache[t])
            grads["Wx"] += dWx
            grads["Wh"] += dWh
            grads["b"] += db
        grads["x"] = dx
        return grads
