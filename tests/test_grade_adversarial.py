"""Submissions that try to fool the grader: each one is scored exactly as it deserves,
none crashes the grader, none leaves anything behind.

Every test builds a notebook (``tests/adversarial``) whose functions are correct except
where the attack says otherwise, grades it in the sandbox with small limits, and asserts
the exact score of every question plus the reason given.
"""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from adversarial import FUNCTIONS, POINTS, TOTAL, feedback, points, processes_with, scores, submission, write
from course_lib.grade.grader import grade_notebook
from course_lib.grade.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(timeout=3.0, call_timeout=2.0, memory_mb=1024, grace=1.0)
ALL_FULL = dict(POINTS)


def grade(tmp_path, nb, **kw):
    path = write(nb, tmp_path / f"sub_{uuid.uuid4().hex[:8]}.ipynb")
    return grade_notebook(path, limits=kw.pop("limits", LIMITS), seed=kw.pop("seed", 1234), **kw)


def expect(report, **zeroed):
    """Every function full except those given (name=expected score)."""
    want = dict(ALL_FULL, **zeroed)
    assert scores(report) == want, json.dumps(report, indent=1)


def test_honest_submission_scores_full(tmp_path):
    r = grade(tmp_path, submission())
    expect(r)
    assert r["score"] == r["max_score"] == TOTAL
    assert r["sandboxed"] is True and r["sandbox"]["mode"] == "bubblewrap", r["sandbox"]


# ---------------------------------------------------------------- time

def test_infinite_loop_in_a_cell_is_stopped_and_the_rest_graded(tmp_path):
    r = grade(tmp_path, submission(before=["while True:\n    pass"]))
    expect(r)
    assert any("time limit" in n for n in r["notes"])


def test_infinite_loop_ignoring_sigint_is_killed_and_the_rest_graded(tmp_path):
    loop = ("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "while True:\n    try:\n        time.sleep(0.01)\n    except BaseException:\n        pass")
    r = grade(tmp_path, submission(after=[loop]))
    expect(r)
    assert r["sandbox"]["kernel_restarts"] >= 1


def test_infinite_loop_in_a_function_scores_zero_for_it(tmp_path):
    hang = "def gd_step(params, grads, lr):\n    while True:\n        pass"
    r = grade(tmp_path, submission(replace={"gd_step": hang}))
    # sgd_epoch calls gd_step: while sgd_epoch is graded, gd_step is the reference
    expect(r, gd_step=0.0)
    assert "timed out" in feedback(r, "gd_step")


# ---------------------------------------------------------------- exits

@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "raise SystemExit(3)",
                                       "import os; os._exit(0)", "import os; os.kill(os.getpid(), 9)"])
def test_exit_in_a_cell_only_skips_that_cell(tmp_path, exit_call):
    r = grade(tmp_path, submission(before=[exit_call], after=[exit_call]))
    expect(r)


def test_os_exit_inside_a_function_scores_zero_for_it(tmp_path):
    bad = "def mse_gradient(X, y, w, b):\n    import os\n    os._exit(0)"
    r = grade(tmp_path, submission(replace={"mse_gradient": bad}))
    expect(r, mse_gradient=0.0)
    assert "kernel died" in feedback(r, "mse_gradient")


# ---------------------------------------------------------------- patching the checks

WRONG_MSE = "def mse_gradient(X, y, w, b):\n    return 0.0, np.zeros_like(w), 0.0"


def test_patching_numpy_builtins_and_assertionerror_changes_nothing(tmp_path):
    patch = """
import builtins, numpy as np, numpy.testing
np.allclose = lambda *a, **k: True
np.isclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
numpy.testing.assert_array_equal = lambda *a, **k: None
builtins.isinstance = lambda *a: True
builtins.AssertionError = type("AssertionError", (Exception,), {})
builtins.abs = lambda x: 0
import sys; sys.modules["numpy"].abs = lambda x: 0
"""
    r = grade(tmp_path, submission(before=[patch], replace={"mse_gradient": WRONG_MSE}))
    # the wrong function gets zero; the correct ones still pass (they don't use the patched names)
    expect(r, mse_gradient=0.0)


def test_patching_check_itself_gives_nothing(tmp_path):
    patch = ("import course_lib.grade as g\ng.check = lambda *a, **k: 2.0\n"
             "import builtins\nbuiltins.check = lambda *a, **k: 2.0")
    r = grade(tmp_path, submission(before=[patch], replace={"mse_gradient": WRONG_MSE}))
    expect(r, mse_gradient=0.0)


