"""course_lib.prune vs torch.nn.utils.prune: the same masks, the same reparametrisation.

Continuous random tensors give unique magnitudes, so masks must be *equal*; tensors with ties
only fix the count (which tied entry goes is unspecified in torch too).
"""

import numpy as np
import pytest
import torch
from torch.nn.utils import prune as tprune

from course_lib import nn, prune


def _pair(shape=(7, 5), seed=0, dtype=np.float64, bias=True):
    """Our Linear and a torch Linear with the same weights."""
    ours = nn.Linear(shape[1], shape[0], bias=bias, seed=seed, dtype=dtype)
    return ours, ours.to_torch()


def _mask(m, name="weight"):
    return getattr(m, name + "_mask").detach().numpy() if torch.is_tensor(
        getattr(m, name + "_mask")) else getattr(m, name + "_mask")


# ------------------------------------------------------------------- single-call parity

@pytest.mark.parametrize("amount", [0.0, 0.1, 0.3, 0.5, 0.77, 1.0, 0, 1, 17, 35])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l1_unstructured_mask_equals_torch(amount, dtype):
    ours, theirs = _pair(dtype=dtype, seed=3)
    prune.l1_unstructured(ours, "weight", amount)
    tprune.l1_unstructured(theirs, "weight", amount)
    np.testing.assert_array_equal(ours.weight_mask, _mask(theirs))
    assert ours.weight_mask.dtype == np.dtype(dtype)          # the parameter's dtype, as torch
    np.testing.assert_array_equal(ours.weight, theirs.weight.detach().numpy())


@pytest.mark.parametrize("size,amount,expected", [(5, 0.5, 2), (7, 0.5, 4), (3, 0.5, 2),
                                                  (1, 0.5, 0), (9, 0.5, 4), (10, 0.25, 2)])
def test_amount_rounds_half_to_even_like_torch(size, amount, expected):
    # round(2.5) = 2, round(3.5) = 4: int(), ceil or "round half up" give other counts
    w = np.arange(1, size + 1, dtype=np.float64)[None, :]
    t = torch.from_numpy(w.copy())
    mask = prune.L1Unstructured(amount).compute_mask(w, np.ones_like(w))
    tmask = tprune.L1Unstructured(amount).compute_mask(t, torch.ones_like(t)).numpy()
    assert int((mask == 0).sum()) == int((tmask == 0).sum()) == expected
    np.testing.assert_array_equal(mask, tmask)


@pytest.mark.parametrize("n", [1, 2, 3, 0.5, np.inf, -np.inf, "fro", 0])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("amount", [0.3, 0.5, 2, 0])
def test_ln_structured_mask_equals_torch(n, dim, amount):
    ours, theirs = _pair(shape=(9, 6), seed=5)
    if n == 0:  # L0 norms tie (every slice has 6 or 9 non-zeros): prune some entries first
        w = ours.weight
        w[np.abs(w) < np.quantile(np.abs(w), 0.4)] = 0
        theirs = ours.to_torch()
    prune.ln_structured(ours, "weight", amount, n=n, dim=dim)
    tprune.ln_structured(theirs, "weight", amount, n=n, dim=dim)
    if n == 0:   # ties possible: compare the number of channels pruned
        assert (ours.weight_mask == 0).sum() == (_mask(theirs) == 0).sum()
    else:
        np.testing.assert_array_equal(ours.weight_mask, _mask(theirs))


@pytest.mark.parametrize("shape,dim", [((4, 5, 6), 0), ((4, 5, 6), 1), ((4, 5, 6), 2),
                                       ((3, 4, 2, 5), -1), ((3, 4, 2, 5), 2)])
def test_ln_structured_ranks_by_norm_over_every_other_dim(shape, dim):
    t = np.random.default_rng(1).standard_normal(shape)
    for n in (1, 2, np.inf):
        ours = prune.LnStructured(0.4, n, dim).compute_mask(t, np.ones_like(t))
        theirs = tprune.LnStructured(0.4, n, dim).compute_mask(torch.from_numpy(t),
                                                               torch.ones(shape, dtype=torch.float64))
        np.testing.assert_array_equal(ours, theirs.numpy())


