"""The grader on the course's own notebooks: every solution scores full, every generated
exercise scores zero, catalogued mistakes written into the real solution are named, the
check cells and the grader agree on points, and locked cells are restored."""

from pathlib import Path

import nbformat
import pytest

from adversarial import feedback, scores, write
from course_lib.grade.grader import grade_notebook
from course_lib.grade.registry import CHAPTER_MODULES, chapter_questions, get_question
from course_lib.grade.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
GRADED = sorted(ch for ch in CHAPTER_MODULES if (ROOT / "solutions" / f"{ch}.ipynb").exists())
LIMITS = Limits(timeout=120, call_timeout=10)


def test_every_solution_notebook_has_registered_questions():
    stems = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))
    assert stems, "solutions/ holds no notebook"
    assert set(stems) <= set(CHAPTER_MODULES), "a solution notebook has no grader questions"
    assert "01_gradient_descent" in GRADED


@pytest.mark.parametrize("chapter", GRADED)
def test_solution_scores_full_and_exercise_scores_zero(chapter):
    sol = grade_notebook(ROOT / "solutions" / f"{chapter}.ipynb", limits=LIMITS)
    assert sol["score"] == sol["max_score"] > 0, sol
    assert not any("raised" in n or "stopped" in n for n in sol["notes"]), sol["notes"]
    ex = grade_notebook(ROOT / "exercises" / f"{chapter}.ipynb", limits=LIMITS)
    assert ex["score"] == 0 and ex["max_score"] == sol["max_score"]
    for q in ex["questions"]:
        assert "not implemented yet" in q["feedback"], q


@pytest.mark.parametrize("chapter", GRADED)
def test_check_cells_match_the_grader(chapter):
    """Each question has a locked grade cell ``check("<id>", <func>)`` worth the grader's points,
    and each solution cell defines the function."""
    nb = nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4)
    for q in chapter_questions(chapter):
        cells = [c for c in nb.cells if f'check("{q.id}", {q.func})' in c.source]
        assert len(cells) == 1, f"{q.id}: expected one check cell"
        meta = cells[0].metadata["nbgrader"]
        assert meta["grade"] and meta["locked"] and meta["points"] == q.points
        assert any(c.source.lstrip().startswith(f"def {q.func}(") or f"\ndef {q.func}(" in c.source
                   for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))


def _replace_function(nb, name, source):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and f"def {name}(" in cell.source:
            cell.source = source
            return nb
    raise AssertionError(f"no solution cell defines {name}")


# student-written versions of catalogued mistakes, graded end to end in the sandbox
CH1_MISTAKES = {
    ("mse_gradient", "your gradients are sums"): '''
def mse_gradient(X, y, w, b):
    r = X @ w + b - y
    return float(np.mean(r ** 2)), 2 * X.T @ r, 2 * float(np.sum(r))''',
    ("sgd_epoch", "shuffle X but not y"): '''
def sgd_epoch(grad_fn, params, X, y, lr, batch_size, rng):
    order = rng.permutation(len(X))
    losses = []
    for i in range(0, len(X), batch_size):
        loss, grads = grad_fn(params, X[order[i:i + batch_size]], y[i:i + batch_size])
        losses.append(loss)
        params = gd_step(params, grads, lr)
    return params, losses''',
    ("softmax_cross_entropy", "overflows on large logits"): '''
def softmax_cross_entropy(logits, y):
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.mean(np.log(p[np.arange(n), y]))
    g = p.copy()
    g[np.arange(n), y] -= 1
    return float(loss), g / n''',
    ("gd_step", "modified the caller's params in place"): '''
def gd_step(params, grads, lr):
    for i in range(len(params)):
        params[i] -= lr * grads[i]
    return params''',
    ("huber_gradient", "smooth L1"): '''
def huber_gradient(X, y, w, b, delta):
    r = X @ w + b - y
    inside = np.abs(r) < delta
    loss = np.mean(np.where(inside, 0.5 * r**2 / delta, np.abs(r) - 0.5 * delta))
    g = np.where(inside, r / delta, np.sign(r)) / len(r)
    return float(loss), X.T @ g, float(g.sum())''',
    ("gd_forecast", "rounds down"): '''
def gd_forecast(X, alpha, tol):
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    lam = np.linalg.eigvalsh(2 / n * A.T @ A + 2 * alpha * np.diag([1.0] * d + [0.0]))
    rho = (lam[-1] - lam[0]) / (lam[-1] + lam[0])
    return 2 / lam[-1], lam[-1] / lam[0], int(np.log(tol) / np.log(rho**2))''',
}


def test_mistakes_in_the_real_solution_are_named(tmp_path):
    nb = nbformat.read(ROOT / "solutions" / "01_gradient_descent.ipynb", as_version=4)
    for (name, _), src in CH1_MISTAKES.items():
        _replace_function(nb, name, src)
    r = grade_notebook(write(nb, tmp_path / "student.ipynb"), limits=LIMITS, seed=5)
    got = scores(r)
    for (name, message), _ in CH1_MISTAKES.items():
        assert got[name] < get_question(f"01.{name}").points, r
        assert message in feedback(r, name), feedback(r, name)


def test_edited_locked_cells_are_restored(tmp_path):
    nb = nbformat.read(ROOT / "solutions" / "01_gradient_descent.ipynb", as_version=4)
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    setup.source = "raise SystemExit('tampered')\n" + setup.source
    path = write(nb, tmp_path / "student.ipynb")
    restored = grade_notebook(path, limits=LIMITS, seed=1)
    assert restored["score"] == restored["max_score"]
    assert not any("SystemExit" in n for n in restored["notes"])
    # without the instructor's source the edited cell runs as submitted (and is reported)
    asis = grade_notebook(path, limits=LIMITS, seed=1, source_dir=tmp_path / "nowhere")
    assert any("SystemExit: tampered" in n for n in asis["notes"])


