"""The bridge between our layers and ``torch.nn``: dtypes and building ours from a torch model.

The other direction is each layer's ``to_torch()`` method, beside the layer it copies.
"""

from __future__ import annotations

import numpy as np

__all__ = ["torch_dtype", "layers_from_torch"]


def torch_dtype(dtype):
    """The torch dtype of a NumPy float dtype (float32 -> ``torch.float32``, float64 -> ``torch.float64``)."""
    import torch

    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def layers_from_torch(seq):
    """Our layers, with copies of the weights, from a ``torch.nn.Sequential`` of
    ``Linear``/``ReLU``/``Tanh``/``Sigmoid`` (same dtype)."""
    import torch

    from .modules import _DTYPES, _LAYERS, Linear

    if not isinstance(seq, torch.nn.Sequential):
        raise TypeError(f"seq must be a torch.nn.Sequential, got {type(seq).__name__}")
    layers, dtypes = [], set()
    for i, m in enumerate(seq):
        if isinstance(m, torch.nn.Linear):
            dtype = np.dtype(str(m.weight.dtype).replace("torch.", ""))
            if dtype not in [np.dtype(d) for d in _DTYPES]:
                raise TypeError(f"seq[{i}] has dtype {m.weight.dtype}; use float32 or float64")
            dtypes.add(dtype)
            layer = Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=dtype)
            state = dict(m.state_dict())
            layer._prepare_state(state)  # a pruned torch Linear: weight_orig + weight_mask
            layer.load_state_dict(state)
            layers.append(layer)
        elif type(m).__name__ in ("ReLU", "Tanh", "Sigmoid") and type(m).__module__.startswith("torch.nn"):
            layers.append(_LAYERS[type(m).__name__]())
        else:
            hint = (" (course_lib.nn.Dropout exists, but from_torch converts only layers with "
                    "parameters or a fixed function; add our Dropout yourself)"
                    if isinstance(m, torch.nn.Dropout) else "")
            raise ValueError(f"seq[{i}] is a {type(m).__name__}; from_torch converts only Linear, "
                             f"ReLU, Tanh and Sigmoid{hint}")
    if len(dtypes) > 1:
        raise TypeError(f"seq mixes parameter dtypes {sorted(map(str, dtypes))}")
    return layers
