"""course_lib.compress.export: ONNX export, checker, ONNX Runtime parity, ORT's dynamic int8."""

import numpy as np
import onnx
import pytest
import torch

from course_lib.compress import export as ex
from course_lib.compress import fileformat as ff
from course_lib.nn import MLP

# float32 round-off: Gemm in ONNX Runtime and NumPy's BLAS sum in different orders
TOL32 = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def mlp():
    return MLP([64, 48, 32, 10], seed=7)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).standard_normal((257, 64)).astype(np.float32)


@pytest.fixture(scope="module")
def onnx_path(mlp, tmp_path_factory):
    return ex.export_onnx(mlp, tmp_path_factory.mktemp("onnx") / "mlp.onnx")


def test_no_torch_onnx_load():
    # the source article's deployment snippet calls torch.onnx.load: it does not exist
    assert not hasattr(torch.onnx, "load")
    assert hasattr(onnx, "load")


def test_export_ort_matches_ours(mlp, X, onnx_path):
    assert ex.onnx_op_types(onnx_path) == ["Gemm", "Relu", "Gemm", "Relu", "Gemm"]
    sess = ex.ort_session(onnx_path, threads=1)
    for n in (1, 7, 257):                        # the batch dimension is dynamic
        out = ex.ort_run(sess, X[:n])
        assert out.shape == (n, 10) and out.dtype == np.float32
        np.testing.assert_allclose(out, mlp.forward(X[:n]), **TOL32)
    assert np.array_equal(ex.ort_run(sess, X).argmax(1), mlp.predict(X))


def test_export_is_self_contained(onnx_path):
    # all weights inside the one file: float32 bytes of 64*48+48 + 48*32+32 + 32*10+10
    n_params = 64 * 48 + 48 + 48 * 32 + 32 + 32 * 10 + 10
    size = ex.file_nbytes(onnx_path)
    assert 4 * n_params <= size < 4 * n_params + 2000
    assert not list(onnx_path.parent.glob("*.data"))


def test_dynamo_exporter_gives_the_same_graph_and_outputs(mlp, X, tmp_path):
    path = ex.export_onnx(mlp, tmp_path / "dyn.onnx", dynamo=True)
    assert ex.onnx_op_types(path) == ["Gemm", "Relu", "Gemm", "Relu", "Gemm"]
    assert not list(tmp_path.glob("*.data"))
    np.testing.assert_allclose(ex.ort_run(ex.ort_session(path), X), mlp.forward(X), **TOL32)


def test_compressed_model_exports_its_dequantized_weights(X, tmp_path):
    rng = np.random.default_rng(1)
    W1 = rng.standard_normal((16, 64)).astype(np.float32)
    W1[rng.random(W1.shape) < 0.9] = 0
    idx = np.flatnonzero(W1)
    scales = np.full(16, 0.02, np.float32)
    codes = np.clip(np.round(W1.ravel()[idx] / 0.02), -127, 127).astype(np.int8)
    l1 = ff.PackedLinear(16, 64, "int8", codes, indices=idx, scales=scales,
                         zero_points=np.zeros(16, np.int8), bias=np.zeros(16, np.float32))
    cb = np.linspace(-1, 1, 8).astype(np.float32)
    l2 = ff.PackedLinear(10, 16, "codebook", rng.integers(0, 8, 160).astype(np.uint8),
                         codebook=cb, bias=rng.standard_normal(10).astype(np.float32))
    cm = ff.CompressedModel([l1, "relu", l2])
    path = ex.export_onnx(cm, tmp_path / "cm.onnx")
    np.testing.assert_allclose(ex.ort_run(ex.ort_session(path), X), cm.forward(X), **TOL32)


def test_quantize_dynamic_reference(mlp, X, onnx_path, tmp_path):
    q = ex.quantize_dynamic_onnx(onnx_path, tmp_path / "q.onnx")
    ops = ex.onnx_op_types(q)
    assert ops.count("MatMulInteger") == 3 and "DynamicQuantizeLinear" in ops
    # int8 weights are a quarter of the float32 ones, but the graph grows (13 nodes instead
    # of 5, each with named scale / zero-point tensors): measured 8.7 KB vs 20.7 KB here
    w = 64 * 48 + 48 * 32 + 32 * 10
    assert w < ex.file_nbytes(q) < 0.5 * ex.file_nbytes(onnx_path)
    out, ref = ex.ort_run(ex.ort_session(q), X), mlp.forward(X)
    err = np.abs(out - ref).max()
    # 8-bit weights and activations: errors of a few quantization steps, far from float round-off
    assert 1e-4 < err < 0.05 * np.abs(ref).max()


def test_checker_rejects_a_broken_model(onnx_path, tmp_path):
    model = onnx.load(str(onnx_path))
    model.graph.node[0].input[1] = "no_such_tensor"
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(onnx.checker.ValidationError):
        ex.check_onnx(bad)


def test_bad_input(tmp_path):
    with pytest.raises(TypeError, match="model"):
        ex.to_torch("mlp.onnx")
    with pytest.raises(ValueError, match="src"):
        ex.quantize_dynamic_onnx(tmp_path / "missing.onnx", tmp_path / "q.onnx")
    with pytest.raises(ValueError, match="in_features"):
        ex.export_onnx(torch.nn.Sequential(torch.nn.ReLU()), tmp_path / "r.onnx")
