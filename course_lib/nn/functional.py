r"""The functional core of chapter 2: ``out, cache = op_forward(...)``, ``grads = op_backward(dout, cache)``.

Pure functions, no state; the stateful layers in :mod:`course_lib.nn.modules` call them.
See :mod:`course_lib.nn` for the interface every pair follows and the table of PyTorch
counterparts.
"""

from __future__ import annotations

import numpy as np

from ..validation import as_array

__all__ = [
    "linear_forward", "linear_backward", "relu_forward", "relu_backward",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "silu_forward", "silu_backward",
    "dropout_forward", "dropout_backward",
]


def _check_dout(dout, shape):
    """The upstream gradient of a backward pass: a float array of exactly the forward output's shape."""
    dout = as_array("dout", dout, dtype_kind="f", finite=False)
    if dout.shape != tuple(shape):
        raise ValueError(f"dout must have shape {tuple(shape)} like the forward output, got {dout.shape}")
    return dout


def linear_forward(x, W, b):
    r"""Affine map, ``torch.nn.functional.linear``.

    .. math:: \mathrm{out} = x W^\top + b

    Inputs:
        x: (n, in) float
        W: (out, in) float (torch's layout: one row per output unit)
        b: (out,) float, or ``None`` for no bias
    Returns:
        out: (n, out)
        cache: ``(x, W, b)`` for :func:`linear_backward`
    """
    x = as_array("x", x, ndim=2, dtype_kind="f", finite=False)
    W = as_array("W", W, ndim=2, dtype_kind="f", finite=False)
    if W.shape[1] != x.shape[1]:
        raise ValueError(f"W must have shape (out, {x.shape[1]}) to match x of shape {x.shape}, "
                         f"got {W.shape}")
    out = x @ W.T
    if b is not None:
        b = as_array("b", b, ndim=1, dtype_kind="f", finite=False)
        if b.shape != (W.shape[0],):
            raise ValueError(f"b must have shape ({W.shape[0]},) like W's rows, got {b.shape}")
        out += b
    return out, (x, W, b)


def linear_backward(dout, cache):
    r"""Backward pass of :func:`linear_forward`.

    With :math:`\mathrm{out} = xW^\top + b` and upstream gradient :math:`G = \partial L/\partial\,\mathrm{out}`:

    .. math:: \frac{\partial L}{\partial x} = G W,\qquad
              \frac{\partial L}{\partial W} = G^\top x,\qquad
              \frac{\partial L}{\partial b} = \textstyle\sum_i G_{i,:}

    (``db`` sums over the batch because ``b`` was broadcast to every row.)

    Inputs:
        dout: (n, out) float
        cache: ``(x, W, b)`` from :func:`linear_forward`
    Returns:
        dx: (n, in), dW: (out, in), db: (out,) (``None`` if the layer has no bias)
    """
    x, W, b = cache
    dout = _check_dout(dout, (x.shape[0], W.shape[0]))
    dx = dout @ W
    dW = dout.T @ x
    db = dout.sum(axis=0) if b is not None else None
    return dx, dW, db


def relu_forward(x):
    r"""Rectified linear unit, ``torch.relu``: :math:`\max(x, 0)` elementwise.

    Inputs:  x: any shape, float.
    Returns: out (like x), cache = ``x`` (the *input*; :func:`relu_backward` needs its sign).
    """
    x = as_array("x", x, dtype_kind="f", finite=False)
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    r"""Backward pass of :func:`relu_forward`: :math:`dx = dout \cdot [x > 0]`.

    The derivative at exactly 0 is taken as 0, as PyTorch does (the kink has no derivative;
    any value in [0, 1] is a valid subgradient, torch picks 0).

    Inputs:  dout: like x; cache: ``x`` from :func:`relu_forward`.
    Returns: dx, like x.
    """
    x = cache
    dout = _check_dout(dout, x.shape)
    return dout * (x > 0)


