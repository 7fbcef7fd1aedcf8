"""Gradient-descent steps and loops: semantics, torch.optim.SGD parity, divergence."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import data, gd
from course_lib.regression import mse_gradient
from course_lib.utils import TrainingDiverged


def test_gd_step_returns_new_arrays_and_leaves_inputs():
    w, b = np.array([1.0, 2.0]), 0.5
    new = gd.gd_step([w, b], [np.array([0.5, -1.0]), 2.0], lr=0.1)
    np.testing.assert_allclose(new[0], [0.95, 2.1])
    assert new[1] == pytest.approx(0.3) and isinstance(new[1], float)
    np.testing.assert_array_equal(w, [1.0, 2.0])


@pytest.mark.parametrize("call,exc,match", [
    (lambda: gd.gd_step([np.ones(2)], [np.ones(2)], lr=0), ValueError, "lr must be"),
    (lambda: gd.gd_step([np.ones(2)], [np.ones(2)], lr=-0.1), ValueError, "lr must be"),
    (lambda: gd.gd_step([np.ones(2)], [np.ones(2), 1.0], lr=0.1), ValueError, "one entry per parameter"),
    (lambda: gd.gd_step([np.ones(2)], [np.ones(3)], lr=0.1), ValueError, r"grads\[0\] must have shape \(2,\)"),
    (lambda: gd.gd_step([np.ones(2)], [np.array([1.0, np.nan])], lr=0.1), ValueError, r"grads\[0\] contains"),
    (lambda: gd.train(gd.linear_grad_fn, [np.zeros(1), 0.0], np.ones((4, 1)), np.ones(4), lr=0.1,
                      batch_size=0), ValueError, "batch_size must be"),
    (lambda: gd.train(gd.linear_grad_fn, [np.zeros(1), 0.0], np.ones((4, 1)), np.ones(4), lr=0.1,
                      epochs=0), ValueError, "epochs must be"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_sgd_epoch_shuffles_with_rng_and_steps_once_per_batch():
    X, y = data.make_linear_regression(10, seed=0)
    seen = []

    def grad_fn(params, Xb, yb):
        seen.append(yb.copy())
        return gd.linear_grad_fn(params, Xb, yb)

    params, losses = gd.sgd_epoch(grad_fn, [np.zeros(1), 0.0], X, y, 0.1, 4, np.random.default_rng(2))
    assert [len(s) for s in seen] == [4, 4, 2] and len(losses) == 3
    order = np.random.default_rng(2).permutation(10)
    np.testing.assert_array_equal(np.concatenate(seen), y[order])
    # the first recorded loss is before any step: the loss of the starting point on batch 1
    assert losses[0] == pytest.approx(mse_gradient(X[order[:4]], y[order[:4]], np.zeros(1), 0.0)[0])


def torch_sgd_trajectory(X, y, w0, b0, lr, batch_size, epochs, seed):
    """Reference: torch.optim.SGD + autograd on the same batches (same permutations)."""
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=lr)
    rng = np.random.default_rng(seed)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    traj = [np.concatenate([w0, [b0]])]
    n = len(y)
    for _ in range(epochs):
        order = rng.permutation(n) if batch_size < n else np.arange(n)
        for s in range(0, n, batch_size):
            idx = torch.tensor(order[s:s + batch_size])
            opt.zero_grad()
            F.mse_loss(Xt[idx] @ w + b, yt[idx]).backward()
            opt.step()
            traj.append(np.concatenate([w.detach().numpy(), [b.item()]]))
    return np.array(traj)


@pytest.mark.parametrize("batch_size", [100, 10, 1])
def test_train_matches_torch_sgd_trajectory(batch_size):
    X, y = data.make_linear_regression(100, seed=0)
    hist = gd.train(gd.linear_grad_fn, [np.array([-1.0]), 2.0], X, y, lr=0.3, epochs=3,
                    batch_size=batch_size, seed=7, record_params=True)
    ours = np.array([np.concatenate([p[0], [float(p[1])]]) for p in hist.params])
    ref = torch_sgd_trajectory(X, y, np.array([-1.0]), 2.0, 0.3, batch_size, 3, 7)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-12


def test_full_batch_gd_converges_to_normal_equations():
    from course_lib.regression import max_stable_lr, normal_equations
    X, y = data.make_linear_regression(100, seed=0)
    hist = gd.train(gd.linear_grad_fn, [np.zeros(1), 0.0], X, y, lr=0.9 * max_stable_lr(X), epochs=2000)
    w, b = normal_equations(X, y)
    assert hist.final[0][0] == pytest.approx(w[0], abs=1e-6)
    assert float(hist.final[1]) == pytest.approx(b, abs=1e-6)
    assert len(hist.epoch_loss) == 2000 and hist.seconds == sorted(hist.seconds)


def test_divergence_stops_with_step_and_lr():
    from course_lib.regression import max_stable_lr
    X, y = data.make_linear_regression(100, seed=0)
    lr = 1.05 * max_stable_lr(X)  # just above the stability bound: slow blow-up
    with pytest.raises(TrainingDiverged, match=rf"at step \d+ \(epoch \d+\) with lr={lr}"):
        gd.train(gd.linear_grad_fn, [np.zeros(1), 0.0], X, y, lr=lr, epochs=100000)
    # and just below it training is fine
    gd.train(gd.linear_grad_fn, [np.zeros(1), 0.0], X, y, lr=0.95 * max_stable_lr(X), epochs=300)


def test_callback_sees_each_epoch():
    X, y = data.make_linear_regression(20, seed=0)
    epochs = []
    gd.train(gd.linear_grad_fn, [np.zeros(1), 0.0], X, y, lr=0.1, epochs=4, batch_size=5,
             callback=lambda e, h: epochs.append((e, len(h.losses))))
    assert epochs == [(0, 4), (1, 8), (2, 12), (3, 16)]


def test_softmax_regression_learns_digits():
    d = data.load_digits_split(dtype=np.float64)
    hist = gd.train(gd.softmax_grad_fn, [np.zeros((10, 64)), np.zeros(10)], d.X_train, d.y_train,
                    lr=0.1, epochs=5, batch_size=32, seed=0)
    W, b = hist.final
    acc = np.mean(np.argmax(d.X_val @ W.T + b, axis=1) == d.y_val)
    assert acc > 0.9
