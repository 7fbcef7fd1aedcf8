"""Chapter 7: the compression pipeline, its file format, Huffman coding and export to ONNX.

- :mod:`~course_lib.compress.huffman`     Huffman code lengths, canonical codes, encode/decode
- :mod:`~course_lib.compress.fileformat`  one compressed-model file (sparse, int8/codebook, checksum)
- :mod:`~course_lib.compress.export`      torch module -> ONNX -> ONNX Runtime (+ ORT's own int8)
"""

from .huffman import (average_code_length, canonical_codes, entropy_bits, huffman_code_lengths,
                      huffman_decode, huffman_decode_from, huffman_encode)

__all__ = ["huffman_code_lengths", "canonical_codes", "entropy_bits", "average_code_length",
           "huffman_encode", "huffman_decode", "huffman_decode_from"]
