"""Assignments: single-source exercise generation (``release``) and the auto-grader."""
