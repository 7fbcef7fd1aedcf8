"""Every scheduler's learning-rate sequence equals torch.optim.lr_scheduler's (to 1e-12).

Each case builds the same schedule on one of our optimizers and on a torch optimizer,
steps both 70 times (optimizer step, then scheduler step, as PyTorch prescribes) and
compares ``optimizer.lr`` and ``get_last_lr()`` after every step (for OneCycleLR also
the momentum / beta1 it drives).

We require *bitwise* equality, stronger than the 1e-12 we promise: our schedulers do the
same float operations in the same order as PyTorch's, and exact equality also catches
changes that agree to round-off only (e.g. cosine's closed form instead of its recursion).
"""

import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tsched

import course_lib.optim as ours

N_STEPS = 70


def _opts(kind="SGD", lr=0.1):
    """Our optimizer and torch's, with one parameter each."""
    kw = dict(lr=lr, momentum=0.9) if kind == "SGD" else dict(lr=lr)
    tp = torch.nn.Parameter(torch.zeros(2))
    tp.grad = torch.zeros(2)
    return getattr(ours, kind)([np.zeros(2)], **kw), getattr(torch.optim, kind)([tp], **kw)


CASES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "StepLR-default-gamma": lambda m, o: m.StepLR(o, step_size=3),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[5, 20, 20, 45], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=12),
    "LinearLR-warmup": lambda m, o: m.LinearLR(o, start_factor=0.01, total_iters=25),
    "LinearLR-decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.05,
                                              total_iters=40),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lr_lambda=lambda e: 1.0 / (1.0 + 0.1 * e)),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=N_STEPS),
    # past T_max the recursion turns around (and hits the special step at T_max + 1)
    "CosineAnnealingLR-past-T_max": lambda m, o: m.CosineAnnealingLR(o, T_max=20, eta_min=1e-3),
    "CosineAnnealingLR-short": lambda m, o: m.CosineAnnealingLR(o, T_max=1),
    "SequentialLR-warmup-cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=10),
            m.CosineAnnealingLR(o, T_max=N_STEPS - 10, eta_min=1e-4)], milestones=[10]),
    "SequentialLR-three": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=5), m.ExponentialLR(o, gamma=0.9),
            m.StepLR(o, step_size=4, gamma=0.5)], milestones=[8, 30]),
    "OneCycleLR-cos": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=N_STEPS),
    "OneCycleLR-linear": lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=N_STEPS,
                                                   anneal_strategy="linear", pct_start=0.25),
    "OneCycleLR-three-phase": lambda m, o: m.OneCycleLR(
        o, max_lr=2.0, epochs=7, steps_per_epoch=10, three_phase=True, div_factor=10.0,
        final_div_factor=100.0, base_momentum=0.8, max_momentum=0.9),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=N_STEPS,
                                                        cycle_momentum=False),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=30, power=2.0),
    "PolynomialLR-default": lambda m, o: m.PolynomialLR(o),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=7, eta_min=1e-3),
    "CosineAnnealingWarmRestarts-T_mult": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
    "SequentialLR-warmup-restarts": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=6),
            m.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2)], milestones=[6]),
    "SequentialLR-warmup-polynomial": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.3, total_iters=4), m.PolynomialLR(o, total_iters=20, power=0.5)],
        milestones=[4]),
}


def run(make, kind="SGD"):
    opt, topt = _opts(kind)
    sched, tsch = make(ours, opt), make(tsched, topt)
    ours_seq, torch_seq = [], []

    def record():
        mom = (opt.betas[0] if kind == "Adam" else opt.momentum)
        tgroup = topt.param_groups[0]
        tmom = tgroup["betas"][0] if kind == "Adam" else tgroup["momentum"]
        ours_seq.append((opt.lr, sched.get_last_lr()[0], mom))
        torch_seq.append((tgroup["lr"], tsch.get_last_lr()[0], tmom))

    record()
    for _ in range(N_STEPS):
        opt.step([np.zeros(2)])
        topt.step()
        sched.step()
        tsch.step()
        record()
    return np.array(ours_seq), np.array(torch_seq), sched


@pytest.mark.parametrize("name", list(CASES))
def test_lr_sequence_matches_torch(name):
    ours_seq, torch_seq, _ = run(CASES[name])
    np.testing.assert_array_equal(ours_seq, torch_seq)
    assert len(np.unique(ours_seq[:, 0])) > 1 or name == "OneCycleLR-no-momentum"


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("OneCycle")] + ["StepLR"])
def test_with_adam_too(name):
    """OneCycleLR cycles beta1 of Adam (betas[0]) instead of momentum."""
    ours_seq, torch_seq, _ = run(CASES[name], kind="Adam")
    np.testing.assert_array_equal(ours_seq, torch_seq)


