"""Character language model: bptt against the same recipe in PyTorch, and the n-gram baselines.

Both engines train an LSTM (or RNN) over one-hot characters -> Linear, softmax cross-entropy, Adam,
gradient clipping at 5 and truncated BPTT(k1, k2) over the same parallel streams of the shipped
corpus (or the standard library's), in the same dtype (``--dtype``, float32 as ``bptt train``), on
one thread, on the same schedule: the held-out bpc is
measured every ``--check-every`` updates and at the last, each engine keeps its best check's
model, and both stop early after ``--patience`` checks without a lower bpc (``--patience 0``:
never), or, with ``--minutes M``, at the first update that finds M minutes of update time spent
(the checks' time excluded; one last check then). A check reads at most ``charlm.CHECK_CHARS``
held-out characters (``charlm.held_streams``: the same streams in both engines); the table gives
each engine's best check, the update it came from and of how many, that model's bpc on the whole
held-out text, the wall time per update (the checks excluded) and per check.

    python benchmarks/charlm_vs_torch.py                      # LSTM 128, up to 1500 updates
    python benchmarks/charlm_vs_torch.py --cell rnn --steps 300
    python benchmarks/charlm_vs_torch.py --corpus python      # the standard library, whole files held out
    python benchmarks/charlm_vs_torch.py --corpus python --minutes 10 --save best.npz  # issue 15's table

The baselines are unigram and bigram (add-one) and interpolated Kneser-Ney n-grams of every order
from 1 to 5, all measured on the held-out text (the best order is marked).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import bptt
from bptt.cli.train_charlm import baselines, describe
from bptt.tasks import charlm
from bptt.tbptt import windows


class TorchRun:
    """The charlm recipe in torch: the model, its optimizer, the streams and the held-out text."""

    def __init__(
        self, corpus: charlm.Corpus, cell: str, hidden: int, batch: int, seed: int, dtype: str = "float32"
    ) -> None:
        import torch

        torch.manual_seed(seed)
        self.torch, self.cell, self.dtype = torch, cell, getattr(torch, dtype)
        self.V = V = len(corpus.vocab)
        self.held = corpus.held
        xs, ys = charlm.streams(corpus.train, batch)
        self.rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.RNN)(V, hidden, dtype=self.dtype)
        self.head = torch.nn.Linear(hidden, V, dtype=self.dtype)
        self.params = [*self.rnn.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=0.005)
        # Ids only: each window's one-hot is made when it runs (bptt takes the ids themselves), not the
        # whole training set's up front (4 GB of float32 for the standard library).
        self.x_ids, self.y_all = torch.from_numpy(xs), torch.from_numpy(ys)

    def one_hot(self, ids: Any) -> Any:
        """Character ids ``(t, B)`` as one-hot vectors ``(t, B, V)`` of the model's dtype."""
        return self.torch.nn.functional.one_hot(ids, self.V).to(self.dtype)

    def updates(self, k1: int, k2: int) -> Iterator[None]:
        """BPTT(k1, k2) over the streams, pass after pass, each pass from zero states, as in bptt."""
        torch, F = self.torch, self.torch.nn.functional
        plan = windows(len(self.x_ids), k1, k2)
        while True:
            state = None
            for j, (s, loss_from, e) in enumerate(plan):
                following = plan[j + 1][0] if j + 1 < len(plan) else len(self.x_ids)
                # Run to the next window's start, keep that state (cut from the graph), then finish.
                parts, carry = [], state
                if following > s:
                    out, carry = self.rnn(self.one_hot(self.x_ids[s:following]), state)
                    parts.append(out)
                if e > following:
                    parts.append(self.rnn(self.one_hot(self.x_ids[following:e]), carry)[0])
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

    def bpc(self, max_chars: int | None = None, chunk: int = 256) -> float:
        """Held-out bits per character, measured as ``charlm.bpc`` does: the same streams
        (``charlm.held_streams``), each from zero states, run ``chunk`` steps at a time."""
        torch, F = self.torch, self.torch.nn.functional
        xs, ys = (torch.from_numpy(a) for a in charlm.held_streams(self.held, max_chars))
        total, state = 0.0, None
        with torch.no_grad():
            for s in range(0, len(xs), chunk):
                out, state = self.rnn(self.one_hot(xs[s : s + chunk]), state)
                logits = self.head(out).reshape(-1, self.V)
                total += float(F.cross_entropy(logits, ys[s : s + chunk].reshape(-1), reduction="sum"))
        return total / ys.numel() / math.log(2.0)

    def weights(self) -> list[Any]:
        """A copy of every parameter, for ``restore``."""
        return [p.detach().clone() for p in self.params]

    def restore(self, weights: list[Any]) -> None:
        """Set every parameter to ``weights``."""
        with self.torch.no_grad():
            for p, w in zip(self.params, weights, strict=True):
                p.copy_(w)


class Result(NamedTuple):
    """One engine's run: its best check, that model's bpc on the whole held-out text, its times."""

    check_bpc: float  # the best check's held-out bpc (at most charlm.CHECK_CHARS characters)
    bpc: float  # the best check's model on the whole held-out text (charlm.bpc)
    best_step: int
    updates: int
    per_update: float  # seconds per update, the checks excluded
    per_check: float  # seconds per check


