r"""The update math of every optimizer: one pure NumPy function per optimizer.

This is the *functional core* (PyTorch keeps the same split: ``torch/optim/adam.py``
has ``_single_tensor_adam``, the class ``Adam`` only holds state).  Every function
here updates **one** parameter array:

* ``param`` and the state arrays (moment estimates, buffers) are updated **in place**;
* ``grad`` is read only, never modified;
* all arrays have the same shape and the same float dtype (float32 or float64);
* hyperparameters are plain Python floats/bools, keyword-only, named as in ``torch.optim``.

The operations follow the order of PyTorch's ``_single_tensor_*`` functions one for one
(where the weight decay is added, ``eps`` added *outside* the square root, bias correction
applied to the denominator, ...), so our numbers agree with ``torch.optim`` to round-off.
Nothing here validates its inputs: the optimizer classes in :mod:`course_lib.optim.optimizers`
do that once, before calling these functions.

Each function has a numba twin with the same signature in :mod:`course_lib.kernels.optim`
(one fused, parallel pass over memory); the tests check the two against each other.

=================================  ======================================================
ours                               PyTorch
=================================  ======================================================
``sgd_step``                       ``torch.optim.sgd._single_tensor_sgd``
``adagrad_step``                   ``torch.optim.adagrad._single_tensor_adagrad``
``rmsprop_step``                   ``torch.optim.rmsprop._single_tensor_rmsprop``
``adam_step``                      ``torch.optim.adam._single_tensor_adam``
``adamw_step``                     the same with ``decoupled_weight_decay=True``
``adamax_step``                    ``torch.optim.adamax._single_tensor_adamax``
``nadam_step``                     ``torch.optim.nadam._single_tensor_nadam``
=================================  ======================================================
"""

from __future__ import annotations

import numpy as np

from .clip import clip_grad_norm_  # noqa: F401  (one home: optim/clip.py; re-exported for the functional API)


def lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    r"""In place ``start <- start + weight * (end - start)``, exactly as ``torch.Tensor.lerp_``.

    Mathematically this is the exponential moving average
    :math:`\text{start} \leftarrow (1-w)\,\text{start} + w\,\text{end}`.  PyTorch evaluates it
    from whichever end is nearer (for ``weight >= 0.5`` as
    ``end - (end - start) * (1 - weight)``), which loses less precision; we copy that so
    our moment estimates round the same way.
    """
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)
    return start


