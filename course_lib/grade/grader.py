"""Grade one submission in a sandbox: :func:`grade_notebook` returns the report as a dict.

Steps, all driven from this (trusted) process:

1. read the notebook (a broken file still gets a report), identify the chapter
   (``metadata.course.chapter``, else ``--chapter``, else the file name);
2. restore the instructor's locked cells from the release version of the solution
   notebook, like ``nbgrader autograde`` (a student cannot edit a setup cell to cheat);
3. run every code cell in a fresh sandboxed kernel (:mod:`.sandbox`): a cell that fails,
   loops or kills the kernel is reported and skipped, the others still run;
4. for each question, generate fresh test cases (a random seed per run), send only the
   *inputs* to the kernel, get back the outputs as plain data, and compare them here with
   the reference; name the catalogued mistake a wrong answer matches;
5. a question whose reference module the student's code tried to import scores zero.
"""

from __future__ import annotations

import ast
import functools
import re
import secrets
import shutil
import time
from pathlib import Path

import numpy as np

from . import sandbox as sb
from .registry import CHAPTER_MODULES, chapter_questions
from .spec import (Observation, QuestionResult, case_callbacks, grade_question, materialize, observe,
                   snapshot)

PACKAGE_DIR = Path(__file__).resolve().parents[1]          # course_lib/
REPO_SOLUTIONS = PACKAGE_DIR.parent / "solutions"
MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_RESTARTS = 12          # kernels a submission may end before grading gives up
GRADE_PACKAGE = "course_lib.grade"


# ----------------------------------------------------------------------------------
# which course_lib modules a chapter may use


@functools.lru_cache(maxsize=4)
def module_graph(package_dir: Path = PACKAGE_DIR) -> dict:
    """``{module: set of course_lib modules importing it loads}`` from the source (AST).

    Imports anywhere in a file count (also inside functions): conservative on purpose.
    Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``.
    """
    root = package_dir.name
    graph = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        name = ".".join(parts)
        deps = {".".join(parts[:i]) for i in range(1, len(parts))}
        base = parts if is_pkg else parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = base[:len(base) - node.level + 1]
                    prefix = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                mods = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
            else:
                continue
            for m in mods:
                if m == root or m.startswith(root + "."):
                    deps.add(m)
        graph[name] = deps
    known = set(graph)
    return {m: {d for d in deps if d in known and d != m} for m, deps in graph.items()}


def closure(graph: dict, module: str) -> set:
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def forbidden_for(questions, graph: dict) -> dict:
    """``{question id: set of modules}`` from which the question's reference is reachable."""
    out = {}
    for q in questions:
        refs = set(q.reference_modules) | {q.reference.__module__}
        out[q.id] = {m for m in graph if m != GRADE_PACKAGE and not m.startswith(GRADE_PACKAGE + ".")
                     and closure(graph, m) & refs}
    return out


def sanitized_package(graph: dict, forbidden: set, package_dir: Path = PACKAGE_DIR) -> dict:
    """``{relative path: source}`` of the course_lib the kernel sees: allowed modules only,
    and a ``grade`` package whose ``check`` does nothing."""
    files = {}
    root = package_dir.name
    for m in graph:
        if m in forbidden or m == GRADE_PACKAGE or m.startswith(GRADE_PACKAGE + "."):
            continue
        rel = Path(*m.split("."))
        src = package_dir.parent / rel / "__init__.py"
        if not src.exists():
            src = package_dir.parent / rel.with_suffix(".py")
        files[str(src.relative_to(package_dir.parent))] = src.read_text()
    files[f"{root}/grade/__init__.py"] = sb.GRADE_STUB
    return files


# ----------------------------------------------------------------------------------
# the notebook


def _transform_magics(src: str) -> str:
    """IPython syntax -> Python that does nothing for it (graded mode has no shell)."""
    lines = src.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split()[0] if lines[0].strip() != "%%" else ""
        if magic not in ("time", "capture", "timeit"):
            return ""  # a cell magic of another language: nothing to run
        lines = lines[1:]
    out = []
    for line in lines:
        stripped = line.lstrip()
        indent = line[:len(line) - len(stripped)]
        if stripped.startswith(("%", "!")):
            out.append(indent + "pass  # IPython magic skipped in graded mode")
        elif re.match(r"^[A-Za-z_]\w*\s*=\s*[%!]", stripped):
            out.append(indent + stripped.split("=")[0].strip() + " = None")
        else:
            out.append(line)
    return "\n".join(out)


