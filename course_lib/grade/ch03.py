r"""Chapter 3 questions: SGD with momentum, RMSprop and Adam/AdamW steps, and a cosine
learning-rate schedule with linear warm-up.

The steps follow the course's functional core (:mod:`course_lib.optim.functional`, which
follows ``torch.optim``'s ``_single_tensor_*`` functions): ``param`` and the optimizer
state are updated **in place**, ``grad`` is read only, hyperparameters are keyword-only
and named as in ``torch.optim``.  Students write the plain versions (no ``maximize``,
``nesterov``, ``centered``, ``amsgrad``):

- ``sgd_momentum_step(param, grad, momentum_buffer, *, lr, momentum, dampening)
  -> momentum_buffer`` (``momentum_buffer`` is ``None`` on the first step: return a new
  buffer, a copy of the gradient, as torch does)
- ``rmsprop_step(param, grad, square_avg, *, lr, alpha, eps) -> None``
- ``adam_step(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps,
  weight_decay, decoupled_weight_decay) -> None`` (``step`` is 1-based; decoupled weight
  decay is AdamW's)
- ``cosine_warmup_lr(step, *, base_lr, warmup_steps, total_steps, start_factor, eta_min)
  -> float``: the learning rate after ``step`` scheduler steps of
  ``SequentialLR([LinearLR(start_factor, total_iters=warmup_steps),
  CosineAnnealingLR(T_max=total_steps - warmup_steps, eta_min)], milestones=[warmup_steps])``

What is compared: the returned value (the buffer; ignored for the steps that return
``None``) and the in-place state after the call.
"""

from __future__ import annotations

import math

import numpy as np

from ..optim import functional as F
from .spec import Case, Mistake, Question

CHAPTER = "03_optimizers"
OPTIM_MODULES = ("course_lib.optim.functional", "course_lib.kernels.optim")


def ignore_return(value):
    """The steps update in place and return ``None``: returning ``param`` too is fine."""
    return None


# ----------------------------------------------------------------------------------
# 03.sgd_momentum_step


def sgd_momentum_step(param, grad, momentum_buffer, *, lr, momentum, dampening):
    """Reference: :func:`course_lib.optim.functional.sgd_step` without the other options."""
    return F.sgd_step(param, grad, momentum_buffer, lr=lr, momentum=momentum, dampening=dampening,
                      weight_decay=0.0, nesterov=False, maximize=False)


def sgd_cases(rng):
    def case(name, shape, first, dampening):
        p, g = rng.standard_normal(shape), rng.standard_normal(shape)
        buf = None if first else rng.standard_normal(shape)
        return Case(name, (p, g, buf), dict(lr=float(rng.uniform(0.01, 0.5)),
                                             momentum=float(rng.uniform(0.5, 0.95)),
                                             dampening=dampening))
    return [
        case("first step (no buffer yet)", (int(rng.integers(2, 8)),), True, 0.0),
        case("first step with dampening", (3, 2), True, float(rng.uniform(0.1, 0.5))),
        case("a later step", (int(rng.integers(2, 8)),), False, 0.0),
        case("a later step with dampening", (2, 4), False, float(rng.uniform(0.1, 0.5))),
    ]


def _sgd_core(param, grad, buf, lr, momentum, dampening, *, zero_start=False, no_damp=False,
              use_grad=False, sign=1.0):
    if buf is None:
        buf = np.zeros_like(grad) if zero_start else grad.copy()
        if zero_start:
            buf += (1 - dampening) * grad
    else:
        buf *= momentum
        buf += (1 if no_damp else 1 - dampening) * grad
    param -= sign * lr * (grad if use_grad else buf)
    return buf


def _sgd_zero_start(p, g, b, *, lr, momentum, dampening):
    return _sgd_core(p, g, b, lr, momentum, dampening, zero_start=True)


def _sgd_no_damp(p, g, b, *, lr, momentum, dampening):
    return _sgd_core(p, g, b, lr, momentum, dampening, no_damp=True)


