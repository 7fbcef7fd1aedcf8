"""Parity with torch.optim: every optimizer, every option, both backends.

The problem: a small tanh network with softmax cross-entropy (non-quadratic, four
parameter arrays of different shapes, one of them stored non-contiguously).  At every step
the gradient is computed by torch autograd *at our current parameters* and the same
gradient is given to our optimizer and to torch's; so the two runs differ only by how the
optimizers round, and after 120 steps parameters and optimizer state must still agree to
~1e-12 (float64; measured: ~4e-16) and 1e-5 (float32; measured: ~1e-7).
"""

import numpy as np
import pytest
import torch

import course_lib.optim as ours

N_STEPS = 120


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These tensors are tiny: torch's second thread only adds waiting, and on a busy
    2-core machine a lot of it (autograd here measured 2-6 ms with 2 threads, 0.4 ms
    with 1).  Single-threaded results are the same numbers."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

# (optimizer name, keyword arguments shared by ours and torch's).  Together they switch on
# every option; lerp's second branch (weight >= 0.5) is hit by beta1=0.3 and alpha=0.4.
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2, maximize=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.05, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    ("Adagrad", dict(lr=0.1, weight_decay=1e-2, eps=1e-6, maximize=True)),
    ("RMSprop", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2, centered=True)),
    ("RMSprop", dict(lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-2)),
    ("RMSprop", dict(lr=1e-3, alpha=0.4, momentum=0.5, eps=1e-6, maximize=True)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("Adam", dict(lr=1e-2, betas=(0.3, 0.99), weight_decay=1e-2, eps=1e-6)),
    ("Adam", dict(lr=1e-2, amsgrad=True, weight_decay=1e-2, maximize=True)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=1e-2, betas=(0.5, 0.9), weight_decay=0.05, maximize=True)),
]


def _config_id(cfg):
    name, kw = cfg
    return name + "(" + ",".join(f"{k}={v}" for k, v in kw.items()) + ")"


def make_problem(dtype, seed=0):
    """Data and initial parameters of a 6-5-3 tanh network (+ a scalar temperature)."""
    rng = np.random.default_rng(seed)
    X = torch.from_numpy(rng.standard_normal((40, 6)).astype(dtype))
    y = torch.from_numpy(rng.integers(0, 3, size=40))
    params = [
        (rng.standard_normal((6, 5)) * 0.5).astype(dtype),
        np.zeros(5, dtype=dtype) + 0.1,
        # stored transposed (Fortran order): exercises the non-contiguous code paths
        np.asfortranarray((rng.standard_normal((5, 3)) * 0.5).astype(dtype)),
        np.array([1.0], dtype=dtype),
    ]
    assert not params[2].flags.c_contiguous

    def loss_and_grads(arrays, sign=1.0):
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
        W1, b1, W2, temp = ts
        logits = torch.tanh(X @ W1 + b1) @ W2 * temp
        loss = torch.nn.functional.cross_entropy(logits, y)
        (sign * loss).backward()
        return loss.item(), [t.grad.numpy().copy() for t in ts]

    return params, loss_and_grads


def run_pair(name, kwargs, backend, dtype, n_steps=N_STEPS):
    params, loss_and_grads = make_problem(dtype)
    torch_params = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = getattr(ours, name)(params, backend=backend, **kwargs)
    topt = getattr(torch.optim, name)(torch_params, **kwargs)
    # with maximize=True, climb -loss: the run still minimises the loss
    sign = -1.0 if kwargs.get("maximize") else 1.0
    arrays = [p for p in params]
    losses = []
    for _ in range(n_steps):
        loss, grads = loss_and_grads(arrays, sign)
        losses.append(loss)
        opt.step(grads)
        for tp, g in zip(torch_params, grads):
            tp.grad = torch.from_numpy(g.copy())
        topt.step()
    return opt, topt, torch_params, losses


def assert_close(ours_arr, torch_arr, tol, what):
    theirs = torch_arr.detach().numpy()
    assert ours_arr.shape == theirs.shape and ours_arr.dtype == theirs.dtype, what
    scale = max(float(np.max(np.abs(theirs))), 1e-30)
    np.testing.assert_allclose(ours_arr, theirs, rtol=tol, atol=tol * scale, err_msg=what)


def check_against_torch(opt, topt, torch_params, tol):
    for i, (p, tp) in enumerate(zip(opt.params, torch_params)):
        assert_close(p, tp, tol, f"params[{i}]")
        tstate, state = topt.state[tp], opt.state[i]
        # the same buffers under the same names as torch's optimizer state
        buffers = {k for k, v in state.items() if isinstance(v, np.ndarray)}
        assert buffers == {k for k, v in tstate.items() if k != "step"}, (buffers, set(tstate))
        for key in buffers:
            assert_close(state[key], tstate[key], tol, f"state[{i}][{key!r}]")
        if "step" in tstate:
            assert state["step"] == int(tstate["step"])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=_config_id)
def test_parity_float64(cfg, backend):
    name, kwargs = cfg
    opt, topt, torch_params, losses = run_pair(name, kwargs, backend, np.float64)
    # the run must actually train (else agreement would prove little)
    assert losses[-1] < losses[0] - 0.05
    assert all(np.all(np.isfinite(p)) for p in opt.params)
    check_against_torch(opt, topt, torch_params, tol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("cfg", CONFIGS[1::2], ids=_config_id)
def test_parity_float32(cfg, backend):
    # float32: PyTorch's vectorised CPU kernels fuse multiply-adds, we do not, so a few ulp
    # per step; over 120 steps that stays far below 1e-5 of each array's scale
    name, kwargs = cfg
    opt, topt, torch_params, _ = run_pair(name, kwargs, backend, np.float32)
    assert all(p.dtype == np.float32 for p in opt.params)
    check_against_torch(opt, topt, torch_params, tol=1e-5)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_defaults_match_torch(name):
    """Our constructors' defaults equal torch.optim's (read from its signatures)."""
    import inspect
    sig_t = inspect.signature(getattr(torch.optim, name).__init__).parameters
    sig_o = inspect.signature(getattr(ours, name).__init__).parameters
    shared = [k for k in sig_o if k not in ("self", "params", "backend")]
    for k in shared:
        assert k in sig_t, f"{name}: torch has no argument {k!r}"
        assert sig_o[k].default == sig_t[k].default, (k, sig_o[k].default, sig_t[k].default)
    # positional order of the shared positional arguments is torch's too
    pos = lambda sig: [k for k, v in sig.items() if v.kind == v.POSITIONAL_OR_KEYWORD and k in shared]
    assert pos(sig_o) == [k for k in pos(sig_t) if k in pos(sig_o)]
    # our optimizer with default arguments takes the same first steps as torch's
    params, loss_and_grads = make_problem(np.float64)
    tps = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt, topt = getattr(ours, name)(params), getattr(torch.optim, name)(tps)
    for _ in range(3):
        _, grads = loss_and_grads(params)
        opt.step(grads)
        for tp, g in zip(tps, grads):
            tp.grad = torch.from_numpy(g)
        topt.step()
    for p, tp in zip(params, tps):
        assert_close(p, tp, 1e-12, name)
