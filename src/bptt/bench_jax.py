"""The JAX column of ``bptt bench``: the same model and loss as bptt's rows, ``jax.jit``-compiled.

``cell(I, H) -> Dense(H, O)`` with mean squared error for the ``rnn``/``lstm``/``gru`` rows, and the
character model's update (LSTM over one-hot characters -> Dense, softmax cross-entropy, one Adam
step) for the ``charlm`` row. The recurrence is one ``jax.lax.scan``; ``jax.value_and_grad`` gives
the gradient of every parameter (and of ``x`` for the MSE rows). Parameters are bptt's own initial
values (keyed as ``Sequential.params``: ``"0.W_ih"``, ``"1.W"``, ...), so losses and gradients
match bptt's to rounding; ``tests/test_bench_jax.py`` holds them to float64 rtol 1e-9.

JAX is optional (``pip install 'bptt[bench]'``) and imported only by ``load``. XLA sizes its CPU
thread pools when jax is imported, so ``load`` sets the environment first: ``PJRT_NPROC=N`` (the
knob jaxlib 0.10 reads) and, for one thread, also
``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"``. A process that
sets ``PJRT_NPROC`` itself keeps its own; a thread count other than the one fixed at import cannot
be honoured, and ``bptt bench`` says so under its table (with the CPU time per wall time it saw).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "ADAM",
    "INSTALL",
    "ONE_THREAD_FLAGS",
    "JaxRuntime",
    "adam_update",
    "jax_iteration",
    "load",
    "loss_function",
    "value_and_grads",
]

ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
INSTALL = "JAX column n/a: jax is not installed; pip install 'bptt[bench]' (or pip install jax==0.10.2)"
ADAM = {"lr": 0.005, "b1": 0.9, "b2": 0.999, "eps": 1e-8}  # charlm's Adam, the same in every engine


class JaxRuntime:
    """An imported jax and the thread count its CPU backend was given.

    Attributes
    ----------
    jax : module
    threads : int or None
        The thread count its pools were sized for (``PJRT_NPROC``); ``None`` when jax was
        imported before ``load`` could set it.
    how : str
        One line saying how the threads were set, for the table's footer.
    """

    def __init__(self, jax: Any, threads: int | None, how: str) -> None:
        self.jax, self.threads, self.how = jax, threads, how

    def honours(self, threads: int) -> bool:
        """Whether rows at ``threads`` threads run JAX at that thread count."""
        return self.threads == threads


def load(threads: list[int], float64: bool) -> JaxRuntime | None:
    """Import jax with its CPU thread pools sized for ``min(threads)`` (``None`` when jax is missing).

    Unless jax is already imported or ``PJRT_NPROC`` is set, ``PJRT_NPROC`` (which sizes the PJRT
    CPU client's pools in jaxlib 0.10) is set to ``min(threads)``, and for one thread
    ``XLA_FLAGS`` to ``ONE_THREAD_FLAGS`` too when it is unset (that recipe alone no longer pins
    jaxlib 0.10: measured 1.8 cores busy on 2). float64 is enabled when ``float64``. Later calls
    in the process get the thread count fixed by the first.
    """
    already = sys.modules.get("jax") is not None
    pinned: list[str] = []
    n = min(threads)
    if not already and "PJRT_NPROC" not in os.environ:
        os.environ["PJRT_NPROC"] = str(n)
        pinned.append("PJRT_NPROC")
        if n == 1 and "XLA_FLAGS" not in os.environ:
            os.environ["XLA_FLAGS"] = ONE_THREAD_FLAGS
            pinned.append("XLA_FLAGS")
    try:
        import jax
    except ImportError:
        for name in pinned:
            del os.environ[name]
        return None
    if float64:
        jax.config.update("jax_enable_x64", True)
    if already and _LOADED:
        return _LOADED[0]
    nproc = os.environ.get("PJRT_NPROC", "")
    if already or not nproc.isdigit():
        runtime = JaxRuntime(jax, None, "JAX threads: not pinned (jax was imported before the benchmark)")
    else:
        flags = os.environ.get("XLA_FLAGS", "")
        runtime = JaxRuntime(
            jax, int(nproc), f'JAX threads: {nproc} (PJRT_NPROC={nproc} XLA_FLAGS="{flags}")'
        )
    _LOADED[:] = [runtime]
    return runtime


_LOADED: list[JaxRuntime] = []  # the first load's runtime: XLA's threads are fixed for the process


def _hidden(cell: str, jnp: Any, lax: Any, p: dict[str, Any], a: Any) -> Any:
    """Every hidden state ``(T, B, H)`` of ``cell`` from the input projections ``a (T, B, G·H)``."""
    W_hh = p["0.W_hh"]
    H = W_hh.shape[0]
    h0 = jnp.zeros((a.shape[1], H), a.dtype)

    def rnn(h: Any, a_t: Any) -> tuple[Any, Any]:
        h = jnp.tanh(a_t + h @ W_hh)
        return h, h

    def lstm(carry: tuple[Any, Any], a_t: Any) -> tuple[Any, Any]:
        h, c = carry
        z = a_t + h @ W_hh  # gates packed [i | f | g | o]
        i, f = sigmoid(z[:, :H]), sigmoid(z[:, H : 2 * H])
        g, o = jnp.tanh(z[:, 2 * H : 3 * H]), sigmoid(z[:, 3 * H :])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), h

    def gru(h: Any, a_t: Any) -> tuple[Any, Any]:
        rec = h @ W_hh  # gates packed [r | z | n]; the reset gate scales h W_hn + b_hn
        r = sigmoid(a_t[:, :H] + rec[:, :H])
        z = sigmoid(a_t[:, H : 2 * H] + rec[:, H : 2 * H])
        n = jnp.tanh(a_t[:, 2 * H :] + r * (rec[:, 2 * H :] + p["0.b_hn"]))
        h = (1.0 - z) * n + z * h
        return h, h

    def sigmoid(v: Any) -> Any:
        return 1.0 / (1.0 + jnp.exp(-v))

    if cell == "rnn":
        return lax.scan(rnn, h0, a)[1]
    if cell == "gru":
        return lax.scan(gru, h0, a)[1]
    return lax.scan(lstm, (h0, h0), a)[1]


def loss_function(jax: Any, cell: str) -> Callable[[dict[str, Any], Any, Any], Any]:
    """``loss(params, x, target)`` of a row: MSE for ``rnn``/``lstm``/``gru``, for ``charlm``
    softmax cross-entropy of an LSTM over one-hot ``x (T, B, V)`` against ids ``target (T, B)``."""
    jnp, lax = jax.numpy, jax.lax
    recurrence = "lstm" if cell == "charlm" else cell

    def loss(p: dict[str, Any], x: Any, target: Any) -> Any:
        hs = _hidden(recurrence, jnp, lax, p, x @ p["0.W_ih"] + p["0.b"])
        y = hs @ p["1.W"] + p["1.b"]
        if cell != "charlm":
            return jnp.mean((y - target) ** 2)
        logp = jax.nn.log_softmax(y, axis=2)
        return -jnp.mean(jnp.take_along_axis(logp, target[:, :, None], axis=2))

    return loss


def value_and_grads(
    jax: Any, cell: str, params: dict[str, np.ndarray], x: np.ndarray, target: np.ndarray
) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
    """The oracle twin: ``(loss, grads keyed as params, grad_x)`` as NumPy arrays, jit-compiled.

    For ``charlm`` ``x`` is ids ``(T, B)``, taken as one-hot floats (``grad_x`` is then theirs).
    """
    if cell == "charlm":
        x = _one_hot(x, params["0.W_ih"].shape[0], params["1.W"].dtype)
    f = jax.jit(jax.value_and_grad(loss_function(jax, cell), argnums=(0, 1)))
    loss, (grads, grad_x) = f(params, x, target)
    return float(loss), {k: np.asarray(v) for k, v in grads.items()}, np.asarray(grad_x)


def adam_update(jax: Any) -> Callable[..., Any]:
    """The charlm update: ``(params, m, v, x, target, step_size, bias2) -> (loss, params, m, v)``.

    bptt's Adam (torch's form): ``m += (1-β₁)(g - m)``, ``v = β₂ v + (1-β₂) g²``,
    ``p -= step_size · m / (√v / bias2 + eps)`` with ``step_size = lr / (1-β₁ᵗ)`` and
    ``bias2 = √(1-β₂ᵗ)``, both computed by the caller for step ``t``.
    """
    jnp, grad = jax.numpy, jax.value_and_grad(loss_function(jax, "charlm"))
    b1, b2, eps = ADAM["b1"], ADAM["b2"], ADAM["eps"]

    def update(p: Any, m: Any, v: Any, x: Any, target: Any, step_size: Any, bias2: Any) -> Any:
        loss, g = grad(p, x, target)
        m = {k: m[k] + (g[k] - m[k]) * (1.0 - b1) for k in p}
        v = {k: v[k] * b2 + g[k] * g[k] * (1.0 - b2) for k in p}
        p = {k: p[k] - m[k] / (jnp.sqrt(v[k]) / bias2 + eps) * step_size for k in p}
        return loss, p, m, v

    return update


def _one_hot(ids: np.ndarray, V: int, dtype: Any) -> np.ndarray:
    return np.eye(V, dtype=dtype)[ids]


def jax_iteration(
    jax: Any, cell: str, params: dict[str, np.ndarray], x: np.ndarray, target: np.ndarray
) -> tuple[Callable[[], None], float]:
    """One compiled training iteration on bptt's initial ``params`` and data, and its compile seconds.

    MSE rows: loss and every gradient (parameters and ``x``). ``charlm``: ``x`` is ids ``(T, B)``,
    taken as one-hot floats, and the iteration is one Adam step (``adam_update``) that keeps its
    parameters and moments from call to call. The compile time (``lower(...).compile()``) is not
    part of the iteration.
    """
    dtype = params["1.W"].dtype
    p = {k: jax.numpy.asarray(v) for k, v in params.items()}
    if cell != "charlm":
        args: tuple[Any, ...] = (p, jax.numpy.asarray(x), jax.numpy.asarray(target))
        jitted = jax.jit(jax.value_and_grad(loss_function(jax, cell), argnums=(0, 1)))
        start = time.perf_counter()
        compiled = jitted.lower(*args).compile()
        seconds = time.perf_counter() - start

        def step() -> None:
            jax.block_until_ready(compiled(*args))

        return step, seconds
    hot = jax.numpy.asarray(_one_hot(x, params["0.W_ih"].shape[0], dtype))
    zeros = {k: jax.numpy.zeros_like(v) for k, v in p.items()}
    state: list[Any] = [p, zeros, dict(zeros), 0]
    scalar = np.asarray(1.0, dtype)
    start = time.perf_counter()
    labels = jax.numpy.asarray(target.astype(np.int32))
    compiled = jax.jit(adam_update(jax)).lower(p, zeros, zeros, hot, labels, scalar, scalar).compile()
    seconds = time.perf_counter() - start

    def adam_step() -> None:
        t = state[3] = state[3] + 1
        step_size = np.asarray(ADAM["lr"] / (1.0 - ADAM["b1"] ** t), dtype)
        bias2 = np.asarray(np.sqrt(1.0 - ADAM["b2"] ** t), dtype)
        out = compiled(state[0], state[1], state[2], hot, labels, step_size, bias2)
        state[0], state[1], state[2] = jax.block_until_ready(out[1:])

    return adam_step, seconds
