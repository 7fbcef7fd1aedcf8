r"""A neural network from scratch: layers with explicit forward and backward (chapter 2).

Two levels, as in CS231n's ``layers.py`` and PyTorch's ``torch.nn.functional`` / ``torch.nn``:

**The functional core.**  Every operation is a pair of pure functions::

    out, cache = op_forward(x, ...)      # cache: whatever the backward pass needs
    dx[, dparams...] = op_backward(dout, cache)

``dout`` is the gradient of the (scalar) loss with respect to ``out`` and has ``out``'s shape;
the backward returns the gradients with respect to the forward's inputs, in the same
order and shapes.  The local derivative of each op sits right beside it (micrograd's
``engine.py`` style).  Shapes and dtypes are checked; values are not (NaN in, NaN out,
like ``torch.nn.functional``).

=========================================  ========================  ====================
ours                                       returns                   PyTorch
=========================================  ========================  ====================
``linear_forward(x, W, b)``                ``(x @ W.T + b, cache)``  ``F.linear(x, W, b)``
``linear_backward(dout, cache)``           ``(dx, dW, db)``
``relu_forward(x)`` / ``relu_backward``    ``max(x, 0)``; ``dx``     ``F.relu``
``tanh_forward(x)`` / ``tanh_backward``    ``tanh(x)``; ``dx``       ``torch.tanh``
``sigmoid_forward(x)`` / ``..._backward``  ``1/(1+e^-x)``; ``dx``    ``torch.sigmoid``
=========================================  ========================  ====================

The loss is :func:`course_lib.losses.softmax_cross_entropy` ``(logits, y) -> (loss, dlogits)``
(``F.cross_entropy``), defined once there.

**Thin stateful wrappers.**  :class:`Linear`, :class:`ReLU`, :class:`Tanh`, :class:`Sigmoid`,
:class:`Sequential` and :class:`MLP` hold parameters and caches and call the functional core:

- ``module(x)`` / ``module.forward(x)`` runs forward and keeps the cache;
- ``module.backward(dout)`` returns ``dx`` and writes the parameter gradients **in place**
  into ``module.grads``;
- ``module.params`` and ``module.grads`` are aligned lists (``[W1, b1, W2, b2, ...]``) of the
  *same array objects* for the module's whole life: an optimizer that keeps the lists sees
  every update.  Updates must therefore also be in place (``p -= lr * g``, never
  ``p = p - lr * g``).

Two differences from PyTorch, both deliberate: gradients are *overwritten* by each backward
(torch accumulates them until ``zero_grad()``; ``zero_grad`` exists here but is never needed),
and :meth:`Module.state_dict` returns copies (torch returns views of the live tensors, a
classic pitfall when snapshotting weights).

The model checks what comes in from outside (``X`` in :meth:`Sequential.forward`: 2-D,
the right width, finite; ``dout`` in :meth:`Sequential.backward`), layers trust their neighbours.

Around them: :meth:`Sequential.to_torch` / :meth:`Sequential.from_torch` (the bridge to
``torch.nn.Sequential``), :meth:`Sequential.save` / :func:`load` (one ``.npz`` with the
architecture inside), :func:`summary` (parameters and multiply-adds per layer, reused by the
compression chapters), :func:`fit` / :func:`evaluate` (mini-batch SGD on the digits, or any
optimizer with ``step(grads)``).

Weights follow ``torch.nn.Linear``: ``W`` is ``(out_features, in_features)``,
``y = x @ W.T + b``, both initialised from :math:`U(-1/\sqrt{in}, 1/\sqrt{in})` (torch's
``kaiming_uniform_(a=sqrt(5))`` and bias rule) with our own seeded ``np.random.Generator``
(torch's random stream cannot be reproduced: parity checks copy weights with
:meth:`Sequential.to_torch` / :meth:`Sequential.from_torch`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .data import _rng, minibatches
from .losses import softmax_cross_entropy
from .utils import check_finite_loss
from .validation import as_array, check_positive

__all__ = [
    "linear_forward", "linear_backward", "relu_forward", "relu_backward",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "Module", "Linear", "ReLU", "Tanh", "Sigmoid", "Sequential", "MLP",
    "load", "summary", "Summary", "LayerSummary", "fit", "evaluate", "FitHistory", "ACTIVATIONS",
]

_DTYPES = (np.float32, np.float64)


# ----------------------------------------------------------------------------------------
# The functional core: (out, cache) = *_forward(...), grads = *_backward(dout, cache)
# ----------------------------------------------------------------------------------------

def _check_dout(dout, shape):
    """The upstream gradient of a backward pass: a float array of exactly the forward output's shape."""
    dout = as_array("dout", dout, dtype_kind="f", finite=False)
    if dout.shape != tuple(shape):
        raise ValueError(f"dout must have shape {tuple(shape)} like the forward output, got {dout.shape}")
    return dout


