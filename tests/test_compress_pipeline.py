"""course_lib.compress.pipeline and torch_pipeline: every stage measured, invariants of each stage."""

import numpy as np
import pytest

pytest.importorskip("course_lib.prune")
pytest.importorskip("course_lib.quant")
pytest.importorskip("course_lib.distill")

from course_lib.compress import fileformat as ff  # noqa: E402
from course_lib.compress import pipeline as pl  # noqa: E402
from course_lib.data import load_digits_split  # noqa: E402

SMALL = pl.PipelineConfig(teacher_sizes=(64, 48, 10), student_sizes=(64, 24, 10), epochs=4,
                          sparsity=0.8, prune_rounds=2, finetune_epochs=2, codebook_epochs=2,
                          kmeans_bits=3)


@pytest.fixture(scope="module")
def data():
    return load_digits_split(seed=0)


@pytest.fixture(scope="module")
def result(data):
    return pl.run_pipeline(data, SMALL, seed=0)


def test_stage_names_and_measured_sizes(result, tmp_path):
    names = [s.name for s in result.stages]
    assert names == ["baseline fp32", "student fp32", "pruned fp32", "pruned int8",
                     "pruned k-means", "pruned k-means + Huffman"]
    for s in result.stages:
        path = tmp_path / "m.tscm"
        assert ff.save(s.model, path, codec=s.codec, index_bits=SMALL.index_bits) == s.nbytes
        assert s.nbytes == s.parts["total"] == sum(v for k, v in s.parts.items() if k != "total")
    sizes = [s.nbytes for s in result.stages]
    assert all(a > b for a, b in zip(sizes, sizes[1:]))
    assert result["baseline fp32"].bits_per_weight == 32.0


def test_pruned_stage_reaches_the_target_sparsity(result):
    s = result["pruned fp32"]
    n_weights = 64 * 24 + 24 * 10
    assert s.model.num_weights == n_weights
    # two rounds of round(amount * remaining): within a couple of weights of 20 % kept
    assert abs(s.nnz - 0.2 * n_weights) <= 2
    assert result["student fp32"].nnz > 0.95 * n_weights


def test_int8_stage_is_chapter5_quantization_of_the_pruned_weights(result):
    from course_lib.quant import quantize_weight_per_channel

    pruned, q8 = result["pruned fp32"].model, result["pruned int8"].model
    for a, b in zip(pruned.layers, q8.layers):
        W = a.weight()
        q, scales, _ = quantize_weight_per_channel(W, bits=8)
        np.testing.assert_array_equal(b.indices, np.flatnonzero(W))
        np.testing.assert_array_equal(b.values, q.ravel()[b.indices])
        np.testing.assert_array_equal(b.scales, scales)
        assert np.abs(b.weight() - W).max() <= scales.max() / 2 + 1e-7


def test_kmeans_stage_shares_few_values_on_the_same_positions(result):
    pruned, km = result["pruned fp32"].model, result["pruned k-means"].model
    for a, b in zip(pruned.layers, km.layers):
        assert b.kind == "codebook" and b.codebook.size <= 2 ** SMALL.kmeans_bits
        np.testing.assert_array_equal(b.indices, a.indices)
        assert len(np.unique(b.weight()[b.weight() != 0])) <= 2 ** SMALL.kmeans_bits
    assert result["pruned k-means + Huffman"].model is km


def test_round_trip_of_every_stage_gives_identical_predictions(result, data):
    for s in result.stages:
        back = ff.from_bytes(ff.to_bytes(s.model, codec=s.codec))
        np.testing.assert_array_equal(back.predict(data.X_val), s.model.predict(data.X_val))
        assert s.val_acc == np.mean(s.model.predict(data.X_val) == data.y_val)


def test_han_path_has_no_student(data):
    cfg = pl.PipelineConfig(**{**SMALL.__dict__, "student_sizes": None})
    r = pl.run_pipeline(data, cfg, seed=1)
    assert [s.name for s in r.stages][:2] == ["baseline fp32", "pruned fp32"]
    with pytest.raises(KeyError, match="student"):
        r["student fp32"]