def test_random_methods_prune_the_right_count_reproducibly():
    ours, _ = _pair(shape=(10, 8))
    prune.random_unstructured(ours, "weight", 0.3, seed=4)
    assert (ours.weight_mask == 0).sum() == 24
    again, _ = _pair(shape=(10, 8))
    prune.random_unstructured(again, "weight", 0.3, seed=4)
    np.testing.assert_array_equal(ours.weight_mask, again.weight_mask)
    prune.random_unstructured(ours, "weight", 0.5, seed=5)   # half of the 56 remaining
    assert (ours.weight_mask == 0).sum() == 24 + 28
    s, _ = _pair(shape=(10, 8))
    prune.random_structured(s, "weight", 0.3, dim=1, seed=0)
    assert (~np.any(s.weight_mask, axis=0)).sum() == 2 and np.all(s.weight_mask.sum(0) % 10 == 0)
    # different seeds give different masks (a constant mask would pass the counts)
    other, _ = _pair(shape=(10, 8))
    prune.random_unstructured(other, "weight", 0.3, seed=99)
    assert not np.array_equal(other.weight_mask, again.weight_mask)


# ------------------------------------------------------------------- ties

def test_ties_prune_exactly_torchs_count():
    w = np.repeat(np.array([0.5, -0.5, 1.0, 2.0]), 6).reshape(4, 6)  # 12 tied at |w| = 0.5
    for amount in (0.25, 0.3, 7, 12, 13):
        ours = prune.L1Unstructured(amount).compute_mask(w, np.ones_like(w))
        theirs = tprune.L1Unstructured(amount).compute_mask(torch.from_numpy(w),
                                                            torch.ones(4, 6, dtype=torch.float64))
        assert (ours == 0).sum() == (theirs == 0).sum().item()
        # all pruned entries are among the smallest: a threshold rule (|w| <= t) would prune 12
        assert np.all(np.abs(w[ours == 0]) <= np.abs(w[ours == 1]).min())


def test_threshold_rule_would_prune_too_many_with_ties():
    w = np.zeros((3, 4)); w[0] = 1.0
    mask = prune.L1Unstructured(2).compute_mask(w, np.ones_like(w))
    assert (mask == 0).sum() == 2     # not the 8 zeros tied at the threshold


# ------------------------------------------------------------------- repeated calls compose

@pytest.mark.parametrize("first,second", [
    (("l1", 0.3), ("l1", 0.5)),
    (("l1", 0.5), ("l1", 10)),
    (("l1", 0.4), ("ln", 0.5, 2, 0)),
    (("ln", 0.3, 1, 1), ("l1", 0.5)),
    (("ln", 0.3, 2, 0), ("ln", 0.5, 2, 0)),
    (("ln", 2, np.inf, 1), ("ln", 0.5, 1, 0)),
])
def test_repeated_pruning_composes_like_pruning_container(first, second):
    ours, theirs = _pair(shape=(8, 10), seed=11)

    def do(lib, m, spec):
        if spec[0] == "l1":
            lib.l1_unstructured(m, "weight", spec[1])
        else:
            lib.ln_structured(m, "weight", spec[1], n=spec[2], dim=spec[3])

    for spec in (first, second):
        do(prune, ours, spec)
        do(tprune, theirs, spec)
        np.testing.assert_array_equal(ours.weight_mask, _mask(theirs))
    assert isinstance(ours._forward_pre_hooks[max(ours._forward_pre_hooks)], prune.PruningContainer)
    assert len(ours._forward_pre_hooks) == 1


