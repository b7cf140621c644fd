"""``bptt bench``: one training iteration against PyTorch and JAX, side by side.

Model: ``RNN/LSTM/GRU(I, H) -> Dense(H, O)`` with mean squared error, against ``torch.nn.RNN/LSTM/GRU``
+ ``torch.nn.Linear`` + ``mse_loss`` and against the same model in JAX (``bptt.bench_jax``:
``jax.jit`` over ``jax.lax.scan``, ``jax.value_and_grad``) on the same shapes, in one process. Every
engine computes every parameter gradient and the gradient of the input. The ``charlm`` row is the
character model's update: LSTM 128 over one-hot characters (ids for bptt, one-hot floats for torch
and JAX) -> Dense, softmax cross-entropy, one Adam step. Timing is interleaved (a block of bptt
iterations, a pause, a block of torch iterations, a pause, a block of JAX iterations, ...) with the
same thread count for NumPy's BLAS (threadpoolctl), torch and JAX, and the table reports medians
over the blocks; JAX's compile time is excluded and reported apart.

    bptt bench                    # the default rows, 1 and 2 threads, both dtypes
    bptt bench --threads 1        # one thread: JAX pinned too (PJRT_NPROC=1, set before jax is imported)
    bptt bench --quick            # a smoke run on one tiny shape
    bptt bench --no-jax           # bptt and torch only
    bptt bench --memory           # peak memory of fwd+bwd (tracemalloc)
    bptt bench --json out.json

JAX fixes its CPU thread pools when it is imported: ``bench_jax.load`` first sets
``PJRT_NPROC`` to the smallest of ``--threads`` (the knob jaxlib 0.10 reads) and, for one thread,
``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"`` (set either
yourself to choose otherwise). Rows at another thread count run JAX on the pools fixed at import,
and the table says so, with the CPU time per wall time of JAX's blocks.

``benchmarks/rnn_fwd_bwd.py`` runs the same thing. torch, threadpoolctl and jax come from the
``bench`` extra (``pip install 'bptt[bench]'``); they are imported only here (jax only with its
column requested).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from . import bench_jax
from ._files import atomic_write
from .bench_engines import (
    CELLS,
    CHARLM_SHAPE,
    DEFAULT_ROWS,
    PAUSE,
    ROW_KINDS,
    SHAPES,
    bptt_iteration,
    bptt_setup,
    flops,
    nbytes,
    torch_iteration,
)
from .cli.common import positive, positive_number

__all__ = [
    "CELLS",
    "CHARLM_SHAPE",
    "DEFAULT_ROWS",
    "SHAPES",
    "add_arguments",
    "blas_kernels",
    "blas_peak",
    "bptt_iteration",
    "bptt_setup",
    "compare",
    "flops",
    "main",
    "nbytes",
    "peak_memory",
    "run",
    "torch_iteration",
]


def _block(step: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def blas_peak(dtype: Any, n: int = 1536) -> float:
    """GFLOP/s of one large matmul at the current thread count (best of 5)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(n, n)).astype(dtype), rng.normal(size=(n, n)).astype(dtype)
    out = np.empty((n, n), dtype)
    np.dot(a, b, out=out)
    best = min(_block(lambda: np.dot(a, b, out=out), 1) for _ in range(5))
    return 2.0 * n**3 / best / 1e9


def compare(
    shape: tuple[int, ...],
    dtype: Any,
    budget: float,
    cell: str = "rnn",
    jax: bench_jax.JaxRuntime | None = None,
) -> dict[str, float]:
    """Median seconds per iteration of each engine, interleaved blocks within ``budget`` seconds.

    Keys ``bptt``, ``torch`` and, given ``jax``, ``jax`` and ``jax_compile`` (seconds to compile
    the JAX iteration, outside the timing) and ``jax_cpu_per_wall`` (CPU seconds per second of
    the JAX blocks: about its thread count when its threads are busy).
    """
    engines = {"bptt": bptt_iteration(shape, dtype, cell), "torch": torch_iteration(shape, dtype, cell)}
    compiled: dict[str, float] = {}
    if jax is not None:
        model, x, target = bptt_setup(shape, dtype, cell)
        engines["jax"], compiled["jax_compile"] = bench_jax.jax_iteration(
            jax.jax, cell, model.params, x, target
        )
    for step in engines.values():  # warm up caches, buffers and torch's dispatcher
        _block(step, 3)
    per_iter = max(_block(step, 1) for step in engines.values())
    n = max(1, min(200, int(budget / 10 / len(engines) / max(per_iter, 1e-6))))
    times: dict[str, list[float]] = {name: [] for name in engines}
    deadline = time.perf_counter() + budget
    cpu = 0.0  # CPU seconds of the JAX blocks: JAX's threads at work
    while time.perf_counter() < deadline or len(times["bptt"]) < 5:
        for name, step in engines.items():
            time.sleep(PAUSE)
            start = time.process_time()
            times[name].append(_block(step, n))
            cpu += time.process_time() - start if name == "jax" else 0.0
    if jax is not None:
        compiled["jax_cpu_per_wall"] = cpu / (n * sum(times["jax"]))
    return {k: statistics.median(v) for k, v in times.items()} | compiled