def _sgd_use_grad(p, g, b, *, lr, momentum, dampening):
    return _sgd_core(p, g, b, lr, momentum, dampening, use_grad=True)


def _sgd_sign(p, g, b, *, lr, momentum, dampening):
    return _sgd_core(p, g, b, lr, momentum, dampening, sign=-1.0)


def _sgd_lr_in_buf(p, g, b, *, lr, momentum, dampening):
    if b is None:
        b = lr * g
    else:
        b *= momentum
        b += lr * (1 - dampening) * g
    p -= b
    return b


def _sgd_rebind(p, g, b, *, lr, momentum, dampening):
    buf = g.copy() if b is None else momentum * b + (1 - dampening) * g
    p = p - lr * buf  # noqa: F841  (the caller's param never changes)
    return buf


def _sgd_alias(p, g, b, *, lr, momentum, dampening):
    if b is None:
        b = g  # no copy: the buffer *is* the caller's gradient
    else:
        b *= momentum
        b += (1 - dampening) * g
    p -= lr * b
    return b


SGD_MOMENTUM = Question(
    id="03.sgd_momentum_step", func="sgd_momentum_step", reference=sgd_momentum_step,
    make_cases=sgd_cases, output_names=("momentum_buffer (returned)", "param (after the step)"),
    inplace=("param",), may_modify=("momentum_buffer",), no_alias=("grad",),
    reference_modules=OPTIM_MODULES,
    mistakes=(
        Mistake("alias", "your first buffer is the gradient array itself (buf = grad): the next step's "
                "buf *= momentum would then overwrite the caller's gradient; start with buf = grad.copy()",
                _sgd_alias),
        Mistake("zero_start", "your first buffer starts at zero (buf = (1 - dampening) * g): "
                "PyTorch starts it as a copy of the gradient, buf = grad.copy()", _sgd_zero_start),
        Mistake("no_dampening", "you ignore dampening: buf = momentum * buf + (1 - dampening) * grad",
                _sgd_no_damp),
        Mistake("grad_step", "you step with the gradient instead of the momentum buffer: "
                "param -= lr * buf", _sgd_use_grad),
        Mistake("sign", "you step uphill: param -= lr * buf (minus)", _sgd_sign),
        Mistake("lr_in_buffer", "you fold lr into the buffer (buf = momentum * buf + lr * grad, "
                "Sutskever's form): PyTorch keeps lr out of it and steps param -= lr * buf",
                _sgd_lr_in_buf),
        Mistake("rebind", "your param = param - ... makes a new array: the caller's param never "
                "changes; update it in place (param -= lr * buf)", _sgd_rebind),
    ),
)


# ----------------------------------------------------------------------------------
# 03.rmsprop_step


def rmsprop_step(param, grad, square_avg, *, lr, alpha, eps):
    """Reference: :func:`course_lib.optim.functional.rmsprop_step`, plain (not centered, no momentum)."""
    F.rmsprop_step(param, grad, square_avg, None, None, lr=lr, alpha=alpha, eps=eps,
                   weight_decay=0.0, momentum=0.0, centered=False, maximize=False)


def rmsprop_cases(rng):
    def case(name, shape, eps, scale=1.0):
        p, g = rng.standard_normal(shape), rng.standard_normal(shape) * scale
        v = rng.uniform(0.0, 1.0, shape) * scale ** 2
        return Case(name, (p, g, v), dict(lr=float(rng.uniform(0.001, 0.05)),
                                          alpha=float(rng.uniform(0.9, 0.999)), eps=eps))
    return [
        case("random state", (int(rng.integers(2, 8)),), 1e-8),
        case("a matrix", (3, 4), 1e-8),
        Case("first step (state at zero)", (rng.standard_normal(5), rng.standard_normal(5),
                                            np.zeros(5)), dict(lr=0.01, alpha=0.99, eps=1e-8)),
        case("tiny gradients, eps = 1e-3 matters", (6,), 1e-3, scale=1e-3),
    ]


