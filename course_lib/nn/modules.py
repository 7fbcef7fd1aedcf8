r"""Layers as thin stateful wrappers around :mod:`course_lib.nn.functional` (``torch.nn``'s role).

:class:`Module` (the interface), :class:`Linear`, the activations, :class:`Sequential` and
:class:`MLP`.  See :mod:`course_lib.nn` for the conventions (aligned ``params``/``grads``
lists of live arrays, gradients overwritten by each backward).
"""

from __future__ import annotations

import math

import numpy as np

from ..data import _rng
from ..validation import as_array, check_positive
from .functional import (linear_backward, linear_forward, relu_backward, relu_forward,
                         sigmoid_backward, sigmoid_forward, tanh_backward, tanh_forward)
from .torch_bridge import torch_dtype

__all__ = ["Module", "Linear", "ReLU", "Tanh", "Sigmoid", "Sequential", "MLP", "ACTIVATIONS"]

_DTYPES = (np.float32, np.float64)


def _check_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in [np.dtype(d) for d in _DTYPES]:
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}")
    return dt


class Module:
    """Base class.  Subclasses implement ``forward(x) -> out`` (keeping a cache) and
    ``backward(dout) -> dx`` (writing parameter gradients in place into ``grads``).

    PyTorch: ``torch.nn.Module`` (whose backward is automatic).
    """

    #: training mode (True, the default) or evaluation mode; set by :meth:`train` / :meth:`eval`
    training = True

    def __call__(self, x):
        return self.forward(x)

    def children(self) -> list:
        """The direct sub-modules (a container's layers; none for a layer), ``torch.nn.Module.children``."""
        return []

    def train(self, mode: bool = True):
        """Set training mode (``mode=True``) or evaluation mode on this module and every sub-module;
        returns ``self``.  Only layers that behave differently in training (:class:`Dropout`) read
        ``training``.  PyTorch: ``torch.nn.Module.train(mode)``."""
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"mode must be a bool, got {mode!r}")
        self.training = bool(mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        """Evaluation mode, ``train(False)`` (``torch.nn.Module.eval``); returns ``self``."""
        return self.train(False)

    def forward(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, dout):  # pragma: no cover - interface
        raise NotImplementedError

    def named_parameters(self) -> list:
        """``[(name, array), ...]`` with torch's names (``"weight"``, ``"0.bias"``, ...)."""
        return []

    def named_grads(self) -> list:
        """``[(name, grad array), ...]`` aligned with :meth:`named_parameters`."""
        return []

    # -- pruning support (chapter 4): torch's reparametrisation, see course_lib.prune ------------
    def named_buffers(self) -> list:
        """``[(name, array), ...]`` of non-trainable state (pruning masks ``"weight_mask"``)."""
        return [(n, getattr(self, n)) for n in getattr(self, "_buffer_names", ())]

    @property
    def _forward_pre_hooks(self) -> dict:
        if "_hooks" not in self.__dict__:
            self._hooks = {}
        return self._hooks

    def register_forward_pre_hook(self, hook) -> int:
        """Call ``hook(module, None)`` before every forward (torch's pruning recomputes
        ``weight = weight_orig * weight_mask`` this way). Returns the hook's key."""
        key = max(self._forward_pre_hooks, default=-1) + 1
        self._forward_pre_hooks[key] = hook
        return key

    def _call_forward_pre_hooks(self) -> None:
        for hook in list(self._forward_pre_hooks.values()):
            hook(self, None)

    def _rename_parameter(self, old: str, new: str) -> None:
        # torch: register_parameter(new, p); del _parameters[old] -> ``new`` is listed last
        names = self.__dict__.get("_param_names")
        if names is None or old not in names:
            raise ValueError(f"{old!r} is not a parameter of {self!r}")
        arr = getattr(self, old)
        names.remove(old)
        names.append(new)
        delattr(self, old)
        setattr(self, new, arr)  # the same array object: optimizers holding it keep working

    def register_buffer(self, name: str, array) -> None:
        """Add (or replace) a non-trainable array, listed by :meth:`named_buffers`."""
        names = self.__dict__.setdefault("_buffer_names", [])
        if name not in names:
            names.append(name)
        setattr(self, name, array)

    def unregister_buffer(self, name: str) -> None:
        self._buffer_names.remove(name)
        delattr(self, name)

    def _mask_grads(self) -> None:
        """The gradient reaching ``name_orig`` is ``d loss / d name * name_mask`` (torch's
        autograd through the product); applied in place after each backward."""
        for bname in getattr(self, "_buffer_names", ()):
            if bname.endswith("_mask"):
                g = getattr(self, "grad_" + bname[:-len("_mask")])
                g *= getattr(self, bname)

    def _state_items(self) -> list:
        # torch's state_dict order: a module's parameters, then its buffers
        return self.named_parameters() + self.named_buffers()

    def _prepare_state(self, state: dict) -> None:
        """Install identity pruning on every parameter that ``state`` carries a mask for (so a
        pruned model's state can be loaded into a fresh model of the same architecture)."""
        from .reparam import Identity

        params = [n for n, _ in self.named_parameters()]
        for key in state:
            if key.endswith("_mask") and key[:-len("_mask")] in params:
                Identity.apply(self, key[:-len("_mask")])

    @property
    def params(self) -> list:
        """The parameter arrays, a flat list ``[W1, b1, W2, b2, ...]`` of the live arrays."""
        return [p for _, p in self.named_parameters()]

    @property
    def grads(self) -> list:
        """The gradient arrays, aligned one-to-one with :attr:`params` (same shapes)."""
        return [g for _, g in self.named_grads()]

    def zero_grad(self) -> None:
        """Set every gradient to 0 in place (torch needs this before each backward; we
        overwrite gradients in backward, so it is never required here)."""
        for g in self.grads:
            g[...] = 0

    def num_params(self) -> int:
        """Number of scalar parameters (``sum(p.numel() for p in m.parameters())`` in torch)."""
        return int(sum(p.size for p in self.params))

    def state_dict(self) -> dict:
        """``{name: copy of the array}`` with torch's keys (``"0.weight"``, ...)."""
        return {name: p.copy() for name, p in self._state_items()}

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the parameters **in place** (optimizers keep their references).

        Keys and shapes must match exactly (torch's ``strict=True``); values are cast to the
        parameter dtype.  Accepts NumPy arrays or torch tensors.
        """
        named = dict(self._state_items())
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict of arrays, got {type(state).__name__}")
        missing, unexpected = sorted(set(named) - set(state)), sorted(set(state) - set(named))
        if missing or unexpected:
            raise ValueError(f"state does not match the parameters: missing keys {missing}, "
                             f"unexpected keys {unexpected}")
        arrays = {}
        for name, p in named.items():
            v = state[name]
            if hasattr(v, "detach"):  # a torch tensor
                v = v.detach().cpu().numpy()
            v = as_array(f"state[{name!r}]", v, dtype_kind="fiu")
            if v.shape != p.shape:
                raise ValueError(f"state[{name!r}] must have shape {p.shape}, got {v.shape}")
            arrays[name] = v
        for name, p in named.items():  # all checked first: no half-loaded model
            np.copyto(p, arrays[name], casting="unsafe")


class Linear(Module):
    r"""Fully connected layer, ``torch.nn.Linear(in_features, out_features, bias)``.

    ``weight``: (out_features, in_features), ``bias``: (out_features,), both drawn from
    :math:`U(-1/\sqrt{in}, 1/\sqrt{in})` like torch's default initialisation.
    ``grad_weight`` / ``grad_bias`` hold the gradients after :meth:`backward`.

    seed: int or ``np.random.Generator``; dtype: ``np.float32`` (torch's default) or ``np.float64``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, seed=0,
                 dtype=np.float32):
        check_positive("in_features", in_features, integer=True)
        check_positive("out_features", out_features, integer=True)
        dtype = _check_dtype(dtype)
        rng = _rng(seed)
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1.0 / math.sqrt(in_features)
        # draw in float64 then cast, so float32 and float64 models start from the same numbers
        self.weight = rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
        self.bias = rng.uniform(-bound, bound, out_features).astype(dtype) if bias else None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias) if bias else None
        self._cache = None
        self._param_names = ["weight"] + (["bias"] if bias else [])  # renamed by pruning

    def forward(self, x):
        self._call_forward_pre_hooks()  # pruned: weight = weight_orig * weight_mask
        out, self._cache = linear_forward(x, self.weight, self.bias)
        return out

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError("Linear.backward called before forward")
        dx, dW, db = linear_backward(dout, self._cache)
        # write into the existing gradient arrays: whoever holds ``self.grads`` sees them
        np.copyto(self.grad_weight, dW, casting="same_kind")
        if db is not None:
            np.copyto(self.grad_bias, db, casting="same_kind")
        self._mask_grads()  # pruned: the gradient reaching weight_orig is dW * weight_mask
        return dx

    def named_parameters(self):
        """``[("weight", W), ("bias", b)]``; after pruning the weight, torch's order
        ``[("bias", b), ("weight_orig", W)]``."""
        return [(n, getattr(self, n)) for n in self._param_names]

    def named_grads(self):
        """Aligned with :meth:`named_parameters`; ``grad_weight`` is the gradient of
        ``weight_orig`` once the weight is pruned (the masked one)."""
        return [(n, getattr(self, "grad_" + n.removesuffix("_orig"))) for n in self._param_names]

    def spec(self) -> dict:
        return {"type": "Linear", "in_features": self.in_features,
                "out_features": self.out_features, "bias": self.bias is not None}

    def to_torch(self):
        import torch
        from torch.nn.utils import prune as torch_prune

        layer = torch.nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                                dtype=torch_dtype(self.weight.dtype))
        with torch.no_grad():
            for name in ("weight", "bias"):  # a pruned parameter's trainable values: name_orig
                if getattr(self, name) is not None:
                    src = getattr(self, name + "_orig", getattr(self, name))
                    getattr(layer, name).copy_(torch.from_numpy(src))
        for name, mask in self.named_buffers():  # pruned: the same weight_orig / weight_mask
            if name.endswith("_mask"):
                torch_prune.custom_from_mask(layer, name[:-len("_mask")],
                                                      torch.from_numpy(mask.copy()))
        return layer

    def __repr__(self):
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None})")


