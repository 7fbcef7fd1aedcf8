r"""One file for a compressed model: sparse structure, int8 codes or codebooks, scales, biases.

What a compressed MLP needs on disk, and nothing more (Deep Compression's storage, section 3
of Han, Mao and Dally 2016), in a binary format whose size is *measured* (``len(bytes)``), not
estimated from parameter counts.

**In memory** a model is a :class:`CompressedModel`: a list of operations, each a
:class:`PackedLinear` or an activation name (``"relu"``, ``"tanh"``, ``"sigmoid"``).  A
:class:`PackedLinear` holds a weight ``(out_features, in_features)`` in one of three kinds

=============  =============================================  ====================================
kind           stored                                         weight entry
=============  =============================================  ====================================
``float32``    ``values`` float32                             ``values[i]``
``int8``       ``values`` int8 codes, per-output-row          ``(values[i] - zero_points[r])
               ``scales`` float32 and ``zero_points`` int8      * scales[r]`` (float32, torch's
                                                                per-channel ``dequantize``, axis 0)
``codebook``   ``values`` uint8 indices into ``codebook``     ``codebook[values[i]]``
               float32 ``(k,)``, ``k <= 256``                  (k-means weight sharing)
=============  =============================================  ====================================

either for every entry (dense, ``indices=None``, row-major) or only at the sorted flat
positions ``indices`` (sparse: every other entry is exactly 0), plus an optional float32 bias.

**Sparse structure as relative gaps.**  Positions are stored as gaps: ``g_i = p_i - p_{i-1} - 1``
(zeros skipped, ``p_{-1} = -1``), each written with ``index_bits`` bits.  A gap that does not
fit is split with the escape symbol :math:`M = 2^{b} - 1` ("skip :math:`M` zeros, no weight
here") — Deep Compression pads with a filler zero weight instead; the escape needs no value.

**Streams.**  Integer streams (gaps, int8 codes shifted to ``0..255``, codebook indices) are
written either ``"raw"`` (fixed width: ``index_bits`` for gaps, 8 for int8, ``ceil(log2 k)``
for codebook indices, packed with ``np.packbits``) or ``"huffman"``
(:mod:`course_lib.compress.huffman`).  Floats (scales, codebooks, biases, float32 values) are
raw little-endian float32.

**Layout** (little-endian; ``u8/u16/u32`` unsigned integers)::

    magic     4 bytes  b"TSCM" (Train & Shrink Compressed Model)
    version   u8       FORMAT_VERSION
    n_ops     u8
    body_len  u32      bytes of the body that follows
    body      n_ops operations:
              u8 op (1 Linear, 2 ReLU, 3 Tanh, 4 Sigmoid); for a Linear:
              u32 out, u32 in, u8 kind (0 float32, 1 int8, 2 codebook), u8 flags (1 bias, 2 sparse)
              [sparse]   u32 nnz, u8 index_bits, stream of gaps
              [float32]  float32 x (nnz or out*in)
              [int8]     float32 x out scales, int8 x out zero points, stream of codes + 128
              [codebook] u16 k, float32 x k codebook, stream of indices
              [bias]     float32 x out
    crc32     u32      zlib.crc32 of everything before it

    stream := u8 codec (0 raw, 1 huffman), u32 nbytes, nbytes bytes
              (raw: varint n, then n values of a fixed width, packed MSB first)

:func:`from_bytes` checks magic, version, length and checksum *before* it parses anything, and
checks every count while parsing, so a truncated or corrupted file raises ``ValueError`` naming
what is wrong — never a silently wrong model.  A checksum cannot *correct* anything; it makes
the failure loud.  (``torch.save`` writes a zip archive whose members carry CRC-32s too;
ONNX files carry none.)
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..validation import as_array
from .huffman import decode_varint, encode_varint, huffman_decode_from, huffman_encode

__all__ = ["PackedLinear", "CompressedModel", "to_bytes", "from_bytes", "save", "load",
           "size_breakdown", "positions_to_gaps", "gaps_to_positions", "pack_bits",
           "unpack_bits", "MAGIC", "FORMAT_VERSION", "CODECS"]

MAGIC = b"TSCM"
FORMAT_VERSION = 1
CODECS = ("raw", "huffman")
KINDS = ("float32", "int8", "codebook")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
_OP_CODES = {"linear": 1, "relu": 2, "tanh": 3, "sigmoid": 4}
_OP_NAMES = {v: k for k, v in _OP_CODES.items()}
_PREAMBLE = struct.Struct("<4sBBI")  # magic, version, n_ops, body_len


# ------------------------------------------------------------------------------ bit helpers

def pack_bits(values, bits: int) -> bytes:
    """Pack non-negative integers ``< 2**bits`` into ``ceil(n * bits / 8)`` bytes, MSB first."""
    values = as_array("values", values, ndim=1, dtype_kind="iu").astype(np.int64)
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 32:
        raise ValueError(f"bits must be an integer in [1, 32], got {bits!r}")
    if values.size and (values.min() < 0 or values.max() >= 1 << bits):
        raise ValueError(f"values must be in [0, {1 << bits}) for bits={bits}, "
                         f"got values in [{values.min()}, {values.max()}]")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    return np.packbits(((values[:, None] >> shifts) & 1).astype(np.uint8).ravel()).tobytes()


def unpack_bits(data, n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``n`` integers of ``bits`` bits each, as int64."""
    raw = np.frombuffer(bytes(data), dtype=np.uint8)
    if raw.size * 8 < n * bits:
        raise ValueError(f"data is truncated: {n} values of {bits} bits need "
                         f"{math.ceil(n * bits / 8)} bytes, got {raw.size}")
    b = np.unpackbits(raw)[:n * bits].reshape(n, bits).astype(np.int64)
    return (b << np.arange(bits - 1, -1, -1, dtype=np.int64)).sum(axis=1)


