"""Serving the digits model: single-request latency (p50/p99) and throughput at batch 1..256.

    .venv/bin/python benchmarks/serving.py                  # table + benchmarks/serving.png
    .venv/bin/python benchmarks/serving.py --requests 300 --no-plot

The model is the capstone's baseline, an MLP 64-300-100-10 (LeNet-300-100's hidden sizes) trained
briefly on the digits.  Variants, timed round-robin in one run:

- ``NumPy fp32``        course_lib.nn forward (BLAS matmuls)
- ``torch fp32``        the same weights in ``torch.nn.Sequential`` under ``torch.inference_mode``
- ``ORT fp32``          exported with ``torch.onnx.export``, run by ``onnxruntime.InferenceSession``
- ``ORT int8 dynamic``  ``onnxruntime.quantization.quantize_dynamic`` of that file
- ``ours compressed``   the capstone's compressed model with the course's kernels (when present)

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
from course_lib.optim.bench import machine_summary  # noqa: E402


def build_predictors(tmpdir: str, *, epochs: int = 5):
    """Train the baseline briefly and return ``({name: predict_fn}, X_pool)``."""
    import numpy as np
    import torch

    from course_lib.compress import export as ex
    from course_lib.data import load_digits_split
    from course_lib.nn import MLP, fit

    data = load_digits_split(seed=0)
    model = MLP([64, 300, 100, 10], seed=0)
    fit(model, data.X_train, data.y_train, lr=0.05, epochs=epochs, batch_size=32, seed=0)
    tmodel = ex.to_torch(model)
    path = ex.export_onnx(model, os.path.join(tmpdir, "baseline.onnx"))
    qpath = ex.quantize_dynamic_onnx(path, os.path.join(tmpdir, "baseline_int8.onnx"))
    sess, qsess = ex.ort_session(path), ex.ort_session(qpath)
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
    try:  # the capstone's compressed model on the course's kernels (chapters 4-7)
        from course_lib.compress.pipeline import serving_predictor
    except ImportError:
        pass
    else:
        predictors["ours compressed"] = serving_predictor(model, data)
    X = np.concatenate([data.X_val, data.X_test]).astype(np.float32)
    sizes = {"NumPy fp32": None, "ORT fp32": ex.file_nbytes(path),
             "ORT int8 dynamic": ex.file_nbytes(qpath)}
    return predictors, X, sizes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="batch-1 requests per variant")
    parser.add_argument("--repeat", type=int, default=30, help="calls per batch size and variant")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4, 16, 64, 256])
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "serving.png"))
    args = parser.parse_args(argv)
    print("serving benchmark:", machine_summary(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        predictors, X, sizes = build_predictors(tmp)
        for name, nbytes in sizes.items():
            if nbytes:
                print(f"  {name}: ONNX file {nbytes:,} bytes")
        results = serving_benchmark(predictors, X, batch_sizes=tuple(args.batch_sizes),
                                    n_requests=args.requests, repeat=args.repeat,
                                    progress=lambda m: print(f"  timing {m} ...", file=sys.stderr,
                                                             flush=True))
    print(format_serving(results))
    print("after the run:", machine_summary())
    if not args.no_plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from course_lib.compress.bench import serving_plot
        from course_lib.plots import use_course_style
        use_course_style()
        fig = serving_plot(results)
        fig.savefig(args.out, bbox_inches="tight", dpi=110)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
