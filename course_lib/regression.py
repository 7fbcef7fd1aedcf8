r"""Linear and softmax regression: the models of chapter 1.

Shapes follow ``torch.nn.Linear`` so the chapter-2 network feels familiar:

- linear regression: ``X: (n, d)``, ``w: (d,)``, ``b: float``, ``y_hat = X @ w + b: (n,)``
- softmax regression: ``W: (C, d)``, ``b: (C,)``, ``logits = X @ W.T + b: (n, C)``

Each ``*_gradient`` function returns ``(loss, *grads)`` with the grads in the same order
and shapes as the parameters, ready for :func:`course_lib.gd.gd_step`.
"""

from __future__ import annotations

import numpy as np

from .losses import check_logits_labels, huber, softmax_cross_entropy
from .validation import as_array, check_positive, check_same_rows, check_shape


def check_linear_args(X, y, w, b):
    """Validate linear-regression arguments; return ``(X, y, w, float(b))``."""
    X = as_array("X", X, ndim=2, dtype_kind="f")
    y = as_array("y", y, ndim=1, dtype_kind="fiu")
    w = as_array("w", w, ndim=1, dtype_kind="f")
    check_same_rows("X", X, "y", y)
    check_shape("w", w, (X.shape[1],))
    if X.shape[0] == 0:
        raise ValueError(f"X must have at least one row, got shape {X.shape}")
    b = as_array("b", b, ndim=0, dtype_kind="fiu")
    return X, y, w, float(b)


def linear_forward(X, w, b) -> np.ndarray:
    """``y_hat = X @ w + b``.  X: (n, d), w: (d,), b: scalar -> (n,)."""
    X = as_array("X", X, ndim=2, dtype_kind="f")
    w = as_array("w", w, ndim=1, dtype_kind="f")
    check_shape("w", w, (X.shape[1],))
    return X @ w + float(as_array("b", b, ndim=0))


def mse_gradient(X, y, w, b):
    r"""Loss and gradient of the mean squared error of linear regression.

    .. math:: L(w, b) = \frac1n \lVert Xw + b - y \rVert^2,\quad
              \nabla_w L = \frac2n X^\top r,\quad \frac{\partial L}{\partial b} = \frac2n \sum_i r_i,
              \quad r = Xw + b - y

    X: (n, d), y: (n,), w: (d,), b: scalar.  Returns ``(loss: float, dw: (d,), db: float)``.
    The ``1/n`` matters: without it the gradient grows with the data set and the largest
    stable learning rate shrinks by a factor ``n`` (the source articles' bug).
    PyTorch: ``F.mse_loss(X @ w + b, y).backward()``.
    """
    X, y, w, b = check_linear_args(X, y, w, b)
    n = X.shape[0]
    r = X @ w + b - y
    return float(r @ r) / n, (2.0 / n) * (X.T @ r), 2.0 * float(r.sum()) / n


def huber_gradient(X, y, w, b, delta: float = 1.0):
    r"""Loss and gradient of linear regression under the Huber loss (robust to outliers).

    .. math:: L = \frac1n \sum_i h_\delta(r_i),\quad r = Xw + b - y,\quad
              \nabla_w L = \frac1n X^\top \operatorname{clip}(r, -\delta, \delta),\quad
              \frac{\partial L}{\partial b} = \frac1n \textstyle\sum_i \operatorname{clip}(r_i, -\delta, \delta)

    An outlier pulls on the fit with a force of at most ``delta`` (the MSE's pull grows with
    the residual).  Shapes as :func:`mse_gradient`.
    PyTorch: ``F.huber_loss(X @ w + b, y, delta=delta).backward()``.
    """
    X, y, w, b = check_linear_args(X, y, w, b)
    loss, g = huber(X @ w + b, y, delta)   # g = dL/dy_hat = clip(r) / n
    return loss, X.T @ g, float(g.sum())


