"""Every graded question: the reference scores full, every catalogued mistake scores less and
is named by its own message, the untouched exercise stub scores zero; and the plain-data
comparison cannot be fooled by objects that lie."""

import numpy as np
import pytest

from course_lib.grade import check
from course_lib.grade.registry import CHAPTER_MODULES, chapter_questions, get_question
from course_lib.grade.spec import Bad, Case, canonical, compare, grade_question, run_local

QUESTIONS = [q for ch in CHAPTER_MODULES for q in chapter_questions(ch)]
MISTAKES = [(q, m) for q in QUESTIONS for m in q.mistakes]
SEEDS = range(6)  # the grader draws a fresh seed per run: every seed must work


def grade_local(q, fn, seed):
    cases = q.make_cases(np.random.default_rng(seed))
    return grade_question(q, cases, lambda c: run_local(fn, c, q))


def stub(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q.id)
def test_reference_scores_full_on_every_seed(q):
    for seed in SEEDS:
        r = grade_local(q, q.reference, seed)
        assert (r.score, r.passed) == (q.points, r.total), r.text()
    assert r.total >= 4, "each question needs several cases"


@pytest.mark.parametrize("q,m", MISTAKES, ids=lambda x: getattr(x, "id", getattr(x, "key", "")))
def test_every_mistake_loses_points_and_is_named(q, m):
    others = [o.message for o in q.mistakes if o is not m]
    for seed in SEEDS:
        r = grade_local(q, m.impl, seed)
        assert r.score < q.points, f"seed {seed}: mistake {m.key} scored full"
        assert r.mistake == m.key, f"seed {seed}: {m.key} recognised as {r.mistake}\n{r.text()}"
        text = r.text()
        assert m.message in text and not any(o in text for o in others)


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q.id)
def test_mistake_messages_are_distinct(q):
    messages = [m.message for m in q.mistakes]
    assert len(set(messages)) == len(messages) and len(messages) >= 3


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q.id)
def test_untouched_stub_scores_zero(q):
    r = grade_local(q, stub, 0)
    assert r.score == 0 and r.passed == 0
    assert "not implemented yet" in r.text()


def test_check_prints_deterministic_feedback_and_returns_score(capsys):
    q = get_question("01.mse_gradient")
    assert check("01.mse_gradient", q.reference) == q.points
    assert check("01.mse_gradient", q.reference) == q.points
    out = capsys.readouterr().out
    assert out == "01.mse_gradient: 5/5 cases passed\n" * 2


def test_check_raises_with_the_mistake_named(capsys):
    q = get_question("01.softmax_cross_entropy")
    no_max = next(m for m in q.mistakes if m.key == "no_max")
    with pytest.raises(AssertionError, match="overflows on large logits") as first:
        check("01.softmax_cross_entropy", no_max.impl)
    with pytest.raises(AssertionError) as second:
        check("01.softmax_cross_entropy", no_max.impl)
    assert str(second.value) == str(first.value)  # deterministic: stored in executed notebooks
    assert "4/5 cases passed" in str(first.value)
    # the feedback is shown once, as the error's message, not also printed above it
    assert capsys.readouterr().out == ""


def test_check_stub_raises_not_implemented_feedback():
    with pytest.raises(AssertionError, match="not implemented yet"):
        check("01.gd_step", stub)


@pytest.mark.parametrize("bad,exc,match", [
    ("01.nope", ValueError, "question_id"), ("99.mse_gradient", ValueError, "question_id"),
    (3, TypeError, "question_id")])
def test_check_rejects_unknown_question(bad, exc, match):
    with pytest.raises(exc, match=match):
        check(bad, lambda *a: None)


def test_check_rejects_non_callable():
    with pytest.raises(TypeError, match="fn"):
        check("01.gd_step", 42)


# ---- plain data: nothing the student returns compares itself


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class LyingArray(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(other), bool)

    def __sub__(self, other):
        return np.zeros(np.shape(other))

    __rsub__ = __sub__


@pytest.mark.parametrize("obj", [AlwaysEqual(), np.zeros(3).view(LyingArray), True,
                                 np.array(["a"]), np.zeros(2, complex), np.zeros(2, object),
                                 1 + 2j, "1.0"])
def test_canonical_rejects_non_plain_objects(obj):
    assert isinstance(canonical(obj), Bad)


