"""The grader's side of the sandbox: one student kernel in a separate, confined process.

With bubblewrap (``/usr/bin/bwrap``, Debian's ``bubblewrap``, what Flatpak uses)::

    grader (this process)
      └─ bwrap                      new user, PID, mount, network, IPC, UTS namespaces;
           └─ init (PID 1)          no capabilities; --die-with-parent
                └─ _harness.py      the student's kernel (+ whatever it forks)

- the file system is a read-only view of ``/usr``, the Python installation and the
  sanitized ``course_lib`` copy; the only writable place is a size-limited tmpfs (its
  working directory, ``HOME``, ``TMPDIR`` and ``/tmp``);
- no network (a fresh network namespace: loopback only), no unix socket of the host, no
  view of the grader's processes, environment or command line (a fresh PID namespace);
- when the kernel's PID 1 dies the Linux kernel kills every process of the namespace,
  whatever they did (``setsid``, double forks): nothing the submission started survives;
- where the machine allows it, a cgroup (v2, else v1) bounds the memory and the number of
  processes of the whole tree, and is emptied and removed afterwards.

Without bubblewrap (macOS, a container without user namespaces) the grader still grades,
with the older containment (a subreaper supervisor, rlimits per process, Landlock where
the kernel has it), and says so plainly in its report and its exit status.

Requests and answers travel over two pipes (length-prefixed JSON, :mod:`._harness`); the
kernel's stdout/stderr go to a third pipe that a thread drains and caps (nothing the
kernel prints is ever parsed).  Every request has a wall-clock limit: when it passes the
kernel gets SIGINT (``KeyboardInterrupt``) and, if it does not answer within a grace
period, the whole sandbox is killed.  The grader never reads a file the kernel wrote.
"""

from __future__ import annotations

import errno
import functools
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
import uuid
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
    "torchao": "not available in graded mode",
}
GRADE_STUB = '''"""Graded mode: self-checks are switched off; the grader checks your functions itself."""


def check(question_id, fn):
    return None
'''
DEFAULT_BWRAP = "/usr/bin/bwrap"
INSIDE = "/sandbox"          # where the sandbox directory appears inside bubblewrap
SANDBOX_UID = 65534          # "nobody" inside the user namespace
# files of /etc a Python process may look at (the dynamic loader, time zone, user names)
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
             "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf")
# environment marker of every kernel: tests/conftest.py checks that none outlives the suite
TAG_VAR = "COURSE_GRADE_KERNEL"


