r"""Chapter 6 questions: the temperature softmax (warm-up), the distillation loss with its gradient
(every trap of the chapter catalogued), the gradient of the KD loss with respect to the *teacher's*
logits (derived by the student, not shown in the lecture), and the exact bias correction for a class
missing from the transfer set (the lecture scans a grid).

Signatures:

- ``softmax_T(logits, T) -> p``: (n, C) -> (n, C), rows of ``softmax(logits / T)``
- ``distillation_loss(student_logits, teacher_logits, y, T, alpha) -> (loss, dstudent_logits)``
- ``kd_teacher_gradient(student_logits, teacher_logits, T) -> dteacher_logits``: the gradient of
  ``kd_loss = T^2/n sum KL(softmax(t/T) || softmax(s/T))`` with respect to ``t``
- ``missing_class_bias(logits, cls, count) -> delta``: the ``count``-th smallest margin
  ``max_{j != cls} z_ij - z_i,cls`` (adding anything above it to column ``cls`` makes at least
  ``count`` rows predict ``cls``)
"""

from __future__ import annotations

import numpy as np

from .. import distill
from .spec import Case, Mistake, Question

CHAPTER = "06_distillation"


def _lsm(z, axis=1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


# ----------------------------------------------------------------------------------
# 06.softmax_T(logits, T) -> p


def softmax_T(logits, T):
    """Reference: :func:`course_lib.distill.softmax`."""
    return distill.softmax(logits, T)


def softmax_cases(rng):
    n, C = int(rng.integers(3, 9)), int(rng.integers(4, 11))
    if n == C:
        n += 1
    big = 1000 * rng.standard_normal((4, 6))
    big[0, 0] = 3000.0             # exp(3000 / 2) overflows: only a max-subtracted softmax survives
    return [
        Case(f"random logits ({n}, {C}), T = 3", (2 * rng.standard_normal((n, C)), 3.0)),
        Case("T = 0.5 sharpens", (rng.standard_normal((5, 7)), 0.5)),
        Case("large logits (+-1000): subtract the row max", (big, 2.0)),
        Case("a single row, high T", (rng.standard_normal((1, 10)), float(rng.uniform(10, 30)))),
    ]


def _sm_no_max(z, T):
    e = np.exp(z / T)
    return e / e.sum(axis=1, keepdims=True)


def _sm_axis0(z, T):
    return np.exp(_lsm(z / T, axis=0))


def _sm_times_T(z, T):
    return np.exp(_lsm(z * T))


def _sm_no_T(z, T):
    return np.exp(_lsm(z))


SOFTMAX_T = Question(
    id="06.softmax_T", func="softmax_T", reference=softmax_T, make_cases=softmax_cases,
    output_names="p", points=1.0, reference_modules=("course_lib.distill",),
    mistakes=(
        Mistake("no_max", "your softmax overflows on large logits: subtract each row's max from "
                "logits / T before np.exp (the result does not change)", _sm_no_max),
        Mistake("axis0", "you normalise over the wrong axis: each row (one example) must sum to 1, "
                "use axis=1", _sm_axis0),
        Mistake("times_T", "you multiply the logits by T: the temperature divides them, "
                "softmax(logits / T)", _sm_times_T),
        Mistake("no_T", "you ignore the temperature: softmax(logits / T), not softmax(logits)", _sm_no_T),
    ),
)


# ----------------------------------------------------------------------------------
# 06.distillation_loss(student_logits, teacher_logits, y, T, alpha) -> (loss, dstudent_logits)


def distillation_loss(student_logits, teacher_logits, y, T, alpha):
    """Reference: :func:`course_lib.distill.distillation_loss`."""
    return distill.distillation_loss(student_logits, teacher_logits, y, T, alpha)


def _ce(s, y):
    n = s.shape[0]
    logq = _lsm(s)
    g = np.exp(logq)
    g[np.arange(n), y] -= 1
    return -np.mean(logq[np.arange(n), y]), g / n


def _mix(kd, ce, alpha):
    return alpha * kd[0] + (1 - alpha) * ce[0], alpha * kd[1] + (1 - alpha) * ce[1]


def _dl(s, t, y, T, alpha, *, scale_T2=True, teacher_T=True, kl="right", div=None, axis=1,
        swap_alpha=False, log_of_probs=False):
    n = s.shape[0]
    log_q = _lsm(s / T, axis=axis)
    log_p = _lsm(t / T if teacher_T else t, axis=axis)
    q, p = np.exp(log_q), np.exp(log_p)
    if log_of_probs:
        with np.errstate(divide="ignore", invalid="ignore"):
            log_p = np.log(p)
    div = n if div is None else div
    if kl == "right":
        val = np.sum(p * (log_p - log_q))
    elif kl == "swapped":
        val = np.sum(q * (log_q - log_p))
    else:  # "probs": F.kl_div(q, p): p * (log p - q)
        val = np.sum(p * (log_p - q))
    f = T * T if scale_T2 else 1.0
    kd = (f * val / div, f / T / div * (q - p))
    ce = _ce(s, y) if axis == 1 else _ce_axis0(s, y)
    return _mix(kd, ce, 1 - alpha if swap_alpha else alpha)


def _ce_axis0(s, y):
    n = s.shape[0]
    logq = _lsm(s, axis=0)
    g = np.exp(logq)
    g[np.arange(n), y] -= 1
    return -np.mean(logq[np.arange(n), y]), g / n


def dl_cases(rng):
    def case(name, n, C, T, alpha, scale=2.0):
        s, t = scale * rng.standard_normal((n, C)), scale * rng.standard_normal((n, C))
        return Case(name, (s, t, rng.integers(0, C, n), T, alpha))
    n = int(rng.integers(5, 13))
    return [
        case(f"random batch ({n}, 10), T = 4, alpha = 0.7", n, 10, 4.0, 0.7),
        case("T = 2, alpha = 0.25", 6, 10, 2.0, 0.25),
        case("soft targets only (alpha = 1), T = 3", 7, 5, 3.0, 1.0),
        case("extreme logits (+-1000): probabilities underflow to 0", 4, 10, 2.0, 0.8, scale=1000.0),
        case("one example, T = 8, alpha = 0.9", 1, 10, 8.0, 0.9),
    ]


DISTILLATION_LOSS = Question(
    id="06.distillation_loss", func="distillation_loss", reference=distillation_loss,
    make_cases=dl_cases, output_names=("loss", "dstudent_logits"), points=1.0,   # mirrors the lecture
    reference_modules=("course_lib.distill",),
    mistakes=(
        Mistake("no_T2", "you forgot to multiply the soft term by T**2: without it its gradient shrinks "
                "like 1/T**2 and the weight of soft vs hard targets changes with T",
                lambda s, t, y, T, a: _dl(s, t, y, T, a, scale_T2=False)),
        Mistake("student_only_T", "you soften only the student's logits: the teacher's probabilities "
                "are softmax(teacher_logits / T) too",
                lambda s, t, y, T, a: _dl(s, t, y, T, a, teacher_T=False)),
        Mistake("kl_swapped", "your divergence is KL(student || teacher): it must be KL(teacher || student) "
                "= sum p (log p - log q), p the teacher's (F.kl_div takes the student's log-probabilities "
                "first, then the teacher's probabilities)",
                lambda s, t, y, T, a: _dl(s, t, y, T, a, kl="swapped")),
        Mistake("probs_as_input", "you passed probabilities where log-probabilities belong (F.kl_div's "
                "first argument is log q): the soft term must be sum p (log p - log q)",
                lambda s, t, y, T, a: _dl(s, t, y, T, a, kl="probs")),
        Mistake("mean_not_batchmean", "you divide the soft term by n * C (reduction='mean'): the KL "
                "divergence is averaged over the batch only (reduction='batchmean', divide by n)",
                lambda s, t, y, T, a: _dl(s, t, y, T, a, div=s.shape[0] * s.shape[1])),
        Mistake("wrong_axis", "your softmax normalises over the batch (axis 0): each example's row of "
                "probabilities must sum to 1, use axis=1",
                lambda s, t, y, T, a: _dl(s, t, y, T, a, axis=0)),
        Mistake("alpha_swapped", "alpha weighs the wrong term: the soft targets get alpha, the labels "
                "1 - alpha", lambda s, t, y, T, a: _dl(s, t, y, T, a, swap_alpha=True)),
        Mistake("log_of_probs", "you take np.log of the teacher's probabilities: where one underflows to "
                "0 you get 0 * log 0 = NaN; use the log-softmax (log p = t/T - logsumexp(t/T))",
                lambda s, t, y, T, a: _dl(s, t, y, T, a, log_of_probs=True)),
    ),
)


# ----------------------------------------------------------------------------------
# 06.kd_teacher_gradient(student_logits, teacher_logits, T) -> dteacher_logits


def kd_teacher_gradient(student_logits, teacher_logits, T):
    r"""Gradient of :func:`course_lib.distill.kd_loss` with respect to the teacher's logits.

    .. math:: \frac{\partial L}{\partial t_{ij}} = \frac{T}{n}\,p_{ij}\Bigl[(\log p_{ij} - \log q_{ij})
              - \sum_c p_{ic}(\log p_{ic} - \log q_{ic})\Bigr]
    """
    s = np.asarray(student_logits, dtype=np.float64)
    t = np.asarray(teacher_logits, dtype=np.float64)
    n = s.shape[0]
    log_p, log_q = distill.log_softmax(t, T), distill.log_softmax(s, T)
    p = np.exp(log_p)
    a = log_p - log_q
    return (T / n) * p * (a - np.sum(p * a, axis=1, keepdims=True))


def _tg(s, t, T, *, factor="T", mean=True, plus_one=False):
    n = s.shape[0]
    log_p, log_q = _lsm(t / T), _lsm(s / T)
    p = np.exp(log_p)
    a = log_p - log_q + (1.0 if plus_one else 0.0)
    f = {"T": T, "T2": T * T, "1": 1.0}[factor] / n
    return f * p * (a - np.sum(p * a, axis=1, keepdims=True)) if mean else f * p * a


def tg_cases(rng):
    def case(name, n, C, T, scale=2.0):
        return Case(name, (scale * rng.standard_normal((n, C)), scale * rng.standard_normal((n, C)), T))
    n = int(rng.integers(4, 10))
    return [
        case(f"random batch ({n}, 10), T = 4", n, 10, 4.0),
        case("T = 2", 6, 7, 2.0),
        case("T = 0.5", 5, 4, 0.5),
        case("one example, T = 10", 1, 10, 10.0, scale=5.0),
    ]


KD_TEACHER_GRADIENT = Question(
    id="06.kd_teacher_gradient", func="kd_teacher_gradient", reference=kd_teacher_gradient,
    make_cases=tg_cases, output_names="dteacher_logits", points=3.0,
    reference_modules=("course_lib.distill",),
    mistakes=(
        Mistake("student_formula", "you mirrored the student's gradient, (T/n)(p - q): the teacher's "
                "logits enter the loss through p in both p and log p, so the gradient is "
                "(T/n) p * (a - sum_c p a) with a = log p - log q",
                lambda s, t, T: (T / s.shape[0]) * (np.exp(_lsm(t / T)) - np.exp(_lsm(s / T)))),
        Mistake("no_mean_term", "you forgot the softmax Jacobian's second term: d p_c / d t_j = "
                "p_c (delta_cj - p_j) / T, which subtracts p_j * sum_c p_c a_c",
                lambda s, t, T: _tg(s, t, T, mean=False)),
        Mistake("plus_one", "your gradient keeps the +1 of d(p log p)/dp but not the Jacobian's second "
                "term: with both, the +1 cancels (sum_c p_c (delta_cj - p_j) = 0)",
                lambda s, t, T: _tg(s, t, T, mean=False, plus_one=True)),
        Mistake("T_squared", "your factor is T**2 / n: the chain rule through t / T divides by T once, "
                "so T**2 * (1/T) = T", lambda s, t, T: _tg(s, t, T, factor="T2")),
        Mistake("no_T", "your factor is 1 / n: the loss carries T**2 and the chain rule 1/T, "
                "leaving T / n", lambda s, t, T: _tg(s, t, T, factor="1")),
    ),
)


# ----------------------------------------------------------------------------------
# 06.missing_class_bias(logits, cls, count) -> delta


def missing_class_bias(logits, cls, count):
    """The ``count``-th smallest margin ``max_{j != cls} z_ij - z_i,cls`` over the rows."""
    z = np.asarray(logits, dtype=np.float64)
    others = np.delete(z, cls, axis=1).max(axis=1)
    return float(np.sort(others - z[:, cls])[count - 1])


def _mb_margins(z, cls):
    return np.delete(z, cls, axis=1).max(axis=1) - z[:, cls]


def mb_cases(rng):
    def rand(n, C):
        return 3 * rng.standard_normal((n, C))
    n = int(rng.integers(20, 41))
    z_pred = rand(30, 10)
    z_pred[:6, 4] += 12.0          # six rows already predict class 4: the answer is negative
    return [
        Case(f"{n} rows, 10 classes, count = {n // 10}", (rand(n, 10), int(rng.integers(0, 10)), max(1, n // 10))),
        Case("count = 1", (rand(25, 10), 2, 1)),
        Case("the class is already predicted by six rows, count = 3", (z_pred, 4, 3)),
        Case("every row (count = n)", (rand(12, 5), 0, 12)),
        Case("last class, count = 7", (rand(40, 10), 9, 7)),
    ]


MISSING_CLASS_BIAS = Question(
    id="06.missing_class_bias", func="missing_class_bias", reference=missing_class_bias,
    make_cases=mb_cases, output_names="delta", points=3.0, reference_modules=("course_lib.distill",),
    mistakes=(
        Mistake("off_by_one", "you take the (count + 1)-th smallest margin: with 0-based indexing the "
                "count-th smallest is np.sort(margins)[count - 1]",
                lambda z, c, k: float(np.sort(_mb_margins(z, c))[min(k, len(z) - 1)])),
        Mistake("sign", "your margin has the wrong sign: a row predicts cls once z[cls] + delta exceeds "
                "the largest other logit, so the margin is max_other - z[cls]",
                lambda z, c, k: float(np.sort(-_mb_margins(z, c))[k - 1])),
        Mistake("include_self", "your maximum includes the class itself: the margin compares z[cls] with "
                "the largest *other* logit (it is negative for rows that already predict cls)",
                lambda z, c, k: float(np.sort(np.asarray(z).max(axis=1) - np.asarray(z)[:, c])[k - 1])),
        Mistake("quantile", "np.quantile interpolates between margins: take the count-th smallest margin "
                "itself", lambda z, c, k: float(np.quantile(_mb_margins(z, c), k / len(z)))),
    ),
)

QUESTIONS = (SOFTMAX_T, DISTILLATION_LOSS, KD_TEACHER_GRADIENT, MISSING_CLASS_BIAS)
