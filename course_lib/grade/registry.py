"""Every graded question, by id (``"01.mse_gradient"``) and by chapter (``"01_gradient_descent"``)."""

from __future__ import annotations

import importlib

# chapter notebook stem -> module of course_lib.grade defining its QUESTIONS
CHAPTER_MODULES = {
    "01_gradient_descent": "ch01",
    "02_neural_network": "ch02",
    "03_optimizers": "ch03",
    "04_pruning": "ch04",
    "05_quantization": "ch05",
    "06_distillation": "ch06",
    "08_distributed": "ch08",
}


def chapter_questions(chapter: str) -> tuple:
    """The questions of a chapter, in notebook order.  ``chapter``: notebook stem."""
    if chapter not in CHAPTER_MODULES:
        raise ValueError(f"chapter must be one of {sorted(CHAPTER_MODULES)}, got {chapter!r}")
    return importlib.import_module(f"{__package__}.{CHAPTER_MODULES[chapter]}").QUESTIONS


def chapter_of(question_id: str) -> str:
    number = str(question_id).split(".")[0]
    for chapter in CHAPTER_MODULES:
        if chapter.split("_")[0] == number:
            return chapter
    raise ValueError(f"question_id must start with a chapter number among "
                     f"{sorted(c.split('_')[0] for c in CHAPTER_MODULES)}, got {question_id!r}")


def get_question(question_id: str):
    """The :class:`~course_lib.grade.spec.Question` with this id."""
    if not isinstance(question_id, str):
        raise TypeError(f"question_id must be a string like '01.mse_gradient', got {question_id!r}")
    questions = chapter_questions(chapter_of(question_id))
    for q in questions:
        if q.id == question_id:
            return q
    raise ValueError(f"question_id must be one of {[q.id for q in questions]}, got {question_id!r}")
