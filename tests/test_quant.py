"""course_lib.quant without torch: formats and packing, bad input, binary weights, k-means
weight sharing, the straight-through estimator checked by finite differences, and QAT."""

import numpy as np
import pytest

from course_lib import nn
from course_lib import quant as Q
from course_lib.data import load_digits_split


# ---------------------------------------------------------------- bad input names the argument
@pytest.mark.parametrize("call,match", [
    (lambda: Q.quantize_per_tensor([1.0], 0.0, 0, "qint8"), "scale"),
    (lambda: Q.quantize_per_tensor([1.0], -1.0, 0, "qint8"), "scale"),
    (lambda: Q.quantize_per_tensor([1.0], float("nan"), 0, "qint8"), "scale"),
    (lambda: Q.quantize_per_tensor([1.0], float("inf"), 0, "qint8"), "scale"),
    (lambda: Q.quantize_per_tensor([1.0], 0.1, 128, "qint8"), "zero_point"),
    (lambda: Q.quantize_per_tensor([1.0], 0.1, -1, "quint8"), "zero_point"),
    (lambda: Q.quantize_per_tensor([1.0], 0.1, 0, "int8"), "dtype"),
    (lambda: Q.quantize_per_channel(np.ones((2, 3)), [0.1, 0.1], [0, 0], 2, "qint8"), "axis"),
    (lambda: Q.quantize_per_channel(np.ones((2, 3)), [0.1, 0.1], [0, 0], -1, "qint8"), "axis"),
    (lambda: Q.quantize_per_channel(np.ones((2, 3)), [0.1, 0.0], [0, 0], 0, "qint8"), "scales"),
    (lambda: Q.quantize_per_channel(np.ones((2, 3)), [0.1, 0.1, 0.1], [0, 0], 0, "qint8"), "scales"),
    (lambda: Q.quantize_per_channel(np.ones((2, 3)), [0.1, 0.1], [0, 300], 0, "quint8"), "zero_points"),
    (lambda: Q.MinMaxObserver("qint8", "per_tensor_magic"), "qscheme"),
    (lambda: Q.MinMaxObserver("qint8", "per_channel_affine"), "qscheme"),
    (lambda: Q.MinMaxObserver("qint8", quant_min=5, quant_max=5), "quant_min"),
    (lambda: Q.MinMaxObserver("qint8", quant_min=1, quant_max=100), "contain 0"),
    (lambda: Q.MinMaxObserver("quint8", quant_min=0, quant_max=256), "fit"),
    (lambda: Q.MinMaxObserver("qint8", eps=0.0), "eps"),
    (lambda: Q.choose_qparams(2.0, 1.0), "min_val"),
    (lambda: Q.fake_quant_forward([1.0], 0.1, 0, 10, 10), "quant_min"),
    (lambda: Q.fake_quant_forward([1.0], 0.1, 20, 0, 15), "zero_point"),
    (lambda: Q.fake_quant_forward([1.0], 0.0, 0, 0, 15), "scale"),
    (lambda: Q.fake_quant_per_channel_forward(np.ones((2, 2)), [0.1, 0.1], [0, 0], 3, 0, 255), "axis"),
    (lambda: Q.kmeans_codebook(np.ones((2, 2)), 1), "n_clusters"),
    (lambda: Q.binarize(np.ones((2, 2)), "column"), "scale"),
    (lambda: Q.pack_bits([0, 16], 4), "codes"),
    (lambda: Q.QuantMLP(nn.MLP([4, 3]), w_bits=1), "w_bits"),
    (lambda: Q.QuantMLP(nn.MLP([4, 3]), weights="ternary"), "weights"),
])
def test_bad_input_raises_naming_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_zero_point_must_be_an_integer():
    with pytest.raises(TypeError, match="zero_point"):
        Q.quantize_per_tensor([1.0], 0.1, 3.0, "qint8")


