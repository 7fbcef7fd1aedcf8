"""Argument checks shared by every module.

Every public function in ``course_lib`` validates its inputs with these helpers, so a
bad argument always fails the same way: a ``ValueError`` (or ``TypeError``) whose
message names the argument and shows the offending value or shape.  Nothing is ever
broadcast silently.
"""

from __future__ import annotations

import numbers

import numpy as np


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    return repr(x)


def as_array(name: str, x, *, ndim: int | tuple[int, ...] | None = None,
             dtype_kind: str = "fc", finite: bool = True) -> np.ndarray:
    """Return ``x`` as an ndarray after checking it.

    name:       argument name used in error messages.
    ndim:       required number of dimensions (an int or a tuple of allowed values).
    dtype_kind: allowed ``dtype.kind`` letters ("f" float, "c" complex, "i"/"u" int, "b" bool).
    finite:     reject NaN and inf.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array, got {_describe(x)}")
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got dtype object")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must be {want}-dimensional, got shape {arr.shape}")
    if arr.dtype.kind not in dtype_kind:
        raise TypeError(f"{name} must have a dtype of kind {dtype_kind!r}, got {arr.dtype}")
    if finite and arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def check_same_rows(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raise if ``a`` and ``b`` do not have the same number of rows (samples)."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of rows, "
            f"got {name_a}.shape={a.shape} and {name_b}.shape={b.shape}")


def check_shape(name: str, x: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise unless ``x.shape == shape`` exactly (no broadcasting)."""
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")


def check_labels(name: str, y, n_classes: int) -> np.ndarray:
    """Integer class labels in ``[0, n_classes)``, returned as an int64 array of shape (n,)."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional class labels, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if (arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
                and np.all(np.abs(arr) < 2**62)):  # beyond that the int64 cast would wrap
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(
            f"{name} must be in [0, {n_classes}), got values in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64, copy=False)


def check_positive(name: str, value, *, integer: bool = False, allow_zero: bool = False):
    """A finite positive number (or int). Returns it unchanged."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if integer and not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return value


def check_in_range(name: str, value, low: float, high: float, *,
                   low_inclusive: bool = True, high_inclusive: bool = False):
    """A number in the interval between ``low`` and ``high``. Returns it unchanged."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    ok_low = value >= low if low_inclusive else value > low
    ok_high = value <= high if high_inclusive else value < high
    if not (np.isfinite(value) and ok_low and ok_high):
        lb = "[" if low_inclusive else "("
        hb = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in {lb}{low}, {high}{hb}, got {value!r}")
    return value
