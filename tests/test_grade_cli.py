"""``python -m course_lib.grade``: the report, ``--json``, exit status, and ``--batch``
(one CSV row per student, atomic writes, resume, a broken submission never stops it)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adversarial import FUNCTIONS, POINTS, TOTAL, submission, write
from course_lib.grade.batch import grade_batch, read_csv, render_csv
from course_lib.grade.grader import grade_notebook
from course_lib.grade.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
WRONG_MSE = "def mse_gradient(X, y, w, b):\n    return 0.0, np.zeros_like(w), 0.0"
FAST = ["--timeout", "3", "--call-timeout", "2", "--seed", "3"]


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "course_lib.grade", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_single_submission_report_and_json(tmp_path):
    sub = write(submission(replace={"mse_gradient": WRONG_MSE}), tmp_path / "alice.ipynb")
    out = tmp_path / "out" / "alice.json"
    proc = run(sub, "--json", out, *FAST)
    assert proc.returncode == 0, proc.stderr
    assert f"chapter 01_gradient_descent: {TOTAL - POINTS['mse_gradient']:g} / {TOTAL:g} points" in proc.stdout
    assert "01.mse_gradient" in proc.stdout and "0/5 cases passed" in proc.stdout
    report = json.loads(out.read_text())
    assert report["chapter"] == "01_gradient_descent"
    assert (report["score"], report["max_score"]) == (TOTAL - POINTS["mse_gradient"], TOTAL)
    assert [q["id"] for q in report["questions"]] == [f"01.{f}" for f in FUNCTIONS]
    for q in report["questions"]:
        assert {"id", "score", "max_score", "feedback"} <= set(q)
    assert report["seed"] == 3


def test_exit_status_is_zero_for_a_zero_score_and_for_a_broken_notebook(tmp_path):
    bad = tmp_path / "bob_01_gradient_descent.ipynb"
    bad.write_text("not a notebook")
    proc = run(bad, *FAST)
    assert proc.returncode == 0 and "could not read the notebook" in proc.stdout


@pytest.mark.parametrize("args,message", [
    ([], "either SUBMISSION.ipynb or --batch"),
    (["missing.ipynb"], "is not a file"),
    (["x.ipynb", "--timeout", "0"], "positive"),
    (["--batch", "."], "--batch needs --csv"),
    (["x.ipynb", "--csv", "g.csv"], "go with --batch"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    (tmp_path / "x.ipynb").write_text("{}")
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr


def test_same_seed_same_report(tmp_path):
    sub = write(submission(replace={"mse_gradient": WRONG_MSE}), tmp_path / "s.ipynb")
    kw = dict(limits=Limits(timeout=3, call_timeout=2), seed=11)
    a, b = grade_notebook(sub, **kw), grade_notebook(sub, **kw)
    assert a["questions"] == b["questions"]


def test_batch_grades_a_class_resumes_and_survives_broken_submissions(tmp_path):
    subs = tmp_path / "submissions"
    subs.mkdir()
    write(submission(), subs / "alice.ipynb")
    write(submission(replace={"mse_gradient": WRONG_MSE}), subs / "bob.ipynb")
    write(submission(before=["import os; os._exit(1)"],
                     replace={"gd_step": "def gd_step(params, grads, lr):\n    while True:\n        pass"}),
          subs / "carol.ipynb")
    (subs / "dave.ipynb").write_text("{ broken")
    grades, jdir = tmp_path / "grades.csv", tmp_path / "reports"
    proc = run("--batch", subs, "--csv", grades, "--json-dir", jdir, "--chapter",
               "01_gradient_descent", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "4 graded, 0 already graded, 0 grader errors, of 4" in proc.stdout
    rows = {r["student"]: r for r in csv.DictReader(open(grades))}
    assert set(rows) == {"alice", "bob", "carol", "dave"}
    assert float(rows["alice"]["score"]) == TOTAL
    assert float(rows["bob"]["score"]) == TOTAL - POINTS["mse_gradient"]
    assert float(rows["bob"]["01.mse_gradient"]) == 0 and float(rows["bob"]["01.gd_step"]) == POINTS["gd_step"]
    assert float(rows["carol"]["01.gd_step"]) == 0
    assert float(rows["carol"]["01.mse_gradient"]) == POINTS["mse_gradient"]
    assert float(rows["dave"]["score"]) == 0 and rows["dave"]["status"] == "graded"
    assert sorted(p.name for p in jdir.iterdir()) == [f"{s}.json" for s in
                                                      ("alice", "bob", "carol", "dave")]
    assert not list(tmp_path.glob(".grades.csv.*")), "temporary files left behind"

    # a second run resumes: nothing is graded again ...
    proc = run("--batch", subs, "--csv", grades, *FAST)
    assert "0 graded, 4 already graded" in proc.stdout, proc.stdout + proc.stderr
    # ... unless a submission changed
    write(submission(), subs / "bob.ipynb")
    proc = run("--batch", subs, "--csv", grades, *FAST)
    assert "1 graded, 3 already graded" in proc.stdout
    assert float(read_csv(grades)["bob"]["score"]) == TOTAL


def test_batch_records_grader_errors_and_retries_them(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("a", "b", "c"):
        (subs / f"{name}.ipynb").write_text("{}")
    calls = []

    def flaky(path):
        calls.append(path.stem)
        if path.stem == "b" and calls.count("b") == 1:
            raise RuntimeError("grader bug")
        return {"chapter": "01_gradient_descent", "score": 1.0, "max_score": 8.0, "questions": [],
                "seed": 0}

    grades = tmp_path / "g.csv"
    counts = grade_batch(subs, grades, grade=flaky, log=open("/dev/null", "w"))
    assert counts == {"graded": 2, "skipped": 0, "errors": 1, "total": 3}
    assert read_csv(grades)["b"]["status"].startswith("error: RuntimeError")
    counts = grade_batch(subs, grades, grade=flaky, log=open("/dev/null", "w"))
    assert counts == {"graded": 1, "skipped": 2, "errors": 0, "total": 3}
    assert calls == ["a", "b", "c", "b"]


def test_csv_has_one_column_per_question():
    rows = {"x": {"student": "x", "chapter": "01_gradient_descent", "01.gd_step": 2.0, "score": 2}}
    header = render_csv(rows).splitlines()[0].split(",")
    assert header[:6] == ["student", "file", "sha256", "chapter", "score", "max_score"]
    assert header[6:10] == ["01.mse_gradient", "01.gd_step", "01.sgd_epoch",
                            "01.softmax_cross_entropy"]
    assert header[-2:] == ["status", "seed"]
