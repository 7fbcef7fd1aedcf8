"""Chapter 1 questions: the MSE gradient, one GD step, a mini-batch SGD epoch, softmax CE.

Every mistake below is a complete wrong implementation with the student's signature;
``tests/test_grade_questions.py`` proves each one loses points and is named.
"""

from __future__ import annotations

import numpy as np

from .. import gd, losses, regression
from .spec import Callback, Case, Mistake, Question, Rng

CHAPTER = "01_gradient_descent"


def _rand_linear(rng, n, d, scale=1.0):
    X = rng.standard_normal((n, d)) * scale
    y = rng.standard_normal(n) * scale
    w = rng.standard_normal(d)
    b = float(rng.standard_normal()) or 0.5
    return X, y, w, b


# ----------------------------------------------------------------------------------
# 01.mse_gradient(X, y, w, b) -> (loss, dw, db)


def mse_cases(rng):
    n, d = int(rng.integers(8, 40)), int(rng.integers(2, 6))
    return [
        Case(f"random data, n={n}, d={d}", _rand_linear(rng, n, d)),
        Case("one feature, like the chapter's data", _rand_linear(rng, int(rng.integers(20, 60)), 1)),
        Case("a single row (n=1)", _rand_linear(rng, 1, 3)),
        Case("more features than rows", _rand_linear(rng, 3, 7)),
        Case("large values", _rand_linear(rng, int(rng.integers(5, 20)), 2, scale=100.0)),
    ]


def _mse_sum(X, y, w, b):
    r = X @ w + b - y
    return float(r @ r), 2.0 * (X.T @ r), 2.0 * float(r.sum())


def _mse_grad_sum(X, y, w, b):
    r = X @ w + b - y
    return float(r @ r) / len(y), 2.0 * (X.T @ r), 2.0 * float(r.sum())


def _mse_no_two(X, y, w, b):
    n = len(y)
    r = X @ w + b - y
    return float(r @ r) / n, (X.T @ r) / n, float(r.sum()) / n


def _mse_sign(X, y, w, b):
    n = len(y)
    r = y - (X @ w + b)
    return float(r @ r) / n, (2.0 / n) * (X.T @ r), 2.0 * float(r.sum()) / n


def _mse_db_sum(X, y, w, b):
    n = len(y)
    r = X @ w + b - y
    return float(r @ r) / n, (2.0 / n) * (X.T @ r), 2.0 * float(r.sum())


def _mse_no_bias(X, y, w, b):
    n = len(y)
    r = X @ w - y
    return float(r @ r) / n, (2.0 / n) * (X.T @ r), 2.0 * float(r.sum()) / n


def _mse_articles(X, y, w, b):
    # the source articles' snippet: grad_w = X.T @ (y_pred - y); grad_b = np.mean(y_pred - y)
    n = len(y)
    r = X @ w + b - y
    return float(r @ r) / n, X.T @ r, float(r.mean())


MSE_GRADIENT = Question(
    id="01.mse_gradient", func="mse_gradient", reference=regression.mse_gradient,
    make_cases=mse_cases, output_names=("loss", "dw", "db"), points=1.0,
    reference_modules=("course_lib.regression", "course_lib.kernels.linear_grad"),
    mistakes=(
        Mistake("sum", "your loss and gradients are sums over the rows, not means: divide by n",
                _mse_sum),
        Mistake("grad_no_mean",
                "your loss is a mean but your gradients are sums: dw and db need the 1/n too "
                "(without it the usable learning rate shrinks with the data set)", _mse_grad_sum),
        Mistake("no_two", "your gradients miss the factor 2 from differentiating the square", _mse_no_two),
        Mistake("sign", "your gradients have the wrong sign: with r = Xw + b - y (prediction minus "
                "target) the gradient is +(2/n) X^T r", _mse_sign),
        Mistake("db_sum", "your db is not averaged: db = (2/n) * sum(r), like dw", _mse_db_sum),
        Mistake("no_bias", "your residual forgets the bias: r = X @ w + b - y", _mse_no_bias),
        Mistake("articles", "your gradient is the source articles' buggy one: dw = X.T @ r has neither "
                "the 2 nor the 1/n (it grows with n, so the usable learning rate shrinks like 1/n) and "
                "db = mean(r) misses the 2", _mse_articles),
    ),
)


