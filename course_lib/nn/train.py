"""Training a classifier: :func:`fit` (mini-batch SGD or any optimizer) and :func:`evaluate`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..data import _rng, minibatches
from ..losses import softmax_cross_entropy
from ..utils import check_finite_loss
from ..validation import as_array, check_positive, check_same_rows

__all__ = ["fit", "evaluate", "FitHistory"]


@dataclass
class FitHistory:
    """What :func:`fit` records.

    losses:     loss of every mini-batch, before its step
    train_loss, train_acc, val_loss, val_acc: one value per epoch, after the epoch
                (val_* only if validation data was given)
    seconds:    cumulative wall time at the end of each epoch
    """
    losses: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    seconds: list = field(default_factory=list)


def _loss_fn(model):
    if getattr(model, "backend", "numpy") == "numba":
        from ..kernels.softmax_ce import softmax_cross_entropy_numba
        return softmax_cross_entropy_numba
    return softmax_cross_entropy


def evaluate(model, X, y):
    """``(mean softmax cross-entropy, accuracy)`` of ``model`` on ``(X, y)``.

    Computed in evaluation mode (``model.eval()``: no dropout), then ``model.train(mode)``
    restores the mode it had (per-layer modes that differed from the model's are reset, as
    torch's ``model.train()`` resets them); torch: ``model.eval()`` before scoring.
    """
    mode = getattr(model, "training", None)      # None: a model without train/eval modes
    if mode is not None:
        model.eval()
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            logits = model.forward(X)
    finally:
        if mode is not None:
            model.train(mode)
    if not np.all(np.isfinite(logits)):
        return float("nan"), float("nan")
    loss, _ = softmax_cross_entropy(logits, y)
    return loss, float(np.mean(np.argmax(logits, axis=1) == np.asarray(y)))


def fit(model, X, y, *, lr=None, epochs: int = 10, batch_size: int = 32, seed=0,
        optimizer=None, X_val=None, y_val=None, callback=None, loss_fn=None) -> FitHistory:
    """Train a classifier with mini-batch SGD on the softmax cross-entropy.

    Each step: ``logits = model(Xb)``, ``loss, dlogits = softmax_cross_entropy(logits, yb)``,
    ``model.backward(dlogits)``, then either plain SGD in place (``p -= lr * g`` for every
    parameter, ``torch.optim.SGD(params, lr)``) or ``optimizer.step(model.grads)`` if an
    optimizer is given (anything holding ``model.params`` with a ``step(grads)`` method).

    Modes, as in a torch training loop: every epoch trains in training mode (``model.train()``,
    so a :class:`~course_lib.nn.Dropout` inside drops), and the per-epoch scores come from
    :func:`evaluate`, in evaluation mode; the model is left in training mode (call
    ``model.eval()`` before predicting with it).

    Batches come from :func:`course_lib.data.minibatches` with one seeded Generator
    (a new order every epoch, reproducibly).  A non-finite loss stops training with
    :class:`course_lib.utils.TrainingDiverged` naming the step and the learning rate.
    callback: called as ``callback(epoch, history)`` after each epoch.

    loss_fn: ``None`` (the softmax cross-entropy above) or any training loss
    ``loss_fn(logits, yb, idx) -> (loss, dlogits)``, where ``idx`` are the batch's row indices
    in ``X`` (``Xb = X[idx]``, ``yb = y[idx]``): per-example data kept beside ``X`` (cached
    teacher logits for distillation, :mod:`course_lib.distill`) is looked up with them.  The
    batches are the same with or without it.  With a ``loss_fn``, ``y`` may be ``None``
    (unlabelled data: ``yb`` is then ``None`` and ``train_loss``/``train_acc`` stay empty);
    ``train_loss``/``train_acc``/``val_*`` are always the cross-entropy and accuracy, whatever
    the training loss.
    """
    if optimizer is None:
        if lr is None:
            raise ValueError("lr must be given when no optimizer is given")
        check_positive("lr", lr)
    elif not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must have a step(grads) method, got {type(optimizer).__name__}")
    check_positive("epochs", epochs, integer=True)
    check_positive("batch_size", batch_size, integer=True)
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(logits, yb, idx), got {loss_fn!r}")
    X = as_array("X", X, ndim=2, dtype_kind="fiu")
    if y is None and loss_fn is None:
        raise ValueError("y must be given (labels for the cross-entropy) unless a loss_fn is given")
    y = None if y is None else np.asarray(y)
    if y is not None:
        if y.ndim == 0:
            raise ValueError(f"y must have one entry per row of X, got a scalar {y!r}")
        check_same_rows("X", X, "y", y)
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together")
    rng = _rng(seed)
    if loss_fn is None:
        ce = _loss_fn(model)

        def loss_fn(logits, yb, idx):
            return ce(logits, yb)
    params, grads = model.params, model.grads
    hist = FitHistory()
    t0 = time.perf_counter()
    step = 0

    def current_lr():  # read at report time: a scheduler may have changed optimizer.lr
        return lr if optimizer is None else getattr(optimizer, "lr", None)

    set_mode = getattr(model, "train", None)      # None: a model without train/eval modes
    for epoch in range(epochs):
        if callable(set_mode):
            set_mode(True)
        # batches of row indices (same order as minibatches(X, y) itself): a loss_fn can use them
        for Xb, idx in minibatches(X, np.arange(X.shape[0]), batch_size, shuffle=True, seed=rng):
            yb = None if y is None else y[idx]
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
                logits = model.forward(Xb)
                if np.all(np.isfinite(logits)):
                    loss, dlogits = loss_fn(logits, yb, idx)
                else:
                    loss = float("nan")
                check_finite_loss(loss, step=step, lr=current_lr(), epoch=epoch)
                hist.losses.append(loss)
                model.backward(dlogits)
                if optimizer is None:
                    for p, g in zip(params, grads):
                        p -= lr * g          # in place: the same arrays stay in model.params
                else:
                    optimizer.step(grads)
            step += 1
        if y is not None:
            tl, ta = evaluate(model, X, y)
            check_finite_loss(tl, step=step, lr=current_lr(), epoch=epoch)
            hist.train_loss.append(tl)
            hist.train_acc.append(ta)
        if X_val is not None:
            vl, va = evaluate(model, X_val, y_val)
            hist.val_loss.append(vl)
            hist.val_acc.append(va)
        hist.seconds.append(time.perf_counter() - t0)
        if callback is not None:
            callback(epoch, hist)
    return hist