def _release_cells(chapter: str, source_dir: Path | None) -> dict | None:
    """``{grade_id: source}`` of the instructor's locked cells, from the solution notebook."""
    import nbformat

    from .release import student_notebook
    path = (source_dir or REPO_SOLUTIONS) / f"{chapter}.ipynb"
    if not path.exists():
        return None
    nb = student_notebook(nbformat.read(path, as_version=4))
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("locked") and not meta.get("solution"):
            out[meta.get("grade_id")] = cell.source
    return out


def read_submission(path: Path):
    import nbformat
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"the notebook is {size // 2**20} MB, larger than the "
                         f"{MAX_NOTEBOOK_BYTES // 2**20} MB a submission may be")
    nb = nbformat.reads(path.read_text(encoding="utf-8", errors="replace"), as_version=4)
    if not isinstance(nb.get("cells"), list):
        raise ValueError("the file has no list of cells")
    return nb


def identify_chapter(nb, path: Path, chapter: str | None) -> str:
    if chapter is not None:
        if chapter not in CHAPTER_MODULES:
            raise ValueError(f"chapter must be one of {sorted(CHAPTER_MODULES)}, got {chapter!r}")
        return chapter
    meta = nb.get("metadata", {}) if nb is not None else {}
    course = meta.get("course", {}) if isinstance(meta, dict) else {}
    found = course.get("chapter") if isinstance(course, dict) else None
    if isinstance(found, str) and found in CHAPTER_MODULES:  # metadata is untrusted: any JSON
        return found
    for ch in CHAPTER_MODULES:  # "alice_01_gradient_descent.ipynb"
        if ch in path.stem:
            return ch
    raise ValueError(f"cannot tell the chapter: notebook metadata course.chapter is {found!r} "
                     f"and the file name {path.name!r} names none of {sorted(CHAPTER_MODULES)}")


def code_cells(nb, release: dict | None) -> list:
    """``[(index, source, instructor)]`` for every code cell, locked cells restored."""
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        meta = cell.get("metadata", {}).get("nbgrader", {}) or {}
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        gid = gid if isinstance(gid, str) else None  # untrusted metadata: a list is unhashable
        if release is not None and gid in release:
            cells.append((i, release[gid], True))
        elif release is None and isinstance(meta, dict) and meta.get("locked") and not meta.get("solution"):
            cells.append((i, source, True))
        else:
            cells.append((i, source, False))
    return cells


# ----------------------------------------------------------------------------------
# grading


