"""Optimizer classes: argument checks, in-place semantics, state_dict, schedulers, backends."""

import numpy as np
import pytest

from course_lib.optim import (SGD, Adagrad, Adam, AdamW, CosineAnnealingLR, OneCycleLR,
                              RMSprop, StepLR, functional)

ALL = [SGD, Adagrad, RMSprop, Adam, AdamW]
BACKENDS = ["numpy", "numba"]
# settings that switch on every buffer, so state_dict round trips cover all of them
FULL = {
    SGD: dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    Adagrad: dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    RMSprop: dict(lr=1e-2, momentum=0.9, centered=True),
    Adam: dict(lr=1e-2, amsgrad=True, weight_decay=1e-3),
    AdamW: dict(lr=1e-2, amsgrad=True),
}


def params_and_grads(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal(3).astype(dtype)]

    def grads(step):
        r = np.random.default_rng(1000 + step)
        return [r.standard_normal(p.shape).astype(dtype) for p in params]
    return params, grads


# ------------------------------------------------------------------- argument checks

BAD_HYPERPARAMS = [
    (SGD, dict(lr=-0.1), ValueError, "lr"),
    (SGD, dict(lr=float("nan")), ValueError, "lr"),
    (SGD, dict(lr="0.1"), TypeError, "lr"),
    (SGD, dict(momentum=-0.5), ValueError, "momentum"),
    (SGD, dict(dampening=1.5), ValueError, "dampening"),
    (SGD, dict(weight_decay=-1e-4), ValueError, "weight_decay"),
    (SGD, dict(nesterov=True), ValueError, "nesterov"),
    (SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, "nesterov.*dampening"),
    (SGD, dict(nesterov=1, momentum=0.9), TypeError, "nesterov"),
    (SGD, dict(maximize="yes"), TypeError, "maximize"),
    (Adagrad, dict(lr=-1.0), ValueError, "lr"),
    (Adagrad, dict(lr_decay=-0.1), ValueError, "lr_decay"),
    (Adagrad, dict(initial_accumulator_value=-1.0), ValueError, "initial_accumulator_value"),
    (Adagrad, dict(eps=-1e-10), ValueError, "eps"),
    (Adagrad, dict(weight_decay=-1.0), ValueError, "weight_decay"),
    (RMSprop, dict(alpha=1.5), ValueError, "alpha"),
    (RMSprop, dict(alpha=-0.1), ValueError, "alpha"),
    (RMSprop, dict(eps=-1e-8), ValueError, "eps"),
    (RMSprop, dict(momentum=-0.9), ValueError, "momentum"),
    (RMSprop, dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (RMSprop, dict(centered=None), TypeError, "centered"),
    (Adam, dict(lr=-1e-3), ValueError, "lr"),
    (Adam, dict(betas=(1.0, 0.999)), ValueError, r"betas\[0\]"),
    (Adam, dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
    (Adam, dict(betas=(0.9, float("inf"))), ValueError, r"betas\[1\]"),
    (Adam, dict(betas=(0.9,)), ValueError, "betas"),
    (Adam, dict(betas=0.9), ValueError, "betas"),
    (Adam, dict(eps=-1e-8), ValueError, "eps"),
    (Adam, dict(weight_decay=-0.01), ValueError, "weight_decay"),
    (Adam, dict(amsgrad="no"), TypeError, "amsgrad"),
    (AdamW, dict(weight_decay=-0.01), ValueError, "weight_decay"),
    (AdamW, dict(betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
]


@pytest.mark.parametrize("cls,kwargs,exc,match", BAD_HYPERPARAMS,
                         ids=[f"{c.__name__}-{k}" for c, k, _, _ in BAD_HYPERPARAMS])
def test_bad_hyperparameters_are_rejected_by_name(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls([np.zeros(3)], **kwargs)


def test_error_message_shows_the_bad_value():
    with pytest.raises(ValueError, match=r"lr must be .*got -0\.1"):
        SGD([np.zeros(3)], lr=-0.1)
    with pytest.raises(ValueError, match=r"betas\[0\] must be in \[0\.0, 1\.0\), got 1\.2"):
        Adam([np.zeros(3)], betas=(1.2, 0.999))


@pytest.mark.parametrize("cls", ALL)
def test_zero_is_allowed_where_torch_allows_it(cls):
    kwargs = dict(lr=0.0, weight_decay=0.0)
    if cls in (Adam, AdamW):
        kwargs.update(betas=(0.0, 0.0), eps=0.0)
    cls([np.zeros(3)], **kwargs)


@pytest.mark.parametrize("params,exc,match", [
    (np.zeros(3), TypeError, "list of arrays"),
    ([], ValueError, "empty"),
    ([[1.0, 2.0]], TypeError, r"params\[0\] must be a NumPy array"),
    ([np.zeros(3, dtype=np.int64)], TypeError, r"params\[0\] must have dtype float32 or float64"),
    ([np.zeros(3, dtype=np.float16)], TypeError, "float16"),
    (5, TypeError, "params"),
])
def test_bad_params(params, exc, match):
    with pytest.raises(exc, match=match):
        Adam(params)


def test_read_only_and_duplicate_params():
    p = np.zeros(3)
    p.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        SGD([p])
    q = np.zeros(3)
    with pytest.raises(ValueError, match=r"params\[1\] shares memory with params\[0\]"):
        SGD([q, q])
    W = np.zeros(4)
    with pytest.raises(ValueError, match=r"params\[1\] shares memory with params\[0\]"):
        SGD([W, W[:2]])  # an overlapping view would get its entries updated twice
    SGD([W[:2], W[2:]])  # disjoint views of one buffer are fine
    SGD([W[::2], W[1::2]])  # interleaved but disjoint: fine too


def test_bad_backend():
    with pytest.raises(ValueError, match="backend must be one of.*'cuda'"):
        SGD([np.zeros(3)], backend="cuda")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("grads,exc,match", [
    ([np.zeros((4, 3))], ValueError, "got 1 grads for 2 params"),
    ([np.zeros((4, 3)), np.zeros(3), np.zeros(3)], ValueError, "got 3 grads for 2 params"),
    ([np.zeros((3, 4)), np.zeros(3)], ValueError, r"grads\[0\] must have shape \(4, 3\)"),
    ([np.zeros((4, 1)), np.zeros(3)], ValueError, r"grads\[0\] must have shape"),  # broadcastable
    ([np.zeros((4, 3)), np.zeros(())], ValueError, r"grads\[1\] must have shape \(3,\)"),
    ([np.zeros((4, 3)), np.zeros(3, np.float32)], ValueError, r"grads\[1\] must have dtype float64"),
    ([np.zeros((4, 3)), [0.0, 0.0, 0.0]], TypeError, r"grads\[1\] must be a NumPy array"),
    (np.zeros((4, 3)), TypeError, "grads must be a list"),
])
def test_bad_grads_are_rejected_and_nothing_changes(grads, exc, match, backend):
    params, _ = params_and_grads()
    before = [p.copy() for p in params]
    opt = Adam(params, backend=backend)
    with pytest.raises(exc, match=match):
        opt.step(grads)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p, b)
    assert all(not st for st in opt.state)  # no state was created either


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_finite_grads(backend):
    params, grads = params_and_grads()
    g = grads(0)
    g[1][2] = np.nan
    opt = SGD(params, lr=0.1, backend=backend)
    with pytest.raises(ValueError, match=r"grads\[1\] contains 1 non-finite"):
        opt.step(g, check_finite=True)
    # by default (like torch) no extra pass over the gradients: the NaN propagates
    opt.step(g)
    assert np.isnan(params[1][2]) and np.all(np.isfinite(params[0]))


# ----------------------------------------------------------------- in-place semantics

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", ALL)
def test_step_updates_the_callers_arrays_in_place(cls, backend):
    params, grads = params_and_grads()
    W, b = params
    ids = [id(W), id(b)]
    W0 = W.copy()
    opt = cls(params, backend=backend, **FULL[cls])
    assert opt.params[0] is W and opt.params[1] is b
    g = grads(0)
    g_copy = [x.copy() for x in g]
    opt.step(g)
    assert [id(p) for p in opt.params] == ids
    assert not np.array_equal(W, W0)                      # the caller's W changed
    for x, y in zip(g, g_copy):
        np.testing.assert_array_equal(x, y)               # grads are never modified


@pytest.mark.parametrize("backend", BACKENDS)
def test_views_into_a_larger_array_are_updated_in_place(backend):
    flat = np.zeros(20)
    W = flat[:12].reshape(4, 3)           # contiguous view
    b = flat[12:].reshape(2, 4)[:, ::2]   # strided view
    opt = SGD([W, b], lr=1.0, momentum=0.5, backend=backend)
    for _ in range(2):
        opt.step([np.ones((4, 3)), np.ones((2, 2))])
    # first step -1, second step -(0.5 * 1 + 1) = -1.5
    np.testing.assert_allclose(flat[:12], -2.5)
    np.testing.assert_allclose(flat[12:].reshape(2, 4)[:, ::2], -2.5)
    np.testing.assert_array_equal(flat[12:].reshape(2, 4)[:, 1::2], 0.0)   # untouched


def test_update_equals_the_functional_core():
    """The class adds only bookkeeping: its step is the functional step."""
    params, grads = params_and_grads()
    ref = [p.copy() for p in params]
    m, v = [np.zeros_like(p) for p in ref], [np.zeros_like(p) for p in ref]
    opt = Adam(params, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)
    for step in range(1, 4):
        g = grads(step)
        opt.step(g)
        for i in range(2):
            functional.adam_step(ref[i], g[i], m[i], v[i], None, step, lr=0.01, beta1=0.8,
                                 beta2=0.99, eps=1e-8, weight_decay=0.1, amsgrad=False,
                                 maximize=False)
    for p, r in zip(params, ref):
        np.testing.assert_array_equal(p, r)
    assert opt.state[0]["step"] == 3


def test_first_adam_step_moves_each_weight_by_lr():
    """A hand-checkable value: after bias correction, step 1 is -lr * sign(g) (eps aside)."""
    p = np.zeros(3)
    Adam([p], lr=0.1).step([np.array([2.0, -0.5, 1e-3])])
    np.testing.assert_allclose(p, [-0.1, 0.1, -0.1], rtol=1e-4)


@pytest.mark.parametrize("cls", ALL)
def test_backends_agree(cls):
    results = {}
    for backend in BACKENDS:
        for dtype in (np.float32, np.float64):
            params, grads = params_and_grads(dtype)
            opt = cls(params, backend=backend, **FULL[cls])
            for step in range(5):
                opt.step(grads(step))
            results[backend, dtype] = params
    for dtype in (np.float32, np.float64):
        for a, b in zip(results["numpy", dtype], results["numba", dtype]):
            assert a.dtype == dtype
            np.testing.assert_array_max_ulp(a, b, maxulp=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hyperparameters_are_live_attributes(backend):
    params, grads = params_and_grads()
    opt = SGD(params, lr=0.1, backend=backend)
    before = [p.copy() for p in params]
    opt.lr = 0.0
    opt.step(grads(0))
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p, b)
    assert opt.hyperparams == dict(lr=0.0, momentum=0, dampening=0, weight_decay=0,
                                   nesterov=False, maximize=False)
    assert "SGD(lr=0.0" in repr(opt)


def test_adamw_is_adam_with_decoupled_weight_decay():
    a, b = params_and_grads()[0], params_and_grads()[0]
    _, grads = params_and_grads()
    o1 = AdamW(a, lr=0.01)
    o2 = Adam(b, lr=0.01, weight_decay=1e-2, decoupled_weight_decay=True)
    assert o1.weight_decay == 1e-2
    for step in range(3):
        o1.step(grads(step))
        o2.step(grads(step))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_buffers_appear_when_an_option_is_switched_on_later(backend):
    params, grads = params_and_grads()
    opt = RMSprop(params, lr=0.01, backend=backend)
    opt.step(grads(0))
    assert set(opt.state[0]) == {"step", "square_avg"}
    opt.momentum, opt.centered = 0.9, True
    opt.step(grads(1))
    assert set(opt.state[0]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}
    adam = Adam([np.zeros(3)], backend=backend)
    adam.step([np.ones(3)])
    adam.amsgrad = True
    adam.step([np.ones(3)])
    assert "max_exp_avg_sq" in adam.state[0]


# --------------------------------------------------------------------- state_dict

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", ALL)
def test_state_dict_round_trip(cls, backend):
    """Save mid-training, restore into a fresh optimizer, continue both: identical."""
    params, grads = params_and_grads()
    opt = cls(params, backend=backend, **FULL[cls])
    for step in range(5):
        opt.step(grads(step))
    sd = opt.state_dict()
    twin_params = [p.copy() for p in params]
    twin = cls(twin_params, backend=backend)           # default hyperparameters
    twin.load_state_dict(sd)
    assert twin.hyperparams == opt.hyperparams
    for step in range(5, 10):
        opt.step(grads(step))
        twin.step(grads(step))
    for a, b in zip(params, twin_params):
        np.testing.assert_array_equal(a, b)
    for s1, s2 in zip(opt.state, twin.state):
        assert s1.keys() == s2.keys()
        for k in s1:
            np.testing.assert_array_equal(s1[k], s2[k])


def test_state_dict_is_a_deep_copy():
    params, grads = params_and_grads()
    opt = Adam(params)
    opt.step(grads(0))
    sd = opt.state_dict()
    saved = sd["state"][0]["exp_avg"].copy()
    opt.step(grads(1))                                   # training goes on ...
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], saved)  # ... the save does not
    assert sd["state"][0]["step"] == 1
    twin = Adam([p.copy() for p in params])
    twin.load_state_dict(sd)
    sd["state"][0]["exp_avg"][...] = 123.0               # editing the dict later ...
    assert not np.any(twin.state[0]["exp_avg"] == 123.0)  # ... does not reach the optimizer


def test_state_dict_across_backends():
    params, grads = params_and_grads()
    opt = Adam(params, lr=0.01)
    opt.step(grads(0))
    twin = Adam([p.copy() for p in params], backend="numba")
    twin.load_state_dict(opt.state_dict())
    opt.step(grads(1))
    twin.step(grads(1))
    for a, b in zip(opt.params, twin.params):
        np.testing.assert_array_max_ulp(a, b, maxulp=2)


def test_load_state_dict_rejects_mismatches():
    params, grads = params_and_grads()
    opt = Adam(params)
    opt.step(grads(0))
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="2 entries for 1 params"):
        Adam([np.zeros((4, 3))]).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"state_dict\['state'\]\[0\]\['exp_avg'\] has shape"):
        Adam([np.zeros((3, 4)), np.zeros(3)]).load_state_dict(sd)
    with pytest.raises(ValueError, match="expected"):
        SGD([p.copy() for p in params]).load_state_dict(sd)
    with pytest.raises(ValueError, match="state_dict must be a dict"):
        opt.load_state_dict({"state": []})
    bad = opt.state_dict()
    bad["hyperparams"]["lr"] = -1.0
    twin = Adam([p.copy() for p in params], lr=0.5)
    with pytest.raises(ValueError, match="lr"):
        twin.load_state_dict(bad)
    assert twin.lr == 0.5                         # a failed load leaves the optimizer as it was


