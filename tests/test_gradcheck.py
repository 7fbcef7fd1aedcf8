"""course_lib.gradcheck: numerical gradients are right, and wrong backward passes get caught."""

import numpy as np
import pytest

from course_lib import nn
from course_lib.gradcheck import check_layer, gradcheck, numerical_gradient
from course_lib.losses import softmax_cross_entropy


def test_numerical_gradient_of_known_functions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v ** 3), x), 3 * x ** 2,
                               rtol=1e-8, atol=1e-10)
    A = rng.standard_normal((5, 5))
    v = rng.standard_normal(5)
    np.testing.assert_allclose(numerical_gradient(lambda z: z @ A @ z, v), (A + A.T) @ v,
                               rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(numerical_gradient(lambda z: np.sin(z).sum(), v), np.cos(v),
                               rtol=1e-8, atol=1e-10)


def test_numerical_gradient_is_centred():
    # f = x^3 at x = 1: centred (f(1+h) - f(1-h)) / 2h = 3 + h^2 exactly; one-sided would be 3 + 3h
    g = numerical_gradient(lambda z: float(z[0] ** 3), np.array([1.0]), h=1e-2)
    assert abs(g[0] - 3.0001) < 1e-9


def test_numerical_gradient_restores_x_and_allows_closures():
    x = np.random.default_rng(1).standard_normal(6)
    before = x.copy()
    seen = []
    g = numerical_gradient(lambda _: seen.append(x.copy()) or float(x @ x), x)  # reads x by closure
    assert np.array_equal(x, before)  # bit-for-bit
    np.testing.assert_allclose(g, 2 * before, rtol=1e-8)
    assert len(seen) == 12 and g.dtype == np.float64 and g.shape == x.shape
    # f returning (loss, grad) like course_lib.losses is accepted
    y = np.array([0, 2])
    z = np.random.default_rng(2).standard_normal((2, 3))
    _, dz = softmax_cross_entropy(z, y)
    np.testing.assert_allclose(numerical_gradient(lambda t: softmax_cross_entropy(t, y), z), dz,
                               rtol=1e-7, atol=1e-10)


def test_numerical_gradient_bad_input():
    with pytest.raises(TypeError, match="x must be a NumPy array"):
        numerical_gradient(lambda v: 0.0, [1.0, 2.0])
    with pytest.raises(TypeError, match="x must have a dtype of kind"):
        numerical_gradient(lambda v: 0.0, np.arange(3))
    with pytest.raises(ValueError, match="h must be a finite number > 0"):
        numerical_gradient(lambda v: 0.0, np.zeros(3), h=0)
    with pytest.raises(ValueError, match=r"f must return a scalar, got an array of shape \(3,\)"):
        numerical_gradient(lambda v: v * 2, np.zeros(3))


def test_gradcheck_multiple_inputs():
    rng = np.random.default_rng(3)
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    y = np.array([0, 1, 1, 0])

    def loss(x, W, b):
        return softmax_cross_entropy(nn.linear_forward(x, W, b)[0], y)[0]

    out, cache = nn.linear_forward(x, W, b)
    _, dout = softmax_cross_entropy(out, y)
    errs = gradcheck(loss, [x, W, b], list(nn.linear_backward(dout, cache)))
    assert len(errs) == 3 and max(errs) < 1e-7
    # a wrong gradient (db without the sum over the batch) is caught
    _, dW_ok, _ = nn.linear_backward(dout, cache)
    errs = gradcheck(lambda W, b: loss(x, W, b), [W, b], [dW_ok, dout.mean(axis=0)])
    assert errs[0] < 1e-7 and errs[1] > 0.1
    with pytest.raises(ValueError, match="grads must have one entry per input"):
        gradcheck(loss, [x, W, b], [dW_ok])
    with pytest.raises(ValueError, match=r"grads\[0\] must have shape \(4, 3\)"):
        gradcheck(loss, [x], [dW_ok])


@pytest.mark.parametrize("layer", [nn.Linear(5, 4, dtype=np.float64), nn.ReLU(), nn.Tanh(), nn.Sigmoid(),
                                   nn.MLP([5, 6, 3], "relu", dtype=np.float64),
                                   nn.MLP([5, 6, 4, 3], "tanh", dtype=np.float64),
                                   nn.MLP([5, 6, 4, 3], "sigmoid", dtype=np.float64, seed=2)],
                         ids=lambda m: type(m).__name__ + str(getattr(m, "sizes", "")))
def test_check_layer_passes_correct_layers(layer):
    x = np.random.default_rng(4).standard_normal((3, 5))
    errs = check_layer(layer, x)
    assert set(errs) == {"x"} | {name for name, _ in layer.named_parameters()}
    assert max(errs.values()) < 1e-6, errs


class _BiasNotSummed(nn.Linear):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grad_bias[:] = dout[0]  # forgot the sum over the batch
        return dx


class _TanhWrongDerivative(nn.Tanh):
    def backward(self, dout):
        return dout * (1 - self._cache)  # 1 - tanh instead of 1 - tanh^2


def test_check_layer_catches_wrong_backward():
    x = np.random.default_rng(5).standard_normal((3, 5))
    errs = check_layer(_BiasNotSummed(5, 4, dtype=np.float64), x)
    assert errs["weight"] < 1e-6 and errs["bias"] > 0.1
    assert check_layer(_TanhWrongDerivative(), x)["x"] > 0.1
    assert check_layer(nn.ReLU(), x)["x"] < 1e-9


def test_relu_kink_defeats_finite_differences():
    # at x = 0 the centred difference sees (h - 0) / 2h = 1/2: neither torch's 0 nor 1,
    # so a check fails there even for a correct ReLU. Check away from kinks (|x| > h).
    x = np.array([[0.0, 1.0, -1.0]])
    num = numerical_gradient(lambda v: float(nn.relu_forward(v)[0].sum()), x)
    np.testing.assert_allclose(num, [[0.5, 1.0, 0.0]], rtol=1e-9)
    assert check_layer(nn.ReLU(), x)["x"] > 0.1


def test_check_layer_needs_float64():
    with pytest.raises(TypeError, match="gradient checks need float64 parameters"):
        check_layer(nn.Linear(3, 2), np.zeros((1, 3)))


def test_numerical_gradient_refuses_bool_step_and_half_precision():
    from course_lib.gradcheck import numerical_gradient
    with pytest.raises(ValueError, match="h must be"):
        numerical_gradient(lambda x: float(np.sum(x**3)), np.ones(2), h=True)
    with pytest.raises(TypeError, match="float16"):
        numerical_gradient(lambda x: float(np.sum(x**3)), np.ones(2, dtype=np.float16))
