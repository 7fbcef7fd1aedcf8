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
    make_cases=mse_cases, output_names=("loss", "dw", "db"),
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
    make_cases=gd_step_cases, output_names="new params",
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
    make_cases=sgd_cases, output_names=("params", "losses"),
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
    make_cases=ce_cases, output_names=("loss", "dlogits"),
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

QUESTIONS = (MSE_GRADIENT, GD_STEP, SGD_EPOCH, SOFTMAX_CE)
