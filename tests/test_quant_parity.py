"""Parity with PyTorch, bit for bit: quantized codes, dequantized values, observers' qparams,
fake quantization (value and autograd gradient) and bfloat16 rounding.

The inputs are built to hit the cases that trip implementations: values exactly halfway
between two levels (with odd and even zero-points), values far outside the range
(saturation), constant inputs (all zero, all positive), single-signed ranges, and the
smallest codes' neighbourhood.  Each test also shows that a plausible wrong rule (the
textbook ``round(x / s) + z``, rounding half away from zero, rounding before adding the
zero-point) disagrees with torch on the same inputs, so the comparison can fail.
"""

import warnings

import numpy as np
import pytest
import torch

from course_lib import quant as Q

warnings.filterwarnings("ignore", message=".*quantize.*deprecated.*")
TORCH_DTYPES = {"qint8": torch.qint8, "quint8": torch.quint8}
TORCH_QSCHEMES = {"per_tensor_affine": torch.per_tensor_affine, "per_tensor_symmetric": torch.per_tensor_symmetric,
                  "per_channel_affine": torch.per_channel_affine,
                  "per_channel_symmetric": torch.per_channel_symmetric}


def tricky_values(rng, scale, n=4000):
    """Random values around the range, exact halfway values k + 1/2 (in units of scale),
    and far-out values that must saturate."""
    s = np.float32(scale)
    k = rng.integers(-300, 300, n)
    halfway = ((k + 0.5) * s).astype(np.float32)
    spread = (rng.standard_normal(n) * 80 * s).astype(np.float32)
    far = np.array([1e6, -1e6, 1e3 * s, -1e3 * s, 0.0, -0.0], dtype=np.float32)
    return np.concatenate([halfway, spread, far])


def textbook(x, scale, zp, lo, hi):
    return np.clip(np.floor(x.astype(np.float64) / scale + 0.5) + zp, lo, hi)


@pytest.mark.parametrize("dtype", ["qint8", "quint8"])
def test_quantize_per_tensor_bit_identical(dtype):
    rng = np.random.default_rng(0)
    _, lo, hi = Q.QDTYPES[dtype]
    textbook_disagrees = 0
    for trial in range(30):
        scale = float(rng.uniform(1e-3, 0.5))
        zp = int(rng.integers(lo, hi + 1)) if trial % 2 else int(rng.integers(lo // 2, hi // 2)) * 2 + 1
        x = tricky_values(rng, scale)
        ours = Q.quantize_per_tensor(x, scale, zp, dtype)
        ref = torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, TORCH_DTYPES[dtype])
        assert ours.dtype == (np.int8 if dtype == "qint8" else np.uint8)
        np.testing.assert_array_equal(ours, ref.int_repr().numpy())
        np.testing.assert_array_equal(Q.dequantize(ours, scale, zp), ref.dequantize().numpy())
        textbook_disagrees += int(np.sum(textbook(x, scale, zp, lo, hi) != ours))
    assert textbook_disagrees > 100  # the halfway values separate the rules


def test_quantize_per_tensor_rounds_the_fused_sum():
    # x * inv = k + 1/2 exactly, odd zero-point: torch rounds k + 1/2 + z to the even code
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5], dtype=np.float32)
    for zp in (0, 1, 3):
        ref = torch.quantize_per_tensor(torch.from_numpy(x), 1.0, zp, torch.quint8 if zp else torch.qint8)
        ours = Q.quantize_per_tensor(x, 1.0, zp, "quint8" if zp else "qint8")
        np.testing.assert_array_equal(ours, ref.int_repr().numpy())
    np.testing.assert_array_equal(Q.quantize_per_tensor(x, 1.0, 1, "quint8"), [2, 2, 4, 0, 0])