def linear_forward(x, W, b):
    r"""Affine map, ``torch.nn.functional.linear``.

    .. math:: \mathrm{out} = x W^\top + b

    Inputs:
        x: (n, in) float
        W: (out, in) float (torch's layout: one row per output unit)
        b: (out,) float, or ``None`` for no bias
    Returns:
        out: (n, out)
        cache: ``(x, W, b)`` for :func:`linear_backward`
    """
    x = as_array("x", x, ndim=2, dtype_kind="f", finite=False)
    W = as_array("W", W, ndim=2, dtype_kind="f", finite=False)
    if W.shape[1] != x.shape[1]:
        raise ValueError(f"W must have shape (out, {x.shape[1]}) to match x of shape {x.shape}, "
                         f"got {W.shape}")
    out = x @ W.T
    if b is not None:
        b = as_array("b", b, ndim=1, dtype_kind="f", finite=False)
        if b.shape != (W.shape[0],):
            raise ValueError(f"b must have shape ({W.shape[0]},) like W's rows, got {b.shape}")
        out += b
    return out, (x, W, b)


def linear_backward(dout, cache):
    r"""Backward pass of :func:`linear_forward`.

    With :math:`\mathrm{out} = xW^\top + b` and upstream gradient :math:`G = \partial L/\partial\,\mathrm{out}`:

    .. math:: \frac{\partial L}{\partial x} = G W,\qquad
              \frac{\partial L}{\partial W} = G^\top x,\qquad
              \frac{\partial L}{\partial b} = \textstyle\sum_i G_{i,:}

    (``db`` sums over the batch because ``b`` was broadcast to every row.)

    Inputs:
        dout: (n, out) float
        cache: ``(x, W, b)`` from :func:`linear_forward`
    Returns:
        dx: (n, in), dW: (out, in), db: (out,) (``None`` if the layer has no bias)
    """
    x, W, b = cache
    dout = _check_dout(dout, (x.shape[0], W.shape[0]))
    dx = dout @ W
    dW = dout.T @ x
    db = dout.sum(axis=0) if b is not None else None
    return dx, dW, db


def relu_forward(x):
    r"""Rectified linear unit, ``torch.relu``: :math:`\max(x, 0)` elementwise.

    Inputs:  x: any shape, float.
    Returns: out (like x), cache = ``x`` (the *input*; :func:`relu_backward` needs its sign).
    """
    x = as_array("x", x, dtype_kind="f", finite=False)
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    r"""Backward pass of :func:`relu_forward`: :math:`dx = dout \cdot [x > 0]`.

    The derivative at exactly 0 is taken as 0, as PyTorch does (the kink has no derivative;
    any value in [0, 1] is a valid subgradient, torch picks 0).

    Inputs:  dout: like x; cache: ``x`` from :func:`relu_forward`.
    Returns: dx, like x.
    """
    x = cache
    dout = _check_dout(dout, x.shape)
    return dout * (x > 0)