def test_second_float_amount_is_a_fraction_of_the_remaining():
    ours, _ = _pair(shape=(10, 10))
    prune.l1_unstructured(ours, "weight", 0.5)
    prune.l1_unstructured(ours, "weight", 0.5)
    assert (ours.weight_mask == 0).sum() == 75      # 50 + 25, not 50 again, not 100


def test_int_amount_beyond_the_remaining_raises():
    ours, _ = _pair(shape=(4, 5))
    prune.l1_unstructured(ours, "weight", 15)
    with pytest.raises(ValueError, match="amount"):
        prune.l1_unstructured(ours, "weight", 6)    # only 5 remain
    assert (ours.weight_mask == 0).sum() == 15      # unchanged after the failure


# ------------------------------------------------------------------- global

@pytest.mark.parametrize("amount", [0.2, 0.6, 0.9, 100])
def test_global_unstructured_equals_torch(amount):
    net = nn.MLP([12, 10, 8, 4], seed=2, dtype=np.float64)
    tnet = net.to_torch()
    prune.l1_unstructured(net[2], "weight", 0.3)          # one layer already pruned
    tprune.l1_unstructured(tnet[2], "weight", 0.3)
    pairs = [(net[i], "weight") for i in (0, 2, 4)]
    prune.global_unstructured(pairs, prune.L1Unstructured, amount=amount)
    tprune.global_unstructured([(tnet[i], "weight") for i in (0, 2, 4)],
                               tprune.L1Unstructured, amount=amount)
    for i in (0, 2, 4):
        np.testing.assert_array_equal(net[i].weight_mask, _mask(tnet[i]))
    # as in torch, global pruning ends in custom_from_mask: a CustomFromMask hook (in a container
    # where the layer was pruned before)
    hook = list(net[0]._forward_pre_hooks.values())[0]
    assert isinstance(hook, prune.CustomFromMask)
    assert isinstance(list(net[2]._forward_pre_hooks.values())[0], prune.PruningContainer)
    # layers end with different sparsities (a per-layer rule would give the same fraction)
    sp = [float((net[i].weight_mask == 0).mean()) for i in (0, 2, 4)]
    assert max(sp) - min(sp) > 0.01


def test_global_unstructured_rejects_structured_methods_and_bad_pairs():
    net = nn.MLP([4, 3, 2])
    with pytest.raises(TypeError, match="unstructured"):
        prune.global_unstructured([(net[0], "weight")], prune.LnStructured, amount=1, n=2, dim=0)
    with pytest.raises(TypeError, match="pruning_method"):
        prune.global_unstructured([(net[0], "weight")], prune.l1_unstructured, amount=1)
    with pytest.raises(ValueError, match="nope"):
        prune.global_unstructured([(net[0], "nope")], prune.L1Unstructured, amount=1)


def test_importance_scores_decide_instead_of_magnitudes():
    ours, theirs = _pair(shape=(5, 4), seed=1)
    scores = np.random.default_rng(0).standard_normal((5, 4))
    prune.l1_unstructured(ours, "weight", 0.5, importance_scores=scores)
    tprune.l1_unstructured(theirs, "weight", 0.5, importance_scores=torch.from_numpy(scores))
    np.testing.assert_array_equal(ours.weight_mask, _mask(theirs))


def test_custom_from_mask_and_identity():
    ours, theirs = _pair(shape=(3, 4))
    m = np.array([[1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 0]], dtype=np.float64)
    prune.custom_from_mask(ours, "weight", m)
    tprune.custom_from_mask(theirs, "weight", torch.from_numpy(m))
    np.testing.assert_array_equal(ours.weight_mask, _mask(theirs))
    prune.identity(ours, "bias")
    np.testing.assert_array_equal(ours.bias_mask, np.ones(3))
    assert prune.is_pruned(ours)


# ------------------------------------------------------------------- the reparametrisation

