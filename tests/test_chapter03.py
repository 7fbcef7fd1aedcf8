"""Chapter 3: the claims the notebook makes, checked outside it, and the hygiene rules of its
stored notebooks.

The library's own tests cover each optimizer and scheduler against torch
(``test_optim_parity.py``, ``test_schedulers.py``); here are the chapter's further claims: the
formulas of section 1 (steps of GD on a bowl, the saddle's escape time, the noise floor), the
heavy ball's sqrt(kappa), Nesterov's two forms, Adam's scale invariance and bias correction,
Adam + L2 vs AdamW, whole training runs of the digits network equal to torch's from the same
weights, the optimizer race, the comparison table, ReduceLROnPlateau on a real validation curve
and the source articles' "dynamic learning rate".
"""

import math
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import nn, optim
from course_lib.data import load_digits_split, minibatches
from course_lib.losses import softmax_cross_entropy
from course_lib.utils import rel_error

ROOT = Path(__file__).resolve().parents[1]
LECTURE = ROOT / "notebooks" / "03_optimizers.ipynb"


# ----------------------------------------------------------------------------------
# 2-D landscapes (section 1) and a runner for any optimizer with the step(grads) interface


def bowl_grad(kappa):
    return lambda p: np.array([p[0], kappa * p[1]])


def bowl_f(kappa):
    return lambda p: 0.5 * (p[0] ** 2 + kappa * p[1] ** 2)


def rosen_f(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def rosen_grad(p):
    return np.array([-2 * (1 - p[0]) - 400 * p[0] * (p[1] - p[0] ** 2), 200 * (p[1] - p[0] ** 2)])


def saddle_gap(p):          # f - f_min of f = x^2/2 + y^4/4 - y^2/2 (f_min = -1/4)
    return 0.5 * p[0] ** 2 + 0.25 * p[1] ** 4 - 0.5 * p[1] ** 2 + 0.25


def saddle_grad(p):
    return np.array([p[0], p[1] ** 3 - p[1]])


def run(make, grad, x0, steps):
    """The path (steps + 1, 2) of make([x]) from x0, cut short once |x| > 1e6."""
    x = np.array(x0, dtype=np.float64)
    opt = make([x])
    path = [x.copy()]
    for _ in range(steps):
        opt.step([grad(x)])
        path.append(x.copy())
        if not np.all(np.abs(x) < 1e6):
            break
    return np.array(path)


def steps_below(make, grad, f, x0, tol, max_steps):
    x = np.array(x0, dtype=np.float64)
    opt = make([x])
    for step in range(1, max_steps + 1):
        opt.step([grad(x)])
        if f(x) < tol:
            return step
    return None


# ----------------------------------------------------------------------------------
# Section 1: why plain SGD struggles


@pytest.mark.parametrize("kappa", [10, 100, 1000])
def test_gd_steps_on_the_bowl_follow_kappa(kappa):
    f, lr = bowl_f(kappa), 2 / (1 + kappa)
    steps = steps_below(lambda ps: optim.SGD(ps, lr=lr), bowl_grad(kappa), f, (1.0, 1.0), 1e-8 * f((1.0, 1.0)),
                        100_000)
    rho = (kappa - 1) / (kappa + 1)
    assert abs(steps - math.log(1e-8) / (2 * math.log(rho))) <= 1
    # at this rate both coordinates shrink by exactly rho per step (the steep one flipping sign)
    path = run(lambda ps: optim.SGD(ps, lr=lr), bowl_grad(kappa), (1.0, 1.0), 50)
    t = np.arange(51)
    np.testing.assert_allclose(path[:, 0], rho**t, rtol=1e-12)
    np.testing.assert_allclose(path[:, 1], (-rho) ** t, rtol=1e-12)


def test_rosenbrock_gd_crawls_where_momentum_travels():
    gd = run(lambda ps: optim.SGD(ps, lr=1e-3), rosen_grad, (-1.2, 1.0), 2000)
    assert rosen_f(gd[10]) < 0.5 * rosen_f(gd[0]) and rosen_f(gd[-1]) > 0.01
    for kw in (dict(momentum=0.9), dict(momentum=0.9, nesterov=True)):
        mom = run(lambda ps: optim.SGD(ps, lr=1e-3, **kw), rosen_grad, (-1.2, 1.0), 1000)
        assert rosen_f(mom[-1]) < 1e-2 * rosen_f(gd[1000])


def test_saddle_escape_time_is_log_of_the_distance_over_lr():
    for y0, lr in ((1e-6, 0.1), (1e-9, 0.1), (1e-6, 0.05)):
        path = run(lambda ps: optim.SGD(ps, lr=lr), saddle_grad, (2.0, y0), 1000)
        gaps = np.array([saddle_gap(p) for p in path])
        escape = int(np.argmax(gaps < 0.125))
        predicted = math.log(0.5 / y0) / math.log(1 + lr)
        assert abs(escape - predicted) < 0.05 * predicted + 5
    # per-coordinate scaling escapes much sooner
    adam = run(lambda ps: optim.Adam(ps, lr=0.1), saddle_grad, (2.0, 1e-6), 300)
    mom = run(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), saddle_grad, (2.0, 1e-6), 300)
    esc = {k: int(np.argmax(np.array([saddle_gap(p) for p in v]) < 0.125)) for k, v in (("adam", adam), ("mom", mom))}
    assert esc["adam"] < esc["mom"] < 141 and esc["adam"] < 141 / 5


