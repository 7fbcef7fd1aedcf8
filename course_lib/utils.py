"""Small utilities every chapter needs: relative error, seeding, timing, divergence."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np


class TrainingDiverged(FloatingPointError):
    """Raised by training loops when the loss stops being finite.

    The message names the step and the learning rate, e.g.
    ``loss became inf at step 12 (epoch 0) with lr=2.5: the learning rate is too large``.
    """


def rel_error(a, b, eps: float = 1e-12) -> float:
    """Largest elementwise relative error ``|a - b| / max(|a| + |b|, eps)``.

    The symmetric form used by CS231n: 0 for identical arrays, about 1e-16 for float64
    round-off, 1 for arrays of opposite sign.  Shapes must match exactly.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), eps)))


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy's legacy global state and torch (if installed); return a fresh Generator.

    Course code never uses the global NumPy state (it takes ``rng``/``seed`` arguments);
    seeding it too protects learners' own experiments in the notebooks.
    """
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a course dependency
        pass
    else:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def check_finite_loss(loss: float, *, step: int, lr: float, epoch: int | None = None) -> float:
    """Return ``loss`` if finite, else raise :class:`TrainingDiverged` naming step and lr."""
    if not np.isfinite(loss):
        where = f"step {step}" + (f" (epoch {epoch})" if epoch is not None else "")
        raise TrainingDiverged(
            f"loss became {loss} at {where} with lr={lr}: training diverged; "
            f"try a smaller learning rate")
    return loss


@dataclass
class Timing:
    """Result of :func:`timeit`: all repetition times in seconds, with summary statistics."""
    times: list = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(np.median(self.times))

    @property
    def best(self) -> float:
        return float(np.min(self.times))

    def __repr__(self) -> str:
        return (f"Timing(median={self.median * 1e3:.3f} ms, best={self.best * 1e3:.3f} ms, "
                f"repeat={len(self.times)})")


def timeit(fn, *args, repeat: int = 7, number: int = 1, warmup: int = 1, **kwargs) -> Timing:
    """Time ``fn(*args, **kwargs)``: ``warmup`` untimed calls (numba compiles on the first),
    then ``repeat`` measurements of ``number`` calls each; times are per call.

    Compare timings as ratios of medians measured in the same run: machines are noisy.
    """
    for _ in range(warmup):
        fn(*args, **kwargs)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn(*args, **kwargs)
        times.append((time.perf_counter() - t0) / number)
    return Timing(times)
