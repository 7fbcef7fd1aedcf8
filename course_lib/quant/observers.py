r"""Choosing a scale and zero-point from observed data, as PyTorch's observers do (chapter 5).

An observer watches tensors go by (``forward(x)`` records their range) and then
``calculate_qparams()`` turns the range :math:`[\min, \max]` into a scale and zero-point.
The functional core is :func:`choose_qparams`; the classes only hold the running range.

**Affine** (``"per_tensor_affine"``, ``"per_channel_affine"``): the range is first widened to
contain 0 (so that 0, padding and ReLU's zeros, is represented exactly), then

.. math:: s = \max\Bigl(\frac{\max(x_{\max}, 0) - \min(x_{\min}, 0)}{q_{\max} - q_{\min}},\ \epsilon\Bigr),
          \qquad z = \operatorname{clamp}\bigl(q_{\min} - \operatorname{round}(\min(x_{\min},0)/s),\ q_{\min}, q_{\max}\bigr).

**Symmetric** (``"..._symmetric"``): :math:`s = \max(\max(|x_{\min}|, |x_{\max}|) / ((q_{\max}-q_{\min})/2),\ \epsilon)`
(for int8 that divides by 127.5, not 127), :math:`z = 0` for qint8 and :math:`z = 128` for
quint8 (or the rounded-down midpoint of a custom range).

Every step is float32 arithmetic as in torch; ``eps`` (float32's machine epsilon by default)
floors the scale, so an all-zero input gives ``scale = eps`` and ``zero_point = quant_min``.
``round`` is torch.round: ties to even.  Scales come back as float32 arrays, zero-points as
int64 arrays, of shape ``(1,)`` per tensor or ``(C,)`` per channel, like torch's.

PyTorch: ``torch.ao.quantization.MinMaxObserver``, ``MovingAverageMinMaxObserver``,
``PerChannelMinMaxObserver`` (same argument names; ``dtype`` and ``qscheme`` are torch's names
as strings).  The same formulas live in torchao's ``choose_qparams_affine`` (``MappingType``
``ASYMMETRIC`` / ``SYMMETRIC``), where ``torch.ao.quantization``'s users are being sent.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from ..validation import as_array
from .formats import QDTYPES, check_dtype, check_qscheme, qrange

__all__ = ["choose_qparams", "MinMaxObserver", "MovingAverageMinMaxObserver",
           "PerChannelMinMaxObserver", "percentile_range", "FLOAT32_EPS"]

FLOAT32_EPS = float(np.finfo(np.float32).eps)


def _check_eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    return np.float32(eps)


def choose_qparams(min_val, max_val, dtype: str = "quint8", qscheme: str = "per_tensor_affine", *,
                   reduce_range: bool = False, quant_min=None, quant_max=None, eps: float = FLOAT32_EPS):
    """``(scale, zero_point)`` for the observed range ``[min_val, max_val]``.

    min_val, max_val: floats, or (C,) arrays for per-channel schemes (any order of sign; the
    range is widened to contain 0).  Returns ``(scale float32 (k,), zero_point int64 (k,))`` with
    k = 1 or C.  PyTorch: ``UniformQuantizationObserverBase._calculate_qparams``.
    """
    dtype, qscheme = check_dtype(dtype), check_qscheme(qscheme)
    if dtype == "quint8" and qscheme == "per_tensor_symmetric" and reduce_range:
        raise ValueError("reduce_range=True with dtype='quint8' and qscheme='per_tensor_symmetric' is not "
                         "supported (torch raises NotImplementedError)")
    custom = quant_min is not None and quant_max is not None
    qmin, qmax = qrange(dtype, reduce_range=reduce_range, quant_min=quant_min, quant_max=quant_max)
    eps = _check_eps(eps)
    lo = np.atleast_1d(as_array("min_val", min_val, ndim=(0, 1), dtype_kind="fiu")).astype(np.float32)
    hi = np.atleast_1d(as_array("max_val", max_val, ndim=(0, 1), dtype_kind="fiu")).astype(np.float32)
    if lo.shape != hi.shape:
        raise ValueError(f"min_val and max_val must have one shape, got {lo.shape} and {hi.shape}")
    if np.any(lo > hi):
        i = int(np.argmax(lo > hi))
        raise ValueError(f"min_val must be <= max_val, got min_val={lo[i]} > max_val={hi[i]}")
    min_neg = np.minimum(lo, np.float32(0))
    max_pos = np.maximum(hi, np.float32(0))
    if qscheme.endswith("symmetric"):
        max_abs = np.maximum(-min_neg, max_pos)
        scale = np.maximum(max_abs / np.float32((qmax - qmin) / 2), eps).astype(np.float32)
        if dtype == "quint8":
            zp = (qmin + qmax) // 2 if custom else 128
        else:
            zp = 0
        zero_point = np.full(scale.shape, zp, dtype=np.int64)
    else:
        scale = np.maximum((max_pos - min_neg) / np.float32(qmax - qmin), eps).astype(np.float32)
        zero_point = qmin - np.rint(min_neg / scale).astype(np.int64)
        zero_point = np.clip(zero_point, qmin, qmax).astype(np.int64)
    return scale, zero_point


def percentile_range(x, percentile: float = 99.9):
    """``(low, high)``: the ``100 - percentile`` and ``percentile`` percentiles of ``x``.

    A calibration range that ignores the rarest outliers (``percentile=100`` is min/max).
    """
    x = as_array("x", x, dtype_kind="fiu").ravel()
    if isinstance(percentile, bool) or not isinstance(percentile, numbers.Real) or not 50 < percentile <= 100:
        raise ValueError(f"percentile must be in (50, 100], got {percentile!r}")
    lo, hi = np.percentile(x.astype(np.float64), [100 - percentile, percentile])
    return float(lo), float(hi)


class _Observer:
    """Shared argument checks; subclasses define ``forward`` and hold ``min_val``/``max_val``."""

    per_channel = False

    def __init__(self, dtype, qscheme, reduce_range, quant_min, quant_max, eps):
        self.dtype, self.qscheme = check_dtype(dtype), check_qscheme(qscheme)
        if qscheme.startswith("per_channel") != self.per_channel:
            kind = "per_channel_*" if self.per_channel else "per_tensor_*"
            raise ValueError(f"qscheme must be a {kind} scheme for {type(self).__name__}, got {qscheme!r}")
        self.reduce_range = bool(reduce_range)
        self.quant_min_arg, self.quant_max_arg = quant_min, quant_max
        self.eps = float(_check_eps(eps))
        # fail now, not at calculate_qparams time
        choose_qparams(0.0 if not self.per_channel else np.zeros(1), 0.0 if not self.per_channel else np.zeros(1),
                       self.dtype, self.qscheme, reduce_range=self.reduce_range, quant_min=quant_min,
                       quant_max=quant_max, eps=self.eps)
        self.quant_min, self.quant_max = qrange(self.dtype, reduce_range=self.reduce_range,
                                                quant_min=quant_min, quant_max=quant_max)

    def __call__(self, x):
        return self.forward(x)

    def calculate_qparams(self):
        """``(scale float32 (k,), zero_point int64 (k,))`` for the range seen so far."""
        if self.min_val is None:
            warnings.warn("must run observer before calling calculate_qparams: returning scale 1, zero_point 0",
                          stacklevel=2)
            return np.ones(1, dtype=np.float32), np.zeros(1, dtype=np.int64)
        return choose_qparams(self.min_val, self.max_val, self.dtype, self.qscheme,
                              reduce_range=self.reduce_range, quant_min=self.quant_min_arg,
                              quant_max=self.quant_max_arg, eps=self.eps)

    def __repr__(self):
        return (f"{type(self).__name__}(min_val={self.min_val}, max_val={self.max_val}, dtype={self.dtype!r}, "
                f"qscheme={self.qscheme!r}, quant_min={self.quant_min}, quant_max={self.quant_max})")


class MinMaxObserver(_Observer):
    """Running min and max over everything observed.  ``torch.ao.quantization.MinMaxObserver``.

    ``forward(x)`` records ``x`` (any shape, float) and returns it unchanged.
    """

    def __init__(self, dtype: str = "quint8", qscheme: str = "per_tensor_affine", reduce_range: bool = False,
                 quant_min=None, quant_max=None, eps: float = FLOAT32_EPS):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps)
        self.min_val = self.max_val = None

    def forward(self, x):
        arr = as_array("x", x, dtype_kind="fiu", finite=False).astype(np.float32)
        if arr.size:
            lo, hi = np.float32(arr.min()), np.float32(arr.max())
            self.min_val = lo if self.min_val is None else min(self.min_val, lo)
            self.max_val = hi if self.max_val is None else max(self.max_val, hi)
        return x


class MovingAverageMinMaxObserver(MinMaxObserver):
    r"""Exponential moving average of each batch's min and max (the first batch is taken as is):
    :math:`m \leftarrow m + c\,(m_{\text{batch}} - m)`, ``averaging_constant`` :math:`c = 0.01`.
    Used for activations during quantization-aware training.
    ``torch.ao.quantization.MovingAverageMinMaxObserver``.
    """

    def __init__(self, averaging_constant: float = 0.01, dtype: str = "quint8",
                 qscheme: str = "per_tensor_affine", reduce_range: bool = False, quant_min=None,
                 quant_max=None, eps: float = FLOAT32_EPS):
        if isinstance(averaging_constant, bool) or not isinstance(averaging_constant, numbers.Real) \
                or not 0 < averaging_constant <= 1:
            raise ValueError(f"averaging_constant must be in (0, 1], got {averaging_constant!r}")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps)
        self.averaging_constant = float(averaging_constant)

    def forward(self, x):
        arr = as_array("x", x, dtype_kind="fiu", finite=False).astype(np.float32)
        if arr.size:
            lo, hi = np.float32(arr.min()), np.float32(arr.max())
            if self.min_val is None:
                self.min_val, self.max_val = lo, hi
            else:
                c = np.float32(self.averaging_constant)
                self.min_val = np.float32(self.min_val + c * np.float32(lo - self.min_val))
                self.max_val = np.float32(self.max_val + c * np.float32(hi - self.max_val))
        return x


class PerChannelMinMaxObserver(_Observer):
    """Running min and max of every slice along ``ch_axis`` (one range per output channel).

    ``forward(x)`` with ``x.shape[ch_axis] == C`` records C ranges.
    ``torch.ao.quantization.PerChannelMinMaxObserver``.
    """

    per_channel = True

    def __init__(self, ch_axis: int = 0, dtype: str = "quint8", qscheme: str = "per_channel_affine",
                 reduce_range: bool = False, quant_min=None, quant_max=None, eps: float = FLOAT32_EPS):
        if isinstance(ch_axis, bool) or not isinstance(ch_axis, numbers.Integral):
            raise TypeError(f"ch_axis must be an integer, got {ch_axis!r}")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps)
        self.ch_axis = int(ch_axis)
        self.min_val = self.max_val = None

    def forward(self, x):
        arr = as_array("x", x, dtype_kind="fiu", finite=False).astype(np.float32)
        if not -arr.ndim <= self.ch_axis < arr.ndim:
            raise ValueError(f"ch_axis must be in [{-arr.ndim}, {arr.ndim}) for x of shape {arr.shape}, "
                             f"got {self.ch_axis}")
        y = np.moveaxis(arr, self.ch_axis, 0).reshape(arr.shape[self.ch_axis], -1)
        if self.min_val is not None and self.min_val.shape != (y.shape[0],):
            raise ValueError(f"x must have {self.min_val.size} channels along axis {self.ch_axis}, "
                             f"got shape {arr.shape}")
        if y.shape[1]:
            lo, hi = y.min(axis=1), y.max(axis=1)
            if self.min_val is None:
                self.min_val, self.max_val = lo, hi
            else:
                self.min_val, self.max_val = np.minimum(self.min_val, lo), np.maximum(self.max_val, hi)
        return x
