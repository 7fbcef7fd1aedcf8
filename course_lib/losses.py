"""Losses, each returning ``(mean loss, gradient w.r.t. its first argument)``.

Every loss is a mean over the batch, like PyTorch's default ``reduction="mean"``,
so the gradient carries the ``1/n``. Forgetting it (the source articles' linear
regression does) multiplies the gradient by ``n`` and shrinks the usable learning
rate by the same factor.

=============================================  ==========================================
ours                                           PyTorch
=============================================  ==========================================
``mse(y_hat, y)``                              ``F.mse_loss(y_hat, y)``
``binary_cross_entropy_with_logits(z, y)``     ``F.binary_cross_entropy_with_logits(z, y)``
``binary_cross_entropy(p, y)``                 ``F.binary_cross_entropy(p, y)``
``softmax_cross_entropy(logits, y)``           ``F.cross_entropy(logits, y)``
``huber(y_hat, y, delta)``                     ``F.huber_loss(y_hat, y, delta=delta)``
=============================================  ==========================================
"""

from __future__ import annotations

import numpy as np

from .validation import as_array, check_labels, check_positive, check_shape


def _check_not_empty(name, x):
    if x.size == 0:  # a mean over nothing is NaN: say so instead
        raise ValueError(f"{name} must have at least one element, got shape {x.shape}")


def mse(y_hat, y):
    r"""Mean squared error over all elements.

    .. math:: L = \frac{1}{n}\sum_i (\hat y_i - y_i)^2, \qquad
              \frac{\partial L}{\partial \hat y_i} = \frac{2}{n}(\hat y_i - y_i)

    y_hat, y: same shape, float.  Returns ``(loss: float, dy_hat: like y_hat)``.
    """
    y_hat = as_array("y_hat", y_hat, dtype_kind="f")
    y = as_array("y", y, dtype_kind="fiu")
    check_shape("y", y, y_hat.shape)
    _check_not_empty("y_hat", y_hat)
    diff = y_hat - y
    return float(np.mean(diff * diff)), (2.0 / diff.size) * diff


def huber(y_hat, y, delta: float = 1.0):
    r"""Huber loss: quadratic for small residuals, linear for large ones, averaged.

    .. math:: h_\delta(r) = \begin{cases} \tfrac12 r^2 & |r| \le \delta \\
              \delta\,(|r| - \tfrac12\delta) & |r| > \delta \end{cases}, \qquad
              L = \frac1n \sum_i h_\delta(\hat y_i - y_i), \qquad
              \frac{\partial L}{\partial \hat y_i} = \frac1n \operatorname{clip}(\hat y_i - y_i, -\delta, \delta)

    y_hat, y: same shape, float; delta > 0.  Returns ``(loss: float, dy_hat: like y_hat)``.
    PyTorch: ``F.huber_loss(y_hat, y, delta=delta)``.  (``F.smooth_l1_loss(..., beta=delta)``
    is the same curve divided by ``delta``.)
    """
    y_hat = as_array("y_hat", y_hat, dtype_kind="f")
    y = as_array("y", y, dtype_kind="fiu")
    check_shape("y", y, y_hat.shape)
    _check_not_empty("y_hat", y_hat)
    check_positive("delta", delta)
    r = y_hat - y
    a = np.abs(r)
    loss = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return float(np.mean(loss)), np.clip(r, -delta, delta) / r.size


def log_softmax(logits, axis: int = -1) -> np.ndarray:
    """Numerically stable ``log(softmax(logits))``: subtract the max before ``exp``."""
    z = np.asarray(logits)
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(logits, axis: int = -1) -> np.ndarray:
    """``exp(z) / sum(exp(z))`` computed without overflow (max-subtraction)."""
    return np.exp(log_softmax(logits, axis=axis))