@pytest.mark.parametrize("lr", [0.1, 0.03, 0.01])
def test_noise_floor_is_proportional_to_the_learning_rate(lr):
    H, rng = np.array([1.0, 10.0]), np.random.default_rng(7)
    theta = np.ones((500, 2))
    opt = optim.SGD([theta], lr=lr)
    fs = []
    for _ in range(3000):
        opt.step([H * theta + rng.standard_normal(theta.shape)])
        fs.append(np.mean(0.5 * np.sum(H * theta**2, axis=1)))
    floor = np.sum(lr / (2 * (2 - lr * H)))
    assert np.mean(fs[-500:]) == pytest.approx(floor, rel=0.1)


# ----------------------------------------------------------------------------------
# Section 2: momentum and Nesterov


def test_momentum_effective_step_and_damping():
    x = np.zeros(1)
    opt = optim.SGD([x], lr=0.01, momentum=0.9)
    for _ in range(100):
        before = x.copy()
        opt.step([np.ones(1)])
    assert (before - x)[0] / 0.01 == pytest.approx(10 * (1 - 0.9**100), rel=1e-9)
    x = np.zeros(1)
    opt = optim.SGD([x], lr=0.01, momentum=0.9)
    for t in range(100):
        opt.step([np.array([(-1.0) ** t])])
    assert abs(opt.state[0]["momentum_buffer"][0]) == pytest.approx(1 / 1.9, abs=1e-3)


def test_torch_form_nesterov_is_the_look_ahead_point_of_sutskevers_form():
    lr, mu, grad = 0.02, 0.9, bowl_grad(25)
    theta, v = np.array([-4.5, 1.5]), np.zeros(2)
    p = np.array([-4.5, 1.5])
    opt = optim.SGD([p], lr=lr, momentum=mu, nesterov=True)
    for _ in range(200):
        v = mu * v - lr * grad(theta + mu * v)
        theta = theta + v
        opt.step([grad(p)])
        np.testing.assert_allclose(p, theta + mu * v, rtol=0, atol=1e-12)
    # and it is not plain momentum's trajectory
    q = run(lambda ps: optim.SGD(ps, lr=lr, momentum=mu), grad, (-4.5, 1.5), 200)[-1]
    assert np.max(np.abs(q - p)) > 1e-6


