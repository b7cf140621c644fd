"""``bptt bench``: one training iteration (forward, loss, backward) against PyTorch, side by side.

Model: ``RNN(I, H, tanh) -> Dense(H, O)`` with mean squared error, against ``torch.nn.RNN`` +
``torch.nn.Linear`` + ``mse_loss`` on the same shapes, in one process. Both engines compute every
parameter gradient and the gradient of the input. Timing is interleaved (a block of bptt
iterations, a pause, a block of torch iterations, a pause, ...) with the same thread count for
NumPy's BLAS (threadpoolctl) and torch, and the table reports medians over the blocks.

    bptt bench                    # every shape, 1 and 2 threads, both dtypes
    bptt bench --quick            # a smoke run on one tiny shape
    bptt bench --memory           # peak memory of fwd+bwd (tracemalloc)
    bptt bench --json out.json

``benchmarks/rnn_fwd_bwd.py`` runs the same thing. torch and threadpoolctl come from the
``bench`` extra (``pip install 'bptt[bench]'``); they are imported only here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from ._files import atomic_write
from .cli.common import positive, positive_number
from .layers import Dense, Sequential
from .losses import MSELoss
from .recurrent import GRU, LSTM, RNN

SHAPES = [  # (T, B, I, H, O)
    (8, 1, 2, 16, 1),
    (8, 64, 2, 16, 1),
    (32, 64, 2, 64, 1),
    (64, 32, 64, 128, 64),
    (128, 64, 128, 512, 128),
    (256, 16, 32, 32, 32),
]
PAUSE = 0.02  # seconds between engines: idle OpenBLAS workers stop spinning


CELLS = {"rnn": (RNN, "RNN"), "lstm": (LSTM, "LSTM"), "gru": (GRU, "GRU")}  # bptt class, torch.nn name


def flops(T: int, B: int, I: int, H: int, O: int, cell: str = "rnn") -> float:
    """FLOPs of fwd+bwd: 2·T·B·(2·I·G·H + 3·G·H² + 3·H·O) with G gates (1 RNN, 4 LSTM, 3 GRU)."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    return 2.0 * T * B * (2 * I * G * H + 3 * G * H * H + 3 * H * O)


def bptt_iteration(shape: tuple[int, ...], dtype: Any, cell: str = "rnn") -> Callable[[], None]:
    """One bptt training iteration on ``x (T, B, I)``: ``cell(I, H) -> Dense(H, O)``, MSE, backward."""
    T, B, I, H, O = shape
    rng = np.random.default_rng(0)
    model = Sequential([CELLS[cell][0](I, H, rng=rng, dtype=dtype), Dense(H, O, rng=rng, dtype=dtype)])
    loss_fn = MSELoss()
    x = rng.normal(size=(T, B, I)).astype(dtype)
    target = rng.normal(size=(T, B, O)).astype(dtype)

    def step() -> None:
        _, grad = loss_fn(model.forward(x), target)
        model.backward(grad)

    return step


def torch_iteration(shape: tuple[int, ...], dtype: Any, cell: str = "rnn") -> Callable[[], None]:
    """The same iteration in torch: ``nn.RNN``/``LSTM``/``GRU`` + ``nn.Linear``, MSE, backward."""
    import torch

    T, B, I, H, O = shape
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    torch.manual_seed(0)
    rnn = getattr(torch.nn, CELLS[cell][1])(I, H, dtype=tdtype)
    lin = torch.nn.Linear(H, O, dtype=tdtype)
    params = [*rnn.parameters(), *lin.parameters()]
    x = torch.randn(T, B, I, dtype=tdtype, requires_grad=True)
    target = torch.randn(T, B, O, dtype=tdtype)

    def step() -> None:
        for p in params:
            p.grad = None
        x.grad = None
        out, _ = rnn(x)
        torch.nn.functional.mse_loss(lin(out), target).backward()

    return step


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


