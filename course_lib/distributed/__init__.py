"""Beyond one machine (chapter 8): data parallelism from scratch, then real torch.distributed.

- :mod:`.allreduce`     naive, tree and ring all-reduce of K simulated workers' buffers, with
  the messages and bytes each worker sends
- :mod:`.data_parallel` K simulated workers training the course MLP on shards of each batch
- :mod:`.cost_model`    latency x rounds + bytes / bandwidth for each all-reduce
- :mod:`.compression`   top-k with error feedback, QSGD: fewer bytes per step
- :mod:`.memory`        bytes of training state per parameter; ZeRO / FSDP sharding; pipeline bubble
- :mod:`.launch`        start K real processes (free port, deadline, clean-up) running
- :mod:`.ddp_worker`    one rank of a ``torch.distributed`` (gloo) + ``DistributedDataParallel`` run

Nothing here imports torch at import time: only the worker processes (and
:func:`.ddp_worker.train_reference`) do.
"""

from .allreduce import (ALLREDUCES, CommStats, allreduce, chunk_bounds, naive_allreduce,
                        ring_allreduce, ring_reduce_scatter_step, tree_allreduce)
from .compression import (ErrorFeedback, QSGDCompressor, TopKCompressor, dense_bytes, qsgd,
                          qsgd_bytes, topk, topk_bytes)
from .cost_model import ALGORITHMS, allreduce_bytes, allreduce_rounds, allreduce_time
from .data_parallel import (DataParallelRun, batch_indices, flatten, shard_sizes_equal,
                            split_shards, train_data_parallel, train_single, unflatten_into)
from .launch import LaunchResult, WorkerFailed, free_port, launch, process_alive
from .memory import (bytes_per_param, pipeline_bubble_fraction, training_memory,
                     transformer_activation_bytes, zero_memory_per_worker)

__all__ = [
    "ALLREDUCES", "CommStats", "allreduce", "chunk_bounds", "naive_allreduce", "ring_allreduce",
    "ring_reduce_scatter_step", "tree_allreduce",
    "ErrorFeedback", "QSGDCompressor", "TopKCompressor", "dense_bytes", "qsgd", "qsgd_bytes",
    "topk", "topk_bytes",
    "ALGORITHMS", "allreduce_bytes", "allreduce_rounds", "allreduce_time",
    "DataParallelRun", "batch_indices", "flatten", "shard_sizes_equal", "split_shards",
    "train_data_parallel", "train_single", "unflatten_into",
    "LaunchResult", "WorkerFailed", "free_port", "launch", "process_alive",
    "bytes_per_param", "pipeline_bubble_fraction", "training_memory",
    "transformer_activation_bytes", "zero_memory_per_worker",
]
