r"""Quantized MLPs for the experiments: simulated (fake-quant) training and integer-only inference.

:class:`QuantMLP` wraps the weights of an ``nn.MLP`` (copied: the float model is untouched) and
runs every Linear with

- quantized **weights**: ``weights="int"`` (``w_bits`` per-channel symmetric, as
  :func:`~course_lib.quant.qlinear.quantize_weight_per_channel`), ``"binary"`` (``sign(W)``),
  ``"xnor"`` (``sign(W) * mean|W|`` per row) or ``"float"``;
- optionally quantized **activations** at the input of every Linear (``a_bits``, unsigned affine
  codes ``0 .. 2**a_bits - 1``), with ranges from :meth:`QuantMLP.calibrate` (post-training:
  min/max or a percentile of calibration data) or from moving-average observers while it trains.

It has ``forward``/``backward``/``params``/``grads`` like ``nn.MLP``, so ``nn.fit`` trains it:
the backward pass uses the straight-through estimator of every quantizer, the optimizer updates
the float *shadow* weights.  That is quantization-aware training (QAT) and, with binary
weights, BinaryConnect.  :meth:`QuantMLP.to_integer` turns a calibrated 8-bit model into an
:class:`IntegerMLP` that runs uint8 codes through :func:`~course_lib.quant.qlinear.quantized_linear`
(int32 accumulation, requantization, fused ReLU): Jacob et al.'s integer-only inference.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import nn
from ..validation import as_array
from .affine import dequantize, quantize_per_tensor
from .binary import binarize_backward, binarize_forward
from .fake_quant import fake_quant_backward, fake_quant_forward, fake_quant_per_channel_forward
from .observers import MovingAverageMinMaxObserver, choose_qparams, percentile_range
from .qlinear import quantize_weight_per_channel, quantized_linear

__all__ = ["QuantMLP", "IntegerMLP", "WEIGHT_MODES"]

WEIGHT_MODES = ("float", "int", "binary", "xnor")


def _check_bits(name, bits, allow_none):
    if bits is None and allow_none:
        return None
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not 2 <= bits <= 8:
        raise ValueError(f"{name} must be an integer in [2, 8]{' or None' if allow_none else ''}, got {bits!r}")
    return int(bits)


class QuantMLP:
    """An MLP whose Linear layers see quantized weights (and optionally activations).

    net: a trained or fresh ``nn.MLP`` with ReLU (its weights are copied).  weights: one of
    ``WEIGHT_MODES``; w_bits: 2..8, or a list with one per Linear layer (``weights="int"``);
    a_bits: 2..8 or None (float activations).
    averaging_constant: of the activation observers while ``observing`` (training) is on.
    """

    def __init__(self, net, *, weights: str = "int", w_bits: int = 8, a_bits=None,
                 averaging_constant: float = 0.01):
        if weights not in WEIGHT_MODES:
            raise ValueError(f"weights must be one of {WEIGHT_MODES}, got {weights!r}")
        if getattr(net, "activation", "relu") != "relu":
            raise ValueError(f"net must use ReLU activations, got {net.activation!r}")
        lins = [layer for layer in net.layers if isinstance(layer, nn.Linear)]
        if isinstance(w_bits, (list, tuple)):
            if len(w_bits) != len(lins):
                raise ValueError(f"w_bits must be one integer or one per Linear layer ({len(lins)}), got {w_bits!r}")
            self.layer_bits = [_check_bits(f"w_bits[{i}]", b, False) for i, b in enumerate(w_bits)]
        else:
            self.layer_bits = [_check_bits("w_bits", w_bits, False)] * len(lins)
        self.weights, self.w_bits = weights, w_bits
        self.a_bits = _check_bits("a_bits", a_bits, True)
        self.W = [l.weight.astype(np.float32, copy=True) for l in lins]
        self.b = [l.bias.astype(np.float32, copy=True) for l in lins]
        self.gW = [np.zeros_like(w) for w in self.W]
        self.gb = [np.zeros_like(b) for b in self.b]
        self.params = [p for pair in zip(self.W, self.b) for p in pair]
        self.grads = [g for pair in zip(self.gW, self.gb) for g in pair]
        self.observing = self.a_bits is not None
        self.observers = ([MovingAverageMinMaxObserver(averaging_constant, "quint8", quant_min=0,
                                                       quant_max=2 ** self.a_bits - 1) for _ in lins]
                          if self.a_bits else None)
        self.act_qparams = None     # [(scale, zero_point)] per Linear input, fixed after calibrate()
        self.out_range = None       # (lo, hi) of the logits seen in calibrate(), for to_integer()
        self._caches = None

    # -- quantizers ------------------------------------------------------------------------
    def quantized_weight(self, l: int):
        """``(W_q float32 (out, in), cache)``: the weights layer ``l`` computes with."""
        W = self.W[l]
        if self.weights == "float":
            return W, None
        if self.weights in ("binary", "xnor"):
            return binarize_forward(W, "row" if self.weights == "xnor" else None)
        bits = self.layer_bits[l]
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        kw = {} if bits == 8 else dict(quant_min=lo, quant_max=hi)
        scales, zps = choose_qparams(W.min(axis=1), W.max(axis=1), "qint8", "per_channel_symmetric", **kw)
        return fake_quant_per_channel_forward(W, scales, zps, 0, lo, hi)

    def _weight_backward(self, dW, cache):
        if self.weights == "float":
            return dW
        if self.weights in ("binary", "xnor"):
            return binarize_backward(dW, cache)
        return fake_quant_backward(dW, cache)

    def _act_qparams(self, l, x):
        if self.observing:
            self.observers[l].forward(x)
            s, z = self.observers[l].calculate_qparams()
            return float(s[0]), int(z[0])
        if self.act_qparams is None:
            raise RuntimeError("activation ranges unknown: call calibrate(X) or train with observing=True first")
        return self.act_qparams[l]

    # -- forward / backward ----------------------------------------------------------------
    def forward(self, X):
        x = as_array("X", X, ndim=2, dtype_kind="fiu").astype(np.float32)
        self._caches = []
        last = len(self.W) - 1
        for l in range(len(self.W)):
            act_cache = None
            if self.a_bits is not None:
                s, z = self._act_qparams(l, x)
                x, act_cache = fake_quant_forward(x, s, z, 0, 2 ** self.a_bits - 1)
            Wq, w_cache = self.quantized_weight(l)
            x, lin_cache = nn.linear_forward(x, Wq, self.b[l])
            relu_cache = None
            if l < last:
                x, relu_cache = nn.relu_forward(x)
            self._caches.append((act_cache, w_cache, lin_cache, relu_cache))
        return x

    __call__ = forward

    def backward(self, dout):
        if self._caches is None:
            raise RuntimeError("backward called before forward")
        d = dout
        for l in reversed(range(len(self.W))):
            act_cache, w_cache, lin_cache, relu_cache = self._caches[l]
            if relu_cache is not None:
                d = nn.relu_backward(d, relu_cache)
            d, dWq, db = nn.linear_backward(d, lin_cache)
            np.copyto(self.gW[l], self._weight_backward(dWq, w_cache), casting="same_kind")
            np.copyto(self.gb[l], db, casting="same_kind")
            if act_cache is not None:
                d = fake_quant_backward(d, act_cache)
        return d

    def predict(self, X):
        return np.argmax(self.forward(X), axis=1)

    # -- post-training calibration and conversion --------------------------------------------
    def calibrate(self, X, *, method: str = "minmax", percentile: float = 99.99):
        """Fix the activation ranges from calibration data ``X`` (layer by layer, through the
        quantized network) and stop observing.  method: ``"minmax"`` or ``"percentile"``."""
        if method not in ("minmax", "percentile"):
            raise ValueError(f"method must be 'minmax' or 'percentile', got {method!r}")
        x = as_array("X", X, ndim=2, dtype_kind="fiu").astype(np.float32)
        self.observing, qparams = False, []
        last = len(self.W) - 1
        for l in range(len(self.W)):
            if self.a_bits is not None:
                lo, hi = (float(x.min()), float(x.max())) if method == "minmax" else percentile_range(x, percentile)
                s, z = choose_qparams(lo, hi, "quint8", quant_min=0, quant_max=2 ** self.a_bits - 1)
                qparams.append((float(s[0]), int(z[0])))
                x = fake_quant_forward(x, qparams[-1][0], qparams[-1][1], 0, 2 ** self.a_bits - 1)[0]
            x = nn.linear_forward(x, self.quantized_weight(l)[0], self.b[l])[0]
            if l < last:
                x = np.maximum(x, 0)
        self.act_qparams = qparams if self.a_bits is not None else None
        self.out_range = (float(x.min()), float(x.max()))
        return self

    def to_integer(self, *, backend: str = "numba"):
        """An :class:`IntegerMLP` running uint8 codes (needs ``weights="int"``, ``w_bits=8``,
        ``a_bits=8`` and :meth:`calibrate`)."""
        if not (self.weights == "int" and set(self.layer_bits) == {8} and self.a_bits == 8 and self.act_qparams):
            raise ValueError("to_integer needs weights='int', w_bits=8, a_bits=8 and a calibrate() call")
        layers = [quantize_weight_per_channel(W, 8)[:2] + (b,) for W, b in zip(self.W, self.b)]
        s, z = choose_qparams(*self.out_range, "quint8")
        return IntegerMLP(layers, self.act_qparams + [(float(s[0]), int(z[0]))], backend=backend)


class IntegerMLP:
    """Integer-only inference: uint8 activation codes flow from layer to layer.

    layers: ``[(w_q int8 (out, in), w_scales float32 (out,), bias float32 (out,))]``;
    act_qparams: ``[(scale, zero_point)]`` for every Linear input plus one for the logits.
    ``forward(X)``: float (n, d) -> quantize once -> integer layers (ReLU fused) -> dequantized
    logits (n, classes) float32.
    """

    def __init__(self, layers, act_qparams, *, backend: str = "numba"):
        if len(act_qparams) != len(layers) + 1:
            raise ValueError(f"act_qparams must have {len(layers) + 1} entries, got {len(act_qparams)}")
        self.layers, self.act_qparams, self.backend = layers, act_qparams, backend

    def forward(self, X):
        s, z = self.act_qparams[0]
        q = quantize_per_tensor(as_array("X", X, ndim=2, dtype_kind="fiu"), s, z, "quint8")
        last = len(self.layers) - 1
        for l, (w_q, w_s, b) in enumerate(self.layers):
            (s_in, z_in), (s_out, z_out) = self.act_qparams[l], self.act_qparams[l + 1]
            q = quantized_linear(q, s_in, z_in, w_q, w_s, b, s_out, z_out, relu=l < last, backend=self.backend)
        s, z = self.act_qparams[-1]
        return dequantize(q, s, z)

    __call__ = forward

    def predict(self, X):
        return np.argmax(self.forward(X), axis=1)

    def nbytes(self) -> int:
        return int(sum(w.nbytes + s.nbytes + b.nbytes for w, s, b in self.layers))
