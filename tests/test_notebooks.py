"""Every stored notebook (lectures and solutions) follows the course's conventions.

Strict nbval (run by ``make test``) checks that stored outputs equal a fresh run; these
checks catch what nbval cannot: a notebook stored out of order, warnings on stderr, an
untagged timing cell, a solution that imports the reference it asks students to write.
"""

import ast
from pathlib import Path

import nbformat
import pytest

from course_lib.grade.registry import CHAPTER_MODULES, chapter_questions

ROOT = Path(__file__).resolve().parents[1]
STORED = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
# calls whose printed output depends on the machine or the moment
RUN_DEPENDENT = ("timeit(", "benchmark_optimizers(", "machine_summary(")


def code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_there_are_notebooks_to_check():
    assert len(STORED) >= 6 and len(SOLUTIONS) >= 3


@pytest.mark.parametrize("path", STORED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_executed_in_order_without_errors_or_stderr(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec["name"] == "python3"
    cells = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"re-run top to bottom: make execute NB={path.name}"
    assert any(c.outputs for c in cells), "stored without outputs: nbval would have nothing to compare"
    for cell in cells:
        for out in cell.outputs:
            assert out.output_type != "error", cell.source[:80]
            assert not (out.output_type == "stream" and out.name == "stderr"), cell.source[:80]


@pytest.mark.parametrize("path", STORED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_first_code_cell_sets_style_and_seed(path):
    first = code_cells(path)[0].source
    assert "use_course_style()" in first and "seed_everything(0)" in first


@pytest.mark.parametrize("path", STORED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_run_dependent_cells_are_tagged_nbval_ignore_output(path):
    for cell in code_cells(path):
        src = cell.source
        prints_exact = any("print(" in line and ":.1e}" in line for line in src.split("\n"))
        reads_seconds = '["seconds"]' in src and "perf_counter" not in src  # reads timings, not records
        if prints_exact or reads_seconds or any(k in src for k in RUN_DEPENDENT):
            assert "nbval-ignore-output" in cell.metadata.get("tags", []), src[:80]


def imported_modules(path) -> set:
    names = set()
    for cell in code_cells(path):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_never_import_what_their_questions_ask_for(path):
    # In graded mode these modules are stubs and torch is absent: importing one zeroes questions.
    assert path.stem in CHAPTER_MODULES, f"{path.name} has no questions registered in course_lib.grade"
    forbidden = {"torch"} | {m for q in chapter_questions(path.stem) for m in q.reference_modules}
    imported = imported_modules(path)
    assert "course_lib.grade.check" in imported  # the parse found the setup cell's imports
    bad = sorted(m for m in imported if any(m == f or m.startswith(f + ".") for f in forbidden))
    assert not bad, f"{path.name} imports reference modules: {bad}"