def ridge_hessian(X, alpha: float) -> np.ndarray:
    r"""Hessian of the L2-regularised MSE :math:`\frac1n\lVert Xw + b - y\rVert^2 + \alpha\lVert w\rVert^2`.

    .. math:: H = \frac2n A^\top A + 2\alpha\,\mathrm{diag}(1, \dots, 1, 0), \qquad A = [X, \mathbf 1]

    The bias is not penalised (as usual: shifting every target should shift ``b`` freely).
    Returns ``(d + 1, d + 1)``; constant in ``(w, b)``: the loss is an exact quadratic.
    """
    check_positive("alpha", alpha, allow_zero=True)
    H = mse_hessian(X)
    d = H.shape[0] - 1
    H[np.arange(d), np.arange(d)] += 2.0 * alpha
    return H


def newton_step(X, y, w, b, alpha: float = 0.0, lr: float = 1.0):
    r"""One (damped) Newton step on the L2-regularised MSE, in the parameters ``(w, b)``.

    .. math:: \theta \leftarrow \theta - \eta\, H^{-1} \nabla L(\theta), \quad
              \nabla_w L = \frac2n X^\top r + 2\alpha w,\quad \frac{\partial L}{\partial b} = \frac2n\textstyle\sum_i r_i

    On a quadratic, ``lr = 1`` lands exactly on the minimiser from any start; ``lr < 1`` goes
    the fraction ``lr`` of the way along the same line.  Returns ``(w: (d,), b: float)``.
    """
    X, y, w, b = check_linear_args(X, y, w, b)
    _, dw, db = mse_gradient(X, y, w, b)
    g = np.r_[dw + 2.0 * alpha * w, db]
    step = np.linalg.solve(ridge_hessian(X, alpha), g)
    theta = np.r_[w, b] - lr * step
    return theta[:-1], float(theta[-1])


def normal_equations(X, y):
    r"""The exact least-squares optimum: solve :math:`\min_{w,b} \lVert Xw + b - y\rVert^2`.

    Uses ``np.linalg.lstsq`` on ``[X, 1]`` (an SVD: stable even when :math:`X^\top X` is
    ill-conditioned, unlike forming and inverting it).  Returns ``(w: (d,), b: float)``.
    """
    X = as_array("X", X, ndim=2, dtype_kind="f")
    y = as_array("y", y, ndim=1, dtype_kind="fiu")
    check_same_rows("X", X, "y", y)
    if X.shape[0] == 0:
        raise ValueError(f"X must have at least one row, got shape {X.shape}")
    A = np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])
    theta, *_ = np.linalg.lstsq(A, y, rcond=None)
    return theta[:-1], float(theta[-1])


def mse_hessian(X) -> np.ndarray:
    r"""Hessian of the linear-regression MSE in the parameters :math:`(w, b)`.

    .. math:: H = \frac2n A^\top A, \qquad A = [X, \mathbf 1]

    It does not depend on ``w``, ``b`` or ``y``: the loss is an exact quadratic bowl.
    Returns ``(d + 1, d + 1)``.  Gradient descent is stable iff ``lr < 2 / lambda_max(H)``.
    """
    X = as_array("X", X, ndim=2, dtype_kind="f")
    A = np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])
    return (2.0 / X.shape[0]) * (A.T @ A)


def max_stable_lr(X) -> float:
    """The stability bound ``2 / lambda_max`` of full-batch gradient descent on the MSE."""
    return 2.0 / float(np.linalg.eigvalsh(mse_hessian(X))[-1])