# --------------------------------------------------------- schedulers drive opt.lr

@pytest.mark.parametrize("backend", BACKENDS)
def test_scheduler_changes_the_lr_the_next_step_uses(backend):
    p = np.zeros(1)
    opt = SGD([p], lr=1.0, backend=backend)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    assert opt.initial_lr == 1.0
    moves = []
    for _ in range(6):
        before = p[0]
        opt.step([np.ones(1)])
        moves.append(before - p[0])
        sched.step()
    np.testing.assert_allclose(moves, [1, 1, 0.5, 0.5, 0.25, 0.25])
    assert sched.get_last_lr() == [opt.lr] == [0.125]


def test_one_cycle_drives_momentum_and_beta1():
    sgd = SGD([np.zeros(2)], lr=0.1, momentum=0.9)
    s1 = OneCycleLR(sgd, max_lr=1.0, total_steps=10)
    assert sgd.momentum == 0.95 and sgd.lr == pytest.approx(1.0 / 25)
    adam = Adam([np.zeros(2)], betas=(0.9, 0.99))
    s2 = OneCycleLR(adam, max_lr=1.0, total_steps=10)
    assert adam.betas == (0.95, 0.99)
    for _ in range(3):
        sgd.step([np.ones(2)])
        adam.step([np.ones(2)])
        s1.step()
        s2.step()
    assert sgd.momentum < 0.95 and adam.betas[0] == sgd.momentum and adam.betas[1] == 0.99
    with pytest.raises(ValueError, match="cycle_momentum"):
        OneCycleLR(Adagrad([np.zeros(2)]), max_lr=1.0, total_steps=10)


