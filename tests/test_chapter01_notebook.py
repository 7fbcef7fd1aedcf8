"""Chapter 1: the claims the notebook makes, checked outside it, plus the widget helper
(headless) and the hygiene rules of the stored notebooks."""

from pathlib import Path

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_lib.data import make_linear_regression  # noqa: E402
from course_lib.gd import linear_grad_fn, train  # noqa: E402
from course_lib.regression import mse_gradient, mse_hessian, normal_equations  # noqa: E402
from course_lib.utils import TrainingDiverged  # noqa: E402
from course_lib.widgets import choice_slider, current_values, explorer, log_slider  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LECTURE = ROOT / "notebooks" / "01_gradient_descent.ipynb"


def articles_grad_fn(params, X, y):
    """The source articles' gradient: a sum for w, a mean without the factor 2 for b."""
    w, b = params
    r = X @ w + b - y
    return float(np.mean(r**2)), [X.T @ r, float(np.mean(r))]


# ----------------------------------------------------------------------------------
# Section 4: the Hessian predicts the rate of gradient descent


@pytest.mark.parametrize("lr_frac", [0.1, 0.5, 0.9, 0.99, 1.05])
def test_gd_loss_gap_shrinks_by_the_predicted_factor(lr_frac):
    X, y = make_linear_regression(200, seed=7)
    lam = np.linalg.eigvalsh(mse_hessian(X))
    lr = lr_frac * 2 / lam[-1]
    w_s, b_s = normal_equations(X, y)
    L_star = mse_gradient(X, y, w_s, b_s)[0]
    h = train(linear_grad_fn, [np.zeros(1), 0.0], X, y, lr=lr, epochs=60)  # short of round-off
    gap = np.array(h.epoch_loss) - L_star
    rho2 = np.max((1 - lr * lam) ** 2)
    # asymptotically the slowest eigen-direction dominates: the ratio tends to rho^2
    assert gap[-1] / gap[-2] == pytest.approx(rho2, rel=1e-3)
    assert (gap[-1] > gap[0]) == (lr_frac > 1)


# ----------------------------------------------------------------------------------
# Section 5: the missing 1/n


def _articles_bound(X):
    n = X.shape[0]
    D = np.diag([n / 2, 1 / 2])
    return 2 / np.max(np.abs(np.linalg.eigvals(D @ mse_hessian(X))))


def test_articles_gradient_bound_shrinks_like_one_over_n():
    ns = np.array([10, 100, 1000, 10000])
    buggy = np.array([_articles_bound(make_linear_regression(int(n), seed=0)[0]) for n in ns])
    correct = np.array([2 / np.linalg.eigvalsh(mse_hessian(make_linear_regression(int(n), seed=0)[0]))[-1]
                        for n in ns])
    assert correct.max() / correct.min() < 1.1
    assert np.all(np.diff(buggy) < 0) and (ns * buggy).max() / (ns * buggy).min() < 1.6


def test_articles_bound_is_where_their_update_diverges():
    # the bound derived for the buggy update is real: just below it converges, just above it blows up
    X, y = make_linear_regression(300, seed=0)
    bound = _articles_bound(X)
    ok = train(articles_grad_fn, [np.zeros(1), 0.0], X, y, lr=0.95 * bound, epochs=3000)
    assert ok.epoch_loss[-1] < ok.epoch_loss[0]
    with pytest.raises(TrainingDiverged, match="lr="):
        train(articles_grad_fn, [np.zeros(1), 0.0], X, y, lr=1.05 * bound, epochs=20000)


def test_articles_lr_works_at_100_and_diverges_at_1000():
    for n, diverges in ((100, False), (1000, True)):
        X, y = make_linear_regression(n, seed=0)
        if diverges:
            with pytest.raises(TrainingDiverged, match=r"lr=0\.01"):
                train(articles_grad_fn, [np.zeros(1), 0.0], X, y, lr=0.01, epochs=1000)
        else:
            h = train(articles_grad_fn, [np.zeros(1), 0.0], X, y, lr=0.01, epochs=1000)
            w_s, _ = normal_equations(X, y)
            # it runs, but 1000 iterations do not reach the optimum (b crawls)
            assert 1e-3 < abs(h.final[0][0] - w_s[0]) < 0.5


# ----------------------------------------------------------------------------------
# Section 6: mini-batch gradient noise and the per-epoch picture


def test_minibatch_gradient_noise_follows_sigma2_over_B():
    X, y = make_linear_regression(500, seed=3)
    n = len(X)
    w, b = np.array([0.5]), -0.5
    r = X @ w + b - y
    G = 2 * np.c_[r[:, None] * X, r]
    full, sigma2 = G.mean(axis=0), np.sum(G.var(axis=0))
    rng = np.random.default_rng(0)
    for B in (1, 8, 64, 250):
        draws = np.array([np.hstack(mse_gradient(X[i], y[i], w, b)[1:])
                          for i in (rng.choice(n, size=B, replace=False) for _ in range(3000))])
        measured = np.mean(np.sum((draws - full) ** 2, axis=1))
        assert measured == pytest.approx(sigma2 / B * (n - B) / (n - 1), rel=0.1)


