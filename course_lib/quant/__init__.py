"""Quantization (chapter 5): number formats, PyTorch's affine quantization to the bit,
observers, fake quantization with the straight-through estimator, integer inference,
binary weights and k-means weight sharing.

==========================  =====================================================================
module                      holds
==========================  =====================================================================
``formats``                 float16/bfloat16 rounding, PyTorch's quantized dtypes and code ranges,
                            bit packing and sizes
``affine``                  ``quantize_per_tensor`` / ``quantize_per_channel`` / ``dequantize``
``observers``               ``choose_qparams``, ``MinMaxObserver``, ``MovingAverageMinMaxObserver``,
                            ``PerChannelMinMaxObserver``
``fake_quant``              ``fake_quant_forward`` / ``fake_quant_backward`` (STE), torch's fake-quant
``qlinear``                 int8 weights per channel, integer ``Linear`` with requantization,
                            dynamic quantized ``Linear`` and MLP (``torch.ao`` ``quantize_dynamic``)
``qat``                     a quantization-aware-training MLP (fake-quant weights and activations)
``binary``                  sign weights with XNOR-Net's scale, BinaryConnect training
``kmeans``                  k-means weight sharing (Han et al.'s trained quantization)
==========================  =====================================================================

The int8 matrix product lives in :mod:`course_lib.kernels.int8` (re-exported here as
``int8_matmul``).
"""

from .affine import (check_scale, check_zero_point, dequantize, dequantize_per_channel,
                     quantize_per_channel, quantize_per_tensor)
from .fake_quant import (fake_quant_backward, fake_quant_forward, fake_quant_per_channel_forward,
                         fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine)
from .formats import (FLOAT_FORMATS, QDTYPES, QSCHEMES, pack_bits, packed_nbytes, qrange, to_bfloat16,
                      to_float16, unpack_bits)
from .observers import (FLOAT32_EPS, MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver,
                        choose_qparams, percentile_range)
from .binary import binarize, binarize_backward, binarize_forward, xnor_scale
from .kmeans import codebook_gradient, kmeans_codebook, kmeans_quantize
from .qlinear import (DynamicQuantizedLinear, QuantizedSequential, choose_qparams_dynamic,
                      dynamic_quantized_linear, quantize_dynamic, quantize_weight_per_channel, quantized_linear)
from .qat import IntegerMLP, QuantMLP
from ..kernels.int8 import has_vnni, int8_matmul, int8_matmul_numpy
