"""``bptt.recurrent.ids_kernels.row_sums``: ``dW_ih`` for ids, against the one-hot matmul it replaces.

The sums agree with ``one_hot(ids)ᵀ @ δ`` to round-off (float64 1e-12, float32 1e-5 of the largest
entry), for ids repeated, missing (their rows are zero) and of any integer dtype, and whatever ``out``
held before. The layers' use of it is tested with each cell's compiled path (``ids`` options).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bptt.functional import one_hot
from bptt.recurrent import ids_kernels
from cell_runs import TOLERANCE


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    v=st.integers(1, 12),
    g=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float64, np.float32]),
    int_dtype=st.sampled_from([np.int64, np.int32, np.uint8]),
)
def test_row_sums_are_the_one_hot_matmul(
    n: int, v: int, g: int, seed: int, dtype: Any, int_dtype: Any
) -> None:
    """Any sizes (N = V = G = 1 included): row ``v`` is the sum of the δ rows with id ``v``."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, v, n).astype(int_dtype)
    d = rng.normal(size=(n, g)).astype(dtype)
    out = np.full((v, g), np.nan, dtype)  # whatever was there is overwritten
    got = ids_kernels.row_sums(ids, d, out)
    want = one_hot(ids, v, dtype).T @ d  # (V, G)
    assert got is out and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE[dtype] * max(1.0, float(np.abs(want).max())))
    assert not got[np.setdiff1d(np.arange(v), ids)].any()  # an id never seen has a zero row


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_sums_of_a_non_contiguous_delta(dtype: Any) -> None:
    """A strided ``δ`` (a column slice) gives the same sums as its contiguous copy."""
    rng = np.random.default_rng(1)
    ids, d = rng.integers(0, 5, 30), rng.normal(size=(30, 16)).astype(dtype)[:, ::2]
    got = ids_kernels.row_sums(ids, d, np.empty((5, 8), dtype))
    assert np.array_equal(got, ids_kernels.row_sums(ids, d.copy(), np.empty((5, 8), dtype)))
