"""Initializers of both backends: formulas, bit-identity with torch.nn.init, statistics."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from course_lib.core import init_math
from course_lib.numpy import init as ninit
from course_lib.torch import init as tinit

NONLINEARITIES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d", "sigmoid", "tanh", "relu",
                  "leaky_relu", "selu"]
SHAPES = [(3, 5), (7, 2), (16, 8, 3), (16, 8, 3, 3), (4, 2, 3, 2, 2)]


# -- gains and fans ---------------------------------------------------------------------

@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("param", [None, 0, 0.2, 3])
def test_calculate_gain_matches_torch(nonlinearity, param):
    expected = torch.nn.init.calculate_gain(nonlinearity, param)
    assert init_math.calculate_gain(nonlinearity, param) == expected
    assert ninit.calculate_gain(nonlinearity, param) == expected
    assert tinit.calculate_gain(nonlinearity, param) == expected


def test_calculate_gain_leaky_relu_formula():
    assert init_math.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / (1 + 0.04))
    assert init_math.calculate_gain("relu") == math.sqrt(2)
    assert init_math.calculate_gain("tanh") == 5 / 3


@pytest.mark.parametrize("bad", ["softmax", "ReLU", None])
def test_calculate_gain_unknown_nonlinearity(bad):
    with pytest.raises(ValueError, match="nonlinearity"):
        init_math.calculate_gain(bad)


@pytest.mark.parametrize("param", ["0.1", True, [0.1]])
def test_calculate_gain_bad_param(param):
    with pytest.raises(ValueError, match="param"):
        init_math.calculate_gain("leaky_relu", param)


@pytest.mark.parametrize("shape", SHAPES + [(0, 4), (5, 0, 3)])
def test_fans_match_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init_math.calculate_fan_in_and_fan_out(shape) == expected
    assert ninit.calculate_fan_in_and_fan_out(np.empty(shape)) == expected
    assert tinit.calculate_fan_in_and_fan_out(torch.empty(shape)) == expected


def test_fans_conv_by_hand():
    assert init_math.calculate_fan_in_and_fan_out((16, 8, 3, 5)) == (8 * 15, 16 * 15)


@pytest.mark.parametrize("shape", [(), (5,)])
def test_fans_need_two_dimensions(shape):
    with pytest.raises(ValueError, match="shape"):
        init_math.calculate_fan_in_and_fan_out(shape)


# -- torch backend: bit-identical to torch.nn.init ----------------------------------------

CASES = [  # (our name, torch.nn.init function, kwargs for both)
    ("uniform_", torch.nn.init.uniform_, {"a": -0.3, "b": 0.7}),
    ("normal_", torch.nn.init.normal_, {"mean": 0.5, "std": 2.0}),
    ("xavier_uniform_", torch.nn.init.xavier_uniform_, {"gain": 1.3}),
    ("xavier_normal_", torch.nn.init.xavier_normal_, {"gain": 0.7}),
    ("kaiming_uniform_", torch.nn.init.kaiming_uniform_, {}),
    ("kaiming_uniform_", torch.nn.init.kaiming_uniform_,
     {"a": 0.2, "mode": "fan_out", "nonlinearity": "leaky_relu"}),
    ("kaiming_normal_", torch.nn.init.kaiming_normal_, {"nonlinearity": "relu"}),
    ("kaiming_normal_", torch.nn.init.kaiming_normal_,
     {"mode": "fan_out", "nonlinearity": "tanh"}),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(7, 5), (16, 8, 3, 3)])
@pytest.mark.parametrize("name,reference,kwargs", CASES)
def test_torch_init_bit_identical(name, reference, kwargs, shape, dtype):
    ours = torch.empty(shape, dtype=dtype)
    theirs = torch.empty(shape, dtype=dtype)
    out = getattr(tinit, name)(ours, **kwargs, generator=torch.Generator().manual_seed(7))
    reference(theirs, **kwargs, generator=torch.Generator().manual_seed(7))
    assert out is ours
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("ours,reference", [
    (tinit.lecun_uniform_, lambda t, g: torch.nn.init.kaiming_uniform_(
        t, nonlinearity="linear", generator=g)),
    (tinit.lecun_normal_, lambda t, g: torch.nn.init.kaiming_normal_(
        t, nonlinearity="linear", generator=g)),
    (tinit.glorot_uniform_, lambda t, g: torch.nn.init.xavier_uniform_(t, generator=g)),
    (tinit.glorot_normal_, lambda t, g: torch.nn.init.xavier_normal_(t, generator=g)),
    (tinit.he_uniform_, lambda t, g: torch.nn.init.kaiming_uniform_(t, generator=g)),
    (tinit.he_normal_, lambda t, g: torch.nn.init.kaiming_normal_(t, generator=g)),
])
def test_torch_lecun_and_aliases(ours, reference):
    a = torch.empty(9, 4, dtype=torch.float64)
    b = torch.empty(9, 4, dtype=torch.float64)
    ours(a, generator=torch.Generator().manual_seed(3))
    reference(b, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_torch_constant_zeros_ones_in_place_without_grad_tracking():
    w = torch.nn.Parameter(torch.empty(3, 4, dtype=torch.float64))
    assert tinit.constant_(w, 0.25) is w
    assert torch.equal(w.detach(), torch.full((3, 4), 0.25, dtype=torch.float64))
    assert w.grad_fn is None
    assert torch.equal(tinit.zeros_(w).detach(), torch.zeros(3, 4, dtype=torch.float64))
    assert torch.equal(tinit.ones_(w).detach(), torch.ones(3, 4, dtype=torch.float64))


def test_torch_default_generator_matches_torch():
    a, b = torch.empty(6, 5), torch.empty(6, 5)
    torch.manual_seed(11)
    tinit.kaiming_normal_(a)
    torch.manual_seed(11)
    torch.nn.init.kaiming_normal_(b)
    assert torch.equal(a, b)


# -- NumPy backend --------------------------------------------------------------------

def test_numpy_fill_functions():
    w = np.empty((3, 4))
    assert ninit.constant_(w, -1.5) is w and np.all(w == -1.5)
    assert np.all(ninit.zeros_(w) == 0) and np.all(ninit.ones_(w) == 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_init_keeps_dtype_and_is_reproducible(dtype):
    a = np.empty((20, 10), dtype=dtype)
    b = np.empty((20, 10), dtype=dtype)
    assert ninit.kaiming_uniform_(a, generator=np.random.default_rng(5)) is a
    ninit.kaiming_uniform_(b, generator=np.random.default_rng(5))
    assert a.dtype == dtype and np.array_equal(a, b)
    assert not np.array_equal(a, ninit.kaiming_uniform_(b, generator=np.random.default_rng(6)))


N_ROWS, N_COLS = 1000, 1000  # large tensors for the statistics

# (name, kwargs, expected std from the formula, "uniform" or "normal", mean)
FAN_IN, FAN_OUT = N_COLS, N_ROWS
STAT_CASES = [
    ("uniform_", {"a": -0.5, "b": 1.5}, 2 / math.sqrt(12), "uniform", 0.5),
    ("normal_", {"mean": 0.3, "std": 0.2}, 0.2, "normal", 0.3),
    ("xavier_uniform_", {"gain": 2.0}, 2.0 * math.sqrt(2 / (FAN_IN + FAN_OUT)), "uniform", 0),
    ("xavier_normal_", {}, math.sqrt(2 / (FAN_IN + FAN_OUT)), "normal", 0),
    ("kaiming_uniform_", {"nonlinearity": "relu"}, math.sqrt(2 / FAN_IN), "uniform", 0),
    ("kaiming_uniform_", {"a": 0.5}, math.sqrt(2 / 1.25 / FAN_IN), "uniform", 0),
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"},
     math.sqrt(2 / FAN_OUT), "normal", 0),
    ("kaiming_normal_", {"nonlinearity": "selu"}, 0.75 / math.sqrt(FAN_IN), "normal", 0),
    ("lecun_uniform_", {}, 1 / math.sqrt(FAN_IN), "uniform", 0),
    ("lecun_normal_", {}, 1 / math.sqrt(FAN_IN), "normal", 0),
]


def _check_moments(w, mean, std, kind):
    n = w.size
    # z-tests at 5 standard errors; the variance of a sample variance is
    # sigma^4 (kurtosis - 1) / n, kurtosis 3 (normal) or 9/5 (uniform).
    kurtosis = 3.0 if kind == "normal" else 1.8
    assert abs(w.mean() - mean) < 5 * std / math.sqrt(n)
    assert abs(w.var() - std ** 2) < 5 * std ** 2 * math.sqrt((kurtosis - 1) / n)
    if kind == "uniform":
        half_width = math.sqrt(3) * std
        assert w.min() >= mean - half_width and w.max() <= mean + half_width
        # the extremes of 10^6 uniform draws come within 10^-4 of the bounds
        assert w.max() > mean + half_width * (1 - 1e-4)
        assert w.min() < mean - half_width * (1 - 1e-4)


@pytest.mark.parametrize("name,kwargs,std,kind,mean", STAT_CASES)
def test_numpy_init_statistics(name, kwargs, std, kind, mean):
    w = getattr(ninit, name)(np.empty((N_ROWS, N_COLS)), **kwargs,
                             generator=np.random.default_rng(123))
    _check_moments(w, mean, std, kind)


@pytest.mark.parametrize("name,kwargs,std,kind,mean", STAT_CASES)
def test_torch_init_statistics(name, kwargs, std, kind, mean):
    w = getattr(tinit, name)(torch.empty(N_ROWS, N_COLS, dtype=torch.float64), **kwargs,
                             generator=torch.Generator().manual_seed(123))
    _check_moments(w.numpy(), mean, std, kind)


@pytest.mark.parametrize("name,kwargs", [(c[0], c[1]) for c in STAT_CASES])
def test_numpy_init_distribution_matches_torch(name, kwargs):
    """Two-sample Kolmogorov-Smirnov test of the NumPy draws against torch.nn.init's."""
    ours = getattr(ninit, name)(np.empty((300, 200)), **kwargs,
                                generator=np.random.default_rng(1))
    torch_name = {"lecun_uniform_": "kaiming_uniform_",
                  "lecun_normal_": "kaiming_normal_"}.get(name, name)
    torch_kwargs = dict(kwargs, nonlinearity="linear") if "lecun" in name else kwargs
    theirs = getattr(torch.nn.init, torch_name)(
        torch.empty(300, 200, dtype=torch.float64), **torch_kwargs,
        generator=torch.Generator().manual_seed(1))
    assert stats.ks_2samp(ours.ravel(), theirs.numpy().ravel()).pvalue > 1e-3
    # and the two backends compute the same bound/std formula: identical ranges
    if "uniform" in name:
        assert np.abs(ours).max() <= np.abs(theirs.numpy()).max() * 1.01 + 1e-12


