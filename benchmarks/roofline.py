"""The roofline of this machine, measured, with the course's kernels placed on it.

    .venv/bin/python benchmarks/roofline.py               # the table (add --plot roofline.png for the figure)
    .venv/bin/python benchmarks/roofline.py --small --threads 1

Peak float32 FLOP/s from the fastest of several GEMMs through NumPy's BLAS, bandwidth from an
in-place axpy y += s * x (numba, chapter 3's yardstick), then GEMMs at the digits MLP's sizes and at 64x1024x1024, the fused
Adam step of chapter 3, and (when chapters 4 and 5 are present) the sparse SpMM and the int8
GEMM.  Every point is the best of repeated runs; flops and bytes are counted in
``course_lib/compress/bench.py``.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("NUMBA_CACHE_DIR",
                      os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                   ".numba_cache"))

from course_lib.compress.bench import course_kernels, format_kernels, roofline_plot  # noqa: E402
from course_lib.machine import machine_summary  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per kernel (best kept)")
    parser.add_argument("--small", action="store_true", help="smaller arrays (quicker)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS and numba (default: theirs; 1 = one core, steadier "
                             "on a busy machine)")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="also draw the figure into this PNG file")
    args = parser.parse_args(argv)
    if args.threads is not None:
        import numba
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
        numba.set_num_threads(args.threads)
    print("roofline:", machine_summary(), flush=True)
    peak, bw, points = course_kernels(repeat=args.repeat, big=not args.small)
    print(format_kernels(peak, bw, points))
    print(f"\nridge point: {peak.gflops / bw.gbytes:.1f} flop/byte "
          f"(below it a kernel is memory bound on this machine)")
    print("after the run:", machine_summary())
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from course_lib.plots import use_course_style
        use_course_style()
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        roofline_plot(ax, peak, bw, points)
        ax.set_title("Roofline of this machine (float32), best of repeats")
        fig.savefig(args.plot, bbox_inches="tight", dpi=110)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
