"""Layers of both backends against torch.nn (forward, backward, running statistics,
random masks), gradient checks of every NumPy backward, the Module protocol, errors."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from scipy import stats

from course_lib.gradcheck import check_module_gradients, numerical_gradient_array, rel_error
from course_lib.numpy import layers as NL
from course_lib.torch import layers as TL

CPU64 = {"device": "cpu", "dtype": torch.float64}


def _rng(seed=0):
    return np.random.default_rng(seed)


def _np_state(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _randomize(module, seed):
    """Give a torch module's floating parameters non-default values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5 + 1.0)
    return module


def _torch_forward_backward(module, x, dout):
    """Output, dx and parameter grads (by name) of a torch module."""
    xt = torch.tensor(x, requires_grad=True)
    for p in module.parameters():
        p.grad = None
    out = module(xt)
    out.backward(torch.tensor(dout))
    grads = {n: p.grad.numpy().copy() for n, p in module.named_parameters()}
    return out.detach().numpy(), xt.grad.numpy(), grads


def _numpy_forward_backward(module, x, dout):
    module.zero_grad()
    out = module(x)
    dx = module.backward(dout)
    return out, dx, {n: p.grad for n, p in module.named_parameters()}


def _assert_same(a, b, rtol=1e-10, atol=1e-13):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _assert_triplets(ours, theirs):
    (o1, dx1, g1), (o2, dx2, g2) = ours, theirs
    _assert_same(o1, o2)
    _assert_same(dx1, dx2)
    assert set(g1) == set(g2)
    for name in g1:
        _assert_same(g1[name], g2[name])


# -- Linear -----------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    ref = _randomize(torch.nn.Linear(5, 3, bias=bias, **CPU64), 0)
    x, dout = _rng(1).normal(size=(4, 5)), _rng(2).normal(size=(4, 3))
    ours_np = NL.Linear(5, 3, bias=bias, generator=_rng(0)).load_state_dict(_np_state(ref))
    ours_t = TL.Linear(5, 3, bias=bias, **CPU64)
    ours_t.load_state_dict(ref.state_dict())
    expected = _torch_forward_backward(ref, x, dout)
    _assert_triplets(_numpy_forward_backward(ours_np, x, dout), expected)
    _assert_triplets(_torch_forward_backward(ours_t, x, dout), expected)


@pytest.mark.parametrize("shape", [(5, 3), (1, 7), (30, 2)])
def test_torch_linear_init_bit_identical_to_nn_linear(shape):
    torch.manual_seed(42)
    ref = torch.nn.Linear(*shape, dtype=torch.float64)
    ours = TL.Linear(*shape, generator=torch.Generator().manual_seed(42), **CPU64)
    assert torch.equal(ours.weight, ref.weight) and torch.equal(ours.bias, ref.bias)


