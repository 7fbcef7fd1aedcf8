"""Chapter 2 questions: a linear layer forward and backward, the ReLU backward, softmax
cross-entropy (as in chapter 1), and a numerical gradient.

Signatures are the references' in :mod:`course_lib.nn` / :mod:`course_lib.gradcheck`:

- ``linear_forward(x, W, b) -> (out, cache)`` with ``cache = (x, W, b)`` in this order (the
  exercise's contract: the checker passes that tuple to ``linear_backward``); both are graded
- ``linear_backward(dout, cache) -> (dx, dW, db)`` with ``cache = (x, W, b)``, the cache
  of the reference ``linear_forward``
- ``relu_backward(dout, cache) -> dx`` with ``cache = x``, the ReLU's input
- ``softmax_cross_entropy(logits, y) -> (loss, dlogits)``
- ``numerical_gradient(f, x, h) -> grad``: centred differences, ``x`` perturbed in place and
  restored; ``f`` is a function the grader provides, in some cases a closure that reads ``x``
  itself rather than its argument (as ``lambda _: loss(W)`` reads the weights), so a version
  that perturbs a copy of ``x`` sees a constant ``f``
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import gradcheck, losses, nn
from ..nn import functional as NF
from .ch01 import SOFTMAX_CE
from .spec import Bad, Callback, Case, Mistake, Question

CHAPTER = "02_neural_network"


def out_and_cache(value):
    """``(out, cache)`` checked to be a pair (a list of two is accepted like a tuple)."""
    if isinstance(value, tuple) and len(value) == 2:
        return value
    return Bad("not a pair (out, cache)")


# ----------------------------------------------------------------------------------
# 02.linear_forward(x, W, b) -> (out, cache)


def _layer(rng, n, fan_in, fan_out):
    return (rng.standard_normal((n, fan_in)), rng.standard_normal((fan_out, fan_in)),
            rng.standard_normal(fan_out))


def linear_forward_cases(rng):
    n, i = int(rng.integers(3, 12)), int(rng.integers(2, 7))
    o = i + int(rng.integers(1, 4))
    return [
        Case(f"random layer, {i} -> {o} units, n={n}", _layer(rng, n, i, o)),
        Case("as many outputs as inputs", _layer(rng, int(rng.integers(3, 8)), 4, 4)),
        Case("a single row (n=1)", _layer(rng, 1, 3, 5)),
        Case("one output unit", _layer(rng, int(rng.integers(3, 8)), 6, 1)),
    ]


def _lf_no_transpose(x, W, b):
    out = x @ W + b
    return out, (x, W, b)


def _lf_no_bias(x, W, b):
    return x @ W.T, (x, W, b)


def _lf_transposed_out(x, W, b):
    return W @ x.T + b[:, None], (x, W, b)


def _lf_cache_order(x, W, b):
    return x @ W.T + b, (W, x, b)


def _lf_cache_out(x, W, b):
    out = x @ W.T + b
    return out, (out, W, b)


LINEAR_FORWARD = Question(
    id="02.linear_forward", func="linear_forward", reference=nn.linear_forward,
    make_cases=linear_forward_cases, output_names=("out", "cache"), project=out_and_cache, points=1.0,
    # regression.linear_forward is one output unit of it
    reference_modules=("course_lib.nn", "course_lib.kernels.dense", "course_lib.regression"),
    mistakes=(
        Mistake("no_transpose", "you multiply by W instead of W.T: W has one row per output "
                "unit, shape (out, in), so out = x @ W.T + b", _lf_no_transpose),
        Mistake("no_bias", "you forgot the bias: out = x @ W.T + b", _lf_no_bias),
        Mistake("transposed_out", "your out is transposed: it must have one row per sample, "
                "shape (n, out)", _lf_transposed_out),
        Mistake("cache_order", "your cache is (W, x, b): linear_backward unpacks x, W, b = cache, "
                "so return cache = (x, W, b) in this order", _lf_cache_order),
        Mistake("cache_output", "your cache holds the output where the input belongs: the backward "
                "pass needs the layer's input x (dW = dout.T @ x), so cache = (x, W, b)",
                _lf_cache_out),
    ),
)


# ----------------------------------------------------------------------------------
# 02.linear_backward(dout, cache) -> (dx, dW, db)


def linear_backward_cases(rng):
    def case(name, n, i, o):
        x, W, b = _layer(rng, n, i, o)
        return Case(name, (rng.standard_normal((n, o)), (x, W, b)))
    n, i = int(rng.integers(3, 12)), int(rng.integers(2, 7))
    return [
        case(f"random layer, {i} -> {i + 2} units, n={n}", n, i, i + 2),
        case("as many outputs as inputs", int(rng.integers(3, 8)), 4, 4),
        case("a single row (n=1)", 1, 3, 5),
        case("one output unit", int(rng.integers(3, 8)), 6, 1),
    ]


def _lb_db_mean(dout, cache):
    x, W, b = cache
    return dout @ W, dout.T @ x, dout.mean(axis=0)


def _lb_dW_transposed(dout, cache):
    x, W, b = cache
    return dout @ W, x.T @ dout, dout.sum(axis=0)


def _lb_dx_wrong(dout, cache):
    x, W, b = cache
    return dout @ W.T, dout.T @ x, dout.sum(axis=0)


def _lb_db_total(dout, cache):
    x, W, b = cache
    return dout @ W, dout.T @ x, dout.sum()


def _lb_db_axis(dout, cache):
    x, W, b = cache
    return dout @ W, dout.T @ x, dout.sum(axis=1)


LINEAR_BACKWARD = Question(
    id="02.linear_backward", func="linear_backward", reference=nn.linear_backward,
    make_cases=linear_backward_cases, output_names=("dx", "dW", "db"), points=1.0,
    reference_modules=("course_lib.nn", "course_lib.kernels.dense"),
    mistakes=(
        Mistake("db_mean", "your db is averaged over the batch: b is added to every row, so "
                "its gradient is the sum dout.sum(axis=0)", _lb_db_mean),
        Mistake("dW_transposed", "your dW is transposed: it must have W's shape (out, in), "
                "dW = dout.T @ x", _lb_dW_transposed),
        Mistake("dx_wrong", "your dx uses W.T: with out = x @ W.T the gradient is dx = dout @ W",
                _lb_dx_wrong),
        Mistake("db_axis", "you sum db over the wrong axis: sum over the batch (axis=0), "
                "one entry per output unit", _lb_db_axis),
        Mistake("db_total", "your db is dout.sum(), one number: b has one entry per output unit, "
                "db = dout.sum(axis=0)", _lb_db_total),
    ),
)


# ----------------------------------------------------------------------------------
# 02.relu_backward(dout, cache) -> dx


def relu_cases(rng):
    def case(name, shape):
        x = rng.standard_normal(shape)
        x.flat[::3] = 0.0           # exact zeros: where the derivative is a convention (0)
        return Case(name, (rng.standard_normal(shape), x))
    return [
        case("a batch of activations", (int(rng.integers(3, 9)), int(rng.integers(2, 7)))),
        case("a single row", (1, 7)),
        case("a vector", (int(rng.integers(5, 15)),)),
        case("many exact zeros", (4, 6)),
    ]


def _relu_ge(dout, x):
    return dout * (x >= 0)


def _relu_half(dout, x):
    return dout * np.where(x > 0, 1.0, np.where(x == 0, 0.5, 0.0))


def _relu_dout_mask(dout, x):
    return dout * (dout > 0)


def _relu_mask_only(dout, x):
    return (x > 0).astype(dout.dtype)


def _relu_inverted(dout, x):
    return dout * (x < 0)


def _relu_inplace(dout, x):
    dout[x <= 0] = 0.0
    return dout


RELU_BACKWARD = Question(
    id="02.relu_backward", func="relu_backward", reference=nn.relu_backward,
    make_cases=relu_cases, output_names="dx", points=1.0,
    reference_modules=("course_lib.nn", "course_lib.kernels.activations"),
    mistakes=(
        Mistake("ge_zero", "your ReLU gradient passes through at x == 0: use x > 0 (the "
                "derivative at the kink is taken as 0, as in PyTorch)", _relu_ge),
        Mistake("half_at_kink", "your ReLU gradient is 0.5 at x == 0 (a subgradient, but not the "
                "convention): PyTorch, and this course, take 0 there", _relu_half),
        Mistake("dout_mask", "you mask with the upstream gradient (dout > 0): the mask comes from "
                "the ReLU's input, dx = dout * (x > 0)", _relu_dout_mask),
        Mistake("mask_only", "you return the mask (x > 0) alone: multiply it by dout (chain rule)",
                _relu_mask_only),
        Mistake("inverted", "your mask is inverted: the gradient flows where x > 0", _relu_inverted),
        Mistake("inplace", "you modified dout in place: return a new array (the caller may "
                "still need dout)", _relu_inplace),
    ),
)


# ----------------------------------------------------------------------------------
# 02.softmax_cross_entropy: chapter 1's question again

SOFTMAX_CE_2 = dataclasses.replace(
    SOFTMAX_CE, id="02.softmax_cross_entropy",
    reference_modules=SOFTMAX_CE.reference_modules + ("course_lib.nn",))


# ----------------------------------------------------------------------------------
# 02.numerical_gradient(f, x, h) -> grad


def smooth(A, B, x):
    """The grader's test function: ``sum(A * sin(x)) + sum(B * x**2) / 2`` (a float)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape != A.shape:
        raise ValueError(f"x must have shape {A.shape}, got {x.shape}")
    return float(np.sum(A * np.sin(x)) + 0.5 * np.sum(B * x * x))


