r"""Where the time goes: a roofline of this machine, and serving latency/throughput (chapter 7).

**Roofline** (Williams, Waterman and Patterson 2009).  A kernel doing :math:`F` floating-point
operations while moving :math:`B` bytes to and from memory has *arithmetic intensity*
:math:`I = F / B` (flop/byte) and can run at most at

.. math::  P(I) = \min(P_\text{peak},\; I \cdot \beta)

where :math:`P_\text{peak}` is the machine's peak flop rate and :math:`\beta` its memory bandwidth.
Both are *measured* here, not taken from a data sheet: :math:`P_\text{peak}` from a large float32
GEMM through NumPy's BLAS (:func:`measure_peak_flops`), :math:`\beta` from an in-place axpy
``y += s * x`` (the numba kernel of chapter 3's benchmark, :func:`measure_bandwidth`), each the
best of repeated runs (what the machine can do when nothing else gets in the way).  Not from
STREAM's triad ``a = b + s * c``: it writes an array it never reads, so the CPU reads each
cache line of ``a`` first (write-allocate) and the triad moves 4 arrays while charged for 3;
its roof would sit too low and in-place kernels (Adam) would appear above it.  Below the ridge
point :math:`I^* = P_\text{peak} / \beta` a kernel is memory bound (faster memory helps, more
arithmetic units do not); above it, compute bound.

Each kernel is a :class:`KernelPoint` with its counted flops and bytes (the minimum traffic: every
input read once, every output written once) and its measured time; :func:`roofline_plot` draws
them.  :func:`course_kernels` measures the ones the course has built so far (GEMM at the
digits-MLP's sizes and at 1024, the fused Adam step of chapter 3; the sparse SpMM of chapter 4
and the int8 GEMM of chapter 5 are added when present).  Integer operations are counted like
flops (one multiply-add = 2) and drawn against the float32 roof, which they may exceed: the
CPU's int8 dot-product instructions do four multiply-adds where float32 FMA does one.

**Serving** (:func:`serving_benchmark`).  What a deployer looks at: the latency of a single
request (batch 1) as its median (p50) and 99th percentile (p99) over many requests, and the
throughput (samples per second) at batch sizes 1..256.  Variants are timed round-robin in one
run (a burst of load from other programs hits all of them alike); compare ratios.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

__all__ = ["KernelPoint", "measure_peak_flops", "measure_bandwidth", "time_best",
           "course_kernels", "roofline_plot", "format_kernels", "ServingResult",
           "serving_benchmark", "format_serving", "serving_plot", "ADAM_FLOPS_PER_PARAM"]

#: Adam's arithmetic per parameter, counting sqrt and division as one flop each:
#: m: 2 (lerp), v: 3, sqrt(v)/bc2 + eps: 3, p -= step * m / denom: 3, weight decay 0: total 11.
ADAM_FLOPS_PER_PARAM = 11


@dataclass
class KernelPoint:
    """One kernel on the roofline: ``flops`` operations and ``bytes`` of traffic in ``seconds``
    (the best of repeated runs, see :func:`time_best`)."""
    name: str
    flops: float
    bytes: float
    seconds: float

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, flop/byte."""
        return self.flops / self.bytes

    @property
    def gflops(self) -> float:
        """Achieved GFLOP/s."""
        return self.flops / self.seconds / 1e9

    @property
    def gbytes(self) -> float:
        """Achieved GB/s (of the counted minimum traffic)."""
        return self.bytes / self.seconds / 1e9


def time_best(fn, *, repeat: int = 7, warmup: int = 1, min_time: float = 0.0) -> float:
    """Fastest seconds per call of ``fn()`` over ``repeat`` runs after ``warmup`` untimed calls.

    The roofline asks what a kernel *can* reach, so it takes the best run: on a shared machine
    a run can be slowed by other programs (one descheduled BLAS thread stalls a whole GEMM),
    never sped up.  min_time: each timed run calls ``fn`` as often as needed to last at least
    this long (short kernels are timed in loops), reporting the time per call.
    """
    for _ in range(warmup):
        fn()
    number = 1
    if min_time > 0:
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-7)
        number = max(1, int(min_time / one))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return float(np.min(times))


