"""Every layer of both backends against its torch.nn twin over random configurations
(hypothesis): random shapes and options, training and evaluation mode, edge inputs;
outputs, input gradients, parameter gradients and running statistics; float64 and float32.
Every NumPy backward is also gradient-checked (centred differences, float64).

Tolerances: float64 rtol 1e-10, atol 1e-12; float32 rtol 2e-5, atol 2e-5; normalization
layers divide by small standard deviations, so they get atol 1e-10 (float32: 1e-4) plus
rounding amplified by 1 / sqrt(var + eps) (:func:`_normalization_atol`). Gradient checks: a
difference below 1e-6 of the largest entry plus the rounding noise of the differences
(tests/gradient_support.py). Piecewise-linear layers (ReLU, LeakyReLU, PReLU, Identity) and
the dropout masks of the torch backend are compared bit for bit.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course_lib.gradcheck import numerical_gradient_array
from gradient_support import assert_gradient_close
from course_lib.numpy import layers as NL
from course_lib.torch import layers as TL

INF, NAN = math.inf, math.nan
DTYPES = st.sampled_from([torch.float64, torch.float32])
NP = {torch.float64: np.float64, torch.float32: np.float32}
TOL = {torch.float64: (1e-10, 1e-12), torch.float32: (2e-5, 2e-5)}
# The gradient checks use a generic upstream gradient (standard normal draws), not the
# drawn dout: a dout such as all ones makes dx of a normalization exactly 0, where the
# relative error of centred differences is rounding noise over noise.
GRADCHECK_RNG = lambda: np.random.default_rng(12345)  # noqa: E731


def _assert_gradients(module, x, h=1e-6):
    """Gradient-check a fresh NumPy module at ``x``: dx and every parameter gradient against
    centred differences (:mod:`gradient_support`'s criterion)."""
    x = np.array(x, dtype=np.float64)
    out = np.array(module.forward(x), dtype=np.float64)
    dout = GRADCHECK_RNG().standard_normal(out.shape)
    module.zero_grad()
    analytic = {"x": module.backward(dout)}
    numeric = {"x": numerical_gradient_array(module.forward, x, dout, h)}
    for name, p in module.named_parameters():
        analytic[name] = np.zeros_like(p.data) if p.grad is None else p.grad.copy()
        numeric[name] = numerical_gradient_array(lambda _: module.forward(x), p.data, dout, h)
    for name, a in analytic.items():
        assert_gradient_close(a, numeric[name], np.abs(out * dout).sum(), h, name=name)


def _finite(shape, low=-3.0, high=3.0):
    return arrays(np.float64, shape, elements=st.floats(low, high, allow_subnormal=False))


def _assert_close(ours, theirs, dtype, exact=False, atol=None):
    ours = torch.as_tensor(np.asarray(ours)) if not isinstance(ours, torch.Tensor) else ours
    ours, theirs = ours.detach().cpu(), theirs.detach().cpu()
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    if exact:
        assert torch.equal(ours.nan_to_num(7.0), theirs.nan_to_num(7.0)), (ours, theirs)
        assert torch.equal(ours.isnan(), theirs.isnan())
        return
    rtol, default_atol = TOL[dtype]
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=default_atol if atol is None
                               else atol, equal_nan=True)


def _reference_run(ref, x, dout, dtype):
    for p in ref.parameters():
        p.grad = None
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    out = ref(xt)
    out.backward(torch.tensor(dout, dtype=dtype))
    return out.detach(), xt.grad, {n: p.grad for n, p in ref.named_parameters()}


def _torch_backend_run(module, x, dout, dtype):
    return _reference_run(module, x, dout, dtype)


def _numpy_run(module, x, dout, dtype):
    module.zero_grad()
    out = module(x.astype(NP[dtype]))
    dx = module.backward(dout.astype(NP[dtype]))
    return (torch.as_tensor(np.asarray(out)), torch.as_tensor(np.asarray(dx)),
            {n: torch.as_tensor(p.grad) for n, p in module.named_parameters()})


