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
    make_cases=sgd_cases, output_names=("momentum_buffer (returned)", "param (after the step)"), points=1.0,
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
                                            "square_avg (after the step)"), points=1.0,
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
          rebind=False, decay_after=False, bias_m=True, bias_v=True, eps_hat=False):
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
    if eps_hat:  # the paper's "efficient" form: eps is not bias-corrected with v
        param -= lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m / (np.sqrt(v) + eps)
        return
    m_hat = m / (1 - beta1 ** t) if bias and bias_m else m
    v_hat = v / (1 - beta2 ** t) if bias and bias_v else v
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
                                         "exp_avg (after the step)", "exp_avg_sq (after the step)"), points=1.0,
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
        Mistake("eps_hat", "you use the paper's \"efficient\" form lr * sqrt(1 - beta2**t) / (1 - beta1**t) "
                "* m / (sqrt(v) + eps): it puts eps on the uncorrected sqrt(v), so it differs when eps "
                "matters; PyTorch divides m_hat by sqrt(v_hat) + eps", _adam_mistake(eps_hat=True)),
        Mistake("bias_m_only", "you bias-correct m but not v: v_hat = v / (1 - beta2**step) too",
                _adam_mistake(bias_v=False)),
        Mistake("bias_v_only", "you bias-correct v but not m: m_hat = m / (1 - beta1**step) too",
                _adam_mistake(bias_m=False)),
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
         unshifted=False, period_total=False, no_eta_min=False, from_zero=False, no_half=False,
         floor_div=False):
    W, T = warmup_steps, total_steps
    if step < W:
        s = 0.0 if from_zero else start_factor
        t = step + 1 if plus_one else step
        return base_lr * (s + (1 - s) * (t // W if floor_div in (True, "warmup") else t / W))
    if floor_div in (True, "cosine"):
        progress = (step - W) // (T - W)
    else:
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
    make_cases=cosine_cases, output_names="lr", rtol=1e-9, atol=1e-12, points=1.0,
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
        Mistake("floor_div", "you divide with // (integer division): step // warmup_steps and "
                "(t - W) // (T - W) are 0 until the very end, so the schedule jumps instead of "
                "ramping; use /", _cos_mistake(floor_div=True)),
        Mistake("floor_div_warmup", "your warm-up divides with // (integer division): "
                "step // warmup_steps is 0 until the end of the warm-up, so the rate stays at "
                "start_factor * base_lr and then jumps; use /", _cos_mistake(floor_div="warmup")),
        Mistake("floor_div_cosine", "your cosine phase divides with // (integer division): "
                "(step - W) // (T - W) is 0 until the last step, so the rate stays at base_lr and "
                "then drops to eta_min; use /", _cos_mistake(floor_div="cosine")),
    ),
)


# ==================================================================================
# Tasks the lecture does not solve: an optimizer it does not implement, matched against
# torch (Adamax), the heavy-ball convergence rate predicted and then measured, and
# gradient clipping with torch.nn.utils.clip_grad_norm_'s exact semantics.
# ==================================================================================


# ----------------------------------------------------------------------------------
# 03.adamax_step(param, grad, exp_avg, exp_inf, step, *, lr, beta1, beta2, eps) -> None


