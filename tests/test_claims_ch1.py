"""The claims of chapter 1 added with its babysitting section, its "four bugs that do not
crash" and the minibatch-variance formula, checked on the chapter's own experiments
(same functions, same arguments, same seeds as book/01_training_loop.md).

The older chapter-1 claims (batch sizes, losses, standardization) are in
``test_claims_ch1_3.py``.
"""
import math

import numpy as np
import pytest
import torch

from course_lib import diagnostics
from course_lib.experiments import training_loop as ch1


# ------------------------------------------------------------- minibatch variance
@pytest.fixture(scope="module")
def noise():
    return ch1.gradient_noise(batch_sizes=(1, 4, 16, 64), draws=2000, seed=0)


def test_minibatch_variance_matches_the_finite_population_formula(noise):
    ratio = noise["measured"] / noise["exact"]
    assert np.all(np.abs(ratio - 1) < 0.03), ratio  # the prose: within about 1 %


def test_minibatch_variance_falls_like_one_over_b(noise):
    b, n = noise["batch_sizes"], noise["n_train"]
    # exact: S^2 / B * (N - B) / (N - 1); B times it is S^2 times the correction
    np.testing.assert_allclose(noise["exact"] * b / ((n - b) / (n - 1)), noise["s2"], rtol=1e-12)
    assert np.all(np.diff(noise["measured"]) < 0)


def test_minibatch_variance_vanishes_for_the_full_batch():
    small = ch1.gradient_noise(batch_sizes=(1259,), draws=3, seed=0)
    assert small["n_train"] == 1259
    assert small["exact"][0] == 0.0
    assert small["measured"][0] < 1e-25


# ------------------------------------------------------------------ initial loss
@pytest.fixture(scope="module")
def init_check():
    return ch1.initial_loss_check(out_scales=(1.0, 0.01), hidden=64, lr=0.5, epochs=2, seed=0)


def test_scaled_output_layer_starts_at_ln_k(init_check):
    assert init_check["ln_k"] == pytest.approx(math.log(10))
    assert abs(init_check[0.01]["epoch_loss"][0] - math.log(10)) < 0.02


def test_randn_output_layer_starts_far_above_ln_k(init_check):
    assert init_check[1.0]["epoch_loss"][0] > 1.5 * math.log(10)
    # the logits scale with the output layer: 100 times the weights, 100 times the std
    assert init_check[1.0]["logit_std"] == pytest.approx(100 * init_check[0.01]["logit_std"])


def test_overconfident_start_spikes_and_lags_after_one_epoch(init_check):
    randn, scaled = init_check[1.0], init_check[0.01]
    assert randn["batch_loss"][:40].max() > 5 * math.log(10)
    assert scaled["batch_loss"][:40].max() < 1.1 * math.log(10)
    assert randn["epoch_loss"][1] > 1.5 * scaled["epoch_loss"][1]


def test_babysit_mlp_rejects_an_unknown_init():
    with pytest.raises(ValueError, match="hidden_init"):
        ch1.babysit_mlp([4, 3, 2], 0, hidden_init="he")


# --------------------------------------------------------------------- gradients
@pytest.fixture(scope="module")
def grads():
    return ch1.gradients_at_init(("default", "xavier"), sizes=(64, 64, 64, 64, 10), seed=0)


def test_hidden_layer_gradients_have_about_the_same_size(grads):
    for run in grads.values():
        stds = [s["std"] for s in run["stats"][:-1]]
        assert max(stds) / min(stds) < 1.5, stds


def test_output_layer_gradient_is_much_larger_than_the_hidden_ones(grads):
    stats = grads["default"]["stats"]
    hidden = np.mean([s["std"] for s in stats[:-1]])
    assert 10 < stats[-1]["std"] / hidden < 50  # the prose: 23 times


def test_xavier_tanh_gain_gives_larger_hidden_gradients_than_the_default(grads):
    mean = {k: np.mean([s["std"] for s in v["stats"][:-1]]) for k, v in grads.items()}
    assert 2.5 < mean["xavier"] / mean["default"] < 6  # the prose: 3.8 times


def test_histogram_arrays_are_the_gradients_of_the_stats(grads):
    for run in grads.values():
        for s in run["stats"]:
            g = run["grads"][s["name"]]
            assert g.std() == pytest.approx(s["std"], rel=1e-12)
            assert np.linalg.norm(g) == pytest.approx(s["norm"], rel=1e-12)


# ----------------------------------------------------------- update-to-data ratio
@pytest.fixture(scope="module")
def ratio():
    return ch1.update_ratio_history(lrs=(0.01, 0.1, 0.5), sizes=(64, 64, 64, 64, 10),
                                    epochs=3, seed=0)


def test_first_step_ratio_is_proportional_to_the_learning_rate(ratio):
    np.testing.assert_allclose(ratio[0.5]["ratios"][0] / ratio[0.01]["ratios"][0], 50.0,
                               rtol=1e-9)


def test_ratio_is_the_sgd_step_over_the_weight():
    """With plain SGD, ||W_after - W_before|| = lr ||grad||: check the ratio that
    update_to_data_ratio reports against that, on one step."""
    model = ch1.babysit_mlp([64, 16, 10], 0, out_scale=0.01)
    X, y = ch1.digits_training_split(0)
    from course_lib.torch import losses, optim

    opt = optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    losses.cross_entropy(model(X[:32]), y[:32]).backward()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    expected = {n: 0.1 * float(p.grad.norm()) / float(p.detach().norm())
                for n, p in model.named_parameters() if float(p.detach().norm()) > 0}
    opt.step()
    after = {n: p.detach() for n, p in model.named_parameters()}
    got = diagnostics.update_to_data_ratio(before, after)
    for n, value in expected.items():
        assert got[n] == pytest.approx(value, rel=1e-10)


