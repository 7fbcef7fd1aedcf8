r"""Chapter 5 questions: quantization parameters of a range that may not contain 0, an integer
matrix product with two zero-points that must not overflow, the straight-through gradients of
fake quantization with a learnable scale, per-channel weight scales, and a predict-then-measure
of the quantization noise of a uniform signal.

Conventions (the exercise notebook states them): float64 arithmetic in Python/NumPy, rounding
ties to the even integer (``np.rint`` / Python's ``round``), PyTorch's observer rules (the range
is widened to contain 0; the scale is floored at ``eps``).

- ``affine_qparams(x_min, x_max, quant_min, quant_max) -> (scale, zero_point)``: float, int
- ``affine_int_matmul(x_q, x_zero_point, w_q, w_zero_point) -> acc``: (n, m) exact integers,
  ``acc[i, j] = sum_p (x_q[i, p] - x_zero_point) * (w_q[j, p] - w_zero_point)``
- ``fake_quant_grads(x, dout, scale, zero_point, quant_min, quant_max) -> (dx, dscale)``
- ``per_channel_scales(W, bits) -> scales``: (out,) symmetric per-row scales
- ``predicted_mse(bits, low, high) -> float``: the mean squared error of quantizing a signal
  uniform on ``[low, high]`` with the affine quantizer an observer builds from that range
"""

from __future__ import annotations

import numpy as np

from .spec import Case, Mistake, Question

CHAPTER = "05_quantization"
QUANT_MODULES = ("course_lib.quant", "course_lib.kernels.int8")
EPS = float(np.finfo(np.float32).eps)


# ----------------------------------------------------------------------------------
# 05.affine_qparams


def affine_qparams(x_min, x_max, quant_min, quant_max):
    """Reference: ``torch.ao.quantization.MinMaxObserver``'s affine rule, in float64."""
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    scale = max((hi - lo) / (quant_max - quant_min), EPS)
    zero_point = quant_min - int(np.rint(lo / scale))
    return float(scale), int(min(max(zero_point, quant_min), quant_max))


def qparams_cases(rng):
    def rnd(lo, hi):
        return float(rng.uniform(lo, hi))
    return [
        Case("a range around 0, quint8", (rnd(-3, -0.5), rnd(0.5, 4), 0, 255)),
        Case("positive values only (the range must be widened to 0)", (rnd(0.5, 2), rnd(3, 6), 0, 255)),
        Case("negative values only", (rnd(-6, -3), rnd(-2, -0.5), 0, 255)),
        Case("a qint8 range", (rnd(-2, -0.1), rnd(0.1, 2), -128, 127)),
        Case("4-bit codes 0..15, positive values", (rnd(1, 2), rnd(5, 9), 0, 15)),
        # min / scale = -2.5 and -3.5 exactly (scale 1): ties to even give z = 2 and z = 4
        Case("a tie: x_min / scale = -2.5", (-2.5, 252.5, 0, 255)),
        Case("a tie: x_min / scale = -3.5", (-3.5, 251.5, 0, 255)),
        Case("all zero (the scale is floored at eps)", (0.0, 0.0, 0, 255)),
    ]


def _qp(x_min, x_max, qmin, qmax, *, widen=True, levels=0, rounding=np.rint, eps=True, float_zp=False):
    lo, hi = (min(x_min, 0.0), max(x_max, 0.0)) if widen else (x_min, x_max)
    scale = (hi - lo) / (qmax - qmin + levels)
    if eps:
        scale = max(scale, EPS)
    zp = qmin - lo / scale if float_zp else qmin - int(rounding(lo / scale))
    zp = min(max(zp, qmin), qmax)
    return float(scale), (float(zp) if float_zp else int(zp))


def _qp_mistake(**flags):
    def impl(x_min, x_max, quant_min, quant_max):
        return _qp(x_min, x_max, quant_min, quant_max, **flags)
    return impl


AFFINE_QPARAMS = Question(
    id="05.affine_qparams", func="affine_qparams", reference=affine_qparams, make_cases=qparams_cases,
    output_names=("scale", "zero_point"), points=2, rtol=1e-9, atol=1e-12, reference_modules=QUANT_MODULES,
    mistakes=(
        Mistake("zero_not_in_range", "your range does not contain 0: widen it first, x_min = min(x_min, 0) and "
                "x_max = max(x_max, 0), so that the real number 0 has an exact code", _qp_mistake(widen=False)),
        Mistake("levels_off_by_one", "you divide by the number of codes (quant_max - quant_min + 1, e.g. 256): "
                "the range spans quant_max - quant_min steps (255)", _qp_mistake(levels=1)),
        Mistake("half_away_from_zero", "you round ties away from zero (-2.5 -> -3): PyTorch rounds ties to the "
                "even integer (np.rint, Python's round)",
                _qp_mistake(rounding=lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5))),
        Mistake("half_up", "you round ties up with floor(v + 0.5) (-3.5 -> -3): PyTorch rounds ties to the even "
                "integer (np.rint, Python's round)", _qp_mistake(rounding=lambda v: np.floor(v + 0.5))),
        Mistake("float_zero_point", "your zero_point is not rounded to an integer: it must be an integer code",
                _qp_mistake(float_zp=True)),
        Mistake("no_eps", "an all-zero range gives scale 0 (and a division by zero): floor the scale at eps",
                _qp_mistake(eps=False)),
    ),
)


