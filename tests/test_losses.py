"""Losses of both backends against torch.nn.functional (values and gradients), gradient
checks of the NumPy backward passes, penalties and weight decay, bad input."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from course_lib.gradcheck import numerical_gradient, numerical_gradient_array, rel_error
from course_lib.numpy import losses as NLS
from course_lib.numpy.parameter import Parameter
from course_lib.torch import losses as TLS

REDUCTIONS = ["mean", "sum", "none"]


def _regression_data(seed=0, shape=(6, 4)):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 2, shape), rng.normal(0, 2, shape)


def _probability_data(seed=0, shape=(6, 4)):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, shape), (rng.random(shape) < 0.5).astype(float)


def _soft_targets(seed=0, shape=(6, 4)):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 3, shape), rng.uniform(0, 1, shape)


def _class_data(seed=0, n=7, c=5):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 3, (n, c)), rng.integers(0, c, n)


# (name, class name, extra kwargs, torch reference, data maker)
CASES = [
    ("mse_loss", "MSELoss", {}, TF.mse_loss, _regression_data),
    ("l1_loss", "L1Loss", {}, TF.l1_loss, _regression_data),
    ("huber_loss", "HuberLoss", {}, TF.huber_loss, _regression_data),
    ("huber_loss", "HuberLoss", {"delta": 0.5}, TF.huber_loss, _regression_data),
    ("binary_cross_entropy", "BCELoss", {}, TF.binary_cross_entropy, _probability_data),
    ("binary_cross_entropy_with_logits", "BCEWithLogitsLoss", {},
     TF.binary_cross_entropy_with_logits, _soft_targets),
    ("binary_cross_entropy_with_logits", "BCEWithLogitsLoss",
     {"pos_weight": np.array([0.5, 1.0, 2.0, 3.0])},
     TF.binary_cross_entropy_with_logits, _soft_targets),
    ("cross_entropy", "CrossEntropyLoss", {}, TF.cross_entropy, _class_data),
    ("cross_entropy", "CrossEntropyLoss", {"label_smoothing": 0.2}, TF.cross_entropy,
     _class_data),
]
IDS = [f"{c[0]}-{list(c[2])}" for c in CASES]


def _torch_kwargs(kwargs):
    return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


def _reference(reference, x, t, reduction, kwargs):
    """Loss and d loss / d input (for "none": of sum(loss * dout)) by torch's built-in."""
    xt = torch.tensor(x, requires_grad=True)
    loss = reference(xt, torch.tensor(t), reduction=reduction, **_torch_kwargs(kwargs))
    dout = torch.tensor(np.random.default_rng(9).normal(size=loss.shape))
    loss.backward(dout)
    return loss.detach().numpy(), xt.grad.numpy(), dout.numpy()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,cls,kwargs,reference,data", CASES, ids=IDS)