def test_heavy_ball_needs_sqrt_kappa_steps():
    gd, hb = {}, {}
    for kappa in (10, 1000):
        f, sq = bowl_f(kappa), math.sqrt(kappa)
        tol = 1e-8 * f((1.0, 1.0))
        gd[kappa] = steps_below(lambda ps: optim.SGD(ps, lr=2 / (1 + kappa)), bowl_grad(kappa), f, (1, 1), tol, 10**5)
        hb[kappa] = steps_below(lambda ps: optim.SGD(ps, lr=4 / (1 + sq) ** 2, momentum=((sq - 1) / (sq + 1)) ** 2),
                                bowl_grad(kappa), f, (1, 1), tol, 10**5)
    assert 90 < gd[1000] / gd[10] < 110 and 8 < hb[1000] / hb[10] < 16
    assert gd[1000] > 15 * hb[1000]


# ----------------------------------------------------------------------------------
# Section 3: adaptive step sizes and Adam's bias correction


def test_adam_is_blind_to_the_scale_of_the_loss_and_gd_is_not():
    g = bowl_grad(25)
    a1 = run(lambda ps: optim.Adam(ps, lr=0.3), g, (-4.5, 1.5), 150)
    a1000 = run(lambda ps: optim.Adam(ps, lr=0.3), lambda p: 1000 * g(p), (-4.5, 1.5), 150)
    assert np.max(np.abs(a1 - a1000)) < 1e-6
    # eps is what breaks the invariance: at a tiny scale the paths differ
    a_tiny = run(lambda ps: optim.Adam(ps, lr=0.3), lambda p: 1e-9 * g(p), (-4.5, 1.5), 150)
    assert np.max(np.abs(a1 - a_tiny)) > 1e-2
    assert len(run(lambda ps: optim.SGD(ps, lr=0.02), lambda p: 1000 * g(p), (-4.5, 1.5), 150)) < 151


def adam_no_correction(param, grad, m, v, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    param -= lr * m / (np.sqrt(v) + eps)


def test_bias_correction_makes_every_step_lr_and_its_absence_follows_the_formula():
    x, y = np.zeros(1), np.zeros(1)
    opt = optim.Adam([x], lr=0.01)
    m, v = np.zeros(1), np.zeros(1)
    for t in range(1, 201):
        bx, by = x.copy(), y.copy()
        opt.step([np.ones(1)])
        adam_no_correction(y, np.ones(1), m, v, 0.01)
        assert (bx - x)[0] == pytest.approx(0.01, rel=1e-6)
        assert (by - y)[0] / 0.01 == pytest.approx((1 - 0.9**t) / math.sqrt(1 - 0.999**t), rel=1e-6)
    t = np.arange(1, 3001)
    ratio = (1 - 0.9**t) / np.sqrt(1 - 0.999**t)
    assert ratio[0] == pytest.approx(math.sqrt(10)) and 6 < ratio.max() < 7 and t[ratio.argmax()] == 12


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(seed=0)


def first_losses(digits, step_fn, steps=30, seed=0):
    net = nn.MLP([64, 64, 10], seed=seed)
    ms = [np.zeros_like(p) for p in net.params]
    vs = [np.zeros_like(p) for p in net.params]
    rng, losses = np.random.default_rng(seed), []
    for Xb, yb in minibatches(digits.X_train, digits.y_train, 32, seed=rng):
        loss, dl = softmax_cross_entropy(net(Xb), yb)
        net.backward(dl)
        for p, g, m, v in zip(net.params, net.grads, ms, vs):
            step_fn(p, g, m, v, len(losses) + 1)
        losses.append(loss)
        if len(losses) == steps:
            return np.array(losses)


def test_without_bias_correction_the_first_steps_blow_up_the_digits_network(digits):
    def corrected(p, g, m, v, t):
        optim.functional.adam_step(p, g, m, v, None, t, lr=0.03, beta1=0.9, beta2=0.999, eps=1e-8,
                                   weight_decay=0.0, amsgrad=False, maximize=False)

    def uncorrected(p, g, m, v, t):
        adam_no_correction(p, g, m, v, 0.03)

    assert first_losses(digits, corrected).max() < 2.5
    assert first_losses(digits, uncorrected).max() > 5


# ----------------------------------------------------------------------------------
# Section 4: weight decay


def test_sgd_l2_equals_decoupled_decay_but_adam_l2_does_not():
    rng = np.random.default_rng(2)
    for cls, kw, equal in ((optim.SGD, {}, True), (optim.Adam, {}, False)):
        p_l2 = rng.standard_normal(5)
        p_dec = p_l2.copy()
        o_l2 = cls([p_l2], lr=0.1, weight_decay=0.05, **kw)
        o_plain = cls([p_dec], lr=0.1, **kw)
        for _ in range(100):
            g = rng.standard_normal(5)
            o_l2.step([g])
            p_dec *= 1 - 0.1 * 0.05
            o_plain.step([g])
        assert (rel_error(p_l2, p_dec) < 1e-12) == equal


def test_adam_l2_decays_by_gradient_size_adamw_does_not():
    rng = np.random.default_rng(3)
    sigmas, lr, wd, T = np.array([10.0, 0.1]), 2e-4, 0.5, 10_000
    noise = rng.standard_normal((T, 2)) * sigmas
    final = {}
    for name, cls in (("l2", optim.Adam), ("w", optim.AdamW)):
        w = np.ones(2)
        opt = cls([w], lr=lr, weight_decay=wd)
        for g in noise:
            opt.step([g])
        final[name] = w
    target = (1 - lr * wd) ** T
    assert abs(final["w"][0] - target) < 0.05 and abs(final["w"][1] - target) < 0.05
    assert final["l2"][0] > 0.8 and abs(final["l2"][1]) < 0.05


# ----------------------------------------------------------------------------------
# Section 5 and 7: schedules, and whole runs equal to torch's


def cosine_warmup_lr(step, *, base_lr, warmup_steps, total_steps, start_factor, eta_min):
    if step < warmup_steps:
        return base_lr * (start_factor + (1 - start_factor) * step / warmup_steps)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * progress))


