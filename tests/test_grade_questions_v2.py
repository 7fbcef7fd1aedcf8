"""The exercises that go beyond the lecture (issue 14): their references state facts that are
checked here independently — the forecast against a measured run, the planted-bug and
optimizer references against torch — and a few mistakes written the way students write them."""

import numpy as np
import pytest

from course_lib import regression as R
from course_lib.grade import ch01


@pytest.mark.parametrize("seed", range(4))
def test_gd_forecast_is_exact_for_the_worst_start(seed):
    """From the slowest eigenvector, GD at 2/(lmin + lmax) needs exactly the forecast steps;
    just above lr_max it diverges, just below it converges."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((40, 3)) * [0.5, 2.0, 4.0] + 1.0
    alpha, tol = 0.05, 1e-4
    lr_max, kappa, steps = ch01.gd_forecast(X, alpha, tol)
    H = R.ridge_hessian(X, alpha)
    lam, V = np.linalg.eigh(H)
    assert lr_max == pytest.approx(2 / lam[-1]) and kappa == pytest.approx(lam[-1] / lam[0])
    y = rng.standard_normal(40)
    w_opt, b_opt = R.newton_step(X, y, np.zeros(3), 0.0, alpha, 1.0)

    def loss(theta):
        return R.mse_gradient(X, y, theta[:-1], theta[-1])[0] + alpha * theta[:-1] @ theta[:-1]

    def grad(theta):
        _, dw, db = R.mse_gradient(X, y, theta[:-1], theta[-1])
        return np.r_[dw + 2 * alpha * theta[:-1], db]

    opt = np.r_[w_opt, b_opt]
    L_opt = loss(opt)
    theta = opt + V[:, 0]                  # the slowest direction
    gap0 = loss(theta) - L_opt
    lr = 2 / (lam[0] + lam[-1])
    ratios = []
    for _ in range(steps):
        theta = theta - lr * grad(theta)
        ratios.append((loss(theta) - L_opt) / gap0)
    assert ratios[-1] <= tol < ratios[-2]  # needs exactly `steps`
    for factor, diverges in ((0.99, False), (1.01, True)):
        theta = opt + V[:, -1]             # the fastest direction decides stability
        for _ in range(2000):
            theta = theta - factor * lr_max * grad(theta)
        assert (loss(theta) - L_opt > 1.0) == diverges


def test_huber_gradient_reference_shrugs_off_outliers():
    """The claim of the exercise's use cell, on other data: Huber's slope moves little."""
    rng = np.random.default_rng(3)
    X = rng.random((200, 1))
    y = 2.0 * X[:, 0] + 0.1 * rng.standard_normal(200)
    y[X[:, 0] > 0.95] -= 10.0
    fits = {}
    for name, fn in (("mse", lambda w, b: R.mse_gradient(X, y, w, b)),
                     ("huber", lambda w, b: R.huber_gradient(X, y, w, b, 0.5))):
        w, b = np.zeros(1), 0.0
        for _ in range(3000):
            _, dw, db = fn(w, b)
            w, b = w - 0.5 * dw, b - 0.5 * db
        fits[name] = w[0]
    assert abs(fits["huber"] - 2.0) < 0.2 < abs(fits["mse"] - 2.0)


# ---- chapter 2: the references of the new questions against torch autograd


def test_silu_matches_torch():
    import torch
    import torch.nn.functional as F

    from course_lib.nn.functional import silu_backward, silu_forward
    rng = np.random.default_rng(0)
    x = np.r_[rng.standard_normal(50) * 4, -800.0, -30.0, 0.0, 30.0, 800.0]  # no overflow at the ends
    G = rng.standard_normal(x.shape)
    out, cache = silu_forward(x)
    xt = torch.tensor(x, requires_grad=True)
    F.silu(xt).backward(torch.tensor(G))
    np.testing.assert_allclose(out, F.silu(torch.tensor(x)).numpy(), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(silu_backward(G, cache), xt.grad.numpy(), rtol=1e-12, atol=1e-300)


def test_residual_and_mlp_references_match_torch():
    import torch
    import torch.nn.functional as F

    from course_lib.grade import ch02
    rng = np.random.default_rng(1)
    x, W, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 4)), rng.standard_normal(4)
    G = rng.standard_normal((6, 4))
    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    (xt + torch.relu(F.linear(xt, Wt, bt))).backward(torch.tensor(G))
    for ours, t in zip(ch02.residual_backward(G, (x, W, b)), (xt, Wt, bt)):
        np.testing.assert_allclose(ours, t.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ch02.residual_forward(x, W, b)[0], (xt + torch.relu(F.linear(xt, Wt, bt))).detach().numpy())

    W1, b1, W2, b2 = rng.standard_normal((5, 3)), rng.standard_normal(5), rng.standard_normal((4, 5)), rng.standard_normal(4)
    X, y = rng.standard_normal((7, 3)), rng.integers(0, 4, 7)
    ts = [torch.tensor(a, requires_grad=True) for a in (W1, b1, W2, b2)]
    loss = F.cross_entropy(F.linear(torch.tanh(F.linear(torch.tensor(X), ts[0], ts[1])), ts[2], ts[3]),
                           torch.tensor(y))
    loss.backward()
    ours = ch02.mlp_gradients(W1, b1, W2, b2, X, y)
    assert ours[0] == pytest.approx(loss.item(), rel=1e-12)
    for g, t in zip(ours[1:], ts):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-11, atol=1e-14)
    # the handed-out version really is wrong, in dW1, db1 and db2 only
    bad = ch02.buggy_mlp_gradients(W1, b1, W2, b2, X, y)
    wrong = [not np.allclose(g, t.grad.numpy()) for g, t in zip(bad[1:], ts)]
    assert wrong == [True, True, False, True]


# ---- chapter 3: Adamax and clip_grad_norm_ against torch; the heavy-ball forecast against a run


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-14), (np.float32, 2e-6)])
def test_adamax_matches_torch_every_state(dtype, tol):
    import torch

    from course_lib.optim.functional import adamax_step
    rng = np.random.default_rng(2)
    p = rng.standard_normal(7).astype(dtype)
    tp = torch.tensor(p.copy(), requires_grad=True)
    opt = torch.optim.Adamax([tp], lr=0.05, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.1)
    m, u = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, 40):
        g = (rng.standard_normal(7) * (0.01 if t % 3 else 5.0)).astype(dtype)  # eps and the max both matter
        tp.grad = torch.tensor(g)
        opt.step()
        adamax_step(p, g, m, u, t, lr=0.05, beta1=0.8, beta2=0.95, eps=1e-3, weight_decay=0.1)
        st = opt.state[tp]
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(m, st["exp_avg"].numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(u, st["exp_inf"].numpy(), rtol=tol, atol=tol)
    assert p.dtype == dtype


@pytest.mark.parametrize("scale,max_norm", [(1.0, 0.5), (0.01, 10.0), (1e-4, 1e-5)])
def test_clip_grad_norm_matches_torch(scale, max_norm):
    import torch

    from course_lib.optim.functional import clip_grad_norm_
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s) * scale for s in [(3, 4), (5,), (2, 2, 2)]]
    ts = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(ts, grads):
        t.grad = torch.tensor(g.copy())
    total = clip_grad_norm_(grads, max_norm)
    assert total == pytest.approx(torch.nn.utils.clip_grad_norm_(ts, max_norm).item(), rel=1e-14)
    for g, t in zip(grads, ts):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(grads, -1.0)  # torch accepts 0 (zeroes the gradients), not a negative norm


@pytest.mark.parametrize("lr,mu", [(0.015, 0.0), (0.02, 0.3), (0.03, 0.6), (0.01, 0.9)])
def test_heavy_ball_rate_predicts_torch_sgd_momentum(lr, mu):
    """The forecast rho matches the per-step factor of torch.optim.SGD(momentum) on the bowl."""
    import torch

    from course_lib.grade.ch03 import heavy_ball_rate
    lam = torch.tensor([1.0, 100.0], dtype=torch.float64)
    x = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=lr, momentum=mu)
    errs = []
    for _ in range(400):
        opt.zero_grad()
        (0.5 * (lam * x * x).sum()).backward()
        opt.step()
        errs.append(x.detach().norm().item())
    measured = (max(errs[380:400]) / max(errs[180:200])) ** (1 / 200)
    assert measured == pytest.approx(heavy_ball_rate([1.0, 100.0], lr, mu), rel=1e-2)
