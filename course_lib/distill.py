r"""Knowledge distillation (chapter 6): Hinton's soft-target loss and a student-from-teacher loop.

A large **teacher** has learned which digits look like which; its probabilities over the *wrong*
classes carry that knowledge ("dark knowledge").  A small **student** learns from them by matching the
teacher's distribution softened by a temperature :math:`T` (Hinton, Vinyals and Dean 2015):

.. math::
    p^{(T)} = \mathrm{softmax}(t / T), \qquad q^{(T)} = \mathrm{softmax}(s / T), \qquad
    L_{KD} = \frac{T^2}{n} \sum_{i=1}^n \mathrm{KL}\bigl(p^{(T)}_i \,\Vert\, q^{(T)}_i\bigr),

    \frac{\partial L_{KD}}{\partial s} = \frac{T}{n}\bigl(q^{(T)} - p^{(T)}\bigr).

The :math:`T^2` undoes the :math:`1/T^2` that the softened gradients carry (one :math:`1/T` from the
chain rule, one from the flatter distributions), so the soft term keeps its weight when :math:`T` changes.

Every function follows the losses' interface (:mod:`course_lib.losses`): ``(loss, dstudent_logits)``,
a mean over the batch, float in, same float dtype out.

=================================================  =====================================================
ours                                               PyTorch
=================================================  =====================================================
``softmax(z, T)`` / ``log_softmax(z, T)``          ``F.softmax(z / T, dim=1)`` / ``F.log_softmax(z / T, dim=1)``
``kd_loss(s, t, T)``                               ``F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1),``
                                                   ``reduction="batchmean") * T**2``
``distillation_loss(s, t, y, T, alpha)``           ``alpha * kd + (1 - alpha) * F.cross_entropy(s, y)``
``compute_teacher_logits(teacher, X)``             ``with torch.no_grad(): teacher(X)``
``distill(student, X, y, teacher=..., ...)``       a training loop (torch has none)
=================================================  =====================================================

Traps in ``F.kl_div(input, target)`` that these functions avoid, all tested in ``tests/test_distill.py``:

- ``input`` is the *student's log*-probabilities and ``target`` the teacher's *probabilities*
  (the opposite order of :math:`\mathrm{KL}(p \Vert q)` on paper); passing probabilities as ``input``
  computes something else without any error;
- ``reduction="mean"`` (the default) divides by :math:`n \times C`, not by the batch size :math:`n`:
  the loss is then :math:`C` times too small (torch warns); ``"batchmean"`` is the KL divergence;
- forgetting ``* T**2`` makes the soft term fade as :math:`1/T^2` next to the hard-label term.

The temperature softmax is built on :func:`course_lib.losses.log_softmax` (the one stable
log-sum-exp of the course): ``log_softmax(z, T) = losses.log_softmax(z / T)``.  The cross-entropy
on hard labels is :func:`course_lib.losses.softmax_cross_entropy`, used as it is.

The training loop :func:`distill` is :func:`course_lib.nn.fit` with a different loss
(its ``loss_fn`` hook): batches, optimizer, divergence checks and history are fit's.
The teacher's logits are computed once for the whole transfer set (:func:`compute_teacher_logits`) and
looked up by the batch's row indices, so a distillation step costs what a normal step costs.
"""

from __future__ import annotations

import numpy as np

from .losses import log_softmax as _log_softmax
from .losses import softmax_cross_entropy
from .validation import as_array, check_in_range, check_labels, check_positive

__all__ = ["softmax", "log_softmax", "kd_loss", "distillation_loss", "compute_teacher_logits", "distill",
           "make_distillation_loss"]


def _check_T(T):
    check_positive("T", T)  # finite and > 0: T = 0 divides by zero, T < 0 reverses the ranking
    return float(T)


def _check_logits(name, z):
    return as_array(name, z, ndim=2, dtype_kind="f")


def log_softmax(logits, T=1.0) -> np.ndarray:
    r"""Log-probabilities at temperature ``T``: :math:`\log\mathrm{softmax}(z/T)` over each row.

    logits: (n, C) finite float; T: finite > 0.  Returns (n, C), same dtype.
    Stable for any finite logits (max-subtraction: no overflow at :math:`\pm 10^4` or beyond).
    PyTorch: ``F.log_softmax(logits / T, dim=1)``.
    """
    z = _check_logits("logits", logits)
    T = _check_T(T)
    return _log_softmax(z / z.dtype.type(T), axis=1)


