"""Which ``course_lib`` modules answer which question: shared by the grader (what to hide,
whom an import costs points) and the self-check (warn the moment a scratch cell imports one).

Two relations, on purpose different:

- :func:`forbidden_for` -- modules from which a question's reference is *reachable* through
  any chain of imports.  All of them are absent in graded mode (replaced by stubs), so no
  chain leads to a reference.
- :func:`answered_by` -- the questions an import really answers: the module is one of the
  question's reference modules, or imports one itself (``course_lib.optim.optimizers``
  imports the functional core, so ``Adam`` answers ``adam_step``).  Only these questions
  score zero when a submission imports the module: importing the schedulers to compare a
  learning-rate curve costs ``cosine_warmup_lr``, not the optimizer steps.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]          # course_lib/
GRADE_PACKAGE = "course_lib.grade"


def _imports_of(tree, base: list, root: str) -> set:
    """Modules (dotted names under ``root``) named by the import statements of ``tree``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[:len(base) - node.level + 1] if base else []
                prefix = ".".join(anchor + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            mods = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
        else:
            continue
        found |= {m for m in mods if m == root or m.startswith(root + ".")}
    return found


@functools.lru_cache(maxsize=4)
def module_graph(package_dir: Path = PACKAGE_DIR) -> dict:
    """``{module: set of course_lib modules importing it loads}`` from the source (AST).

    Imports anywhere in a file count (also inside functions): conservative on purpose.
    Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``.
    """
    graph = {}
    for name, (parts, is_pkg, direct) in _sources(package_dir).items():
        graph[name] = {".".join(parts[:i]) for i in range(1, len(parts))} | direct
    known = set(graph)
    return {m: {d for d in deps if d in known and d != m} for m, deps in graph.items()}


@functools.lru_cache(maxsize=4)
def direct_imports(package_dir: Path = PACKAGE_DIR) -> dict:
    """``{module: modules its own import statements name}`` (no implicit parent packages)."""
    src = _sources(package_dir)
    return {m: {d for d in direct if d in src and d != m} for m, (_, _, direct) in src.items()}


@functools.lru_cache(maxsize=4)
def _sources(package_dir: Path) -> dict:
    root = package_dir.name
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        base = parts if is_pkg else parts[:-1]
        tree = ast.parse(path.read_text(), str(path))
        out[".".join(parts)] = (parts, is_pkg, _imports_of(tree, base, root))
    return out


def closure(graph: dict, module: str) -> set:
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def _grading(m: str) -> bool:
    return m == GRADE_PACKAGE or m.startswith(GRADE_PACKAGE + ".")


def reference_modules(q) -> set:
    return set(q.reference_modules) | {q.reference.__module__}


def forbidden_for(questions, graph: dict) -> dict:
    """``{question id: set of modules}`` from which the question's reference is reachable."""
    return {q.id: {m for m in graph if not _grading(m) and closure(graph, m) & reference_modules(q)}
            for q in questions}


def answered_by(module: str, questions, direct: dict | None = None) -> list:
    """The questions (of ``questions``) that importing ``module`` really answers.

    ``module`` may be a name inside a module (``course_lib.optim.functional.adam_step``):
    the longest known module prefix counts."""
    direct = direct_imports() if direct is None else direct
    while module and module not in direct:
        module = module.rpartition(".")[0]
    if not module or _grading(module):
        return []
    reach = {module} | direct[module]
    return [q for q in questions if reach & reference_modules(q)]


def imports_in(source: str) -> list:
    """Absolute module names a cell's import statements ask for (``from a import b`` gives
    ``a.b``, which :func:`answered_by` shortens to ``a`` when ``b`` is not a module)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out += [f"{node.module}.{a.name}" if a.name != "*" else node.module for a in node.names]
    return out