def tanh_forward(x):
    r"""Hyperbolic tangent, ``torch.tanh``.

    Inputs:  x: any shape, float.
    Returns: out = tanh(x), cache = ``out`` (the derivative is a function of the output).
    """
    x = as_array("x", x, dtype_kind="f", finite=False)
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    r"""Backward pass of :func:`tanh_forward`: :math:`dx = dout\,(1 - \tanh^2 x)`.

    Inputs:  dout: like x; cache: ``out`` from :func:`tanh_forward`.
    Returns: dx, like x.
    """
    out = cache
    dout = _check_dout(dout, out.shape)
    return dout * (1 - out * out)


def sigmoid_forward(x):
    r"""Logistic sigmoid, ``torch.sigmoid``: :math:`\sigma(x) = 1/(1 + e^{-x})`.

    Computed as :math:`\tfrac12(1 + \tanh(x/2))`, which never overflows.

    Inputs:  x: any shape, float.
    Returns: out = sigmoid(x), cache = ``out``.
    """
    x = as_array("x", x, dtype_kind="f", finite=False)
    out = 0.5 * (1 + np.tanh(0.5 * x))
    return out, out


def sigmoid_backward(dout, cache):
    r"""Backward pass of :func:`sigmoid_forward`: :math:`dx = dout\,\sigma(x)(1 - \sigma(x))`.

    Inputs:  dout: like x; cache: ``out`` from :func:`sigmoid_forward`.
    Returns: dx, like x.
    """
    out = cache
    dout = _check_dout(dout, out.shape)
    return dout * out * (1 - out)


def silu_forward(x):
    r"""SiLU ("swish"), ``torch.nn.functional.silu``: :math:`\mathrm{silu}(x) = x\,\sigma(x)`.

    Inputs:  x: any shape, float.
    Returns: out = x * sigmoid(x), cache = ``x`` (the derivative needs the input, not only the output).
    """
    x = as_array("x", x, dtype_kind="f", finite=False)
    return x * _sigmoid_tails(x), x


def silu_backward(dout, cache):
    r"""Backward pass of :func:`silu_forward` (product rule):
    :math:`dx = dout\,\sigma(x)\,\bigl(1 + x\,(1 - \sigma(x))\bigr)`.

    Inputs:  dout: like x; cache: ``x`` from :func:`silu_forward`.
    Returns: dx, like x.
    """
    x = cache
    dout = _check_dout(dout, x.shape)
    s = _sigmoid_tails(x)
    return dout * s * (1.0 + x * (1.0 - s))


def _sigmoid_tails(x):
    """Sigmoid accurate in *relative* terms in both tails (``0.5 * (1 + tanh(x / 2))`` loses
    digits for x << 0 by cancellation, which silu's x * sigmoid(x) would expose) and overflow-free."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def dropout_forward(x, p: float, rng, training: bool = True):
    r"""Inverted dropout: zero each entry with probability ``p``, scale the rest by ``1/(1-p)``.

    ``out = x * mask``, ``mask = [u >= p] / (1 - p)`` with ``u ~ U[0, 1)`` drawn from ``rng``
    (a ``np.random.Generator``), so ``E[out] = x`` and nothing changes at evaluation.
    ``training=False`` or ``p == 0``: identity (cache ``None``); ``p == 1``: all zeros.
    x: float array of any shape.  Returns ``(out, cache)``, the cache being the scaled mask.
    PyTorch: ``F.dropout(x, p, training)`` (same semantics, its own random numbers).
    """
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    x = as_array("x", x, dtype_kind="f", finite=False)
    if not training or p == 0.0:
        return x, None
    if p == 1.0:
        mask = np.zeros_like(x)
    else:
        mask = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1.0 - p)
    return x * mask, mask


def dropout_backward(dout, cache):
    """``dx = dout * mask`` (the same scaled mask); ``dout`` itself when the forward was the identity."""
    if cache is None:
        return as_array("dout", dout, dtype_kind="f", finite=False)
    return _check_dout(dout, cache.shape) * cache