class _Activation(Module):
    """An elementwise activation: no parameters, a forward/backward pair from the core
    (subclasses set ``_forward`` and ``_backward``)."""

    def __init__(self):
        self._cache = None

    def forward(self, x):
        out, self._cache = self._forward(x)
        return out

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._backward(dout, self._cache)

    def spec(self) -> dict:
        return {"type": type(self).__name__}

    def to_torch(self):
        import torch

        return getattr(torch.nn, type(self).__name__)()

    def __repr__(self):
        return f"{type(self).__name__}()"


class ReLU(_Activation):
    """``torch.nn.ReLU``: :func:`relu_forward` / :func:`relu_backward`."""
    _forward = staticmethod(relu_forward)
    _backward = staticmethod(relu_backward)


class Tanh(_Activation):
    """``torch.nn.Tanh``: :func:`tanh_forward` / :func:`tanh_backward`."""
    _forward = staticmethod(tanh_forward)
    _backward = staticmethod(tanh_backward)


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid``: :func:`sigmoid_forward` / :func:`sigmoid_backward`."""
    _forward = staticmethod(sigmoid_forward)
    _backward = staticmethod(sigmoid_backward)


#: activation names accepted by :class:`MLP`, and their layer classes
ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}
_LAYERS = {"Linear": Linear, "ReLU": ReLU, "Tanh": Tanh, "Sigmoid": Sigmoid}
_BACKENDS = ("numpy", "numba")


class Sequential(Module):
    """Layers applied in order, ``torch.nn.Sequential(*layers)``.

    ``forward(X)`` checks ``X`` (2-D, the first Linear's width, finite) and casts it to the
    parameter dtype; ``backward(dout)`` runs the layers' backward passes in reverse and
    returns ``dX``.  Parameter names are torch's (``"0.weight"``, ``"0.bias"``, ``"2.weight"``...),
    so ``state_dict()`` keys match ``to_torch().state_dict()``.

    backend: ``"numpy"`` (the functional core) or ``"numba"``, which fuses every
    Linear -> ReLU pair into a BLAS matrix product plus one compiled bias+ReLU pass
    (:mod:`course_lib.kernels.activations`); same numbers up to round-off.
    """

    def __init__(self, *layers, backend: str = "numpy"):
        seen = {}
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layers[{i}] must be a course_lib.nn Module, got {type(layer).__name__}")
            # each layer keeps one forward cache and writes its grads in place: a layer used
            # twice would silently get the second use's cache and grads (torch sums them instead)
            if id(layer) in seen:
                raise ValueError(f"layers[{i}] is the same object as layers[{seen[id(layer)]}]; "
                                 f"use a separate instance for each position")
            seen[id(layer)] = i
        self.layers = list(layers)
        dtypes = {p.dtype for p in self.params}
        if len(dtypes) > 1:
            raise TypeError(f"layers must share one parameter dtype, got {sorted(map(str, dtypes))}")
        self.backend = backend
        self._out_shape = None

    # -- container protocol ------------------------------------------------------------
    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def children(self) -> list:
        return list(self.layers)

    def __repr__(self):
        body = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"{type(self).__name__}({body}\n)" if self.layers else f"{type(self).__name__}()"

    # -- properties ----------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value):
        if value not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {value!r}")
        if value == "numba":
            from ..kernels import activations  # noqa: F401  (import numba only when asked)
        self._backend = value
        self._plan = self._make_plan()
        self._fused_cache = {}

    @property
    def dtype(self):
        """The parameter dtype (``None`` for a model without parameters)."""
        params = self.params
        return params[0].dtype if params else None

    @property
    def in_features(self):
        """Width of the input the first Linear expects (``None`` if there is none)."""
        for layer in self.layers:
            if isinstance(layer, Linear):
                return layer.in_features
        return None

    def _make_plan(self):
        # groups of layer indices run together: (i, i+1) for a fused Linear -> ReLU pair
        plan, i = [], 0
        while i < len(self.layers):
            if (self._backend == "numba" and i + 1 < len(self.layers)
                    and isinstance(self.layers[i], Linear) and self.layers[i].bias is not None
                    and type(self.layers[i + 1]) is ReLU):
                plan.append((i, i + 1))
                i += 2
            else:
                plan.append((i,))
                i += 1
        return plan

    def named_parameters(self):
        return [(f"{i}.{name}", p) for i, layer in enumerate(self.layers)
                for name, p in layer.named_parameters()]

    def named_grads(self):
        return [(f"{i}.{name}", g) for i, layer in enumerate(self.layers)
                for name, g in layer.named_grads()]

    def named_buffers(self):
        return [(f"{i}.{name}", b) for i, layer in enumerate(self.layers)
                for name, b in layer.named_buffers()]

    def _state_items(self):
        return [(f"{i}.{name}", a) for i, layer in enumerate(self.layers)
                for name, a in layer._state_items()]

    def _prepare_state(self, state):
        for i, layer in enumerate(self.layers):
            layer._prepare_state({k.split(".", 1)[1]: v for k, v in state.items()
                                  if k.split(".", 1)[0] == str(i)})

    # -- forward / backward ----------------------------------------------------------------
    def _check_input(self, X):
        X = as_array("X", X, ndim=2, dtype_kind="fiu")
        d = self.in_features
        if d is not None and X.shape[1] != d:
            raise ValueError(f"X must have {d} columns (the input width of the first Linear "
                             f"layer), got X.shape={X.shape}")
        dtype = self.dtype
        return X.astype(dtype, copy=False) if dtype is not None else X

    def forward(self, X):
        """``X: (n, in_features)`` -> the last layer's output (logits for an MLP)."""
        out = self._check_input(X)
        for group in self._plan:
            if len(group) == 2:
                out = self._fused_forward(group, out)
            else:
                out = self.layers[group[0]].forward(out)
        self._out_shape = out.shape
        return out

    def backward(self, dout):
        """``dout``: gradient of the loss w.r.t. the last forward output (``dlogits``).
        Fills every layer's gradients in place; returns ``dX: (n, in_features)``."""
        if self._out_shape is None:
            raise RuntimeError("backward called before forward")
        dout = as_array("dout", dout, dtype_kind="f")
        if dout.shape != self._out_shape:
            raise ValueError(f"dout must have shape {self._out_shape} like the last forward "
                             f"output, got {dout.shape}")
        dtype = self.dtype
        if dtype is not None:
            dout = dout.astype(dtype, copy=False)
        for group in reversed(self._plan):
            if len(group) == 2:
                dout = self._fused_backward(group, dout)
            else:
                dout = self.layers[group[0]].backward(dout)
        return dout

    def _fused_forward(self, group, x):
        from ..kernels.activations import bias_relu_forward_

        lin = self.layers[group[0]]
        lin._call_forward_pre_hooks()        # pruned: weight = weight_orig * weight_mask
        z = x @ lin.weight.T                 # BLAS does the matrix product ...
        bias_relu_forward_(z, lin.bias)      # ... one compiled pass adds b and clamps, in place
        self._fused_cache[group] = (x, z)
        return z

    def _fused_backward(self, group, dout):
        from ..kernels.activations import relu_bias_backward

        lin = self.layers[group[0]]
        x, out = self._fused_cache[group]
        dz = relu_bias_backward(dout, out, out_db=lin.grad_bias)  # mask and bias sum, one pass
        np.matmul(dz.T, x, out=lin.grad_weight)
        lin._mask_grads()
        return dz @ lin.weight

    # -- utilities -----------------------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        """Class labels ``argmax(forward(X), axis=1)``: (n,) int64."""
        return np.argmax(self.forward(X), axis=1).astype(np.int64)

    def spec(self) -> dict:
        """The architecture as plain data (JSON-serialisable)."""
        return {"type": "Sequential", "layers": [layer.spec() for layer in self.layers]}

    def to_torch(self):
        """An equivalent ``torch.nn.Sequential`` holding copies of the same weights
        (same dtype: float32 -> ``torch.float32``, float64 -> ``torch.float64``)."""
        import torch

        return torch.nn.Sequential(*[layer.to_torch() for layer in self.layers])

    @classmethod
    def from_torch(cls, seq, *, backend: str = "numpy"):
        """Build ours from a ``torch.nn.Sequential`` of ``Linear``/``ReLU``/``Tanh``/``Sigmoid``,
        copying the weights exactly (same dtype)."""
        from .torch_bridge import layers_from_torch

        layers = layers_from_torch(seq)
        if cls is MLP:
            return MLP._from_layers(layers, backend=backend)
        return cls(*layers, backend=backend)

    def astype(self, dtype):
        """A copy with parameters cast to ``dtype`` (torch: ``copy.deepcopy(m).to(dtype)``)."""
        dtype = _check_dtype(dtype)
        from .serialize import build

        new = build(self.spec_full(), dtype=dtype, backend=self.backend)
        state = self.state_dict()
        new._prepare_state(state)  # pruned layers stay pruned
        new.load_state_dict(state)
        return new

    def copy(self):
        """An independent copy (same dtype, same weights, fresh gradients)."""
        return self.astype(self.dtype if self.dtype is not None else np.float32)

    def spec_full(self) -> dict:
        return self.spec()

    def save(self, path) -> None:
        """Save architecture and weights to one ``.npz`` file (NumPy adds ``.npz`` if missing).

        The architecture is stored as JSON under the key ``"__architecture__"``; the weights
        under their ``state_dict`` names, in their own dtype, so :func:`load` round-trips exactly.
        """
        from .serialize import save

        save(self, path)

    @classmethod
    def load(cls, path, *, backend: str = "numpy"):
        """Load a model saved with :meth:`save` (see :func:`load`)."""
        from .serialize import load

        model = load(path, backend=backend)
        if not isinstance(model, cls):
            raise ValueError(f"path {str(path)!r} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


class MLP(Sequential):
    """A multi-layer perceptron: ``Linear -> act -> Linear -> act -> ... -> Linear``.

    sizes: ``[in, hidden..., out]``, e.g. ``[64, 128, 10]`` (one hidden layer of 128 units);
    ``[64, 10]`` is plain softmax regression.  activation: ``"relu"``, ``"tanh"`` or
    ``"sigmoid"`` (none after the last layer: the output is logits for
    :func:`course_lib.losses.softmax_cross_entropy`).  seed: int or Generator (one stream for
    all layers, drawn in order).  PyTorch: ``to_torch()`` gives the equivalent
    ``nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))``.
    """

    def __init__(self, sizes, activation: str = "relu", *, seed=0, dtype=np.float32,
                 backend: str = "numpy"):
        sizes = self._check_sizes(sizes)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        rng = _rng(seed)
        layers = []
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            if k:
                layers.append(ACTIVATIONS[activation]())
            layers.append(Linear(a, b, seed=rng, dtype=dtype))
        self.sizes = sizes
        self.activation = activation
        super().__init__(*layers, backend=backend)

    @staticmethod
    def _check_sizes(sizes):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
            raise TypeError(f"sizes must be a list of layer widths, got {sizes!r}")
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least the input and output widths, got {sizes}")
        for i, s in enumerate(sizes):
            check_positive(f"sizes[{i}]", s, integer=True)
        return [int(s) for s in sizes]

    @classmethod
    def _from_layers(cls, layers, *, backend="numpy"):
        # recognise Linear (act Linear)* with one activation type, and rebuild an MLP around it
        acts = {type(layer).__name__ for layer in layers[1::2]}
        lins = layers[0::2]
        ok = (len(layers) % 2 == 1 and all(isinstance(l, Linear) and l.bias is not None for l in lins)
              and len(acts) <= 1 and all(isinstance(l, _Activation) for l in layers[1::2])
              and all(a.out_features == b.in_features for a, b in zip(lins[:-1], lins[1:])))
        if not ok:
            raise ValueError("not an MLP: expected Linear, activation, Linear, ..., Linear with one "
                             "activation type and matching widths; got "
                             + ", ".join(type(layer).__name__ for layer in layers))
        activation = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid"}[acts.pop()] if acts else "relu"
        sizes = [lins[0].in_features] + [l.out_features for l in lins]
        net = cls(sizes, activation, dtype=lins[0].weight.dtype, backend=backend)
        state = Sequential(*layers).state_dict()
        net._prepare_state(state)
        net.load_state_dict(state)
        return net

    def spec_full(self) -> dict:
        return {"type": "MLP", "sizes": self.sizes, "activation": self.activation}


class Dropout(Module):
    """``torch.nn.Dropout(p)``: :func:`dropout_forward` / :func:`dropout_backward`.

    ``training`` (default True) switches it on; :meth:`eval` / :meth:`train` set it, as in torch
    (on a :class:`Sequential` holding it too: :func:`course_lib.nn.fit` trains in training mode and
    :func:`course_lib.nn.evaluate` evaluates in evaluation mode).
    seed: int or ``np.random.Generator`` for the masks.  No parameters.  (Not part of
    :class:`MLP`, the torch bridge or ``save``/``load``: put it in a :class:`Sequential`.)
    """

    def __init__(self, p: float = 0.5, *, seed=0):
        from .functional import dropout_forward

        dropout_forward(np.zeros(1), p, None, training=False)     # validates p
        self.p, self.training, self._rng, self._cache = float(p), True, _rng(seed), None

    def forward(self, x):
        from .functional import dropout_forward

        out, self._cache = dropout_forward(x, self.p, self._rng, self.training)
        self._seen_forward = True
        return out

    def backward(self, dout):
        from .functional import dropout_backward

        if not getattr(self, "_seen_forward", False):
            raise RuntimeError("Dropout.backward called before forward")
        return dropout_backward(dout, self._cache)

    def __repr__(self):
        return f"Dropout(p={self.p})"