def numgrad_cases(rng):
    def case(name, shape, h):
        data = (rng.standard_normal(shape), rng.standard_normal(shape))
        return Case(name, (Callback("smooth", data), rng.standard_normal(shape), h))
    def closure(name, shape, h):
        # f ignores its argument and reads x itself, like lambda _: loss(W) in the lecture
        data = (rng.standard_normal(shape), rng.standard_normal(shape))
        return Case(name, (Callback("smooth", data, reads_arg=1), rng.standard_normal(shape), h))
    return [
        case("a vector, h=1e-5", (int(rng.integers(3, 7)),), 1e-5),
        case("a matrix, h=1e-5", (2, 3), 1e-5),
        case("a matrix, h=1e-4", (3, 2), 1e-4),
        case("a single entry", (1,), 1e-5),
        closure("f = lambda _: loss(x): it reads x itself, not its argument", (2, 3), 1e-5),
    ]


def _ng_loop(f, x, h, diff):
    grad = np.zeros(x.shape)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        j = it.multi_index
        grad[j] = diff(f, x, j, h)
    return grad


def _ng_one_sided(f, x, h):
    def diff(f, x, j, h):
        old = x[j]
        f0 = f(x)
        x[j] = old + h
        fp = f(x)
        x[j] = old
        return (fp - f0) / h
    return _ng_loop(f, x, h, diff)