@pytest.mark.parametrize("dtype", ["qint8", "quint8"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_quantize_per_channel_bit_identical(dtype, axis):
    rng = np.random.default_rng(axis)
    _, lo, hi = Q.QDTYPES[dtype]
    shape = [3, 4, 5]
    C = shape[axis]
    scales = rng.uniform(1e-3, 0.3, C)
    zps = rng.integers(lo, hi + 1, C)
    zps[0] = lo + 1 if lo % 2 == 0 else lo  # an odd zero-point
    x = np.moveaxis((rng.standard_normal((C, 200)) * 50 * scales[:, None]).astype(np.float32), 0, -1)
    base = np.moveaxis(x.reshape(10, 20, C), -1, axis)
    halfway = np.moveaxis(((rng.integers(-200, 200, (10, 20, C)) + 0.5) * scales.astype(np.float32)).astype(np.float32), -1, axis)
    for xin in (base, halfway, base * np.float32(100)):
        xin = np.ascontiguousarray(xin, dtype=np.float32)
        ours = Q.quantize_per_channel(xin, scales, zps, axis, dtype)
        ref = torch.quantize_per_channel(torch.from_numpy(xin), torch.from_numpy(scales), torch.from_numpy(zps),
                                         axis, TORCH_DTYPES[dtype])
        np.testing.assert_array_equal(ours, ref.int_repr().numpy())
        np.testing.assert_array_equal(Q.dequantize_per_channel(ours, scales, zps, axis), ref.dequantize().numpy())
    # the per-tensor (fused) rule is not the per-channel rule: they differ on some halfway values
    one = tricky_values(rng, 0.01)
    zp = (lo + hi) // 2 | 1  # odd, mid-range
    fused = Q.quantize_per_tensor(one, 0.01, zp, dtype)
    twice = Q.quantize_per_channel(one[None], [0.01], [zp], 1 - 1, dtype)[0]
    assert np.any(fused != twice)


def observer_inputs(rng):
    return {
        "random": (rng.standard_normal((8, 16)) * 2 + 0.3).astype(np.float32),
        "all zero": np.zeros((4, 5), np.float32),
        "positive only": rng.uniform(0.5, 3.0, (6, 7)).astype(np.float32),
        "negative only": -rng.uniform(0.1, 2.0, (6, 7)).astype(np.float32),
        "constant": np.full((3, 3), 1.7, np.float32),
        "tiny": (rng.standard_normal((5, 5)) * 1e-9).astype(np.float32),
    }


OBS_CONFIGS = [(d, qs, rr, qmin, qmax)
               for d in ("qint8", "quint8") for qs in ("per_tensor_affine", "per_tensor_symmetric")
               for rr in (False, True) for qmin, qmax in ((None, None), (0, 15), (-8, 7))
               if not (d == "quint8" and qs == "per_tensor_symmetric" and rr)
               and not (d == "quint8" and qmin is not None and qmin < 0)]


@pytest.mark.parametrize("dtype,qscheme,reduce_range,quant_min,quant_max", OBS_CONFIGS)
def test_minmax_observer_qparams_match_torch(dtype, qscheme, reduce_range, quant_min, quant_max):
    rng = np.random.default_rng(1)
    kw = dict(reduce_range=reduce_range, quant_min=quant_min, quant_max=quant_max)
    for name, x in observer_inputs(rng).items():
        ours = Q.MinMaxObserver(dtype, qscheme, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = torch.ao.quantization.MinMaxObserver(dtype=TORCH_DTYPES[dtype], qscheme=TORCH_QSCHEMES[qscheme], **kw)
        for part in np.array_split(x, 2):
            ours(part)
            ref(torch.from_numpy(part))
        s, z = ours.calculate_qparams()
        rs, rz = ref.calculate_qparams()
        assert s.dtype == np.float32 and z.dtype == np.int64 and s.shape == z.shape == (1,), name
        np.testing.assert_array_equal(s, rs.numpy(), err_msg=name)
        np.testing.assert_array_equal(z, rz.numpy(), err_msg=name)
        assert (ours.quant_min, ours.quant_max) == (ref.quant_min, ref.quant_max)


def test_all_zero_input_gives_eps_scale_and_quant_min():
    for dtype, qmin in (("quint8", 0), ("qint8", -128)):
        obs = Q.MinMaxObserver(dtype)
        obs(np.zeros(7))
        s, z = obs.calculate_qparams()
        assert s[0] == np.finfo(np.float32).eps and z[0] == qmin


def test_symmetric_scale_divides_by_127_5():
    s, z = Q.choose_qparams(-1.0, 2.55, "qint8", "per_tensor_symmetric")
    assert s[0] == np.float32(2.55) / np.float32(127.5) and z[0] == 0
    s, z = Q.choose_qparams(-1.0, 2.55, "quint8", "per_tensor_symmetric")
    assert z[0] == 128


def test_moving_average_observer_matches_torch():
    rng = np.random.default_rng(2)
    for dtype, qscheme in (("quint8", "per_tensor_affine"), ("qint8", "per_tensor_symmetric")):
        ours = Q.MovingAverageMinMaxObserver(0.1, dtype, qscheme)
        ref = torch.ao.quantization.MovingAverageMinMaxObserver(0.1, dtype=TORCH_DTYPES[dtype],
                                                                qscheme=TORCH_QSCHEMES[qscheme])
        for step in range(20):
            x = (rng.standard_normal(50) * (1 + step / 5) + step / 10).astype(np.float32)
            ours(x)
            ref(torch.from_numpy(x))
            assert ours.min_val == ref.min_val.item() and ours.max_val == ref.max_val.item()
        s, z = ours.calculate_qparams()
        rs, rz = ref.calculate_qparams()
        np.testing.assert_array_equal(s, rs.numpy())
        np.testing.assert_array_equal(z, rz.numpy())


@pytest.mark.parametrize("dtype", ["qint8", "quint8"])
@pytest.mark.parametrize("qscheme", ["per_channel_affine", "per_channel_symmetric"])
@pytest.mark.parametrize("ch_axis", [0, 1])
def test_per_channel_observer_matches_torch(dtype, qscheme, ch_axis):
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((6, 9, 2)) * rng.uniform(0.01, 3, (6, 1, 1))).astype(np.float32)
    w[1] = np.abs(w[1])   # a positive-only channel (ch_axis 0)
    w[2] = 0.0            # an all-zero channel
    w[:, 3] = -np.abs(w[:, 3])
    ours = Q.PerChannelMinMaxObserver(ch_axis, dtype, qscheme)
    ref = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis, dtype=TORCH_DTYPES[dtype], qscheme=TORCH_QSCHEMES[qscheme])
    for part in (w, w * np.float32(0.5) + np.float32(0.1)):
        ours(part)
        ref(torch.from_numpy(np.ascontiguousarray(part)))
    s, z = ours.calculate_qparams()
    rs, rz = ref.calculate_qparams()
    np.testing.assert_array_equal(s, rs.numpy())
    np.testing.assert_array_equal(z, rz.numpy())


def test_torch_refuses_quint8_symmetric_reduce_range_and_so_do_we():
    with pytest.raises(NotImplementedError):
        torch.ao.quantization.MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric, reduce_range=True)
    with pytest.raises(ValueError, match="reduce_range"):
        Q.MinMaxObserver("quint8", "per_tensor_symmetric", reduce_range=True)


