"""Adversarial submissions for the grader, built as notebooks in the tests.

``submission(...)`` makes a chapter-1 notebook whose four functions are correct
(written the way a student would, not copied from ``course_lib``), then applies an
attack: extra cells, or a function replaced by a cheating one.  Each attack in
``tests/test_grade_adversarial.py`` states the exact score it must get.
"""

from __future__ import annotations

import nbformat

CHAPTER = "01_gradient_descent"

CORRECT = {
    "mse_gradient": '''\
def mse_gradient(X, y, w, b):
    n = X.shape[0]
    r = X @ w + b - y
    return float(r @ r) / n, (2.0 / n) * (X.T @ r), 2.0 * float(r.sum()) / n''',
    "gd_step": '''\
def gd_step(params, grads, lr):
    return [p - lr * g for p, g in zip(params, grads)]''',
    "sgd_epoch": '''\
def sgd_epoch(grad_fn, params, X, y, lr, batch_size, rng):
    order = rng.permutation(X.shape[0])
    losses = []
    for start in range(0, X.shape[0], batch_size):
        idx = order[start:start + batch_size]
        loss, grads = grad_fn(params, X[idx], y[idx])
        losses.append(loss)
        params = gd_step(params, grads, lr)
    return params, losses''',
    "softmax_cross_entropy": '''\
def softmax_cross_entropy(logits, y):
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    p = np.exp(logp)
    p[rows, y] -= 1.0
    return float(-logp[rows, y].mean()), p / n''',
    "huber_gradient": '''\
def huber_gradient(X, y, w, b, delta):
    r = X @ w + b - y
    small = np.abs(r) <= delta
    loss = np.where(small, r * r / 2, delta * np.abs(r) - delta * delta / 2).mean()
    g = np.where(small, r, delta * np.sign(r)) / len(r)
    return float(loss), X.T @ g, float(g.sum())''',
    "newton_step": '''\
def newton_step(X, y, w, b, alpha, lr):
    n, d = X.shape
    A = np.column_stack([X, np.ones(n)])
    theta = np.concatenate([w, [b]])
    D = np.eye(d + 1)
    D[d, d] = 0.0
    g = 2 / n * A.T @ (A @ theta - y) + 2 * alpha * D @ theta
    H = 2 / n * A.T @ A + 2 * alpha * D
    theta = theta - lr * np.linalg.inv(H) @ g
    return theta[:d], theta[d]''',
    "gd_forecast": '''\
import math
def gd_forecast(X, alpha, tol):
    n, d = X.shape
    A = np.column_stack([X, np.ones(n)])
    H = 2 / n * A.T @ A + 2 * alpha * np.diag([1.0] * d + [0.0])
    lam = np.linalg.eigvalsh(H)
    kappa = lam[-1] / lam[0]
    rho = (kappa - 1) / (kappa + 1)
    return 2 / lam[-1], kappa, math.ceil(math.log(tol) / math.log(rho ** 2))''',
}
# chapters 2 and 3, written as a student would: the grader's plumbing for keyword
# arguments, in-place state and grader-provided functions (numerical_gradient's f)
CORRECT_BY_CHAPTER = {
    "01_gradient_descent": CORRECT,
    "02_neural_network": {
        "linear_forward": """\
def linear_forward(x, W, b):
    return x @ W.T + b, (x, W, b)""",
        "linear_backward": """\
def linear_backward(dout, cache):
    x, W, b = cache
    return dout @ W, dout.T @ x, dout.sum(axis=0)""",
        "relu_backward": """\
def relu_backward(dout, cache):
    return dout * (cache > 0)""",
        "softmax_cross_entropy": CORRECT["softmax_cross_entropy"],
        "numerical_gradient": """\
def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for j in np.ndindex(x.shape):
        old = x[j]
        x[j] = old + h
        fp = f(x)
        x[j] = old - h
        fm = f(x)
        x[j] = old
        grad[j] = (fp - fm) / (2 * h)
    return grad""",
        "silu_backward": """\
def silu_backward(dout, cache):
    s = 1 / (1 + np.exp(-np.clip(cache, -500, 500)))
    return dout * (s + cache * s * (1 - s))""",
        "residual_backward": """\
def residual_backward(dout, cache):
    x, W, b = cache
    dz = dout * (x @ W.T + b > 0)
    return dout + dz @ W, dz.T @ x, dz.sum(0)""",
        "mlp_gradients": """\
def mlp_gradients(W1, b1, W2, b2, X, y):
    h = np.tanh(X @ W1.T + b1)
    logits = h @ W2.T + b2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(y)
    loss = -np.log(p[np.arange(n), y]).mean()
    p[np.arange(n), y] -= 1
    d = p / n
    dz = (d @ W2) * (1 - h * h)
    return float(loss), dz.T @ X, dz.sum(0), d.T @ h, d.sum(0)""",
    },
    "03_optimizers": {
        "sgd_momentum_step": """\
def sgd_momentum_step(param, grad, momentum_buffer, *, lr, momentum, dampening):
    if momentum_buffer is None:
        momentum_buffer = grad.copy()
    else:
        momentum_buffer *= momentum
        momentum_buffer += (1 - dampening) * grad
    param -= lr * momentum_buffer
    return momentum_buffer""",
        "rmsprop_step": """\
def rmsprop_step(param, grad, square_avg, *, lr, alpha, eps):
    square_avg *= alpha
    square_avg += (1 - alpha) * grad ** 2
    param -= lr * grad / (np.sqrt(square_avg) + eps)""",
        "adam_step": """\
def adam_step(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps, weight_decay,
              decoupled_weight_decay):
    if decoupled_weight_decay:
        param *= 1 - lr * weight_decay
    else:
        grad = grad + weight_decay * param
    exp_avg *= beta1
    exp_avg += (1 - beta1) * grad
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad ** 2
    m_hat = exp_avg / (1 - beta1 ** step)
    v_hat = exp_avg_sq / (1 - beta2 ** step)
    param -= lr * m_hat / (np.sqrt(v_hat) + eps)
    return param""",
        "cosine_warmup_lr": """\
import math
def cosine_warmup_lr(step, *, base_lr, warmup_steps, total_steps, start_factor, eta_min):
    if step < warmup_steps:
        return base_lr * (start_factor + (1 - start_factor) * step / warmup_steps)
    t = (step - warmup_steps) / (total_steps - warmup_steps)
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t)) / 2""",
        "adamax_step": """\
def adamax_step(param, grad, exp_avg, exp_inf, step, *, lr, beta1, beta2, eps):
    exp_avg[:] = beta1 * exp_avg + (1 - beta1) * grad
    exp_inf[:] = np.maximum(beta2 * exp_inf, np.abs(grad) + eps)
    param[:] = param - lr / (1 - beta1 ** step) * exp_avg / exp_inf""",
        "heavy_ball_rate": """\
import cmath
def heavy_ball_rate(lam, lr, momentum):
    worst = 0.0
    for l in lam:
        b = 1 + momentum - lr * l
        d = cmath.sqrt(b * b - 4 * momentum)
        worst = max(worst, abs((b + d) / 2), abs((b - d) / 2))
    return worst""",
        "clip_grad_norm_": """\
def clip_grad_norm_(grads, max_norm):
    total = np.sqrt(sum((g ** 2).sum() for g in grads))
    if total + 1e-6 > max_norm:
        for g in grads:
            g *= max_norm / (total + 1e-6)
    return float(total)""",
        "nadam_step": """\
def nadam_step(param, grad, exp_avg, exp_avg_sq, mu_product, step, *, lr, beta1, beta2, eps,
               momentum_decay):
    mu_now = beta1 * (1 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_nxt = beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product = mu_product * mu_now
    exp_avg[:] = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq[:] = beta2 * exp_avg_sq + (1 - beta2) * grad ** 2
    denom = np.sqrt(exp_avg_sq / (1 - beta2 ** step)) + eps
    update = (1 - mu_now) / (1 - mu_product) * grad + mu_nxt / (1 - mu_product * mu_nxt) * exp_avg
    param[:] = param - lr * update / denom
    return mu_product""",
        "nesterov_rate": """\
import cmath
def nesterov_rate(lr, momentum, lam):
    # characteristic polynomial z^2 - (1 + mu)(1 - lr lam) z + mu (1 - lr lam)
    a = 1 - lr * lam
    tr, det = (1 + momentum) * a, momentum * a
    d = cmath.sqrt(tr * tr - 4 * det)
    return max(abs((tr + d) / 2), abs((tr - d) / 2))""",
    },
}
FUNCTIONS = list(CORRECT)
IDS = {f: f"01.{f}" for f in FUNCTIONS}