def adamax_step(param, grad, exp_avg, exp_inf, step, *, lr, beta1, beta2, eps):
    """Reference: :func:`course_lib.optim.functional.adamax_step` without weight decay."""
    F.adamax_step(param, grad, exp_avg, exp_inf, step, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


def adamax_cases(rng):
    def case(name, shape, step, *, eps=1e-8, scale=1.0, zero_state=False, u_scale=None):
        p, g = rng.standard_normal(shape), rng.standard_normal(shape) * scale
        g.flat[0] = -abs(g.flat[0]) - scale  # a clearly negative entry: |g| matters
        m = np.zeros(shape) if zero_state else rng.standard_normal(shape) * 0.1 * scale
        u = np.zeros(shape) if zero_state else rng.uniform(1.0, 2.0, shape) * (u_scale or scale)
        return Case(name, (p, g, m, u, step), dict(
            lr=float(rng.uniform(1e-3, 1e-1)), beta1=float(rng.uniform(0.8, 0.95)),
            beta2=float(rng.uniform(0.99, 0.999)), eps=eps))
    return [
        case("the first step (state at zero)", (int(rng.integers(2, 8)),), 1, zero_state=True),
        case("step 3, a matrix", (3, 2), 3),
        case("a later step", (5,), int(rng.integers(10, 100))),
        case("the running max dominates (eps = 1e-3)", (6,), 4, eps=1e-3, scale=1e-3, u_scale=2e-3),
        case("large gradients", (4,), 2, scale=10.0, u_scale=1.0),
    ]


def _adamax(param, grad, m, u, step, lr, beta1, beta2, eps, *, eps_after=False, bias=True,
            bias_u=False, no_abs=False, no_decay=False, rebind=False):
    new_m = beta1 * m + (1 - beta1) * grad
    g = grad if no_abs else np.abs(grad)
    new_u = np.maximum((1.0 if no_decay else beta2) * u, g if eps_after else g + eps)
    if rebind:
        m, u = new_m, new_u
    else:
        m[...], u[...] = new_m, new_u
    denom = u + eps if eps_after else u
    if bias_u:
        denom = denom / (1 - beta2 ** step)
    param -= (lr / (1 - beta1 ** step) if bias else lr) * m / denom


def _adamax_mistake(**flags):
    def impl(param, grad, exp_avg, exp_inf, step, *, lr, beta1, beta2, eps):
        _adamax(param, grad, exp_avg, exp_inf, step, lr, beta1, beta2, eps, **flags)
    return impl


ADAMAX = Question(
    id="03.adamax_step", func="adamax_step", reference=adamax_step,
    make_cases=adamax_cases, output_names=("returned value", "param (after the step)",
                                           "exp_avg (after the step)", "exp_inf (after the step)"),
    inplace=("param", "exp_avg", "exp_inf"), project=ignore_return, points=3.0,
    reference_modules=OPTIM_MODULES,
    mistakes=(
        Mistake("eps_after_max", "your eps is added after the max (u = max(beta2 u, |g|), then "
                "divide by u + eps, Adam's habit): PyTorch puts it inside, u = max(beta2 * u, |g| + eps)",
                _adamax_mistake(eps_after=True)),
        Mistake("no_bias_correction", "your step has no bias correction: the first moment starts at "
                "zero, so divide lr by 1 - beta1**step", _adamax_mistake(bias=False)),
        Mistake("u_bias_corrected", "you bias-correct u like Adam's v: a running max is not pulled "
                "towards its zero start, so only m is corrected", _adamax_mistake(bias_u=True)),
        Mistake("no_abs", "your max uses g, not |g|: the infinity norm takes absolute values, "
                "u = max(beta2 * u, |g| + eps)", _adamax_mistake(no_abs=True)),
        Mistake("u_not_decayed", "your u never decays: u = max(beta2 * u, |g| + eps), the beta2 lets "
                "an old large gradient be forgotten", _adamax_mistake(no_decay=True)),
        Mistake("rebind", "exp_avg = ... makes new arrays: the optimizer's state never changes; "
                "update exp_avg and exp_inf in place", _adamax_mistake(rebind=True)),
    ),
)


# ----------------------------------------------------------------------------------
# 03.heavy_ball_rate(lam, lr, momentum) -> float


def heavy_ball_rate(lam, lr, momentum):
    r"""Asymptotic convergence rate of SGD with momentum (heavy ball, PyTorch's form with
    dampening 0) on the quadratic :math:`\tfrac12 \sum_i \lambda_i x_i^2`.

    Per eigen-direction the pair :math:`(x_t, x_{t-1})` evolves by
    :math:`\begin{pmatrix} 1 + \mu - \eta\lambda & -\mu \\ 1 & 0 \end{pmatrix}`; the error
    shrinks like :math:`\rho^t` with :math:`\rho = \max_i` (spectral radius of that matrix).
    ``lam``: (k,) eigenvalues > 0.  Returns ``rho`` (> 1: divergence).
    """
    rho = 0.0
    for l in np.asarray(lam, dtype=np.float64).ravel():
        T = np.array([[1 + momentum - lr * l, -momentum], [1.0, 0.0]])
        rho = max(rho, float(np.max(np.abs(np.linalg.eigvals(T)))))
    return rho


def heavy_ball_cases(rng):
    k = int(rng.integers(3, 8))
    lam = np.sort(rng.uniform(0.05, 2.0, k))
    return [
        Case("complex regime: every direction oscillates", (np.array([0.1, 1.0]), 1.0, 0.5)),
        Case("real regime: small momentum, a flat direction", (np.array([0.01, 1.0]), 1.0, 0.1)),
        Case("divergent: lr too large", (np.array([0.5, 4.0]), 1.2, 0.3)),
        Case("no momentum (plain GD)", (np.array([0.2, 1.0, 3.0]), 0.4, 0.0)),
        Case(f"{k} random eigenvalues", (lam, float(rng.uniform(0.2, 1.0)), float(rng.uniform(0.05, 0.95)))),
        Case("an ill-conditioned bowl", (np.geomspace(0.01, 1.0, 5), float(rng.uniform(0.5, 1.5)),
                                         float(rng.uniform(0.6, 0.9)))),
    ]


def _roots(l, lr, mu, plus=False):
    b = 1 + mu - lr * l
    return np.roots([1.0, -b, -mu if plus else mu])


def _hb_no_momentum(lam, lr, momentum):
    return float(np.max(np.abs(1 - lr * np.asarray(lam))))


def _hb_lam_max(lam, lr, momentum):
    return float(np.max(np.abs(_roots(np.max(lam), lr, momentum))))


def _hb_sqrt_mu(lam, lr, momentum):
    return float(np.sqrt(momentum))


def _hb_real_part(lam, lr, momentum):
    return max(float(np.max(np.abs(_roots(l, lr, momentum).real))) for l in lam)


def _hb_squared(lam, lr, momentum):
    return heavy_ball_rate(lam, lr, momentum) ** 2


def _hb_plus_mu(lam, lr, momentum):
    return max(float(np.max(np.abs(_roots(l, lr, momentum, plus=True)))) for l in lam)


HEAVY_BALL_RATE = Question(
    id="03.heavy_ball_rate", func="heavy_ball_rate", reference=heavy_ball_rate,
    make_cases=heavy_ball_cases, output_names="rho", points=1.0, rtol=1e-8, atol=1e-12,
    reference_modules=(),
    mistakes=(
        Mistake("no_momentum", "your rate ignores the momentum: max |1 - lr * lambda| is plain gradient "
                "descent's; with momentum each direction is a 2x2 system in (x_t, x_t-1)", _hb_no_momentum),
        Mistake("lam_max_only", "you only look at the largest eigenvalue: the slowest direction is often "
                "the flattest one; take the max over every lambda", _hb_lam_max),
        Mistake("sqrt_mu", "you return sqrt(momentum): that is the rate only when every direction "
                "oscillates (complex eigenvalues); in general take the spectral radius", _hb_sqrt_mu),
        Mistake("real_part", "you take the real part of the eigenvalues: when they are complex their "
                "modulus |z| = sqrt(mu) sets the rate, use np.abs", _hb_real_part),
        Mistake("squared", "you return rho**2 (the loss's rate): the question asks for the error's "
                "rate rho", _hb_squared),
        Mistake("plus_mu", "your matrix has +mu in the corner: x_t+1 = (1 + mu - lr lambda) x_t - mu x_t-1, "
                "so the characteristic polynomial is z**2 - (1 + mu - lr lambda) z + mu", _hb_plus_mu),
    ),
)


# ----------------------------------------------------------------------------------
# 03.clip_grad_norm_(grads, max_norm) -> total_norm, grads scaled in place


def clip_cases(rng):
    def grads(shapes, scale):
        return [rng.standard_normal(s) * scale for s in shapes]
    return [
        Case("three tensors, norm above max_norm", (grads([(3, 4), (4,), (2, 2)], 1.0), float(rng.uniform(0.5, 2.0)))),
        Case("norm below max_norm: nothing changes", (grads([(5,), (2, 3)], 0.1), 10.0)),
        Case("a single tensor", (grads([(int(rng.integers(3, 9)),)], 3.0), 1.0)),
        Case("tiny gradients (the 1e-6 matters)", (grads([(4,), (3,)], 1e-4), 1e-5)),
        Case("one tensor much larger than the others", ([rng.standard_normal(6) * 20, rng.standard_normal(3) * 0.1], 1.0)),
    ]


def _clip(grads, max_norm, *, per_tensor=False, no_eps=False, always=False, after=False,
          rebind=False, sum_norms=False):
    norms = [float(np.sqrt(np.sum(g * g))) for g in grads]
    total = float(np.sum(norms)) if sum_norms else float(np.sqrt(np.sum(np.square(norms))))
    if per_tensor:
        for g, n in zip(grads, norms):
            g *= min(1.0, max_norm / (n + 1e-6))
        return total
    coef = max_norm / (total if no_eps else total + 1e-6)
    if not always:
        coef = min(1.0, coef)
    if rebind:
        grads = [g * coef for g in grads]  # noqa: F841 (the caller's arrays never change)
    else:
        for g in grads:
            g *= coef
    return total * coef if after else total


def _clip_mistake(**flags):
    def impl(grads, max_norm):
        return _clip(grads, max_norm, **flags)
    return impl


CLIP_GRAD_NORM = Question(
    id="03.clip_grad_norm_", func="clip_grad_norm_", reference=F.clip_grad_norm_,
    make_cases=clip_cases, output_names=("total_norm (returned)", "grads (after the call)"),
    inplace=("grads",), points=1.0, rtol=1e-9, atol=1e-15,
    reference_modules=OPTIM_MODULES,
    mistakes=(
        Mistake("per_tensor", "you clip each tensor to max_norm on its own: clip_grad_norm_ uses the "
                "global norm of all gradients together, one factor for all (the direction is kept)",
                _clip_mistake(per_tensor=True)),
        Mistake("no_eps", "your factor is max_norm / total_norm: PyTorch divides by total_norm + 1e-6",
                _clip_mistake(no_eps=True)),
        Mistake("always_scale", "you scale even when the norm is already below max_norm (scaling "
                "gradients up): the factor is min(1, max_norm / (total_norm + 1e-6))",
                _clip_mistake(always=True)),
        Mistake("returns_clipped", "you return the norm after clipping: clip_grad_norm_ returns the "
                "total norm before clipping", _clip_mistake(after=True)),
        Mistake("rebind", "grads = [g * c ...] makes new arrays: the caller's gradients never change; "
                "scale each array in place (g *= c)", _clip_mistake(rebind=True)),
        Mistake("sum_of_norms", "your total norm is the sum of the tensors' norms: it is the norm of "
                "everything together, sqrt(sum of squared norms)", _clip_mistake(sum_norms=True)),
    ),
)



# ----------------------------------------------------------------------------------
# 03.nadam_step(param, grad, exp_avg, exp_avg_sq, mu_product, step, *, lr, beta1, beta2, eps,
#               momentum_decay) -> mu_product


def nadam_step(param, grad, exp_avg, exp_avg_sq, mu_product, step, *, lr, beta1, beta2, eps,
               momentum_decay):
    """Reference: :func:`course_lib.optim.functional.nadam_step` without weight decay."""
    return F.nadam_step(param, grad, exp_avg, exp_avg_sq, mu_product, step, lr=lr, beta1=beta1,
                        beta2=beta2, eps=eps, momentum_decay=momentum_decay)


def _mu(beta1, t, psi):
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))