def softmax(logits, T=1.0) -> np.ndarray:
    r"""Probabilities at temperature ``T``: :math:`\mathrm{softmax}(z/T)` over each row.

    ``T = 1`` is the usual softmax; ``T > 1`` flattens it towards uniform (the ranking is kept),
    ``T < 1`` sharpens it towards the one-hot argmax.
    logits: (n, C) finite float; T: finite > 0.  Returns (n, C), same dtype, rows summing to 1.
    PyTorch: ``F.softmax(logits / T, dim=1)``.
    """
    return np.exp(log_softmax(logits, T))


def _check_pair(student_logits, teacher_logits):
    s = _check_logits("student_logits", student_logits)
    t = _check_logits("teacher_logits", teacher_logits)
    if t.shape[1] != s.shape[1]:
        raise ValueError(f"teacher_logits must have {s.shape[1]} classes like student_logits, "
                         f"got {t.shape[1]} (shape {t.shape})")
    if t.shape[0] != s.shape[0]:
        raise ValueError(f"teacher_logits must have {s.shape[0]} rows like student_logits, "
                         f"got {t.shape[0]} (shape {t.shape})")
    if s.shape[0] == 0:  # a mean over no rows is NaN: say so instead
        raise ValueError(f"student_logits must have at least one row, got shape {s.shape}")
    return s, t.astype(s.dtype, copy=False)


def kd_loss(student_logits, teacher_logits, T):
    r"""Hinton's soft-target loss and its gradient with respect to the student's logits.

    .. math::
        L = \frac{T^2}{n}\sum_i \sum_c p_{ic}\,(\log p_{ic} - \log q_{ic}), \qquad
        \frac{\partial L}{\partial s} = \frac{T}{n}\,(q - p),

    with :math:`p = \mathrm{softmax}(t/T)` (teacher) and :math:`q = \mathrm{softmax}(s/T)` (student).
    :math:`\log p` is the teacher's *log-softmax*, never ``log`` of a probability that may have
    underflowed to 0: a class with :math:`p = 0` then contributes :math:`0 \cdot (\text{finite}) = 0`,
    as torch's ``xlogy`` makes it.

    student_logits, teacher_logits: (n, C) finite float (same shape; the teacher's are cast to the
    student's dtype); T: finite > 0.
    Returns ``(loss: float, dstudent_logits: (n, C) like student_logits)``.
    PyTorch: ``F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1),
    reduction="batchmean") * T**2`` (the teacher's logits carry no gradient).
    """
    s, t = _check_pair(student_logits, teacher_logits)
    return _kd(s, t, _check_T(T))


def _kd(s, t, T, log_p=None):
    """:func:`kd_loss` on checked arguments (the training loop's hot path); ``log_p``: the
    teacher's ``log_softmax(t / T)`` if already known (cached once per transfer set)."""
    n = s.shape[0]
    Tc = s.dtype.type(T)
    log_q = _log_softmax(s / Tc, axis=1)
    if log_p is None:
        log_p = _log_softmax(t / Tc, axis=1)
    p = np.exp(log_p)
    loss = (T * T) * float(np.sum(p * (log_p - log_q), dtype=np.float64)) / n
    dstudent = (np.exp(log_q) - p) * s.dtype.type(T / n)
    return loss, dstudent


