r"""Sparse weights that save memory and time: CSR storage, ``spmm``, a sparse Linear forward.

Compressed Sparse Row (CSR), the layout of ``scipy.sparse.csr_matrix`` and
``torch.sparse_csr_tensor``, stores an ``(m, k)`` matrix with ``nnz`` non-zeros as three arrays:

- ``data``    (nnz,)  the non-zero values, row by row (float32 or float64);
- ``indices`` (nnz,)  their column indices (int32);
- ``indptr``  (m+1,)  row ``i``'s entries are ``data[indptr[i]:indptr[i+1]]`` (int32).

Memory: ``nnz * (value + 4) + (m + 1) * 4`` bytes against ``m * k * value`` dense, so in
float32 CSR is smaller only below 50% density (each kept value drags a 4-byte index along).

=============================================  ====================================================
ours                                           SciPy / PyTorch
=============================================  ====================================================
``CSRMatrix.from_dense(W)``                    ``scipy.sparse.csr_matrix(W)``, ``W.to_sparse_csr()``
``A.to_dense()``, ``A.nbytes``, ``A.nnz``      ``.toarray()`` / ``.to_dense()``
``spmm(A, B)``                                 ``A @ B`` (csr @ dense)
``sparse_linear_forward(x, A, b)``             ``F.linear(x, W, b)`` with W sparse
=============================================  ====================================================

The kernel (numba, rows in parallel balanced by non-zeros) is in
:mod:`course_lib.kernels.sparse`, beside its NumPy twin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import as_array

__all__ = ["CSRMatrix", "spmm", "sparse_linear_forward", "PARALLEL_MIN_WORK"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

#: multiply-adds (nnz * columns of B) below which one thread is used: starting a numba
#: parallel region costs ~70 us here, about what one thread needs for 2M multiply-adds
PARALLEL_MIN_WORK = 2_000_000


@dataclass(frozen=True)
class CSRMatrix:
    """A sparse ``(m, k)`` matrix in CSR form (see the module text).

    indptr: (m+1,) int32, indices: (nnz,) int32, data: (nnz,) float32/float64, shape: (m, k).
    Build one with :meth:`from_dense`; the constructor checks the arrays' consistency.
    """
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple

    def __post_init__(self):
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 2 or min(shape) < 0:
            raise ValueError(f"shape must be (rows, cols) with non-negative sizes, got {self.shape!r}")
        indptr = np.ascontiguousarray(self.indptr, dtype=np.int32)
        indices = np.ascontiguousarray(self.indices, dtype=np.int32)
        data = np.ascontiguousarray(self.data)
        if data.dtype not in _FLOATS:
            raise TypeError(f"data must be float32 or float64, got {data.dtype}")
        if indptr.shape != (shape[0] + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise ValueError(f"indptr must be non-decreasing of shape ({shape[0] + 1},) from 0, "
                             f"got shape {indptr.shape}")
        if indices.shape != data.shape or data.ndim != 1 or indptr[-1] != data.size:
            raise ValueError(f"indices and data must both have indptr[-1]={indptr[-1]} entries, "
                             f"got {indices.shape} and {data.shape}")
        if data.size and (indices.min() < 0 or indices.max() >= shape[1]):
            raise ValueError(f"indices must lie in [0, {shape[1]}), got [{indices.min()}, {indices.max()}]")
        for k, v in (("shape", shape), ("indptr", indptr), ("indices", indices), ("data", data)):
            object.__setattr__(self, k, v)

    @classmethod
    def from_dense(cls, W) -> "CSRMatrix":
        """CSR of a dense 2-D float array, keeping the entries that are not exactly 0
        (a pruned weight: pass ``weight_orig * weight_mask`` or ``layer.weight`` after a forward)."""
        W = as_array("W", W, ndim=2, dtype_kind="f")
        if W.dtype not in _FLOATS:
            raise TypeError(f"W must be float32 or float64, got {W.dtype}")
        rows, cols = np.nonzero(W)
        indptr = np.zeros(W.shape[0] + 1, np.int32)
        np.cumsum(np.bincount(rows, minlength=W.shape[0]), out=indptr[1:])
        return cls(indptr, cols.astype(np.int32), W[rows, cols], W.shape)

    @property
    def nnz(self) -> int:
        return int(self.data.size)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def density(self) -> float:
        return self.nnz / (self.shape[0] * self.shape[1]) if self.shape[0] * self.shape[1] else 0.0

    @property
    def nbytes(self) -> int:
        """Bytes of the three arrays: ``nnz * (itemsize + 4) + (m + 1) * 4``."""
        return int(self.data.nbytes + self.indices.nbytes + self.indptr.nbytes)

    def to_dense(self) -> np.ndarray:
        out = np.zeros(self.shape, self.dtype)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        out[rows, self.indices] = self.data
        return out

    def __matmul__(self, B):
        return spmm(self, B)

    def __repr__(self):
        return (f"CSRMatrix(shape={self.shape}, nnz={self.nnz}, density={self.density:.3f}, "
                f"dtype={self.dtype})")


def spmm(A: CSRMatrix, B, *, parallel=None, out=None, backend: str = "numba") -> np.ndarray:
    """``A @ B`` for a :class:`CSRMatrix` ``A`` (m, k) and a dense ``B`` (k, n) of A's dtype.

    Returns (m, n), A's dtype (C-contiguous; written into ``out`` if given).
    parallel: ``None`` = threads only when ``nnz * n >= PARALLEL_MIN_WORK``; True/False force it.
    backend: ``"numba"`` (the kernel) or ``"numpy"`` (the twin, for checking).
    PyTorch: ``torch.sparse.mm(A_csr, B)``; SciPy: ``csr @ B``.
    """
    if not isinstance(A, CSRMatrix):
        raise TypeError(f"A must be a CSRMatrix, got {type(A).__name__}")
    B = as_array("B", B, ndim=2, dtype_kind="f", finite=False)
    if B.shape[0] != A.shape[1]:
        raise ValueError(f"B must have {A.shape[1]} rows (A.shape={A.shape}), got B.shape={B.shape}")
    if B.dtype != A.dtype:
        raise TypeError(f"B must have A's dtype {A.dtype}, got {B.dtype}")
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
    if backend == "numpy":
        return _kernels().spmm_rows_numpy(A.indptr, A.indices, A.data, B)
    B = np.ascontiguousarray(B)
    shape = (A.shape[0], B.shape[1])
    if out is None:
        out = np.empty(shape, A.dtype)
    elif not (isinstance(out, np.ndarray) and out.shape == shape and out.dtype == A.dtype
              and out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous {A.dtype} array of shape {shape}")
    k = _kernels()
    import numba
    if parallel is None:
        parallel = A.nnz * B.shape[1] >= PARALLEL_MIN_WORK and numba.get_num_threads() > 1
    if parallel:
        k.spmm_parallel(A.indptr, A.indices, A.data, B, out,
                        k.row_blocks(A.indptr, 4 * numba.get_num_threads()))
    else:
        k.spmm_serial(A.indptr, A.indices, A.data, B, out)
    return out


def sparse_linear_forward(x, A: CSRMatrix, b=None, **kwargs) -> np.ndarray:
    """``x @ W.T + b`` with the weight ``W`` (out, in) stored as CSR ``A``: the forward of a
    pruned :class:`course_lib.nn.Linear`.  x: (n, in) -> (n, out), A's dtype.

    Computed as ``(W @ x.T).T``: CSR rows are output units, and ``x.T`` made contiguous is
    the dense ``B`` whose rows the kernel reads (n columns: a batch of 64 vectorises well).
    """
    if not isinstance(A, CSRMatrix):
        raise TypeError(f"A must be a CSRMatrix, got {type(A).__name__}")
    x = as_array("x", x, ndim=2, dtype_kind="f", finite=False)
    if x.shape[1] != A.shape[1]:
        raise ValueError(f"x must have {A.shape[1]} columns (A.shape={A.shape}), got {x.shape}")
    out = spmm(A, np.ascontiguousarray(x.T, dtype=A.dtype), **kwargs).T
    if b is not None:
        b = as_array("b", b, ndim=1, dtype_kind="f", finite=False)
        if b.shape != (A.shape[0],):
            raise ValueError(f"b must have shape ({A.shape[0]},), got {b.shape}")
        out = out + b
    return out


def _kernels():
    from .kernels import sparse as k  # numba is imported (and the kernels compiled) on first use
    return k
