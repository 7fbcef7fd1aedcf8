"""rel_error, seeding, timing, divergence, and the shared argument checks."""

import numpy as np
import pytest
import torch

from course_lib import utils, validation as V


def test_rel_error():
    assert utils.rel_error(np.ones(3), np.ones(3)) == 0.0
    assert utils.rel_error([1.0, -1.0], [-1.0, -1.0]) == 1.0
    assert utils.rel_error([2.0], [1.0]) == pytest.approx(1 / 3)
    assert utils.rel_error(np.zeros(2), np.zeros(2)) == 0.0
    assert utils.rel_error(1e-20, 0.0) > 0  # eps only guards 0/0, not tiny differences
    with pytest.raises(ValueError, match="same shape"):
        utils.rel_error(np.ones(3), np.ones((3, 1)))


def test_seed_everything_seeds_numpy_and_torch():
    utils.seed_everything(7)
    a, ta = np.random.rand(3), torch.rand(3)
    g = utils.seed_everything(7)
    np.testing.assert_array_equal(a, np.random.rand(3))
    assert torch.equal(ta, torch.rand(3))
    assert isinstance(g, np.random.Generator)


def test_timeit_warms_up_and_reports_per_call_times():
    calls = []
    t = utils.timeit(lambda: calls.append(1), repeat=3, number=4, warmup=2)
    assert len(calls) == 2 + 3 * 4
    assert len(t.times) == 3 and t.best <= t.median
    assert "median=" in repr(t)


def test_check_finite_loss_names_step_and_lr():
    assert utils.check_finite_loss(1.5, step=3, lr=0.1) == 1.5
    with pytest.raises(utils.TrainingDiverged, match=r"nan at step 12 \(epoch 2\) with lr=0.5"):
        utils.check_finite_loss(float("nan"), step=12, lr=0.5, epoch=2)


def test_validation_helpers():
    assert V.as_array("x", [1.0, 2.0], ndim=1).shape == (2,)
    with pytest.raises(ValueError, match="x must be 2-dimensional, got shape"):
        V.as_array("x", [1.0], ndim=2)
    with pytest.raises(TypeError, match="x must be an array"):
        V.as_array("x", "abc")
    with pytest.raises(TypeError, match="dtype object"):
        V.as_array("x", np.array([object()]))
    with pytest.raises(ValueError, match="x contains 2 non-finite"):
        V.as_array("x", [np.nan, np.inf, 1.0])
    with pytest.raises(ValueError, match=r"lr must be finite and > 0, got -1"):
        V.check_positive("lr", -1)
    with pytest.raises(ValueError, match="lr must be finite"):
        V.check_positive("lr", float("inf"))
    with pytest.raises(TypeError, match="lr must be a number"):
        V.check_positive("lr", True)
    assert V.check_positive("wd", 0, allow_zero=True) == 0
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\), got 1"):
        V.check_in_range("beta", 1, 0, 1)
    assert V.check_in_range("p", 1, 0, 1, high_inclusive=True) == 1
    with pytest.raises(ValueError, match="w must have shape"):
        V.check_shape("w", np.ones((2, 1)), (2,))
    np.testing.assert_array_equal(V.check_labels("y", np.array([0.0, 2.0]), 3), [0, 2])
    with pytest.raises(ValueError, match=r"y must be in \[0, 3\)"):
        V.check_labels("y", [0, 3], 3)
