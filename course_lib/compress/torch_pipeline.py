r"""The same pipeline with PyTorch's own tools, for the side-by-side table (chapter 7).

====================  ==========================================================  ==============
stage                 PyTorch                                                      stored as
====================  ==========================================================  ==============
baseline              the course baseline copied with ``to_torch()``               ``torch.save``
distilled student     ``torch.optim.SGD`` on ``alpha * F.kl_div(log_softmax(s/T),  state_dict
                      softmax(t/T), reduction="batchmean") * T**2 + (1 - alpha) *
                      F.cross_entropy(s, y)`` (torch has no KD loss of its own)
pruned                ``torch.nn.utils.prune.global_unstructured(L1Unstructured)``,
                      iterative, fine-tuned with ``torch.optim.SGD``, then
                      ``prune.remove``
int8                  ``torch.ao.quantization.quantize_dynamic`` (qint8 Linear,
                      per-tensor weights)
entropy coding        none in torch: ``zlib.compress`` (Deflate = LZ77 + Huffman)
                      of the stored int8 codes, scales and biases, as the closest
                      general-purpose stand-in
====================  ==========================================================  ==============

The training runs start from the same weights as ours and use the same mini-batches
(:func:`course_lib.data.minibatches` with the same seeds), so differences come from the tools
and the storage, not from luck.  What the table shows: ``torch.save`` stores a pruned weight
*dense* (its zeros cost 4 bytes each, and before ``prune.remove`` it stores ``weight_orig``
*and* ``weight_mask``, twice the dense size); torch's int8 is a quarter of float32 plus pickle
overhead; nothing in torch shares weights (k-means) or entropy-codes them.
"""

from __future__ import annotations

import io
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["TorchRow", "torch_side_by_side", "saved_nbytes"]


@dataclass
class TorchRow:
    name: str
    nbytes: int
    nnz: int
    val_acc: float


def saved_nbytes(obj) -> int:
    """Bytes ``torch.save(obj)`` writes (a zip archive of pickled tensors)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getbuffer().nbytes


def _acc(model, X, y) -> float:
    import torch

    with torch.no_grad():
        return float((model(torch.from_numpy(X)).argmax(1).numpy() == y).mean())


def _train(model, data, *, lr, epochs, batch_size, seed, teacher=None, T=4.0, alpha=0.9):
    import torch
    import torch.nn.functional as F

    from ..data import minibatches

    opt = torch.optim.SGD(model.parameters(), lr=lr)
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    if teacher is not None:
        with torch.no_grad():
            t_logits = teacher(X)
    rng = np.random.default_rng(seed)          # the batches of course_lib.nn.fit(seed=seed)
    model.train()
    for _ in range(epochs):
        for _, idx in minibatches(data.X_train, np.arange(X.shape[0]), batch_size, seed=rng):
            idx = torch.from_numpy(idx)
            s = model(X[idx])
            loss = F.cross_entropy(s, y[idx])
            if teacher is not None:
                kd = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t_logits[idx] / T, dim=1),
                              reduction="batchmean") * T ** 2
                loss = alpha * kd + (1 - alpha) * loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


def torch_side_by_side(data, cfg, *, seed: int = 0, baseline=None) -> list[TorchRow]:
    """Run the pipeline's stages with torch's tools; returns one :class:`TorchRow` per stage.

    baseline: the course baseline (trained ``MLP``); trained here with our ``fit`` if ``None``.
    """
    import torch

    Xv, yv = data.X_val, data.y_val
    rows = []
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)         # tiny matrices: one thread (see pipeline.one_blas_thread)
    try:
        return _side_by_side(data, cfg, seed, baseline, Xv, yv, rows)
    finally:
        torch.set_num_threads(threads)


def _side_by_side(data, cfg, seed, baseline, Xv, yv, rows):
    import torch
    import torch.nn.utils.prune as tprune

    from ..nn import MLP
    from .pipeline import one_blas_thread, train_baseline

    with one_blas_thread():
        base = baseline if baseline is not None else train_baseline(data, cfg, seed)
        teacher = base.to_torch().eval()
        rows.append(TorchRow("baseline fp32 (torch.save)", saved_nbytes(teacher.state_dict()),
                             sum(int((p != 0).sum()) for n, p in teacher.named_parameters()
                                 if n.endswith("weight")), _acc(teacher, Xv, yv)))
        model = teacher
        if cfg.student_sizes is not None:
            model = MLP(list(cfg.student_sizes), seed=seed + 1000).to_torch()
            _train(model, data, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size,
                   seed=seed, teacher=teacher, T=cfg.T, alpha=cfg.alpha)
            rows.append(TorchRow("student fp32 (torch KD)", saved_nbytes(model.state_dict()),
                                 sum(int((m.weight != 0).sum()) for m in model
                                     if isinstance(m, torch.nn.Linear)), _acc(model, Xv, yv)))
        else:
            model = MLP(list(cfg.teacher_sizes)).to_torch()
            model.load_state_dict(teacher.state_dict())
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        amount = 1.0 - (1.0 - cfg.sparsity) ** (1.0 / cfg.prune_rounds)
        for r in range(cfg.prune_rounds):
            tprune.global_unstructured([(m, "weight") for m in linears],
                                       pruning_method=tprune.L1Unstructured, amount=amount)
            _train(model, data, lr=cfg.finetune_lr, epochs=cfg.finetune_epochs,
                   batch_size=cfg.batch_size, seed=seed + 100 * (r + 1))
        masked_bytes = saved_nbytes(model.state_dict())
        for m in linears:
            tprune.remove(m, "weight")
        nnz = sum(int((m.weight != 0).sum()) for m in linears)
        acc = _acc(model, Xv, yv)
        rows.append(TorchRow("pruned, before prune.remove", masked_bytes, nnz, acc))
        dense = saved_nbytes(model.state_dict())
        rows.append(TorchRow("pruned (torch.save, dense)", dense, nnz, acc))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # "sparse CSR support is in beta"
            csr = {k: (v.to_sparse_csr() if v.dim() == 2 else v)
                   for k, v in model.state_dict().items()}
        rows.append(TorchRow("pruned (torch.save, sparse CSR)", saved_nbytes(csr), nnz, acc))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            qbytes = saved_nbytes(q.state_dict())
            qacc = _acc(q, Xv, yv)
            # the stored numbers themselves (int8 codes, scales, biases), deflated; not the
            # torch.save file, whose zip holds a random serialization id (its size is fixed,
            # its deflated size is not)
            raw = b"".join(m.weight().int_repr().numpy().tobytes()
                           + np.float64(m.weight().q_scale()).tobytes()
                           + m.bias().detach().numpy().astype(np.float32).tobytes()
                           for m in q.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear))
        rows.append(TorchRow("pruned int8 (quantize_dynamic)", qbytes, nnz, qacc))
        rows.append(TorchRow("its int8 codes + scales + biases, zlib", len(zlib.compress(raw, 9)),
                             nnz, qacc))
    return rows
