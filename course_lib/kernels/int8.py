r"""Exact int8 matrix products with int32 accumulation (chapter 5): readable, then fast.

``int8_matmul(a, b)``: ``a`` (m, k) int8 or uint8 times ``b`` (k, n) int8, every product and
sum in int32, exact.  NumPy twin: :func:`int8_matmul_numpy`
(``a.astype(int32) @ b.astype(int32)``; NumPy's integer ``@`` does not use BLAS and is slow).

Why int32: one product of two 8-bit codes needs up to 16 bits (``255 * 127 = 32385``), a sum of
``k`` of them up to ``16 + log2(k)`` bits.  Accumulating in int8 or int16 overflows at once;
int32 is exact for ``k`` up to 66 000 with uint8 x int8 (``2**31 / 32385``).

Two kernels:

1. :func:`_int8_matmul_loops`, **the readable one**: three loops in the order ``i, p, j``, so
   the innermost loop runs along a row of ``b`` and of the output (contiguous memory, which LLVM
   vectorises: it widens 16 int8 values to int32 and multiplies them in one AVX-512 instruction).
   It is correct on every CPU, but the widening costs four times the arithmetic: it reaches only
   a fraction of NumPy's float32 BLAS (see ``benchmarks/int8_matmul.py``).

2. :func:`_int8_matmul_vnni`, **the fast one**, for CPUs with the AVX-512 VNNI instruction
   ``vpdpbusd`` (Intel since Cascade Lake / Ice Lake, AMD since Zen 4).  One ``vpdpbusd`` takes
   16 int32 accumulators, 64 unsigned bytes and 64 signed bytes and adds, to each accumulator,
   the dot product of *four* consecutive byte pairs: 64 multiply-adds per instruction, without
   widening.  LLVM does not emit it from plain loops, so a tiny numba ``@intrinsic``
   (:func:`_dpbusd`) emits it by name.  The kernel around it:

   - **packs ``b``** once (a weight matrix is packed ahead of time, as fbgemm does) into
     blocks of 32 columns; inside a block, for every group of 4 rows ``p..p+3``, 16 columns x 4
     bytes (one 64-byte vector) and then the next 16 columns.  The 4 bytes of one lane are
     ``b[p:p+4, j]``, exactly the four values ``vpdpbusd`` multiplies with ``a[i, p:p+4]``;
   - reads ``a[i, p:p+4]`` as one int32 and broadcasts it to all 16 lanes;
   - keeps a **register tile** of 4 rows x 32 columns (8 vectors of accumulators, each a
     numba value of type ``int32x16``, one 512-bit register) while it walks along ``k``: each loaded ``b``
     vector is used 4 times, each broadcast ``a`` value twice;
   - ``vpdpbusd`` wants ``a`` *unsigned*: a signed ``a`` is shifted, ``a + 128`` (a uint8), and
     the shift is taken back exactly: ``a @ b = (a + 128) @ b - 128 * colsum(b)``;
   - runs the column blocks in parallel (``prange``).

:func:`has_vnni` reads the CPU's flags at run time; :func:`int8_matmul` uses the fast kernel
where the CPU has ``avx512_vnni`` and the readable one elsewhere, so every machine gets the
same exact answer.
"""

from __future__ import annotations

import functools

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model

from ..validation import as_array

__all__ = ["int8_matmul", "int8_matmul_numpy", "int8_matmul_readable", "int8_matmul_vnni",
           "has_vnni", "cpu_flags", "PackedInt8", "pack_int8_weights"]

# ----------------------------------------------------------------------------------------
# the NumPy twin and argument checks
# ----------------------------------------------------------------------------------------


def _check(a, b):
    a = as_array("a", a, ndim=2, dtype_kind="iu")
    b = as_array("b", b, ndim=2, dtype_kind="i")
    if a.dtype not in (np.int8, np.uint8):
        raise TypeError(f"a must be int8 or uint8, got {a.dtype}")
    if b.dtype != np.int8:
        raise TypeError(f"b must be int8, got {b.dtype}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"a and b must have matching inner dimensions, got a.shape={a.shape}, b.shape={b.shape}")
    return a, b


def int8_matmul_numpy(a, b) -> np.ndarray:
    """``a @ b`` with every product and sum in int32: the reference.  Returns (m, n) int32."""
    a, b = _check(a, b)
    return a.astype(np.int32) @ b.astype(np.int32)


# ----------------------------------------------------------------------------------------
# 1. the readable kernel
# ----------------------------------------------------------------------------------------


@njit(cache=True, parallel=True)
def _int8_matmul_loops(a, b, out):
    m, k = a.shape
    n = b.shape[1]
    for i in prange(m):                  # rows are independent: one per thread
        for p in range(k):
            aip = np.int32(a[i, p])
            for j in range(n):           # contiguous in b and out: vectorised by LLVM
                out[i, j] += aip * np.int32(b[p, j])


def int8_matmul_readable(a, b) -> np.ndarray:
    """The readable numba kernel (every CPU).  a: (m, k) int8/uint8, b: (k, n) int8 -> (m, n) int32."""
    a, b = _check(a, b)
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.int32)
    _int8_matmul_loops(np.ascontiguousarray(a), np.ascontiguousarray(b), out)
    return out


