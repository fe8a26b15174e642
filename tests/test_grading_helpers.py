"""The test-cell helpers of grader: messages, delegation detection, probes."""
import numpy as np
import pytest
import torch
from torch.nn import init as tinit

import exercise_checks as testing
from exercise_checks import probes, rules
from exercise_checks import (assert_close, assert_own_work, assert_raises,
                                        delegations, run_in_student)


# -- assert_close ----------------------------------------------------------------------

def test_assert_close_accepts_equal_values_and_tensors():
    assert_close(np.array([1.0, 2.0]), [1.0, 2.0], name="x")
    assert_close(torch.tensor([1.0, 2.0], dtype=torch.float64), np.array([1.0, 2.0]), name="t")
    assert_close(3.0 + 1e-12, 3.0, name="s", rtol=1e-10)


@pytest.mark.parametrize("actual, expected, words", [
    (None, [1.0], "is None: did you forget to return it"),
    (np.zeros(3), np.zeros(4), "has shape (3,) where (4,) was expected"),
    (np.array([1, 2]), np.array([1.0, 2.0]), "integer dtype int64 where floating point"),
    (np.array([1.0, np.nan]), np.array([1.0, 2.0]), "contains NaN"),
    (np.array([1.0, 2.5]), np.array([1.0, 2.0]), "differs from the expected values in 1 of 2"),
    (0.141, 0.100, "is 0.141 where 0.1 was expected"),
])
def test_assert_close_explains_what_differs(actual, expected, words):
    with pytest.raises(AssertionError) as info:
        assert_close(actual, expected, name="value", hint="the hint")
    assert words in str(info.value)
    if actual is not None:
        assert "Hint: the hint" in str(info.value)


def test_assert_close_equal_nan_compares_nan_positions():
    assert_close([np.nan, 1.0], [np.nan, 1.0], name="g", equal_nan=True)
    with pytest.raises(AssertionError, match="NaN in the wrong place"):
        assert_close([1.0, np.nan], [np.nan, 1.0], name="g", equal_nan=True)


# -- assert_own_work -------------------------------------------------------------------

def _own(shape, generator):
    return generator.uniform(-1, 1, size=shape)


def _through_alias(shape):
    return tinit.xavier_uniform_(torch.empty(shape))


def _inner_helper(x):
    return torch.nn.functional.dropout(x, 0.5)


def _through_helper(x):
    return _inner_helper(x) * 1.0


def _local_import(shape):
    from course_lib.numpy.init import xavier_normal_ as draw
    return draw(np.empty(shape))


def _torch_but_allowed(x):
    return torch.tanh(torch.as_tensor(x)).numpy()


class _Renamed(torch.optim.Adam):
    pass


class _OwnOptimizer(torch.optim.Optimizer):
    @torch.no_grad()
    def step(self, closure=None):
        return _helper_step(self)


def _helper_step(optimizer):
    return torch.optim.AdamW  # a reference, not a call: still a forbidden name


@pytest.mark.parametrize("func, assignment, found", [
    (_through_alias, "init", "torch.nn.init.xavier_uniform_"),
    (_through_helper, "dropout", "torch.nn.functional.dropout"),
    (_local_import, "init", "course_lib.numpy.init.xavier_normal_"),
    (_Renamed, "adam", "torch.optim.Adam"),
    (_OwnOptimizer, "adam", "torch.optim.AdamW"),
])
def test_delegation_is_found(func, assignment, found):
    names = [name for _, name in delegations(func, rules.forbidden(assignment))]
    assert found in names
    with pytest.raises(AssertionError, match="this part must be your own code, so it scores zero"):
        assert_own_work(func, rules.forbidden(assignment))


@pytest.mark.parametrize("func, assignment", [
    (_own, "init"), (_torch_but_allowed, "dropout"), (_inner_helper, "init")])
def test_own_work_passes(func, assignment):
    assert delegations(func, rules.forbidden(assignment)) == []
    assert_own_work(func, rules.forbidden(assignment))


