"""Data sets and mini-batches.

- :func:`make_linear_regression`  the source articles' ``y = 3x + noise`` example, seeded
- :func:`make_blobs`              Gaussian blobs for logistic / softmax regression
- :func:`load_digits_split`       scikit-learn's bundled 8x8 handwritten digits (offline),
                                  standardised, with a seeded train / val / test split
- :func:`minibatches`             a seeded mini-batch iterator (``torch.utils.data.DataLoader``'s
                                  ``shuffle`` / ``drop_last`` semantics)

Conventions: ``X`` is ``(n, d)``, targets ``y`` are ``(n,)`` (floats for regression,
int64 class labels for classification). Every random thing takes ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import as_array, check_positive, check_same_rows


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(seed)


def _check_finite_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def _check_float_dtype(dtype):
    if not np.issubdtype(np.dtype(dtype), np.floating):  # int would truncate X ~ U[0, 1) to zeros
        raise TypeError(f"dtype must be a floating-point type, got {np.dtype(dtype)}")


def make_linear_regression(n: int = 100, *, w: float = 3.0, noise: str = "uniform",
                           noise_scale: float = 1.0, seed=0, dtype=np.float64):
    """The source articles' data: ``X ~ U[0, 1)``, ``y = w * x + noise``.

    With ``noise="uniform"`` (the articles' ``np.random.rand``) the noise has mean 1/2,
    so the best fit is ``y ~ 3x + 0.5``: the intercept is learned from the noise.
    ``noise="normal"`` uses zero-mean Gaussian noise of standard deviation ``noise_scale``.

    Returns ``X: (n, 1)`` and ``y: (n,)``.
    """
    check_positive("n", n, integer=True)
    if noise not in ("uniform", "normal"):
        raise ValueError(f"noise must be 'uniform' or 'normal', got {noise!r}")
    check_positive("noise_scale", noise_scale, allow_zero=True)
    _check_finite_number("w", w)
    _check_float_dtype(dtype)
    rng = _rng(seed)
    X = rng.random((n, 1))
    eps = rng.random(n) * noise_scale if noise == "uniform" else rng.normal(0.0, noise_scale, n)
    y = w * X[:, 0] + eps
    return X.astype(dtype), y.astype(dtype)


def make_blobs(n: int = 200, *, n_classes: int = 2, n_features: int = 2, spread: float = 1.0,
               distance: float = 3.0, seed=0, dtype=np.float64):
    """Gaussian blobs, one per class, centres on a circle of radius ``distance``.

    Returns ``X: (n, n_features)`` and int64 labels ``y: (n,)`` (classes balanced up to one).
    """
    check_positive("n", n, integer=True)
    check_positive("n_classes", n_classes, integer=True)
    check_positive("n_features", n_features, integer=True)
    check_positive("spread", spread)
    check_positive("distance", distance, allow_zero=True)
    _check_float_dtype(dtype)
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    if n_features < 2:
        raise ValueError(f"n_features must be >= 2, got {n_features}")
    rng = _rng(seed)
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = np.zeros((n_classes, n_features))
    centres[:, 0] = distance * np.cos(angles)
    centres[:, 1] = distance * np.sin(angles)
    y = rng.permutation(np.arange(n) % n_classes).astype(np.int64)
    X = centres[y] + spread * rng.standard_normal((n, n_features))
    return X.astype(dtype), y


@dataclass(frozen=True)
class DigitsSplit:
    """Standardised digits split. ``X_*: (n, 64)``, ``y_*: (n,)`` int64 in [0, 10).

    ``mean`` and ``std`` (shape (64,)) are the training-set statistics used to
    standardise every split; ``images(X)`` undoes it for display as 8x8 images.
    """
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    n_classes: int = 10

    def images(self, X) -> np.ndarray:
        """Undo the standardisation: ``(n, 64) -> (n, 8, 8)`` pixel intensities in [0, 16]."""
        X = as_array("X", X, ndim=2)
        return (X * self.std + self.mean).reshape(-1, 8, 8)


def load_digits_split(*, val_size: float = 0.2, test_size: float = 0.2, seed=0,
                      dtype=np.float32) -> DigitsSplit:
    """scikit-learn's bundled handwritten digits (1797 images, 8x8, 10 classes), offline.

    Split stratified by class with a seeded shuffle, then standardised per pixel
    with the *training* mean and std (pixels that are constant in training get std 1,
    so they map to 0 instead of dividing by zero).
    """
    from sklearn.datasets import load_digits

    for name, v in (("val_size", val_size), ("test_size", test_size)):
        if not (isinstance(v, (float, int)) and 0 < v < 1):
            raise ValueError(f"{name} must be a fraction in (0, 1), got {v!r}")
    if val_size + test_size >= 1:
        raise ValueError(f"val_size + test_size must be < 1, got {val_size} + {test_size}")
    digits = load_digits()
    X = digits.data.astype(np.float64)
    y = digits.target.astype(np.int64)
    rng = _rng(seed)
    train, val, test = [], [], []
    for c in range(10):  # stratify: every split sees every class in proportion
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_size * idx.size))
        n_val = int(round(val_size * idx.size))
        test.append(idx[:n_test])
        val.append(idx[n_test:n_test + n_val])
        train.append(idx[n_test + n_val:])
    train, val, test = (rng.permutation(np.concatenate(s)) for s in (train, val, test))
    for name, split in (("val_size", val), ("test_size", test)):
        if split.size == 0:
            raise ValueError(f"{name} is too small: it leaves the split empty")
    mean = X[train].mean(axis=0)
    std = X[train].std(axis=0)
    std[std == 0] = 1.0
    Z = ((X - mean) / std).astype(dtype)
    return DigitsSplit(Z[train], y[train], Z[val], y[val], Z[test], y[test],
                       mean.astype(dtype), std.astype(dtype))


def minibatches(X, y, batch_size: int, *, shuffle: bool = True, seed=0, drop_last: bool = False):
    """Yield ``(X_batch, y_batch)`` pairs covering the data once (one epoch).

    ``shuffle=True`` visits the samples in a random order drawn from ``seed``
    (an int or a Generator: pass the same Generator every epoch to get a new order
    each epoch, reproducibly). The last batch is smaller unless ``drop_last``.
    """
    X = as_array("X", X, ndim=(1, 2))
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(f"y must have one entry per row of X, got a scalar {y!r}")
    check_same_rows("X", X, "y", y)
    check_positive("batch_size", batch_size, integer=True)
    if not isinstance(shuffle, (bool, np.bool_)):  # shuffle="no" is truthy: refuse, don't guess
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    n = X.shape[0]
    order = _rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]
