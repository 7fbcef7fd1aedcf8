r"""Chapter 7 questions: the cost of a Huffman code, the bytes of an int8 CSR matrix, and a
compression budget planner.

- ``huffman_bits(counts) -> int``: the total number of bits a Huffman code spends on a stream
  with this histogram (``counts[s]`` occurrences of symbol ``s``; zero counts do not occur).
  Ties make the code lengths ambiguous, the total is not: it is what is compared.  One symbol
  alone costs one bit per occurrence (as in the chapter's format); an empty histogram costs 0.
- ``csr_int8_nbytes(Q) -> int``: bytes of the CSR storage of an int8 weight matrix ``Q``
  (``(out, in)``, 0 = pruned): values int8 (1 byte per nonzero), column indices uint16 (2 bytes
  per nonzero), ``indptr`` int32 (``out + 1`` entries), and one float32 scale per row.
- ``plan_compression(n_weights, n_layers, n_biases, target_bytes, *, sparsities, bits,
  index_bits) -> (sparsity, bits) or None``: the configuration the size model below fits into
  ``target_bytes`` with the **least** sparsity, and among those the **most** bits; ``None`` if
  nothing fits.  Size model (bytes)::

      nnz  = round((1 - sparsity) * n_weights)
      size = ceil(nnz * (bits + index_bits) / 8) + 4 * 2**bits * n_layers + 4 * n_biases

  ("fits" means ``size <= target_bytes``).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from .spec import Case, Mistake, Question

CHAPTER = "07_capstone"


# ----------------------------------------------------------------------------------
# 07.huffman_bits

def huffman_bits(counts):
    """Reference: the sum of the weights of all merged nodes (= sum of count x code length)."""
    used = sorted(int(c) for c in counts if c > 0)
    if len(used) == 0:
        return 0
    if len(used) == 1:
        return used[0]
    heapq.heapify(used)
    total = 0
    while len(used) > 1:
        w = heapq.heappop(used) + heapq.heappop(used)
        total += w
        heapq.heappush(used, w)
    return total


def huffman_cases(rng):
    k = int(rng.integers(5, 12))
    random_counts = [int(c) for c in rng.integers(1, 200, size=k)]
    skewed = [int(c) for c in np.sort(rng.geometric(0.3, size=k) * rng.integers(1, 5, size=k))]
    return [
        Case("the textbook histogram 45, 13, 12, 16, 9, 5", ([45, 13, 12, 16, 9, 5],)),
        Case("random counts", (random_counts,)),
        Case("skewed counts", (skewed,)),
        Case("counts with zeros (symbols that never occur)", ([0, 7, 0, 3, 3, 0, 1, 0],)),
        Case("dyadic probabilities 8, 4, 2, 1, 1", ([8, 4, 2, 1, 1],)),
        Case("one symbol only", ([0, 0, int(rng.integers(3, 50)), 0],)),
        Case("as a NumPy array", (np.array([5, 1, 1, 1, 2, 9]),)),
    ]


def _hb_shannon(counts):
    c = np.array([x for x in counts if x > 0], dtype=float)
    return int(np.sum(c * np.ceil(-np.log2(c / c.sum())))) if c.size > 1 else int(c.sum())


def _hb_fixed(counts):
    c = [int(x) for x in counts if x > 0]
    return sum(c) * max(1, math.ceil(math.log2(len(c)))) if c else 0


def _hb_entropy(counts):
    c = np.array([x for x in counts if x > 0], dtype=float)
    if c.size == 0:
        return 0
    p = c / c.sum()
    return float(c.sum() * -(p * np.log2(p)).sum())


def _hb_with_zeros(counts):
    c = [int(x) for x in counts]
    if sum(1 for x in c if x > 0) <= 1:
        return huffman_bits(counts)
    heapq.heapify(c)
    total = 0
    while len(c) > 1:
        w = heapq.heappop(c) + heapq.heappop(c)
        total += w
        heapq.heappush(c, w)
    return total


def _hb_single_zero(counts):
    used = [int(c) for c in counts if c > 0]
    return 0 if len(used) == 1 else huffman_bits(counts)


def _hb_largest(counts):
    used = sorted((int(c) for c in counts if c > 0), reverse=True)
    if len(used) <= 1:
        return sum(used)
    total = 0
    while len(used) > 1:
        w = used.pop(0) + used.pop(0)
        total += w
        used = sorted(used + [w], reverse=True)
    return total


HUFFMAN = Question(
    id="07.huffman_bits", func="huffman_bits", reference=huffman_bits, make_cases=huffman_cases,
    output_names="total bits", rtol=0, atol=0, points=2.0,
    reference_modules=("course_lib.compress.huffman", "course_lib.compress"),
    mistakes=(
        Mistake("shannon_lengths", "your lengths are Shannon's ceil(-log2 p): a valid prefix code, "
                "but not the optimal one — merge the two smallest counts, repeatedly", _hb_shannon),
        Mistake("fixed_width", "you count a fixed width of ceil(log2 K) bits per symbol: Huffman "
                "gives frequent symbols shorter codes", _hb_fixed),
        Mistake("entropy", "you return N x entropy: that is the lower bound, not the bits of a code "
                "with a whole number of bits per symbol (and it is not an integer)", _hb_entropy),
        Mistake("zeros_in_tree", "you put symbols with count 0 into the tree: they get codes and "
                "push the others deeper; leave out what never occurs", _hb_with_zeros),
        Mistake("single_symbol_free", "one symbol alone costs 0 bits in your version: a prefix code "
                "needs at least one bit per symbol", _hb_single_zero),
        Mistake("merge_largest", "you merge the two largest counts: Huffman merges the two "
                "smallest", _hb_largest),
    ),
)


# ----------------------------------------------------------------------------------
# 07.csr_int8_nbytes

def csr_int8_nbytes(Q):
    """Reference: int8 values + uint16 indices per nonzero, int32 indptr (out + 1), float32 scales."""
    Q = np.asarray(Q)
    nnz = int(np.count_nonzero(Q))
    return nnz * (1 + 2) + 4 * (Q.shape[0] + 1) + 4 * Q.shape[0]


def csr_cases(rng):
    def sparse(shape, density):
        Q = rng.integers(-127, 128, size=shape).astype(np.int8)
        Q[rng.random(shape) >= density] = 0
        return Q

    empty_row = sparse((6, 9), 0.5)
    empty_row[2] = 0
    return [
        Case("90% sparse", (sparse((int(rng.integers(20, 60)), int(rng.integers(30, 90))), 0.1),)),
        Case("half sparse", (sparse((12, 17), 0.5),)),
        Case("with an empty row", (empty_row,)),
        Case("all pruned", (np.zeros((4, 5), np.int8),)),
        Case("dense (nothing pruned)", (rng.integers(1, 100, size=(3, 7)).astype(np.int8),)),
        Case("one row", (sparse((1, 40), 0.3),)),
    ]


def _csr(Q, *, v=1, i=2, p=4, rows_plus=1, scales=True, dense=False):
    Q = np.asarray(Q)
    n = Q.size if dense else int(np.count_nonzero(Q))
    return n * (v + i) + p * (Q.shape[0] + rows_plus) + (4 * Q.shape[0] if scales else 0)


CSR = Question(
    id="07.csr_int8_nbytes", func="csr_int8_nbytes", reference=csr_int8_nbytes,
    make_cases=csr_cases, output_names="bytes", rtol=0, atol=0, points=2.0,
    mistakes=(
        Mistake("indptr_rows", "your indptr has one entry per row: it has out + 1 (row i's "
                "entries are indptr[i]:indptr[i + 1])", lambda Q: _csr(Q, rows_plus=0)),
        Mistake("int32_indices", "you count 4 bytes per column index: the task stores them as "
                "uint16, 2 bytes", lambda Q: _csr(Q, i=4)),
        Mistake("int64_indptr", "you count 8-byte indptr entries (SciPy's and torch's int64 "
                "default): the task stores them as int32", lambda Q: _csr(Q, p=8)),
        Mistake("no_scales", "you forgot the float32 scale of every row: int8 codes are "
                "meaningless without them", lambda Q: _csr(Q, scales=False)),
        Mistake("dense_count", "you count every entry, zeros included: CSR stores only the "
                "nonzeros", lambda Q: _csr(Q, dense=True)),
    ),
)


# ----------------------------------------------------------------------------------
# 07.plan_compression

def _size(n_weights, n_layers, n_biases, s, b, index_bits):
    nnz = round((1 - s) * n_weights)
    return math.ceil(nnz * (b + index_bits) / 8) + 4 * 2 ** b * n_layers + 4 * n_biases


def plan_compression(n_weights, n_layers, n_biases, target_bytes, *, sparsities, bits, index_bits):
    """Reference: least sparsity that fits, then most bits; None if nothing fits."""
    for s in sorted(sparsities):
        for b in sorted(bits, reverse=True):
            if _size(n_weights, n_layers, n_biases, s, b, index_bits) <= target_bytes:
                return (s, b)
    return None


def plan_cases(rng):
    S = [0.5, 0.7, 0.8, 0.9, 0.95]
    B = [2, 3, 4, 5, 6, 8]
    lenet = (50200, 3, 410)       # the chapter's baseline: weights, layers, biases
    exact = _size(*lenet, 0.9, 4, 5)
    return [
        Case("the chapter's baseline, 8 KB", (*lenet, 8000), dict(sparsities=S, bits=B, index_bits=5)),
        Case("a budget met exactly", (*lenet, exact), dict(sparsities=S, bits=B, index_bits=5)),
        Case("lists not sorted", (*lenet, int(rng.integers(10000, 14000))),
             dict(sparsities=[0.9, 0.5, 0.95, 0.7], bits=[4, 8, 2, 6], index_bits=5)),
        Case("a generous budget", (*lenet, 150000), dict(sparsities=S, bits=B, index_bits=5)),
        Case("impossible", (*lenet, 500), dict(sparsities=S, bits=B, index_bits=5)),
        Case("codebooks dominate: many small layers", (4000, 20, 100, int(rng.integers(2300, 2600))),
             dict(sparsities=S, bits=B, index_bits=4)),
    ]


def _plan(n_weights, n_layers, n_biases, target_bytes, sparsities, bits, index_bits, *,
          no_index=False, no_codebook=False, bits_first=False, strict=False, unsorted=False):
    def size(s, b):
        nnz = round((1 - s) * n_weights)
        return (math.ceil(nnz * (b + (0 if no_index else index_bits)) / 8)
                + (0 if no_codebook else 4 * 2 ** b * n_layers) + 4 * n_biases)

    S = list(sparsities) if unsorted else sorted(sparsities)
    B = list(bits) if unsorted else sorted(bits, reverse=True)
    pairs = [(s, b) for b in B for s in S] if bits_first else [(s, b) for s in S for b in B]
    for s, b in pairs:
        if (size(s, b) < target_bytes) if strict else (size(s, b) <= target_bytes):
            return (s, b)
    return None


def _plan_mistake(**flags):
    def impl(n_weights, n_layers, n_biases, target_bytes, *, sparsities, bits, index_bits):
        return _plan(n_weights, n_layers, n_biases, target_bytes, sparsities, bits, index_bits,
                     **flags)
    return impl


PLAN = Question(
    id="07.plan_compression", func="plan_compression", reference=plan_compression,
    make_cases=plan_cases, output_names=("sparsity", "bits"), rtol=0, atol=0, points=3.0,
    mistakes=(
        Mistake("no_index_bits", "your size forgets the index bits: every stored weight also "
                "carries its gap, (bits + index_bits) per nonzero", _plan_mistake(no_index=True)),
        Mistake("no_codebook", "your size forgets the codebooks: 2**bits float32 centroids per "
                "layer", _plan_mistake(no_codebook=True)),
        Mistake("bits_first", "you cut bits before you prune more: the rule is the least "
                "sparsity that fits, then the most bits", _plan_mistake(bits_first=True)),
        Mistake("strict_budget", "a size equal to the budget fits: use <=, not <",
                _plan_mistake(strict=True)),
        Mistake("unsorted", "you take the first fitting pair in the order the lists come in: "
                "sort the sparsities (ascending) and the bits (descending) first",
                _plan_mistake(unsorted=True)),
    ),
)

QUESTIONS = (HUFFMAN, CSR, PLAN)
