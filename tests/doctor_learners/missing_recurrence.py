"""min-char-rnn's ``lossFun`` with the recurrent term forgotten: δ does not flow back in time.

Convention: column vectors: ``Wxh (H, I)``, ``Whh (H, H)``, ``Why (O, H)``, ``bh (H, 1)``,
``by (O, 1)``; one sequence as a list of T column vectors ``(I, 1)``, one-hot targets ``(O, 1)``
("column-steps"); a function ``lossFun(inputs, targets)`` over the module's globals.
Spec: tanh hidden, softmax output, cross-entropy summed, an output at every step.
Planted bug: ``missing-recurrence``: ``dh = np.dot(Why.T, dy)`` without ``+ dhnext``, so each
step's δ comes from its own output only and never from the step after it.
"""

import numpy as np

DOCTOR = {
    "learner": "lossFun",
    "weights": ("Wxh", "Whh", "Why", "bh", "by"),
    "check": {"output": "softmax", "loss": "cross_entropy", "data": "column-steps"},
    "roles": {"Wxh": "W_ih", "Whh": "W_hh", "bh": "b", "Why": "W_ho", "by": "b_o"},
    "layout": "column",
    "batched": False,  # one sequence: (I, 1) columns, like Karpathy's
    "bug": "missing-recurrence",
}

vocab_size, hidden_size = 5, 6
rng = np.random.default_rng(11)
Wxh = rng.standard_normal((hidden_size, vocab_size)) * 0.01
Whh = rng.standard_normal((hidden_size, hidden_size)) * 0.01
Why = rng.standard_normal((vocab_size, hidden_size)) * 0.01
bh = np.zeros((hidden_size, 1))
by = np.zeros((vocab_size, 1))


def lossFun(inputs, targets):
    xs, hs, ps = {}, {}, {}
    hs[-1] = np.zeros((hidden_size, 1))
    for t in range(len(inputs)):
        xs[t] = inputs[t]
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
        ys = np.dot(Why, hs[t]) + by
        ps[t] = np.exp(ys) / np.sum(np.exp(ys))
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    for t in reversed(range(len(inputs))):
        dy = ps[t] - targets[t]
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy)  # backprop into h
        dhraw = (1 - hs[t] * hs[t]) * dh
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
    return {"dWxh": dWxh, "dWhh": dWhh, "dWhy": dWhy, "dbh": dbh, "dby": dby}