def _compare(ours, theirs, dtype, exact=False, atol=None):
    (o1, dx1, g1), (o2, dx2, g2) = ours, theirs
    _assert_close(o1, o2, dtype, exact, atol)
    _assert_close(dx1, dx2, dtype, exact, atol)
    assert set(g1) == set(g2)
    for name in g1:
        _assert_close(g1[name], g2[name], dtype, exact, atol)


def _np_state(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _all_three(make_ref, make_np, make_t, x, dout, dtype, exact=False, atol=None,
               gradcheck=True, modes=("train",), gradcheck_x=None):
    """Build the reference (float64 or float32), copy its state into both backends and
    compare forward and backward, in each mode; then gradient-check the NumPy module (at
    ``gradcheck_x`` if given: centred differences need a well-conditioned point)."""
    ref = make_ref().to(dtype)
    ours_np = make_np(NP[dtype]).load_state_dict(_np_state(ref))
    ours_t = make_t(dtype)
    ours_t.load_state_dict(ref.state_dict())
    for mode in modes:
        for m in (ref, ours_t):
            m.train(mode == "train")
        ours_np.train(mode == "train")
        expected = _reference_run(ref, x, dout, dtype)
        _compare(_numpy_run(ours_np, x, dout, dtype), expected, dtype, exact, atol)
        _compare(_torch_backend_run(ours_t, x, dout, dtype), expected, dtype, exact, atol)
        for name, buf in ref.named_buffers():
            _assert_close(torch.as_tensor(np.asarray(dict(ours_np.named_buffers())[name])),
                          buf, dtype)
            _assert_close(dict(ours_t.named_buffers())[name], buf, dtype)
    if gradcheck and dtype == torch.float64:
        _assert_gradients(make_np(np.float64).load_state_dict(_np_state(ref))
                          .train(modes[-1] == "train"), x if gradcheck_x is None else gradcheck_x)


# -- Linear -------------------------------------------------------------------------------

@given(st.integers(1, 6), st.integers(1, 6), st.lists(st.integers(1, 4), max_size=2),
       st.booleans(), DTYPES, st.data())
def test_linear(n_in, n_out, lead, bias, dtype, data):
    x = data.draw(_finite(tuple(lead) + (n_in,)), label="x")
    dout = data.draw(_finite(tuple(lead) + (n_out,)), label="dout")
    seed = data.draw(st.integers(0, 2 ** 16), label="seed")
    _all_three(lambda: torch.nn.Linear(n_in, n_out, bias=bias, dtype=torch.float64),
               lambda d: NL.Linear(n_in, n_out, bias=bias, generator=np.random.default_rng(
                   seed), dtype=d),
               lambda d: TL.Linear(n_in, n_out, bias=bias, device="cpu", dtype=d),
               x, dout, dtype)


@given(st.integers(1, 8), st.integers(1, 8), st.booleans(), st.integers(0, 2 ** 16))
def test_torch_linear_init_bit_identical(n_in, n_out, bias, seed):
    torch.manual_seed(seed)
    ref = torch.nn.Linear(n_in, n_out, bias=bias)
    ours = TL.Linear(n_in, n_out, bias=bias, generator=torch.Generator().manual_seed(seed),
                     device="cpu", dtype=torch.float32)
    assert torch.equal(ours.weight, ref.weight)
    assert bias is False or torch.equal(ours.bias, ref.bias)


# -- activation layers --------------------------------------------------------------------

EDGE = st.one_of(st.floats(-30, 30, allow_subnormal=False),
                 st.sampled_from([0.0, -0.0, INF, -INF, 25.0, -25.0]))
ACTIVATIONS = {  # name -> (kwargs strategy, torch class, exact)
    "ReLU": (st.just({}), torch.nn.ReLU, True),
    "LeakyReLU": (st.fixed_dictionaries({"negative_slope": st.sampled_from(
        [0.01, 0.3, 0.0, -0.2])}), torch.nn.LeakyReLU, True),
    "Sigmoid": (st.just({}), torch.nn.Sigmoid, False),
    "Tanh": (st.just({}), torch.nn.Tanh, False),
    "ELU": (st.fixed_dictionaries({"alpha": st.sampled_from([1.0, 0.4])}), torch.nn.ELU,
            False),
    "SELU": (st.just({}), torch.nn.SELU, False),
    "GELU": (st.fixed_dictionaries({"approximate": st.just("none")}), torch.nn.GELU, False),
    "SiLU": (st.just({}), torch.nn.SiLU, False),
    "Softplus": (st.fixed_dictionaries({"beta": st.sampled_from([1.0, 2.0]),
                                        "threshold": st.sampled_from([20.0, 3.0])}),
                 torch.nn.Softplus, False),
    "Identity": (st.just({}), torch.nn.Identity, True),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(DTYPES, st.data())
def test_activation_layer(name, dtype, data):
    kwargs_strategy, ref_cls, exact = ACTIVATIONS[name]
    kwargs = data.draw(kwargs_strategy, label="kwargs")
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
                      label="shape")
    x = data.draw(arrays(np.float64, shape, elements=EDGE), label="x")
    if name == "GELU" and dtype == torch.float32:  # torch's vectorized erf: NaN at inf
        x = np.where(np.isinf(x), 0.0, x)
    dout = data.draw(_finite(shape), label="dout")
    ref = ref_cls(**kwargs)
    expected = _reference_run(ref, x, dout, dtype)
    with np.errstate(all="ignore"):
        _compare(_numpy_run(getattr(NL, name)(**kwargs), x, dout, dtype), expected, dtype,
                 exact)
    _compare(_torch_backend_run(getattr(TL, name)(**kwargs), x, dout, dtype), expected,
             dtype, exact)
    # the gradient check needs a smooth neighbourhood: finite points away from the kinks
    # (0 for the rectifiers, threshold / beta where Softplus turns linear)
    smooth = np.clip(x, -3, 3)
    kinks = [0.0] + ([kwargs["threshold"] / kwargs["beta"]] if name == "Softplus" else [])
    for k in kinks:
        smooth = np.where(np.abs(smooth - k) < 1e-3, k + 0.5, smooth)
    _assert_gradients(getattr(NL, name)(**kwargs), smooth)


@given(st.sampled_from([1, 3]), st.floats(-1, 1), DTYPES, st.data())
def test_prelu(num_parameters, init, dtype, data):
    trailing = data.draw(st.lists(st.integers(1, 3), max_size=2), label="trailing")
    n = data.draw(st.integers(1, 4), label="n")
    shape = (n, num_parameters, *trailing) if num_parameters > 1 or data.draw(
        st.booleans(), label="channels") else tuple(trailing) or (n,)
    x = data.draw(arrays(np.float64, shape, elements=EDGE), label="x")
    dout = data.draw(_finite(shape), label="dout")
    slopes = data.draw(_finite((num_parameters,), -1, 1), label="slopes")

    def ref():
        m = torch.nn.PReLU(num_parameters, init, dtype=torch.float64)
        with torch.no_grad():
            m.weight.copy_(torch.tensor(slopes))
        return m

    # slopes and forward values are exact; the slope's gradient is a sum (order varies)
    _all_three(ref, lambda d: NL.PReLU(num_parameters, init, dtype=d),
               lambda d: TL.PReLU(num_parameters, init, device="cpu", dtype=d),
               x, dout, dtype, atol=None if dtype == torch.float32 else 1e-12,
               gradcheck=False)
    smooth = np.where(np.abs(np.clip(x, -5, 5)) < 1e-3, 0.5, np.clip(x, -5, 5))
    m = NL.PReLU(num_parameters, init)
    m.weight.data[...] = slopes
    _assert_gradients(m, smooth)


def test_prelu_defaults_and_parameter():
    assert NL.PReLU().weight.data.tolist() == [0.25]
    assert TL.PReLU(device="cpu").weight.tolist() == [0.25]
    assert isinstance(TL.PReLU(device="cpu").weight, torch.nn.Parameter)
    assert [n for n, _ in TL.PReLU(3, device="cpu").named_parameters()] == ["weight"]
    assert [n for n, _ in NL.PReLU(3).named_parameters()] == ["weight"]
    m = NL.PReLU()
    m(np.array([-2.0, 3.0]))
    m.backward(np.ones(2))
    m.backward(np.ones(2))  # accumulates, as autograd
    np.testing.assert_array_equal(m.weight.grad, [-4.0])


# -- dropout ------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ["Dropout", "AlphaDropout"])
@given(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), DTYPES, st.integers(0, 2 ** 16),
       st.data())
