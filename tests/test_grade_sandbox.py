"""Issue 8, items 9-13: the bubblewrap sandbox.  Nothing a submission starts survives it,
the total time limit bounds the whole submission, memory and process count are bounded
for the whole tree, no capabilities, no network, no view of the grader, a bounded disk,
and the grader reports (never crashes) when its own disk fails.

Each attack is a cell or a graded function of an otherwise correct chapter-1 notebook:
the functions' scores prove what the sandboxed process could (not) do."""

import os
import subprocess
import sys
import time
import uuid

import pytest

from adversarial import FUNCTIONS, TOTAL, points, processes_with, scores, submission, write
from course_lib.grade import sandbox as sb
from course_lib.grade.grader import grade_notebook
from course_lib.grade.sandbox import Limits

LIMITS = Limits(timeout=5.0, call_timeout=3.0, memory_mb=1024, grace=1.0)
ALL_FULL = {f: points(f) for f in FUNCTIONS}
SANDBOXED = sb.bwrap_problem(LIMITS.bwrap_path()) is None
needs_bwrap = pytest.mark.skipif(not SANDBOXED and not os.environ.get("CI"),
                                 reason=f"bubblewrap unusable here: {sb.bwrap_problem(LIMITS.bwrap_path())}")


def grade(tmp_path, nb, **kw):
    path = write(nb, tmp_path / f"sub_{uuid.uuid4().hex[:8]}.ipynb")
    return grade_notebook(path, limits=kw.pop("limits", LIMITS), seed=kw.pop("seed", 4321), **kw)


def gd_step_if(flag: str) -> str:
    """A correct gd_step that is right only if the global ``flag`` is true."""
    return (f"def gd_step(params, grads, lr):\n    assert {flag}, '{flag} is false'\n"
            "    return [p - lr * g for p, g in zip(params, grads)]")


def test_the_sandbox_is_bubblewrap_here():
    """The course machines and CI install bubblewrap (make test): the tests below must run."""
    assert SANDBOXED, sb.bwrap_problem(LIMITS.bwrap_path())


# ---------------------------------------------------------------- item 9: escaped processes

@needs_bwrap
def test_a_chain_of_setsid_processes_dies_with_the_submission(tmp_path):
    marker = f"SETSID-{uuid.uuid4().hex}"
    chain = f'''
import os, sys, time
def spawn(depth):
    if os.fork() == 0:
        os.setsid()
        if depth:
            spawn(depth - 1)
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", "{marker}"])
for _ in range(3):
    spawn(4)
time.sleep(1.0)
ALIVE = sum(1 for p in os.listdir("/proc") if p.isdigit()
            and b"{marker}" in open(f"/proc/{{p}}/cmdline", "rb").read()) >= 10
'''
    r = grade(tmp_path, submission(before=[chain], replace={"gd_step": gd_step_if("ALIVE")}))
    assert scores(r) == ALL_FULL, r["notes"]   # the chain was alive while grading ...
    assert processes_with(marker) == []        # ... and nothing of it survives


@needs_bwrap
def test_a_fork_bomb_is_bounded_and_the_next_student_is_unharmed(tmp_path):
    bomb = '''
import os, time
n = 0
try:
    for _ in range(2000):
        if os.fork() == 0:
            time.sleep(300)
            os._exit(0)
        n += 1
except OSError:
    pass
BOUNDED = n < 200
'''
    r = grade(tmp_path, submission(before=[bomb], replace={"gd_step": gd_step_if("BOUNDED")}))
    if r["sandbox"]["cgroup"] and "pids" in r["sandbox"]["cgroup"]:
        assert scores(r) == ALL_FULL, r["notes"]
    honest = grade(tmp_path, submission())
    assert scores(honest) == ALL_FULL and honest["status"] == "graded"


# ---------------------------------------------------------------- item 10: total time

def test_the_total_time_limit_bounds_re_runs_after_restarts(tmp_path):
    nap = "import time\ntime.sleep(0.9)"
    die = "import os\nos._exit(1)"
    limits = Limits(timeout=2.0, total_timeout=4.0, call_timeout=2.0, memory_mb=1024, grace=1.0)
    t0 = time.monotonic()
    r = grade(tmp_path, submission(before=[nap, nap, die, nap, die, nap, die, nap, die]), limits=limits)
    took = time.monotonic() - t0
    # 4 exits x re-running naps would take > 12 s if re-runs were free
    assert took < 4.0 + 8 * 1.0 + 6.0, took
    assert any("total time limit" in n for n in r["notes"]), r["notes"]


# ---------------------------------------------------------------- item 11: memory of the tree

