"""course_lib.compress.huffman: optimal lengths, canonical codes, stream round trip, damage."""

import itertools
import math

import numpy as np
import pytest

from course_lib.compress import huffman as hf


def _optimal_cost(counts):
    """Brute force: the least sum c_s * l_s over all length vectors obeying Kraft's inequality."""
    used = [c for c in counts if c > 0]
    k = len(used)
    if k == 1:
        return used[0]
    best = math.inf
    for lengths in itertools.product(range(1, k), repeat=k):
        if sum(2.0 ** -l for l in lengths) <= 1.0:
            best = min(best, sum(c * l for c, l in zip(used, lengths)))
    return best


def test_textbook_example_lengths_and_cost():
    # CLRS, "Huffman codes": a:45 b:13 c:12 d:16 e:9 f:5 -> 224 bits for 100 characters
    counts = [45, 13, 12, 16, 9, 5]
    lengths = hf.huffman_code_lengths(counts)
    np.testing.assert_array_equal(lengths, [1, 3, 3, 3, 4, 4])
    assert int(np.dot(counts, lengths)) == 224


@pytest.mark.parametrize("p", [[1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 16], [1 / 4] * 4,
                               [1 / 2, 1 / 8, 1 / 8, 1 / 8, 1 / 16, 1 / 32, 1 / 32]])
def test_dyadic_probabilities_give_minus_log2_p_and_reach_the_entropy(p):
    counts = np.round(np.array(p) * 1024).astype(np.int64)
    lengths = hf.huffman_code_lengths(counts)
    np.testing.assert_array_equal(lengths, -np.log2(p))
    assert hf.average_code_length(counts, lengths) == pytest.approx(hf.entropy_bits(counts),
                                                                    abs=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_lengths_are_optimal_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    counts = rng.integers(1, 60, size=k) ** int(rng.integers(1, 3))  # some very skewed
    lengths = hf.huffman_code_lengths(counts)
    assert int(np.dot(counts, lengths)) == _optimal_cost(list(counts))


def test_shannon_code_is_not_optimal_so_the_brute_force_can_tell():
    # the plausible wrong answer l = ceil(-log2 p) costs more on this histogram
    counts = np.array([9, 1, 1, 1])
    shannon = np.ceil(-np.log2(counts / counts.sum())).astype(int)
    assert np.dot(counts, shannon) > _optimal_cost(list(counts))
    assert np.dot(counts, hf.huffman_code_lengths(counts)) == _optimal_cost(list(counts))


@pytest.mark.parametrize("seed", range(10))
def test_entropy_bound_and_full_tree(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 1000, size=int(rng.integers(2, 300)))
    counts[:2] += 1  # at least two symbols occur
    lengths = hf.huffman_code_lengths(counts)
    H, L = hf.entropy_bits(counts), hf.average_code_length(counts, lengths)
    assert H <= L + 1e-12 and L < H + 1
    assert np.all((lengths > 0) == (counts > 0))
    # Huffman's tree is full: Kraft's sum is exactly 1
    assert np.sum(np.ldexp(1.0, -lengths[lengths > 0])) == 1.0


def test_single_and_no_symbol():
    np.testing.assert_array_equal(hf.huffman_code_lengths([0, 7, 0]), [0, 1, 0])
    np.testing.assert_array_equal(hf.huffman_code_lengths([0, 0]), [0, 0])
    assert hf.entropy_bits([0, 5]) == 0.0


def test_canonical_codes_are_prefix_free_and_ordered():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 50, size=40)
    lengths = hf.huffman_code_lengths(counts)
    codes = hf.canonical_codes(lengths)
    words = {s: format(int(codes[s]), f"0{lengths[s]}b") for s in np.flatnonzero(lengths)}
    assert all(len(w) == lengths[s] for s, w in words.items())
    ws = list(words.values())
    for a, b in itertools.permutations(ws, 2):
        assert not b.startswith(a)
    # canonical: sorted by (length, symbol), codes are increasing binary numbers
    order = sorted(words, key=lambda s: (lengths[s], s))
    as_ints = [int(words[s], 2) << (64 - len(words[s])) for s in order]
    assert as_ints == sorted(as_ints)


def test_canonical_codes_of_a_known_length_set():
    # RFC 1951 section 3.2.2's example: lengths (3, 3, 3, 3, 3, 2, 4, 4) for A..H
    codes = hf.canonical_codes([3, 3, 3, 3, 3, 2, 4, 4])
    got = [format(int(c), f"0{n}b") for c, n in zip(codes, [3, 3, 3, 3, 3, 2, 4, 4])]
    assert got == ["010", "011", "100", "101", "110", "00", "1110", "1111"]


STREAMS = {
    "geometric": lambda r: r.geometric(0.3, 5000) - 1,
    "negative": lambda r: r.integers(-100, 100, 3000),
    "int8": lambda r: np.clip(np.round(r.standard_normal(4000) * 20), -128, 127).astype(np.int8),
    "uint8": lambda r: r.integers(0, 4, 777).astype(np.uint8),
    "one symbol": lambda r: np.full(50, 9),
    "one element": lambda r: np.array([-3]),
    "empty": lambda r: np.zeros(0, dtype=np.int64),
    "wide": lambda r: r.integers(0, 70000, 200),
}