def test_cosine_is_torchs_recursive_form_not_the_closed_form():
    """Documented subtlety: the recursion matches the closed form only to round-off."""
    ours_seq, _, sched = run(CASES["CosineAnnealingLR"])
    closed = [0.1 * (1 + math.cos(math.pi * t / N_STEPS)) / 2 for t in range(N_STEPS + 1)]
    np.testing.assert_allclose(ours_seq[:, 0], closed, rtol=1e-9, atol=1e-15)
    assert sched.last_epoch == N_STEPS


def test_one_cycle_refuses_to_step_past_total_steps():
    opt, _ = _opts()
    sched = ours.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="total_steps is 3"):
        sched.step()


# ------------------------------------------------------------------ ReduceLROnPlateau

rng = np.random.default_rng(0)
METRICS = {
    "decrease-then-plateau": [1.0 / (1 + t) for t in range(20)] + [0.05] * 50,
    "noisy-decrease": list(1.0 / (1 + 0.2 * np.arange(70)) + 0.05 * rng.standard_normal(70)),
    "increase-then-plateau": [t / 20 for t in range(20)] + [1.0] * 50,
    "tiny-improvements": [1.0 - 1e-6 * t for t in range(70)],
    "oscillating": [1.0 + 0.1 * (-1) ** t for t in range(70)],
    # far from 1, relative and absolute thresholds disagree
    "large-scale": [100.0 - 0.005 * t for t in range(70)],
    "small-scale": [1e-3 * (1.0 - 0.002 * t) for t in range(70)],
}
PLATEAU_SETTINGS = [
    dict(),
    dict(mode="min", patience=3),
    dict(mode="max", patience=2, factor=0.5),
    dict(patience=2, threshold=0.1, threshold_mode="abs"),
    dict(mode="max", patience=1, threshold=1e-3, threshold_mode="abs", cooldown=3),
    dict(patience=0, factor=0.5, cooldown=2, min_lr=1e-3),
    dict(patience=1, factor=0.9, min_lr=0.0999, eps=1e-8),        # last cut smaller than eps
    dict(patience=1, factor=0.5, eps=0.02),
    dict(patience=4, threshold=0.0),
]


@pytest.mark.parametrize("metric_name", list(METRICS))
@pytest.mark.parametrize("settings", PLATEAU_SETTINGS,
                         ids=["-".join(f"{k}={v}" for k, v in s.items()) or "defaults"
                              for s in PLATEAU_SETTINGS])
def test_reduce_lr_on_plateau_matches_torch(settings, metric_name):
    opt, topt = _opts()
    sched = ours.ReduceLROnPlateau(opt, **settings)
    tsch = tsched.ReduceLROnPlateau(topt, **settings)
    lrs, tlrs = [], []
    for metric in METRICS[metric_name]:
        opt.step([np.zeros(2)])
        topt.step()
        sched.step(metric)
        tsch.step(metric)
        lrs.append((opt.lr, sched.get_last_lr()[0], sched.num_bad_epochs,
                    sched.cooldown_counter, sched.best))
        tlrs.append((topt.param_groups[0]["lr"], tsch.get_last_lr()[0], tsch.num_bad_epochs,
                     tsch.cooldown_counter, tsch.best))
    np.testing.assert_array_equal(np.array(lrs), np.array(tlrs))
    assert sched.last_epoch == tsch.last_epoch == len(METRICS[metric_name])


def test_reduce_lr_on_plateau_actually_reduces():
    opt, _ = _opts()
    assert isinstance(ours.ReduceLROnPlateau(opt), ours.LRScheduler)   # as in torch
    sched = ours.ReduceLROnPlateau(opt, patience=2, factor=0.5)
    for metric in [1.0, 0.9, 0.9, 0.9, 0.9]:
        sched.step(metric)
    assert opt.lr == pytest.approx(0.05)


def test_reduce_lr_on_plateau_refuses_nan():
    opt, _ = _opts()
    sched = ours.ReduceLROnPlateau(opt)
    with pytest.raises(ValueError, match="NaN"):
        sched.step(float("nan"))
    with pytest.raises(TypeError, match="metrics must be a number"):
        sched.step("low")
    sched.step(np.float32(0.5))   # numpy scalars (and 0-d arrays) are fine
    assert sched.best == 0.5


# ------------------------------------------------------------------- state and errors

@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR-past-T_max",
                                  "SequentialLR-warmup-cosine", "OneCycleLR-cos", "ConstantLR"])
