r"""The affine map between real numbers and integer codes, exactly as PyTorch computes it (chapter 5).

A real value :math:`x` is stored as an integer code :math:`q` with a scale :math:`s > 0` and
a zero-point :math:`z` (the code of the real number 0):

.. math:: q = \operatorname{clamp}\bigl(\operatorname{round}(x / s) + z,\ q_{\min},\ q_{\max}\bigr),
          \qquad \hat x = s\,(q - z).

Inside the range the error :math:`|\hat x - x|` is at most :math:`s/2`; outside it the code
saturates at :math:`q_{\min}` or :math:`q_{\max}` (clipping error).

**What PyTorch computes, to the bit** (the tests compare with ``int_repr()``):

- ``round`` is ``nearbyint``: ties go to the even *integer* (2.5 -> 2, 3.5 -> 4), not away
  from zero like Python's textbook ``floor(v + 0.5)``;
- :func:`quantize_per_tensor` multiplies by ``inv = float32(1 / float32(scale))`` and adds the
  zero-point in one fused multiply-add, rounded to float32 once:
  ``q = nearbyint(fma(x, inv, z))`` (fbgemm's vectorised ``Quantize``).  With an odd
  zero-point a halfway value ``x * inv = k + 0.5`` then rounds to the even *code*;
- :func:`quantize_per_channel` rounds twice: ``nearbyint(float32(float32(x * inv) + z))``;
- fake quantization (:mod:`course_lib.quant.fake_quant`) rounds before adding ``z``:
  ``nearbyint(float32(x * inv)) + z``.

The textbook ``round(x / s) + z`` in float64 disagrees with all three on some halfway values
and on values whose float32 product ``x * inv`` lands on the other side of a half.

Codes are NumPy integer arrays: ``int8`` for ``"qint8"``, ``uint8`` for ``"quint8"``.  Scales
are float32 (PyTorch stores float64 but quantizes with the float32 value), zero-points int64.
Bad parameters raise ``ValueError`` (PyTorch accepts a scale of 0 or NaN silently).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..validation import as_array
from .formats import QDTYPES, check_dtype

__all__ = ["check_scale", "check_zero_point", "quantize_per_tensor", "quantize_per_channel",
           "dequantize", "dequantize_per_channel", "round_half_even"]


def round_half_even(v):
    """``nearbyint``: round to the nearest integer, ties to the even one (``np.rint``)."""
    return np.rint(v)


def check_scale(scale, name: str = "scale") -> np.float32:
    """A finite positive scale, returned as float32."""
    if isinstance(scale, bool) or not isinstance(scale, (numbers.Real, np.floating)):
        raise TypeError(f"{name} must be a number, got {scale!r}")
    s = np.float32(scale)
    if not (np.isfinite(scale) and s > 0 and np.isfinite(np.float32(1) / s)):
        raise ValueError(f"{name} must be finite and > 0 (with a finite float32 inverse), got {scale!r}")
    return s


def check_zero_point(zero_point, dtype: str, name: str = "zero_point") -> int:
    """An integer zero-point inside ``dtype``'s codes."""
    if isinstance(zero_point, bool) or not isinstance(zero_point, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {zero_point!r}")
    _, lo, hi = QDTYPES[dtype]
    if not lo <= int(zero_point) <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}] for {dtype}, got {zero_point!r}")
    return int(zero_point)


def _per_channel_params(scales, zero_points, n, dtype):
    scales = as_array("scales", scales, ndim=1, dtype_kind="fiu", finite=False)
    zero_points = as_array("zero_points", zero_points, ndim=1, dtype_kind="iu")
    if scales.shape != (n,):
        raise ValueError(f"scales must have shape ({n},) (one per channel), got {scales.shape}")
    if zero_points.shape != (n,):
        raise ValueError(f"zero_points must have shape ({n},) (one per channel), got {zero_points.shape}")
    s32 = scales.astype(np.float32)
    bad = ~(np.isfinite(scales) & (s32 > 0))
    if bad.any():
        raise ValueError(f"scales must be finite and > 0, got {scales[bad][0]!r} at channel {np.flatnonzero(bad)[0]}")
    _, lo, hi = QDTYPES[dtype]
    out = (zero_points < lo) | (zero_points > hi)
    if out.any():
        raise ValueError(f"zero_points must be in [{lo}, {hi}] for {dtype}, got {zero_points[out][0]} "
                         f"at channel {np.flatnonzero(out)[0]}")
    return s32, zero_points.astype(np.int64)


def _check_axis(axis, ndim):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    if not 0 <= axis < ndim:  # torch refuses negative axes too
        raise ValueError(f"axis must be in [0, {ndim}) for a {ndim}-d input, got {axis!r}")
    return int(axis)