def test_scaled_output_layer_starts_with_updates_larger_than_its_weights(ratio):
    assert ratio[0.5]["ratios"][0, -1] > 1
    assert ratio[0.5]["ratios"][-1, -1] < 0.1 * ratio[0.5]["ratios"][0, -1]


def test_hidden_ratio_medians_and_losses_order_with_the_learning_rate(ratio):
    med = {lr: np.median(ratio[lr]["ratios"][:, :-1]) for lr in (0.01, 0.1, 0.5)}
    assert med[0.01] < 1e-3 < med[0.1] < med[0.5]
    loss = {lr: ratio[lr]["epoch_loss"][-1] for lr in (0.01, 0.1, 0.5)}
    assert loss[0.01] > loss[0.1] > loss[0.5]
    assert loss[0.01] > 1.0  # "learning slowly"


# ---------------------------------------------------------------- spirals
def test_spiral_network_fits_its_training_set():
    spiral = ch1.spiral_fit(n_samples=300, hidden=64, lr=0.5, epochs=150, batch_size=50, seed=0)
    assert spiral["accuracy"] > 0.95
    assert spiral["epoch_loss"][-1] < 0.1 < 1.0 < spiral["epoch_loss"][0]
    untrained = ch1.predict_fn(spiral["untrained"])(spiral["X"]).argmax(1)
    assert (untrained == spiral["y"]).mean() < 0.6
    logits = ch1.predict_fn(spiral["model"])(spiral["X"])
    assert logits.shape == (300, 3) and logits.dtype == np.float64


# ------------------------------------------------------------- four bugs
def test_weight_data_in_forward_cuts_autograd():
    wd = ch1.weight_data_in_forward(steps=50, lr=0.5, seed=0)
    assert wd["weight"]["grad_is_none"] is False
    assert wd["weight.data"]["grad_is_none"] is True
    assert wd["weight.data"]["weight_change"] == 0.0
    assert wd["weight"]["weight_change"] > 0.5
    assert wd["weight"]["loss"][0] == wd["weight.data"]["loss"][0]  # same start
    assert wd["weight.data"]["loss"][1] > 3 * wd["weight"]["loss"][1]


def test_forgotten_zero_grad_sums_the_gradients_and_hurts():
    zg = ch1.forgotten_zero_grad(steps=80, lr=0.5, seed=0)
    assert zg["sum_error"] < 1e-12
    assert zg["grad_norm_ratio"] > 2
    assert zg["with"]["loss"][0] == zg["without"]["loss"][0]
    without = zg["without"]["loss"]
    assert without[-1] > 2 * without.min()  # it drops, then rises again
    assert without[-1] > 3 * zg["with"]["loss"][-1]


def test_double_softmax_has_a_floor_and_trains_worse():
    ds = ch1.double_softmax(hidden=32, lr=0.5, epochs=10, seed=0)
    K = 10
    assert ds["bound"] == pytest.approx(-math.log(math.e / (math.e + K - 1)))
    assert ds["softmax"]["epoch_loss"].min() > ds["bound"]
    assert ds["logits"]["epoch_loss"][-1] < 0.2
    assert ds["logits"]["accuracy"] > ds["softmax"]["accuracy"] + 0.02
    assert ds["logits"]["nll"] < ds["softmax"]["nll"]


def test_double_softmax_floor_is_reached_by_a_one_hot_probability():
    from course_lib.torch import losses

    # the best probabilities a softmax can hand to cross_entropy: one-hot on the true class
    p = torch.zeros(1, 10, dtype=torch.float64)
    p[0, 3] = 1.0
    floor = float(losses.cross_entropy(p, torch.tensor([3])))
    assert floor == pytest.approx(math.log1p(9 / math.e), rel=1e-12)
    # any other probability vector does worse
    q = torch.softmax(torch.randn(200, 10, dtype=torch.float64,
                                  generator=torch.Generator().manual_seed(0)), dim=1)
    worse = losses.cross_entropy(q, torch.full((200,), 3), reduction="none")
    assert float(worse.min()) > floor


def test_sigmoid_before_bce_with_logits_has_a_floor():
    """Question 5 of the chapter: a positive example's loss is at least log(1 + 1/e)."""
    from course_lib.torch import losses

    z = torch.linspace(-30, 30, 2001, dtype=torch.float64)
    loss = losses.binary_cross_entropy_with_logits(torch.sigmoid(z), torch.ones_like(z),
                                                   reduction="none")
    assert float(loss.min()) >= math.log1p(math.exp(-1)) - 1e-12
    assert float(loss.min()) == pytest.approx(math.log1p(math.exp(-1)), rel=1e-9)


def test_rms_is_not_the_standard_deviation():
    vm = ch1.variance_without_mean(seed=0)
    assert np.all(vm["ratio"] > 1)  # every feature has a non-zero mean
    assert vm["ratio"].max() > 5
    # mean of squares = variance + squared mean: the rms misses the mean's share
    np.testing.assert_allclose(vm["rms"] ** 2, vm["std"] ** 2 + vm["mean"] ** 2, rtol=1e-10)
    assert np.abs(vm["wrong_mean"]).min() > 0.5
    assert np.abs(vm["right_mean"]).max() < 1e-12
    np.testing.assert_allclose(vm["right_std"], 1.0, rtol=1e-12)
