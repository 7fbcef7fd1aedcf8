"""course_lib.sparse: CSR storage and the numba SpMM kernel vs its NumPy twin, dense, SciPy, torch."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from course_lib import nn, prune
from course_lib.sparse import CSRMatrix, sparse_linear_forward, spmm

pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")


def _sparse(shape, density, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal(shape).astype(dtype)
    W[rng.random(shape) >= density] = 0
    return W


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (64, 33), (130, 200)])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.3, 1.0])
def test_from_dense_round_trip_and_matches_scipy(shape, density):
    W = _sparse(shape, density, seed=shape[0])
    A = CSRMatrix.from_dense(W)
    np.testing.assert_array_equal(A.to_dense(), W)
    S = sp.csr_matrix(W)
    np.testing.assert_array_equal(A.indptr, S.indptr)
    np.testing.assert_array_equal(A.indices, S.indices)
    np.testing.assert_array_equal(A.data, S.data)
    assert A.indptr.dtype == A.indices.dtype == np.int32
    assert A.nbytes == A.nnz * (8 + 4) + (shape[0] + 1) * 4


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("ncols", [1, 3, 64, 70])
@pytest.mark.parametrize("parallel", [False, True])
def test_spmm_matches_twin_dense_and_torch(dtype, tol, ncols, parallel):
    W = _sparse((97, 150), 0.1, seed=ncols, dtype=dtype)
    W[5] = 0                                   # empty rows, also at the ends
    W[0] = 0
    W[-1] = 0
    W[7, :] = np.arange(150) + 1.0              # one full row: unbalanced nnz per row
    B = np.random.default_rng(1).standard_normal((150, ncols)).astype(dtype)
    A = CSRMatrix.from_dense(W)
    got = spmm(A, B, parallel=parallel)
    assert got.dtype == dtype and got.shape == (97, ncols)
    scale = np.abs(W) @ np.abs(B) + 1
    np.testing.assert_array_less(np.abs(got - W @ B) / scale, tol)
    np.testing.assert_array_less(np.abs(got - spmm(A, B, backend="numpy")) / scale, tol)
    T = torch.from_numpy(W).to_sparse_csr()
    np.testing.assert_array_less(np.abs(got - (T @ torch.from_numpy(B)).numpy()) / scale, tol)
    assert np.all(got[[0, 5, 96]] == 0)


def test_all_zero_and_empty_shapes():
    A = CSRMatrix.from_dense(np.zeros((4, 6), np.float32))
    assert A.nnz == 0
    out = spmm(A, np.ones((6, 2), np.float32))
    np.testing.assert_array_equal(out, np.zeros((4, 2)))
    out = spmm(A, np.ones((6, 2), np.float32), out=np.full((4, 2), 7.0, np.float32))
    np.testing.assert_array_equal(out, 0)      # out is overwritten, not accumulated into


def test_row_blocks_balance_nonzeros():
    from course_lib.kernels.sparse import row_blocks
    W = np.zeros((100, 50)); W[:10] = 1.0; W[10:, 0] = 1.0     # 500 + 90 non-zeros
    A = CSRMatrix.from_dense(W)
    b = row_blocks(A.indptr, 4)
    assert b[0] == 0 and b[-1] == 100 and np.all(np.diff(b) >= 0)
    per_block = np.diff(A.indptr[b])
    assert per_block.max() <= 2 * A.nnz / 4       # rows are not split evenly, non-zeros are


def test_sparse_linear_forward_equals_the_pruned_layer():
    layer = nn.Linear(40, 24, seed=0, dtype=np.float64)
    prune.l1_unstructured(layer, "weight", 0.9)
    x = np.random.default_rng(0).standard_normal((64, 40))
    ref = layer(x)
    A = CSRMatrix.from_dense(prune.effective_weight(layer))
    assert A.nnz == round(0.1 * 40 * 24)
    np.testing.assert_allclose(sparse_linear_forward(x, A, layer.bias), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A @ x.T, (ref - layer.bias).T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call,exc,match", [
    (lambda A, B: spmm(np.eye(3), B), TypeError, "A must"),
    (lambda A, B: spmm(A, B[:2]), ValueError, "B must have 3 rows"),
    (lambda A, B: spmm(A, B.astype(np.float32)), TypeError, "dtype"),
    (lambda A, B: spmm(A, B[:, 0]), ValueError, "B must be 2-dimensional"),
    (lambda A, B: spmm(A, B, backend="cuda"), ValueError, "backend"),
    (lambda A, B: CSRMatrix.from_dense(np.eye(3, dtype=int)), TypeError, "W must"),
    (lambda A, B: CSRMatrix(A.indptr, A.indices + 5, A.data, (3, 3)), ValueError, "indices"),
    (lambda A, B: CSRMatrix(A.indptr[:-1], A.indices, A.data, (3, 3)), ValueError, "indptr"),
    (lambda A, B: sparse_linear_forward(B.T[:, :2], A), ValueError, "x must have 3 columns"),
])
def test_bad_input(call, exc, match):
    A = CSRMatrix.from_dense(np.eye(3))
    B = np.ones((3, 2))
    with pytest.raises(exc, match=match):
        call(A, B)


def test_break_even_interpolates_where_ours_meets_dense_and_table_formats():
    from course_lib.sparse_bench import break_even, format_table

    def row(s, dense, ours):
        return {"sparsity": s, "nnz": 10, "csr_bytes": 80, "dense_bytes": 400,
                "times": {"dense BLAS": dense, "ours": ours}}
    rows = [row(0.5, 1.0, 4.0), row(0.7, 1.0, 2.0), row(0.9, 1.0, 0.5)]
    # log-ratio goes log 2 -> log 0.5 between 70% and 90%: equal at the midpoint
    assert break_even(rows) == pytest.approx(0.8)
    assert break_even(rows[:2]) is None
    table = format_table(rows)
    assert "ours/dense" in table and "scipy" not in table and "4.00x" in table


def test_structured_table_formats_speedups():
    from course_lib.sparse_bench import format_structured
    rows = [{"sparsity": 0.5, "times": {"dense (all rows)": 2.0, "structured (rows removed)": 1.0,
                                        "unstructured CSR (ours)": 4.0}}]
    text = format_structured(rows)
    assert "2.0x" in text and "0.5x" in text and "1.0x" in text
