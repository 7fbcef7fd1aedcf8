"""Shared test configuration: off-screen figures (in this process only) and a seeded rng fixture."""

import matplotlib

# Off-screen figures in *this* process only. Setting MPLBACKEND in os.environ instead would leak
# into the kernels nbval starts with --nbval-current-env: their plt.show() then draws nothing, and
# every stored figure output fails to compare (``make test`` runs tests/ and the notebooks together).
matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---- issue 8: no process started by a graded submission may outlive the test suite.
# Every sandboxed kernel carries COURSE_GRADE_KERNEL=<this run's id> in its environment
# (course_lib.grade.sandbox); after the whole suite none may be left.
import os  # noqa: E402
import uuid  # noqa: E402

os.environ.setdefault("COURSE_GRADE_RUN", f"run-{uuid.uuid4().hex[:12]}")


def leftover_kernels(run_id: str) -> list:
    marker = f"COURSE_GRADE_KERNEL={run_id}".encode()
    found = []
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else ():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(pid))
        except (OSError, ValueError):
            pass
    return found


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # xdist worker: the controller checks at the end
        return
    left = leftover_kernels(os.environ["COURSE_GRADE_RUN"])
    if left:
        print(f"\nERROR: processes started by graded submissions survived the test suite: {left}")
        session.exitstatus = 1
