"""Chapter 8 from scratch: all-reduce algorithms, simulated data parallelism, the cost model,
gradient compression and the memory calculator.  Expected values are sums computed directly or
counts worked out by hand (stated beside each)."""

import math

import numpy as np
import pytest

from course_lib import nn, optim
from course_lib import distributed as D
from course_lib.distributed.allreduce import chunk_bounds
from course_lib.data import load_digits_split

ALGOS = sorted(D.ALLREDUCES)


# ----------------------------------------------------------------------------------
# all-reduce


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("K", [1, 2, 3, 4, 5, 7, 8])
@pytest.mark.parametrize("n", [1, 5, 16, 101])
def test_allreduce_gives_every_worker_the_sum(algorithm, K, n, rng):
    bufs = [rng.standard_normal(n) for _ in range(K)]
    before = [b.copy() for b in bufs]
    out, stats = D.allreduce(bufs, algorithm)
    direct = np.sum(np.stack(bufs), axis=0)
    assert len(out) == K
    for o in out:
        assert o.shape == (n,) and np.max(np.abs(o - direct)) < 1e-12
    assert all(np.array_equal(a, b) for a, b in zip(bufs, before))  # inputs untouched
    assert stats.messages_sent.shape == stats.bytes_sent.shape == (K,)


@pytest.mark.parametrize("algorithm", ALGOS)
def test_allreduce_is_exact_on_integers_and_keeps_shape(algorithm, rng):
    bufs = [rng.integers(-100, 100, size=(3, 5)) for _ in range(6)]
    out, _ = D.allreduce(bufs, algorithm)
    for o in out:
        assert o.shape == (3, 5) and o.dtype == bufs[0].dtype
        assert np.array_equal(o, sum(bufs))


def test_ring_bytes_equal_the_formula_when_K_divides_n():
    # K = 4 workers, 8 float64 each: chunks of 2 values = 16 bytes; 2(K-1) = 6 messages each
    _, s = D.ring_allreduce([np.ones(8) for _ in range(4)])
    assert list(s.messages_sent) == [6] * 4 and list(s.bytes_sent) == [96] * 4 and s.rounds == 6
    for K in (2, 3, 5, 8):
        n = 40 * K
        _, s = D.ring_allreduce([np.zeros(n, np.float32) for _ in range(K)])
        assert s.max_bytes == 2 * (K - 1) / K * 4 * n == D.allreduce_bytes("ring", K, 4 * n)
        assert s.rounds == D.allreduce_rounds("ring", K)


def test_ring_bytes_with_uneven_chunks_by_hand():
    # K = 3, n = 10 float64: chunks of 4, 3, 3 values.  Worker r sends every chunk but
    # (r + 1) % 3 in reduce-scatter and every chunk but (r + 2) % 3 in all-gather:
    # worker 0: (4 + 3) + (3 + 4) = 14 values, worker 1: (3 + 4) + (3 + 3) = 13, worker 2: 13.
    _, s = D.ring_allreduce([np.ones(10) for _ in range(3)])
    assert list(s.bytes_sent) == [14 * 8, 13 * 8, 13 * 8]
    assert list(chunk_bounds(10, 3)) == [0, 4, 7, 10]


def test_naive_and_tree_message_counts_by_hand():
    # naive, K = 4, 8 bytes each: worker 0 sends the sum back 3 times, the others once
    _, s = D.naive_allreduce([np.ones(1) for _ in range(4)])
    assert list(s.messages_sent) == [3, 1, 1, 1] and list(s.bytes_sent) == [24, 8, 8, 8]
    assert s.rounds == 6
    # tree, K = 5: reduce 1->0, 3->2 | 2->0 | 4->0 ; broadcast 0->4 | 0->2 | 0->1, 2->3
    _, s = D.tree_allreduce([np.ones(1) for _ in range(5)])
    assert list(s.messages_sent) == [3, 1, 2, 1, 1] and s.rounds == 6 == D.allreduce_rounds("tree", 5)


def test_ring_history_shows_each_worker_owning_one_reduced_chunk():
    # one-hot buffers: worker r contributes e_r to every chunk, so a chunk's value counts
    # whose contributions it already holds
    K = 4
    bufs = [np.tile(np.eye(K)[r], K) for r in range(K)]
    _, s = D.ring_allreduce(bufs, history=True)
    assert len(s.history) == 2 * (K - 1)
    after_rs = s.history[K - 2].reshape(K, K, K)  # worker, chunk, contributor
    for r in range(K):
        assert np.array_equal(after_rs[r, (r + 1) % K], np.ones(K))      # complete
        assert after_rs[r, r].sum() == 1                 # chunk r: only its own (sent, never received)
        assert after_rs[r, (r + 2) % K].sum() == K - 1   # one step short
    assert np.array_equal(s.history[-1], np.ones((K, K * K)))