# ----------------------------------------------------------------------------------
# 01.gd_step(params, grads, lr) -> new params list


def gd_step_cases(rng):
    d, C = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    lin = [rng.standard_normal(d), float(rng.standard_normal())]
    mat = [rng.standard_normal((C, d)), rng.standard_normal(C)]
    one = [rng.standard_normal(d)]
    return [
        Case("linear model [w, b]", (lin, [rng.standard_normal(d), float(rng.standard_normal())],
                                     float(rng.uniform(0.01, 0.5)))),
        Case("matrix and vector [W, b]", (mat, [rng.standard_normal((C, d)), rng.standard_normal(C)],
                                          float(rng.uniform(0.01, 0.5)))),
        Case("a single parameter", (one, [rng.standard_normal(d)], float(rng.uniform(0.01, 0.5)))),
        Case("lr = 1", ([rng.standard_normal(d), 0.25], [rng.standard_normal(d), -1.5], 1.0)),
    ]


def _gd_plus(params, grads, lr):
    return [p + lr * g for p, g in zip(params, grads)]


def _gd_no_lr(params, grads, lr):
    return [p - g for p, g in zip(params, grads)]


def _gd_inplace(params, grads, lr):
    for i, g in enumerate(grads):
        params[i] -= lr * g
    return params


def _gd_step_only(params, grads, lr):
    return [lr * g for g in grads]


GD_STEP = Question(
    id="01.gd_step", func="gd_step", reference=gd.gd_step,
    make_cases=gd_step_cases, output_names="new params", points=1.0,
    # chapter 3's optimizers make the same step (SGD without momentum)
    reference_modules=("course_lib.gd", "course_lib.optim.functional", "course_lib.kernels.optim"),
    mistakes=(
        Mistake("plus", "you step uphill: the update is p - lr * g (minus), you added the gradient",
                _gd_plus),
        Mistake("no_lr", "your step ignores the learning rate: subtract lr * g, not g", _gd_no_lr),
        Mistake("inplace", "you modified the caller's params in place (params[i] -= ...): "
                "return a new list and leave the inputs untouched", _gd_inplace),
        Mistake("step_only", "you return the step lr * g instead of the new parameters p - lr * g",
                _gd_step_only),
    ),
)


# ----------------------------------------------------------------------------------
# 01.sgd_epoch(grad_fn, params, X, y, lr, batch_size, rng) -> (params, losses)


def sgd_cases(rng):
    def case(name, n, bs):
        d = int(rng.integers(1, 4))
        X, y, w, b = _rand_linear(rng, n, d)
        return Case(name, (Callback("linear_mse"), [w, b], X, y, float(rng.uniform(0.01, 0.1)),
                           bs, Rng(int(rng.integers(2**31)))))
    bs = int(rng.integers(3, 9))
    k = int(rng.integers(2, 5))
    return [
        case(f"n={k * bs} rows in batches of {bs}", k * bs, bs),
        case("the last batch is smaller", k * bs + int(rng.integers(1, bs)), bs),
        case("batch_size=1 (stochastic GD)", int(rng.integers(5, 10)), 1),
        case("batch_size > n (one full batch)", 6, 10),
        case("random sizes", int(rng.integers(20, 60)), int(rng.integers(2, 12))),
    ]


def _batches(n, bs):
    return [(s, min(s + bs, n)) for s in range(0, n, bs)]


def _sgd_generic(grad_fn, params, X, y, lr, batch_size, rng, *, shuffle=True, drop_last=False,
                 loss_after=False, one_step=False, y_unshuffled=False):
    n = X.shape[0]
    order = rng.permutation(n) if shuffle else np.arange(n)
    spans = [(0, n)] if one_step else _batches(n, batch_size)
    if drop_last:
        spans = [(s, e) for s, e in spans if e - s == batch_size]
    losses_ = []
    for s, e in spans:
        idx = order[s:e]
        yb = y[s:e] if y_unshuffled else y[idx]
        loss, grads = grad_fn(params, X[idx], yb)
        params = gd.gd_step(params, grads, lr)
        if loss_after:
            loss, _ = grad_fn(params, X[idx], yb)
        losses_.append(loss)
    return params, losses_


