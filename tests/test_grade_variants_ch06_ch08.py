"""Chapters 6 and 8: correct solutions written differently from the reference score full.

A student may use SciPy, loops, ``np.partition``, lists where the docstring allows a list,
other argument names, or ``@numba.njit(cache=True)``; none of that may cost a point.  The
in-process part runs each variant on many seeds; the sandbox part grades whole notebooks
(numba's on-disk cache needs each cell to live in a real file, which the sandbox provides).
"""

import textwrap

import nbformat
import numpy as np
import pytest

from adversarial import scores, write
from course_lib.grade.grader import grade_notebook
from course_lib.grade.registry import get_question
from course_lib.grade.sandbox import Limits
from course_lib.grade.spec import grade_question, run_local

VARIANTS = {
    "06.softmax_T": [
        """
        import scipy.special
        def f(logits, T):
            return scipy.special.softmax(logits / T, axis=1)""",
        """
        def f(z, temperature):
            out = np.empty_like(z)
            for i, row in enumerate(z):
                e = np.exp((row - row.max()) / temperature)
                out[i] = e / e.sum()
            return out""",
    ],
    "06.distillation_loss": [
        """
        from scipy.special import log_softmax
        def f(student_logits, teacher_logits, y, T, alpha):
            n, C = student_logits.shape
            lq, lp = log_softmax(student_logits / T, axis=1), log_softmax(teacher_logits / T, axis=1)
            p = np.exp(lp)
            ls = log_softmax(student_logits, axis=1)
            onehot = np.eye(C)[y]
            loss = alpha * T * T * (p * (lp - lq)).sum() / n + (1 - alpha) * -(onehot * ls).sum() / n
            g = alpha * T / n * (np.exp(lq) - p) + (1 - alpha) * (np.exp(ls) - onehot) / n
            return loss, g""",
        """
        def f(s, t, y, T, alpha):
            def lsm(z):
                m = z.max(axis=-1, keepdims=True)
                return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))
            n = len(s)
            lq, lp, ls = lsm(s / T), lsm(t / T), lsm(s)
            p = np.exp(lp)
            loss, grad = 0.0, np.zeros_like(s)
            if alpha > 0:
                loss += alpha * T**2 * np.mean(np.sum(p * lp, 1) - np.sum(p * lq, 1))
                grad += alpha * (T / n) * (np.exp(lq) - p)
            if alpha < 1:
                loss += (1 - alpha) * -ls[np.arange(n), y].mean()
                d = np.exp(ls)
                d[np.arange(n), y] -= 1
                grad += (1 - alpha) * d / n
            return [np.float64(loss), grad]""",
    ],
    "06.kd_teacher_gradient": [
        """
        def f(student_logits, teacher_logits, T):
            # the full softmax Jacobian, row by row
            def lsm(z):
                z = z - z.max(axis=1, keepdims=True)
                return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            n = len(student_logits)
            lp, lq = lsm(teacher_logits / T), lsm(student_logits / T)
            p = np.exp(lp)
            out = np.empty_like(p)
            for i in range(n):
                J = (np.diag(p[i]) - np.outer(p[i], p[i])) / T
                out[i] = T**2 / n * J @ (lp[i] - lq[i] + 1)
            return out""",
    ],
    "06.missing_class_bias": [
        """
        def f(logits, cls, count):
            z = logits.copy()
            own = z[:, cls].copy()
            z[:, cls] = -np.inf
            return np.partition(z.max(axis=1) - own, count - 1)[count - 1]""",
        """
        def f(logits, cls, count):
            others = np.where(np.arange(logits.shape[1]) == cls, -np.inf, logits).max(axis=1)
            return sorted(others - logits[:, cls])[count - 1]""",
    ],
    "08.reduce_scatter_left_step": [
        """
        def f(work, step):
            K = len(work)
            parts = [np.array_split(row, K) for row in work]
            out = [[c.copy() for c in row] for row in parts]
            for r in range(K):
                c = (r + step) % K
                out[(r - 1) % K][c] = out[(r - 1) % K][c] + parts[r][c]
            return np.array([np.concatenate(row) for row in out])""",
    ],
    "08.ring_bytes_sent": [
        """
        def f(world_size, n, itemsize):
            # simulate the ring's sends, as a list of Python ints
            K = world_size
            sizes = [len(c) for c in np.array_split(np.arange(n), K)]
            return [itemsize * sum(sizes[(r - s) % K] + sizes[(r + 1 - s) % K] for s in range(K - 1))
                    for r in range(K)]""",
        """
        def f(world_size, n, itemsize):
            K = world_size
            q, rem = divmod(n, K)
            sizes = np.array([q + (c < rem) for c in range(K)], dtype=float)
            return (K > 1) * np.array([itemsize * (2 * n - sizes[(r + 1) % K] - sizes[(r + 2) % K])
                                       for r in range(K)])""",
    ],
    "08.zero_memory_per_worker": [
        """
        import math
        def f(n_params, world_size, stage, optimizer, largest_layer):
            shard = math.ceil(n_params / world_size)
            k = {"sgd": 4, "sgd_momentum": 8, "adam": 12}[optimizer]
            return (2 * (shard if stage == 3 else n_params) + 2 * (shard if stage >= 2 else n_params)
                    + k * (shard if stage >= 1 else n_params) + (2 * largest_layer if stage == 3 else 0))""",
    ],
    "08.weighted_average": [
        """
        def f(grads, shard_sizes):
            return np.average(np.stack(grads), axis=0, weights=shard_sizes)""",
        """
        def f(grads, shard_sizes):
            return sum(n * g for g, n in zip(grads, shard_sizes)) / sum(shard_sizes)""",
    ],
    "08.sign_ef_compress": [
        """
        def f(grad, error):
            p = grad + error
            c = np.abs(p).sum() / p.size * np.where(p >= 0, 1.0, -1.0)   # 1 bit: no third symbol for 0
            return [c, p - c]""",
        """
        def f(grad, error):
            p = np.add(grad, error)
            c = np.copysign(np.linalg.norm(p.ravel(), 1) / p.size, p)
            return c, p - c""",
    ],
}
CASES = [(qid, k) for qid, srcs in VARIANTS.items() for k in range(len(srcs))]