def _ng_over_h(f, x, h):
    def diff(f, x, j, h):
        old = x[j]
        x[j] = old + h
        fp = f(x)
        x[j] = old - h
        fm = f(x)
        x[j] = old
        return (fp - fm) / h
    return _ng_loop(f, x, h, diff)


def _ng_not_restored(f, x, h):
    def diff(f, x, j, h):
        old = x[j]
        x[j] = old + h
        fp = f(x)
        x[j] = old - h
        fm = f(x)
        return (fp - fm) / (2 * h)
    return _ng_loop(f, x, h, diff)


def _ng_shift_back(f, x, h):
    def diff(f, x, j, h):
        x[j] += h
        fp = f(x)
        x[j] -= h          # back to x, not to x - h
        fm = f(x)
        return (fp - fm) / (2 * h)
    return _ng_loop(f, x, h, diff)


def _ng_all_at_once(f, x, h):
    fp, fm = f(x + h), f(x - h)
    return np.full(x.shape, (fp - fm) / (2 * h))


def _ng_copies(f, x, h):
    grad = np.zeros(x.shape)
    for j in np.ndindex(x.shape):
        e = np.zeros(x.shape)
        e[j] = h
        grad[j] = (f(x + e) - f(x - e)) / (2 * h)
    return grad


def _ng_rows(f, x, h):
    grad = np.zeros(x.shape)
    for i in range(x.shape[0]):
        old = x[i].copy()
        x[i] = old + h
        fp = f(x)
        x[i] = old - h
        fm = f(x)
        x[i] = old
        grad[i] = (fp - fm) / (2 * h)
    return grad


