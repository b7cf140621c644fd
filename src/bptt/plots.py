"""Pictures (matplotlib, Agg backend, PNG). matplotlib is the optional ``bptt[plot]`` extra."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["plot_history"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: Any, path: str | os.PathLike[str]) -> None:
    """Loss per step (log scale) and held-out exact-match accuracy per check, as one PNG."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    ax_loss.plot(range(1, len(history.loss) + 1), history.loss, lw=1)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("training loss")
    ax_acc.plot(history.check_step, [100 * a for a in history.accuracy], marker="o")
    ax_acc.set_ylim(-5, 105)
    ax_acc.set_ylabel("held-out exact match (%)")
    ax_acc.set_xlabel("step")
    fig.suptitle("bptt: learning binary addition")
    fig.tight_layout()
    tmp = f"{os.fspath(path)}.tmp.png"
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
