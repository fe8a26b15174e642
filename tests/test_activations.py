"""Activations of both backends: parity with torch.nn.functional (values and autograd
derivatives), numerical gradient checks of the NumPy derivatives, stability."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course_lib.gradcheck import numerical_gradient_array, rel_error
from course_lib.numpy import activations as NA
from course_lib.torch import activations as TA

# (our name, kwargs, the torch reference)
ELEMENTWISE = [
    ("sigmoid", {}, torch.sigmoid),
    ("tanh", {}, torch.tanh),
    ("relu", {}, TF.relu),
    ("leaky_relu", {}, TF.leaky_relu),
    ("leaky_relu", {"negative_slope": 0.2}, lambda x: TF.leaky_relu(x, 0.2)),
    ("elu", {}, TF.elu),
    ("elu", {"alpha": 0.5}, lambda x: TF.elu(x, 0.5)),
    ("selu", {}, TF.selu),
    ("gelu", {}, TF.gelu),
    ("gelu", {"approximate": "tanh"}, lambda x: TF.gelu(x, approximate="tanh")),
    ("softplus", {}, TF.softplus),
    ("softplus", {"beta": 2.0, "threshold": 5.0}, lambda x: TF.softplus(x, 2.0, 5.0)),
]
IDS = [f"{name}-{kwargs}" for name, kwargs, _ in ELEMENTWISE]
ATOL = 1e-14


def _points(seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 3, 60), [-30, -12, -4, -1e-3, 0.0, 1e-3, 4, 9, 12, 30]])
    return x.reshape(7, 10)


def _torch_grad(f, x):
    x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(f(x).sum(), x)
    return g.numpy()


@pytest.mark.parametrize("name,kwargs,reference", ELEMENTWISE, ids=IDS)
def test_forward_matches_torch(name, kwargs, reference):
    x = _points()
    expected = reference(torch.tensor(x)).numpy()
    # atol: where 1 + tanh(u) or 1 + erf(u) cancels (u << 0), NumPy's and torch's
    # vectorized tanh/erf, each within an ulp, leave absolute differences ~ |x| * 1e-16.
    np.testing.assert_allclose(getattr(NA, name)(x, **kwargs), expected, rtol=1e-12, atol=ATOL)
    ours = getattr(TA, name)(torch.tensor(x), **kwargs)
    assert ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12, atol=ATOL)


@pytest.mark.parametrize("name,kwargs,reference", ELEMENTWISE, ids=IDS)
def test_derivative_matches_torch_autograd(name, kwargs, reference):
    """``<name>_grad`` of both backends equals the derivative torch's built-in computes,
    including torch's choice at the kinks (x = 0 is among the points)."""
    x = _points(1)
    expected = _torch_grad(reference, x)
    np.testing.assert_allclose(getattr(NA, name + "_grad")(x, **kwargs), expected,
                               rtol=1e-10, atol=ATOL)
    np.testing.assert_allclose(getattr(TA, name + "_grad")(torch.tensor(x), **kwargs).numpy(),
                               expected, rtol=1e-10, atol=ATOL)


@pytest.mark.parametrize("name,kwargs,reference", ELEMENTWISE, ids=IDS)
def test_torch_backend_autograd_matches_torch(name, kwargs, reference):
    """The backward pass autograd derives through our tensor math equals torch's."""
    x = _points(2)
    dout = np.random.default_rng(3).normal(size=x.shape)
    xt = torch.tensor(x, requires_grad=True)
    (ours,) = torch.autograd.grad(getattr(TA, name)(xt, **kwargs), xt, torch.tensor(dout))
    xr = torch.tensor(x, requires_grad=True)
    (theirs,) = torch.autograd.grad(reference(xr), xr, torch.tensor(dout))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10, atol=ATOL)


@pytest.mark.parametrize("name,kwargs,reference", ELEMENTWISE, ids=IDS)
def test_numpy_derivative_gradcheck(name, kwargs, reference):
    # away from the kinks at 0 (and from softplus's switch at beta x = threshold)
    x = np.random.default_rng(4).normal(0, 2, (4, 6))
    x = np.where(np.abs(x) < 0.05, 0.5, x)
    f = getattr(NA, name)
    numeric = numerical_gradient_array(lambda z: f(z, **kwargs), x.copy(), np.ones_like(x))
    assert rel_error(getattr(NA, name + "_grad")(x, **kwargs), numeric) < 1e-7


