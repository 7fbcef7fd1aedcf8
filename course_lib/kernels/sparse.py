r"""CSR times dense: ``out = A @ B`` for a sparse ``A`` (CSR) and a dense, C-contiguous ``B``.

NumPy twin: :func:`spmm_rows_numpy` (one row at a time, the same order of operations).

The loop nest, for row ``i`` of ``A``::

    for jj in range(indptr[i], indptr[i + 1]):    # the row's non-zeros
        a, k = data[jj], indices[jj]                # one value and one column index loaded ...
        out[i, :] += a * B[k, :]                    # ... reused for all the columns of B

(the kernel handles four non-zeros per pass over ``out[i, :]``, so the output row is loaded
and stored once per four rows of ``B``).
Why it is fast (and where its limit is): each non-zero costs one value (4 bytes in
float32) and one int32 index (4 bytes) from ``A``, then touches a whole contiguous row of
``B`` (``ncols`` numbers) that stays in cache across rows because every row of ``A`` reads
from the same ``B``.  The innermost loop runs over ``ncols`` contiguous numbers, which the
compiler turns into SIMD fused multiply-adds (``B`` has 64 columns: 4 AVX-512 registers in
float32).  A dense product streams 4 bytes per *entry* of ``A`` and BLAS's blocked kernels
run near the peak FLOP rate; CSR streams 8 bytes per *non-zero* plus an indirect,
data-dependent access to ``B``, so it runs at a fraction of BLAS's rate per multiply-add:
it pays only once enough entries are zero (the benchmark finds where).

Threads: rows are independent, so :func:`spmm_parallel` hands each thread a block of rows
holding about the same number of non-zeros (not the same number of rows: pruned layers
have very uneven rows).  Starting a numba parallel region costs tens of microseconds, so
:func:`course_lib.sparse.spmm` uses one thread for small products.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _rows(indptr, indices, data, B, out, r0, r1):
    ncols = B.shape[1]
    for i in range(r0, r1):
        for c in range(ncols):
            out[i, c] = 0
        jj, end = indptr[i], indptr[i + 1]
        # four non-zeros per pass: out[i, :] is loaded and stored once per four rows of B
        while jj + 4 <= end:
            a0, a1, a2, a3 = data[jj], data[jj + 1], data[jj + 2], data[jj + 3]
            k0, k1, k2, k3 = indices[jj], indices[jj + 1], indices[jj + 2], indices[jj + 3]
            for c in range(ncols):     # contiguous: vectorised to SIMD FMAs
                out[i, c] += a0 * B[k0, c] + a1 * B[k1, c] + a2 * B[k2, c] + a3 * B[k3, c]
            jj += 4
        while jj < end:                # the row's last 0-3 non-zeros
            a, k = data[jj], indices[jj]
            for c in range(ncols):
                out[i, c] += a * B[k, c]
            jj += 1


@njit(cache=True)
def spmm_serial(indptr, indices, data, B, out):
    """``out[:] = A @ B`` on one thread. A: ``(indptr, indices, data)`` CSR of shape
    ``(out.shape[0], B.shape[0])``; B: (k, n) C-contiguous, out: (m, n), same float dtype."""
    _rows(indptr, indices, data, B, out, 0, out.shape[0])


@njit(cache=True, parallel=True)
def spmm_parallel(indptr, indices, data, B, out, bounds):
    """``out[:] = A @ B`` with row blocks ``[bounds[t], bounds[t+1])`` run in parallel
    (see :func:`row_blocks`)."""
    for t in prange(bounds.shape[0] - 1):
        _rows(indptr, indices, data, B, out, bounds[t], bounds[t + 1])


def row_blocks(indptr: np.ndarray, nblocks: int) -> np.ndarray:
    """Row boundaries ``(nblocks + 1,) int64`` splitting the rows into blocks of about equal
    non-zero counts (each block a contiguous range of rows)."""
    m = indptr.shape[0] - 1
    targets = np.linspace(0, indptr[-1], nblocks + 1)
    bounds = np.searchsorted(indptr, targets, side="left").astype(np.int64)
    bounds[0], bounds[-1] = 0, m
    return np.maximum.accumulate(np.clip(bounds, 0, m))


def spmm_rows_numpy(indptr, indices, data, B) -> np.ndarray:
    """The NumPy twin: row ``i`` of the result is ``data[row] @ B[indices[row]]``."""
    m = indptr.shape[0] - 1
    out = np.zeros((m, B.shape[1]), dtype=np.result_type(data, B))
    for i in range(m):
        s, e = indptr[i], indptr[i + 1]
        if e > s:
            out[i] = data[s:e] @ B[indices[s:e]]
    return out
