r"""Fused bias + ReLU, forward and backward (chapter 2), for ``MLP(..., backend="numba")``.

NumPy twins (what :mod:`course_lib.nn` does with ``backend="numpy"``)::

    out = np.maximum(z + b, 0)                      # bias_relu_forward(z, b)
    dz = dout * (out > 0); db = dz.sum(axis=0)      # relu_bias_backward(dout, out)

Why fuse?  The NumPy forward makes two passes over the ``(n, out)`` activations and
allocates two temporaries; the backward makes three passes.  Each NumPy call also costs
about a microsecond of interpreter overhead, which for the small batches of SGD is a
sizeable part of the work.  The compiled loop reads and writes each element once.
The matrix product ``x @ W.T`` itself stays on BLAS: see :mod:`course_lib.kernels.dense`
for what a hand-written loop costs by comparison.

``relu(out) > 0`` holds exactly where ``z + b > 0``, so the backward only needs the output:
the forward can overwrite ``z`` in place and nothing else is kept.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..validation import as_array


@njit(cache=True)
def _bias_relu_forward(z, b):
    n, m = z.shape
    for i in range(n):
        for j in range(m):
            v = z[i, j] + b[j]
            # `not (v <= 0)` keeps NaN (like np.maximum and torch.relu), so divergence shows
            z[i, j] = v if not (v <= 0) else 0


@njit(cache=True)
def _relu_bias_backward(dout, out, dz, db):
    n, m = dout.shape
    acc = np.zeros(m)  # accumulate the bias gradient in float64 whatever the dtype
    for i in range(n):
        for j in range(m):
            g = dout[i, j] if out[i, j] > 0 else 0
            dz[i, j] = g
            acc[j] += g
    for j in range(m):
        db[j] = acc[j]


def _check_pair(name_a, a, name_b, b):
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have shape {a.shape} like {name_a}, got {b.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"{name_b} must have dtype {a.dtype} like {name_a}, got {b.dtype}")


def bias_relu_forward_(z, b):
    """In place: ``z[:] = max(z + b, 0)``; returns ``z``.

    z: (n, m) float32/float64 C-contiguous (e.g. a fresh ``x @ W.T``); b: (m,) same dtype.
    """
    z = as_array("z", z, ndim=2, dtype_kind="f", finite=False)
    b = as_array("b", b, ndim=1, dtype_kind="f", finite=False)
    if b.shape != (z.shape[1],):
        raise ValueError(f"b must have shape ({z.shape[1]},) to match z of shape {z.shape}, got {b.shape}")
    if b.dtype != z.dtype:
        raise TypeError(f"b must have dtype {z.dtype} like z, got {b.dtype}")
    _bias_relu_forward(z, b)
    return z


def bias_relu_forward(z, b):
    """``max(z + b, 0)`` in one compiled pass, as a new array (``z`` is untouched).

    z: (n, m) float; b: (m,) same dtype.  Returns (n, m).
    NumPy twin: :func:`bias_relu_forward_numpy`.
    """
    return bias_relu_forward_(np.array(z, copy=True, order="C"), b)


def relu_bias_backward(dout, out, *, out_db=None):
    """Backward of ``out = max(z + b, 0)`` in one pass: ``dz = dout * (out > 0)`` and
    ``db = dz.sum(axis=0)``.

    dout, out: (n, m), same dtype.  Returns ``dz`` (n, m) when ``out_db`` (an (m,) array
    of that dtype, written in place) is given, else ``(dz, db)``.
    NumPy twin: :func:`relu_bias_backward_numpy`.
    """
    dout = as_array("dout", dout, ndim=2, dtype_kind="f", finite=False)
    out = as_array("out", out, ndim=2, dtype_kind="f", finite=False)
    _check_pair("dout", dout, "out", out)
    dz = np.empty_like(dout)
    db = np.empty(dout.shape[1], dout.dtype) if out_db is None else out_db
    if db.shape != (dout.shape[1],) or db.dtype != dout.dtype:
        raise ValueError(f"out_db must be a ({dout.shape[1]},) {dout.dtype} array, "
                         f"got shape {db.shape} and dtype {db.dtype}")
    _relu_bias_backward(dout, out, dz, db)
    return dz if out_db is not None else (dz, db)


def bias_relu_forward_numpy(z, b):
    """NumPy twin of :func:`bias_relu_forward` (two passes, two temporaries)."""
    return np.maximum(z + b, 0)


def relu_bias_backward_numpy(dout, out):
    """NumPy twin of :func:`relu_bias_backward`: ``(dz, db)``."""
    dz = dout * (out > 0)
    return dz, dz.sum(axis=0)