def _sgd_choice(grad_fn, params, X, y, lr, batch_size, rng):
    # each batch drawn with rng.choice: rows repeat, others are never visited
    n = X.shape[0]
    losses_ = []
    for s, e in _batches(n, batch_size):
        idx = rng.choice(n, size=e - s)
        loss, grads = grad_fn(params, X[idx], y[idx])
        params = gd.gd_step(params, grads, lr)
        losses_.append(loss)
    return params, losses_


def _sgd_no_shuffle(*a):
    return _sgd_generic(*a, shuffle=False)


def _sgd_drop_last(*a):
    return _sgd_generic(*a, drop_last=True)


def _sgd_loss_after(*a):
    return _sgd_generic(*a, loss_after=True)


def _sgd_one_step(*a):
    return _sgd_generic(*a, one_step=True)


def _sgd_y_unshuffled(*a):
    return _sgd_generic(*a, y_unshuffled=True)


SGD_EPOCH = Question(
    id="01.sgd_epoch", func="sgd_epoch", reference=gd.sgd_epoch,
    make_cases=sgd_cases, output_names=("params", "losses"), points=1.0,
    callbacks={"linear_mse": gd.linear_grad_fn},
    uses={"gd_step": gd.gd_step},
    reference_modules=("course_lib.gd", "course_lib.kernels.linear_grad"),
    mistakes=(
        Mistake("no_shuffle", "you visit the rows in their stored order: shuffle once per epoch "
                "with order = rng.permutation(n)", _sgd_no_shuffle),
        Mistake("drop_last", "you drop the last, smaller batch: an epoch visits every row "
                "(the last batch has the n % batch_size leftover rows)", _sgd_drop_last),
        Mistake("loss_after", "you record each batch's loss after its step: record the loss "
                "grad_fn returns together with the gradient, before the update", _sgd_loss_after),
        Mistake("one_step", "you make one step per epoch: mini-batch SGD makes one step per batch, "
                "ceil(n / batch_size) steps", _sgd_one_step),
        Mistake("y_unshuffled", "you shuffle X but not y: index both with the same permutation, "
                "X[idx] and y[idx]", _sgd_y_unshuffled),
        Mistake("choice", "you draw each batch with rng.choice: that samples rows with replacement, "
                "so some rows repeat and others are never visited; one epoch is one permutation, "
                "order = rng.permutation(n), cut into consecutive batches", _sgd_choice),
    ),
)


# ----------------------------------------------------------------------------------
# 01.softmax_cross_entropy(logits, y) -> (loss, dlogits)


def ce_cases(rng):
    def case(name, n, C, offset=0.0):
        # offset: every row shifted by +-offset; the softmax is unchanged, but exp overflows
        # (or underflows to 0/0) unless the row's max is subtracted first
        shift = offset * rng.choice([-1.0, 1.0], size=(n, 1))
        return Case(name, (rng.standard_normal((n, C)) * 3.0 + shift,
                           rng.integers(0, C, size=n).astype(np.int64)))
    C = int(rng.integers(3, 8))
    n = C + int(rng.integers(2, 12))  # n != C so a softmax over the wrong axis shows
    return [
        case(f"random logits, n={n}, C={C}", n, C),
        case("two classes", int(rng.integers(4, 12)), 2),
        case("a single row (n=1)", 1, int(rng.integers(3, 6))),
        case("more classes than rows", 3, 9),
        case("large logits (rows shifted by +-1000)", int(rng.integers(4, 10)), 4, offset=1000.0),
    ]


def _ce_parts(logits, y, *, stable=True, axis=1):
    z = logits - logits.max(axis=axis, keepdims=True) if stable else logits
    e = np.exp(z)
    p = e / e.sum(axis=axis, keepdims=True)
    rows = np.arange(len(y))
    return p, rows


