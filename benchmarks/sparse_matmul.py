"""Time a pruned 1024x1024 weight times a 1024x64 activation block: dense BLAS vs SciPy CSR vs
torch CSR vs our numba CSR kernel (1 thread, and automatic threading).

    .venv/bin/python benchmarks/sparse_matmul.py                 # 0, 50, 90, 95, 99% sparsity
    .venv/bin/python benchmarks/sparse_matmul.py --repeat 51
    .venv/bin/python benchmarks/sparse_matmul.py --break-even     # + a finer scan for the break-even
    .venv/bin/python benchmarks/sparse_matmul.py --threads 2      # every library on 2 threads
    .venv/bin/python benchmarks/sparse_matmul.py --stat min       # best of the repeats (loaded machine)

Prints the median of interleaved repeats (all variants in one run), the ratio of ours to the
best of SciPy and torch, to dense BLAS, and the memory of CSR relative to dense.  Then the
break-even sparsity against dense BLAS and the time per multiply-add of each, which explains
it: CSR is worth it once density < (dense time per MAC) / (CSR time per MAC).
Last, structured vs unstructured pruning at 50/75/90%: the smaller dense product left after
removing rows (output units) against our CSR product with as many zeros scattered at random.
Timings depend on the machine and its load (printed): compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # see benchmarks/optimizer_step.py
os.environ.setdefault("NUMBA_CACHE_DIR",
                      os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                   ".numba_cache"))

from course_lib.sparse_bench import (  # noqa: E402
    benchmark_spmm, benchmark_structured, break_even, format_structured, format_table,
    machine_summary, set_threads)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sparsities", nargs="+", type=float, default=[0.0, 0.5, 0.9, 0.95, 0.99])
    p.add_argument("--repeat", type=int, default=21)
    p.add_argument("--break-even", action="store_true", help="also scan 60-95%% in 5%% steps")
    p.add_argument("--stat", default="median", choices=["median", "min"],
                   help="statistic of the repeats (min: the uncontended cost on a loaded machine)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for every library (default 1: on a shared 2-core machine a "
                        "descheduled second thread stalls the first; try 2 on an idle one)")
    args = p.parse_args(argv)
    set_threads(args.threads)
    print("sparse matmul benchmark:", machine_summary())
    print(f"float32, W 1024x1024 @ B 1024x64, {args.stat} of {args.repeat} interleaved repeats\n",
          flush=True)

    def progress(msg):
        print(f"  timing {msg} ...", file=sys.stderr, flush=True)

    rows = benchmark_spmm(args.sparsities, repeat=args.repeat, progress=progress, stat=args.stat)
    print(format_table(rows))
    scan = rows
    if args.break_even:
        extra = [s for s in (0.6, 0.65, 0.7, 0.75, 0.8, 0.85) if s not in args.sparsities]
        scan = sorted(rows + benchmark_spmm(extra, repeat=args.repeat, progress=progress, stat=args.stat),
                      key=lambda r: r["sparsity"])
        print("\nfiner scan:\n" + format_table(scan))
    be = break_even(scan)
    dense = [r for r in scan if r["sparsity"] == 0.0]
    if dense:
        t = dense[0]["times"]["dense BLAS"] / (1024 * 1024 * 64)
        print(f"\ndense BLAS: {t * 1e12:.1f} ps per multiply-add (every entry, zero or not)")
    for r in scan:
        if r["sparsity"] >= 0.9:
            print(f"ours at {r['sparsity']:.0%}: {r['times']['ours'] / (r['nnz'] * 64) * 1e12:.1f} "
                  f"ps per multiply-add (non-zeros only)")
    print("break-even sparsity vs dense BLAS:",
          f"{be:.0%}" if be is not None else "not bracketed by the measured sparsities")
    st = benchmark_structured(repeat=args.repeat, stat=args.stat, progress=progress)
    print("\nstructured vs unstructured at the same sparsity (speed-up over the full dense product):")
    print(format_structured(st))
    print("\nafter the run:", machine_summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
