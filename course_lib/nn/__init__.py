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

The package, one concept per module: :mod:`~course_lib.nn.functional` (the core),
:mod:`~course_lib.nn.modules` (layers), :mod:`~course_lib.nn.torch_bridge`,
:mod:`~course_lib.nn.serialize` (save/load), :mod:`~course_lib.nn.summary`,
:mod:`~course_lib.nn.train` (fit/evaluate), :mod:`~course_lib.nn.reparam` (pruning's
``weight = weight_orig * weight_mask``, chapter 4: see :mod:`course_lib.prune`).  Everything is
importable from ``course_lib.nn``.
"""

from .functional import (linear_backward, linear_forward, relu_backward, relu_forward,
                         sigmoid_backward, sigmoid_forward, tanh_backward, tanh_forward)
from .modules import ACTIVATIONS, MLP, Linear, Module, ReLU, Sequential, Sigmoid, Tanh
from .serialize import load
from .summary import LayerSummary, Summary, summary
from .train import FitHistory, evaluate, fit
from .functional import dropout_backward, dropout_forward
from .modules import Dropout

__all__ = [
    "linear_forward", "linear_backward", "relu_forward", "relu_backward",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "Module", "Linear", "ReLU", "Tanh", "Sigmoid", "Sequential", "MLP",
    "load", "summary", "Summary", "LayerSummary", "fit", "evaluate", "FitHistory", "ACTIVATIONS",
    "Dropout", "dropout_forward", "dropout_backward",
]