def test_numpy_linear_init_distribution():
    """torch's default: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in))."""
    layer = NL.Linear(400, 500, generator=_rng(3))
    bound = 1 / math.sqrt(400)
    w = layer.weight.data
    assert w.shape == (500, 400) and layer.bias.shape == (500,)
    assert w.dtype == np.float64
    assert np.abs(w).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert stats.kstest(w.ravel(), stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3
    n = w.size
    assert abs(w.var() - bound ** 2 / 3) < 5 * bound ** 2 / 3 * math.sqrt(0.8 / n)


def test_numpy_linear_float32_and_reproducible():
    a = NL.Linear(4, 2, generator=_rng(5), dtype=np.float32)
    b = NL.Linear(4, 2, generator=_rng(5), dtype=np.float32)
    assert a.weight.data.dtype == np.float32
    assert np.array_equal(a.weight.data, b.weight.data)
    assert a(np.ones((3, 4), np.float32)).dtype == np.float32


def test_linear_accepts_leading_dimensions():
    layer = NL.Linear(3, 2, generator=_rng(0))
    x = _rng(1).normal(size=(2, 4, 3))
    dout = _rng(2).normal(size=(2, 4, 2))
    errors = check_module_gradients(layer, x, dout)
    assert max(errors.values()) < 1e-7


@pytest.mark.parametrize("backend,make", [(NL, np.ones), (TL, torch.ones)])
def test_linear_shape_error_names_argument(backend, make):
    kw = {} if backend is NL else CPU64
    layer = backend.Linear(5, 3, **kw)
    with pytest.raises(ValueError) as err:
        layer(make((4, 6), dtype=np.float64 if backend is NL else torch.float64))
    assert str(err.value) == "x must have shape (N, 5) for Linear(5, 3), got (4, 6)"


# -- activation layers ------------------------------------------------------------------

ACTIVATION_LAYERS = [
    ("ReLU", {}, torch.nn.ReLU()),
    ("LeakyReLU", {"negative_slope": 0.1}, torch.nn.LeakyReLU(0.1)),
    ("Sigmoid", {}, torch.nn.Sigmoid()),
    ("Tanh", {}, torch.nn.Tanh()),
    ("ELU", {"alpha": 0.7}, torch.nn.ELU(0.7)),
    ("SELU", {}, torch.nn.SELU()),
    ("GELU", {}, torch.nn.GELU()),
    ("GELU", {"approximate": "tanh"}, torch.nn.GELU("tanh")),
    ("Softplus", {"beta": 1.5, "threshold": 4.0}, torch.nn.Softplus(1.5, 4.0)),
    ("Identity", {}, torch.nn.Identity()),
]


@pytest.mark.parametrize("name,kwargs,ref", ACTIVATION_LAYERS,
                         ids=[f"{a[0]}-{a[1]}" for a in ACTIVATION_LAYERS])
def test_activation_layers_match_torch(name, kwargs, ref):
    x, dout = _rng(6).normal(0, 3, size=(5, 4)), _rng(7).normal(size=(5, 4))
    expected = _torch_forward_backward(ref, x, dout)
    _assert_triplets(_numpy_forward_backward(getattr(NL, name)(**kwargs), x, dout), expected)
    _assert_triplets(_torch_forward_backward(getattr(TL, name)(**kwargs), x, dout), expected)


@pytest.mark.parametrize("name,kwargs,ref", ACTIVATION_LAYERS,
                         ids=[f"{a[0]}-{a[1]}" for a in ACTIVATION_LAYERS])
def test_activation_layers_gradcheck(name, kwargs, ref):
    x = _rng(8).normal(size=(3, 4))
    x = np.where(np.abs(x) < 0.05, 0.3, x)  # away from kinks
    errors = check_module_gradients(getattr(NL, name)(**kwargs), x, generator=_rng(9))
    assert errors["x"] < 1e-7


# -- Dropout ----------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_numpy_dropout_statistics(p):
    n = 200_000
    drop = NL.Dropout(p, generator=_rng(10))
    x = _rng(11).uniform(0.5, 1.5, size=(400, 500))
    y = drop(x)
    dropped = y == 0
    # exact structure: every unit is 0 or x * (1 / (1 - p)) (torch's order of operations)
    scale = 1 / (1 - p)
    np.testing.assert_array_equal(y[~dropped], x[~dropped] * scale)
    # drop fraction: binomial(n, p), 5 standard deviations
    assert abs(dropped.mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    # the mean is preserved: E[y] = E[x]; Var[y_i] <= E[x^2] p / (1 - p)
    bound = 5 * math.sqrt((x * x).mean() * p / (1 - p) / n)
    assert abs(y.mean() - x.mean()) < bound
    # backward uses the same mask and scale
    dout = _rng(12).normal(size=x.shape)
    dx = drop.backward(dout)
    np.testing.assert_array_equal(dx[dropped], 0)
    np.testing.assert_array_equal(dx[~dropped], dout[~dropped] * scale)


def test_numpy_dropout_identity_in_eval_and_for_p0():
    x = _rng(13).normal(size=(6, 7))
    drop = NL.Dropout(0.5, generator=_rng(0)).eval()
    assert not drop.training
    np.testing.assert_array_equal(drop(x), x)
    np.testing.assert_array_equal(drop.backward(x), x)
    np.testing.assert_array_equal(NL.Dropout(0.0, generator=_rng(0))(x), x)
    drop.train()
    assert (drop(x) == 0).any()


def test_numpy_dropout_seeded_masks_repeat_and_differ():
    x = np.ones((20, 20))
    a = NL.Dropout(0.5, generator=_rng(1))(x)
    b = NL.Dropout(0.5, generator=_rng(1))(x)
    np.testing.assert_array_equal(a, b)
    layer = NL.Dropout(0.5, generator=_rng(1))
    assert not np.array_equal(layer(x), layer(x))  # the generator advances


@pytest.mark.parametrize("cls", ["Dropout", "AlphaDropout"])
def test_numpy_dropout_gradcheck(cls):
    layer = getattr(NL, cls)(0.3)
    x, dout = _rng(14).normal(size=(4, 5)), _rng(15).normal(size=(4, 5))

    def forward(z):
        layer.generator = _rng(99)  # the same mask at every call
        return layer(z)

    forward(x)
    dx = layer.backward(dout)
    assert rel_error(dx, numerical_gradient_array(forward, x.copy(), dout)) < 1e-7


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_torch_dropout_matches_functional_and_its_mask(p):
    x = torch.randn(30, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    drop = TL.Dropout(p, generator=torch.Generator().manual_seed(5))
    xr = x.clone().requires_grad_(True)
    y = drop(xr)
    mask = torch.empty_like(x).bernoulli_(1 - p, generator=torch.Generator().manual_seed(5))
    assert torch.equal(y, x * (mask / (1 - p)))
    torch.manual_seed(5)
    assert torch.equal(y, TF.dropout(x, p, training=True))
    y.backward(torch.ones_like(x))
    torch.testing.assert_close(xr.grad, mask / (1 - p), rtol=1e-15, atol=0)


def test_torch_dropout_identity_in_eval_and_for_p0():
    x = torch.randn(5, 6, dtype=torch.float64)
    assert torch.equal(TL.Dropout(0.0)(x), x)
    drop = TL.Dropout(0.5).eval()
    assert torch.equal(drop(x), x)
    assert torch.equal(TL.AlphaDropout(0.5).eval()(x), x)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_torch_alpha_dropout_matches_functional(p):
    x = torch.randn(30, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = TL.AlphaDropout(p, generator=torch.Generator().manual_seed(8))(x)
    torch.manual_seed(8)
    assert torch.equal(ours, TF.alpha_dropout(x, p, training=True))


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_numpy_alpha_dropout_structure_and_statistics(p):
    """Dropped units take the value a * alpha' + b, kept ones a * x + b (Klambauer et al.,
    2017, with alpha' = -lambda * alpha); a standard normal input keeps mean 0, var 1."""
    selu_neg = -1.0507009873554805 * 1.6732632423543772
    a = ((1 - p) * (1 + p * selu_neg ** 2)) ** -0.5
    b = -a * selu_neg * p
    x = _rng(16).normal(size=(500, 400))
    layer = NL.AlphaDropout(p, generator=_rng(17))
    y = layer(x)
    dropped = np.isclose(y, a * selu_neg + b, rtol=0, atol=1e-12) & ~np.isclose(
        a * x + b, a * selu_neg + b, rtol=0, atol=1e-12)
    kept = ~dropped
    _assert_same(y[kept], a * x[kept] + b, rtol=1e-13, atol=1e-14)
    n = x.size
    assert abs(dropped.mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert abs(y.mean()) < 5 * math.sqrt(1 / n) * 1.5
    assert abs(y.var() - 1) < 0.02
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.where(kept, a, 0.0))


@pytest.mark.parametrize("backend", [NL, TL])
@pytest.mark.parametrize("p", [-0.1, 1.0001, 1.5, float("nan")])
def test_dropout_rejects_bad_p(backend, p):
    for cls in (backend.Dropout, backend.AlphaDropout):
        with pytest.raises(ValueError, match="^p must"):
            cls(p)


# -- BatchNorm1d ------------------------------------------------------------------------

BN_CONFIGS = [
    {},
    {"momentum": None},
    {"momentum": 0.3, "eps": 1e-3},
    {"affine": False},
    {"track_running_stats": False},
]


@pytest.mark.parametrize("config", BN_CONFIGS, ids=[str(c) for c in BN_CONFIGS])
@pytest.mark.parametrize("shape", [(8, 4), (6, 4, 3)])
def test_batchnorm_matches_torch_over_training_then_eval(config, shape):
    ref = _randomize(torch.nn.BatchNorm1d(4, **config, **CPU64), 1)
    ours_np = NL.BatchNorm1d(4, **config).load_state_dict(_np_state(ref))
    ours_t = TL.BatchNorm1d(4, **config, **CPU64)
    ours_t.load_state_dict(ref.state_dict())
    rng = _rng(20)
    for step in range(4):
        training = step < 3
        for m in (ref, ours_np, ours_t):
            m.train(training)
        x = rng.normal(2.0, 3.0, size=shape)
        dout = rng.normal(size=shape)
        expected = _torch_forward_backward(ref, x, dout)
        _assert_triplets(_numpy_forward_backward(ours_np, x, dout), expected)
        _assert_triplets(_torch_forward_backward(ours_t, x, dout), expected)
        reference_state = ref.state_dict()
        assert list(ours_np.state_dict()) == list(reference_state)
        for key, value in reference_state.items():
            _assert_same(ours_np.state_dict()[key], value.numpy(), rtol=1e-12, atol=0)
            _assert_same(ours_t.state_dict()[key].numpy(), value.numpy(), rtol=1e-12, atol=0)


def test_batchnorm_running_statistics_by_hand():
    """momentum=None is the cumulative average; running_var uses the unbiased variance."""
    bn = NL.BatchNorm1d(3, momentum=None)
    batches = [_rng(i).normal(i, 1 + i, size=(5, 3)) for i in range(3)]
    for x in batches:
        bn(x)
    assert int(bn.num_batches_tracked) == 3
    _assert_same(bn.running_mean, np.mean([x.mean(0) for x in batches], axis=0), rtol=1e-13)
    # the cumulative average of the unbiased variances starts from running_var = 1,
    # which the first update (factor 1/1) replaces entirely
    _assert_same(bn.running_var, np.mean([x.var(0, ddof=1) for x in batches], axis=0),
                 rtol=1e-13)
    bn2 = NL.BatchNorm1d(3, momentum=0.25)
    bn2(batches[0])
    _assert_same(bn2.running_var, 0.75 + 0.25 * batches[0].var(0, ddof=1), rtol=1e-14)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2)])
def test_batchnorm_gradcheck(train, shape):
    bn = NL.BatchNorm1d(3)
    bn.load_state_dict({"weight": _rng(1).normal(size=3), "bias": _rng(2).normal(size=3),
                        "running_mean": _rng(3).normal(size=3),
                        "running_var": _rng(4).uniform(0.5, 2, size=3),
                        "num_batches_tracked": np.array(5)})
    bn.train(train)
    errors = check_module_gradients(bn, _rng(5).normal(1, 2, size=shape), generator=_rng(6))
    assert max(errors.values()) < 1e-7, errors
    assert int(bn.num_batches_tracked) == 5  # the check restored the state


@pytest.mark.parametrize("backend", [NL, TL])
def test_batchnorm_batch_of_one_raises_in_training(backend):
    kw = {} if backend is NL else CPU64
    bn = backend.BatchNorm1d(3, **kw)
    one = np.ones((1, 3)) if backend is NL else torch.ones(1, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(one)
    with pytest.raises(ValueError):  # torch raises ValueError as well
        torch.nn.BatchNorm1d(3)(torch.ones(1, 3))
    bn.eval()
    assert bn(one).shape == (1, 3)


@pytest.mark.parametrize("backend", [NL, TL])
def test_batchnorm_shape_error(backend):
    kw = {} if backend is NL else CPU64
    x = np.ones((4, 5)) if backend is NL else torch.ones(4, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\)"):
        backend.BatchNorm1d(3, **kw)(x)


# -- LayerNorm --------------------------------------------------------------------------

@pytest.mark.parametrize("normalized_shape,x_shape", [(5, (4, 5)), ((5,), (2, 3, 5)),
                                                       ((3, 4), (2, 3, 4))])
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_matches_torch(normalized_shape, x_shape, affine):
    ref = _randomize(torch.nn.LayerNorm(normalized_shape, eps=1e-4,
                                        elementwise_affine=affine, **CPU64), 2)
    ours_np = NL.LayerNorm(normalized_shape, eps=1e-4, elementwise_affine=affine)
    ours_np.load_state_dict(_np_state(ref))
    ours_t = TL.LayerNorm(normalized_shape, eps=1e-4, elementwise_affine=affine, **CPU64)
    ours_t.load_state_dict(ref.state_dict())
    x, dout = _rng(21).normal(1, 2, size=x_shape), _rng(22).normal(size=x_shape)
    expected = _torch_forward_backward(ref, x, dout)
    for m in (ours_np,):
        m.eval()  # LayerNorm is the same in both modes
    _assert_triplets(_numpy_forward_backward(ours_np, x, dout), expected)
    _assert_triplets(_torch_forward_backward(ours_t, x, dout), expected)


@pytest.mark.parametrize("normalized_shape,x_shape", [(4, (3, 4)), ((2, 3), (2, 2, 3))])
def test_layernorm_gradcheck(normalized_shape, x_shape):
    ln = NL.LayerNorm(normalized_shape)
    ln.weight.data[...] = _rng(1).normal(size=ln.weight.shape)
    ln.bias.data[...] = _rng(2).normal(size=ln.bias.shape)
    errors = check_module_gradients(ln, _rng(3).normal(size=x_shape), generator=_rng(4))
    assert max(errors.values()) < 1e-7, errors


def test_layernorm_shape_error():
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 5\)"):
        NL.LayerNorm(5)(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 5\)"):
        TL.LayerNorm(5, **CPU64)(torch.ones(2, 4, dtype=torch.float64))


# -- Sequential, mlp and the Module protocol -------------------------------------------

def _reference_mlp(sizes, batch_norm):
    layers = []
    for d_in, d_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(torch.nn.Linear(d_in, d_out, **CPU64))
        if batch_norm:
            layers.append(torch.nn.BatchNorm1d(d_out, **CPU64))
        layers.append(torch.nn.Tanh())
    layers.append(torch.nn.Linear(sizes[-2], sizes[-1], **CPU64))
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_mlp_matches_torch_sequential(batch_norm):
    sizes = [4, 6, 5, 3]
    ref = _randomize(_reference_mlp(sizes, batch_norm), 3)
    ours_np = NL.mlp(sizes, activation="tanh", batch_norm=batch_norm, generator=_rng(0))
    ours_t = TL.mlp(sizes, activation="tanh", batch_norm=batch_norm, **CPU64)
    assert [n for n, _ in ours_np.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert list(ours_np.state_dict()) == list(ref.state_dict())
    assert list(ours_t.state_dict()) == list(ref.state_dict())
    ours_np.load_state_dict(_np_state(ref))
    ours_t.load_state_dict(ref.state_dict())
    x, dout = _rng(23).normal(size=(7, 4)), _rng(24).normal(size=(7, 3))
    expected = _torch_forward_backward(ref, x, dout)
    _assert_triplets(_numpy_forward_backward(ours_np, x, dout), expected)
    _assert_triplets(_torch_forward_backward(ours_t, x, dout), expected)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_mlp_gradcheck(batch_norm):
    net = NL.mlp([3, 5, 4, 2], activation="gelu", batch_norm=batch_norm, generator=_rng(1))
    x = _rng(2).normal(size=(5, 3))
    # h = 1e-5: the composite's tiny entries of dx (~1e-4) need less rounding noise
    errors = check_module_gradients(net, x, generator=_rng(3), h=1e-5)
    assert len(errors) == 1 + 2 * 3 + (4 if batch_norm else 0)
    if batch_norm:
        # A Linear bias right before BatchNorm is cancelled by the mean subtraction: its
        # true gradient is 0, so the relative error compares rounding noise with noise.
        net(x)
        net.zero_grad()
        net.backward(_rng(3).normal(size=(5, 2)))
        for name in ("0.bias", "3.bias"):
            del errors[name]
            assert np.abs(dict(net.named_parameters())[name].grad).max() < 1e-14
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("backend", [NL, TL])
def test_mlp_structure(backend):
    kw = {"generator": _rng(0)} if backend is NL else {"generator": torch.Generator(),
                                                       **CPU64}
    net = backend.mlp([8, 16, 16, 2], activation="leaky_relu", batch_norm=True,
                      dropout=0.25, **kw)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "BatchNorm1d", "LeakyReLU", "Dropout"] * 2 + ["Linear"]
    assert len(net) == 9 and net[-1].out_features == 2 and net[0].in_features == 8
    assert isinstance(net[1:3], backend.Sequential) and len(net[1:3]) == 2
    assert net[3].p == 0.25
    plain = backend.mlp([3, 2], **kw)
    assert [type(m).__name__ for m in plain] == ["Linear"]


@pytest.mark.parametrize("backend", [NL, TL])
def test_mlp_bad_arguments(backend):
    with pytest.raises(ValueError, match="activation"):
        backend.mlp([3, 4, 2], activation="swish")
    with pytest.raises(ValueError, match="sizes"):
        backend.mlp([3])
    with pytest.raises(ValueError, match="dropout"):
        backend.mlp([3, 4, 2], dropout=1.0)


def test_numpy_mlp_same_seed_same_network():
    a = NL.mlp([4, 8, 2], dropout=0.5, generator=_rng(7))
    b = NL.mlp([4, 8, 2], dropout=0.5, generator=_rng(7))
    x = _rng(1).normal(size=(3, 4))
    np.testing.assert_array_equal(a(x), b(x))


def test_module_protocol():
    net = NL.Sequential(NL.Linear(3, 4, generator=_rng(0)), NL.BatchNorm1d(4),
                        NL.Dropout(0.5, generator=_rng(1)), NL.Linear(4, 2, generator=_rng(2)))
    assert len(list(net.parameters())) == 6
    assert net.training and all(m.training for m in net)
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    x, dout = _rng(3).normal(size=(5, 3)), _rng(4).normal(size=(5, 2))
    net.eval()  # deterministic
    net(x)
    net.backward(dout)
    first = [p.grad.copy() for p in net.parameters()]
    net(x)
    net.backward(dout)
    for g1, p in zip(first, net.parameters()):  # gradients accumulate
        _assert_same(p.grad, 2 * g1, rtol=1e-15, atol=0)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.zero_grad(set_to_none=False)  # no grad yet: stays None
    net(x)
    net.backward(dout)
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in net.parameters())


