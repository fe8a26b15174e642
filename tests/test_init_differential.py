"""Initializers against torch.nn.init over random configurations (hypothesis).

The torch backend must be bit-identical to ``torch.nn.init`` for an equally seeded
generator; the NumPy backend draws from NumPy, so its draws are tested statistically: their
distribution against the exact one (scipy) or against torch's draws (two-sample KS), and
the algebra an initializer promises (orthogonality).
"""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from course_lib.numpy import init as ninit
from course_lib.torch import init as tinit

DTYPES = st.sampled_from([torch.float32, torch.float64])
SHAPES = st.lists(st.integers(1, 7), min_size=2, max_size=4).map(tuple)
SEEDS = st.integers(0, 2 ** 31 - 1)
GAINS = st.sampled_from([0.0, 0.5, 1.0, 5 / 3, math.sqrt(2.0), 3.0])
NONLINEARITIES = st.sampled_from(["linear", "conv2d", "sigmoid", "tanh", "relu",
                                  "leaky_relu", "selu"])
MODES = st.sampled_from(["fan_in", "fan_out"])
# (mean, std, a, b): both of torch's branches (accepted mass above and below 0.3), a
# one-sided cut, a point, and the 2-std warning.
TRUNC = st.one_of(
    st.tuples(st.floats(-1, 1), st.floats(0.1, 3), st.floats(-3, -0.5), st.floats(0.5, 3)),
    st.sampled_from([(0.0, 1.0, -2.0, 2.0), (0.0, 1.0, 1.0, 5.0), (0.5, 2.0, -0.1, 0.3),
                     (0.0, 0.02, -0.04, 0.04), (0.0, 1.0, 0.5, 0.5), (3.0, 1.0, -1.0, 0.0)]))