def nadam_cases(rng):
    def case(name, shape, step, *, psi=4e-3, eps=1e-8, scale=1.0, zero_state=False, lr=None):
        beta1 = float(rng.uniform(0.8, 0.95))
        p, g = rng.standard_normal(shape), rng.standard_normal(shape) * scale
        m = np.zeros(shape) if zero_state else rng.standard_normal(shape) * 0.3 * scale
        v = np.zeros(shape) if zero_state else rng.uniform(0.2, 1.0, shape) * scale ** 2
        prod = float(np.prod([_mu(beta1, i, psi) for i in range(1, step)]))  # the state torch would hold
        return Case(name, (p, g, m, v, prod, step), dict(
            lr=float(rng.uniform(1e-2, 1e-1)) if lr is None else lr, beta1=beta1,
            beta2=float(rng.uniform(0.99, 0.999)), eps=eps, momentum_decay=psi))
    return [
        case("the first step (state at zero, mu_product = 1)", (int(rng.integers(2, 8)),), 1, zero_state=True),
        case("step 2, a matrix", (3, 2), 2),
        case("step 5, a fast momentum schedule (momentum_decay = 0.3)", (5,), 5, psi=0.3),
        case("a later step, momentum_decay = 0.05", (4,), int(rng.integers(20, 60)), psi=0.05),
        case("tiny gradients, eps = 1e-3 matters", (6,), 3, eps=1e-3, scale=1e-3),
    ]