def test_warmup_cosine_closed_form_is_sequential_lr():
    opt = optim.SGD([np.zeros(1)], lr=0.1)
    sched = optim.SequentialLR(opt, [optim.LinearLR(opt, start_factor=0.1, total_iters=10),
                                     optim.CosineAnnealingLR(opt, T_max=90, eta_min=1e-3)], milestones=[10])
    lrs = []
    for _ in range(101):
        lrs.append(opt.lr)
        sched.step()
    closed = [cosine_warmup_lr(t, base_lr=0.1, warmup_steps=10, total_steps=100, start_factor=0.1, eta_min=1e-3)
              for t in range(101)]
    assert rel_error(np.array(lrs), np.array(closed)) < 1e-12
    shifted = [cosine_warmup_lr(t + 1, base_lr=0.1, warmup_steps=10, total_steps=100, start_factor=0.1,
                                eta_min=1e-3) for t in range(100)]
    assert rel_error(np.array(lrs[:100]), np.array(shifted)) > 1e-3


STEPS_PER_EPOCH = 34
RECIPES = {
    "adam-warmup-cosine": (
        lambda lib, params: lib.Adam(params, lr=3e-3),
        lambda S, o, total: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=20),
                                               S.CosineAnnealingLR(o, T_max=total - 20)], milestones=[20])),
    "sgd-nesterov-wd-onecycle": (
        lambda lib, params: lib.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda S, o, total: S.OneCycleLR(o, max_lr=0.3, total_steps=total)),
}


def train_side_by_side(digits, make_opt, make_sched, epochs=5, ours_lr_scale=1.0):
    """The digits MLP in float64 trained by course_lib and by torch from the same weights."""
    total = epochs * STEPS_PER_EPOCH
    net = nn.MLP([64, 64, 10], seed=0, dtype=np.float64)
    seq = net.to_torch()
    opt, topt = make_opt(optim, net.params), make_opt(torch.optim, seq.parameters())
    sched, tsched = make_sched(optim, opt, total), make_sched(torch.optim.lr_scheduler, topt, total)
    X, y = digits.X_train.astype(np.float64), digits.y_train
    ours, theirs = [], []
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        for Xb, yb in minibatches(X, y, 32, seed=rng):
            loss, dl = softmax_cross_entropy(net(Xb), yb)
            net.backward(dl)
            opt.lr *= ours_lr_scale
            opt.step(net.grads)
            opt.lr /= ours_lr_scale
            sched.step()
            lt = F.cross_entropy(seq(torch.from_numpy(Xb)), torch.from_numpy(yb))
            topt.zero_grad()
            lt.backward()
            topt.step()
            tsched.step()
            ours.append(loss)
            theirs.append(lt.item())
    weights = max(rel_error(p, t.detach().numpy()) for p, t in zip(net.params, seq.parameters()))
    return np.array(ours), np.array(theirs), weights


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_a_whole_training_run_equals_torchs(digits, recipe):
    ours, theirs, weights = train_side_by_side(digits, *RECIPES[recipe])
    assert len(ours) == len(theirs) == 5 * STEPS_PER_EPOCH
    assert rel_error(ours, theirs) < 1e-10 and weights < 1e-8
    assert ours[-STEPS_PER_EPOCH:].mean() < 0.3 * ours[0]       # it trained


