r"""Gradient checking: compare an analytic gradient with centred finite differences.

.. math:: \frac{\partial f}{\partial x_j} \approx \frac{f(x + h e_j) - f(x - h e_j)}{2h}

The centred difference has error :math:`O(h^2)` (the one-sided :math:`(f(x+h) - f(x))/h`
only :math:`O(h)`).  Round-off adds about :math:`\epsilon |f| / h`, so with float64
(:math:`\epsilon \approx 10^{-16}`) and ``h = 1e-5`` both errors are near :math:`10^{-10}`:
a correct backward pass gives relative errors of about 1e-7 or smaller, a wrong one about 1
(and with float32, :math:`\epsilon \approx 10^{-7}`, nothing can be checked: use float64).

Relative error is :func:`course_lib.utils.rel_error`: ``max |a - b| / (|a| + |b|)``.

==========================================  ==============================================
ours                                        PyTorch
==========================================  ==============================================
``numerical_gradient(f, x, h)``             (inside) ``torch.autograd.gradcheck``
``gradcheck(f, inputs, grads)``             ``torch.autograd.gradcheck(f, inputs)``
``check_layer(layer, x)``                   ``gradcheck`` on a module's forward
==========================================  ==============================================

Each numerical gradient costs two evaluations of ``f`` per entry of ``x``: check small
problems (a few hundred parameters), not the full model.
"""

from __future__ import annotations

import numpy as np

from .data import _rng
from .utils import rel_error
from .validation import as_array

__all__ = ["numerical_gradient", "gradcheck", "check_layer"]


def numerical_gradient(f, x, h=1e-5):
    r"""Centred-difference gradient of a scalar function at ``x``.

    Inputs:
        f: callable, ``f(x) -> float`` (a scalar; it may also ignore its argument and read
           ``x`` through a closure: ``x`` is perturbed **in place**)
        x: float ndarray of any shape (float64 for meaningful results); every entry is
           restored exactly after its perturbation
        h: step, > 0
    Returns:
        grad: float64 array of ``x``'s shape, ``grad[j] = (f(x + h e_j) - f(x - h e_j)) / (2h)``
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a NumPy array (it is perturbed in place), got {type(x).__name__}")
    as_array("x", x, dtype_kind="f")
    if x.dtype == np.float16:  # x + 1e-5 == x in half precision: every difference would be 0
        raise TypeError("x must be float32 or float64, got float16 (too coarse for finite differences)")
    if isinstance(h, bool) or not (isinstance(h, (int, float)) and np.isfinite(h) and h > 0):
        raise ValueError(f"h must be a finite number > 0, got {h!r}")
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    grad = np.zeros(x.shape, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        j = it.multi_index
        old = x[j]
        x[j] = old + h
        f_plus = _scalar(f(x))
        x[j] = old - h
        f_minus = _scalar(f(x))
        x[j] = old  # restore exactly (old was read before any change)
        grad[j] = (f_plus - f_minus) / (2 * h)
    return grad


def _scalar(v) -> float:
    if isinstance(v, tuple):  # allow f returning (loss, grad) like course_lib.losses
        v = v[0]
    arr = np.asarray(v)
    if arr.size != 1:
        raise ValueError(f"f must return a scalar, got an array of shape {arr.shape}")
    return float(arr.reshape(()))


def gradcheck(f, inputs, grads, *, h=1e-5) -> list:
    r"""Relative errors between analytic gradients and numerical ones, one per input.

    Inputs:
        f: callable, ``f(*inputs) -> float`` (scalar); may read the inputs through a closure
        inputs: list of float ndarrays (perturbed in place one entry at a time, restored)
        grads: list of arrays, the analytic gradients, aligned with ``inputs`` (same shapes)
        h: finite-difference step
    Returns:
        list of floats, ``rel_error(numerical, analytic)`` per input (1e-7 or less: correct)
    """
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if isinstance(grads, np.ndarray):
        grads = [grads]
    inputs, grads = list(inputs), list(grads)
    if len(inputs) != len(grads):
        raise ValueError(f"grads must have one entry per input: got {len(grads)} grads "
                         f"for {len(inputs)} inputs")
    errors = []
    for i, (x, g) in enumerate(zip(inputs, grads)):
        g = as_array(f"grads[{i}]", g, dtype_kind="f")
        if g.shape != np.shape(x):
            raise ValueError(f"grads[{i}] must have shape {np.shape(x)} like inputs[{i}], got {g.shape}")
        num = numerical_gradient(lambda _: f(*inputs), x, h)
        errors.append(rel_error(num, g))
    return errors


def check_layer(layer, x, *, h=1e-5, seed=0) -> dict:
    r"""Gradient-check a module's ``backward`` against its ``forward``.

    Uses the scalar :math:`L = \sum \mathrm{forward}(x) \odot G` with a fixed random ``G``
    (so :math:`\partial L / \partial\,\mathrm{out} = G`, every output entry matters), then
    compares ``backward(G)`` with numerical gradients with respect to ``x`` and every
    parameter.  Works on any :class:`course_lib.nn.Module` (a layer or a whole Sequential).

    Inputs:
        layer: a Module with float64 parameters (``model.astype(np.float64)``)
        x: (n, in) input, converted to float64
    Returns:
        ``{"x": err, "weight": err, "bias": err, ...}``: relative error per input and
        per named parameter (torch's names, e.g. ``"0.weight"`` in a Sequential).
    """
    for name, p in layer.named_parameters():
        if p.dtype != np.float64:
            raise TypeError(f"gradient checks need float64 parameters, but {name} is {p.dtype}: "
                            f"use a float64 model (e.g. model.astype(np.float64))")
    x = np.array(as_array("x", x, dtype_kind="fiu"), dtype=np.float64, copy=True)
    out = layer.forward(x)
    G = _rng(seed).standard_normal(np.shape(out))
    dx = np.array(layer.backward(G), copy=True)
    analytic = {name: np.array(g, copy=True) for name, g in layer.named_grads()}

    def L(_):
        return float(np.sum(layer.forward(x) * G))

    errors = {"x": rel_error(numerical_gradient(L, x, h), dx)}
    for name, p in layer.named_parameters():
        errors[name] = rel_error(numerical_gradient(L, p, h), analytic[name])
    layer.forward(x)  # leave the layer's cache as after the analytic pass
    return errors
