r"""Ship it: a course model -> ``torch.nn`` -> ONNX file -> ONNX Runtime session (chapter 7).

The deployment path the source articles describe ("model simplification, conversion, loading"),
with the calls that actually exist:

===========================================  ===============================================
step                                         call
===========================================  ===============================================
course model -> ``torch.nn.Sequential``      :func:`to_torch` (``Sequential.to_torch()``;
                                             a :class:`CompressedModel` via its dense weights)
torch module -> ``.onnx`` file               :func:`export_onnx` (``torch.onnx.export``)
validate the file                            :func:`check_onnx` (``onnx.load`` +
                                             ``onnx.checker.check_model(full_check=True)``)
load and run                                 :func:`ort_session` / :func:`ort_run`
                                             (``onnxruntime.InferenceSession``)
ONNX Runtime's own int8                      :func:`quantize_dynamic_onnx`
                                             (``onnxruntime.quantization.quantize_dynamic``)
===========================================  ===============================================

There is no ``torch.onnx.load``: torch *writes* ONNX, ``onnx.load`` reads it into a protobuf,
and an ONNX Runtime ``InferenceSession`` runs it.

**Two exporters.**  Since torch 2.9, ``torch.onnx.export(..., dynamo=True)`` (the default)
traces the model with ``torch.export`` and translates it with onnxscript; ``dynamo=False`` is
the older TorchScript exporter (deprecated, still shipped).  For these MLPs both give the same
graph (``Gemm, Relu, Gemm``) and outputs within float32 round-off; the dynamo exporter takes
seconds per call here (about 10 s for the first, 3-4 s afterwards, on the course machine) and
writes the weights to a separate ``.onnx.data`` file unless ``external_data=False`` — so
:func:`export_onnx` defaults to ``dynamo=False`` for speed in notebooks and tests, and
always writes one self-contained file (its size is then the model's size).  Both are tested.

Everything here is quiet: the exporters' progress lines, torchvision notices and
quantization hints are silenced, so notebook outputs stay clean.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from ..validation import as_array

__all__ = ["to_torch", "export_onnx", "check_onnx", "ort_session", "ort_run",
           "quantize_dynamic_onnx", "onnx_op_types", "file_nbytes"]


@contextlib.contextmanager
def _quiet():
    """Silence stdout/stderr prints, Python warnings and the noisy loggers for a moment."""
    names = ["", "torch", "torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir",
             "onnxruntime"]
    saved = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def to_torch(model):
    """A float32 ``torch.nn.Sequential`` in eval mode from a course model or a torch module.

    model: ``course_lib.nn`` ``Sequential``/``MLP``, a
    :class:`~course_lib.compress.fileformat.CompressedModel` (its dense, dequantized weights)
    or a ``torch.nn.Module`` (returned as is, in eval mode).
    """
    import torch

    from .fileformat import CompressedModel

    if isinstance(model, torch.nn.Module):
        return model.eval()
    if isinstance(model, CompressedModel):
        model = model.to_sequential()
    if not hasattr(model, "to_torch"):
        raise TypeError(f"model must be a course model, a CompressedModel or a torch.nn.Module, "
                        f"got {type(model).__name__}")
    return model.to_torch().float().eval()


def _in_features(module) -> int:
    import torch

    for m in module.modules():
        if isinstance(m, torch.nn.Linear):
            return m.in_features
    raise ValueError("model has no torch.nn.Linear layer: pass in_features")


def export_onnx(model, path, *, in_features: int | None = None, dynamo: bool = False,
                opset_version: int = 20) -> Path:
    """Export ``model`` to one self-contained ONNX file with a dynamic batch dimension.

    model:       anything :func:`to_torch` accepts.
    path:        the ``.onnx`` file to write (weights inside it, no ``.data`` file).
    in_features: input width (default: the first ``Linear``'s).
    dynamo:      ``True``: torch's ``torch.export``-based exporter; ``False`` (default): the
                 TorchScript exporter (same graph here, ~100x faster to run; see module doc).
    Input ``"x"`` (batch, in_features) float32, output ``"logits"`` (batch, classes).
    The file is validated with :func:`check_onnx` before returning its path.
    """
    import torch

    module = to_torch(model)
    if in_features is None:
        in_features = _in_features(module)
    path = Path(path)
    example = (torch.zeros(2, int(in_features), dtype=torch.float32),)
    with _quiet():
        if dynamo:
            program = torch.onnx.export(
                module, example, None, dynamo=True, opset_version=opset_version,
                input_names=["x"], output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},))
            program.save(str(path), external_data=False)
        else:
            torch.onnx.export(
                module, example, str(path), dynamo=False, opset_version=opset_version,
                input_names=["x"], output_names=["logits"],
                dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    check_onnx(path)
    return path


def check_onnx(path):
    """``onnx.load`` the file and run ``onnx.checker.check_model(full_check=True)``; returns the
    ``onnx.ModelProto``.  An invalid model raises ``onnx.checker.ValidationError``."""
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return model


def onnx_op_types(path) -> list[str]:
    """The operator types of the graph's nodes, in order (e.g. ``['Gemm', 'Relu', 'Gemm']``)."""
    import onnx

    return [node.op_type for node in onnx.load(str(path)).graph.node]


def ort_session(path, *, threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` on the CPU for the ONNX file at ``path``.

    threads: intra-op threads (default: ONNX Runtime's choice, one per core).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3          # errors only
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def ort_run(session, X) -> np.ndarray:
    """Run a session on ``X: (n, in_features)`` (cast to float32); returns the first output."""
    X = as_array("X", X, ndim=2, dtype_kind="fiu")
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(X, dtype=np.float32)})[0]


def quantize_dynamic_onnx(src, dst, *, per_channel: bool = False) -> Path:
    """ONNX Runtime's dynamic int8 quantization of ``src`` into ``dst`` (weights int8, activations
    quantized to uint8 on the fly per batch: ``DynamicQuantizeLinear`` + ``MatMulInteger``).

    The industrial reference for the course's int8 model; ``per_channel`` as in
    ``onnxruntime.quantization.quantize_dynamic``.  Returns ``dst`` as a ``Path``.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ValueError(f"src must be an existing ONNX file, got {str(src)!r}")
    with _quiet():
        quantize_dynamic(str(src), str(dst), per_channel=bool(per_channel),
                         weight_type=QuantType.QInt8)
    check_onnx(dst)
    return dst


def file_nbytes(path) -> int:
    """Size of a file in bytes, as the file system reports it."""
    return os.path.getsize(path)
