r"""Data-parallel SGD, simulated: K workers in one process, each with a replica of the model.

One step of synchronous data parallelism on a global mini-batch of B samples:

1. split the batch into K shards (worker k gets :math:`B_k` rows; :math:`B_k = B/K` when K divides B);
2. each worker runs forward and backward on its shard: gradient :math:`g_k` of its *mean* loss;
3. all-reduce the flattened gradients (one buffer per worker, like DDP's buckets) and divide by
   K: every worker now holds :math:`\bar g = \frac1K\sum_k g_k`;
4. each worker applies the same optimizer step to its replica.

With equal shards, :math:`\bar g = \frac1K\sum_k \frac{1}{B/K}\sum_{i\in k}\nabla\ell_i
= \frac1B\sum_{i}\nabla\ell_i`, the gradient one worker computes on the whole batch: K workers
with B/K samples each train *exactly* like one worker with B samples, up to round-off
(the sums are added in another order).  What breaks it (``average``, ``broadcast`` and
``shard_sizes`` let you try):

- **a sum instead of a mean** (``average=False``): the step is K times larger;
- **unequal shards** with a plain mean: samples on small shards weigh more;
- **no broadcast of the initial weights** (``broadcast=False``): each worker starts from its own
  random init (seed + rank); identical averaged gradients never bring the replicas together.

PyTorch: ``torch.nn.parallel.DistributedDataParallel`` does steps 2-3 (it averages: it divides
the all-reduced sum by the world size) and broadcasts rank 0's weights when it is constructed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..losses import softmax_cross_entropy
from ..validation import as_array, check_positive, check_same_rows
from .allreduce import ALLREDUCES

__all__ = ["batch_indices", "shard_sizes_equal", "split_shards", "flatten", "unflatten_into",
           "DataParallelRun", "train_data_parallel", "train_single"]


def batch_indices(n: int, batch_size: int, steps: int, *, seed=0) -> np.ndarray:
    """The sample indices of ``steps`` global mini-batches: (steps, batch_size) int64.

    Epoch after epoch, a fresh permutation of ``range(n)`` from one seeded Generator, cut into
    full batches (the last partial batch of an epoch is dropped, like
    ``DataLoader(drop_last=True)``), so every step has exactly ``batch_size`` samples.  The same
    array drives the simulated workers, the single-worker reference and the torch.distributed run.
    """
    check_positive("n", n, integer=True)
    check_positive("batch_size", batch_size, integer=True)
    check_positive("steps", steps, integer=True)
    if batch_size > n:
        raise ValueError(f"batch_size must be <= n = {n}, got {batch_size}")
    rng = np.random.default_rng(seed)
    per_epoch = n // batch_size
    out = []
    while len(out) < steps:
        order = rng.permutation(n)
        out.extend(order[i * batch_size:(i + 1) * batch_size] for i in range(per_epoch))
    return np.stack(out[:steps]).astype(np.int64)


def shard_sizes_equal(batch_size: int, world_size: int) -> list:
    """``np.array_split`` sizes of a batch over ``world_size`` workers (equal when K divides B)."""
    check_positive("batch_size", batch_size, integer=True)
    check_positive("world_size", world_size, integer=True)
    if world_size > batch_size:
        raise ValueError(f"world_size must be <= batch_size = {batch_size}, got {world_size}")
    return [len(a) for a in np.array_split(np.arange(batch_size), world_size)]


def split_shards(idx: np.ndarray, sizes) -> list:
    """Contiguous shards of the index array ``idx`` with the given sizes (rank order)."""
    sizes = [int(s) for s in sizes]
    if sum(sizes) != len(idx) or min(sizes) < 1:
        raise ValueError(f"shard_sizes must be positive and sum to the batch size {len(idx)}, got {sizes}")
    return np.split(idx, np.cumsum(sizes)[:-1])


def flatten(arrays) -> np.ndarray:
    """Concatenate arrays into one flat buffer (DDP all-reduces buckets of gradients, not tensors)."""
    return np.concatenate([a.reshape(-1) for a in arrays])


def unflatten_into(flat: np.ndarray, arrays) -> None:
    """Copy ``flat`` back into ``arrays`` (in place; shapes taken from ``arrays``)."""
    offset = 0
    for a in arrays:
        a[...] = flat[offset:offset + a.size].reshape(a.shape)
        offset += a.size
    if offset != flat.size:
        raise ValueError(f"flat has {flat.size} elements, the arrays hold {offset}")


@dataclass
class DataParallelRun:
    """What :func:`train_data_parallel` returns.

    replicas:       the K models after training (all equal when everything is right)
    losses:         (steps,) global mini-batch loss before each step (mean over the K shard losses,
                    weighted by shard size, i.e. the loss of the whole batch)
    bytes_per_step: bytes sent by the busiest worker in one all-reduce
    messages_per_step: messages sent by the busiest worker in one all-reduce
    """
    replicas: list
    losses: np.ndarray
    bytes_per_step: int = 0
    messages_per_step: int = 0
    extra: dict = field(default_factory=dict)

    def max_replica_gap(self) -> float:
        """Largest |difference| between any replica's parameters and replica 0's."""
        ref = self.replicas[0].params
        return max((float(np.max(np.abs(p - q))) for m in self.replicas[1:]
                    for p, q in zip(m.params, ref)), default=0.0)


def _sgd(lr):
    class _PlainSGD:
        def __init__(self, params):
            self.params = params

        def step(self, grads):
            for p, g in zip(self.params, grads):
                p -= lr * g
    return _PlainSGD


def train_data_parallel(make_model, X, y, idx, *, world_size: int, lr: float | None = None,
                        make_optimizer=None, algorithm: str = "ring", average: bool = True,
                        broadcast: bool = True, shard_sizes=None, seed: int = 0,
                        compressor=None) -> DataParallelRun:
    """Simulate K data-parallel workers training ``make_model(seed)`` on ``(X, y)``.

    make_model:     ``make_model(seed) -> course_lib.nn model``; worker k builds
                    ``make_model(seed + k)`` (``broadcast=True`` then copies worker 0's weights
                    to all, as DDP does)
    idx:            (steps, B) sample indices of the global batches (:func:`batch_indices`)
    world_size:     K
    lr / make_optimizer: plain SGD with ``lr``, or ``make_optimizer(params)`` (any object with
                    ``step(grads)``, e.g. ``lambda p: course_lib.optim.SGD(p, lr=0.1, momentum=0.9)``),
                    one per worker
    algorithm:      ``"naive"``, ``"tree"`` or ``"ring"`` (:mod:`.allreduce`)
    average:        divide the all-reduced sum by K (``False`` = the "sum instead of mean" bug)
    shard_sizes:    rows per worker (default: ``np.array_split`` of B)
    compressor:     optional ``compressor(rank, flat_grad) -> flat_grad`` applied by every worker
                    before the all-reduce (:mod:`.compression`)
    """
    check_positive("world_size", world_size, integer=True)
    if algorithm not in ALLREDUCES:
        raise ValueError(f"algorithm must be one of {sorted(ALLREDUCES)}, got {algorithm!r}")
    if (lr is None) == (make_optimizer is None):
        raise ValueError("give exactly one of lr (plain SGD) and make_optimizer")
    if lr is not None:
        check_positive("lr", lr)
        make_optimizer = _sgd(lr)
    X = as_array("X", X, ndim=2)
    y = np.asarray(y)
    check_same_rows("X", X, "y", y)
    idx = np.asarray(idx)
    if idx.ndim != 2 or idx.dtype.kind not in "iu":
        raise ValueError(f"idx must be a (steps, batch_size) integer array, got shape {idx.shape} "
                         f"and dtype {idx.dtype}")
    K, B = int(world_size), idx.shape[1]
    sizes = shard_sizes_equal(B, K) if shard_sizes is None else list(shard_sizes)
    if len(sizes) != K:
        raise ValueError(f"shard_sizes must have world_size = {K} entries, got {sizes}")
    split_shards(idx[0], sizes)  # validates the sizes

    replicas = [make_model(seed + k) for k in range(K)]
    if broadcast:
        state = replicas[0].state_dict()
        for m in replicas[1:]:
            m.load_state_dict(state)
    optimizers = [make_optimizer(m.params) for m in replicas]
    reduce = ALLREDUCES[algorithm]
    losses, stats = [], None
    for batch in idx:
        flat_grads, loss = [], 0.0
        for k, (m, shard) in enumerate(zip(replicas, split_shards(batch, sizes))):
            shard_loss, dlogits = softmax_cross_entropy(m.forward(X[shard]), y[shard])
            m.backward(dlogits)
            g = flatten(m.grads)
            flat_grads.append(compressor(k, g) if compressor is not None else g)
            loss += shard_loss * len(shard) / B
        summed, stats = reduce(flat_grads)
        for m, opt, g in zip(replicas, optimizers, summed):
            unflatten_into(g / K if average else g, m.grads)
            opt.step(m.grads)
        losses.append(loss)
    return DataParallelRun(replicas, np.array(losses), stats.max_bytes if stats else 0,
                           int(stats.messages_sent.max()) if stats else 0)


def train_single(model, X, y, idx, *, lr: float | None = None, make_optimizer=None) -> np.ndarray:
    """The reference: one worker, the whole global batch per step (``model`` trained in place).

    Returns the (steps,) losses before each step.
    """
    if (lr is None) == (make_optimizer is None):
        raise ValueError("give exactly one of lr (plain SGD) and make_optimizer")
    opt = _sgd(lr)(model.params) if lr is not None else make_optimizer(model.params)
    losses = []
    for batch in np.asarray(idx):
        loss, dlogits = softmax_cross_entropy(model.forward(X[batch]), y[batch])
        model.backward(dlogits)
        opt.step(model.grads)
        losses.append(loss)
    return np.array(losses)
