"""Character language model: bptt against the same recipe in PyTorch, and the n-gram baselines.

Both engines train an LSTM (or RNN) over one-hot characters -> Linear, softmax cross-entropy, Adam,
gradient clipping at 5 and truncated BPTT(k1, k2) over the same parallel streams of the shipped
corpus (or the standard library's), on one thread, on the same schedule: the held-out bpc is
measured every ``--check-every`` updates and at the last, each engine keeps its best check's
model, and both stop early after ``--patience`` checks without a lower bpc (``--patience 0``:
never). The table gives each engine's best held-out bits per character, the update it came from
and of how many, and the wall time per update (the held-out checks excluded).

    python benchmarks/charlm_vs_torch.py                      # LSTM 128, up to 1500 updates
    python benchmarks/charlm_vs_torch.py --cell rnn --steps 300
    python benchmarks/charlm_vs_torch.py --corpus python      # the standard library, whole files held out

The baselines are unigram and bigram (add-one) and interpolated Kneser-Ney n-grams of every order
from 1 to 5, all measured on the held-out text (the best order is marked).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from typing import Any

from bptt.cli.train_charlm import baselines, describe
from bptt.tasks import charlm
from bptt.tbptt import windows


class TorchRun:
    """The charlm recipe in torch: the model, its optimizer, the streams and the held-out text."""

    def __init__(self, corpus: charlm.Corpus, cell: str, hidden: int, batch: int, seed: int) -> None:
        import torch

        torch.manual_seed(seed)
        self.torch, self.cell = torch, cell
        self.V = V = len(corpus.vocab)
        self.held = corpus.held
        xs, ys = charlm.streams(corpus.train, batch)
        self.rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.RNN)(V, hidden, dtype=torch.float64)
        self.head = torch.nn.Linear(hidden, V, dtype=torch.float64)
        self.params = [*self.rnn.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=0.005)
        self.x_all = torch.nn.functional.one_hot(torch.from_numpy(xs), V).double()
        self.y_all = torch.from_numpy(ys)

    def updates(self, k1: int, k2: int) -> Iterator[None]:
        """BPTT(k1, k2) over the streams, pass after pass, each pass from zero states, as in bptt."""
        torch, F = self.torch, self.torch.nn.functional
        plan = windows(len(self.x_all), k1, k2)
        while True:
            state = None
            for j, (s, loss_from, e) in enumerate(plan):
                following = plan[j + 1][0] if j + 1 < len(plan) else len(self.x_all)
                # Run to the next window's start, keep that state (cut from the graph), then finish.
                parts, carry = [], state
                if following > s:
                    out, carry = self.rnn(self.x_all[s:following], state)
                    parts.append(out)
                if e > following:
                    parts.append(self.rnn(self.x_all[following:e], carry)[0])
                logits = self.head(torch.cat(parts)[loss_from - s :])
                loss = F.cross_entropy(logits.reshape(-1, self.V), self.y_all[loss_from:e].reshape(-1))
                self.opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, 5.0)
                self.opt.step()
                state = None if carry is None else self._detach(carry)
                yield

    def _detach(self, carry: Any) -> Any:
        """The recurrent state cut from the graph: ``(h, c)`` for an LSTM, ``h`` for an RNN."""
        return tuple(c.detach() for c in carry) if self.cell == "lstm" else carry.detach()

    def bpc(self) -> float:
        """Held-out bits per character, the whole held-out text as one stream from zero states."""
        torch, F = self.torch, self.torch.nn.functional
        with torch.no_grad():
            out, _ = self.rnn(F.one_hot(torch.from_numpy(self.held[:-1]), self.V).double()[:, None])
            ce = F.cross_entropy(self.head(out[:, 0]), torch.from_numpy(self.held[1:]), reduction="mean")
        return float(ce) / math.log(2.0)


def train_torch(
    text: charlm.Corpus,
    cell: str,
    hidden: int,
    steps: int,
    batch: int,
    k1: int,
    k2: int,
    seed: int,
    check_every: int,
    patience: int | None,
) -> tuple[float, int, int, float]:
    """Train on charlm's schedule in torch: (best bpc, its update, updates, seconds per update).

    Checks come every ``check_every`` updates and at the last; the best check's bpc is kept
    (its update too), and training stops after ``patience`` checks without a lower bpc.
    """
    run = TorchRun(text, cell, hidden, batch, seed)
    best_bpc, best_step, since, spent, step = math.inf, 0, 0, 0.0, 0
    updates = run.updates(k1, k2)
    while step < steps and (patience is None or since < patience):
        start = time.perf_counter()
        next(updates)
        spent += time.perf_counter() - start
        step += 1
        if step % check_every == 0 or step == steps:
            value = run.bpc()
            if value < best_bpc:
                best_bpc, best_step, since = value, step, 0
            else:
                since += 1
    return best_bpc, best_step, step, spent / step


def train_bptt(text: charlm.Corpus, cell: str, **recipe: int | None) -> tuple[float, int, int, float]:
    """``charlm.train``: (best bpc, its update, updates, seconds per update without the checks)."""
    spent, last = [0.0], [time.perf_counter()]

    def clock(step: int, loss: float, history: charlm.CharHistory) -> None:
        now = time.perf_counter()
        if not (history.check_step and history.check_step[-1] == step):
            spent[0] += now - last[0]
        last[0] = now

    _, _, history = charlm.train(text, cell=cell, callback=clock, **recipe)  # type: ignore[arg-type]
    updates = len(history.loss)
    unchecked = updates - len(history.check_step)
    return history.best_bpc, history.best_step, updates, spent[0] / max(unchecked, 1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cell", choices=["rnn", "lstm"], default="lstm")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--k1", type=int, default=25)
    p.add_argument("--k2", type=int, default=50)
    p.add_argument("--check-every", type=int, default=100)
    p.add_argument("--patience", type=int, default=charlm.PATIENCE, help="0: never stop early")
    p.add_argument("--corpus", choices=["shipped", "python"], default="shipped", help="the training text")
    args = p.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    text = charlm.as_corpus(None)
    if args.corpus == "python":
        text = charlm.read_corpus(charlm.python_files(), what="--corpus python:")
    print(describe(text))
    recipe = {"hidden": args.hidden, "steps": args.steps, "batch": args.batch, "k1": args.k1, "k2": args.k2}
    schedule = {"check_every": args.check_every, "patience": args.patience or None}
    with threadpool_limits(limits=1):
        ours = train_bptt(text, args.cell, **recipe, **schedule)
        theirs = train_torch(text, args.cell, seed=0, **recipe, **schedule)
    rows: list[tuple[str, float, Any]] = [(name, value, None) for name, value in baselines(text)]
    rows += [
        (f"bptt {args.cell.upper()} {args.hidden}", ours[0], ours[1:]),
        (f"torch {args.cell.upper()} {args.hidden}", theirs[0], theirs[1:]),
    ]
    stop = f"stop after {args.patience} checks without a lower bpc" if args.patience else "no early stop"
    print(f"best check of each engine: held-out bpc every {args.check_every} updates and at the last; {stop}")
    print(f"{'model':<28} {'best held-out bpc':>17} {'at update':>10} {'of':>6} {'ms / update':>12}")
    for name, value, run in rows:
        at, of, ms = ("", "", "") if run is None else (f"{run[0]}", f"{run[1]}", f"{1000 * run[2]:.1f}")
        print(f"{name:<28} {value:>17.3f} {at:>10} {of:>6} {ms:>12}")
    print(f"time per update (checks excluded), bptt / torch: {ours[3] / theirs[3]:.2f}")


if __name__ == "__main__":
    main()