def test_numpy_loss_matches_torch(name, cls, kwargs, reference, data, reduction):
    x, t = data()
    expected, dx_expected, dout = _reference(reference, x, t, reduction, kwargs)
    value = getattr(NLS, name)(x, t, reduction=reduction, **kwargs)
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-15)
    crit = getattr(NLS, cls)(reduction=reduction, **kwargs)
    np.testing.assert_allclose(crit(x, t), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(crit.backward(dout), dx_expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,cls,kwargs,reference,data", CASES, ids=IDS)
def test_torch_loss_matches_torch(name, cls, kwargs, reference, data, reduction):
    x, t = data()
    expected, dx_expected, dout = _reference(reference, x, t, reduction, kwargs)
    for use_class in (False, True):
        xt = torch.tensor(x, requires_grad=True)
        if use_class:
            loss = getattr(TLS, cls)(reduction=reduction, **_torch_kwargs(kwargs))(
                xt, torch.tensor(t))
        else:
            loss = getattr(TLS, name)(xt, torch.tensor(t), reduction=reduction,
                                      **_torch_kwargs(kwargs))
        np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-12, atol=1e-15)
        loss.backward(torch.tensor(dout))
        np.testing.assert_allclose(xt.grad.numpy(), dx_expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,cls,kwargs,reference,data", CASES, ids=IDS)
def test_numpy_loss_backward_gradcheck(name, cls, kwargs, reference, data, reduction):
    x, t = data(1, (3, 4)) if data is not _class_data else data(1, 3, 4)
    crit = getattr(NLS, cls)(reduction=reduction, **kwargs)
    if reduction == "none":
        dout = np.random.default_rng(2).normal(size=np.shape(crit(x, t)))
        numeric = numerical_gradient_array(lambda z: crit(z, t), x.copy(), dout)
    else:
        dout = 1.0
        numeric = numerical_gradient(lambda z: crit(z, t), x.copy())
    crit(x, t)
    assert rel_error(crit.backward(dout), numeric) < 1e-7


def test_bce_clamps_log_at_minus_100_like_torch():
    x = np.array([0.0, 1.0, 1e-50, 0.5])
    t = np.array([1.0, 0.0, 1.0, 1.0])
    expected = TF.binary_cross_entropy(torch.tensor(x), torch.tensor(t), reduction="none")
    np.testing.assert_array_equal(NLS.binary_cross_entropy(x, t, reduction="none"),
                                  expected.numpy())
    np.testing.assert_array_equal(
        TLS.binary_cross_entropy(torch.tensor(x), torch.tensor(t), reduction="none").numpy(),
        expected.numpy())
    xt = torch.tensor(x, requires_grad=True)  # finite gradients at the poles
    TLS.binary_cross_entropy(xt, torch.tensor(t)).backward()
    assert torch.isfinite(xt.grad).all()


@pytest.mark.parametrize("backend,tensor", [(NLS, np.asarray), (TLS, torch.tensor)])
def test_logit_losses_are_stable(backend, tensor):
    x = tensor(np.array([[-1000.0, 1000.0, 0.0]]))
    t = tensor(np.array([[1.0, 0.0, 1.0]]))
    bce = backend.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(np.asarray(bce)[0], [1000.0, 1000.0, np.log(2)], rtol=1e-15)
    ce = backend.cross_entropy(tensor(np.array([[1000.0, -1000.0]])), tensor(np.array([1])))
    np.testing.assert_allclose(float(ce), 2000.0, rtol=1e-15)


def test_cross_entropy_gradient_is_softmax_minus_target():
    x, t = _class_data(3)
    crit = NLS.CrossEntropyLoss()
    crit(x, t)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(crit.backward(), (p - np.eye(5)[t]) / len(t), rtol=1e-12,
                               atol=1e-16)


# -- penalties --------------------------------------------------------------------------

def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.normal(size=(3, 4))), Parameter(rng.normal(size=4))]


def test_numpy_penalties_values_and_gradients():
    params = _params()
    arrays = [p.data for p in params]
    assert NLS.l1_penalty(params) == pytest.approx(sum(np.abs(a).sum() for a in arrays),
                                                   rel=1e-15)
    assert NLS.l2_penalty(params) == pytest.approx(
        0.5 * sum(float((a ** 2).sum()) for a in arrays), rel=1e-15)
    assert NLS.l2_penalty(arrays) == NLS.l2_penalty(params)  # arrays work too
    for penalty, grad in ((NLS.l1_penalty, NLS.l1_penalty_grad),
                          (NLS.l2_penalty, NLS.l2_penalty_grad)):
        for i, a in enumerate(arrays):
            numeric = numerical_gradient(lambda _: penalty(arrays), a)
            assert rel_error(grad(params)[i], numeric) < 1e-7


def test_torch_penalties_match_numpy():
    params = _params(1)
    tensors = [torch.tensor(p.data, requires_grad=True) for p in params]
    np.testing.assert_allclose(TLS.l1_penalty(tensors).item(), NLS.l1_penalty(params),
                               rtol=1e-14)
    np.testing.assert_allclose(TLS.l2_penalty(tensors).item(), NLS.l2_penalty(params),
                               rtol=1e-14)
    TLS.l1_penalty(tensors).backward()
    for t, g in zip(tensors, NLS.l1_penalty_grad(params)):
        np.testing.assert_array_equal(t.grad.numpy(), g)