@pytest.mark.parametrize("name", STREAMS)
def test_round_trip(name):
    s = STREAMS[name](np.random.default_rng(0))
    data = hf.huffman_encode(s)
    out = hf.huffman_decode(data)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, s.astype(np.int64))
    assert hf.huffman_encode(s) == data  # deterministic


def test_stream_size_is_header_plus_code_bits():
    rng = np.random.default_rng(1)
    s = rng.geometric(0.4, 2000)
    counts = np.bincount(s - s.min())
    lengths = hf.huffman_code_lengths(counts)
    header = (len(hf.encode_varint(s.size)) + len(hf.encode_varint(2 * int(s.min())))
              + len(hf.encode_varint(counts.size)) + counts.size)
    assert len(hf.huffman_encode(s)) == header + math.ceil(np.dot(counts, lengths) / 8)


def test_skewed_stream_beats_fixed_width():
    s = np.random.default_rng(2).geometric(0.5, 10000) - 1     # ~2 bits of entropy
    s = np.minimum(s, 15)                                        # 4 bits fixed width
    assert len(hf.huffman_encode(s)) < 0.6 * (s.size * 4 / 8)


@pytest.mark.parametrize("seed", range(5))
def test_numba_decoder_matches_readable_twin(seed):
    rng = np.random.default_rng(seed)
    s = rng.geometric(0.2, 700) - 1
    counts = np.bincount(s)
    lengths = hf.huffman_code_lengths(counts)
    codes = hf.canonical_codes(lengths)
    data = hf.huffman_encode(s)
    payload = data[len(data) - math.ceil(np.dot(counts, lengths) / 8):]
    ref = hf.decode_bits_reference(payload, s.size, lengths)
    np.testing.assert_array_equal(ref, s)
    first, count, offset, order, max_len = hf._decode_tables(lengths)
    fast, nbits = hf._decode_bits(np.frombuffer(payload, np.uint8), s.size, first, count,
                                  offset, order, max_len)
    np.testing.assert_array_equal(fast, ref)
    assert nbits == int(np.dot(counts, lengths))
    assert codes.dtype == np.uint64


def test_varint_round_trip_and_known_bytes():
    assert hf.encode_varint(0) == b"\x00"
    assert hf.encode_varint(300) == b"\xac\x02"  # protobuf's documented example
    for v in [0, 1, 127, 128, 2**32, 2**63 - 1]:
        assert hf.decode_varint(hf.encode_varint(v), 0) == (v, len(hf.encode_varint(v)))
    with pytest.raises(ValueError, match="truncated"):
        hf.decode_varint(b"\x80", 0)
    with pytest.raises(ValueError, match="value"):
        hf.encode_varint(-1)


def test_truncated_and_trailing_streams_raise():
    s = np.random.default_rng(4).integers(0, 30, 500)
    data = hf.huffman_encode(s)
    for cut in range(len(data)):
        with pytest.raises(ValueError):
            hf.huffman_decode(data[:cut])
    with pytest.raises(ValueError, match="trailing"):
        hf.huffman_decode(data + b"\x00")


def test_corrupted_lengths_raise():
    data = bytearray(hf.huffman_encode(np.array([0, 1, 2, 2, 2, 3])))
    # header: n=6, zigzag(0)=0, K=4, lengths (3, 3, 1, 2) -> make them violate Kraft
    assert list(data[3:7]) == [3, 3, 1, 2]
    data[3] = 1
    with pytest.raises(ValueError, match="Kraft"):
        hf.huffman_decode(bytes(data))
    # an incomplete code (1, 0, 0, 0 would leave '1...' unmatched): bits matching no code
    bad = bytes([2, 0, 2, 1, 0]) + bytes([0b10000000])
    with pytest.raises(ValueError, match="match no code"):
        hf.huffman_decode(bad)


@pytest.mark.parametrize("bad,exc,match", [
    (np.zeros((2, 2), dtype=int), ValueError, "symbols"),
    (np.array([0.5, 1.0]), TypeError, "symbols"),
    ("abc", TypeError, "symbols"),
])
def test_encode_bad_input(bad, exc, match):
    with pytest.raises(exc, match=match):
        hf.huffman_encode(bad)


def test_other_bad_input():
    with pytest.raises(ValueError, match="counts"):
        hf.huffman_code_lengths([3, -1])
    with pytest.raises(ValueError, match="Kraft"):
        hf.canonical_codes([1, 1, 1])
    with pytest.raises(ValueError, match="lengths"):
        hf.canonical_codes([-1, 2])
    with pytest.raises(TypeError, match="data"):
        hf.huffman_decode([1, 2, 3])
    with pytest.raises(ValueError, match="no code"):
        hf.average_code_length([1, 2], [1, 0])
