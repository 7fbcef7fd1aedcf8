"""Issue 14: contracts the chapter-2 exercise text states are graded, in the sandbox and in
the self-check alike.

- ``numerical_gradient`` perturbs ``x`` *in place*: the lecture's gradient check passes
  ``f = lambda _: loss(W)``, a closure that ignores its argument, so a version that
  evaluates ``f`` at copies of ``x`` computes zeros there.  The grader serves such a
  closure (``Callback(reads_arg=...)``) across the sandbox boundary.
- ``linear_forward`` returns ``cache = (x, W, b)`` in this order (``linear_backward``
  unpacks it so).
"""

import uuid

import numpy as np
import pytest

from adversarial import CORRECT_BY_CHAPTER, feedback, scores, submission, write
from course_lib.grade import ch02
from course_lib.grade.spec import grade_question, run_local
from course_lib.grade.grader import grade_notebook
from course_lib.grade.sandbox import Limits

CH2 = "02_neural_network"
LIMITS = Limits(timeout=60.0, call_timeout=20.0, memory_mb=1024, grace=1.0)

COPIES = """\
def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for j in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[j] += h
        xm[j] -= h
        grad[j] = (f(xp) - f(xm)) / (2 * h)
    return grad"""

CACHE_ORDER = """\
def linear_forward(x, W, b):
    return x @ W.T + b, (W, x, b)"""


def _define(src):
    ns = {"np": np}
    exec(src, ns)
    return next(v for k, v in ns.items() if k != "np" and callable(v) and not k.startswith("__"))


def self_check(question, src, seed=0):
    """What the in-process check cell computes for the function ``src`` defines."""
    fn = _define(src)
    cases = question.make_cases(np.random.default_rng(seed))
    return grade_question(question, cases, lambda case: run_local(fn, case, question, student=True))


@pytest.mark.parametrize("seed", range(5))
def test_the_closure_sees_only_in_place_perturbations_in_the_self_check(seed):
    q = ch02.NUMERICAL_GRADIENT
    assert self_check(q, CORRECT_BY_CHAPTER[CH2]["numerical_gradient"], seed).score == q.points
    wrong = self_check(q, COPIES, seed)
    # only the closure case fails: on a pure f, perturbing copies is as good as in place
    assert wrong.passed == wrong.total - 1 and wrong.mistake == "copies", wrong.text()
    assert wrong.score < q.points


@pytest.mark.parametrize("seed", range(5))
def test_the_cache_order_is_graded_in_the_self_check(seed):
    q = ch02.LINEAR_FORWARD
    assert self_check(q, CORRECT_BY_CHAPTER[CH2]["linear_forward"], seed).score == q.points
    wrong = self_check(q, CACHE_ORDER, seed)
    assert wrong.score < q.points and wrong.mistake == "cache_order", wrong.text()


@pytest.mark.parametrize("seed", [3, 11])
def test_the_sandboxed_grader_enforces_both_contracts(tmp_path, seed):
    nb = submission(chapter=CH2, replace={"numerical_gradient": COPIES, "linear_forward": CACHE_ORDER})
    r = grade_notebook(write(nb, tmp_path / f"s_{uuid.uuid4().hex[:8]}.ipynb"), limits=LIMITS, seed=seed)
    got = scores(r)
    assert got["numerical_gradient"] < ch02.NUMERICAL_GRADIENT.points, got
    assert got["linear_forward"] < ch02.LINEAR_FORWARD.points, got
    assert r["score"] == r["max_score"] - (ch02.NUMERICAL_GRADIENT.points - got["numerical_gradient"]) - (
        ch02.LINEAR_FORWARD.points - got["linear_forward"]), got   # everything else full
    assert "in place" in feedback(r, "numerical_gradient"), feedback(r, "numerical_gradient")
    assert "x, W, b = cache" in feedback(r, "linear_forward"), feedback(r, "linear_forward")


def test_a_correct_in_place_version_scores_full_through_the_sandbox(tmp_path):
    r = grade_notebook(write(submission(chapter=CH2), tmp_path / "ok.ipynb"), limits=LIMITS, seed=5)
    got = scores(r)
    assert got["numerical_gradient"] == ch02.NUMERICAL_GRADIENT.points
    assert got["linear_forward"] == ch02.LINEAR_FORWARD.points


# ---------------------------------------------------------------- feedback names the wrong number

FORECAST = CORRECT_BY_CHAPTER["01_gradient_descent"]["gd_forecast"]
KAPPA_INVERTED = FORECAST.replace("kappa = lam[-1] / lam[0]", "kappa = lam[0] / lam[-1]")
LR_AND_KAPPA = KAPPA_INVERTED.replace("return 2 / lam[-1]", "return 1 / lam[-1]")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("src, blamed", [(KAPPA_INVERTED, "kappa differs"),
                                         (LR_AND_KAPPA, "lr_max and kappa differ")])
def test_a_function_returning_several_numbers_is_told_which_one_is_wrong(seed, src, blamed):
    from course_lib.grade import ch01
    assert src != FORECAST
    q = next(v for v in vars(ch01).values() if getattr(v, "id", None) == "01.gd_forecast")
    result = self_check(q, src, seed)
    text = result.text()
    # 1/kappa gives the same |rho| and so the same step count: steps is right and is not blamed
    assert f"{blamed} from the expected value" in text and "steps" not in text, text