def _gemm_point(name, m, k, n, *, repeat, seed=0) -> KernelPoint:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    out = np.empty((m, n), dtype=np.float32)
    t = time_best(lambda: np.matmul(a, b, out=out), repeat=repeat, min_time=0.01)
    return KernelPoint(name, 2.0 * m * k * n, 4.0 * (m * k + k * n + m * n), t)


def measure_peak_flops(sizes=((256, 256, 256), (512, 512, 512), (1024, 1024, 1024),
                              (64, 1024, 1024)), *, repeat: int = 7) -> KernelPoint:
    """The roof: the fastest float32 GEMM ``(m, k) @ (k, n)`` through NumPy's BLAS among ``sizes``.

    Several shapes, because on a loaded machine a long GEMM is more likely to be interrupted
    than a short one; the roof is the best rate BLAS reached (``2 m k n`` flops per call).
    """
    points = [_gemm_point(f"GEMM {m}x{k}x{n} (BLAS)", m, k, n, repeat=repeat)
              for m, k, n in sizes]
    return max(points, key=lambda p: p.gflops)


def measure_bandwidth(n: int = 20_000_000, *, repeat: int = 7) -> KernelPoint:
    """In-place axpy ``y += s * x`` on float32 (numba, chapter 3): 2 flops, 12 bytes per element.

    ``n`` elements make a working set of ``8 n`` bytes (160 MB by default): compare it with the
    last-level cache (:func:`course_lib.machine.cache_sizes`) — on a machine whose cache holds
    it, this measures the cache, not DRAM."""
    from ..kernels.optim import axpy

    rng = np.random.default_rng(0)
    y = rng.standard_normal(n, dtype=np.float32)
    x = rng.standard_normal(n, dtype=np.float32)
    t = time_best(lambda: axpy(y, x, 1e-30), repeat=repeat, warmup=2)
    return KernelPoint("axpy (numba)", 2.0 * n, 12.0 * n, t)


def _adam_point(n: int, *, repeat: int) -> KernelPoint:
    from ..kernels.optim import adam_step

    rng = np.random.default_rng(1)
    p, g = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    state = {"step": 0}

    def step():
        state["step"] += 1
        adam_step(p, g, m, v, None, state["step"], lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                  weight_decay=0.0, amsgrad=False, maximize=False)

    t = time_best(step, repeat=repeat, warmup=2, min_time=0.01)
    return KernelPoint(f"fused Adam {n / 1e6:g}M (numba)", ADAM_FLOPS_PER_PARAM * n, 28.0 * n, t)


def _optional_points(repeat: int) -> list[KernelPoint]:
    """Kernels of chapters 4 and 5, when those chapters are installed."""
    points = []
    rng = np.random.default_rng(2)
    try:
        from ..sparse import CSRMatrix, spmm
    except ImportError:
        pass
    else:
        for density in (0.1, 0.01):
            W = rng.standard_normal((1024, 1024)).astype(np.float32)
            W[rng.random(W.shape) >= density] = 0
            A, B = CSRMatrix.from_dense(W), rng.standard_normal((1024, 64)).astype(np.float32)
            nnz = int(np.count_nonzero(W))
            t = time_best(lambda: spmm(A, B), repeat=repeat, warmup=2, min_time=0.01)
            points.append(KernelPoint(f"SpMM {100 * (1 - density):g}% sparse (numba)", 2.0 * nnz * 64,
                                      float(A.nbytes) + 4.0 * (1024 * 64 * 2), t))
    try:
        from ..quant import int8_matmul
    except ImportError:
        pass
    else:
        a = rng.integers(-128, 128, (64, 1024)).astype(np.int8)
        b = rng.integers(-128, 128, (1024, 1024)).astype(np.int8)
        t = time_best(lambda: int8_matmul(a, b), repeat=repeat, warmup=2, min_time=0.01)
        points.append(KernelPoint("int8 GEMM 64x1024x1024 (numba)", 2.0 * 64 * 1024 * 1024,
                                  64 * 1024 + 1024 * 1024 + 4.0 * 64 * 1024, t))
    return points


