"""Numbers as bit sequences, least significant bit first, and random sums to learn from."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..._types import Array
from ..._validate import as_array, as_rng, positive_int
from ...errors import ShapeError, fmt_shape

__all__ = [
    "all_pairs",
    "bits_to_int",
    "carry_chains",
    "decode",
    "encode",
    "int_to_bits",
    "make_batch",
    "operand",
    "sum_bits",
]


def operand(v: Any, where: str, name: str) -> int:
    """``v`` as a non-negative Python int, or ``ValueError`` naming ``where`` and ``name``."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{where}: {name} must be a non-negative integer, got {v!r}")
    return int(v)


def int_to_bits(n: int, length: int) -> NDArray[np.uint8]:
    """The ``length`` lowest bits of ``n``, least significant first, as 0/1 ``uint8``."""
    raw = np.frombuffer(n.to_bytes((length + 7) // 8, "little"), np.uint8)
    return np.unpackbits(raw, bitorder="little")[:length]


def bits_to_int(bits: NDArray[Any]) -> int:
    """Inverse of ``int_to_bits``: 0/1 values, least significant first."""
    return int.from_bytes(np.packbits(np.asarray(bits, np.uint8), bitorder="little").tobytes(), "little")


def encode(a: int, b: int, n_bits: int | None = None) -> Array:
    """Encode ``a`` and ``b`` as an input sequence ``x (T, 1, 2)`` with ``T = n_bits + 1``.

    ``n_bits`` defaults to the wider operand's bit length (at least 1).
    """
    a, b = operand(a, "encode", "a"), operand(b, "encode", "b")
    need = max(a.bit_length(), b.bit_length(), 1)
    if n_bits is None:
        n_bits = need
    n_bits = positive_int(n_bits, "encode", "n_bits")
    if n_bits < need:
        raise ValueError(f"encode: n_bits = {n_bits} is too small for operands of {need} bits")
    x = np.zeros((n_bits + 1, 1, 2))
    x[:n_bits, 0, 0] = int_to_bits(a, n_bits)
    x[:n_bits, 0, 1] = int_to_bits(b, n_bits)
    return x


def decode(bits: NDArray[Any]) -> int:
    """The integer whose bits, least significant first, are ``bits``.

    Parameters
    ----------
    bits : ndarray (T,)
        0/1 values, or probabilities in ``[0, 1]`` thresholded at 0.5.
    """
    p = as_array(bits, np.dtype(np.float64), "decode", "bits")
    if p.ndim != 1:
        raise ShapeError(f"decode: bits has shape {fmt_shape(p.shape)}; expected (T,), one value per step")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("decode: bits must be 0/1 or probabilities in [0, 1] (NaN is neither)")
    return bits_to_int(p > 0.5)


def make_batch(n_bits: int, batch_size: int, rng: np.random.Generator | int | None) -> tuple[Array, Array]:
    """Random sums with operands uniform in ``[0, 2**n_bits)``.

    Returns
    -------
    x : ndarray (T, B, 2)
        Operand bits; the last step is zeros.
    y : ndarray (T, B, 1)
        Sum bits, the final carry last.
    """
    n_bits = positive_int(n_bits, "make_batch", "n_bits")
    B = positive_int(batch_size, "make_batch", "batch_size")
    rng = as_rng(rng, "make_batch")
    x = np.zeros((n_bits + 1, B, 2))
    x[:n_bits] = rng.integers(0, 2, (n_bits, B, 2))  # uniform bits are uniform operands
    return x, sum_bits(x)


def carry_chains(
    length: int, batch: int, p_propagate: float, rng: np.random.Generator
) -> tuple[Array, Array]:
    """Sums where each position propagates a carry (``a_t ≠ b_t``) with probability ``p_propagate``.

    Long runs of propagate positions are where a learned adder forgets its carry; random sums
    of 10,000 bits hold runs of about 14, random 8-bit training sums at most 8.
    """
    x = np.zeros((length + 1, batch, 2))
    a = rng.integers(0, 2, (length, batch))
    propagate = rng.random((length, batch)) < p_propagate
    x[:length, :, 0] = a
    x[:length, :, 1] = np.where(propagate, 1 - a, a)  # elsewhere a generate (1,1) or a kill (0,0)
    return x, sum_bits(x)


def sum_bits(x: Array) -> Array:
    """Target bits ``y (T, B, 1)`` of the operands in ``x (T, B, 2)``, by ripple carry."""
    bits = x.astype(np.int8)
    y = np.empty((*x.shape[:2], 1))  # (T, B, 1)
    carry = np.zeros(x.shape[1], np.int8)
    for t in range(x.shape[0]):
        s = bits[t, :, 0] + bits[t, :, 1] + carry
        y[t, :, 0] = s & 1
        carry = s >> 1
    return y


def all_pairs(n_bits: int) -> Array:
    """Every operand pair at ``n_bits`` bits as ``x (T, 4**n_bits, 2)``."""
    n = np.arange(1 << n_bits)
    a, b = np.repeat(n, n.size), np.tile(n, n.size)
    x = np.zeros((n_bits + 1, a.size, 2))
    shifts = np.arange(n_bits)[:, None]
    x[:n_bits, :, 0] = (a >> shifts) & 1
    x[:n_bits, :, 1] = (b >> shifts) & 1
    return x
