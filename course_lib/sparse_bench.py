"""Timing ``A @ B`` with a sparse weight: dense BLAS, SciPy CSR, torch CSR, ours (chapter 4).

Used by ``benchmarks/sparse_matmul.py`` and the chapter notebook.  Every variant is timed
round-robin (one call of each in turn, repeated), so a burst of load from elsewhere hits all
of them alike; the statistic is the median.  Inputs are float32, ``B`` C-contiguous.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from .machine import machine_summary  # noqa: F401  (re-exported for the notebook)
from .sparse import CSRMatrix, spmm

__all__ = ["VARIANTS", "set_threads", "benchmark_structured", "format_structured", "make_problem", "time_variants", "benchmark_spmm", "format_table",
           "break_even", "machine_summary"]

VARIANTS = ("dense BLAS", "scipy CSR", "torch CSR", "ours")


def set_threads(n: int) -> None:
    """Use ``n`` threads in numba, torch and NumPy's BLAS (SciPy's CSR product is serial)."""
    import numba
    import torch
    from threadpoolctl import threadpool_limits
    numba.set_num_threads(n)
    torch.set_num_threads(n)
    threadpool_limits(n)


def make_problem(m=1024, k=1024, n=64, sparsity=0.9, seed=0, dtype=np.float32):
    """``W`` (m, k) with ``round(sparsity * m * k)`` zeros at random places, ``B`` (k, n)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, k)).astype(dtype)
    W.reshape(-1)[rng.permutation(m * k)[:round(sparsity * m * k)]] = 0
    return W, rng.standard_normal((k, n)).astype(dtype)


def _callables(W, B, variants):
    import scipy.sparse as sp
    import torch

    A = CSRMatrix.from_dense(W)
    S = sp.csr_matrix(W)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "sparse CSR support is in beta"
        T = torch.from_numpy(W).to_sparse_csr()
    TB = torch.from_numpy(B)
    out = np.empty((W.shape[0], B.shape[1]), W.dtype)
    fns = {"dense BLAS": lambda: W @ B, "scipy CSR": lambda: S @ B,
           "torch CSR": lambda: torch.mm(T, TB), "ours": lambda: spmm(A, B, out=out)}
    return {v: fns[v] for v in variants}


def time_variants(W, B, variants=VARIANTS, repeat=21, warmup=2, stat="median") -> dict:
    """``{variant: seconds}`` of ``W @ B``, variants interleaved; ``stat``: ``"median"`` or
    ``"min"`` (on a heavily loaded machine, the uncontended cost of an operation that a time
    slice often interrupts)."""
    fns = _callables(W, B, variants)
    for _ in range(warmup):             # includes the compiling call of our kernels
        for f in fns.values():
            f()
    times = {v: [] for v in fns}
    for _ in range(repeat):
        for v, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[v].append(time.perf_counter() - t0)
    if stat not in ("median", "min"):
        raise ValueError(f"stat must be 'median' or 'min', got {stat!r}")
    return {v: float(np.median(t) if stat == "median" else np.min(t)) for v, t in times.items()}


def benchmark_spmm(sparsities=(0.0, 0.5, 0.9, 0.95, 0.99), *, m=1024, k=1024, n=64, repeat=21,
                   seed=0, variants=VARIANTS, progress=None, stat="median") -> list:
    """One row per sparsity: times (``stat`` of the repeats), nnz, bytes of CSR and dense."""
    rows = []
    for s in sparsities:
        if progress:
            progress(f"sparsity {s:.0%}")
        W, B = make_problem(m, k, n, s, seed)
        A = CSRMatrix.from_dense(W)
        rows.append({"sparsity": s, "nnz": A.nnz, "csr_bytes": A.nbytes, "dense_bytes": W.nbytes,
                     "times": time_variants(W, B, variants, repeat, stat=stat)})
    return rows


def format_table(rows) -> str:
    """A text table: microseconds per variant, ours / best(SciPy, torch), ours / dense,
    bytes of CSR / dense."""
    variants = [v for v in VARIANTS if v in rows[0]["times"]]
    libs = all(v in variants for v in ("scipy CSR", "torch CSR", "ours"))
    head = (f"{'sparsity':>8} {'nnz':>9} " + " ".join(f"{v:>13}" for v in variants)
            + (f" {'ours/best lib':>13}" if libs else "") + f" {'ours/dense':>10} {'CSR/dense bytes':>15}")
    lines = [head, "-" * len(head)]
    for r in rows:
        t = r["times"]
        lib = f" {t['ours'] / min(t['scipy CSR'], t['torch CSR']):>12.2f}x" if libs else ""
        lines.append(f"{r['sparsity']:>8.0%} {r['nnz']:>9,} "
                     + " ".join(f"{t[v] * 1e6:>10.0f} us" for v in variants)
                     + lib + f" {t['ours'] / t['dense BLAS']:>9.2f}x"
                     + f" {r['csr_bytes'] / r['dense_bytes']:>15.3f}")
    return "\n".join(lines)


def break_even(rows) -> float | None:
    """The sparsity where ours and dense BLAS take the same time, interpolated linearly in
    sparsity between the two measured rows that bracket it (``None`` if not bracketed)."""
    pts = sorted((r["sparsity"], np.log(r["times"]["ours"] / r["times"]["dense BLAS"])) for r in rows)
    for (s0, l0), (s1, l1) in zip(pts[:-1], pts[1:]):
        if l0 >= 0 > l1:
            return s0 + (s1 - s0) * l0 / (l0 - l1)
    return None


def benchmark_structured(sparsities=(0.5, 0.75, 0.9), *, m=1024, k=1024, n=64, repeat=21, seed=0,
                         stat="median", progress=None) -> list:
    """Structured vs unstructured pruning at the same sparsity: the full dense product, the
    smaller dense product left when ``sparsity`` of the weight's rows (output units) are removed,
    and our CSR product with the same number of zeros scattered at random."""
    from .sparse import CSRMatrix, spmm

    rows = []
    for s in sparsities:
        if progress:
            progress(f"structured {s:.0%}")
        W, B = make_problem(m, k, n, 0.0, seed)
        Ws = np.ascontiguousarray(W[: m - round(s * m)])
        Wu, _ = make_problem(m, k, n, s, seed)
        A = CSRMatrix.from_dense(Wu)
        out = np.empty((m, n), W.dtype)
        fns = {"dense (all rows)": lambda: W @ B, "structured (rows removed)": lambda: Ws @ B,
               "unstructured CSR (ours)": lambda: spmm(A, B, out=out)}
        for f in fns.values():
            f()
        times = {v: [] for v in fns}
        for _ in range(repeat):
            for v, f in fns.items():
                t0 = time.perf_counter()
                f()
                times[v].append(time.perf_counter() - t0)
        agg = np.median if stat == "median" else np.min
        rows.append({"sparsity": s, "times": {v: float(agg(t)) for v, t in times.items()}})
    return rows


def format_structured(rows) -> str:
    names = list(rows[0]["times"])
    head = f"{'sparsity':>8} " + " ".join(f"{v:>26}" for v in names)
    lines = [head, "-" * len(head)]
    for r in rows:
        t = r["times"]
        base = t[names[0]]
        lines.append(f"{r['sparsity']:>8.0%} " + " ".join(
            f"{t[v] * 1e6:>11.0f} us ({base / t[v]:>5.1f}x)".rjust(26) for v in names))
    return "\n".join(lines)
