"""Andrej Karpathy's min-char-rnn ``lossFun``, as a function over module-level weights.

Convention: column vectors (``np.dot(Wxh, xs[t])``): ``Wxh (H, I)``, ``Whh (H, H)``, ``Why (O, H)``,
``bh (H, 1)``, ``by (O, 1)``; one sequence as a list of T column vectors ``(I, 1)`` and one-hot
targets ``(O, 1)`` ("column-steps"); per-step values in dicts keyed by t, ``hs[-1]`` the initial
state; a function ``lossFun(inputs, targets) -> gradients`` reading the module's globals.
Spec: tanh hidden, softmax output, cross-entropy summed over the steps, an output at every step.
Karpathy's inputs are character indices and he clips the gradients to [-5, 5]; here the inputs
are vectors and there is no clipping (clipping changes the gradient).
Planted bug: none (correct).
"""

import numpy as np

DOCTOR = {
    "learner": "lossFun",
    "weights": ("Wxh", "Whh", "Why", "bh", "by"),
    "check": {"activation": "tanh", "output": "softmax", "loss": "cross_entropy", "data": "column-steps"},
    "roles": {"Wxh": "W_ih", "Whh": "W_hh", "bh": "b", "Why": "W_ho", "by": "b_o"},
    "layout": "column",
    "batched": False,  # one sequence: (I, 1) columns, like Karpathy's
    "bug": None,
}

vocab_size, hidden_size = 6, 7
rng = np.random.default_rng(1)
Wxh = rng.standard_normal((hidden_size, vocab_size)) * 0.01  # input to hidden
Whh = rng.standard_normal((hidden_size, hidden_size)) * 0.01  # hidden to hidden
Why = rng.standard_normal((vocab_size, hidden_size)) * 0.01  # hidden to output
bh = np.zeros((hidden_size, 1))  # hidden bias
by = np.zeros((vocab_size, 1))  # output bias


def lossFun(inputs, targets, hprev=None):
    """inputs, targets: lists of column vectors; returns the gradients and the last hidden state."""
    if hprev is None:
        hprev = np.zeros((hidden_size, 1))
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    # forward pass
    for t in range(len(inputs)):
        xs[t] = inputs[t]
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)  # hidden state
        ys[t] = np.dot(Why, hs[t]) + by  # unnormalized log probabilities for next chars
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))  # probabilities for next chars
        loss += -np.sum(targets[t] * np.log(ps[t]))  # softmax (cross-entropy loss)
    # backward pass: compute gradients going backwards
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy -= targets[t]  # backprop into y
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext  # backprop into h
        dhraw = (1 - hs[t] * hs[t]) * dh  # backprop through tanh nonlinearity
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    return {"dWxh": dWxh, "dWhh": dWhh, "dWhy": dWhy, "dbh": dbh, "dby": dby, "dh0": dhnext}
