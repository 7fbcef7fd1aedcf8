"""Issue 8, items 1-4: correct work written differently from the solutions never loses a
point in the sandboxed grader, and importing ``course_lib`` costs only the questions it
answers (with a warning the moment it happens, in the self-check)."""

import json
import uuid
from pathlib import Path

import nbformat
import pytest

from adversarial import CORRECT, CORRECT_BY_CHAPTER, FUNCTIONS, feedback, points, scores, submission, write
from course_lib.grade.grader import grade_notebook
from course_lib.grade.release import IMPORT_NOTE, student_notebook
from course_lib.grade.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(timeout=60.0, call_timeout=20.0, memory_mb=1024, grace=1.0)
CH3 = "03_optimizers"


def grade(tmp_path, nb, **kw):
    path = write(nb, tmp_path / f"sub_{uuid.uuid4().hex[:8]}.ipynb")
    return grade_notebook(path, limits=kw.pop("limits", LIMITS), seed=kw.pop("seed", 99), **kw)


def full(report):
    assert report["score"] == report["max_score"] > 0, json.dumps(report, indent=1)


# ---------------------------------------------------------------- item 1: keyword calls

def test_keyword_calls_to_provided_functions_score_full(tmp_path):
    sgd = CORRECT["sgd_epoch"].replace("params = gd_step(params, grads, lr)",
                                       "params = gd_step(params=params, grads=grads, lr=lr)")
    sgd = sgd.replace("grad_fn(params, X[idx], y[idx])", "grad_fn(params, X=X[idx], y=y[idx])")
    assert sgd != CORRECT["sgd_epoch"]
    full(grade(tmp_path, submission(replace={"sgd_epoch": sgd})))


def test_a_wrong_keyword_names_the_real_function_not_an_internal_proxy(tmp_path):
    sgd = CORRECT["sgd_epoch"].replace("gd_step(params, grads, lr)", "gd_step(params, grads, rate=lr)")
    r = grade(tmp_path, submission(replace={"sgd_epoch": sgd}))
    fb = feedback(r, "sgd_epoch")
    assert scores(r)["sgd_epoch"] == 0 and "TypeError" in fb and "rate" in fb
    assert "proxy" not in fb and "<locals>" not in fb, fb


# ---------------------------------------------------------------- item 2: locked cells

def test_released_locked_cells_are_read_only_and_say_where_imports_go():
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        nb = student_notebook(nbformat.read(path, as_version=4))
        locked = [c for c in nb.cells if c.metadata["nbgrader"].get("locked")
                  and not c.metadata["nbgrader"].get("solution")]
        assert locked and all(c.metadata.get("editable") is False and c.metadata.get("deletable") is False
                              for c in locked), path.name
        notes = [c for c in nb.cells if c.source.startswith(IMPORT_NOTE)]
        assert len(notes) == 1 and notes[0].metadata["nbgrader"]["grade_id"] == "setup", path.name
        for c in nb.cells:  # the student's cells stay editable
            if c.metadata["nbgrader"].get("solution"):
                assert c.metadata.get("editable", True) and c.metadata.get("deletable", True)


def test_imports_added_to_the_locked_setup_cell_are_kept_and_reported(tmp_path):
    nb = nbformat.read(ROOT / "solutions" / "01_gradient_descent.ipynb", as_version=4)
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    setup.source = "import math\nfrom math import fsum as total\n" + setup.source
    sol = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "mse_gradient")
    sol.source = CORRECT["mse_gradient"].replace("float(r @ r) / n", "math.fsum(r * r) / n").replace(
        "2.0 * float(r.sum()) / n", "2.0 * total(r) / n")
    r = grade(tmp_path, nb)
    full(r)
    assert any("is locked (setup) and was edited" in n and "import math" in n for n in r["notes"]), r["notes"]


def test_other_edits_of_a_locked_cell_are_reported(tmp_path):
    nb = nbformat.read(ROOT / "solutions" / "01_gradient_descent.ipynb", as_version=4)
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    setup.source += "\nSECRET = 1\n"
    r = grade(tmp_path, nb)
    full(r)
    assert any("was edited: the original was run instead" in n for n in r["notes"]), r["notes"]


# ---------------------------------------------------------------- item 3: numba

def test_njit_cache_true_scores_full(tmp_path):
    kernel = CORRECT["gd_step"]
    mse = '''\
import numba
from numba import njit

@njit(cache=True)
def _residual(X, y, w, b):
    return X @ w + b - y

def mse_gradient(X, y, w, b):
    n = X.shape[0]
    r = _residual(X, y, w, float(b))
    return float(r @ r) / n, (2.0 / n) * (X.T @ r), 2.0 * float(r.sum()) / n'''
    r = grade(tmp_path, submission(replace={"mse_gradient": mse, "gd_step": kernel}))
    full(r)


def test_a_function_whose_cell_failed_is_reported_with_the_cell(tmp_path):
    broken = "raise RuntimeError('boom')\n" + CORRECT["gd_step"]
    r = grade(tmp_path, submission(replace={"gd_step": broken}))
    fb = feedback(r, "gd_step")
    assert "does not define a function gd_step" in fb and "which defines it, raised RuntimeError: boom" in fb


# ---------------------------------------------------------------- item 4: importing course_lib

def test_importing_the_schedulers_costs_only_the_schedule_question(tmp_path):
    scratch = "from course_lib.optim.schedulers import CosineAnnealingLR\nimport course_lib.optim.schedulers"
    r = grade(tmp_path, submission(chapter=CH3, after=[scratch]))
    got = scores(r)
    assert got["cosine_warmup_lr"] == 0.0 and "imports course_lib.optim.schedulers" in feedback(r, "cosine_warmup_lr")
    assert all(got[f] == points(f, CH3) for f in ("sgd_momentum_step", "rmsprop_step", "adam_step")), got


def test_importing_the_functional_core_costs_the_steps_not_the_schedule(tmp_path):
    scratch = "from course_lib.optim.functional import adam_step as reference_adam"
    r = grade(tmp_path, submission(chapter=CH3, after=[scratch]))
    got = scores(r)
    assert got["cosine_warmup_lr"] == points("cosine_warmup_lr", CH3)
    assert all(got[f] == 0.0 for f in ("sgd_momentum_step", "rmsprop_step", "adam_step")), got


def test_self_check_warns_the_moment_a_cell_imports_an_answer(tmp_path):
    from nbclient import NotebookClient
    good = CORRECT_BY_CHAPTER[CH3]["cosine_warmup_lr"]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy as np\nfrom course_lib.grade import check"),
        nbformat.v4.new_code_cell(good + '\ncheck("03.cosine_warmup_lr", cosine_warmup_lr)'),
        nbformat.v4.new_code_cell("from course_lib.optim.schedulers import CosineAnnealingLR"),
        nbformat.v4.new_code_cell('check("03.cosine_warmup_lr", cosine_warmup_lr)'),
        nbformat.v4.new_code_cell(CORRECT_BY_CHAPTER[CH3]["rmsprop_step"]
                                  + '\ncheck("03.rmsprop_step", rmsprop_step)'),
    ])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    def text(i):
        return "".join(o.get("text", "") for o in nb.cells[i].outputs)
    assert "warning" not in text(1)
    assert "warning: you import course_lib.optim.schedulers" in text(2) and "03.cosine_warmup_lr" in text(2)
    assert "adam" not in text(2)
    assert "warning: you import course_lib.optim.schedulers" in text(3)  # and again at the check
    assert "warning" not in text(4)  # rmsprop_step is not answered by the schedulers
