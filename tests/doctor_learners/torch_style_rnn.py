"""A NumPy RNN written against PyTorch's ``nn.RNN`` layout: weights ``(out, in)``, ``x @ W.T``.

Convention: column layout in the doctor's sense, weights ``(out, in)``: ``weight_ih (H, I)``,
``weight_hh (H, H)``, ``bias_ih (H,)``, ``weight_ho (O, H)``, ``bias_ho (O,)``, applied to row
data as ``x[t] @ weight_ih.T``; time-major ``x (T, B, I)``, one-hot ``y (T, B, O)``; a function
``rnn_grads(x, y)`` over the module's ``params`` dict, returning gradients keyed like ``params``.
Spec: tanh hidden, softmax output, cross-entropy averaged over the T·B predictions (``mean``), an
output at every step. The names are not conventional ones: the check is given them
(``--map weight_ih=W_ih,...``).
Planted bug: none (correct).
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
    "bug": None,
}

I, H, O = 3, 6, 4
_k = 1 / np.sqrt(H)
_rng = np.random.default_rng(5)
params = {
    "weight_ih": _rng.uniform(-_k, _k, (H, I)),
    "weight_hh": _rng.uniform(-_k, _k, (H, H)),
    "bias_ih": _rng.uniform(-_k, _k, H),
    "weight_ho": _rng.uniform(-_k, _k, (O, H)),
    "bias_ho": _rng.uniform(-_k, _k, O),
}


def rnn_grads(x, y):
    p = params
    T, B, _ = x.shape
    hs = [np.zeros((B, H))]
    logits = []
    for t in range(T):
        hs.append(np.tanh(x[t] @ p["weight_ih"].T + hs[-1] @ p["weight_hh"].T + p["bias_ih"]))
        logits.append(hs[-1] @ p["weight_ho"].T + p["bias_ho"])
    z = np.stack(logits)  # (T, B, O)
    z = z - z.max(axis=-1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    dz = (prob - y) / (T * B)  # F.cross_entropy's mean over the T·B predictions
    grads = {name: np.zeros_like(w) for name, w in p.items()}
    dh_next = np.zeros((B, H))
    for t in reversed(range(T)):
        grads["weight_ho"] += dz[t].T @ hs[t + 1]
        grads["bias_ho"] += dz[t].sum(axis=0)
        dh = dz[t] @ p["weight_ho"] + dh_next
        da = dh * (1 - hs[t + 1] ** 2)
        grads["weight_ih"] += da.T @ x[t]
        grads["weight_hh"] += da.T @ hs[t]
        grads["bias_ih"] += da.sum(axis=0)
        dh_next = da @ p["weight_hh"]
    return grads
