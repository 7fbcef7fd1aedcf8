"""Generate student notebooks from the single-source solution notebooks.

``python -m course_lib.grade.release solutions exercises`` (``make exercises``) writes
``exercises/NAME.ipynb`` for every ``solutions/NAME.ipynb``:

- code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes nbgrader's stub
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (indentation kept);
- lines between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are removed;
- outputs and execution counts are cleared;
- locked cells become read-only in JupyterLab (``editable: false``, ``deletable: false``, as
  nbgrader's ``LockCells`` does): the grader restores them anyway, so an edit there could
  only be lost; the first locked cell that imports something says where imports go.

Cell metadata stays nbgrader's (schema 3), so instructors can also use
``nbgrader generate_assignment`` on the same sources.
``--check`` exits 1 (listing the files) if ``exercises/`` is out of date.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
MARKDOWN_STUB = ["YOUR ANSWER HERE"]
# prepended to the first locked code cell with an import statement (the setup cell)
IMPORT_NOTE = ("# Read-only (restored before grading). Put imports you need at the top of your own "
               "solution cells; importing course_lib modules that hold this chapter's answers "
               "makes those questions score 0.")


def _strip_region(lines, begin, end, stub, where):
    out, inside = [], False
    for number, line in enumerate(lines, 1):
        marker = line.strip()
        if marker == begin:
            if inside:
                raise ValueError(f"{where}: nested {begin!r} at line {number}")
            inside = True
            indent = line[:len(line) - len(line.lstrip())]
            out.extend(indent + s for s in stub)
        elif marker == end:
            if not inside:
                raise ValueError(f"{where}: {end!r} without {begin!r} at line {number}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {begin!r} is never closed")
    return out


def student_cell(cell, where: str = "cell"):
    """The student version of one cell (a new cell; the input is not modified)."""
    cell = copy.deepcopy(cell)
    lines = cell.source.split("\n")
    stub = CODE_STUB if cell.cell_type == "code" else MARKDOWN_STUB
    lines = _strip_region(lines, BEGIN_SOLUTION, END_SOLUTION, stub, where)
    lines = _strip_region(lines, BEGIN_HIDDEN, END_HIDDEN, [], where)
    cell.source = "\n".join(lines)
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    return cell


def _locked(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("locked")) and not meta.get("solution")


def without_note(source: str) -> str:
    """``source`` without the generated :data:`IMPORT_NOTE` line."""
    return source[len(IMPORT_NOTE) + 1:] if source.startswith(IMPORT_NOTE + "\n") else source


def student_notebook(nb):
    """The student version of a solution notebook (a new notebook)."""
    out = copy.deepcopy(nb)
    out.cells = [student_cell(c, f"cell {i}") for i, c in enumerate(nb.cells)]
    noted = False
    for cell in out.cells:
        if not _locked(cell):
            continue
        cell.metadata["editable"] = False
        cell.metadata["deletable"] = False
        if (not noted and cell.cell_type == "code" and not cell.metadata["nbgrader"].get("grade")
                and any(line.startswith(("import ", "from ")) for line in cell.source.split("\n"))):
            cell.source = IMPORT_NOTE + "\n" + without_note(cell.source)
            noted = True
    return out


def render(nb) -> str:
    """Serialise exactly as stored on disk (so the sync check compares text)."""
    return nbformat.writes(nb) + "\n"


def release(src_dir: Path, dst_dir: Path, check: bool = False) -> list[Path]:
    """Write (or with ``check`` only compare) every student notebook; return stale paths."""
    stale = []
    sources = sorted(Path(src_dir).glob("*.ipynb"))
    if not sources:
        raise ValueError(f"src_dir {str(src_dir)!r} holds no .ipynb files")
    for src in sources:
        dst = Path(dst_dir) / src.name
        text = render(student_notebook(nbformat.read(src, as_version=4)))
        if not dst.exists() or dst.read_text() != text:
            stale.append(dst)
            if not check:
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_text(text)
    orphans = sorted(set(p.name for p in Path(dst_dir).glob("*.ipynb")) - set(s.name for s in sources))
    if orphans:
        raise ValueError(f"{dst_dir} holds exercises without a solution source: {orphans}")
    return stale


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", nargs="?", default="solutions")
    ap.add_argument("dst", nargs="?", default="exercises")
    ap.add_argument("--check", action="store_true", help="only report stale exercises")
    args = ap.parse_args(argv)
    stale = release(Path(args.src), Path(args.dst), check=args.check)
    for p in stale:
        print(("stale: " if args.check else "wrote: ") + str(p))
    if args.check and stale:
        print("exercises/ is out of date with solutions/: run `make exercises`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
