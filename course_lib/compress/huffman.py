r"""Huffman coding of integer symbol streams, from scratch (chapter 7).

The last stage of Deep Compression (Han, Mao and Dally 2016): after pruning and quantization
a layer is two streams of small integers, the *codebook indices* of the surviving weights and
the *gaps* between their positions.  Their values are far from uniform, so a variable-length
prefix code stores them in fewer bits than a fixed width.  Huffman's code is the optimal one
among codes that spend a whole number of bits per symbol.

**The code lengths** (:func:`huffman_code_lengths`).  Put every symbol with count
:math:`c_s > 0` in a priority queue; repeatedly merge the two lightest trees into one whose
weight is their sum; a symbol's code length is its depth in the final tree.  Ties are broken
by creation order (a deterministic rule, so the same histogram always gives the same code).
For probabilities :math:`p_s = c_s / \sum c`, the average length
:math:`L = \sum_s p_s \ell_s` satisfies

.. math::  H(p) \le L < H(p) + 1, \qquad H(p) = -\sum_s p_s \log_2 p_s,

with :math:`L = H` exactly when every :math:`p_s` is a power of two (then
:math:`\ell_s = -\log_2 p_s`).  One symbol alone gets a 1-bit code (a prefix code needs at
least one bit; this is also what Deflate does).

**Canonical codes** (:func:`canonical_codes`).  Only the lengths matter for the size; the bits
themselves are assigned in a fixed order — by length, then by symbol value, counting up —
so a decoder can rebuild the whole code from the lengths alone.  That is why the stream
header stores one length per symbol and nothing else.

**The stream** (:func:`huffman_encode` / :func:`huffman_decode`), all integers little-endian
base-128 varints (LEB128, as in protobuf and WebAssembly)::

    n            number of symbols in the stream
    zigzag(lo)   smallest symbol value (zigzag: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ...)
    K            alphabet size: symbols lo .. lo + K - 1
    K bytes      code length of each symbol (0: does not occur)
    payload      ceil(total bits / 8) bytes, codes packed most significant bit first

The decoder (:func:`_decode_bits`, a numba kernel, and its readable twin
:func:`decode_bits_reference`) reads one bit at a time and uses the canonical structure:
among codes of length :math:`\ell`, the codes are consecutive integers starting at
``first[l]``, so a code of length :math:`\ell` is complete exactly when
``code - first[l] < count[l]`` (the method of Deflate's reference decoder *puff*).

PyTorch has no counterpart (it stores tensors raw); ``zlib`` / ``gzip`` use Huffman coding
inside Deflate.
"""

from __future__ import annotations

import heapq
import numbers

import numpy as np
from numba import njit

from ..validation import as_array

__all__ = ["huffman_code_lengths", "canonical_codes", "entropy_bits", "average_code_length",
           "huffman_encode", "huffman_decode", "huffman_decode_from", "decode_bits_reference",
           "encode_varint", "decode_varint", "MAX_CODE_LENGTH"]

#: Longest code the stream format allows (codes are handled as 64-bit integers).  A Huffman
#: code this long needs a stream of at least Fibonacci(57) ~ 3.6e11 symbols.
MAX_CODE_LENGTH = 56


# ------------------------------------------------------------------------------ code lengths

def huffman_code_lengths(counts) -> np.ndarray:
    """Optimal prefix-code lengths for a histogram.

    counts: (K,) non-negative integers (or floats: weights), ``counts[s]`` = how often symbol
            ``s`` occurs.
    Returns (K,) int64 lengths; 0 for symbols that never occur, 1 if only one symbol occurs.
    Deterministic: ties between equal weights are broken by creation order.
    """
    counts = as_array("counts", counts, ndim=1, dtype_kind="iuf")
    if counts.size and counts.min() < 0:
        raise ValueError(f"counts must be non-negative, got min {counts.min()}")
    lengths = np.zeros(counts.size, dtype=np.int64)
    used = np.flatnonzero(counts > 0)
    if used.size == 0:
        return lengths
    if used.size == 1:
        lengths[used[0]] = 1
        return lengths
    # heap of (weight, tie-breaker, node); leaves are symbol ids, inner nodes (left, right)
    heap = [(counts[s].item(), i, int(s)) for i, s in enumerate(used)]
    heapq.heapify(heap)
    order = len(heap)
    while len(heap) > 1:
        w1, _, a = heapq.heappop(heap)
        w2, _, b = heapq.heappop(heap)
        heapq.heappush(heap, (w1 + w2, order, (a, b)))
        order += 1
    stack = [(heap[0][2], 0)]               # walk the tree: a leaf's depth is its length
    while stack:
        node, depth = stack.pop()
        if isinstance(node, tuple):
            stack.append((node[0], depth + 1))
            stack.append((node[1], depth + 1))
        else:
            lengths[node] = depth
    if lengths.max() > MAX_CODE_LENGTH:  # pragma: no cover - needs ~1e11 symbols
        raise ValueError(f"counts give a code of length {lengths.max()} > {MAX_CODE_LENGTH}")
    return lengths


