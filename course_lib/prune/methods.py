r"""``torch.nn.utils.prune`` for the course's NumPy layers: the same names, the same masks.

How torch prunes a parameter ``name`` of a module (and how we do, line for line):

1. the parameter is renamed ``name + "_orig"`` (the *same array*: optimizers that hold it keep
   working) and listed by ``named_parameters()`` after the others (``bias`` before
   ``weight_orig``);
2. a buffer ``name + "_mask"`` (0/1, the parameter's dtype) is registered;
3. a *forward pre-hook* recomputes ``module.name = name_orig * name_mask`` before every
   forward, so ``module.weight`` is stale between ``optimizer.step()`` and the next forward;
4. the gradient reaching ``name_orig`` is the masked one (autograd through the product;
   :class:`course_lib.nn.Linear` multiplies it by the mask in ``backward``), so pruned
   entries of ``name_orig`` never receive gradient -- but an optimizer whose *state* is
   non-zero (momentum, Adam) can still move them; the forward product keeps them out of
   the model all the same.

Pruning the same parameter again composes masks (torch's :class:`PruningContainer`): the
new method sees only what the previous masks left (the remaining entries for unstructured
methods, the remaining non-zero channels for structured ones), scored on the current
(masked) ``module.name``.  ``amount`` is a fraction of *those remaining* units if a float
(``round(amount * n)``, Python's round half to even) or an absolute count if an int.

=====================================================  ==================================
ours (``course_lib.prune``)                            PyTorch (``torch.nn.utils.prune``)
=====================================================  ==================================
``l1_unstructured(module, name, amount)``              same
``random_unstructured(module, name, amount, seed=0)``  same, torch's RNG instead of ``seed``
``ln_structured(module, name, amount, n, dim)``        same
``random_structured(module, name, amount, dim, seed)``  same, torch's RNG instead of ``seed``
``global_unstructured(parameters, pruning_method,      same (``parameters``: ``[(module,
amount=...)``                                          name), ...]``)
``custom_from_mask``, ``identity``, ``remove``,        same
``is_pruned``
=====================================================  ==================================

Which of several *tied* entries goes is unspecified in torch; ours takes the first ones in
memory order.  The count is always torch's.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..data import _rng
from ..nn.reparam import (BasePruningMethod, Identity, PruningContainer, _check_module,
                          _check_prunable, _validate_dim)

__all__ = [
    "BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
    "RandomStructured", "LnStructured", "CustomFromMask",
    "identity", "random_unstructured", "l1_unstructured", "random_structured", "ln_structured",
    "global_unstructured", "custom_from_mask", "remove", "is_pruned",
]


# -- validation (torch's rules; our errors are ValueError/TypeError naming the argument) ------------
def _validate_amount_init(amount):
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"amount must be an int (a count) or a float in [0, 1] (a fraction), "
                        f"got {amount!r}")
    if isinstance(amount, numbers.Integral):
        if amount < 0:
            raise ValueError(f"amount must be a non-negative int or a float in [0, 1], got {amount!r}")
    elif not (0.0 <= float(amount) <= 1.0):  # also rejects NaN
        raise ValueError(f"amount must be a non-negative int or a float in [0, 1], got {amount!r}")


def _compute_nparams_toprune(amount, tensor_size: int) -> int:
    """An int amount is a count; a float one a fraction, ``round(amount * n)`` (half to even)."""
    if isinstance(amount, numbers.Integral):
        return int(amount)
    return round(float(amount) * tensor_size)


def _validate_amount(nparams_toprune: int, tensor_size: int, amount):
    if nparams_toprune > tensor_size:
        raise ValueError(f"amount={amount!r} is more than the {tensor_size} (remaining) units "
                         f"that can be pruned")


def _validate_structured(t):
    if t.ndim <= 1:
        raise ValueError(f"structured pruning needs a tensor with at least 2 dims (channels), "
                         f"got shape {t.shape}")


def _validate_norm(n):
    if isinstance(n, str):
        if n != "fro":
            raise ValueError(f"n must be a number (1, 2, inf, -inf, ...) or 'fro', got {n!r}")
    elif isinstance(n, bool) or not isinstance(n, numbers.Real) or np.isnan(n):
        raise ValueError(f"n must be a number (1, 2, inf, -inf, ...) or 'fro', got {n!r}")


def _compute_norm(t, n, dim):
    r"""The :math:`L_n` norm of every slice ``t[..., j, ...]`` along ``dim`` (over all other dims),
    as ``torch.norm(t, p=n, dim=others)``: shape ``(t.shape[dim],)``."""
    others = tuple(d for d in range(t.ndim) if d != dim)
    a = np.abs(t.astype(np.float64))
    if n == "fro" or n == 2:
        return np.sqrt(np.sum(a * a, axis=others))
    if n == np.inf:
        return np.max(a, axis=others)
    if n == -np.inf:
        return np.min(a, axis=others)
    if n == 0:
        return np.count_nonzero(a, axis=others).astype(np.float64)
    with np.errstate(divide="ignore"):
        return np.sum(a ** n, axis=others) ** (1.0 / n)


def _first_k(scores, k, *, largest):
    """Indices of the k smallest (or largest) entries of a 1-D array; ties go in memory order."""
    order = np.argsort(-scores if largest else scores, kind="stable")
    return order[:k]


class RandomUnstructured(BasePruningMethod):
    """Prune ``amount`` of the (remaining) entries at random.  seed: int or Generator
    (torch draws from its global RNG instead, so the masks differ; the counts agree)."""
    PRUNING_TYPE = "unstructured"

    def __init__(self, amount, seed=0):
        _validate_amount_init(amount)
        self.amount, self.rng = amount, _rng(seed)

    def compute_mask(self, t, default_mask):
        k = _compute_nparams_toprune(self.amount, t.size)
        _validate_amount(k, t.size, self.amount)
        mask = np.array(default_mask, copy=True)
        if k:
            prob = self.rng.random(t.size)
            mask.reshape(-1)[_first_k(prob, k, largest=True)] = 0
        return mask


class L1Unstructured(BasePruningMethod):
    """Prune the ``amount`` (remaining) entries of smallest ``|t|`` (torch's ``topk(largest=False)``)."""
    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        k = _compute_nparams_toprune(self.amount, t.size)
        _validate_amount(k, t.size, self.amount)
        mask = np.array(default_mask, copy=True)
        if k:
            mask.reshape(-1)[_first_k(np.abs(t).reshape(-1), k, largest=False)] = 0
        return mask


class RandomStructured(BasePruningMethod):
    """Prune ``amount`` of the (remaining) channels along ``dim`` at random (``t.shape[dim]``
    channels; for a Linear weight ``(out, in)``, ``dim=0`` removes output units)."""
    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1, seed=0):
        _validate_amount_init(amount)
        self.amount, self.dim, self.rng = amount, dim, _rng(seed)

    def compute_mask(self, t, default_mask):
        _validate_structured(t)
        dim = _validate_dim(t, self.dim)
        n = t.shape[dim]
        k = _compute_nparams_toprune(self.amount, n)
        _validate_amount(k, n, self.amount)
        if k == 0:
            return default_mask
        prob = self.rng.random(n)
        keep = np.ones(n, bool)
        keep[_first_k(prob, k, largest=False)] = False
        return _channel_mask(t, dim, keep) * default_mask