def _ce_no_max(logits, y):
    p, rows = _ce_parts(logits, y, stable=False)
    loss = -np.mean(np.log(p[rows, y]))
    g = p.copy()
    g[rows, y] -= 1.0
    return float(loss), g / len(y)


def _ce_grad_no_n(logits, y):
    loss, g = losses.softmax_cross_entropy(logits, y)
    return loss, g * len(y)


def _ce_sum(logits, y):
    loss, g = losses.softmax_cross_entropy(logits, y)
    return loss * len(y), g * len(y)


def _ce_no_onehot(logits, y):
    loss, _ = losses.softmax_cross_entropy(logits, y)
    return loss, losses.softmax(logits) / len(y)


def _ce_wrong_axis(logits, y):
    p, rows = _ce_parts(logits, y, axis=0)
    loss = -np.mean(np.log(p[rows, y]))
    g = p.copy()
    g[rows, y] -= 1.0
    return float(loss), g / len(y)


SOFTMAX_CE = Question(
    id="01.softmax_cross_entropy", func="softmax_cross_entropy",
    reference=losses.softmax_cross_entropy,
    make_cases=ce_cases, output_names=("loss", "dlogits"), points=1.0,
    reference_modules=("course_lib.losses", "course_lib.regression", "course_lib.kernels.linear_grad",
                       "course_lib.kernels.softmax_ce"),
    mistakes=(
        Mistake("no_max", "your softmax overflows on large logits (exp(1000) is inf): subtract "
                "each row's max before exp, which leaves the softmax unchanged", _ce_no_max),
        Mistake("grad_no_n", "your loss is a mean but dlogits is not divided by n", _ce_grad_no_n),
        Mistake("sum", "you sum over the batch instead of averaging: loss and dlogits need 1/n",
                _ce_sum),
        Mistake("no_onehot", "your dlogits forgets the -onehot(y): it is (softmax(z) - onehot(y)) / n",
                _ce_no_onehot),
        Mistake("wrong_axis", "your softmax normalises over the wrong axis: each row (sample) "
                "must sum to 1, use axis=1", _ce_wrong_axis),
    ),
)


# ==================================================================================
# Tasks the lecture does not solve: a loss it does not derive (Huber), a forecast
# checked against a measurement (the stability bound, the condition number and the
# number of steps, for the L2-regularised loss), and one Newton step.
# ==================================================================================


# ----------------------------------------------------------------------------------
# 01.huber_gradient(X, y, w, b, delta) -> (loss, dw, db)


def _huber_data(rng, n, d, *, outliers=0, scale=1.0):
    X, y, w, b = _rand_linear(rng, n, d, scale)
    if outliers:
        y[rng.choice(n, size=outliers, replace=False)] += 20.0 * rng.choice([-1.0, 1.0], size=outliers)
    return X, y, w, b


def huber_cases(rng):
    n, d = int(rng.integers(10, 40)), int(rng.integers(2, 6))
    return [
        Case(f"random data with outliers, n={n}, d={d}, delta=0.5",
             _huber_data(rng, n, d, outliers=3) + (0.5,)),
        Case("delta between 1.2 and 2.5", _huber_data(rng, int(rng.integers(10, 30)), 2, outliers=2)
             + (float(rng.uniform(1.2, 2.5)),)),
        Case("every residual inside delta (the quadratic zone)",
             _huber_data(rng, int(rng.integers(5, 20)), 3) + (1000.0,)),
        Case("every residual outside delta (the linear zone)",
             _huber_data(rng, int(rng.integers(5, 20)), 3, scale=10.0) + (1e-3,)),
        Case("a single row", _huber_data(rng, 1, 4) + (0.7,)),
    ]


def _huber_generic(X, y, w, b, delta, *, clip=True, sign_only=False, no_half=False, no_offset=False,
                   scale=1.0, total=False, flip=False):
    n = len(y)
    r = X @ w + b - y
    a = np.abs(r)
    inside = a <= delta
    quad = r * r if no_half else 0.5 * r * r
    lin = delta * a if no_offset else delta * (a - 0.5 * delta)
    loss = float(np.sum(np.where(inside, quad, lin))) / (1 if total else n) * scale
    if sign_only:
        g = delta * np.sign(r)
    elif no_half:
        g = np.where(inside, 2.0 * r, delta * np.sign(r))
    else:
        g = np.clip(r, -delta, delta) if clip else r
    if flip:
        g = -g
    g = g / (1 if total else n) * scale
    return loss, X.T @ g, float(g.sum())