def test_weight_decay_is_the_gradient_of_lambda_l2_penalty():
    """torch.optim.SGD(weight_decay=lam) moves w exactly as a gradient step on
    lam * l2_penalty(w) does."""
    lam, lr = 0.3, 0.1
    w0 = torch.tensor(np.random.default_rng(4).normal(size=(5, 3)))
    decayed = torch.nn.Parameter(w0.clone())
    decayed.grad = torch.zeros_like(w0)
    torch.optim.SGD([decayed], lr=lr, weight_decay=lam).step()
    penalized = torch.nn.Parameter(w0.clone())
    (lam * TLS.l2_penalty([penalized])).backward()
    torch.optim.SGD([penalized], lr=lr).step()
    torch.testing.assert_close(decayed, penalized, rtol=1e-15, atol=0)
    step = -lr * lam * NLS.l2_penalty_grad([w0.numpy()])[0]
    np.testing.assert_allclose(decayed.detach().numpy(), w0.numpy() + step, rtol=1e-15)


# -- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("backend,tensor", [(NLS, np.asarray), (TLS, torch.tensor)])
def test_bad_arguments(backend, tensor):
    x, t = tensor(np.full((2, 3), 0.5)), tensor(np.full((2, 3), 1.0))
    with pytest.raises(ValueError, match="reduction"):
        backend.mse_loss(x, t, reduction="average")
    with pytest.raises(ValueError, match="reduction"):
        backend.MSELoss(reduction="max")
    with pytest.raises(ValueError, match="target must have the shape"):
        backend.l1_loss(x, tensor(np.ones((3, 2))))
    with pytest.raises(ValueError, match="delta"):
        backend.huber_loss(x, t, delta=0.0)
    with pytest.raises(ValueError, match="input must hold probabilities"):
        backend.binary_cross_entropy(x * 3, t)
    with pytest.raises(ValueError, match="target must hold class indices"):
        backend.cross_entropy(x, tensor(np.array([0, 3])))
    with pytest.raises(ValueError, match=r"target must have shape \(2,\) \(class indices\) or"):
        backend.cross_entropy(x, tensor(np.array([0.0, 1.0])))
    with pytest.raises(TypeError, match="target must hold integer"):
        backend.nll_loss(x, tensor(np.array([0.0, 1.0])))
    with pytest.raises(ValueError, match=r"target must have shape \(2,\)"):
        backend.cross_entropy(x, tensor(np.array([0, 1, 2])))
    with pytest.raises(ValueError, match="label_smoothing"):
        backend.cross_entropy(x, tensor(np.array([0, 1])), label_smoothing=1.5)
    with pytest.raises(ValueError, match="pos_weight"):
        backend.binary_cross_entropy_with_logits(x, t, pos_weight=tensor(np.ones(4)))
    with pytest.raises(ValueError, match="params"):
        backend.l2_penalty([])


def test_numpy_backward_before_forward_and_bad_dout():
    with pytest.raises(RuntimeError, match="before"):
        NLS.MSELoss().backward()
    crit = NLS.MSELoss()
    crit(np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="dout must be a scalar"):
        crit.backward(np.ones(3))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,cls,kwargs,reference,data", CASES, ids=IDS)
def test_cuda_losses_agree_with_cpu(name, cls, kwargs, reference, data):
    x, t = data()
    kw = _torch_kwargs(kwargs)
    cpu = getattr(TLS, name)(torch.tensor(x), torch.tensor(t), **kw)
    kw_gpu = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
    gpu = getattr(TLS, name)(torch.tensor(x).cuda(), torch.tensor(t).cuda(), **kw_gpu)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-12, atol=1e-14)