def test_numpy_and_torch_bounds_identical():
    """Both backends derive bounds from core.init_math: same floats, e.g. xavier."""
    shape = (30, 70)
    a = init_math.uniform_bound(init_math.xavier_std(shape, 1.0))
    torch_a = math.sqrt(3.0) * (1.0 * math.sqrt(2.0 / float(30 + 70)))
    assert a == torch_a == math.sqrt(6 / 100)


def test_kaiming_empty_tensor_is_noop_with_warning():
    with pytest.warns(UserWarning, match="zero-element"):
        ninit.kaiming_uniform_(np.empty((0, 3)))
    with pytest.warns(UserWarning, match="zero-element"):
        tinit.kaiming_normal_(torch.empty(0, 3))


# -- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("module,make", [(ninit, lambda: np.empty((4, 3))),
                                         (tinit, lambda: torch.empty(4, 3))])
def test_bad_arguments(module, make):
    with pytest.raises(ValueError, match="mode"):
        module.kaiming_uniform_(make(), mode="fan_avg")
    with pytest.raises(ValueError, match="nonlinearity"):
        module.kaiming_normal_(make(), nonlinearity="swish")
    with pytest.raises(ValueError, match="shape"):
        module.xavier_uniform_(make()[0])
    with pytest.raises(ValueError, match="std"):
        module.normal_(make(), std=-1.0)
    with pytest.raises(TypeError, match="generator"):
        module.uniform_(make(), generator=12345)
    with pytest.raises(TypeError, match="tensor"):
        module.zeros_([1.0, 2.0])


