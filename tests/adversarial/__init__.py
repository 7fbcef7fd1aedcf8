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
}
FUNCTIONS = list(CORRECT)
IDS = {f: f"01.{f}" for f in FUNCTIONS}
FULL = 2.0  # points of every chapter-1 question


def submission(*, replace=None, before=(), after=(), metadata=True):
    """A chapter-1 notebook: setup, then each function with its check cell.

    replace: {function name: source} cheating versions; before/after: extra cells.
    """
    replace = replace or {}
    cells = [nbformat.v4.new_code_cell("import numpy as np\nfrom course_lib.grade import check")]
    cells += [nbformat.v4.new_code_cell(src) for src in before]
    for name in FUNCTIONS:
        cells.append(nbformat.v4.new_code_cell(replace.get(name, CORRECT[name])))
        cells.append(nbformat.v4.new_code_cell(f'check("{IDS[name]}", {name})'))
    cells += [nbformat.v4.new_code_cell(src) for src in after]
    nb = nbformat.v4.new_notebook(cells=cells)
    if metadata:
        nb.metadata["course"] = {"chapter": CHAPTER}
    return nb


def write(nb, path):
    nbformat.write(nb, str(path))
    return path


def scores(report) -> dict:
    """``{function name: score}`` of a report."""
    return {q["id"].split(".", 1)[1]: q["score"] for q in report["questions"]}


def feedback(report, name) -> str:
    return next(q["feedback"] for q in report["questions"] if q["id"] == IDS[name])
