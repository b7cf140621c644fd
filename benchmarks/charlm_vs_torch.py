"""Character language model: bptt against the same recipe in PyTorch, and the n-gram baselines.

Both engines train an LSTM (or RNN) over one-hot characters -> Linear, softmax cross-entropy, Adam,
gradient clipping at 5 and truncated BPTT(k1, k2) over the same parallel streams of the shipped
corpus, for the same number of updates, on one thread. The table gives held-out bits per
character and the wall time per update.

    python benchmarks/charlm_vs_torch.py                      # LSTM 128, 1500 updates
    python benchmarks/charlm_vs_torch.py --cell rnn --steps 300
"""

from __future__ import annotations

import argparse
import math
import time

from bptt.tasks import charlm
from bptt.tbptt import windows


def train_torch(
    text: str, cell: str, hidden: int, steps: int, batch: int, k1: int, k2: int, seed: int
) -> tuple:
    """The charlm recipe in torch; returns (held-out bpc, seconds per update)."""
    import torch

    torch.manual_seed(seed)
    vocab = charlm.Vocabulary.of(text)
    V = len(vocab)
    train_ids, held = charlm.split(vocab.encode(text))
    xs, ys = charlm.streams(train_ids, batch)
    rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.RNN)(V, hidden, dtype=torch.float64)
    head = torch.nn.Linear(hidden, V, dtype=torch.float64)
    params = [*rnn.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=0.005)
    x_all = torch.nn.functional.one_hot(torch.from_numpy(xs), V).double()
    y_all = torch.from_numpy(ys)
    plan = windows(len(xs), k1, k2)
    step, start = 0, time.perf_counter()
    while step < steps:
        state = None  # each pass starts from zeros, as in bptt
        for j, (s, loss_from, e) in enumerate(plan):
            following = plan[j + 1][0] if j + 1 < len(plan) else len(xs)
            # Run to the next window's start, keep that state (cut from the graph), then finish.
            parts, carry = [], state
            if following > s:
                out, carry = rnn(x_all[s:following], state)
                parts.append(out)
            if e > following:
                parts.append(rnn(x_all[following:e], carry)[0])
            logits = head(torch.cat(parts)[loss_from - s :])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y_all[loss_from:e].reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            state = (
                None
                if carry is None
                else tuple(c.detach() for c in carry)
                if cell == "lstm"
                else carry.detach()
            )
            step += 1
            if step == steps:
                break
    seconds = (time.perf_counter() - start) / steps
    with torch.no_grad():
        out, _ = rnn(torch.nn.functional.one_hot(torch.from_numpy(held[:-1]), V).double()[:, None])
        ce = torch.nn.functional.cross_entropy(head(out[:, 0]), torch.from_numpy(held[1:]), reduction="mean")
    return float(ce) / math.log(2.0), seconds


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cell", choices=["rnn", "lstm"], default="lstm")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--k1", type=int, default=25)
    p.add_argument("--k2", type=int, default=50)
    args = p.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    text = charlm.default_text()
    vocab = charlm.Vocabulary.of(text)
    train_ids, held = charlm.split(vocab.encode(text))
    recipe = {"hidden": args.hidden, "steps": args.steps, "batch": args.batch, "k1": args.k1, "k2": args.k2}
    with threadpool_limits(limits=1):
        _, _, history = charlm.train(text, cell=args.cell, check_every=args.steps, **recipe)
        ours = history.seconds / args.steps
        theirs_bpc, theirs = train_torch(text, args.cell, seed=0, **recipe)
    rows = [
        ("unigram, add-one smoothing", charlm.unigram_bpc(train_ids, held, len(vocab)), None),
        ("bigram, add-one smoothing", charlm.bigram_bpc(train_ids, held, len(vocab)), None),
        (f"bptt {args.cell.upper()} {args.hidden}", history.bpc[-1], ours),
        (f"torch {args.cell.upper()} {args.hidden}", theirs_bpc, theirs),
    ]
    print(f"{'model':<28} {'held-out bpc':>12} {'ms / update':>12}")
    for name, value, seconds in rows:
        ms = "" if seconds is None else f"{1000 * seconds:.1f}"
        print(f"{name:<28} {value:>12.3f} {ms:>12}")
    print(f"time per update, bptt / torch: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
