"""Time int8 matrix products: NumPy/torch float32, torch's fbgemm int8, our readable and VNNI kernels.

    .venv/bin/python benchmarks/int8_matmul.py                 # the digits layers and 64x1024x1024
    .venv/bin/python benchmarks/int8_matmul.py --repeat 31
    .venv/bin/python benchmarks/int8_matmul.py --threads 1     # steadier on a busy machine (numba, torch, BLAS)

Prints, per product, the median time per call of each variant (timed round-robin) and its
speed relative to NumPy float32 (x np, > 1: faster); then the same for the best round, the one
least disturbed by other programs (on a busy shared machine the medians are mostly noise).  What each variant includes is listed in
``course_lib/quant/bench.py``: the "GEMM alone" rows exclude quantizing the activations, which is
shown on its own line ("ours quantize x"); "torch int8 dyn" and "ours dyn" include it.

Timings depend on the machine and on what else runs on it: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("NUMBA_CACHE_DIR",
                      os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".numba_cache"))

from course_lib.kernels.int8 import has_vnni  # noqa: E402
from course_lib.machine import machine_summary  # noqa: E402
from course_lib.quant.bench import SHAPES, benchmark_int8, format_int8_table  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21, help="timed rounds per product")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per variant")
    parser.add_argument("--threads", type=int, default=None, help="threads for numba, torch and NumPy's BLAS")
    args = parser.parse_args(argv)
    if args.threads is not None:
        import numba
        import torch
        from threadpoolctl import threadpool_limits
        numba.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
        threadpool_limits(limits=args.threads)  # NumPy's BLAS too: every variant gets the same cores
    print("int8 matmul benchmark:", machine_summary())
    print(f"AVX-512 VNNI: {'yes' if has_vnni() else 'no (ours vnni not run)'}; median of {args.repeat} "
          "round-robin rounds\n", flush=True)
    results = benchmark_int8(SHAPES, repeat=args.repeat, warmup=args.warmup)
    for stat in ("median", "best"):
        print(format_int8_table(results, stat) + "\n")
        big = {k: v[stat] for k, v in results[SHAPES[-1][0]].items()}
        if "ours vnni" in big:
            print(f"64x1024x1024 ({stat}): ours vnni (GEMM alone) vs torch int8 dyn (fbgemm, incl. quantizing x): "
                  f"{big['torch int8 dyn'] / big['ours vnni']:.2f}x; ours dyn vs torch int8 dyn (both end to end): "
                  f"{big['torch int8 dyn'] / big['ours dyn']:.2f}x; ours vnni vs torch _int_mm (both GEMM alone): "
                  + (f"{big['torch _int_mm'] / big['ours vnni']:.2f}x" if "torch _int_mm" in big else "-")
                  + " (> 1: ours faster)\n")
    print("\nafter the run:", machine_summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
