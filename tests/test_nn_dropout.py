"""Dropout: inverted-dropout forward/backward, checked against torch autograd with the same mask,
its expectation, evaluation mode and the edge cases p = 0 and p = 1."""

import numpy as np
import pytest
import torch

from course_lib import nn
from course_lib.nn import dropout_backward, dropout_forward


def test_forward_backward_match_torch_autograd_with_the_same_mask():
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((8, 5)), rng.standard_normal((8, 5))
    out, mask = dropout_forward(x, 0.3, np.random.default_rng(1))
    kept = mask != 0
    assert np.allclose(mask[kept], 1 / 0.7) and 0 < kept.mean() < 1
    tx = torch.tensor(x, requires_grad=True)
    tout = tx * torch.from_numpy(mask)            # torch's dropout is this product for its own mask
    tout.backward(torch.from_numpy(dout))
    assert np.array_equal(out, tout.detach().numpy())
    assert np.array_equal(dropout_backward(dout, mask), tx.grad.numpy())


def test_expectation_and_torch_statistics():
    x = np.ones((400, 500))
    out, _ = dropout_forward(x, 0.25, np.random.default_rng(2))
    t_out = torch.nn.functional.dropout(torch.ones(400, 500, dtype=torch.float64), 0.25, training=True)
    assert abs(out.mean() - 1) < 0.01 and abs(float(t_out.mean()) - 1) < 0.01
    assert abs((out == 0).mean() - 0.25) < 0.01 and set(np.unique(out)) == set(np.unique(t_out.numpy()))


def test_eval_mode_and_edge_cases_are_torchs():
    x = np.random.default_rng(3).standard_normal((4, 3))
    layer = nn.Dropout(0.5, seed=0).eval()
    assert np.array_equal(layer(x), x) and np.array_equal(layer.backward(x), x)
    tl = torch.nn.Dropout(0.5).eval()
    assert np.array_equal(tl(torch.from_numpy(x)).numpy(), x)
    assert np.array_equal(dropout_forward(x, 0.0, None)[0], x)
    out1, mask1 = dropout_forward(x, 1.0, np.random.default_rng(0))
    assert np.array_equal(out1, np.zeros_like(x)) and np.array_equal(
        torch.nn.functional.dropout(torch.from_numpy(x), 1.0).numpy(), np.zeros_like(x))
    layer.train()
    y = layer(x)
    assert np.array_equal(layer.backward(np.ones_like(x)) * x, y)   # backward uses the forward's mask


def test_bad_arguments():
    with pytest.raises(ValueError, match="p must be a probability in \\[0, 1\\], got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="dout must have shape"):
        _, mask = dropout_forward(np.ones((2, 2)), 0.5, np.random.default_rng(0))
        dropout_backward(np.ones(3), mask)
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Dropout(0.1).backward(np.ones(2))
