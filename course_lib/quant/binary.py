r"""Binary weights: one bit per weight (BinaryConnect 2015, XNOR-Net 2016), chapter 5.

**Sign.**  :math:`W_b = \operatorname{sign}(W) \in \{-1, +1\}` (``sign(0) = +1``).  A layer with
binary weights multiplies by :math:`\pm 1`: additions only.

**XNOR-Net's scale.**  For one output row :math:`w \in \mathbb R^n`, the :math:`\alpha \ge 0` and
:math:`b \in \{\pm1\}^n` minimising :math:`\|w - \alpha b\|^2` are :math:`b = \operatorname{sign}(w)`
and :math:`\alpha = \tfrac1n \sum_i |w_i|` (expand the square: :math:`\|w\|^2 - 2\alpha\, b^\top w + \alpha^2 n`,
maximise :math:`b^\top w` with :math:`b = \operatorname{sign} w`, then set the derivative in
:math:`\alpha` to 0).  Storing one float per row keeps the layer's output on the right scale.

**Training (BinaryConnect).**  Keep float *shadow* weights :math:`W`; the forward pass uses
:math:`W_b`; the backward pass uses the straight-through estimator
:math:`\partial L/\partial W \approx \partial L/\partial W_b \cdot \mathbb 1_{|W| \le 1}` (the gradient of
``hardtanh``); the optimizer updates the float :math:`W`, so many small steps can add up to a
sign flip (a binary weight alone could never move by less than 2).

Functional pair: ``(Wb, cache) = binarize_forward(W, scale)``, ``dW = binarize_backward(dWb, cache)``.
PyTorch has no binary layer; the tests check the scale against the least-squares optimum.
"""

from __future__ import annotations

import numpy as np

from ..validation import as_array

__all__ = ["binarize", "binarize_forward", "binarize_backward", "xnor_scale"]


def xnor_scale(W) -> np.ndarray:
    """XNOR-Net's per-row scale ``alpha = mean(|W|, axis=1)``: W (out, in) -> (out,) float32."""
    W = as_array("W", W, ndim=2, dtype_kind="f")
    return np.mean(np.abs(W), axis=1).astype(np.float32)


def binarize(W, scale: str | None = "row") -> np.ndarray:
    """``sign(W)`` (``+1`` at 0), times XNOR-Net's per-row ``alpha`` if ``scale == "row"``.

    W: (out, in) float.  scale: ``"row"`` or ``None``.  Returns float32 of W's shape.
    """
    return binarize_forward(W, scale)[0]


def binarize_forward(W, scale: str | None = "row"):
    """Forward of a binary weight: ``(Wb float32 (out, in), cache)``; see :func:`binarize`."""
    W = as_array("W", W, ndim=2, dtype_kind="f")
    if scale not in ("row", None):
        raise ValueError(f"scale must be 'row' or None, got {scale!r}")
    sign = np.where(W >= 0, np.float32(1), np.float32(-1))
    Wb = sign * xnor_scale(W)[:, None] if scale == "row" else sign
    return Wb.astype(np.float32), (np.abs(W) <= 1)


def binarize_backward(dWb, cache) -> np.ndarray:
    """Straight-through gradient to the float shadow weights: ``dWb`` where ``|W| <= 1``, else 0.

    (The scale's own small gradient is ignored, as in BinaryConnect's and most XNOR-Net code.)
    """
    mask = cache
    dWb = as_array("dWb", dWb, ndim=2, dtype_kind="f")
    if dWb.shape != mask.shape:
        raise ValueError(f"dWb must have shape {mask.shape}, got {dWb.shape}")
    return np.where(mask, dWb, np.zeros((), dtype=dWb.dtype))