def test_named_parameters_and_state_dict_order_match_torch():
    net = nn.MLP([6, 5, 3], seed=0, dtype=np.float64)
    tnet = net.to_torch()
    prune.l1_unstructured(net[0], "weight", 0.4)
    tprune.l1_unstructured(tnet[0], "weight", 0.4)
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in tnet.named_parameters()]
    assert list(net.state_dict()) == list(tnet.state_dict())
    assert [n for n, _ in net.named_buffers()] == [n for n, _ in tnet.named_buffers()]
    prune.remove(net[0], "weight")
    tprune.remove(tnet[0], "weight")
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in tnet.named_parameters()]
    assert not prune.is_pruned(net)
    np.testing.assert_array_equal(net[0].weight, tnet[0].weight.detach().numpy())


def test_weight_orig_is_the_same_array_and_weight_is_recomputed_each_forward():
    layer = nn.Linear(4, 3, dtype=np.float64)
    W = layer.weight
    prune.l1_unstructured(layer, "weight", 0.5)
    assert layer.weight_orig is W
    before = layer.weight.copy()
    layer.weight_orig += 1.0                  # as an optimizer step would
    assert np.array_equal(layer.weight, before)   # stale, as torch's
    layer(np.ones((2, 4)))
    np.testing.assert_array_equal(layer.weight, W * layer.weight_mask)


def test_torch_weight_is_stale_too_until_the_next_forward():
    # the behaviour we copy: torch's pre-hook runs at forward, not at optimizer.step()
    t = torch.nn.Linear(4, 3)
    tprune.l1_unstructured(t, "weight", 0.5)
    before = t.weight.detach().clone()
    with torch.no_grad():
        t.weight_orig += 1.0
    assert torch.equal(t.weight, before)
    t(torch.ones(2, 4))
    assert not torch.equal(t.weight, before)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_gradient_reaching_weight_orig_is_masked_and_matches_autograd(backend):
    net = nn.MLP([6, 7, 4], seed=3, dtype=np.float64, backend=backend)
    tnet = net.to_torch()
    prune.l1_unstructured(net[0], "weight", 0.5)
    prune.l1_unstructured(net[2], "bias", 0.5)
    tprune.l1_unstructured(tnet[0], "weight", 0.5)
    tprune.l1_unstructured(tnet[2], "bias", 0.5)
    X = np.random.default_rng(0).standard_normal((5, 6))
    G = np.random.default_rng(1).standard_normal((5, 4))
    out = net(X)
    net.backward(G)
    tout = tnet(torch.from_numpy(X))
    tout.backward(torch.from_numpy(G))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-13)
    tgrads = {n: p.grad.numpy() for n, p in tnet.named_parameters()}
    for (name, g) in net.named_grads():
        np.testing.assert_allclose(g, tgrads[name], rtol=1e-12, atol=1e-13, err_msg=name)
    assert np.all(net[0].grad_weight[net[0].weight_mask == 0] == 0)


@pytest.mark.parametrize("opt", ["sgd_momentum", "adam"])
def test_training_a_pruned_model_matches_torch_and_keeps_zeros(opt):
    from course_lib import optim
    from course_lib.data import load_digits_split, minibatches
    from course_lib.losses import softmax_cross_entropy

    d = load_digits_split(seed=0, dtype=np.float64)
    Xtr, ytr = d.X_train[:256], d.y_train
    net = nn.MLP([64, 32, 10], seed=1, dtype=np.float64)
    tnet = net.to_torch()
    prune.global_unstructured([(net[0], "weight"), (net[2], "weight")], prune.L1Unstructured, amount=0.8)
    tprune.global_unstructured([(tnet[0], "weight"), (tnet[2], "weight")], tprune.L1Unstructured,
                               amount=0.8)
    if opt == "adam":
        o, to = optim.Adam(net.params, lr=1e-2), torch.optim.Adam(tnet.parameters(), lr=1e-2)
    else:
        o = optim.SGD(net.params, lr=0.1, momentum=0.9)
        to = torch.optim.SGD(tnet.parameters(), lr=0.1, momentum=0.9)
    for Xb, yb in minibatches(Xtr, ytr[:256], 32, seed=0):
        loss, d = softmax_cross_entropy(net(Xb), yb)
        net.backward(d)
        o.step(net.grads)
        to.zero_grad()
        tl = torch.nn.functional.cross_entropy(tnet(torch.from_numpy(Xb)), torch.from_numpy(yb))
        tl.backward()
        to.step()
    for (n, p), (tn, tp) in zip(net.named_parameters(), tnet.named_parameters()):
        assert n == tn
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-10, atol=1e-12)
    net(Xtr[:2])
    for i in (0, 2):
        assert np.all(net[i].weight[net[i].weight_mask == 0] == 0)
        # the pruned entries of weight_orig did not move: their gradient is exactly 0
        assert prune.sparsity(net) == pytest.approx(0.8, abs=1e-3)


