"""Time one optimizer step: NumPy reference vs numba kernel vs torch.optim (3 flavours).

    .venv/bin/python benchmarks/optimizer_step.py                   # 1M and 10M float32 params
    .venv/bin/python benchmarks/optimizer_step.py --sizes 1e6 --repeat 30
    .venv/bin/python benchmarks/optimizer_step.py --threads 1     # steadier on a busy machine

Prints the median time of one step of SGD-momentum, Adam and AdamW for each variant, the
ratio to ``torch fused``, the achieved bandwidth (bytes each optimizer must move per
parameter / time) and that bandwidth as a percentage of an in-place axpy ``y += s * x``
timed in the same round-robin (plus STREAM's triad, to show its hidden write-allocate
traffic), and which sizes fit in this machine's last-level cache.  The implementation (and
what is counted) is in ``course_lib/optim/bench.py``.

Timings depend on the machine and on what else runs on it: compare ratios within one
run, and repeat a run before believing a small difference.
"""

from __future__ import annotations

import argparse
import os
import sys

# numba's parallel kernels and torch both use OpenMP thread pools; idle OpenMP threads spin
# before they sleep, so on 2 cores the two pools steal each other's time and torch's timings
# come out several times too slow. Passive waiting (set before either library loads) fixes it.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("NUMBA_CACHE_DIR",
                      os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                   ".numba_cache"))

from course_lib.optim.bench import (  # noqa: E402
    OPTIMIZERS, VARIANTS, benchmark_optimizers, cache_note, format_table, machine_summary)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7],
                        help="numbers of parameters (default: 1e6 1e7)")
    parser.add_argument("--repeat", type=int, default=15, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant")
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS),
                        choices=OPTIMIZERS)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for numba and torch (default: their defaults)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        import numba
        import torch
        numba.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)

    print("optimizer step benchmark:", machine_summary())
    print(f"dtype {args.dtype}, median of {args.repeat} steps after {args.warmup} warm-up "
          "steps, variants timed round-robin\n", flush=True)
    rows = benchmark_optimizers(
        sizes=[int(s) for s in args.sizes], optimizers=args.optimizers, variants=VARIANTS,
        repeat=args.repeat, warmup=args.warmup, dtype=args.dtype, threads=args.threads,
        progress=lambda msg: print(f"  timing {msg} ...", file=sys.stderr, flush=True))
    print(format_table(rows))
    print()
    print(cache_note(rows, itemsize=4 if args.dtype == "float32" else 8))
    print("\nafter the run:", machine_summary())
    print("GB/s counts the bytes each step must move (SGD-momentum 5, Adam/AdamW 7 elements per "
          "parameter, axpy and triad 3). axpy and the optimizers update in place, so each counted "
          "byte crosses the bus once; the triad also reads the array it overwrites "
          "(write-allocate), a fourth transfer it is not charged for.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