def sgd_step(param, grad, momentum_buffer, *, lr: float, momentum: float,
             dampening: float, weight_decay: float, nesterov: bool, maximize: bool):
    r"""One SGD step on one parameter (with momentum, Nesterov, weight decay).

    .. math::
        g &\leftarrow \pm\nabla + \lambda\,\theta \\
        b &\leftarrow \begin{cases} g & \text{first step} \\
                                    \mu\,b + (1-\tau)\,g & \text{afterwards}\end{cases} \\
        d &\leftarrow g + \mu\,b \ \text{(Nesterov)} \quad\text{or}\quad d \leftarrow b \\
        \theta &\leftarrow \theta - \eta\,d

    (:math:`\eta` = ``lr``, :math:`\mu` = ``momentum``, :math:`\tau` = ``dampening``,
    :math:`\lambda` = ``weight_decay``; the sign of :math:`\nabla` flips when ``maximize``.)
    Note the first step: the buffer starts as a *copy of the gradient*, not as
    :math:`(1-\tau)g`, so dampening only acts from the second step on (as in PyTorch).

    param: (...) float, updated in place.  grad: same shape and dtype.
    momentum_buffer: like param, or ``None`` before the first momentum step.
    Returns the momentum buffer (a new array on the first step, ``None`` if ``momentum == 0``).
    PyTorch: ``torch.optim.SGD`` (``_single_tensor_sgd``).
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + weight_decay * param          # L2 penalty folded into the gradient
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = grad.copy()           # torch: buf = grad.clone()
        else:
            momentum_buffer *= momentum
            momentum_buffer += (1 - dampening) * grad
        if nesterov:
            grad = grad + momentum * momentum_buffer  # look ahead along the velocity
        else:
            grad = momentum_buffer
    param += -lr * grad
    return momentum_buffer


def adagrad_step(param, grad, state_sum, step: int, *, lr: float, lr_decay: float,
                 weight_decay: float, eps: float, maximize: bool) -> None:
    r"""One Adagrad step on one parameter.

    .. math::
        g &\leftarrow \pm\nabla + \lambda\,\theta \\
        \tilde\eta &= \frac{\eta}{1 + (t-1)\,\text{lr\_decay}} \\
        G &\leftarrow G + g^2 \\
        \theta &\leftarrow \theta - \tilde\eta\,\frac{g}{\sqrt{G} + \epsilon}

    ``step`` is :math:`t`, the 1-based number of this update.  ``eps`` is added *after* the
    square root.  ``state_sum`` (:math:`G`) starts at ``initial_accumulator_value``.

    param: (...) float, in place.  grad, state_sum: same shape and dtype (state_sum in place).
    PyTorch: ``torch.optim.Adagrad`` (``_single_tensor_adagrad``).
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + weight_decay * param
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += grad * grad
    std = np.sqrt(state_sum) + eps
    param += -clr * grad / std


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, *, lr: float,
                 alpha: float, eps: float, weight_decay: float, momentum: float,
                 centered: bool, maximize: bool) -> None:
    r"""One RMSprop step on one parameter (optionally centered, with momentum).

    .. math::
        g &\leftarrow \pm\nabla + \lambda\,\theta \\
        v &\leftarrow \alpha\,v + (1-\alpha)\,g^2 \\
        \bar g &\leftarrow \alpha\,\bar g + (1-\alpha)\,g
            \quad\text{(centered only)} \\
        s &= \sqrt{v - \bar g^2} + \epsilon \ \text{(centered)}
            \quad\text{or}\quad s = \sqrt{v} + \epsilon \\
        b &\leftarrow \mu\,b + g / s, \quad \theta \leftarrow \theta - \eta\,b
            \quad\text{if } \mu > 0, \ \text{else}\ \theta \leftarrow \theta - \eta\,g/s

    param: (...) float, in place.  grad: same shape and dtype.
    square_avg (:math:`v`): like param, in place.  grad_avg (:math:`\bar g`): like param if
    ``centered`` else ignored (may be ``None``).  momentum_buffer (:math:`b`): like param if
    ``momentum > 0`` else ignored.  All start at zero.  There is no bias correction.
    PyTorch: ``torch.optim.RMSprop`` (``_single_tensor_rmsprop``).
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + weight_decay * param
    square_avg *= alpha
    square_avg += (1 - alpha) * grad * grad
    if centered:
        lerp_(grad_avg, grad, 1 - alpha)
        avg = np.sqrt(square_avg - grad_avg * grad_avg)   # a running variance estimate
    else:
        avg = np.sqrt(square_avg)
    avg += eps
    if momentum > 0:
        momentum_buffer *= momentum
        momentum_buffer += grad / avg
        param += -lr * momentum_buffer
    else:
        param += -lr * grad / avg


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step: int, *, lr: float,
              beta1: float, beta2: float, eps: float, weight_decay: float, amsgrad: bool,
              maximize: bool, decoupled_weight_decay: bool = False) -> None:
    r"""One Adam (or AdamW) step on one parameter.

    .. math::
        g &\leftarrow \pm\nabla + \lambda\,\theta
            \quad\text{(Adam; AdamW instead decays } \theta \leftarrow (1-\eta\lambda)\,\theta) \\
        m &\leftarrow \beta_1 m + (1-\beta_1)\,g \\
        v &\leftarrow \beta_2 v + (1-\beta_2)\,g^2 \\
        \hat v &\leftarrow \max(\hat v, v) \quad\text{(AMSGrad; then use } \hat v
            \text{ for } v) \\
        \theta &\leftarrow \theta - \frac{\eta}{1-\beta_1^t}\;
            \frac{m}{\sqrt{v}\,/\sqrt{1-\beta_2^t} + \epsilon}

    ``step`` is :math:`t`, the 1-based number of this update.  The bias corrections
    :math:`1-\beta^t` undo the pull of the zero-initialised moments towards 0 in the first
    steps.  Note where ``eps`` sits: *outside* the square root and *after* the bias
    correction of :math:`v` (the original paper's :math:`\hat m/(\sqrt{\hat v}+\epsilon)`).

    param: (...) float, in place.  grad: same shape and dtype.
    exp_avg (:math:`m`), exp_avg_sq (:math:`v`): like param, in place, start at zero.
    max_exp_avg_sq (:math:`\hat v`): like param if ``amsgrad`` else ignored (may be ``None``).
    PyTorch: ``torch.optim.Adam`` / ``torch.optim.AdamW`` (``_single_tensor_adam``).
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay      # AdamW: shrink the weights directly
        else:
            grad = grad + weight_decay * param  # Adam: L2 penalty, later rescaled by 1/sqrt(v)
    lerp_(exp_avg, grad, 1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad

    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5

    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    else:
        second_moment = exp_avg_sq
    denom = np.sqrt(second_moment) / bias_correction2_sqrt + eps
    param += -step_size * exp_avg / denom


def adamw_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step: int, *, lr: float,
               beta1: float, beta2: float, eps: float, weight_decay: float, amsgrad: bool,
               maximize: bool) -> None:
    r"""One AdamW step: :func:`adam_step` with decoupled weight decay
    :math:`\theta \leftarrow (1 - \eta\lambda)\,\theta` (Loshchilov & Hutter).

    PyTorch: ``torch.optim.AdamW``.
    """
    adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr=lr, beta1=beta1,
              beta2=beta2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
              maximize=maximize, decoupled_weight_decay=True)


