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