def test_zeroing_after_the_step_is_not_masking_with_momentum():
    # the pitfall the design avoids: zero W after each step, momentum brings entries back
    from course_lib import optim
    W = np.array([[1.0, 0.01]])
    buf_opt = optim.SGD([W], lr=0.1, momentum=0.9)
    buf_opt.step([np.array([[0.0, 1.0]])])      # one step before pruning fills the buffer
    W[0, 1] = 0.0                                 # "prune" by zeroing
    buf_opt.step([np.array([[0.0, 0.0]])])       # no gradient at all ...
    assert W[0, 1] != 0.0                         # ... and the weight is back


# ------------------------------------------------------------------- save / load / bridge / summary

def test_save_load_and_torch_round_trip_keep_masks(tmp_path):
    net = nn.MLP([8, 6, 3], seed=0, dtype=np.float32)
    prune.ln_structured(net[0], "weight", 0.5, n=2, dim=0)
    prune.l1_unstructured(net[2], "weight", 0.3)
    X = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    ref = net(X)
    net.save(tmp_path / "m.npz")
    back = nn.load(tmp_path / "m.npz")
    assert list(back.state_dict()) == list(net.state_dict())
    np.testing.assert_array_equal(back(X), ref)
    t = net.to_torch()
    assert tprune.is_pruned(t)
    np.testing.assert_array_equal(t[0].weight_mask.numpy(), net[0].weight_mask)
    np.testing.assert_array_equal(t[0].weight_orig.detach().numpy(), net[0].weight_orig)
    np.testing.assert_allclose(t(torch.from_numpy(X)).detach().numpy(), ref, rtol=1e-6, atol=1e-6)
    b = nn.MLP.from_torch(t)
    assert prune.is_pruned(b)
    np.testing.assert_array_equal(b(X), ref)
    c = net.copy()
    np.testing.assert_array_equal(c[2].weight_mask, net[2].weight_mask)


def test_summary_counts_the_effective_weights():
    net = nn.MLP([10, 8, 4], seed=0)
    prune.l1_unstructured(net[0], "weight", 40)
    net[0].weight_orig[...] += 0     # weight_orig itself has no zeros
    s = nn.summary(net)
    assert s.rows[0].params == 88 and s.rows[0].nonzero == 48
    assert s.rows[0].sparsity == pytest.approx(40 / 88)
    assert s.total_nonzero == 48 + 36
    assert "sparsity" in str(s)


# ------------------------------------------------------------------- tools

def test_prune_model_scopes_and_iterative_amount():
    net = nn.MLP([20, 16, 10], seed=0)
    prune.prune_model(net, 0.5, scope="layer")
    assert all(abs(v - 0.5) < 1e-9 for v in prune.layer_sparsities(net).values())
    p = prune.iterative_amount(0.9, 3)
    net2 = nn.MLP([20, 16, 10], seed=0)
    for _ in range(3):
        prune.prune_model(net2, p)
    assert prune.sparsity(net2) == pytest.approx(0.9, abs=2e-3)
    assert prune.iterative_amount(0.9, 1) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="target"):
        prune.iterative_amount(1.5, 2)


