"""Issue 8, item 5: every catalogued mistake loses points on EVERY grading seed.

For every question in the registry (chapters added later are covered automatically) and
1000 seeds, the generated cases must contain at least one case on which each catalogued
mistake fails (what the grader would score below full).  In-process, without the sandbox:
the grader compares the same observations.  A mistake that passes on some seed would make
two students with the same bug score differently."""

import numpy as np
import pytest

from course_lib.grade.registry import CHAPTER_MODULES, chapter_questions
from course_lib.grade.spec import observe_problem, run_local

QUESTIONS = [q for ch in CHAPTER_MODULES for q in chapter_questions(ch)]
SEEDS = 1000


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q.id)
def test_every_mistake_loses_points_on_every_seed(q):
    escaped = {m.key: [] for m in q.mistakes}
    for seed in range(SEEDS):
        cases = q.make_cases(np.random.default_rng(seed))
        refs = [None] * len(cases)
        for m in q.mistakes:
            for i, case in enumerate(cases):
                if refs[i] is None:
                    refs[i] = run_local(q.reference, case, q)
                if observe_problem(q, refs[i], run_local(m.impl, case, q, student=True)) is not None:
                    break
            else:
                escaped[m.key].append(seed)
    bad = {k: (len(v), v[:5]) for k, v in escaped.items() if v}
    assert not bad, f"{q.id}: mistakes that score full on some seeds (count, first seeds): {bad}"