def test_lying_returns_score_zero():
    q = get_question("01.mse_gradient")
    cheats = [
        lambda X, y, w, b: (AlwaysEqual(), AlwaysEqual(), AlwaysEqual()),
        lambda X, y, w, b: AlwaysEqual(),
        lambda X, y, w, b: (np.zeros(()).view(LyingArray), np.zeros(len(w)).view(LyingArray), 0.0),
    ]
    for cheat in cheats:
        r = grade_local(q, cheat, 0)
        assert r.score == 0, r.text()


def test_compare_checks_shape_dtype_finiteness_and_values():
    ref = canonical((1.0, np.ones(3)))
    kw = dict(rtol=1e-6, atol=1e-9)
    assert compare(ref, canonical((1.0, np.ones(3))), **kw) is None
    assert compare(ref, canonical([np.float64(1.0), np.ones(3) + 1e-12]), **kw) is None
    assert "shape" in compare(ref, canonical((1.0, np.ones((3, 1)))), **kw)[1]
    assert "float32" in compare(ref, canonical((1.0, np.ones(3, np.float32))), **kw)[1]
    assert "NaN" in compare(ref, canonical((np.nan, np.ones(3))), **kw)[1]
    assert "differs" in compare(ref, canonical((1.0, np.ones(3) * 1.01)), **kw)[1]
    assert compare(ref, canonical((1.0, np.ones(3), 2.0)), **kw)[1] == "has 3 items, expected 2"
    assert "expected a list or tuple of 2 values" in compare(ref, canonical((1.0,)), **kw)[1]
    assert "a number" in compare(ref, canonical((np.ones(1), np.ones(3))), **kw)[1]
    # a list of floats and a 1-d array are the same value (losses may be either)
    assert compare(canonical([1.0, 2.0]), canonical(np.array([1.0, 2.0])), **kw) is None
    assert compare(ref, canonical(None), **kw)[1] == "is None, expected a list or tuple of 2 values"
    assert compare(canonical(None), canonical(0.0), **kw)[1] == "is a number, expected None"
    assert compare(canonical(None), canonical(None), **kw) is None


def test_in_place_modification_is_detected():
    q = get_question("01.gd_step")
    params = [np.ones(2), 1.0]
    case = Case("t", (params, [np.ones(2), 1.0], 0.5))

    def inplace(p, g, lr):
        p[0] -= lr * g[0]
        return [p[0].copy(), p[1] - lr * g[1]]

    obs = run_local(inplace, case, q)
    assert obs.mutated == ("params",)
    assert params[0][0] == 1.0  # the case's own data is never handed out
    assert run_local(q.reference, case, q).mutated == ()


def test_each_question_is_graded_on_its_own():
    """sgd_epoch calls gd_step: a wrong gd_step costs points once, in gd_step only."""
    ns = {"np": np}
    exec("def gd_step(params, grads, lr):\n    return [p + lr * g for p, g in zip(params, grads)]\n"
         "def sgd_epoch(grad_fn, params, X, y, lr, batch_size, rng):\n"
         "    order = rng.permutation(len(X))\n    losses = []\n"
         "    for i in range(0, len(X), batch_size):\n"
         "        loss, grads = grad_fn(params, X[order[i:i + batch_size]], y[order[i:i + batch_size]])\n"
         "        losses.append(loss)\n        params = gd_step(params, grads, lr)\n"
         "    return params, losses", ns)
    with pytest.raises(AssertionError, match="uphill"):
        check("01.gd_step", ns["gd_step"])
    assert check("01.sgd_epoch", ns["sgd_epoch"]) == get_question("01.sgd_epoch").points
    assert ns["gd_step"](np.zeros(1)[None], np.ones(1)[None], 1.0)[0][0] == 1.0  # restored


