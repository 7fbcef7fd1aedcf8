"""Chapter-5 grader: its references agree with course_lib.quant and PyTorch, and correct solutions
written differently from the references score full on every seed."""

import numpy as np
import pytest
import torch

from course_lib import quant as Q
from course_lib.grade import ch05
from course_lib.grade.spec import grade_question, run_local


def full_marks(question, fn, seeds=range(20)):
    for seed in seeds:
        cases = question.make_cases(np.random.default_rng(seed))
        r = grade_question(question, cases, lambda c: run_local(fn, c, question, student=True))
        assert r.score == question.points, r.text()


def test_affine_qparams_reference_agrees_with_the_observer():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lo, hi = sorted(rng.uniform(-5, 5, 2))
        for qmin, qmax, dtype in ((0, 255, "quint8"), (-128, 127, "qint8"), (0, 15, "quint8")):
            kw = {} if (qmin, qmax) in ((0, 255), (-128, 127)) else dict(quant_min=qmin, quant_max=qmax)
            s, z = Q.choose_qparams(lo, hi, dtype, **kw)
            rs, rz = ch05.affine_qparams(float(lo), float(hi), qmin, qmax)
            assert abs(rs - s[0]) <= 1e-6 * s[0] and rz == z[0]


def test_fake_quant_grads_reference_equals_torch_learnable_fake_quant():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(3000) * 2).astype(np.float32).astype(np.float64)   # no exact ties
    dout = rng.standard_normal(x.size).astype(np.float32).astype(np.float64)
    t = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    ts, tz = torch.tensor([0.1], requires_grad=True), torch.tensor([3.0], requires_grad=True)
    torch._fake_quantize_learnable_per_tensor_affine(t, ts, tz, 0, 15, 1.0).backward(
        torch.tensor(dout, dtype=torch.float32))
    dx, dscale = ch05.fake_quant_grads(x, dout, 0.1, 3, 0, 15)
    np.testing.assert_array_equal(dx, t.grad.numpy())
    assert abs(dscale - ts.grad.item()) < 1e-5 * abs(dscale)


def test_per_channel_scales_reference_equals_quantize_weight_per_channel():
    W = np.random.default_rng(2).standard_normal((6, 9)).astype(np.float32)
    for bits in (8, 4, 2):
        np.testing.assert_allclose(ch05.per_channel_scales(W.astype(np.float64), bits),
                                   Q.quantize_weight_per_channel(W, bits)[1], rtol=1e-6)


# ---------------------------------------------------------------- correct, written differently
def qparams_python(x_min, x_max, quant_min, quant_max):
    import math
    x_min, x_max = min(x_min, 0), max(x_max, 0)
    scale = (x_max - x_min) / (quant_max - quant_min)
    if scale < np.finfo(np.float32).eps:
        scale = float(np.finfo(np.float32).eps)
    zp = quant_min - round(x_min / scale)          # Python's round: ties to even
    del math
    return np.float64(scale), np.int64(np.clip(zp, quant_min, quant_max))


def matmul_direct_int32(x_q, x_zero_point, w_q, w_zero_point):
    x = x_q.astype(np.int32) - np.int32(x_zero_point)
    w = w_q.astype(np.int32) - np.int32(w_zero_point)
    return x @ w.T


def matmul_loops(x_q, x_zero_point, w_q, w_zero_point):
    n, k = x_q.shape
    m = w_q.shape[0]
    out = [[0] * m for _ in range(n)]
    for i in range(n):
        for j in range(m):
            out[i][j] = sum((int(x_q[i, p]) - x_zero_point) * (int(w_q[j, p]) - w_zero_point) for p in range(k))
    return np.array(out)


def grads_via_fake_quant(x, dout, scale, zero_point, quant_min, quant_max):
    v = np.rint(x * (1.0 / scale)) + zero_point
    clipped = (v < quant_min) | (v > quant_max)
    fq = scale * (np.clip(v, quant_min, quant_max) - zero_point)
    d = np.where(clipped, (np.clip(v, quant_min, quant_max) - zero_point), (fq - x) / scale)
    return dout * ~clipped, (dout * d).sum()


def scales_alt(W, bits):
    return np.clip(abs(W).max(axis=-1) / (2 ** (bits - 1) - 0.5), np.finfo(np.float32).eps, None)


def mse_alt(bits, low, high):
    return ((max(high, 0) - min(low, 0)) / (2 ** bits - 1)) ** 2 / 12.0


@pytest.mark.parametrize("question,fn", [
    (ch05.AFFINE_QPARAMS, qparams_python),
    (ch05.AFFINE_INT_MATMUL, matmul_direct_int32),
    (ch05.AFFINE_INT_MATMUL, matmul_loops),
    (ch05.FAKE_QUANT_GRADS, grads_via_fake_quant),
    (ch05.PER_CHANNEL_SCALES, scales_alt),
    (ch05.PREDICTED_MSE, mse_alt),
], ids=lambda v: getattr(v, "id", getattr(v, "__name__", "")))
def test_correct_solutions_written_differently_score_full(question, fn):
    full_marks(question, fn, seeds=range(2) if fn is matmul_loops else range(20))
