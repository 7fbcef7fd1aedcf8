"""Self-check mode: ``check("01.mse_gradient", mse_gradient)`` in an exercise notebook.

Runs the question's test cases *in the learner's own kernel* against the reference and
prints short, specific feedback.  Instant and friendly, but not tamper-proof: code in the
same kernel could patch anything.  The tamper-proof grader is ``python -m course_lib.grade``
(see ``docs/``), which runs the notebook in a separate, sandboxed process; there this
function does nothing.
"""

from __future__ import annotations

import numpy as np

from .registry import get_question
from .spec import grade_question, run_local

#: seed of the self-check cases: fixed, so the printed feedback is the same every run
CHECK_SEED = 0


def check(question_id: str, fn) -> float:
    """Check ``fn`` against question ``question_id``; print feedback; return the score.

    Raises ``AssertionError`` carrying the feedback unless every case passes, so an
    nbgrader grade cell calling ``check`` gives its points exactly when the function is right.
    """
    question = get_question(question_id)
    if not callable(fn):
        raise TypeError(f"fn must be the function to check (a callable), got {fn!r}")
    cases = question.make_cases(np.random.default_rng(CHECK_SEED))
    result = grade_question(question, cases, lambda case: run_local(fn, case, question, student=True))
    text = result.text()
    print(text)
    if result.passed < result.total:
        raise AssertionError(text)
    return result.score
