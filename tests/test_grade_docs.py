"""The grading guides state facts the code must keep true: every question and CLI option is
documented, and the student guide's list of unavailable modules is the grader's."""

import re
from pathlib import Path

import pytest

from course_lib.grade.__main__ import parser
from course_lib.grade.grader import GRADE_PACKAGE, forbidden_for, module_graph
from course_lib.grade.registry import CHAPTER_MODULES, chapter_questions

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTOR = (ROOT / "docs" / "instructor-guide.md").read_text()
STUDENT = (ROOT / "docs" / "student-guide.md").read_text()
ALWAYS = ["course_lib.data", "course_lib.plots", "course_lib.utils", "course_lib.validation",
          "course_lib.widgets"]


def test_every_question_is_in_the_instructor_guide_with_its_signature():
    for ch in CHAPTER_MODULES:
        for q in chapter_questions(ch):
            row = next((l for l in INSTRUCTOR.splitlines() if l.startswith(f"| `{q.id}` |")), None)
            assert row is not None, f"{q.id} missing from the question table"
            assert f"{q.func}(" in row or "as `01." in row


def test_every_cli_option_is_documented():
    for action in parser()._actions:
        for opt in action.option_strings:
            if opt not in ("-h", "--help"):
                assert f"`{opt}" in INSTRUCTOR, f"{opt} is not documented"


def guide_row(chapter, forbidden, graph):
    """The student guide's table row for ``chapter``: whole packages as ``pkg.*``, then modules."""
    def members(pkg):
        return {m for m in graph if m == pkg or m.startswith(pkg + ".")}
    pkgs = sorted(p for p in graph if p != "course_lib" and len(members(p)) > 1 and members(p) <= forbidden)
    pkgs = [p for p in pkgs if not any(p.startswith(q + ".") for q in pkgs)]
    covered = set().union(*map(members, pkgs)) if pkgs else set()
    cells = [f"`{p}.*`" for p in pkgs] + [f"`{m}`" for m in sorted(forbidden - covered)]
    return f"  | {chapter} | {', '.join(cells)} |"


@pytest.mark.parametrize("chapter", sorted(CHAPTER_MODULES))
def test_student_guide_lists_exactly_the_unavailable_modules(chapter):
    row = next(l for l in STUDENT.splitlines() if l.strip().startswith(f"| {chapter} |"))
    graph = module_graph()
    listed = set()
    for entry in re.findall(r"`(course_lib[\w.]*(?:\.\*)?)`", row):
        if entry.endswith(".*"):  # a whole package: the package and every module in it
            pkg = entry[:-2]
            listed |= {m for m in graph if m == pkg or m.startswith(pkg + ".")}
        else:
            listed.add(entry)
    forbidden = set().union(*forbidden_for(chapter_questions(chapter), graph).values())
    assert listed == forbidden, f"the guide's row should read:\n{guide_row(chapter, forbidden, graph)}"
    for m in ALWAYS:  # the guide promises these in every chapter
        assert m not in forbidden and f"`{m}`" in STUDENT


@pytest.mark.parametrize("chapter", sorted(CHAPTER_MODULES))
def test_modules_defining_a_questions_function_are_forbidden_for_it(chapter):
    """A module defining ``<func>`` or ``<func>_numba`` & co. must never be importable while
    ``<func>`` is graded (a guard for kernels added later)."""
    graph = module_graph()
    forb = forbidden_for(chapter_questions(chapter), graph)
    for q in chapter_questions(chapter):
        for m in graph:
            if m == GRADE_PACKAGE or m.startswith(GRADE_PACKAGE + "."):
                continue
            path = ROOT / Path(*m.split("."))
            src = (path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).read_text()
            if re.search(rf"^def {q.func}\w*\(", src, re.M):
                assert m in forb[q.id], f"{m} defines {q.func} but is importable while grading {q.id}"