def train_torch(text: charlm.Corpus, cell: str, *, seconds: float | None, **recipe: Any) -> Result:
    """Train on charlm's schedule in torch, keeping the best check's weights.

    Checks (``charlm.CHECK_CHARS``) come every ``check_every`` updates and at the last; training
    stops after ``patience`` checks without a lower bpc, or at the first update that finds
    ``seconds`` of update time spent (checks excluded; one last check then), as ``charlm.train``.
    """
    steps, check_every, patience = recipe["steps"], recipe["check_every"], recipe["patience"]
    run = TorchRun(text, cell, recipe["hidden"], recipe["batch"], seed=0, dtype=recipe["dtype"])
    best_bpc, best_step, since, spent, checking, step, checks = math.inf, 0, 0, 0.0, 0.0, 0, 0
    best, updates = run.weights(), run.updates(recipe["k1"], recipe["k2"])
    while step < steps and (patience is None or since < patience):
        start = time.perf_counter()
        next(updates)
        spent += time.perf_counter() - start
        step += 1
        out_of_time = seconds is not None and spent >= seconds
        if step % check_every == 0 or step == steps or out_of_time:
            start = time.perf_counter()
            value, checks = run.bpc(charlm.CHECK_CHARS), checks + 1
            checking += time.perf_counter() - start
            if value < best_bpc:
                best_bpc, best_step, since, best = value, step, 0, run.weights()
            else:
                since += 1
            if out_of_time:
                break
    run.restore(best)
    return Result(best_bpc, run.bpc(), best_step, step, spent / step, checking / checks)


def train_bptt(
    text: charlm.Corpus, cell: str, *, seconds: float | None, save: str | None = None, **recipe: Any
) -> Result:
    """``charlm.train``, timed: update time from the updates without a check, check time apart.

    With ``save``, the best check's model is written there, as ``bptt train`` would, for ``bptt sample``.
    """
    times: dict[str, list[float]] = {"update": [], "checked": []}
    last = [time.perf_counter()]

    def clock(step: int, loss: float, history: charlm.CharHistory) -> None:
        now = time.perf_counter()
        checked = bool(history.check_step) and history.check_step[-1] == step
        times["checked" if checked else "update"].append(now - last[0])
        last[0] = now

    model, vocab, history = charlm.train(text, cell=cell, callback=clock, seconds=seconds, **recipe)
    per_update = sum(times["update"]) / max(len(times["update"]), 1)
    per_check = sum(times["checked"]) / len(times["checked"]) - per_update
    assert history.best_bpc is not None and history.best_step is not None  # the last update is checked
    full = charlm.bpc(model, text.held)
    if save is not None:
        meta = {"task": "charlm", "vocab": vocab.chars, "cell": cell, "updates": len(history.loss)}
        meta |= {"best_step": history.best_step, "best_bpc": history.best_bpc, "dtype": recipe["dtype"]}
        bptt.io.save(model, save, meta=meta, extra=history.arrays())
    return Result(history.best_bpc, full, history.best_step, len(history.loss), per_update, per_check)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cell", choices=["rnn", "lstm"], default="lstm")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument(
        "--steps", type=int, default=None, help="most updates (default 1500; no limit with --minutes)"
    )
    p.add_argument("--minutes", type=float, default=None, help="each engine's update time (checks excluded)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--k1", type=int, default=25)
    p.add_argument("--k2", type=int, default=50)
    p.add_argument("--check-every", type=int, default=100)
    p.add_argument("--patience", type=int, default=charlm.PATIENCE, help="0: never stop early")
    p.add_argument("--corpus", choices=["shipped", "python"], default="shipped", help="the training text")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="both engines' floats")
    p.add_argument("--save", metavar="PATH", help="save bptt's best model there (for `bptt sample`)")
    args = p.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    text = charlm.as_corpus(None)
    if args.corpus == "python":
        text = charlm.read_corpus(charlm.python_files(), what="--corpus python:")
    print(describe(text))
    steps = args.steps or (10**9 if args.minutes else 1500)
    recipe = {"hidden": args.hidden, "steps": steps, "batch": args.batch, "k1": args.k1, "k2": args.k2}
    recipe |= {"check_every": args.check_every, "patience": args.patience or None, "dtype": args.dtype}
    seconds = None if args.minutes is None else 60 * args.minutes
    with threadpool_limits(limits=1):
        ours = train_bptt(text, args.cell, seconds=seconds, save=args.save, **recipe)
        theirs = train_torch(text, args.cell, seconds=seconds, **recipe)
    report(args, baselines(text), ours, theirs)


def report(args: argparse.Namespace, counted: list[tuple[str, float]], ours: Result, theirs: Result) -> None:
    """Print the table: the baselines, then each engine's best check and that model's held-out bpc."""
    budget = "" if args.minutes is None else f"; {args.minutes:g} min of updates each (checks excluded)"
    stop = f"stop after {args.patience} checks without a lower bpc" if args.patience else "no early stop"
    print(
        f"checks every {args.check_every} updates and at the last"
        f" ({charlm.CHECK_CHARS:,} held-out characters at most)"
    )
    print(f"{stop}{budget}; {args.dtype}")
    print("held-out bpc: the whole held-out text; for each engine, its best check's model")
    head = f"{'model':<28} {'held-out bpc':>12} {'best check':>10} {'at update':>10} {'of':>7}"
    print(f"{head} {'ms / update':>12} {'s / check':>10}")
    for name, value in counted:
        print(f"{name:<28} {value:>12.3f}")
    for engine, r in (("bptt", ours), ("torch", theirs)):
        name = f"{engine} {args.cell.upper()} {args.hidden}"
        print(
            f"{name:<28} {r.bpc:>12.3f} {r.check_bpc:>10.3f} {r.best_step:>10} {r.updates:>7}"
            f" {1000 * r.per_update:>12.1f} {r.per_check:>10.2f}"
        )
    print(f"time per update (checks excluded), bptt / torch: {ours.per_update / theirs.per_update:.2f}")


if __name__ == "__main__":
    main()
