r"""Deep Compression end to end, from the parts chapters 4-6 built (chapter 7).

Han, Mao and Dally (2016) shrank LeNet-300-100 on MNIST 40x (1070 KB -> 27 KB) without losing
accuracy, in three stages: prune (and retrain), quantize by weight sharing (and retrain the shared
centroids), Huffman-code what is stored.  The course runs the same pipeline on its digits MLP with
LeNet-300-100's hidden sizes (64-300-100-10), plus the stage they did not have, distillation
into a smaller student first.  Nothing here is written twice:

=======================================  ===================================================
stage                                    made of
=======================================  ===================================================
baseline                                 :func:`course_lib.nn.fit` (chapter 2)
distilled student                        :func:`course_lib.distill.distill` (chapter 6)
iterative prune + fine-tune              :func:`course_lib.prune.prune_model`,
                                         :func:`~course_lib.prune.iterative_amount`,
                                         :func:`~course_lib.prune.remove` (chapter 4), ``fit``
int8 per channel                         :func:`course_lib.quant.quantize_weight_per_channel`
                                         (chapter 5)
k-means weight sharing, fine-tuned       :func:`course_lib.quant.kmeans_codebook` and
centroids                                :func:`~course_lib.quant.codebook_gradient` (chapter 5),
                                         trained by ``fit`` with :class:`CodebookSGD`
storage, sizes measured                  :mod:`course_lib.compress.fileformat` (gaps, codes,
                                         codebooks, CRC), :mod:`~course_lib.compress.huffman`
=======================================  ===================================================

Every stage is a :class:`Stage`: its :class:`~course_lib.compress.fileformat.CompressedModel`,
the file's size in bytes (``len(to_bytes(...))``, the bytes :func:`~course_lib.compress.fileformat.save`
writes), parameters, nonzero weights, bits per nonzero weight (indices, codes and codebooks,
divided by the nonzeros) and validation accuracy.  Test accuracy is computed by the caller,
once, at the end.

Small matrices and a busy 2-core machine: the pipeline runs NumPy's BLAS on one thread
(``threadpoolctl``); a 64x300 GEMM gains nothing from a second thread, and when another
program holds a core, the two-thread GEMM waits for it at every call (measured on the course
machine under load: 56 s for the baseline's 30 epochs with two threads, 1 s with one).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace

import numpy as np

from ..validation import check_in_range, check_positive
from .fileformat import CompressedModel, PackedLinear, size_breakdown

__all__ = ["PipelineConfig", "HAN_PATH", "Stage", "PipelineResult", "run_pipeline", "CodebookSGD",
           "one_blas_thread", "train_baseline", "distill_student", "prune_finetune",
           "int8_stage", "kmeans_stage", "stage_record", "accuracy", "sparse_predictor",
           "int8_predictor"]


@contextlib.contextmanager
def one_blas_thread():
    """Run NumPy's BLAS on one thread inside the block (see the module docstring)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a scikit-learn dependency
        yield
        return
    with threadpool_limits(1, "blas"):
        yield


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of one pipeline run (defaults: the chapter's)."""
    teacher_sizes: tuple = (64, 300, 100, 10)   # LeNet-300-100's hidden sizes
    student_sizes: tuple | None = (64, 64, 32, 10)  # None: no distillation (Han et al.'s path)
    lr: float = 0.05
    epochs: int = 30
    batch_size: int = 32
    T: float = 4.0
    alpha: float = 0.9
    sparsity: float = 0.7        # fraction of weights pruned in the end (HAN_PATH: 0.9)
    prune_rounds: int = 4
    finetune_epochs: int = 8
    finetune_lr: float = 0.05
    kmeans_bits: int = 4         # k = 2**bits shared values per layer
    codebook_epochs: int = 5
    codebook_lr: float = 0.002
    index_bits: int = 5          # bits per sparse gap (Han et al.: 5 for fully connected layers)

    def __post_init__(self):
        check_in_range("sparsity", self.sparsity, 0.0, 1.0)
        check_positive("prune_rounds", self.prune_rounds, integer=True)
        check_in_range("kmeans_bits", self.kmeans_bits, 1, 8, high_inclusive=True)
        for name in ("lr", "finetune_lr", "codebook_lr", "T"):
            check_positive(name, getattr(self, name))
        for name in ("epochs", "finetune_epochs", "batch_size"):
            check_positive(name, getattr(self, name), integer=True)
        check_positive("codebook_epochs", self.codebook_epochs, integer=True, allow_zero=True)


#: Han et al.'s path: no distillation, the baseline pruned to 90% (they removed 92% of
#: LeNet-300-100's weights).  The default config distils first and prunes the student to 70%.
HAN_PATH = PipelineConfig(student_sizes=None, sparsity=0.9)


@dataclass
class Stage:
    """One row of the Deep Compression table."""
    name: str
    model: CompressedModel
    codec: str
    nbytes: int
    params: int
    nnz: int
    bits_per_weight: float
    val_acc: float
    parts: dict = field(default_factory=dict)


@dataclass
class PipelineResult:
    """Every stage of one run, in order, and the config that made them."""
    config: PipelineConfig
    seed: int
    stages: list

    def __getitem__(self, name) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage named {name!r}; stages: {[s.name for s in self.stages]}")


def accuracy(model, X, y) -> float:
    """Fraction of ``model.predict(X)`` equal to ``y``."""
    return float(np.mean(model.predict(X) == np.asarray(y)))


def stage_record(name, model: CompressedModel, X_val, y_val, *, codec="raw", index_bits=5) -> Stage:
    """Measure one stage: file bytes, params, nonzeros, bits per nonzero weight, val accuracy."""
    parts = size_breakdown(model, codec=codec, index_bits=index_bits)
    nnz = model.nnz
    weight_bytes = parts["indices"] + parts["values"] + parts["scales_codebooks"]
    return Stage(name, model, codec, parts["total"], model.num_params, nnz,
                 8.0 * weight_bytes / max(nnz, 1), accuracy(model, X_val, y_val), parts)


# ------------------------------------------------------------------------------ the stages

def train_baseline(data, cfg: PipelineConfig, seed: int):
    """The uncompressed model (chapter 2's MLP and ``fit``)."""
    from ..nn import MLP, fit

    model = MLP(list(cfg.teacher_sizes), seed=seed)
    fit(model, data.X_train, data.y_train, lr=cfg.lr, epochs=cfg.epochs,
        batch_size=cfg.batch_size, seed=seed)
    return model


def distill_student(teacher, data, cfg: PipelineConfig, seed: int):
    """A smaller MLP trained on the teacher's softened logits and the labels (chapter 6)."""
    from ..distill import distill
    from ..nn import MLP

    student = MLP(list(cfg.student_sizes), seed=seed + 1000)
    distill(student, data.X_train, data.y_train, teacher=teacher, T=cfg.T, alpha=cfg.alpha,
            lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=seed)
    return student


def prune_finetune(model, data, cfg: PipelineConfig, seed: int):
    """Iterative global magnitude pruning to ``cfg.sparsity`` in ``cfg.prune_rounds`` rounds, each
    followed by fine-tuning (masked gradients, chapter 4); the masks are then made permanent.
    Works on a copy; returns it."""
    from .. import prune
    from ..nn import fit

    model = model.copy()
    amount = prune.iterative_amount(cfg.sparsity, cfg.prune_rounds)
    for r in range(cfg.prune_rounds):
        prune.prune_model(model, amount, method="l1", scope="global")
        fit(model, data.X_train, data.y_train, lr=cfg.finetune_lr, epochs=cfg.finetune_epochs,
            batch_size=cfg.batch_size, seed=seed + 100 * (r + 1))
    for _, layer in prune.linear_layers(model):
        prune.remove(layer, "weight")
    return model


def int8_stage(model) -> CompressedModel:
    """Weights to int8, symmetric per output channel (torch's rule, chapter 5); zeros stay out."""
    from ..quant import quantize_weight_per_channel

    ops = []
    for layer in model:
        if type(layer).__name__ != "Linear":
            ops.append(type(layer).__name__.lower())
            continue
        W = layer.weight
        q, scales, zps = quantize_weight_per_channel(W, bits=8)
        pos = np.flatnonzero(W)
        ops.append(PackedLinear(W.shape[0], W.shape[1], "int8", q.ravel()[pos].astype(np.int8),
                                indices=pos, scales=np.asarray(scales, np.float32),
                                zero_points=np.asarray(zps).astype(np.int8),
                                bias=layer.bias.astype(np.float32)))
    return CompressedModel(ops)


class CodebookSGD:
    """SGD on shared weights (Han et al.'s centroid fine-tuning) and biases, for ``fit``.

    ``step(grads)`` (the interface :func:`course_lib.nn.fit` calls): for each layer, the centroid
    gradient is the *sum* of the gradients of the weights that share it
    (:func:`course_lib.quant.codebook_gradient`), ``codebook -= lr * grad``; biases take a
    plain SGD step with ``bias_lr``; then every stored weight is rewritten as
    ``codebook[index]`` (pruned weights stay exactly 0).
    """

    def __init__(self, model, packed: list, *, lr: float, bias_lr: float):
        self.layers = [l for l in model if type(l).__name__ == "Linear"]
        self.packed = packed
        self.lr, self.bias_lr = float(lr), float(bias_lr)
        self.write_weights()

    def write_weights(self):
        for layer, p in zip(self.layers, self.packed):
            layer.weight[...] = 0
            np.put(layer.weight, p.indices, p.codebook[p.values])
            if p.bias is not None:
                layer.bias[...] = p.bias

    def step(self, grads=None):
        from ..quant import codebook_gradient

        for layer, p in zip(self.layers, self.packed):
            g = layer.grad_weight.ravel()[p.indices]
            gc = codebook_gradient(g, p.values, p.codebook.size)
            p.codebook[...] = (p.codebook - np.float32(self.lr) * gc.astype(np.float32))
            if p.bias is not None:
                p.bias[...] = p.bias - np.float32(self.bias_lr) * layer.grad_bias
        self.write_weights()


def kmeans_stage(model, data, cfg: PipelineConfig, seed: int) -> CompressedModel:
    """Share ``2**cfg.kmeans_bits`` values per layer among its nonzero weights (k-means with a
    linear start, chapter 5), then fine-tune the centroids and biases for ``cfg.codebook_epochs``."""
    from ..nn import fit
    from ..quant import kmeans_codebook

    k = 2 ** cfg.kmeans_bits
    ops, packed = [], []
    for layer in model:
        if type(layer).__name__ != "Linear":
            ops.append(type(layer).__name__.lower())
            continue
        W = layer.weight
        pos = np.flatnonzero(W)
        codebook, idx = kmeans_codebook(W.ravel()[pos], min(k, max(pos.size, 2)))
        p = PackedLinear(W.shape[0], W.shape[1], "codebook", idx.astype(np.uint8), indices=pos,
                         codebook=codebook.astype(np.float32), bias=layer.bias.astype(np.float32))
        ops.append(p)
        packed.append(p)
    if cfg.codebook_epochs:
        work = model.copy()
        opt = CodebookSGD(work, packed, lr=cfg.codebook_lr, bias_lr=cfg.finetune_lr)
        fit(work, data.X_train, data.y_train, optimizer=opt, epochs=cfg.codebook_epochs,
            batch_size=cfg.batch_size, seed=seed + 7)
    return CompressedModel(ops)


# ------------------------------------------------------------------------------ the run

def run_pipeline(data, cfg: PipelineConfig = PipelineConfig(), *, seed: int = 0,
                 baseline=None, progress=None) -> PipelineResult:
    """Baseline -> [distilled student] -> pruned -> int8 | k-means -> Huffman, every stage measured.

    data:     a :class:`course_lib.data.DigitsSplit` (train to train, val to report).
    baseline: an already trained baseline (``MLP`` of ``cfg.teacher_sizes``) to start from.
    Stages (names): ``"baseline fp32"``, ``"student fp32"`` (if distilling), ``"pruned fp32"``,
    ``"pruned int8"``, ``"pruned k-means"``, ``"pruned k-means + Huffman"``.
    """
    Xv, yv, ib = data.X_val, data.y_val, cfg.index_bits
    say = progress or (lambda msg: None)
    stages = []
    with one_blas_thread():
        say("baseline")
        base = baseline if baseline is not None else train_baseline(data, cfg, seed)
        stages.append(stage_record("baseline fp32", CompressedModel.from_sequential(base), Xv, yv,
                                   index_bits=ib))
        model = base
        if cfg.student_sizes is not None:
            say("distillation")
            model = distill_student(base, data, cfg, seed)
            stages.append(stage_record("student fp32", CompressedModel.from_sequential(model),
                                       Xv, yv, index_bits=ib))
        say("pruning")
        pruned = prune_finetune(model, data, cfg, seed)
        stages.append(stage_record("pruned fp32", CompressedModel.from_sequential(pruned, sparse=True),
                                   Xv, yv, index_bits=ib))
        say("int8")
        stages.append(stage_record("pruned int8", int8_stage(pruned), Xv, yv, index_bits=ib))
        say("k-means")
        km = kmeans_stage(pruned, data, cfg, seed)
        stages.append(stage_record("pruned k-means", km, Xv, yv, index_bits=ib))
        stages.append(stage_record("pruned k-means + Huffman", km, Xv, yv, codec="huffman",
                                   index_bits=ib))
    return PipelineResult(cfg, seed, stages)


def with_options(cfg: PipelineConfig, **changes) -> PipelineConfig:
    """A copy of ``cfg`` with some fields changed (``dataclasses.replace``)."""
    return replace(cfg, **changes)


# ------------------------------------------------------------------------------ serving

def sparse_predictor(model: CompressedModel):
    """A ``predict_logits(X)`` running every layer with chapter 4's CSR kernel
    (:func:`course_lib.sparse.sparse_linear_forward`) on the decompressed float32 weights."""
    from ..sparse import CSRMatrix, sparse_linear_forward

    plan = [(CSRMatrix.from_dense(op.weight()), op.bias) if isinstance(op, PackedLinear) else op
            for op in model.ops]

    def forward(X):
        h = X
        for step in plan:
            if isinstance(step, tuple):
                h = sparse_linear_forward(h, step[0], step[1])
            elif step == "relu":
                h = np.maximum(h, np.float32(0))
            else:
                h = _activation(step, h)
        return h

    return forward


def _activation(name, h):
    if name == "tanh":
        return np.tanh(h)
    return (np.float32(1) / (np.float32(1) + np.exp(-h))).astype(np.float32)


def int8_predictor(model: CompressedModel):
    """A ``predict_logits(X)`` with chapter 5's dynamically quantized int8 layers (int8 GEMM,
    int32 accumulation; activations quantized per batch, as ``torch.ao``'s ``quantize_dynamic``)."""
    from ..quant import quantize_dynamic

    return quantize_dynamic(model.to_sequential()).forward
