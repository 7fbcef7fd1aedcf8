r"""Gradient descent, one step and whole training runs (chapter 1).

Every model is described by a *gradient function*::

    grad_fn(params, X_batch, y_batch) -> (loss, grads)

with ``params`` and ``grads`` lists of arrays of matching shapes (e.g.
``course_lib.regression.mse_gradient`` wrapped by :func:`linear_grad_fn`).
The three flavours of the chapter differ only in how many rows one step sees:

=========================  ===================  =====================
flavour                    rows per step        steps per epoch
=========================  ===================  =====================
(full-)batch GD            n                    1
stochastic GD              1                    n
mini-batch GD              ``batch_size``       ceil(n / batch_size)
=========================  ===================  =====================

PyTorch counterpart: ``torch.optim.SGD(params, lr)`` with ``loss.backward()`` giving the grads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .data import _rng, minibatches
from .regression import mse_gradient, softmax_gradient
from .utils import check_finite_loss
from .validation import as_array, check_positive, check_same_rows


def gd_step(params, grads, lr):
    r"""One gradient-descent step, :math:`\theta \leftarrow \theta - \eta \nabla L(\theta)`.

    params, grads: lists of arrays (or floats) with matching shapes; lr > 0.
    Returns a *new* list; the inputs are left untouched (so trajectories can be recorded).
    """
    check_positive("lr", lr)
    if len(params) != len(grads):
        raise ValueError(f"grads must have one entry per parameter: got {len(grads)} grads "
                         f"for {len(params)} params")
    new = []
    for i, (p, g) in enumerate(zip(params, grads)):
        p_arr, g_arr = np.asarray(p), as_array(f"grads[{i}]", g)
        if p_arr.shape != g_arr.shape:
            raise ValueError(f"grads[{i}] must have shape {p_arr.shape} like params[{i}], "
                             f"got {g_arr.shape}")
        stepped = p_arr - lr * g_arr
        new.append(float(stepped) if np.ndim(p) == 0 and not isinstance(p, np.ndarray) else stepped)
    return new


def linear_grad_fn(params, X, y):
    """Gradient function of linear regression with the MSE: ``params = [w, b]``."""
    w, b = params
    loss, dw, db = mse_gradient(X, y, w, b)
    return loss, [dw, db]


def softmax_grad_fn(params, X, y):
    """Gradient function of softmax regression: ``params = [W, b]``."""
    W, b = params
    loss, dW, db = softmax_gradient(X, y, W, b)
    return loss, [dW, db]


def sgd_epoch(grad_fn, params, X, y, lr, batch_size, rng):
    """One epoch of mini-batch SGD: shuffle with ``rng.permutation(n)``, then one
    :func:`gd_step` per batch of ``batch_size`` rows (the last batch may be smaller).

    Returns ``(params, losses)``: the new parameter list and the loss of every batch
    (computed before that batch's step).  ``batch_size = n`` is full-batch GD,
    ``batch_size = 1`` is stochastic GD.
    """
    losses = []
    for Xb, yb in minibatches(X, y, batch_size, shuffle=True, seed=rng):
        loss, grads = grad_fn(params, Xb, yb)
        losses.append(loss)
        params = gd_step(params, grads, lr)
    return params, losses


@dataclass
class History:
    """What :func:`train` records.

    losses:  (steps,) loss of each step's batch, before the step
    params:  list of parameter lists, one per step plus the start (if ``record_params``)
    epoch_loss: (epochs,) full-data loss after each epoch
    seconds: (epochs,) cumulative wall time at the end of each epoch
    """
    losses: list = field(default_factory=list)
    params: list = field(default_factory=list)
    epoch_loss: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    final: list = field(default_factory=list)


def train(grad_fn, params, X, y, *, lr, epochs: int = 1, batch_size: int | None = None, seed=0,
          record_params: bool = False, callback=None) -> History:
    """Train with (mini-batch) gradient descent; stop with :class:`TrainingDiverged` on a
    non-finite loss (the message names the step and the learning rate).

    batch_size: rows per step; ``None`` means full batch (``n``).
    seed: int or Generator for the shuffles (one permutation per epoch).
    callback: called as ``callback(epoch, history)`` after each epoch (live plots, progress).
    """
    X = as_array("X", X, ndim=2, dtype_kind="f")
    y = np.asarray(y)
    check_same_rows("X", X, "y", y)
    check_positive("lr", lr)
    check_positive("epochs", epochs, integer=True)
    n = X.shape[0]
    batch_size = n if batch_size is None else check_positive("batch_size", batch_size, integer=True)
    rng = _rng(seed)
    hist = History()
    params = [np.array(p, dtype=float, copy=True) if np.ndim(p) == 0 else np.array(p, copy=True)
              for p in params]
    if record_params:
        hist.params.append([np.copy(p) for p in params])
    t0 = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        for Xb, yb in minibatches(X, y, batch_size, shuffle=batch_size < n, seed=rng):
            with np.errstate(over="ignore", invalid="ignore"):  # we report divergence ourselves
                loss, grads = grad_fn(params, Xb, yb)
            check_finite_loss(loss, step=step, lr=lr, epoch=epoch)
            hist.losses.append(loss)
            params = gd_step(params, grads, lr)
            step += 1
            if record_params:
                hist.params.append([np.copy(p) for p in params])
        with np.errstate(over="ignore", invalid="ignore"):
            full_loss, _ = grad_fn(params, X, y)
        check_finite_loss(full_loss, step=step, lr=lr, epoch=epoch)
        hist.epoch_loss.append(full_loss)
        hist.seconds.append(time.perf_counter() - t0)
        if callback is not None:
            callback(epoch, hist)
    hist.final = params
    return hist