# ----------------------------------------------------------------------------------
# 05.affine_int_matmul


def affine_int_matmul(x_q, x_zero_point, w_q, w_zero_point):
    """Reference: ``sum_p (x - z_x)(w - z_w)`` in int64 (exact)."""
    return (x_q.astype(np.int64) - x_zero_point) @ (w_q.astype(np.int64) - w_zero_point).T


def int_matmul_cases(rng):
    def case(name, n, k, m, *, extreme=False, zx=None, zw=None):
        x = rng.integers(0, 256, (n, k)).astype(np.uint8)
        w = rng.integers(-128, 128, (m, k)).astype(np.int8)
        if extreme:
            x[:] = 255
            w[0] = -128
            w[1:] = 127
        zx = int(rng.integers(1, 255)) if zx is None else zx
        zw = int(rng.integers(-100, 100)) if zw is None else zw
        return Case(name, (x, zx, w, zw))
    k = int(rng.integers(20, 60))
    return [
        case(f"random codes, k={k}", int(rng.integers(2, 6)), k, int(rng.integers(2, 6))),
        case("zero-points 0 (a symmetric weight)", 3, 16, 4, zx=0, zw=0),
        case("large k = 700: sums beyond int16", 2, 700, 3, zx=int(rng.integers(100, 200)), zw=int(rng.integers(-20, 20))),
        case("extreme codes, k = 300", 2, 300, 3, extreme=True, zx=0, zw=int(rng.integers(1, 5))),
        case("one row, one column", 1, int(rng.integers(5, 30)), 1),
    ]


def _im(x, zx, w, zw, *, acc=np.int64, sub_dtype=None, no_cross=False, no_w_zp=False, sign=1):
    if sub_dtype is not None:  # the subtraction done in the codes' own dtype: uint8 wraps around
        xs = (x - np.array(zx).astype(x.dtype)).astype(np.int64)
        ws = (w.astype(np.int64) - zw)
        return xs @ ws.T
    if no_cross or no_w_zp or sign != 1:
        x64, w64 = x.astype(np.int64), w.astype(np.int64)
        k = x.shape[1]
        out = x64 @ w64.T - zx * w64.sum(1)[None, :]
        if not no_w_zp:
            out = out - sign * zw * x64.sum(1)[:, None]
            if not no_cross:
                out = out + zx * zw * k
        return out
    return ((x.astype(acc) - acc(zx)).astype(acc) @ (w.astype(acc) - acc(zw)).T.astype(acc)).astype(acc)


def _im_mistake(**flags):
    def impl(x_q, x_zero_point, w_q, w_zero_point):
        return _im(x_q, x_zero_point, w_q, w_zero_point, **flags)
    return impl


AFFINE_INT_MATMUL = Question(
    id="05.affine_int_matmul", func="affine_int_matmul", reference=affine_int_matmul, make_cases=int_matmul_cases,
    output_names="acc", points=3, rtol=0.0, atol=0.0, reference_modules=QUANT_MODULES,
    mistakes=(
        Mistake("int16_accumulator", "your sums overflow: you accumulate in int16 (at most 32767); products of "
                "8-bit codes need int32 sums", _im_mistake(acc=np.int16)),
        Mistake("int8_accumulator", "your sums overflow: you compute in int8; products of 8-bit codes need "
                "int32 sums", _im_mistake(acc=np.int8)),
        Mistake("uint8_subtraction", "x_q - x_zero_point wraps around in uint8 (3 - 5 = 254): convert the codes "
                "to a wide signed type before subtracting", _im_mistake(sub_dtype=True)),
        Mistake("no_cross_term", "your expansion misses the constant term + k * x_zero_point * w_zero_point",
                _im_mistake(no_cross=True)),
        Mistake("no_weight_zero_point", "you ignore w_zero_point (the lecture's symmetric weights had 0): "
                "subtract it too", _im_mistake(no_w_zp=True)),
        Mistake("correction_sign", "the correction - w_zero_point * rowsum(x) has the wrong sign",
                _im_mistake(sign=-1)),
    ),
)


