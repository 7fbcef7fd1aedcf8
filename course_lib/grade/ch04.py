r"""Chapter 4 questions: pruning masks, schedules, CSR memory, and a masked fine-tuning loop.

Students write

- ``global_magnitude_masks(weights, masks, amount) -> list of masks``: one ranking of all the
  *remaining* entries of several weights (torch's ``global_unstructured`` with
  ``L1Unstructured``; the chapter builds only the per-layer mask from scratch);
- ``iterative_prune_counts(n, target, steps) -> list of ints``: how many weights to prune at each
  round of an iterative schedule whose cumulative sparsity after round k is
  ``1 - (1 - target) ** (k / steps)`` (rounded to whole weights);
- ``csr_break_even_density(m, k, value_bytes, index_bytes) -> float``: the density below which a
  CSR matrix takes fewer bytes than the dense one (predict, then measure with ``CSRMatrix.nbytes``);
- ``finetune_pruned(weight, mask, momentum_buffer, grad_fn, *, lr, momentum, steps)
  -> (weight_orig, effective weight)``: fine-tuning with torch's reparametrisation, the fix of a
  planted bug that lets pruned weights come back.

What is compared: the returned values (masks exactly; floats with tolerances).
"""

from __future__ import annotations

import numpy as np

from .spec import Callback, Case, Mistake, Question

CHAPTER = "04_pruning"
PRUNE_MODULES = ("course_lib.prune",)


# ----------------------------------------------------------------------------------
# 04.global_magnitude_masks(weights, masks, amount) -> list of masks


def global_magnitude_masks(weights, masks, amount):
    """Reference: torch's ``global_unstructured(..., L1Unstructured, amount)`` on weights already
    pruned with ``masks``: ``course_lib.prune``'s PruningContainer on the concatenation."""
    from ..prune import L1Unstructured, PruningContainer

    w = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in weights])
    m = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in masks])
    method = L1Unstructured(amount)
    method._tensor_name = "temp"
    final = PruningContainer(method).compute_mask(w * m, m)
    out, start = [], 0
    for a in weights:
        out.append(final[start:start + a.size].reshape(a.shape))
        start += a.size
    return out


def gm_cases(rng):
    def layers(shapes, tie=False, premask=0.0):
        ws = [rng.standard_normal(s) for s in shapes]
        if tie:   # many equal magnitudes across layers, and signs: +-0.5 ties
            for w in ws:
                w[rng.random(w.shape) < 0.4] = 0.5 * rng.choice([-1.0, 1.0])
        ms = [(rng.random(s) >= premask).astype(np.float64) for s in shapes]
        return ws, ms
    cases = []
    ws, ms = layers([(4, 6), (3, 4)])
    cases.append(Case("two layers, nothing pruned yet, amount=0.5", (ws, ms, 0.5)))
    ws, ms = layers([(6, 5), (5, 2), (2, 3)], premask=0.4)
    cases.append(Case("three layers already 40% pruned, amount=0.5 of the remaining", (ws, ms, 0.5)))
    ws, ms = layers([(5, 4), (4, 3)], premask=0.3)
    cases.append(Case("already pruned layers, an int amount (a count)", (ws, ms, 7)))
    ws, ms = layers([(3, 8), (8, 2)], tie=True)
    cases.append(Case("tied magnitudes: exactly the requested count", (ws, ms, 0.3)))
    fixed = [np.array([[0.5, -0.5, 0.5, 2.0], [1.0, -0.5, 3.0, 0.5]]), np.array([[0.5, -4.0], [0.25, 1.5]])]
    cases.append(Case("six entries tie at |w| = 0.5, amount=3 (a count)",
                      (fixed, [np.ones((2, 4)), np.ones((2, 2))], 3)))
    # a layer of large weights and a layer of small ones: global takes all from the small one
    small, big = rng.standard_normal((4, 5)) * 0.01, rng.standard_normal((3, 3)) * 10
    cases.append(Case("a layer of small weights and one of large ones", ([small, big], [np.ones((4, 5)), np.ones((3, 3))], 0.6)))
    # round half to even: 5 remaining entries, amount 0.5 -> round(2.5) = 2
    w5 = [rng.standard_normal((1, 5)) + 3.0, rng.standard_normal((2, 2))]
    m5 = [np.ones((1, 5)), np.zeros((2, 2))]
    cases.append(Case("5 remaining entries, amount=0.5: round(2.5) = 2", (w5, m5, 0.5)))
    w7 = [rng.standard_normal((1, 7))]
    cases.append(Case("7 entries, amount=0.5: round(3.5) = 4", (w7, [np.ones((1, 7))], 0.5)))
    return cases