def course_kernels(*, repeat: int = 7, big: bool = True) -> tuple[KernelPoint, KernelPoint, list]:
    """Measure the roof (peak GEMM, axpy bandwidth) and the course's kernels.

    Returns ``(peak, bandwidth, points)``; ``big=False`` uses smaller sizes (for notebooks).
    """
    peak = measure_peak_flops(repeat=repeat) if big else measure_peak_flops(
        ((256, 256, 256), (64, 512, 512)), repeat=repeat)
    bw = measure_bandwidth(20_000_000 if big else 8_000_000, repeat=repeat)   # 160 / 64 MB
    points = [
        _gemm_point("GEMM digits layer 64x64x300", 64, 64, 300, repeat=repeat),
        _gemm_point("GEMM batch-1 layer 1x300x100", 1, 300, 100, repeat=repeat),
        _adam_point(10_000_000 if big else 8_000_000, repeat=repeat),   # 160 / 128 MB
    ]
    return peak, bw, points + _optional_points(repeat)


def roofline_plot(ax, peak: KernelPoint, bandwidth: KernelPoint, points, *, annotate=True):
    """Draw the measured roofline and the kernels on ``ax`` (log-log axes)."""
    from ..plots import COLORS

    P, beta = peak.gflops, bandwidth.gbytes
    ridge = P / beta
    intensities = [p.intensity for p in points] + [peak.intensity, bandwidth.intensity, ridge]
    lo, hi = min(intensities) / 3, max(intensities) * 3
    x = np.geomspace(lo, hi, 200)
    ax.plot(x, np.minimum(P, x * beta), color="0.3", lw=2,
            label=f"roof: {P:.0f} GFLOP/s, {beta:.1f} GB/s")
    ax.axvline(ridge, color="0.6", ls=":", lw=1, label=f"ridge point {ridge:.1f} flop/byte")
    markers = "osD^vP*Xh"
    for i, p in enumerate([bandwidth, peak] + list(points)):
        ax.plot(p.intensity, p.gflops, markers[i % len(markers)], ms=7,
                color=COLORS[i % len(COLORS)], label=f"{p.name}: {p.gflops:.1f} GFLOP/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (flop / byte)")
    ax.set_ylabel("performance (GFLOP/s)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    return ax


def format_kernels(peak: KernelPoint, bandwidth: KernelPoint, points) -> str:
    """A table: intensity, GFLOP/s, GB/s, and the fraction of the roof at that intensity."""
    P, beta = peak.gflops, bandwidth.gbytes
    head = f"{'kernel':<36}{'flop/B':>8}{'GFLOP/s':>9}{'GB/s':>7}{'% of roof':>11}  bound"
    lines = [head, "-" * len(head)]
    for p in [peak, bandwidth] + list(points):
        roof = min(P, p.intensity * beta)
        bound = "memory" if p.intensity < P / beta else "compute"
        lines.append(f"{p.name:<36}{p.intensity:>8.2f}{p.gflops:>9.1f}{p.gbytes:>7.1f}"
                     f"{100 * p.gflops / roof:>10.0f}%  {bound}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ serving

@dataclass
class ServingResult:
    """Latency at batch 1 and throughput per batch size for one variant."""
    variant: str
    p50_ms: float
    p99_ms: float
    throughput: dict          # batch size -> samples per second (from the median time)


def serving_benchmark(predictors: dict, X, *, batch_sizes=(1, 4, 16, 64, 256),
                      n_requests: int = 500, repeat: int = 15, warmup: int = 5,
                      progress=None) -> list[ServingResult]:
    """Time each ``predictors[name](X_batch)`` round-robin.

    predictors: ``{name: callable}`` taking a float32 ``(b, d)`` array and returning logits.
    X:          (n, d) float32 inputs to draw the requests and batches from (n >= max batch).
    Latency: ``n_requests`` single-sample calls per variant, interleaved, p50 and p99.
    Throughput: per batch size, ``repeat`` interleaved calls; ``b / median time``.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] < max(batch_sizes):
        raise ValueError(f"X must be 2-D with at least {max(batch_sizes)} rows, got {X.shape}")
    names = list(predictors)
    for fn in predictors.values():
        for _ in range(warmup):
            fn(X[:1])
            fn(X[:max(batch_sizes)])
    lat = {k: [] for k in names}
    for r in range(n_requests):
        x = X[r % X.shape[0]:r % X.shape[0] + 1]
        for k in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            predictors[k](x)
            lat[k].append(time.perf_counter() - t0)
    thr = {k: {} for k in names}
    for b in batch_sizes:
        if progress:
            progress(f"batch {b}")
        xb = X[:b]
        times = {k: [] for k in names}
        for r in range(repeat):
            for k in names[r % len(names):] + names[:r % len(names)]:
                t0 = time.perf_counter()
                predictors[k](xb)
                times[k].append(time.perf_counter() - t0)
        for k in names:
            thr[k][b] = b / float(np.median(times[k]))
    return [ServingResult(k, 1e3 * float(np.percentile(lat[k], 50)),
                          1e3 * float(np.percentile(lat[k], 99)), thr[k]) for k in names]


def format_serving(results: list[ServingResult], *, reference: str | None = None) -> str:
    """Latency (ms) and throughput (samples/s) with ratios to ``reference`` (default: the first)."""
    ref = next(r for r in results if r.variant == (reference or results[0].variant))
    sizes = list(ref.throughput)
    head = (f"{'variant':<24}{'p50 ms':>8}{'p99 ms':>8}{'p50 vs ref':>11}"
            + "".join(f"{'b=' + str(b):>10}" for b in sizes))
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.variant:<24}{r.p50_ms:>8.3f}{r.p99_ms:>8.3f}"
                     f"{ref.p50_ms / r.p50_ms:>10.2f}x"
                     + "".join(f"{r.throughput[b]:>10.0f}" for b in sizes))
    lines.append("")
    lines.append(f"throughput in samples/s; as a ratio to {ref.variant}:")
    for r in results:
        lines.append(f"{r.variant:<24}{'':>27}"
                     + "".join(f"{r.throughput[b] / ref.throughput[b]:>9.2f}x" for b in sizes))
    return "\n".join(lines)


def serving_plot(results: list[ServingResult]):
    """Two panels: throughput vs batch size (log-log), and p50/p99 latency at batch 1."""
    import matplotlib.pyplot as plt

    from ..plots import COLORS

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    markers = "osD^vP"
    for i, r in enumerate(results):
        sizes = list(r.throughput)
        ax1.plot(sizes, [r.throughput[b] for b in sizes], marker=markers[i % len(markers)],
                 color=COLORS[i % len(COLORS)], label=r.variant)
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log")
    ax1.set_xlabel("batch size")
    ax1.set_ylabel("throughput (samples / s)")
    ax1.set_title("Throughput (median of interleaved calls)")
    ax1.legend()
    x = np.arange(len(results))
    ax2.bar(x - 0.2, [r.p50_ms for r in results], 0.4, color=COLORS[0], label="p50")
    ax2.bar(x + 0.2, [r.p99_ms for r in results], 0.4, color=COLORS[1], label="p99")
    ax2.set_xticks(x, [r.variant for r in results], rotation=20, ha="right")
    ax2.set_ylabel("latency of one request (ms)")
    ax2.set_title("Single-request latency (batch 1)")
    ax2.legend()
    fig.tight_layout()
    return fig