def test_message_names_the_function_and_the_helper():
    with pytest.raises(AssertionError) as info:
        assert_own_work(_through_helper, rules.forbidden("dropout"))
    assert str(info.value).startswith("_through_helper calls torch.nn.functional.dropout "
                                      "(through _inner_helper)")


def test_prefixes_match_whole_components():
    assert delegations(_Renamed, ("torch.optim.Ada",)) == []
    assert rules.forbidden("clipping")
    with pytest.raises(ValueError, match="assignment"):
        rules.forbidden("nope")


# -- backend hook, assert_raises, probes -----------------------------------------------

class _FakeBackend:
    def __init__(self):
        self.calls = []

    def own_work(self, func, forbidden, name=None):
        self.calls.append(("own_work", func, forbidden, name))

    def run_in_student(self, probe, args, kwargs):
        self.calls.append(("run", probe, args, kwargs))
        return "ran"


def test_helpers_forward_to_the_grader_backend(monkeypatch):
    backend = _FakeBackend()
    monkeypatch.setattr(testing, "_backend", backend)
    assert_own_work(_through_alias, ["torch.nn.init"])        # judged by the backend
    assert run_in_student(probes.normal_init, (2,), std=3.0) == "ran"
    assert backend.calls == [("own_work", _through_alias, ("torch.nn.init",), "_through_alias"),
                             ("run", probes.normal_init, ((2,),), {"std": 3.0})]


def test_run_in_student_calls_the_probe_in_a_kernel():
    a = run_in_student(probes.normal_init, (3, 2), std=2.0, generator=np.random.default_rng(0))
    b = np.random.default_rng(0).normal(0.0, 2.0, size=(3, 2))
    assert np.array_equal(a, b)


def test_assert_raises():
    def bad(p):
        if p > 1:
            raise ValueError("p must be <= 1")
        return p

    assert_raises(ValueError, bad, 2)
    with pytest.raises(AssertionError, match="raised nothing where ValueError was expected"):
        assert_raises(ValueError, bad, 0.5)
    with pytest.raises(AssertionError, match="raised ValueError: p must be <= 1 where TypeError"):
        assert_raises(TypeError, bad, 2)


def test_train_with_optimizer_is_deterministic_and_trains():
    first = probes.train_with_optimizer(torch.optim.Adam, {"lr": 0.05}, seed=3, steps=15)
    again = probes.train_with_optimizer(torch.optim.Adam, {"lr": 0.05}, seed=3, steps=15)
    other = probes.train_with_optimizer(torch.optim.Adam, {"lr": 0.05}, seed=4, steps=15)
    assert np.array_equal(first["losses"], again["losses"])
    assert not np.array_equal(first["losses"], other["losses"])
    assert first["losses"][-1] < 0.8 * first["losses"][0]
    assert np.array_equal(first["params"][-1], np.zeros(2))    # the unused parameter
    grouped = probes.train_with_optimizer(torch.optim.SGD, {"lr": 0.1}, seed=3, steps=2,
                                          first_layer_lr=0.0)
    start = probes.train_with_optimizer(torch.optim.SGD, {"lr": 0.0}, seed=3, steps=1)
    assert np.array_equal(grouped["params"][0], start["params"][0])   # lr 0: frozen
    assert not np.array_equal(grouped["params"][2], start["params"][2])


def test_assert_close_shows_enough_digits_to_see_the_difference():
    with pytest.raises(AssertionError) as info:
        assert_close(np.array([0.14345512, 1.0]), np.array([0.14345534, 1.0]), name="param")
    assert "param[0] = 0.1434551 where 0.1434553 was expected" in str(info.value)
    with pytest.raises(AssertionError) as info:
        assert_close(1.0 + 1e-13, 1.0, name="x", rtol=1e-15)
    assert "x is 1.0000000000001 where 1 was expected" in str(info.value)