def _pair(shape, dtype):
    return torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _same(ours_fn, theirs_fn, shape, dtype, seed):
    ours, theirs = _pair(shape, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = ours_fn(ours, generator=_gen(seed))
        theirs_fn(theirs, generator=_gen(seed))
    assert out is ours
    assert torch.equal(ours, theirs), (ours, theirs)


# -- torch backend: bit-identical ----------------------------------------------------------

@given(SHAPES, DTYPES, SEEDS, GAINS)
def test_orthogonal_bit_identical(shape, dtype, seed, gain):
    _same(lambda t, generator: tinit.orthogonal_(t, gain, generator=generator),
          lambda t, generator: torch.nn.init.orthogonal_(t, gain, generator=generator),
          shape, dtype, seed)


@given(SHAPES, DTYPES, SEEDS, TRUNC)
def test_trunc_normal_bit_identical(shape, dtype, seed, args):
    mean, std, a, b = args
    _same(lambda t, generator: tinit.trunc_normal_(t, mean, std, a, b, generator=generator),
          lambda t, generator: torch.nn.init.trunc_normal_(t, mean, std, a, b,
                                                           generator=generator),
          shape, dtype, seed)


@given(SHAPES, DTYPES, SEEDS, GAINS, st.sampled_from(["xavier_uniform_", "xavier_normal_"]))
def test_xavier_bit_identical(shape, dtype, seed, gain, name):
    _same(lambda t, generator: getattr(tinit, name)(t, gain, generator=generator),
          lambda t, generator: getattr(torch.nn.init, name)(t, gain, generator=generator),
          shape, dtype, seed)


@given(SHAPES, DTYPES, SEEDS, st.floats(-2, 2), MODES, NONLINEARITIES,
       st.sampled_from(["kaiming_uniform_", "kaiming_normal_"]))
def test_kaiming_bit_identical(shape, dtype, seed, a, mode, nonlinearity, name):
    kw = dict(a=a, mode=mode, nonlinearity=nonlinearity)
    _same(lambda t, generator: getattr(tinit, name)(t, **kw, generator=generator),
          lambda t, generator: getattr(torch.nn.init, name)(t, **kw, generator=generator),
          shape, dtype, seed)


@given(SHAPES, DTYPES, SEEDS, st.floats(-3, 3), st.floats(0, 3))
def test_uniform_normal_bit_identical(shape, dtype, seed, low, width):
    _same(lambda t, generator: tinit.uniform_(t, low, low + width, generator=generator),
          lambda t, generator: torch.nn.init.uniform_(t, low, low + width,
                                                      generator=generator),
          shape, dtype, seed)
    _same(lambda t, generator: tinit.normal_(t, low, width, generator=generator),
          lambda t, generator: torch.nn.init.normal_(t, low, width, generator=generator),
          shape, dtype, seed)


@given(SHAPES, DTYPES, st.floats(-1e3, 1e3))
def test_constant_zeros_ones_identical(shape, dtype, val):
    for ours, theirs in [(lambda t: tinit.constant_(t, val),
                          lambda t: torch.nn.init.constant_(t, val)),
                         (tinit.zeros_, torch.nn.init.zeros_),
                         (tinit.ones_, torch.nn.init.ones_)]:
        a, b = _pair(shape, dtype)
        assert torch.equal(ours(a), theirs(b))


def test_orthogonal_and_trunc_normal_default_generator_match_torch():
    for ours, theirs in [(tinit.orthogonal_, torch.nn.init.orthogonal_),
                         (tinit.trunc_normal_, torch.nn.init.trunc_normal_)]:
        a, b = _pair((6, 4), torch.float64)
        torch.manual_seed(5)
        ours(a)
        torch.manual_seed(5)
        theirs(b)
        assert torch.equal(a, b)


def test_trunc_normal_and_orthogonal_on_a_parameter_track_no_grad():
    w = torch.nn.Parameter(torch.empty(4, 6, dtype=torch.float64))
    for fn in (tinit.orthogonal_, tinit.trunc_normal_):
        assert fn(w, generator=_gen(0)) is w
        assert w.grad_fn is None and w.requires_grad


def test_orthogonal_empty_is_noop():
    for module, t in [(tinit, torch.zeros(0, 3)), (ninit, np.zeros((0, 3)))]:
        assert module.orthogonal_(t) is t


# -- NumPy backend: statistics ---------------------------------------------------------

@given(SHAPES, st.sampled_from([np.float32, np.float64]), SEEDS, GAINS)
def test_numpy_orthogonal_is_orthogonal(shape, dtype, seed, gain):
    w = ninit.orthogonal_(np.empty(shape, dtype=dtype), gain,
                          generator=np.random.default_rng(seed))
    assert w.dtype == dtype
    m = w.reshape(shape[0], -1).astype(np.float64)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    tol = 100 * np.finfo(dtype).eps * max(gain, 1.0) ** 2
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(len(gram)), rtol=0, atol=tol)


def test_numpy_orthogonal_is_haar_distributed():
    """For Haar-distributed Q in O(n): E[tr Q] = 0 and E[(tr Q)^2] = 1 (Diaconis &
    Shahshahani 1994). A QR without the sign correction fails the first."""
    rng = np.random.default_rng(2024)
    n, draws = 4, 4000
    traces = np.array([np.trace(ninit.orthogonal_(np.empty((n, n)), generator=rng))
                       for _ in range(draws)])
    se = math.sqrt(1.0 / draws)  # Var[tr Q] = 1
    assert abs(traces.mean()) < 5 * se
    # Var[(tr Q)^2] = E[(tr Q)^4] - 1 = 3 - 1 = 2 for n >= 4
    assert abs((traces ** 2).mean() - 1.0) < 5 * math.sqrt(2.0 / draws)
    # the same moments from torch.nn.init (sanity of the criterion itself)
    g = torch.Generator().manual_seed(0)
    theirs = np.array([torch.trace(torch.nn.init.orthogonal_(
        torch.empty(n, n, dtype=torch.float64), generator=g)).item() for _ in range(draws)])
    assert abs(theirs.mean()) < 5 * se


