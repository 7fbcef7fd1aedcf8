"""Data sets and mini-batches: determinism, shapes, statistics, splits, bad input."""

import numpy as np
import pytest

from course_lib import data


def test_linear_regression_is_seeded_and_follows_the_source():
    X1, y1 = data.make_linear_regression(100, seed=3)
    X2, y2 = data.make_linear_regression(100, seed=3)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert X1.shape == (100, 1) and y1.shape == (100,)
    assert not np.array_equal(X1, data.make_linear_regression(100, seed=4)[0])
    # y = 3x + U[0,1): the residual after removing 3x is uniform noise in [0, 1)
    noise = y1 - 3 * X1[:, 0]
    assert noise.min() >= 0 and noise.max() < 1
    X, y = data.make_linear_regression(20000, seed=0)
    slope, intercept = np.polyfit(X[:, 0], y, 1)
    assert slope == pytest.approx(3.0, abs=0.05) and intercept == pytest.approx(0.5, abs=0.03)


def test_linear_regression_normal_noise_is_centred():
    X, y = data.make_linear_regression(20000, noise="normal", noise_scale=0.1, seed=0)
    assert np.std(y - 3 * X[:, 0]) == pytest.approx(0.1, rel=0.05)
    assert abs(np.mean(y - 3 * X[:, 0])) < 0.01


def test_blobs_are_balanced_and_separated():
    X, y = data.make_blobs(300, n_classes=3, spread=0.3, seed=1)
    assert X.shape == (300, 2) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [100, 100, 100]
    centres = np.array([X[y == c].mean(axis=0) for c in range(3)])
    assert np.all(np.linalg.norm(centres, axis=1) == pytest.approx(3.0, abs=0.15))


def test_digits_split_is_stratified_disjoint_and_standardised():
    d = data.load_digits_split(seed=0)
    sizes = (d.X_train.shape[0], d.X_val.shape[0], d.X_test.shape[0])
    assert sum(sizes) == 1797 and d.X_train.shape[1] == 64
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    for y in (d.y_train, d.y_val, d.y_test):
        frac = np.bincount(y, minlength=10) / y.size
        assert np.all(np.abs(frac - 0.1) < 0.02)  # every class in proportion
    rows = [tuple(r) for r in np.vstack([d.X_train, d.X_val, d.X_test]).round(4)]
    assert len(set(rows)) >= 1797 - 2  # 1797 images, one duplicate pair in the data set at most
    # standardised with *training* statistics: train mean 0, std 1 on non-constant pixels
    std = d.X_train.std(axis=0)
    assert np.allclose(d.X_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(std[std > 0], 1, atol=1e-4)
    assert np.all(np.isfinite(d.X_test))
    from sklearn.datasets import load_digits
    raw = load_digits().data
    imgs = d.images(d.X_test[:5])
    assert imgs.shape == (5, 8, 8)
    for img in imgs:  # every recovered image is one of the raw images
        assert np.min(np.abs(raw - img.reshape(64)).max(axis=1)) < 1e-3


def test_digits_split_depends_on_seed_only():
    a, b, c = data.load_digits_split(seed=0), data.load_digits_split(seed=0), data.load_digits_split(seed=1)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_train, c.y_train)


@pytest.mark.parametrize("kwargs,match", [
    ({"val_size": 0.0}, "val_size"), ({"test_size": 1.2}, "test_size"),
    ({"val_size": 0.6, "test_size": 0.5}, "val_size \\+ test_size"),
])
def test_digits_bad_fractions(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load_digits_split(**kwargs)


def test_minibatches_cover_every_row_once_in_seeded_order():
    X = np.arange(20, dtype=float).reshape(10, 2)
    y = np.arange(10)
    batches = list(data.minibatches(X, y, 4, seed=0))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    order = np.concatenate([b[1] for b in batches])
    np.testing.assert_array_equal(order, np.random.default_rng(0).permutation(10))
    for Xb, yb in batches:
        np.testing.assert_array_equal(Xb[:, 0], 2 * yb)  # rows stay paired with labels
    assert [len(b[1]) for b in data.minibatches(X, y, 4, drop_last=True)] == [4, 4]
    unshuffled = np.concatenate([b[1] for b in data.minibatches(X, y, 3, shuffle=False)])
    np.testing.assert_array_equal(unshuffled, y)


def test_minibatches_with_a_generator_differ_each_epoch():
    X, y = np.zeros((6, 1)), np.arange(6)
    g = np.random.default_rng(5)
    e1 = np.concatenate([b[1] for b in data.minibatches(X, y, 6, seed=g)])
    e2 = np.concatenate([b[1] for b in data.minibatches(X, y, 6, seed=g)])
    assert not np.array_equal(e1, e2)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: list(data.minibatches(np.zeros((3, 1)), np.zeros(4), 2)), ValueError, "same number of rows"),
    (lambda: list(data.minibatches(np.zeros((3, 1)), np.zeros(3), 0)), ValueError, "batch_size must be"),
    (lambda: list(data.minibatches(np.zeros((3, 1)), np.zeros(3), 1.5)), TypeError, "batch_size must be an integer"),
    (lambda: data.make_linear_regression(-1), ValueError, "n must be"),
    (lambda: data.make_linear_regression(10, noise="gauss"), ValueError, "noise must be"),
    (lambda: data.make_blobs(10, n_classes=1), ValueError, "n_classes must be >= 2"),
    (lambda: data.make_linear_regression(10, seed="a"), TypeError, "seed must be"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("call,exc,match", [
    (lambda: data.make_linear_regression(10, noise_scale=-1.0), ValueError, "noise_scale must be"),
    (lambda: data.make_linear_regression(10, noise_scale=float("nan")), ValueError, "noise_scale must be"),
    (lambda: data.make_linear_regression(10, w=True), ValueError, "w must be a finite number"),
    (lambda: data.make_linear_regression(10, dtype=np.int64), TypeError, "dtype must be a floating"),
    (lambda: data.make_blobs(10, distance=float("nan")), ValueError, "distance must be"),
    (lambda: data.load_digits_split(val_size=0.001), ValueError, "val_size is too small"),
    (lambda: list(data.minibatches(np.zeros((3, 1)), np.zeros(3), 2, shuffle="no")), TypeError, "shuffle must be"),
    (lambda: list(data.minibatches(np.zeros((3, 1)), 1.0, 2)), ValueError, "y must have one entry per row"),
])
def test_generator_arguments_are_checked(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
