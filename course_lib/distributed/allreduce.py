r"""All-reduce from scratch: K simulated workers, each holding one buffer, all end with the sum.

Every function here takes the K workers' buffers as a list of K equal-shape NumPy arrays
and returns ``(outputs, stats)``:

- ``outputs``: a list of K new arrays, each equal to ``sum(buffers)`` (up to round-off: the
  algorithms add in different orders); the inputs are never modified;
- ``stats``: a :class:`CommStats` -- messages and bytes each worker *sent*, and the number of
  communication rounds (a round is one set of messages sent at the same time; in a round a
  worker sends at most one message and receives at most one).

=======================  =========================================  =================  ===============
algorithm                how                                        rounds             bytes sent by the busiest worker
=======================  =========================================  =================  ===============
:func:`naive_allreduce`  everyone sends to worker 0, which adds     :math:`2(K-1)`     :math:`(K-1)\,N`
                         and sends the sum back (parameter server)
:func:`tree_allreduce`   binomial tree: reduce to 0 in                                  :math:`\lceil\log_2 K\rceil N`
                         :math:`\lceil\log_2 K\rceil` rounds, then  :math:`2\lceil\log_2 K\rceil`
                         broadcast back
:func:`ring_allreduce`   reduce-scatter then all-gather around      :math:`2(K-1)`     :math:`2\frac{K-1}{K}N`
                         the ring, one chunk of N/K per message
=======================  =========================================  =================  ===============

(N is the buffer size in bytes.)  The ring's :math:`2(K-1)/K\cdot N` does not grow with K: it
is the bandwidth-optimal all-reduce (Patarasuk & Yuan, 2009), the one NCCL and gloo use for
large buffers.  PyTorch: ``torch.distributed.all_reduce(tensor, op=ReduceOp.SUM)`` on each rank.

The ring, rank by rank (``c`` indexes the K chunks of ``np.array_split``, neighbours are
``r + 1`` to the right and ``r - 1`` to the left, all modulo K):

- reduce-scatter, step ``s = 0 .. K-2``: worker ``r`` sends its chunk ``(r - s) % K`` to worker
  ``(r + 1) % K``, which **adds** it to its own copy of that chunk; afterwards worker ``r`` holds
  the complete sum of chunk ``(r + 1) % K``;
- all-gather, step ``s = 0 .. K-2``: worker ``r`` sends chunk ``(r + 1 - s) % K`` to the right,
  which **overwrites** its copy.

All messages of a step are sent at the same time: each carries the sender's chunk as it was
*before* the step (:func:`ring_reduce_scatter_step` makes that explicit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CommStats", "naive_allreduce", "tree_allreduce", "ring_allreduce",
           "ring_reduce_scatter_step", "chunk_bounds", "ALLREDUCES", "allreduce"]


@dataclass
class CommStats:
    """What an all-reduce sent.

    messages_sent: (K,) int64, messages sent by each worker
    bytes_sent:    (K,) int64, payload bytes sent by each worker
    rounds:        number of communication rounds (each costs one latency in the cost model)
    history:       with ``history=True``: the K buffers (a (K, n) array) after every round
    """
    messages_sent: np.ndarray
    bytes_sent: np.ndarray
    rounds: int = 0
    history: list = field(default_factory=list)

    @property
    def max_bytes(self) -> int:
        """Bytes sent by the busiest worker (what limits the time on equal links)."""
        return int(self.bytes_sent.max()) if self.bytes_sent.size else 0

    @property
    def total_bytes(self) -> int:
        return int(self.bytes_sent.sum())


def _check_buffers(buffers):
    if isinstance(buffers, np.ndarray) or not isinstance(buffers, (list, tuple)):
        raise TypeError(f"buffers must be a list of K arrays (one per worker), "
                        f"got {type(buffers).__name__}")
    if len(buffers) == 0:
        raise ValueError("buffers must hold at least one worker's array, got an empty list")
    arrays = []
    for r, b in enumerate(buffers):
        if not isinstance(b, np.ndarray):
            raise TypeError(f"buffers[{r}] must be a NumPy array, got {type(b).__name__}")
        if b.dtype.kind not in "fiu":
            raise TypeError(f"buffers[{r}] must be a numeric array, got dtype {b.dtype}")
        if b.shape != buffers[0].shape:
            raise ValueError(f"buffers[{r}] has shape {b.shape}, but buffers[0] has shape "
                             f"{buffers[0].shape}: every worker must hold the same shape")
        if b.dtype != buffers[0].dtype:
            raise TypeError(f"buffers[{r}] has dtype {b.dtype}, but buffers[0] has dtype "
                            f"{buffers[0].dtype}: every worker must hold the same dtype")
        arrays.append(b)
    return arrays


def _start(buffers):
    arrays = _check_buffers(buffers)
    K = len(arrays)
    work = np.stack([a.reshape(-1) for a in arrays]).copy()   # (K, n): row r is worker r's memory
    stats = CommStats(np.zeros(K, np.int64), np.zeros(K, np.int64))
    return arrays[0].shape, work, stats


def _send(stats, src, payload):
    stats.messages_sent[src] += 1
    stats.bytes_sent[src] += payload.nbytes


def _finish(shape, work, stats):
    return [work[r].reshape(shape).copy() for r in range(work.shape[0])], stats


def chunk_bounds(n: int, K: int) -> np.ndarray:
    """Start offsets of the K chunks of ``np.array_split(range(n), K)`` plus ``n``: (K + 1,) int.

    Chunk ``c`` is ``[bounds[c], bounds[c + 1])``; the first ``n % K`` chunks hold one
    element more than the others (some are empty when ``n < K``).
    """
    sizes = np.full(K, n // K, dtype=np.int64)
    sizes[: n % K] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def naive_allreduce(buffers, *, history: bool = False):
    """Parameter-server all-reduce: workers 1..K-1 send their buffer to worker 0 one after the
    other, worker 0 adds them and sends the sum to each in turn.  Worker 0's link carries
    ``(K - 1)`` full buffers each way: time grows linearly with K."""
    shape, work, stats = _start(buffers)
    K = work.shape[0]
    for r in range(1, K):                       # one round per incoming buffer
        _send(stats, r, work[r])
        work[0] += work[r]
        stats.rounds += 1
        if history:
            stats.history.append(work.copy())
    for r in range(1, K):                       # one round per outgoing copy
        _send(stats, 0, work[0])
        work[r] = work[0]
        stats.rounds += 1
        if history:
            stats.history.append(work.copy())
    return _finish(shape, work, stats)


def tree_allreduce(buffers, *, history: bool = False):
    r"""Binomial-tree all-reduce: in round ``j`` (distance ``d = 2**j``) every worker ``r`` with
    ``r % 2d == d`` sends its partial sum to ``r - d``; after :math:`\lceil\log_2 K\rceil` rounds
    worker 0 holds the sum, and the same tree run backwards broadcasts it.  Fewer rounds than
    the ring (good for small, latency-bound buffers) but every message is the whole buffer."""
    shape, work, stats = _start(buffers)
    K = work.shape[0]
    levels = math.ceil(math.log2(K)) if K > 1 else 0
    for j in range(levels):                     # reduce towards worker 0
        d = 2 ** j
        incoming = [(r, work[r].copy()) for r in range(d, K, 2 * d)]
        for r, payload in incoming:
            _send(stats, r, payload)
            work[r - d] += payload
        stats.rounds += 1
        if history:
            stats.history.append(work.copy())
    for j in reversed(range(levels)):           # broadcast back along the same tree
        d = 2 ** j
        for r in range(0, K, 2 * d):
            if r + d < K:
                _send(stats, r, work[r])
                work[r + d] = work[r]
        stats.rounds += 1
        if history:
            stats.history.append(work.copy())
    return _finish(shape, work, stats)


def ring_reduce_scatter_step(work: np.ndarray, step: int, bounds: np.ndarray, stats=None):
    """One reduce-scatter step of the ring on the (K, n) worker memory ``work``, in place.

    Worker ``r`` sends chunk ``(r - step) % K`` to worker ``(r + 1) % K``, which adds it.
    Every payload is read before any worker adds (the messages travel at the same time).
    """
    K = work.shape[0]
    payloads = []
    for r in range(K):
        c = (r - step) % K
        payloads.append((r, c, work[r, bounds[c]:bounds[c + 1]].copy()))
    for r, c, payload in payloads:
        if stats is not None:
            _send(stats, r, payload)
        work[(r + 1) % K, bounds[c]:bounds[c + 1]] += payload
    return work


def _ring_all_gather_step(work, step, bounds, stats):
    K = work.shape[0]
    payloads = []
    for r in range(K):
        c = (r + 1 - step) % K
        payloads.append((r, c, work[r, bounds[c]:bounds[c + 1]].copy()))
    for r, c, payload in payloads:
        _send(stats, r, payload)
        work[(r + 1) % K, bounds[c]:bounds[c + 1]] = payload


def ring_allreduce(buffers, *, history: bool = False):
    r"""Ring all-reduce = reduce-scatter (K - 1 steps) + all-gather (K - 1 steps).

    Each worker sends :math:`2(K-1)` messages of one chunk (about N/K bytes): in total
    :math:`2\frac{K-1}{K}N` bytes, whatever K.  Buffers whose size K does not divide are
    split with ``np.array_split`` (chunks differ by at most one element).
    """
    shape, work, stats = _start(buffers)
    K, n = work.shape
    bounds = chunk_bounds(n, K)
    for s in range(K - 1):
        ring_reduce_scatter_step(work, s, bounds, stats)
        stats.rounds += 1
        if history:
            stats.history.append(work.copy())
    for s in range(K - 1):
        _ring_all_gather_step(work, s, bounds, stats)
        stats.rounds += 1
        if history:
            stats.history.append(work.copy())
    return _finish(shape, work, stats)


ALLREDUCES = {"naive": naive_allreduce, "tree": tree_allreduce, "ring": ring_allreduce}


def allreduce(buffers, algorithm: str = "ring", **kwargs):
    """``ALLREDUCES[algorithm](buffers)``: ``"naive"``, ``"tree"`` or ``"ring"``."""
    if algorithm not in ALLREDUCES:
        raise ValueError(f"algorithm must be one of {sorted(ALLREDUCES)}, got {algorithm!r}")
    return ALLREDUCES[algorithm](buffers, **kwargs)
