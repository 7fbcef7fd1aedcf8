"""Assignments: single-source exercise generation and the auto-grader.

- ``check(question_id, fn)``  self-check in an exercise notebook (in-process, instant feedback)
- ``python -m course_lib.grade SUBMISSION.ipynb``  the tamper-proof grader (separate process)
- ``python -m course_lib.grade.release solutions exercises``  generate the student notebooks
"""


def check(question_id: str, fn) -> float:
    """Check ``fn`` against question ``question_id`` (e.g. ``"01.mse_gradient"``).

    Prints feedback such as ``01.mse_gradient: 5/5 cases passed``, returns the score and
    raises ``AssertionError`` with the feedback when a case fails.  See :mod:`.check`.
    """
    from .check import check as _check  # imported lazily: `release` needs none of it
    return _check(question_id, fn)


__all__ = ["check"]
