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


def test_exit_status_is_zero_for_a_zero_score_and_one_for_a_broken_notebook(tmp_path):
    stub = "def {}(*args, **kwargs):\n    raise NotImplementedError()"
    zero = write(submission(replace={f: stub.format(f) for f in FUNCTIONS}), tmp_path / "zero.ipynb")
    proc = run(zero, *FAST)
    assert proc.returncode == 0 and f"0 / {TOTAL:g} points" in proc.stdout, proc.stdout + proc.stderr
    bad = tmp_path / "bob_01_gradient_descent.ipynb"
    bad.write_text("not a notebook")
    proc = run(bad, *FAST)
    assert proc.returncode == 1 and "NOT GRADED" in proc.stdout and "could not read the notebook" in proc.stdout


@pytest.mark.parametrize("args,message", [
    ([], "either SUBMISSION.ipynb or --batch"),
    (["missing.ipynb"], "is not a file"),
    (["x.ipynb", "--timeout", "0"], "positive"),
    (["--batch", "."], "--batch needs --csv"),
    (["--batch", ".", "--csv", "g.csv"], "--batch needs --chapter"),
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
    assert proc.returncode == 1, proc.stderr  # dave's file could not be read: a grader error
    assert "3 graded, 0 already graded, 1 grader errors, of 4" in proc.stdout
    rows = {r["student"]: r for r in csv.DictReader(open(grades))}
    assert set(rows) == {"alice", "bob", "carol", "dave"}
    assert float(rows["alice"]["score"]) == TOTAL
    assert float(rows["bob"]["score"]) == TOTAL - POINTS["mse_gradient"]
    assert float(rows["bob"]["01.mse_gradient"]) == 0 and float(rows["bob"]["01.gd_step"]) == POINTS["gd_step"]
    assert float(rows["carol"]["01.gd_step"]) == 0
    assert float(rows["carol"]["01.mse_gradient"]) == POINTS["mse_gradient"]
    assert rows["dave"]["status"].startswith("error: could not read the notebook")
    assert float(rows["dave"]["max_score"]) == TOTAL  # the assignment's, even unread
    assert len({r["seed"] for r in rows.values()}) == 1  # one seed for the whole class
    assert sorted(p.name for p in jdir.iterdir()) == [f"{s}.json" for s in
                                                      ("alice", "bob", "carol", "dave")]
    assert not list(tmp_path.glob(".grades.csv.*")), "temporary files left behind"

    # a second run resumes: nothing is graded again but the error, retried ...
    ch = ["--chapter", "01_gradient_descent"]
    proc = run("--batch", subs, "--csv", grades, *ch, *FAST)
    assert "0 graded, 3 already graded, 1 grader errors" in proc.stdout, proc.stdout + proc.stderr
    # ... unless a submission changed
    write(submission(), subs / "bob.ipynb")
    write(submission(), subs / "dave.ipynb")
    proc = run("--batch", subs, "--csv", grades, *ch, *FAST)
    assert "2 graded, 2 already graded, 0 grader errors" in proc.stdout and proc.returncode == 0
    assert float(read_csv(grades)["bob"]["score"]) == TOTAL
    assert read_csv(grades)["dave"]["status"] == "graded"


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
    assert counts == {"graded": 2, "skipped": 0, "errors": 1, "total": 3, "unsandboxed": 0}
    assert read_csv(grades)["b"]["status"].startswith("error: RuntimeError")
    counts = grade_batch(subs, grades, grade=flaky, log=open("/dev/null", "w"))
    assert counts == {"graded": 1, "skipped": 2, "errors": 0, "total": 3, "unsandboxed": 0}
    assert calls == ["a", "b", "c", "b"]


def test_csv_has_one_column_per_question():
    rows = {"x": {"student": "x", "chapter": "01_gradient_descent", "01.gd_step": 2.0, "score": 2}}
    header = render_csv(rows).splitlines()[0].split(",")
    assert header[:6] == ["student", "file", "sha256", "chapter", "score", "max_score"]
    assert header[6:10] == ["01.mse_gradient", "01.gd_step", "01.sgd_epoch",
                            "01.softmax_cross_entropy"]
    assert header[-3:] == ["status", "seed", "flags"]


# ---------------------------------------------------------------- issue 8, items 5-7, 14, 15

def test_a_batch_uses_one_seed_per_assignment_and_keeps_it_on_resume(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("ann", "ben"):
        write(submission(replace={"mse_gradient": WRONG_MSE}), subs / f"{name}.ipynb")
    grades = tmp_path / "g.csv"
    ch = ["--chapter", "01_gradient_descent", "--timeout", "5", "--call-timeout", "3"]
    proc = run("--batch", subs, "--csv", grades, *ch)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = read_csv(grades)
    assert rows["ann"]["seed"] == rows["ben"]["seed"] != ""
    write(submission(), subs / "cat.ipynb")
    proc = run("--batch", subs, "--csv", grades, *ch)
    assert read_csv(grades)["cat"]["seed"] == rows["ann"]["seed"], proc.stdout


def _fake_report(chapter="01_gradient_descent"):
    return {"status": "graded", "chapter": chapter, "score": 1.0, "max_score": 8.0, "questions": [],
            "seed": 5, "flags": []}


def test_unreadable_submissions_are_errors_and_retried_with_the_assignments_max_score(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "empty.ipynb").write_text("")
    full_nb = nbformat_text = (ROOT / "exercises" / "01_gradient_descent.ipynb").read_text()
    (subs / "truncated.ipynb").write_text(nbformat_text[: len(full_nb) // 2])
    stripped = submission(metadata=False)
    write(stripped, subs / "stripped.ipynb")
    limits = Limits(timeout=5, call_timeout=3)
    for name in ("empty", "truncated"):
        r = grade_notebook(subs / f"{name}.ipynb", chapter="01_gradient_descent", limits=limits, seed=1)
        assert r["status"] == "error" and r["max_score"] == TOTAL and r["score"] == 0, r
    # metadata stripped by an editor: the instructor's --chapter decides
    r = grade_notebook(subs / "stripped.ipynb", chapter="01_gradient_descent", limits=limits, seed=1)
    assert r["status"] == "graded" and r["score"] == TOTAL
    r = grade_notebook(subs / "stripped.ipynb", limits=limits, seed=1)
    assert r["status"] == "error" and "pass --chapter" in r["error"]


def test_a_kernel_without_the_course_packages_is_a_grader_error(tmp_path, monkeypatch):
    from course_lib.grade import sandbox as sb
    monkeypatch.setattr(sb, "site_packages", lambda: [])  # numpy not importable in the kernel
    r = grade_notebook(write(submission(), tmp_path / "a.ipynb"), limits=Limits(timeout=5), seed=1)
    assert r["status"] == "error" and "could not run the notebook" in r["error"], r
    assert r["max_score"] == TOTAL


def test_resume_regrades_rows_of_another_chapter(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "a.ipynb").write_text("{}")
    grades = tmp_path / "g.csv"
    calls = []

    def fake(path):
        calls.append(path.name)
        return _fake_report()
    grade_batch(subs, grades, grade=fake, chapter="01_gradient_descent", log=open("/dev/null", "w"))
    grade_batch(subs, grades, grade=fake, chapter="01_gradient_descent", log=open("/dev/null", "w"))
    grade_batch(subs, grades, grade=lambda p: _fake_report("02_neural_network") if calls.append(p.name)
                is None else None, chapter="02_neural_network", log=open("/dev/null", "w"))
    assert calls == ["a.ipynb", "a.ipynb"] and read_csv(grades)["a"]["chapter"] == "02_neural_network"


def test_the_assignment_decides_the_chapter_not_the_notebook(tmp_path):
    from adversarial import submission as sub
    ch2 = write(sub(chapter="02_neural_network"), tmp_path / "mallory.ipynb")
    r = grade_notebook(ch2, chapter="01_gradient_descent", limits=Limits(timeout=5, call_timeout=3), seed=1)
    assert r["chapter"] == "01_gradient_descent" and r["max_score"] == TOTAL
    assert r["score"] < TOTAL  # its chapter-2 functions answer nothing of chapter 1
    assert r["flags"] == ["chapter mismatch: the notebook says 02_neural_network"]
    assert any("graded as 01_gradient_descent" in n for n in r["notes"])


def test_odd_file_names_never_stop_a_batch(tmp_path):
    import os
    subs = tmp_path / "subs"
    subs.mkdir()
    bad = os.path.join(os.fsencode(subs), b"caf\xe9-\xff.ipynb")      # not UTF-8
    with open(bad, "wb") as f:
        f.write(b"{}")
    (subs / ("x" * 240 + ".ipynb")).write_text("{}")                   # near NAME_MAX
    (subs / "\x1b[31mred.ipynb").write_text("{}")                       # an escape sequence
    (subs / "boom.ipynb").write_text("{}")
    (subs / "ok.ipynb").write_text("{}")

    def fake(path):
        if path.name == "boom.ipynb":
            raise OSError("a broken disk sector")
        return _fake_report()
    grades, jdir = tmp_path / "g.csv", tmp_path / "json"
    counts = grade_batch(subs, grades, json_dir=jdir, grade=fake, chapter="01_gradient_descent",
                         log=open("/dev/null", "w"))
    assert counts["graded"] == 4 and counts["errors"] == 1
    rows = read_csv(grades)
    assert len(rows) == 5 and rows["boom"]["status"].startswith("error: OSError")
    assert all(len(s) <= 80 and s.isprintable() and "\x1b" not in s for s in rows)
    assert len(list(jdir.iterdir())) == 4
    assert all(len(p.name) <= 90 for p in jdir.iterdir())
    assert "\x1b" not in grades.read_text(encoding="utf-8")


def test_a_fifo_or_a_directory_named_ipynb_never_blocks_a_batch(tmp_path):
    """Attack (found by the attack pass): a FIFO named ``x.ipynb`` in the class directory made
    the batch block forever on its SHA-256; now it is an error row and the others are graded."""
    import os
    import threading
    subs = tmp_path / "subs"
    subs.mkdir()
    os.mkfifo(subs / "fifo.ipynb")
    (subs / "dir.ipynb").mkdir()
    (subs / "ok.ipynb").write_text("{}")
    grades, out = tmp_path / "g.csv", {}
    worker = threading.Thread(target=lambda: out.update(grade_batch(
        subs, grades, grade=lambda p: _fake_report(), chapter="01_gradient_descent",
        log=open("/dev/null", "w"))), daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():  # unblock the thread (open the FIFO's other end) before failing
        with open(subs / "fifo.ipynb", "wb"):
            pass
        pytest.fail("the batch blocked on a FIFO")
    assert out["graded"] == 1 and out["errors"] == 2
    rows = read_csv(grades)
    assert "not a regular file" in rows["fifo"]["status"] and rows["dir"]["status"].startswith("error")
    assert rows["fifo"]["max_score"] == "8.0"  # the assignment's, even for an error


def test_control_characters_from_the_student_never_reach_the_terminal(tmp_path):
    forged = ("\\x1b[2J\\x1b[H\\rstudent.ipynb — chapter 01_gradient_descent: 8 / 8 points"
              "\\x1b]0;pwned\\x07\\u202e")
    cell = (f"class Bad(Exception):\n    pass\nBad.__name__ = {forged!r}\n"
            f"raise Bad({forged!r})")
    fn = f"def mse_gradient(X, y, w, b):\n    raise ValueError({forged!r})"
    sub = write(submission(before=[cell], replace={"mse_gradient": fn}), tmp_path / "eve.ipynb")
    proc = run(sub, *FAST)
    out = proc.stdout
    assert proc.returncode == 0 and f"{TOTAL - POINTS['mse_gradient']:g} / {TOTAL:g} points" in out, out
    assert not any(c in out for c in ("\x1b", "\r", "\x07", "\u202e")), repr(out)