def test_state_dict_copies_and_round_trips():
    a = NL.mlp([3, 4, 2], batch_norm=True, generator=_rng(0))
    b = NL.mlp([3, 4, 2], batch_norm=True, generator=_rng(1))
    state = a.state_dict()
    assert "1.num_batches_tracked" in state and "1.running_var" in state
    state["0.weight"][...] = 0.0  # a copy: the module is untouched
    assert not np.all(a[0].weight.data == 0)
    weight_before = b[0].weight.data
    b.load_state_dict(a.state_dict())
    assert b[0].weight.data is weight_before  # loaded in place
    x = _rng(2).normal(size=(4, 3))
    np.testing.assert_array_equal(a.eval()(x), b.eval()(x))


def test_load_state_dict_errors():
    layer = NL.Linear(3, 2)
    with pytest.raises(ValueError, match="missing keys"):
        layer.load_state_dict({"weight": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="unexpected keys"):
        layer.load_state_dict({"weight": np.zeros((2, 3)), "bias": np.zeros(2),
                               "scale": np.ones(1)})
    with pytest.raises(ValueError, match=r"state_dict\['weight'\] must have shape"):
        layer.load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(2)})
    layer.load_state_dict({"bias": np.ones(2)}, strict=False)
    np.testing.assert_array_equal(layer.bias.data, np.ones(2))


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match=r"modules\[1\]"):
        NL.Sequential(NL.ReLU(), lambda x: x)
    with pytest.raises(TypeError, match=r"modules\[0\]"):
        TL.Sequential("relu")