# ----------------------------------------------------------------------------------
# 05.fake_quant_grads


def fake_quant_grads(x, dout, scale, zero_point, quant_min, quant_max):
    """Reference: the straight-through gradients of fake quantization (LSQ for the scale)."""
    q = np.rint(x / scale) + zero_point
    inside = (q >= quant_min) & (q <= quant_max)
    dx = np.where(inside, dout, 0.0)
    term = np.where(q < quant_min, quant_min - zero_point,
                    np.where(q > quant_max, quant_max - zero_point, q - zero_point - x / scale))
    return dx, float(np.sum(dout * term))


def fq_cases(rng):
    def case(name, n, qmin, qmax, *, near_edges=False):
        scale = float(rng.uniform(0.05, 0.3))
        zp = int(rng.integers(qmin + 1, qmax))
        x = rng.uniform((qmin - zp - 4) * scale, (qmax - zp + 4) * scale, n)
        if near_edges:  # just outside the range, but rounding back onto its end codes
            x[:2] = np.array([qmax - zp + 0.3, qmin - zp - 0.3]) * scale
            x[2:4] = np.array([qmax - zp + 0.8, qmin - zp - 0.8]) * scale
        return Case(name, (x, rng.standard_normal(n), scale, zp, qmin, qmax))
    return [
        case("8-bit codes 0..255", int(rng.integers(20, 60)), 0, 255),
        case("4-bit codes 0..15: many values clipped", int(rng.integers(20, 60)), 0, 15),
        case("signed codes -8..7", 30, -8, 7),
        case("values just outside the range that round onto its ends", 12, 0, 15, near_edges=True),
        Case("a 2-d array", (rng.uniform(-1, 1, (3, 5)), rng.standard_normal((3, 5)), 0.2, 3, 0, 7)),
    ]


def _fq(x, dout, s, z, qmin, qmax, *, unrounded_mask=False, no_clip=False, clipped_zero_ds=False,
        no_ste_scale=False, ds_sign=1):
    v = x / s + z
    q = np.rint(x / s) + z
    test = v if unrounded_mask else q
    inside = (test >= qmin) & (test <= qmax)
    dx = dout.copy() if no_clip else np.where(inside, dout, 0.0)
    inner = q - z if no_ste_scale else q - z - x / s
    low, high = (0.0, 0.0) if clipped_zero_ds else (qmin - z, qmax - z)
    term = np.where(q < qmin, low, np.where(q > qmax, high, ds_sign * inner))
    return dx, float(np.sum(dout * term))


def _fq_mistake(**flags):
    def impl(x, dout, scale, zero_point, quant_min, quant_max):
        return _fq(x, dout, scale, zero_point, quant_min, quant_max, **flags)
    return impl


FAKE_QUANT_GRADS = Question(
    id="05.fake_quant_grads", func="fake_quant_grads", reference=fake_quant_grads, make_cases=fq_cases,
    output_names=("dx", "dscale"), points=3, rtol=1e-7, atol=1e-9, reference_modules=QUANT_MODULES,
    mistakes=(
        Mistake("not_zeroed_outside", "your dx passes the gradient where the value was clipped: it must be 0 "
                "outside [quant_min, quant_max]", _fq_mistake(no_clip=True)),
        Mistake("mask_before_rounding", "your mask tests x / scale + zero_point before rounding: a value that "
                "rounds onto quant_max is not clipped (use round(x / scale) + zero_point)",
                _fq_mistake(unrounded_mask=True)),
        Mistake("dscale_zero_when_clipped", "your dscale ignores the clipped values: there the output is "
                "scale * (quant_max - zero_point) (or quant_min), whose derivative is not 0",
                _fq_mistake(clipped_zero_ds=True)),
        Mistake("dscale_without_ste", "inside the range your dscale is (q - zero_point): with the STE, "
                "d round(x/s) / ds = -x / s^2 too, giving (q - zero_point) - x / scale",
                _fq_mistake(no_ste_scale=True)),
        Mistake("dscale_sign", "inside the range your dscale has the wrong sign: it is (q - zero_point) - x / scale",
                _fq_mistake(ds_sign=-1)),
    ),
)


# ----------------------------------------------------------------------------------
# 05.per_channel_scales


def per_channel_scales(W, bits):
    """Reference: symmetric per-output-channel scales (rows of W), PyTorch's rule."""
    return np.maximum(np.max(np.abs(W), axis=1) / ((2 ** bits - 1) / 2), EPS)


