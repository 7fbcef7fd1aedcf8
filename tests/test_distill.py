"""course_lib.distill: temperature softmax, Hinton's KD loss and the distillation loss, against
torch autograd (random and extreme logits, several T and alpha, float64 and float32), every
F.kl_div trap named, and bad input."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import distill
from course_lib.distill import distillation_loss, kd_loss, log_softmax, softmax
from course_lib.gradcheck import numerical_gradient

TS = (0.5, 1.0, 2.0, 4.0, 20.0)
ALPHAS = (0.0, 0.3, 0.9, 1.0)


def torch_kd(s, t, T, *, reduction="batchmean"):
    """The reference expression of the issue, with autograd: (loss, dloss/ds)."""
    st = torch.tensor(s, requires_grad=True)
    loss = F.kl_div(F.log_softmax(st / T, dim=1), F.softmax(torch.tensor(t) / T, dim=1),
                    reduction=reduction) * T ** 2
    loss.backward()
    return loss.item(), st.grad.numpy()


def torch_distill(s, t, y, T, alpha):
    st = torch.tensor(s, requires_grad=True)
    kd = F.kl_div(F.log_softmax(st / T, dim=1), F.softmax(torch.tensor(t) / T, dim=1),
                  reduction="batchmean") * T ** 2
    loss = alpha * kd + (1 - alpha) * F.cross_entropy(st, torch.tensor(y))
    loss.backward()
    return loss.item(), st.grad.numpy()


def logits(rng, n, C, scale=1.0, dtype=np.float64):
    return (scale * rng.standard_normal((n, C))).astype(dtype)


# ---------------------------------------------------------------------------------------------
# softmax / log_softmax with temperature


@pytest.mark.parametrize("T", TS)
def test_softmax_matches_torch_and_is_stable(T):
    rng = np.random.default_rng(0)
    for scale in (1.0, 30.0, 1e4):
        z = logits(rng, 6, 9, scale)
        ref = F.log_softmax(torch.tensor(z) / T, dim=1).numpy()
        np.testing.assert_allclose(log_softmax(z, T), ref, rtol=1e-12, atol=1e-12)
        p = softmax(z, T)
        assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1.0)
        np.testing.assert_allclose(p, F.softmax(torch.tensor(z) / T, dim=1).numpy(), rtol=1e-12,
                                   atol=1e-300)


def test_softmax_temperature_flattens_keeps_ranking_and_sums_over_rows():
    z = np.array([[3.0, 1.0, 0.0, -2.0], [0.0, 0.0, 5.0, 1.0]])
    p1, p4, p100 = softmax(z, 1.0), softmax(z, 4.0), softmax(z, 100.0)
    for p in (p1, p4, p100):
        np.testing.assert_array_equal(np.argsort(p, axis=1), np.argsort(z, axis=1))
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
    entropy = [-(p * np.log(p)).sum(axis=1) for p in (p1, p4, p100)]
    assert np.all(entropy[0] < entropy[1]) and np.all(entropy[1] < entropy[2])
    assert np.allclose(p100, 0.25, atol=0.02)
    # a softmax over the wrong axis (columns) would not make rows sum to 1 here
    assert not np.allclose(np.exp(z) / np.exp(z).sum(axis=0), p1)


def test_float32_stays_float32():
    z = logits(np.random.default_rng(1), 4, 10, dtype=np.float32)
    assert softmax(z, 3.0).dtype == np.float32
    loss, g = kd_loss(z, z[::-1].copy(), 3.0)
    assert g.dtype == np.float32 and isinstance(loss, float)


# ---------------------------------------------------------------------------------------------
# kd_loss and distillation_loss vs torch autograd


@pytest.mark.parametrize("T", TS)
def test_kd_loss_matches_torch_value_and_gradient(T):
    rng = np.random.default_rng(int(T * 10))
    for n, C, scale in ((1, 2, 1.0), (8, 10, 1.0), (5, 3, 10.0), (16, 10, 3.0)):
        s, t = logits(rng, n, C, scale), logits(rng, n, C, scale)
        loss, g = kd_loss(s, t, T)
        ref_loss, ref_g = torch_kd(s, t, T)
        assert loss == pytest.approx(ref_loss, rel=1e-12, abs=1e-14)
        np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("scale", (1e2, 1e4))
def test_kd_loss_extreme_logits_match_torch_with_underflowing_probabilities(scale):
    # at +-1e4 most of the teacher's probabilities underflow to exactly 0: the 0 log 0 terms must be 0
    rng = np.random.default_rng(7)
    s, t = logits(rng, 6, 10, scale), logits(rng, 6, 10, scale)
    for T in (1.0, 4.0):
        if scale == 1e4:
            assert np.any(softmax(t, T) == 0.0)      # np.log(p) would be -inf there, and 0 * -inf NaN
        loss, g = kd_loss(s, t, T)
        ref_loss, ref_g = torch_kd(s, t, T)
        assert np.isfinite(loss) and np.all(np.isfinite(g))
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-15)


def test_kd_loss_float32_matches_torch_float32():
    rng = np.random.default_rng(3)
    s, t = logits(rng, 32, 10, 4.0, np.float32), logits(rng, 32, 10, 4.0, np.float32)
    loss, g = kd_loss(s, t, 4.0)
    ref_loss, ref_g = torch_kd(s, t, 4.0)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(g, ref_g, rtol=1e-4, atol=1e-8)


def test_kd_loss_is_zero_with_zero_gradient_when_student_equals_teacher():
    t = logits(np.random.default_rng(4), 5, 7, 3.0)
    loss, g = kd_loss(t.copy(), t, 2.0)
    assert abs(loss) < 1e-14 and np.max(np.abs(g)) < 1e-16


def test_kd_gradient_formula_and_numerical_gradient():
    rng = np.random.default_rng(5)
    s, t = logits(rng, 4, 6, 2.0), logits(rng, 4, 6, 2.0)
    for T in (0.7, 3.0):
        _, g = kd_loss(s, t, T)
        np.testing.assert_allclose(g, (T / 4) * (softmax(s, T) - softmax(t, T)), rtol=1e-12)
        num = numerical_gradient(lambda z: kd_loss(z, t, T)[0], s.copy(), h=1e-6)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_high_temperature_limit_is_matching_logits():
    # Hinton et al. 2015, sec. 2.1: for T >> |logits| and zero-mean logits per row,
    # the gradient T/n (q - p) -> (s - t) / (n C)  (gradient of 1/(2nC) ||s - t||^2)
    rng = np.random.default_rng(6)
    s, t = logits(rng, 5, 10), logits(rng, 5, 10)
    s -= s.mean(axis=1, keepdims=True)
    t -= t.mean(axis=1, keepdims=True)
    target = (s - t) / (5 * 10)
    errors = [np.max(np.abs(kd_loss(s, t, T)[1] - target)) / np.max(np.abs(target)) for T in (10, 100, 1000)]
    # the error shrinks like 1/T: ten times smaller for every factor of ten
    assert errors[1] < errors[0] / 5 and errors[2] < errors[1] / 5 and errors[2] < 3e-3


@pytest.mark.parametrize("T", (1.0, 2.0, 8.0))
@pytest.mark.parametrize("alpha", ALPHAS)
def test_distillation_loss_matches_torch(T, alpha):
    rng = np.random.default_rng(11)
    for scale in (1.0, 1e4):
        s, t = logits(rng, 9, 10, scale), logits(rng, 9, 10, scale)
        y = rng.integers(0, 10, 9)
        loss, g = distillation_loss(s, t, y, T, alpha)
        ref_loss, ref_g = torch_distill(s, t, y, T, alpha)
        assert loss == pytest.approx(ref_loss, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-14)


def test_distillation_loss_endpoints_and_weighting():
    rng = np.random.default_rng(12)
    s, t, y = logits(rng, 6, 4), logits(rng, 6, 4), rng.integers(0, 4, 6)
    kd = kd_loss(s, t, 3.0)
    from course_lib.losses import softmax_cross_entropy
    ce = softmax_cross_entropy(s, y)
    assert distillation_loss(s, t, y, 3.0, 1.0)[0] == kd[0]
    assert distillation_loss(s, t, None, 3.0, 1.0)[0] == kd[0]   # no labels needed at alpha = 1
    assert distillation_loss(s, t, y, 3.0, 0.0)[0] == pytest.approx(ce[0], rel=1e-15)
    loss, g = distillation_loss(s, t, y, 3.0, 0.25)
    assert loss == pytest.approx(0.25 * kd[0] + 0.75 * ce[0], rel=1e-14)
    np.testing.assert_allclose(g, 0.25 * kd[1] + 0.75 * ce[1], rtol=1e-14)
    # alpha on the wrong term is a different loss
    assert abs(loss - (0.75 * kd[0] + 0.25 * ce[0])) > 1e-3


# ---------------------------------------------------------------------------------------------
# the traps of F.kl_div: each gives a different number from the KD loss


def test_every_kl_div_trap_differs_from_the_kd_loss():
    rng = np.random.default_rng(13)
    n, C, T = 8, 10, 4.0
    s, t = logits(rng, n, C, 3.0), logits(rng, n, C, 3.0)
    right, _ = kd_loss(s, t, T)
    st, tt = torch.tensor(s), torch.tensor(t)
    log_q, log_p = F.log_softmax(st / T, 1), F.log_softmax(tt / T, 1)
    q, p = log_q.exp(), log_p.exp()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mean = (F.kl_div(log_q, p, reduction="mean") * T ** 2).item()
    assert any("batchmean" in str(w.message) for w in caught)      # torch warns about this one
    traps = {
        "reduction='mean' divides by n*C": mean,
        "forgot T**2": F.kl_div(log_q, p, reduction="batchmean").item(),
        "arguments swapped (KL(q||p))": (F.kl_div(log_p, q, reduction="batchmean") * T ** 2).item(),
        "probabilities as input": (F.kl_div(q, p, reduction="batchmean") * T ** 2).item(),
        "only the student divided by T": (F.kl_div(log_q, F.softmax(tt, 1), reduction="batchmean")
                                          * T ** 2).item(),
        "softmax over the batch axis": (F.kl_div(F.log_softmax(st / T, 0), F.softmax(tt / T, 0),
                                                 reduction="batchmean") * T ** 2).item(),
    }
    assert mean == pytest.approx(right / C, rel=1e-12)                 # exactly C times too small
    assert traps["forgot T**2"] == pytest.approx(right / T ** 2, rel=1e-12)
    for name, value in traps.items():
        assert abs(value - right) > 1e-3 * abs(right), name
    right_torch = (F.kl_div(log_q, p, reduction="batchmean") * T ** 2).item()
    assert right == pytest.approx(right_torch, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("T", (0, 0.0, -1.0, float("nan"), float("inf")))
def test_bad_temperature_is_named(T):
    z = np.zeros((2, 3))
    for fn in (lambda: kd_loss(z, z, T), lambda: softmax(z, T), lambda: log_softmax(z, T),
               lambda: distillation_loss(z, z, [0, 1], T, 0.5)):
        with pytest.raises(ValueError, match="T must be"):
            fn()


@pytest.mark.parametrize("alpha", (-0.1, 1.01, float("nan")))
def test_bad_alpha_is_named(alpha):
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="alpha must be in"):
        distillation_loss(z, z, [0, 1], 2.0, alpha)


def test_mismatched_shapes_are_named():
    s = np.zeros((4, 10))
    with pytest.raises(ValueError, match="teacher_logits must have 10 classes"):
        kd_loss(s, np.zeros((4, 9)), 2.0)
    with pytest.raises(ValueError, match="teacher_logits must have 4 rows"):
        kd_loss(s, np.zeros((3, 10)), 2.0)
    with pytest.raises(ValueError, match="student_logits must be 2-dimensional"):
        kd_loss(np.zeros(10), np.zeros(10), 2.0)
    with pytest.raises(ValueError, match="student_logits must have at least one row"):
        kd_loss(np.zeros((0, 10)), np.zeros((0, 10)), 2.0)
    with pytest.raises(ValueError, match="teacher_logits contains 4 non-finite"):
        kd_loss(s, np.where(np.eye(4, 10) > 0, np.inf, 0.0), 2.0)
    with pytest.raises(TypeError, match="student_logits must have a dtype"):
        kd_loss(np.zeros((4, 10), dtype=int), s, 2.0)
    with pytest.raises(ValueError, match="y must have 4 labels"):
        distillation_loss(s, s, [0, 1, 2], 2.0, 0.5)
    with pytest.raises(ValueError, match=r"y must be in \[0, 10\)"):
        distillation_loss(s, s, [0, 1, 2, 10], 2.0, 0.5)
    with pytest.raises(ValueError, match="y must be given when alpha < 1"):
        distillation_loss(s, s, None, 2.0, 0.5)


def test_public_api():
    assert {"softmax", "log_softmax", "kd_loss", "distillation_loss", "compute_teacher_logits",
            "distill", "make_distillation_loss"} <= set(distill.__all__)