def test_codebook_sgd_step_is_the_summed_gradient(data):
    from course_lib.nn import MLP

    rng = np.random.default_rng(0)
    model = MLP([64, 8, 10], seed=0)
    packed = []
    for layer in (model[0], model[2]):
        pos = np.flatnonzero(rng.random(layer.weight.size) < 0.5)
        packed.append(ff.PackedLinear(*layer.weight.shape, "codebook",
                                      rng.integers(0, 4, pos.size).astype(np.uint8), indices=pos,
                                      codebook=np.array([-.3, -.1, .1, .3], np.float32),
                                      bias=layer.bias.copy()))
    opt = pl.CodebookSGD(model, packed, lr=0.1, bias_lr=0.0)
    before = [p.codebook.copy() for p in packed]
    logits = model.forward(data.X_train[:16])
    model.backward(rng.standard_normal(logits.shape).astype(np.float32))
    expected = []
    for layer, p, c in zip((model[0], model[2]), packed, before):
        g = layer.grad_weight.ravel()[p.indices]
        expected.append(c - 0.1 * np.array([g[p.values == j].sum() for j in range(4)]))
    opt.step()
    for layer, p, e in zip((model[0], model[2]), packed, expected):
        np.testing.assert_allclose(p.codebook, e, rtol=1e-5, atol=1e-6)
        W = layer.weight.ravel()
        np.testing.assert_array_equal(W[p.indices], p.codebook[p.values])
        mask = np.ones(W.size, bool)
        mask[p.indices] = False
        assert not W[mask].any()                       # pruned weights stay exactly zero


def test_codebook_finetuning_lowers_the_training_loss(data):
    from course_lib.nn import evaluate

    cfg0 = pl.PipelineConfig(**{**SMALL.__dict__, "student_sizes": None, "kmeans_bits": 1,
                                "codebook_epochs": 0})
    cfg1 = pl.PipelineConfig(**{**cfg0.__dict__, "codebook_epochs": 3})
    with pl.one_blas_thread():
        base = pl.train_baseline(data, cfg0, 0)
        pruned = pl.prune_finetune(base, data, cfg0, 0)
        loss0 = evaluate(pl.kmeans_stage(pruned, data, cfg0, 0).to_sequential(),
                         data.X_train, data.y_train)[0]
        loss1 = evaluate(pl.kmeans_stage(pruned, data, cfg1, 0).to_sequential(),
                         data.X_train, data.y_train)[0]
    assert loss1 < loss0


def test_config_bad_input():
    with pytest.raises(ValueError, match="sparsity"):
        pl.PipelineConfig(sparsity=1.0)
    with pytest.raises(ValueError, match="kmeans_bits"):
        pl.PipelineConfig(kmeans_bits=9)
    with pytest.raises(ValueError, match="lr"):
        pl.PipelineConfig(lr=0)


def test_torch_side_by_side_same_masks_dense_storage(data):
    from course_lib.compress.torch_pipeline import torch_side_by_side

    cfg = pl.PipelineConfig(**{**SMALL.__dict__, "student_sizes": None})
    with pl.one_blas_thread():
        base = pl.train_baseline(data, cfg, 0)
    ours = pl.run_pipeline(data, cfg, seed=0, baseline=base)
    rows = {r.name: r for r in torch_side_by_side(data, cfg, seed=0, baseline=base)}
    dense, pruned = rows["baseline fp32 (torch.save)"], rows["pruned (torch.save, dense)"]
    assert pruned.nnz == ours["pruned fp32"].nnz           # the same global L1 masks
    assert pruned.val_acc == pytest.approx(ours["pruned fp32"].val_acc, abs=0.01)
    assert abs(pruned.nbytes - dense.nbytes) < 0.01 * dense.nbytes  # zeros stored: same size
    assert rows["pruned, before prune.remove"].nbytes > 1.8 * dense.nbytes  # orig + mask
    assert rows["pruned int8 (quantize_dynamic)"].nbytes < 0.5 * dense.nbytes
