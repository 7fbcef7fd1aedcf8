r"""The alpha-beta cost model of an all-reduce: time = latency x rounds + bytes / bandwidth.

A message of ``m`` bytes costs :math:`\alpha + m/\beta` (``latency`` :math:`\alpha` in seconds,
``bandwidth`` :math:`\beta` in bytes per second); each worker sends one message and receives
one per round, on its own full-duplex link.  For a buffer of ``N`` bytes on ``K`` workers
(:func:`allreduce_rounds` and :func:`allreduce_bytes` give the two factors):

==========  =============================  ============================================
algorithm   rounds                         bytes on the busiest worker's link
==========  =============================  ============================================
naive       :math:`2(K-1)`                 :math:`2(K-1)\,N` (worker 0 receives K-1 buffers, sends K-1)
tree        :math:`2\lceil\log_2K\rceil`   :math:`2\lceil\log_2K\rceil\,N` (whole buffer each round)
ring        :math:`2(K-1)`                 :math:`2(K-1)\cdot N/K`
==========  =============================  ============================================

so :math:`T_\text{ring} = 2(K-1)\alpha + 2\frac{K-1}{K}\frac{N}{\beta}`.  Why no algorithm can send
less: every worker must receive, for each of the K chunks it does not finish itself, the other
workers' contributions in some form, and must send its own (see the chapter notebook for the
argument); the ring meets that bound, :math:`2\frac{K-1}{K}N \to 2N`.

"bytes" here counts the *time-critical* traffic of one link per round (a round's time is set by
its largest message), which for naive is what worker 0 sends and receives.  The simulated
algorithms in :mod:`.allreduce` report bytes *sent* per worker; the tests check both agree.
"""

from __future__ import annotations

import math

import numpy as np

from ..validation import check_positive

__all__ = ["allreduce_rounds", "allreduce_bytes", "allreduce_time", "ALGORITHMS"]

ALGORITHMS = ("naive", "tree", "ring")


def _check(algorithm, world_size):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {list(ALGORITHMS)}, got {algorithm!r}")
    check_positive("world_size", world_size, integer=True)


def allreduce_rounds(algorithm: str, world_size: int) -> int:
    """Sequential communication rounds of one all-reduce on ``world_size`` workers."""
    _check(algorithm, world_size)
    K = int(world_size)
    if algorithm == "tree":
        return 2 * math.ceil(math.log2(K)) if K > 1 else 0
    return 2 * (K - 1)


def allreduce_bytes(algorithm: str, world_size: int, nbytes: float) -> float:
    """Bytes crossing the busiest link, one after the other (the bandwidth term's numerator)."""
    _check(algorithm, world_size)
    check_positive("nbytes", nbytes, allow_zero=True)
    K = int(world_size)
    if algorithm == "ring":
        return 2 * (K - 1) / K * nbytes
    return allreduce_rounds(algorithm, K) * float(nbytes)


def allreduce_time(algorithm: str, world_size, nbytes: float, *, latency: float = 5e-6,
                   bandwidth: float = 12.5e9):
    r"""Seconds for one all-reduce: :math:`\alpha \cdot \text{rounds} + \text{bytes}/\beta`.

    world_size: an int or an array of ints (vectorised for plots).  Defaults: 5 us latency and
    12.5 GB/s (a 100 Gbit/s link), typical of a data-centre interconnect.
    """
    check_positive("latency", latency, allow_zero=True)
    check_positive("bandwidth", bandwidth)
    if np.ndim(world_size):
        return np.array([allreduce_time(algorithm, int(k), nbytes, latency=latency,
                                        bandwidth=bandwidth) for k in np.asarray(world_size)])
    return (latency * allreduce_rounds(algorithm, world_size)
            + allreduce_bytes(algorithm, world_size, nbytes) / bandwidth)