def test_the_side_by_side_run_can_fail(digits):
    # a learning rate off by 1e-6 (relative) on our side is visible far above the tolerance
    ours, theirs, weights = train_side_by_side(digits, *RECIPES["adam-warmup-cosine"], ours_lr_scale=1 + 1e-6)
    assert rel_error(ours, theirs) > 1e-10 and weights > 1e-8


SCHEDULER_ZOO = {
    "StepLR": lambda S, o: S.StepLR(o, step_size=15, gamma=0.5),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, milestones=[20, 35, 45], gamma=0.3),
    "ConstantLR": lambda S, o: S.ConstantLR(o, factor=0.25, total_iters=10),
    "LinearLR": lambda S, o: S.LinearLR(o, start_factor=0.1, total_iters=20),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, gamma=0.95),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, T_max=60, eta_min=0.05),
    "LambdaLR": lambda S, o: S.LambdaLR(o, lambda t: 1 / math.sqrt(1 + t)),
    "SequentialLR": lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=10), S.CosineAnnealingLR(o, T_max=50)], milestones=[10]),
    "OneCycleLR": lambda S, o: S.OneCycleLR(o, max_lr=1.0, total_steps=60),
}


@pytest.mark.parametrize("name", list(SCHEDULER_ZOO))
def test_the_notebooks_scheduler_zoo_matches_torch(name):
    opt = optim.SGD([np.zeros(1)], lr=1.0, momentum=0.9)
    tp = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=1.0, momentum=0.9)
    sched, tsched = SCHEDULER_ZOO[name](optim, opt), SCHEDULER_ZOO[name](torch.optim.lr_scheduler, topt)
    for _ in range(60):
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-15, abs=1e-15)
        assert opt.momentum == pytest.approx(topt.param_groups[0]["momentum"], rel=1e-15)
        sched.step()
        topt.step()
        tsched.step()


PARITY = [("SGD", dict(lr=1e-3, momentum=0.9, dampening=0.5, weight_decay=0.01)),
          ("Adagrad", dict(lr=0.3, lr_decay=1e-3)), ("RMSprop", dict(lr=0.003, momentum=0.9, centered=True)),
          ("Adam", dict(lr=0.1, amsgrad=True, weight_decay=0.01)), ("AdamW", dict(lr=0.1, weight_decay=0.1))]


@pytest.mark.parametrize("name,kw", PARITY, ids=[n for n, _ in PARITY])
def test_rosenbrock_trajectories_match_torch(name, kw):
    ours = np.array([-1.2, 1.0])
    theirs = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt, topt = getattr(optim, name)([ours], **kw), getattr(torch.optim, name)([theirs], **kw)
    for _ in range(500):
        opt.step([rosen_grad(ours)])
        theirs.grad = torch.from_numpy(rosen_grad(theirs.detach().numpy()))
        topt.step()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=1e-12)
    assert rosen_f(ours) < rosen_f((-1.2, 1.0))


