"""Chapter 1 models against torch autograd, closed forms against independent solvers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import regression as R


def torch_linear_grads(X, y, w, b):
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(float(b), dtype=torch.float64, requires_grad=True)
    loss = F.mse_loss(torch.tensor(X) @ tw + tb, torch.tensor(y))
    loss.backward()
    return loss.item(), tw.grad.numpy(), tb.grad.item()


@pytest.mark.parametrize("n,d", [(1, 1), (10, 1), (50, 4)])
def test_mse_gradient_matches_autograd(rng, n, d):
    X, y, w, b = rng.normal(size=(n, d)), rng.normal(size=n), rng.normal(size=d), rng.normal()
    loss, dw, db = R.mse_gradient(X, y, w, b)
    t_loss, t_dw, t_db = torch_linear_grads(X, y, w, b)
    np.testing.assert_allclose(loss, t_loss, rtol=1e-12)
    np.testing.assert_allclose(dw, t_dw, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(db, t_db, rtol=1e-10, atol=1e-14)


def test_softmax_gradient_matches_autograd(rng):
    X, y = rng.normal(size=(20, 5)), rng.integers(0, 3, 20)
    W, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    loss, dW, db = R.softmax_gradient(X, y, W, b)
    tW, tb = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    t_loss = F.cross_entropy(torch.tensor(X) @ tW.T + tb, torch.tensor(y))
    t_loss.backward()
    np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-12)
    np.testing.assert_allclose(dW, tW.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_normal_equations_recover_exact_line_and_zero_gradient(rng):
    X = rng.normal(size=(30, 3))
    w_true, b_true = np.array([1.0, -2.0, 0.5]), 0.25
    w, b = R.normal_equations(X, X @ w_true + b_true)
    np.testing.assert_allclose(w, w_true, atol=1e-12)
    assert b == pytest.approx(b_true, abs=1e-12)
    y = X @ w_true + b_true + rng.normal(size=30)
    w, b = R.normal_equations(X, y)
    _, dw, db = R.mse_gradient(X, y, w, b)  # the optimum is where the gradient vanishes
    assert np.abs(dw).max() < 1e-12 and abs(db) < 1e-12


def test_hessian_and_stability_bound(rng):
    X = rng.normal(size=(40, 2))
    H = R.mse_hessian(X)
    # independent check: Hessian from torch's autograd of the loss in theta = (w, b)
    y = torch.tensor(rng.normal(size=40))
    Xt = torch.tensor(X)

    def loss(theta):
        return F.mse_loss(Xt @ theta[:2] + theta[2], y)

    H_torch = torch.autograd.functional.hessian(loss, torch.zeros(3, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(H, H_torch, rtol=1e-12)
    lam = np.linalg.eigvalsh(H_torch).max()
    assert R.max_stable_lr(X) == pytest.approx(2 / lam, rel=1e-12)


def test_accuracy():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert R.accuracy(logits, np.array([0, 1, 1])) == pytest.approx(2 / 3)


@pytest.mark.parametrize("call,match", [
    (lambda: R.mse_gradient(np.ones((3, 2)), np.ones(3), np.ones(3), 0.0), r"w must have shape \(2,\)"),
    (lambda: R.mse_gradient(np.ones((3, 2)), np.ones(4), np.ones(2), 0.0), "same number of rows"),
    (lambda: R.mse_gradient(np.ones((3, 2)), np.ones((3, 1)), np.ones(2), 0.0), "y must be 1-dimensional"),
    (lambda: R.mse_gradient(np.ones((3, 2)), np.ones(3), np.ones(2), np.ones(2)), "b must be 0-dimensional"),
    (lambda: R.softmax_gradient(np.ones((3, 2)), np.array([0, 1, 5]), np.ones((3, 2)), np.ones(3)), "y must be in"),
    (lambda: R.softmax_forward(np.ones((3, 2)), np.ones((3, 4)), np.ones(3)), r"W must have shape \(C, 2\)"),
    (lambda: R.softmax_forward(np.ones((3, 2)), np.ones((3, 2)), np.ones(2)), r"b must have shape \(3,\)"),
    (lambda: R.linear_forward(np.full((2, 1), np.nan), np.ones(1), 0.0), "X contains"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_accuracy_refuses_labels_that_would_broadcast():
    logits = np.eye(6)[:, :3]
    y = np.array([0, 1, 2, 1, 0, 0])  # rows 3-5 of eye(6)[:, :3] are zero: arg-max 0
    assert R.accuracy(logits, y) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="y must be 1-dimensional"):
        R.accuracy(logits, y.reshape(-1, 1))
    with pytest.raises(ValueError, match=r"y must be in \[0, 3\)"):
        R.accuracy(logits, np.array([0, 1, 2, 0, 0, 5]))
    with pytest.raises(ValueError, match="at least one row"):
        R.normal_equations(np.zeros((0, 2)), np.zeros(0))


@pytest.mark.parametrize("delta", [0.2, 1.0, 5.0])
def test_huber_gradient_matches_autograd(rng, delta):
    X, y, w, b = rng.normal(size=(30, 3)), rng.normal(size=30) * 2, rng.normal(size=3), rng.normal()
    loss, dw, db = R.huber_gradient(X, y, w, b, delta)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(float(b), dtype=torch.float64, requires_grad=True)
    t_loss = F.huber_loss(torch.tensor(X) @ tw + tb, torch.tensor(y), delta=delta)
    t_loss.backward()
    np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-13)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(db, tb.grad.item(), rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("alpha,lr", [(0.0, 1.0), (0.3, 1.0), (0.1, 0.4)])
def test_newton_step_uses_torchs_hessian(rng, alpha, lr):
    """Our ridge Hessian = torch.autograd.functional.hessian; lr = 1 lands on the minimiser."""
    X, y = rng.normal(size=(25, 3)) * [1.0, 5.0, 0.2], rng.normal(size=25)
    w, b = rng.normal(size=3), rng.normal()
    tX, ty = torch.tensor(X), torch.tensor(y)

    def loss(theta):
        return F.mse_loss(tX @ theta[:-1] + theta[-1], ty) + alpha * (theta[:-1] ** 2).sum()

    theta = torch.tensor(np.r_[w, b], requires_grad=True)
    H = torch.autograd.functional.hessian(loss, theta).numpy()
    np.testing.assert_allclose(R.ridge_hessian(X, alpha), H, rtol=1e-12, atol=1e-12)
    loss(theta).backward()
    expected = np.r_[w, b] - lr * np.linalg.solve(H, theta.grad.numpy())
    w1, b1 = R.newton_step(X, y, w, b, alpha, lr)
    np.testing.assert_allclose(np.r_[w1, b1], expected, rtol=1e-10, atol=1e-12)
    if lr == 1.0:  # at the minimiser the gradient vanishes
        _, dw, db = R.mse_gradient(X, y, w1, b1)
        assert np.abs(np.r_[dw + 2 * alpha * w1, db]).max() < 1e-10


def test_ridge_hessian_rejects_negative_alpha():
    with pytest.raises(ValueError, match="alpha"):
        R.ridge_hessian(np.zeros((3, 2)), -1.0)


# ----------------------------------------------------------------------------------
# The SGD noise floor: against an independent solver and against SGD itself


def _stationary_excess_loss(X, y, lr, B):
    """Independent reference: SGD linearised around the optimum with additive noise,
    delta <- (I - lr H) delta - lr xi, Cov(xi) = Sigma_1 / B; its stationary covariance solves a
    discrete Lyapunov equation (scipy), and E[L - L*] = tr(H S) / 2 since L is exactly quadratic."""
    from scipy.linalg import solve_discrete_lyapunov

    n = X.shape[0]
    A = np.c_[X, np.ones(n)]
    w, b = R.normal_equations(X, y)
    per_example = torch.func.vmap(torch.func.grad(lambda th, a, t: (a @ th - t) ** 2), in_dims=(None, 0, 0))
    G = per_example(torch.tensor(np.r_[w, b]), torch.tensor(A), torch.tensor(y)).numpy()  # autograd, per row
    H = R.mse_hessian(X)
    M = np.eye(H.shape[0]) - lr * H
    S = solve_discrete_lyapunov(M, lr**2 * np.cov(G.T, bias=True) / B)
    return 0.5 * np.trace(H @ S)


def _anisotropic_data(rng, n=400):
    # unequal feature scales: tr(H) and d * lambda_max differ by far, so one cannot pass for the other
    X = rng.normal(size=(n, 3)) * np.array([3.0, 1.0, 0.2]) + 0.5
    return X, X @ np.array([1.0, -2.0, 4.0]) + 0.3 + 0.5 * rng.normal(size=n)


@pytest.mark.parametrize("B", [1, 4, 32])
def test_noise_floor_first_order_is_the_small_lr_limit(rng, B):
    X, y = _anisotropic_data(rng)
    lr = 1e-4 * R.max_stable_lr(X)
    pred = R.sgd_noise_floor(X, y, lr, B)
    # relative error O(lr * lambda_max) = 1e-4; a missing 1/B (x B), a missing 1/2 (x 2), lambda_max for the
    # trace or sigma^2 for the trace of the gradient covariance are all off by far more
    assert pred == pytest.approx(_stationary_excess_loss(X, y, lr, B), rel=1e-3)
    assert R.sgd_noise_floor(X, y, 2 * lr, B) == pytest.approx(2 * pred, rel=1e-12)  # linear in lr / B
    assert R.sgd_noise_floor(X, y, 2 * lr, 2 * B) == pytest.approx(pred, rel=1e-12)


@pytest.mark.parametrize("frac", [0.01, 0.3, 0.9])
def test_noise_floor_with_the_second_order_term_solves_the_linearised_model_exactly(rng, frac):
    X, y = _anisotropic_data(rng)
    lr = frac * R.max_stable_lr(X)
    exact = R.sgd_noise_floor(X, y, lr, 4, first_order=False)
    assert exact == pytest.approx(_stationary_excess_loss(X, y, lr, 4), rel=1e-8)
    assert exact > R.sgd_noise_floor(X, y, lr, 4)       # the first order underestimates, more for larger lr


def test_noise_floor_well_specified_model_is_lr_sigma2_trH_over_2B(rng):
    # y = x.w + b + eps with Var(eps) = s2 independent of x: Sigma_1 -> 2 s2 H, floor -> lr s2 tr(H) / (2B)
    n, s2 = 20000, 0.3**2
    X = rng.uniform(-1, 2, size=(n, 2))
    y = X @ np.array([2.0, -1.0]) + 0.5 + np.sqrt(s2) * rng.normal(size=n)
    lr, B = 0.01, 8
    expected = lr * s2 * np.trace(R.mse_hessian(X)) / (2 * B)
    assert R.sgd_noise_floor(X, y, lr, B) == pytest.approx(expected, rel=0.05)


def test_noise_floor_matches_simulated_sgd(rng):
    # 200 independent SGD chains with batches drawn with replacement, started at the optimum,
    # excess loss averaged over 2000 steps after 500 of burn-in; the gradient is mse_gradient's
    X, y = _anisotropic_data(rng, n=300)
    w_s, b_s = R.normal_equations(X, y)
    L_star = R.mse_gradient(X, y, w_s, b_s)[0]
    lr, B, chains = 0.05 * R.max_stable_lr(X), 4, 200
    theta = np.tile(np.r_[w_s, b_s], (chains, 1))
    excess = []
    for t in range(2500):
        idx = rng.integers(0, len(X), size=(chains, B))
        r = np.einsum("cbd,cd->cb", X[idx], theta[:, :-1]) + theta[:, -1:] - y[idx]
        theta -= lr * np.c_[2 / B * np.einsum("cb,cbd->cd", r, X[idx]), 2 / B * r.sum(1)]
        if t >= 500 and t % 10 == 0:
            res = X @ theta[:, :-1].T + theta[:, -1] - y[:, None]          # (n, chains)
            excess.append(np.mean(res**2, axis=0) - L_star)
    measured = np.mean(excess)
    # the chains' sampling error is ~3%; the first order's bias at lr = 0.05 * bound is ~5%
    assert measured == pytest.approx(R.sgd_noise_floor(X, y, lr, B), rel=0.12)
    assert measured == pytest.approx(R.sgd_noise_floor(X, y, lr, B, first_order=False), rel=0.08)


def test_noise_floor_without_replacement_has_the_finite_population_factor(rng):
    X, y = _anisotropic_data(rng, n=50)
    with_r = R.sgd_noise_floor(X, y, 0.01, 10)
    assert R.sgd_noise_floor(X, y, 0.01, 10, replacement=False) == pytest.approx(with_r * 40 / 49, rel=1e-12)
    assert R.sgd_noise_floor(X, y, 0.01, 50, replacement=False) == 0.0    # the whole data set: no noise


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(lr=0.0, batch_size=1), ValueError, "lr must be finite and > 0, got 0.0"),
    (dict(lr=0.1, batch_size=0), ValueError, "batch_size must be finite and > 0, got 0"),
    (dict(lr=0.1, batch_size=2.0), TypeError, "batch_size must be an integer, got 2.0"),
    (dict(lr=0.1, batch_size=11, replacement=False), ValueError, "batch_size must be <= n = 10"),
    (dict(lr=100.0, batch_size=1, first_order=False), ValueError, r"lr must be < 2 / lambda_max = .*got 100.0"),
])
def test_noise_floor_bad_input(kwargs, exc, match):
    X = np.linspace(0, 1, 10)[:, None]
    with pytest.raises(exc, match=match):
        R.sgd_noise_floor(X, 3 * X[:, 0] + np.sin(7 * X[:, 0]), **kwargs)