def test_torch_dropout_bit_identical_to_torch(cls, p, dtype, seed, data):
    shape = data.draw(st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple))
    x = data.draw(arrays(np.float64, shape, elements=EDGE), label="x")
    ref = getattr(torch.nn, cls)(p)
    ours = getattr(TL, cls)(p)
    for training in (True, False):
        ref.train(training)
        ours.train(training)
        xt = torch.tensor(x, dtype=dtype)
        torch.manual_seed(seed)
        expected = ref(xt)
        torch.manual_seed(seed)
        _assert_close(ours(xt), expected, dtype, exact=True)


@pytest.mark.parametrize("cls", ["Dropout", "AlphaDropout"])
@given(st.sampled_from([0.0, 0.2, 0.5, 1.0]), st.data())
def test_numpy_dropout_structure_matches_torch(cls, p, data):
    """The NumPy masks come from NumPy's generator; given its mask, every entry must be
    torch's formula, and the backward must be the mask's scale (p = 1: zeros, x * 0)."""
    shape = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=2).map(tuple))
    x = data.draw(_finite(shape), label="x")
    dout = data.draw(_finite(shape), label="dout")
    layer = getattr(NL, cls)(p, generator=np.random.default_rng(data.draw(st.integers(0, 99))))
    y, dx = layer(x), layer.backward(dout)
    kept = layer.backward(np.ones(shape)) != 0  # the mask, whatever x and dout are
    assert p > 0 or kept.all()
    if p == 1:
        assert not kept.any()
        np.testing.assert_array_equal(y, x * 0)
        np.testing.assert_array_equal(dx, dout * 0)
        return
    if cls == "Dropout":
        np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-15)
        np.testing.assert_allclose(dx, np.where(kept, dout / (1 - p), 0), rtol=1e-15)
    else:
        alpha = 1.7580993408473766
        a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
        np.testing.assert_allclose(dx, np.where(kept, a * dout, 0), rtol=1e-15)
        np.testing.assert_allclose(y[~kept], -alpha * a + alpha * a * p, rtol=1e-13)
        np.testing.assert_allclose(y[kept], x[kept] * a + alpha * a * p, rtol=1e-12,
                                   atol=1e-15)
    layer.eval()
    np.testing.assert_array_equal(layer(x), x)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_dropout_p_one_gives_x_times_zero_like_torch(backend):
    x = np.array([1.0, -2.0, INF, NAN, 0.0])
    expected = torch.nn.Dropout(1.0)(torch.tensor(x))
    expected_alpha = torch.nn.AlphaDropout(1.0)(torch.tensor(x))
    for cls, exp in (("Dropout", expected), ("AlphaDropout", expected_alpha)):
        if backend == "numpy":
            with np.errstate(invalid="ignore"):
                got = torch.as_tensor(getattr(NL, cls)(1.0)(x))
        else:
            got = getattr(TL, cls)(1.0)(torch.tensor(x))
        _assert_close(got, exp, torch.float64, exact=True)