def _nadam(param, grad, m, v, prod, step, lr, beta1, beta2, eps, psi, *, const_mu=False,
           mu_t_ahead=False, beta_power=False, eps_inside=False, no_grad_term=False, grad_beta1=False,
           prod_late=False, precedence=False, no_v_bias=False, rebind=False, m_with_mu=False,
           next_without_mu=False, return_old=False):
    if const_mu:
        mu = mu_next = beta1
    elif precedence:  # 0.96 ** t * psi
        mu, mu_next = (beta1 * (1.0 - 0.5 * 0.96 ** t * psi) for t in (step, step + 1))
    else:
        mu, mu_next = _mu(beta1, step, psi), _mu(beta1, step + 1, psi)
    old_prod = prod
    prod = prod * mu
    b1 = mu if m_with_mu else beta1
    new_m = b1 * m + (1 - b1) * grad
    new_v = beta2 * v + (1 - beta2) * grad * grad
    if rebind:
        m, v = new_m, new_v
    else:
        m[...], v[...] = new_m, new_v
    v_hat = v if no_v_bias else v / (1 - beta2 ** step)
    denom = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
    if beta_power:
        bc, bc_next = 1 - beta1 ** step, 1 - beta1 ** (step + 1)
    else:
        bc = 1 - (old_prod if prod_late else prod)
        bc_next = 1 - (old_prod if prod_late else prod) * (1.0 if next_without_mu else mu_next)
    c_g = (1 - beta1 if grad_beta1 else 1 - mu) / bc
    c_m = mu / bc if mu_t_ahead else mu_next / bc_next
    if mu_t_ahead:
        c_m = mu / (1 - prod)
    if no_grad_term:
        c_g = 0.0
    param -= lr * (c_g * grad + c_m * m) / denom
    return old_prod if return_old else prod


