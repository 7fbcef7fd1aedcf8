"""Optimizers and learning-rate schedulers (chapter 3), mirroring ``torch.optim``.

- :mod:`.functional`  the update math, one pure NumPy function per optimizer (in place)
- :mod:`.optimizers`  ``SGD``, ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW``: state and
  hyperparameters
- :mod:`.schedulers`  ``StepLR``, ``CosineAnnealingLR``, ``OneCycleLR``, ``ReduceLROnPlateau``, ...
- :mod:`.clip`        ``clip_grad_norm_`` (torch.nn.utils.clip_grad_norm_)
- :mod:`.bench`       timing one optimizer step: NumPy vs numba vs PyTorch (used by
  ``benchmarks/optimizer_step.py`` and the chapter notebook)

The numba twins of the functional core live in :mod:`course_lib.kernels.optim`; they are
imported (and compiled) only when an optimizer is built with ``backend="numba"``.

Usage::

    from course_lib.optim import Adam, CosineAnnealingLR
    opt = Adam([W, b], lr=1e-3)            # backend="numba" for the fused kernels
    sched = CosineAnnealingLR(opt, T_max=50)
    for epoch in range(50):
        for X, y in batches:
            opt.step(grads_of(W, b, X, y))   # W and b are updated in place
        sched.step()
"""

from . import functional
from .clip import clip_grad_norm_
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .schedulers import (
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

__all__ = [
    "functional", "clip_grad_norm_",
    "Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW",
    "LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "CosineAnnealingLR", "SequentialLR", "OneCycleLR", "ReduceLROnPlateau",
    "PolynomialLR", "CosineAnnealingWarmRestarts",
]
