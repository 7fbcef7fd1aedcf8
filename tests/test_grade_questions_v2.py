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
