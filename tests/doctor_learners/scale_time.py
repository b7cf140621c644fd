"""cs231n's temporal softmax loss (averaged over the minibatch only) against a per-prediction mean.

Convention: row vectors: ``Wx (D, H)``, ``Wh (H, H)``, ``b (H,)``, ``W_vocab (H, V)``,
``b_vocab (V,)`` in a ``params`` dict; batch-major ``x (N, T, D)``, one-hot ``y (N, T, V)``; an
object with ``forward(x)`` and ``backward(y)`` returning gradients keyed like ``params``.
Spec: tanh hidden, softmax output, cross-entropy averaged over the T·B predictions (``mean``, as
``torch.nn.functional.cross_entropy`` does), an output at every step.
Planted bug: ``scale``, a factor of T: the loss is summed over time and divided by N only, as in
cs231n's ``temporal_softmax_loss``, so every gradient is T times the per-prediction mean's.
"""

import numpy as np

DOCTOR = {
    "learner": "CaptioningRNN",
    "check": {"output": "softmax", "loss": "cross_entropy", "reduction": "mean", "data": "batch-major"},
    "roles": {"Wx": "W_ih", "Wh": "W_hh", "b": "b", "W_vocab": "W_ho", "b_vocab": "b_o"},
    "layout": "row",
    "bug": "scale",
    "detail": "a factor of T = ",  # ... and the doctor's T
}


def temporal_softmax_loss(x, y):
    N, T, V = x.shape
    x_flat, y_flat = x.reshape(N * T, V), y.reshape(N * T, V)
    probs = np.exp(x_flat - np.max(x_flat, axis=1, keepdims=True))
    probs /= np.sum(probs, axis=1, keepdims=True)
    loss = -np.sum(y_flat * np.log(probs)) / N
    dx_flat = (probs - y_flat) / N
    return loss, dx_flat.reshape(N, T, V)


class CaptioningRNN:
    def __init__(self, input_dim=3, hidden_dim=4, vocab_size=5):
        rng = np.random.default_rng(21)
        self.params = {
            "Wx": rng.standard_normal((input_dim, hidden_dim)) / np.sqrt(input_dim),
            "Wh": rng.standard_normal((hidden_dim, hidden_dim)) / np.sqrt(hidden_dim),
            "b": np.zeros(hidden_dim),
            "W_vocab": rng.standard_normal((hidden_dim, vocab_size)) / np.sqrt(hidden_dim),
            "b_vocab": np.zeros(vocab_size),
        }

    def forward(self, x):
        p = self.params
        N, T, _ = x.shape
        self.x = x
        self.h = np.zeros((N, T + 1, p["Wh"].shape[0]))  # h[:, 0] is h0
        for t in range(T):
            self.h[:, t + 1] = np.tanh(x[:, t].dot(p["Wx"]) + self.h[:, t].dot(p["Wh"]) + p["b"])
        self.scores = self.h[:, 1:].dot(p["W_vocab"]) + p["b_vocab"]
        return self.scores

    def backward(self, y):
        p = self.params
        N, T, _ = self.x.shape
        self.loss, dscores = temporal_softmax_loss(self.scores, y)
        grads = {
            "W_vocab": np.einsum("nth,ntv->hv", self.h[:, 1:], dscores),
            "b_vocab": dscores.sum(axis=(0, 1)),
        }
        dh = dscores.dot(p["W_vocab"].T)
        grads["Wx"], grads["Wh"], grads["b"] = (
            np.zeros_like(p["Wx"]),
            np.zeros_like(p["Wh"]),
            np.zeros_like(p["b"]),
        )
        dprev = np.zeros((N, p["Wh"].shape[0]))
        for t in reversed(range(T)):
            da = (dh[:, t] + dprev) * (1 - self.h[:, t + 1] ** 2)
            grads["Wx"] += self.x[:, t].T.dot(da)
            grads["Wh"] += self.h[:, t].T.dot(da)
            grads["b"] += da.sum(axis=0)
            dprev = da.dot(p["Wh"].T)
        return grads