def tanh_forward(x):
    r"""Hyperbolic tangent, ``torch.tanh``.

    Inputs:  x: any shape, float.
    Returns: out = tanh(x), cache = ``out`` (the derivative is a function of the output).
    """
    x = as_array("x", x, dtype_kind="f", finite=False)
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    r"""Backward pass of :func:`tanh_forward`: :math:`dx = dout\,(1 - \tanh^2 x)`.

    Inputs:  dout: like x; cache: ``out`` from :func:`tanh_forward`.
    Returns: dx, like x.
    """
    out = cache
    dout = _check_dout(dout, out.shape)
    return dout * (1 - out * out)


def sigmoid_forward(x):
    r"""Logistic sigmoid, ``torch.sigmoid``: :math:`\sigma(x) = 1/(1 + e^{-x})`.

    Computed as :math:`\tfrac12(1 + \tanh(x/2))`, which never overflows.

    Inputs:  x: any shape, float.
    Returns: out = sigmoid(x), cache = ``out``.
    """
    x = as_array("x", x, dtype_kind="f", finite=False)
    out = 0.5 * (1 + np.tanh(0.5 * x))
    return out, out


def sigmoid_backward(dout, cache):
    r"""Backward pass of :func:`sigmoid_forward`: :math:`dx = dout\,\sigma(x)(1 - \sigma(x))`.

    Inputs:  dout: like x; cache: ``out`` from :func:`sigmoid_forward`.
    Returns: dx, like x.
    """
    out = cache
    dout = _check_dout(dout, out.shape)
    return dout * out * (1 - out)


