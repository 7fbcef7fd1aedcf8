"""What distillation costs: one training epoch of a small student on the digits, three ways.

    .venv/bin/python benchmarks/distill_epoch.py
    .venv/bin/python benchmarks/distill_epoch.py --repeat 31 --teacher 64 512 512 10

Variants (same student, same batches, one epoch of ``course_lib.nn.fit`` / ``course_lib.distill``):

- ``labels``    the student on hard labels (softmax cross-entropy) — the yardstick;
- ``cached``    distillation with the teacher's logits computed once up front and looked up by
                batch indices (``distill(..., cache=True)``, the default);
- ``uncached``  distillation running the teacher's forward pass on every batch (``cache=False``);
- ``cache``     the one-time cost of filling the cache (``compute_teacher_logits`` on the
                transfer set), shown as a fraction of one ``labels`` epoch.

Repeats are interleaved round-robin (one epoch of each variant per round) and the table shows
medians and ratios to ``labels``, with the multiply-adds per example of the student's training
step (forward + backward ~ 3x forward) and of the teacher's forward pass, and the load average.
Compare ratios within one run: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from course_lib.data import load_digits_split  # noqa: E402
from course_lib.distill import compute_teacher_logits, distill  # noqa: E402
from course_lib.nn import MLP, fit, summary  # noqa: E402


def measure(teacher_sizes=(64, 256, 256, 10), student_sizes=(64, 8, 10), *, repeat=15,
            batch_size=64, seed=0):
    """Median seconds per epoch of each variant: ``{name: median}``, plus the MAC counts."""
    d = load_digits_split(seed=seed)
    teacher = MLP(list(teacher_sizes), seed=seed)
    student = MLP(list(student_sizes), seed=seed)
    t = compute_teacher_logits(teacher, d.X_train)
    X, y = d.X_train, d.y_train
    variants = {
        "labels": lambda: fit(student, X, y, lr=0.01, epochs=1, batch_size=batch_size, seed=seed),
        "cached": lambda: distill(student, X, y, teacher_logits=t, T=4.0, alpha=0.9, lr=0.01,
                                  epochs=1, batch_size=batch_size, seed=seed),
        "uncached": lambda: distill(student, X, y, teacher=teacher, cache=False, T=4.0, alpha=0.9,
                                    lr=0.01, epochs=1, batch_size=batch_size, seed=seed),
        "cache": lambda: compute_teacher_logits(teacher, X),
    }
    times = {k: [] for k in variants}
    for fn in variants.values():   # warm-up
        fn()
    for _ in range(repeat):
        for k, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    medians = {k: float(np.median(v)) for k, v in times.items()}
    macs = {"student step (3x forward)": 3 * summary(student).total_macs,
            "teacher forward": summary(teacher).total_macs}
    return medians, macs


def format_table(medians, macs) -> str:
    base = medians["labels"]
    rows = [f"{'variant':<10} {'median / epoch':>15} {'ratio to labels':>16}"]
    for k, v in medians.items():
        rows.append(f"{k:<10} {v * 1e3:>12.2f} ms {v / base:>15.2f}x")
    rows.append("")
    rows += [f"multiply-adds per example, {k}: {v:,}" for k, v in macs.items()]
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--teacher", nargs="+", type=int, default=[64, 256, 256, 10])
    parser.add_argument("--student", nargs="+", type=int, default=[64, 8, 10])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = parser.parse_args(argv)
    with threadpool_limits(limits=args.threads):
        medians, macs = measure(args.teacher, args.student, repeat=args.repeat)
    print(f"teacher {args.teacher}, student {args.student}, digits training set, batch 64, "
          f"{args.repeat} interleaved rounds, BLAS threads {args.threads}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(format_table(medians, macs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