def positions_to_gaps(positions, index_bits: int) -> np.ndarray:
    """Sorted flat positions -> gap symbols in ``[0, 2**index_bits - 1]`` (the top one is the escape).

    ``g_i = p_i - p_{i-1} - 1`` (``p_{-1} = -1``); a gap ``g >= M = 2**index_bits - 1`` becomes
    ``g // M`` escapes ``M`` followed by ``g % M``.
    """
    positions = as_array("positions", positions, ndim=1, dtype_kind="iu").astype(np.int64)
    if isinstance(index_bits, bool) or not isinstance(index_bits, int) or not 1 <= index_bits <= 16:
        raise ValueError(f"index_bits must be an integer in [1, 16], got {index_bits!r}")
    if positions.size and (positions[0] < 0 or np.any(np.diff(positions) <= 0)):
        raise ValueError("positions must be non-negative and strictly increasing")
    M = (1 << index_bits) - 1
    if M == 0:  # pragma: no cover - index_bits >= 1 gives M >= 1
        raise AssertionError
    g = np.diff(positions, prepend=-1) - 1
    q, r = g // M, g % M
    out = np.full(int((q + 1).sum()), M, dtype=np.int64)
    out[np.cumsum(q + 1) - 1] = r
    return out


def gaps_to_positions(gaps, index_bits: int) -> np.ndarray:
    """Inverse of :func:`positions_to_gaps` (a stream ending in escapes is corrupted)."""
    gaps = as_array("gaps", gaps, ndim=1, dtype_kind="iu").astype(np.int64)
    M = (1 << index_bits) - 1
    if gaps.size and (gaps.min() < 0 or gaps.max() > M):
        raise ValueError(f"gaps must be in [0, {M}] for index_bits={index_bits}, "
                         f"got values in [{gaps.min()}, {gaps.max()}]")
    if gaps.size and gaps[-1] == M:
        raise ValueError("gaps is corrupted: it ends with an escape symbol")
    is_esc = gaps == M
    esc_before = np.cumsum(is_esc)[~is_esc]          # escapes up to each terminal symbol
    esc_each = np.diff(esc_before, prepend=0)
    g = gaps[~is_esc] + M * esc_each
    return np.cumsum(g + 1) - 1