def peak_memory(shape: tuple[int, ...], dtype: Any) -> dict[str, float]:
    """Peak bytes alive during fwd+bwd (everything traced from before the model exists, after a
    throwaway iteration has loaded numba's kernels), against the arrays BPTT must keep: inputs,
    targets, every hidden state, parameters and gradients. ``growth`` is the change of live bytes
    from the 2nd to the 5th iteration."""
    T, B, I, H, O = shape
    bptt_iteration(shape, dtype)()  # loads and compiles the row's kernels: the library, not the iteration
    tracemalloc.start()
    try:
        step = bptt_iteration(shape, dtype)
        step()
        tracemalloc.reset_peak()
        live = []
        for _ in range(4):
            step()
            live.append(tracemalloc.get_traced_memory()[0])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    item = np.dtype(dtype).itemsize
    n_params = I * H + H * H + H + H * O + O
    must_keep = item * (T * B * I + T * B * O + (T + 1) * B * H + 2 * n_params)
    return {
        "peak_bytes": float(peak),
        "must_keep_bytes": float(must_keep),
        "growth": float(live[-1] - live[0]),
    }


def _shape(text: str) -> tuple[int, ...]:
    parts = text.split(",")
    if len(parts) != 5 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected a shape T,B,I,H,O of five positive integers, got {text!r}"
        )
    return tuple(int(p) for p in parts)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The benchmark's options, shared by ``bptt bench`` and ``benchmarks/rnn_fwd_bwd.py``."""
    p.add_argument("--threads", type=positive, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    p.add_argument(
        "--budget",
        type=positive_number("number of seconds"),
        default=2.0,
        help="seconds of timing per row (default 2)",
    )
    p.add_argument("--quick", action="store_true", help="one tiny shape, a short budget: a smoke run")
    p.add_argument("--memory", action="store_true", help="also report peak memory at the largest shape")
    p.add_argument("--json", help="write the rows as JSON")
    p.add_argument(
        "--cells",
        nargs="+",
        choices=ROW_KINDS,
        help="rows to time, each at every shape (default: the standard rows; charlm alone: its own shape)",
    )
    p.add_argument("--no-jax", action="store_true", help="leave out the JAX column (jax is never imported)")
    p.add_argument(
        "--shapes",
        nargs="+",
        metavar="T,B,I,H,O",
        type=_shape,
        help="shapes to time (with --cells, default rnn) instead of the standard rows",
    )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """``benchmarks/rnn_fwd_bwd.py``: parse ``argv`` and ``run``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))


QUICK_SHAPE = (4, 2, 2, 8, 1)
HEADER = (
    f"{'cell':>6} {'threads':>7} {'dtype':>7} {'(T, B, I, H, O)':>24} {'bptt ms':>9} {'torch ms':>9} "
    f"{'jax ms':>9} {'jit s':>6} {'/torch':>6} {'/jax':>6} {'/best':>6} {'GFLOP/s':>8} {'% peak':>7}"
)


def rows_of(args: argparse.Namespace) -> list[tuple[str, tuple[int, ...]]]:
    """The ``(cell, shape)`` rows the options ask for: ``DEFAULT_ROWS`` without ``--cells`` and
    ``--shapes``, else every cell (default rnn) at every shape (a ``charlm`` row's ``O`` is its ``I``)."""
    if not args.cells and not args.shapes and not args.quick:
        return list(DEFAULT_ROWS)
    out = []
    for cell in args.cells or ["rnn"]:
        default = [QUICK_SHAPE] if args.quick else [CHARLM_SHAPE] if cell == "charlm" else SHAPES
        for shape in default if args.quick else args.shapes or default:
            out.append((cell, (*shape[:4], shape[2]) if cell == "charlm" else shape))
    return out


def _row(
    cell: str, shape: tuple[int, ...], dname: str, threads: int, budget: float, jax: Any, peak: float
) -> dict[str, Any]:
    """Time one row; the table's and the JSON's fields (JAX's are ``None`` without its column)."""
    t = compare(shape, np.dtype(dname).type, budget, cell, jax)
    T, B, I, H, O = shape
    gflops = flops(T, B, I, H, O, cell) / t["bptt"] / 1e9
    row = {"cell": cell, "threads": threads, "dtype": dname, "shape": list(shape)}
    row |= {"bptt_ms": 1000 * t["bptt"], "torch_ms": 1000 * t["torch"], "ratio": t["bptt"] / t["torch"]}
    row |= {"jax_ms": None, "jax_compile_s": None, "ratio_jax": None, "jax_threads": None}
    row["jax_cpu_per_wall"] = None
    if "jax" in t:
        row |= {
            "jax_ms": 1000 * t["jax"],
            "jax_compile_s": t["jax_compile"],
            "ratio_jax": t["bptt"] / t["jax"],
            "jax_cpu_per_wall": t["jax_cpu_per_wall"],
        }
        row["jax_threads"] = threads if jax.honours(threads) else jax.threads
    row["ratio_best"] = t["bptt"] / min(t["torch"], t.get("jax", np.inf))
    return row | {"gflops": gflops, "blas_peak_gflops": peak}


def _line(row: dict[str, Any]) -> str:
    """One printed row; ``n/a`` where JAX has no value."""

    def fmt(value: float | None, spec: str, width: int) -> str:
        return f"{'n/a':>{width}}" if value is None else f"{value:>{width}{spec}}"

    shape = str(tuple(row["shape"]))
    return (
        f"{row['cell']:>6} {row['threads']:>7} {row['dtype']:>7} {shape:>24} {row['bptt_ms']:>9.3f} "
        f"{row['torch_ms']:>9.3f} {fmt(row['jax_ms'], '.3f', 9)} {fmt(row['jax_compile_s'], '.2f', 6)} "
        f"{row['ratio']:>6.2f} {fmt(row['ratio_jax'], '.2f', 6)} {row['ratio_best']:>6.2f} "
        f"{row['gflops']:>8.1f} {100 * row['gflops'] / row['blas_peak_gflops']:>6.0f}%"
    )


def blas_kernels() -> str:
    """NumPy's BLAS and the kernels it runs on this CPU (threadpoolctl), e.g. ``openblas 0.3.31 (SkylakeX)``;
    ``OPENBLAS_CORETYPE``, when set, pins them."""
    from threadpoolctl import threadpool_info

    found = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    names = [f"{i['internal_api']} {i.get('version', '?')} ({i.get('architecture', '?')})" for i in found]
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    return (
        "NumPy's BLAS: "
        + (", ".join(names) or "unknown")
        + (f", OPENBLAS_CORETYPE={pinned}" if pinned else "")
    )


def footer(rows: list[dict[str, Any]], jax: bench_jax.JaxRuntime | None, no_jax: bool) -> list[str]:
    """The lines under the table: what the ratios are, JAX's compile times and its threads."""
    lines = ["ratios: bptt / torch, bptt / JAX, bptt / the faster of the two (below 1: bptt is faster)"]
    lines.append(
        f"bptt: BPTT_BACKEND={os.environ.get('BPTT_BACKEND', '').strip() or 'auto'}; {blas_kernels()}"
    )
    if no_jax:
        return [*lines, "JAX column left out (--no-jax)"]
    if jax is None:
        return [*lines, bench_jax.INSTALL]
    compile_s = [r["jax_compile_s"] for r in rows]
    lines.append(
        f"JAX compile time (jit s, excluded from the timing): {sum(compile_s):.1f} s over {len(rows)} "
        f"rows, {min(compile_s):.2f}–{max(compile_s):.2f} s each"
    )
    busy = [r["jax_cpu_per_wall"] for r in rows]
    lines.append(f"{jax.how}; JAX CPU time per wall time {min(busy):.2f}–{max(busy):.2f}")
    for threads in sorted({r["threads"] for r in rows if not jax.honours(r["threads"])}):
        lines.append(
            f"JAX cannot be pinned to {threads} threads in this process (XLA fixes its pool at import): "
            f"its rows at {threads} threads ran on {jax.threads or 'its own pool of'} thread(s)"
        )
    return lines


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time every requested row, print the table, and return the rows."""
    import torch
    from threadpoolctl import threadpool_limits

    budget = 0.2 if args.quick else args.budget
    no_jax = getattr(args, "no_jax", False)
    jax = None if no_jax else bench_jax.load(list(args.threads), "float64" in args.dtypes)
    rows: list[dict[str, Any]] = []
    print(HEADER + "\n" + "-" * len(HEADER))
    for threads in args.threads:
        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            for dname in args.dtypes:
                peak = blas_peak(np.dtype(dname).type, 256 if args.quick else 1536)
                for cell, shape in rows_of(args):
                    rows.append(_row(cell, shape, dname, threads, budget, jax, peak))
                    print(_line(rows[-1]), flush=True)
    print("\n".join(footer(rows, jax, no_jax)))
    if args.memory:
        shapes = [QUICK_SHAPE] if args.quick else args.shapes or SHAPES
        _print_memory(shapes[-2] if len(shapes) > 1 else shapes[0], args.dtypes)
    if args.json:

        def write(f: BinaryIO) -> None:
            f.write(json.dumps(rows, indent=1).encode())

        atomic_write(args.json, write, what="--json")
    return rows


def _print_memory(shape: tuple[int, ...], dtypes: list[str]) -> None:
    for dname in dtypes:
        m = peak_memory(shape, np.dtype(dname).type)
        print(
            f"memory {dname} {shape}: peak {m['peak_bytes'] / 2**20:.1f} MiB, "
            f"must keep {m['must_keep_bytes'] / 2**20:.1f} MiB "
            f"({m['peak_bytes'] / m['must_keep_bytes']:.2f}x), growth {m['growth']:.0f} B"
        )


if __name__ == "__main__":
    main()
