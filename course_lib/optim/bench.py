"""How fast is one optimizer step?  NumPy reference vs our numba kernels vs ``torch.optim``.

An optimizer step is *memory bound*: every parameter's bytes (and its gradient's and
state's) cross the memory bus once per step, and the arithmetic is nearly free.  So the
yardstick is bandwidth: we count the bytes each optimizer must move per parameter and
compare the achieved GB/s with a STREAM-style triad ``a = b + s * c`` run in the same
session (the best a simple streaming loop reaches on this machine).

=================  =====================================================  ==============
optimizer          reads / writes per parameter                           bytes (float32)
=================  =====================================================  ==============
``sgd_momentum``   read p, g, buf; write p, buf                           5 x 4 = 20
``adam``           read p, g, m, v; write p, m, v                         7 x 4 = 28
``adamw``          the same as Adam                                       7 x 4 = 28
``triad``          read b, c; write a (STREAM's count, without the        3 x 4 = 12
                   write-allocate read of ``a``)
=================  =====================================================  ==============

The triad writes to an array it does not read, which on most CPUs costs an extra hidden
read (write-allocate); the optimizers update in place and do not pay it.  So "% of triad"
can exceed 100 %.  For 1-10 M float32 parameters the working set (16-400 MB) may also sit
partly in a large last-level cache; the triad sees the same cache, so the ratio is fair.

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

import os
import time
from dataclasses import dataclass

import numpy as np

OPTIMIZERS = ("sgd_momentum", "adam", "adamw")
VARIANTS = ("numpy", "numba", "torch for-loop", "torch foreach", "torch fused")
# elements read + written per parameter by one step (multiply by the itemsize for bytes)
ELEMENTS_MOVED = {"sgd_momentum": 5, "adam": 7, "adamw": 7, "triad": 3}

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
    best_s: float             # fastest step, seconds (least disturbed by other programs)
    gb_per_s: float           # bytes moved (see ELEMENTS_MOVED) / median time
    pct_triad: float          # gb_per_s in % of the triad's (timed in the same round-robin)
    vs_fused: float           # median_s / median_s of "torch fused" (< 1: faster)
    best_gb_per_s: float      # bytes moved / best time


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


def _triad_stepper(n: int, dtype, rng):
    from ..kernels.optim import triad
    a = np.empty(n, dtype=dtype)
    b = rng.standard_normal(n).astype(dtype)
    c = rng.standard_normal(n).astype(dtype)
    return lambda: triad(a, b, c, 3.0)


def _time_once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def benchmark_optimizers(sizes=(1_000_000, 10_000_000), optimizers=OPTIMIZERS,
                         variants=VARIANTS, repeat: int = 15, warmup: int = 3,
                         dtype=np.float32, seed: int = 0, threads: int | None = None,
                         progress=None) -> list[BenchRow]:
    """Time one step of each optimizer and variant, plus the triad, for each size.

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
        triad = _triad_stepper(n, dtype, rng)
        phases = {}
        for name in optimizers:
            if progress:
                progress(f"{name}, n={n:,}")
            steppers = _make_steppers(name, n, dtype, variants, rng)
            steppers["triad"] = triad
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
        # the triad row pools all phases; each optimizer is compared with the triad timed
        # in its own round-robin, i.e. under the same (possibly changing) machine load
        all_triad = [t for times in phases.values() for t in times["triad"]]
        rows.append(_row("triad", "numba", n, all_triad, itemsize, all_triad, None))
        for name, times in phases.items():
            fused = times.get("torch fused")
            for variant in variants:
                rows.append(_row(name, variant, n, times[variant], itemsize, times["triad"], fused))
    return rows


def _row(name, variant, n, times, itemsize, triad_times, fused_times) -> BenchRow:
    gb = ELEMENTS_MOVED[name] * itemsize * n / 1e9
    t, best = float(np.median(times)), float(np.min(times))
    triad_gbs = ELEMENTS_MOVED["triad"] * itemsize * n / 1e9 / float(np.median(triad_times))
    vs = t / float(np.median(fused_times)) if fused_times else float("nan")
    return BenchRow(name, n, variant, t, best, gb / t, 100 * ((gb / t) / triad_gbs), vs, gb / best)


def format_table(rows: list[BenchRow]) -> str:
    """The rows as a fixed-width text table.

    ``vs fused`` = median time / median time of ``torch fused`` (below 1: faster);
    ``GB/s`` and ``% triad`` from the medians (``% triad`` against the triad timed in the
    same round-robin as that optimizer), ``GB/s best`` from the fastest step.
    """
    head = (f"{'optimizer':<13}{'params':>7}  {'variant':<15}{'median ms':>10}{'best ms':>9}"
            f"{'vs fused':>10}{'GB/s':>7}{'% triad':>9}{'GB/s best':>11}")
    lines = [head, "-" * len(head)]
    last = None
    for r in rows:
        if last is not None and (r.n, r.optimizer) != last:
            lines.append("")
        last = (r.n, r.optimizer)
        vs = "" if np.isnan(r.vs_fused) else f"{r.vs_fused:.2f}x"
        size = f"{r.n / 1e6:g}M" if r.n >= 1e6 else f"{r.n / 1e3:g}k"
        lines.append(f"{r.optimizer:<13}{size:>7}  {r.variant:<15}{r.median_s * 1e3:>10.3f}"
                     f"{r.best_s * 1e3:>9.3f}{vs:>10}{r.gb_per_s:>7.1f}{r.pct_triad:>8.0f}%"
                     f"{r.best_gb_per_s:>11.1f}")
    return "\n".join(lines)


def machine_summary() -> str:
    """Threads used by numba and torch, CPU count and load average (the context of a run)."""
    import numba
    import torch
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"numba {numba.__version__} (threads: {numba.get_num_threads()}), "
            f"torch {torch.__version__} (threads: {torch.get_num_threads()}), "
            f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
