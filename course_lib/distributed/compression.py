r"""Gradient compression: send fewer bytes per step, and remember what was left out.

Each compressor turns a worker's flat gradient :math:`g` (n floats, 4n bytes in float32) into a
small message and back into a dense vector :math:`C(g)` that the all-reduce averages:

=========================  ==============================================  ==============================
compressor                 :math:`C(g)`                                    message bytes
=========================  ==============================================  ==============================
:func:`topk`               the k largest-magnitude entries, zeros elsewhere  :math:`k\,(4 + 4)` (value + int32 index)
:func:`qsgd`               :math:`\|g\|\,\mathrm{sign}(g_i)\,\xi_i/s`, with   :math:`4 + n\,(1 + \lceil\log_2(s+1)\rceil)/8`
                           :math:`\xi_i` = :math:`s|g_i|/\|g\|` rounded up or
                           down at random (unbiased: :math:`E[C(g)] = g`)
=========================  ==============================================  ==============================

**Error feedback** (Seide et al. 2014's 1-bit SGD, Stich et al. 2018, Karimireddy et al. 2019):
a biased compressor such as top-k drops the same small coordinates step after step, and they
never get trained.  Each worker keeps the part it did not send, :math:`e`, and adds it to the
next gradient:

.. math:: p = g + e, \qquad \text{send } C(p), \qquad e \leftarrow p - C(p).

Nothing is lost, only delayed.  The 1-bit variant (scaled sign with error feedback) is left
to the exercises.  PyTorch: DDP communication hooks
(``torch.distributed.algorithms.ddp_comm_hooks``: ``fp16_compress_hook``, PowerSGD).
"""

from __future__ import annotations

import math

import numpy as np

from ..validation import as_array, check_positive

__all__ = ["topk", "qsgd", "topk_bytes", "qsgd_bytes", "dense_bytes", "ErrorFeedback",
           "TopKCompressor", "QSGDCompressor"]


def topk(g, k: int) -> np.ndarray:
    """Keep the ``k`` entries of largest magnitude of the 1-D ``g``, zero the rest (a new array).

    ``np.argpartition``: linear time; among equal magnitudes at the cut, which ones are kept is
    unspecified (as in ``torch.topk``).
    """
    g = as_array("g", g, ndim=1)
    check_positive("k", k, integer=True)
    if k > g.size:
        raise ValueError(f"k must be <= g.size = {g.size}, got {k}")
    keep = np.argpartition(-np.abs(g), k - 1)[:k]
    out = np.zeros_like(g)
    out[keep] = g[keep]
    return out


def qsgd(g, levels: int, rng) -> np.ndarray:
    r"""QSGD (Alistarh et al. 2017): stochastic quantisation of ``g`` to ``levels`` levels of
    :math:`|g_i|/\|g\|_2`, unbiased.  Returns the dequantised vector (a new array)."""
    g = as_array("g", g, ndim=1)
    check_positive("levels", levels, integer=True)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a np.random.Generator, got {type(rng).__name__}")
    norm = float(np.linalg.norm(g))
    if norm == 0.0:
        return np.zeros_like(g)
    scaled = np.abs(g) / norm * levels             # in [0, levels]
    low = np.floor(scaled)
    xi = low + (rng.random(g.size) < scaled - low)  # round up with probability = the remainder
    return (norm * np.sign(g) * xi / levels).astype(g.dtype)


def dense_bytes(n: int, itemsize: int = 4) -> int:
    """Bytes of an uncompressed gradient of ``n`` values."""
    return int(n) * int(itemsize)


def topk_bytes(k: int, itemsize: int = 4, index_bytes: int = 4) -> int:
    """Bytes of a top-k message: ``k`` values and their ``k`` indices."""
    return int(k) * (int(itemsize) + int(index_bytes))


def qsgd_bytes(n: int, levels: int, itemsize: int = 4) -> int:
    """Bytes of a QSGD message: the norm, plus per value one sign bit and ceil(log2(levels+1))
    bits for the level, packed (rounded up to whole bytes)."""
    bits = 1 + math.ceil(math.log2(levels + 1))
    return int(itemsize) + math.ceil(int(n) * bits / 8)


class ErrorFeedback:
    """Per-worker memory of what compression left out: ``__call__(rank, g) -> C(g + e_rank)``."""

    def __init__(self, compress, world_size: int, *, enabled: bool = True):
        check_positive("world_size", world_size, integer=True)
        self.compress = compress
        self.enabled = bool(enabled)
        self.errors = [None] * int(world_size)

    def __call__(self, rank: int, g: np.ndarray) -> np.ndarray:
        e = self.errors[rank]
        p = g + e if (self.enabled and e is not None) else g
        c = self.compress(p)
        if self.enabled:
            self.errors[rank] = p - c
        return c


class TopKCompressor(ErrorFeedback):
    """Top-k of a fraction ``ratio`` of the entries, with error feedback (default) or without."""

    def __init__(self, ratio: float, world_size: int, *, error_feedback: bool = True):
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio!r}")
        self.ratio = float(ratio)
        super().__init__(lambda p: topk(p, max(1, int(round(self.ratio * p.size)))), world_size,
                         enabled=error_feedback)

    def message_bytes(self, n: int) -> int:
        return topk_bytes(max(1, int(round(self.ratio * n))))


class QSGDCompressor(ErrorFeedback):
    """QSGD with ``levels`` levels, each worker with its own seeded Generator (unbiased: no
    error feedback needed)."""

    def __init__(self, levels: int, world_size: int, *, seed: int = 0):
        self.levels = int(levels)
        self.rngs = [np.random.default_rng([seed, r]) for r in range(world_size)]
        super().__init__(None, world_size, enabled=False)

    def __call__(self, rank, g):
        return qsgd(g, self.levels, self.rngs[rank])

    def message_bytes(self, n: int) -> int:
        return qsgd_bytes(n, self.levels)
