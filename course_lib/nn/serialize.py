"""Saving and loading models: one ``.npz`` file with the architecture (JSON) and the weights."""

from __future__ import annotations

import json

import numpy as np

from .modules import _LAYERS, MLP, Linear, Sequential

__all__ = ["save", "load", "build"]


def save(model, path) -> None:
    """Save architecture and weights to one ``.npz`` file (NumPy adds ``.npz`` if missing).

    The architecture is stored as JSON under the key ``"__architecture__"``; the weights
    under their ``state_dict`` names, in their own dtype, so :func:`load` round-trips exactly.
    """
    arch = dict(model.spec_full(), dtype=str(model.dtype) if model.dtype is not None else None)
    np.savez(path, __architecture__=np.array(json.dumps(arch)), **model.state_dict())


def build(spec: dict, *, dtype, backend="numpy"):
    """A freshly initialised model of the architecture ``spec`` (as returned by ``spec_full()``)."""
    if spec.get("type") == "MLP":
        return MLP(spec["sizes"], spec["activation"], dtype=dtype, backend=backend)
    if spec.get("type") == "Sequential":
        layers = []
        for s in spec["layers"]:
            kind = s.get("type")
            if kind == "Linear":
                layers.append(Linear(s["in_features"], s["out_features"], bias=s["bias"], dtype=dtype))
            elif kind in ("ReLU", "Tanh", "Sigmoid"):
                layers.append(_LAYERS[kind]())
            else:
                raise ValueError(f"unknown layer type {kind!r} in the saved architecture")
        return Sequential(*layers, backend=backend)
    raise ValueError(f"unknown model type {spec.get('type')!r} in the saved architecture")


def load(path, *, backend: str = "numpy"):
    """Load an :class:`MLP` or :class:`Sequential` saved with :meth:`Sequential.save`.

    Rebuilds the architecture, then copies the weights: same dtype, bit-for-bit.
    """
    with np.load(path, allow_pickle=False) as f:
        if "__architecture__" not in f.files:
            raise ValueError(f"path {str(path)!r} has no '__architecture__' entry: "
                             f"not saved by course_lib.nn")
        arch = json.loads(str(f["__architecture__"]))
        state = {k: f[k] for k in f.files if k != "__architecture__"}
    dtype = arch.get("dtype") or "float32"
    model = build(arch, dtype=np.dtype(dtype), backend=backend)
    model._prepare_state(state)  # saved masks: the layers are pruned again (weight_orig/weight_mask)
    model.load_state_dict(state)
    return model
