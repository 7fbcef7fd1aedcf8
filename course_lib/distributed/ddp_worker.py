r"""One rank of a real ``torch.distributed`` run (gloo backend, CPU, 127.0.0.1 only).

Started by :func:`course_lib.distributed.launch.launch`, one process per rank::

    python -m course_lib.distributed.ddp_worker --rank R --world-size K --port P --run-dir DIR

It reads ``DIR/config.json`` and ``DIR/data.npz`` (written by the launcher), joins the process
group (``init_process_group("gloo", timeout=...)``: every collective gives up after that many
seconds instead of waiting forever), does what the config asks and writes ``DIR/rank{R}.npz``:

- ``"allreduce"``: ``{"n": .., "seed": ..}`` -- rank r's buffer is
  ``default_rng([seed, r]).standard_normal(n)``; it is summed twice, with
  ``torch.distributed.all_reduce`` and with our ring (:func:`ring_allreduce_p2p`, the algorithm
  of :func:`course_lib.distributed.allreduce.ring_allreduce` written with point-to-point
  ``isend``/``recv`` between real processes);
- ``"train"``: ``DistributedDataParallel`` + ``torch.optim.SGD`` on the MLP whose sizes and
  initial weights are given, float64, rank r taking rows ``[r B/K, (r+1) B/K)`` of every global
  batch ``idx[t]``; optional checkpoint (rank 0 saves model + optimizer + step), resume (every
  rank loads it), and a planned death (``die_at_step``: that rank SIGKILLs itself, as an
  out-of-memory killer would) or a planned hang (``hang_at_step``: that rank sleeps for an
  hour; the others' collectives time out, the launcher kills it).

This module imports only NumPy, torch and :mod:`.allreduce` (no scikit-learn, no numba):
each process pays torch's import once, a few seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path

import numpy as np

__all__ = ["build_torch_mlp", "train_reference", "ring_allreduce_p2p", "main"]


def build_torch_mlp(sizes, state: dict):
    """``nn.Sequential(Linear, ReLU, ..., Linear)`` in float64 holding the weights ``state``
    (``{"0.weight": ndarray, ...}``, the names of ``course_lib.nn.MLP.state_dict()``)."""
    import torch

    layers = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if k:
            layers.append(torch.nn.ReLU())
        layers.append(torch.nn.Linear(a, b, dtype=torch.float64))
    model = torch.nn.Sequential(*layers)
    model.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float64).copy())
                           for k, v in state.items()})
    return model


def _state_numpy(model) -> dict:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def train_reference(sizes, state, X, y, idx, *, lr: float, momentum: float = 0.0) -> dict:
    """The single-process run DDP must reproduce: the whole global batch ``idx[t]`` per step.

    Returns ``{"state": final weights, "losses": (steps,), "step_times": (steps,) seconds}``
    (the step times are those of one process without DDP: the baseline of the timing table).
    """
    import torch
    import torch.nn.functional as F

    model = build_torch_mlp(sizes, state)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    Xt, yt = torch.from_numpy(np.asarray(X, np.float64)), torch.from_numpy(np.asarray(y, np.int64))
    losses, times = [], []
    for batch in np.asarray(idx):
        b = torch.from_numpy(batch)
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(Xt[b]), yt[b])
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    return {"state": _state_numpy(model), "losses": np.array(losses), "step_times": np.array(times)}


def ring_allreduce_p2p(t):
    """Our ring all-reduce between the real ranks, in place on the 1-D tensor ``t``.

    Reduce-scatter: at step s rank r sends chunk (r - s) % K to rank r + 1 and receives chunk
    (r - s - 1) % K from rank r - 1, which it adds.  All-gather: sends chunk (r + 1 - s) % K,
    receives chunk (r - s) % K and overwrites.  ``isend`` then ``recv``: every rank sends and
    receives at once, so nobody waits for a partner that is itself waiting (no deadlock).
    """
    import torch
    import torch.distributed as dist

    from .allreduce import chunk_bounds

    K, r = dist.get_world_size(), dist.get_rank()
    b = chunk_bounds(t.numel(), K)
    right, left = (r + 1) % K, (r - 1) % K

    def exchange(c_send, c_recv):
        send = t[b[c_send]:b[c_send + 1]].clone()
        recv = torch.empty(int(b[c_recv + 1] - b[c_recv]), dtype=t.dtype)
        req = dist.isend(send, right) if send.numel() else None
        if recv.numel():
            dist.recv(recv, left)
        if req is not None:
            req.wait()
        return recv

    for s in range(K - 1):
        c = (r - s - 1) % K
        t[b[c]:b[c + 1]] += exchange((r - s) % K, c)
    for s in range(K - 1):
        c = (r - s) % K
        t[b[c]:b[c + 1]] = exchange((r + 1 - s) % K, c)
    return t


def _allreduce_task(cfg, rank, out):
    import torch
    import torch.distributed as dist

    buf = np.random.default_rng([int(cfg["seed"]), rank]).standard_normal(int(cfg["n"]))
    t = torch.from_numpy(buf.copy())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    out["torch_allreduce"] = t.numpy().copy()
    out["p2p_ring"] = ring_allreduce_p2p(torch.from_numpy(buf.copy())).numpy().copy()


def _train_task(cfg, data, rank, world_size, out):
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.nn.parallel import DistributedDataParallel as DDP

    t_setup = time.perf_counter()  # model, optimizer (its first use imports torch._dynamo: seconds), DDP
    sizes = [int(s) for s in cfg["sizes"]]
    state = {k[len("w:"):]: data[k] for k in data.files if k.startswith("w:")}
    model = build_torch_mlp(sizes, state)
    opt = torch.optim.SGD(model.parameters(), lr=float(cfg["lr"]), momentum=float(cfg.get("momentum", 0.0)))
    start = 0
    if cfg.get("resume_from"):
        ckpt = torch.load(cfg["resume_from"], weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])
    ddp = DDP(model)  # broadcasts rank 0's weights to every rank
    sent = {"bytes": 0, "calls": 0}

    def counting_hook(state_, bucket):
        buf = bucket.buffer()
        sent["bytes"] += buf.numel() * buf.element_size()
        sent["calls"] += 1
        return default_hooks.allreduce_hook(None, bucket)  # the default: all_reduce, then / K

    ddp.register_comm_hook(None, counting_hook)
    X, y, idx = torch.from_numpy(data["X"]), torch.from_numpy(data["y"]), data["idx"]
    B = idx.shape[1]
    if B % world_size:
        raise ValueError(f"the global batch {B} must be divisible by world_size {world_size}")
    shard = B // world_size
    steps = int(cfg["steps"])
    die_at, die_rank = cfg.get("die_at_step"), cfg.get("die_rank", 1)
    losses, times = [], []
    out["setup_seconds"] = np.array(time.perf_counter() - t_setup)
    for t in range(start, steps):
        if die_at is not None and t == int(die_at) and rank == int(die_rank):
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        if cfg.get("hang_at_step") is not None and t == int(cfg["hang_at_step"]) and rank == int(die_rank):
            time.sleep(3600)  # a stuck rank (deadlock, endless loop): only a timeout ends this run
        rows = torch.from_numpy(idx[t][rank * shard:(rank + 1) * shard])
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(ddp(X[rows]), y[rows])
        loss.backward()   # DDP all-reduces the gradients (bucket by bucket) during backward
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
        if cfg.get("checkpoint_at") is not None and t + 1 == int(cfg["checkpoint_at"]):
            if rank == 0:  # one copy is enough: the replicas are identical
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                            "step": t + 1}, cfg["checkpoint_path"])
            dist.barrier()  # nobody moves on before the checkpoint is on disk
    for k, v in _state_numpy(model).items():
        out["w:" + k] = v
    out["losses"] = np.array(losses)
    out["step_times"] = np.array(times)
    out["bytes_per_step"] = np.array(sent["bytes"] / max(1, steps - start))
    out["allreduce_calls_per_step"] = np.array(sent["calls"] / max(1, steps - start))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--world-size", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds any collective may wait before failing")
    a = p.parse_args(argv)
    clock = [time.time()]     # wall-clock marks: started, torch imported, group joined, work done
    t_start = time.perf_counter()
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    t_import = time.perf_counter() - t_start
    clock.append(time.time())
    run = Path(a.run_dir)
    try:
        cfg = json.loads((run / "config.json").read_text())
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{a.port}", rank=a.rank,
                                world_size=a.world_size, timeout=timedelta(seconds=a.timeout))
        t_init = time.perf_counter() - t_start
        clock.append(time.time())
        out = {}
        if "allreduce" in cfg:
            _allreduce_task(cfg["allreduce"], a.rank, out)
        if "train" in cfg:
            with np.load(run / "data.npz") as data:
                _train_task(cfg["train"], data, a.rank, a.world_size, out)
        out["startup_seconds"] = np.array([t_import, t_init])
        clock.append(time.time())
        out["clock"] = np.array(clock)
        np.savez(run / f"rank{a.rank}.npz", **out)
        dist.destroy_process_group()
    except Exception as exc:  # one clear line for the launcher, the traceback after it
        first = str(exc).strip().split("\n")[0][:300]
        print(f"rank {a.rank} failed: {type(exc).__name__}: {first}", file=sys.stderr, flush=True)
        traceback.print_exc(file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # the results are on disk: skip the interpreter's teardown, which spends seconds unloading
    # torch and torch._dynamo (which the optimizer and DDP import) -- per process, per launch
    os._exit(code)
