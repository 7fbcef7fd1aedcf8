r"""Memory arithmetic of training, and how ZeRO / FSDP divide it across K workers.

Training a model of :math:`\Psi` parameters with Adam keeps, per parameter
(Rajbhandari et al. 2020, "ZeRO", section 3.1):

=================  ==========  =====================================================
precision          bytes/param  where they go
=================  ==========  =====================================================
``"fp32"``         16           weights 4, gradients 4, Adam's m 4 and v 4
``"mixed"``        16           fp16/bf16 weights 2, fp16 gradients 2, and the optimizer's
                                12: an fp32 master copy of the weights 4, m 4, v 4
=================  ==========  =====================================================

SGD with momentum keeps one buffer (4 bytes, plus the 4-byte master copy in mixed precision),
plain SGD none (just the master copy in mixed precision).  Activations come on top and scale
with the batch (:func:`transformer_activation_bytes`).

**Sharding** (ZeRO stage / FSDP strategy) keeps only :math:`1/K` of some states on each of K
workers:

=====  =========================  =============================  ==================================
stage  sharded                    FSDP                           per worker (mixed Adam)
=====  =========================  =============================  ==================================
0      nothing (plain DDP)        ``NO_SHARD``                   :math:`(2 + 2 + 12)\Psi`
1      optimizer states           --                             :math:`(2 + 2)\Psi + 12\Psi/K`
2      + gradients                ``SHARD_GRAD_OP``              :math:`2\Psi + (2 + 12)\Psi/K`
3      + parameters               ``FULL_SHARD``                 :math:`(2 + 2 + 12)\Psi/K`
=====  =========================  =============================  ==================================

(Stage 3 gathers each layer's weights just before it is used and frees them after: the
memory above is the resting state, plus one layer's full weights in flight.)
"""

from __future__ import annotations

from ..validation import check_positive

__all__ = ["bytes_per_param", "training_memory", "zero_memory_per_worker",
           "transformer_activation_bytes", "pipeline_bubble_fraction", "PRECISIONS", "OPTIMIZERS"]

PRECISIONS = ("fp32", "mixed")
OPTIMIZERS = ("sgd", "sgd_momentum", "adam")
GB = 1e9


def bytes_per_param(precision: str = "mixed", optimizer: str = "adam") -> dict:
    """``{"params": p, "grads": g, "optimizer": o}`` bytes per parameter.

    fp32: weights 4, grads 4, optimizer 4 per buffer (momentum: 1 buffer, Adam: 2).
    mixed: weights 2, grads 2, optimizer 4 (the fp32 master weights) + 4 per buffer.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}")
    buffers = {"sgd": 0, "sgd_momentum": 1, "adam": 2}[optimizer]
    if precision == "fp32":
        return {"params": 4, "grads": 4, "optimizer": 4 * buffers}
    return {"params": 2, "grads": 2, "optimizer": 4 + 4 * buffers}


def training_memory(n_params, *, precision: str = "mixed", optimizer: str = "adam",
                    activations: float = 0.0) -> dict:
    """Bytes of training state on one worker without sharding.

    Returns ``{"params", "grads", "optimizer", "activations", "total"}`` in bytes (floats).
    """
    return zero_memory_per_worker(n_params, 1, 0, precision=precision, optimizer=optimizer,
                                  activations=activations)


def zero_memory_per_worker(n_params, world_size: int, stage: int, *, precision: str = "mixed",
                           optimizer: str = "adam", activations: float = 0.0) -> dict:
    r"""Bytes per worker with ZeRO ``stage`` (0-3) on ``world_size`` workers.

    Each state is divided by K from its stage on: optimizer states from stage 1, gradients from
    stage 2, parameters from stage 3 (exact fractions, as the ZeRO paper counts; FSDP pads each
    flat parameter to a multiple of K).  ``activations``: bytes per worker, never sharded
    (each worker runs its own mini-batch).  Returns ``{"params", "grads", "optimizer",
    "activations", "total"}`` in bytes.
    """
    check_positive("n_params", n_params)
    check_positive("world_size", world_size, integer=True)
    check_positive("activations", activations, allow_zero=True)
    if isinstance(stage, bool) or stage not in (0, 1, 2, 3):
        raise ValueError(f"stage must be 0, 1, 2 or 3, got {stage!r}")
    b = bytes_per_param(precision, optimizer)
    K = float(world_size)
    out = {
        "params": n_params * b["params"] / (K if stage >= 3 else 1.0),
        "grads": n_params * b["grads"] / (K if stage >= 2 else 1.0),
        "optimizer": n_params * b["optimizer"] / (K if stage >= 1 else 1.0),
        "activations": float(activations),
    }
    out["total"] = out["params"] + out["grads"] + out["optimizer"] + out["activations"]
    return out


def transformer_activation_bytes(*, layers: int, seq_len: int, batch: int, hidden: int,
                                 heads: int) -> float:
    r"""Activations a GPT-style transformer keeps for backward, 16-bit, no recomputation:
    :math:`L\,s\,b\,h\,(34 + 5\,a\,s/h)` bytes (Korthikanti et al. 2022, eq. 2)."""
    for name, v in (("layers", layers), ("seq_len", seq_len), ("batch", batch),
                    ("hidden", hidden), ("heads", heads)):
        check_positive(name, v, integer=True)
    return float(layers * seq_len * batch * hidden * (34 + 5 * heads * seq_len / hidden))


def pipeline_bubble_fraction(stages: int, microbatches: int) -> float:
    r"""Idle fraction of a GPipe / 1F1B pipeline step: :math:`(p - 1)/(m + p - 1)`.

    Each of ``p`` stages works on ``m`` micro-batches forward and backward; the schedule takes
    :math:`m + p - 1` slots per direction, of which each stage is busy :math:`m`.
    """
    check_positive("stages", stages, integer=True)
    check_positive("microbatches", microbatches, integer=True)
    return (stages - 1) / (microbatches + stages - 1)