def distillation_loss(student_logits, teacher_logits, y, T, alpha):
    r"""Soft targets and hard labels mixed: :math:`\alpha L_{KD} + (1 - \alpha) L_{CE}`.

    .. math::
        L = \alpha\,\frac{T^2}{n}\sum_i \mathrm{KL}(p^{(T)}_i \Vert q^{(T)}_i)
            + (1 - \alpha)\,\frac1n\sum_i -\log \mathrm{softmax}(s_i)_{y_i},

        \frac{\partial L}{\partial s} = \alpha\,\frac{T}{n}(q^{(T)} - p^{(T)})
            + (1 - \alpha)\,\frac1n(\mathrm{softmax}(s) - \mathrm{onehot}(y)).

    The cross-entropy uses the student's logits at temperature 1 (the model is deployed at T = 1).
    ``alpha = 1``: soft targets only (no labels needed, ``y`` may be ``None``); ``alpha = 0``:
    labels only (the teacher is ignored).

    student_logits, teacher_logits: (n, C) finite float; y: (n,) int labels in [0, C) or ``None``
    when ``alpha == 1``; T: finite > 0; alpha: in [0, 1].
    Returns ``(loss: float, dstudent_logits: (n, C) like student_logits)``.
    PyTorch: ``alpha * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
    * T**2 + (1 - alpha) * F.cross_entropy(s, y)``.
    """
    check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)
    s, t = _check_pair(student_logits, teacher_logits)
    T = _check_T(T)
    alpha = float(alpha)
    if y is None and alpha < 1:
        raise ValueError(f"y must be given when alpha < 1 (the hard-label term has weight "
                         f"1 - alpha = {1 - alpha:g}), got y=None")
    if y is not None:
        y = check_labels("y", y, s.shape[1])
        if y.shape[0] != s.shape[0]:
            raise ValueError(f"y must have {s.shape[0]} labels (one per row of student_logits), "
                             f"got {y.shape[0]}")
    return _distillation(s, t, y, T, alpha)


def _distillation(s, t, y, T, alpha, log_p=None):
    """:func:`distillation_loss` on checked arguments (the training loop's hot path)."""
    kd, dkd = _kd(s, t, T, log_p)
    if alpha == 1.0:
        return kd, dkd
    ce, dce = softmax_cross_entropy(s, y)
    if alpha == 0.0:
        return ce, dce
    a = s.dtype.type(alpha)
    return alpha * kd + (1 - alpha) * ce, a * dkd + (1 - a) * dce


def compute_teacher_logits(teacher, X, *, batch_size: int = 1024) -> np.ndarray:
    """The teacher's logits on every row of ``X``, computed once (the cache :func:`distill` uses).

    teacher: a model with ``forward(X) -> (n, C)`` (e.g. :class:`course_lib.nn.MLP`);
    X: (n, d).  Returns (n, C) float, row ``i`` for ``X[i]``.  Evaluated in chunks of
    ``batch_size`` rows (memory), which gives the same numbers as one call up to round-off.
    PyTorch: ``with torch.no_grad(): teacher(X)``.
    """
    if not callable(getattr(teacher, "forward", None)):
        raise TypeError(f"teacher must have a forward(X) method, got {type(teacher).__name__}")
    X = as_array("X", X, ndim=2, dtype_kind="fiu")
    check_positive("batch_size", batch_size, integer=True)
    if X.shape[0] == 0:
        raise ValueError(f"X must have at least one row, got shape {X.shape}")
    out = np.concatenate([np.array(teacher.forward(X[i:i + batch_size]), copy=True)
                          for i in range(0, X.shape[0], batch_size)])
    return as_array("teacher logits", out, ndim=2, dtype_kind="f")


def make_distillation_loss(teacher_logits, *, T=4.0, alpha=0.9, teacher=None, X=None):
    """The ``loss_fn`` hook of :func:`course_lib.nn.fit` for distillation.

    Returns ``loss_fn(logits, yb, idx) -> (loss, dlogits)`` computing
    :func:`distillation_loss` ``(logits, teacher_logits[idx], yb, T, alpha)`` (fit passes
    ``yb = y[idx]``; ``yb`` may be ``None`` when ``alpha == 1``).

    teacher_logits: (n, C) cached teacher logits for the rows of the transfer set, or ``None``
    together with ``teacher`` and ``X``: then the teacher runs on ``X[idx]`` at every step (no
    cache; what distillation costs without one).
    """
    check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)
    T, alpha = _check_T(T), float(alpha)
    if teacher_logits is None:
        if teacher is None or X is None:
            raise ValueError("teacher and X must be given when teacher_logits is None")

        def lookup(idx):
            return teacher.forward(X[idx]), None
    else:
        cached = _check_logits("teacher_logits", teacher_logits)
        # the soft targets depend on the teacher and T only: soften them once, not every epoch
        cached_log_p = _log_softmax(cached / cached.dtype.type(T), axis=1)

        def lookup(idx):
            return cached[idx], cached_log_p[idx]

    def loss_fn(logits, yb, idx):
        # fit has checked the logits (finite, 2-D) and gives yb = y[idx]; the cache was checked once
        t, log_p = lookup(idx)
        if t.shape != logits.shape:
            raise ValueError(f"teacher_logits must have shape {logits.shape} like the student's "
                             f"logits for this batch, got {t.shape}")
        if yb is None and alpha < 1:
            raise ValueError(f"y must be given when alpha < 1, got y=None (alpha={alpha:g})")
        if log_p is not None:
            log_p = log_p.astype(logits.dtype, copy=False)
        return _distillation(logits, t.astype(logits.dtype, copy=False), yb, T, alpha, log_p)
    return loss_fn