# ---------------------------------------------------------------- the affine map's error
def test_error_at_most_half_a_step_inside_the_range_and_saturation_outside():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 10000).astype(np.float32)
    s, z = Q.choose_qparams(-1.0, 1.0, "quint8")
    xh = Q.dequantize(Q.quantize_per_tensor(x, s[0], z[0], "quint8"), s[0], z[0])
    assert np.max(np.abs(xh - x)) <= s[0] / 2 * (1 + 1e-5)
    assert np.abs(np.mean((xh - x) ** 2) - s[0] ** 2 / 12) < 0.1 * s[0] ** 2 / 12   # uniform error: s^2/12
    far = Q.quantize_per_tensor(np.array([1e9, -1e9], np.float32), s[0], z[0], "quint8")
    np.testing.assert_array_equal(far, [255, 0])


def test_zero_is_exactly_representable():
    for lo, hi in [(0.3, 2.0), (-5.0, -0.2), (-0.7, 3.1)]:
        s, z = Q.choose_qparams(lo, hi, "quint8")
        assert Q.dequantize(Q.quantize_per_tensor([0.0], s[0], z[0], "quint8"), s[0], z[0])[0] == 0.0


# ---------------------------------------------------------------- formats and sizes
def test_pack_bits_round_trip_and_sizes():
    rng = np.random.default_rng(1)
    for bits in (1, 2, 4, 8):
        codes = rng.integers(0, 2 ** bits, 1001)
        packed = Q.pack_bits(codes, bits)
        assert packed.nbytes == -(-1001 * bits // 8)
        np.testing.assert_array_equal(Q.unpack_bits(packed, bits, 1001), codes)
    W = [np.zeros((64, 64)), np.zeros(64)]
    assert [Q.packed_nbytes(W, b) for b in (32, 16, 8, 4, 1)] == [4160 * 4, 4160 * 2, 4160, 2080, 520]


def test_float16_loses_range_bfloat16_loses_precision():
    x = np.array([70000.0, 1 + 2.0 ** -9], np.float32)
    f16, bf16 = Q.to_float16(x), Q.to_bfloat16(x)
    assert np.isinf(f16[0]) and f16[1] == np.float32(1 + 2.0 ** -9)
    assert np.isfinite(bf16[0]) and bf16[1] == 1.0


# ---------------------------------------------------------------- observers (behaviour)
def test_observer_before_any_data_warns_and_returns_defaults():
    with pytest.warns(UserWarning, match="observer"):
        s, z = Q.MinMaxObserver().calculate_qparams()
    assert s[0] == 1.0 and z[0] == 0


def test_percentile_range_ignores_outliers():
    x = np.concatenate([np.linspace(-1, 1, 10000), [50.0]])
    lo, hi = Q.percentile_range(x, 99.9)
    assert hi < 1.1 and lo > -1.1
    assert Q.percentile_range(x, 100) == (-1.0, 50.0)


# ---------------------------------------------------------------- straight-through estimator
def test_ste_gradient_is_identity_inside_zero_outside():
    x = np.array([-3.0, -0.5, 0.0, 0.26, 0.7, 5.0], np.float32)
    out, cache = Q.fake_quant_forward(x, 0.1, 10, 0, 20)     # representable range [-1, 1]
    np.testing.assert_allclose(out, [-1.0, -0.5, 0.0, 0.3, 0.7, 1.0], atol=1e-6)
    np.testing.assert_array_equal(Q.fake_quant_backward(np.ones(6, np.float32), cache), [0, 1, 1, 1, 1, 0])


# ---------------------------------------------------------------- binary weights
def test_xnor_scale_is_the_least_squares_optimum():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((5, 40)).astype(np.float32)
    alpha = Q.xnor_scale(W)
    sign = np.where(W >= 0, 1.0, -1.0)
    for j in range(5):
        grid = np.linspace(0.5 * alpha[j], 1.5 * alpha[j], 201)
        errs = [np.sum((W[j] - a * sign[j]) ** 2) for a in grid]
        assert abs(grid[int(np.argmin(errs))] - alpha[j]) <= grid[1] - grid[0]
    np.testing.assert_array_equal(Q.binarize(W, None), sign)
    assert Q.binarize(np.zeros((1, 2), np.float32), None).tolist() == [[1.0, 1.0]]


def test_binary_ste_clips_large_shadow_weights():
    W = np.array([[0.5, -2.0, 1.0]], np.float32)
    _, cache = Q.binarize_forward(W)
    np.testing.assert_array_equal(Q.binarize_backward(np.ones((1, 3), np.float32), cache), [[1, 0, 1]])


# ---------------------------------------------------------------- k-means weight sharing
def test_kmeans_finds_the_clusters_and_sums_gradients():
    rng = np.random.default_rng(3)
    centres = np.array([-1.0, 0.0, 2.0])
    W = (centres[rng.integers(0, 3, (20, 30))] + rng.normal(0, 0.01, (20, 30))).astype(np.float32)
    codebook, idx = Q.kmeans_codebook(W, 3)
    np.testing.assert_allclose(codebook, centres, atol=0.01)
    assert idx.dtype == np.uint8 and idx.shape == W.shape
    assert np.max(np.abs(codebook[idx] - W)) < 0.06
    dW = rng.standard_normal(W.shape)
    g = Q.codebook_gradient(dW, idx, 3)
    np.testing.assert_allclose(g, [dW[idx == c].sum() for c in range(3)])


def test_kmeans_beats_uniform_levels_on_bell_shaped_weights():
    rng = np.random.default_rng(4)
    W = rng.standard_normal((64, 64)).astype(np.float32)
    km = Q.kmeans_quantize(W, 8)
    lo, hi = W.min(), W.max()
    uniform = lo + np.rint((W - lo) / ((hi - lo) / 7)) * ((hi - lo) / 7)
    assert np.mean((km - W) ** 2) < 0.7 * np.mean((uniform - W) ** 2)


# ---------------------------------------------------------------- QuantMLP
@pytest.fixture(scope="module")
def digits_net():
    d = load_digits_split(seed=0)
    net = nn.MLP([64, 32, 10], seed=0)
    nn.fit(net, d.X_train, d.y_train, lr=0.1, epochs=3)
    return d, net


def test_quant_mlp_with_float_weights_is_the_mlp_forward_and_backward(digits_net):
    # with float weights and activations the QuantMLP is the MLP: same logits, same gradients
    d, net = digits_net
    m = Q.QuantMLP(net, weights="float")
    X, y = d.X_train[:16], d.y_train[:16]
    np.testing.assert_allclose(m(X), net(X), rtol=1e-6, atol=1e-6)
    from course_lib.losses import softmax_cross_entropy
    _, dl = softmax_cross_entropy(net(X), y)
    net.backward(dl)
    m(X)
    m.backward(dl)
    for a, b in zip(m.grads, net.grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_quant_mlp_weight_gradient_is_straight_through(digits_net):
    d, net = digits_net
    m = Q.QuantMLP(net, w_bits=4)
    X = d.X_train[:8]
    out = m(X)
    dout = np.ones_like(out)
    m.backward(dout)
    # STE: the gradient w.r.t. the float weight is the gradient w.r.t. the quantized weight (where not clipped)
    Wq, cache = m.quantized_weight(1)
    h = np.maximum(nn.linear_forward(X, m.quantized_weight(0)[0], m.b[0])[0], 0)
    np.testing.assert_allclose(m.gW[1], np.where(cache, dout.T @ h, 0), rtol=1e-5, atol=1e-5)


def test_ptq_8_bit_keeps_accuracy_and_qat_trains(digits_net):
    d, net = digits_net
    acc_float = nn.evaluate(net, d.X_val, d.y_val)[1]
    ptq = Q.QuantMLP(net, w_bits=8, a_bits=8).calibrate(d.X_train)
    assert nn.evaluate(ptq, d.X_val, d.y_val)[1] >= acc_float - 0.02
    qat = Q.QuantMLP(net, w_bits=4, a_bits=8)
    before = [p.copy() for p in qat.params]
    nn.fit(qat, d.X_train, d.y_train, lr=0.05, epochs=1)
    assert all(not np.array_equal(a, b) for a, b in zip(before, qat.params))
    assert qat.observers[0].min_val is not None