def test_numba_backend_equals_numpy_backend_for_adam():
    rng = np.random.default_rng(5)
    n = 100_000                      # above the kernel's grain size: the parallel path runs
    p_np = rng.standard_normal(n).astype(np.float32)
    p_nb = p_np.copy()
    a, b = optim.Adam([p_np], lr=1e-3), optim.Adam([p_nb], lr=1e-3, backend="numba")
    for _ in range(5):
        g = rng.standard_normal(n).astype(np.float32)
        a.step([g])
        b.step([g])
    assert np.max(np.abs(p_np - p_nb)) <= 1e-6 and np.max(np.abs(p_np - 0)) > 0


# ----------------------------------------------------------------------------------
# Section 8: the race


RACE_LRS = [float(f"{v:.3g}") for v in np.geomspace(1e-4, 1.0, 25)]   # the notebook's grid, 6 per decade


def _settle(path, f):
    """Steps after which f stays below 1e-6 (inf if not within the run or if the path leaves the box |x| <= 5)."""
    if len(path) < 501 or np.max(np.abs(path)) > 5:
        return math.inf
    gaps = np.array([f(p) for p in path])
    above = np.flatnonzero(~(gaps < 1e-6))
    s = 0 if above.size == 0 else int(above[-1]) + 1
    return s if s < len(gaps) else math.inf


def _rotated_bowl(kappa, deg=45):
    a = math.radians(deg)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    A = R @ np.diag([1.0, kappa]) @ R.T
    return (lambda p: A @ p), (lambda p: 0.5 * p @ A @ p), tuple(R @ np.array([-4.5, 1.5])), A


def test_rotating_the_bowl_leaves_sgd_and_momentum_alone_and_breaks_the_adaptive_methods():
    # section 8: SGD and momentum are rotation-equivariant, a diagonal preconditioner is not
    grad_r, f_r, x0_r, A = _rotated_bowl(25)
    grad_a, f_a = bowl_grad(25), (lambda p: 0.5 * (p[0] ** 2 + 25 * p[1] ** 2))
    for make in (lambda ps: optim.SGD(ps, lr=0.0681), lambda ps: optim.SGD(ps, lr=0.1, momentum=0.5)):
        assert _settle(run(make, grad_a, (-4.5, 1.5), 500), f_a) == _settle(run(make, grad_r, x0_r, 500), f_r) < 200
    for name, factor in (("RMSprop", 5), ("Adagrad", 2)):
        make = (lambda lr: (lambda ps: optim.RMSprop(ps, lr=lr, alpha=0.999))) if name == "RMSprop" else \
               (lambda lr: (lambda ps: optim.Adagrad(ps, lr=lr)))
        best_a = min(_settle(run(make(lr), grad_a, (-4.5, 1.5), 500), f_a) for lr in RACE_LRS)
        best_r = min(_settle(run(make(lr), grad_r, x0_r, 500), f_r) for lr in RACE_LRS)
        assert best_r > factor * best_a, (name, best_a, best_r)
    # one Newton step reaches the minimum of the rotated quadratic
    x0 = np.array(x0_r)
    assert np.max(np.abs(x0 - np.linalg.solve(A, grad_r(x0)))) < 1e-12


def test_heavy_ball_stability_edge():
    # section 2: on curvature lam the heavy ball is stable iff lr * lam < 2 (1 + mu)
    for mu in (0.0, 0.5, 0.9):
        edge = 2 * (1 + mu) / 25
        for lr, stable in ((0.98 * edge, True), (1.02 * edge, False)):
            path = run(lambda ps: optim.SGD(ps, lr=lr, momentum=mu), bowl_grad(25), (1.0, 1.0), 3000)
            assert (len(path) == 3001 and np.abs(path[-1]).max() < 1.0) == stable


# ----------------------------------------------------------------------------------
# Section 9: the digits


