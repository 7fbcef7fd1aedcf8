"""The grader's side of the sandbox: one student kernel in a separate, confined process.

::

    grader (this process)
      └─ _supervisor.py     child subreaper: kills whatever the kernel leaves behind
           └─ _harness.py   the student's kernel: rlimits + Landlock + sanitized course_lib

The kernel gets a fresh temporary directory (its working directory, ``HOME`` and
``TMPDIR``), an address-space limit, a CPU-time limit and a file-size limit.  Its
stdout/stderr go to a pipe that a thread drains and caps (nothing the kernel prints is
ever parsed); requests and answers travel over two other pipes.  Every request has a
wall-clock limit: when it passes, the kernel gets SIGINT (``KeyboardInterrupt``) and, if
it does not answer within a grace period, SIGKILL; the supervisor then kills everything
the kernel spawned.  The grader never reads a file the kernel could have written.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import _harness
from .spec import Callback, Rng

HERE = Path(__file__).resolve().parent
# frameworks that would compute the answers (autograd, torch.optim): absent in graded mode
ABSENT = {
    "torch": "PyTorch is not available in graded mode: write the NumPy version yourself",
    "torchgen": "not available in graded mode",
    "functorch": "not available in graded mode",
    "triton": "not available in graded mode",
}
GRADE_STUB = '''"""Graded mode: self-checks are switched off; the grader checks your functions itself."""


def check(question_id, fn):
    return None
'''


@dataclass
class Limits:
    """Resource limits of one sandboxed kernel."""
    timeout: float = 120.0       # wall-clock seconds per notebook cell
    total_timeout: float = 600.0  # wall-clock seconds for all the cells together
    call_timeout: float = 10.0   # wall-clock seconds per call of a graded function
    memory_mb: int = 2048        # address space (RLIMIT_AS)
    file_mb: int = 64            # largest file the kernel may write (RLIMIT_FSIZE)
    output_kb: int = 64          # stdout/stderr kept (the rest is read and dropped)
    startup_timeout: float = 60.0
    grace: float = 2.0           # after SIGINT, seconds to answer before SIGKILL

    def __post_init__(self):
        for name in ("timeout", "total_timeout", "call_timeout", "startup_timeout", "grace"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {v!r}")
        for name in ("memory_mb", "file_mb", "output_kb"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v > 0):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")


class KernelDied(Exception):
    """The kernel process ended (``os._exit``, a crash, the memory limit, SIGKILL)."""


class KernelTimeout(Exception):
    """A request passed its time limit and the kernel had to be killed."""


def _drain(fd: int, keep: int, sink: list):
    """Read ``fd`` to EOF, keeping the first ``keep`` bytes (so flooding cannot block us)."""
    kept = 0
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        if kept < keep:
            sink.append(chunk[:keep - kept])
            kept += len(sink[-1])
    os.close(fd)


def to_wire(args):
    """Arguments -> wire form; :class:`Rng` / :class:`Callback` become tokens."""
    def one(a):
        if isinstance(a, Rng):
            return _harness.Token("rng", a.seed)
        if isinstance(a, Callback):
            return _harness.Token("callback", a.name)
        if isinstance(a, list):
            return [one(v) for v in a]
        if isinstance(a, tuple):
            return tuple(one(v) for v in a)
        return a
    return _harness.encode([one(a) for a in args])


def site_packages() -> list[str]:
    import site
    return [p for p in site.getsitepackages() if os.path.isdir(p)]


class Kernel:
    """One sandboxed student process.  Use as a context manager."""

    def __init__(self, root: Path, config: dict, limits: Limits):
        self.root, self.config, self.limits = root, config, limits
        self.proc = None
        self.pid = None
        self.landlock = 0
        self._ids = 0
        self._buf = bytearray()
        self.output: list = []

    # -- life cycle

    def start(self):
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        out_r, out_w = os.pipe()
        cfg = dict(self.config, rfd=p2c_r, wfd=c2p_w)
        cfg_path = self.root / "config.json"
        cfg_path.write_text(json.dumps(cfg))
        work = cfg["work_dir"]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work,
               "MPLBACKEND": "Agg", "MPLCONFIGDIR": os.path.join(work, ".mpl"),
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "NUMBA_NUM_THREADS": "1", "NUMBA_CACHE_DIR": os.path.join(work, ".numba"),
               "PYTHONHASHSEED": "0", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8",
               "PYTHONUNBUFFERED": "1"}
        py = [sys.executable, "-I", "-S", "-B"]
        try:
            self.proc = subprocess.Popen(
                py + [str(HERE / "_supervisor.py")] + py + [str(self.root / "harness.py"), str(cfg_path)],
                stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=(p2c_r, c2p_w),
                env=env, cwd=work, start_new_session=True, close_fds=True)
        finally:
            for fd in (p2c_r, c2p_w, out_w):
                os.close(fd)
        self.wfd, self.rfd = p2c_w, c2p_r
        self._drainer = threading.Thread(target=_drain, args=(out_r, self.limits.output_kb * 1024,
                                                              self.output), daemon=True)
        self._drainer.start()
        try:
            ready = self._recv(time.monotonic() + self.limits.startup_timeout)
        except (KernelDied, TimeoutError) as exc:
            self.stop()
            raise KernelDied(f"the sandboxed kernel did not start: {exc}; output: "
                             f"{self.output_text()[-500:]}") from None
        if ready.get("op") != "ready" or type(ready.get("pid")) is not int:
            self.stop()
            raise KernelDied("the sandboxed kernel did not start (bad handshake)")
        self.pid = ready["pid"]
        self.landlock = ready.get("landlock") or 0
        self.landlock_error = ready.get("landlock_error")
        return self

    def _signal(self, sig) -> None:
        """Signal the kernel, if it is still the supervisor's child (never a recycled pid)."""
        if self.pid is None or self.proc is None or self.proc.poll() is not None:
            return
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                stat = f.read()
            if int(stat[stat.rfind(")") + 2:].split()[1]) != self.proc.pid:
                return
            os.kill(self.pid, sig)
        except (OSError, ValueError, IndexError):
            pass

    def stop(self):
        """Kill the kernel (the supervisor then kills what it spawned) and clean up."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._drainer.join(timeout=5)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def output_text(self) -> str:
        return b"".join(self.output).decode("utf-8", "replace")

    # -- messages

    def _send(self, msg: dict):
        try:
            _harness.send(self.wfd, msg)
        except (BrokenPipeError, OSError) as exc:
            raise KernelDied(f"the kernel stopped reading ({exc.__class__.__name__})") from None

    def _recv(self, deadline: float) -> dict:
        while True:
            if len(self._buf) >= 4:
                (n,) = struct.unpack(">I", self._buf[:4])
                if n > _harness.MAX_MESSAGE:
                    raise KernelDied("the kernel sent an oversized message")
                if len(self._buf) >= 4 + n:
                    data = bytes(self._buf[4:4 + n])
                    del self._buf[:4 + n]
                    try:
                        msg = json.loads(data)
                    except (ValueError, RecursionError):  # e.g. nesting deep enough to overflow
                        raise KernelDied("the kernel sent a malformed message") from None
                    if type(msg) is not dict:
                        raise KernelDied("the kernel sent a malformed message")
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.rfd], [], [], left)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise KernelDied("the kernel process ended")
            self._buf += chunk

    def request(self, msg: dict, timeout: float, callbacks: dict | None = None) -> dict:
        """Send ``msg``, serve callbacks, return the answer; enforce ``timeout`` seconds.

        Raises :class:`KernelTimeout` if the kernel had to be killed, :class:`KernelDied`
        if it ended.  A kernel that answers SIGINT in time stays alive.
        """
        self._ids += 1
        mid = msg["id"] = self._ids
        self._send(msg)
        deadline = time.monotonic() + timeout
        interrupted = False
        while True:
            try:
                reply = self._recv(deadline)
            except TimeoutError:
                if interrupted:
                    self.stop()
                    raise KernelTimeout(f"no answer {timeout:g} s after the time limit") from None
                interrupted = True
                self._signal(signal.SIGINT)
                deadline = time.monotonic() + self.limits.grace
                continue
            except KernelDied:
                self.stop()
                raise
            if reply.get("op") == "callback" and callbacks is not None and not interrupted:
                self._serve_callback(reply, callbacks)
                continue
            if reply.get("id") != mid:
                self.stop()
                raise KernelDied("the kernel answered out of turn (protocol violation)")
            if interrupted:
                reply["interrupted"] = True
            return reply

    def _serve_callback(self, msg: dict, callbacks: dict):
        import numpy as np
        name = msg.get("name")
        try:
            fn = callbacks[name]
            args = _harness.decode(msg.get("args"))
            if type(args) is not list:
                raise ValueError("bad arguments")
            with np.errstate(all="ignore"):
                value = fn(*args)
            reply = {"op": "cb_result", "ok": True, "value": _harness.encode(value)}
        except Exception as exc:  # the student's arguments may be anything
            reply = {"op": "cb_result", "ok": False, "error": _harness._describe(exc)}
        self._send(reply)


def make_sandbox_dir(pkg_files: dict) -> Path:
    """A fresh directory: ``harness.py``, ``pkg/`` (sanitized course_lib), ``work/``."""
    root = Path(tempfile.mkdtemp(prefix="course-grade-"))
    shutil.copy(HERE / "_harness.py", root / "harness.py")
    for rel, text in pkg_files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    work = root / "work"
    (work / ".mpl").mkdir(parents=True)
    cache = Path(os.environ.get("MPLCONFIGDIR") or
                 Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib")
    for f in cache.glob("fontlist-*.json") if cache.is_dir() else ():
        shutil.copy(f, work / ".mpl" / f.name)  # no font-cache rebuild in every kernel
    return root


def _python_install() -> list[str]:
    """The interpreter and its standard library, without the base installation's site-packages."""
    import sysconfig
    paths = [os.path.join(sys.base_prefix, "bin")]
    libdir = os.path.join(sys.base_prefix, "lib")
    if os.path.isdir(libdir):
        paths += [os.path.join(libdir, e) for e in os.listdir(libdir) if e.startswith("libpython")]
    for key in ("stdlib", "platstdlib"):
        std = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})[key]
        if os.path.isdir(std):
            paths += [os.path.join(std, e) for e in os.listdir(std)
                      if e not in ("site-packages", "dist-packages")]
    return paths


