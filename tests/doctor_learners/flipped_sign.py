"""A PyTorch-layout NumPy RNN whose softmax cross-entropy gradient is ``y - p``.

Convention: weights ``(out, in)`` (column layout): ``weight_ih (H, I)``, ``weight_hh (H, H)``,
``bias_ih (H,)``, ``weight_ho (O, H)``, ``bias_ho (O,)``, applied as ``x[t] @ weight_ih.T``;
time-major ``x (T, B, I)``, one-hot ``y (T, B, O)``; a function ``rnn_grads(x, y)`` over the
module's ``params`` dict.
Spec: tanh hidden, softmax output, cross-entropy averaged over the T·B predictions (``mean``), an
output at every step.
Planted bug: ``flipped-sign``: ``dz = (y - prob) / (T * B)`` where ``prob - y`` (ŷ - y) is due, so
every gradient points uphill.
"""

import numpy as np

ROLES = {"weight_ih": "W_ih", "weight_hh": "W_hh", "bias_ih": "b", "weight_ho": "W_ho", "bias_ho": "b_o"}
DOCTOR = {
    "learner": "rnn_grads",
    "weights": "params",
    "check": {
        "output": "softmax",
        "loss": "cross_entropy",
        "reduction": "mean",
        "data": "time-major",
        "names": ROLES,
    },
    "roles": ROLES,
    "layout": "column",
    "bug": "flipped-sign",
}

I, H, O = 4, 5, 3
_rng = np.random.default_rng(19)
params = {
    "weight_ih": _rng.uniform(-0.5, 0.5, (H, I)),
    "weight_hh": _rng.uniform(-0.5, 0.5, (H, H)),
    "bias_ih": _rng.uniform(-0.5, 0.5, H),
    "weight_ho": _rng.uniform(-0.5, 0.5, (O, H)),
    "bias_ho": _rng.uniform(-0.5, 0.5, O),
}


def rnn_grads(x, y):
    p = params
    T, B, _ = x.shape
    hs = [np.zeros((B, H))]
    for t in range(T):
        hs.append(np.tanh(x[t] @ p["weight_ih"].T + hs[-1] @ p["weight_hh"].T + p["bias_ih"]))
    z = np.stack(hs[1:]) @ p["weight_ho"].T + p["bias_ho"]  # (T, B, O)
    prob = np.exp(z - z.max(axis=-1, keepdims=True))
    prob /= prob.sum(axis=-1, keepdims=True)
    dz = (y - prob) / (T * B)
    grads = {name: np.zeros_like(w) for name, w in p.items()}
    dh_next = np.zeros((B, H))
    for t in reversed(range(T)):
        grads["weight_ho"] += dz[t].T @ hs[t + 1]
        grads["bias_ho"] += dz[t].sum(axis=0)
        da = (dz[t] @ p["weight_ho"] + dh_next) * (1 - hs[t + 1] ** 2)
        grads["weight_ih"] += da.T @ x[t]
        grads["weight_hh"] += da.T @ hs[t]
        grads["bias_ih"] += da.sum(axis=0)
        dh_next = da @ p["weight_hh"]
    return grads