def _huber_mistake(**flags):
    def impl(X, y, w, b, delta):
        return _huber_generic(X, y, w, b, delta, **flags)
    return impl


def _huber_smooth_l1(X, y, w, b, delta):
    return _huber_generic(X, y, w, b, delta, scale=1.0 / delta)


HUBER_GRADIENT = Question(
    id="01.huber_gradient", func="huber_gradient", reference=regression.huber_gradient,
    make_cases=huber_cases, output_names=("loss", "dw", "db"), points=3.0,
    reference_modules=("course_lib.regression", "course_lib.losses"),
    mistakes=(
        Mistake("unclipped", "your gradient uses the raw residual r: the Huber loss is linear "
                "beyond delta, so its derivative there is delta * sign(r); dL/dr = clip(r, -delta, "
                "delta) / n", _huber_mistake(clip=False)),
        Mistake("sign_only", "your gradient is delta * sign(r) everywhere: inside |r| <= delta the "
                "loss is r**2 / 2, whose derivative is r itself", _huber_mistake(sign_only=True)),
        Mistake("no_half", "your quadratic part is r**2 without the 1/2: the Huber loss is r**2 / 2 "
                "inside delta (that is what makes its slope continuous at |r| = delta)",
                _huber_mistake(no_half=True)),
        Mistake("no_offset", "your linear part is delta * |r|: it needs - delta**2 / 2 so that the "
                "two pieces meet at |r| = delta", _huber_mistake(no_offset=True)),
        Mistake("smooth_l1", "you computed smooth L1 (the Huber loss divided by delta, PyTorch's "
                "F.smooth_l1_loss with beta=delta): this exercise is F.huber_loss",
                _huber_smooth_l1),
        Mistake("sum", "you sum over the rows instead of averaging: loss and gradients need 1/n",
                _huber_mistake(total=True)),
        Mistake("sign", "your gradients have the wrong sign: with r = Xw + b - y (prediction minus "
                "target), dw = X.T @ clip(r, -delta, delta) / n", _huber_mistake(flip=True)),
    ),
)


# ----------------------------------------------------------------------------------
# 01.gd_forecast(X, alpha, tol) -> (lr_max, kappa, steps)


def gd_forecast(X, alpha, tol):
    r"""What full-batch gradient descent on the L2-regularised MSE will do, predicted from ``X``.

    ``L = mean((Xw + b - y)**2) + alpha * ||w||**2`` (bias not penalised) has the constant
    Hessian :func:`course_lib.regression.ridge_hessian`, eigenvalues
    :math:`\lambda_{\min} \le \dots \le \lambda_{\max}`.  Returns

    - ``lr_max = 2 / lambda_max``: the largest stable learning rate;
    - ``kappa = lambda_max / lambda_min``: the condition number;
    - ``steps``: the fewest steps at the best constant rate ``2 / (lambda_min + lambda_max)``
      that shrink the loss gap ``L - L*`` by ``tol`` from any start: the smallest integer
      ``k`` with :math:`\rho^{2k} \le \mathrm{tol}`, :math:`\rho = (\kappa - 1)/(\kappa + 1)`.
    """
    lam = np.linalg.eigvalsh(regression.ridge_hessian(X, alpha))
    kappa = float(lam[-1] / lam[0])
    rho = (kappa - 1.0) / (kappa + 1.0)
    return 2.0 / float(lam[-1]), kappa, int(np.ceil(np.log(tol) / (2.0 * np.log(rho))))


def _scaled(rng, n, scales):
    return rng.standard_normal((n, len(scales))) * np.asarray(scales) + rng.uniform(-3, 3, len(scales))