NUMERICAL_GRADIENT = Question(
    id="02.numerical_gradient", func="numerical_gradient", reference=gradcheck.numerical_gradient,
    make_cases=numgrad_cases, output_names="grad", rtol=1e-6, atol=1e-8, points=1.0,
    callbacks={"smooth": smooth},
    reference_modules=("course_lib.gradcheck",),
    mistakes=(
        Mistake("one_sided", "you use the one-sided difference (f(x+h) - f(x)) / h: its error is "
                "O(h); the centred (f(x+h) - f(x-h)) / (2h) is O(h^2)", _ng_one_sided),
        Mistake("over_h", "you divide the centred difference by h: the two points are 2h apart, "
                "divide by 2h", _ng_over_h),
        Mistake("not_restored", "you leave x perturbed: restore every entry to its old value "
                "after evaluating f at x+h and x-h", _ng_not_restored),
        Mistake("shift_back", "your second point is x, not x - h: after x[j] += h, subtract 2h "
                "(or set x[j] = old - h)", _ng_shift_back),
        Mistake("all_at_once", "you shift every entry of x at once: perturb one entry at a time, "
                "grad[j] needs f(x + h e_j)", _ng_all_at_once),
        Mistake("rows", "you perturb whole rows of a matrix: iterate over every entry "
                "(np.nditer with multi_index, or np.ndindex(x.shape))", _ng_rows),
        Mistake("copies", "you evaluate f at copies of x (x + h e_j): a gradient check passes "
                "f = lambda _: loss(W), which reads the weights themselves and ignores its "
                "argument, so it never sees a copy change. Perturb x in place (x[j] = old + h), "
                "call f(x), and restore x[j] = old", _ng_copies),
    ),
)


# ==================================================================================
# Tasks the lecture does not solve: the backward pass of an activation it does not
# derive (SiLU), a graph where one value feeds two branches (a residual block), and a
# backward pass with planted bugs to find with the gradient checker and fix.
# ==================================================================================


# ----------------------------------------------------------------------------------
# 02.silu_backward(dout, cache) -> dx, cache = x


def silu_cases(rng):
    def case(name, x):
        return Case(name, (rng.standard_normal(x.shape), x))
    return [
        case("a batch of activations", rng.standard_normal((int(rng.integers(3, 9)), int(rng.integers(2, 7)))) * 2),
        case("a vector", rng.standard_normal(int(rng.integers(5, 15))) * 3),
        case("large |x| (where the sigmoid saturates)", np.array([-30.0, -8.0, -2.5, 0.0, 2.5, 8.0, 30.0])),
        case("exact zeros and small values", np.array([[0.0, 1e-3, -1e-3], [0.5, -0.5, 0.0]])),
    ]


