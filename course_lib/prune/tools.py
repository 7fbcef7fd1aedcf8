"""Around the torch API: sparsity bookkeeping, whole-model pruning, schedules, rewinding.

Everything here works on a :class:`course_lib.nn.Sequential` / :class:`~course_lib.nn.MLP`
and is built from :mod:`course_lib.prune.methods` (so the masks are torch's).
"""

from __future__ import annotations

import numpy as np

from ..validation import check_in_range, check_positive
from .methods import (L1Unstructured, RandomUnstructured, _check_module, global_unstructured,
                      l1_unstructured, random_unstructured)

__all__ = ["effective_weight", "sparsity", "layer_sparsities", "linear_layers", "prune_model",
           "iterative_amount", "rewind"]


def linear_layers(model) -> list:
    """``[(index, layer), ...]`` for every layer with a ``weight`` (the Linear layers)."""
    _check_module(model)
    layers = getattr(model, "layers", [model])
    return [(i, l) for i, l in enumerate(layers)
            if any(n in ("weight", "weight_orig") for n, _ in l.named_parameters())]


def effective_weight(layer, name: str = "weight") -> np.ndarray:
    """``name_orig * name_mask`` if pruned, else the parameter itself: what the model computes
    with (``layer.weight`` can be stale between an optimizer step and the next forward)."""
    buffers = dict(layer.named_buffers())
    if name + "_mask" in buffers:
        return getattr(layer, name + "_orig") * buffers[name + "_mask"]
    return getattr(layer, name)


def sparsity(x) -> float:
    """Fraction of exact zeros: of an array, or of all Linear *weights* of a model
    (biases excluded, as in Han et al.'s counts)."""
    if isinstance(x, np.ndarray):
        return 1.0 - np.count_nonzero(x) / x.size if x.size else 0.0
    ws = [effective_weight(l) for _, l in linear_layers(x)]
    total = sum(w.size for w in ws)
    return 1.0 - sum(int(np.count_nonzero(w)) for w in ws) / total if total else 0.0


def layer_sparsities(model) -> dict:
    """``{layer index: fraction of zero weights}`` for every Linear layer."""
    return {i: sparsity(effective_weight(l)) for i, l in linear_layers(model)}


def prune_model(model, amount, *, method: str = "l1", scope: str = "global", seed=0):
    """Prune every Linear weight of ``model`` (biases are left alone) in place; returns it.

    amount: float fraction of the *remaining* weights (or an int count), as in torch.
    method: ``"l1"`` (smallest ``|w|``) or ``"random"``.
    scope:  ``"global"`` (one ranking over all layers: :func:`global_unstructured`) or
            ``"layer"`` (the same fraction in every layer).
    Applying it again composes with the masks already there (iterative pruning).
    """
    if method not in ("l1", "random"):
        raise ValueError(f"method must be 'l1' or 'random', got {method!r}")
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    pairs = [(l, "weight") for _, l in linear_layers(model)]
    if scope == "global":
        if method == "l1":
            global_unstructured(pairs, L1Unstructured, amount=amount)
        else:
            global_unstructured(pairs, RandomUnstructured, amount=amount, seed=seed)
    else:
        rng = np.random.default_rng(seed)
        for layer, name in pairs:
            if method == "l1":
                l1_unstructured(layer, name, amount)
            else:
                random_unstructured(layer, name, amount, seed=rng)
    return model


def iterative_amount(target: float, steps: int) -> float:
    r"""The fraction of the *remaining* weights to prune at each of ``steps`` rounds so that
    ``target`` of the weights are gone at the end: :math:`1 - (1 - target)^{1/steps}`
    (torch's float ``amount`` compounds: after k rounds :math:`1-(1-p)^k` are pruned).
    Rounding to whole weights makes the reached sparsity differ by at most a few weights."""
    check_in_range("target", target, 0.0, 1.0, high_inclusive=True)
    check_positive("steps", steps, integer=True)
    return 1.0 - (1.0 - float(target)) ** (1.0 / steps)


def rewind(model, state: dict):
    """Set the trainable values back to ``state`` (e.g. the initialisation saved with
    ``state_dict()`` before training) and keep the masks: the lottery-ticket rewind.

    ``state`` has the unpruned names (``"0.weight"``); ``weight_orig`` receives ``"0.weight"``.
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict of arrays, got {type(state).__name__}")
    for name, p in model.named_parameters():
        key = name[:-len("_orig")] if name.endswith("_orig") else name
        if key not in state:
            raise ValueError(f"state has no entry {key!r} for parameter {name!r}")
        v = np.asarray(state[key])
        if v.shape != p.shape:
            raise ValueError(f"state[{key!r}] must have shape {p.shape}, got {v.shape}")
        np.copyto(p, v, casting="unsafe")
    for _, layer in linear_layers(model):
        layer._call_forward_pre_hooks()
    return model