def _bits_for(k: int) -> int:
    return max(1, math.ceil(math.log2(k))) if k > 1 else 1


# ------------------------------------------------------------------------------ in memory

@dataclass(eq=False)
class PackedLinear:
    """A linear layer's weight in a compressed representation (see the module docstring).

    out_features, in_features: the dense weight's shape, as ``torch.nn.Linear``.
    kind:        ``"float32"``, ``"int8"`` or ``"codebook"``.
    values:      (m,) float32 / int8 codes / uint8 codebook indices, ``m = len(indices)`` if
                 sparse else ``out_features * in_features`` (row-major).
    indices:     (m,) sorted flat positions of the stored entries, or ``None`` (dense).
    scales, zero_points: (out_features,) float32 and int8, kind ``"int8"`` only.
    codebook:    (k,) float32, ``1 <= k <= 256``, kind ``"codebook"`` only.
    bias:        (out_features,) float32 or ``None``.
    """
    out_features: int
    in_features: int
    kind: str
    values: np.ndarray
    indices: np.ndarray | None = None
    scales: np.ndarray | None = None
    zero_points: np.ndarray | None = None
    codebook: np.ndarray | None = None
    bias: np.ndarray | None = None

    def __post_init__(self):
        for name in ("out_features", "in_features"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v < 2**32:
                raise ValueError(f"{name} must be a positive integer < 2**32, got {v!r}")
            setattr(self, name, int(v))
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        size = self.out_features * self.in_features
        if self.indices is not None:
            idx = as_array("indices", self.indices, ndim=1, dtype_kind="iu").astype(np.int64)
            if idx.size and (idx[0] < 0 or idx[-1] >= size or np.any(np.diff(idx) <= 0)):
                raise ValueError(f"indices must be strictly increasing flat positions in "
                                 f"[0, {size}), got values in [{idx.min()}, {idx.max()}]")
            self.indices = idx
        m = size if self.indices is None else self.indices.size
        want = {"float32": np.float32, "int8": np.int8, "codebook": np.uint8}[self.kind]
        values = as_array("values", self.values, ndim=1, dtype_kind="fiu")
        if values.dtype != want:
            raise TypeError(f"values must have dtype {np.dtype(want)} for kind {self.kind!r}, "
                            f"got {values.dtype}")
        if values.size != m:
            raise ValueError(f"values must have {m} entries "
                             f"({'len(indices)' if self.indices is not None else 'out*in'}), "
                             f"got {values.size}")
        self.values = values
        if self.kind == "int8":
            self.scales = self._vector("scales", self.scales, np.float32, self.out_features)
            if np.any(self.scales <= 0):
                raise ValueError(f"scales must be > 0, got min {self.scales.min()}")
            self.zero_points = self._vector("zero_points", self.zero_points, np.int8,
                                            self.out_features)
        elif self.scales is not None or self.zero_points is not None:
            raise ValueError(f"scales and zero_points belong to kind 'int8', not {self.kind!r}")
        if self.kind == "codebook":
            cb = as_array("codebook", self.codebook, ndim=1, dtype_kind="f")
            if cb.dtype != np.float32 or not 1 <= cb.size <= 256:
                raise ValueError(f"codebook must be float32 with 1..256 entries, "
                                 f"got {cb.dtype} with {cb.size}")
            if values.size and values.max() >= cb.size:
                raise ValueError(f"values must index the codebook (< {cb.size}), "
                                 f"got max {values.max()}")
            self.codebook = cb
        elif self.codebook is not None:
            raise ValueError(f"codebook belongs to kind 'codebook', not {self.kind!r}")
        if self.bias is not None:
            self.bias = self._vector("bias", self.bias, np.float32, self.out_features)

    @staticmethod
    def _vector(name, x, dtype, n):
        arr = as_array(name, x, ndim=1, dtype_kind="fiu")
        if arr.dtype != dtype:
            raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {arr.dtype}")
        if arr.size != n:
            raise ValueError(f"{name} must have {n} entries (out_features), got {arr.size}")
        return arr

    @classmethod
    def from_dense(cls, weight, bias=None, *, sparse: bool = False) -> "PackedLinear":
        """A float32 layer from a dense weight (sparse: store only the nonzero entries)."""
        W = as_array("weight", weight, ndim=2, dtype_kind="f").astype(np.float32)
        b = None if bias is None else as_array("bias", bias, ndim=1).astype(np.float32)
        flat = W.ravel()
        if sparse:
            idx = np.flatnonzero(flat)
            return cls(W.shape[0], W.shape[1], "float32", flat[idx], indices=idx, bias=b)
        return cls(W.shape[0], W.shape[1], "float32", flat.copy(), bias=b)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.out_features, self.in_features)

    @property
    def sparse(self) -> bool:
        return self.indices is not None

    def entry_values(self) -> np.ndarray:
        """(m,) float32 values of the stored entries (dequantized / looked up)."""
        if self.kind == "float32":
            return self.values
        if self.kind == "codebook":
            return self.codebook[self.values]
        rows = (np.arange(self.values.size) // self.in_features if self.indices is None
                else self.indices // self.in_features)
        return ((self.values.astype(np.float32) - self.zero_points[rows].astype(np.float32))
                * self.scales[rows])

    def weight(self) -> np.ndarray:
        """The dense float32 weight ``(out_features, in_features)`` this layer stands for."""
        vals = self.entry_values()
        if self.indices is None:
            return vals.reshape(self.shape).copy()
        W = np.zeros(self.out_features * self.in_features, dtype=np.float32)
        W[self.indices] = vals
        return W.reshape(self.shape)

    @property
    def nnz(self) -> int:
        """Nonzero entries of the dense weight (stored entries can still be 0)."""
        return int(np.count_nonzero(self.entry_values()))

    def equals(self, other) -> bool:
        """Same kind, shape and every stored array bit for bit."""
        if not isinstance(other, PackedLinear) or (self.kind, self.shape) != (other.kind, other.shape):
            return False
        for name in ("values", "indices", "scales", "zero_points", "codebook", "bias"):
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None):
                return False
            if a is not None and (a.dtype != b.dtype or a.shape != b.shape
                                  or a.tobytes() != b.tobytes()):
                return False
        return True