def _nadam_mistake(**flags):
    def impl(param, grad, exp_avg, exp_avg_sq, mu_product, step, *, lr, beta1, beta2, eps, momentum_decay):
        return _nadam(param, grad, exp_avg, exp_avg_sq, mu_product, step, lr, beta1, beta2, eps,
                      momentum_decay, **flags)
    return impl


NADAM = Question(
    id="03.nadam_step", func="nadam_step", reference=nadam_step,
    make_cases=nadam_cases, output_names=("mu_product (returned)", "param (after the step)",
                                          "exp_avg (after the step)", "exp_avg_sq (after the step)"),
    inplace=("param", "exp_avg", "exp_avg_sq"), points=3.0, rtol=1e-9, atol=1e-12,
    reference_modules=OPTIM_MODULES,
    mistakes=(
        Mistake("constant_mu", "your momentum is the constant beta1: NAdam's follows the schedule "
                "mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay)), which starts near beta1 / 2",
                _nadam_mistake(const_mu=True)),
        Mistake("precedence", "you wrote 0.96 ** t * momentum_decay, which Python reads as "
                "(0.96 ** t) * momentum_decay: the exponent is t * momentum_decay, 0.96 ** (t * momentum_decay)",
                _nadam_mistake(precedence=True)),
        Mistake("mu_t_in_lookahead", "your look-ahead term uses this step's mu_t: the momentum term is scaled "
                "as if the next step had happened, mu_{t+1} / (1 - mu_product * mu_{t+1})",
                _nadam_mistake(mu_t_ahead=True)),
        Mistake("beta1_power_bias", "you bias-correct with 1 - beta1**t (Adam's): NAdam divides by "
                "1 - (product of the mu's), 1 - mu_product for the gradient term and "
                "1 - mu_product * mu_{t+1} for the momentum term", _nadam_mistake(beta_power=True)),
        Mistake("old_product", "you use the product before multiplying in this step's mu_t: update "
                "mu_product = mu_product * mu_t first", _nadam_mistake(prod_late=True)),
        Mistake("no_gradient_term", "your step has only the momentum term (Adam with a look-ahead "
                "coefficient): NAdam adds the current gradient on its own, lr * (1 - mu_t) / "
                "(1 - mu_product) * g / denom", _nadam_mistake(no_grad_term=True)),
        Mistake("gradient_term_beta1", "your gradient term has 1 - beta1: its weight is 1 - mu_t, "
                "the scheduled momentum", _nadam_mistake(grad_beta1=True)),
        Mistake("m_with_mu", "you average m with the scheduled mu_t: torch keeps Adam's running average, "
                "exp_avg = beta1 * exp_avg + (1 - beta1) * grad; the schedule only enters the step's "
                "coefficients", _nadam_mistake(m_with_mu=True)),
        Mistake("eps_inside", "your eps is inside the square root: the denominator is "
                "sqrt(v / (1 - beta2**t)) + eps", _nadam_mistake(eps_inside=True)),
        Mistake("no_v_bias_correction", "you do not bias-correct v: divide it by 1 - beta2**t "
                "before the square root", _nadam_mistake(no_v_bias=True)),
        Mistake("rebind", "exp_avg = ... makes new arrays: the optimizer's state never changes; "
                "update exp_avg and exp_avg_sq in place", _nadam_mistake(rebind=True)),
        Mistake("momentum_bias_without_next_mu", "your momentum term divides by 1 - mu_product: it "
                "looks one step ahead, so its bias correction is 1 - mu_product * mu_{t+1}",
                _nadam_mistake(next_without_mu=True)),
        Mistake("product_not_returned", "you return the mu_product you were given: return the updated "
                "product mu_product * mu_t (the caller keeps it for the next step)",
                _nadam_mistake(return_old=True)),
    ),
)


