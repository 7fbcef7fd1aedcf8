"""Chapter 8, the real engine: torch.distributed (gloo, CPU, 127.0.0.1) in separate processes.

Each test starts real worker processes through :func:`course_lib.distributed.launch` and
proves that none survives it (:func:`assert_no_orphans`), including the runs in which a rank is
killed or hangs.  The 2-process runs take about 4 s each on the 2-core course machine, most of
it importing torch in every process.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from course_lib import distributed as D
from course_lib import nn
from course_lib.data import load_digits_split
from course_lib.distributed.ddp_worker import train_reference

SIZES = [64, 16, 10]
STEPS, BATCH, LR, MOMENTUM = 40, 32, 0.1, 0.9


def assert_no_orphans(result):
    """Every rank has exited and been reaped, and nothing is left in their process groups."""
    assert result.pids and not any(D.process_alive(p) for p in result.pids)
    groups = set(result.pids)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            assert not (int(fields[2]) in groups and fields[0] != "Z"), \
                f"process {entry.name} survives in a worker's process group"


@pytest.fixture(scope="module")
def setup():
    d = load_digits_split(dtype=np.float64)
    idx = D.batch_indices(len(d.y_train), BATCH, STEPS, seed=0)
    net = nn.MLP(SIZES, seed=0, dtype=np.float64)
    state = net.state_dict()
    arrays = {"X": d.X_train, "y": d.y_train, "idx": idx, **{"w:" + k: v for k, v in state.items()}}
    train = {"sizes": SIZES, "lr": LR, "momentum": MOMENTUM, "steps": STEPS}
    ref = train_reference(SIZES, state, d.X_train, d.y_train, idx, lr=LR, momentum=MOMENTUM)
    return dict(d=d, idx=idx, state=state, arrays=arrays, train=train, ref=ref, n_params=net.num_params())


def weights(out):
    return {k[2:]: v for k, v in out.items() if k.startswith("w:")}


def max_diff(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def test_two_process_ddp_equals_one_process_and_our_ring_equals_all_reduce(setup, tmp_path):
    ckpt = str(tmp_path / "ckpt.pt")
    cfg = {"allreduce": {"n": 1001, "seed": 7},  # 1001: the ring's chunks are uneven
           "train": dict(setup["train"], checkpoint_at=15, checkpoint_path=ckpt)}
    res = D.launch(cfg, 2, arrays=setup["arrays"], timeout=60)
    assert_no_orphans(res)
    assert res.ok and res.seconds < 60
    w0, w1 = weights(res.outputs[0]), weights(res.outputs[1])
    assert max_diff(w0, w1) == 0.0                       # the replicas never drift apart
    assert max_diff(w0, setup["ref"]["state"]) < 1e-12   # DDP == one process, same global batch
    assert max_diff(w0, setup["state"]) > 0.05           # and it trained
    shard_losses = np.mean([o["losses"] for o in res.outputs], axis=0)
    assert np.max(np.abs(shard_losses - setup["ref"]["losses"])) < 1e-12
    # one all-reduce of every gradient per step, float64
    assert float(res.outputs[0]["bytes_per_step"]) == 8 * setup["n_params"]
    # our ring (simulated, and run between the real processes) == torch.distributed.all_reduce
    bufs = [np.random.default_rng([7, r]).standard_normal(1001) for r in range(2)]
    ours, _ = D.ring_allreduce(bufs)
    for o in res.outputs:
        assert np.max(np.abs(o["torch_allreduce"] - ours[0])) < 1e-12
        assert np.max(np.abs(o["p2p_ring"] - ours[0])) < 1e-12
    # resume all ranks from rank 0's checkpoint at step 15: the same final weights
    assert os.path.exists(ckpt)
    resumed = D.launch({"train": dict(setup["train"], resume_from=ckpt)}, 2,
                       arrays=setup["arrays"], timeout=60)
    assert_no_orphans(resumed)
    assert len(resumed.outputs[0]["losses"]) == STEPS - 15
    assert max_diff(weights(resumed.outputs[0]), w0) < 1e-13
    # the simulated workers of course_lib (NumPy) train the same network to the same weights
    from course_lib import optim
    run = D.train_data_parallel(lambda s: nn.MLP(SIZES, seed=s, dtype=np.float64),
                                setup["d"].X_train, setup["d"].y_train, setup["idx"], world_size=2,
                                make_optimizer=lambda p: optim.SGD(p, lr=LR, momentum=MOMENTUM))
    assert max_diff(run.replicas[0].state_dict(), w0) < 1e-10


def test_a_killed_worker_makes_the_run_fail_cleanly_within_the_timeout(setup):
    cfg = {"train": dict(setup["train"], die_at_step=10, die_rank=1)}
    with pytest.raises(D.WorkerFailed) as info:
        D.launch(cfg, 2, arrays=setup["arrays"], timeout=45, grace=5)
    res = info.value.result
    assert_no_orphans(res)
    assert res.returncodes[1] == -9                          # SIGKILL, as the OOM killer does
    assert res.returncodes[0] == 1 and res.errors[0].startswith("rank 0 failed: RuntimeError")
    assert "rank 1: killed by SIGKILL" in str(info.value)
    assert not res.timed_out and res.seconds < 45


def test_a_hung_worker_is_caught_by_the_collective_timeout_and_killed(setup):
    cfg = {"train": dict(setup["train"], hang_at_step=5, die_rank=1)}
    res = D.launch(cfg, 2, arrays=setup["arrays"], timeout=45, collective_timeout=3, grace=1,
                   check=False)
    assert_no_orphans(res)
    assert not res.ok and res.killed == [1] and res.returncodes[0] == 1
    assert res.errors[0].startswith("rank 0 failed")      # gloo's timeout, not our deadline
    assert not res.timed_out and res.seconds < 30


def test_the_launchers_deadline_kills_everything(setup):
    # a deadline shorter than torch's import: every rank is killed wherever it is
    cfg = {"train": dict(setup["train"], hang_at_step=0, die_rank=1)}
    res = D.launch(cfg, 2, arrays=setup["arrays"], timeout=1.0, collective_timeout=120, check=False)
    assert_no_orphans(res)
    assert res.timed_out and sorted(res.killed) == [0, 1] and res.seconds < 5
    assert all(rc == -9 for rc in res.returncodes) and "(timeout)" in res.describe()


def test_launch_rejects_bad_arguments():
    with pytest.raises(ValueError, match="world_size"):
        D.launch({}, 0)
    with pytest.raises(ValueError, match="timeout"):
        D.launch({}, 2, timeout=0)
    p = D.free_port()
    assert 0 < p < 65536