def test_torchao_choose_qparams_affine_agrees():
    torchao_q = pytest.importorskip("torchao.quantization.quant_primitives")
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((4, 32)) + 0.4).astype(np.float32)
    t = torch.from_numpy(x)
    for mapping, qscheme, dtype, (lo, hi) in ((torchao_q.MappingType.ASYMMETRIC, "per_tensor_affine", "quint8", (0, 255)),
                                              (torchao_q.MappingType.SYMMETRIC, "per_tensor_symmetric", "qint8", (-128, 127))):
        tdtype = torch.uint8 if dtype == "quint8" else torch.int8
        s, z = torchao_q.choose_qparams_affine(t, mapping, x.shape, tdtype, lo, hi, eps=Q.FLOAT32_EPS,
                                               scale_dtype=torch.float32, zero_point_dtype=torch.int64)
        ours_s, ours_z = Q.choose_qparams(x.min(), x.max(), dtype, qscheme)
        np.testing.assert_array_equal(ours_s, s.reshape(-1).numpy())
        if mapping == torchao_q.MappingType.ASYMMETRIC:
            np.testing.assert_array_equal(ours_z, z.reshape(-1).numpy())
            q = torchao_q.quantize_affine(t, x.shape, s, z, tdtype, lo, hi)
            # torchao rounds x / scale (a true division) then adds z: codes agree except on rare ties
            ours_q = Q.quantize_per_tensor(x, float(ours_s[0]), int(ours_z[0]), dtype)
            assert np.mean(ours_q != q.numpy()) < 0.01