# ----------------------------------------------------------------------------------
# 03.nesterov_rate(lr, momentum, lam) -> float


def nesterov_rate(lr, momentum, lam):
    r"""Asymptotic convergence rate of ``torch.optim.SGD(nesterov=True, dampening=0)`` on the
    1-D quadratic :math:`f = \lambda\theta^2/2`.

    torch's update, :math:`b_t = \mu b_{t-1} + g_t`, :math:`\theta_{t+1} = \theta_t -
    \eta\,(g_t + \mu b_t)` with :math:`g_t = \lambda\theta_t`, is linear in the state
    :math:`(\theta_t, b_{t-1})`:

    .. math:: \begin{pmatrix}\theta_{t+1}\\ b_t\end{pmatrix} =
        \begin{pmatrix} 1 - \eta\lambda(1+\mu) & -\eta\mu^2 \\ \lambda & \mu \end{pmatrix}
        \begin{pmatrix}\theta_t\\ b_{t-1}\end{pmatrix},
        \qquad z^2 - (1+\mu)(1-\eta\lambda)\,z + \mu(1-\eta\lambda) = 0 .

    Returns the spectral radius (the larger root's modulus; > 1: divergence).
    """
    T = np.array([[1 - lr * lam * (1 + momentum), -lr * momentum ** 2], [lam, momentum]], dtype=np.float64)
    return float(np.max(np.abs(np.linalg.eigvals(T))))


def nesterov_cases(rng):
    return [
        Case("complex regime: the ball oscillates", (0.1, 0.9, 1.0)),
        Case("real regime: small momentum", (0.5, 0.1, 1.0)),
        Case("real regime: small steps, small momentum", (0.1, 0.1, 1.0)),
        Case("lr * lam > 1: a negative root dominates", (1.5, 0.3, 1.0)),
        Case("divergent: beyond the edge 2(1+mu)/(1+2mu)", (1.9, 0.5, 1.0)),
        Case("a steep direction", (float(rng.uniform(0.005, 0.015)), float(rng.uniform(0.6, 0.9)),
                                   float(rng.uniform(50.0, 100.0)))),
        Case("random values", (float(rng.uniform(0.05, 0.5)), float(rng.uniform(0.1, 0.95)),
                               float(rng.uniform(0.5, 3.0)))),
    ]


