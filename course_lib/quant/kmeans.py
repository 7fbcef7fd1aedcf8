r"""Weight sharing with k-means: a small codebook per layer (Han et al. 2016, "trained quantization").

Instead of an evenly spaced grid of levels (affine quantization), cluster the weights of a
layer into :math:`k` groups and store, per weight, only the index of its group
(:math:`\lceil\log_2 k\rceil` bits), plus the :math:`k` float centroids (the *codebook*).  The levels
then follow the distribution of the weights (dense where weights are dense).

- :func:`kmeans_codebook` runs Lloyd's algorithm in one dimension from a **linear**
  initialisation (centroids evenly spaced between min and max: Han et al. found it keeps the rare
  large weights, which matter most, better than random or density-based starts);
- :func:`codebook_gradient` is the fine-tuning rule: the gradient of a centroid is the *sum* of
  the gradients of the weights that share it (all of them are the same parameter).

Shapes: W (out, in) float (any shape works, it is flattened); codebook (k,) float32; indices of
W's shape, uint8 (k <= 256).  ``codebook[indices]`` is the shared-weight matrix.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..validation import as_array

__all__ = ["kmeans_codebook", "kmeans_quantize", "codebook_gradient"]


def _check_k(n_clusters):
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral) or not 2 <= n_clusters <= 256:
        raise ValueError(f"n_clusters must be an integer in [2, 256], got {n_clusters!r}")
    return int(n_clusters)


def kmeans_codebook(W, n_clusters: int, *, iters: int = 50):
    """1-d k-means of the values of ``W``, linear initialisation, deterministic.

    Returns ``(codebook float32 (k,) sorted, indices uint8 of W's shape)``.  An empty cluster
    keeps its previous centroid.  Stops early when no assignment changes.
    """
    W = as_array("W", W, dtype_kind="f")
    k = _check_k(n_clusters)
    if isinstance(iters, bool) or not isinstance(iters, numbers.Integral) or iters < 1:
        raise ValueError(f"iters must be a positive integer, got {iters!r}")
    w = W.astype(np.float64).ravel()
    centroids = np.linspace(w.min(), w.max(), k)
    idx = None
    for _ in range(iters):
        # nearest centroid: centroids are sorted, so compare with the midpoints between them
        new_idx = np.searchsorted((centroids[1:] + centroids[:-1]) / 2, w)
        if idx is not None and np.array_equal(new_idx, idx):
            break
        idx = new_idx
        sums = np.bincount(idx, weights=w, minlength=k)
        counts = np.bincount(idx, minlength=k)
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        centroids = np.sort(centroids)
    idx = np.searchsorted((centroids[1:] + centroids[:-1]) / 2, w)
    return centroids.astype(np.float32), idx.astype(np.uint8).reshape(W.shape)


def kmeans_quantize(W, n_clusters: int, *, iters: int = 50) -> np.ndarray:
    """``codebook[indices]``: W with every weight replaced by its cluster's centroid (float32)."""
    codebook, idx = kmeans_codebook(W, n_clusters, iters=iters)
    return codebook[idx]


def codebook_gradient(dW, indices, n_clusters: int) -> np.ndarray:
    """Gradient of each centroid: the sum of ``dW`` over the weights in its cluster.

    dW: gradient w.r.t. the shared-weight matrix (W's shape); indices: uint8, same shape.
    Returns (k,) float of dW's dtype.
    """
    dW = as_array("dW", dW, dtype_kind="f")
    indices = as_array("indices", indices, dtype_kind="iu")
    if dW.shape != indices.shape:
        raise ValueError(f"dW and indices must have one shape, got {dW.shape} and {indices.shape}")
    k = _check_k(n_clusters)
    return np.bincount(indices.ravel(), weights=dW.ravel(), minlength=k).astype(dW.dtype)
