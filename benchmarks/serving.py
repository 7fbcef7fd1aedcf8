"""Serving the digits model: single-request latency (p50/p99) and throughput at batch 1..256.

    .venv/bin/python benchmarks/serving.py                  # the table (add --plot serving.png for the figure)
    .venv/bin/python benchmarks/serving.py --requests 300 --threads 1

The model is the capstone's baseline, an MLP 64-300-100-10 (LeNet-300-100's hidden sizes) trained
briefly on the digits.  Variants, timed round-robin in one run:

- ``NumPy fp32``        course_lib.nn forward (BLAS matmuls)
- ``torch fp32``        the same weights in ``torch.nn.Sequential`` under ``torch.inference_mode``
- ``ORT fp32``          exported with ``torch.onnx.export``, run by ``onnxruntime.InferenceSession``
- ``ORT int8 dynamic``  ``onnxruntime.quantization.quantize_dynamic`` of that file
- ``ours sparse CSR``   the baseline pruned to 90% (the capstone's Han path), chapter 4's CSR kernel
- ``ours int8``         that pruned model with chapter 5's dynamic int8 layers (int8 GEMM)
- ``ours student CSR``  the distilled student pruned to 70%, CSR kernel (the capstone's smallest)

Latency is per request (batch 1) over ``--requests`` interleaved requests; throughput is samples
per second from the median of ``--repeat`` interleaved calls at each batch size.  Ratios are to
NumPy fp32; compare ratios, not absolute times (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("NUMBA_CACHE_DIR",
                      os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                   ".numba_cache"))

from course_lib.compress.bench import format_serving, serving_benchmark  # noqa: E402
from course_lib.machine import machine_summary  # noqa: E402


def build_predictors(tmpdir: str, *, epochs: int = 30, threads=None):
    """Train the baseline briefly and return ``({name: predict_fn}, X_pool)``."""
    import numpy as np
    import torch

    from course_lib.compress import export as ex
    from course_lib.data import load_digits_split
    from course_lib.nn import MLP, fit

    from course_lib.compress.pipeline import one_blas_thread

    data = load_digits_split(seed=0)
    model = MLP([64, 300, 100, 10], seed=0)
    with one_blas_thread():     # small GEMMs: one BLAS thread trains far faster on a busy machine
        fit(model, data.X_train, data.y_train, lr=0.05, epochs=epochs, batch_size=32, seed=0)
    tmodel = ex.to_torch(model)
    path = ex.export_onnx(model, os.path.join(tmpdir, "baseline.onnx"))
    qpath = ex.quantize_dynamic_onnx(path, os.path.join(tmpdir, "baseline_int8.onnx"))
    sess, qsess = ex.ort_session(path, threads=threads), ex.ort_session(qpath, threads=threads)
    sin, qin = sess.get_inputs()[0].name, qsess.get_inputs()[0].name

    def torch_predict(x):
        with torch.inference_mode():
            return tmodel(torch.from_numpy(x)).numpy()

    predictors = {
        "NumPy fp32": model.forward,
        "torch fp32": torch_predict,
        "ORT fp32": lambda x: sess.run(None, {sin: x})[0],
        "ORT int8 dynamic": lambda x: qsess.run(None, {qin: x})[0],
    }
    try:  # the capstone's compressed models on the course's kernels (chapters 4-7)
        import course_lib.distill  # noqa: F401
        import course_lib.prune  # noqa: F401
        import course_lib.quant  # noqa: F401
        import course_lib.sparse  # noqa: F401
        from course_lib.compress import pipeline as pl
    except ImportError:
        pl = None
    if pl is not None:
        han = pl.run_pipeline(data, pl.HAN_PATH, seed=0, baseline=model)
        ours = pl.run_pipeline(data, pl.PipelineConfig(), seed=0, baseline=model)
        predictors["ours sparse CSR"] = pl.sparse_predictor(han["pruned fp32"].model)
        predictors["ours int8"] = pl.int8_predictor(han["pruned fp32"].model)
        predictors["ours student CSR"] = pl.sparse_predictor(ours["pruned fp32"].model)
    X = np.concatenate([data.X_val, data.X_test]).astype(np.float32)
    sizes = {"NumPy fp32": None, "ORT fp32": ex.file_nbytes(path),
             "ORT int8 dynamic": ex.file_nbytes(qpath)}
    return predictors, X, sizes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="batch-1 requests per variant")
    parser.add_argument("--repeat", type=int, default=30, help="calls per batch size and variant")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4, 16, 64, 256])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS, numba, torch and ONNX Runtime (default: theirs)")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="also draw the figure into this PNG file")
    args = parser.parse_args(argv)
    if args.threads is not None:
        import numba
        import torch
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
        numba.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    print("serving benchmark:", machine_summary(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        predictors, X, sizes = build_predictors(tmp, threads=args.threads)
        for name, nbytes in sizes.items():
            if nbytes:
                print(f"  {name}: ONNX file {nbytes:,} bytes")
        results = serving_benchmark(predictors, X, batch_sizes=tuple(args.batch_sizes),
                                    n_requests=args.requests, repeat=args.repeat,
                                    progress=lambda m: print(f"  timing {m} ...", file=sys.stderr,
                                                             flush=True))
    print(format_serving(results))
    print("after the run:", machine_summary())
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from course_lib.compress.bench import serving_plot
        from course_lib.plots import use_course_style
        use_course_style()
        fig = serving_plot(results)
        fig.savefig(args.plot, bbox_inches="tight", dpi=110)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