def check_logits_labels(logits, y):
    """Validate a classification batch: ``logits: (n, C)`` finite floats, ``y: (n,)`` labels in
    ``[0, C)``.  Returns ``(logits, y as int64)``; shared by every softmax-cross-entropy."""
    logits = as_array("logits", logits, ndim=2, dtype_kind="f")
    n, C = logits.shape
    y = check_labels("y", y, C)
    if y.shape[0] != n:
        raise ValueError(f"y must have {n} labels (one per row of logits), got {y.shape[0]}")
    if n == 0:  # a mean over no rows is NaN: say so instead
        raise ValueError(f"logits must have at least one row, got shape {logits.shape}")
    return logits, y


def softmax_cross_entropy(logits, y):
    r"""Softmax followed by the negative log-likelihood, averaged over the batch.

    .. math:: L = -\frac{1}{n}\sum_i \log \mathrm{softmax}(z_i)_{y_i}, \qquad
              \frac{\partial L}{\partial z} = \frac{1}{n}\left(\mathrm{softmax}(z) - \mathrm{onehot}(y)\right)

    logits: (n, C) float; y: (n,) int labels in [0, C).
    Returns ``(loss: float, dlogits: (n, C) same dtype as logits)``.
    Same value as ``torch.nn.functional.cross_entropy(logits, y)``.
    """
    logits, y = check_logits_labels(logits, y)
    n = logits.shape[0]
    logp = log_softmax(logits)
    rows = np.arange(n)
    loss = -np.mean(logp[rows, y])
    dlogits = np.exp(logp)
    dlogits[rows, y] -= 1.0
    dlogits /= n
    return float(loss), dlogits


def binary_cross_entropy_with_logits(logits, y):
    r"""Sigmoid + binary cross-entropy in one stable formula, averaged.

    .. math:: L = \frac{1}{n}\sum_i \max(z_i, 0) - z_i y_i + \log(1 + e^{-|z_i|}), \qquad
              \frac{\partial L}{\partial z} = \frac{1}{n}(\sigma(z) - y)

    logits, y: same shape, float, y in [0, 1].  Returns ``(loss, dlogits)``.
    """
    z = as_array("logits", logits, dtype_kind="f")
    y = as_array("y", y, dtype_kind="fiub").astype(z.dtype)
    check_shape("y", y, z.shape)
    _check_not_empty("logits", z)
    if y.size and (y.min() < 0 or y.max() > 1):
        raise ValueError(f"y must be in [0, 1], got values in [{y.min()}, {y.max()}]")
    loss = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    sig = 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free sigmoid
    return float(loss), (sig - y) / z.size


def binary_cross_entropy(probs, y):
    r"""Binary cross-entropy on probabilities, averaged; logs clamped at -100 like PyTorch.

    .. math:: L = -\frac{1}{n}\sum_i y_i \log p_i + (1 - y_i)\log(1 - p_i)

    probs, y: same shape, values in [0, 1].  Returns ``(loss, dprobs)``.
    Prefer :func:`binary_cross_entropy_with_logits`: it never saturates.
    """
    p = as_array("probs", probs, dtype_kind="f")
    y = as_array("y", y, dtype_kind="fiub").astype(p.dtype)
    check_shape("y", y, p.shape)
    _check_not_empty("probs", p)
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"probs must be in [0, 1], got values in [{p.min()}, {p.max()}]")
    if y.size and (y.min() < 0 or y.max() > 1):
        raise ValueError(f"y must be in [0, 1], got values in [{y.min()}, {y.max()}]")
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), -100.0)
        log_1mp = np.maximum(np.log1p(-p), -100.0)
    loss = -np.mean(y * log_p + (1 - y) * log_1mp)
    # torch clamps the gradient's denominator at EPSILON = 1e-12, a float32 constant in its
    # C++ kernel (9.99999996e-13 once widened): we use the same number to match it exactly
    grad = (p - y) / np.maximum(p * (1 - p), float(np.float32(1e-12))) / p.size
    return float(loss), grad
