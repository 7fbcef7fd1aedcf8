"""The distillation loop: fit's loss_fn hook (same batches, default unchanged), distill() with and
without a teacher-logit cache, and one whole run equal to the same run in torch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.data import load_digits_split, minibatches
from course_lib.distill import compute_teacher_logits, distill, distillation_loss
from course_lib.losses import softmax_cross_entropy
from course_lib.nn import MLP, fit


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(seed=0, dtype=np.float64)


@pytest.fixture(scope="module")
def teacher(digits):
    net = MLP([64, 64, 10], seed=1, dtype=np.float64)
    fit(net, digits.X_train, digits.y_train, lr=0.1, epochs=4, seed=1)
    return net


def weights(net):
    return [p.copy() for p in net.params]


# ---------------------------------------------------------------------------------------------
# fit's hook


def test_fit_with_cross_entropy_hook_equals_default(digits):
    X, y = digits.X_train[:300], digits.y_train[:300]
    a, b = MLP([64, 16, 10], seed=3, dtype=np.float64), MLP([64, 16, 10], seed=3, dtype=np.float64)
    ha = fit(a, X, y, lr=0.1, epochs=2, seed=5)
    hb = fit(b, X, y, lr=0.1, epochs=2, seed=5, loss_fn=lambda z, yb, idx: softmax_cross_entropy(z, yb))
    assert ha.losses == hb.losses and ha.train_acc == hb.train_acc
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p, q)


def test_fit_hook_receives_the_batch_indices_in_minibatch_order(digits):
    X, y = digits.X_train[:100], digits.y_train[:100]
    seen = []

    def loss_fn(logits, yb, idx):
        seen.append(idx.copy())
        np.testing.assert_array_equal(yb, y[idx])
        return softmax_cross_entropy(logits, yb)

    fit(MLP([64, 10], seed=0, dtype=np.float64), X, y, lr=0.1, epochs=2, batch_size=32, seed=9,
        loss_fn=loss_fn)
    rng = np.random.default_rng(9)
    expected = [yb for _ in range(2) for _, yb in minibatches(X, np.arange(100), 32, seed=rng)]
    assert len(seen) == len(expected) == 8
    for a, b in zip(seen, expected):
        np.testing.assert_array_equal(a, b)
    assert sorted(np.concatenate(seen[:4]).tolist()) == list(range(100))   # one epoch covers X once


def test_fit_hook_bad_input(digits):
    X, y = digits.X_train[:50], digits.y_train[:50]
    net = MLP([64, 10], seed=0)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        fit(net, X, y, lr=0.1, loss_fn="kd")
    with pytest.raises(ValueError, match="y must be given"):
        fit(net, X, None, lr=0.1)
    with pytest.raises(ValueError, match="X and y must have the same number of rows"):
        fit(net, X, y[:40], lr=0.1)


# ---------------------------------------------------------------------------------------------
# distill()


def test_distill_alpha_zero_is_training_on_labels(digits, teacher):
    X, y = digits.X_train, digits.y_train
    a, b = MLP([64, 16, 10], seed=2, dtype=np.float64), MLP([64, 16, 10], seed=2, dtype=np.float64)
    fit(a, X, y, lr=0.1, epochs=2, seed=4)
    distill(b, X, y, teacher=teacher, T=3.0, alpha=0.0, lr=0.1, epochs=2, seed=4)
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p, q)


def test_distill_cached_equals_uncached_and_moves_the_student_towards_the_teacher(digits, teacher):
    X = digits.X_train
    a, b = MLP([64, 16, 10], seed=2, dtype=np.float64), MLP([64, 16, 10], seed=2, dtype=np.float64)
    before = compute_teacher_logits(a, X)
    t = compute_teacher_logits(teacher, X)
    ha = distill(a, X, teacher=teacher, T=4.0, alpha=1.0, lr=0.2, epochs=3, seed=6,
                 X_val=digits.X_val, y_val=digits.y_val)
    hb = distill(b, X, teacher=teacher, T=4.0, alpha=1.0, lr=0.2, epochs=3, seed=6, cache=False)
    for p, q in zip(a.params, b.params):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    assert ha.train_loss == [] and len(ha.val_acc) == 3      # no labels: no training accuracy
    assert ha.losses[-1] < ha.losses[0] / 3
    # the student now agrees with the teacher far more than before
    agree = lambda z: np.mean(np.argmax(z, 1) == np.argmax(t, 1))
    assert agree(compute_teacher_logits(a, X)) > max(0.85, agree(before) + 0.5)


def test_distill_bad_input(digits, teacher):
    X, y = digits.X_train[:40], digits.y_train[:40]
    net = MLP([64, 10], seed=0, dtype=np.float64)
    t = compute_teacher_logits(teacher, X)
    with pytest.raises(ValueError, match="give exactly one of teacher and teacher_logits"):
        distill(net, X, y, teacher=teacher, teacher_logits=t, lr=0.1)
    with pytest.raises(ValueError, match="give exactly one of teacher and teacher_logits"):
        distill(net, X, y, lr=0.1)
    with pytest.raises(ValueError, match="teacher_logits must have one row per row of X"):
        distill(net, X, y, teacher_logits=t[:30], lr=0.1)
    with pytest.raises(ValueError, match="alpha must be in"):
        distill(net, X, y, teacher_logits=t, alpha=1.5, lr=0.1)
    with pytest.raises(ValueError, match="T must be"):
        distill(net, X, y, teacher_logits=t, T=0.0, lr=0.1)
    with pytest.raises(ValueError, match="y must be given when alpha < 1"):
        distill(net, X, None, teacher_logits=t, alpha=0.5, lr=0.1)
    with pytest.raises(TypeError, match="cache must be True or False"):
        distill(net, X, y, teacher=teacher, cache="yes", lr=0.1)
    with pytest.raises(TypeError, match="teacher must have a forward"):
        compute_teacher_logits(object(), X)


def test_compute_teacher_logits_in_chunks_equals_one_forward(digits, teacher):
    X = digits.X_train
    np.testing.assert_allclose(compute_teacher_logits(teacher, X, batch_size=100), teacher.forward(X),
                               rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# one whole run against torch


def torch_distillation_run(student, t_logits, X, y, *, T, alpha, lr, epochs, batch_size, seed):
    """The same run in torch: the student as torch.nn.Sequential, autograd, torch.optim.SGD,
    the batches drawn exactly as fit draws them."""
    net = student.to_torch()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    tt, yt, Xt = torch.tensor(t_logits), torch.tensor(y), torch.tensor(X)
    losses = []
    for _ in range(epochs):
        for _, idx in minibatches(X, np.arange(len(X)), batch_size, seed=rng):
            idx = torch.tensor(idx)
            s = net(Xt[idx])
            kd = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(tt[idx] / T, dim=1),
                          reduction="batchmean") * T ** 2
            loss = alpha * kd + (1 - alpha) * F.cross_entropy(s, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return [p.detach().numpy() for p in net.parameters()], losses


@pytest.mark.parametrize("T,alpha", [(4.0, 0.7), (2.0, 1.0)])
def test_whole_distillation_run_equals_torch(digits, teacher, T, alpha):
    X, y = digits.X_train, digits.y_train
    student = MLP([64, 32, 10], seed=8, dtype=np.float64)
    t = compute_teacher_logits(teacher, X)
    ref_w, ref_losses = torch_distillation_run(student, t, X, y, T=T, alpha=alpha, lr=0.1, epochs=3,
                                               batch_size=32, seed=12)
    hist = distill(student, X, y, teacher_logits=t, T=T, alpha=alpha, lr=0.1, epochs=3, batch_size=32,
                   seed=12)
    assert len(hist.losses) == len(ref_losses) == 3 * 34
    np.testing.assert_allclose(hist.losses, ref_losses, rtol=1e-12)
    for p, q in zip(student.params, ref_w):
        np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-12)
    # and the step's loss is the library's distillation_loss: a wrong T would not match
    wrong, _ = distillation_loss(student.forward(X[:5]), t[:5], y[:5], T + 1, alpha)
    right, _ = distillation_loss(student.forward(X[:5]), t[:5], y[:5], T, alpha)
    assert abs(wrong - right) > 1e-6