@pytest.mark.parametrize("name,kwargs,reference", ELEMENTWISE, ids=IDS)
def test_stable_for_large_inputs(name, kwargs, reference):
    x = np.array([-1000.0, -700.0, 700.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = getattr(NA, name)(x, **kwargs)
        g = getattr(NA, name + "_grad")(x, **kwargs)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(y, reference(torch.tensor(x)).numpy(), rtol=1e-12, atol=ATOL)
    tg = getattr(TA, name + "_grad")(torch.tensor(x), **kwargs)
    assert torch.isfinite(tg).all()
    np.testing.assert_allclose(tg.numpy(), g, rtol=1e-12)


def test_float32_stays_float32():
    x32 = np.linspace(-3, 3, 7, dtype=np.float32)
    for name, kwargs, _ in ELEMENTWISE:
        assert getattr(NA, name)(x32, **kwargs).dtype == np.float32, name
        assert getattr(TA, name)(torch.from_numpy(x32), **kwargs).dtype == torch.float32, name


def test_known_values():
    assert NA.sigmoid(np.array(0.0)) == 0.5
    assert NA.relu_grad(np.array(0.0)) == 0.0  # torch's convention at the kink
    assert NA.softplus(np.array(0.0)) == np.log(2.0)
    np.testing.assert_allclose(NA.selu(np.array(-1e9)), -1.0507009873554805 * 1.6732632423543772)


# -- softmax and log_softmax ------------------------------------------------------------

@pytest.mark.parametrize("shape,dim", [((5, 7), -1), ((5, 7), 0), ((5, 7), 1),
                                       ((3, 4, 5), 1), ((3, 4, 5), -1), ((6,), 0)])
@pytest.mark.parametrize("kind", ["softmax", "log_softmax"])
def test_softmax_forward_backward_match_torch(kind, shape, dim):
    rng = np.random.default_rng(5)
    x, dout = rng.normal(0, 4, shape), rng.normal(size=shape)
    reference = getattr(TF, kind)
    xt = torch.tensor(x, requires_grad=True)
    y_ref = reference(xt, dim=dim)
    (dx_ref,) = torch.autograd.grad(y_ref, xt, torch.tensor(dout))
    y_np = getattr(NA, kind)(x, dim=dim)
    np.testing.assert_allclose(y_np, y_ref.detach().numpy(), rtol=1e-12, atol=1e-300)
    dx_np = getattr(NA, kind + "_backward")(dout, y_np, dim=dim)
    np.testing.assert_allclose(dx_np, dx_ref.numpy(), rtol=1e-10, atol=1e-14)
    # torch backend: values, autograd backward and the explicit backward
    xo = torch.tensor(x, requires_grad=True)
    y_t = getattr(TA, kind)(xo, dim=dim)
    (dx_t,) = torch.autograd.grad(y_t, xo, torch.tensor(dout))
    np.testing.assert_allclose(y_t.detach().numpy(), y_ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx_t.numpy(), dx_ref.numpy(), rtol=1e-10, atol=1e-14)
    dx_t2 = getattr(TA, kind + "_backward")(torch.tensor(dout), y_t.detach(), dim=dim)
    np.testing.assert_allclose(dx_t2.numpy(), dx_ref.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kind", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_backward_gradcheck(kind, dim):
    rng = np.random.default_rng(6)
    x, dout = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    f = getattr(NA, kind)
    numeric = numerical_gradient_array(lambda z: f(z, dim=dim), x.copy(), dout)
    analytic = getattr(NA, kind + "_backward")(dout, f(x, dim=dim), dim=dim)
    assert rel_error(analytic, numeric) < 1e-7


finite_rows = arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 8)),
                     elements=st.floats(-1000, 1000, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(finite_rows)
def test_softmax_properties(x):
    """Rows are probability vectors, log_softmax is finite and equals log(softmax)
    wherever softmax does not underflow, and a constant shift changes nothing."""
    p = NA.softmax(x)
    assert np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    logp = NA.log_softmax(x)
    assert np.all(np.isfinite(logp)) and np.all(logp <= 0)
    big = p > 1e-300
    np.testing.assert_allclose(np.log(p[big]), logp[big], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(NA.softmax(x + 500.0), p, rtol=1e-9, atol=1e-300)
    pt = TA.softmax(torch.tensor(x))
    np.testing.assert_allclose(pt.numpy(), p, rtol=1e-12, atol=1e-300)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(-19, 19)))
def test_sigmoid_softplus_identities(x):
    """sigma(-x) = 1 - sigma(x) and softplus'(x) = sigma(x) (below the threshold)."""
    np.testing.assert_allclose(NA.sigmoid(-x), 1 - NA.sigmoid(x), atol=1e-15)
    np.testing.assert_allclose(NA.softplus_grad(x), NA.sigmoid(x), rtol=1e-15)
    np.testing.assert_allclose(NA.softplus(x) - NA.softplus(-x), x, atol=1e-12)


# -- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("backend,make", [(NA, np.ones), (TA, torch.ones)])
def test_bad_arguments(backend, make):
    with pytest.raises(ValueError, match="approximate"):
        backend.gelu(make(3), approximate="erf")
    with pytest.raises(ValueError, match="dim"):
        backend.softmax(make((2, 3)), dim=2)
    with pytest.raises(TypeError, match="dim"):
        backend.log_softmax(make((2, 3)), dim=1.0)
    with pytest.raises(ValueError, match="dout"):
        backend.softmax_backward(make((2, 3)), make((3, 2)))
    with pytest.raises(TypeError, match="negative_slope"):
        backend.leaky_relu(make(3), negative_slope="0.1")


def test_torch_backend_rejects_arrays():
    with pytest.raises(TypeError, match="x"):
        TA.relu(np.ones(3))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,kwargs,reference", ELEMENTWISE, ids=IDS)
def test_cuda_matches_cpu(name, kwargs, reference):
    x = torch.tensor(_points(7))
    cpu = getattr(TA, name)(x, **kwargs)
    gpu = getattr(TA, name)(x.cuda(), **kwargs)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(getattr(TA, name + "_grad")(x.cuda(), **kwargs).cpu(),
                               getattr(TA, name + "_grad")(x, **kwargs), rtol=1e-12, atol=1e-15)