def _rms(param, grad, v, lr, alpha, eps, *, eps_inside=False, swap=False, no_sqrt=False,
         old_v=False, rebind=False):
    a = 1 - alpha if swap else alpha
    v_used = v.copy() if old_v else None
    new_v = a * v + (1 - a) * grad * grad
    if rebind:
        v = new_v
    else:
        v[...] = new_v
    s = v_used if old_v else v
    denom = s + eps if no_sqrt else (np.sqrt(s + eps) if eps_inside else np.sqrt(s) + eps)
    param -= lr * grad / denom


def _rms_eps_inside(p, g, v, *, lr, alpha, eps):
    _rms(p, g, v, lr, alpha, eps, eps_inside=True)


def _rms_swap(p, g, v, *, lr, alpha, eps):
    _rms(p, g, v, lr, alpha, eps, swap=True)


def _rms_no_sqrt(p, g, v, *, lr, alpha, eps):
    _rms(p, g, v, lr, alpha, eps, no_sqrt=True)


def _rms_old_v(p, g, v, *, lr, alpha, eps):
    _rms(p, g, v, lr, alpha, eps, old_v=True)


def _rms_rebind(p, g, v, *, lr, alpha, eps):
    _rms(p, g, v, lr, alpha, eps, rebind=True)


RMSPROP = Question(
    id="03.rmsprop_step", func="rmsprop_step", reference=rmsprop_step,
    make_cases=rmsprop_cases, output_names=("returned value", "param (after the step)",
                                            "square_avg (after the step)"),
    inplace=("param", "square_avg"), project=ignore_return, reference_modules=OPTIM_MODULES,
    mistakes=(
        Mistake("eps_inside", "your eps is inside the square root: PyTorch divides by "
                "sqrt(square_avg) + eps", _rms_eps_inside),
        Mistake("alpha_swapped", "you swapped alpha and 1 - alpha: square_avg = alpha * square_avg "
                "+ (1 - alpha) * grad**2 (alpha ~ 0.99 keeps most of the history)", _rms_swap),
        Mistake("no_sqrt", "you divide by square_avg instead of its square root", _rms_no_sqrt),
        Mistake("old_average", "you step with the old square_avg: update the average first, then "
                "divide by its square root", _rms_old_v),
        Mistake("rebind", "square_avg = ... makes a new array: the optimizer's state never "
                "changes; update it in place (square_avg *= alpha; square_avg += ...)", _rms_rebind),
    ),
)


# ----------------------------------------------------------------------------------
# 03.adam_step


def adam_step(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps, weight_decay,
              decoupled_weight_decay):
    """Reference: :func:`course_lib.optim.functional.adam_step` (Adam, or AdamW if decoupled)."""
    F.adam_step(param, grad, exp_avg, exp_avg_sq, None, step, lr=lr, beta1=beta1, beta2=beta2,
                eps=eps, weight_decay=weight_decay, amsgrad=False, maximize=False,
                decoupled_weight_decay=decoupled_weight_decay)


def adam_cases(rng):
    def case(name, shape, step, *, wd=0.0, decoupled=False, eps=1e-8, scale=1.0, zero_state=False,
             lr=None):
        p, g = rng.standard_normal(shape), rng.standard_normal(shape) * scale
        m = np.zeros(shape) if zero_state else rng.standard_normal(shape) * 0.1 * scale
        v = np.zeros(shape) if zero_state else rng.uniform(0, 1, shape) * scale ** 2
        lr_drawn = float(rng.uniform(1e-3, 1e-1))
        return Case(name, (p, g, m, v, step), dict(
            lr=lr_drawn if lr is None else lr, beta1=float(rng.uniform(0.8, 0.95)),
            beta2=float(rng.uniform(0.99, 0.9999)), eps=eps, weight_decay=wd,
            decoupled_weight_decay=decoupled))
    return [
        case("the first step (moments at zero)", (int(rng.integers(2, 8)),), 1, zero_state=True),
        case("step 3", (3, 2), 3),
        case("a later step", (5,), int(rng.integers(10, 100))),
        case("tiny gradients, eps = 1e-3 matters", (4,), 2, eps=1e-3, scale=1e-3),
        case("L2 weight decay (Adam)", (4,), 2, wd=float(rng.uniform(0.05, 0.5))),
        # lr and weight decay large enough that "decay after the step" (off by lr**2 * wd)
        # fails on every seed
        case("decoupled weight decay (AdamW)", (2, 3), 2, wd=float(rng.uniform(0.3, 0.5)),
             decoupled=True, lr=float(rng.uniform(0.05, 0.1))),
    ]