class LnStructured(BasePruningMethod):
    r"""Prune the ``amount`` (remaining) channels along ``dim`` of smallest :math:`L_n` norm, the
    norm taken over every other dim (``n``: 1, 2, ``np.inf``, ``-np.inf``, any real, or ``'fro'``)."""
    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim=-1):
        _validate_amount_init(amount)
        _validate_norm(n)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t, default_mask):
        _validate_structured(t)
        dim = _validate_dim(t, self.dim)
        size = t.shape[dim]
        k = _compute_nparams_toprune(self.amount, size)
        _validate_amount(k, size, self.amount)
        if k == 0:
            return default_mask
        norm = _compute_norm(np.asarray(t), self.n, dim)
        keep = np.zeros(size, bool)
        keep[_first_k(norm, size - k, largest=True)] = True
        return _channel_mask(t, dim, keep) * default_mask


def _channel_mask(t, dim, keep):
    mask = np.zeros_like(t)
    slc = [slice(None)] * t.ndim
    slc[dim] = keep
    mask[tuple(slc)] = 1
    return mask


class CustomFromMask(BasePruningMethod):
    """Apply a given 0/1 ``mask`` (composed with any earlier mask by multiplication)."""
    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = np.asarray(mask)

    def compute_mask(self, t, default_mask):
        if default_mask.shape != self.mask.shape:
            raise ValueError(f"mask must have shape {default_mask.shape}, got {self.mask.shape}")
        return default_mask * self.mask.astype(default_mask.dtype)


