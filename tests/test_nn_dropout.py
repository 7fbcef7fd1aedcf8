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


# ------------------------------------------- train/eval modes in containers, fit and evaluate

def _dropout_net(seed=0, p=0.5):
    base = nn.MLP([6, 16, 3], seed=seed, dtype=np.float64)
    return nn.Sequential(base[0], base[1], nn.Dropout(p, seed=seed + 1), base[2])


def test_train_and_eval_reach_every_layer_like_torch():
    net = _dropout_net()
    seq = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 3))
    assert net.eval() is net and seq.eval() is seq
    assert [m.training for m in [net, *net]] == [m.training for m in [seq, *seq]] == [False] * 5
    assert net.train() is net and seq.train() is seq
    assert [m.training for m in [net, *net]] == [m.training for m in [seq, *seq]] == [True] * 5
    net.train(False)
    assert not net[2].training and np.array_equal(net(np.ones((2, 6))), net(np.ones((2, 6))))
    with pytest.raises(TypeError, match="mode must be a bool, got 'eval'"):
        net.train("eval")


def test_evaluate_scores_without_dropout_and_restores_the_mode():
    X = np.random.default_rng(0).standard_normal((200, 6))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    net = _dropout_net(p=0.7)
    plain = nn.Sequential(net[0], net[1], net[3])               # the same weights, no dropout layer
    for mode in (True, False):
        net.train(mode)
        assert nn.evaluate(net, X, y) == nn.evaluate(net, X, y) == nn.evaluate(plain, X, y)
        assert net.training is mode and net[2].training is mode


def test_fit_drops_while_training_and_scores_in_eval_mode():
    rng = np.random.default_rng(1)
    X, Xv = rng.standard_normal((60, 6)), rng.standard_normal((30, 6))
    y, yv = (X[:, 0] > X[:, 1]).astype(int) + (X[:, 2] > 0), (Xv[:, 0] > Xv[:, 1]).astype(int) + (Xv[:, 2] > 0)
    net, ref = _dropout_net(), _dropout_net()
    net.eval()                                   # fit switches to training mode itself, as torch loops do
    hist = nn.fit(net, X, y, lr=0.2, epochs=3, batch_size=16, seed=4, X_val=Xv, y_val=yv)
    assert net.training and net[2].training      # left in training mode

    # reference: the loop written out, dropout on in every step, scores from the net without its dropout
    from course_lib.data import minibatches
    from course_lib.losses import softmax_cross_entropy
    plain = nn.Sequential(ref[0], ref[1], ref[3])
    batches, losses, scores = np.random.default_rng(4), [], []
    for _ in range(3):
        for Xb, yb in minibatches(X, y, 16, shuffle=True, seed=batches):
            loss, dz = softmax_cross_entropy(ref(Xb), yb)
            ref.backward(dz)
            for p, g in zip(ref.params, ref.grads):
                p -= 0.2 * g
            losses.append(loss)
        scores.append(nn.evaluate(plain, X, y) + nn.evaluate(plain, Xv, yv))
    assert hist.losses == losses
    for p, q in zip(net.params, ref.params):
        np.testing.assert_array_equal(p, q)
    assert [s[1] for s in scores] == hist.train_acc and [s[3] for s in scores] == hist.val_acc
    assert [s[2] for s in scores] == hist.val_loss

    # and the dropout mattered: without it the same start and batches end elsewhere
    no_drop = _dropout_net()
    no_drop[2].eval()
    nn.fit(nn.Sequential(no_drop[0], no_drop[1], no_drop[3]), X, y, lr=0.2, epochs=3, batch_size=16, seed=4)
    assert not np.allclose(no_drop[0].weight, net[0].weight)