def pcs_cases(rng):
    def w(out, inp):
        W = rng.standard_normal((out, inp)) * rng.uniform(0.1, 2, (out, 1))
        W[0, 0] = -3 * np.abs(W[0]).max()  # a row whose largest magnitude is negative
        return W
    W0 = w(4, 6)
    W0[2] = 0.0
    return [
        Case("8 bits, 5 rows x 7 columns", (w(5, 7), 8)),
        Case("4 bits, 3 rows x 9 columns", (w(3, 9), 4)),
        Case("2 bits, 6 rows x 4 columns", (w(6, 4), 2)),
        Case("a row of zeros (floored at eps)", (W0, 8)),
    ]


def _pcs(W, bits, *, axis=1, denom=None, signed_max=False, eps=True):
    m = np.max(W, axis=axis) if signed_max else np.max(np.abs(W), axis=axis)
    d = (2 ** bits - 1) / 2 if denom is None else denom(bits)
    s = m / d
    return np.maximum(s, EPS) if eps else s


PER_CHANNEL_SCALES = Question(
    id="05.per_channel_scales", func="per_channel_scales", reference=per_channel_scales, make_cases=pcs_cases,
    output_names="scales", points=1, rtol=1e-9, atol=1e-15, reference_modules=QUANT_MODULES,
    mistakes=(
        Mistake("wrong_axis", "your scales run along the wrong axis: one scale per output channel, a row of W "
                "(reduce over axis 1)", lambda W, bits: _pcs(W, bits, axis=0)),
        Mistake("divide_by_127", "you divide by 2**(bits-1) - 1 (127): PyTorch divides by (2**bits - 1) / 2 "
                "(127.5)", lambda W, bits: _pcs(W, bits, denom=lambda b: 2 ** (b - 1) - 1)),
        Mistake("divide_by_128", "you divide by 2**(bits-1) (128): PyTorch divides by (2**bits - 1) / 2 (127.5)",
                lambda W, bits: _pcs(W, bits, denom=lambda b: 2 ** (b - 1))),
        Mistake("signed_max", "you take the largest value, not the largest magnitude: max(|W|) per row",
                lambda W, bits: _pcs(W, bits, signed_max=True)),
        Mistake("no_eps", "an all-zero row gets scale 0: floor the scales at eps", lambda W, bits: _pcs(W, bits, eps=False)),
    ),
)


# ----------------------------------------------------------------------------------
# 05.predicted_mse


def predicted_mse(bits, low, high):
    """Reference: s^2 / 12 with s from the range widened to contain 0."""
    s = (max(high, 0.0) - min(low, 0.0)) / (2 ** bits - 1)
    return s * s / 12


def mse_cases(rng):
    return [
        Case("8 bits, a range around 0", (8, float(rng.uniform(-2, -0.5)), float(rng.uniform(0.5, 3)))),
        Case("4 bits, a range around 0", (4, float(rng.uniform(-2, -0.5)), float(rng.uniform(0.5, 3)))),
        Case("6 bits, positive values only", (6, float(rng.uniform(1, 2)), float(rng.uniform(3, 5)))),
        Case("3 bits, negative values only", (3, float(rng.uniform(-5, -3)), float(rng.uniform(-2, -1)))),
        Case("2 bits", (2, -1.0, 1.0)),
    ]


def _pm(bits, low, high, *, widen=True, levels=0, div=12, square=True):
    lo, hi = (min(low, 0.0), max(high, 0.0)) if widen else (low, high)
    s = (hi - lo) / (2 ** bits - 1 + levels)
    return (s * s if square else s) / div


PREDICTED_MSE = Question(
    id="05.predicted_mse", func="predicted_mse", reference=predicted_mse, make_cases=mse_cases,
    output_names="mse", points=1, rtol=1e-9, atol=1e-15, reference_modules=QUANT_MODULES,
    mistakes=(
        Mistake("zero_not_in_range", "your step ignores that the observer widens the range to contain 0",
                lambda b, lo, hi: _pm(b, lo, hi, widen=False)),
        Mistake("levels_off_by_one", "you divide the range by 2**bits (the number of codes): it spans "
                "2**bits - 1 steps", lambda b, lo, hi: _pm(b, lo, hi, levels=1)),
        Mistake("max_error_squared", "you square the largest error s/2 (s^2/4): the error is uniform on "
                "[-s/2, s/2], its mean square is s^2/12", lambda b, lo, hi: _pm(b, lo, hi, div=4)),
        Mistake("variance_of_uniform_on_s", "s^2/3 is the mean square of a uniform error on [-s, s]: rounding "
                "errs by at most s/2", lambda b, lo, hi: _pm(b, lo, hi, div=3)),
        Mistake("not_squared", "your MSE is s/12, not s^2/12", lambda b, lo, hi: _pm(b, lo, hi, square=False)),
    ),
)

QUESTIONS = (AFFINE_QPARAMS, AFFINE_INT_MATMUL, FAKE_QUANT_GRADS, PER_CHANNEL_SCALES, PREDICTED_MSE)
