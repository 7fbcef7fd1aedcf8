"""course_lib.compress.bench: flop/byte counts, roofline arithmetic, the serving harness."""

import time

import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_lib.compress import bench


def test_gemm_counts():
    p = bench._gemm_point("g", 2, 3, 4, repeat=1)
    assert p.flops == 2 * 2 * 3 * 4
    assert p.bytes == 4 * (2 * 3 + 3 * 4 + 2 * 4)
    assert p.intensity == pytest.approx(48 / 104)


def test_kernel_point_rates():
    p = bench.KernelPoint("k", flops=2e9, bytes=4e9, seconds=0.5)
    assert (p.gflops, p.gbytes, p.intensity) == (4.0, 8.0, 0.5)


def test_time_best_takes_the_fastest_run():
    delays = iter([0.0, 0.03, 0.001, 0.03])

    def fn():
        time.sleep(next(delays))

    t = bench.time_best(fn, repeat=3, warmup=1)
    assert 0.0005 < t < 0.02


def test_roofline_table_and_plot():
    peak = bench.KernelPoint("peak", 2e9, 1e7, 0.01)       # 200 GFLOP/s
    bw = bench.KernelPoint("axpy", 2e8, 1.2e9, 0.1)        # 12 GB/s
    slow = bench.KernelPoint("adam", 1.1e8, 2.8e8, 0.05)   # 0.39 flop/byte, 2.2 GFLOP/s
    table = bench.format_kernels(peak, bw, [slow])
    line = [l for l in table.splitlines() if l.startswith("adam")][0]
    # roof at 0.39 flop/byte: 0.39 * 12 = 4.7 GFLOP/s -> 47 %, memory bound
    assert "47%" in line and "memory" in line
    fig, ax = plt.subplots()
    bench.roofline_plot(ax, peak, bw, [slow])
    assert ax.get_xscale() == "log" and ax.get_xlabel().startswith("arithmetic intensity")
    plt.close(fig)


def test_serving_benchmark_ranks_a_slow_variant_last():
    X = np.zeros((16, 3), np.float32)

    def fast(x):
        return x

    def slow(x):
        time.sleep(0.002)
        return x

    res = bench.serving_benchmark({"fast": fast, "slow": slow}, X, batch_sizes=(1, 16),
                                  n_requests=20, repeat=5, warmup=1)
    r = {x.variant: x for x in res}
    assert r["slow"].p50_ms >= 2.0 and r["fast"].p50_ms < 1.0
    assert r["slow"].p99_ms >= r["slow"].p50_ms
    assert r["fast"].throughput[16] > 10 * r["slow"].throughput[16]
    # batch 16 in one 2 ms call: about 8 times the samples per second of batch 1
    assert r["slow"].throughput[16] > 5 * r["slow"].throughput[1]
    text = bench.format_serving(res)
    assert "slow" in text and "1.00x" in text
    plt.close(bench.serving_plot(res))


def test_serving_benchmark_bad_input():
    with pytest.raises(ValueError, match="X"):
        bench.serving_benchmark({"f": lambda x: x}, np.zeros((4, 2)), batch_sizes=(1, 8))
