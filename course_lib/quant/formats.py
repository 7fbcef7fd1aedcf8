r"""Number formats: what a float16, a bfloat16 and an 8-bit integer can hold (chapter 5).

**Floats** spend their bits on an exponent (range) and a mantissa (precision):

=========  ====  ========  ========  ===================  ===========================
format     bits  exponent  mantissa  largest finite         relative spacing (eps)
=========  ====  ========  ========  ===================  ===========================
float32    32    8         23        3.4e38                 1.2e-7  (2**-23)
float16    16    5         10        65504                  9.8e-4  (2**-10)
bfloat16   16    8         7         3.4e38                 7.8e-3  (2**-7)
=========  ====  ========  ========  ===================  ===========================

float16 keeps precision and loses range (overflows above 65504, and values below 6.1e-5
lose bits); bfloat16 keeps float32's range and loses precision.  NumPy has float16;
bfloat16 is emulated here by rounding the float32 bit pattern to its top 16 bits
(round to nearest, ties to even, exactly what ``torch.Tensor.to(torch.bfloat16)`` does).

**Integers** for quantization are named as in PyTorch: ``"qint8"`` (stored as ``int8``,
codes -128..127) and ``"quint8"`` (stored as ``uint8``, codes 0..255).  :func:`qrange`
gives the code range PyTorch's observers use, including ``reduce_range`` (one bit less,
which x86's fbgemm kernels need to avoid int16 overflow) and a custom
``quant_min``/``quant_max`` (e.g. 4-bit codes 0..15 inside a uint8).

Model sizes: :func:`packed_nbytes` measures the bytes of arrays actually packed to
``bits`` per value (:func:`pack_bits` / :func:`unpack_bits` pack 1, 2 or 4-bit codes
into uint8, as a file format would).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..validation import as_array

__all__ = ["QDTYPES", "QSCHEMES", "check_dtype", "check_qscheme", "qrange", "FLOAT_FORMATS",
           "to_bfloat16", "to_float16", "pack_bits", "unpack_bits", "packed_nbytes"]

#: PyTorch's quantized dtypes, by torch's name: (NumPy storage dtype, smallest code, largest code)
QDTYPES = {"qint8": (np.int8, -128, 127), "quint8": (np.uint8, 0, 255)}

#: PyTorch's quantization schemes (``torch.per_tensor_affine`` etc.), by name
QSCHEMES = ("per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric")

#: bits, exponent bits, mantissa bits, largest finite value, eps (spacing just above 1.0)
FLOAT_FORMATS = {
    "float32": dict(bits=32, exponent=8, mantissa=23, max=float(np.finfo(np.float32).max), eps=2.0 ** -23),
    "float16": dict(bits=16, exponent=5, mantissa=10, max=65504.0, eps=2.0 ** -10),
    "bfloat16": dict(bits=16, exponent=8, mantissa=7, max=(2 - 2.0 ** -7) * 2.0 ** 127, eps=2.0 ** -7),
}


def check_dtype(dtype) -> str:
    """``dtype`` as one of PyTorch's quantized dtype names (``"qint8"``, ``"quint8"``)."""
    if not isinstance(dtype, str) or dtype not in QDTYPES:
        raise ValueError(f"dtype must be one of {sorted(QDTYPES)}, got {dtype!r}")
    return dtype


def check_qscheme(qscheme) -> str:
    if not isinstance(qscheme, str) or qscheme not in QSCHEMES:
        raise ValueError(f"qscheme must be one of {list(QSCHEMES)}, got {qscheme!r}")
    return qscheme