def _check_lengths(lengths) -> np.ndarray:
    lengths = as_array("lengths", lengths, ndim=1, dtype_kind="iu").astype(np.int64)
    if lengths.size and (lengths.min() < 0 or lengths.max() > MAX_CODE_LENGTH):
        raise ValueError(f"lengths must be in [0, {MAX_CODE_LENGTH}], "
                         f"got values in [{lengths.min()}, {lengths.max()}]")
    used = lengths[lengths > 0]
    # Kraft's inequality: a prefix code with these lengths exists iff sum 2^-l <= 1
    if used.size and np.sum(np.ldexp(1.0, -used)) > 1.0:
        raise ValueError(f"lengths violate Kraft's inequality (sum of 2**-l = "
                         f"{np.sum(np.ldexp(1.0, -used)):.6g} > 1): no prefix code has them")
    return lengths


def canonical_codes(lengths) -> np.ndarray:
    """The canonical prefix code for the given lengths.

    lengths: (K,) ints, 0 = symbol unused.  Returns (K,) uint64 codes: the code of symbol
    ``s`` is the ``lengths[s]`` low bits of ``codes[s]`` (most significant first).  Codes are
    assigned in order of (length, symbol), each one the previous plus one, shifted left when
    the length grows — Deflate's rule (RFC 1951, section 3.2.2).
    """
    lengths = _check_lengths(lengths)
    codes = np.zeros(lengths.size, dtype=np.uint64)
    code, prev_len = 0, 0
    for s in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[s]) - prev_len
        codes[s] = code
        prev_len = int(lengths[s])
        code += 1
    return codes


def entropy_bits(counts) -> float:
    """Shannon entropy ``-sum p log2 p`` of a histogram, in bits per symbol (0 for empty)."""
    counts = as_array("counts", counts, ndim=1, dtype_kind="iuf").astype(np.float64)
    if counts.size and counts.min() < 0:
        raise ValueError(f"counts must be non-negative, got min {counts.min()}")
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def average_code_length(counts, lengths) -> float:
    """Average bits per symbol ``sum c_s l_s / sum c_s`` of a code on a histogram."""
    counts = as_array("counts", counts, ndim=1, dtype_kind="iuf").astype(np.float64)
    lengths = as_array("lengths", lengths, ndim=1, dtype_kind="iu")
    if counts.shape != lengths.shape:
        raise ValueError(f"counts and lengths must have the same shape, "
                         f"got {counts.shape} and {lengths.shape}")
    if np.any((counts > 0) & (lengths == 0)):
        raise ValueError("lengths give no code to a symbol that occurs in counts")
    total = counts.sum()
    return float((counts * lengths).sum() / total) if total else 0.0


# ------------------------------------------------------------------------------ varints

def encode_varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits per byte, low bits first, high bit set on all but the last."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"value must be a non-negative integer, got {value!r}")
    value = int(value)
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data, offset: int) -> tuple[int, int]:
    """Read one unsigned LEB128 integer at ``offset``; returns ``(value, next offset)``."""
    value, shift = 0, 0
    while True:
        if offset >= len(data):
            raise ValueError("data is truncated: it ends inside a varint")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
        if shift > 63:
            raise ValueError("data is corrupted: a varint is longer than 64 bits")


def _zigzag(v: int) -> int:
    return 2 * v if v >= 0 else -2 * v - 1


def _unzigzag(u: int) -> int:
    return u // 2 if u % 2 == 0 else -(u + 1) // 2


# ------------------------------------------------------------------------------ bit packing

def _pack_codes(codes: np.ndarray, lengths: np.ndarray) -> bytes:
    """Concatenate ``lengths[i]`` low bits of each ``codes[i]`` (MSB first) into bytes (NumPy)."""
    total = int(lengths.sum())
    if total == 0:
        return b""
    lmax = int(lengths.max())
    # bit j (from the most significant of a length-l code) is (code >> (l-1-j)) & 1, j < l
    j = np.arange(lmax, dtype=np.int64)
    shifts = lengths[:, None] - 1 - j[None, :]
    bits = (codes[:, None] >> np.maximum(shifts, 0).astype(np.uint64)) & np.uint64(1)
    bits = bits[shifts >= 0]                 # row-major: code by code, MSB first
    return np.packbits(bits.astype(np.uint8)).tobytes()


@njit(cache=True)
def _decode_bits(payload, n, first, count, offset, sorted_symbols, max_len):  # pragma: no cover
    out = np.empty(n, dtype=np.int64)
    nbits = payload.size * 8
    pos = 0
    for i in range(n):
        code = 0
        length = 0
        while True:
            if pos >= nbits:
                return out, -1               # ran out of bits: truncated payload
            bit = (payload[pos >> 3] >> (7 - (pos & 7))) & 1
            pos += 1
            code = (code << 1) | bit
            length += 1
            if length > max_len:
                return out, -2               # no code matches: corrupted payload
            if code - first[length] < count[length]:
                out[i] = sorted_symbols[offset[length] + code - first[length]]
                break
    return out, pos