def train_digits(digits, make_opt, *, make_sched=None, plateau=None, epochs=15, seed=0, target=0.95):
    net = nn.MLP([64, 64, 10], seed=seed)
    opt = make_opt(net.params)
    sched = make_sched(opt) if make_sched else None
    plat = plateau(opt) if plateau else None
    rng = np.random.default_rng(seed)
    losses, reach, val_loss, lrs = [], math.inf, [], []
    for _ in range(epochs):
        for Xb, yb in minibatches(digits.X_train, digits.y_train, 32, seed=rng):
            loss, dl = softmax_cross_entropy(net(Xb), yb)
            net.backward(dl)
            opt.step(net.grads)
            lrs.append(opt.lr)
            if sched:
                sched.step()
            losses.append(loss)
            if reach == math.inf and np.mean(net.predict(digits.X_val) == digits.y_val) >= target:
                reach = len(losses)
        logits = net(digits.X_val)
        val_loss.append(softmax_cross_entropy(logits, digits.y_val)[0])
        if plat:
            plat.step(val_loss[-1])
    acc = float(np.mean(np.argmax(net(digits.X_val), axis=1) == digits.y_val))
    return dict(losses=np.array(losses), reach=reach, acc=acc, val_loss=val_loss, lrs=np.array(lrs))


def test_best_learning_rates_shift_by_decades(digits):
    sweep = {"SGD": lambda lr: (lambda ps: optim.SGD(ps, lr=lr)),
             "momentum": lambda lr: (lambda ps: optim.SGD(ps, lr=lr, momentum=0.9)),
             "RMSprop": lambda lr: (lambda ps: optim.RMSprop(ps, lr=lr)),
             "Adam": lambda lr: (lambda ps: optim.Adam(ps, lr=lr))}
    lrs = [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3]
    best = {k: lrs[int(np.argmax([train_digits(digits, make(lr), epochs=8, target=2)["acc"] for lr in lrs]))]
            for k, make in sweep.items()}
    assert best["Adam"] < best["SGD"] and best["RMSprop"] < best["SGD"] and best["momentum"] < best["SGD"]


def test_comparison_table_claims(digits):
    # the rates the notebook's sweep selects (SGD 0.3, momentum 0.03, Adagrad 0.03, RMSprop 0.01, Adam 0.003)
    total = 15 * STEPS_PER_EPOCH
    configs = {
        "SGD": dict(make_opt=lambda ps: optim.SGD(ps, lr=0.3)),
        "momentum": dict(make_opt=lambda ps: optim.SGD(ps, lr=0.03, momentum=0.9)),
        "Adagrad": dict(make_opt=lambda ps: optim.Adagrad(ps, lr=0.03)),
        "RMSprop": dict(make_opt=lambda ps: optim.RMSprop(ps, lr=0.01)),
        "Adam": dict(make_opt=lambda ps: optim.Adam(ps, lr=0.003)),
        "momentum + cosine": dict(make_opt=lambda ps: optim.SGD(ps, lr=0.09, momentum=0.9),
                                  make_sched=lambda o: optim.CosineAnnealingLR(o, T_max=total)),
        "Adam + warm-up + cosine": dict(
            make_opt=lambda ps: optim.Adam(ps, lr=0.009),
            make_sched=lambda o: optim.SequentialLR(
                o, [optim.LinearLR(o, start_factor=0.1, total_iters=STEPS_PER_EPOCH),
                    optim.CosineAnnealingLR(o, T_max=total - STEPS_PER_EPOCH)], milestones=[STEPS_PER_EPOCH])),
    }
    res = {k: [train_digits(digits, seed=s, **cfg) for s in (1, 2, 3)] for k, cfg in configs.items()}
    acc = {k: np.mean([r["acc"] for r in v]) for k, v in res.items()}
    reach = {k: np.mean([r["reach"] for r in v]) for k, v in res.items()}
    last = {k: np.mean([r["losses"][-STEPS_PER_EPOCH:].mean() for r in v]) for k, v in res.items()}
    assert min(acc.values()) > 0.97 and max(acc.values()) - min(acc.values()) < 0.015
    assert max(reach["RMSprop"], reach["Adagrad"]) < 0.7 * reach["SGD"]
    assert reach["momentum + cosine"] < reach["momentum"] and reach["Adam + warm-up + cosine"] < reach["Adam"]
    assert last["momentum + cosine"] < 0.7 * last["momentum"] and last["Adam + warm-up + cosine"] < 0.7 * last["Adam"]
    assert last["RMSprop"] < 0.2 * last["SGD"] and acc["RMSprop"] <= acc["SGD"]