@dataclass
class Limits:
    """Resource limits of one sandboxed kernel."""
    timeout: float = 120.0       # wall-clock seconds per notebook cell
    total_timeout: float = 600.0  # wall-clock seconds for all the cells together, re-runs included
    call_timeout: float = 10.0   # wall-clock seconds per call of a graded function
    memory_mb: int = 2048        # memory of the whole process tree (cgroup), and of each process (RLIMIT_AS)
    disk_mb: int = 256           # size of the only writable place (a tmpfs)
    file_mb: int = 64            # largest file the kernel may write (RLIMIT_FSIZE)
    max_processes: int = 64      # processes and threads of the whole tree (cgroup pids.max)
    output_kb: int = 64          # stdout/stderr kept (the rest is read and dropped)
    startup_timeout: float = 60.0
    grace: float = 2.0           # after SIGINT, seconds to answer before SIGKILL
    bwrap: str | None = "auto"   # "auto": $COURSE_GRADE_BWRAP or /usr/bin/bwrap; None: no sandbox

    def __post_init__(self):
        for name in ("timeout", "total_timeout", "call_timeout", "startup_timeout", "grace"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {v!r}")
        for name in ("memory_mb", "disk_mb", "file_mb", "max_processes", "output_kb"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v > 0):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

    def bwrap_path(self) -> str | None:
        if self.bwrap is None:
            return None
        if self.bwrap == "auto":
            return os.environ.get("COURSE_GRADE_BWRAP", DEFAULT_BWRAP)
        return self.bwrap


class KernelDied(Exception):
    """The kernel process ended (``os._exit``, a crash, the memory limit, SIGKILL)."""


class KernelTimeout(Exception):
    """A request passed its time limit and the kernel had to be killed."""


class SandboxUnavailable(Exception):
    """The sandbox could not be set up (a grader error, never the student's)."""


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


# ----------------------------------------------------------------------------------
# processes


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (``/proc``)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        pass
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and parent_of(int(entry)) == pid:
            out.append(int(entry))
    return out


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return int(stat[stat.rfind(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


# ----------------------------------------------------------------------------------
# cgroups: memory and process count of the whole tree


class CGroup:
    """A cgroup (v2, else v1 per controller) bounding a process tree's memory and pids.

    ``CGroup.create`` returns ``(cgroup or None, reason)``; the tree joins it through
    :attr:`procs_files` (a process writes its pid there before it execs the sandbox).
    """

    def __init__(self):
        self.dirs: list[Path] = []
        self.procs_files: list[str] = []
        self.kill_file: Path | None = None
        self.bounded: dict = {}      # {"memory": "v2", "pids": "v1"}

    @staticmethod
    def _own_paths() -> dict:
        """``{controller or "": path}`` of this process's cgroups (``""``: the v2 hierarchy)."""
        out = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) != 3:
                    continue
                _, ctrls, path = parts
                if ctrls == "":
                    out[""] = path
                for c in ctrls.split(","):
                    if c:
                        out[c] = path
        return out

    @classmethod
    def create(cls, name: str, memory_bytes: int, max_pids: int):
        try:
            own = cls._own_paths()
        except OSError as exc:
            return None, f"no /proc/self/cgroup ({exc.strerror})"
        cg, reasons = cls(), []
        want = {"memory": memory_bytes, "pids": max_pids}
        # cgroup v2: the unified hierarchy (pure, or "unified" in a hybrid layout)
        for mount in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
            if "" in own and (mount / "cgroup.controllers").exists():
                try:
                    cg._v2(mount / own[""].lstrip("/"), name, want)
                except OSError as exc:
                    reasons.append(f"cgroup v2: {exc.strerror or exc}")
                break
        for ctrl, value in want.items():  # cgroup v1, per controller still missing
            if ctrl in cg.bounded or ctrl not in own:
                continue
            base = Path("/sys/fs/cgroup") / ctrl / own[ctrl].lstrip("/")
            try:
                cg._v1(base, ctrl, name, value)
            except OSError as exc:
                reasons.append(f"cgroup v1 {ctrl}: {exc.strerror or exc}")
        if not cg.bounded:
            cg.remove()
            return None, "; ".join(reasons) or "no cgroup hierarchy with the memory and pids controllers"
        return cg, "; ".join(reasons)

    def _mkdir(self, path: Path):
        path.mkdir()
        self.dirs.append(path)

    def _v2(self, base: Path, name: str, want: dict):
        have = set((base / "cgroup.subtree_control").read_text().split())
        missing = [c for c in want if c not in have]
        if missing:  # fails (EBUSY) when processes live in base itself: then no v2 limits
            (base / "cgroup.subtree_control").write_text(" ".join("+" + c for c in missing))
        child = base / name
        self._mkdir(child)
        (child / "memory.max").write_text(str(want["memory"]))
        try:
            (child / "memory.swap.max").write_text("0")
        except OSError:
            pass
        (child / "pids.max").write_text(str(want["pids"]))
        self.procs_files.append(str(child / "cgroup.procs"))
        if (child / "cgroup.kill").exists():
            self.kill_file = child / "cgroup.kill"
        self.bounded.update(memory="v2", pids="v2")

    def _v1(self, base: Path, ctrl: str, name: str, value: int):
        child = base / name
        self._mkdir(child)
        if ctrl == "memory":
            (child / "memory.limit_in_bytes").write_text(str(value))
            try:  # memory + swap: no escape into swap
                (child / "memory.memsw.limit_in_bytes").write_text(str(value))
            except OSError:
                pass
        else:
            (child / "pids.max").write_text(str(value))
        self.procs_files.append(str(child / "cgroup.procs"))
        self.bounded[ctrl] = "v1"

    def pids(self) -> set:
        out = set()
        for f in self.procs_files:
            try:
                out |= {int(x) for x in Path(f).read_text().split()}
            except (OSError, ValueError):
                pass
        return out

    def kill(self):
        """SIGKILL every process of the group, until it is empty (or 2 s passed)."""
        if self.kill_file is not None:
            try:
                self.kill_file.write_text("1")
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)

    def remove(self):
        for d in reversed(self.dirs):
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        self.dirs = []


# ----------------------------------------------------------------------------------
# bubblewrap


@functools.lru_cache(maxsize=4)
def bwrap_problem(path: str | None) -> str | None:
    """Why bubblewrap at ``path`` cannot sandbox here (``None``: it works)."""
    if not path:
        return "the sandbox was switched off"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return f"bubblewrap is not installed ({path} not found)"
    probe = [path, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL",
             "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--ro-bind", "/", "/",
             "--proc", "/proc", "--dev", "/dev", sys.executable, "-I", "-S", "-c", "pass"]
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap does not run here: {exc}"
    if proc.returncode != 0:
        return f"bubblewrap does not run here: {proc.stderr.strip()[:200]}"
    return None


@functools.lru_cache(maxsize=8)
def bwrap_supports(path: str, option: str) -> bool:
    """Whether this bubblewrap knows ``option`` (``--disable-userns`` came with 0.8)."""
    try:
        proc = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return option in (proc.stdout + proc.stderr).split()


def _python_dirs() -> list[str]:
    """Directories the interpreter needs: its installation, the environment, their packages."""
    dirs = [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))]
    dirs += site_packages()
    return [d for d in dict.fromkeys(os.path.realpath(d) for d in dirs) if os.path.isdir(d)]


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def bwrap_command(bwrap: str, root: Path, limits: Limits) -> list[str]:
    """The bubblewrap command line for the sandbox directory ``root`` (without the program)."""
    a = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
         "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox"]
    system = []
    for d in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.islink(d):
            a += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            a += ["--ro-bind", d, d]
            system.append(d)
    for f in ETC_FILES:
        a += ["--ro-bind-try", f, f]
    a += ["--proc", "/proc", "--dev", "/dev"]
    # A checkout (and its .venv) under /tmp -- a CI clone, say -- is bound inside /tmp, so /tmp
    # cannot be the usual symlink to the work tmpfs: it becomes a tmpfs of its own, mounted
    # before those binds, and the disk budget is split between the two so the total still holds.
    pydirs = _python_dirs()
    tmp_taken = any(_under(d, ["/tmp"]) for d in pydirs)
    disk = limits.disk_mb * 2**20 // (2 if tmp_taken else 1)
    if tmp_taken:
        a += ["--size", str(disk), "--tmpfs", "/tmp"]
    mounted = list(system)
    for d in pydirs:
        if not _under(d, mounted):
            a += ["--ro-bind", d, d]
            mounted.append(d)
    # hide the frameworks that would compute the answers, and site-packages not on the path
    empty_dir, empty_file = str(root / "empty"), "/dev/null"
    active = {os.path.realpath(p) for p in site_packages()}
    import sysconfig
    base_sp = {os.path.realpath(sysconfig.get_paths(vars={"base": p, "platbase": p})["purelib"])
               for p in (sys.base_prefix, sys.prefix)}
    for sp in sorted(base_sp - active):
        if os.path.isdir(sp) and _under(sp, mounted):
            a += ["--ro-bind", empty_dir, sp]
    for sp in sorted(active):
        for entry in sorted(os.listdir(sp)):
            top = entry.split("-")[0].split(".")[0]
            if top in ABSENT:
                path = os.path.join(sp, entry)
                a += ["--ro-bind", empty_dir if os.path.isdir(path) else empty_file, path]
    if bwrap_supports(bwrap, "--disable-userns"):  # bubblewrap >= 0.8: no nested user namespaces
        a += ["--unshare-user", "--disable-userns"]  # (they would hand back capabilities in there)
    a += ["--ro-bind", str(root), INSIDE, "--size", str(disk), "--tmpfs", f"{INSIDE}/work"]
    if not tmp_taken:
        a += ["--symlink", f"{INSIDE}/work", "/tmp"]
    a += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", f"{INSIDE}/work"]
    return a