@dataclass(eq=False)
class CompressedModel:
    """A feed-forward model: :class:`PackedLinear` layers and activation names, in order.

    ``forward(X)`` computes with the dense float32 weights (``X @ W.T + b``), the same
    arithmetic as :meth:`to_sequential` (a ``course_lib.nn.Sequential``) and its ``to_torch()``.
    """
    ops: list = field(default_factory=list)

    def __post_init__(self):
        if not isinstance(self.ops, (list, tuple)) or not self.ops:
            raise ValueError(f"ops must be a non-empty list, got {self.ops!r}")
        for i, op in enumerate(self.ops):
            if not (isinstance(op, PackedLinear) or op in ACTIVATIONS):
                raise ValueError(f"ops[{i}] must be a PackedLinear or one of {ACTIVATIONS}, "
                                 f"got {op!r}")
        layers = self.layers
        if not layers:
            raise ValueError("ops must contain at least one PackedLinear")
        if len(self.ops) > 255:
            raise ValueError(f"ops must have at most 255 entries, got {len(self.ops)}")
        for a, b in zip(layers, layers[1:]):
            if a.out_features != b.in_features:
                raise ValueError(f"layer shapes do not chain: {a.shape} then {b.shape}")
        self.ops = list(self.ops)

    @property
    def layers(self) -> list:
        return [op for op in self.ops if isinstance(op, PackedLinear)]

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @classmethod
    def from_sequential(cls, model, *, sparse: bool = False) -> "CompressedModel":
        """float32 layers from a ``course_lib.nn`` ``Sequential``/``MLP`` (sparse: nonzeros only)."""
        ops = []
        for layer in model:
            name = type(layer).__name__
            if name == "Linear":
                ops.append(PackedLinear.from_dense(layer.weight, layer.bias, sparse=sparse))
            elif name.lower() in ACTIVATIONS:
                ops.append(name.lower())
            else:
                raise ValueError(f"model has a {name} layer; only Linear, ReLU, Tanh, Sigmoid")
        return cls(ops)

    def to_sequential(self):
        """A float32 ``course_lib.nn.Sequential`` with the dense weights (for training, torch)."""
        from ..nn import Linear, ReLU, Sequential, Sigmoid, Tanh

        layers = []
        for op in self.ops:
            if isinstance(op, PackedLinear):
                lin = Linear(op.in_features, op.out_features, bias=op.bias is not None,
                             dtype=np.float32)
                lin.weight[...] = op.weight()
                if op.bias is not None:
                    lin.bias[...] = op.bias
                layers.append(lin)
            else:
                layers.append({"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}[op]())
        return Sequential(*layers)

    def forward(self, X) -> np.ndarray:
        """Logits ``(n, out)`` float32 for inputs ``X: (n, in_features)``."""
        X = as_array("X", X, ndim=2, dtype_kind="fiu")
        if X.shape[1] != self.in_features:
            raise ValueError(f"X must have {self.in_features} columns, got shape {X.shape}")
        h = X.astype(np.float32)
        for op in self.ops:
            if isinstance(op, PackedLinear):
                h = h @ op.weight().T
                if op.bias is not None:
                    h = h + op.bias
            elif op == "relu":
                h = np.maximum(h, np.float32(0))
            elif op == "tanh":
                h = np.tanh(h)
            else:
                h = (np.float32(1) / (np.float32(1) + np.exp(-h))).astype(np.float32)
        return h

    def predict(self, X) -> np.ndarray:
        """Class predictions ``argmax(forward(X), axis=1)``."""
        return self.forward(X).argmax(axis=1)

    @property
    def num_weights(self) -> int:
        """Entries of the dense weight matrices (biases excluded), as Han et al. count."""
        return sum(lay.out_features * lay.in_features for lay in self.layers)

    @property
    def num_params(self) -> int:
        """Weights + biases of the dense model."""
        return self.num_weights + sum(lay.out_features for lay in self.layers
                                      if lay.bias is not None)

    @property
    def nnz(self) -> int:
        """Nonzero weights (biases excluded)."""
        return sum(lay.nnz for lay in self.layers)

    def equals(self, other) -> bool:
        """Same operations and every array bit for bit."""
        if not isinstance(other, CompressedModel) or len(self.ops) != len(other.ops):
            return False
        for a, b in zip(self.ops, other.ops):
            if isinstance(a, PackedLinear) != isinstance(b, PackedLinear):
                return False
            if isinstance(a, PackedLinear) and not a.equals(b):
                return False
            if not isinstance(a, PackedLinear) and a != b:
                return False
        return True


# ------------------------------------------------------------------------------ writing

def _stream(symbols: np.ndarray, codec: str, bits: int) -> bytes:
    if codec == "huffman":
        body, tag = huffman_encode(symbols), 1
    else:
        body, tag = encode_varint(symbols.size) + pack_bits(symbols, bits), 0
    return struct.pack("<BI", tag, len(body)) + body


def _f32(x: np.ndarray) -> bytes:
    return np.ascontiguousarray(x, dtype="<f4").tobytes()


def to_bytes(model: CompressedModel, *, codec: str = "huffman", index_bits: int = 5,
             breakdown: dict | None = None) -> bytes:
    """Serialize ``model`` (see the module docstring for the layout).

    codec:      ``"raw"`` (fixed-width integers) or ``"huffman"`` for every integer stream.
    index_bits: bits per gap in the sparse structure (Han et al. use 5 for fully connected
                layers); larger gaps use escapes.
    breakdown:  optional dict, filled with the bytes spent on ``"header"`` (magic, lengths,
                shapes, checksum), ``"indices"``, ``"values"``, ``"scales_codebooks"`` and
                ``"biases"`` (they sum to the file size).
    """
    if not isinstance(model, CompressedModel):
        raise TypeError(f"model must be a CompressedModel, got {type(model).__name__}")
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
    if isinstance(index_bits, bool) or not isinstance(index_bits, int) or not 1 <= index_bits <= 16:
        raise ValueError(f"index_bits must be an integer in [1, 16], got {index_bits!r}")
    parts = {"header": 0, "indices": 0, "values": 0, "scales_codebooks": 0, "biases": 0}
    body = bytearray()

    def put(chunk: bytes, part: str):
        body.extend(chunk)
        parts[part] += len(chunk)

    for op in model.ops:
        if not isinstance(op, PackedLinear):
            put(struct.pack("<B", _OP_CODES[op]), "header")
            continue
        flags = (1 if op.bias is not None else 0) | (2 if op.sparse else 0)
        put(struct.pack("<BIIBB", _OP_CODES["linear"], op.out_features, op.in_features,
                        KINDS.index(op.kind), flags), "header")
        if op.sparse:
            put(struct.pack("<IB", op.indices.size, index_bits), "header")
            put(_stream(positions_to_gaps(op.indices, index_bits), codec, index_bits), "indices")
        if op.kind == "float32":
            put(_f32(op.values), "values")
        elif op.kind == "int8":
            put(_f32(op.scales) + op.zero_points.tobytes(), "scales_codebooks")
            put(_stream(op.values.astype(np.int64) + 128, codec, 8), "values")
        else:
            put(struct.pack("<H", op.codebook.size) + _f32(op.codebook), "scales_codebooks")
            put(_stream(op.values.astype(np.int64), codec, _bits_for(op.codebook.size)), "values")
        if op.bias is not None:
            put(_f32(op.bias), "biases")
    out = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(model.ops), len(body)) + bytes(body)
    out += struct.pack("<I", zlib.crc32(out))
    parts["header"] += _PREAMBLE.size + 4
    if breakdown is not None:
        breakdown.clear()
        breakdown.update(parts)
    return out


def size_breakdown(model: CompressedModel, *, codec: str = "huffman", index_bits: int = 5) -> dict:
    """Bytes per part of the file (see :func:`to_bytes`), plus ``"total"``."""
    parts: dict = {}
    data = to_bytes(model, codec=codec, index_bits=index_bits, breakdown=parts)
    parts["total"] = len(data)
    return parts


# ------------------------------------------------------------------------------ reading

class _Reader:
    def __init__(self, data: bytes, start: int, end: int):
        self.data, self.pos, self.end = data, start, end

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > self.end:
            raise ValueError(f"data is corrupted: {what} needs {n} bytes at offset {self.pos}, "
                             f"only {self.end - self.pos} left in the body")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str):
        s = struct.Struct(fmt)
        return s.unpack(self.take(s.size, what))

    def f32(self, n: int, what: str) -> np.ndarray:
        return np.frombuffer(self.take(4 * n, what), dtype="<f4").astype(np.float32)

    def stream(self, n_expected, bits: int, what: str) -> np.ndarray:
        tag, nbytes = self.unpack("<BI", f"{what} stream header")
        chunk = self.take(nbytes, f"{what} stream")
        if tag == 1:
            symbols, end = huffman_decode_from(chunk, 0)
        elif tag == 0:
            n, off = decode_varint(chunk, 0)
            if n > 8 * len(chunk):
                raise ValueError(f"data is corrupted: {what} stream announces {n} values "
                                 f"in {len(chunk)} bytes")
            symbols = unpack_bits(chunk[off:], n, bits)
            end = off + math.ceil(n * bits / 8)
        else:
            raise ValueError(f"data is corrupted: unknown codec {tag} in the {what} stream")
        if end != len(chunk):
            raise ValueError(f"data is corrupted: the {what} stream has {len(chunk) - end} "
                             f"unused bytes")
        if n_expected is not None and symbols.size != n_expected:
            raise ValueError(f"data is corrupted: the {what} stream holds {symbols.size} "
                             f"values, expected {n_expected}")
        return symbols