def _gm_generic(weights, masks, amount, *, of_total=False, threshold=False, per_layer=False,
                floor=False, ignore_masks=False):
    w = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in weights])
    m = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in masks])
    if ignore_masks:
        m = np.ones_like(m)
    if per_layer:
        out = []
        for a, b in zip(weights, masks):
            out.extend(_gm_generic([a], [b], amount, of_total=of_total, threshold=threshold, floor=floor))
        return out
    remaining = np.flatnonzero(m == 1)
    n = w.size if of_total else remaining.size
    if isinstance(amount, (int, np.integer)):
        k = int(amount)
    else:
        k = int(amount * n) if floor else round(amount * n)
    k = min(k, remaining.size)
    final = m.copy()
    if k:
        scores = np.abs(w[remaining])
        if threshold:
            t = np.sort(scores)[k - 1]
            final[remaining[scores <= t]] = 0
        else:
            final[remaining[np.argsort(scores, kind="stable")[:k]]] = 0
    out, start = [], 0
    for a in weights:
        out.append(final[start:start + a.size].reshape(a.shape))
        start += a.size
    return out


def _gm(**flags):
    def impl(weights, masks, amount):
        return _gm_generic(weights, masks, amount, **flags)
    return impl


GLOBAL_MASKS = Question(
    id="04.global_magnitude_masks", func="global_magnitude_masks", reference=global_magnitude_masks,
    make_cases=gm_cases, output_names="masks", points=3.0, rtol=0.0, atol=0.0,
    reference_modules=PRUNE_MODULES,
    mistakes=(
        Mistake("fraction_of_total", "your float amount is a fraction of ALL entries; torch's is a "
                "fraction of the REMAINING (unmasked) ones: k = round(amount * number of remaining)",
                _gm(of_total=True)),
        Mistake("threshold_ties", "you prune every entry with |w| <= the k-th smallest: with ties that "
                "prunes more than k; sort and prune exactly k (ties in order of position)",
                _gm(threshold=True)),
        Mistake("per_layer", "you prune each layer separately: global pruning ranks all layers' "
                "entries together, so layers end with different sparsities", _gm(per_layer=True)),
        Mistake("floor", "you round the count down (int()): torch uses round(), halves to even",
                _gm(floor=True)),
        Mistake("ignore_masks", "you rank every entry, also the already pruned ones: keep the old "
                "masks' zeros and choose the new k among the remaining entries", _gm(ignore_masks=True)),
    ),
)


# ----------------------------------------------------------------------------------
# 04.iterative_prune_counts(n, target, steps) -> list of ints


def iterative_prune_counts(n, target, steps):
    """Weights pruned at each of ``steps`` rounds: cumulative ``round(n * (1 - (1 - target)**(k/steps)))``."""
    done = [round(n * (1.0 - (1.0 - target) ** (k / steps))) for k in range(steps + 1)]
    return [int(b - a) for a, b in zip(done[:-1], done[1:])]


def ipc_cases(rng):
    return [
        Case("n=1000, 90% in 3 rounds", (1000, 0.9, 3)),
        Case("n=17024, 95% in 5 rounds", (17024, 0.95, 5)),
        Case("one round: everything at once", (int(rng.integers(100, 5000)), 0.8, 1)),
        Case("random sizes", (int(rng.integers(500, 50000)), float(rng.uniform(0.5, 0.99)),
                              int(rng.integers(2, 9)))),
        Case("n=640, 99% in 4 rounds", (640, 0.99, 4)),
    ]


def _ipc_linear(n, target, steps):        # "prune target/steps of the TOTAL each round"
    done = [round(n * target * k / steps) for k in range(steps + 1)]
    return [int(b - a) for a, b in zip(done[:-1], done[1:])]


def _ipc_fraction_of_remaining_naive(n, target, steps):   # target/steps of the remaining each round
    remaining, out = n, []
    for _ in range(steps):
        c = round(target / steps * remaining)
        out.append(int(c))
        remaining -= c
    return out


