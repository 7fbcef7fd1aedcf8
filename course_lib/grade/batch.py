"""Grade a whole class: one submission per ``.ipynb`` file, the student id is the file name.

``grades.csv`` gets one row per student (total and one column per question), rewritten
atomically after every submission, so an interrupted run loses nothing and a second run
*resumes*: a submission whose row says ``graded`` for the same chapter and whose file is
unchanged (same SHA-256) is not graded again.  Every student of a batch faces the same test
cases: one seed per assignment, recorded in the CSV and reused on resume.  A submission the
grader could not read or run is recorded as ``error: <reason>`` (and retried by the next
run); one student's failure never stops the batch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

from .registry import CHAPTER_MODULES, chapter_questions

FIXED = ["student", "file", "sha256", "chapter", "score", "max_score"]
TAIL = ["status", "seed", "flags"]
MAX_ID = 80   # longest student id kept (a longer file name is shortened, with a hash)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (all or nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256(path: Path) -> str:
    """SHA-256 of a regular file; anything else (a FIFO would block the batch forever, a
    device never ends) raises ``ValueError``."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{student_file(Path(path))} is not a regular file")
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_csv(path: Path) -> dict:
    """``{student: row}`` of an existing grades file (empty if there is none)."""
    if not Path(path).exists():
        return {}
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        return {row["student"]: row for row in csv.DictReader(f) if row.get("student")}


def question_columns(rows) -> list:
    chapters = sorted({r.get("chapter") for r in rows if r.get("chapter") in CHAPTER_MODULES})
    cols = [q.id for ch in chapters for q in chapter_questions(ch)]
    extra = sorted({k for r in rows for k in r if k not in FIXED + TAIL + cols})
    return cols + extra


def render_csv(rows: dict) -> str:
    ordered = [rows[k] for k in sorted(rows)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIXED + question_columns(ordered) + TAIL,
                            restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(ordered)
    return out.getvalue()


def student_id(path: Path) -> str:
    """A printable, bounded student id from a file name (any bytes, any length)."""
    raw = os.fsencode(path.stem)
    text = raw.decode("utf-8", "backslashreplace")
    text = "".join(ch if ch.isprintable() and ch not in '/\\\\"' else "?" for ch in text).strip() or "?"
    if text != raw.decode("utf-8", "replace") or len(text) > MAX_ID:
        text = f"{text[:MAX_ID - 9]}~{hashlib.sha256(raw).hexdigest()[:8]}"
    return text


def json_name(student: str) -> str:
    """A safe file name for a student's JSON report."""
    safe = "".join(ch if ch.isalnum() or ch in "-_.~" else "_" for ch in student)[:MAX_ID]
    if safe != student:
        safe = f"{safe[:MAX_ID - 9]}~{hashlib.sha256(student.encode('utf-8', 'replace')).hexdigest()[:8]}"
    return safe.lstrip(".") + ".json"


def report_row(student: str, path: Path, digest: str, report: dict) -> dict:
    status = "graded" if report.get("status", "graded") == "graded" else \
        f"error: {str(report.get('error', 'unknown'))[:200]}"
    row = {"student": student, "file": student_file(path), "sha256": digest,
           "chapter": report.get("chapter") or "", "score": report.get("score", 0),
           "max_score": report.get("max_score", 0), "status": status,
           "seed": report.get("seed", ""), "flags": "; ".join(report.get("flags", []))}
    if report.get("sandboxed") is False:
        row["flags"] = "; ".join(filter(None, [row["flags"], "graded without the sandbox"]))
    for q in report.get("questions", []):
        row[q["id"]] = q["score"]
    return row


def student_file(path: Path) -> str:
    """The file name as printable text (bytes that are not UTF-8 as ``\\xNN``)."""
    name = os.fsencode(path.name).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else "?" for ch in name)


def _max_score(chapter) -> float | str:
    """The assignment's maximum score (``""`` when the chapter is unknown)."""
    if chapter not in CHAPTER_MODULES:
        return ""
    return round(sum(q.points for q in chapter_questions(chapter)), 2)


def assignment_seed(rows: dict, chapter: str | None) -> int | None:
    """The seed already used for this assignment in the grades file (``None`` if none)."""
    seeds = [r.get("seed") for r in rows.values()
             if r.get("seed") and (chapter is None or r.get("chapter") == chapter)]
    for s in seeds:
        try:
            return int(s)
        except ValueError:
            continue
    return None


def grade_batch(directory, csv_path, *, json_dir=None, grade=None, chapter=None, log=sys.stderr) -> dict:
    """Grade every ``*.ipynb`` in ``directory`` into ``csv_path``; return counts.

    ``grade(path) -> report`` grades one file (``grader.grade_notebook`` with the
    command's options, among them the assignment's chapter and seed).  ``chapter``: the
    assignment; a row graded for another chapter is graded again.
    """
    directory, csv_path = Path(directory), Path(csv_path)
    if not directory.is_dir():
        raise ValueError(f"directory {str(directory)!r} is not a directory")
    files = sorted(directory.glob("*.ipynb"), key=lambda p: os.fsencode(p.name))
    rows = read_csv(csv_path)
    counts = {"graded": 0, "skipped": 0, "errors": 0, "total": len(files), "unsandboxed": 0}
    taken = {}

    def say(text):
        try:
            print(text, file=log)
        except (OSError, ValueError):
            pass

    try:
        for i, path in enumerate(files, 1):
            student = student_id(path)
            if taken.setdefault(student, path) != path:  # two names that clean to one id
                student = f"{student[:MAX_ID - 9]}~{hashlib.sha256(os.fsencode(path.name)).hexdigest()[:8]}"
            t0 = time.monotonic()
            try:
                digest = sha256(path)
                old = rows.get(student)
                if (old and old.get("status") == "graded" and old.get("sha256") == digest
                        and (chapter is None or old.get("chapter") == chapter)):
                    counts["skipped"] += 1
                    say(f"[{i}/{len(files)}] {student}: already graded, skipped")
                    continue
                report = grade(path)
                rows[student] = report_row(student, path, digest, report)
                if json_dir is not None:
                    atomic_write(Path(json_dir) / json_name(student), json.dumps(report, indent=1) + "\n")
            except Exception as exc:  # a grader bug or an unreadable file must not stop the batch
                rows[student] = {"student": student, "file": student_file(path),
                                 "sha256": rows.get(student, {}).get("sha256", ""),
                                 "chapter": chapter or "", "score": 0,
                                 "max_score": _max_score(chapter),
                                 "status": f"error: {type(exc).__name__}: {str(exc)[:200]}"}
                say(f"[{i}/{len(files)}] {student}: grader error {type(exc).__name__}")
            if rows[student]["status"] == "graded":
                counts["graded"] += 1
                if "without the sandbox" in rows[student].get("flags", ""):
                    counts["unsandboxed"] += 1
                say(f"[{i}/{len(files)}] {student}: {rows[student]['score']:g}/"
                    f"{rows[student]['max_score']:g} ({time.monotonic() - t0:.1f} s)")
            else:
                counts["errors"] += 1
                say(f"[{i}/{len(files)}] {student}: NOT GRADED, {rows[student]['status'][:200]}")
            try:
                atomic_write(csv_path, render_csv(rows))
            except OSError as exc:
                say(f"could not write {csv_path} ({exc}); will retry after the next student")
    finally:
        # written from memory once more at the end, whatever happened during the run
        if rows:
            atomic_write(csv_path, render_csv(rows))
    return counts