def test_scheduler_state_dict_round_trip(name):
    """Save after 15 steps, restore into a fresh scheduler, continue both: the same lrs."""
    make = CASES[name]
    opt = ours.SGD([np.zeros(2)], lr=0.1, momentum=0.9)
    sched = make(ours, opt)
    for _ in range(15):
        sched.step()
    opt_sd, sd = opt.state_dict(), sched.state_dict()
    twin_opt = ours.SGD([np.zeros(2)], lr=0.1, momentum=0.9)
    twin = make(ours, twin_opt)         # constructing it changes twin_opt.lr ...
    twin_opt.load_state_dict(opt_sd)    # ... so restore the optimizer after (as in torch)
    twin.load_state_dict(sd)
    for _ in range(30):
        sched.step()
        twin.step()
        assert twin_opt.lr == opt.lr and twin.get_last_lr() == sched.get_last_lr()
        assert twin_opt.momentum == opt.momentum
    assert "optimizer" not in sd


def test_plateau_state_dict_round_trip():
    opt = ours.SGD([np.zeros(2)], lr=0.1)
    sched = ours.ReduceLROnPlateau(opt, patience=1)
    for m in [1.0, 1.0, 1.0]:
        sched.step(m)
    twin_opt = ours.SGD([np.zeros(2)], lr=0.1)
    twin = ours.ReduceLROnPlateau(twin_opt, patience=1)
    twin_opt.load_state_dict(opt.state_dict())
    twin.load_state_dict(sched.state_dict())
    for m in [1.0, 0.5, 0.5, 0.5]:
        sched.step(m)
        twin.step(m)
        assert twin_opt.lr == opt.lr


RESUMABLE = {
    "StepLR": lambda m, o, e: m.StepLR(o, step_size=4, gamma=0.5, last_epoch=e),
    "MultiStepLR": lambda m, o, e: m.MultiStepLR(o, milestones=[3, 9], last_epoch=e),
    "ExponentialLR": lambda m, o, e: m.ExponentialLR(o, gamma=0.9, last_epoch=e),
    "LinearLR": lambda m, o, e: m.LinearLR(o, start_factor=0.2, total_iters=10, last_epoch=e),
    "ConstantLR": lambda m, o, e: m.ConstantLR(o, factor=0.5, total_iters=8, last_epoch=e),
    "CosineAnnealingLR": lambda m, o, e: m.CosineAnnealingLR(o, T_max=15, last_epoch=e),
    "PolynomialLR": lambda m, o, e: m.PolynomialLR(o, total_iters=12, power=1.5, last_epoch=e),
    "CosineAnnealingWarmRestarts": lambda m, o, e: m.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2, last_epoch=e),
}


@pytest.mark.parametrize("name", list(RESUMABLE))
def test_resuming_with_last_epoch_matches_torch(name):
    """Resume at epoch 5 (optimizer already holding initial_lr and a decayed lr)."""
    make = RESUMABLE[name]
    opt, topt = _opts(lr=0.05)
    opt.initial_lr = topt.param_groups[0]["initial_lr"] = 0.1
    sched, tsch = make(ours, opt, 5), make(tsched, topt, 5)
    seq, tseq = [opt.lr], [topt.param_groups[0]["lr"]]
    for _ in range(20):
        topt.step()
        sched.step()
        tsch.step()
        seq.append(opt.lr)
        tseq.append(topt.param_groups[0]["lr"])
    np.testing.assert_array_equal(seq, tseq)
    assert sched.last_epoch == tsch.last_epoch == 26   # the constructor's step counts too


def test_initial_lr_is_recorded_once_like_torch():
    opt, topt = _opts(lr=0.3)
    s1, t1 = ours.ExponentialLR(opt, gamma=0.5), tsched.ExponentialLR(topt, gamma=0.5)
    topt.step()
    s1.step()
    t1.step()
    s2, t2 = ours.StepLR(opt, step_size=2), tsched.StepLR(topt, step_size=2)
    assert opt.initial_lr == topt.param_groups[0]["initial_lr"] == 0.3
    assert s2.base_lrs == t2.base_lrs == [0.3]


