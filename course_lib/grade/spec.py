r"""How a question is specified, run and scored: the part shared by the in-process
self-check (:func:`course_lib.grade.check`) and the sandboxed grader.

A :class:`Question` is a function students write, described by

- ``reference``  the course's canonical implementation (the ground truth),
- ``make_cases(rng)``  test cases generated from a random generator: random shapes and
  values plus fixed edge cases, so no expected value is stored anywhere,
- ``mistakes``  a catalogue of typical wrong implementations; a student function that
  behaves exactly like one of them is told which mistake it makes.

Running a function on a case gives an :class:`Observation`: the returned value as
*plain data* (nested tuples of fresh ``np.ndarray``s, see :func:`canonical`), or the
exception it raised, plus the list of arguments it modified in place.  Observations are
compared in the grader's own process: nothing the student's code returns is trusted to
compare itself (no ``__eq__``, no ndarray subclass, no ``__array__`` is ever called).

Cases may contain two *tokens* that are not plain data: :class:`Rng` (a fresh
``np.random.default_rng(seed)`` for each run) and :class:`Callback` (a function the grader
provides, e.g. the ``grad_fn`` of an SGD epoch; in graded mode it is a proxy that asks the
grader's process, so its implementation never enters the student's process).
"""

from __future__ import annotations

import copy
import functools
import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ._harness import Bad, aliased_indices  # shared by the wire and the comparison