# ----------------------------------------------------------------------------------------
# CPU feature detection
# ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    """The CPU's feature flags: ``/proc/cpuinfo`` on Linux, else LLVM's view of the host CPU."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        feats = llvm_binding.get_host_cpu_features()
        return frozenset(name.replace("avx512vnni", "avx512_vnni") for name, on in feats.items() if on)
    except Exception:  # pragma: no cover - an exotic platform: play safe
        return frozenset()


def has_vnni() -> bool:
    """Does this CPU have AVX-512 VNNI (``vpdpbusd`` on 512-bit vectors)?"""
    return "avx512_vnni" in cpu_flags()


# ----------------------------------------------------------------------------------------
# 2. the fast kernel: vpdpbusd through a numba intrinsic
# ----------------------------------------------------------------------------------------

_I32 = ir.IntType(32)
_V16 = ir.VectorType(_I32, 16)
_V64 = ir.VectorType(ir.IntType(8), 64)
# LLVM 21 changed the intrinsic's byte operands from <16 x i32> to <64 x i8> (both are 64 bytes)
_BYTES = _V64 if llvm_binding.llvm_version_info[0] >= 21 else _V16


class Int32x16(types.Type):
    """numba type of 16 int32 lanes held in one 512-bit register (LLVM ``<16 x i32>``)."""

    def __init__(self):
        super().__init__(name="int32x16")


int32x16 = Int32x16()


@register_model(Int32x16)
class _Int32x16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _V16)


@intrinsic
def _zeros16(typingctx):
    """A register of 16 int32 zeros."""
    def codegen(context, builder, sig, args):
        return ir.Constant(_V16, [0] * 16)
    return int32x16(), codegen


@intrinsic
def _dpbusd(typingctx, acc, a4, bp, offset):
    """One ``vpdpbusd``: ``acc[t] + sum_{u<4} a_byte[u] * bp[offset + 4 t + u]`` for the 16 lanes t.

    acc: int32x16; a4: int32 holding 4 *unsigned* bytes of ``a`` (broadcast to every lane);
    bp: 1-d int8 array (*signed* bytes); offset: index of the first of the 64 bytes used.
    """
    sig = int32x16(acc, a4, bp, offset)

    def codegen(context, builder, sig, args):
        acc_v, a4_v, arr, off = args
        av = builder.insert_element(ir.Constant(_V16, ir.Undefined), a4_v, ir.Constant(_I32, 0))
        av = builder.shuffle_vector(av, av, ir.Constant(_V16, [0] * 16))        # broadcast
        ary = context.make_array(sig.args[2])(context, builder, arr)
        ptr = builder.gep(ary.data, [off])
        bv = builder.load(builder.bitcast(ptr, _BYTES.as_pointer()), align=1)  # 64 bytes of b
        fnty = ir.FunctionType(_V16, [_V16, _BYTES, _BYTES])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.avx512.vpdpbusd.512")
        return builder.call(fn, [acc_v, builder.bitcast(av, _BYTES), bv])

    return sig, codegen