def _roots_of(tr, det):
    return np.roots([1.0, -tr, det])


def _rho(T):
    return float(np.max(np.abs(np.linalg.eigvals(np.array(T, dtype=np.float64)))))


def _nag_heavy_ball(lr, momentum, lam):
    return _rho([[1 + momentum - lr * lam, -momentum], [1.0, 0.0]])


def _nag_no_grad_term(lr, momentum, lam):  # theta -= lr * mu * b_t
    return _rho([[1 - lr * momentum * lam, -lr * momentum ** 2], [lam, momentum]])


def _nag_trace_half(lr, momentum, lam):
    z = _roots_of((1 + momentum) * (1 - lr * lam), momentum * (1 - lr * lam))
    return float(np.max(np.abs(z.real)))


def _nag_sqrt_det(lr, momentum, lam):
    return float(np.sqrt(abs(momentum * (1 - lr * lam))))


def _nag_squared(lr, momentum, lam):
    return nesterov_rate(lr, momentum, lam) ** 2


def _nag_det_mu(lr, momentum, lam):
    return float(np.max(np.abs(_roots_of((1 + momentum) * (1 - lr * lam), momentum))))


def _nag_abs_of_max(lr, momentum, lam):
    z = np.linalg.eigvals(np.array([[1 - lr * lam * (1 + momentum), -lr * momentum ** 2], [lam, momentum]]))
    return float(abs(z[np.argmax(z.real)]))


def _nag_mu_once(lr, momentum, lam):
    return _rho([[1 - lr * lam * (1 + momentum), -lr * momentum], [lam, momentum]])


NESTEROV_RATE = Question(
    id="03.nesterov_rate", func="nesterov_rate", reference=nesterov_rate,
    make_cases=nesterov_cases, output_names="rho", points=3.0, rtol=1e-8, atol=1e-12,
    reference_modules=(),
    mistakes=(
        Mistake("heavy_ball", "you return the heavy ball's rate (z**2 - (1 + mu - lr lam) z + mu): with "
                "nesterov=True the gradient enters twice, theta -= lr * (g + mu * b) after b = mu * b + g",
                _nag_heavy_ball),
        Mistake("no_gradient_term", "your step is theta -= lr * mu * b: torch's Nesterov step is "
                "theta -= lr * (g + mu * b), the current gradient is added on top of the buffer",
                _nag_no_grad_term),
        Mistake("mu_not_squared", "your matrix has -lr * mu where b_{t-1} enters theta: substitute "
                "b_t = mu b_{t-1} + g_t into theta -= lr (g_t + mu b_t) and it is -lr * mu**2",
                _nag_mu_once),
        Mistake("determinant_mu", "your characteristic polynomial ends in + mu (the heavy ball's "
                "determinant): for Nesterov the determinant is mu * (1 - lr * lam)", _nag_det_mu),
        Mistake("half_trace", "when the eigenvalues are complex you take their real part |trace| / 2: "
                "their modulus is sqrt(determinant); use np.abs of the complex roots", _nag_trace_half),
        Mistake("sqrt_det_always", "you return sqrt(|determinant|): that is the rate only when the "
                "roots are complex; when they are real the larger |root| decides", _nag_sqrt_det),
        Mistake("abs_of_max", "you take |the eigenvalue with the largest real part|: the rate is the "
                "largest modulus, and when lr * lam > 1 a negative root dominates; use np.max(np.abs(...))",
                _nag_abs_of_max),
        Mistake("squared", "you return rho**2 (the loss's rate): the question asks for the error's rate rho",
                _nag_squared),
    ),
)

QUESTIONS = (SGD_MOMENTUM, RMSPROP, ADAM, COSINE, HEAVY_BALL_RATE, CLIP_GRAD_NORM, ADAMAX, NADAM, NESTEROV_RATE)