def test_reduce_lr_on_plateau_on_a_real_validation_curve_matches_torch(digits):
    r = train_digits(digits, lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), epochs=40, target=2,
                     plateau=lambda o: optim.ReduceLROnPlateau(o, factor=0.5, patience=2))
    per_epoch = r["lrs"].reshape(40, -1)[:, 0]
    tp = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9)
    tplat = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, factor=0.5, patience=2)
    theirs = []
    for vl in r["val_loss"]:
        theirs.append(topt.param_groups[0]["lr"])
        tplat.step(vl)
    np.testing.assert_allclose(per_epoch, theirs, rtol=0, atol=1e-15)
    assert np.sum(np.diff(per_epoch) < 0) >= 1


def run_dynamic(digits, lr0, mode, epochs=15, seed=0):
    """The source articles' dynamic learning rate as the bold driver: x1.1 after an improvement, x0.5 after a
    deterioration, judged per epoch on the validation loss or per step on the mini-batch loss."""
    net = nn.MLP([64, 64, 10], seed=seed)
    opt = optim.SGD(net.params, lr=lr0)
    rng, prev_val, prev_batch = np.random.default_rng(seed), math.inf, math.inf
    for _ in range(epochs):
        for Xb, yb in minibatches(digits.X_train, digits.y_train, 32, seed=rng):
            with np.errstate(over="ignore", invalid="ignore"):
                loss, dl = softmax_cross_entropy(net(Xb), yb)
            if not np.isfinite(loss):
                return opt.lr, math.nan
            net.backward(dl)
            opt.step(net.grads)
            if mode == "per step":
                opt.lr *= 1.1 if loss < prev_batch else 0.5
                prev_batch = loss
        with np.errstate(over="ignore", invalid="ignore"):
            logits = net(digits.X_val)
            vl = softmax_cross_entropy(logits, digits.y_val)[0] if np.all(np.isfinite(logits)) else math.inf
        if mode == "per epoch":
            opt.lr *= 1.1 if vl < prev_val else 0.5
            prev_val = vl
    return opt.lr, float(np.mean(np.argmax(logits, axis=1) == digits.y_val))


def test_dynamic_learning_rate_per_epoch_rescues_per_step_collapses(digits):
    res = {(lr0, m): run_dynamic(digits, lr0, m) for lr0 in (0.003, 0.03, 0.3, 3.0)
           for m in ("constant", "per epoch", "per step")}
    acc = {k: v[1] for k, v in res.items()}
    assert acc[0.003, "per epoch"] > acc[0.003, "constant"] + 0.05 and acc[0.03, "per epoch"] > acc[0.03, "constant"]
    assert math.isnan(acc[3.0, "constant"]) and acc[3.0, "per epoch"] > 0.9
    for lr0 in (0.003, 0.03, 0.3, 3.0):
        assert res[lr0, "per step"][0] < 1e-20 and acc[lr0, "per step"] < acc[lr0, "per epoch"]


# ----------------------------------------------------------------------------------
# the stored notebooks


# (conventions every stored notebook follows are checked in tests/test_notebooks.py)


def test_every_torch_claim_in_the_lecture_is_asserted():
    claims = 0
    for cell in nbformat.read(LECTURE, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        said = " ".join(line for line in cell.source.split("\n")
                        if "print(" in line or line.lstrip().startswith(('f"', '"')))
        if "torch" in said and any(w in said for w in ("==", "identical", "agree", "same decisions")):
            claims += 1
            assert "assert " in cell.source, cell.source[:80]
    assert claims >= 4


def test_lecture_imports_the_canonical_versions_and_tests_the_articles_idea():
    nb = nbformat.read(LECTURE, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    for canonical in ("from course_lib import nn, optim", "optim.functional.sgd_step", "optim.functional.adam_step",
                      "from course_lib.kernels import optim as optim_kernels", "from course_lib.optim.bench import",
                      "from course_lib.widgets import", "optim.ReduceLROnPlateau", "optim.SequentialLR"):
        assert canonical in text, canonical
    assert "dynamic learning rate" in text.lower() and "explorer(draw_race" in text
