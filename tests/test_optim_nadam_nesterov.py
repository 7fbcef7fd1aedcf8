"""Chapter 3's new exercises against PyTorch: ``nadam_step`` (course_lib.optim.functional) vs
``torch.optim.NAdam``, every state, and the ``nesterov_rate`` forecast (course_lib.grade.ch03)
vs the measured per-step factor of ``torch.optim.SGD(nesterov=True)``."""

import contextlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from course_lib.grade.ch03 import NADAM, NESTEROV_RATE, heavy_ball_rate, nesterov_rate  # noqa: E402
from course_lib.grade.spec import observe_problem, run_local  # noqa: E402
from course_lib.optim.functional import nadam_step  # noqa: E402


@contextlib.contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 3e-6)])
@pytest.mark.parametrize("wd,decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_nadam_matches_torch_every_state(dtype, tol, wd, decoupled):
    rng = np.random.default_rng(4)
    p = rng.standard_normal(7).astype(dtype)
    # torch keeps mu_product as a scalar of the default dtype: float64 here, so both round alike
    with default_dtype(torch.float64 if dtype == np.float64 else torch.float32):
        tp = torch.tensor(p.copy(), requires_grad=True)
        opt = torch.optim.NAdam([tp], lr=0.02, betas=(0.85, 0.99), eps=1e-3, weight_decay=wd,
                                momentum_decay=0.05, decoupled_weight_decay=decoupled)
        m, v, prod = np.zeros_like(p), np.zeros_like(p), 1.0
        for t in range(1, 151):
            g = (rng.standard_normal(7) * (0.01 if t % 3 else 2.0)).astype(dtype)  # eps matters at times
            tp.grad = torch.tensor(g.copy())
            opt.step()
            prod = nadam_step(p, g, m, v, prod, t, lr=0.02, beta1=0.85, beta2=0.99, eps=1e-3,
                              momentum_decay=0.05, weight_decay=wd, decoupled_weight_decay=decoupled)
            st = opt.state[tp]
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=tol, atol=tol)
            np.testing.assert_allclose(m, st["exp_avg"].numpy(), rtol=tol, atol=tol)
            np.testing.assert_allclose(v, st["exp_avg_sq"].numpy(), rtol=tol, atol=tol * 1e-3)
            assert prod == pytest.approx(st["mu_product"].item(), rel=max(tol, 3e-5))
    assert p.dtype == dtype and m.dtype == dtype


def test_nadam_reads_grad_only():
    rng = np.random.default_rng(5)
    p, g = rng.standard_normal(4), rng.standard_normal(4)
    g0 = g.copy()
    nadam_step(p, g, np.zeros(4), np.zeros(4), 1.0, 1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
               momentum_decay=4e-3, weight_decay=0.5)
    np.testing.assert_array_equal(g, g0)


def _measured(lr, mu, lam, steps=300):
    x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=lr, momentum=mu, nesterov=True)
    errs = []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * lam * x * x).sum().backward()
        opt.step()
        errs.append(abs(x.item()))
    a, b = steps // 2, steps
    return (max(errs[b - 20:b]) / max(errs[a - 20:a])) ** (1 / (b - a))


@pytest.mark.parametrize("lr,mu,lam", [(0.1, 0.9, 1.0), (0.5, 0.1, 1.0), (1.5, 0.3, 1.0), (0.02, 0.6, 30.0),
                                       (0.3, 0.05, 2.0), (0.011, 0.95, 100.0)])
def test_nesterov_rate_predicts_torch_sgd_nesterov(lr, mu, lam):
    assert _measured(lr, mu, lam) == pytest.approx(nesterov_rate(lr, mu, lam), rel=1e-2)


@pytest.mark.parametrize("mu", [0.1, 0.5, 0.9])
def test_nesterov_stability_edge(mu):
    """Nesterov (torch's form) is stable for eta*lam < 2(1+mu)/(1+2mu), heavy ball for < 2(1+mu)."""
    edge = 2 * (1 + mu) / (1 + 2 * mu)
    assert nesterov_rate(0.99 * edge, mu, 1.0) < 1 < nesterov_rate(1.01 * edge, mu, 1.0)
    assert _measured(0.99 * edge, mu, 1.0, 200) < 1 < _measured(1.01 * edge, mu, 1.0, 200)
    if mu > 0:
        assert heavy_ball_rate([1.0], 1.01 * edge, mu) < 1


@pytest.mark.parametrize("q", [NADAM, NESTEROV_RATE], ids=lambda q: q.id)
def test_reference_passes_and_every_mistake_is_named(q):
    """Each catalogued mistake fails a case on seed 0 and is recognised as itself (not an earlier one)."""
    cases = q.make_cases(np.random.default_rng(0))
    refs = [run_local(q.reference, c, q) for c in cases]
    assert all(r.error is None for r in refs)
    from course_lib.grade.spec import grade_question
    for m in q.mistakes:
        assert any(observe_problem(q, r, run_local(m.impl, c, q)) for r, c in zip(refs, cases)), m.key
        res = grade_question(q, cases, lambda c, m=m: run_local(m.impl, c, q, student=True))
        assert res.mistake == m.key, (m.key, res.feedback)
