"""Losses against PyTorch's own implementations (value and autograd gradient)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import losses


def torch_value_and_grad(fn, x, *args):
    t = torch.tensor(x, requires_grad=True)
    out = fn(t, *args)
    out.backward()
    return out.item(), t.grad.numpy()


@pytest.mark.parametrize("shape", [(7,), (5, 3), (2, 3, 4)])
def test_mse_matches_torch(rng, shape):
    y_hat, y = rng.normal(size=shape), rng.normal(size=shape)
    loss, grad = losses.mse(y_hat, y)
    t_loss, t_grad = torch_value_and_grad(F.mse_loss, y_hat, torch.tensor(y))
    np.testing.assert_allclose(loss, t_loss, rtol=1e-13)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n,C,scale", [(1, 2, 1.0), (8, 10, 1.0), (16, 5, 30.0), (4, 3, 1e3)])
def test_softmax_cross_entropy_matches_torch(rng, n, C, scale):
    logits = rng.normal(size=(n, C)) * scale  # scale 1e3 overflows a naive exp
    y = rng.integers(0, C, size=n)
    loss, grad = losses.softmax_cross_entropy(logits, y)
    t_loss, t_grad = torch_value_and_grad(F.cross_entropy, logits, torch.tensor(y))
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, t_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-10, atol=1e-15)


def test_softmax_cross_entropy_keeps_float32(rng):
    logits = rng.normal(size=(4, 3)).astype(np.float32)
    loss, grad = losses.softmax_cross_entropy(logits, np.array([0, 1, 2, 1]))
    assert grad.dtype == np.float32


def test_softmax_and_log_softmax_match_torch(rng):
    z = rng.normal(size=(6, 4)) * 50
    np.testing.assert_allclose(losses.softmax(z), torch.softmax(torch.tensor(z), -1).numpy(), atol=1e-15)
    np.testing.assert_allclose(losses.log_softmax(z), torch.log_softmax(torch.tensor(z), -1).numpy(),
                               rtol=1e-13)


@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_bce_with_logits_matches_torch(rng, scale):
    z = rng.normal(size=(9,)) * scale
    y = (rng.random(9) > 0.5).astype(float)
    loss, grad = losses.binary_cross_entropy_with_logits(z, y)
    t_loss, t_grad = torch_value_and_grad(F.binary_cross_entropy_with_logits, z, torch.tensor(y))
    np.testing.assert_allclose(loss, t_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-10, atol=1e-17)


def test_bce_on_probabilities_matches_torch_including_clamp(rng):
    p = np.concatenate([rng.uniform(0.01, 0.99, 6), [0.0, 1.0]])
    y = np.array([0, 1, 1, 0, 1, 0, 1, 0], dtype=float)  # p=0 with y=1 hits the -100 clamp
    loss, grad = losses.binary_cross_entropy(p, y)
    t_loss, t_grad = torch_value_and_grad(F.binary_cross_entropy, p, torch.tensor(y))
    np.testing.assert_allclose(loss, t_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-10)


@pytest.mark.parametrize("call,match", [
    (lambda: losses.mse(np.ones(3), np.ones(4)), "y must have shape"),
    (lambda: losses.mse(np.ones((3, 1)), np.ones(3)), "y must have shape"),  # no silent broadcast
    (lambda: losses.mse(np.array([1.0, np.nan]), np.ones(2)), "y_hat contains 1 non-finite"),
    (lambda: losses.softmax_cross_entropy(np.ones((2, 3)), np.array([0, 3])), r"y must be in \[0, 3\)"),
    (lambda: losses.softmax_cross_entropy(np.ones((2, 3)), np.array([0, -1])), r"y must be in"),
    (lambda: losses.softmax_cross_entropy(np.ones((2, 3)), np.array([0, 1, 2])), "3 labels|2 labels"),
    (lambda: losses.softmax_cross_entropy(np.ones(3), np.array([0])), "logits must be 2-dimensional"),
    (lambda: losses.softmax_cross_entropy(np.full((1, 2), np.inf), np.array([0])), "logits contains"),
    (lambda: losses.binary_cross_entropy(np.array([1.5]), np.array([1.0])), "probs must be in"),
    (lambda: losses.binary_cross_entropy_with_logits(np.zeros(2), np.array([0.0, 2.0])), "y must be in"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_float_labels_are_rejected_unless_integral():
    with pytest.raises(TypeError, match="y must hold integer"):
        losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.5, 1.0]))
    loss, _ = losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    assert loss == pytest.approx(np.log(3))


def test_empty_batch_is_an_error_not_nan():
    with pytest.raises(ValueError, match="at least one row"):
        losses.softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: losses.mse(np.array([1j]), np.array([0j])), TypeError, "y_hat must have a dtype"),
    (lambda: losses.mse(np.zeros(0), np.zeros(0)), ValueError, "at least one element"),
    (lambda: losses.binary_cross_entropy(np.zeros(0), np.zeros(0)), ValueError, "at least one element"),
    (lambda: losses.binary_cross_entropy_with_logits(np.zeros(0), np.zeros(0)), ValueError, "at least one"),
])
def test_complex_and_empty_inputs_are_refused(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
def test_huber_matches_torch(rng, delta):
    y_hat, y = rng.normal(size=40) * 2, rng.normal(size=40)  # residuals on both sides of delta
    loss, grad = losses.huber(y_hat, y, delta)
    t_loss, t_grad = torch_value_and_grad(lambda t: F.huber_loss(t, torch.tensor(y), delta=delta), y_hat)
    np.testing.assert_allclose(loss, t_loss, rtol=1e-13)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=1e-15)
    # smooth_l1 with beta = delta is the same curve divided by delta
    t_sl1 = F.smooth_l1_loss(torch.tensor(y_hat), torch.tensor(y), beta=delta).item()
    np.testing.assert_allclose(loss / delta, t_sl1, rtol=1e-12)


def test_huber_rejects_bad_delta():
    with pytest.raises(ValueError, match="delta"):
        losses.huber(np.zeros(3), np.zeros(3), 0.0)
    with pytest.raises(TypeError, match="delta"):
        losses.huber(np.zeros(3), np.zeros(3), "1")
