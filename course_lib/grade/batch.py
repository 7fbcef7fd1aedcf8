"""Grade a whole class: one submission per ``.ipynb`` file, the student id is the file name.

``grades.csv`` gets one row per student (total and one column per question), rewritten
atomically after every submission, so an interrupted run loses nothing and a second run
*resumes*: a submission whose row says ``graded`` and whose file is unchanged (same
SHA-256) is not graded again.  A broken submission gets a report with zero points; an
error of the grader itself is recorded as ``error: ...`` (and retried by the next run),
and the batch goes on in both cases.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .registry import CHAPTER_MODULES, chapter_questions

FIXED = ["student", "file", "sha256", "chapter", "score", "max_score"]
TAIL = ["status", "seed"]


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (all or nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_csv(path: Path) -> dict:
    """``{student: row}`` of an existing grades file (empty if there is none)."""
    if not Path(path).exists():
        return {}
    with open(path, newline="") as f:
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


def report_row(student: str, path: Path, digest: str, report: dict) -> dict:
    row = {"student": student, "file": path.name, "sha256": digest,
           "chapter": report.get("chapter") or "", "score": report.get("score", 0),
           "max_score": report.get("max_score", 0), "status": "graded",
           "seed": report.get("seed", "")}
    for q in report.get("questions", []):
        row[q["id"]] = q["score"]
    return row


def grade_batch(directory, csv_path, *, json_dir=None, grade=None, log=sys.stderr) -> dict:
    """Grade every ``*.ipynb`` in ``directory`` into ``csv_path``; return counts.

    ``grade(path) -> report`` grades one file (``grader.grade_notebook`` with the
    command's options).
    """
    directory, csv_path = Path(directory), Path(csv_path)
    if not directory.is_dir():
        raise ValueError(f"directory {str(directory)!r} is not a directory")
    files = sorted(directory.glob("*.ipynb"))
    rows = read_csv(csv_path)
    counts = {"graded": 0, "skipped": 0, "errors": 0, "total": len(files)}
    try:
        for i, path in enumerate(files, 1):
            student = path.stem
            digest = sha256(path)
            old = rows.get(student)
            if old and old.get("status") == "graded" and old.get("sha256") == digest:
                counts["skipped"] += 1
                print(f"[{i}/{len(files)}] {student}: already graded, skipped", file=log)
                continue
            t0 = time.monotonic()
            try:
                report = grade(path)
            except Exception as exc:  # a grader bug must not stop the class's batch
                rows[student] = {"student": student, "file": path.name, "sha256": digest,
                                 "status": f"error: {type(exc).__name__}: {str(exc)[:200]}"}
                counts["errors"] += 1
                print(f"[{i}/{len(files)}] {student}: grader error {exc!r}", file=log)
            else:
                rows[student] = report_row(student, path, digest, report)
                counts["graded"] += 1
                if json_dir is not None:
                    atomic_write(Path(json_dir) / f"{student}.json",
                                 json.dumps(report, indent=1) + "\n")
                print(f"[{i}/{len(files)}] {student}: {report['score']:g}/{report['max_score']:g} "
                      f"({time.monotonic() - t0:.1f} s)", file=log)
            atomic_write(csv_path, render_csv(rows))
    finally:
        # written from memory once more at the end, whatever happened during the run
        if rows:
            atomic_write(csv_path, render_csv(rows))
    return counts