def test_reduce_scatter_step_reads_values_from_before_the_step():
    # K = 3, one value per chunk, worker r holds [10r, 10r + 1, 10r + 2].  Step 0: worker r sends
    # chunk r to worker r + 1: w1 gets chunk 0 += 0, w2 gets chunk 1 += 11, w0 gets chunk 2 += 22.
    work = np.array([[0., 1, 2], [10, 11, 12], [20, 21, 22]])
    D.ring_reduce_scatter_step(work, 0, chunk_bounds(3, 3))
    assert np.array_equal(work, [[0, 1, 24], [10, 11, 12], [20, 32, 22]])
    # step 1: worker r sends chunk (r - 1) % 3: w0 sends 24 (chunk 2) to w1, w1 sends 10 to w2,
    # w2 sends 32 to w0 -> every worker r owns the full sum of chunk (r + 1) % 3
    D.ring_reduce_scatter_step(work, 1, chunk_bounds(3, 3))
    assert work[0, 1] == 1 + 11 + 21 and work[1, 2] == 2 + 12 + 22 and work[2, 0] == 0 + 10 + 20


@pytest.mark.parametrize("bad, err", [
    ([], ValueError), (np.ones((2, 3)), TypeError), ([np.ones(3), np.ones(4)], ValueError),
    ([np.ones(3), [1, 2, 3]], TypeError), ([np.ones(2), np.ones(2, np.float32)], TypeError),
    ([np.array(["a", "b"])], TypeError)])
def test_allreduce_rejects_bad_buffers(bad, err):
    with pytest.raises(err, match="buffers"):
        D.ring_allreduce(bad)


def test_allreduce_rejects_unknown_algorithm():
    with pytest.raises(ValueError, match="algorithm"):
        D.allreduce([np.ones(2)], "butterfly")


# ----------------------------------------------------------------------------------
# the cost model


def test_cost_model_by_hand():
    # ring, K = 4, N = 1e6 bytes, alpha = 1e-5 s, beta = 1e9 B/s: 6 rounds, 1.5e6 bytes
    t = D.allreduce_time("ring", 4, 1e6, latency=1e-5, bandwidth=1e9)
    assert t == pytest.approx(6e-5 + 1.5e-3)
    # tree, K = 8: 2 * 3 rounds of the whole buffer; naive K = 8: 14 rounds of the whole buffer
    assert D.allreduce_time("tree", 8, 1e6, latency=1e-5, bandwidth=1e9) == pytest.approx(6 * (1e-5 + 1e-3))
    assert D.allreduce_time("naive", 8, 1e6, latency=1e-5, bandwidth=1e9) == pytest.approx(14 * (1e-5 + 1e-3))
    assert D.allreduce_rounds("ring", 1) == D.allreduce_rounds("tree", 1) == 0


def test_ring_bandwidth_term_approaches_2N_and_wins_for_large_buffers_loses_for_tiny():
    Ks = np.array([2, 4, 16, 256, 1024])
    ratio = [D.allreduce_bytes("ring", int(k), 1.0) for k in Ks]
    assert np.allclose(ratio, 2 * (Ks - 1) / Ks) and ratio[-1] < 2
    big, tiny = 1e9, 8.0
    assert D.allreduce_time("ring", 64, big) < D.allreduce_time("tree", 64, big)
    assert D.allreduce_time("tree", 64, tiny) < D.allreduce_time("ring", 64, tiny)
    assert np.allclose(D.allreduce_time("ring", Ks, big),
                       [D.allreduce_time("ring", int(k), big) for k in Ks])


def test_cost_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="algorithm"):
        D.allreduce_time("star", 4, 1.0)
    with pytest.raises(ValueError, match="world_size"):
        D.allreduce_rounds("ring", 0)
    with pytest.raises(ValueError, match="bandwidth"):
        D.allreduce_time("ring", 4, 1.0, bandwidth=0)


# ----------------------------------------------------------------------------------
# simulated data parallelism


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(dtype=np.float64)


def make_model(seed):
    return nn.MLP([64, 16, 10], seed=seed, dtype=np.float64)


def max_gap(a, b):
    return max(float(np.max(np.abs(p - q))) for p, q in zip(a.params, b.params))


