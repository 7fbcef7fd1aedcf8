r"""Integer inference: int8 weights, 8-bit activations, int32 accumulation (chapter 5).

A Linear layer :math:`y = x W^\top + b` with ``x`` and ``W`` replaced by their codes,
:math:`x \approx s_x (q_x - z_x)` (per tensor) and :math:`W_{j\cdot} \approx s_j\, q_{W,j\cdot}`
(per output channel, symmetric: zero-point 0):

.. math:: y_j \approx s_x s_j \sum_p (q_{x,p} - z_x)\, q_{W,jp} + b_j
              = s_x s_j \Bigl(\underbrace{\textstyle\sum_p q_{x,p} q_{W,jp}}_{\text{int8 GEMM, int32}}
                - z_x \underbrace{\textstyle\sum_p q_{W,jp}}_{\text{column sums, precomputed}}\Bigr) + b_j .

Everything inside the bracket is exact integer arithmetic (Jacob et al. 2018).  Then either

- **dynamic quantization** (:func:`dynamic_quantized_linear`): ``x`` is quantized on the fly
  from its own min/max, the int32 result is turned back into float32 (torch's
  ``quantize_dynamic``: weights are quantized once, activations at every call); or
- **static quantization** (:func:`quantized_linear`): the output is *requantized* straight into
  the next layer's 8-bit codes with a scale fixed by calibration,
  :math:`q_y = \operatorname{clamp}(\operatorname{round}(y / s_y) + z_y)` (with a fused ReLU the
  lower clamp is :math:`z_y`), so the network runs integer to integer.

Functional core (shapes and dtypes in each docstring), reused by the capstone:
:func:`quantize_weight_per_channel`, :func:`quantized_linear`, :func:`dynamic_quantized_linear`,
:func:`choose_qparams_dynamic`.  Thin modules: :class:`DynamicQuantizedLinear`,
:func:`quantize_dynamic` (an ``nn.MLP`` -> :class:`QuantizedSequential`).

PyTorch: ``torch.ao.quantization.quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig})``
(fbgemm on x86) and torchao's ``Int8DynamicActivationInt8WeightConfig``.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..kernels.int8 import has_vnni, int8_matmul, int8_matmul_numpy, pack_int8_weights
from ..validation import as_array
from .affine import check_scale, quantize_per_tensor
from .observers import choose_qparams

__all__ = ["quantize_weight_per_channel", "choose_qparams_dynamic", "dynamic_quantized_linear",
           "quantized_linear", "DynamicQuantizedLinear", "QuantizedSequential", "quantize_dynamic",
           "SMALL_SCALE_THRESHOLD"]

SMALL_SCALE_THRESHOLD = 6.1e-5


def quantize_weight_per_channel(W, bits: int = 8):
    """Symmetric per-output-channel quantization of a weight matrix.

    W: (out, in) float.  bits: 2..8 (codes in ``[-2**(bits-1), 2**(bits-1) - 1]``).
    Returns ``(q int8 (out, in), scales float32 (out,), zero_points int64 (out,) all 0)`` with
    ``W ~ scales[:, None] * q``.  The scale rule is torch's ``PerChannelMinMaxObserver(ch_axis=0,
    dtype=torch.qint8, qscheme=torch.per_channel_symmetric)``: ``max|W_j| / ((qmax - qmin) / 2)``;
    codes are rounded like ``torch.quantize_per_channel``.
    """
    from .affine import quantize_per_channel
    W = as_array("W", W, ndim=2, dtype_kind="f")
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an integer in [2, 8], got {bits!r}")
    kw = {} if bits == 8 else dict(quant_min=-(2 ** (bits - 1)), quant_max=2 ** (bits - 1) - 1)
    scales, zps = choose_qparams(W.min(axis=1), W.max(axis=1), "qint8", "per_channel_symmetric", **kw)
    q = quantize_per_channel(W, scales, zps, 0, "qint8")
    if bits < 8:
        q = np.clip(q, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1).astype(np.int8)
    return q, scales, zps


def choose_qparams_dynamic(x_min: float, x_max: float, *, reduce_range: bool = True):
    """Scale (float32) and zero-point (int) for dynamically quantizing activations to uint8.

    fbgemm's rule (``quant_utils::ChooseQuantizationParams``), not the observers': the range is
    widened to contain 0, ``scale = (max - min) / (qmax - qmin)`` in float64; a scale below
    ``SMALL_SCALE_THRESHOLD`` = 6.1e-5 is raised to it; the zero-point is taken from whichever
    end has the smaller rounding error, then rounded (ties to even) and clamped.  ``reduce_range``
    (torch's default for dynamic Linear) uses codes 0..127, so that fbgemm's int16 intermediate
    sums of two uint8 x int8 products cannot overflow.
    """
    if not np.isfinite(x_min) or not np.isfinite(x_max) or x_min > x_max:
        raise ValueError(f"x_min and x_max must be finite with x_min <= x_max, got {x_min!r}, {x_max!r}")
    qmin, qmax = (0, 127) if reduce_range else (0, 255)
    lo, hi = min(float(np.float32(x_min)), 0.0), max(float(np.float32(x_max)), 0.0)
    scale = (hi - lo) / (qmax - qmin)
    if np.float32(scale) == 0 or not np.isfinite(np.float32(1) / np.float32(scale)):
        scale = 0.1
    if scale < SMALL_SCALE_THRESHOLD:
        org = scale
        scale = SMALL_SCALE_THRESHOLD
        if lo == 0.0:
            hi = SMALL_SCALE_THRESHOLD * (qmax - qmin)
        elif hi == 0.0:
            lo = -SMALL_SCALE_THRESHOLD * (qmax - qmin)
        else:
            lo, hi = lo * (SMALL_SCALE_THRESHOLD / org), hi * (SMALL_SCALE_THRESHOLD / org)
    zp_min, zp_max = qmin - lo / scale, qmax - hi / scale
    err_min, err_max = abs(qmin) + abs(lo / scale), abs(qmax) + abs(hi / scale)
    initial = zp_min if err_min < err_max else zp_max
    zp = qmin if initial < qmin else qmax if initial > qmax else int(np.rint(initial))
    return np.float32(scale), int(zp)


def _int_gemm(xq, wq, backend, packed=None):
    # xq (n, in) uint8/int8, wq (out, in) int8 -> (n, out) int32; packed: wq.T prepacked for VNNI
    if backend == "numba":
        return int8_matmul(xq, packed if packed is not None else np.ascontiguousarray(wq.T))
    if backend == "numpy":
        return int8_matmul_numpy(xq, wq.T)
    raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")


def dynamic_quantized_linear(x, w_q, w_scales, bias=None, *, reduce_range: bool = True, backend: str = "numba",
                             packed=None):
    """``x @ W.T + b`` with int8 weights and activations quantized on the fly (int32 accumulation).

    x: (n, in) float; w_q: (out, in) int8 symmetric codes; w_scales: (out,) float32 (per channel)
    or a single float (per tensor); bias: (out,) float or None.  Returns (n, out) float32.
    Steps: ``(s_x, z_x) = choose_qparams_dynamic(min x, max x)``; ``q_x = quantize_per_tensor(x)``
    (uint8); ``acc = q_x @ w_q.T - z_x * colsum(w_q)`` (int32, exact);
    ``y = fma(acc, float32(s_x * s_w), b)`` rounded once to float32.
    packed: optional ``pack_int8_weights(w_q.T)`` (reused across calls by
    :class:`DynamicQuantizedLinear`, as fbgemm prepacks its weights).
    PyTorch: ``torch.ops.quantized.linear_dynamic`` (fbgemm), the same float32 numbers on x86
    (the tests check bit equality on the digits MLP; a CPU without FMA would round twice).
    """
    x = as_array("x", x, ndim=2, dtype_kind="f").astype(np.float32, copy=False)
    w_q = as_array("w_q", w_q, ndim=2, dtype_kind="i")
    if w_q.dtype != np.int8:
        raise TypeError(f"w_q must be int8, got {w_q.dtype}")
    if x.shape[1] != w_q.shape[1]:
        raise ValueError(f"x must have {w_q.shape[1]} columns to match w_q {w_q.shape}, got {x.shape}")
    out_f = w_q.shape[0]
    w_scales = np.broadcast_to(np.asarray(w_scales, dtype=np.float32), (out_f,))
    if x.size:
        s_x, z_x = choose_qparams_dynamic(float(x.min()), float(x.max()), reduce_range=reduce_range)
    else:
        s_x, z_x = np.float32(1.0), 0
    x_q = quantize_per_tensor(x, s_x, z_x, "quint8")
    acc = _int_gemm(x_q, w_q, backend, packed)
    colsum = packed.colsum if packed is not None else w_q.astype(np.int32).sum(axis=1)  # sum_p w_q[j, p]
    acc -= np.int32(z_x) * colsum
    mult = (s_x * w_scales).astype(np.float32)
    b = np.zeros(out_f, np.float32) if bias is None else as_array("bias", bias, ndim=1, dtype_kind="f").astype(np.float32)
    # fbgemm's epilogue is one fused multiply-add per output, float32(acc * mult + b) rounded once;
    # float64 holds acc * mult exactly while |acc| < 2**29, so this is the same float32 number
    return (acc.astype(np.float64) * mult.astype(np.float64) + b.astype(np.float64)).astype(np.float32)


def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scales, bias, out_scale, out_zero_point, *,
                     relu: bool = False, backend: str = "numba"):
    """Static integer Linear: uint8 codes in, uint8 codes out (int32 accumulation, requantization).

    x_q: (n, in) uint8 codes with ``(x_scale, x_zero_point)``; w_q: (out, in) int8, w_scales: (out,)
    float32 (symmetric, zero-point 0); bias: (out,) float or None; ``(out_scale, out_zero_point)``:
    the output's calibrated qparams.  ``relu=True`` fuses the ReLU into the clamp (codes below
    ``out_zero_point`` are real values below 0).  Returns (n, out) uint8::

        acc = (x_q @ w_q.T) - x_zero_point * colsum(w_q)                  # int32, exact
        q_y = clamp(round(acc * (x_scale * w_scales / out_scale) + bias / out_scale) + out_zero_point)

    (Jacob et al. write the multiplier ``x_scale * w_scale / out_scale`` as a fixed-point integer;
    here it is float32.)  PyTorch: ``torch.ao.nn.quantized.Linear`` / ``LinearReLU``.
    """
    x_q = as_array("x_q", x_q, ndim=2, dtype_kind="u")
    if x_q.dtype != np.uint8:
        raise TypeError(f"x_q must be uint8, got {x_q.dtype}")
    w_q = as_array("w_q", w_q, ndim=2, dtype_kind="i")
    if x_q.shape[1] != w_q.shape[1]:
        raise ValueError(f"x_q must have {w_q.shape[1]} columns to match w_q {w_q.shape}, got {x_q.shape}")
    x_scale, out_scale = check_scale(x_scale, "x_scale"), check_scale(out_scale, "out_scale")
    for name, zp in (("x_zero_point", x_zero_point), ("out_zero_point", out_zero_point)):
        if isinstance(zp, bool) or not isinstance(zp, (int, np.integer)) or not 0 <= zp <= 255:
            raise ValueError(f"{name} must be an integer in [0, 255], got {zp!r}")
    w_scales = np.broadcast_to(np.asarray(w_scales, dtype=np.float32), (w_q.shape[0],))
    acc = _int_gemm(x_q, w_q, backend)
    acc -= np.int32(x_zero_point) * w_q.astype(np.int32).sum(axis=1)
    mult = (x_scale * w_scales / out_scale).astype(np.float32)
    v = acc.astype(np.float32) * mult
    if bias is not None:
        v += (np.asarray(bias, dtype=np.float32) / out_scale).astype(np.float32)
    q = np.rint(v) + out_zero_point
    return np.clip(q, out_zero_point if relu else 0, 255).astype(np.uint8)


class DynamicQuantizedLinear(nn.Module):
    """A Linear layer with int8 per-channel (or per-tensor) weights, dynamic uint8 activations.

    Build with :meth:`from_float` (an ``nn.Linear``).  ``forward(x)``: (n, in) float -> (n, out)
    float32 via :func:`dynamic_quantized_linear`.  Inference only (no backward).
    ``torch.ao.nn.quantized.dynamic.Linear``.
    """

    def __init__(self, w_q, w_scales, bias, *, reduce_range: bool = True, backend: str = "numba"):
        self.w_q, self.w_scales = w_q, np.asarray(w_scales, dtype=np.float32)
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float32)
        self.in_features, self.out_features = w_q.shape[1], w_q.shape[0]
        self.reduce_range, self.backend = reduce_range, backend
        self._packed = (pack_int8_weights(np.ascontiguousarray(w_q.T)) if backend == "numba" and has_vnni()
                        else None)

    @classmethod
    def from_float(cls, linear, *, per_channel: bool = True, bits: int = 8, reduce_range: bool = True,
                   backend: str = "numba"):
        W = linear.weight
        if per_channel:
            q, s, _ = quantize_weight_per_channel(W, bits)
        else:  # torch's default_weight_observer: per-tensor symmetric qint8
            s, _ = choose_qparams(W.min(), W.max(), "qint8", "per_tensor_symmetric")
            q = quantize_per_tensor(W, float(s[0]), 0, "qint8")
        return cls(q, s, linear.bias, reduce_range=reduce_range, backend=backend)

    def forward(self, x):
        return dynamic_quantized_linear(x, self.w_q, self.w_scales, self.bias, reduce_range=self.reduce_range,
                                        backend=self.backend, packed=self._packed)

    def dequantized_weight(self) -> np.ndarray:
        """(out, in) float32: the weights the integer arithmetic represents."""
        return (self.w_q.astype(np.float32) * self.w_scales[:, None]).astype(np.float32)

    def nbytes(self) -> int:
        """Bytes of the stored weights (int8 codes + float32 scales + float32 bias)."""
        return int(self.w_q.nbytes + self.w_scales.nbytes + (0 if self.bias is None else self.bias.nbytes))

    def backward(self, dout):
        raise RuntimeError("DynamicQuantizedLinear is for inference only (train with fake quantization, course_lib.quant.qat)")

    def named_parameters(self):
        return []

    def __repr__(self):
        return (f"DynamicQuantizedLinear({self.in_features}, {self.out_features}, qint8, "
                f"{'per_channel' if self.w_scales.size > 1 else 'per_tensor'})")


class QuantizedSequential:
    """Layers run in order (inference only): the result of :func:`quantize_dynamic`.

    ``forward(X)`` / ``predict(X)`` like ``nn.Sequential``; ``nbytes()`` sums the stored weights.
    """

    def __init__(self, layers):
        self.layers = list(layers)

    def forward(self, X):
        x = as_array("X", X, ndim=2, dtype_kind="fiu").astype(np.float32)
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def predict(self, X) -> np.ndarray:
        return np.argmax(self.forward(X), axis=1)

    def nbytes(self) -> int:
        return int(sum(layer.nbytes() for layer in self.layers if hasattr(layer, "nbytes")))

    def __repr__(self):
        return "QuantizedSequential(\n" + "\n".join(f"  ({i}): {l!r}" for i, l in enumerate(self.layers)) + "\n)"


def quantize_dynamic(model, *, per_channel: bool = True, bits: int = 8, reduce_range: bool = True,
                     backend: str = "numba") -> QuantizedSequential:
    """Every ``nn.Linear`` of ``model`` (an ``nn.Sequential``/``nn.MLP``) replaced by a
    :class:`DynamicQuantizedLinear`; activations kept.  The float model is not changed.

    ``torch.ao.quantization.quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig},
    dtype=torch.qint8)`` (``per_channel=False``: the default qconfig, per-tensor weights).
    """
    layers = []
    for layer in model.layers:
        if isinstance(layer, nn.Linear):
            layers.append(DynamicQuantizedLinear.from_float(layer, per_channel=per_channel, bits=bits,
                                                            reduce_range=reduce_range, backend=backend))
        else:
            layers.append(type(layer)())
    return QuantizedSequential(layers)
