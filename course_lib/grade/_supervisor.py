"""Run one command and make sure nothing it starts outlives it (Linux).

``python -I -S _supervisor.py CMD...``: becomes a *child subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``), so every process the command forks and orphans,
even one that calls ``setsid()`` and double-forks to daemonize, is re-parented to this
process instead of ``init``.  When the command exits (or is killed by the grader), its
process group and every remaining descendant are killed with SIGKILL and reaped.
Exit status: the command's (128 + signal number if it was killed).

Standalone on purpose (stdlib only): it starts before the sandboxed kernel and stays
outside its Landlock domain, so the kernel can neither signal nor trace it.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the 4th field after the parenthesised command name is the parent pid
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(entry))
    return out


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the grader died: so do we
    if os.getppid() == 1:
        os._exit(1)
    cmd = sys.argv[1:]
    pid = os.fork()
    if pid == 0:
        os.setsid()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.execv(cmd[0], cmd)
    status = 1
    while True:
        try:
            got, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if got == pid:
            status = os.waitstatus_to_exitcode(st)
            break
    # the kernel is gone: kill everything it left behind, until nothing is left
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    for _ in range(1000):
        left = children(os.getpid())
        if not left:
            break
        for c in left:
            try:
                os.kill(c, signal.SIGKILL)
            except OSError:
                pass
        for _ in left:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
    os._exit(128 - status if status < 0 else status)


if __name__ == "__main__":
    main()
