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


def _names(node) -> set:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    if isinstance(node, ast.ImportFrom):
        return {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return set()


def _catches_import_error(handler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(k, ast.Name) and k.id in ("ImportError", "ModuleNotFoundError") for k in kinds)


def imported_modules(path, *, unguarded_only=False) -> set:
    """Modules the notebook's code cells import; ``unguarded_only``: leave out imports inside
    ``try: ... except ImportError`` (they fail quietly where the module is absent)."""
    names, guarded = set(), set()
    for cell in code_cells(path):
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            names |= _names(node)
            if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
                for stmt in node.body:
                    for inner in ast.walk(stmt):
                        guarded |= _names(inner)
    return names - guarded if unguarded_only else names


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_never_import_what_their_questions_ask_for(path):
    # In graded mode these modules are stubs (importing one zeroes questions) and torch is absent:
    # an unguarded import of torch fails the cell; inside try/except ImportError it is skipped.
    assert path.stem in CHAPTER_MODULES, f"{path.name} has no questions registered in course_lib.grade"
    stubs = {m for q in chapter_questions(path.stem) for m in q.reference_modules}
    imported = imported_modules(path)
    unguarded = imported_modules(path, unguarded_only=True)
    assert "course_lib.grade.check" in imported  # the parse found the setup cell's imports
    under = lambda m, tops: any(m == f or m.startswith(f + ".") for f in tops)
    bad = sorted(m for m in imported if under(m, stubs)) + sorted(m for m in unguarded if under(m, {"torch"}))
    assert not bad, f"{path.name} imports reference modules: {bad}"


def test_a_guarded_torch_import_is_told_apart_from_a_plain_one(tmp_path):
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "try:\n    import torch\nexcept ImportError:\n    torch = None\nimport numpy")])
    path = tmp_path / "g.ipynb"
    nbformat.write(nb, str(path))
    assert imported_modules(path) == {"torch", "numpy"}
    assert imported_modules(path, unguarded_only=True) == {"numpy"}
    nb.cells[0].source = "try:\n    import torch\nexcept KeyError:\n    pass"
    nbformat.write(nb, str(path))
    assert imported_modules(path, unguarded_only=True) == {"torch"}
