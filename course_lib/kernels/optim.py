r"""Fused numba kernels for the optimizers, each the twin of a NumPy function.

An optimizer step is *memory bound*: Adam does about ten flops per parameter but has to
read ``param, grad, exp_avg, exp_avg_sq`` and write three of them back.  The NumPy
reference (:mod:`course_lib.optim.functional`) makes a separate pass over memory for every
operation and allocates temporaries; the kernels here make **one** pass, keep everything
for one element in registers, and split large arrays across cores with ``prange``.

Three layers:

* ``*_kernel(...)``: one plain loop over 1-D C-contiguous arrays, the line-by-line twin
  of the NumPy function.  Every scalar comes in precomputed (in double precision, in
  Python) and cast to the array's dtype, so float32 arrays are updated in float32
  arithmetic, as NumPy and PyTorch do; the kernels contain no float literals for the
  same reason (a ``1.0`` would promote float32 math to float64).
* ``*_kernel_parallel(n_chunks, ...)``: the same loop split into one slice per thread
  with ``prange``.  :func:`launch` uses it only for arrays of at least
  :data:`GRAIN_SIZE` elements: starting threads has a fixed cost, and on a busy machine a
  large one (see the comment at ``GRAIN_SIZE``).
* ``*_step(...)``: drop-in twins of ``course_lib.optim.functional.*_step`` (same
  signature, same in-place semantics, any shape).  They flatten the arrays; an array
  that is not C-contiguous is copied to a contiguous buffer and the result copied back.

========================  =========================================  =====================
numba kernel              NumPy twin (course_lib.optim.functional)   elements moved/param
========================  =========================================  =====================
``sgd_kernel``            ``sgd_step``                               3 (5 with momentum)
``adagrad_kernel``        ``adagrad_step``                           5
``rmsprop_kernel``        ``rmsprop_step``                           5 (+2 centered, +2 mom.)
``adam_kernel``           ``adam_step`` / ``adamw_step``             7 (+2 amsgrad)
``triad_kernel``          ``a[:] = b + s * c`` (STREAM triad)        3 (4 with write-allocate)
``axpy_kernel``           ``y += s * x`` (BLAS axpy, in place)       3
========================  =========================================  =====================

(elements read + written per parameter; times the itemsize for bytes.)

Options (maximize, weight decay, amsgrad, ...) are plain ``if`` tests on loop-invariant
booleans, for readability; LLVM still vectorises the loops (checked with ``kernel.inspect_asm()``:
packed ``vsqrtps``/``vdivps`` instructions).  ``error_model="numpy"`` lets a division by
zero produce ``inf`` like NumPy instead of raising, which also keeps a check out of the
loop.  No ``fastmath``: reordering the arithmetic would break agreement with PyTorch to
round-off (the float64 parity tests agree to ~1e-16 after 120 steps).

Compilation is lazy (first call: about 0.5 s per kernel and dtype, 1.5 s for a parallel
one) and cached on disk (``cache=True``), so importing this module is cheap.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

_SERIAL = dict(cache=True, error_model="numpy", nogil=True)
_PARALLEL = dict(cache=True, error_model="numpy", nogil=True, parallel=True)

# Below this many elements a kernel runs on the calling thread only.  Waking a second
# thread costs microseconds on an idle machine, but milliseconds when the other core is
# busy (the OS must find a time slice for it); PyTorch's at::parallel_for uses the same
# grain size, 32768.
GRAIN_SIZE = 32768


@njit(**_SERIAL)
def _chunk(c, n_chunks, n):
    """Bounds of the ``c``-th of ``n_chunks`` near-equal slices of ``range(n)``."""
    return c * n // n_chunks, (c + 1) * n // n_chunks


# --------------------------------------------------------------------------- raw kernels
# Each ``*_kernel(...)`` is one plain loop over 1-D C-contiguous arrays, and
# ``*_kernel_parallel(n_chunks, ...)`` runs it on ``n_chunks`` slices of them in parallel
# (one per thread) with ``prange``.  The loops run over ``range(param.shape[0])`` on
# purpose: with ``range(start, stop)`` numba cannot rule out negative indices, keeps a
# wrap-around test in the loop, and LLVM no longer vectorises it (3-4x slower).

@njit(**_SERIAL)
def sgd_kernel(param, grad, buf, neg_lr, momentum, one_minus_dampening,
               weight_decay, has_weight_decay, has_momentum, first_step, nesterov, maximize):
    """SGD on flat arrays; twin of :func:`course_lib.optim.functional.sgd_step`.

    param, grad, buf: (n,) float, C-contiguous; param and buf updated in place (buf is
    ignored unless ``has_momentum``; on ``first_step`` it is overwritten with the gradient).
    """
    for i in range(param.shape[0]):
        g = grad[i]
        if maximize:
            g = -g
        p = param[i]
        if has_weight_decay:
            g = g + weight_decay * p
        if has_momentum:
            if first_step:
                b = g
            else:
                b = buf[i] * momentum + one_minus_dampening * g
            buf[i] = b
            if nesterov:
                g = g + momentum * b
            else:
                g = b
        param[i] = p + neg_lr * g


@njit(**_PARALLEL)
def sgd_kernel_parallel(n_chunks, param, grad, buf, neg_lr, momentum, one_minus_dampening,
                        weight_decay, has_weight_decay, has_momentum, first_step, nesterov,
                        maximize):
    for c in prange(n_chunks):
        a, b = _chunk(c, n_chunks, param.shape[0])
        sgd_kernel(param[a:b], grad[a:b], buf[a:b], neg_lr, momentum, one_minus_dampening,
                   weight_decay, has_weight_decay, has_momentum, first_step, nesterov,
                   maximize)


@njit(**_SERIAL)
def adagrad_kernel(param, grad, state_sum, neg_clr, eps, weight_decay,
                   has_weight_decay, maximize):
    """Adagrad on flat arrays; twin of :func:`course_lib.optim.functional.adagrad_step`."""
    for i in range(param.shape[0]):
        g = grad[i]
        if maximize:
            g = -g
        p = param[i]
        if has_weight_decay:
            g = g + weight_decay * p
        s = state_sum[i] + g * g
        state_sum[i] = s
        param[i] = p + neg_clr * g / (np.sqrt(s) + eps)


@njit(**_PARALLEL)
def adagrad_kernel_parallel(n_chunks, param, grad, state_sum, neg_clr, eps, weight_decay,
                            has_weight_decay, maximize):
    for c in prange(n_chunks):
        a, b = _chunk(c, n_chunks, param.shape[0])
        adagrad_kernel(param[a:b], grad[a:b], state_sum[a:b], neg_clr, eps, weight_decay,
                       has_weight_decay, maximize)


@njit(**_SERIAL)
def rmsprop_kernel(param, grad, square_avg, grad_avg, buf, neg_lr, alpha,
                   one_minus_alpha, lerp_complement, eps, weight_decay, momentum,
                   has_weight_decay, centered, lerp_from_start, has_momentum, maximize):
    """RMSprop on flat arrays; twin of :func:`course_lib.optim.functional.rmsprop_step`.

    grad_avg is only touched if ``centered``, buf only if ``has_momentum`` (pass empty
    arrays otherwise).  The centered average is a lerp with weight ``one_minus_alpha``;
    ``lerp_complement = 1 - one_minus_alpha`` and ``lerp_from_start = one_minus_alpha < 0.5``
    come precomputed (see :func:`_lerp_scalars`).
    """
    for i in range(param.shape[0]):
        g = grad[i]
        if maximize:
            g = -g
        p = param[i]
        if has_weight_decay:
            g = g + weight_decay * p
        v = square_avg[i] * alpha + one_minus_alpha * g * g
        square_avg[i] = v
        if centered:
            ga = grad_avg[i]
            # torch's lerp, evaluated from the nearer end (see functional.lerp_)
            if lerp_from_start:
                ga = ga + one_minus_alpha * (g - ga)
            else:
                ga = g - (g - ga) * lerp_complement
            grad_avg[i] = ga
            avg = np.sqrt(v - ga * ga) + eps
        else:
            avg = np.sqrt(v) + eps
        if has_momentum:
            b = buf[i] * momentum + g / avg
            buf[i] = b
            param[i] = p + neg_lr * b
        else:
            param[i] = p + neg_lr * g / avg


@njit(**_PARALLEL)
def rmsprop_kernel_parallel(n_chunks, param, grad, square_avg, grad_avg, buf, neg_lr, alpha,
                            one_minus_alpha, lerp_complement, eps, weight_decay, momentum,
                            has_weight_decay, centered, lerp_from_start, has_momentum,
                            maximize):
    for c in prange(n_chunks):
        a, b = _chunk(c, n_chunks, param.shape[0])
        rmsprop_kernel(param[a:b], grad[a:b], square_avg[a:b], grad_avg[a:b], buf[a:b],
                       neg_lr, alpha,
                       one_minus_alpha, lerp_complement, eps, weight_decay, momentum,
                       has_weight_decay, centered, lerp_from_start, has_momentum, maximize)


@njit(**_SERIAL)
def adam_kernel(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, neg_step_size,
                one_minus_beta1, lerp_complement, beta2, one_minus_beta2, bias_correction2_sqrt,
                eps, weight_decay, decay_factor, lerp_from_start, coupled_decay,
                decoupled_decay, amsgrad, maximize):
    """Adam/AdamW on flat arrays; twin of :func:`course_lib.optim.functional.adam_step`.

    ``coupled_decay``: add ``weight_decay * param`` to the gradient (Adam);
    ``decoupled_decay``: multiply param by ``decay_factor = 1 - lr * weight_decay`` (AdamW).
    max_exp_avg_sq is only touched if ``amsgrad`` (pass an empty array otherwise).
    exp_avg is a lerp towards grad with weight ``one_minus_beta1`` (see :func:`_lerp_scalars`).
    """
    for i in range(param.shape[0]):
        g = grad[i]
        if maximize:
            g = -g
        p = param[i]
        if decoupled_decay:
            p = p * decay_factor
        if coupled_decay:
            g = g + weight_decay * p
        m = exp_avg[i]
        if lerp_from_start:                   # torch's lerp, from the nearer end
            m = m + one_minus_beta1 * (g - m)
        else:
            m = g - (g - m) * lerp_complement
        exp_avg[i] = m
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg_sq[i] = v
        if amsgrad:
            vmax = max_exp_avg_sq[i]
            if v > vmax:
                vmax = v
            max_exp_avg_sq[i] = vmax
            v = vmax
        param[i] = p + neg_step_size * m / (np.sqrt(v) / bias_correction2_sqrt + eps)


@njit(**_PARALLEL)
def adam_kernel_parallel(n_chunks, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq,
                         neg_step_size, one_minus_beta1, lerp_complement, beta2,
                         one_minus_beta2, bias_correction2_sqrt, eps, weight_decay,
                         decay_factor, lerp_from_start, coupled_decay, decoupled_decay,
                         amsgrad, maximize):
    for c in prange(n_chunks):
        a, b = _chunk(c, n_chunks, param.shape[0])
        adam_kernel(param[a:b], grad[a:b], exp_avg[a:b], exp_avg_sq[a:b], max_exp_avg_sq[a:b],
                    neg_step_size, one_minus_beta1, lerp_complement, beta2, one_minus_beta2,
                    bias_correction2_sqrt, eps, weight_decay, decay_factor, lerp_from_start,
                    coupled_decay, decoupled_decay, amsgrad, maximize)


@njit(**_SERIAL)
def triad_kernel(a, b, c, s):
    """STREAM triad ``a[i] = b[i] + s * c[i]``: the reference for achievable bandwidth."""
    for i in range(a.shape[0]):
        a[i] = b[i] + s * c[i]


@njit(**_PARALLEL)
def triad_kernel_parallel(n_chunks, a, b, c, s):
    for k in prange(n_chunks):
        lo, hi = _chunk(k, n_chunks, a.shape[0])
        triad_kernel(a[lo:hi], b[lo:hi], c[lo:hi], s)


@njit(**_SERIAL)
def axpy_kernel(y, x, s):
    """``y[i] += s * x[i]`` in place: read ``y`` and ``x``, write ``y`` back (3 elements).

    The bandwidth yardstick for the optimizers.  Like them it updates in place, so every
    byte it is charged for crosses the bus exactly once; the triad writes to an array it
    never reads, and the CPU first reads each of its cache lines (write-allocate): a fourth,
    uncounted transfer."""
    for i in range(y.shape[0]):
        y[i] += s * x[i]


@njit(**_PARALLEL)
def axpy_kernel_parallel(n_chunks, y, x, s):
    for k in prange(n_chunks):
        lo, hi = _chunk(k, n_chunks, y.shape[0])
        axpy_kernel(y[lo:hi], x[lo:hi], s)


def launch(kernel, kernel_parallel, n: int, *args) -> None:
    """Run ``kernel`` over ``n`` elements: serially below :data:`GRAIN_SIZE`, otherwise as
    ``kernel_parallel`` with one chunk per numba thread."""
    threads = numba.get_num_threads()
    if n < GRAIN_SIZE or threads == 1:
        kernel(*args)
    else:
        kernel_parallel(min(threads, n // GRAIN_SIZE), *args)


# ------------------------------------------------------------------ drop-in step twins

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class _Flat:
    """A flat, C-contiguous view of an array for the kernels, with write-back.

    ``_Flat(a).flat`` is ``a.reshape(-1)`` (a view) when ``a`` is C-contiguous; otherwise a
    contiguous copy, and :meth:`write_back` copies the kernel's result back into ``a``.
    """

    __slots__ = ("array", "flat", "copied")

    def __init__(self, array: np.ndarray):
        self.array = array
        self.copied = not array.flags.c_contiguous
        self.flat = (np.ascontiguousarray(array) if self.copied else array).reshape(-1)

    def write_back(self) -> None:
        if self.copied:
            self.array[...] = self.flat.reshape(self.array.shape)


def _flat_in(a: np.ndarray) -> np.ndarray:
    """Read-only operand: a flat contiguous view, or a contiguous copy."""
    return np.ascontiguousarray(a).reshape(-1)


def _check(param, grad, **state) -> np.dtype:
    dtype = param.dtype
    if dtype not in _FLOATS:
        raise TypeError(f"param must be float32 or float64 for the numba kernels, got {dtype}")
    for name, a in (("grad", grad), *state.items()):
        if a is None:
            continue
        if a.dtype != dtype:
            raise ValueError(f"{name} must have dtype {dtype} like param, got {a.dtype}")
        if a.shape != param.shape:
            raise ValueError(f"{name} must have shape {param.shape} like param, got {a.shape}")
    return dtype


def _lerp_scalars(weight: float):
    """``(weight, 1 - weight, weight < 0.5)`` in double precision, as ``functional.lerp_``
    computes them (``1 - (1 - beta1)`` is not always ``beta1`` in floating point)."""
    return weight, 1 - weight, weight < 0.5


def _empty(dtype) -> np.ndarray:
    # placeholder for a state array an option does not use: keeps one compiled signature
    return np.empty(0, dtype=dtype)


def sgd_step(param, grad, momentum_buffer, *, lr, momentum, dampening, weight_decay,
             nesterov, maximize):
    """numba twin of :func:`course_lib.optim.functional.sgd_step` (same signature/result)."""
    dt = _check(param, grad, momentum_buffer=momentum_buffer).type
    has_momentum = momentum != 0
    first = has_momentum and momentum_buffer is None
    if first:
        momentum_buffer = np.empty(param.shape, dtype=param.dtype)
    p, g = _Flat(param), _flat_in(grad)
    b = _Flat(momentum_buffer) if has_momentum else None
    launch(sgd_kernel, sgd_kernel_parallel, g.size,
           p.flat, g, b.flat if has_momentum else _empty(dt),
           dt(-lr), dt(momentum), dt(1 - dampening), dt(weight_decay),
           weight_decay != 0, has_momentum, first, bool(nesterov), bool(maximize))
    p.write_back()
    if has_momentum:
        b.write_back()
    return momentum_buffer if has_momentum else None


def adagrad_step(param, grad, state_sum, step, *, lr, lr_decay, weight_decay, eps, maximize):
    """numba twin of :func:`course_lib.optim.functional.adagrad_step`."""
    dt = _check(param, grad, state_sum=state_sum).type
    clr = lr / (1 + (step - 1) * lr_decay)
    p, g, s = _Flat(param), _flat_in(grad), _Flat(state_sum)
    launch(adagrad_kernel, adagrad_kernel_parallel, g.size,
           p.flat, g, s.flat,
           dt(-clr), dt(eps), dt(weight_decay),
           weight_decay != 0, bool(maximize))
    p.write_back()
    s.write_back()


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps,
                 weight_decay, momentum, centered, maximize):
    """numba twin of :func:`course_lib.optim.functional.rmsprop_step`."""
    has_momentum = momentum > 0
    dt = _check(param, grad, square_avg=square_avg,
                grad_avg=grad_avg if centered else None,
                momentum_buffer=momentum_buffer if has_momentum else None).type
    p, g, v = _Flat(param), _flat_in(grad), _Flat(square_avg)
    ga = _Flat(grad_avg) if centered else None
    b = _Flat(momentum_buffer) if has_momentum else None
    w, w_complement, from_start = _lerp_scalars(1 - alpha)
    launch(rmsprop_kernel, rmsprop_kernel_parallel, g.size,
           p.flat, g, v.flat, ga.flat if centered else _empty(dt),
           b.flat if has_momentum else _empty(dt),
           dt(-lr), dt(alpha), dt(w), dt(w_complement), dt(eps), dt(weight_decay), dt(momentum),
           weight_decay != 0, bool(centered), from_start, has_momentum, bool(maximize))
    for f in (p, v, ga, b):
        if f is not None:
            f.write_back()


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, *, lr, beta1, beta2,
              eps, weight_decay, amsgrad, maximize, decoupled_weight_decay=False):
    """numba twin of :func:`course_lib.optim.functional.adam_step`."""
    dt = _check(param, grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
                max_exp_avg_sq=max_exp_avg_sq if amsgrad else None).type
    # scalars in double precision, exactly as functional.adam_step computes them
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    decoupled = bool(decoupled_weight_decay) and weight_decay != 0
    coupled = (not decoupled_weight_decay) and weight_decay != 0
    w, w_complement, from_start = _lerp_scalars(1 - beta1)
    p, g, m, v = _Flat(param), _flat_in(grad), _Flat(exp_avg), _Flat(exp_avg_sq)
    vmax = _Flat(max_exp_avg_sq) if amsgrad else None
    launch(adam_kernel, adam_kernel_parallel, g.size,
           p.flat, g, m.flat, v.flat, vmax.flat if amsgrad else _empty(dt),
           dt(-step_size), dt(w), dt(w_complement), dt(beta2), dt(1 - beta2),
           dt(bias_correction2_sqrt), dt(eps), dt(weight_decay), dt(1 - lr * weight_decay),
           from_start, coupled, decoupled, bool(amsgrad), bool(maximize))
    for f in (p, m, v, vmax):
        if f is not None:
            f.write_back()


def adamw_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, *, lr, beta1, beta2,
               eps, weight_decay, amsgrad, maximize):
    """numba twin of :func:`course_lib.optim.functional.adamw_step`."""
    adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr=lr, beta1=beta1,
              beta2=beta2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
              maximize=maximize, decoupled_weight_decay=True)


def triad(a, b, c, s) -> None:
    """``a[:] = b + s * c`` for 1-D contiguous float arrays of one dtype (STREAM triad)."""
    launch(triad_kernel, triad_kernel_parallel, a.shape[0], a, b, c, a.dtype.type(s))


def axpy(y, x, s) -> None:
    """``y += s * x`` in place for 1-D contiguous float arrays of one dtype (BLAS axpy)."""
    launch(axpy_kernel, axpy_kernel_parallel, y.shape[0], y, x, y.dtype.type(s))