def test_small_batches_win_per_epoch_then_hit_a_noise_floor():
    X, y = make_linear_regression(1000, seed=1)
    w_s, b_s = normal_equations(X, y)
    L_star = mse_gradient(X, y, w_s, b_s)[0]
    gaps = {B: np.array(train(linear_grad_fn, [np.zeros(1), 0.0], X, y, lr=0.1, epochs=20, batch_size=B,
                              seed=0).epoch_loss) - L_star for B in (1, 32, 1000)}
    assert gaps[1][0] < gaps[32][0] < gaps[1000][0]
    # the noise floor: averaged over the last epochs, B = 1 sits above B = 32
    assert gaps[1][-10:].mean() > gaps[32][-10:].mean()
    assert gaps[1000][-1] > 10 * gaps[32][-1]


# ----------------------------------------------------------------------------------
# course_lib.widgets, headless


@pytest.fixture
def controls():
    return {"lr": log_slider("lr", 0.1, 1e-3, 1.0), "batch_size": choice_slider("B", [1, 10, 100], 10)}


def test_explorer_draws_now_and_after_every_change(controls):
    calls = []

    def update(lr, batch_size):
        calls.append((round(lr, 6), batch_size))
        fig, ax = plt.subplots()
        h = train(linear_grad_fn, [np.zeros(1), 0.0], *make_linear_regression(100, seed=0), lr=lr,
                  epochs=3, batch_size=batch_size)
        ax.plot(h.losses)
        return fig

    box = explorer(update, controls)
    image = box.children[1]
    assert calls == [(0.1, 10)]
    assert isinstance(image, widgets.Image) and image.value[:8] == b"\x89PNG\r\n\x1a\n"
    first = image.value
    controls["batch_size"].value = 1
    controls["lr"].value = 0.01
    assert calls == [(0.1, 10), (0.1, 1), (0.01, 1)]
    assert image.value != first
    assert plt.get_fignums() == []  # every figure was closed after rendering
    assert current_values(controls) == {"lr": pytest.approx(0.01), "batch_size": 1}
    assert list(box.children[0].children) == list(controls.values())


def test_explorer_rejects_bad_arguments(controls):
    with pytest.raises(TypeError, match="update must be callable"):
        explorer(None, controls)
    with pytest.raises(ValueError, match="controls must be a non-empty dict"):
        explorer(lambda **kw: None, {})
    with pytest.raises(ValueError, match="controls keys must be argument names"):
        explorer(lambda **kw: None, {"learning rate": controls["lr"]})
    with pytest.raises(TypeError, match=r"controls\['lr'\] must be an ipywidgets value widget"):
        explorer(lambda **kw: None, {"lr": 0.1})
    with pytest.raises(TypeError, match="update must return a matplotlib Figure"):
        explorer(lambda lr, batch_size: None, controls)


def test_log_slider_is_logarithmic_and_checks_its_range():
    s = log_slider("lr", 0.05, 1e-3, 10.0, steps_per_decade=4)
    assert (s.base, s.min, s.max, s.step) == (10, pytest.approx(-3), pytest.approx(1), 0.25)
    assert s.value == pytest.approx(0.05) and s.continuous_update is False
    with pytest.raises(ValueError, match="value must be in"):
        log_slider("lr", 20.0, 1e-3, 10.0)
    with pytest.raises(ValueError, match="low must be < high"):
        log_slider("lr", 0.1, 1.0, 0.01)
    with pytest.raises(ValueError, match="low must be a finite positive number"):
        log_slider("lr", 0.1, 0.0, 1.0)
    with pytest.raises(ValueError, match="steps_per_decade"):
        log_slider("lr", 0.1, 0.01, 1.0, steps_per_decade=0)


def test_choice_slider_default_and_bad_value():
    assert choice_slider("B", [4, 8]).value == 4
    with pytest.raises(ValueError, match="value must be one of"):
        choice_slider("B", [4, 8], 16)
    with pytest.raises(ValueError, match="options must not be empty"):
        choice_slider("B", [])


# ----------------------------------------------------------------------------------
# the stored notebooks


# (conventions every stored notebook follows are checked in tests/test_notebooks.py)


def test_lecture_quotes_the_articles_gradient_and_imports_the_canonical_versions():
    nb = nbformat.read(LECTURE, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "grad_w = X.T @ (y_pred - y)\ngrad_b = np.mean(y_pred - y)" in text
    for canonical in ("from course_lib.regression import mse_gradient", "from course_lib.gd import",
                      "from course_lib.losses import softmax_cross_entropy",
                      "from course_lib.regression import normal_equations"):
        assert canonical in text