def fake_inputs(rng, scale):
    return tricky_values(rng, scale, 1500)


@pytest.mark.parametrize("qmin,qmax", [(0, 255), (-128, 127), (0, 15), (-8, 7)])
def test_fake_quant_per_tensor_value_and_gradient(qmin, qmax):
    rng = np.random.default_rng(5)
    for trial in range(8):
        scale = float(rng.uniform(1e-3, 0.2))
        zp = int(rng.integers(qmin, qmax + 1)) if trial % 2 else qmin + 1
        x = fake_inputs(rng, scale)
        dout = rng.standard_normal(x.shape).astype(np.float32)
        t = torch.from_numpy(x).requires_grad_(True)
        y = torch.fake_quantize_per_tensor_affine(t, scale, zp, qmin, qmax)
        y.backward(torch.from_numpy(dout))
        out, cache = Q.fake_quant_forward(x, scale, zp, qmin, qmax)
        np.testing.assert_array_equal(out, y.detach().numpy())
        dx = Q.fake_quant_backward(dout, cache)
        np.testing.assert_array_equal(dx, t.grad.numpy())
        assert np.any(dx == 0) and np.any(dx != 0)  # some clipped, some passed straight through


def test_fake_quant_rounds_before_adding_the_zero_point():
    x = np.array([0.5, 1.5, 2.5], dtype=np.float32)
    ref = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), 1.0, 1, 0, 255).numpy()
    np.testing.assert_array_equal(Q.fake_quantize_per_tensor_affine(x, 1.0, 1, 0, 255), ref)
    np.testing.assert_array_equal(ref, [0.0, 2.0, 2.0])          # rint(x) + 1 - 1
    assert not np.array_equal(Q.dequantize(Q.quantize_per_tensor(x, 1.0, 1, "quint8"), 1.0, 1), ref)


@pytest.mark.parametrize("axis", [0, 1])
def test_fake_quant_per_channel_value_and_gradient(axis):
    rng = np.random.default_rng(6)
    C = (5, 7)[axis]
    scales = rng.uniform(1e-3, 0.1, C).astype(np.float32)
    zps = rng.integers(-128, 128, C)
    x = (rng.standard_normal((5, 7)) * 10 * (scales[:, None] if axis == 0 else scales[None])).astype(np.float32)
    x.flat[::4] = ((rng.integers(-100, 100, x.flat[::4].size) + 0.5) * scales.min()).astype(np.float32)
    x[0, 0] = 1e4
    dout = rng.standard_normal(x.shape).astype(np.float32)
    t = torch.from_numpy(x).requires_grad_(True)
    y = torch.fake_quantize_per_channel_affine(t, torch.from_numpy(scales), torch.from_numpy(zps.astype(np.int32)),
                                               axis, -128, 127)
    y.backward(torch.from_numpy(dout))
    out, cache = Q.fake_quant_per_channel_forward(x, scales, zps, axis, -128, 127)
    np.testing.assert_array_equal(out, y.detach().numpy())
    np.testing.assert_array_equal(Q.fake_quant_backward(dout, cache), t.grad.numpy())


def test_bfloat16_and_float16_rounding_match_torch():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(5000) * 10.0 ** rng.integers(-8, 8, 5000),
                        [1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, 70000.0, 1e-8, np.inf, -np.inf]]).astype(np.float32)
    ref = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(Q.to_bfloat16(x), ref)
    np.testing.assert_array_equal(Q.to_float16(x), torch.from_numpy(x).half().float().numpy())
    assert Q.to_bfloat16(np.float32(1 + 2.0 ** -8)) == 1.0           # tie to even (down)
    assert Q.to_bfloat16(np.float32(1 + 3 * 2.0 ** -8)) == 1 + 2.0 ** -6  # tie to even (up)
    assert Q.FLOAT_FORMATS["bfloat16"]["max"] == torch.finfo(torch.bfloat16).max
    assert Q.FLOAT_FORMATS["float16"]["max"] == torch.finfo(torch.float16).max