# -- normalization ------------------------------------------------------------------------

def _spread(x):
    """``x`` plus an irregular ramp: every normalized group varies, so that centred
    differences (error ~ ulp / (h sqrt(var + eps))) stay accurate."""
    return x + 0.7312 * np.arange(x.size).reshape(x.shape)


@given(st.integers(1, 4), st.integers(2, 6), st.sampled_from([None, 1, 3]),
       st.sampled_from([1e-5, 1e-3]), st.sampled_from([0.1, 0.5, None]),
       st.booleans(), st.booleans(), DTYPES, st.data())
def test_batchnorm1d(C, N, L, eps, momentum, affine, track, dtype, data):
    shape = (N, C) if L is None else (N, C, L)
    x = data.draw(_finite(shape), label="x")
    dout = data.draw(_finite(shape), label="dout")
    make_ref = lambda: torch.nn.BatchNorm1d(C, eps, momentum, affine, track,  # noqa: E731
                                            dtype=torch.float64)
    _all_three(
        lambda: _randomized(make_ref()),
        lambda d: NL.BatchNorm1d(C, eps, momentum, affine, track, dtype=d),
        lambda d: TL.BatchNorm1d(C, eps, momentum, affine, track, device="cpu", dtype=d),
        x, dout, dtype, modes=("train", "train", "eval"), gradcheck_x=_spread(x),
        atol=_normalization_atol(dtype, eps, x, (0,) if L is None else (0, 2), dout))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_batchnorm_eps_zero_with_batch_statistics_raises_as_torch(backend):
    with pytest.raises(ValueError, match="eps must be positive"):
        torch.nn.BatchNorm1d(2, eps=0.0)(torch.randn(4, 2))
    bn = NL.BatchNorm1d(2, eps=0.0) if backend == "numpy" else TL.BatchNorm1d(
        2, eps=0.0, device="cpu", dtype=torch.float64)
    x = np.random.default_rng(0).normal(size=(4, 2))
    with pytest.raises(ValueError, match="^eps must be positive"):
        bn(x if backend == "numpy" else torch.tensor(x))
    bn.eval()  # running statistics: eps = 0 is fine there, as in torch
    bn(x if backend == "numpy" else torch.tensor(x))