class Session:
    """A kernel that has run the notebook's cells; restarted (cells re-run) if it dies."""

    def __init__(self, cells, limits, config_for, notes, violations):
        self.cells, self.limits, self.config_for = cells, limits, config_for
        self.notes, self.violations = notes, violations
        self.skip = set()       # cells that looped or killed the kernel
        self.recorded = set()   # cells whose outcome is in the notes already
        self.budget = limits.total_timeout  # seconds left for the cells' first run
        self.kernel = None
        self.restarts = 0
        self.landlock = 0
        self.started = False

    def _new_kernel(self):
        root = self.config_for()
        self.kernel = sb.Kernel(root, sb.kernel_config(root, self.limits, self.forbidden), self.limits)
        self.kernel.start()
        self.started = True
        self.landlock = self.kernel.landlock

    def start(self, forbidden):
        self.forbidden = forbidden
        self._new_kernel()
        self._run_cells()

    def _run_cells(self):
        """Run every cell not skipped; a cell that loops past the limit or ends the kernel is
        skipped from then on, and the cells are re-run in a new kernel."""
        while True:
            index, limit = None, self.limits.timeout
            try:
                for index, source, instructor in self.cells:
                    if index in self.skip:
                        continue
                    first = index not in self.recorded
                    limit = min(self.limits.timeout, self.budget) if first else self.limits.timeout
                    if limit <= 0:
                        self.skip.add(index)
                        self.recorded.add(index)
                        self.notes.append(f"cell {index} was not run: the notebook used up its total "
                                          f"time limit ({self.limits.total_timeout:g} s)")
                        continue
                    t0 = time.monotonic()
                    try:
                        reply = self.kernel.request({"op": "exec", "cell": index, "code": source},
                                                    limit)
                    finally:
                        if first:
                            self.budget -= time.monotonic() - t0
                    if not first:
                        continue
                    self.recorded.add(index)
                    self._record(reply, instructor)
                    if reply.get("interrupted"):
                        self.notes.append(f"cell {index} was stopped: it ran longer than the "
                                          f"time limit ({limit:g} s)")
                        self.skip.add(index)
                    elif reply.get("error"):
                        self.notes.append(f"cell {index} raised {str(reply['error'])[:200]}")
                return
            except (sb.KernelTimeout, sb.KernelDied) as exc:
                self.skip.add(index)
                if index not in self.recorded:
                    self.recorded.add(index)
                    what = ("was stopped: it ran longer than the time limit "
                            f"({limit:g} s)" if isinstance(exc, sb.KernelTimeout)
                            else "ended the kernel (sys.exit/os._exit, a crash or the memory limit)")
                    self.notes.append(f"cell {index} {what}; it was skipped")
                self._restart()

    def _record(self, reply, instructor: bool):
        v = reply.get("violations")
        if isinstance(v, list) and not instructor:
            self.violations.extend(x for x in v if isinstance(x, dict))

    def _restart(self):
        self.restarts += 1
        self.kernel.stop()
        if self.restarts > MAX_RESTARTS:
            raise sb.KernelDied(f"the notebook ended its kernel {self.restarts} times: grading stopped")
        self._new_kernel()

    def call(self, question, case) -> Observation:
        args = materialize(case.args, question.callbacks)
        before = snapshot(args)
        msg = {"op": "call", "func": question.func, "args": sb.to_wire(case.args),
               "kwargs": [[k, sb.to_wire([v])] for k, v in case.kwargs.items()],
               "uses": sorted(question.uses)}
        callbacks = dict(case_callbacks(case, question), **question.uses)
        try:
            reply = self.kernel.request(msg, self.limits.call_timeout, callbacks=callbacks)
        except sb.KernelTimeout:
            self._restart()
            self._run_cells()
            return Observation(error="timeout", fatal=True)
        except sb.KernelDied as exc:
            self._restart()
            self._run_cells()
            return Observation(error=f"the kernel died during the call ({exc})", fatal=True)
        self._record(reply, instructor=False)
        if reply.get("interrupted") or reply.get("error") == "timeout":
            return Observation(error="timeout", fatal=True)
        if not reply.get("ok"):
            return Observation(error=str(reply.get("error"))[:300])
        try:
            out = sb._harness.decode(reply.get("value"))
            after = sb._harness.decode(reply.get("args_after"))
        except (ValueError, TypeError, KeyError) as exc:
            return Observation(error=f"returned a value the grader cannot read ({exc})")
        if type(after) is not list or len(after) != len(args):
            return Observation(error="the kernel sent malformed arguments back")
        aliases = reply.get("aliases", [])
        if type(aliases) is not list or not all(type(i) is int for i in aliases[:len(args)]):
            return Observation(error="the kernel sent a malformed aliasing report")
        return observe(question, out, after, before, aliases[:len(args)])

    def stop(self):
        if self.kernel is not None:
            self.kernel.stop()


def _zero(q, summary: str, *lines) -> QuestionResult:
    return QuestionResult(q.id, 0.0, q.points, 0, 0, [summary, *lines])


