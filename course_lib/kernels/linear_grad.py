r"""Fused gradients for chapter 1's models, and a whole SGD epoch compiled in one piece.

NumPy twins: :func:`course_lib.regression.mse_gradient`,
:func:`course_lib.regression.softmax_gradient`, :func:`course_lib.gd.sgd_epoch`.

Why fuse?  ``mse_gradient`` in NumPy makes three passes over memory and allocates
two temporaries (``r = X @ w + b - y``, then ``X.T @ r``), and each NumPy call costs
about a microsecond of interpreter overhead. For the small batches of SGD that overhead
*is* the cost, and a loop compiled by numba that reads each row once wins easily.
For large dense matrix products (softmax regression on big batches) NumPy calls BLAS,
which is blocked for the cache and vectorised: a hand loop rarely beats it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..regression import check_linear_args
from ..validation import as_array, check_positive, check_same_rows, check_shape


@njit(cache=True)
def _mse_grad_rows(X, y, w, b, rows, dw):
    # one pass over the chosen rows: residual, loss and both gradients together,
    # no temporaries (NumPy would allocate X @ w, the residual and X.T @ r)
    d = X.shape[1]
    m = rows.size
    loss = 0.0
    db = 0.0
    for j in range(d):
        dw[j] = 0.0
    for t in range(m):
        i = rows[t]
        r = b - y[i]
        for j in range(d):
            r += X[i, j] * w[j]
        loss += r * r
        db += r
        for j in range(d):
            dw[j] += r * X[i, j]
    scale = 2.0 / m
    for j in range(d):
        dw[j] *= scale
    return loss / m, db * scale


def mse_gradient_numba(X, y, w, b):
    """numba twin of :func:`course_lib.regression.mse_gradient`: ``(loss, dw, db)``."""
    X, y, w, b = check_linear_args(X, y, w, b)
    dw = np.empty(w.shape)
    loss, db = _mse_grad_rows(X, y, w, b, np.arange(X.shape[0]), dw)
    return float(loss), dw, float(db)


@njit(cache=True)
def _softmax_grad(X, y, W, b, dW, db):
    n, d = X.shape
    C = W.shape[0]
    dW[:] = 0.0
    db[:] = 0.0
    z = np.empty(C)
    loss = 0.0
    for i in range(n):
        zmax = -np.inf
        for c in range(C):
            acc = b[c]
            for j in range(d):
                acc += W[c, j] * X[i, j]
            z[c] = acc
            zmax = max(zmax, acc)
        # log-sum-exp with the max subtracted; the label's logit is read before exp,
        # because exp(z - zmax) can underflow to 0 and log(0) would make the loss inf
        label_shifted = z[y[i]] - zmax
        s = 0.0
        for c in range(C):
            z[c] = np.exp(z[c] - zmax)
            s += z[c]
        loss += np.log(s) - label_shifted
        for c in range(C):
            g = z[c] / s - (1.0 if c == y[i] else 0.0)
            db[c] += g
            for j in range(d):
                dW[c, j] += g * X[i, j]
    dW /= n
    db /= n
    return loss / n


def softmax_gradient_numba(X, y, W, b):
    """numba twin of :func:`course_lib.regression.softmax_gradient`: ``(loss, dW, db)``."""
    X = as_array("X", X, ndim=2, dtype_kind="f")
    W = as_array("W", W, ndim=2, dtype_kind="f")
    b = as_array("b", b, ndim=1, dtype_kind="f")
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"W must have shape (C, {X.shape[1]}) to match X, got {W.shape}")
    check_shape("b", b, (W.shape[0],))
    y = np.asarray(y)
    check_same_rows("X", X, "y", y)
    if y.size and (y.min() < 0 or y.max() >= W.shape[0]):
        raise ValueError(f"y must be in [0, {W.shape[0]}), got values in [{y.min()}, {y.max()}]")
    dW = np.empty(W.shape)
    db = np.empty(W.shape[0])
    loss = _softmax_grad(X, y.astype(np.int64), W, b, dW, db)
    return float(loss), dW, db


@njit(cache=True)
def _sgd_epoch_linear(X, y, w, b, lr, batch_size, order, losses):
    n, d = X.shape
    dw = np.empty(d)
    for k, start in enumerate(range(0, n, batch_size)):
        loss, db = _mse_grad_rows(X, y, w, b, order[start:start + batch_size], dw)
        losses[k] = loss
        for j in range(d):
            w[j] -= lr * dw[j]
        b -= lr * db
    return b


def sgd_epoch_linear_numba(X, y, w, b, lr, batch_size, rng):
    """A whole mini-batch SGD epoch of linear regression in one compiled loop.

    Same arithmetic and the same shuffle (``rng.permutation(n)``) as
    ``course_lib.gd.sgd_epoch(linear_grad_fn, [w, b], ...)``; returns ``([w, b], losses)``.
    """
    X, y, w, b = check_linear_args(X, y, w, b)
    check_positive("lr", lr)
    check_positive("batch_size", batch_size, integer=True)
    w = np.array(w, dtype=np.float64, copy=True)  # the kernel updates w in place: work on a copy
    order = rng.permutation(X.shape[0])
    losses = np.empty(-(-X.shape[0] // batch_size))
    b = _sgd_epoch_linear(X, y, w, float(b), float(lr), int(batch_size), order, losses)
    return [w, float(b)], list(losses)
