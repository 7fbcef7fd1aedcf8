"""Each numba optimizer kernel against its NumPy twin in course_lib.optim.functional.

Same inputs, several steps, float32 and float64, odd sizes, and non-contiguous arrays
(transposed, strided) for the parameter, the gradient and the state.  Both sides do the
same IEEE operations in the same order, so they must agree to the last bit or two.
"""

import itertools
import subprocess
import sys

import numpy as np
import pytest

from course_lib.kernels import optim as K
from course_lib.optim import functional as F

DTYPES = [np.float32, np.float64]
SHAPES = [(1,), (7,), (1001,), (3, 5, 7), (0,), ()]
LAYOUTS = ["C", "F", "strided"]


def make(shape, dtype, layout, rng, scale=1.0, positive=False):
    """A random array of ``shape`` in the given memory layout (values equal for all layouts)."""
    a = rng.standard_normal(shape) * scale
    if positive:
        a = np.abs(a) + 0.01 * scale   # bounded away from 0 (a variance estimate)
    a = a.astype(dtype)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        big = np.zeros(tuple(2 * n + 1 for n in a.shape), dtype=dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    return np.ascontiguousarray(a)


def twin_arrays(arrays):
    """Copies with the same values *and* the same layouts (so both sides see the same case)."""
    out = []
    for a in arrays:
        if a is None:
            out.append(None)
        elif a.flags.c_contiguous:
            out.append(a.copy(order="C"))
        elif a.flags.f_contiguous:
            out.append(a.copy(order="F"))
        else:
            b = make(a.shape, a.dtype, "strided", np.random.default_rng(0))
            b[...] = a
            out.append(b)
    return out


@pytest.fixture(autouse=True, params=["serial", "parallel"])
def path(request, monkeypatch):
    """Run every test twice: as is (these small arrays take the serial path) and with a
    grain size of 1, which sends every array through the prange kernels in chunks."""
    if request.param == "parallel":
        monkeypatch.setattr(K, "GRAIN_SIZE", 1)
    return request.param


def assert_same(a, b, what):
    assert a.shape == b.shape and a.dtype == b.dtype, what
    np.testing.assert_array_max_ulp(a, b, maxulp=2, dtype=a.dtype)


LAYOUT_CASES = list(itertools.product(DTYPES, LAYOUTS, LAYOUTS))


def _run_sgd(dtype, shape, p_layout, g_layout, kw, steps=3):
    rng = np.random.default_rng(1)
    p = make(shape, dtype, p_layout, rng)
    p2 = twin_arrays([p])[0]
    b1 = b2 = None
    for _ in range(steps):
        g = make(shape, dtype, g_layout, rng)
        b1 = F.sgd_step(p, g.copy(), b1, **kw)
        g_before = g.copy()
        b2 = K.sgd_step(p2, g, b2, **kw)
        np.testing.assert_array_equal(g, g_before)           # grad is read only
    assert_same(p, p2, "param")
    if kw["momentum"]:
        assert_same(b1, b2, "momentum_buffer")
    else:
        assert b1 is None and b2 is None


SGD_OPTIONS = [dict(lr=0.1, momentum=m, dampening=d, weight_decay=wd, nesterov=n, maximize=mx)
               for m, d, wd, n, mx in itertools.product([0.0, 0.9], [0.0, 0.25], [0.0, 0.01],
                                                        [False, True], [False, True])
               if not (n and (m == 0 or d != 0))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", SGD_OPTIONS, ids=lambda kw: "-".join(f"{k}{v}" for k, v in kw.items()))
def test_sgd_kernel(dtype, kw):
    for shape in SHAPES:
        _run_sgd(dtype, shape, "C", "C", kw)


@pytest.mark.parametrize("dtype,p_layout,g_layout", LAYOUT_CASES)
def test_sgd_kernel_layouts(dtype, p_layout, g_layout):
    _run_sgd(dtype, (6, 9), p_layout, g_layout,
             dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=True,
                  maximize=False))


def _run_adagrad(dtype, shape, p_layout, s_layout, kw, steps=3):
    rng = np.random.default_rng(2)
    p = make(shape, dtype, p_layout, rng)
    s = make(shape, dtype, s_layout, rng, positive=True)
    p2, s2 = twin_arrays([p, s])
    for step in range(1, steps + 1):
        g = make(shape, dtype, "C", rng)
        F.adagrad_step(p, g, s, step, **kw)
        K.adagrad_step(p2, g, s2, step, **kw)
    assert_same(p, p2, "param")
    assert_same(s, s2, "sum")


ADAGRAD_OPTIONS = [dict(lr=0.1, lr_decay=ld, weight_decay=wd, eps=1e-10, maximize=mx)
                   for ld, wd, mx in itertools.product([0.0, 0.05], [0.0, 0.01], [False, True])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", ADAGRAD_OPTIONS, ids=lambda kw: "-".join(f"{k}{v}" for k, v in kw.items()))
def test_adagrad_kernel(dtype, kw):
    for shape in SHAPES:
        _run_adagrad(dtype, shape, "C", "C", kw)


@pytest.mark.parametrize("dtype,p_layout,s_layout", LAYOUT_CASES)
def test_adagrad_kernel_layouts(dtype, p_layout, s_layout):
    _run_adagrad(dtype, (6, 9), p_layout, s_layout,
                 dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, eps=1e-10, maximize=True))


def _run_rmsprop(dtype, shape, p_layout, s_layout, kw, steps=3):
    rng = np.random.default_rng(3)
    p = make(shape, dtype, p_layout, rng)
    v = make(shape, dtype, s_layout, rng, positive=True)
    ga = make(shape, dtype, s_layout, rng, scale=0.01) if kw["centered"] else None
    b = make(shape, dtype, s_layout, rng) if kw["momentum"] > 0 else None
    p2, v2, ga2, b2 = twin_arrays([p, v, ga, b])
    for _ in range(steps):
        g = make(shape, dtype, "C", rng)
        F.rmsprop_step(p, g, v, ga, b, **kw)
        K.rmsprop_step(p2, g, v2, ga2, b2, **kw)
    for name, x, y in [("param", p, p2), ("square_avg", v, v2), ("grad_avg", ga, ga2),
                       ("momentum_buffer", b, b2)]:
        if x is not None:
            assert_same(x, y, name)


RMSPROP_OPTIONS = [dict(lr=0.01, alpha=a, eps=1e-8, weight_decay=wd, momentum=m, centered=c,
                        maximize=mx)
                   for a, wd, m, c, mx in itertools.product([0.99, 0.3], [0.0, 0.01], [0.0, 0.9],
                                                            [False, True], [False, True])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", RMSPROP_OPTIONS, ids=lambda kw: "-".join(f"{k}{v}" for k, v in kw.items()))
def test_rmsprop_kernel(dtype, kw):
    for shape in SHAPES:
        _run_rmsprop(dtype, shape, "C", "C", kw)


@pytest.mark.parametrize("dtype,p_layout,s_layout", LAYOUT_CASES)
def test_rmsprop_kernel_layouts(dtype, p_layout, s_layout):
    _run_rmsprop(dtype, (6, 9), p_layout, s_layout,
                 dict(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.01, momentum=0.9,
                      centered=True, maximize=False))


def _run_adam(dtype, shape, p_layout, s_layout, kw, steps=3):
    rng = np.random.default_rng(4)
    p = make(shape, dtype, p_layout, rng)
    m = make(shape, dtype, s_layout, rng, scale=0.1)
    v = make(shape, dtype, s_layout, rng, scale=0.1, positive=True)
    vmax = make(shape, dtype, s_layout, rng, scale=0.1, positive=True) if kw["amsgrad"] else None
    p2, m2, v2, vmax2 = twin_arrays([p, m, v, vmax])
    for step in range(1, steps + 1):
        g = make(shape, dtype, "C", rng)
        F.adam_step(p, g, m, v, vmax, step, **kw)
        K.adam_step(p2, g, m2, v2, vmax2, step, **kw)
    for name, x, y in [("param", p, p2), ("exp_avg", m, m2), ("exp_avg_sq", v, v2),
                       ("max_exp_avg_sq", vmax, vmax2)]:
        if x is not None:
            assert_same(x, y, name)


ADAM_OPTIONS = [dict(lr=0.01, beta1=b1, beta2=0.999, eps=1e-8, weight_decay=wd, amsgrad=ams,
                     maximize=mx, decoupled_weight_decay=dec)
                for b1, wd, ams, mx, dec in itertools.product([0.9, 0.3], [0.0, 0.01],
                                                              [False, True], [False, True],
                                                              [False, True])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", ADAM_OPTIONS, ids=lambda kw: "-".join(f"{k}{v}" for k, v in kw.items()))
def test_adam_kernel(dtype, kw):
    for shape in SHAPES:
        _run_adam(dtype, shape, "C", "C", kw)


@pytest.mark.parametrize("dtype,p_layout,s_layout", LAYOUT_CASES)
def test_adam_kernel_layouts(dtype, p_layout, s_layout):
    _run_adam(dtype, (6, 9), p_layout, s_layout,
              dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, amsgrad=True,
                   maximize=True, decoupled_weight_decay=False))


@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_twins(dtype):
    rng = np.random.default_rng(5)
    p = make((4, 3), dtype, "C", rng)
    m, v = np.zeros_like(p), np.zeros_like(p)
    p2, m2, v2 = p.copy(), m.copy(), v.copy()
    kw = dict(lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1, amsgrad=False,
              maximize=False)
    for step in (1, 2):
        g = make((4, 3), dtype, "C", rng)
        F.adamw_step(p, g, m, v, None, step, **kw)
        K.adamw_step(p2, g, m2, v2, None, step, **kw)
    assert_same(p, p2, "param")


def test_updates_are_in_place_even_for_non_contiguous_params():
    base = np.arange(40, dtype=np.float64).reshape(5, 8)
    view = base[:, ::3]                     # a strided view into base
    assert not view.flags.c_contiguous
    m, v = np.zeros(view.shape), np.zeros(view.shape)
    before = base.copy()
    K.adam_step(view, np.ones(view.shape), m, v, None, 1, lr=0.5, beta1=0.9, beta2=0.999,
                eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False)
    np.testing.assert_allclose(base[:, ::3], before[:, ::3] - 0.5)   # first Adam step = lr * sign
    mask = np.ones(base.shape, dtype=bool)
    mask[:, ::3] = False
    np.testing.assert_array_equal(base[mask], before[mask])        # nothing else touched


def test_first_sgd_step_copies_the_gradient_into_a_new_buffer():
    p, g = np.zeros(5), np.arange(5.0)
    buf = K.sgd_step(p, g, None, lr=1.0, momentum=0.9, dampening=0.5, weight_decay=0.0,
                     nesterov=False, maximize=False)
    np.testing.assert_array_equal(buf, g)      # dampening does not apply to the first step
    assert buf is not g


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_arrays_take_the_parallel_path(dtype, path):
    """Arrays above GRAIN_SIZE run in chunks on all threads; the result is unchanged."""
    n = 3 * K.GRAIN_SIZE + 7 if path == "serial" else 1001
    _run_adam(dtype, (n,), "C", "C", ADAM_OPTIONS[5])
    _run_sgd(dtype, (n,), "C", "C", SGD_OPTIONS[-1])
    _run_rmsprop(dtype, (n,), "C", "C", RMSPROP_OPTIONS[-1])
    _run_adagrad(dtype, (n,), "C", "C", ADAGRAD_OPTIONS[-1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_triad_kernel(dtype):
    rng = np.random.default_rng(6)
    n = 2 * K.GRAIN_SIZE + 1
    b, c = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    a = np.empty_like(b)
    K.triad(a, b, c, 3.0)
    np.testing.assert_array_equal(a, b + dtype(3.0) * c)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1001, 2 * K.GRAIN_SIZE + 1])     # serial and chunked paths
def test_axpy_kernel_updates_in_place(dtype, n):
    rng = np.random.default_rng(7)
    y, x = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    expected = y + dtype(0.5) * x
    y_in = y
    K.axpy(y, x, 0.5)
    assert y is y_in
    np.testing.assert_array_equal(y, expected)


def test_kernel_wrappers_reject_mismatched_arrays():
    p = np.zeros(4, dtype=np.float32)
    with pytest.raises(ValueError, match="grad must have dtype float32"):
        K.adagrad_step(p, np.zeros(4), np.zeros(4, np.float32), 1, lr=0.1, lr_decay=0.0,
                       weight_decay=0.0, eps=1e-10, maximize=False)
    with pytest.raises(ValueError, match="state_sum must have shape"):
        K.adagrad_step(p, np.zeros(4, np.float32), np.zeros(5, np.float32), 1, lr=0.1,
                       lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.sgd_step(np.zeros(3, np.float16), np.zeros(3, np.float16), None, lr=0.1,
                   momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                   maximize=False)


def test_launch_chunks(monkeypatch):
    """The parallel path splits the array into one chunk per thread, never below GRAIN_SIZE."""
    calls = []
    monkeypatch.setattr(K, "GRAIN_SIZE", 32768)
    monkeypatch.setattr(K.numba, "get_num_threads", lambda: 4)
    serial, parallel = (lambda *a: calls.append(("serial",))), (lambda n, *a: calls.append(("parallel", n)))
    K.launch(serial, parallel, K.GRAIN_SIZE - 1)
    K.launch(serial, parallel, 2 * K.GRAIN_SIZE + 5)
    K.launch(serial, parallel, 100 * K.GRAIN_SIZE)
    assert calls == [("serial",), ("parallel", 2), ("parallel", 4)]


def test_importing_course_lib_optim_does_not_import_numba():
    """Users who never pick backend="numba" do not pay numba's import or compile time."""
    code = ("import sys, course_lib.optim as o, numpy as np;"
            "opt = o.Adam([np.zeros(3)]); opt.step([np.ones(3)]);"
            "assert 'numba' not in sys.modules, 'numba was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
