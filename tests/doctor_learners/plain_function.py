"""A plain function over a weights dict, one sequence as stacked arrays, in the reference's own names.

Convention: row vectors (``x[t] @ W_ih``): ``W_ih (I, H)``, ``W_hh (H, H)``, ``b (H,)``,
``W_ho (H, O)``, ``b_o (O,)``; one sequence ``x (T, I)``, ``y (T, O)``; a function
``bptt(x, y)`` over the module's ``weights`` dict, returning ``d<name>`` gradients, ``dx (T, I)``
and the per-step ``delta (T, H)`` (``δa_t``).
Spec: tanh hidden, identity output, squared error summed, an output at every step.
Planted bug: none (correct).
"""

import numpy as np

DOCTOR = {
    "learner": "bptt",
    "weights": "weights",
    "check": {"data": "sequence"},
    "roles": {"W_ih": "W_ih", "W_hh": "W_hh", "b": "b", "W_ho": "W_ho", "b_o": "b_o"},
    "layout": "row",
    "bug": None,
}

_rng = np.random.default_rng(6)
weights = {
    "W_ih": _rng.normal(0, 0.5, (2, 5)),
    "W_hh": _rng.normal(0, 0.5, (5, 5)),
    "b": np.zeros(5),
    "W_ho": _rng.normal(0, 0.5, (5, 3)),
    "b_o": np.zeros(3),
}


def bptt(x, y):
    w = weights
    T, H = len(x), w["W_hh"].shape[0]
    h = np.zeros((T + 1, H))  # h[0] is h0
    for t in range(T):
        h[t + 1] = np.tanh(x[t] @ w["W_ih"] + h[t] @ w["W_hh"] + w["b"])
    y_hat = h[1:] @ w["W_ho"] + w["b_o"]  # (T, O)
    dy = 2 * (y_hat - y)  # d Σ(ŷ - y)² / dŷ
    grads = {"dW_ho": h[1:].T @ dy, "db_o": dy.sum(axis=0)}
    dh_out = dy @ w["W_ho"].T  # (T, H): what each step's output sends back
    delta = np.zeros((T, H))
    carry = np.zeros(H)  # δh_t from step t + 1
    for t in reversed(range(T)):
        delta[t] = (dh_out[t] + carry) * (1 - h[t + 1] ** 2)
        carry = delta[t] @ w["W_hh"].T
    grads["dW_ih"] = x.T @ delta
    grads["dW_hh"] = h[:-1].T @ delta
    grads["db"] = delta.sum(axis=0)
    grads["dx"] = delta @ w["W_ih"].T
    grads["delta"] = delta
    return grads