def _ipc_cumulative(n, target, steps):
    return [round(n * (1.0 - (1.0 - target) ** (k / steps))) for k in range(1, steps + 1)]


def _ipc_same_of_n(n, target, steps):     # p of the original n every round
    p = 1.0 - (1.0 - target) ** (1.0 / steps)
    return [round(p * n)] * steps


IPC = Question(
    id="04.iterative_prune_counts", func="iterative_prune_counts", reference=iterative_prune_counts,
    make_cases=ipc_cases, output_names="counts", points=2.0, rtol=0.0, atol=0.0,
    reference_modules=PRUNE_MODULES,
    mistakes=(
        Mistake("linear", "your cumulative sparsity grows linearly (target * k / steps): a constant "
                "fraction p of the REMAINING weights per round compounds, 1 - (1 - p)**k", _ipc_linear),
        Mistake("naive_fraction", "you prune target/steps of the remaining weights each round: that "
                "compounds to less than target; the per-round fraction is 1 - (1 - target)**(1/steps)",
                _ipc_fraction_of_remaining_naive),
        Mistake("cumulative", "you return the cumulative number pruned after each round; the question "
                "asks for the number pruned IN each round", _ipc_cumulative),
        Mistake("same_of_n", "you prune the per-round fraction of the ORIGINAL n every round; it is a "
                "fraction of what remains", _ipc_same_of_n),
    ),
)


# ----------------------------------------------------------------------------------
# 04.csr_break_even_density(m, k, value_bytes, index_bytes) -> float


def csr_break_even_density(m, k, value_bytes, index_bytes):
    """Density d* with ``d* m k (value + index) + (m + 1) index == m k value``."""
    return (m * k * value_bytes - (m + 1) * index_bytes) / (m * k * (value_bytes + index_bytes))


def csr_cases(rng):
    return [
        Case("1024x1024, float32 values, int32 indices", (1024, 1024, 4, 4)),
        Case("64x128, float64 values, int32 indices", (64, 128, 8, 4)),
        Case("a tall thin matrix: indptr matters", (int(rng.integers(200, 400)), 2, 4, 4)),
        Case("float16 values, int64 indices", (int(rng.integers(10, 100)), int(rng.integers(10, 100)), 2, 8)),
        Case("one row", (1, int(rng.integers(5, 50)), 4, 4)),
    ]


def _csr_no_indptr(m, k, v, i):
    return v / (v + i)


def _csr_no_index(m, k, v, i):
    return (m * k * v - (m + 1) * i) / (m * k * v)


def _csr_m_not_m1(m, k, v, i):
    return (m * k * v - m * i) / (m * k * (v + i))


def _csr_sparsity(m, k, v, i):
    return 1 - csr_break_even_density(m, k, v, i)


CSR = Question(
    id="04.csr_break_even_density", func="csr_break_even_density", reference=csr_break_even_density,
    make_cases=csr_cases, output_names="density", points=2.0, rtol=1e-9, atol=1e-12,
    mistakes=(
        Mistake("no_indptr", "you forget indptr's (m + 1) row pointers: they cost (m + 1) * index_bytes "
                "whatever the density", _csr_no_indptr),
        Mistake("no_index", "you count only the values: every non-zero also stores its column index",
                _csr_no_index),
        Mistake("m_pointers", "indptr has m + 1 entries (one past the last row), not m", _csr_m_not_m1),
        Mistake("sparsity", "you return the break-even SPARSITY (1 - density); the question asks for the "
                "density", _csr_sparsity),
    ),
)


# ----------------------------------------------------------------------------------
# 04.finetune_pruned(weight, mask, momentum_buffer, grad_fn, *, lr, momentum, steps)


def quadratic(X, Y, w_eff):
    """The grader's loss gradient: ``d/dW 0.5 ||W X - Y||^2 = (W X - Y) X^T`` at ``w_eff``."""
    w_eff = np.asarray(w_eff, dtype=np.float64)
    if w_eff.shape != (Y.shape[0], X.shape[0]):
        raise ValueError(f"grad_fn expects a weight of shape {(Y.shape[0], X.shape[0])}, got {w_eff.shape}")
    return (w_eff @ X - Y) @ X.T


