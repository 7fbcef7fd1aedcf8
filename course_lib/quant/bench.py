"""How fast is an int8 matrix product?  Ours (readable, VNNI) vs NumPy/torch float32 and fbgemm.

Used by ``benchmarks/int8_matmul.py`` (full table) and the chapter-5 notebook (a small one).
Every variant computes ``x @ W.T`` for ``x`` (m, k) and ``W`` (n, k):

====================  ==========================================================================
variant               what is timed
====================  ==========================================================================
numpy f32             ``x @ W.T`` in float32 (BLAS)
torch f32             ``torch.nn.functional.linear(x, W)`` in float32 (MKL/oneDNN)
torch int8 dyn        ``torch.ops.quantized.linear_dynamic`` (fbgemm): quantize x, int8 GEMM,
                      float epilogue, weights prepacked
torch _int_mm         ``torch._int_mm`` int8 x int8 -> int32 (the GEMM alone), if supported
ours readable         ``int8_matmul_readable(x_q, W_q.T)`` (the GEMM alone)
ours vnni             ``int8_matmul_vnni(x_q, packed W_q.T)`` (the GEMM alone, weights prepacked)
ours dyn              :class:`course_lib.quant.DynamicQuantizedLinear` end to end (weights
                      prepacked; its GEMM is ``int8_matmul``: VNNI where available)
ours quantize x       the overhead alone: ``choose_qparams_dynamic`` + ``quantize_per_tensor`` of x
====================  ==========================================================================

Timing: variants run round-robin (one call of each per round, so a burst of load from other
programs hits them alike), after warm-up calls (numba compiles on its first call, never timed);
each round times ``number`` calls so tiny products are above the clock's resolution; the tables
show the median (and the best) round per call and its ratio to ``numpy f32`` (> 1: faster than
NumPy float32), each ratio taken within one statistic.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

__all__ = ["SHAPES", "benchmark_int8", "format_int8_table"]

#: (name, m, k, n): the digits MLP's layers on a 359-image batch, and one larger product
SHAPES = [("digits 359x64 -> 64", 359, 64, 64), ("digits 359x64 -> 10", 359, 64, 10),
          ("64x1024 -> 1024", 64, 1024, 1024)]


def _variants(m, k, n, rng):
    import torch

    from ..kernels import int8 as K
    from .affine import quantize_per_tensor
    from .qlinear import DynamicQuantizedLinear, choose_qparams_dynamic, quantize_weight_per_channel

    x = rng.standard_normal((m, k)).astype(np.float32)
    W = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
    w_q, w_s, _ = quantize_weight_per_channel(W)
    s, z = choose_qparams_dynamic(float(x.min()), float(x.max()))
    x_q = quantize_per_tensor(x, s, z, "quint8")
    w_qt = np.ascontiguousarray(w_q.T)
    xt, Wt = torch.from_numpy(x), torch.from_numpy(W)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qw = torch.quantize_per_channel(Wt, torch.from_numpy(w_s.astype(np.float64)), torch.zeros(n, dtype=torch.long),
                                        0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(qw, None)
    v = {
        "numpy f32": lambda: x @ W.T,
        "torch f32": lambda: torch.nn.functional.linear(xt, Wt),
        "torch int8 dyn": lambda: torch.ops.quantized.linear_dynamic(xt, packed, True),
    }
    try:
        xi, wi = torch.from_numpy(x_q.view(np.int8) ^ np.int8(-128)), torch.from_numpy(w_qt)
        torch._int_mm(xi, wi)
        v["torch _int_mm"] = lambda: torch._int_mm(xi, wi)
    except Exception:  # noqa: BLE001 - not every build/shape supports it on CPU
        pass
    v["ours readable"] = lambda: K.int8_matmul_readable(x_q, w_qt)
    if K.has_vnni():
        pw = K.pack_int8_weights(w_qt)
        v["ours vnni"] = lambda: K.int8_matmul_vnni(x_q, pw)
    layer = DynamicQuantizedLinear(w_q, w_s, None)          # weights prepacked once, like fbgemm's
    v["ours dyn"] = lambda: layer.forward(x)
    v["ours quantize x"] = lambda: quantize_per_tensor(x, *choose_qparams_dynamic(float(x.min()), float(x.max())), "quint8")
    return v


def benchmark_int8(shapes=SHAPES, *, repeat: int = 15, warmup: int = 3, target_s: float = 2e-3, seed: int = 0):
    """``{shape name: {variant: {"median": s, "best": s}}}`` (seconds per call), variants timed round-robin.

    The best round is the one least disturbed by other programs (useful on a shared machine)."""
    rng = np.random.default_rng(seed)
    results = {}
    for name, m, k, n in shapes:
        fns = _variants(m, k, n, rng)
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        # calls per timed round: enough to last ~target_s for the slowest-but-one variant
        number = {}
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            number[key] = max(1, int(target_s / max(time.perf_counter() - t0, 1e-7)))
        times = {key: [] for key in fns}
        for _ in range(repeat):
            for key, fn in fns.items():
                t0 = time.perf_counter()
                for _ in range(number[key]):
                    fn()
                times[key].append((time.perf_counter() - t0) / number[key])
        results[name] = {key: {"median": float(np.median(ts)), "best": float(np.min(ts))}
                         for key, ts in times.items()}
    return results


def format_int8_table(results, stat: str = "median") -> str:
    """Time per call (microseconds; ``stat``: the ``"median"`` or the ``"best"`` round) and speed
    relative to NumPy float32 (x np, > 1 faster)."""
    if stat not in ("median", "best"):
        raise ValueError(f"stat must be 'median' or 'best', got {stat!r}")
    names = list(results)
    variants = list(dict.fromkeys(v for r in results.values() for v in r))
    head = f"{stat + ' per call':<17}" + "".join(f"{n:>32}" for n in names)
    lines = [head, "-" * len(head)]
    for v in variants:
        cells = []
        for n in names:
            r = {key: t[stat] for key, t in results[n].items()}
            if v in r:
                cells.append(f"{r[v] * 1e6:>14.1f} us {r['numpy f32'] / r[v]:>8.2f}x np")
            else:
                cells.append(f"{'-':>32}")
        lines.append(f"{v:<17}" + "".join(f"{c:>32}" for c in cells))
    return "\n".join(lines)