# -- the module-level functions ---------------------------------------------------------------------
def identity(module, name):
    """Install the reparametrisation with a mask of ones. Returns ``module``."""
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount, seed=0):
    """Prune ``amount`` of the remaining entries of ``module.name`` at random. Returns ``module``."""
    RandomUnstructured.apply(module, name, amount=amount, seed=seed)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    """Prune the ``amount`` remaining entries of ``module.name`` with smallest ``|w|``
    (or smallest ``|importance_scores|``). Returns ``module``."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim, seed=0):
    """Prune ``amount`` of the remaining channels along ``dim`` at random. Returns ``module``."""
    RandomStructured.apply(module, name, amount=amount, dim=dim, seed=seed)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    """Prune the ``amount`` remaining channels along ``dim`` of smallest Ln norm. For a Linear
    ``weight (out, in)``: ``dim=0`` ranks rows (output units), ``dim=1`` columns (inputs).
    Returns ``module``."""
    LnStructured.apply(module, name, amount=amount, n=n, dim=dim,
                       importance_scores=importance_scores)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """Prune across several parameters at once: one ranking of all their remaining entries.

    parameters:     ``[(module, name), ...]``
    pruning_method: an unstructured class (``L1Unstructured``, ``RandomUnstructured``)
    kwargs:         its arguments (``amount=...``; a float is a fraction of all the
                    remaining entries together, so layers end up with different sparsities)
    importance_scores: optional ``{(module, name): array}``.
    Ends, as torch does, with :func:`custom_from_mask` on every parameter.
    """
    if isinstance(parameters, (str, bytes)) or not hasattr(parameters, "__iter__"):
        raise TypeError(f"parameters must be a list of (module, name) pairs, got {parameters!r}")
    parameters = list(parameters)
    if not parameters:
        raise ValueError("parameters must not be empty")
    for i, pair in enumerate(parameters):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"parameters[{i}] must be a (module, name) pair, got {pair!r}")
        _check_prunable(*pair)
    if not (isinstance(pruning_method, type) and issubclass(pruning_method, BasePruningMethod)):
        raise TypeError(f"pruning_method must be a pruning class such as L1Unstructured, "
                        f"got {pruning_method!r}")
    importance_scores = {} if importance_scores is None else importance_scores
    if not isinstance(importance_scores, dict):
        raise TypeError(f"importance_scores must be a dict, got {type(importance_scores).__name__}")
    scores = np.concatenate([np.asarray(importance_scores.get((m, n), getattr(m, n))).reshape(-1)
                             for m, n in parameters])
    default_mask = np.concatenate([
        np.asarray(getattr(m, n + "_mask", np.ones_like(getattr(m, n)))).reshape(-1)
        for m, n in parameters]).astype(scores.dtype)
    method = pruning_method(**kwargs)
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(f"pruning_method must be unstructured, got {pruning_method.__name__} "
                        f"({method.PRUNING_TYPE})")
    method._tensor_name = "temp"
    container = PruningContainer(method)
    final = container.compute_mask(scores, default_mask)
    pointer = 0
    for m, n in parameters:
        p = getattr(m, n)
        custom_from_mask(m, n, final[pointer:pointer + p.size].reshape(p.shape))
        pointer += p.size


def custom_from_mask(module, name, mask):
    """Prune ``module.name`` with a given 0/1 ``mask`` of its shape. Returns ``module``."""
    CustomFromMask.apply(module, name, mask=mask)
    return module


def remove(module, name):
    """Make the pruning of ``module.name`` permanent (``name_orig`` and ``name_mask`` go,
    ``name`` is a plain parameter again with the zeros in it). Returns ``module``."""
    _check_module(module)
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"parameter name={name!r} of {module!r} has to be pruned before its pruning "
                     f"can be removed")


def is_pruned(module) -> bool:
    """Whether ``module`` or any of its layers carries a pruning hook."""
    _check_module(module)
    modules = [module] + list(getattr(module, "layers", []))
    return any(isinstance(h, BasePruningMethod)
               for m in modules for h in getattr(m, "_forward_pre_hooks", {}).values())
