"""numba kernels of chapter 2 against their NumPy twins, in float32 and float64."""

import numpy as np
import pytest

from course_lib import nn
from course_lib.kernels.activations import (bias_relu_forward, bias_relu_forward_,
                                            bias_relu_forward_numpy, relu_bias_backward,
                                            relu_bias_backward_numpy)
from course_lib.kernels.dense import linear_forward_loops
from course_lib.kernels.softmax_ce import softmax_cross_entropy_numba
from course_lib.losses import softmax_cross_entropy

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
SHAPES = [(1, 1), (7, 3), (64, 128)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_bias_relu_forward_matches_numpy(dtype, shape):
    rng = np.random.default_rng(0)
    z = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    z_before = z.copy()
    out = bias_relu_forward(z, b)
    assert out.dtype == dtype and np.array_equal(z, z_before)  # the copying version
    np.testing.assert_array_equal(out, bias_relu_forward_numpy(z, b))  # elementwise: exact
    assert bias_relu_forward_(z, b) is z and np.array_equal(z, out)    # the in-place version


def test_bias_relu_forward_keeps_nan():
    z = np.array([[np.nan, -1.0, 1.0]])
    out = bias_relu_forward(z, np.zeros(3))
    assert np.isnan(out[0, 0]) and out[0, 1] == 0 and out[0, 2] == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_bias_backward_matches_numpy(dtype, shape):
    rng = np.random.default_rng(1)
    out = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    dz, db = relu_bias_backward(dout, out)
    dz_np, db_np = relu_bias_backward_numpy(dout, out)
    np.testing.assert_array_equal(dz, dz_np)
    np.testing.assert_allclose(db, db_np, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert dz.dtype == db.dtype == dtype
    into = np.empty(shape[1], dtype)
    assert relu_bias_backward(dout, out, out_db=into) is not into
    np.testing.assert_array_equal(into, db)


def test_activation_kernels_bad_input():
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        bias_relu_forward(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(TypeError, match="b must have dtype float64"):
        bias_relu_forward(np.zeros((2, 3)), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\)"):
        relu_bias_backward(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="out_db must be a"):
        relu_bias_backward(np.zeros((2, 3)), np.zeros((2, 3)), out_db=np.zeros(2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,C", [(1, 2), (13, 10), (256, 10)])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_softmax_ce_matches_numpy(dtype, n, C, scale):
    rng = np.random.default_rng(2)
    z = (scale * rng.standard_normal((n, C))).astype(dtype)
    y = rng.integers(0, C, n)
    loss, dz = softmax_cross_entropy_numba(z, y)
    loss_np, dz_np = softmax_cross_entropy(z, y)
    assert dz.dtype == dtype and np.isfinite(loss)
    assert abs(loss - loss_np) <= RTOL[dtype] * max(1.0, abs(loss_np))
    np.testing.assert_allclose(dz, dz_np, rtol=10 * RTOL[dtype], atol=RTOL[dtype] / n)


def test_softmax_ce_numba_checks_like_numpy():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"y must be in \[0, 4\)"):
        softmax_cross_entropy_numba(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="y must have 3 labels"):
        softmax_cross_entropy_numba(z, np.array([0, 1]))
    z[0, 0] = np.nan
    with pytest.raises(ValueError, match="logits contains 1 non-finite"):
        softmax_cross_entropy_numba(z, np.array([0, 1, 2]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,m", [(1, 1, 1), (5, 7, 3), (32, 64, 128)])
def test_linear_loops_match_blas(dtype, n, d, m):
    rng = np.random.default_rng(3)
    x, W, b = (rng.standard_normal(s).astype(dtype) for s in ((n, d), (m, d), (m,)))
    np.testing.assert_allclose(linear_forward_loops(x, W, b), x @ W.T + b,
                               rtol=10 * RTOL[dtype], atol=10 * RTOL[dtype] * np.sqrt(d))
    with pytest.raises(TypeError, match="share one dtype"):
        linear_forward_loops(x, W.astype(np.float16), b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes,activation", [([8, 16, 4], "relu"), ([8, 16, 12, 4], "relu"),
                                              ([8, 16, 4], "tanh")])
def test_numba_backend_matches_numpy_backend(dtype, sizes, activation):
    a = nn.MLP(sizes, activation, seed=0, dtype=dtype)
    b = nn.MLP(sizes, activation, seed=0, dtype=dtype, backend="numba")
    X = np.random.default_rng(4).standard_normal((9, sizes[0]))
    G = np.random.default_rng(5).standard_normal((9, sizes[-1]))
    np.testing.assert_allclose(b(X), a(X), rtol=RTOL[dtype], atol=RTOL[dtype])
    np.testing.assert_allclose(b.backward(G), a.backward(G), rtol=RTOL[dtype], atol=RTOL[dtype])
    for ga, gb in zip(a.grads, b.grads):
        np.testing.assert_allclose(gb, ga, rtol=10 * RTOL[dtype], atol=10 * RTOL[dtype])
    n_fused = sum(len(g) == 2 for g in b._plan)
    assert n_fused == (len(sizes) - 2 if activation == "relu" else 0)
