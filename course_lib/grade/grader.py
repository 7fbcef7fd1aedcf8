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
import re
import secrets
import shutil
import time
import unicodedata
from pathlib import Path

import numpy as np

from . import sandbox as sb
from .imports import (GRADE_PACKAGE, PACKAGE_DIR, answered_by, closure,  # noqa: F401 (re-exported)
                      direct_imports, forbidden_for, module_graph)
from .registry import CHAPTER_MODULES, chapter_questions
from .release import without_note
from .spec import (Observation, QuestionResult, case_callbacks, closure_reads, grade_question, materialize,
                   observe, snapshot)

REPO_SOLUTIONS = PACKAGE_DIR.parent / "solutions"
MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_RESTARTS = 12          # kernels a submission may end before grading gives up


# ----------------------------------------------------------------------------------
# which course_lib modules a chapter may use (see .imports)


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
    """The notebook, or ``ValueError``/``OSError`` saying why it cannot be read."""
    import nbformat
    size = path.stat().st_size
    if size == 0:
        raise ValueError("the file is empty")
    if size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"the notebook is {size // 2**20} MB, larger than the "
                         f"{MAX_NOTEBOOK_BYTES // 2**20} MB a submission may be")
    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8", errors="replace"), as_version=4)
    except Exception as exc:  # nbformat raises many kinds (JSON errors, validation, KeyError)
        raise ValueError(f"not a readable notebook ({type(exc).__name__}: {str(exc)[:150]})") from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError("the file has no list of cells")
    return nb


def notebook_chapter(nb) -> str | None:
    """``metadata.course.chapter`` if it names a known chapter (metadata is untrusted JSON)."""
    meta = nb.get("metadata", {}) if nb is not None else {}
    course = meta.get("course", {}) if isinstance(meta, dict) else {}
    found = course.get("chapter") if isinstance(course, dict) else None
    return found if isinstance(found, str) and found in CHAPTER_MODULES else None


def identify_chapter(nb, path: Path, chapter: str | None) -> str:
    """The chapter to grade as: the instructor's ``chapter`` if given (the notebook's own
    metadata never overrides it), else the notebook's metadata, else the file name."""
    if chapter is not None:
        if chapter not in CHAPTER_MODULES:
            raise ValueError(f"chapter must be one of {sorted(CHAPTER_MODULES)}, got {chapter!r}")
        return chapter
    found = notebook_chapter(nb)
    if found is not None:
        return found
    for ch in CHAPTER_MODULES:  # "alice_01_gradient_descent.ipynb"
        if ch in path.stem:
            return ch
    raise ValueError(f"cannot tell the chapter: the notebook's metadata names none and the file "
                     f"name names none of {sorted(CHAPTER_MODULES)}; pass --chapter")


