"""Compatibility with nbgrader: real ``nbgrader generate_assignment`` on chapter 1's source
produces the same student cells as ``make exercises`` (our ``release``).

nbgrader is a test dependency (the ``test`` extra); this test must run, never skip.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from course_lib.grade.release import IMPORT_NOTE, student_notebook, without_note

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "01_gradient_descent"


def test_nbgrader_generate_assignment_gives_our_student_cells(tmp_path):
    source = tmp_path / "source" / "ch01"
    source.mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / f"{CHAPTER}.ipynb", source)
    env = dict(os.environ)
    # nbgrader runs the `alembic` script of its environment to set up its database
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", "ch01", "--force",
         f"--CourseDirectory.root={tmp_path}",
         f"--CourseDirectory.db_url=sqlite:///{tmp_path / 'gradebook.db'}"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, "nbgrader failed (is it installed? pip install -e '.[test]')\n" \
        + proc.stdout[-2000:] + proc.stderr[-3000:]
    theirs = nbformat.read(tmp_path / "release" / "ch01" / f"{CHAPTER}.ipynb", as_version=4)
    ours = student_notebook(nbformat.read(ROOT / "solutions" / f"{CHAPTER}.ipynb", as_version=4))
    committed = nbformat.read(ROOT / "exercises" / f"{CHAPTER}.ipynb", as_version=4)
    # ours differ only by the generated note on where imports go (in the setup cell)
    assert sum(c.source.startswith(IMPORT_NOTE) for c in ours.cells) == 1
    assert [(c.cell_type, c.source) for c in theirs.cells] == \
        [(c.cell_type, without_note(c.source)) for c in ours.cells] == \
        [(c.cell_type, without_note(c.source)) for c in committed.cells]
    for t, o in zip(theirs.cells, ours.cells):
        if t.cell_type == "code":
            assert t.outputs == o.outputs == [] and t.execution_count is None
        tm, om = t.metadata.get("nbgrader", {}), o.metadata.get("nbgrader", {})
        for key in ("grade", "grade_id", "locked", "solution", "points"):
            assert tm.get(key) == om.get(key), (key, t.source[:60])
    # nbgrader really did replace something: the comparison cannot pass vacuously
    assert sum("raise NotImplementedError()" in c.source for c in theirs.cells) >= 4