def test_scheduler_state_survives_optimizer_checkpoint():
    opt = SGD([np.zeros(2)], lr=0.2)
    CosineAnnealingLR(opt, T_max=10)
    sd = opt.state_dict()
    assert sd["initial_lr"] == 0.2
    twin = SGD([np.zeros(2)], lr=0.2)
    twin.load_state_dict(sd)
    resumed = CosineAnnealingLR(twin, T_max=10, last_epoch=3)   # needs initial_lr: present
    assert resumed.base_lrs == [0.2]
    with pytest.raises(ValueError, match="initial_lr"):
        CosineAnnealingLR(SGD([np.zeros(2)], lr=0.2), T_max=10, last_epoch=3)


# ----------------------------------------------------------------------- benchmark

def test_benchmark_smoke():
    """The notebook's benchmark call runs, covers every variant and formats a table."""
    from course_lib.optim.bench import VARIANTS, benchmark_optimizers, format_table
    rows = benchmark_optimizers(sizes=[40_000], optimizers=["adam"], repeat=2, warmup=1)
    assert [(r.optimizer, r.variant) for r in rows] == (
        [("axpy", "numba"), ("triad", "numba")] + [("adam", v) for v in VARIANTS])   # yardsticks first
    assert rows[0].pct_axpy == pytest.approx(100.0)
    fused = [r for r in rows if r.variant == "torch fused"][0]
    assert fused.vs_fused == 1.0
    assert all(r.median_s > 0 and r.gb_per_s > 0 for r in rows)
    table = format_table(rows)
    assert "torch foreach" in table and "% axpy" in table and "40k" in table and "best" not in table
    with pytest.raises(ValueError, match="optimizers"):
        benchmark_optimizers(sizes=[10], optimizers=["lion"])


