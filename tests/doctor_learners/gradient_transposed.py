"""A plain function that builds ``dW_hh`` with ``np.outer`` the wrong way round.

Convention: row vectors: ``W_ih (I, H)``, ``W_hh (H, H)``, ``b (H,)``, ``W_ho (H, O)``, ``b_o (O,)``;
one sequence ``x (T, I)``, ``y (T, O)``; a function ``bptt(x, y)`` over the module's ``weights``
dict, returning ``d<name>`` gradients.
Spec: ReLU hidden, identity output, half squared error summed, an output at every step.
Planted bug: ``gradient-transposed``: ``dW_hh += np.outer(da, h_prev)`` is ``dW_hhᵀ``; ``W_hh``
is square, so the shapes do not give it away (``dW_ih`` is built the right way round).
"""

import numpy as np

DOCTOR = {
    "learner": "bptt",
    "weights": "weights",
    "check": {"activation": "relu", "loss": "half_mse", "data": "sequence"},
    "roles": {"W_ih": "W_ih", "W_hh": "W_hh", "b": "b", "W_ho": "W_ho", "b_o": "b_o"},
    "layout": "row",
    "bug": "gradient-transposed",
}

_rng = np.random.default_rng(16)
weights = {
    "W_ih": _rng.normal(0, 0.5, (3, 4)),
    "W_hh": _rng.normal(0, 0.5, (4, 4)),
    "b": np.full(4, 0.1),
    "W_ho": _rng.normal(0, 0.5, (4, 2)),
    "b_o": np.zeros(2),
}


def bptt(x, y):
    w = weights
    T, H = len(x), w["W_hh"].shape[0]
    hs = [np.zeros(H)]
    for t in range(T):
        hs.append(np.maximum(0, x[t] @ w["W_ih"] + hs[-1] @ w["W_hh"] + w["b"]))
    g = {"d" + k: np.zeros_like(v) for k, v in w.items()}
    dh_next = np.zeros(H)
    for t in reversed(range(T)):
        dy = hs[t + 1] @ w["W_ho"] + w["b_o"] - y[t]
        g["dW_ho"] += np.outer(hs[t + 1], dy)
        g["db_o"] += dy
        da = (dy @ w["W_ho"].T + dh_next) * (hs[t + 1] > 0)
        g["dW_ih"] += np.outer(x[t], da)
        g["dW_hh"] += np.outer(da, hs[t])
        g["db"] += da
        dh_next = da @ w["W_hh"].T
    return g