def _points():
    from course_lib.grade.registry import get_question
    return {f: get_question(IDS[f]).points for f in FUNCTIONS}


POINTS = _points()  # {function: points} of the chapter-1 questions
TOTAL = sum(POINTS.values())


def points(name, chapter=CHAPTER) -> float:
    """Full marks of the question ``name`` of ``chapter`` (questions weigh differently)."""
    from course_lib.grade.registry import get_question
    return get_question(f"{chapter[:2]}.{name}").points


def submission(*, replace=None, before=(), after=(), metadata=True, chapter=CHAPTER):
    """A notebook of ``chapter``: setup, then each function with its check cell.

    replace: {function name: source} cheating versions; before/after: extra cells.
    """
    replace = replace or {}
    correct = CORRECT_BY_CHAPTER[chapter]
    number = chapter[:2]
    cells = [nbformat.v4.new_code_cell("import numpy as np\nfrom course_lib.grade import check")]
    cells += [nbformat.v4.new_code_cell(src) for src in before]
    for name in correct:
        cells.append(nbformat.v4.new_code_cell(replace.get(name, correct[name])))
        cells.append(nbformat.v4.new_code_cell(f'check("{number}.{name}", {name})'))
    cells += [nbformat.v4.new_code_cell(src) for src in after]
    nb = nbformat.v4.new_notebook(cells=cells)
    if metadata:
        nb.metadata["course"] = {"chapter": chapter}
    return nb


def write(nb, path):
    nbformat.write(nb, str(path))
    return path


def scores(report) -> dict:
    """``{function name: score}`` of a report."""
    return {q["id"].split(".", 1)[1]: q["score"] for q in report["questions"]}


def feedback(report, name) -> str:
    return next(q["feedback"] for q in report["questions"] if q["id"].split(".", 1)[1] == name)


def processes_with(marker: str) -> list:
    """PIDs of live processes whose command line contains ``marker`` (survivors of a submission)."""
    import os
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found