def test_numpy_orthogonal_entries_match_torch_distribution():
    ours = np.concatenate([ninit.orthogonal_(np.empty((8, 5)),
                                             generator=np.random.default_rng(i)).ravel()
                           for i in range(200)])
    g = torch.Generator().manual_seed(1)
    theirs = torch.cat([torch.nn.init.orthogonal_(torch.empty(8, 5, dtype=torch.float64),
                                                  generator=g).ravel()
                        for _ in range(200)]).numpy()
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.0, 1.0, 1.0, 5.0),
                                          (0.5, 2.0, -0.1, 0.3), (0.0, 0.02, -0.04, 0.04),
                                          (1.0, 0.5, -3.0, 0.0), (0.0, 3.0, -1.0, 8.0)])
def test_numpy_trunc_normal_distribution(mean, std, a, b):
    """One-sample KS test of 20000 draws against scipy's truncated normal, and the bounds."""
    w = ninit.trunc_normal_(np.empty((200, 100)), mean, std, a, b,
                            generator=np.random.default_rng(7))
    assert w.min() >= a and w.max() <= b
    exact = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    assert stats.kstest(w.ravel(), exact.cdf).pvalue > 1e-3
    n = w.size
    assert abs(w.mean() - exact.mean()) < 5 * exact.std() / math.sqrt(n)
    # and torch's draws pass the same test (the reference is right)
    t = torch.nn.init.trunc_normal_(torch.empty(200, 100, dtype=torch.float64), mean, std, a,
                                    b, generator=_gen(7))
    assert stats.kstest(t.numpy().ravel(), exact.cdf).pvalue > 1e-3


@given(SHAPES, st.sampled_from([np.float32, np.float64]), SEEDS, TRUNC)
def test_numpy_trunc_normal_bounds_and_dtype(shape, dtype, seed, args):
    mean, std, a, b = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = ninit.trunc_normal_(np.empty(shape, dtype=dtype), mean, std, a, b,
                                generator=np.random.default_rng(seed))
    assert w.dtype == dtype
    assert np.all(w >= dtype(a)) and np.all(w <= dtype(b))


def test_numpy_new_inits_reproducible():
    for fn in (ninit.orthogonal_, ninit.trunc_normal_):
        a = fn(np.empty((5, 7)), generator=np.random.default_rng(3))
        b = fn(np.empty((5, 7)), generator=np.random.default_rng(3))
        assert np.array_equal(a, b)


def test_trunc_normal_warns_like_torch():
    for module, t in [(tinit, torch.empty(5)), (ninit, np.empty(5))]:
        with pytest.warns(UserWarning, match="more than 2 std"):
            module.trunc_normal_(t, mean=5.0, std=1.0, a=-1.0, b=1.0)


# -- bad input: the public argument is named ---------------------------------------------

@pytest.mark.parametrize("module,make", [(ninit, lambda s: np.empty(s)),
                                         (tinit, lambda s: torch.empty(s))])
def test_bad_arguments_name_the_public_argument(module, make):
    for fn in (module.orthogonal_, module.xavier_uniform_, module.xavier_normal_):
        with pytest.raises(ValueError, match=r"^gain must be >= 0"):
            fn(make((3, 4)), gain=-1.0)
        with pytest.raises(TypeError, match=r"^gain"):
            fn(make((3, 4)), gain="1")
    with pytest.raises(ValueError, match=r"^tensor must have at least 2 dimensions"):
        module.orthogonal_(make((3,)))
    with pytest.raises(ValueError, match=r"^std must be > 0"):
        module.trunc_normal_(make((3,)), std=0.0)
    with pytest.raises(ValueError, match=r"^b must be >= -2"):
        module.trunc_normal_(make((3,)), a=-2.0, b=-3.0)
    with pytest.raises(ValueError, match=r"^mean must not be NaN"):
        module.trunc_normal_(make((3,)), mean=float("nan"))
    with pytest.raises(ValueError, match=r"^a must be a number"):
        module.kaiming_uniform_(make((3, 4)), a="0.1")
    with pytest.raises(TypeError, match="generator"):
        module.orthogonal_(make((3, 4)), generator=1)
    with pytest.raises(TypeError, match="generator"):
        module.trunc_normal_(make((3, 4)), generator=1)
