"""A vanilla RNN in the style of Stanford cs231n's assignment 3 (``rnn_layers.py``).

Convention: row vectors (``x.dot(Wx)``): ``Wx (D, H)``, ``Wh (H, H)``, ``b (H,)``, and a temporal
affine output layer ``W_out (H, M)``, ``b_out (M,)``; a minibatch, batch-major ``x (N, T, D)``,
``y (N, T, M)``; an object with a ``params`` dict, ``forward(x)`` and ``backward(y)`` returning a
dict of gradients keyed like ``params``, plus ``"x"`` and ``"h0"``.
Spec: tanh hidden, identity output, squared error averaged over every entry of y (``mean``), an
output at every step.
Planted bug: none (correct).
"""

import numpy as np

DOCTOR = {
    "learner": "VanillaRNN",
    "check": {"activation": "tanh", "loss": "mse", "reduction": "mean", "data": "batch-major"},
    "roles": {"Wx": "W_ih", "Wh": "W_hh", "b": "b", "W_out": "W_ho", "b_out": "b_o"},
    "layout": "row",
    "bug": None,
}


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x.dot(Wx) + prev_h.dot(Wh) + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    dx = da.dot(Wx.T)
    dprev_h = da.dot(Wh.T)
    dWx = x.T.dot(da)
    dWh = prev_h.T.dot(da)
    db = da.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    cache = []
    prev_h = h0
    for t in range(T):
        prev_h, step_cache = rnn_step_forward(x[:, t, :], prev_h, Wx, Wh, b)
        h[:, t, :] = prev_h
        cache.append(step_cache)
    return h, cache


def rnn_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx = np.zeros((N, T, D))
    dWx, dWh, db = np.zeros((D, H)), np.zeros((H, H)), np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        dx_t, dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])
        dx[:, t, :] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


def temporal_affine_forward(x, w, b):
    N, T, D = x.shape
    M = b.shape[0]
    out = x.reshape(N * T, D).dot(w).reshape(N, T, M) + b
    cache = x, w, b, out
    return out, cache


def temporal_affine_backward(dout, cache):
    x, w, b, _ = cache
    N, T, D = x.shape
    M = b.shape[0]
    dx = dout.reshape(N * T, M).dot(w.T).reshape(N, T, D)
    dw = dout.reshape(N * T, M).T.dot(x.reshape(N * T, D)).T
    db = dout.sum(axis=(0, 1))
    return dx, dw, db


class VanillaRNN:
    def __init__(self, input_dim=4, hidden_dim=6, output_dim=3):
        rng = np.random.default_rng(2)
        self.params = {
            "Wx": rng.standard_normal((input_dim, hidden_dim)) / np.sqrt(input_dim),
            "Wh": rng.standard_normal((hidden_dim, hidden_dim)) / np.sqrt(hidden_dim),
            "b": np.zeros(hidden_dim),
            "W_out": rng.standard_normal((hidden_dim, output_dim)) / np.sqrt(hidden_dim),
            "b_out": np.zeros(output_dim),
        }

    def forward(self, x):
        p = self.params
        h0 = np.zeros((x.shape[0], p["Wh"].shape[0]))
        h, self.rnn_cache = rnn_forward(x, h0, p["Wx"], p["Wh"], p["b"])
        self.scores, self.affine_cache = temporal_affine_forward(h, p["W_out"], p["b_out"])
        return self.scores

    def backward(self, y):
        dscores = 2 * (self.scores - y) / y.size  # loss = np.mean((scores - y) ** 2)
        dh, dW_out, db_out = temporal_affine_backward(dscores, self.affine_cache)
        dx, dh0, dWx, dWh, db = rnn_backward(dh, self.rnn_cache)
        return {"Wx": dWx, "Wh": dWh, "b": db, "W_out": dW_out, "b_out": db_out, "x": dx, "h0": dh0}