@pytest.mark.parametrize("W,T,s,eta_min", [(3, 20, 0.1, 0.01), (5, 12, 0.5, 0.0), (1, 4, 0.25, 0.05)])
def test_cosine_warmup_reference_matches_torch_and_course_lib(W, T, s, eta_min):
    """03.cosine_warmup_lr's closed form is SequentialLR(LinearLR, CosineAnnealingLR) in
    PyTorch and in course_lib.optim, at every step."""
    import torch

    from course_lib.grade.ch03 import cosine_warmup_lr
    from course_lib.optim import SGD, CosineAnnealingLR, LinearLR, SequentialLR
    base = 0.3
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    tsched = torch.optim.lr_scheduler.SequentialLR(topt, [
        torch.optim.lr_scheduler.LinearLR(topt, start_factor=s, total_iters=W),
        torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=T - W, eta_min=eta_min)],
        milestones=[W])
    opt = SGD([np.zeros(1)], lr=base)
    sched = SequentialLR(opt, [LinearLR(opt, start_factor=s, total_iters=W),
                               CosineAnnealingLR(opt, T_max=T - W, eta_min=eta_min)], milestones=[W])
    for t in range(T + 1):
        ours = cosine_warmup_lr(t, base_lr=base, warmup_steps=W, total_steps=T, start_factor=s,
                                eta_min=eta_min)
        assert ours == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12, abs=1e-15), t
        assert ours == pytest.approx(opt.lr, rel=1e-12, abs=1e-15), t
        topt.step()
        tsched.step()
        sched.step()


def test_optimizer_references_match_torch():
    """03.*_step references (course_lib.optim.functional with the extra options off) = torch."""
    import torch

    from course_lib.grade import ch03
    rng = np.random.default_rng(0)
    for q, make in [
        (ch03.SGD_MOMENTUM, lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.2)),
        (ch03.RMSPROP, lambda p: torch.optim.RMSprop([p], lr=0.01, alpha=0.95, eps=1e-3)),
        (ch03.ADAM, lambda p: torch.optim.AdamW([p], lr=0.01, betas=(0.8, 0.99), eps=1e-3,
                                                weight_decay=0.1)),
    ]:
        p0 = rng.standard_normal(5)
        tp = torch.tensor(p0, requires_grad=True)
        topt = make(tp)
        ours, state = p0.copy(), [None, np.zeros(5), np.zeros(5)]
        for step in range(1, 5):
            g = rng.standard_normal(5)
            tp.grad = torch.tensor(g)
            topt.step()
            if q is ch03.SGD_MOMENTUM:
                state[0] = q.reference(ours, g, state[0], lr=0.1, momentum=0.9, dampening=0.2)
            elif q is ch03.RMSPROP:
                q.reference(ours, g, state[1], lr=0.01, alpha=0.95, eps=1e-3)
            else:
                q.reference(ours, g, state[1], state[2], step, lr=0.01, beta1=0.8, beta2=0.99,
                            eps=1e-3, weight_decay=0.1, decoupled_weight_decay=True)
            np.testing.assert_allclose(ours, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_compare_treats_nonfinite_reference_values_strictly():
    # a finite answer where the reference is NaN/inf is wrong; the same NaN/inf is right
    from course_lib.grade.spec import compare
    ref = np.array([1.0, np.nan, np.inf])
    assert compare(ref, np.array([1.0, 0.0, -5.0]), rtol=1e-7, atol=0) is not None
    assert compare(ref, np.array([1.0, np.nan, np.inf]), rtol=1e-7, atol=0) is None
    assert compare(ref, np.array([1.0, np.nan, -np.inf]), rtol=1e-7, atol=0) is not None
    assert compare(np.array([1.0, 2.0]), np.array([1.0, np.nan]), rtol=1e-7, atol=0) is not None
    # mistake matching: one implementation's inf may be another's NaN
    assert compare(ref, np.array([1.0, np.inf, np.nan]), rtol=1e-7, atol=0, nonfinite_equal=True) is None


def test_decode_refuses_huge_lists_before_walking_them():
    from course_lib.grade import _harness
    with pytest.raises(ValueError, match="more than"):
        _harness.decode({"list": [0] * (_harness.MAX_LIST + 1)})


def test_untrusted_metadata_of_the_wrong_type_does_not_crash_the_grader(tmp_path):
    import nbformat
    from course_lib.grade.grader import grade_notebook
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.metadata["course"] = {"chapter": ["01_gradient_descent"]}
    nb.cells[0].metadata["nbgrader"] = {"grade_id": ["a"], "solution": True}
    path = tmp_path / "weird.ipynb"
    nbformat.write(nb, path)
    report = grade_notebook(path)
    assert report["score"] == 0
