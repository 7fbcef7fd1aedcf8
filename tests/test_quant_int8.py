"""The int8 GEMM kernels (exact int32 equality with the NumPy twin; the VNNI kernel only where
the CPU has it, the readable kernel always) and the quantized Linear layers: dynamic quantization
bit-identical to torch's ``quantize_dynamic`` (fbgemm), static integer inference consistent with
its float simulation."""

import warnings

import numpy as np
import pytest
import torch

from course_lib import nn
from course_lib import quant as Q
from course_lib.data import load_digits_split
from course_lib.kernels import int8 as K

SHAPES = [(1, 1, 1), (5, 7, 33), (4, 4, 32), (37, 64, 10), (3, 130, 70), (64, 256, 96)]


def operands(rng, m, k, n, adtype):
    info = np.iinfo(adtype)
    a = rng.integers(info.min, info.max + 1, (m, k)).astype(adtype)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    a.flat[0], b.flat[0] = info.min, -128      # extremes: the largest products
    return a, b


@pytest.mark.parametrize("adtype", [np.int8, np.uint8])
def test_readable_kernel_equals_numpy_twin(adtype):
    rng = np.random.default_rng(0)
    for m, k, n in SHAPES:
        a, b = operands(rng, m, k, n, adtype)
        np.testing.assert_array_equal(K.int8_matmul_readable(a, b), K.int8_matmul_numpy(a, b))


def test_no_overflow_at_the_extremes():
    # 255 * 127 * 4096 = 132 644 864 needs 28 bits: int16 accumulation would wrap
    a = np.full((2, 4096), 255, np.uint8)
    b = np.full((4096, 3), 127, np.int8)
    expected = 255 * 127 * 4096
    assert np.all(K.int8_matmul_readable(a, b) == expected)
    assert np.all(Q.int8_matmul(a, b) == expected)
    assert np.all(K.int8_matmul_numpy(a, b) == expected)


@pytest.mark.skipif(not K.has_vnni(), reason="this CPU has no AVX-512 VNNI")
@pytest.mark.parametrize("adtype", [np.int8, np.uint8])
def test_vnni_kernel_equals_numpy_twin(adtype):
    rng = np.random.default_rng(1)
    for m, k, n in SHAPES:
        a, b = operands(rng, m, k, n, adtype)
        ref = K.int8_matmul_numpy(a, b)
        np.testing.assert_array_equal(K.int8_matmul_vnni(a, b), ref)
        np.testing.assert_array_equal(K.int8_matmul_vnni(a, K.pack_int8_weights(b)), ref)


def test_dispatch_falls_back_without_vnni(monkeypatch):
    rng = np.random.default_rng(2)
    a, b = operands(rng, 5, 9, 7, np.int8)
    monkeypatch.setattr(K, "has_vnni", lambda: False)
    np.testing.assert_array_equal(K.int8_matmul(a, b), K.int8_matmul_numpy(a, b))
    with pytest.raises(RuntimeError, match="VNNI"):
        K.int8_matmul_vnni(a, b)


def test_cpu_flags_are_read():
    flags = K.cpu_flags()
    assert isinstance(flags, frozenset)
    assert K.has_vnni() == ("avx512_vnni" in flags)


@pytest.mark.parametrize("bad,match", [
    (lambda a, b: (a.astype(np.int16), b), "a must be int8 or uint8"),
    (lambda a, b: (a, b.astype(np.uint8)), "b must"),
    (lambda a, b: (a, b[:-1]), "inner dimensions"),
    (lambda a, b: (a.astype(np.float32), b), "a must"),
])
def test_int8_matmul_bad_input(bad, match):
    a, b = operands(np.random.default_rng(3), 3, 4, 5, np.int8)
    with pytest.raises((TypeError, ValueError), match=match):
        Q.int8_matmul(*bad(a, b))


@pytest.fixture(scope="module")
def trained():
    d = load_digits_split(seed=0)
    net = nn.MLP([64, 32, 10], seed=0)
    nn.fit(net, d.X_train, d.y_train, lr=0.1, epochs=3)
    return d, net