def _check_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def qrange(dtype: str = "quint8", *, reduce_range: bool = False, quant_min=None, quant_max=None):
    """``(quant_min, quant_max)``, the integer codes used, as PyTorch's observers choose them.

    Default ranges: qint8 -128..127, quint8 0..255; ``reduce_range`` halves them (qint8
    -64..63, quint8 0..127).  A custom ``quant_min``/``quant_max`` (both given) must contain 0
    and fit in the dtype; ``reduce_range`` then halves it too (``// 2``, as torch does).
    PyTorch: ``torch.ao.quantization.utils.calculate_qmin_qmax``.
    """
    dtype = check_dtype(dtype)
    _, lo, hi = QDTYPES[dtype]
    if (quant_min is None) != (quant_max is None):
        raise ValueError(f"quant_min and quant_max must be given together, got quant_min={quant_min!r}, "
                         f"quant_max={quant_max!r}")
    if quant_min is None:
        qmin, qmax = lo, hi
        return (qmin // 2, qmax // 2) if reduce_range else (qmin, qmax)
    qmin, qmax = _check_int("quant_min", quant_min), _check_int("quant_max", quant_max)
    if qmin >= qmax:
        raise ValueError(f"quant_min must be < quant_max, got quant_min={qmin}, quant_max={qmax}")
    if not qmin <= 0 <= qmax:
        raise ValueError(f"the range [quant_min, quant_max] must contain 0, got [{qmin}, {qmax}]")
    if qmin < lo or qmax > hi:
        raise ValueError(f"[quant_min, quant_max] must fit in {dtype}'s codes [{lo}, {hi}], got [{qmin}, {qmax}]")
    return (qmin // 2, qmax // 2) if reduce_range else (qmin, qmax)


def to_float16(x) -> np.ndarray:
    """Round to IEEE half precision (ties to even) and back to float32: the values a float16 model holds."""
    x = as_array("x", x, dtype_kind="f", finite=False)
    with np.errstate(over="ignore"):
        return x.astype(np.float16).astype(np.float32)


def to_bfloat16(x) -> np.ndarray:
    """Round float32 values to bfloat16 (keep the top 16 bits, ties to even), returned as float32.

    ``torch.tensor(x).to(torch.bfloat16).float()`` gives the same bits (NaN stays NaN).
    """
    x = np.ascontiguousarray(as_array("x", x, dtype_kind="f", finite=False), dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    lsb = (bits >> 16) & 1                       # ties go to the even upper half
    rounded = ((bits + 0x7FFF + lsb) >> 16) << 16
    out = (rounded & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, out).reshape(x.shape)


def pack_bits(codes, bits: int) -> np.ndarray:
    """Pack unsigned integer codes in ``[0, 2**bits)`` into bytes, ``8 // bits`` codes per byte.

    codes: integer array (any shape; flattened in C order).  bits: 1, 2, 4 or 8.
    Returns a uint8 array of ``ceil(codes.size * bits / 8)`` bytes (little end first).
    """
    if bits not in (1, 2, 4, 8):
        raise ValueError(f"bits must be 1, 2, 4 or 8, got {bits!r}")
    codes = as_array("codes", codes, dtype_kind="iu").ravel()
    if codes.size and (codes.min() < 0 or codes.max() >= 2 ** bits):
        raise ValueError(f"codes must be in [0, {2 ** bits}) for bits={bits}, got values in "
                         f"[{codes.min()}, {codes.max()}]")
    per = 8 // bits
    padded = np.zeros(-(-codes.size // per) * per, dtype=np.uint8)
    padded[:codes.size] = codes
    shifts = (np.arange(per, dtype=np.uint8) * bits)
    return np.bitwise_or.reduce(padded.reshape(-1, per) << shifts, axis=1).astype(np.uint8)


def unpack_bits(packed, bits: int, size: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: the first ``size`` codes, as uint8."""
    if bits not in (1, 2, 4, 8):
        raise ValueError(f"bits must be 1, 2, 4 or 8, got {bits!r}")
    packed = as_array("packed", packed, ndim=1, dtype_kind="u")
    per = 8 // bits
    if not 0 <= size <= packed.size * per:
        raise ValueError(f"size must be in [0, {packed.size * per}], got {size!r}")
    shifts = (np.arange(per, dtype=np.uint8) * bits)
    codes = (packed[:, None] >> shifts) & np.uint8(2 ** bits - 1)
    return codes.ravel()[:size].astype(np.uint8)


def packed_nbytes(arrays, bits: int) -> int:
    """Bytes taken by the given weight arrays stored at ``bits`` per value.

    bits 32 / 16: the arrays cast to float32 / float16 (``.nbytes``); 8, 4, 2, 1: the codes packed
    with :func:`pack_bits` (scales and zero-points are not counted: add them separately).
    """
    total = 0
    for a in arrays:
        a = np.asarray(a)
        if bits == 32:
            total += a.astype(np.float32).nbytes
        elif bits == 16:
            total += a.astype(np.float16).nbytes
        elif bits in (1, 2, 4, 8):
            total += pack_bits(np.zeros(a.size, dtype=np.uint8), bits).nbytes
        else:
            raise ValueError(f"bits must be one of 32, 16, 8, 4, 2, 1, got {bits!r}")
    return int(total)