def finetune_pruned(weight, mask, momentum_buffer, grad_fn, *, lr, momentum, steps):
    """torch's pruned fine-tuning: forward with ``weight_orig * mask``, masked gradient to
    ``weight_orig``, SGD with momentum continuing from ``momentum_buffer`` (or a first step
    that copies the gradient if it is None). Returns ``(weight_orig, weight_orig * mask)``."""
    w = np.array(weight, dtype=np.float64, copy=True)
    buf = None if momentum_buffer is None else np.array(momentum_buffer, dtype=np.float64, copy=True)
    for _ in range(steps):
        g = grad_fn(w * mask) * mask
        if buf is None:
            buf = g.copy()
        else:
            buf *= momentum
            buf += g
        w -= lr * buf
    return w, w * mask


def ft_cases(rng):
    def case(name, shape, with_buffer, steps, sparsity=0.6):
        m, n = shape
        X, Y = rng.standard_normal((n, 8)), rng.standard_normal((m, 8))
        w = rng.standard_normal(shape)
        mask = (rng.random(shape) >= sparsity).astype(np.float64)
        mask.flat[0], mask.flat[-1] = 0.0, 1.0          # at least one pruned and one kept
        buf = rng.standard_normal(shape) if with_buffer else None
        return Case(name, (w, mask, buf, Callback("quadratic", (X, Y))),
                    dict(lr=0.02, momentum=0.9, steps=steps))
    return [
        case("momentum buffer from dense training, 5 steps", (3, 4), True, 5),
        case("no buffer yet (first step copies the gradient), 4 steps", (4, 3), False, 4),
        case("one step with a buffer", (2, 5), True, 1),
        case("90% pruned, 8 steps", (5, 6), True, 8, sparsity=0.9),
    ]


def _ft_generic(weight, mask, momentum_buffer, grad_fn, lr, momentum, steps, *, zero_once=False,
                mask_grad=True, mask_forward=True, zero_after_step=False, fresh_buffer=False):
    w = np.array(weight, dtype=np.float64, copy=True)
    if zero_once:
        w *= mask
    buf = None if (momentum_buffer is None or fresh_buffer) else np.array(momentum_buffer, dtype=np.float64, copy=True)
    for _ in range(steps):
        g = grad_fn(w * mask if mask_forward else w)
        if mask_grad:
            g = g * mask
        if buf is None:
            buf = g.copy()
        else:
            buf = momentum * buf + g
        w -= lr * buf
        if zero_after_step:
            w *= mask
    return w, (w * mask if mask_forward else w)


def _ft(**flags):
    def impl(weight, mask, momentum_buffer, grad_fn, *, lr, momentum, steps):
        return _ft_generic(weight, mask, momentum_buffer, grad_fn, lr, momentum, steps, **flags)
    return impl


FINETUNE = Question(
    id="04.finetune_pruned", func="finetune_pruned", reference=finetune_pruned,
    make_cases=ft_cases, output_names=("weight_orig", "effective weight"), points=3.0,
    rtol=1e-9, atol=1e-12, callbacks={"quadratic": quadratic},
    mistakes=(
        Mistake("planted_bug", "this is the planted bug: the weights are zeroed once and the gradient "
                "masked, but the forward pass uses the unmasked weights, so the momentum buffer brings "
                "pruned weights back; compute with weight_orig * mask at every step",
                _ft(zero_once=True, mask_forward=False)),
        Mistake("zero_once", "you zero the pruned weights once and train on unmasked: gradient and "
                "momentum bring them back; the forward must use weight_orig * mask",
                _ft(zero_once=True, mask_forward=False, mask_grad=False)),
        Mistake("zero_after_step", "you zero the weights after every optimizer step: the effective "
                "weights agree, but weight_orig must stay unmasked (torch keeps its values; remove() "
                "and a later re-pruning see them)", _ft(zero_after_step=True)),
        Mistake("unmasked_gradient", "the gradient reaching weight_orig is grad * mask (the chain rule "
                "through weight_orig * mask): pruned entries get no gradient", _ft(mask_grad=False)),
        Mistake("fresh_buffer", "you ignore the momentum buffer you were given: fine-tuning continues "
                "the optimizer's state", _ft(fresh_buffer=True)),
    ),
)

QUESTIONS = (GLOBAL_MASKS, IPC, CSR, FINETUNE)