def compare(shape: tuple[int, ...], dtype: Any, budget: float, cell: str = "rnn") -> dict[str, float]:
    """Median seconds per iteration of each engine, interleaved blocks within ``budget`` seconds."""
    ours, theirs = bptt_iteration(shape, dtype, cell), torch_iteration(shape, dtype, cell)
    for step in (ours, theirs):  # warm up caches, buffers and torch's dispatcher
        _block(step, 3)
    per_iter = max(_block(ours, 1), _block(theirs, 1))
    n = max(1, min(200, int(budget / 20 / max(per_iter, 1e-6))))
    times: dict[str, list[float]] = {"bptt": [], "torch": []}
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline or len(times["bptt"]) < 5:
        for name, step in (("bptt", ours), ("torch", theirs)):
            time.sleep(PAUSE)
            times[name].append(_block(step, n))
    return {k: statistics.median(v) for k, v in times.items()}


def peak_memory(shape: tuple[int, ...], dtype: Any) -> dict[str, float]:
    """Peak bytes alive during fwd+bwd (everything traced from before the model exists),
    against the arrays BPTT must keep: inputs, targets, every hidden state, parameters and
    gradients. ``growth`` is the change of live bytes from the 2nd to the 5th iteration."""
    T, B, I, H, O = shape
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
        default=["rnn"],
        choices=sorted(CELLS),
        help="recurrent cells to time (default rnn)",
    )
    p.add_argument(
        "--shapes",
        nargs="+",
        metavar="T,B,I,H,O",
        type=_shape,
        help="shapes to time instead of the standard six",
    )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """``benchmarks/rnn_fwd_bwd.py``: parse ``argv`` and ``run``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time every requested row, print the table, and return the rows."""
    import torch
    from threadpoolctl import threadpool_limits

    shapes = [(4, 2, 2, 8, 1)] if args.quick else (args.shapes or SHAPES)
    budget = 0.2 if args.quick else args.budget
    rows: list[dict[str, Any]] = []
    header = (
        f"{'cell':>4} {'threads':>7} {'dtype':>7} {'(T, B, I, H, O)':>24} {'bptt ms':>9} {'torch ms':>9} "
        f"{'ratio':>6} {'GFLOP/s':>8} {'% peak':>7}"
    )
    print(header + "\n" + "-" * len(header))
    for threads in args.threads:
        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            for dname in args.dtypes:
                dtype = np.dtype(dname).type
                peak = blas_peak(dtype, 256 if args.quick else 1536)
                for cell, shape in ((c, sh) for c in args.cells for sh in shapes):
                    t = compare(shape, dtype, budget, cell)
                    T, B, I, H, O = shape
                    gflops = flops(T, B, I, H, O, cell) / t["bptt"] / 1e9
                    row = {
                        "cell": cell,
                        "threads": threads,
                        "dtype": dname,
                        "shape": list(shape),
                        "bptt_ms": 1000 * t["bptt"],
                        "torch_ms": 1000 * t["torch"],
                        "ratio": t["bptt"] / t["torch"],
                        "gflops": gflops,
                        "blas_peak_gflops": peak,
                    }
                    rows.append(row)
                    print(
                        f"{cell:>4} {threads:>7} {dname:>7} {shape!s:>24} {row['bptt_ms']:>9.3f} "
                        f"{row['torch_ms']:>9.3f} {row['ratio']:>6.2f} {gflops:>8.1f} "
                        f"{100 * gflops / peak:>6.0f}%",
                        flush=True,
                    )
    if args.memory:
        shape = shapes[-2] if not args.quick else shapes[0]
        for dname in args.dtypes:
            m = peak_memory(shape, np.dtype(dname).type)
            print(
                f"memory {dname} {shape}: peak {m['peak_bytes'] / 2**20:.1f} MiB, "
                f"must keep {m['must_keep_bytes'] / 2**20:.1f} MiB "
                f"({m['peak_bytes'] / m['must_keep_bytes']:.2f}x), growth {m['growth']:.0f} B"
            )
    if args.json:

        def write(f: BinaryIO) -> None:
            f.write(json.dumps(rows, indent=1).encode())

        atomic_write(args.json, write, what="--json")
    return rows


def nbytes(shape: tuple[int, ...], dtype: Any, cell: str = "rnn") -> int:
    """Memory one row needs, both engines together: inputs, states, gates and weights with gradients."""
    T, B, I, H, O = shape
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    per_engine = 4 * T * B * (I + G * H + O) + 4 * G * H * (I + H + 1) + 4 * H * O
    return 2 * per_engine * np.dtype(dtype).itemsize


if __name__ == "__main__":
    main()