@pytest.mark.parametrize("K", [2, 4, 8])
def test_K_workers_with_B_over_K_equal_one_worker_with_B(digits, K):
    idx = D.batch_indices(len(digits.y_train), 64, 40, seed=1)
    run = D.train_data_parallel(make_model, digits.X_train, digits.y_train, idx, world_size=K, lr=0.2)
    # the reference: a plain loop, one model, the whole batch
    ref = make_model(0)
    from course_lib.losses import softmax_cross_entropy
    losses = []
    for b in idx:
        loss, d = softmax_cross_entropy(ref.forward(digits.X_train[b]), digits.y_train[b])
        ref.backward(d)
        for p, g in zip(ref.params, ref.grads):
            p -= 0.2 * g
        losses.append(loss)
    assert run.max_replica_gap() == 0.0
    assert max_gap(run.replicas[0], ref) < 1e-12
    assert np.max(np.abs(run.losses - losses)) < 1e-12
    assert max_gap(ref, make_model(0)) > 0.05  # it trained


def test_equivalence_holds_with_momentum_and_every_allreduce(digits):
    idx = D.batch_indices(len(digits.y_train), 48, 30, seed=2)
    mk_opt = lambda p: optim.SGD(p, lr=0.05, momentum=0.9)  # noqa: E731
    ref = make_model(0)
    D.train_single(ref, digits.X_train, digits.y_train, idx, make_optimizer=mk_opt)
    for algorithm in ALGOS:
        run = D.train_data_parallel(make_model, digits.X_train, digits.y_train, idx, world_size=3,
                                    make_optimizer=mk_opt, algorithm=algorithm)
        assert max_gap(run.replicas[0], ref) < 1e-12, algorithm


def test_what_breaks_the_equivalence(digits):
    idx = D.batch_indices(len(digits.y_train), 64, 30, seed=3)
    X, y = digits.X_train, digits.y_train
    ref = make_model(0)
    D.train_single(ref, X, y, idx, lr=0.1)
    # a sum instead of a mean is the single worker at K times the learning rate
    summed = D.train_data_parallel(make_model, X, y, idx, world_size=4, lr=0.1, average=False)
    ref4 = make_model(0)
    D.train_single(ref4, X, y, idx, lr=0.4)
    assert max_gap(summed.replicas[0], ref) > 1e-2 and max_gap(summed.replicas[0], ref4) < 1e-12
    # unequal shards with a plain mean weigh the small shard's samples more
    uneven = D.train_data_parallel(make_model, X, y, idx, world_size=4, lr=0.1, shard_sizes=[8, 8, 8, 40])
    assert max_gap(uneven.replicas[0], ref) > 1e-3
    # no broadcast: every worker keeps its own initial weights
    nob = D.train_data_parallel(make_model, X, y, idx, world_size=4, lr=0.1, broadcast=False)
    assert nob.max_replica_gap() > 0.1 and max_gap(nob.replicas[0], ref) > 0.1


def test_data_parallel_rejects_bad_arguments(digits):
    idx = D.batch_indices(100, 10, 2)
    X, y = digits.X_train[:100], digits.y_train[:100]
    with pytest.raises(ValueError, match="lr"):
        D.train_data_parallel(make_model, X, y, idx, world_size=2)
    with pytest.raises(ValueError, match="shard_sizes"):
        D.train_data_parallel(make_model, X, y, idx, world_size=2, lr=0.1, shard_sizes=[3, 3])
    with pytest.raises(ValueError, match="world_size"):
        D.shard_sizes_equal(4, 5)
    with pytest.raises(ValueError, match="batch_size"):
        D.batch_indices(10, 11, 1)


def test_batch_indices_are_full_batches_of_fresh_permutations():
    idx = D.batch_indices(10, 3, 7, seed=0)
    assert idx.shape == (7, 3)
    assert len(set(idx[:3].ravel())) == 9  # one epoch: 3 batches, no repeats, 1 sample dropped
    assert np.array_equal(idx, D.batch_indices(10, 3, 7, seed=0))


# ----------------------------------------------------------------------------------
# compression


def test_topk_by_hand_and_error_feedback_loses_nothing(rng):
    g = np.array([0.1, -3.0, 0.5, 2.0, -0.2])
    assert np.array_equal(D.topk(g, 2), [0, -3.0, 0, 2.0, 0])
    ef = D.TopKCompressor(0.2, world_size=1)   # k = 1 of 5
    grads = [rng.standard_normal(5) for _ in range(20)]
    sent = [ef(0, gi) for gi in grads]
    assert all(np.count_nonzero(s) == 1 for s in sent)
    # telescoping: everything sent + what is still owed = everything computed
    assert np.allclose(np.sum(sent, axis=0) + ef.errors[0], np.sum(grads, axis=0), atol=1e-12)
    no_ef = D.TopKCompressor(0.2, world_size=1, error_feedback=False)
    assert np.array_equal(no_ef(0, g), D.topk(g, 1)) and no_ef.errors[0] is None