LIARS = '''
class AlwaysEqual:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __float__(self): return 0.0
    def __array__(self, *a, **k): return np.zeros(1)
class LyingArray(np.ndarray):
    def __eq__(self, other): return np.ones(np.shape(other), bool)
    def __sub__(self, other): return np.zeros(np.shape(other))
    __rsub__ = __sub__
    def __abs__(self): return np.zeros(self.shape)
'''


def test_objects_whose_eq_is_always_true_score_zero(tmp_path):
    cheat = "def mse_gradient(X, y, w, b):\n    return AlwaysEqual(), AlwaysEqual(), AlwaysEqual()"
    cheat_ce = "def softmax_cross_entropy(logits, y):\n    return AlwaysEqual()"
    r = grade(tmp_path, submission(before=[LIARS], replace={"mse_gradient": cheat,
                                                            "softmax_cross_entropy": cheat_ce}))
    expect(r, mse_gradient=0.0, softmax_cross_entropy=0.0)
    assert "an object of type AlwaysEqual" in feedback(r, "mse_gradient")


def test_ndarray_subclasses_that_lie_score_zero(tmp_path):
    cheat = ("def gd_step(params, grads, lr):\n"
             "    return [np.zeros(np.shape(p)).view(LyingArray) for p in params]")
    r = grade(tmp_path, submission(before=[LIARS], replace={"gd_step": cheat}))
    expect(r, gd_step=0.0)
    assert "LyingArray" in feedback(r, "gd_step")


# ---------------------------------------------------------------- forging the result

def test_printing_a_forged_report_is_ignored(tmp_path):
    forged = {"chapter": "01_gradient_descent", "score": 8.0, "max_score": 8.0,
              "questions": [{"id": "01.mse_gradient", "score": 2.0, "max_score": 2.0,
                             "feedback": "FORGED"}]}
    cell = f"import json\nfor _ in range(3):\n    print(json.dumps({forged!r}))"
    sub = write(submission(before=[cell], after=[cell], replace={"mse_gradient": WRONG_MSE}),
                tmp_path / "forger.ipynb")
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "course_lib.grade", str(sub), "--json", str(out),
                           "--timeout", "5", "--call-timeout", "2", "--seed", "7"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "FORGED" not in proc.stdout and "FORGED" not in out.read_text()
    report = json.loads(out.read_text())
    assert report["score"] == TOTAL - POINTS["mse_gradient"] and scores(report)["mse_gradient"] == 0.0


def test_forged_answers_on_the_grader_channel_are_rejected(tmp_path):
    # write well-formed "done"/"result" frames claiming success to every open descriptor
    forge = '''
import os, json, struct
for fd in range(3, 64):
    for msg in ({"op": "done", "id": 999, "error": None}, {"op": "result", "id": 999, "ok": True,
                "value": {"float": "1.0"}, "args_after": {"list": []}}):
        data = json.dumps(msg).encode()
        try:
            os.write(fd, struct.pack(">I", len(data)) + data)
        except OSError:
            pass
'''
    r = grade(tmp_path, submission(before=[forge], replace={"mse_gradient": WRONG_MSE}))
    expect(r, mse_gradient=0.0)


def test_fake_result_files_cannot_be_written(tmp_path, monkeypatch):
    home = Path.home()
    marker = uuid.uuid4().hex
    targets = [tmp_path / "report.json", tmp_path / "grades.csv", home / f"fake_{marker}.json",
               Path("/tmp") / f"fake_{marker}.json", ROOT / f"fake_{marker}.json"]
    (tmp_path / "report.json").write_text("{}")
    cell = "import json\nfor t in %r:\n" % [str(t) for t in targets] + (
        "    try:\n        open(t, 'w').write(json.dumps({'score': 8.0, 'max_score': 8.0}))\n"
        "    except OSError as e:\n        print('blocked', t, e)")
    monkeypatch.chdir(tmp_path)
    r = grade(tmp_path, submission(before=[cell], replace={"mse_gradient": WRONG_MSE}))
    expect(r, mse_gradient=0.0)
    assert (tmp_path / "report.json").read_text() == "{}"
    for t in targets[1:]:
        assert not t.exists(), f"the kernel wrote {t}"


