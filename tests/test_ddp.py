"""The road to many machines: a bptt model trained by PyTorch's DDP on 2 processes, and back.

``bptt export --torch`` writes the checkpoint; two worker processes (this file run as a script)
load it with ``bptt.from_torch``/``bptt.to_torch``, wrap it in ``DistributedDataParallel``
(gloo, a file store in ``tmp_path``, loopback only) and train on one half of the batch each;
each writes its gradients after the first backward, its weights as a bptt model file
(``from_torch``) and its torch module's outputs. The test checks DDP's averaged gradients
against bptt's own on the whole batch, and the returned model's outputs against torch's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

import bptt

T, B, I, H, O = 6, 3, 3, 5, 2  # B sequences per process
WORLD, STEPS, LR = 2, 4, 0.1
TIMEOUT = 90  # seconds for each worker, a guard against a hang: they take a few on an idle machine
STORE_TIMEOUT = timedelta(seconds=45)  # a worker whose peer died gives up on its own
# bptt name -> (torch parameter, transposed?) for LSTM -> Dense; b's gradient is bias_hh_l0's too
TORCH_NAMES = {
    "0.W_ih": ("0.rnn.weight_ih_l0", True),
    "0.W_hh": ("0.rnn.weight_hh_l0", True),
    "0.b": ("0.rnn.bias_ih_l0", False),
    "1.W": ("1.weight", True),
    "1.b": ("1.bias", False),
}


def _model() -> bptt.Sequential:
    return bptt.Sequential([bptt.LSTM(I, H, rng=0), bptt.Dense(H, O, rng=1)])


def _data() -> tuple[np.ndarray, np.ndarray]:
    """The whole batch, ``WORLD * B`` sequences; process ``r`` takes sequences ``r*B:(r+1)*B``."""
    rng = np.random.default_rng(7)
    return rng.normal(size=(T, WORLD * B, I)), rng.normal(size=(T, WORLD * B, O))


def _bptt_gradients(model: bptt.Sequential, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """bptt's gradients of the mean squared error over the whole batch, by layer index and name."""
    _, grad = bptt.MSELoss(reduction="mean")(model.forward(x), y)
    model.backward(grad)
    return {f"{i}.{k}": g.copy() for i, layer in enumerate(model) for k, g in layer.grads.items()}


def _run_workers(folder: Path) -> list[str]:
    """Start the worker processes and wait for them (killed on timeout or failure); their stdout."""
    env = dict(
        os.environ, GLOO_SOCKET_IFNAME="lo0" if sys.platform == "darwin" else "lo", OMP_NUM_THREADS="1"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(rank), str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for rank in range(WORLD)
    ]
    try:
        outputs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out
    return outputs


def test_ddp_on_two_processes_matches_bptt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """DDP's averaged gradients are bptt's on the union of the batches (rtol 1e-9), and the
    weights it trained come back through ``from_torch`` computing torch's outputs (rtol 1e-12)."""
    pytest.importorskip("torch.distributed")
    model = _model()
    bptt.save(model, tmp_path / "model.npz")
    x, y = _data()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    assert bptt.cli.main(["export", "--torch", str(tmp_path / "model.npz"), str(tmp_path / "model.pt")]) == 0
    capsys.readouterr()
    outputs = _run_workers(tmp_path)

    ours = _bptt_gradients(model, x, y)
    ddp = np.load(tmp_path / "grads.npz")
    worst = 0.0
    for name, (torch_name, transposed) in TORCH_NAMES.items():
        g = ddp[torch_name].T if transposed else ddp[torch_name]
        np.testing.assert_allclose(g, ours[name], rtol=1e-9, atol=1e-15, err_msg=name)
        worst = max(worst, float(np.max(np.abs(g - ours[name])) / np.max(np.abs(ours[name]))))
    np.testing.assert_allclose(ddp["0.rnn.bias_hh_l0"], ours["0.b"], rtol=1e-9, atol=1e-15)

    ranks = [np.load(tmp_path / f"out{rank}.npz")["y"] for rank in range(WORLD)]
    np.testing.assert_array_equal(ranks[0], ranks[1])  # DDP kept the replicas identical
    back = bptt.load(tmp_path / "trained0.npz").forward(x)  # step 4: evaluate with bptt
    np.testing.assert_allclose(back, ranks[0], rtol=1e-12, atol=1e-14)
    assert not np.allclose(back, model.forward(x))  # it did train
    with capsys.disabled():
        print("\n" + "".join(outputs), end="")
        print(f"DDP gradients vs bptt on the union batch: max|a-b|/max|b| = {worst:.1e} (rtol 1e-9)")
        print(
            f"bptt outputs of the returned model vs torch: max|a-b| = {np.max(np.abs(back - ranks[0])):.1e}"
        )


# --- the worker: ``python tests/test_ddp.py RANK FOLDER`` -----------------------------------------


def _worker(rank: int, folder: Path) -> None:
    """Train the exported model with DDP on this process's half of the batch; write the results."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    store = f"file://{folder / 'store'}"
    dist.init_process_group("gloo", init_method=store, rank=rank, world_size=WORLD, timeout=STORE_TIMEOUT)
    try:
        module = bptt.to_torch(bptt.from_torch(torch.load(folder / "model.pt")))  # step 1
        ddp = DistributedDataParallel(module)
        data = np.load(folder / "data.npz")
        x, y = (torch.from_numpy(data[k][:, rank * B : (rank + 1) * B]) for k in ("x", "y"))
        optimizer = torch.optim.SGD(ddp.parameters(), lr=LR)
        for step in range(STEPS):  # step 2
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(ddp(x), y, reduction="mean")
            loss.backward()  # DDP averages the gradients over the processes here
            if step == 0 and rank == 0:
                grads = {n: p.grad.numpy() for n, p in module.named_parameters() if p.grad is not None}
                np.savez(folder / "grads.npz", **grads)
            optimizer.step()
            print(f"rank {rank} step {step} loss {loss.item():.6f}", flush=True)
        whole = torch.from_numpy(np.load(folder / "data.npz")["x"])
        np.savez(folder / f"out{rank}.npz", y=module(whole).detach().numpy())
        bptt.save(bptt.from_torch(module), folder / f"trained{rank}.npz")  # step 3
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    _worker(int(sys.argv[1]), Path(sys.argv[2]))