# shell prologue: join the cgroups (paths before "--"), then exec the sandbox
JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"'


class Kernel:
    """One sandboxed student process.  Use as a context manager."""

    def __init__(self, root: Path, config: dict, limits: Limits):
        self.root, self.config, self.limits = root, config, limits
        self.proc = None
        self.pid = None            # the harness's pid, as seen from here
        self.parent = None         # its parent: only then is ``pid`` still the harness
        self.landlock = 0
        self.cgroup = None
        self.cgroup_note = ""
        self._ids = 0
        self._buf = bytearray()
        self.output: list = []
        self.bwrap = limits.bwrap_path()
        self.unsandboxed = bwrap_problem(self.bwrap)   # None when bubblewrap works

    @property
    def mode(self) -> str:
        return "bubblewrap" if self.unsandboxed is None else "none"

    # -- life cycle

    def start(self):
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        out_r, out_w = os.pipe()
        boxed = self.unsandboxed is None
        seen_root = INSIDE if boxed else str(self.root)
        cfg = dict(self.config, rfd=p2c_r, wfd=c2p_w, landlock=not boxed and self.config.get("landlock", True),
                   pkg_dir=f"{seen_root}/pkg", work_dir=f"{seen_root}/work",
                   template_dir=f"{seen_root}/template")
        (self.root / "config.json").write_text(json.dumps(cfg))
        work = cfg["work_dir"]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work,
               "MPLBACKEND": "Agg", "MPLCONFIGDIR": os.path.join(work, ".mpl"),
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "NUMBA_NUM_THREADS": "1", "NUMBA_CACHE_DIR": os.path.join(work, ".numba"),
               "PYTHONHASHSEED": "0", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8",
               "PYTHONUNBUFFERED": "1", TAG_VAR: os.environ.get("COURSE_GRADE_RUN", "1")}
        py = [sys.executable, "-I", "-S", "-B"]
        harness = [f"{seen_root}/harness.py", f"{seen_root}/config.json"]
        if boxed:
            argv = bwrap_command(self.bwrap, self.root, self.limits) + py + harness
        else:
            argv = py + [str(HERE / "_supervisor.py")] + py + harness
        self.cgroup, self.cgroup_note = CGroup.create(
            f"course-grade-{uuid.uuid4().hex[:12]}",
            (self.limits.memory_mb + self.limits.disk_mb) * 2**20, self.limits.max_processes)
        if self.cgroup is not None:
            argv = ["/bin/sh", "-c", JOIN_CGROUPS, "sh", *self.cgroup.procs_files, "--", *argv]
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=(p2c_r, c2p_w),
                env=env, cwd=str(self.root) if not boxed else "/", start_new_session=True,
                close_fds=True)
        except OSError as exc:
            for fd in (p2c_r, p2c_w, c2p_r, c2p_w, out_r, out_w):
                os.close(fd)
            self._cleanup_cgroup()
            raise SandboxUnavailable(f"could not start the sandbox: {exc}") from None
        finally:
            if self.proc is not None:
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
            raise SandboxUnavailable(f"the sandboxed kernel did not start: {exc or 'timeout'}; "
                                     f"output: {self.output_text()[-500:]}") from None
        if ready.get("op") != "ready" or type(ready.get("pid")) is not int:
            self.stop()
            raise SandboxUnavailable("the sandboxed kernel did not start (bad handshake)")
        self._locate(ready["pid"])
        self.landlock = ready.get("landlock") or 0
        return self

    def _locate(self, inside_pid: int):
        """The harness's pid here: in bubblewrap, the child of the namespace's init."""
        if self.unsandboxed is not None:
            self.pid, self.parent = inside_pid, self.proc.pid
            return
        for init in children(self.proc.pid):
            for c in children(init):
                try:
                    with open(f"/proc/{c}/status") as f:
                        nspid = next(l.split()[1:] for l in f if l.startswith("NSpid:"))
                except (OSError, StopIteration):
                    continue
                if nspid and nspid[-1] == str(inside_pid):
                    self.pid, self.parent = c, init
                    return

    def _signal(self, sig) -> None:
        """Signal the kernel, if it is still the expected child (never a recycled pid)."""
        if self.pid is None or self.proc is None or self.proc.poll() is not None:
            return
        if parent_of(self.pid) != self.parent:
            return
        try:
            os.kill(self.pid, sig)
        except OSError:
            pass

    def stop(self):
        """Kill the kernel and everything it started, and clean up."""
        if self.proc is None:
            return
        if self.unsandboxed is None and self.parent is not None and parent_of(self.parent) == self.proc.pid:
            try:  # the namespace's init: its death kills every process of the namespace
                os.kill(self.parent, signal.SIGKILL)
            except OSError:
                pass
        self._signal(signal.SIGKILL)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._cleanup_cgroup()
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._drainer.join(timeout=5)
        self.proc = None

    def _cleanup_cgroup(self):
        if self.cgroup is not None:
            self.cgroup.kill()
            self.cgroup.remove()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def output_text(self) -> str:
        return b"".join(self.output).decode("utf-8", "replace")

    def info(self) -> dict:
        """What confined this kernel (for the report)."""
        cg = self.cgroup.bounded if self.cgroup is not None else {}
        return {"mode": self.mode, "unsandboxed_reason": self.unsandboxed,
                "landlock_abi": self.landlock, "cgroup": dict(cg) or None,
                "cgroup_note": self.cgroup_note or None}

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
            if name not in callbacks:
                raise NameError(f"no function {str(name)[:40]!r} is provided here")
            fn = callbacks[name]
            args = _harness.decode(msg.get("args"))
            kwargs = {}
            for item in msg.get("kwargs") or []:
                if type(item) is not list or len(item) != 2 or type(item[0]) is not str:
                    raise ValueError("bad keyword arguments")
                value = _harness.decode(item[1])
                if type(value) is not list or len(value) != 1:
                    raise ValueError("bad keyword arguments")
                kwargs[item[0]] = value[0]
            if type(args) is not list:
                raise ValueError("bad arguments")
            with np.errstate(all="ignore"):
                value = fn(*args, **kwargs)
            reply = {"op": "cb_result", "ok": True, "value": _harness.encode(value)}
        except Exception as exc:  # the student's arguments may be anything
            reply = {"op": "cb_result", "ok": False, "error": _harness._describe(exc),
                     "type": type(exc).__name__}
        self._send(reply)


