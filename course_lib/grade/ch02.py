"""Chapter 2 questions: a linear layer forward and backward, the ReLU backward, softmax
cross-entropy (as in chapter 1), and a numerical gradient.

Signatures are the references' in :mod:`course_lib.nn` / :mod:`course_lib.gradcheck`:

- ``linear_forward(x, W, b) -> (out, cache)``; only ``out`` is graded (the cache is yours)
- ``linear_backward(dout, cache) -> (dx, dW, db)`` with ``cache = (x, W, b)``, the cache
  of the reference ``linear_forward``
- ``relu_backward(dout, cache) -> dx`` with ``cache = x``, the ReLU's input
- ``softmax_cross_entropy(logits, y) -> (loss, dlogits)``
- ``numerical_gradient(f, x, h) -> grad``: centred differences, ``x`` perturbed in place and
  restored; ``f`` is a function the grader provides
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import gradcheck, nn
from .ch01 import SOFTMAX_CE
from .spec import Bad, Callback, Case, Mistake, Question

CHAPTER = "02_neural_network"


def first_of_pair(value):
    """``out`` of ``(out, cache)``."""
    if isinstance(value, tuple) and len(value) == 2:
        return value[0]
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


LINEAR_FORWARD = Question(
    id="02.linear_forward", func="linear_forward", reference=nn.linear_forward,
    make_cases=linear_forward_cases, output_names="out", project=first_of_pair,
    # regression.linear_forward is one output unit of it
    reference_modules=("course_lib.nn", "course_lib.kernels.dense", "course_lib.regression"),
    mistakes=(
        Mistake("no_transpose", "you multiply by W instead of W.T: W has one row per output "
                "unit, shape (out, in), so out = x @ W.T + b", _lf_no_transpose),
        Mistake("no_bias", "you forgot the bias: out = x @ W.T + b", _lf_no_bias),
        Mistake("transposed_out", "your out is transposed: it must have one row per sample, "
                "shape (n, out)", _lf_transposed_out),
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


def _lb_db_axis(dout, cache):
    x, W, b = cache
    return dout @ W, dout.T @ x, dout.sum(axis=1)


LINEAR_BACKWARD = Question(
    id="02.linear_backward", func="linear_backward", reference=nn.linear_backward,
    make_cases=linear_backward_cases, output_names=("dx", "dW", "db"),
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
    make_cases=relu_cases, output_names="dx",
    reference_modules=("course_lib.nn", "course_lib.kernels.activations"),
    mistakes=(
        Mistake("ge_zero", "your ReLU gradient passes through at x == 0: use x > 0 (the "
                "derivative at the kink is taken as 0, as in PyTorch)", _relu_ge),
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
    return [
        case("a vector, h=1e-5", (int(rng.integers(3, 7)),), 1e-5),
        case("a matrix, h=1e-5", (2, 3), 1e-5),
        case("a matrix, h=1e-4", (3, 2), 1e-4),
        case("a single entry", (1,), 1e-5),
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
    make_cases=numgrad_cases, output_names="grad", rtol=1e-6, atol=1e-8,
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
    ),
)

QUESTIONS = (LINEAR_FORWARD, LINEAR_BACKWARD, RELU_BACKWARD, SOFTMAX_CE_2, NUMERICAL_GRADIENT)
