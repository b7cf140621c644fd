"""Training the binary adder to "trained": bptt against the same recipe in PyTorch.

Both engines use the default recipe of ``bptt.tasks.addition``: RNN(2, 16, tanh) -> Linear(16, 1),
BCE on logits, Adam lr 0.03, batches of 64 random 8-bit sums (drawn by the same NumPy code),
gradient clipping at 5, and the same stopping rule (every 25 steps: exact on the same held-out
long sums with every logit at least 3 from 0). Runs alternate between engines, one thread each.

    python benchmarks/addition_vs_torch.py            # 10 seeds
    python benchmarks/addition_vs_torch.py --seeds 2
    python benchmarks/addition_vs_torch.py --seeds 1 --repeat 21   # the default adder (seed 0), warm

With ``--repeat N`` each seed trains N times in each engine (alternating) and its time is the
median of those runs; the process has trained once before any run is timed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bptt.tasks.addition import PRESETS, make_batch, train
from bptt.tasks.addition.training import _check_set


def train_torch(seed: int, hidden: int = 16) -> tuple[int, float, bool]:
    """The default recipe in torch; returns (steps, seconds, converged)."""
    import torch

    recipe = PRESETS["default"]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    rnn = torch.nn.RNN(2, hidden, dtype=torch.float64)
    head = torch.nn.Linear(hidden, 1, dtype=torch.float64)
    params = [*rnn.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=recipe.lr)
    checks = [
        (torch.from_numpy(x), y[:, :, 0] > 0.5) for x, y in _check_set(np.random.default_rng([seed, 1]))
    ]
    start = time.perf_counter()
    for step in range(1, recipe.max_steps + 1):
        x, y = make_batch(8, recipe.batch_size, rng)
        opt.zero_grad()
        logits = head(rnn(torch.from_numpy(x))[0])
        torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(y)).backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.clip)
        opt.step()
        if step % recipe.check_every == 0:
            with torch.no_grad():
                outs = [head(rnn(x)[0])[:, :, 0].numpy() for x, _ in checks]
            exact = all(np.array_equal(o > 0, y) for o, (_, y) in zip(outs, checks, strict=True))
            if exact and min(float(np.abs(o).min()) for o in outs) >= recipe.margin:
                return step, time.perf_counter() - start, True
    return recipe.max_steps, time.perf_counter() - start, False


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--repeat", type=int, default=1, help="timed runs of each seed in each engine")
    args = p.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    ours, theirs = [], []
    with threadpool_limits(limits=1):
        if args.repeat > 1:
            train(seed=0), train_torch(0)  # warm: the first run in a process is slower
        for seed in range(args.seeds):
            mine, other = [], []
            for _ in range(args.repeat):
                _, history = train(seed=seed)
                time.sleep(0.05)
                steps, seconds, converged = train_torch(seed)
                time.sleep(0.05)
                mine.append(history.seconds)
                other.append(seconds)
            ours.append(statistics.median(mine))
            theirs.append(statistics.median(other))
            note = "" if converged else " (not converged)"
            print(
                f"seed {seed}: bptt {history.steps:>4} steps {1000 * ours[-1]:6.1f} ms | "
                f"torch {steps:>4} steps {1000 * theirs[-1]:6.1f} ms{note}",
                flush=True,
            )
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"median: bptt {1000 * a:.1f} ms, torch {1000 * b:.1f} ms, ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