BAD = [
    (lambda o: ours.StepLR(o, step_size=0), ValueError, "step_size"),
    (lambda o: ours.StepLR(o, step_size=2.5), TypeError, "step_size"),
    (lambda o: ours.StepLR(o, step_size=2, gamma=-0.1), ValueError, "gamma"),
    (lambda o: ours.MultiStepLR(o, milestones=[10, 5]), ValueError, "milestones"),
    (lambda o: ours.MultiStepLR(o, milestones=[-1]), ValueError, r"milestones\[0\]"),
    (lambda o: ours.ExponentialLR(o, gamma=0.0), ValueError, "gamma"),
    (lambda o: ours.ConstantLR(o, factor=0.0), ValueError, "factor"),
    (lambda o: ours.LinearLR(o, start_factor=0.0), ValueError, "start_factor"),
    (lambda o: ours.LinearLR(o, end_factor=1.5), ValueError, "end_factor"),
    (lambda o: ours.LinearLR(o, total_iters=0), ValueError, "total_iters"),
    (lambda o: ours.CosineAnnealingLR(o, T_max=0), ValueError, "T_max"),
    (lambda o: ours.CosineAnnealingLR(o, T_max=10, eta_min=-1.0), ValueError, "eta_min"),
    (lambda o: ours.LambdaLR(o, lr_lambda=0.5), TypeError, "lr_lambda"),
    (lambda o: ours.OneCycleLR(o, max_lr=1.0), ValueError, "total_steps"),
    (lambda o: ours.OneCycleLR(o, max_lr=1.0, total_steps=0), ValueError, "total_steps"),
    (lambda o: ours.OneCycleLR(o, max_lr=-1.0, total_steps=10), ValueError, "max_lr"),
    (lambda o: ours.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1), TypeError, "pct_start"),
    (lambda o: ours.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5), ValueError, "pct_start"),
    (lambda o: ours.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"),
     ValueError, "anneal_strategy"),
    (lambda o: ours.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=10), ValueError, "max_lr"),
    (lambda o: ours.ReduceLROnPlateau(o, mode="lowest"), ValueError, "mode"),
    (lambda o: ours.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError, "threshold_mode"),
    (lambda o: ours.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor"),
    (lambda o: ours.ReduceLROnPlateau(o, patience=-1), ValueError, "patience"),
    (lambda o: ours.ReduceLROnPlateau(o, cooldown=1.5), TypeError, "cooldown"),
    (lambda o: ours.ReduceLROnPlateau(o, min_lr=-1e-3), ValueError, "min_lr"),
    (lambda o: ours.ReduceLROnPlateau(o, threshold=-0.1), ValueError, "threshold"),
    (lambda o: ours.SequentialLR(o, [], milestones=[]), ValueError, "schedulers"),
    (lambda o: ours.SequentialLR(o, [ours.StepLR(o, 2)], milestones=[3]), ValueError,
     "milestones"),
    (lambda o: ours.SequentialLR(o, [ours.StepLR(o, 2), ours.ReduceLROnPlateau(o)], [3]),
     ValueError, "ReduceLROnPlateau"),
    (lambda o: ours.SequentialLR(o, [ours.StepLR(o, 2),
                                     ours.StepLR(ours.SGD([np.zeros(1)]), 2)], [3]),
     ValueError, "different optimizer"),
]


@pytest.mark.parametrize("make,exc,match", BAD, ids=[m for _, _, m in BAD])
def test_bad_scheduler_arguments(make, exc, match):
    opt, _ = _opts()
    with pytest.raises(exc, match=match):
        make(opt)


def test_scheduler_needs_one_of_our_optimizers():
    _, topt = _opts()
    with pytest.raises(TypeError, match="optimizer must be a course_lib.optim Optimizer"):
        ours.StepLR(topt, step_size=2)


def test_new_schedulers_reject_bad_arguments():
    opt, _ = _opts()
    with pytest.raises(ValueError, match="T_0 must be >= 1, got 0"):
        ours.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(TypeError, match="T_mult must be an integer"):
        ours.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=1.5)
    with pytest.raises(ValueError, match="power"):
        ours.PolynomialLR(opt, total_iters=3, power=0.0)



@pytest.mark.parametrize("pct_start, total_steps, three_phase", [(1 / 300, 300, False), (0.01, 100, False),
                                                                 (0.5, 2, False), (0.25, 4, True)])
def test_one_cycle_refuses_a_phase_of_zero_steps_that_torch_divides_by(pct_start, total_steps, three_phase):
    tp = torch.nn.Parameter(torch.zeros(2))
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9)
    with pytest.raises(ZeroDivisionError):   # torch: a bare division by zero (its constructor takes step 0)
        tsched.OneCycleLR(topt, max_lr=1.0, total_steps=total_steps, pct_start=pct_start,
                          three_phase=three_phase)
    with pytest.raises(ValueError, match=f"pct_start={pct_start} with total_steps={total_steps} gives a phase"):
        ours.OneCycleLR(ours.SGD([np.zeros(2)], lr=0.1, momentum=0.9), max_lr=1.0, total_steps=total_steps,
                        pct_start=pct_start, three_phase=three_phase)
    # twice the steps: every phase has at least 2, and ours runs like torch's
    sched = ours.OneCycleLR(ours.SGD([np.zeros(2)], lr=0.1, momentum=0.9), max_lr=1.0,
                            total_steps=2 * total_steps, pct_start=pct_start, three_phase=three_phase)
    for _ in range(2 * total_steps - 1):
        sched.optimizer.step([np.zeros(2)])
        sched.step()