def distill(student, X, y=None, *, teacher=None, teacher_logits=None, T=4.0, alpha=0.9,
            lr=None, epochs: int = 10, batch_size: int = 32, seed=0, optimizer=None,
            X_val=None, y_val=None, cache: bool = True, callback=None):
    r"""Train ``student`` to imitate a teacher on the transfer set ``X`` (in place); returns fit's history.

    Each step: ``logits = student(X[idx])``, ``loss, dlogits = distillation_loss(logits,
    t[idx], y[idx], T, alpha)`` with ``t`` the teacher's logits on ``X``, then backward and an
    SGD / optimizer step: this is :func:`course_lib.nn.fit` with its ``loss_fn`` hook, so the
    batches (seeded, a new order every epoch), the optimizer interface, the divergence check and
    :class:`course_lib.nn.FitHistory` are exactly fit's.

    student:   model with ``forward``/``backward``/``params``/``grads`` (:class:`course_lib.nn.MLP`).
    X:         (n, d) transfer set.  It need not be the teacher's training set: unlabelled images,
               or a set with a class removed (Hinton et al.'s "missing digit").
    y:         (n,) labels of the transfer set, needed only if ``alpha < 1``.
    teacher:   model with ``forward``; or give ``teacher_logits`` ((n, C), precomputed, e.g. by
               :func:`compute_teacher_logits`) and no teacher.
    T, alpha:  temperature (> 0) and weight of the soft term (in [0, 1]), see :func:`distillation_loss`.
    cache:     ``True`` (default): the teacher's logits on ``X`` are computed once up front;
               ``False``: the teacher runs on every batch (same numbers, more work).
    lr, epochs, batch_size, seed, optimizer, X_val, y_val, callback: as in :func:`course_lib.nn.fit`
               (the history's ``train_loss``/``train_acc`` are the cross-entropy and accuracy on
               ``(X, y)`` and are left empty when ``y`` is ``None``).
    """
    from .nn.train import fit

    X = as_array("X", X, ndim=2, dtype_kind="fiu")
    if not isinstance(cache, (bool, np.bool_)):
        raise TypeError(f"cache must be True or False, got {cache!r}")
    if (teacher is None) == (teacher_logits is None):
        raise ValueError("give exactly one of teacher and teacher_logits, got "
                         f"teacher={type(teacher).__name__}, teacher_logits="
                         f"{'None' if teacher_logits is None else 'an array'}")
    if teacher_logits is not None:
        teacher_logits = _check_logits("teacher_logits", teacher_logits)
        if teacher_logits.shape[0] != X.shape[0]:
            raise ValueError(f"teacher_logits must have one row per row of X ({X.shape[0]}), "
                             f"got shape {teacher_logits.shape}")
    elif cache:
        teacher_logits = compute_teacher_logits(teacher, X)
    check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)
    if y is None and alpha < 1:
        raise ValueError(f"y must be given when alpha < 1 (the hard-label term has weight "
                         f"1 - alpha = {1 - alpha:g}), got y=None")
    loss_fn = make_distillation_loss(teacher_logits, T=T, alpha=alpha, teacher=teacher, X=X)
    return fit(student, X, y, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed,
               optimizer=optimizer, X_val=X_val, y_val=y_val, callback=callback, loss_fn=loss_fn)
