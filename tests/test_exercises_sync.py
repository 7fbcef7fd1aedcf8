"""exercises/ is generated from solutions/ and must never drift from it."""

from pathlib import Path

import nbformat
import pytest

from course_lib.grade.release import (BEGIN_SOLUTION, CODE_STUB, release, render,
                                      student_cell, student_notebook)

ROOT = Path(__file__).resolve().parents[1]


def test_exercises_are_up_to_date():
    stale = release(ROOT / "solutions", ROOT / "exercises", check=True)
    assert not stale, f"run `make exercises`: stale {[str(p) for p in stale]}"


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.name)
def test_solution_cells_have_nbgrader_metadata(path):
    nb = nbformat.read(path, as_version=4)
    ids = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if BEGIN_SOLUTION in cell.source:
            assert meta and meta["solution"] is True, f"solution cell without nbgrader metadata:\n{cell.source[:80]}"
        if meta:
            assert meta.get("schema_version") == 3
            assert {"grade", "grade_id", "locked", "solution"} <= set(meta)
            if meta["grade"]:
                assert meta.get("points", 0) > 0
            ids.append(meta["grade_id"])
    assert len(ids) == len(set(ids)), "grade_id values must be unique"
    assert nb.metadata.get("course", {}).get("chapter") == path.stem


def test_student_cell_replaces_solution_and_hidden_tests():
    cell = nbformat.v4.new_code_cell(
        "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
        "check(f)\n### BEGIN HIDDEN TESTS\nassert f(1) == 2\n### END HIDDEN TESTS")
    cell.outputs = [nbformat.v4.new_output("stream", text="hi")]
    cell.execution_count = 3
    out = student_cell(cell)
    assert out.source == "def f(x):\n" + "\n".join("    " + s for s in CODE_STUB) + "\ncheck(f)"
    assert out.outputs == [] and out.execution_count is None
    assert cell.execution_count == 3  # the source cell is untouched


@pytest.mark.parametrize("source", [
    "### BEGIN SOLUTION\nx = 1",                      # never closed
    "x = 1\n### END SOLUTION",                        # closed, never opened
    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",  # nested
])
def test_malformed_markers_raise(source):
    with pytest.raises(ValueError, match="SOLUTION"):
        student_cell(nbformat.v4.new_code_cell(source))


def test_render_is_stable():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\n1\n### END SOLUTION")])
    assert render(student_notebook(nb)) == render(student_notebook(nb))