def grade_notebook(path, *, chapter: str | None = None, limits: sb.Limits | None = None,
                   seed: int | None = None, source_dir: Path | None = None) -> dict:
    """Grade ``path`` and return the report (see :func:`report_text` for the printed form).

    ``{"chapter", "score", "max_score", "questions": [{"id", "score", "max_score",
    "feedback", ...}], "notes", "seed", "sandbox"}``.  Never raises for a bad submission:
    an unreadable notebook gets a report with zero points and the reason.
    """
    path = Path(path)
    limits = limits or sb.Limits()
    seed = secrets.randbits(32) if seed is None else int(seed)
    t0 = time.monotonic()
    notes, violations = [], []
    nb, error = None, None
    try:
        nb = read_submission(path)
    except Exception as exc:  # any unreadable file is the submission's problem, not ours
        error = f"could not read the notebook: {type(exc).__name__}: {str(exc)[:200]}"
    try:
        chapter = identify_chapter(nb, path, chapter)
    except ValueError as exc:
        return {"chapter": None, "score": 0.0, "max_score": 0.0, "questions": [],
                "notes": [error or str(exc)], "seed": seed, "submission": path.name}
    questions = chapter_questions(chapter)
    report = {"chapter": chapter, "submission": path.name, "seed": seed}
    if error is not None:
        results = [_zero(q, "not graded", error) for q in questions]
        return _finish(report, results, [error], {}, t0)

    graph = module_graph()
    forb = forbidden_for(questions, graph)
    all_forbidden = sorted(set().union(*forb.values()))
    reasons = {m: "it holds the reference solution of " + ", ".join(q for q in forb if m in forb[q])
               for m in all_forbidden}
    pkg = sanitized_package(graph, set(all_forbidden))
    roots = []

    def config_for():
        root = sb.make_sandbox_dir(pkg)
        roots.append(root)
        return root

    release = _release_cells(chapter, source_dir)
    if release is None:
        notes.append("the instructor's solution notebook was not found: locked cells were run as submitted")
    cells = [(i, _transform_magics(src), instr) for i, src, instr in code_cells(nb, release)]
    session = Session(cells, limits, config_for, notes, violations)
    results = []
    try:
        session.start(reasons)
        rng = np.random.default_rng(seed)
        for q in questions:
            cases = q.make_cases(rng)
            if (hit := _violation(q, forb, violations)) is None:
                result = grade_question(q, cases, lambda c, q=q: session.call(q, c))
                hit = _violation(q, forb, violations)
            if hit is not None:
                result = _zero(q, f"0/{len(cases)} cases: not graded",
                               f"your notebook imports {hit['module']} ({hit['where']}), which holds "
                               f"the reference implementation: in graded mode it is not available "
                               f"and trying to use it scores zero for {q.func}")
                result.total = len(cases)
            results.append(result)
    except sb.KernelDied as exc:  # the sandbox itself could not start
        notes.append(str(exc)[:500])
        done = {r.id for r in results}
        results += [_zero(q, "not graded", "the grader could not run the notebook")
                    for q in questions if q.id not in done]
    finally:
        session.stop()
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    sandbox_info = {"landlock_abi": session.landlock, "kernel_restarts": session.restarts,
                    "timeout": limits.timeout, "total_timeout": limits.total_timeout,
                    "call_timeout": limits.call_timeout,
                    "memory_mb": limits.memory_mb}
    if session.started and not session.landlock:
        notes.append("warning: Landlock is not available on this system: the kernel could read "
                     "and write files outside its sandbox (the grades are still computed here)")
    return _finish(report, results, notes, sandbox_info, t0)


def _violation(q, forb, violations):
    for v in violations:
        mod = str(v.get("module", ""))
        if any(mod == m or mod.startswith(m + ".") for m in forb[q.id]):
            return {"module": mod, "where": str(v.get("where", "?"))}
    return None


def _finish(report, results, notes, sandbox_info, t0) -> dict:
    report.update(
        score=round(sum(r.score for r in results), 2),
        max_score=round(sum(r.max_score for r in results), 2),
        questions=[r.as_dict() for r in results],
        notes=notes, sandbox=sandbox_info, seconds=round(time.monotonic() - t0, 1))
    return report


def report_text(report: dict) -> str:
    """The readable report: question, points, feedback."""
    lines = []
    if report.get("chapter") is None:
        lines.append(f"{report.get('submission', 'submission')}: not graded")
    else:
        lines.append(f"{report.get('submission', 'submission')} — chapter {report['chapter']}: "
                     f"{report['score']:g} / {report['max_score']:g} points")
    for q in report.get("questions", []):
        fb = q["feedback"].split("\n")
        lines.append(f"  {q['id']:<28} {q['score']:>5.2f} / {q['max_score']:g}   {fb[0]}")
        lines += [f"      {s}" for s in fb[1:]]
    for n in report.get("notes", []):
        lines.append(f"  note: {n}")
    return "\n".join(lines)
