"""Parameter groups and gradient clipping, checked against torch.optim / torch.nn.utils.

Groups: every parameter of a small problem is updated by our optimizer and torch's, built
from the same list of group dicts, with the same gradients for 60 steps; parameters must
agree to float64 round-off.  A wrong grouping (override ignored, applied to the wrong
arrays, or leaking into the next group) moves some parameter by far more than 1e-12.
"""

import math

import numpy as np
import pytest
import torch

import course_lib.optim as ours

N_STEPS = 60


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (4,), (2, 4), (2,)]
    params = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(N_STEPS)]
    return params, grads


def _groups(params, spec):
    # spec: list of (indices, overrides)
    return [{"params": [params[i] for i in idx], **over} for idx, over in spec]


def _order(spec):
    # opt.params (and the grads step() expects) run through the groups in order, as in torch
    return [i for idx, _ in spec for i in idx]


GROUP_CONFIGS = [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1),
     [([0, 2], {}), ([1, 3], {"weight_decay": 0.0})]),            # no decay on biases
    ("SGD", dict(lr=0.05), [([0], {"lr": 0.2, "momentum": 0.5}), ([1, 2, 3], {"nesterov": False})]),
    ("Adam", dict(lr=1e-2, weight_decay=1e-2), [([0, 2], {}), ([1, 3], {"weight_decay": 0.0, "lr": 3e-3})]),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1), [([0, 2], {}), ([3, 1], {"weight_decay": 0.0})]),
    ("RMSprop", dict(lr=1e-2), [([2], {"alpha": 0.9, "momentum": 0.5}), ([0, 1, 3], {"centered": True})]),
    ("Adagrad", dict(lr=0.1), [([0, 1], {"initial_accumulator_value": 0.5}), ([2, 3], {"lr_decay": 0.01})]),
]


@pytest.mark.parametrize("name, kw, spec", GROUP_CONFIGS, ids=[c[0] + str(i) for i, c in enumerate(GROUP_CONFIGS)])
def test_param_groups_match_torch(name, kw, spec):
    params, grads = _problem()
    tparams = [torch.tensor(p.copy()) for p in params]
    opt = getattr(ours, name)(_groups(params, spec), **kw)
    topt = getattr(torch.optim, name)(_groups(tparams, spec), **kw)
    assert [id(p) for p in opt.params] == [id(params[i]) for i in _order(spec)]
    for gs in grads:
        opt.step([gs[i].copy() for i in _order(spec)])
        for t, g in zip(tparams, gs):
            t.grad = torch.from_numpy(g.copy())
        topt.step()
    worst = max(float(np.max(np.abs(p - t.numpy()))) for p, t in zip(params, tparams))
    assert worst < 1e-12


def test_groups_change_the_run():
    # the check above can fail: the same optimizer without the groups' overrides ends elsewhere
    params, grads = _problem()
    plain = [p.copy() for p in params]
    opt = ours.SGD(_groups(params, GROUP_CONFIGS[0][2]), lr=0.05, momentum=0.9, weight_decay=0.1)
    opt_plain = ours.SGD(plain, lr=0.05, momentum=0.9, weight_decay=0.1)
    order = _order(GROUP_CONFIGS[0][2])
    for gs in grads:
        opt.step([gs[i] for i in order])
        opt_plain.step(gs)
    assert np.array_equal(params[0], plain[0])              # the decayed group: identical
    assert np.max(np.abs(params[1] - plain[1])) > 1e-3       # the biases: not decayed


def test_group_errors_name_the_group():
    params, _ = _problem()
    with pytest.raises(ValueError, match=r"param_groups\[1\].*unknown.*'betas'"):
        ours.SGD([{"params": params[:2]}, {"params": params[2:], "betas": (0.9, 0.9)}], lr=0.1)
    with pytest.raises(ValueError, match=r"param_groups\[0\].*weight_decay"):
        ours.SGD([{"params": params, "weight_decay": -1.0}], lr=0.1)
    with pytest.raises(ValueError, match="without a 'params' key"):
        ours.SGD([{"lr": 0.1}], lr=0.1)
    with pytest.raises(ValueError, match="shares memory"):
        ours.SGD([{"params": [params[0]]}, {"params": [params[0]]}], lr=0.1)
    opt = ours.SGD([{"params": params[:2], "lr": 0.5}, {"params": params[2:]}], lr=0.1)
    with pytest.raises(ValueError, match=r"param_groups\[0\] overrides \['lr'\]"):
        ours.StepLR(opt, step_size=2)
    opt_wd = ours.SGD([{"params": params[:2], "weight_decay": 0.0}, {"params": params[2:]}], lr=0.1)
    ours.StepLR(opt_wd, step_size=2)             # a group without its own lr can be scheduled


def test_group_state_dict_round_trip():
    params, grads = _problem()
    spec = GROUP_CONFIGS[2][2]
    opt = ours.Adam(_groups(params, spec), lr=1e-2, weight_decay=1e-2)
    order = _order(spec)
    for gs in grads[:20]:
        opt.step([gs[i] for i in order])
    sd = opt.state_dict()
    copy_params = [p.copy() for p in params]
    opt2 = ours.Adam(_groups(copy_params, [(idx, {}) for idx, _ in spec]), lr=1e-2, weight_decay=1e-2)
    opt2.load_state_dict(sd)
    assert opt2.group_overrides() == opt.group_overrides()
    for gs in grads[20:]:
        opt.step([gs[i] for i in order])
        opt2.step([gs[i] for i in order])
    assert all(np.array_equal(a, b) for a, b in zip(params, copy_params))


# -- clip_grad_norm_ ---------------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(s).astype(dtype) for s in [(5, 3), (3,), (7,)]]
    tparams = [torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True) for g in grads]
    for t, g in zip(tparams, grads):
        t.grad = torch.from_numpy(g.copy())
    total = ours.clip_grad_norm_(grads, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type)
    tol = 1e-13 if dtype == np.float64 else 1e-6
    assert abs(total - float(ttotal)) <= tol * float(ttotal)
    for g, t in zip(grads, tparams):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=tol, atol=0)


def test_clip_grad_norm_semantics():
    g = [np.array([3.0, 0.0]), np.array([4.0])]               # total 2-norm 5
    total = ours.clip_grad_norm_(g, 1.0)
    assert total == 5.0
    assert abs(math.sqrt(sum(float(np.sum(x * x)) for x in g)) - 1.0) < 1e-6   # length capped
    assert g[0][0] / g[1][0] == 0.75                        # direction kept
    small = [np.array([0.3, 0.4])]
    assert ours.clip_grad_norm_(small, 1.0) == pytest.approx(0.5)
    assert np.array_equal(small[0], [0.3, 0.4])             # below max_norm: untouched
    with pytest.raises(ValueError, match="non-finite"):
        ours.clip_grad_norm_([np.array([np.inf, 1.0])], 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm must be >= 0, got -1"):
        ours.clip_grad_norm_(g, -1)
    with pytest.raises(TypeError, match=r"grads\[0\] must be a float NumPy array"):
        ours.clip_grad_norm_([np.array([1, 2])], 1.0)
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        ours.clip_grad_norm_(g, 1.0, norm_type=0)