def _channel_shape(axis, ndim):
    shape = [1] * ndim
    shape[axis] = -1
    return shape


def quantize_per_tensor(x, scale, zero_point, dtype: str = "quint8") -> np.ndarray:
    """Integer codes of ``x`` with one scale and zero-point, bit-identical to torch.

    x: float array, any shape (cast to float32, as torch quantizes float32 tensors).
    scale: float > 0; zero_point: int in the dtype's range; dtype: ``"qint8"`` or ``"quint8"``.
    Returns int8 (qint8) or uint8 (quint8) codes of ``x``'s shape::

        q = clamp(nearbyint(fma(x, float32(1 / scale), zero_point)), qmin, qmax)

    The fused multiply-add is emulated exactly in float64 (a float32 product is exact in
    float64, the sum rounds once to float32). PyTorch:
    ``torch.quantize_per_tensor(x, scale, zero_point, torch.qint8).int_repr()``.
    """
    dtype = check_dtype(dtype)
    x = as_array("x", x, dtype_kind="fiu", finite=False).astype(np.float32)
    s = check_scale(scale)
    zp = check_zero_point(zero_point, dtype)
    storage, lo, hi = QDTYPES[dtype]
    inv = np.float32(1) / s
    fused = (x.astype(np.float64) * np.float64(inv) + zp).astype(np.float32)  # one rounding, like an FMA
    with np.errstate(invalid="ignore"):
        return np.clip(round_half_even(fused), lo, hi).astype(storage)


def quantize_per_channel(x, scales, zero_points, axis: int, dtype: str = "qint8") -> np.ndarray:
    """Integer codes of ``x`` with one scale and zero-point per slice along ``axis``.

    x: float array with ``x.shape[axis] == C``; scales: (C,) > 0; zero_points: (C,) ints.
    Returns int8/uint8 codes of ``x``'s shape::

        q = clamp(nearbyint(float32(float32(x * inv[c]) + zero_point[c])), qmin, qmax)

    (two roundings: torch's per-channel kernel multiplies, then adds).
    PyTorch: ``torch.quantize_per_channel(x, scales, zero_points, axis, dtype).int_repr()``.
    """
    dtype = check_dtype(dtype)
    x = as_array("x", x, dtype_kind="fiu", finite=False).astype(np.float32)
    axis = _check_axis(axis, x.ndim)
    s32, zps = _per_channel_params(scales, zero_points, x.shape[axis], dtype)
    storage, lo, hi = QDTYPES[dtype]
    shape = _channel_shape(axis, x.ndim)
    inv = (np.float32(1) / s32).reshape(shape)
    with np.errstate(invalid="ignore", over="ignore"):
        v = (x * inv).astype(np.float32) + zps.astype(np.float32).reshape(shape)
        return np.clip(round_half_even(v), lo, hi).astype(storage)


def dequantize(q, scale, zero_point) -> np.ndarray:
    """Real values of codes ``q``: ``float32(scale) * (q - zero_point)`` (float32 arithmetic).

    q: int8/uint8 (or any integer) array; returns float32 of ``q``'s shape.
    PyTorch: ``torch.quantize_per_tensor(...).dequantize()`` (the same float32 values).
    """
    q = as_array("q", q, dtype_kind="iu")
    s = check_scale(scale)
    if isinstance(zero_point, bool) or not isinstance(zero_point, (numbers.Integral, np.integer)):
        raise TypeError(f"zero_point must be an integer, got {zero_point!r}")
    return ((q.astype(np.int32) - np.int32(zero_point)).astype(np.float32) * s).astype(np.float32)


def dequantize_per_channel(q, scales, zero_points, axis: int) -> np.ndarray:
    """Real values of per-channel codes: ``scales[c] * (q - zero_points[c])``.

    q: integer codes, scales: (C,), zero_points: (C,), ``C == q.shape[axis]``.  Returns float32;
    the product is computed in float64 (torch keeps per-channel scales as float64) and rounded once.
    PyTorch: ``torch.quantize_per_channel(...).dequantize()``.
    """
    q = as_array("q", q, dtype_kind="iu")
    axis = _check_axis(axis, q.ndim)
    dtype = "quint8" if q.dtype == np.uint8 else "qint8"
    _per_channel_params(scales, zero_points, q.shape[axis], dtype)
    shape = _channel_shape(axis, q.ndim)
    # torch keeps per-channel scales in float64 and multiplies in float64 before storing float32
    s64 = np.asarray(scales, dtype=np.float64).reshape(shape)
    zps = np.asarray(zero_points, dtype=np.int64).reshape(shape)
    return ((q.astype(np.int64) - zps).astype(np.float64) * s64).astype(np.float32)