def forecast_cases(rng):
    d = int(rng.integers(2, 5))
    scales = np.geomspace(0.2, 5.0, d) * rng.uniform(0.8, 1.25, d)
    Z = rng.standard_normal((int(rng.integers(30, 80)), 3))
    return [
        Case(f"features of different scales, d={d}, alpha=0.1",
             (_scaled(rng, int(rng.integers(30, 80)), scales), 0.1, 1e-6)),
        Case("alpha = 0 (the plain MSE)", (_scaled(rng, int(rng.integers(30, 80)), [0.5, 3.0]), 0.0, 1e-3)),
        Case("one feature", (_scaled(rng, int(rng.integers(20, 60)), [2.0]), float(rng.uniform(0.01, 0.1)),
                             1e-4)),
        Case("strong regularisation, alpha=5", (_scaled(rng, 40, [1.0, 10.0, 0.1]), 5.0, 1e-6)),
        Case("standardised features", ((Z - Z.mean(axis=0)) / Z.std(axis=0), 0.01, 1e-8)),
    ]


def _forecast_generic(X, alpha, tol, *, bias_column=True, penalise_bias=False, use_alpha=True,
                      two=2.0, half_hessian=False, kappa_sqrt=False, rho_squared=True, rounding=np.ceil):
    n = X.shape[0]
    A = np.hstack([X, np.ones((n, 1))]) if bias_column else X
    H = (2.0 / n) * (A.T @ A)
    diag = np.ones(H.shape[0])
    if bias_column and not penalise_bias:
        diag[-1] = 0.0
    if use_alpha:
        H = H + 2.0 * alpha * np.diag(diag)
    if half_hessian:
        H = H / 2.0
    lam = np.linalg.eigvalsh(H)
    kappa = float(lam[-1] / lam[0])
    if kappa_sqrt:
        kappa = float(np.sqrt(kappa))
    rho = (kappa - 1.0) / (kappa + 1.0)
    power = 2.0 if rho_squared else 1.0
    return two / float(lam[-1]), kappa, int(rounding(np.log(tol) / (power * np.log(rho))))


def _forecast_mistake(**flags):
    def impl(X, alpha, tol):
        return _forecast_generic(X, alpha, tol, **flags)
    return impl


GD_FORECAST = Question(
    id="01.gd_forecast", func="gd_forecast", reference=gd_forecast,
    make_cases=forecast_cases, output_names=("lr_max", "kappa", "steps"), points=3.0,
    rtol=1e-6, atol=0.0,
    reference_modules=("course_lib.regression",),
    mistakes=(
        Mistake("no_bias_column", "your Hessian forgets the bias: the parameters are (w, b), so "
                "H = (2/n) A.T @ A + 2 alpha diag(1, ..., 1, 0) with A = [X, 1] (a column of ones)",
                _forecast_mistake(bias_column=False)),
        Mistake("bias_penalised", "you add 2 alpha to the bias's diagonal entry too: the penalty is "
                "alpha * ||w||**2, the bias is not penalised (diag(1, ..., 1, 0))",
                _forecast_mistake(penalise_bias=True)),
        Mistake("no_alpha", "your Hessian ignores the penalty: alpha * ||w||**2 adds 2 alpha to "
                "each w entry of the diagonal", _forecast_mistake(use_alpha=False)),
        Mistake("lr_one_over", "your lr_max is 1 / lambda_max: that is where the zig-zag starts; "
                "divergence starts at 2 / lambda_max", _forecast_mistake(two=1.0)),
        Mistake("hessian_half", "your Hessian misses the factor 2 (of the square and of alpha): "
                "H = (2/n) A.T @ A + 2 alpha D, so your lr_max is twice too large",
                _forecast_mistake(half_hessian=True)),
        Mistake("kappa_of_A", "your kappa is the condition number of A (singular values), the "
                "square root of the Hessian's lambda_max / lambda_min", _forecast_mistake(kappa_sqrt=True)),
        Mistake("rate_not_squared", "your step count uses rho per step for the loss gap: the error "
                "shrinks by rho, the loss gap (quadratic in the error) by rho**2",
                _forecast_mistake(rho_squared=False)),
        Mistake("floor", "your step count rounds down: steps is the smallest integer k with "
                "rho**(2k) <= tol, so round up (ceil)", _forecast_mistake(rounding=np.floor)),
    ),
)