def from_bytes(data) -> CompressedModel:
    """Parse a file made by :func:`to_bytes`; any damage raises ``ValueError`` (see module doc)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _PREAMBLE.size + 4:
        raise ValueError(f"data is truncated: {len(data)} bytes, a compressed model file "
                         f"has at least {_PREAMBLE.size + 4}")
    magic, version, n_ops, body_len = _PREAMBLE.unpack_from(data, 0)
    if magic != MAGIC:
        raise ValueError(f"data is not a compressed model file: magic {magic!r}, "
                         f"expected {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise ValueError(f"unsupported format version {version} (this reader reads "
                         f"{FORMAT_VERSION})")
    expected = _PREAMBLE.size + body_len + 4
    if len(data) < expected:
        raise ValueError(f"data is truncated: the header announces {expected} bytes, "
                         f"got {len(data)}")
    if len(data) > expected:
        raise ValueError(f"data has {len(data) - expected} trailing bytes after the checksum")
    (crc,) = struct.unpack_from("<I", data, expected - 4)
    if zlib.crc32(data[:expected - 4]) != crc:
        raise ValueError("data is corrupted: the CRC-32 checksum does not match")
    r = _Reader(data, _PREAMBLE.size, expected - 4)
    ops = []
    try:
        for i in range(n_ops):
            (code,) = r.unpack("<B", f"operation {i}")
            name = _OP_NAMES.get(code)
            if name is None:
                raise ValueError(f"data is corrupted: unknown operation code {code} at op {i}")
            if name != "linear":
                ops.append(name)
                continue
            out, inp, kind_code, flags = r.unpack("<IIBB", f"layer {i} header")
            if kind_code >= len(KINDS) or flags > 3:
                raise ValueError(f"data is corrupted: layer {i} has kind {kind_code}, "
                                 f"flags {flags}")
            kind = KINDS[kind_code]
            indices = None
            if flags & 2:
                nnz, index_bits = r.unpack("<IB", f"layer {i} sparsity header")
                if not 1 <= index_bits <= 16:
                    raise ValueError(f"data is corrupted: index_bits {index_bits}")
                gaps = r.stream(None, index_bits, f"layer {i} index")
                indices = gaps_to_positions(gaps, index_bits)
                if indices.size != nnz:
                    raise ValueError(f"data is corrupted: layer {i} has {indices.size} "
                                     f"positions, expected {nnz}")
            m = out * inp if indices is None else indices.size
            kw = {}
            if kind == "float32":
                values = r.f32(m, f"layer {i} values")
            elif kind == "int8":
                kw["scales"] = r.f32(out, f"layer {i} scales")
                kw["zero_points"] = np.frombuffer(r.take(out, f"layer {i} zero points"),
                                                  dtype=np.int8).copy()
                codes = r.stream(m, 8, f"layer {i} code")
                if codes.size and (codes.min() < 0 or codes.max() > 255):
                    raise ValueError(f"data is corrupted: layer {i} has int8 codes out of range")
                values = (codes - 128).astype(np.int8)
            else:
                (k,) = r.unpack("<H", f"layer {i} codebook size")
                kw["codebook"] = r.f32(k, f"layer {i} codebook")
                idx = r.stream(m, _bits_for(k), f"layer {i} codebook index")
                if idx.size and (idx.min() < 0 or idx.max() >= k):
                    raise ValueError(f"data is corrupted: layer {i} indexes past its codebook")
                values = idx.astype(np.uint8)
            bias = r.f32(out, f"layer {i} bias") if flags & 1 else None
            ops.append(PackedLinear(out, inp, kind, values, indices=indices, bias=bias, **kw))
        if r.pos != r.end:
            raise ValueError(f"data is corrupted: {r.end - r.pos} unread bytes in the body")
        return CompressedModel(ops)
    except (TypeError, struct.error) as err:  # pragma: no cover - defensive
        raise ValueError(f"data is corrupted: {err}") from None


def save(model: CompressedModel, path, *, codec: str = "huffman", index_bits: int = 5) -> int:
    """Write ``model`` to ``path``; returns the file size in bytes (``os.path.getsize``)."""
    data = to_bytes(model, codec=codec, index_bits=index_bits)
    path = Path(path)
    path.write_bytes(data)
    return path.stat().st_size


def load(path) -> CompressedModel:
    """Read a model written by :func:`save` (a damaged file raises ``ValueError``)."""
    return from_bytes(Path(path).read_bytes())