def _adam(param, grad, m, v, step, lr, beta1, beta2, eps, wd, decoupled, *, bias=True,
          eps_inside=False, step_shift=0, l2_always=False, decay_no_lr=False, m_no_scale=False,
          rebind=False, decay_after=False):
    if wd:
        if decoupled and decay_after:
            pass  # applied after the step, below
        elif decoupled and not l2_always:
            param *= 1 - (1.0 if decay_no_lr else lr) * wd
        else:
            grad = grad + wd * param
    new_m = beta1 * m + (1.0 if m_no_scale else 1 - beta1) * grad
    new_v = beta2 * v + (1 - beta2) * grad * grad
    if rebind:
        m, v = new_m, new_v
    else:
        m[...], v[...] = new_m, new_v
    t = step + step_shift
    m_hat = m / (1 - beta1 ** t) if bias else m
    v_hat = v / (1 - beta2 ** t) if bias else v
    denom = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
    param -= lr * m_hat / denom
    if wd and decoupled and decay_after:
        param *= 1 - lr * wd


def _adam_mistake(**flags):
    def impl(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps, weight_decay,
             decoupled_weight_decay):
        _adam(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
              decoupled_weight_decay, **flags)
    return impl


ADAM = Question(
    id="03.adam_step", func="adam_step", reference=adam_step,
    make_cases=adam_cases, output_names=("returned value", "param (after the step)",
                                         "exp_avg (after the step)", "exp_avg_sq (after the step)"),
    inplace=("param", "exp_avg", "exp_avg_sq"), project=ignore_return,
    reference_modules=OPTIM_MODULES,
    mistakes=(
        Mistake("no_bias_correction", "your update matches Adam without bias correction: divide "
                "m by 1 - beta1**step and v by 1 - beta2**step", _adam_mistake(bias=False)),
        Mistake("eps_inside", "your eps is inside the square root: the denominator is "
                "sqrt(v_hat) + eps", _adam_mistake(eps_inside=True)),
        Mistake("step_off_by_one", "your bias correction uses step + 1: step is already the "
                "1-based number of this update", _adam_mistake(step_shift=1)),
        Mistake("l2_not_decoupled", "with decoupled_weight_decay you still add weight_decay * "
                "param to the gradient (L2): AdamW shrinks the weights directly, "
                "param *= 1 - lr * weight_decay", _adam_mistake(l2_always=True)),
        Mistake("decay_without_lr", "your decoupled weight decay forgets lr: "
                "param *= 1 - lr * weight_decay", _adam_mistake(decay_no_lr=True)),
        Mistake("decay_after_step", "you apply AdamW's weight decay after the Adam step: PyTorch "
                "shrinks param *= 1 - lr * weight_decay first, then steps with the decayed param",
                _adam_mistake(decay_after=True)),
        Mistake("m_not_averaged", "your first moment is m = beta1 * m + grad: it is an average, "
                "m = beta1 * m + (1 - beta1) * grad", _adam_mistake(m_no_scale=True)),
        Mistake("rebind", "exp_avg = ... makes new arrays: the optimizer's state never changes; "
                "update exp_avg and exp_avg_sq in place", _adam_mistake(rebind=True)),
    ),
)


# ----------------------------------------------------------------------------------
# 03.cosine_warmup_lr


