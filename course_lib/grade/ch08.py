r"""Chapter 8 questions: a ring turned the other way, the bytes a ring really sends, memory per
worker with FSDP's padding, the right average over unequal shards, and 1-bit compression with
error feedback.

None of them is solved in the lecture (it builds the right-hand ring with equal chunks, the
memory calculator with exact fractions, equal shards, and top-k/QSGD); each is a variant to
derive.  Signatures:

- ``reduce_scatter_left_step(work, step) -> new_work``: one reduce-scatter step of a ring that
  sends to the **left**: worker ``r`` sends chunk ``(r + step) % K`` (chunks of
  ``np.array_split``) to worker ``(r - 1) % K``, which adds it.  ``work``: (K, n) float, row r
  is worker r's buffer; not modified.
- ``ring_bytes_sent(world_size, n, itemsize) -> (K,) ints``: bytes each worker sends in a whole
  ring all-reduce (reduce-scatter + all-gather, the lecture's direction) of ``n`` values of
  ``itemsize`` bytes, chunks of ``np.array_split`` (uneven when K does not divide n).
- ``zero_memory_per_worker(n_params, world_size, stage, optimizer, largest_layer) -> int``:
  bytes per worker, mixed precision, FSDP-style shards of ``ceil(n_params / K)`` parameters,
  plus, at stage 3, the largest layer's fp16 weights gathered in full while it runs.
- ``weighted_average(grads, shard_sizes) -> array``: the global-batch gradient from K workers'
  mean gradients over shards of unequal sizes.
- ``sign_ef_compress(grad, error) -> (compressed, new_error)``: scaled sign (1 bit per value
  plus one float) with error feedback.
"""

from __future__ import annotations

import math

import numpy as np

from .spec import Case, Mistake, Question

CHAPTER = "08_distributed"
DIST_MODULES = ("course_lib.distributed.allreduce", "course_lib.distributed.memory",
                "course_lib.distributed.data_parallel", "course_lib.distributed.compression")