def _stdlib_dirs() -> list[str]:
    import sysconfig
    v = {"base": sys.base_prefix, "platbase": sys.base_prefix}
    return sorted({sysconfig.get_paths(vars=v)[k] for k in ("stdlib", "platstdlib")})


def kernel_config(root: Path, limits: Limits, forbidden: dict, landlock: bool = True) -> dict:
    sp = site_packages()
    read = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys",
            str(root / "pkg"), str(root / "harness.py")]
    read += _python_install()
    for d in sp:  # every installed package except the absent frameworks
        for entry in os.listdir(d):
            top = entry.split("-")[0].split(".")[0]
            if top in ABSENT or entry.startswith("__editable__") or entry.endswith(".pth"):
                continue
            read.append(os.path.join(d, entry))
    read = [p for p in dict.fromkeys(read) if os.path.exists(p)]
    if sys.base_prefix != sys.prefix:
        read = [p for p in read if p != sys.prefix]
    return {
        "pkg_dir": str(root / "pkg"), "work_dir": str(root / "work"), "site_packages": sp,
        "forbidden": forbidden, "absent": ABSENT, "landlock": landlock,
        "read_paths": read, "list_paths": sp + _stdlib_dirs() + [str(root)], "write_paths": [str(root / "work")],
        "rw_files": ["/dev/null"],
        "ro_files": ["/dev/urandom", "/dev/random", "/dev/zero", os.path.join(sys.prefix, "pyvenv.cfg")],
        "memory_mb": limits.memory_mb, "file_mb": limits.file_mb,
        "cpu_seconds": int(max(60, 10 * limits.timeout)),
    }