def make_sandbox_dir(pkg_files: dict) -> Path:
    """A fresh directory: ``harness.py``, ``pkg/`` (sanitized course_lib), ``template/`` (files
    copied into the kernel's working directory), ``work/`` (its mount point), ``empty/``."""
    root = Path(tempfile.mkdtemp(prefix="course-grade-"))
    try:
        shutil.copy(HERE / "_harness.py", root / "harness.py")
        for rel, text in pkg_files.items():
            path = root / "pkg" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for d in ("work", "empty", "template/.mpl"):
            (root / d).mkdir(parents=True)
        cache = Path(os.environ.get("MPLCONFIGDIR") or
                     Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib")
        for f in cache.glob("fontlist-*.json") if cache.is_dir() else ():
            shutil.copy(f, root / "template" / ".mpl" / f.name)  # no font-cache rebuild per kernel
        os.chmod(root, 0o755)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
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
    """The harness's configuration.  The Landlock paths serve the unsandboxed fallback only
    (inside bubblewrap the mount namespace already holds nothing else)."""
    sp = site_packages()
    read = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys",
            str(root / "pkg"), str(root / "harness.py"), str(root / "template")]
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
        "site_packages": sp, "forbidden": forbidden, "absent": ABSENT, "landlock": landlock,
        "read_paths": read, "list_paths": sp + _stdlib_dirs() + [str(root)],
        "write_paths": [str(root / "work")],
        "rw_files": ["/dev/null"],
        "ro_files": ["/dev/urandom", "/dev/random", "/dev/zero", os.path.join(sys.prefix, "pyvenv.cfg")],
        "memory_mb": limits.memory_mb, "file_mb": limits.file_mb,
        "cpu_seconds": int(max(60, 10 * limits.timeout)),
    }


def disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