def test_qsgd_is_unbiased_and_on_its_grid():
    g = np.array([0.3, -1.2, 0.05, 0.0, 2.0])
    rng = np.random.default_rng(0)
    draws = np.array([D.qsgd(g, 4, rng) for _ in range(20000)])
    norm = np.linalg.norm(g)
    levels = draws / norm * 4
    assert np.allclose(levels, np.round(levels))           # multiples of norm / s
    assert np.max(np.abs(draws.mean(axis=0) - g)) < 0.02   # unbiased (std of the mean ~ 0.005)
    assert np.array_equal(D.qsgd(np.zeros(3), 4, rng), np.zeros(3))


def test_message_bytes_by_hand():
    assert D.topk_bytes(10) == 80                 # 10 * (4 value + 4 index)
    assert D.qsgd_bytes(1000, 1) == 4 + 250       # 2 bits per value: sign + 1 level bit
    assert D.qsgd_bytes(1000, 4) == 4 + 500       # 1 + ceil(log2 5) = 4 bits
    assert D.dense_bytes(1000) == 4000


def test_compression_rejects_bad_arguments():
    with pytest.raises(ValueError, match="k"):
        D.topk(np.ones(3), 4)
    with pytest.raises(TypeError, match="rng"):
        D.qsgd(np.ones(3), 2, 0)
    with pytest.raises(ValueError, match="ratio"):
        D.TopKCompressor(0.0, 2)


# ----------------------------------------------------------------------------------
# memory


def test_zero_memory_matches_the_zero_papers_figure_1():
    # ZeRO (Rajbhandari et al. 2020), Figure 1: 7.5B parameters, K = 64, mixed-precision Adam.
    # baseline 16 * 7.5e9 = 120 GB; P_os: (2 + 2) * 7.5e9 + 12 * 7.5e9 / 64 = 31.4 GB;
    # P_os+g: 2 * 7.5e9 + 14 * 7.5e9 / 64 = 16.6 GB; P_os+g+p: 120 GB / 64 = 1.9 GB
    psi, K = 7.5e9, 64
    got = [D.zero_memory_per_worker(psi, K, s)["total"] / 1e9 for s in range(4)]
    assert got == pytest.approx([120.0, 31.40625, 16.640625, 1.875])


def test_training_memory_by_hand():
    # fp32 Adam: 4 + 4 + 8 = 16 bytes; fp32 SGD: 4 + 4; mixed SGD with momentum: 2 + 2 + 4 + 4
    assert D.training_memory(1e6, precision="fp32")["total"] == 16e6
    assert D.training_memory(1e6, precision="fp32", optimizer="sgd")["total"] == 8e6
    assert D.training_memory(1e6, optimizer="sgd_momentum")["total"] == 12e6
    m = D.zero_memory_per_worker(1e9, 8, 2, activations=5e8)
    # stage 2, mixed Adam: params 2e9 whole, grads 2e9 / 8, optimizer 12e9 / 8, activations whole
    assert (m["params"], m["grads"], m["optimizer"], m["activations"]) == (2e9, 2.5e8, 1.5e9, 5e8)
    assert m["total"] == 2e9 + 2.5e8 + 1.5e9 + 5e8


def test_activation_and_bubble_formulas_by_hand():
    # L = 1, s = 2, b = 1, h = 4, a = 2: 1 * 2 * 1 * 4 * (34 + 5 * 2 * 2 / 4) = 8 * 39 = 312
    assert D.transformer_activation_bytes(layers=1, seq_len=2, batch=1, hidden=4, heads=2) == 312
    assert D.pipeline_bubble_fraction(4, 8) == pytest.approx(3 / 11)
    assert D.pipeline_bubble_fraction(1, 5) == 0.0


def test_memory_rejects_bad_arguments():
    with pytest.raises(ValueError, match="stage"):
        D.zero_memory_per_worker(1e6, 4, 4)
    with pytest.raises(ValueError, match="precision"):
        D.training_memory(1e6, precision="fp8")
    with pytest.raises(ValueError, match="optimizer"):
        D.training_memory(1e6, optimizer="lion")
    with pytest.raises(ValueError, match="n_params"):
        D.training_memory(-1)