def _sig(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _silu_sigmoid_only(dout, x):
    return dout * _sig(x)


def _silu_sigmoid_derivative(dout, x):
    s = _sig(x)
    return dout * s * (1 - s)


def _silu_second_term_only(dout, x):
    s = _sig(x)
    return dout * x * s * (1 - s)


def _silu_x_times(dout, x):
    s = _sig(x)
    return dout * s * (1 + x * s)


def _silu_no_dout(dout, x):
    s = _sig(x)
    return s * (1 + x * (1 - s))


SILU_BACKWARD = Question(
    id="02.silu_backward", func="silu_backward", reference=NF.silu_backward,
    make_cases=silu_cases, output_names="dx", points=3.0,
    reference_modules=("course_lib.nn", "course_lib.nn.functional"),
    mistakes=(
        Mistake("sigmoid_only", "your derivative is sigmoid(x): silu(x) = x * sigmoid(x) is a product, "
                "so the product rule gives sigmoid(x) + x * sigmoid'(x)", _silu_sigmoid_only),
        Mistake("sigmoid_derivative", "your derivative is sigmoid's, s * (1 - s): silu multiplies the "
                "sigmoid by x, d/dx [x s(x)] = s + x s (1 - s)", _silu_sigmoid_derivative),
        Mistake("second_term_only", "you kept only x * sigmoid'(x): the product rule has two terms, "
                "sigmoid(x) * 1 + x * sigmoid'(x)", _silu_second_term_only),
        Mistake("wrong_sigmoid_derivative", "your sigmoid'(x) is s * s: it is s * (1 - s), so "
                "dx = dout * s * (1 + x * (1 - s))", _silu_x_times),
        Mistake("no_dout", "you return the local derivative alone: multiply it by dout (chain rule)",
                _silu_no_dout),
    ),
)


# ----------------------------------------------------------------------------------
# 02.residual_backward(dout, cache) -> (dx, dW, db) for out = x + relu(x @ W.T + b)


def residual_forward(x, W, b):
    """``out = x + relu(x @ W.T + b)``: a residual block; ``x`` feeds the skip and the layer."""
    z, _ = nn.linear_forward(x, W, b)
    return x + np.maximum(z, 0), (x, W, b)


def residual_backward(dout, cache):
    """Reference: the two paths' gradients add at the fan-out (``dx = dout + dx_branch``)."""
    x, W, b = cache
    z, lin_cache = nn.linear_forward(x, W, b)
    dz = nn.relu_backward(dout, z)
    dx_branch, dW, db = nn.linear_backward(dz, lin_cache)
    return dout + dx_branch, dW, db


def residual_cases(rng):
    def case(name, n, d):
        x = rng.standard_normal((n, d))
        W = rng.standard_normal((d, d)) / np.sqrt(d)
        b = rng.standard_normal(d) * 0.5
        return Case(name, (rng.standard_normal((n, d)), (x, W, b)))
    n, d = int(rng.integers(3, 10)), int(rng.integers(2, 6))
    return [
        case(f"a batch, n={n}, width {d}", n, d),
        case("a single row", 1, 4),
        case("width 1", int(rng.integers(3, 8)), 1),
        case("a wider block", int(rng.integers(3, 8)), 7),
    ]


def _res_parts(dout, cache, *, mask="z"):
    x, W, b = cache
    z = x @ W.T + b
    out = x + np.maximum(z, 0)
    m = {"z": z > 0, "out": out > 0, "x": x > 0, "none": np.ones_like(z, bool)}[mask]
    dz = dout * m
    return x, W, dz


def _res_no_skip(dout, cache):
    x, W, dz = _res_parts(dout, cache)
    return dz @ W, dz.T @ x, dz.sum(axis=0)


def _res_skip_only(dout, cache):
    x, W, dz = _res_parts(dout, cache)
    return dout.copy(), dz.T @ x, dz.sum(axis=0)


def _res_mask_out(dout, cache):
    x, W, dz = _res_parts(dout, cache, mask="out")
    return dout + dz @ W, dz.T @ x, dz.sum(axis=0)


def _res_no_relu(dout, cache):
    x, W, dz = _res_parts(dout, cache, mask="none")
    return dout + dz @ W, dz.T @ x, dz.sum(axis=0)


def _res_skip_masked(dout, cache):
    x, W, dz = _res_parts(dout, cache)
    return dz + dz @ W, dz.T @ x, dz.sum(axis=0)


RESIDUAL_BACKWARD = Question(
    id="02.residual_backward", func="residual_backward", reference=residual_backward,
    make_cases=residual_cases, output_names=("dx", "dW", "db"), points=3.0,
    reference_modules=("course_lib.nn", "course_lib.nn.functional", "course_lib.kernels.dense"),
    mistakes=(
        Mistake("no_skip", "your dx misses the skip connection: x reaches out along two paths, and "
                "the gradients of the two paths add, dx = dout + (dout * mask) @ W", _res_no_skip),
        Mistake("skip_only", "your dx is only the skip connection's dout: the layer's path adds "
                "(dout * (z > 0)) @ W", _res_skip_only),
        Mistake("mask_from_output", "your ReLU mask comes from the block's output: it comes from the "
                "ReLU's input z = x @ W.T + b", _res_mask_out),
        Mistake("no_relu", "you skipped the ReLU's backward: multiply dout by the mask (z > 0) before "
                "the linear layer's backward", _res_no_relu),
        Mistake("skip_masked", "you sent the skip connection through the ReLU mask: the identity path "
                "passes dout unchanged", _res_skip_masked),
    ),
)


# ----------------------------------------------------------------------------------
# 02.mlp_gradients(W1, b1, W2, b2, X, y) -> (loss, dW1, db1, dW2, db2): the planted bugs fixed


def mlp_gradients(W1, b1, W2, b2, X, y):
    """Reference: a one-hidden-layer tanh network with softmax cross-entropy, from the library."""
    z1, c1 = nn.linear_forward(X, W1, b1)
    h, ct = nn.tanh_forward(z1)
    logits, c2 = nn.linear_forward(h, W2, b2)
    loss, dlogits = losses.softmax_cross_entropy(logits, y)
    dh, dW2, db2 = nn.linear_backward(dlogits, c2)
    dz1 = nn.tanh_backward(dh, ct)
    _, dW1, db1 = nn.linear_backward(dz1, c1)
    return loss, dW1, db1, dW2, db2


def _mlp_generic(W1, b1, W2, b2, X, y, *, bug_tanh=False, bug_db2=False):
    n = X.shape[0]
    z1 = X @ W1.T + b1
    h = np.tanh(z1)
    logits = h @ W2.T + b2
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -float(np.mean(logp[np.arange(n), y]))
    dlogits = np.exp(logp)
    dlogits[np.arange(n), y] -= 1
    dlogits /= n
    dW2 = dlogits.T @ h
    db2 = dlogits.mean(axis=0) if bug_db2 else dlogits.sum(axis=0)
    dh = dlogits @ W2
    dz1 = dh * (1 - z1 ** 2) if bug_tanh else dh * (1 - h ** 2)
    return loss, dz1.T @ X, dz1.sum(axis=0), dW2, db2


def buggy_mlp_gradients(W1, b1, W2, b2, X, y):
    """The exercise's function as handed out: two planted bugs."""
    return _mlp_generic(W1, b1, W2, b2, X, y, bug_tanh=True, bug_db2=True)


def _mlp_only_db2_fixed(W1, b1, W2, b2, X, y):
    return _mlp_generic(W1, b1, W2, b2, X, y, bug_tanh=True)


def _mlp_only_tanh_fixed(W1, b1, W2, b2, X, y):
    return _mlp_generic(W1, b1, W2, b2, X, y, bug_db2=True)


def mlp_cases(rng):
    def case(name, n, d, hdim, C, scale=1.0):
        X = rng.standard_normal((n, d))
        W1 = rng.standard_normal((hdim, d)) * scale / np.sqrt(d)
        b1 = rng.standard_normal(hdim) * 0.5
        W2 = rng.standard_normal((C, hdim)) / np.sqrt(hdim)
        b2 = rng.standard_normal(C) * 0.5
        return Case(name, (W1, b1, W2, b2, X, rng.integers(0, C, n).astype(np.int64)))
    n = int(rng.integers(4, 16))
    return [
        case(f"a batch of {n}, 4 -> 5 -> 3", n, 4, 5, 3),
        case("a single example", 1, 3, 4, 2),
        case("saturated hidden units (large weights)", int(rng.integers(4, 10)), 3, 6, 4, scale=4.0),
        case("digits-sized input, 64 -> 8 -> 10", int(rng.integers(5, 12)), 64, 8, 10),
    ]


MLP_GRADIENTS = Question(
    id="02.mlp_gradients", func="mlp_gradients", reference=mlp_gradients,
    make_cases=mlp_cases, output_names=("loss", "dW1", "db1", "dW2", "db2"), points=3.0,
    reference_modules=("course_lib.nn", "course_lib.nn.functional", "course_lib.losses",
                       "course_lib.kernels.dense", "course_lib.kernels.activations",
                       "course_lib.kernels.softmax_ce"),
    mistakes=(
        Mistake("unchanged", "your mlp_gradients still has both planted bugs: run the gradient "
                "checker on each parameter, the ones whose relative error is far above 1e-7 are wrong",
                buggy_mlp_gradients),
        Mistake("tanh_bug_left", "you fixed db2 but not dW1 and db1: tanh's derivative is "
                "1 - tanh(z)**2 = 1 - h**2, a function of the layer's output h, not 1 - z**2",
                _mlp_only_db2_fixed),
        Mistake("db2_bug_left", "you fixed the tanh derivative but not db2: dlogits already carries "
                "the 1/n, so db2 is its sum over the batch, not its mean", _mlp_only_tanh_fixed),
    ),
)

QUESTIONS = (LINEAR_FORWARD, LINEAR_BACKWARD, RELU_BACKWARD, SOFTMAX_CE_2, NUMERICAL_GRADIENT,
             SILU_BACKWARD, RESIDUAL_BACKWARD, MLP_GRADIENTS)
