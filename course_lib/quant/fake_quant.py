r"""Fake quantization for quantization-aware training (QAT), value and gradient as in PyTorch.

Fake quantization quantizes and immediately dequantizes, staying in float:

.. math:: \tilde x = s\,\bigl(\operatorname{clamp}(\operatorname{round}(x/s) + z,\ q_{\min}, q_{\max}) - z\bigr).

The forward pass of a QAT model then sees exactly the values integer inference will see,
while training stays in float.  Rounding has derivative 0 almost everywhere, which would stop
all learning; the **straight-through estimator** (STE, Bengio et al. 2013) pretends the
rounding is the identity in the backward pass, and keeps only the clamp:

.. math:: \frac{\partial \tilde x}{\partial x} \approx
          \begin{cases} 1 & q_{\min} \le \operatorname{round}(x/s) + z \le q_{\max} \\ 0 & \text{otherwise (clipped)} \end{cases}

Functional pair, in the course's ``(out, cache)`` convention::

    out, cache = fake_quant_forward(x, scale, zero_point, quant_min, quant_max)
    dx = fake_quant_backward(dout, cache)

Exactly as torch's CPU kernel: ``q = nearbyint(float32(x * float32(1/scale))) + zero_point``
(rounded *before* the zero-point is added: with an odd zero-point this differs from
:func:`~course_lib.quant.affine.quantize_per_tensor` on some halfway values), the mask uses
``q`` before clamping, and ``out = float32((clamp(q) - zero_point) * scale)``.

PyTorch: ``torch.fake_quantize_per_tensor_affine`` / ``torch.fake_quantize_per_channel_affine``
(value, and the gradient autograd gives).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..validation import as_array
from .affine import _channel_shape, _check_axis, check_scale

__all__ = ["fake_quant_forward", "fake_quant_backward", "fake_quantize_per_tensor_affine",
           "fake_quantize_per_channel_affine", "fake_quant_per_channel_forward"]


def _check_range(quant_min, quant_max):
    for name, v in (("quant_min", quant_min), ("quant_max", quant_max)):
        if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
            raise TypeError(f"{name} must be an integer, got {v!r}")
    if not quant_min < quant_max:
        raise ValueError(f"quant_min must be < quant_max, got quant_min={quant_min}, quant_max={quant_max}")
    return int(quant_min), int(quant_max)


def _check_zp(zero_point, quant_min, quant_max, name="zero_point"):
    if isinstance(zero_point, bool) or not isinstance(zero_point, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {zero_point!r}")
    if not quant_min <= zero_point <= quant_max:
        raise ValueError(f"{name} must be in [quant_min, quant_max] = [{quant_min}, {quant_max}], got {zero_point!r}")
    return int(zero_point)


def _fake(x, s, zp, quant_min, quant_max):
    inv = (np.float32(1) / s).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        q = np.rint((x * inv).astype(np.float32)) + zp           # float32 codes before clamping
        mask = (q >= quant_min) & (q <= quant_max)
        out = ((np.clip(q, quant_min, quant_max) - zp) * s).astype(np.float32)
    return out, mask


def fake_quant_forward(x, scale, zero_point, quant_min: int, quant_max: int):
    """Fake-quantize ``x`` per tensor.

    x: float array (any shape; computed in float32).  scale: float > 0.  zero_point: int in
    ``[quant_min, quant_max]``.  Returns ``(out float32 like x, cache)``; ``cache`` holds the
    boolean mask of the values that were not clipped.
    """
    x = as_array("x", x, dtype_kind="fiu", finite=False).astype(np.float32)
    quant_min, quant_max = _check_range(quant_min, quant_max)
    zp = _check_zp(zero_point, quant_min, quant_max)
    out, mask = _fake(x, check_scale(scale), np.float32(zp), quant_min, quant_max)
    return out, mask


def fake_quant_backward(dout, cache):
    """Straight-through gradient: ``dout`` where the forward did not clip, 0 where it did.

    dout: float array of the forward output's shape.  Returns dx of the same shape and dtype.
    """
    mask = cache
    dout = as_array("dout", dout, dtype_kind="f", finite=False)
    if dout.shape != mask.shape:
        raise ValueError(f"dout must have shape {mask.shape} (the forward output's), got {dout.shape}")
    return np.where(mask, dout, np.zeros((), dtype=dout.dtype))


def fake_quant_per_channel_forward(x, scales, zero_points, axis: int, quant_min: int, quant_max: int):
    """Per-channel fake quantization: one scale and zero-point per slice along ``axis``.

    scales: (C,) floats > 0, zero_points: (C,) ints, ``C == x.shape[axis]``.  Returns
    ``(out, cache)``; the backward is :func:`fake_quant_backward`.
    """
    x = as_array("x", x, dtype_kind="fiu", finite=False).astype(np.float32)
    quant_min, quant_max = _check_range(quant_min, quant_max)
    axis = _check_axis(axis, x.ndim)
    scales = as_array("scales", scales, ndim=1, dtype_kind="fiu", finite=False)
    zero_points = as_array("zero_points", zero_points, ndim=1, dtype_kind="iu")
    C = x.shape[axis]
    if scales.shape != (C,) or zero_points.shape != (C,):
        raise ValueError(f"scales and zero_points must have shape ({C},), got {scales.shape} and {zero_points.shape}")
    for c in range(C):
        check_scale(float(scales[c]), name=f"scales[{c}]")
        _check_zp(int(zero_points[c]), quant_min, quant_max, name=f"zero_points[{c}]")
    shape = _channel_shape(axis, x.ndim)
    s = scales.astype(np.float32).reshape(shape)
    zp = zero_points.astype(np.float32).reshape(shape)
    return _fake(x, s, zp, quant_min, quant_max)


def fake_quantize_per_tensor_affine(x, scale, zero_point, quant_min: int, quant_max: int) -> np.ndarray:
    """The value of :func:`fake_quant_forward` (``torch.fake_quantize_per_tensor_affine``)."""
    return fake_quant_forward(x, scale, zero_point, quant_min, quant_max)[0]


def fake_quantize_per_channel_affine(x, scales, zero_points, axis: int, quant_min: int,
                                     quant_max: int) -> np.ndarray:
    """The value of :func:`fake_quant_per_channel_forward` (``torch.fake_quantize_per_channel_affine``)."""
    return fake_quant_per_channel_forward(x, scales, zero_points, axis, quant_min, quant_max)[0]
