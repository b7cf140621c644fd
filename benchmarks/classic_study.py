"""The classic preset over many seeds, beside an independent single-sample loop of the same recipe.

For every seed it trains ``train(8, 16, seed, preset="classic")`` and the independent loop of
``tests/test_classic.py`` (its own NumPy code), once on the loop's own random stream and once on
the very weights and pairs that ``train`` draws, and measures each every ``--every`` steps: the
exact-match rate on all 16,384 pairs of 7-bit operands. A run succeeds *at the end* when it is
exact on all of them after the last step, and *within* the budget when it is exact at some check.

    python benchmarks/classic_study.py                  # 20 seeds, 10,000 steps, checks every 100
    python benchmarks/classic_study.py --json out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from bptt.tasks.addition import train


def _loop_module() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "tests" / "test_classic.py"
    spec = importlib.util.spec_from_file_location("test_classic", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOOP = _loop_module()


def bptt_rates(seed: int, steps: int, every: int) -> list[float]:
    """Exact-match rates of ``train(preset="classic")`` after every ``every`` steps.

    The preset's own check measures the same 16,384 pairs (``tests/test_classic.py`` checks that
    it agrees with the loop's evaluator); checking more often leaves the training run unchanged.
    """
    _, history = train(8, 16, seed, preset="classic", steps=steps, check_every=every)
    return history.accuracy


def summary(name: str, runs: list[list[float]], every: int) -> dict[str, Any]:
    """Success at the end, success at any check, and the median first step at 100%."""
    first_step = [every * (r.index(1.0) + 1) if 1.0 in r else None for r in runs]
    reached = [s for s in first_step if s is not None]
    return {
        "method": name,
        "seeds": len(runs),
        "success_end": sum(r[-1] == 1.0 for r in runs),
        "success_within": len(reached),
        "median_first_step": statistics.median(reached) if reached else None,
        "first_step": first_step,
        "final_rates": [r[-1] for r in runs],
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    names = ("bptt classic preset", "independent loop", "independent loop, bptt's draws")
    runs: dict[str, list[list[float]]] = {name: [] for name in names}
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        runs[names[0]].append(bptt_rates(seed, args.steps, args.every))
        runs[names[1]].append(LOOP.classic_loop(LOOP.own_draws(seed), args.steps, args.every))
        runs[names[2]].append(LOOP.classic_loop(LOOP.bptt_draws(seed), args.steps, args.every))
        ends = "   ".join(f"{100 * r[-1][-1]:6.2f}%" for r in runs.values())
        print(f"seed {seed:2d}: {ends}   ({time.perf_counter() - t0:.1f} s)", flush=True)
    rows = [summary(name, r, args.every) for name, r in runs.items()]
    print(f"\n{args.seeds} seeds, {args.steps:,} steps, exact on all 16,384 pairs of 7-bit operands:")
    print("| method | 100% at the end | 100% at some check | median first step at 100% |")
    print("|---|---:|---:|---:|")
    for row in rows:
        med = "–" if row["median_first_step"] is None else f"{row['median_first_step']:,.0f}"
        n = row["seeds"]
        print(f"| {row['method']} | {row['success_end']}/{n} | {row['success_within']}/{n} | {med} |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