def test_cache_note_places_each_size_against_the_last_level_cache():
    from course_lib.optim.bench import BenchRow, cache_note
    rows = [BenchRow(name, n, "numba", 1e-3, 1.0, 100.0, 1.0)
            for n in (1_000_000, 10_000_000) for name in ("axpy", "sgd_momentum", "adam")]
    caches = {"L1d": 32 * 2**10, "L2": 2**20, "L3": 32 * 2**20}
    lines = cache_note(rows, caches=caches).splitlines()
    # 1M float32: axpy 2 arrays = 7.63 MiB ... Adam 4 arrays = 15.3 MiB, inside 32 MiB
    assert lines[0] == "1M float32: working sets 7.63 MiB-15.3 MiB fit in the 32 MiB L3"
    assert lines[1].startswith("10M float32: working sets 76.3 MiB-153 MiB exceed the 32 MiB L3")
    big = cache_note(rows, caches=dict(caches, L3=480 * 2**20)).splitlines()
    assert big[1].startswith("10M float32: working sets 76.3 MiB-153 MiB fit in the 480 MiB L3")
    assert cache_note(rows, caches={}) == "cache sizes unknown on this machine"


def test_cache_sizes_parse_sysfs(tmp_path):
    from course_lib.machine import cache_sizes
    for i, (level, kind, size) in enumerate([(1, "Data", "32K"), (1, "Instruction", "32K"),
                                             (2, "Unified", "1024K"), (3, "Unified", "32768K")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    assert cache_sizes(tmp_path) == {"L1d": 32 * 2**10, "L2": 2**20, "L3": 32 * 2**20}
    assert cache_sizes(tmp_path / "missing") == {}
