"""``bptt explain``: BPTT's chain rule with every shape, evaluated on the seed's network or a model."""

from __future__ import annotations

import argparse
from typing import Any

from .common import UsageError, load_model, positive, require_memory, seed

__all__ = ["HELP", "register", "run"]

HELP = "print BPTT's chain rule with every shape, evaluated"


def register(parser: argparse.ArgumentParser) -> None:
    """Declare ``bptt explain``'s flags."""
    add = parser.add_argument
    add("--model", help="explain a saved model instead of the seed's network")
    add("--input", type=positive, default=8, help="input size (default 8)")
    add("--hidden", type=positive, default=16, help="hidden size (default 16)")
    add("--output", type=positive, default=8, help="output size (default 8)")
    add("--steps", type=positive, default=2, help="time steps T (default 2)")
    add("--batch", type=positive, default=1, help="sequences B (default 1)")
    add("--activation", choices=["identity", "tanh", "sigmoid", "relu"], default="identity")
    add("--mistakes", action="store_true", help="also show the wrong products and their errors")
    add("--seed", type=seed, default=0, help="seed of the weights and data (default 0)")


def run(args: argparse.Namespace) -> int:
    """Print the explanation of one forward and backward pass."""
    import numpy as np

    from ..explain import explain

    rng = np.random.default_rng(args.seed)
    model, x = _saved(args, rng) if args.model is not None else _seeds_network(args, rng)
    print(explain(model, x, mistakes=args.mistakes, rng=rng))
    return 0


def _saved(args: argparse.Namespace, rng: Any) -> tuple[Any, Any]:
    """The model at ``--model`` and random 0/1 inputs of its input size."""
    model = load_model(args.model)
    width = sum(max(p.shape) for p in model.params.values())
    require_memory(8 * 16 * args.steps * args.batch * width, f"--steps {args.steps} --batch {args.batch}")
    first = model[0]
    inputs = getattr(first, "input_size", getattr(first, "in_features", None))
    if not isinstance(inputs, int):
        raise UsageError(f"cannot tell the input size of {args.model!r}: its first layer is {first!r}")
    return model, rng.integers(0, 2, (args.steps, args.batch, inputs)).astype(float)


def _seeds_network(args: argparse.Namespace, rng: Any) -> tuple[Any, Any]:
    """The seed's network: identity recurrence, no biases, sigmoid on the last state and the output."""
    from .. import RNN, Dense, Last, Sequential, Sigmoid

    I, H, O, T, B = args.input, args.hidden, args.output, args.steps, args.batch
    # weights, gradients and the deliberate mistakes' copies; states and δ per step
    require_memory(8 * (8 * H * (I + H + O) + 16 * T * B * (I + H + O)), "this network")
    rnn = RNN(I, H, activation=args.activation, bias=False, rng=rng)
    rnn.h0 = rng.normal(0.0, 0.5, (B, H))
    model = Sequential([rnn, Last(), Sigmoid(), Dense(H, O, bias=False, rng=rng), Sigmoid()])
    return model, rng.normal(size=(T, B, I))