# chapters 2 and 3 through the sandbox: keyword arguments, in-place optimizer state, a
# grader-provided function (numerical_gradient's f) served from the grader's process
CH23_MISTAKES = {
    "02_neural_network": {
        ("relu_backward", "passes through at x == 0"):
            "def relu_backward(dout, cache):\n    return dout * (cache >= 0)",
        ("numerical_gradient", "one-sided difference"): '''
def numerical_gradient(f, x, h=1e-5):
    g = np.zeros(x.shape)
    f0 = f(x)
    for j in np.ndindex(x.shape):
        old = x[j]
        x[j] = old + h
        g[j] = (f(x) - f0) / h
        x[j] = old
    return g''',
        ("linear_backward", "db is averaged"): '''
def linear_backward(dout, cache):
    x, W, b = cache
    return dout @ W, dout.T @ x, dout.mean(axis=0)''',
    },
    "03_optimizers": {
        ("adam_step", "Adam without bias correction"): '''
def adam_step(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps, weight_decay,
              decoupled_weight_decay):
    if decoupled_weight_decay:
        param *= 1 - lr * weight_decay
    else:
        grad = grad + weight_decay * param
    exp_avg[:] = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq[:] = beta2 * exp_avg_sq + (1 - beta2) * grad ** 2
    param -= lr * exp_avg / (np.sqrt(exp_avg_sq) + eps)''',
        ("rmsprop_step", "eps is inside the square root"): '''
def rmsprop_step(param, grad, square_avg, *, lr, alpha, eps):
    square_avg[:] = alpha * square_avg + (1 - alpha) * grad * grad
    param -= lr * grad / np.sqrt(square_avg + eps)''',
        ("sgd_momentum_step", "starts at zero"): '''
def sgd_momentum_step(param, grad, momentum_buffer, *, lr, momentum, dampening):
    if momentum_buffer is None:
        momentum_buffer = np.zeros_like(grad)
    momentum_buffer *= momentum
    momentum_buffer += (1 - dampening) * grad
    param -= lr * momentum_buffer
    return momentum_buffer''',
        ("nadam_step", "your momentum is the constant beta1"): '''
def nadam_step(param, grad, exp_avg, exp_avg_sq, mu_product, step, *, lr, beta1, beta2, eps,
               momentum_decay):
    mu_product = mu_product * beta1
    exp_avg[:] = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq[:] = beta2 * exp_avg_sq + (1 - beta2) * grad ** 2
    denom = np.sqrt(exp_avg_sq / (1 - beta2 ** step)) + eps
    param -= lr * ((1 - beta1) / (1 - mu_product) * grad
                   + beta1 / (1 - mu_product * beta1) * exp_avg) / denom
    return mu_product''',
        ("nesterov_rate", "the heavy ball's rate"): '''
def nesterov_rate(lr, momentum, lam):
    T = np.array([[1 + momentum - lr * lam, -momentum], [1.0, 0.0]])
    return float(np.max(np.abs(np.linalg.eigvals(T))))''',
    },
}


@pytest.mark.parametrize("chapter", sorted(CH23_MISTAKES))
def test_chapter_questions_through_the_sandbox(tmp_path, chapter):
    from adversarial import CORRECT_BY_CHAPTER, submission
    points = {q.func: q.points for q in chapter_questions(chapter)}
    assert set(CORRECT_BY_CHAPTER[chapter]) == set(points)
    good = grade_notebook(write(submission(chapter=chapter), tmp_path / "good.ipynb"),
                          limits=LIMITS, seed=3)
    assert good["chapter"] == chapter and good["score"] == good["max_score"] == sum(points.values()), good
    stub = "def {}(*args, **kwargs):\n    raise NotImplementedError()"
    zero = grade_notebook(write(submission(chapter=chapter, replace={
        f: stub.format(f) for f in CORRECT_BY_CHAPTER[chapter]}), tmp_path / "stub.ipynb"),
        limits=LIMITS, seed=3)
    assert zero["score"] == 0 and all("not implemented yet" in q["feedback"] for q in zero["questions"])
    wrong = {name: src for (name, _), src in CH23_MISTAKES[chapter].items()}
    r = grade_notebook(write(submission(chapter=chapter, replace=wrong), tmp_path / "wrong.ipynb"),
                       limits=LIMITS, seed=3)
    for (name, message) in CH23_MISTAKES[chapter]:
        assert scores(r)[name] < points[name] and message in feedback(r, name), feedback(r, name)
    assert r["score"] == sum(p for f, p in points.items() if f not in wrong) + sum(scores(r)[k] for k in wrong)


def test_a_buffer_that_aliases_the_gradient_is_caught_through_the_sandbox(tmp_path):
    # values cross the wire as copies, so the student's process reports what it returned aliases
    from adversarial import submission
    alias = '''
def sgd_momentum_step(param, grad, momentum_buffer, *, lr, momentum, dampening):
    if momentum_buffer is None:
        momentum_buffer = grad
    else:
        momentum_buffer *= momentum
        momentum_buffer += (1 - dampening) * grad
    param -= lr * momentum_buffer
    return momentum_buffer'''
    r = grade_notebook(write(submission(chapter="03_optimizers", replace={"sgd_momentum_step": alias}),
                             tmp_path / "alias.ipynb"), limits=LIMITS, seed=3)
    assert scores(r)["sgd_momentum_step"] < get_question("03.sgd_momentum_step").points
    assert "gradient array itself" in feedback(r, "sgd_momentum_step"), feedback(r, "sgd_momentum_step")
    assert scores(r)["adam_step"] == get_question("03.adam_step").points  # the others are unaffected