def cosine_warmup_lr(step, *, base_lr, warmup_steps, total_steps, start_factor, eta_min):
    r"""Linear warm-up from ``start_factor * base_lr`` to ``base_lr`` over ``warmup_steps``,
    then cosine annealing to ``eta_min`` at ``total_steps``:

    .. math:: \eta_t = \begin{cases}
        \eta\,\bigl(s + (1-s)\,t/W\bigr) & t < W \\
        \eta_{\min} + \tfrac12(\eta - \eta_{\min})\bigl(1 + \cos(\pi\,\tfrac{t - W}{T - W})\bigr)
        & W \le t \le T \end{cases}

    The closed form of ``SequentialLR([LinearLR, CosineAnnealingLR], milestones=[W])``
    (PyTorch and :mod:`course_lib.optim.schedulers`; the tests check all three agree).
    """
    if step < warmup_steps:
        return base_lr * (start_factor + (1 - start_factor) * step / warmup_steps)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * progress))


def cosine_cases(rng):
    W = int(rng.integers(2, 10))
    T = W + int(rng.integers(6, 50))
    kw = dict(base_lr=float(rng.uniform(0.01, 1.0)), warmup_steps=W, total_steps=T,
              start_factor=float(rng.uniform(0.01, 0.5)))
    kw["eta_min"] = float(rng.uniform(0.01, 0.1)) * kw["base_lr"]
    at = {"the first step (t=0)": 0, "during warm-up": int(rng.integers(1, W)),
          "the last warm-up step": W - 1, "the end of warm-up (t=W)": W,
          "during the cosine": W + (T - W) // 3, "late in the cosine": W + 3 * (T - W) // 4,
          "the last step (t=total_steps)": T}
    return [Case(f"{name}", (t,), dict(kw)) for name, t in at.items()]


def _cos(step, base_lr, warmup_steps, total_steps, start_factor, eta_min, *, plus_one=False,
         unshifted=False, period_total=False, no_eta_min=False, from_zero=False, no_half=False):
    W, T = warmup_steps, total_steps
    if step < W:
        s = 0.0 if from_zero else start_factor
        t = step + 1 if plus_one else step
        return base_lr * (s + (1 - s) * t / W)
    progress = (step if unshifted else step - W) / (T if period_total else T - W)
    lo = 0.0 if no_eta_min else eta_min
    if no_half:
        return lo + (base_lr - lo) * math.cos(math.pi * progress)
    return lo + 0.5 * (base_lr - lo) * (1 + math.cos(math.pi * progress))


def _cos_mistake(**flags):
    def impl(step, *, base_lr, warmup_steps, total_steps, start_factor, eta_min):
        return _cos(step, base_lr, warmup_steps, total_steps, start_factor, eta_min, **flags)
    return impl


COSINE = Question(
    id="03.cosine_warmup_lr", func="cosine_warmup_lr", reference=cosine_warmup_lr,
    make_cases=cosine_cases, output_names="lr", rtol=1e-9, atol=1e-12,
    reference_modules=("course_lib.optim.schedulers",),
    mistakes=(
        Mistake("warmup_off_by_one", "your warm-up is one step ahead: at step t the factor is "
                "start_factor + (1 - start_factor) * t / warmup_steps (t starts at 0)",
                _cos_mistake(plus_one=True)),
        Mistake("cosine_not_shifted", "your cosine starts at step 0 instead of at the end of "
                "warm-up: use t - warmup_steps", _cos_mistake(unshifted=True)),
        Mistake("period_total", "your cosine period is total_steps: the decay lasts "
                "total_steps - warmup_steps steps, so it reaches eta_min exactly at the end",
                _cos_mistake(period_total=True)),
        Mistake("no_eta_min", "your schedule ignores eta_min: lr = eta_min + (base_lr - eta_min) "
                "* (1 + cos(pi * progress)) / 2", _cos_mistake(no_eta_min=True)),
        Mistake("warmup_from_zero", "your warm-up starts at 0: it starts at start_factor * base_lr",
                _cos_mistake(from_zero=True)),
        Mistake("no_half", "you use cos(pi * progress) without (1 + cos) / 2: the learning rate "
                "goes below eta_min (even negative)", _cos_mistake(no_half=True)),
    ),
)

QUESTIONS = (SGD_MOMENTUM, RMSPROP, ADAM, COSINE)