def _bounds(n, K):
    sizes = np.full(K, n // K, dtype=np.int64)
    sizes[: n % K] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


# ----------------------------------------------------------------------------------
# 08.reduce_scatter_left_step


def reduce_scatter_left_step(work, step):
    """Reference: worker r sends chunk (r + step) % K to worker (r - 1) % K, which adds it."""
    K, n = work.shape
    b = _bounds(n, K)
    new = work.copy()
    for r in range(K):
        c = (r + step) % K
        new[(r - 1) % K, b[c]:b[c + 1]] += work[r, b[c]:b[c + 1]]
    return new


def _rs(work, step, *, dst_shift=-1, chunk=lambda r, s, K: (r + s) % K, overwrite=False,
        inplace=False):
    K, n = work.shape
    b = _bounds(n, K)
    new = work if inplace else work.copy()
    sends = [(r, chunk(r, step, K), work[r].copy()) for r in range(K)]
    for r, c, row in sends:
        dst = (r + dst_shift) % K
        if overwrite:
            new[dst, b[c]:b[c + 1]] = row[b[c]:b[c + 1]]
        else:
            new[dst, b[c]:b[c + 1]] += row[b[c]:b[c + 1]]
    return new


def rs_cases(rng):
    def case(name, K, n, step):
        return Case(name, (rng.standard_normal((K, n)), step))
    K = int(rng.integers(3, 7))
    return [
        case("K = 3, step 0", 3, 6, 0),
        case("K = 4, step 1", 4, 8, 1),
        case("K = 5, step 3, uneven chunks", 5, 13, 3),
        case(f"K = {K}, random step", K, int(rng.integers(K, 4 * K)), int(rng.integers(0, K - 1))),
        case("K = 2", 2, 5, 0),
    ]


RS_LEFT = Question(
    id="08.reduce_scatter_left_step", func="reduce_scatter_left_step",
    reference=reduce_scatter_left_step, make_cases=rs_cases, output_names="new_work",
    rtol=1e-12, atol=1e-12, reference_modules=DIST_MODULES,
    mistakes=(
        Mistake("lecture_direction", "you run the lecture's ring (chunk (r - step) % K to the right): "
                "this ring sends chunk (r + step) % K to the left neighbour (r - 1) % K",
                lambda work, step: _rs(work, step, dst_shift=1, chunk=lambda r, s, K: (r - s) % K)),
        Mistake("wrong_neighbour", "you send to the right neighbour (r + 1) % K: this ring sends to "
                "the left, (r - 1) % K", lambda work, step: _rs(work, step, dst_shift=1)),
        Mistake("chunk_off_by_one", "your chunk index is one ahead: at step s worker r sends chunk "
                "(r + s) % K (at step 0 its own chunk r)",
                lambda work, step: _rs(work, step, chunk=lambda r, s, K: (r + s + 1) % K)),
        Mistake("overwrite", "the receiver overwrites its chunk: reduce-scatter *adds* the incoming "
                "partial sum to its own (only all-gather overwrites)",
                lambda work, step: _rs(work, step, overwrite=True)),
        Mistake("in_place", "you modified work in place: return a new array and leave the input alone",
                lambda work, step: _rs(work, step, inplace=True)),
    ),
)


# ----------------------------------------------------------------------------------
# 08.ring_bytes_sent


def ring_bytes_sent(world_size, n, itemsize):
    """Reference: worker r sends every chunk but (r + 1) % K in reduce-scatter and every chunk
    but (r + 2) % K in all-gather."""
    K = world_size
    size = np.diff(_bounds(n, K))
    if K == 1:
        return np.zeros(1, dtype=np.int64)
    return np.array([itemsize * (2 * n - size[(r + 1) % K] - size[(r + 2) % K]) for r in range(K)],
                    dtype=np.int64)


def _bytes_mistake(kind):
    def impl(world_size, n, itemsize):
        K = world_size
        size = np.diff(_bounds(n, K))
        if kind == "equal":
            return np.full(K, 2 * (K - 1) / K * n * itemsize)
        if kind == "K_steps":
            return np.full(K, 2 * n * itemsize) if K > 1 else np.zeros(1)
        if kind == "no_all_gather":
            return np.array([itemsize * (n - size[(r + 1) % K]) for r in range(K)]) if K > 1 else np.zeros(1)
        if kind == "own_chunk":
            return np.array([2 * itemsize * (n - size[r]) for r in range(K)])
        if kind == "naive":
            return np.array([(K - 1) * n * itemsize] + [n * itemsize] * (K - 1))
        if kind == "bits":
            return 8 * ring_bytes_sent(world_size, n, itemsize)
        raise AssertionError(kind)
    return impl


def bytes_cases(rng):
    K = int(rng.integers(3, 9))
    return [
        Case("K = 3, n = 10 float64 (chunks 4, 3, 3)", (3, 10, 8)),
        Case("K = 4 divides n = 4000, float32", (4, 4000, 4)),
        Case("K = 5, n = 13 float16", (5, 13, 2)),
        Case("K = 7, n = 3 (some chunks empty)", (7, 3, 4)),
        Case("K = 1 (nothing to send)", (1, 10, 4)),
        Case(f"K = {K}, random n", (K, int(rng.integers(K + 1, 1000)), 4)),
    ]


RING_BYTES = Question(
    id="08.ring_bytes_sent", func="ring_bytes_sent", reference=ring_bytes_sent,
    make_cases=bytes_cases, output_names="bytes_sent", rtol=0.0, atol=1e-6,
    reference_modules=DIST_MODULES,
    mistakes=(
        Mistake("equal_chunks", "you used 2(K-1)/K * n * itemsize for every worker: right only when K "
                "divides n; with np.array_split's uneven chunks count the chunks each worker sends",
                _bytes_mistake("equal")),
        Mistake("K_steps", "you counted K steps per phase: each phase has K - 1 steps (a worker "
                "never sends the chunk it is about to complete / just received complete)",
                _bytes_mistake("K_steps")),
        Mistake("no_all_gather", "you counted reduce-scatter only: the all-gather sends as much again",
                _bytes_mistake("no_all_gather")),
        Mistake("own_chunk", "you skipped chunk r in both phases: worker r never sends chunk (r + 1) % K "
                "in reduce-scatter (it finishes it) and chunk (r + 2) % K in all-gather",
                _bytes_mistake("own_chunk")),
        Mistake("naive", "you counted the parameter-server all-reduce (worker 0 sends K - 1 buffers): "
                "the ring sends chunks", _bytes_mistake("naive")),
        Mistake("bits", "you counted bits: return bytes (itemsize is in bytes)", _bytes_mistake("bits")),
    ),
)


# ----------------------------------------------------------------------------------
# 08.zero_memory_per_worker

BUFFERS = {"sgd": 0, "sgd_momentum": 1, "adam": 2}


def zero_memory_per_worker(n_params, world_size, stage, optimizer, largest_layer):
    """Reference: mixed precision (2-byte weights and gradients, 4-byte master weights and
    optimizer buffers), each sharded state ``ceil(n_params / K)`` parameters per worker."""
    shard = -(-n_params // world_size)
    opt = 4 + 4 * BUFFERS[optimizer]
    total = (2 * (shard if stage >= 3 else n_params) + 2 * (shard if stage >= 2 else n_params)
             + opt * (shard if stage >= 1 else n_params))
    if stage == 3:
        total += 2 * largest_layer
    return int(total)


def _zero_mistake(*, divide=lambda n, K: -(-n // K), shift=0, master=True, inflight="stage3",
                  adam_always=False):
    def impl(n_params, world_size, stage, optimizer, largest_layer):
        s = stage + shift
        shard = divide(n_params, world_size)
        opt = (4 if master else 0) + 4 * BUFFERS["adam" if adam_always else optimizer]
        total = (2 * (shard if s >= 3 else n_params) + 2 * (shard if s >= 2 else n_params)
                 + opt * (shard if s >= 1 else n_params))
        if (inflight == "stage3" and stage == 3) or inflight == "always":
            total += 2 * largest_layer
        return total
    return impl


def zero_cases(rng):
    n = int(rng.integers(10_000, 1_000_000)) * 8 + 3       # 8 never divides it
    layer = int(rng.integers(100, 1000))
    return [
        Case("stage 0, Adam (plain DDP)", (1001, 4, 0, "adam", 300)),
        Case("stage 1, Adam, K does not divide n", (1001, 4, 1, "adam", 300)),
        Case("stage 2, SGD with momentum", (1001, 8, 2, "sgd_momentum", 300)),
        Case("stage 3, plain SGD", (1001, 8, 3, "sgd", 300)),
        Case("stage 3, Adam, K = 3", (1000, 3, 3, "adam", 250)),
        Case("random size, stage 2, Adam", (n, 8, 2, "adam", layer)),
        Case("random size, stage 3, Adam", (n, 8, 3, "adam", layer)),
    ]


ZERO = Question(
    id="08.zero_memory_per_worker", func="zero_memory_per_worker", reference=zero_memory_per_worker,
    make_cases=zero_cases, output_names="bytes", rtol=0.0, atol=1e-6, reference_modules=DIST_MODULES,
    mistakes=(
        Mistake("no_padding", "you divided exactly (n_params / K): FSDP pads the flat parameter so "
                "every worker holds ceil(n_params / K)", _zero_mistake(divide=lambda n, K: n / K)),
        Mistake("floor", "you rounded the shard down (n_params // K): the last values would belong to "
                "nobody; shards hold ceil(n_params / K)", _zero_mistake(divide=lambda n, K: n // K)),
        Mistake("stage_off_by_one", "your stages are shifted by one: stage 1 shards only the optimizer "
                "states, stage 2 adds the gradients, stage 3 the weights", _zero_mistake(shift=1)),
        Mistake("no_master_copy", "you forgot the fp32 master copy of the weights (4 bytes per "
                "parameter, part of the optimizer state in mixed precision)", _zero_mistake(master=False)),
        Mistake("no_gathered_layer", "at stage 3 a layer's full fp16 weights are gathered while it "
                "runs: add 2 * largest_layer bytes", _zero_mistake(inflight="never")),
        Mistake("gathered_layer_always", "you added the gathered layer at every stage: below stage 3 "
                "every worker already holds all weights", _zero_mistake(inflight="always")),
        Mistake("always_adam", "you used Adam's 12 optimizer bytes for every optimizer: SGD keeps only "
                "the master copy (4), SGD with momentum one buffer more (8)",
                _zero_mistake(adam_always=True)),
    ),
)


# ----------------------------------------------------------------------------------
# 08.weighted_average


def weighted_average(grads, shard_sizes):
    r"""Reference: :math:`\sum_k n_k g_k / \sum_k n_k`."""
    total = float(sum(shard_sizes))
    out = np.zeros_like(grads[0], dtype=np.float64)
    for g, n in zip(grads, shard_sizes):
        out += (n / total) * g
    return out


def wavg_cases(rng):
    def case(name, sizes, shape):
        return Case(name, ([rng.standard_normal(shape) for _ in sizes], list(sizes)))
    K = int(rng.integers(3, 7))
    return [
        case("unequal shards 8, 8, 8, 40", [8, 8, 8, 40], (5,)),
        case("two workers, 1 and 3 samples", [1, 3], (2, 3)),
        case("equal shards", [16, 16, 16], (4,)),
        case(f"{K} random shard sizes", [int(s) for s in rng.integers(1, 50, K)], (3, 2)),
    ]


WAVG = Question(
    id="08.weighted_average", func="weighted_average", reference=weighted_average,
    make_cases=wavg_cases, output_names="gradient", rtol=1e-10, atol=1e-12,
    reference_modules=DIST_MODULES,
    mistakes=(
        Mistake("plain_mean", "you averaged the K gradients with equal weights: a worker's gradient is "
                "a mean over its own shard, so weigh it by its shard size n_k / sum(n)",
                lambda grads, shard_sizes: np.mean(grads, axis=0)),
        Mistake("sum", "you summed the gradients (what all_reduce gives) without dividing",
                lambda grads, shard_sizes: np.sum(grads, axis=0)),
        Mistake("weighted_sum", "you multiplied by the shard sizes but never divided by the total "
                "batch size", lambda grads, shard_sizes: sum(n * g for g, n in zip(grads, shard_sizes))),
        Mistake("divide_by_K", "you divided the size-weighted sum by K: divide by the total number of "
                "samples sum(n_k)",
                lambda grads, shard_sizes: sum(n * g for g, n in zip(grads, shard_sizes)) / len(grads)),
    ),
)


# ----------------------------------------------------------------------------------
# 08.sign_ef_compress


def sign_ef_compress(grad, error):
    r"""Reference: :math:`p = g + e`, :math:`C(p) = \frac{\|p\|_1}{n}\,\mathrm{sign}(p)`,
    :math:`e' = p - C(p)`."""
    p = grad + error
    c = np.mean(np.abs(p)) * np.sign(p)
    return c, p - c


def _sign_mistake(kind):
    def impl(grad, error):
        p = grad if kind == "no_feedback" else grad + error
        scale = {"max": np.max(np.abs(p)), "unit": 1.0}.get(kind, np.mean(np.abs(p)))
        c = scale * np.sign(p)
        if kind == "error_sign":
            return c, c - p
        if kind == "error_from_grad":
            return c, grad - c
        return c, p - c
    return impl


def sign_cases(rng):
    def case(name, shape, zero_error=False, scale=1.0):
        g = rng.standard_normal(shape) * scale
        e = np.zeros(shape) if zero_error else rng.standard_normal(shape) * 0.5 * scale
        return Case(name, (g, e))
    return [
        case("the first step (no error yet)", (int(rng.integers(3, 9)),), zero_error=True),
        case("with a carried error", (6,)),
        case("a matrix", (3, 4)),
        case("small gradients", (5,), scale=1e-3),
    ]


SIGN_EF = Question(
    id="08.sign_ef_compress", func="sign_ef_compress", reference=sign_ef_compress,
    make_cases=sign_cases, output_names=("compressed", "new_error"), rtol=1e-10, atol=1e-13,
    reference_modules=DIST_MODULES,
    mistakes=(
        Mistake("no_feedback", "you compressed the gradient alone: add the carried error first, "
                "p = grad + error", _sign_mistake("no_feedback")),
        Mistake("error_sign", "your new error has the wrong sign: it is what was *not* sent, p - C(p)",
                _sign_mistake("error_sign")),
        Mistake("error_from_grad", "your new error is grad - C(p): it must be p - C(p) with "
                "p = grad + error, else the old error is lost", _sign_mistake("error_from_grad")),
        Mistake("max_scale", "you scaled the signs by max|p|: the scale that keeps the most is the "
                "mean absolute value, ||p||_1 / n", _sign_mistake("max")),
        Mistake("unit_sign", "you sent sign(p) without a scale: multiply by mean(|p|)",
                _sign_mistake("unit")),
    ),
)

QUESTIONS = (RS_LEFT, RING_BYTES, ZERO, WAVG, SIGN_EF)
