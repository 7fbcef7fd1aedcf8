r"""Start K worker processes on this machine, with a deadline, and clean up whatever happens.

:func:`launch` is what ``torchrun --nproc-per-node K`` does, small enough to read:

- picks a **free TCP port** on 127.0.0.1 at run time (:func:`free_port`), so two runs (or two
  test workers) never collide on a fixed port;
- starts ``python -m course_lib.distributed.ddp_worker`` once per rank, each in its **own process
  group** (``start_new_session=True``), with ``OMP_NUM_THREADS=1`` (K processes share the cores:
  one thread each avoids oversubscription) and gloo bound to the loopback interface;
- watches them: once one rank fails, the others get ``grace`` seconds to notice (gloo reports
  the lost peer as an error) and are then killed; after ``timeout`` seconds everything still
  running is killed (``SIGKILL`` to each worker's whole process group) -- nothing outlives the call;
- reads each rank's ``rank{R}.npz`` and returns a :class:`LaunchResult`; with ``check=True`` a
  failed run raises :class:`WorkerFailed` naming each rank's fate.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..validation import check_positive

__all__ = ["free_port", "launch", "LaunchResult", "WorkerFailed", "process_alive"]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_alive(pid: int) -> bool:
    """Is process ``pid`` still running (a zombie, exited but not reaped, counts as gone)?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


class WorkerFailed(RuntimeError):
    """A distributed run did not finish: a rank died, raised, or the deadline passed."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


@dataclass
class LaunchResult:
    """What :func:`launch` saw.

    returncodes: per rank (negative = killed by that signal, e.g. -9 for SIGKILL)
    outputs:     per rank, the arrays the rank saved (``None`` if it saved nothing)
    errors:      per rank, the first "rank R failed: ..." line it printed, else ``""``
    stderr:      per rank, its whole standard error
    killed:      ranks the launcher had to kill (after a failure + grace, or at the timeout)
    timed_out:   the deadline passed before every rank finished
    seconds:     wall time from the first start to the last exit
    pids:        process ids (to prove they are gone)
    started:     ``time.time()`` when the first rank was started (ranks save ``clock``: their
                 own wall-clock marks, to see where the seconds went)
    """
    world_size: int
    returncodes: list
    outputs: list
    errors: list
    stderr: list
    killed: list = field(default_factory=list)
    timed_out: bool = False
    seconds: float = 0.0
    pids: list = field(default_factory=list)
    started: float = 0.0

    @property
    def ok(self) -> bool:
        return all(rc == 0 for rc in self.returncodes) and not self.timed_out

    def describe(self) -> str:
        """One line per rank: how it ended."""
        lines = []
        for r, rc in enumerate(self.returncodes):
            if rc == 0:
                fate = "finished"
            elif r in self.killed:
                fate = "killed by the launcher" + (" (timeout)" if self.timed_out else "")
            elif rc is not None and rc < 0:
                fate = f"killed by {signal.Signals(-rc).name}"
            else:
                fate = f"exited with code {rc}"
            lines.append(f"rank {r}: {fate}" + (f" -- {self.errors[r]}" if self.errors[r] else ""))
        return "\n".join(lines)


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker is its group's leader
    except (ProcessLookupError, PermissionError):
        pass


def launch(config: dict, world_size: int, *, arrays: dict | None = None, timeout: float = 60.0,
           collective_timeout: float = 20.0, grace: float = 5.0, run_dir=None, check: bool = True,
           python: str | None = None) -> LaunchResult:
    """Run ``world_size`` ranks of :mod:`.ddp_worker` with ``config`` and wait for them.

    config:   the JSON-serialisable task description (see :mod:`.ddp_worker`)
    arrays:   NumPy arrays the ranks read from ``data.npz`` (the digits, batch indices, weights)
    timeout:  seconds for the whole run; ``collective_timeout``: seconds a collective may wait
              inside a rank (``init_process_group(timeout=...)``); ``grace``: seconds the other
              ranks get to fail by themselves after the first failure
    run_dir:  where the files go (default: a temporary directory, removed afterwards)
    """
    check_positive("world_size", world_size, integer=True)
    check_positive("timeout", timeout)
    check_positive("grace", grace, allow_zero=True)
    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="ddp_run_") as tmp:
            return launch(config, world_size, arrays=arrays, timeout=timeout,
                          collective_timeout=collective_timeout, grace=grace, run_dir=tmp,
                          check=check, python=python)
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(config))
    np.savez(run / "data.npz", **(arrays or {}))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo",
               MASTER_ADDR="127.0.0.1",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    port = free_port()
    procs, logs = [], []
    t0, wall0 = time.perf_counter(), time.time()
    result = None
    try:
        for r in range(world_size):
            log = open(run / f"rank{r}.log", "w+b")
            logs.append(log)
            procs.append(subprocess.Popen(
                [python or sys.executable, "-m", "course_lib.distributed.ddp_worker", "--rank", str(r),
                 "--world-size", str(world_size), "--port", str(port), "--run-dir", str(run),
                 "--timeout", str(collective_timeout)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env,
                start_new_session=True))
        killed, timed_out, first_failure = [], False, None
        while True:
            codes = [p.poll() for p in procs]
            now = time.perf_counter()
            if all(c is not None for c in codes):
                break
            if first_failure is None and any(c not in (None, 0) for c in codes):
                first_failure = now
            late = first_failure is not None and now - first_failure > grace
            if late or now - t0 > timeout:
                timed_out = not late
                for r, p in enumerate(procs):
                    if p.poll() is None:
                        _kill_group(p)
                        killed.append(r)
                for p in procs:
                    p.wait()
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - t0
        outputs, errors, stderr = [], [], []
        for r, log in enumerate(logs):
            log.seek(0)
            text = log.read().decode(errors="replace")
            stderr.append(text)
            errors.append(next((l for l in text.splitlines() if l.startswith(f"rank {r} failed")), ""))
            path = run / f"rank{r}.npz"
            if path.exists() and procs[r].returncode == 0:
                with np.load(path) as f:
                    outputs.append({k: f[k] for k in f.files})
            else:
                outputs.append(None)
        result = LaunchResult(world_size, [p.returncode for p in procs], outputs, errors, stderr,
                              killed, timed_out, seconds, [p.pid for p in procs], wall0)
    finally:
        for p in procs:  # whatever happened above (even KeyboardInterrupt): no process survives
            if p.poll() is None:
                _kill_group(p)
                p.wait()
        for log in logs:
            log.close()
    if check and not result.ok:
        raise WorkerFailed(f"the {world_size}-process run failed after {seconds:.1f} s:\n"
                           + result.describe(), result)
    return result
