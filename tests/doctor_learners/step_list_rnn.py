"""An RNN that takes a list of per-step minibatches and spells its weights out in words.

Convention: row vectors (``x_t @ weight_input``): ``weight_input (I, H)``, ``weight_hidden (H, H)``,
``bias_hidden (H,)``, ``weight_output (H, O)``, ``bias_output (O,)``; a list of T arrays ``(B, I)``
and targets ``(B, O)`` ("steps"); an object with ``forward(xs)`` and ``backward(xs, ys)``
returning ``d<name>`` gradients, ``dx`` (a list like ``xs``) and ``dh0 (B, H)``.
Spec: sigmoid hidden, identity output, half squared error ``½Σ(ŷ - y)²`` summed, an output at
every step.
Planted bug: none (correct).
"""

import numpy as np

DOCTOR = {
    "learner": "StepRNN",
    "check": {"activation": "sigmoid", "loss": "half_mse", "data": "steps"},
    "roles": {
        "weight_input": "W_ih",
        "weight_hidden": "W_hh",
        "bias_hidden": "b",
        "weight_output": "W_ho",
        "bias_output": "b_o",
    },
    "layout": "row",
    "bug": None,
}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class StepRNN:
    def __init__(self, n_in=2, n_hidden=4, n_out=3):
        rng = np.random.default_rng(4)
        self.weight_input = rng.uniform(-1, 1, (n_in, n_hidden))
        self.weight_hidden = rng.uniform(-1, 1, (n_hidden, n_hidden))
        self.bias_hidden = np.zeros(n_hidden)
        self.weight_output = rng.uniform(-1, 1, (n_hidden, n_out))
        self.bias_output = np.zeros(n_out)

    def forward(self, xs):
        h = np.zeros((xs[0].shape[0], self.weight_hidden.shape[0]))
        self.hidden = [h]
        self.outputs = []
        for x in xs:
            h = sigmoid(x @ self.weight_input + h @ self.weight_hidden + self.bias_hidden)
            self.hidden.append(h)
            self.outputs.append(h @ self.weight_output + self.bias_output)
        return self.outputs

    def backward(self, xs, ys):
        grads = {
            name: np.zeros_like(getattr(self, name))
            for name in ("weight_input", "weight_hidden", "bias_hidden", "weight_output", "bias_output")
        }
        dx = [None] * len(xs)
        dh_next = np.zeros_like(self.hidden[0])
        for t in reversed(range(len(xs))):
            dout = self.outputs[t] - ys[t]  # d ½(ŷ - y)² / dŷ
            grads["weight_output"] += self.hidden[t + 1].T @ dout
            grads["bias_output"] += dout.sum(axis=0)
            dh = dout @ self.weight_output.T + dh_next
            h = self.hidden[t + 1]
            da = dh * h * (1 - h)
            grads["weight_input"] += xs[t].T @ da
            grads["weight_hidden"] += self.hidden[t].T @ da
            grads["bias_hidden"] += da.sum(axis=0)
            dx[t] = da @ self.weight_input.T
            dh_next = da @ self.weight_hidden.T
        out = {"d" + name: g for name, g in grads.items()}
        out["dx"] = dx
        out["dh0"] = dh_next
        return out