@needs_bwrap
def test_memory_is_bounded_for_the_whole_tree(tmp_path):
    hog = '''
import os, time
kids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        try:
            block = bytearray(400 * 2**20)       # 400 MB each, under the per-process limit
            for i in range(0, len(block), 4096):
                block[i] = 1
            time.sleep(60)
        finally:
            os._exit(0)
    kids.append(pid)
alive = set(kids)
deadline = time.monotonic() + 25       # touching pages is slow on a loaded machine
while len(alive) == 4 and time.monotonic() < deadline:
    time.sleep(0.2)
    alive = {pid for pid in alive if os.waitpid(pid, os.WNOHANG)[0] == 0}
TREE_BOUNDED = len(alive) < 4          # the tree's limit (600 + 256 MB) killed some
'''
    limits = Limits(timeout=40.0, call_timeout=3.0, memory_mb=600, grace=1.0)
    r = grade(tmp_path, submission(before=[hog], replace={"gd_step": gd_step_if("TREE_BOUNDED")}),
              limits=limits)
    assert r["sandbox"]["cgroup"] and "memory" in r["sandbox"]["cgroup"], r["sandbox"]
    assert scores(r)["gd_step"] == points("gd_step"), r["notes"]


# ---------------------------------------------------------------- item 12: capabilities, network, grader

@needs_bwrap
def test_no_capabilities_no_network_no_view_of_the_grader(tmp_path, monkeypatch):
    secret = f"SECRET-{uuid.uuid4().hex}"
    monkeypatch.setenv("COURSE_GRADE_TEST_SECRET", secret)
    sock_path = tmp_path / "grader.sock"
    import socket
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    probe = f'''
import os, socket
def caps():
    for line in open("/proc/self/status"):
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
NO_CAPS = caps() == 0
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.1", 9))
    NO_UDP = False
except OSError:
    NO_UDP = True
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect({str(sock_path)!r})
    NO_UNIX = False
except OSError:
    NO_UNIX = True
try:
    socket.sethostname("pwned")
    NO_HOSTNAME = False
except OSError:
    NO_HOSTNAME = True
seen = ""
for p in os.listdir("/proc"):
    if p.isdigit():
        for f in ("environ", "cmdline"):
            try:
                seen += open(f"/proc/{{p}}/{{f}}", "rb").read().decode("latin-1")
            except OSError:
                pass
NO_VIEW = "{secret}" not in seen and "pytest" not in seen and "{secret}" not in str(os.environ)
import ctypes  # a nested user namespace would hand capabilities back (found by the attack pass)
NO_USERNS = ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0  # CLONE_NEWUSER
CONFINED = NO_CAPS and NO_UDP and NO_UNIX and NO_HOSTNAME and NO_VIEW and NO_USERNS
'''
    try:
        r = grade(tmp_path, submission(before=[probe], replace={"gd_step": gd_step_if("CONFINED")}))
    finally:
        server.close()
    assert scores(r) == ALL_FULL, [q["feedback"] for q in r["questions"]] + r["notes"]
    assert socket.gethostname() != "pwned"


# ---------------------------------------------------------------- item 13: disk

@needs_bwrap
def test_filling_the_disk_and_restarting_is_bounded_and_reported(tmp_path):
    fill = '''
import os
try:
    with open("big", "wb") as f:
        while True:
            f.write(b"x" * 2**20)
except OSError as e:
    FULL_DISK = e.errno
os._exit(1)
'''
    limits = Limits(timeout=20.0, call_timeout=3.0, memory_mb=1024, disk_mb=32, grace=1.0)
    r = grade(tmp_path, submission(before=[fill, fill], replace={"gd_step": gd_step_if("True")}),
              limits=limits)
    assert r["status"] == "graded" and scores(r) == ALL_FULL, r["notes"]


def test_an_oserror_in_the_grader_yields_a_report_not_a_traceback(tmp_path, monkeypatch):
    import errno

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(sb, "make_sandbox_dir", no_space)
    r = grade(tmp_path, submission())
    assert r["status"] == "error" and "No space left" in r["error"] and r["max_score"] == TOTAL


# ---------------------------------------------------------------- without bubblewrap

def test_without_bubblewrap_the_grader_grades_and_says_so(tmp_path):
    sub = write(submission(), tmp_path / "alice.ipynb")
    env = dict(os.environ, COURSE_GRADE_BWRAP=str(tmp_path / "no-bwrap"))
    proc = subprocess.run([sys.executable, "-m", "course_lib.grade", str(sub), "--timeout", "5",
                           "--call-timeout", "3", "--seed", "1"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"{TOTAL:g} / {TOTAL:g} points" in proc.stdout and "WITHOUT the sandbox" in proc.stdout