@pytest.mark.parametrize("per_channel", [True, False])
def test_dynamic_quantized_mlp_bit_identical_to_torch(trained, per_channel):
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    d, net = trained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = {torch.nn.Linear: per_channel_dynamic_qconfig} if per_channel else {torch.nn.Linear}
        tq = quantize_dynamic(net.to_torch(), spec, dtype=torch.qint8)
    ours = Q.quantize_dynamic(net, per_channel=per_channel)
    np.testing.assert_array_equal(ours.layers[0].w_q, tq[0].weight().int_repr().numpy())
    X = np.concatenate([d.X_val, d.X_val[:5] * 30]).astype(np.float32)
    with torch.no_grad():
        ref = tq(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(ours(X), ref)
    # the twin (NumPy integer GEMM) gives the same numbers
    np.testing.assert_array_equal(Q.quantize_dynamic(net, per_channel=per_channel, backend="numpy")(X), ref)
    # the float32 epilogue without the fused multiply-add rounds differently somewhere
    lin = ours.layers[0]
    s, z = Q.choose_qparams_dynamic(float(X.min()), float(X.max()))
    acc = K.int8_matmul_numpy(Q.quantize_per_tensor(X, s, z, "quint8"), lin.w_q.T) - z * lin.w_q.astype(np.int32).sum(1)
    two_roundings = acc.astype(np.float32) * (s * lin.w_scales).astype(np.float32) + lin.bias
    assert np.any(two_roundings != lin.forward(X))


def test_dynamic_activation_qparams_match_torch_choose():
    rng = np.random.default_rng(4)
    for lo, hi in [(-1.0, 3.0), (0.5, 2.0), (-2.0, -0.1), (0.0, 0.0), (-1e-7, 2e-7), (-3.3, 0.7)]:
        for rr in (True, False):
            ts, tz = torch._choose_qparams_per_tensor(torch.tensor([lo, hi], dtype=torch.float32), rr)
            s, z = Q.choose_qparams_dynamic(lo, hi, reduce_range=rr)
            assert (float(np.float32(ts)), tz) == (float(s), z), (lo, hi, rr)
    del rng


def test_torchao_int8_dynamic_activation_close(trained):
    quantize_ = pytest.importorskip("torchao.quantization").quantize_
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig
    d, net = trained
    tm = net.to_torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_(tm, Int8DynamicActivationInt8WeightConfig())
    X = d.X_val.astype(np.float32)
    with torch.no_grad():
        ref = tm(torch.from_numpy(X)).numpy()
    ours = Q.quantize_dynamic(net)(X)
    flt = net.forward(X)
    # torchao quantizes activations per row with 8 bits, ours (like torch.ao) per tensor with 7
    # (reduce_range): both approximate the float model, torchao's more closely
    err_ao, err_ours = np.abs(ref - flt).mean(), np.abs(ours - flt).mean()
    assert err_ao < err_ours < 0.1
    assert np.mean(ref.argmax(1) == ours.argmax(1)) > 0.97


def test_static_integer_mlp_equals_its_fake_quant_simulation(trained):
    d, net = trained
    sim = Q.QuantMLP(net, w_bits=8, a_bits=8).calibrate(d.X_train)
    integer = sim.to_integer()
    logits_int = integer(d.X_val)
    logits_sim = sim(d.X_val)
    # the requantization rounds float32 products in another order: logits agree to a few codes
    s_out = integer.act_qparams[-1][0]
    assert np.max(np.abs(logits_int - logits_sim)) <= 3 * s_out
    assert np.mean(integer.predict(d.X_val) == sim.predict(d.X_val)) > 0.98
    np.testing.assert_array_equal(integer.predict(d.X_val), Q.IntegerMLP(integer.layers, integer.act_qparams,
                                                                         backend="numpy").predict(d.X_val))


def test_quantized_linear_requantizes_and_fuses_relu():
    rng = np.random.default_rng(5)
    W = rng.standard_normal((6, 8)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    x = rng.uniform(0, 2, (4, 8)).astype(np.float32)
    wq, ws, _ = Q.quantize_weight_per_channel(W)
    xq = Q.quantize_per_tensor(x, 2 / 255, 0, "quint8")
    y = (Q.dequantize(xq, 2 / 255, 0) @ (wq * ws[:, None]).T + b)
    s_y, z_y = 0.05, 100
    expect = np.clip(np.rint(y / s_y) + z_y, 0, 255)
    got = Q.quantized_linear(xq, 2 / 255, 0, wq, ws, b, s_y, z_y)
    assert np.max(np.abs(got.astype(int) - expect)) <= 1
    relu = Q.quantized_linear(xq, 2 / 255, 0, wq, ws, b, s_y, z_y, relu=True)
    assert relu.min() >= z_y and np.array_equal(np.maximum(got, z_y), relu)


def test_weight_per_channel_matches_torch_observer_and_codes():
    rng = np.random.default_rng(6)
    W = (rng.standard_normal((7, 9)) * rng.uniform(0.01, 2, (7, 1))).astype(np.float32)
    q, s, z = Q.quantize_weight_per_channel(W)
    obs = torch.ao.quantization.PerChannelMinMaxObserver(0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    obs(torch.from_numpy(W))
    ts, tz = obs.calculate_qparams()
    np.testing.assert_array_equal(s, ts.numpy())
    tq = torch.quantize_per_channel(torch.from_numpy(W), ts.double(), tz, 0, torch.qint8)
    np.testing.assert_array_equal(q, tq.int_repr().numpy())
    q4, s4, _ = Q.quantize_weight_per_channel(W, 4)
    assert q4.min() >= -8 and q4.max() <= 7 and np.allclose(s4, np.abs(W).max(1) / 7.5)