def test_rewind_keeps_masks_and_restores_values():
    net = nn.MLP([6, 5, 3], seed=0, dtype=np.float64)
    init = net.state_dict()
    net[0].weight[...] += 1.0
    prune.l1_unstructured(net[0], "weight", 0.5)
    mask = net[0].weight_mask.copy()
    prune.rewind(net, init)
    np.testing.assert_array_equal(net[0].weight_orig, init["0.weight"])
    np.testing.assert_array_equal(net[0].weight_mask, mask)
    np.testing.assert_array_equal(net[0].weight, init["0.weight"] * mask)


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
def test_shrink_removes_dead_units_with_identical_outputs(act):
    net = nn.MLP([8, 20, 15, 3], act, seed=1, dtype=np.float64)
    prune.ln_structured(net[0], "weight", 0.5, n=2, dim=0)      # 10 rows: constant units
    prune.ln_structured(net[4], "weight", 0.4, n=1, dim=1)      # 6 columns: unread units
    prune.ln_structured(net[2], "weight", 0.2, n=1, dim=0)      # 3 more rows
    small, kept = prune.shrink(net, return_kept=True)
    assert small.sizes == [8, 10, 15 - 6 - 3 + _overlap(net), 3]
    X = np.random.default_rng(0).standard_normal((6, 8))
    np.testing.assert_allclose(small(X), net(X), rtol=1e-12, atol=1e-12)
    assert small.num_params() < net.num_params()
    assert not prune.is_pruned(small)
    np.testing.assert_array_equal(kept[0], np.flatnonzero(net[0].weight_mask.any(axis=1)))


def _overlap(net):
    rows = ~net[2].weight_mask.any(axis=1)
    cols = ~net[4].weight_mask.any(axis=0)
    return int(np.sum(rows & cols))


def test_shrink_keeps_one_unit_when_a_layer_dies():
    net = nn.MLP([4, 3, 2], "sigmoid", seed=0, dtype=np.float64)
    prune.ln_structured(net[0], "weight", 1.0, n=1, dim=0)
    small = prune.shrink(net)
    X = np.random.default_rng(0).standard_normal((3, 4))
    assert small.sizes == [4, 1, 2]
    np.testing.assert_allclose(small(X), net(X), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call,exc,match", [
    (lambda m: prune.l1_unstructured(m, "weight", -0.1), ValueError, "amount"),
    (lambda m: prune.l1_unstructured(m, "weight", 1.5), ValueError, "amount"),
    (lambda m: prune.l1_unstructured(m, "weight", -2), ValueError, "amount"),
    (lambda m: prune.l1_unstructured(m, "weight", 13), ValueError, "amount=13"),
    (lambda m: prune.l1_unstructured(m, "weight", "half"), TypeError, "amount"),
    (lambda m: prune.l1_unstructured(m, "wieght", 0.5), ValueError, "wieght"),
    (lambda m: prune.l1_unstructured(m, "in_features", 0.5), ValueError, "in_features"),
    (lambda m: prune.ln_structured(m, "weight", 0.5, n="nuc", dim=0), ValueError, "n must"),
    (lambda m: prune.ln_structured(m, "weight", 0.5, n=2, dim=2), ValueError, "dim=2"),
    (lambda m: prune.ln_structured(m, "weight", 0.5, n=2, dim=-3), ValueError, "dim=-3"),
    (lambda m: prune.ln_structured(m, "bias", 0.5, n=2, dim=0), ValueError, "2 dims"),
    (lambda m: prune.remove(m, "weight"), ValueError, "weight"),
    (lambda m: prune.l1_unstructured("net", "weight", 0.5), TypeError, "module"),
])
def test_bad_input_names_the_argument(call, exc, match):
    m = nn.Linear(4, 3)
    with pytest.raises(exc, match=match):
        call(m)
    assert not prune.is_pruned(m)       # a failed call leaves the module as it was
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
