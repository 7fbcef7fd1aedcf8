"""numba kernels of chapter 1 against their NumPy twins."""

import numpy as np
import pytest

from course_lib import gd
from course_lib.kernels import linear_grad as K
from course_lib.regression import mse_gradient, softmax_gradient


@pytest.mark.parametrize("n,d", [(1, 1), (33, 1), (64, 7)])
def test_mse_gradient_kernel(rng, n, d):
    X, y, w, b = rng.normal(size=(n, d)), rng.normal(size=n), rng.normal(size=d), rng.normal()
    ref, got = mse_gradient(X, y, w, b), K.mse_gradient_numba(X, y, w, b)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_softmax_gradient_kernel(rng, scale):
    X, y = rng.normal(size=(50, 6)) * scale, rng.integers(0, 4, 50)
    W, b = rng.normal(size=(4, 6)), rng.normal(size=4)
    ref, got = softmax_gradient(X, y, W, b), K.softmax_gradient_numba(X, y, W, b)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("batch_size", [1, 7, 40])
def test_fused_epoch_matches_numpy_epoch(rng, batch_size):
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    w0, b0 = rng.normal(size=3), 0.3
    (w1, b1), l1 = gd.sgd_epoch(gd.linear_grad_fn, [w0, b0], X, y, 0.05, batch_size, np.random.default_rng(9))
    (w2, b2), l2 = K.sgd_epoch_linear_numba(X, y, w0, b0, 0.05, batch_size, np.random.default_rng(9))
    np.testing.assert_allclose(w2, w1, rtol=1e-12)
    assert b2 == pytest.approx(float(b1), rel=1e-12)
    np.testing.assert_allclose(l2, l1, rtol=1e-12)
    assert np.array_equal(w0, w0)  # input untouched: the kernel works on a copy


def test_kernel_bad_input():
    with pytest.raises(ValueError, match="w must have shape"):
        K.mse_gradient_numba(np.ones((2, 2)), np.ones(2), np.ones(3), 0.0)
    with pytest.raises(ValueError, match="y must be in"):
        K.softmax_gradient_numba(np.ones((2, 2)), np.array([0, 4]), np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="batch_size must be"):
        K.sgd_epoch_linear_numba(np.ones((2, 1)), np.ones(2), np.ones(1), 0.0, 0.1, 0, np.random.default_rng())
