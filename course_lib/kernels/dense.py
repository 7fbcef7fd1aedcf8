r"""A fully connected layer written as plain loops, to measure against BLAS (chapter 2).

NumPy twin: :func:`course_lib.nn.linear_forward` (``x @ W.T + b``, which calls BLAS).

This file exists to be *beaten*.  A matrix product does :math:`n \cdot out \cdot in`
multiply-adds on :math:`n \cdot in + out \cdot in` numbers: every number is reused many
times, so the speed is decided by how well the loops reuse data already in cache and
registers.  BLAS libraries (OpenBLAS, MKL) tile the product into blocks that fit each cache
level, pack them, and run hand-written SIMD micro-kernels (on several cores for large
products).  The loops
below compile to straightforward machine code; numba cannot reorder the floating-point
sums into SIMD lanes without ``fastmath`` and does none of the blocking.  The chapter
measures the gap; that is why ``course_lib.nn`` keeps every matrix product on ``@``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..validation import as_array


@njit(cache=True)
def _linear_loops(x, W, b, out):
    n, d = x.shape
    m = W.shape[0]
    for i in range(n):
        for j in range(m):
            acc = b[j]
            for k in range(d):   # a dot product of two contiguous rows
                acc += x[i, k] * W[j, k]
            out[i, j] = acc


def linear_forward_loops(x, W, b):
    """``x @ W.T + b`` as three nested loops compiled by numba.

    x: (n, in), W: (out, in), b: (out,), one float dtype.  Returns (n, out).
    """
    x = as_array("x", x, ndim=2, dtype_kind="f", finite=False)
    W = as_array("W", W, ndim=2, dtype_kind="f", finite=False)
    b = as_array("b", b, ndim=1, dtype_kind="f", finite=False)
    if W.shape[1] != x.shape[1]:
        raise ValueError(f"W must have shape (out, {x.shape[1]}) to match x, got {W.shape}")
    if b.shape != (W.shape[0],):
        raise ValueError(f"b must have shape ({W.shape[0]},), got {b.shape}")
    if not (x.dtype == W.dtype == b.dtype):
        raise TypeError(f"x, W and b must share one dtype, got {x.dtype}, {W.dtype}, {b.dtype}")
    out = np.empty((x.shape[0], W.shape[0]), dtype=x.dtype)
    _linear_loops(np.ascontiguousarray(x), np.ascontiguousarray(W), b, out)
    return out
