"""Seeds-and-sizes study of the binary-addition recipe.

For every hidden size and seed it trains with the default recipe (``bptt.tasks.addition.train``),
then measures exact-match accuracy on 1,000 random 64-bit sums, 1,000 random 1,000-bit sums and
100 random 10,000-bit sums. A run is a success when training met its stopping rule and the model
is exact on all 65,536 8-bit pairs and on every long sum above.

    python benchmarks/addition_study.py                 # 10 seeds, hidden 2, 3, 4, 8, 16
    python benchmarks/addition_study.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from bptt.tasks.addition import accuracy, train

LENGTHS = ((64, 1000), (1000, 1000), (10_000, 100))  # (bits, samples)


def run(hidden: int, seed: int, max_steps: int) -> dict[str, float | int | bool]:
    model, history = train(8, hidden, seed, max_steps=max_steps)
    rng = np.random.default_rng([seed, 7])
    t0 = time.perf_counter()
    row: dict[str, float | int | bool] = {
        "hidden": hidden,
        "seed": seed,
        "steps": history.steps,
        "seconds": history.seconds,
        "converged": history.converged,
        "acc_8_all": accuracy(model, 8),
    }
    for bits, samples in LENGTHS:
        row[f"acc_{bits}"] = accuracy(model, bits, samples, rng)
    row["eval_seconds"] = time.perf_counter() - t0
    row["success"] = bool(history.converged) and all(
        row[k] == 1.0 for k in ("acc_8_all", *(f"acc_{b}" for b, _ in LENGTHS))
    )
    return row


def table(rows: list[dict[str, float | int | bool]]) -> str:
    out = [
        "| hidden | success | median steps | median train time | exact @64 bits | @1,000 | @10,000 |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for h in sorted({int(r["hidden"]) for r in rows}):
        rs = [r for r in rows if r["hidden"] == h]
        ok = [r for r in rs if r["success"]]

        def med(key: str, rs: list[dict[str, float | int | bool]] = ok) -> float:
            return statistics.median(float(r[key]) for r in rs) if rs else float("nan")

        mean = {b: 100 * statistics.fmean(float(r[f"acc_{b}"]) for r in rs) for b, _ in LENGTHS}
        steps = f"{med('steps'):.0f}" if ok else "–"
        secs = f"{1000 * med('seconds'):.0f} ms" if ok else "–"
        out.append(
            f"| {h} | {len(ok)}/{len(rs)} | {steps} | {secs} "
            f"| {mean[64]:.1f}% | {mean[1000]:.1f}% | {mean[10_000]:.1f}% |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--hidden", type=int, nargs="+", default=[2, 3, 4, 8, 16])
    p.add_argument("--max-steps", type=int, default=5000, help="give up after this many steps")
    p.add_argument("--json", help="also write every run as JSON")
    args = p.parse_args(argv)
    rows = []
    for h in args.hidden:
        for seed in range(args.seeds):
            rows.append(run(h, seed, args.max_steps))
            r = rows[-1]
            print(
                f"hidden {h:>2} seed {seed}: {'ok  ' if r['success'] else 'FAIL'} "
                f"{r['steps']:>5} steps {1000 * float(r['seconds']):7.1f} ms",
                flush=True,
            )
    print()
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
