"""Self-check mode: ``check("01.mse_gradient", mse_gradient)`` in an exercise notebook.

Runs the question's test cases *in the learner's own kernel* against the reference and
prints short, specific feedback.  Instant and friendly, but not tamper-proof: code in the
same kernel could patch anything.  The tamper-proof grader is ``python -m course_lib.grade``
(see ``docs/``), which runs the notebook in a separate, sandboxed process; there this
function does nothing.
"""

from __future__ import annotations

import numpy as np

from .imports import answered_by, imports_in
from .registry import chapter_of, chapter_questions, get_question
from .spec import grade_question, run_local

#: seed of the self-check cases: fixed, so the printed feedback is the same every run
CHECK_SEED = 0
_state = {"chapter": None, "warned": set()}


def import_warnings(source: str, questions) -> list:
    """Warnings for the ``course_lib`` imports in ``source`` that answer one of ``questions``
    (in graded mode those modules are absent and those questions score zero)."""
    out = []
    for module in imports_in(source):
        if not module.startswith("course_lib."):
            continue
        hit = [q.id for q in answered_by(module, questions)]
        if hit:
            out.append(f"warning: you import {module}, which holds the answer to {', '.join(hit)}: "
                       f"the grader does not provide it, and a notebook that imports it scores 0 for "
                       f"{'that question' if len(hit) == 1 else 'those questions'}. Compare in a "
                       f"separate notebook, and remove the import before you hand in.")
    return out


def _history() -> list:
    try:
        shell = get_ipython()  # noqa: F821  (defined inside IPython only)
    except NameError:
        return []
    return [c for c in shell.user_ns.get("In", []) if isinstance(c, str)]


def _after_cell(result):
    """IPython ``post_run_cell`` hook: warn the moment a cell imports an answer."""
    chapter = _state["chapter"]
    if chapter is None:
        return
    source = getattr(getattr(result, "info", None), "raw_cell", None) or ""
    for w in import_warnings(source, chapter_questions(chapter)):
        print(w)
        _state["warned"].add(w)


def watch_imports() -> bool:
    """Register :func:`_after_cell` in the running IPython (once); ``False`` outside IPython."""
    try:
        shell = get_ipython()  # noqa: F821
    except NameError:
        return False
    if shell is None or getattr(shell, "_course_import_watch", False):
        return shell is not None
    shell.events.register("post_run_cell", _after_cell)
    shell._course_import_watch = True
    return True


def check(question_id: str, fn) -> float:
    """Check ``fn`` against question ``question_id``; print feedback; return the score.

    Raises ``AssertionError`` carrying the feedback unless every case passes, so an
    nbgrader grade cell calling ``check`` gives its points exactly when the function is right
    (the feedback is then shown once, as the error's message, not printed as well).
    """
    question = get_question(question_id)
    if not callable(fn):
        raise TypeError(f"fn must be the function to check (a callable), got {fn!r}")
    _state["chapter"] = chapter_of(question_id)
    watch_imports()
    for w in {w for cell in _history() for w in import_warnings(cell, [question])}:
        print(w)
    cases = question.make_cases(np.random.default_rng(CHECK_SEED))
    result = grade_question(question, cases, lambda case: run_local(fn, case, question, student=True))
    text = result.text()
    if result.passed < result.total:
        raise AssertionError(text)
    print(text)
    return result.score