def adamax_step(param, grad, exp_avg, exp_inf, step: int, *, lr: float, beta1: float,
                beta2: float, eps: float, weight_decay: float = 0.0) -> None:
    r"""One Adamax step on one parameter (Adam with the infinity norm, Kingma & Ba 2015, §7.1).

    .. math::
        g &\leftarrow \nabla + \lambda\,\theta \\
        m &\leftarrow \beta_1 m + (1-\beta_1)\,g \\
        u &\leftarrow \max(\beta_2\,u,\ |g| + \epsilon) \\
        \theta &\leftarrow \theta - \frac{\eta}{1 - \beta_1^t}\,\frac{m}{u}

    ``step`` is :math:`t`, 1-based.  ``u`` needs no bias correction: a max does not shrink
    towards its zero start the way an average does.  ``eps`` sits *inside* the max.

    param: (...) float, in place.  grad, exp_avg, exp_inf: same shape (the two states in place).
    PyTorch: ``torch.optim.Adamax`` (``_single_tensor_adamax``).
    """
    if weight_decay != 0:
        grad = grad + weight_decay * param
    lerp_(exp_avg, grad, 1 - beta1)
    np.maximum(exp_inf * beta2, np.abs(grad) + eps, out=exp_inf)
    param += -(lr / (1 - beta1 ** step)) * exp_avg / exp_inf


def nadam_step(param, grad, exp_avg, exp_avg_sq, mu_product: float, step: int, *, lr: float,
               beta1: float, beta2: float, eps: float, momentum_decay: float,
               weight_decay: float = 0.0, decoupled_weight_decay: bool = False) -> float:
    r"""One NAdam step on one parameter (Adam with Nesterov momentum, Dozat 2016).

    .. math::
        g &\leftarrow \nabla + \lambda\,\theta
            \quad\text{(or, decoupled: } \theta \leftarrow (1-\eta\lambda)\,\theta) \\
        \mu_t &= \beta_1\bigl(1 - \tfrac12\,0.96^{\,t\,\psi}\bigr), \qquad
            \Pi_t = \Pi_{t-1}\,\mu_t \quad (\Pi_0 = 1) \\
        m &\leftarrow \beta_1 m + (1-\beta_1)\,g, \qquad
            v \leftarrow \beta_2 v + (1-\beta_2)\,g^2 \\
        \theta &\leftarrow \theta - \eta\,\frac{1-\mu_t}{1-\Pi_t}\,\frac{g}{d}
            - \eta\,\frac{\mu_{t+1}}{1-\Pi_t\,\mu_{t+1}}\,\frac{m}{d},
            \qquad d = \sqrt{v/(1-\beta_2^t)} + \epsilon

    (:math:`\psi` = ``momentum_decay``.)  The gradient enters twice: once on its own, once
    inside :math:`m`, which is scaled as if the next step's momentum :math:`\mu_{t+1}` had
    already been applied (the Nesterov look-ahead).  The bias correction of :math:`m` uses
    the product of the momentum schedule, not :math:`1-\beta_1^t`.

    ``step`` is :math:`t`, the 1-based number of this update; ``mu_product`` is
    :math:`\Pi_{t-1}` (1.0 before the first step).  Returns :math:`\Pi_t`, the new product
    (torch keeps it in ``state["mu_product"]``, a float32 scalar unless the default dtype is
    float64).

    param: (...) float, in place.  grad: same shape and dtype, read only.
    exp_avg (:math:`m`), exp_avg_sq (:math:`v`): like param, in place, start at zero.
    PyTorch: ``torch.optim.NAdam`` (``_single_tensor_nadam``; ``maximize`` is not supported).
    """
    bias_correction2 = 1 - beta2 ** step
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * param
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product = mu_product * mu
    lerp_(exp_avg, grad, 1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    denom = np.sqrt(exp_avg_sq / bias_correction2)
    denom += eps
    mu_product_next = mu_product * mu_next
    param += (-lr * (1.0 - mu) / (1.0 - mu_product)) * grad / denom
    param += (-lr * mu_next / (1.0 - mu_product_next)) * exp_avg / denom
    return mu_product