# ----------------------------------------------------------------------------------------
# Modules: thin stateful wrappers around the functional core
# ----------------------------------------------------------------------------------------

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

    def __call__(self, x):
        return self.forward(x)

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
        return {name: p.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the parameters **in place** (optimizers keep their references).

        Keys and shapes must match exactly (torch's ``strict=True``); values are cast to the
        parameter dtype.  Accepts NumPy arrays or torch tensors.
        """
        named = dict(self.named_parameters())
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

    def forward(self, x):
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
        return dx

    def named_parameters(self):
        return [("weight", self.weight)] + ([("bias", self.bias)] if self.bias is not None else [])

    def named_grads(self):
        return ([("weight", self.grad_weight)]
                + ([("bias", self.grad_bias)] if self.bias is not None else []))

    def spec(self) -> dict:
        return {"type": "Linear", "in_features": self.in_features,
                "out_features": self.out_features, "bias": self.bias is not None}

    def to_torch(self):
        import torch

        layer = torch.nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                                dtype=_torch_dtype(self.weight.dtype))
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(self.weight))
            if self.bias is not None:
                layer.bias.copy_(torch.from_numpy(self.bias))
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


def _torch_dtype(dtype):
    import torch

    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


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
            from .kernels import activations  # noqa: F401  (import numba only when asked)
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
        from .kernels.activations import bias_relu_forward_

        lin = self.layers[group[0]]
        z = x @ lin.weight.T                 # BLAS does the matrix product ...
        bias_relu_forward_(z, lin.bias)      # ... one compiled pass adds b and clamps, in place
        self._fused_cache[group] = (x, z)
        return z

    def _fused_backward(self, group, dout):
        from .kernels.activations import relu_bias_backward

        lin = self.layers[group[0]]
        x, out = self._fused_cache[group]
        dz = relu_bias_backward(dout, out, out_db=lin.grad_bias)  # mask and bias sum, one pass
        np.matmul(dz.T, x, out=lin.grad_weight)
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
        layers = _layers_from_torch(seq)
        if cls is MLP:
            return MLP._from_layers(layers, backend=backend)
        return cls(*layers, backend=backend)

    def astype(self, dtype):
        """A copy with parameters cast to ``dtype`` (torch: ``copy.deepcopy(m).to(dtype)``)."""
        dtype = _check_dtype(dtype)
        new = _build(self.spec_full(), dtype=dtype, backend=self.backend)
        new.load_state_dict(self.state_dict())
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
        arch = dict(self.spec_full(), dtype=str(self.dtype) if self.dtype is not None else None)
        np.savez(path, __architecture__=np.array(json.dumps(arch)), **self.state_dict())

    @classmethod
    def load(cls, path, *, backend: str = "numpy"):
        """Load a model saved with :meth:`save` (see :func:`load`)."""
        model = load(path, backend=backend)
        if not isinstance(model, cls):
            raise ValueError(f"path {str(path)!r} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def _layers_from_torch(seq):
    import torch

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
            layer.load_state_dict({k: v for k, v in m.state_dict().items()})
            layers.append(layer)
        elif type(m).__name__ in ("ReLU", "Tanh", "Sigmoid") and type(m).__module__.startswith("torch.nn"):
            layers.append(_LAYERS[type(m).__name__]())
        else:
            raise ValueError(f"seq[{i}] is a {type(m).__name__}; only Linear, ReLU, Tanh and "
                             f"Sigmoid have a course_lib.nn counterpart")
    if len(dtypes) > 1:
        raise TypeError(f"seq mixes parameter dtypes {sorted(map(str, dtypes))}")
    return layers


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
        net.load_state_dict(Sequential(*layers).state_dict())
        return net

    def spec_full(self) -> dict:
        return {"type": "MLP", "sizes": self.sizes, "activation": self.activation}


def _build(spec: dict, *, dtype, backend="numpy"):
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
    model = _build(arch, dtype=np.dtype(dtype), backend=backend)
    model.load_state_dict(state)
    return model


# ----------------------------------------------------------------------------------------
# Where the parameters and the compute go
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerSummary:
    """One row of :func:`summary`: per *sample* multiply-adds (a batch of n costs n times more).

    macs counts the forward pass only; the backward pass costs about twice as much
    (one product for ``dx``, one for ``dW``).
    """
    index: int
    layer: str
    out_shape: tuple
    params: int
    nonzero: int
    macs: int


@dataclass(frozen=True)
class Summary:
    """Per-layer parameter and multiply-add counts; ``str(summary)`` is a table."""
    rows: list

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def total_nonzero(self) -> int:
        return sum(r.nonzero for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def __str__(self):
        head = f"{'#':>2}  {'layer':<22}{'output':>10}{'params':>10}{'nonzero':>10}{'MACs':>10}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.index:>2}  {r.layer:<22}{str(r.out_shape):>10}{r.params:>10,}"
                         f"{r.nonzero:>10,}{r.macs:>10,}")
        lines.append("-" * len(head))
        lines.append(f"{'':>2}  {'total':<22}{'':>10}{self.total_params:>10,}"
                     f"{self.total_nonzero:>10,}{self.total_macs:>10,}")
        return "\n".join(lines)

    __repr__ = __str__


def summary(model: Module) -> Summary:
    """Parameters, non-zero parameters and multiply-adds per sample, layer by layer.

    A Linear layer with ``in`` inputs and ``out`` outputs has ``out*in + out`` parameters
    and costs ``out*in`` multiply-adds per sample (bias additions and activations are
    counted as free: they are O(out), the product is O(out*in)).  ``nonzero`` counts
    parameters that are not exactly 0 (pruning, chapter 4, makes it smaller).
    """
    layers = model.layers if isinstance(model, Sequential) else [model]
    rows, width = [], None
    for i, layer in enumerate(layers):
        params = sum(p.size for p in layer.params)
        nonzero = sum(int(np.count_nonzero(p)) for p in layer.params)
        if isinstance(layer, Linear):
            width = layer.out_features
            macs = layer.in_features * layer.out_features
        else:
            macs = 0
        name = (f"Linear({layer.in_features}, {layer.out_features}"
                + ("" if layer.bias is not None else ", bias=False") + ")"
                if isinstance(layer, Linear) else repr(layer))
        rows.append(LayerSummary(i, name, (width,) if width is not None else (), int(params),
                                 nonzero, int(macs)))
    return Summary(rows)


# ----------------------------------------------------------------------------------------
# Training with mini-batch SGD
# ----------------------------------------------------------------------------------------

@dataclass
class FitHistory:
    """What :func:`fit` records.

    losses:     loss of every mini-batch, before its step
    train_loss, train_acc, val_loss, val_acc: one value per epoch, after the epoch
                (val_* only if validation data was given)
    seconds:    cumulative wall time at the end of each epoch
    """
    losses: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    seconds: list = field(default_factory=list)


def _loss_fn(model):
    if getattr(model, "backend", "numpy") == "numba":
        from .kernels.softmax_ce import softmax_cross_entropy_numba
        return softmax_cross_entropy_numba
    return softmax_cross_entropy


def evaluate(model, X, y):
    """``(mean softmax cross-entropy, accuracy)`` of ``model`` on ``(X, y)``."""
    with np.errstate(over="ignore", invalid="ignore"):
        logits = model.forward(X)
    if not np.all(np.isfinite(logits)):
        return float("nan"), float("nan")
    loss, _ = softmax_cross_entropy(logits, y)
    return loss, float(np.mean(np.argmax(logits, axis=1) == np.asarray(y)))


def fit(model, X, y, *, lr=None, epochs: int = 10, batch_size: int = 32, seed=0,
        optimizer=None, X_val=None, y_val=None, callback=None) -> FitHistory:
    """Train a classifier with mini-batch SGD on the softmax cross-entropy.

    Each step: ``logits = model(Xb)``, ``loss, dlogits = softmax_cross_entropy(logits, yb)``,
    ``model.backward(dlogits)``, then either plain SGD in place (``p -= lr * g`` for every
    parameter, ``torch.optim.SGD(params, lr)``) or ``optimizer.step(model.grads)`` if an
    optimizer is given (anything holding ``model.params`` with a ``step(grads)`` method).

    Batches come from :func:`course_lib.data.minibatches` with one seeded Generator
    (a new order every epoch, reproducibly).  A non-finite loss stops training with
    :class:`course_lib.utils.TrainingDiverged` naming the step and the learning rate.
    callback: called as ``callback(epoch, history)`` after each epoch.
    """
    if optimizer is None:
        if lr is None:
            raise ValueError("lr must be given when no optimizer is given")
        check_positive("lr", lr)
    elif not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must have a step(grads) method, got {type(optimizer).__name__}")
    check_positive("epochs", epochs, integer=True)
    check_positive("batch_size", batch_size, integer=True)
    X = as_array("X", X, ndim=2, dtype_kind="fiu")
    y = np.asarray(y)
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together")
    rng = _rng(seed)
    loss_fn = _loss_fn(model)
    params, grads = model.params, model.grads
    hist = FitHistory()
    t0 = time.perf_counter()
    step = 0

    def current_lr():  # read at report time: a scheduler may have changed optimizer.lr
        return lr if optimizer is None else getattr(optimizer, "lr", None)

    for epoch in range(epochs):
        for Xb, yb in minibatches(X, y, batch_size, shuffle=True, seed=rng):
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
                logits = model.forward(Xb)
                if np.all(np.isfinite(logits)):
                    loss, dlogits = loss_fn(logits, yb)
                else:
                    loss = float("nan")
                check_finite_loss(loss, step=step, lr=current_lr(), epoch=epoch)
                hist.losses.append(loss)
                model.backward(dlogits)
                if optimizer is None:
                    for p, g in zip(params, grads):
                        p -= lr * g          # in place: the same arrays stay in model.params
                else:
                    optimizer.step(grads)
            step += 1
        tl, ta = evaluate(model, X, y)
        check_finite_loss(tl, step=step, lr=current_lr(), epoch=epoch)
        hist.train_loss.append(tl)
        hist.train_acc.append(ta)
        if X_val is not None:
            vl, va = evaluate(model, X_val, y_val)
            hist.val_loss.append(vl)
            hist.val_acc.append(va)
        hist.seconds.append(time.perf_counter() - t0)
        if callback is not None:
            callback(epoch, hist)
    return hist