@pytest.mark.parametrize("qid,k", CASES, ids=[f"{q}-{k}" for q, k in CASES])
def test_a_correct_variant_scores_full_on_every_seed(qid, k):
    q = get_question(qid)
    ns = {"np": np}
    exec(textwrap.dedent(VARIANTS[qid][k]), ns)
    for seed in range(40):
        cases = q.make_cases(np.random.default_rng(seed))
        r = grade_question(q, cases, lambda c: run_local(ns["f"], c, q))
        assert r.score == q.points, f"seed {seed}:\n{r.text()}"


NUMBA = {
    "06_distillation": ("""\
import numpy as np
from numba import njit


@njit(cache=True)
def _softmax_rows(z, T):
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        e = np.exp((z[i] - z[i].max()) / T)
        out[i] = e / e.sum()
    return out


def softmax_T(logits, T):
    return _softmax_rows(np.ascontiguousarray(logits, dtype=np.float64), float(T))


@njit(cache=True)
def missing_class_bias(logits, cls, count):
    n, C = logits.shape
    m = np.empty(n)
    for i in range(n):
        best = -np.inf
        for j in range(C):
            if j != cls and logits[i, j] > best:
                best = logits[i, j]
        m[i] = best - logits[i, cls]
    return np.sort(m)[count - 1]
""", {"softmax_T": 1.0, "missing_class_bias": 3.0}),
    "08_distributed": ("""\
import numpy as np
import numba


@numba.njit(cache=True)
def sign_ef_compress(grad, error):
    p = grad + error
    c = np.mean(np.abs(p)) * np.sign(p)
    return c, p - c


@numba.njit(cache=True)
def _left_step(work, step, b):
    K = work.shape[0]
    new = work.copy()
    for r in range(K):
        c = (r + step) % K
        for j in range(b[c], b[c + 1]):
            new[(r - 1) % K, j] += work[r, j]
    return new


def reduce_scatter_left_step(work, step):
    sizes = [len(c) for c in np.array_split(np.arange(work.shape[1]), work.shape[0])]
    return _left_step(work, step, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
""", {"sign_ef_compress": 2.0, "reduce_scatter_left_step": 2.0}),
}


@pytest.mark.parametrize("chapter", sorted(NUMBA))
def test_numba_cache_true_scores_full_in_the_sandbox(tmp_path, chapter):
    src, want = NUMBA[chapter]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src)])
    nb.metadata["course"] = {"chapter": chapter}
    r = grade_notebook(write(nb, tmp_path / "numba.ipynb"), limits=Limits(timeout=120, call_timeout=30), seed=11)
    assert not r["notes"], r["notes"]            # no cell raised ("cannot cache function ...")
    got = {k: v for k, v in scores(r).items() if k in want}
    assert got == want, r
