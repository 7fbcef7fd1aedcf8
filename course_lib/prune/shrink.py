r"""Structured pruning that really shrinks: remove dead hidden units, get a smaller dense model.

A hidden unit :math:`j` of layer :math:`k` computes :math:`h_j = \sigma(W^{(k)}_{j,:} x + b^{(k)}_j)`
and feeds the next layer through the column :math:`W^{(k+1)}_{:,j}`.  It can be deleted
without changing any output when

- its incoming row is all zero (``ln_structured(layer, "weight", amount, n, dim=0)`` prunes
  rows): then :math:`h_j = \sigma(b^{(k)}_j)` is a constant, which we fold into the next
  bias, :math:`b^{(k+1)} \mathrel{+}= W^{(k+1)}_{:,j}\,\sigma(b^{(k)}_j)`; or
- its outgoing column is all zero (``dim=1`` on the next layer): nobody reads it.

Deleting the unit removes row :math:`j` of :math:`W^{(k)}`, entry :math:`j` of
:math:`b^{(k)}` and column :math:`j` of :math:`W^{(k+1)}`: ``in + 1 + out`` parameters and
``in + out`` multiply-adds per sample, really gone (unlike unstructured zeros, which a dense
matrix product still multiplies).  The outputs agree to round-off (the folded bias changes
the order of one addition).
"""

from __future__ import annotations

import numpy as np

from .tools import effective_weight

__all__ = ["shrink"]


def _unpack(model):
    from ..nn import Linear, MLP, Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a course_lib.nn Sequential or MLP, got {type(model).__name__}")
    layers = list(model.layers)
    lins, acts = layers[0::2], layers[1::2]
    ok = (len(layers) % 2 == 1 and all(isinstance(l, Linear) and l.bias is not None for l in lins)
          and not any(isinstance(a, Linear) for a in acts))
    if not ok:
        raise ValueError("model must alternate Linear (with bias) and activation layers, "
                         "got " + ", ".join(type(l).__name__ for l in layers))
    return lins, acts, MLP, Sequential


def shrink(model, *, return_kept: bool = False):
    """A smaller dense copy of ``model`` without its dead hidden units (see the module text).

    model: an :class:`~course_lib.nn.MLP` or ``Sequential(Linear, act, Linear, ..., Linear)``,
           pruned or not (masks are applied: the copy computes with ``weight_orig * weight_mask``).
    Returns the new model (same class, dtype and activation; no masks; hidden widths reduced),
    and with ``return_kept=True`` also ``[kept unit indices (int64 array) per hidden layer]``.
    ``new(X)`` equals ``model(X)`` to round-off.  A layer whose units are all dead keeps one
    unit with zero weights, so every width stays >= 1.  PyTorch has no counterpart (its
    structured pruning only zeroes); this is what "structured pruning saves time" needs.
    """
    lins, acts, MLP, Sequential = _unpack(model)
    Ws = [effective_weight(l, "weight").copy() for l in lins]
    bs = [effective_weight(l, "bias").copy() for l in lins]
    kept_all = []
    for k, act in enumerate(acts):
        W, b, W_next = Ws[k], bs[k], Ws[k + 1]
        dead_in = ~np.any(W != 0, axis=1)          # zero incoming row: a constant unit
        dead_out = ~np.any(W_next != 0, axis=0)    # zero outgoing column: an unread unit
        fold = dead_in & ~dead_out
        if np.any(fold):                           # its constant output moves into the next bias
            const = act.forward(b[fold][None, :])[0]
            bs[k + 1] = bs[k + 1] + W_next[:, fold] @ const
        kept = np.flatnonzero(~(dead_in | dead_out))
        if kept.size == 0:                         # keep one silent unit: widths stay >= 1
            kept = np.array([0])
            W[0], b[0] = 0, 0
            W_next[:, 0] = 0
        Ws[k], bs[k] = W[kept], b[kept]
        Ws[k + 1] = W_next[:, kept]
        kept_all.append(kept.astype(np.int64))
    dtype = Ws[0].dtype
    sizes = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    if isinstance(model, MLP):
        new = MLP(sizes, model.activation, dtype=dtype, backend=model.backend)
    else:
        from ..nn import Linear
        layers = []
        for k, (a, b_) in enumerate(zip(sizes[:-1], sizes[1:])):
            if k:
                layers.append(type(acts[k - 1])())
            layers.append(Linear(a, b_, dtype=dtype))
        new = Sequential(*layers, backend=model.backend)
    state = {}
    for k in range(len(Ws)):
        state[f"{2 * k}.weight"], state[f"{2 * k}.bias"] = Ws[k], bs[k]
    new.load_state_dict(state)
    return (new, kept_all) if return_kept else new
