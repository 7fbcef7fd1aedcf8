"""course_lib.compress.fileformat: round trips, measured sizes, and damaged files failing loudly."""

import math
import struct
import zlib

import numpy as np
import pytest
import torch

from course_lib.compress import fileformat as ff
from course_lib.nn import MLP


def _layer(kind, sparse, bias, seed=0, shape=(12, 20), k=16):
    """A packed layer of each kind; quantization here is a plain rounding, not the chapter's."""
    rng = np.random.default_rng(seed)
    out, inp = shape
    W = rng.standard_normal(shape).astype(np.float32)
    if sparse:
        W[rng.random(shape) < 0.8] = 0
    idx = np.flatnonzero(W) if sparse else None
    flat = W.ravel()[idx] if sparse else W.ravel()
    b = rng.standard_normal(out).astype(np.float32) if bias else None
    if kind == "float32":
        return ff.PackedLinear(out, inp, kind, flat.copy(), indices=idx, bias=b)
    if kind == "int8":
        scales = rng.uniform(0.01, 0.05, out).astype(np.float32)
        rows = (np.arange(out * inp) // inp)[idx] if sparse else np.arange(out * inp) // inp
        codes = np.clip(np.round(flat / scales[rows]), -128, 127).astype(np.int8)
        zps = rng.integers(-3, 4, out).astype(np.int8)
        return ff.PackedLinear(out, inp, kind, codes, indices=idx, scales=scales,
                               zero_points=zps, bias=b)
    cb = np.sort(rng.standard_normal(k)).astype(np.float32)
    codes = np.abs(flat[:, None] - cb[None]).argmin(axis=1).astype(np.uint8)
    return ff.PackedLinear(out, inp, kind, codes, indices=idx, codebook=cb, bias=b)


def _model(kind="codebook", sparse=True, bias=True, seed=0):
    return ff.CompressedModel([_layer(kind, sparse, bias, seed, (12, 20)), "relu",
                               _layer(kind, sparse, bias, seed + 1, (5, 12)), "tanh",
                               _layer("float32", False, True, seed + 2, (3, 5))])


CASES = [(k, s, b, c) for k in ff.KINDS for s in (False, True) for b in (False, True)
         for c in ff.CODECS]


@pytest.mark.parametrize("kind,sparse,bias,codec", CASES)
def test_round_trip_is_bit_exact_with_identical_predictions(kind, sparse, bias, codec, tmp_path):
    model = _model(kind, sparse, bias)
    path = tmp_path / "m.tscm"
    nbytes = ff.save(model, path, codec=codec)
    assert nbytes == path.stat().st_size == len(ff.to_bytes(model, codec=codec))
    back = ff.load(path)
    assert back.equals(model)
    X = np.random.default_rng(9).standard_normal((31, 20)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(X), model.forward(X))
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_equals_notices_a_changed_value():
    a, b = _model(), _model()
    assert a.equals(b)
    b.layers[0].codebook[0] += 1e-7
    assert not a.equals(b)


def test_forward_matches_course_sequential_and_torch():
    model = _model("int8", True, True)
    X = np.random.default_rng(1).standard_normal((8, 20)).astype(np.float32)
    seq = model.to_sequential()
    np.testing.assert_array_equal(seq.forward(X), model.forward(X))
    with torch.no_grad():
        out = seq.to_torch()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, model.forward(X), rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*quantized tensor creation:UserWarning")
def test_int8_weight_is_torch_per_channel_dequantize():
    lay = _layer("int8", False, False, seed=5)
    q = torch._make_per_channel_quantized_tensor(
        torch.from_numpy(lay.values.reshape(lay.shape)), torch.from_numpy(lay.scales).double(),
        torch.from_numpy(lay.zero_points.astype(np.int64)), 0)
    np.testing.assert_array_equal(lay.weight(), q.dequantize().numpy())


def test_from_sequential_round_trip_of_a_pruned_mlp():
    m = MLP([64, 32, 10], seed=3)
    m[0].weight[np.abs(m[0].weight) < 0.1] = 0
    cm = ff.CompressedModel.from_sequential(m, sparse=True)
    assert cm.nnz == np.count_nonzero(m[0].weight) + np.count_nonzero(m[2].weight)
    assert cm.num_weights == 64 * 32 + 32 * 10 and cm.num_params == cm.num_weights + 42
    X = np.random.default_rng(0).standard_normal((6, 64)).astype(np.float32)
    np.testing.assert_array_equal(ff.from_bytes(ff.to_bytes(cm)).forward(X), m.forward(X))


def test_gaps_known_example_with_escapes():
    # positions 0, 3, 40 with 3-bit gaps (escape M = 7): gaps 0, 2, 36 = 5*7 + 1
    gaps = ff.positions_to_gaps(np.array([0, 3, 40]), 3)
    np.testing.assert_array_equal(gaps, [0, 2, 7, 7, 7, 7, 7, 1])
    np.testing.assert_array_equal(ff.gaps_to_positions(gaps, 3), [0, 3, 40])
    # a gap of exactly M: one escape then 0
    np.testing.assert_array_equal(ff.positions_to_gaps(np.array([7]), 3), [7, 0])


@pytest.mark.parametrize("bits", [1, 2, 5, 8])
def test_gaps_round_trip(bits):
    rng = np.random.default_rng(bits)
    pos = np.flatnonzero(rng.random(5000) < 0.05)
    gaps = ff.positions_to_gaps(pos, bits)
    assert gaps.max() <= 2**bits - 1
    np.testing.assert_array_equal(ff.gaps_to_positions(gaps, bits), pos)
    with pytest.raises(ValueError, match="escape"):
        ff.gaps_to_positions(np.append(gaps, 2**bits - 1), bits)


def test_pack_bits_known_bytes_and_round_trip():
    assert ff.pack_bits(np.array([1, 2, 3]), 2) == bytes([0b01101100])
    assert ff.pack_bits(np.array([5]), 3) == bytes([0b10100000])
    v = np.random.default_rng(0).integers(0, 2**11, 333)
    np.testing.assert_array_equal(ff.unpack_bits(ff.pack_bits(v, 11), v.size, 11), v)
    with pytest.raises(ValueError, match="values"):
        ff.pack_bits(np.array([4]), 2)


def test_raw_sizes_follow_the_layout():
    # one dense codebook layer (k = 16 -> 4 bits) without bias: every byte accounted for
    lay = _layer("codebook", False, False, shape=(10, 30), k=16)
    parts = ff.size_breakdown(ff.CompressedModel([lay]), codec="raw")
    n = 300
    assert parts["values"] == 5 + len(ff.encode_varint(n)) + math.ceil(n * 4 / 8)
    assert parts["scales_codebooks"] == 2 + 4 * 16
    assert parts["header"] == 10 + 1 + 4 + 4 + 1 + 1 + 4
    assert parts["indices"] == parts["biases"] == 0
    assert sum(v for k, v in parts.items() if k != "total") == parts["total"]


def test_huffman_shrinks_a_skewed_codebook_layer():
    rng = np.random.default_rng(0)
    idx = np.minimum(rng.geometric(0.5, 4000) - 1, 15).astype(np.uint8)
    lay = ff.PackedLinear(40, 100, "codebook", idx, codebook=np.arange(16, dtype=np.float32))
    raw = ff.size_breakdown(ff.CompressedModel([lay]), codec="raw")["values"]
    huff = ff.size_breakdown(ff.CompressedModel([lay]), codec="huffman")["values"]
    assert huff < 0.6 * raw


# ---------------------------------------------------------------- damaged files

@pytest.fixture(scope="module")
def small_file():
    return ff.to_bytes(_model("int8", True, True), codec="huffman")


def test_every_truncation_raises(small_file):
    for cut in range(len(small_file)):
        with pytest.raises(ValueError, match="truncated"):
            ff.from_bytes(small_file[:cut])


def test_every_single_bit_flip_raises(small_file):
    for pos in range(len(small_file)):
        for bit in (0, 3, 7):
            bad = bytearray(small_file)
            bad[pos] ^= 1 << bit
            with pytest.raises(ValueError):
                ff.from_bytes(bytes(bad))


def test_clear_messages(small_file):
    with pytest.raises(ValueError, match="magic"):
        ff.from_bytes(b"PK\x03\x04" + small_file[4:])
    with pytest.raises(ValueError, match="version"):
        ff.from_bytes(small_file[:4] + bytes([99]) + small_file[5:])
    with pytest.raises(ValueError, match="trailing"):
        ff.from_bytes(small_file + b"\x00")
    bad = bytearray(small_file)
    bad[20] ^= 0xFF
    with pytest.raises(ValueError, match="checksum"):
        ff.from_bytes(bytes(bad))
    with pytest.raises(TypeError, match="data"):
        ff.from_bytes("not bytes")


def test_consistent_checksum_but_bad_content_still_raises_value_error(small_file):
    """Damage that a checksum cannot see (the writer was wrong): parsing checks every count."""
    rng = np.random.default_rng(0)
    body = small_file[:-4]
    n_loaded = 0
    for pos in range(10, len(body)):
        for value in rng.integers(0, 256, 3):
            bad = bytearray(body)
            bad[pos] = int(value)
            data = bytes(bad) + struct.pack("<I", zlib.crc32(bytes(bad)))
            try:
                ff.from_bytes(data)                  # a float or code changed: still valid
                n_loaded += 1
            except ValueError:
                pass                                 # any other exception type fails the test
    assert n_loaded > 0


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(kind="float16"), ValueError, "kind"),
    (dict(values=np.zeros(240, np.float64)), TypeError, "values"),
    (dict(values=np.zeros(239, np.float32)), ValueError, "values"),
    (dict(values=np.zeros(2, np.float32), indices=np.array([3, 1])), ValueError, "indices"),
    (dict(values=np.zeros(1, np.float32), indices=np.array([240])), ValueError, "indices"),
    (dict(out_features=0), ValueError, "out_features"),
    (dict(bias=np.zeros(11, np.float32)), ValueError, "bias"),
    (dict(scales=np.ones(12, np.float32)), ValueError, "scales"),
])
def test_packed_linear_bad_input(kwargs, exc, match):
    base = dict(out_features=12, in_features=20, kind="float32", values=np.zeros(240, np.float32))
    with pytest.raises(exc, match=match):
        ff.PackedLinear(**{**base, **kwargs})


def test_codebook_and_int8_bad_input():
    with pytest.raises(ValueError, match="codebook"):
        ff.PackedLinear(2, 2, "codebook", np.array([0, 1, 2, 3], np.uint8),
                        codebook=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="scales"):
        ff.PackedLinear(1, 2, "int8", np.zeros(2, np.int8), scales=np.zeros(1, np.float32),
                        zero_points=np.zeros(1, np.int8))
    with pytest.raises(ValueError, match="chain"):
        ff.CompressedModel([_layer("float32", False, False, shape=(3, 4)),
                            _layer("float32", False, False, shape=(3, 4))])
    with pytest.raises(ValueError, match="ops"):
        ff.CompressedModel(["relu", "softmax"])
    with pytest.raises(ValueError, match="codec"):
        ff.to_bytes(_model(), codec="zip")
    with pytest.raises(ValueError, match="index_bits"):
        ff.to_bytes(_model(), index_bits=0)