def sgd_noise_floor(X, y, lr: float, batch_size: int, *, replacement: bool = True,
                    first_order: bool = True) -> float:
    r"""Predicted noise floor of constant-rate mini-batch SGD on the linear-regression MSE.

    The stationary excess loss :math:`\mathbb E[L(\theta_t) - L^\star]` of
    :math:`\theta \leftarrow \theta - \eta\, g_B`, a batch of ``batch_size`` = :math:`B` rows drawn
    afresh at every step, linearised around the optimum :math:`\theta^\star`:

    .. math:: \mathbb E[L - L^\star] \approx \frac{\eta}{4B}\operatorname{tr}\Sigma_1, \qquad
              \Sigma_1 = \frac1n \sum_i g_i g_i^\top, \quad g_i = 2\,r_i^\star a_i, \quad a_i = (x_i, 1)

    (:math:`\Sigma_1`: the covariance of the per-example gradients at the optimum, :math:`r^\star`
    its residuals).  With ``first_order=False`` the :math:`\eta^2` term of the additive-noise model
    is kept as well: :math:`\frac{\eta}{4B}\sum_j c_j / (1 - \eta\lambda_j/2)`, with
    :math:`\lambda_j` the eigenvalues of :func:`mse_hessian` and :math:`c_j` the diagonal of
    :math:`\Sigma_1` in its eigenbasis; it requires ``lr < 2 / lambda_max``.  Neither form includes
    the batch's own curvature noise (the Hessian of a batch is not :math:`H`), an effect of order
    :math:`\eta^2 / B`.

    replacement: ``True`` for rows drawn with replacement (``torch.utils.data.RandomSampler(...,
    replacement=True)``); ``False`` for a batch of distinct rows, which multiplies the gradient
    noise, and the floor, by :math:`(n - B)/(n - 1)`.

    X: (n, d) float, y: (n,).  Returns a float in the units of the loss (mean squared error).
    """
    X = as_array("X", X, ndim=2, dtype_kind="f")
    y = as_array("y", y, ndim=1, dtype_kind="fiu")
    check_same_rows("X", X, "y", y)
    check_positive("lr", lr)
    check_positive("batch_size", batch_size, integer=True)
    n = X.shape[0]
    if not replacement and batch_size > n:
        raise ValueError(f"batch_size must be <= n = {n} without replacement, got {batch_size}")
    w, b = normal_equations(X, y)
    A = np.hstack([X, np.ones((n, 1), dtype=X.dtype)])
    G = 2.0 * (A @ np.r_[w, b] - y)[:, None] * A        # per-example gradients at the optimum, (n, d + 1)
    sigma1 = G.T @ G / n                                 # their mean is the full gradient, zero here
    finite_pop = 1.0 if replacement else (n - batch_size) / (n - 1) if n > 1 else 0.0
    scale = lr / (4.0 * batch_size) * finite_pop
    if first_order:
        return float(scale * np.trace(sigma1))
    lam, Q = np.linalg.eigh(mse_hessian(X))
    if lr * lam[-1] >= 2.0:
        raise ValueError(f"lr must be < 2 / lambda_max = {2.0 / lam[-1]:.4g} for a noise floor to exist, "
                         f"got {lr!r}")
    c = np.einsum("ij,ik,kj->j", Q, sigma1, Q)          # diag(Q^T Sigma_1 Q)
    return float(scale * np.sum(c / (1.0 - lr * lam / 2.0)))


def softmax_forward(X, W, b) -> np.ndarray:
    """``logits = X @ W.T + b``.  X: (n, d), W: (C, d), b: (C,) -> (n, C)."""
    X = as_array("X", X, ndim=2, dtype_kind="f")
    W = as_array("W", W, ndim=2, dtype_kind="f")
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"W must have shape (C, {X.shape[1]}) to match X, got {W.shape}")
    b = as_array("b", b, ndim=1, dtype_kind="f")
    check_shape("b", b, (W.shape[0],))
    return X @ W.T + b


def softmax_gradient(X, y, W, b):
    r"""Loss and gradients of softmax regression (multinomial logistic regression).

    .. math:: \frac{\partial L}{\partial W} = G^\top X, \quad
              \frac{\partial L}{\partial b} = \textstyle\sum_i G_i, \quad
              G = \frac1n(\mathrm{softmax}(XW^\top + b) - \mathrm{onehot}(y))

    X: (n, d), y: (n,) int, W: (C, d), b: (C,).  Returns ``(loss, dW: (C, d), db: (C,))``.
    PyTorch: ``F.cross_entropy(X @ W.T + b, y).backward()``.
    """
    logits = softmax_forward(X, W, b)
    loss, G = softmax_cross_entropy(logits, y)
    return loss, G.T @ np.asarray(X), G.sum(axis=0)


def accuracy(logits, y) -> float:
    """Fraction of rows whose arg-max matches the label.  logits: (n, C), y: (n,)."""
    logits, y = check_logits_labels(logits, y)  # (n, 1) labels would broadcast to an (n, n) table
    return float(np.mean(np.argmax(logits, axis=1) == y))
