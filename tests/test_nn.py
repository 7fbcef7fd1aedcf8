"""course_lib.nn: layers, MLP, torch bridge, save/load, bad input, training.

Parity tests run in float64, where our NumPy and torch's autograd must agree to round-off.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import nn
from course_lib.data import load_digits_split
from course_lib.losses import softmax_cross_entropy
from course_lib.utils import TrainingDiverged

ARCHS = [([5, 3], "relu"), ([8, 6, 4], "relu"), ([7, 9, 5, 3], "relu"),
         ([8, 6, 4], "tanh"), ([7, 9, 5, 3], "tanh"), ([8, 6, 4], "sigmoid"),
         ([6, 16, 16, 8, 4], "sigmoid")]
# float64 round-off after a few layers of products of size ~10
TOL64 = dict(rtol=1e-12, atol=1e-13)


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


# ---------------------------------------------------------------- functional core vs autograd

@pytest.mark.parametrize("n,d,m", [(1, 1, 1), (4, 3, 5), (16, 64, 10)])
def test_linear_forward_backward_match_autograd(n, d, m):
    rng = np.random.default_rng(n + d + m)
    x, W, b = rng.standard_normal((n, d)), rng.standard_normal((m, d)), rng.standard_normal(m)
    G = rng.standard_normal((n, m))
    out, cache = nn.linear_forward(x, W, b)
    dx, dW, db = nn.linear_backward(G, cache)
    xt, Wt, bt = _t(x), _t(W), _t(b)
    ot = F.linear(xt, Wt, bt)
    ot.backward(torch.from_numpy(G))
    np.testing.assert_allclose(out, ot.detach().numpy(), **TOL64)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL64)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), **TOL64)
    np.testing.assert_allclose(db, bt.grad.numpy(), **TOL64)
    assert dx.shape == x.shape and dW.shape == W.shape and db.shape == b.shape


def test_linear_without_bias():
    rng = np.random.default_rng(0)
    x, W = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    out, cache = nn.linear_forward(x, W, None)
    np.testing.assert_array_equal(out, x @ W.T)
    dx, dW, db = nn.linear_backward(np.ones((3, 2)), cache)
    assert db is None and dW.shape == (2, 4)


@pytest.mark.parametrize("name,torch_fn", [("relu", torch.relu), ("tanh", torch.tanh),
                                           ("sigmoid", torch.sigmoid)])
@pytest.mark.parametrize("shape", [(5,), (4, 7), (2, 3, 4)])
def test_activation_forward_backward_match_autograd(name, torch_fn, shape):
    rng = np.random.default_rng(len(shape))
    x = 3 * rng.standard_normal(shape)
    x.flat[0] = 0.0  # the ReLU kink: torch's derivative there is 0
    G = rng.standard_normal(shape)
    fwd, bwd = getattr(nn, f"{name}_forward"), getattr(nn, f"{name}_backward")
    out, cache = fwd(x)
    dx = bwd(G, cache)
    xt = _t(x)
    ot = torch_fn(xt)
    ot.backward(torch.from_numpy(G))
    np.testing.assert_allclose(out, ot.detach().numpy(), **TOL64)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL64)


def test_relu_gradient_is_zero_at_zero_like_torch():
    x = np.array([-1.0, 0.0, 2.0])
    _, cache = nn.relu_forward(x)
    np.testing.assert_array_equal(nn.relu_backward(np.ones(3), cache), [0.0, 0.0, 1.0])


def test_sigmoid_does_not_overflow():
    with np.errstate(all="raise"):
        out, _ = nn.sigmoid_forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])


# ---------------------------------------------------------------- whole network vs torch

def _torch_loss_and_grads(seq, X, y):
    out = seq(torch.from_numpy(X))
    loss = F.cross_entropy(out, torch.from_numpy(y))
    seq.zero_grad()
    loss.backward()
    return out.detach().numpy(), loss.item(), [p.grad.numpy() for p in seq.parameters()]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("sizes,activation", ARCHS, ids=lambda a: str(a))
def test_mlp_matches_torch_float64(sizes, activation, backend):
    net = nn.MLP(sizes, activation, seed=1, dtype=np.float64, backend=backend)
    seq = net.to_torch()
    rng = np.random.default_rng(2)
    X = rng.standard_normal((13, sizes[0]))
    y = rng.integers(0, sizes[-1], 13)
    logits = net(X)
    loss, dlogits = softmax_cross_entropy(logits, y)
    dX = net.backward(dlogits)
    t_logits, t_loss, t_grads = _torch_loss_and_grads(seq, X, y)
    np.testing.assert_allclose(logits, t_logits, **TOL64)
    assert abs(loss - t_loss) <= 1e-13 * max(1.0, abs(t_loss))
    assert len(net.grads) == len(t_grads) == 2 * (len(sizes) - 1)
    for g, tg in zip(net.grads, t_grads):
        assert g.shape == tg.shape
        np.testing.assert_allclose(g, tg, **TOL64)
    Xt = torch.from_numpy(X).requires_grad_(True)
    F.cross_entropy(seq(Xt), torch.from_numpy(y)).backward()
    np.testing.assert_allclose(dX, Xt.grad.numpy(), **TOL64)


def test_mlp_float32_matches_torch_float32():
    net = nn.MLP([64, 32, 10], seed=0)
    assert net.dtype == np.float32
    seq = net.to_torch()
    assert seq[0].weight.dtype == torch.float32
    X = np.random.default_rng(0).standard_normal((20, 64)).astype(np.float32)
    y = np.arange(20) % 10
    logits = net(X)
    assert logits.dtype == np.float32
    _, dl = softmax_cross_entropy(logits, y)
    net.backward(dl)
    t_logits, _, t_grads = _torch_loss_and_grads(seq, X, y)
    np.testing.assert_allclose(logits, t_logits, rtol=1e-5, atol=1e-6)
    for g, tg in zip(net.grads, t_grads):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, tg, rtol=1e-4, atol=1e-6)


def test_param_names_match_torch_state_dict():
    net = nn.MLP([4, 5, 6, 3], "tanh")
    assert list(net.state_dict()) == list(net.to_torch().state_dict())
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias",
                                                       "4.weight", "4.bias"]
    assert repr(net.to_torch()).replace("Sequential", "MLP") == repr(net)


# ---------------------------------------------------------------- initialisation

def test_init_follows_torch_linear():
    layer = nn.Linear(64, 128, seed=0)
    assert layer.weight.shape == (128, 64) and layer.bias.shape == (128,)
    assert layer.weight.dtype == np.float32
    bound = 1 / 8
    t = torch.nn.Linear(64, 128)
    for ours, theirs in ((layer.weight, t.weight), (layer.bias, t.bias)):
        theirs = theirs.detach().numpy()
        assert np.abs(ours).max() <= bound and np.abs(theirs).max() <= bound
    # U(-a, a) has std a/sqrt(3): ours and torch's agree (8192 samples: within 3%)
    std = bound / np.sqrt(3)
    assert abs(layer.weight.std() / std - 1) < 0.03
    assert abs(t.weight.detach().numpy().std() / std - 1) < 0.03
    assert abs(layer.weight.mean()) < 0.03 * bound  # its std is 0.0064 * bound


def test_init_is_seeded():
    a, b, c = nn.MLP([5, 4, 3], seed=0), nn.MLP([5, 4, 3], seed=0), nn.MLP([5, 4, 3], seed=1)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))
    assert not np.array_equal(a.params[0], c.params[0])
    # one stream for all layers: two layers of the same shape do not start equal
    d = nn.MLP([4, 4, 4, 4], seed=0)
    assert not np.array_equal(d[0].weight, d[2].weight)
    # float64 model starts from the same numbers, rounded differently
    e = nn.MLP([5, 4, 3], seed=0, dtype=np.float64)
    np.testing.assert_allclose(e.params[0], a.params[0], rtol=1e-7)


# ---------------------------------------------------------------- params / grads live arrays

def test_params_and_grads_are_the_same_arrays_across_steps():
    d = load_digits_split()
    net = nn.MLP([64, 16, 10], seed=0)
    params, grads = net.params, net.grads
    ids = [id(p) for p in params] + [id(g) for g in grads]
    before = [p.copy() for p in params]
    nn.fit(net, d.X_train[:200], d.y_train[:200], lr=0.1, epochs=1, batch_size=50)
    assert [id(p) for p in net.params] + [id(g) for g in net.grads] == ids
    assert all(not np.array_equal(p, q) for p, q in zip(params, before))  # the held arrays moved
    # the arrays held by "an optimizer" are the ones forward reads
    X = d.X_test[:5]
    out1 = net(X)
    params[-1] += 1.0
    np.testing.assert_allclose(net(X), out1 + 1.0, rtol=1e-6)


def test_backward_writes_grads_in_place_and_overwrites():
    net = nn.MLP([3, 4, 2], dtype=np.float64)
    grads = net.grads
    X = np.ones((2, 3))
    net.backward(np.ones_like(net(X)))
    first = [g.copy() for g in grads]
    net.backward(np.ones_like(net(X)))  # second backward: same values, not doubled
    for g, f, h in zip(grads, first, net.grads):
        assert g is h
        np.testing.assert_array_equal(g, f)
    net.zero_grad()
    assert all(not g.any() for g in net.grads)


def test_load_state_dict_in_place_and_strict():
    a, b = nn.MLP([4, 3, 2], seed=0), nn.MLP([4, 3, 2], seed=1)
    held = a.params
    a.load_state_dict(b.state_dict())
    assert all(p is q for p, q in zip(held, a.params))
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))
    with pytest.raises(ValueError, match="missing keys"):
        a.load_state_dict({"0.weight": b[0].weight})
    with pytest.raises(ValueError, match=r"state\['0.weight'\] must have shape"):
        a.load_state_dict(dict(b.state_dict(), **{"0.weight": np.zeros((3, 5))}))
    # state_dict returns copies (unlike torch): a snapshot survives training
    snap = a.state_dict()
    a.params[0] += 1
    assert not np.array_equal(snap["0.weight"], a.params[0])


# ---------------------------------------------------------------- torch bridge

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes,activation", ARCHS, ids=lambda a: str(a))
def test_from_torch_to_torch_round_trip_exact(sizes, activation, dtype):
    net = nn.MLP(sizes, activation, seed=3, dtype=dtype)
    back = nn.MLP.from_torch(net.to_torch())
    assert isinstance(back, nn.MLP)
    assert back.sizes == net.sizes and back.activation == net.activation and back.dtype == net.dtype
    for p, q in zip(net.params, back.params):
        assert p.dtype == q.dtype and np.array_equal(p, q)


def test_from_torch_of_a_torch_built_model():
    torch.manual_seed(0)
    seq = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    net = nn.MLP.from_torch(seq)
    assert net.sizes == [6, 5, 2] and net.activation == "tanh" and net.dtype == np.float64
    X = np.random.default_rng(0).standard_normal((4, 6))
    np.testing.assert_allclose(net(X), seq(torch.from_numpy(X)).detach().numpy(), **TOL64)
    for (k, v), (k2, v2) in zip(seq.state_dict().items(), nn.Sequential.from_torch(seq).state_dict().items()):
        assert k == k2 and np.array_equal(v.numpy(), v2)


def test_from_torch_rejects_what_it_cannot_represent():
    with pytest.raises(ValueError, match=r"seq\[1\] is a Dropout; from_torch converts only .*course_lib.nn.Dropout exists"):
        nn.MLP.from_torch(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout()))
    with pytest.raises(ValueError, match="not an MLP"):
        nn.MLP.from_torch(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(),
                                              torch.nn.Linear(3, 3), torch.nn.Tanh(),
                                              torch.nn.Linear(3, 2)))
    with pytest.raises(TypeError, match="seq must be a torch.nn.Sequential"):
        nn.MLP.from_torch(torch.nn.Linear(3, 3))
    # a general Sequential takes any of our layers in any order
    seq = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.Sigmoid(), torch.nn.ReLU())
    ours = nn.Sequential.from_torch(seq)
    assert [type(m).__name__ for m in ours] == ["Linear", "Sigmoid", "ReLU"]
    assert ours[0].bias is None and len(ours.params) == 1


# ---------------------------------------------------------------- save / load

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_save_load_round_trip(tmp_path, dtype, activation):
    net = nn.MLP([6, 7, 5, 3], activation, seed=4, dtype=dtype)
    path = tmp_path / "net.npz"
    net.save(path)
    back = nn.load(path)
    assert type(back) is nn.MLP and back.sizes == [6, 7, 5, 3]
    assert back.activation == activation and back.dtype == np.dtype(dtype)
    for (k, p), (k2, q) in zip(net.named_parameters(), back.named_parameters()):
        assert k == k2 and p.dtype == q.dtype and np.array_equal(p, q)
    X = np.random.default_rng(0).standard_normal((3, 6))
    np.testing.assert_array_equal(net(X), back(X))
    assert nn.MLP.load(path, backend="numba").backend == "numba"


def test_save_load_general_sequential(tmp_path):
    seq = nn.Sequential(nn.Linear(4, 3, bias=False, dtype=np.float64), nn.Tanh(),
                        nn.Linear(3, 2, seed=1, dtype=np.float64))
    seq.save(tmp_path / "seq")  # numpy appends .npz
    back = nn.load(tmp_path / "seq.npz")
    assert type(back) is nn.Sequential and repr(back) == repr(seq)
    assert all(np.array_equal(p, q) for p, q in zip(seq.params, back.params))
    with pytest.raises(ValueError, match="holds a Sequential, not a MLP"):
        nn.MLP.load(tmp_path / "seq.npz")
    np.savez(tmp_path / "plain.npz", w=np.zeros(3))
    with pytest.raises(ValueError, match="__architecture__"):
        nn.load(tmp_path / "plain.npz")


def test_astype_and_copy_are_independent():
    net = nn.MLP([4, 3, 2], seed=0)
    net64 = net.astype(np.float64)
    assert net64.dtype == np.float64 and net.dtype == np.float32
    np.testing.assert_array_equal(net64.params[0], net.params[0].astype(np.float64))
    c = net.copy()
    c.params[0] += 1
    assert not np.array_equal(c.params[0], net.params[0])


# ---------------------------------------------------------------- bad input

def test_bad_input_errors_name_the_problem():
    net = nn.MLP([64, 8, 10])
    X = np.zeros((3, 64), dtype=np.float32)
    with pytest.raises(ValueError, match=r"X must have 64 columns.*\(3, 65\)"):
        net(np.zeros((3, 65)))
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        net(np.zeros(64))
    bad = X.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 non-finite"):
        net(bad)
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"X contains 1 non-finite"):
        net(bad)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        nn.MLP([64, 8, 10]).backward(np.zeros((3, 10)))
    logits = net(X)
    with pytest.raises(ValueError, match=r"dout must have shape \(3, 10\)"):
        net.backward(np.zeros((3, 9)))
    with pytest.raises(ValueError, match=r"dout must have shape \(3, 10\)"):
        net.backward(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="dout contains 1 non-finite"):
        net.backward(np.where(np.arange(30).reshape(3, 10) == 4, np.nan, 0.0))
    with pytest.raises(ValueError, match=r"y must be in \[0, 10\), got values in \[0, 10\]"):
        softmax_cross_entropy(logits, np.array([0, 3, 10]))
    with pytest.raises(ValueError, match=r"y must be in \[0, 10\), got values in \[-1, 3\]"):
        softmax_cross_entropy(logits, np.array([0, 3, -1]))
    with pytest.raises(ValueError, match=r"y must be in \[0, 10\)"):
        nn.fit(net, X, np.array([0, 3, 12]), lr=0.1, epochs=1)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="activation must be one of"):
        nn.MLP([3, 2], activation="gelu")
    with pytest.raises(ValueError, match="sizes must list at least"):
        nn.MLP([3])
    with pytest.raises(ValueError, match=r"sizes\[1\] must be finite and > 0"):
        nn.MLP([3, 0, 2])
    with pytest.raises(TypeError, match=r"sizes\[1\] must be an integer"):
        nn.MLP([3, 2.5, 2])
    with pytest.raises(TypeError, match="dtype must be np.float32 or np.float64"):
        nn.MLP([3, 2], dtype=np.int32)
    with pytest.raises(ValueError, match="backend must be one of"):
        nn.MLP([3, 2], backend="cuda")
    with pytest.raises(ValueError, match=r"W must have shape \(out, 3\)"):
        nn.linear_forward(np.zeros((2, 3)), np.zeros((4, 5)), np.zeros(4))
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        nn.linear_forward(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(3))
    _, cache = nn.linear_forward(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4\)"):
        nn.linear_backward(np.zeros((2, 3)), cache)
    _, cache = nn.relu_forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\)"):
        nn.relu_backward(np.zeros((3, 2)), cache)
    with pytest.raises(TypeError, match="layers must share one parameter dtype"):
        nn.Sequential(nn.Linear(3, 2, dtype=np.float32), nn.Linear(2, 2, dtype=np.float64))
    with pytest.raises(ValueError, match="lr must be given"):
        nn.fit(nn.MLP([3, 2]), np.zeros((4, 3)), np.zeros(4, int))


# ---------------------------------------------------------------- summary

def test_summary_counts_params_and_macs():
    net = nn.MLP([64, 128, 32, 10])
    s = nn.summary(net)
    assert s.total_params == net.num_params() == sum(p.numel() for p in net.to_torch().parameters())
    assert s.total_macs == 64 * 128 + 128 * 32 + 32 * 10
    assert [r.params for r in s.rows] == [64 * 128 + 128, 0, 128 * 32 + 32, 0, 32 * 10 + 10]
    assert s.total_nonzero == s.total_params
    net[0].weight[:, :32] = 0
    assert nn.summary(net).total_nonzero == s.total_params - 128 * 32
    assert "Linear(64, 128)" in str(s) and f"{s.total_params:,}" in str(s)


# ---------------------------------------------------------------- training

def test_fit_reaches_95_percent_on_digits():
    d = load_digits_split()
    net = nn.MLP([64, 128, 10], seed=0)
    hist = nn.fit(net, d.X_train, d.y_train, lr=0.1, epochs=20, batch_size=32, seed=0,
                  X_val=d.X_val, y_val=d.y_val)
    _, test_acc = nn.evaluate(net, d.X_test, d.y_test)
    assert test_acc >= 0.95
    assert len(hist.losses) == 20 * int(np.ceil(len(d.y_train) / 32))
    assert len(hist.val_acc) == 20 and hist.train_loss[-1] < hist.train_loss[0] / 5


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fit_loss_curve_matches_torch_sgd(activation):
    d = load_digits_split(dtype=np.float64)
    net = nn.MLP([64, 32, 10], activation, seed=0, dtype=np.float64)
    seq = net.to_torch()
    hist = nn.fit(net, d.X_train, d.y_train, lr=0.05, epochs=3, batch_size=64, seed=7)
    opt = torch.optim.SGD(seq.parameters(), lr=0.05)
    from course_lib.data import minibatches
    rng = np.random.default_rng(7)
    t_losses = []
    for _ in range(3):
        for Xb, yb in minibatches(d.X_train, d.y_train, 64, shuffle=True, seed=rng):
            opt.zero_grad()
            loss = F.cross_entropy(seq(torch.from_numpy(Xb)), torch.from_numpy(yb))
            loss.backward()
            opt.step()
            t_losses.append(loss.item())
    np.testing.assert_allclose(hist.losses, t_losses, rtol=1e-10)
    for p, (_, tp) in zip(net.params, seq.state_dict().items()):
        np.testing.assert_allclose(p, tp.numpy(), rtol=1e-9, atol=1e-12)


def test_fit_with_an_optimizer_object():
    class HalfSGD:  # anything with step(grads) holding model.params
        def __init__(self, params, lr):
            self.params, self.lr, self.calls = params, lr, 0

        def step(self, grads):
            self.calls += 1
            for p, g in zip(self.params, grads):
                p -= self.lr * g

    X = np.random.default_rng(0).standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    a, b = nn.MLP([3, 4, 2], dtype=np.float64), nn.MLP([3, 4, 2], dtype=np.float64)
    opt = HalfSGD(b.params, 0.2)
    ha = nn.fit(a, X, y, lr=0.2, epochs=2, batch_size=8)
    hb = nn.fit(b, X, y, optimizer=opt, epochs=2, batch_size=8)
    assert opt.calls == 10
    np.testing.assert_array_equal(ha.losses, hb.losses)


def test_fit_stops_on_divergence():
    d = load_digits_split()
    with pytest.raises(TrainingDiverged, match=r"lr=1000000.0"):
        nn.fit(nn.MLP([64, 32, 10]), d.X_train, d.y_train, lr=1e6, epochs=3)


def test_predict():
    net = nn.MLP([3, 2], dtype=np.float64)
    net[0].weight[:] = [[1, 0, 0], [0, 1, 0]]
    net[0].bias[:] = 0
    np.testing.assert_array_equal(net.predict(np.array([[2.0, 1, 0], [0, 3, 0]])), [0, 1])


def test_fit_divergence_names_the_learning_rate_in_force_when_it_happened():
    # a scheduler (or the learner) may change optimizer.lr during training
    from course_lib import optim
    from course_lib.data import load_digits_split
    from course_lib.utils import TrainingDiverged

    d = load_digits_split()
    model = nn.MLP([64, 16, 10], seed=0)
    opt = optim.SGD(model.params, lr=0.1)

    def blow_up(epoch, hist):
        opt.lr = 1e6

    with pytest.raises(TrainingDiverged, match=r"with lr=1000000\.0"):
        nn.fit(model, d.X_train, d.y_train, optimizer=opt, epochs=5, callback=blow_up)


def test_a_layer_used_twice_is_refused():
    # one forward cache and in-place grads per layer: reuse would give silently wrong gradients
    act = nn.ReLU()
    with pytest.raises(ValueError, match=r"layers\[3\] is the same object as layers\[1\]"):
        nn.Sequential(nn.Linear(4, 4), act, nn.Linear(4, 4), act, nn.Linear(4, 2))