def _top_imports(source: str) -> list:
    """Top-level import statements of a cell, as source lines."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    return [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]


def code_cells(nb, release: dict | None, notes: list | None = None) -> list:
    """``[(index, source, instructor)]`` for every code cell, locked cells restored.

    A locked cell the student edited is replaced by the instructor's version; import
    statements the student added to it are kept (run right after it, as the student's
    code), and ``notes`` says what happened."""
    notes = notes if notes is not None else []
    cells = []
    for i, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(map(str, source)) if isinstance(source, list) else str(source)
        meta = cell.get("metadata", {}) if isinstance(cell.get("metadata"), dict) else {}
        meta = meta.get("nbgrader", {}) or {}
        meta = meta if isinstance(meta, dict) else {}
        gid = meta.get("grade_id")
        gid = gid if isinstance(gid, str) else None  # untrusted metadata: a list is unhashable
        if release is not None and gid in release:
            cells.append((i, release[gid], True))
            if without_note(source).strip() != without_note(release[gid]).strip():
                extra = [s for s in _top_imports(source) if s not in _top_imports(release[gid])]
                if extra:
                    cells.append((i, "\n".join(extra), False))
                notes.append(f"cell {i} is locked ({gid}) and was edited: the original was run "
                             "instead" + (f"; your added imports were kept ({'; '.join(extra)[:200]})"
                                          if extra else "; put your own code and imports in your "
                                          "solution cells"))
        elif release is None and meta.get("locked") and not meta.get("solution"):
            cells.append((i, source, True))
        else:
            cells.append((i, source, False))
    return cells


# ----------------------------------------------------------------------------------
# text from the student's process


_BIDI = {0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}


def clean(text, limit: int = 300) -> str:
    """``text`` without control characters (ANSI escapes, carriage returns, bidi overrides):
    anything the student's process sends may reach the instructor's terminal."""
    text = str(text)[:limit]
    return "".join(ch if ch == "\n" or (unicodedata.category(ch) not in ("Cc", "Cf", "Cs")
                                        and ord(ch) not in _BIDI) else
                   (" " if ch == "\t" else "?") for ch in text)


# ----------------------------------------------------------------------------------
# grading


class Session:
    """A kernel that has run the notebook's cells; restarted (cells re-run) if it dies.

    ``limits.total_timeout`` bounds every cell execution of the submission together,
    re-runs after kernel restarts included."""

    def __init__(self, cells, limits, config_for, notes, violations):
        self.cells, self.limits, self.config_for = cells, limits, config_for
        self.notes, self.violations = notes, violations
        self.skip = set()       # cells that looped or killed the kernel
        self.recorded = set()   # cells whose outcome is in the notes already
        self.errors = {}        # cell index -> what it raised (first run)
        self.budget = limits.total_timeout  # seconds left for running cells
        self.out_of_time = False
        self.kernel = None
        self.restarts = 0
        self.info = {}
        self.started = False

    def _new_kernel(self):
        root = self.config_for()
        self.kernel = sb.Kernel(root, sb.kernel_config(root, self.limits, self.forbidden), self.limits)
        self.kernel.config["modules"] = sorted(module_graph())
        self.kernel.start()
        self.started = True
        self.info = self.kernel.info()

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
                    limit = min(self.limits.timeout, self.budget)
                    if limit <= 0:
                        if not self.out_of_time:
                            self.out_of_time = True
                            self.notes.append(f"cell {index} and the cells after it were not run: the "
                                              f"notebook used up its total time limit "
                                              f"({self.limits.total_timeout:g} s, re-runs included)")
                        return
                    t0 = time.monotonic()
                    try:
                        reply = self.kernel.request({"op": "exec", "cell": index, "code": source},
                                                    limit)
                    finally:
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
                        self.errors[index] = clean(reply["error"], 200)
                        self.notes.append(f"cell {index} raised {self.errors[index]}")
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
            self.violations.extend({"module": clean(x.get("module"), 120), "where": clean(x.get("where"), 60)}
                                   for x in v[:100] if isinstance(x, dict))

    def _restart(self):
        self.restarts += 1
        self.kernel.stop()
        if self.restarts > MAX_RESTARTS:
            raise GradingStopped(f"the notebook ended its kernel {self.restarts} times: grading stopped")
        self._new_kernel()

    def call(self, question, case) -> Observation:
        if self.kernel is None or self.kernel.proc is None:
            return Observation(error="the grading stopped before this call", fatal=True)
        args = materialize(case.args, question.callbacks)
        before = snapshot(args)
        msg = {"op": "call", "func": question.func, "args": sb.to_wire(case.args),
               "kwargs": [[k, sb.to_wire([v])] for k, v in case.kwargs.items()],
               "uses": sorted(question.uses), "reads": closure_reads(case)}
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
            return Observation(error=f"the kernel died during the call ({clean(exc, 100)})", fatal=True)
        self._record(reply, instructor=False)
        if reply.get("interrupted") or reply.get("error") == "timeout":
            return Observation(error="timeout", fatal=True)
        if not reply.get("ok"):
            error = clean(reply.get("error"), 300)
            if error.startswith("NameError: your notebook does not define"):
                error += self._why_undefined(question.func)
            return Observation(error=error)
        try:
            out = sb._harness.decode(reply.get("value"))
            after = sb._harness.decode(reply.get("args_after"))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            return Observation(error=f"returned a value the grader cannot read ({clean(exc, 100)})")
        if type(after) is not list or len(after) != len(args):
            return Observation(error="the kernel sent malformed arguments back")
        aliases = reply.get("aliases", [])
        if type(aliases) is not list or not all(type(i) is int for i in aliases[:len(args)]):
            return Observation(error="the kernel sent a malformed aliasing report")
        return observe(question, out, after, before, aliases[:len(args)])

    def _why_undefined(self, func: str) -> str:
        for index, source, _ in self.cells:
            if re.search(rf"^\s*def {re.escape(func)}\s*\(", source, re.M):
                if index in self.errors:
                    return f" (cell {index}, which defines it, raised {self.errors[index]})"
                if index in self.skip:
                    return f" (cell {index}, which defines it, was skipped)"
        return ""

    def stop(self):
        if self.kernel is not None:
            self.kernel.stop()


class GradingStopped(Exception):
    """The submission ended its kernel too often: the remaining questions score zero."""


def _zero(q, summary: str, *lines) -> QuestionResult:
    return QuestionResult(q.id, 0.0, q.points, 0, 0, [summary, *lines])


def grade_notebook(path, *, chapter: str | None = None, limits: sb.Limits | None = None,
                   seed: int | None = None, source_dir: Path | None = None) -> dict:
    """Grade ``path`` and return the report (see :func:`report_text` for the printed form).

    ``{"status": "graded" | "error", "chapter", "score", "max_score", "questions": [{"id",
    "score", "max_score", "feedback", ...}], "notes", "flags", "seed", "sandbox", "sandboxed"}``.
    ``chapter``: the assignment (the notebook's metadata never overrides it).  Never raises:
    a submission the grader could not read or run gets ``status="error"`` and the reason
    (a grader error, retried by a resumed batch); ``max_score`` is always the assignment's.
    """
    path = Path(path)
    limits = limits or sb.Limits()
    seed = secrets.randbits(32) if seed is None else int(seed)
    t0 = time.monotonic()
    report = {"status": "graded", "chapter": chapter, "submission": clean(path.name, 200), "seed": seed,
              "flags": [], "sandboxed": None}
    try:
        return _grade(path, chapter, limits, seed, source_dir, report, t0)
    except Exception as exc:  # OSError (disk full) or a grader bug: a report, never a traceback
        return _error(report, f"the grader failed: {type(exc).__name__}: {clean(exc, 200)}", t0)


def _error(report, reason: str, t0, results=(), notes=()) -> dict:
    chapter = report.get("chapter")
    questions = chapter_questions(chapter) if chapter in CHAPTER_MODULES else ()
    done = {r.id for r in results}
    results = list(results) + [_zero(q, "not graded", reason) for q in questions if q.id not in done]
    report.update(status="error", error=reason)
    return _finish(report, results, [reason, *notes], report.get("sandbox", {}), t0)


def _grade(path, chapter, limits, seed, source_dir, report, t0) -> dict:
    notes, violations = [], []
    nb, unreadable = None, None
    try:
        nb = read_submission(path)
    except (OSError, ValueError) as exc:
        unreadable = f"could not read the notebook: {clean(exc, 200)}"
    try:
        report["chapter"] = identify_chapter(nb, path, chapter)
    except ValueError as exc:
        return _error(report, unreadable or str(exc), t0)
    chapter = report["chapter"]
    if unreadable is not None:
        return _error(report, unreadable, t0)
    says = notebook_chapter(nb)
    if says is not None and says != chapter:
        report["flags"].append(f"chapter mismatch: the notebook says {says}")
        notes.append(f"this notebook says it is chapter {says}, but the assignment is {chapter}: "
                     f"it was graded as {chapter}")
    questions = chapter_questions(chapter)

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
    cells = [(i, _transform_magics(src), instr) for i, src, instr in code_cells(nb, release, notes)]
    session = Session(cells, limits, config_for, notes, violations)
    results = []
    try:
        try:
            session.start(reasons)
        except sb.SandboxUnavailable as exc:
            report["sandbox"] = session.info
            return _error(report, f"the grader could not run the notebook: {clean(exc, 300)}", t0,
                          notes=notes)
        rng = np.random.default_rng(seed)
        for q in questions:
            cases = q.make_cases(rng)
            if (hit := _violation(q, questions, violations)) is None:
                result = grade_question(q, cases, lambda c, q=q: session.call(q, c))
                hit = _violation(q, questions, violations)
            if hit is not None:
                result = _zero(q, f"0/{len(cases)} cases: not graded",
                               f"your notebook imports {hit['module']} ({hit['where']}), which holds "
                               f"the reference implementation: in graded mode it is not available "
                               f"and trying to use it scores zero for {q.func}")
                result.total = len(cases)
            results.append(result)
    except GradingStopped as exc:
        notes.append(str(exc))
        done = {r.id for r in results}
        results += [_zero(q, "not graded", str(exc)) for q in questions if q.id not in done]
    except sb.SandboxUnavailable as exc:  # a restart failed: not the student's doing
        report["sandbox"] = session.info
        return _error(report, f"the grader could not restart the kernel: {clean(exc, 300)}", t0,
                      results, notes)
    finally:
        session.stop()
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    info = dict(session.info, kernel_restarts=session.restarts, timeout=limits.timeout,
                total_timeout=limits.total_timeout, call_timeout=limits.call_timeout,
                memory_mb=limits.memory_mb, disk_mb=limits.disk_mb,
                max_processes=limits.max_processes)
    report["sandboxed"] = info.get("mode") == "bubblewrap"
    if not report["sandboxed"]:
        notes.append(f"WARNING: graded WITHOUT the sandbox ({info.get('unsandboxed_reason')}): the "
                     "student's code ran with rlimits and Landlock only; install bubblewrap "
                     "(Debian: apt install bubblewrap)")
    return _finish(report, results, notes, info, t0)


def _violation(q, questions, violations):
    """The first recorded import that answers question ``q`` (see :func:`answered_by`)."""
    direct = direct_imports()
    for v in violations:
        mod = str(v.get("module", ""))
        if q in answered_by(mod, questions, direct):
            return {"module": mod, "where": str(v.get("where", "?"))}
    return None


def _finish(report, results, notes, sandbox_info, t0) -> dict:
    report.update(
        score=round(sum(r.score for r in results), 2),
        max_score=round(sum(r.max_score for r in results), 2),
        questions=[r.as_dict() for r in results],
        notes=[clean(n, 600) for n in notes], sandbox=sandbox_info,
        seconds=round(time.monotonic() - t0, 1))
    for q in report["questions"]:
        q["feedback"] = clean(q["feedback"], 4000)
    return report


def report_text(report: dict) -> str:
    """The readable report: question, points, feedback (control characters removed)."""
    lines = []
    name = clean(report.get("submission", "submission"), 200)
    if report.get("status") == "error":
        lines.append(f"{name}: NOT GRADED (grader error): {clean(report.get('error'), 400)}")
    if report.get("chapter") is not None:
        lines.append(f"{name} — chapter {report['chapter']}: "
                     f"{report['score']:g} / {report['max_score']:g} points")
    for q in report.get("questions", []):
        fb = clean(q["feedback"], 4000).split("\n")
        lines.append(f"  {q['id']:<28} {q['score']:>5.2f} / {q['max_score']:g}   {fb[0]}")
        lines += [f"      {s}" for s in fb[1:]]
    for f in report.get("flags", []):
        lines.append(f"  FLAG: {clean(f)}")
    for n in report.get("notes", []):
        lines.append(f"  note: {clean(n, 600)}")
    if report.get("sandboxed") is False:
        lines.append("  WARNING: this submission was graded without the sandbox")
    return "\n".join(lines)