# ----------------------------------------------------------------------------------
# 01.newton_step(X, y, w, b, alpha, lr) -> (w, b)


def newton_cases(rng):
    def case(name, n, d, alpha, lr, scale=1.0):
        X, y, w, b = _rand_linear(rng, n, d)
        return Case(name, (X * scale, y, w, b, alpha, lr))
    n, d = int(rng.integers(10, 40)), int(rng.integers(2, 6))
    return [
        case(f"random data, n={n}, d={d}, a damped step", n, d, float(rng.uniform(0.05, 1.0)),
             float(rng.uniform(0.3, 0.8))),
        case("a full step (lr = 1)", int(rng.integers(10, 30)), 3, float(rng.uniform(0.05, 1.0)), 1.0),
        case("alpha = 0 (the plain MSE)", int(rng.integers(10, 30)), 2, 0.0, 0.5),
        case("more features than rows (alpha makes H invertible)", 3, 6, 0.5, 0.6),
        case("features of scale 10", int(rng.integers(10, 30)), 2, 0.2, 0.7, scale=10.0),
    ]


def _newton_generic(X, y, w, b, alpha, lr, *, penalise_bias=False, half_hessian=False, sign=-1.0,
                    hessian_alpha=True, half_penalty=False, ignore_lr=False, step_only=False):
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    r = A @ np.r_[w, b] - y
    c = 1.0 if half_penalty else 2.0
    diag = np.r_[np.ones(d), 1.0 if penalise_bias else 0.0]
    theta = np.r_[w, b]
    g = (2.0 / n) * (A.T @ r) + c * alpha * diag * theta
    H = (2.0 / n) * (A.T @ A) + (c * alpha * np.diag(diag) if hessian_alpha else 0.0)
    if half_hessian:
        H = H / 2.0
    step = (1.0 if ignore_lr else lr) * np.linalg.solve(H, g)
    new = step if step_only else theta + sign * step
    return new[:-1], float(new[-1])


def _newton_mistake(**flags):
    def impl(X, y, w, b, alpha, lr):
        return _newton_generic(X, y, w, b, alpha, lr, **flags)
    return impl


NEWTON_STEP = Question(
    id="01.newton_step", func="newton_step", reference=regression.newton_step,
    make_cases=newton_cases, output_names=("w", "b"), points=3.0,
    reference_modules=("course_lib.regression",),
    mistakes=(
        Mistake("bias_penalised", "you penalise the bias: the penalty is alpha * ||w||**2, so neither "
                "the gradient nor the Hessian gets an alpha term for b", _newton_mistake(penalise_bias=True)),
        Mistake("hessian_half", "your Hessian misses its factor 2: H = (2/n) A.T @ A + 2 alpha D, "
                "so your step is twice too long", _newton_mistake(half_hessian=True)),
        Mistake("plus", "you step uphill: theta_new = theta - lr * H^-1 grad (minus)",
                _newton_mistake(sign=1.0)),
        Mistake("no_alpha_in_hessian", "your Hessian ignores the penalty: alpha * ||w||**2 adds "
                "2 alpha to the w entries of its diagonal", _newton_mistake(hessian_alpha=False)),
        Mistake("half_penalty", "your penalty is (alpha / 2) ||w||**2 (gradient alpha * w): here it "
                "is alpha * ||w||**2, gradient 2 alpha w, Hessian 2 alpha", _newton_mistake(half_penalty=True)),
        Mistake("ignores_lr", "you return the minimiser (a full step) whatever lr is: the damped step "
                "goes only the fraction lr of the way, theta - lr * H^-1 grad", _newton_mistake(ignore_lr=True)),
        Mistake("step_only", "you return the step lr * H^-1 grad instead of the new parameters",
                _newton_mistake(step_only=True)),
    ),
)

QUESTIONS = (MSE_GRADIENT, GD_STEP, SGD_EPOCH, SOFTMAX_CE, HUBER_GRADIENT, NEWTON_STEP, GD_FORECAST)
