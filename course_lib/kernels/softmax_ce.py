r"""Softmax cross-entropy, loss and gradient in one compiled pass (chapter 2).

NumPy twin: :func:`course_lib.losses.softmax_cross_entropy` (same signature, same checks).

.. math:: L = \frac1n\sum_i \Big(\log\sum_c e^{z_{ic} - m_i} - (z_{i y_i} - m_i)\Big),\qquad
          \frac{\partial L}{\partial z_{ic}} = \frac1n\big(\mathrm{softmax}(z_i)_c - [c = y_i]\big)

with :math:`m_i = \max_c z_{ic}` subtracted so that ``exp`` never overflows.

The NumPy version is about ten array operations (max, subtract, exp, sum, log, subtract,
gather, mean, exp, scatter, divide), each a pass over the ``(n, C)`` logits plus a call's
overhead.  Here each row is read once into cache, and the row's sum of exponentials is
accumulated in float64 whatever the dtype.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..losses import check_logits_labels


@njit(cache=True)
def _softmax_ce(logits, y, dlogits):
    n, C = logits.shape
    inv_n = 1.0 / n
    loss = 0.0
    for i in range(n):
        m = logits[i, 0]
        for c in range(1, C):
            if logits[i, c] > m:
                m = logits[i, c]
        s = 0.0
        for c in range(C):
            e = np.exp(logits[i, c] - m)
            dlogits[i, c] = e
            s += e
        loss += np.log(s) - (logits[i, y[i]] - m)
        scale = inv_n / s
        for c in range(C):
            dlogits[i, c] = dlogits[i, c] * scale
        dlogits[i, y[i]] -= inv_n
    return loss * inv_n


def softmax_cross_entropy_numba(logits, y):
    """numba twin of :func:`course_lib.losses.softmax_cross_entropy`.

    logits: (n, C) float; y: (n,) int labels in [0, C).
    Returns ``(loss: float, dlogits: (n, C) same dtype as logits)``.
    Same value as ``torch.nn.functional.cross_entropy(logits, y)``.
    """
    logits, y = check_logits_labels(logits, y)
    dlogits = np.empty_like(logits, order="C")
    loss = _softmax_ce(np.ascontiguousarray(logits), y, dlogits)
    return float(loss), dlogits
