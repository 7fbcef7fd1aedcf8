r"""Gradient clipping by norm: ``torch.nn.utils.clip_grad_norm_`` for lists of NumPy arrays.

All gradients are treated as one long vector.  Its norm

.. math:: \lVert g\rVert_p = \Bigl(\sum_i \lVert g_i\rVert_p^p\Bigr)^{1/p}
          \quad(\max_i \lVert g_i\rVert_\infty \text{ for } p = \infty)

is computed, and if it exceeds ``max_norm`` every gradient is multiplied **in place** by
``max_norm / (norm + 1e-6)`` — the direction is kept, only the length is capped.  The norm
*before* clipping is returned (log it: spikes in it are what clipping protects against).

PyTorch: ``torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type=2.0,
error_if_nonfinite=False)``, which reads ``p.grad``; here the gradient arrays are passed.
Like PyTorch, the per-array norms are taken first and then the norm of those norms, and the
factor is clamped to at most 1 and applied to every gradient.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["clip_grad_norm_"]


def clip_grad_norm_(grads, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale ``grads`` (list of float arrays, updated in place) to total norm <= ``max_norm``.

    grads: list of float32/float64 arrays (any shapes), e.g. ``net.grads``.
    max_norm: >= 0.  norm_type: a positive number or ``math.inf``.
    error_if_nonfinite: raise ``ValueError`` if the total norm is NaN or inf (else the
        gradients are scaled by a NaN factor, as in PyTorch).
    Returns the total norm of the gradients before clipping (a Python float).
    """
    if isinstance(grads, np.ndarray):
        grads = [grads]
    if isinstance(grads, (str, bytes, dict)) or not hasattr(grads, "__iter__"):
        raise TypeError(f"grads must be a list of arrays, got {type(grads).__name__}")
    grads = list(grads)
    for i, g in enumerate(grads):
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise TypeError(f"grads[{i}] must be a float NumPy array, got {type(g).__name__}"
                            + (f" of dtype {g.dtype}" if isinstance(g, np.ndarray) else ""))
    for name, v in (("max_norm", max_norm), ("norm_type", norm_type)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v):
            raise TypeError(f"{name} must be a number, got {v!r}")
    if max_norm < 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm!r}")
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0 (or math.inf), got {norm_type!r}")
    if not grads:
        return 0.0
    dtype = np.result_type(*grads)
    if math.isinf(norm_type):
        per_array = np.array([np.max(np.abs(g)) if g.size else 0.0 for g in grads], dtype=dtype)
        total = float(np.max(per_array))
    else:
        p = float(norm_type)
        per_array = np.array([np.sum(np.abs(g) ** p) ** (1.0 / p) for g in grads], dtype=dtype)
        total = float(np.sum(per_array ** p) ** (1.0 / p))
    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(f"the total norm of order {norm_type} of the gradients is {total}: "
                         "non-finite, cannot clip")
    coef = dtype.type(max_norm) / (dtype.type(total) + dtype.type(1e-6))
    coef = min(coef, dtype.type(1.0)) if not np.isnan(coef) else coef
    for g in grads:
        g *= g.dtype.type(coef)
    return total