# Exact types accepted as numbers.  Exact (``type(x) in ...``), never ``isinstance``:
# a subclass could override anything.
PY_NUMBERS = (float, int)
NP_SCALARS = (np.float16, np.float32, np.float64, np.longdouble, np.int8, np.int16, np.int32,
              np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
NUMERIC_KINDS = "fiu"
MAX_ITEMS = 100_000      # longest list/tuple accepted in a returned value
MAX_DEPTH = 6            # deepest nesting accepted


class Rng:
    """Token: a fresh ``np.random.default_rng(seed)`` every time the case is run."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def __repr__(self):
        return f"Rng({self.seed})"


class Callback:
    """Token: the grader-provided function ``name`` (see ``Question.callbacks``).

    ``data``: plain data bound as its first arguments (``functools.partial``): it stays in
    the grader's process, the student's code only sees a function to call.

    ``reads_arg``: if set, the function is a *closure* over positional argument
    ``reads_arg`` of the graded call: it ignores what it is called with and evaluates
    that argument's current value, as ``lambda _: loss(W)`` reads the weights ``W`` a
    gradient checker perturbs.  Only a function that perturbs that very array in place
    sees the perturbation; one that perturbs a copy sees a constant.
    """

    def __init__(self, name: str, data: tuple = (), reads_arg: int | None = None):
        self.name = name
        self.data = tuple(data)
        self.reads_arg = None if reads_arg is None else int(reads_arg)

    def __repr__(self):
        return f"Callback({self.name!r})"


@dataclass(frozen=True)
class Case:
    """One test case: a short human description, positional and keyword arguments."""
    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Mistake:
    """A typical mistake, written as a wrong implementation with the same signature."""
    key: str
    message: str
    impl: Callable


@dataclass(frozen=True)
class Question:
    """A graded function.  ``id`` is ``"<chapter number>.<function name>"``."""
    id: str
    func: str
    reference: Callable
    make_cases: Callable          # make_cases(rng: np.random.Generator) -> list[Case]
    output_names: tuple | str     # names of the returned values (tuple) or of a returned list (str)
    mistakes: tuple = ()
    points: float = 2.0
    rtol: float = 1e-6
    atol: float = 1e-9
    pure: bool = True             # modifying an argument (other than ``inplace``) is a mistake
    # arguments the function updates in place (optimizer state): their values after the
    # call are compared too, as outputs after the returned value
    inplace: tuple = ()
    # arguments the returned value must not share memory with (returning ``grad`` itself as a
    # new momentum buffer makes the next in-place update overwrite the caller's gradient);
    # copies cross the wire, so the student's process reports the aliasing it sees
    no_alias: tuple = ()
    # arguments it may modify or not, as it likes (not compared)
    may_modify: tuple = ()
    # keep part of the returned value only, e.g. ``out`` of ``(out, cache)``
    project: Callable | None = None
    callbacks: dict = field(default_factory=dict)
    # course_lib modules holding the reference (or an equivalent: a numba twin, a
    # wrapper): unavailable in graded mode; importing one gives zero for this question
    reference_modules: tuple = ()
    # other graded functions this one may call (sgd_epoch calls gd_step): while it is
    # graded they are the references, so each question is graded on its own
    uses: dict = field(default_factory=dict)

    @property
    def chapter_number(self) -> str:
        return self.id.split(".")[0]

    def arg_names(self) -> list[str]:
        return list(_parameters(self.reference))

    def describe(self, path: tuple) -> str:
        """Human name of a position in the returned value, e.g. ``dw`` or ``params[1]``."""
        if not path:
            return self.output_names if isinstance(self.output_names, str) else "the returned value"
        if isinstance(self.output_names, str):
            head, rest = f"{self.output_names}[{path[0]}]", path[1:]
        elif path[0] < len(self.output_names):
            head, rest = self.output_names[path[0]], path[1:]
        else:
            head, rest = f"value {path[0]}", path[1:]
        return head + "".join(f"[{i}]" for i in rest)


@functools.lru_cache(maxsize=256)
def _parameters(fn) -> tuple:
    return tuple(inspect.signature(fn).parameters)


# ----------------------------------------------------------------------------------
# plain data


def canonical(x, depth: int = 0):
    """Plain-data copy of a returned value: nested tuples of fresh ndarrays (0-d for numbers).

    Only exact types are accepted (``float``, ``int``, NumPy scalars, ``np.ndarray`` of a
    numeric dtype, ``list``, ``tuple``); anything else becomes :class:`Bad`, so an object
    with a lying ``__eq__`` or an ndarray subclass is never compared.  A list of numbers
    becomes a 1-d array, so ``losses`` may be a list of floats or an array.
    """
    t = type(x)
    if t is Bad:
        return x
    if t is np.ndarray:
        if x.dtype.kind not in NUMERIC_KINDS:
            return Bad(f"an array of dtype {x.dtype}")
        return np.array(x, copy=True)
    if t is bool:
        return Bad("a bool")
    if t in PY_NUMBERS:
        try:
            return np.array(x, dtype=np.float64 if t is float else np.int64)
        except OverflowError:
            return Bad("an integer too large for int64")
    if t in NP_SCALARS:
        return np.array(x)
    if t in (list, tuple):
        if depth >= MAX_DEPTH:
            return Bad("a too deeply nested list")
        if len(x) > MAX_ITEMS:
            return Bad(f"a list of {len(x)} items")
        items = tuple(canonical(v, depth + 1) for v in x)  # exact list/tuple: plain iteration
        if items and all(type(v) is np.ndarray and v.ndim == 0 for v in items):
            return np.stack(items)
        return items
    if x is None:
        return None
    return Bad(f"an object of type {t.__name__}")


def kind_of(ref) -> str:
    if ref is None:
        return "None"
    if isinstance(ref, Bad):
        return ref.what
    if isinstance(ref, tuple):
        return f"a list or tuple of {len(ref)} values"
    if ref.ndim == 0:
        return "a number"
    return f"an array of shape {ref.shape}"


def compare(ref, got, *, rtol: float, atol: float, nonfinite_equal: bool = False, path=()):
    """First difference between two canonical values, as ``(path, problem)``, or ``None``.

    ``nonfinite_equal``: NaN and inf count as the same value "not finite" (used to match a
    mistake that overflows: one implementation's inf may be another's NaN).
    """
    if ref is None or got is None:
        return None if ref is got else (path, f"is {kind_of(got)}, expected {kind_of(ref)}")
    if isinstance(got, Bad):
        return path, f"is {got.what}, expected {kind_of(ref)}"
    if isinstance(ref, tuple):
        if not isinstance(got, tuple):
            if isinstance(got, np.ndarray) and got.ndim == 1 and all(
                    isinstance(r, np.ndarray) and r.ndim == 0 for r in ref):
                got = tuple(got)  # an array where a list of numbers was expected: fine
            else:
                return path, f"is {kind_of(got)}, expected {kind_of(ref)}"
        if len(got) != len(ref):
            return path, f"has {len(got)} items, expected {len(ref)}"
        for i, (r, g) in enumerate(zip(ref, got)):
            diff = compare(r, g, rtol=rtol, atol=atol, nonfinite_equal=nonfinite_equal,
                           path=path + (i,))
            if diff is not None:
                return diff
        return None
    if isinstance(got, tuple):
        if ref.ndim == 1 and all(isinstance(g, np.ndarray) and g.ndim == 0 for g in got) and got:
            got = np.stack(got)
        else:
            return path, f"is {kind_of(got)}, expected {kind_of(ref)}"
    if got.shape != ref.shape:
        if ref.ndim == 0:
            return path, f"has shape {got.shape}, expected a number (a scalar)"
        return path, f"has shape {got.shape}, expected {ref.shape}"
    if ref.dtype.kind == "f" and got.dtype.kind == "f" and got.dtype.itemsize < ref.dtype.itemsize:
        return path, f"has dtype {got.dtype}, expected {ref.dtype} (precision is lost)"
    r = ref.astype(np.float64)
    g = got.astype(np.float64)
    fin_r, fin_g = np.isfinite(r), np.isfinite(g)
    if not np.array_equal(fin_r, fin_g):
        if nonfinite_equal:
            return path, "is not finite where expected (or the other way round)"
        if not fin_g.all():
            return path, "contains NaN or inf"
        return path, "is finite where the expected value is NaN or inf"
    if not nonfinite_equal and not fin_r.all():  # NaN/inf at the same places: the same NaN/inf
        nr, ng = r[~fin_r], g[~fin_g]
        if not np.array_equal(np.isnan(nr), np.isnan(ng)) or not np.array_equal(nr[~np.isnan(nr)], ng[~np.isnan(ng)]):
            return path, "has NaN/inf that differ from the expected ones"
    both = fin_r
    err = np.abs(g[both] - r[both])
    tol = atol + rtol * np.abs(r[both])
    if err.size and not np.all(err <= tol):
        return path, f"differs from the expected value (max abs error {float(err.max()):.2g})"
    return None


# ----------------------------------------------------------------------------------
# running a function on a case


@dataclass
class Observation:
    """What a function did on one case."""
    value: object = None          # canonical value (if it returned)
    error: str | None = None      # "NotImplementedError", "timeout", or "ValueError: ..."
    mutated: tuple = ()           # names of the arguments it modified in place
    aliased: tuple = ()           # names of ``no_alias`` arguments the returned value shares memory with
    fatal: bool = False           # it timed out or ended the kernel: skip the question's other cases

    @property
    def not_implemented(self) -> bool:
        return self.error is not None and self.error.startswith("NotImplementedError")


def bind_callback(token: Callback, callbacks: dict):
    fn = callbacks[token.name]
    return functools.partial(fn, *copy.deepcopy(token.data)) if token.data else fn


def case_callbacks(case: Case, question: Question) -> dict:
    """``{name: function}`` for the callback tokens of a case (served to the student's process)."""
    found = {}

    def walk(a):
        if isinstance(a, Callback):
            found[a.name] = bind_callback(a, question.callbacks)
        elif isinstance(a, (list, tuple)):
            for v in a:
                walk(v)
    walk(list(case.args) + list(case.kwargs.values()))
    return found


def closure_reads(case: Case) -> list:
    """``[[name, position], ...]`` for the positional callbacks of ``case`` that read an argument."""
    return [[a.name, a.reads_arg] for a in case.args
            if isinstance(a, Callback) and a.reads_arg is not None]


def _reading(fn, args: list, position: int):
    """``fn`` evaluated at ``args[position]`` whatever it is called with (see ``Callback``)."""
    def closure(*_ignored, **_also_ignored):
        return fn(args[position])
    return closure


def materialize(args, callbacks: dict):
    """Fresh argument objects for one run: arrays copied, tokens turned into objects."""
    out = []

    def one(a):
        if isinstance(a, Rng):
            return np.random.default_rng(a.seed)
        if isinstance(a, Callback):
            fn = bind_callback(a, callbacks)
            return fn if a.reads_arg is None else _reading(fn, out, a.reads_arg)
        if isinstance(a, list):
            return [one(v) for v in a]
        if isinstance(a, tuple):
            return tuple(one(v) for v in a)
        return copy.deepcopy(a)
    out.extend(one(a) for a in args)
    return out


def snapshot(args):
    """Plain-data copy of the (mutable) arguments, to detect in-place modification."""
    def one(a):
        if type(a) is np.ndarray:
            return a.copy()
        if type(a) in (list, tuple):
            return (type(a), [one(v) for v in a])
        if type(a) in PY_NUMBERS or type(a) in NP_SCALARS:
            return a
        return None  # callables, generators: not compared
    return [one(a) for a in args]


def _same(a, b) -> bool:
    if type(a) is np.ndarray or type(b) is np.ndarray:
        return (type(a) is np.ndarray and type(b) is np.ndarray and a.shape == b.shape
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return a[0] is b[0] and len(a[1]) == len(b[1]) and all(map(_same, a[1], b[1]))
    if a is None or b is None:
        return a is b
    return type(a) is type(b) and (a == b or (a != a and b != b))


def mutated_args(before, after_args, names) -> tuple:
    after = snapshot(after_args)
    return tuple(n for n, b, a in zip(names, before, after) if not _same(b, a))


def describe_exception(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0][:200] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def observe(question: Question, out, args_after, before, aliased=()) -> Observation:
    """The :class:`Observation` of a call that returned ``out`` and left ``args_after``.

    ``aliased``: positions of the arguments that the returned value shares memory with."""
    value = canonical(out)
    if question.project is not None:
        value = question.project(value)
    names = question.arg_names()
    if question.inplace:
        value = (value,) + tuple(canonical(args_after[names.index(n)]) for n in question.inplace)
    mutated = tuple(n for n in mutated_args(before, args_after, names)
                    if n not in question.inplace and n not in question.may_modify)
    aliased = tuple(names[i] for i in aliased if 0 <= i < len(names) and names[i] in question.no_alias)
    return Observation(value=value, mutated=mutated, aliased=aliased)


def run_local(fn, case: Case, question: Question, *, student: bool = False) -> Observation:
    """Call ``fn`` on ``case`` in this process (self-check mode and for the reference).

    ``student``: ``fn`` is the learner's; the functions of ``question.uses`` in its globals
    are swapped for the references during the call (a wrong ``gd_step`` is graded once).
    """
    args = materialize(case.args, question.callbacks)
    kwargs = dict(zip(case.kwargs, materialize(list(case.kwargs.values()), question.callbacks)))
    before = snapshot(args)
    env = getattr(fn, "__globals__", None) if student else None
    saved = {k: env[k] for k in question.uses if k in env} if isinstance(env, dict) else {}
    try:
        for k in saved:
            env[k] = question.uses[k]
        with np.errstate(all="ignore"):
            out = fn(*args, **kwargs)
    except Exception as exc:  # the function under test may raise anything
        return Observation(error=describe_exception(exc))
    finally:
        for k, v in saved.items():
            env[k] = v
    return observe(question, out, args, before, aliased_indices(out, args))


# ----------------------------------------------------------------------------------
# scoring and feedback


@dataclass
class QuestionResult:
    id: str
    score: float
    max_score: float
    passed: int
    total: int
    feedback: list          # lines, the first one is the summary
    mistake: str | None = None

    def text(self) -> str:
        return "\n".join([f"{self.id}: {self.feedback[0]}"] + ["  " + s for s in self.feedback[1:]])

    def as_dict(self) -> dict:
        return {"id": self.id, "score": self.score, "max_score": self.max_score,
                "feedback": "\n".join(self.feedback), "passed": self.passed, "cases": self.total,
                "mistake": self.mistake}


def observe_problem(question: Question, ref: Observation, got: Observation) -> str | None:
    """Why ``got`` fails the case (``None`` if it passes)."""
    if got.error is not None:
        return "timed out" if got.error == "timeout" else f"raised {got.error}"
    diff = compare(ref.value, got.value, rtol=question.rtol, atol=question.atol)
    if diff is not None:
        path, problem = diff
        names = _which_numbers(question, ref.value, got.value) if not path else None
        if names:
            plural = " and " in names and problem.startswith("differs ")
            return f"{names} {'differ ' + problem[len('differs '):] if plural else problem}"
        return f"{question.describe(path)} {problem}"
    if question.pure and got.mutated:
        return f"modified its argument {', '.join(got.mutated)} in place"
    if got.aliased:
        return (f"returned the array {', '.join(got.aliased)} itself (no copy): a later in-place "
                f"update of the result would overwrite the caller's {got.aliased[0]}")
    return None


def _which_numbers(question: Question, ref, got) -> str | None:
    """For a function returning several numbers (stacked into one array by :func:`canonical`),
    the names of those that differ, e.g. ``"kappa and steps"``; ``None`` otherwise."""
    names = question.output_names
    if not (isinstance(names, tuple) and type(ref) is np.ndarray and ref.ndim == 1
            and ref.shape == (len(names),)):
        return None
    if isinstance(got, tuple) and all(type(g) is np.ndarray and g.ndim == 0 for g in got):
        got = np.stack(got) if got else got
    if type(got) is not np.ndarray or got.shape != ref.shape:
        return None
    wrong = [n for i, n in enumerate(names)
             if compare(ref[i], got[i], rtol=question.rtol, atol=question.atol) is not None]
    if not wrong:
        return None
    return wrong[0] if len(wrong) == 1 else ", ".join(wrong[:-1]) + " and " + wrong[-1]


def same_behaviour(question: Question, a: Observation, b: Observation) -> bool:
    """Does ``b`` behave like ``a`` (used to recognise a catalogued mistake)?"""
    if a.error is not None or b.error is not None:
        # both raised the same kind of exception (x @ W fails on a non-square W)
        return (a.error is not None and b.error is not None and not a.not_implemented
                and a.error.split(":")[0] == b.error.split(":")[0])
    if set(a.mutated) != set(b.mutated) or set(a.aliased) != set(b.aliased):
        return False
    return compare(a.value, b.value, rtol=question.rtol, atol=question.atol,
                   nonfinite_equal=True) is None


def score_of(points: float, passed: int, total: int) -> float:
    return round(points * passed / total, 2) if total else 0.0


def grade_question(question: Question, cases: list, run) -> QuestionResult:
    """Run every case (``run(case) -> Observation``), compare with the reference, name mistakes."""
    refs = [run_local(question.reference, c, question) for c in cases]
    for c, r in zip(cases, refs):
        if r.error is not None:  # a broken case is a bug in the grader, never the student's fault
            raise RuntimeError(f"{question.id}: the reference failed on case {c.name!r}: {r.error}")
    got = []
    for c in cases:
        obs = run(c)
        got.append(obs)
        if obs.fatal:  # don't spend the time limit (or a kernel) again on the same bug
            got.extend(Observation(error=obs.error, fatal=True) for _ in cases[len(got):])
            break
    problems = [observe_problem(question, r, g) for r, g in zip(refs, got)]
    passed = sum(p is None for p in problems)
    total = len(cases)
    score = score_of(question.points, passed, total)
    summary = f"{passed}/{total} cases passed"
    if passed == total:
        return QuestionResult(question.id, score, question.points, passed, total, [summary])
    lines = [summary]
    if all(g.not_implemented for g in got):
        lines.append(f"not implemented yet: {question.func} still raises NotImplementedError")
        return QuestionResult(question.id, score, question.points, passed, total, lines)
    mistake = None
    for m in question.mistakes:
        if all(same_behaviour(question, run_local(m.impl, c, question), g)
               for c, g in zip(cases, got)):
            mistake = m
            lines.append(f"your {question.func} matches a typical mistake: {m.message}")
            break
    failing = [(c, p) for c, p in zip(cases, problems) if p is not None]
    for c, p in failing[:2 if mistake else 3]:
        lines.append(f"case {cases.index(c) + 1} ({c.name}): {p}")
    if len(failing) > (2 if mistake else 3):
        lines.append(f"... and {len(failing) - (2 if mistake else 3)} more failing case(s)")
    return QuestionResult(question.id, score, question.points, passed, total, lines,
                          mistake=mistake.key if mistake else None)