@intrinsic
def _store16(typingctx, out, offset, acc):
    """``out[offset : offset + 16] = acc`` (out: 1-d int32 array, acc: int32x16)."""
    sig = types.none(out, offset, acc)

    def codegen(context, builder, sig, args):
        arr, off, acc_v = args
        ary = context.make_array(sig.args[0])(context, builder, arr)
        ptr = builder.gep(ary.data, [off])
        builder.store(acc_v, builder.bitcast(ptr, _V16.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


NR = 32   # columns per block (two 16-lane vectors)
MR = 4    # rows per register tile


@njit(cache=True)
def _vnni_tile(a4, bp, out, i, jb, n_pad):
    # one register tile: rows i..i+3, columns 32 jb .. 32 jb + 31, the whole of k
    kg = a4.shape[1]
    base = jb * kg * 128
    c00, c01, c10, c11 = _zeros16(), _zeros16(), _zeros16(), _zeros16()
    c20, c21, c30, c31 = _zeros16(), _zeros16(), _zeros16(), _zeros16()
    for g in range(kg):
        off = base + g * 128                  # 64 bytes for columns 0-15 of the block, 64 for 16-31
        x0, x1, x2, x3 = a4[i, g], a4[i + 1, g], a4[i + 2, g], a4[i + 3, g]
        c00 = _dpbusd(c00, x0, bp, off)
        c01 = _dpbusd(c01, x0, bp, off + 64)
        c10 = _dpbusd(c10, x1, bp, off)
        c11 = _dpbusd(c11, x1, bp, off + 64)
        c20 = _dpbusd(c20, x2, bp, off)
        c21 = _dpbusd(c21, x2, bp, off + 64)
        c30 = _dpbusd(c30, x3, bp, off)
        c31 = _dpbusd(c31, x3, bp, off + 64)
    row = i * n_pad + jb * 32
    _store16(out, row, c00)
    _store16(out, row + 16, c01)
    _store16(out, row + n_pad, c10)
    _store16(out, row + n_pad + 16, c11)
    _store16(out, row + 2 * n_pad, c20)
    _store16(out, row + 2 * n_pad + 16, c21)
    _store16(out, row + 3 * n_pad, c30)
    _store16(out, row + 3 * n_pad + 16, c31)


@njit(cache=True, parallel=True)
def _int8_matmul_vnni(a4, bp, out):
    # a4: (m_pad, kg) int32, four unsigned bytes of a per entry; bp: packed b (see pack_int8_weights);
    # out: flat (m_pad * n_pad) int32
    m_pad = a4.shape[0]
    n_pad = out.size // m_pad
    n_blocks = n_pad // 32
    for t in prange(n_blocks * (m_pad // 4)):   # every (column block, row tile) pair: one task
        jb, i = t % n_blocks, (t // n_blocks) * 4
        _vnni_tile(a4, bp, out, i, jb, n_pad)


class PackedInt8:
    """``b`` (k, n) int8 packed for the VNNI kernel, with its column sums.

    data: 1-d int8, ``(n_pad / 32) * (k_pad / 4) * 128`` bytes; colsum: (n,) int32; k, n: the
    original shape.  Build with :func:`pack_int8_weights`.
    """

    def __init__(self, data, colsum, k, n):
        self.data, self.colsum, self.k, self.n = data, colsum, int(k), int(n)

    @property
    def shape(self):
        return (self.k, self.n)


def pack_int8_weights(b) -> PackedInt8:
    """Pack ``b`` (k, n) int8 for :func:`int8_matmul_vnni` (done once per weight matrix)."""
    b = as_array("b", b, ndim=2, dtype_kind="i")
    if b.dtype != np.int8:
        raise TypeError(f"b must be int8, got {b.dtype}")
    k, n = b.shape
    k_pad, n_pad = -(-k // 4) * 4, -(-n // NR) * NR
    bz = np.zeros((k_pad, n_pad), dtype=np.int8)
    bz[:k, :n] = b
    # (k_pad, n_pad) -> [column block jb][row group g][half h][lane t][byte u] = b[4g + u, 32 jb + 16 h + t]
    blocks = bz.reshape(k_pad // 4, 4, n_pad // NR, 2, 16).transpose(2, 0, 3, 4, 1)
    return PackedInt8(np.ascontiguousarray(blocks).reshape(-1), b.astype(np.int32).sum(axis=0), k, n)


def int8_matmul_vnni(a, b) -> np.ndarray:
    """The VNNI kernel (only on CPUs where :func:`has_vnni` is true).

    a: (m, k) int8 or uint8; b: (k, n) int8 or a :class:`PackedInt8`.  Returns (m, n) int32.
    """
    if not has_vnni():
        raise RuntimeError("this CPU has no AVX-512 VNNI: use int8_matmul (it falls back to the readable kernel)")
    packed = b if isinstance(b, PackedInt8) else pack_int8_weights(b)
    a = as_array("a", a, ndim=2, dtype_kind="iu")
    if a.dtype not in (np.int8, np.uint8):
        raise TypeError(f"a must be int8 or uint8, got {a.dtype}")
    m, k = a.shape
    if k != packed.k:
        raise ValueError(f"a and b must have matching inner dimensions, got a.shape={a.shape}, b.shape={packed.shape}")
    k_pad, n_pad, m_pad = -(-k // 4) * 4, -(-packed.n // NR) * NR, -(-m // MR) * MR
    au = np.zeros((m_pad, k_pad), dtype=np.uint8)
    signed = a.dtype == np.int8
    au[:m, :k] = a.view(np.uint8) ^ np.uint8(0x80) if signed else a   # a + 128 as uint8
    out = np.empty(m_pad * n_pad, dtype=np.int32)
    _int8_matmul_vnni(au.view(np.int32), packed.data, out)
    c = out.reshape(m_pad, n_pad)[:m, :packed.n]
    if signed:
        c = c - np.int32(128) * packed.colsum           # (a + 128) @ b - 128 * colsum(b)
    return np.ascontiguousarray(c)


def int8_matmul(a, b) -> np.ndarray:
    """Exact ``a @ b`` in int32: a (m, k) int8 or uint8, b (k, n) int8 (or :class:`PackedInt8`).

    Uses the VNNI kernel where the CPU has it, the readable kernel elsewhere (same result).
    PyTorch counterpart: ``torch._int_mm`` (int8 x int8 -> int32) and the fbgemm GEMM inside
    ``torch.ao.nn.quantized.dynamic.Linear``.
    """
    if has_vnni():
        return int8_matmul_vnni(a, b)
    if isinstance(b, PackedInt8):
        raise TypeError("a PackedInt8 b needs the VNNI kernel: pass the (k, n) int8 matrix instead")
    return int8_matmul_readable(a, b)
