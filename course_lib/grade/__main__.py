"""``python -m course_lib.grade``: the tamper-proof auto-grader.

One submission::

    python -m course_lib.grade SUBMISSION.ipynb [--chapter NAME] [--json OUT.json]

A whole class (one notebook per student, the file name is the student id)::

    python -m course_lib.grade --batch DIR --chapter NAME --csv grades.csv [--json-dir DIR]

Exit status: 0 every submission was graded in the sandbox, whatever the score;
1 the grader could not read or run a submission (``status=error``: retried on resume);
2 usage error; 3 graded, but WITHOUT the sandbox (bubblewrap missing or unusable).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import secrets

from .batch import assignment_seed, atomic_write, grade_batch, read_csv
from .grader import grade_notebook, report_text
from .registry import CHAPTER_MODULES
from .sandbox import Limits


def positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value
    return parse


def parser():
    ap = argparse.ArgumentParser(prog="python -m course_lib.grade",
                                 description="Grade exercise notebooks in a sandboxed process.")
    ap.add_argument("submission", nargs="?", help="the notebook to grade")
    ap.add_argument("--json", metavar="OUT.json", help="also write the report as JSON")
    ap.add_argument("--batch", metavar="DIR", help="grade every .ipynb in DIR (one per student)")
    ap.add_argument("--csv", metavar="grades.csv", help="with --batch: the grades file (resumable)")
    ap.add_argument("--json-dir", metavar="DIR", help="with --batch: one JSON report per student")
    ap.add_argument("--timeout", type=positive(float), default=120.0,
                    help="seconds each notebook cell may run (default 120)")
    ap.add_argument("--total-timeout", type=positive(float), default=600.0,
                    help="seconds all the notebook's cells may run together (default 600)")
    ap.add_argument("--call-timeout", type=positive(float), default=10.0,
                    help="seconds each call of a graded function may run (default 10)")
    ap.add_argument("--memory", type=positive(int), default=2048,
                    help="memory limit of the submission's processes together, in MB (default 2048)")
    ap.add_argument("--disk", type=positive(int), default=256,
                    help="size of the submission's only writable directory, in MB (default 256)")
    ap.add_argument("--processes", type=positive(int), default=64,
                    help="processes and threads the submission may run at once (default 64)")
    ap.add_argument("--chapter", choices=sorted(CHAPTER_MODULES),
                    help="the assignment (required with --batch; one submission: default from "
                         "the notebook's metadata)")
    ap.add_argument("--seed", type=int, help="seed of the test cases (default: one fresh random "
                    "seed per assignment, reused when a batch resumes)")
    ap.add_argument("--source", metavar="DIR",
                    help="solution notebooks, to restore locked cells (default: the repo's solutions/)")
    return ap


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if (args.batch is None) == (args.submission is None):
        ap.error("give either SUBMISSION.ipynb or --batch DIR")
    if args.batch is not None and not args.csv:
        ap.error("--batch needs --csv grades.csv")
    if args.batch is not None and not args.chapter:
        ap.error("--batch needs --chapter NAME: the assignment decides, never the notebooks")
    if args.batch is None and (args.csv or args.json_dir):
        ap.error("--csv and --json-dir go with --batch")
    limits = Limits(timeout=args.timeout, total_timeout=args.total_timeout,
                    call_timeout=args.call_timeout, memory_mb=args.memory, disk_mb=args.disk,
                    max_processes=args.processes)
    source = Path(args.source) if args.source else None

    if args.batch is not None:
        if not Path(args.batch).is_dir():
            ap.error(f"--batch {args.batch!r} is not a directory")
        seed = args.seed
        if seed is None:  # one seed per assignment: every student faces the same cases
            seed = assignment_seed(read_csv(args.csv), args.chapter)
            seed = secrets.randbits(32) if seed is None else seed

        def grade(path):
            return grade_notebook(path, chapter=args.chapter, limits=limits, seed=seed,
                                  source_dir=source)

        counts = grade_batch(args.batch, args.csv, json_dir=args.json_dir, grade=grade,
                             chapter=args.chapter)
        print(f"{counts['graded']} graded, {counts['skipped']} already graded, "
              f"{counts['errors']} grader errors, of {counts['total']} -> {args.csv} (seed {seed})")
        if counts["errors"]:
            print(f"{counts['errors']} submission(s) NOT graded (status error in {args.csv}): "
                  "run the same command again to retry them", file=sys.stderr)
            return 1
        if counts["unsandboxed"]:
            print("WARNING: graded WITHOUT the sandbox (see the flags column)", file=sys.stderr)
            return 3
        return 0
    path = Path(args.submission)
    if not path.is_file():
        ap.error(f"submission {args.submission!r} is not a file")
    report = grade_notebook(path, chapter=args.chapter, limits=limits, seed=args.seed,
                            source_dir=source)
    print(report_text(report))
    if args.json:
        keys = ("status", "error", "chapter", "score", "max_score", "questions", "notes", "flags",
                "seed", "sandboxed", "sandbox", "submission")
        atomic_write(Path(args.json), json.dumps({k: report.get(k) for k in keys}, indent=1) + "\n")
    if report.get("status") == "error":
        return 1
    if report.get("sandboxed") is False:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