def _decode_tables(lengths: np.ndarray):
    """first[l], count[l], offset[l] and the symbols sorted by (length, value), for l = 0..max."""
    max_len = int(lengths.max()) if lengths.size else 0
    count = np.bincount(lengths[lengths > 0], minlength=max_len + 1).astype(np.int64)
    first = np.zeros(max_len + 1, dtype=np.int64)
    offset = np.zeros(max_len + 1, dtype=np.int64)
    code, idx = 0, 0
    for length in range(1, max_len + 1):
        code = (code + count[length - 1]) << 1      # count[0] = 0: the first code is 0
        first[length] = code
        offset[length] = idx
        idx += count[length]
    order = sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s))
    return first, count, offset, np.asarray(order, dtype=np.int64), max_len


def decode_bits_reference(payload: bytes, n: int, lengths) -> np.ndarray:
    """Readable twin of the numba decoder: decode ``n`` symbol ids from canonical-code bits.

    Walks the bits one by one and compares the code read so far with every code of that
    length (a dictionary lookup).  Returns (n,) int64 symbol ids (0 .. K-1).
    """
    lengths = _check_lengths(lengths)
    codes = canonical_codes(lengths)
    table = {(int(lengths[s]), int(codes[s])): int(s) for s in np.flatnonzero(lengths)}
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    out, pos = np.empty(n, dtype=np.int64), 0
    for i in range(n):
        code, length = 0, 0
        while (length, code) not in table or length == 0:
            if pos >= bits.size:
                raise ValueError("payload is truncated: it ends inside a code")
            if length >= MAX_CODE_LENGTH:
                raise ValueError("payload is corrupted: no code matches its bits")
            code = (code << 1) | int(bits[pos])
            length += 1
            pos += 1
        out[i] = table[(length, code)]
    return out


# ------------------------------------------------------------------------------ the stream

def huffman_encode(symbols) -> bytes:
    """Huffman-code a 1-D stream of integers (any range, e.g. int8 codes or gaps).

    Returns the self-describing stream described in the module docstring: header (counts
    are not stored, only code lengths) + payload.  :func:`huffman_decode` inverts it exactly.
    """
    symbols = as_array("symbols", symbols, ndim=1, dtype_kind="iu")
    n = symbols.size
    if n == 0:
        return encode_varint(0) + encode_varint(0) + encode_varint(0)
    lo, hi = int(symbols.min()), int(symbols.max())
    K = hi - lo + 1
    if K > 1 << 20:
        raise ValueError(f"symbols span {K} values (from {lo} to {hi}); the header stores one "
                         f"length per value, so keep the alphabet below 2**20")
    ids = (symbols.astype(np.int64) - lo)
    lengths = huffman_code_lengths(np.bincount(ids, minlength=K))
    codes = canonical_codes(lengths)
    header = encode_varint(n) + encode_varint(_zigzag(lo)) + encode_varint(K)
    return header + lengths.astype(np.uint8).tobytes() + _pack_codes(codes[ids], lengths[ids])


def huffman_decode_from(data, offset: int = 0) -> tuple[np.ndarray, int]:
    """Decode one stream starting at ``data[offset]``; returns ``(symbols, offset after it)``.

    symbols: (n,) int64.  A stream cut short or with bits that match no code raises
    ``ValueError`` (a bit flip *inside* the payload can still decode to other valid symbols:
    that is what the file format's checksum is for).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    n, offset = decode_varint(data, offset)
    zz, offset = decode_varint(data, offset)
    K, offset = decode_varint(data, offset)
    lo = _unzigzag(zz)
    if n == 0:
        return np.zeros(0, dtype=np.int64), offset
    if K == 0 or K > 1 << 20 or offset + K > len(data):
        raise ValueError(f"data is truncated or corrupted: header announces {K} code lengths "
                         f"at offset {offset}, {len(data) - offset} bytes left")
    lengths = np.frombuffer(data, dtype=np.uint8, count=K, offset=offset).astype(np.int64)
    offset += K
    try:
        lengths = _check_lengths(lengths)
    except ValueError as err:
        raise ValueError(f"data is corrupted: {err}") from None
    if not lengths.any():
        raise ValueError("data is corrupted: the header gives no symbol a code")
    first, count, off, order, max_len = _decode_tables(lengths)
    payload = np.frombuffer(data, dtype=np.uint8, offset=offset)
    ids, nbits = _decode_bits(payload, n, first, count, off, order, max_len)
    if nbits == -1:
        raise ValueError(f"data is truncated: the payload ends before symbol {n} of {n}")
    if nbits == -2:
        raise ValueError("data is corrupted: the payload holds bits that match no code")
    return ids + lo, offset + (nbits + 7) // 8


def huffman_decode(data) -> np.ndarray:
    """Decode a whole stream made by :func:`huffman_encode` (trailing bytes are an error)."""
    symbols, end = huffman_decode_from(data, 0)
    if end != len(data):
        raise ValueError(f"data has {len(data) - end} trailing bytes after the stream")
    return symbols