def _normalization_atol(dtype, eps, x, axes, dout):
    """Absolute tolerance of a normalization layer: dx is 1 / sqrt(var + eps) times
    differences of O(|dout|) terms, so rounding in them is amplified by the largest
    1 / sqrt(var + eps), up to 1 / sqrt(eps) for a constant group (x = 0). ``var`` is
    the smallest biased variance over ``axes``; a running variance (eval mode) is at least
    min(1, that). Weights of :func:`_randomized` are below about 3."""
    base = 1e-10 if dtype == torch.float64 else 1e-4
    var = float(np.var(x, axis=axes).min(initial=1.0)) if x.size else 1.0
    rstd = 1.0 / math.sqrt(min(1.0, var) + eps)
    return base + 32 * torch.finfo(dtype).eps * 3 * float(np.abs(dout).max(initial=0)) * rstd


def _randomized(module):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5 + 1.0)
    return module


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("track,training", [(True, True), (False, True), (False, False)])
@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1)])
def test_batchnorm_one_value_per_channel_raises_as_torch(backend, track, training, shape):
    ref = torch.nn.BatchNorm1d(3, track_running_stats=track).train(training)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel") as theirs:
        ref(torch.ones(shape))
    if backend == "numpy":
        bn, x = NL.BatchNorm1d(3, track_running_stats=track), np.ones(shape)
    else:
        bn, x = TL.BatchNorm1d(3, track_running_stats=track, device="cpu"), torch.ones(shape)
    bn.train(training)
    with pytest.raises(ValueError, match="^x must hold more than 1 value per channel") as ours:
        bn(x)
    assert "Expected more than 1 value per channel" in str(ours.value)
    del theirs
    # with running statistics, evaluation accepts a single sample, as torch
    if track is True:
        bn.eval()
        ref.eval()
        ours = bn(x)
        ours = ours.detach().numpy() if isinstance(ours, torch.Tensor) else ours
        np.testing.assert_allclose(ours, ref(torch.ones(shape)).detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_batchnorm_empty_batch_as_torch(backend):
    ref = torch.nn.BatchNorm1d(2)
    out = ref(torch.ones(0, 2))
    if backend == "numpy":
        bn = NL.BatchNorm1d(2)
        y = bn(np.ones((0, 2)))
    else:
        bn = TL.BatchNorm1d(2, device="cpu", dtype=torch.float32)
        y = bn(torch.ones(0, 2))
    assert tuple(y.shape) == tuple(out.shape)
    assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == 1
    np.testing.assert_array_equal(np.asarray(bn.running_mean), ref.running_mean.numpy())


@given(st.lists(st.integers(1, 4), min_size=1, max_size=2), st.lists(st.integers(1, 3),
       max_size=2), st.sampled_from([1e-5, 1e-2]), st.booleans(), DTYPES, st.data())
def test_layernorm(normalized, lead, eps, affine, dtype, data):
    normalized = tuple(normalized)
    shape = tuple(lead) + normalized
    x = data.draw(_finite(shape), label="x")
    dout = data.draw(_finite(shape), label="dout")
    _all_three(lambda: _randomized(torch.nn.LayerNorm(normalized, eps, affine,
                                                      dtype=torch.float64)),
               lambda d: NL.LayerNorm(normalized, eps, affine, dtype=d),
               lambda d: TL.LayerNorm(normalized, eps, affine, device="cpu", dtype=d),
               x, dout, dtype, gradcheck_x=_spread(x),
               atol=_normalization_atol(dtype, eps, x, tuple(range(len(lead), x.ndim)), dout))


# -- Sequential and mlp --------------------------------------------------------------------

@settings(max_examples=10)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=4), st.sampled_from(
    ["relu", "tanh", "gelu", "silu", "elu", "leaky_relu"]), st.booleans(),
    st.integers(0, 2 ** 16), st.data())