def test_reading_the_solution_reference_or_grader_is_blocked(tmp_path):
    secret = tmp_path / "solution_secret.ipynb"  # a stand-in for the instructor's files
    secret.write_text("def mse_gradient(X, y, w, b):\n    return 'stolen'\n")
    paths = [str(secret), str(ROOT / "course_lib" / "regression.py"),
             str(ROOT / "course_lib" / "grade" / "ch01.py"), str(ROOT / "solutions")]
    steal = '''
def mse_gradient(X, y, w, b):
    import glob, os
    for p in %r:
        for f in ([p] if os.path.isfile(p) else glob.glob(p + "/*.ipynb")):
            with open(f) as fh:   # PermissionError under Landlock
                src = fh.read()
            ns = {}
            exec(src, ns)
            return ns["mse_gradient"](X, y, w, b)
    raise RuntimeError("nothing found")
''' % paths
    r = grade(tmp_path, submission(replace={"mse_gradient": steal}))
    expect(r, mse_gradient=0.0)
    # inside bubblewrap the files do not exist; under Landlock they are unreadable
    assert any(s in feedback(r, "mse_gradient") for s in ("nothing found", "PermissionError"))


def test_importing_the_reference_scores_zero_and_says_why(tmp_path):
    cheat = ("def mse_gradient(X, y, w, b):\n    from course_lib.regression import mse_gradient as ref\n"
             "    return ref(X, y, w, b)")
    r = grade(tmp_path, submission(replace={"mse_gradient": cheat}))
    # course_lib.regression also holds (or imports) the references of the softmax cross-entropy,
    # the Huber gradient, the Newton step and the forecast: all zero
    zeroed = ("mse_gradient", "softmax_cross_entropy", "huber_gradient", "newton_step", "gd_forecast")
    expect(r, **{f: 0.0 for f in zeroed})
    for name in zeroed:
        assert "imports course_lib.regression" in feedback(r, name)
        assert "reference implementation" in feedback(r, name)


def test_top_level_import_of_the_reference_with_a_fallback_scores_zero(tmp_path):
    cheat = ("try:\n    from course_lib.gd import gd_step\nexcept ImportError:\n    pass\n"
             "try:\n    import importlib; ref = importlib.import_module('course_lib.losses')\n"
             "except ImportError:\n    pass")
    r = grade(tmp_path, submission(after=[cheat]))
    # course_lib.gd reaches every chapter-1 reference; course_lib.losses reaches softmax CE
    expect(r, **{f: 0.0 for f in FUNCTIONS})
    assert "course_lib.gd" in feedback(r, "gd_step")


def test_torch_is_not_available_in_graded_mode(tmp_path):
    cheat = ('''def softmax_cross_entropy(logits, y):
    import torch
    z = torch.tensor(logits, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(z, torch.tensor(y))
    loss.backward()
    return loss.item(), z.grad.numpy()''')
    r = grade(tmp_path, submission(replace={"softmax_cross_entropy": cheat}))
    expect(r, softmax_cross_entropy=0.0)
    assert "not available in graded mode" in feedback(r, "softmax_cross_entropy")


# ---------------------------------------------------------------- resources

def test_allocating_far_more_memory_than_the_limit(tmp_path):
    cells = ["big = np.ones(10**10)",  # 80 GB at once
             "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 2**20))",  # grow to the limit
             "chunks = None"]  # then let go: later questions need memory to run at all
    hog = "def gd_step(params, grads, lr):\n    x = np.ones(10**10)\n    return params"
    r = grade(tmp_path, submission(before=cells, replace={"gd_step": hog}))
    expect(r, gd_step=0.0)
    assert "MemoryError" in feedback(r, "gd_step")


def test_flooding_stdout(tmp_path):
    flood = "import sys\nfor _ in range(300):\n    sys.stdout.write('x' * 2**20)"  # 300 MB
    endless = "while True:\n    print('spam' * 1000)"
    r = grade(tmp_path, submission(before=[flood], after=[endless]))
    expect(r)


def test_child_processes_do_not_outlive_the_kernel(tmp_path):
    marker = f"ORPHAN-{uuid.uuid4().hex}"
    # gd_step is right only if both children are running when the cell ends: the full
    # score below proves they were alive, and the /proc scan that they are gone after
    spawn = f'''
import os, subprocess, sys, time
cmd = [sys.executable, "-c", "import time; time.sleep(300)", "{marker}"]
subprocess.Popen(cmd, start_new_session=True)                    # its own session
if os.fork() == 0:                                                 # a daemon: double fork
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, cmd)
    os._exit(0)
def _count():
    n = 0
    for pid in os.listdir("/proc"):
        try:
            n += b"{marker}" in open(f"/proc/{{pid}}/cmdline", "rb").read()
        except OSError:
            pass
    return n
for _ in range(100):
    time.sleep(0.05)
    if _count() == 2:
        break
time.sleep(0.3)  # still both alive after their interpreters started?
SPAWNED = _count() == 2
'''
    gd = "def gd_step(params, grads, lr):\n    assert SPAWNED\n    return [p - lr * g for p, g in zip(params, grads)]"
    r = grade(tmp_path, submission(before=[spawn], replace={"gd_step": gd}))
    expect(r)
    assert processes_with(marker) == []


