"""How fast is one optimizer step?  NumPy reference vs our numba kernels vs ``torch.optim``.

An optimizer step is *memory bound*: every parameter's bytes (and its gradient's and
state's) cross the memory bus once per step, and the arithmetic is nearly free.  So the
yardstick is bandwidth: we count the bytes each optimizer must move per parameter and
compare the achieved GB/s with a streaming loop timed in the same round-robin.

=================  =====================================================  ==============
kernel             reads / writes per parameter                           bytes (float32)
=================  =====================================================  ==============
``sgd_momentum``   read p, g, buf; write p, buf                           5 x 4 = 20
``adam``           read p, g, m, v; write p, m, v                         7 x 4 = 28
``adamw``          the same as Adam                                       7 x 4 = 28
``axpy``           read y, x; write y (``y += s * x``, in place)          3 x 4 = 12
``triad``          read b, c; write a (``a = b + s * c``, STREAM's count) 3 x 4 = 12
=================  =====================================================  ==============

The yardstick is **axpy**, not STREAM's triad.  The optimizers update in place, and so does
axpy: every byte counted crosses the bus once.  The triad writes an array it never reads,
and the CPU first reads each of that array's cache lines into the cache (write-allocate),
so it moves 4 elements while being charged for 3.  Its row is kept to show that
effect (it comes out well below 100 % of axpy).  Whether the data comes from DRAM depends on
the working set (3 or 4 arrays of ``n`` elements) against the last-level cache, which
differs between machines (32 MiB and 480 MiB L3 both seen): :func:`cache_note` says which
sizes fit.

Variants timed side by side, round-robin (so a burst of load from other programs hits all
of them alike), after warm-up steps (numba compiles on its first call; that is never timed):

- ``numpy``          ``course_lib.optim`` with ``backend="numpy"`` (the readable reference)
- ``numba``          ``course_lib.optim`` with ``backend="numba"`` (fused, parallel kernel)
- ``torch for-loop`` ``torch.optim`` with ``foreach=False`` (one tensor at a time)
- ``torch foreach``  ``foreach=True`` (multi-tensor ops)
- ``torch fused``    ``fused=True`` (one fused C++ kernel per step)

Used by ``benchmarks/optimizer_step.py`` (full table) and the chapter-3 notebook (a small
one): ``print(format_table(benchmark_optimizers(sizes=[1_000_000], repeat=5)))``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..machine import machine_summary  # noqa: F401  (re-exported for the notebook)

OPTIMIZERS = ("sgd_momentum", "adam", "adamw")
VARIANTS = ("numpy", "numba", "torch for-loop", "torch foreach", "torch fused")
# elements read + written per parameter by one step (multiply by the itemsize for bytes)
ELEMENTS_MOVED = {"sgd_momentum": 5, "adam": 7, "adamw": 7, "axpy": 3, "triad": 3}
# distinct arrays each touches (the working set is this times n times the itemsize)
ARRAYS = {"sgd_momentum": 3, "adam": 4, "adamw": 4, "axpy": 2, "triad": 3}
YARDSTICKS = ("axpy", "triad")

# hyperparameters of the timed steps; the values do not change the work done
_SETTINGS = {
    "sgd_momentum": ("SGD", dict(lr=1e-3, momentum=0.9)),
    "adam": ("Adam", dict(lr=1e-3)),
    "adamw": ("AdamW", dict(lr=1e-3, weight_decay=1e-2)),
}


@dataclass
class BenchRow:
    """One line of the table: a variant of an optimizer at one size."""
    optimizer: str
    n: int
    variant: str
    median_s: float           # median time of one step, seconds
    gb_per_s: float           # bytes moved (see ELEMENTS_MOVED) / median time
    pct_axpy: float           # gb_per_s in % of axpy's (timed in the same round-robin)
    vs_fused: float           # median_s / median_s of "torch fused" (< 1: faster)


def _make_steppers(name: str, n: int, dtype, variants, rng):
    """For each variant, a zero-argument function doing one optimizer step in place."""
    import torch

    import course_lib.optim as ours

    cls_name, kwargs = _SETTINGS[name]
    p0 = rng.standard_normal(n).astype(dtype)
    g0 = rng.standard_normal(n).astype(dtype)
    steppers = {}
    for variant in variants:
        if variant in ("numpy", "numba"):
            p, g = p0.copy(), g0.copy()
            opt = getattr(ours, cls_name)([p], backend=variant, **kwargs)
            steppers[variant] = (lambda opt=opt, g=g: opt.step([g]))
        else:
            flag = {"torch for-loop": dict(foreach=False), "torch foreach": dict(foreach=True),
                    "torch fused": dict(fused=True)}[variant]
            tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
            tp.grad = torch.from_numpy(g0.copy())
            topt = getattr(torch.optim, cls_name)([tp], **kwargs, **flag)
            steppers[variant] = topt.step
    return steppers


def _yardstick_steppers(n: int, dtype, rng) -> dict:
    """``{"axpy": fn, "triad": fn}``, each doing one pass over its arrays."""
    from ..kernels.optim import axpy, triad
    a = np.zeros(n, dtype=dtype)
    b = rng.standard_normal(n).astype(dtype)
    c = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    # s = 1e-30: y keeps its values (no overflow over thousands of passes), the work is the same
    return {"axpy": lambda: axpy(y, c, 1e-30), "triad": lambda: triad(a, b, c, 3.0)}


def _time_once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def benchmark_optimizers(sizes=(1_000_000, 10_000_000), optimizers=OPTIMIZERS,
                         variants=VARIANTS, repeat: int = 15, warmup: int = 3,
                         dtype=np.float32, seed: int = 0, threads: int | None = None,
                         progress=None) -> list[BenchRow]:
    """Time one step of each optimizer and variant, plus axpy and the triad, for each size.

    sizes: numbers of parameters (one flat array).  repeat: timed steps per variant
    (the median is reported).  warmup: untimed steps first (includes numba's compile).
    threads: threads for both numba and torch during the run (default: leave as they are;
    1 gives numbers that depend far less on other programs running on the machine).
    progress: optional callable receiving a short status string.
    Returns a list of :class:`BenchRow`; print it with :func:`format_table`.
    """
    import numba
    import torch

    if threads is not None:
        saved = numba.get_num_threads(), torch.get_num_threads()
        numba.set_num_threads(threads)
        torch.set_num_threads(threads)
        try:
            return benchmark_optimizers(sizes, optimizers, variants, repeat, warmup, dtype,
                                        seed, None, progress)
        finally:
            numba.set_num_threads(saved[0])
            torch.set_num_threads(saved[1])

    unknown = set(optimizers) - set(OPTIMIZERS)
    if unknown:
        raise ValueError(f"optimizers must be among {OPTIMIZERS}, got {sorted(unknown)}")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"variants must be among {VARIANTS}, got {sorted(unknown)}")
    if repeat < 1 or warmup < 1:
        raise ValueError(f"repeat and warmup must be >= 1, got {repeat} and {warmup}")
    rng = np.random.default_rng(seed)
    itemsize = np.dtype(dtype).itemsize
    rows = []
    for n in sizes:
        n = int(n)
        yardsticks = _yardstick_steppers(n, dtype, rng)
        phases = {}
        for name in optimizers:
            if progress:
                progress(f"{name}, n={n:,}")
            steppers = _make_steppers(name, n, dtype, variants, rng)
            steppers.update(yardsticks)
            for fn in steppers.values():
                for _ in range(warmup):
                    fn()
            times = {k: [] for k in steppers}
            order = list(steppers)
            for r in range(repeat):
                # rotate the order so no variant always runs right after a particular one
                for k in order[r % len(order):] + order[:r % len(order)]:
                    times[k].append(_time_once(steppers[k]))
            phases[name] = times
            del steppers
        # the yardstick rows pool all phases; each optimizer is compared with the axpy timed
        # in its own round-robin, i.e. under the same (possibly changing) machine load
        pooled = {k: [t for times in phases.values() for t in times[k]] for k in YARDSTICKS}
        for k in YARDSTICKS:
            rows.append(_row(k, "numba", n, pooled[k], itemsize, pooled["axpy"], None))
        for name, times in phases.items():
            fused = times.get("torch fused")
            for variant in variants:
                rows.append(_row(name, variant, n, times[variant], itemsize, times["axpy"], fused))
    return rows


def _row(name, variant, n, times, itemsize, axpy_times, fused_times) -> BenchRow:
    gb = ELEMENTS_MOVED[name] * itemsize * n / 1e9
    t = float(np.median(times))
    axpy_gbs = ELEMENTS_MOVED["axpy"] * itemsize * n / 1e9 / float(np.median(axpy_times))
    vs = t / float(np.median(fused_times)) if fused_times else float("nan")
    return BenchRow(name, n, variant, t, gb / t, 100 * ((gb / t) / axpy_gbs), vs)


def cache_note(rows: list[BenchRow], itemsize: int = 4, caches: dict | None = None) -> str:
    """One line per size: the working sets against this machine's last-level cache."""
    from ..machine import cache_sizes, format_bytes
    caches = cache_sizes() if caches is None else caches
    if not caches:
        return "cache sizes unknown on this machine"
    level = max(caches, key=lambda k: int(k[1]))
    llc = caches[level]
    lines = []
    for n in sorted({r.n for r in rows}):
        sets = sorted({ARRAYS[r.optimizer] * n * itemsize for r in rows if r.n == n})
        where = ("fit in" if sets[-1] <= llc else "exceed" if sets[0] > llc else "straddle")
        lines.append(f"{n / 1e6:g}M {np.dtype(f'f{itemsize}').name}: working sets "
                     f"{format_bytes(sets[0])}-{format_bytes(sets[-1])} {where} the "
                     f"{format_bytes(llc)} {level}" + (" (served mostly by DRAM)" if where == "exceed"
                                                        else ""))
    return "\n".join(lines)


def format_table(rows: list[BenchRow]) -> str:
    """The rows as a fixed-width text table, every figure from medians.

    ``vs fused`` = median time / median time of ``torch fused`` (below 1: faster);
    ``GB/s`` = bytes counted / median time; ``% axpy`` against axpy's GB/s timed in the same
    round-robin as that optimizer.
    """
    head = (f"{'optimizer':<13}{'params':>7}  {'variant':<15}{'median ms':>10}"
            f"{'vs fused':>10}{'GB/s':>7}{'% axpy':>8}")
    lines = [head, "-" * len(head)]
    last = None
    for r in rows:
        group = (r.n, "yardsticks" if r.optimizer in YARDSTICKS else r.optimizer)
        if last is not None and group != last:
            lines.append("")
        last = group
        vs = "" if np.isnan(r.vs_fused) else f"{r.vs_fused:.2f}x"
        size = f"{r.n / 1e6:g}M" if r.n >= 1e6 else f"{r.n / 1e3:g}k"
        lines.append(f"{r.optimizer:<13}{size:>7}  {r.variant:<15}{r.median_s * 1e3:>10.3f}"
                     f"{vs:>10}{r.gb_per_s:>7.1f}{r.pct_axpy:>7.0f}%")
    return "\n".join(lines)