def test_mlp_matches_torch_sequential(sizes, activation, batch_norm, seed, data):
    x = data.draw(_finite((4, sizes[0])), label="x")
    dout = data.draw(_finite((4, sizes[-1])), label="dout")
    torch_acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU,
                  "silu": torch.nn.SiLU, "elu": torch.nn.ELU, "leaky_relu": torch.nn.LeakyReLU}

    def ref():
        torch.manual_seed(seed)
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers.append(torch.nn.Linear(a, b, dtype=torch.float64))
            if batch_norm:
                layers.append(torch.nn.BatchNorm1d(b, dtype=torch.float64))
            layers.append(torch_acts[activation]())
        layers.append(torch.nn.Linear(sizes[-2], sizes[-1], dtype=torch.float64))
        return torch.nn.Sequential(*layers)

    _all_three(ref, lambda d: NL.mlp(sizes, activation, batch_norm, dtype=d),
               lambda d: TL.mlp(sizes, activation, batch_norm, device="cpu", dtype=d),
               x, dout, torch.float64, atol=1e-10, modes=("train", "eval"),
               gradcheck_x=_spread(x))
    # and torch's Linear initialization, bit for bit, from the same seed
    ours = TL.mlp(sizes, activation, batch_norm, generator=torch.Generator().manual_seed(seed),
                  device="cpu", dtype=torch.float64)
    for (n1, p1), (n2, p2) in zip(ours.named_parameters(), ref().named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)


@pytest.mark.parametrize("wrong", ["scaled", "no_mean_term"])
def test_the_gradient_criterion_catches_a_wrong_backward(wrong):
    class Wrong(NL.LayerNorm):
        def backward(self, dout):
            dx = super().backward(dout)
            if wrong == "scaled":
                return 1.01 * dx
            return dx + 0.01 * np.mean(dout, axis=-1, keepdims=True)  # a dropped term

    x = _spread(np.zeros((3, 4)))
    _assert_gradients(NL.LayerNorm(4), x)
    with pytest.raises(AssertionError, match="largest difference"):
        _assert_gradients(Wrong(4), x)
