"""Where the parameters and the compute go: :func:`summary` (reused by the compression chapters)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .modules import Linear, Module, Sequential

__all__ = ["summary", "Summary", "LayerSummary"]


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

    @property
    def sparsity(self) -> float:
        """Fraction of this layer's parameters that are exactly 0 (0.0 without parameters)."""
        return 1.0 - self.nonzero / self.params if self.params else 0.0


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

    @property
    def sparsity(self) -> float:
        """Fraction of all parameters that are exactly 0."""
        return 1.0 - self.total_nonzero / self.total_params if self.total_params else 0.0

    def __str__(self):
        head = (f"{'#':>2}  {'layer':<22}{'output':>10}{'params':>10}{'nonzero':>10}"
                f"{'sparsity':>10}{'MACs':>10}")
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.index:>2}  {r.layer:<22}{str(r.out_shape):>10}{r.params:>10,}"
                         f"{r.nonzero:>10,}{r.sparsity:>10.1%}{r.macs:>10,}")
        lines.append("-" * len(head))
        lines.append(f"{'':>2}  {'total':<22}{'':>10}{self.total_params:>10,}"
                     f"{self.total_nonzero:>10,}{self.sparsity:>10.1%}{self.total_macs:>10,}")
        return "\n".join(lines)

    __repr__ = __str__


def _effective_params(layer):
    # a pruned parameter counts as weight_orig * weight_mask (module.weight may be stale)
    buffers = dict(layer.named_buffers())
    return [p * buffers[n[:-len("_orig")] + "_mask"] if n.endswith("_orig") else p
            for n, p in layer.named_parameters()]


def summary(model: Module) -> Summary:
    """Parameters, non-zero parameters and multiply-adds per sample, layer by layer.

    A Linear layer with ``in`` inputs and ``out`` outputs has ``out*in + out`` parameters
    and costs ``out*in`` multiply-adds per sample (bias additions and activations are
    counted as free: they are O(out), the product is O(out*in)).  ``nonzero`` counts
    parameters that are not exactly 0 in the model's function: for a pruned parameter,
    ``name_orig * name_mask`` (pruning, chapter 4, makes it smaller; ``sparsity`` is
    ``1 - nonzero / params``).
    """
    layers = model.layers if isinstance(model, Sequential) else [model]
    rows, width = [], None
    for i, layer in enumerate(layers):
        params = sum(p.size for p in layer.params)
        nonzero = sum(int(np.count_nonzero(p)) for p in _effective_params(layer))
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