def test_numpy_parameter_is_reexported():
    from course_lib.numpy.parameter import Parameter
    assert NL.Parameter is Parameter
    assert isinstance(NL.Linear(2, 2).weight, Parameter)


def test_torch_layers_are_nn_modules_with_device_and_dtype():
    layer = TL.Linear(3, 2, device="cpu", dtype=torch.float64)
    assert isinstance(layer, torch.nn.Module)
    assert layer.weight.dtype == torch.float64 and layer.weight.device.type == "cpu"
    assert TL.BatchNorm1d(3, device="cpu").running_mean.dtype == torch.get_default_dtype()
    assert {n for n, _ in TL.LayerNorm(3, device="cpu").named_parameters()} == {"weight", "bias"}


# -- CUDA -------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_mlp_agrees_with_cpu(batch_norm):
    kw = {"activation": "gelu", "batch_norm": batch_norm, "dtype": torch.float64}
    cpu = TL.mlp([4, 8, 3], generator=torch.Generator().manual_seed(0), device="cpu", **kw)
    gpu = TL.mlp([4, 8, 3], generator=torch.Generator().manual_seed(0), device="cuda", **kw)
    assert all(p.is_cuda for p in gpu.parameters())
    for a, b in zip(cpu.parameters(), gpu.parameters()):
        assert torch.equal(a, b.cpu())  # same initial weights on both devices
    x = torch.randn(16, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y_cpu, y_gpu = cpu(x), gpu(x.cuda())
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-10, atol=1e-12)
    y_cpu.square().sum().backward()
    y_gpu.square().sum().backward()
    for a, b in zip(cpu.parameters(), gpu.parameters()):
        torch.testing.assert_close(b.grad.cpu(), a.grad, rtol=1e-10, atol=1e-12)
    if batch_norm:
        torch.testing.assert_close(gpu[1].running_var.cpu(), cpu[1].running_var)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_dropout_with_cpu_and_cuda_generators():
    x = torch.ones(100, 100, device="cuda", dtype=torch.float64)
    y = TL.Dropout(0.5, generator=torch.Generator().manual_seed(3))(x)
    ref = TL.Dropout(0.5, generator=torch.Generator().manual_seed(3))(x.cpu())
    assert y.is_cuda and torch.equal(y.cpu(), ref)
    z = TL.Dropout(0.5, generator=torch.Generator(device="cuda").manual_seed(3))(x)
    assert z.is_cuda and abs((z == 0).double().mean().item() - 0.5) < 0.02
    ln = TL.LayerNorm(100, device="cuda", dtype=torch.float64)
    torch.testing.assert_close(ln(x * torch.arange(100., device="cuda")).cpu(),
                               TL.LayerNorm(100, device="cpu", dtype=torch.float64)(
                                   x.cpu() * torch.arange(100.)), rtol=1e-12, atol=1e-12)
