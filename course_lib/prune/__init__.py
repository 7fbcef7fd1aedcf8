"""Pruning (chapter 4): ``torch.nn.utils.prune``'s semantics for :mod:`course_lib.nn` layers,
sparsity bookkeeping, and structured pruning that really shrinks a model.

- :mod:`~course_lib.prune.methods`: the torch API (``l1_unstructured``, ``ln_structured``,
  ``global_unstructured``, ``remove``, the method classes ...), masks equal to torch's;
- :mod:`~course_lib.prune.tools`: what a chapter needs around it (sparsity per layer,
  magnitude pruning of a whole model, iterative schedules, masked optimizers);
- :mod:`~course_lib.prune.shrink`: drop pruned hidden units -> a smaller dense model with
  the same outputs.
"""

from .methods import (BasePruningMethod, CustomFromMask, Identity, L1Unstructured, LnStructured,
                      PruningContainer, RandomStructured, RandomUnstructured, custom_from_mask,
                      global_unstructured, identity, is_pruned, l1_unstructured, ln_structured,
                      random_structured, random_unstructured, remove)
from .shrink import shrink
from .tools import (effective_weight, iterative_amount, layer_sparsities, linear_layers,
                    prune_model, rewind, sparsity)

__all__ = [
    "BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
    "RandomStructured", "LnStructured", "CustomFromMask",
    "identity", "random_unstructured", "l1_unstructured", "random_structured", "ln_structured",
    "global_unstructured", "custom_from_mask", "remove", "is_pruned",
    "shrink", "effective_weight", "sparsity", "layer_sparsities", "linear_layers", "prune_model",
    "iterative_amount", "rewind",
]
