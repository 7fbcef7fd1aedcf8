r"""torch's pruning reparametrisation, the part :mod:`course_lib.nn` needs itself.

``weight -> weight_orig * weight_mask`` with a forward pre-hook (:class:`BasePruningMethod`),
the composition of successive prunings (:class:`PruningContainer`) and the mask of ones
(:class:`Identity`, used to load a pruned model's state into a fresh one).  The methods that
*choose* masks (L1, Ln-structured, random, global) are in :mod:`course_lib.prune`, which
re-exports these classes; see its documentation for the semantics.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["BasePruningMethod", "PruningContainer", "Identity"]


def _validate_dim(t, dim):
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"dim must be an int, got {dim!r}")
    if not -t.ndim <= dim < t.ndim:
        raise ValueError(f"dim={dim} is out of range for a tensor of shape {t.shape}")
    return int(dim) % t.ndim


# -- the reparametrisation ----------------------------------------------------------------------------------
class BasePruningMethod:
    """``torch.nn.utils.prune.BasePruningMethod``: ``compute_mask(t, default_mask)`` decides, the
    class method :meth:`apply` installs the reparametrisation on a module.

    t, default_mask: arrays of the same shape (default_mask 0/1, the parameter dtype).
    """

    PRUNING_TYPE = None  # "unstructured", "structured" or "global"
    _tensor_name = None

    def __call__(self, module, inputs=None):
        """The forward pre-hook: ``module.name = name_orig * name_mask``."""
        setattr(module, self._tensor_name, self.apply_mask(module))

    def compute_mask(self, t, default_mask):  # pragma: no cover - interface
        raise NotImplementedError

    def apply_mask(self, module):
        """``name_mask * name_orig`` (a new array, the parameter's dtype)."""
        mask = getattr(module, self._tensor_name + "_mask")
        orig = getattr(module, self._tensor_name + "_orig")
        return mask.astype(orig.dtype, copy=False) * orig

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        """Prune ``module.name`` in place (composing with earlier pruning); returns the method
        (or the :class:`PruningContainer` now holding it)."""
        _check_prunable(module, name)
        old, keys = None, []
        for k, hook in module._forward_pre_hooks.items():
            if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
                old = hook
                keys.append(k)
        method = cls(*args, **kwargs)
        method._tensor_name = name
        if old is not None:
            if isinstance(old, PruningContainer):
                old.add_pruning_method(method)
                method = old
            else:
                container = PruningContainer(old)
                container.add_pruning_method(method)
                method = container

        orig = getattr(module, name)  # the parameter, or the current masked weight if pruned
        if importance_scores is not None:
            importance_scores = np.asarray(importance_scores)
            if importance_scores.shape != orig.shape:
                raise ValueError(f"importance_scores must have the shape of {name!r}, "
                                 f"{orig.shape}, got {importance_scores.shape}")
        else:
            importance_scores = orig
        if isinstance(method, PruningContainer):
            default_mask = getattr(module, name + "_mask").copy()
        else:
            default_mask = np.ones_like(orig)
        # compute first: a failure leaves the module untouched
        mask = method.compute_mask(importance_scores, default_mask=default_mask)
        mask = np.ascontiguousarray(mask, dtype=orig.dtype)
        for k in keys:
            del module._forward_pre_hooks[k]
        if not isinstance(method, PruningContainer):
            module._rename_parameter(name, name + "_orig")
        module.register_buffer(name + "_mask", mask)
        setattr(module, name, method.apply_mask(module))
        module.register_forward_pre_hook(method)
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """``t * compute_mask(importance_scores or t, default_mask or ones)``, nothing installed."""
        t = np.asarray(t)
        scores = t if importance_scores is None else np.asarray(importance_scores)
        default_mask = np.ones_like(t) if default_mask is None else np.asarray(default_mask)
        return t * self.compute_mask(scores, default_mask=default_mask)

    def remove(self, module):
        """Make the pruning permanent: ``name_orig`` gets the masked values (in place, the same
        array) and becomes ``name`` again; the mask and the hook go."""
        weight = self.apply_mask(module)
        orig = getattr(module, self._tensor_name + "_orig")
        np.copyto(orig, weight)
        module.unregister_buffer(self._tensor_name + "_mask")
        module._rename_parameter(self._tensor_name + "_orig", self._tensor_name)


class PruningContainer(BasePruningMethod):
    """The successive pruning methods of one parameter; the latest acts on what the others left.

    ``compute_mask(t, default_mask)`` slices out the remaining part (entries where the mask is
    1 for an unstructured method, channels with any non-zero mask entry for a structured one,
    everything for a global one), lets the latest method choose a mask *there*, and writes it
    back into a copy of ``default_mask``.
    """

    def __init__(self, *methods):
        self._pruning_methods = ()
        if len(methods) == 1:
            self._tensor_name = methods[0]._tensor_name
        for m in methods:
            self.add_pruning_method(m)

    def add_pruning_method(self, method):
        if not isinstance(method, BasePruningMethod):
            raise TypeError(f"method must be a BasePruningMethod, got {type(method).__name__}")
        if self._tensor_name is not None and method._tensor_name != self._tensor_name:
            raise ValueError(f"method acts on {method._tensor_name!r}, this container on "
                             f"{self._tensor_name!r}")
        self._pruning_methods += (method,)

    def __len__(self):
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, i):
        return self._pruning_methods[i]

    def compute_mask(self, t, default_mask):
        method = self._pruning_methods[-1]
        new_mask = default_mask.astype(t.dtype, copy=True)
        if method.PRUNING_TYPE == "unstructured":
            slc = default_mask == 1
        elif method.PRUNING_TYPE == "structured":
            dim = _validate_dim(t, method.dim)
            others = tuple(d for d in range(t.ndim) if d != dim)
            keep_channel = default_mask.sum(axis=others) != 0
            slc = [slice(None)] * t.ndim
            slc[dim] = keep_channel
            slc = tuple(slc)
        elif method.PRUNING_TYPE == "global":
            slc = (slice(None),) * t.ndim
        else:
            raise ValueError(f"unknown PRUNING_TYPE {method.PRUNING_TYPE!r}")
        partial = method.compute_mask(t[slc], default_mask=default_mask[slc])
        new_mask[slc] = partial
        return new_mask


class Identity(BasePruningMethod):
    """Installs the reparametrisation with a mask of ones (torch's ``Identity``)."""
    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask


def _check_module(module):
    if not callable(getattr(module, "register_forward_pre_hook", None)):
        raise TypeError(f"module must be a course_lib.nn Module, got {type(module).__name__}")


def _check_prunable(module, name):
    _check_module(module)
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r}")
    params = [n for n, _ in module.named_parameters()]
    if name not in params and name + "_orig" not in params:
        raise ValueError(f"name={name!r} is not a parameter of {module!r}; its parameters are "
                         f"{[n.removesuffix('_orig') for n in params]}")