def test_numpy_generator_type_is_checked():
    with pytest.raises(TypeError, match="generator"):
        ninit.normal_(np.empty(3), generator=torch.Generator())
    with pytest.raises(TypeError, match="generator"):
        tinit.normal_(torch.empty(3), generator=np.random.default_rng(0))


def test_mode_is_case_insensitive_like_torch():
    a = ninit.kaiming_uniform_(np.empty((4, 6)), mode="FAN_OUT",
                               generator=np.random.default_rng(0))
    b = ninit.kaiming_uniform_(np.empty((4, 6)), mode="fan_out",
                               generator=np.random.default_rng(0))
    assert np.array_equal(a, b)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_init_with_cpu_generator_equals_cpu():
    cpu = tinit.kaiming_uniform_(torch.empty(50, 40), generator=torch.Generator().manual_seed(0))
    gpu = tinit.kaiming_uniform_(torch.empty(50, 40, device="cuda"),
                                 generator=torch.Generator().manual_seed(0))
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
    g = torch.Generator(device="cuda").manual_seed(0)
    w = tinit.xavier_normal_(torch.empty(200, 300, device="cuda", dtype=torch.float64),
                             generator=g)
    _check_moments(w.cpu().numpy(), 0.0, math.sqrt(2 / 500), "normal")