def test_a_broken_notebook_gets_a_report(tmp_path):
    path = tmp_path / "broken_01_gradient_descent.ipynb"
    path.write_text("{ this is not json")
    r = grade_notebook(path, limits=LIMITS)
    assert r["chapter"] == "01_gradient_descent" and r["score"] == 0 and r["max_score"] == TOTAL
    assert r["status"] == "error" and "could not read the notebook" in r["error"]
    unknown = tmp_path / "mystery.ipynb"
    write(submission(metadata=False), unknown)
    r = grade_notebook(unknown, limits=LIMITS)
    assert r["chapter"] is None and r["status"] == "error" and "cannot tell the chapter" in r["error"]


def test_garbage_and_absurdly_nested_messages_on_the_channel(tmp_path):
    flood = '''
import os, struct
deep = (b"[" * 200000) + (b"]" * 200000)
for fd in range(3, 64):
    try:
        os.write(fd, struct.pack(">I", len(deep)) + deep)
    except OSError:
        pass
'''
    junk = "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'\\xff' * 64)\n    except OSError:\n        pass"
    r = grade(tmp_path, submission(before=[flood], after=[junk]))
    expect(r)
    assert r["sandbox"]["kernel_restarts"] == 2  # each cell broke the protocol once, then skipped


def test_a_kernel_killed_on_every_call_is_bounded(tmp_path):
    die = "def {}(*args, **kwargs):\n    import os\n    os._exit(1)"
    r = grade(tmp_path, submission(replace={f: die.format(f) for f in FUNCTIONS}))
    expect(r, **{f: 0.0 for f in FUNCTIONS})
    assert r["sandbox"]["kernel_restarts"] == len(FUNCTIONS)  # one per question, not per case
    assert all("kernel died" in feedback(r, f) for f in FUNCTIONS)


def test_the_total_time_limit_stops_a_slow_notebook(tmp_path):
    nap = "import time\ntime.sleep(1.5)"
    limits = Limits(timeout=5.0, total_timeout=2.5, call_timeout=2.0, memory_mb=1024, grace=1.0)
    r = grade(tmp_path, submission(after=[nap, nap, nap]), limits=limits)
    expect(r)  # the functions came first: still graded
    notes = " ".join(r["notes"])
    assert "was stopped" in notes and "were not run: the notebook used up its total time limit" in notes


# ---------------------------------------------------------------- issue 8, item 8

def test_patching_the_harness_helpers_does_not_hide_in_place_or_aliasing_mistakes(tmp_path):
    """The student's process reports which arguments a function modified and what its result
    aliases; patching the reporting helpers (the harness module is ``__main__``), numpy's
    ``shares_memory`` or the encoders must not turn those mistakes into full marks."""
    patch = '''
import __main__, base64, json, numpy
__main__.aliased_indices = lambda *a, **k: []
_orig_encode = __main__.encode
_snap = {}
def fake_encode(x, depth=0):   # sends back copies taken before the call: "nothing modified"
    return _orig_encode(_snap.get(id(x), x), depth)
__main__.encode = fake_encode
numpy.shares_memory = lambda *a, **k: False
numpy.may_share_memory = lambda *a, **k: False
'''
    inplace = '''def gd_step(params, grads, lr):
    for i in range(len(params)):
        params[i] = params[i] - lr * grads[i] if not isinstance(params[i], np.ndarray) else params[i]
        if isinstance(params[i], np.ndarray):
            params[i] -= lr * grads[i]
    return [p.copy() if isinstance(p, np.ndarray) else p for p in params]'''
    r = grade(tmp_path, submission(before=[patch], replace={"gd_step": inplace}))
    assert scores(r)["gd_step"] < points("gd_step") and "in place" in feedback(r, "gd_step"), feedback(r, "gd_step")
    alias = '''
def sgd_momentum_step(param, grad, momentum_buffer, *, lr, momentum, dampening):
    if momentum_buffer is None:
        momentum_buffer = grad
    else:
        momentum_buffer *= momentum
        momentum_buffer += (1 - dampening) * grad
    param -= lr * momentum_buffer
    return momentum_buffer'''
    r = grade(tmp_path, submission(chapter="03_optimizers", before=[patch],
                                   replace={"sgd_momentum_step": alias}))
    assert scores(r)["sgd_momentum_step"] < points("sgd_momentum_step", "03_optimizers")
    assert "gradient array itself" in feedback(r, "sgd_momentum_step"), feedback(r, "sgd_momentum_step")
