"""The quantitative claims of chapters 4-7, asserted on the same experiment functions,
with the same arguments, as the chapters call them.

Each experiment runs once per module (module-scoped fixtures); the assertions leave
margins so that they hold for the seeded run and are not an accident of the last digit.
"""
import math

import numpy as np
import pytest
import torch

from course_lib.experiments import normalization as ch6
from course_lib.experiments import optimizers as ch5
from course_lib.experiments import regularization as ch4
from course_lib.experiments import tuning as ch7


pytestmark = pytest.mark.usefixtures("torch_one_thread")


# =============================================================== chapter 4: regularization
@pytest.fixture(scope="module")
def poly():
    return ch4.polynomial_degree_sweep(range(0, 13), n_train=15, noise=0.25, seed=0)


def test_polynomial_training_error_falls_with_degree(poly):
    # nested least-squares models: the training error can only go down
    assert np.all(np.diff(poly["train_mse"]) <= 1e-9)
    assert poly["train_mse"][-1] < poly["bayes_mse"]  # degree 12 learns the noise


def test_polynomial_validation_error_is_u_shaped(poly):
    best = int(np.argmin(poly["val_mse"]))
    assert 3 <= poly["degrees"][best] <= 6
    assert poly["val_mse"][best] < 1.5 * poly["bayes_mse"]
    assert poly["val_mse"][1] > 3 * poly["val_mse"][best]    # degree 1 underfits
    assert poly["val_mse"][-1] > 10 * poly["val_mse"][best]  # degree 12 overfits


def test_error_analysis_verdicts():
    verdicts = {r["case"]: r["verdict"] for r in ch4.error_analysis_table()}
    assert verdicts == {"A1": "high variance", "A2": "high bias",
                        "A3": "high bias and high variance", "A4": "good fit",
                        "A5": "good fit"}


@pytest.fixture(scope="module")
def curves():
    return ch4.learning_curves_vs_epochs(seed=0)


def test_learning_curve_diagnoses(curves):
    for regime, h in curves.items():
        assert h["diagnosis"] == regime, regime


def test_learning_curve_regimes(curves):
    under, over = curves["underfit"], curves["overfit"]
    good, unrep = curves["good fit"], curves["unrepresentative validation"]
    assert under["train_loss"][-1] > 3 * ch4.TARGET_LOSS and under["val_error"][-1] > 0.3
    assert over["train_loss"][-1] < 0.01
    best = int(np.argmin(over["val_loss"]))
    assert best < 60 and over["val_loss"][-1] > 1.1 * over["val_loss"][best]
    assert good["val_error"][-1] < 0.05
    assert unrep["val_loss"][-1] < 0.9 * unrep["train_loss"][-1]


def test_learning_curve_against_size():
    size = ch4.learning_curves_vs_size(seed=0)
    assert np.all(size["train_error"] <= 0.02)
    assert np.all(np.diff(size["val_error"]) <= 0.01)  # falls, up to one point of noise
    assert size["val_error"][0] > 3 * size["val_error"][-1]


def test_split_sizes():
    split = ch4.split_sizes(1_000_000, (0.98, 0.01, 0.01), error_rate=0.05)
    assert (split["train"], split["val"], split["test"]) == (980_000, 10_000, 10_000)
    assert split["std_error"] == pytest.approx(math.sqrt(0.05 * 0.95 / 10_000), rel=1e-12)
    assert split["std_error"] < 0.0025


def test_sgd_l2_penalty_is_weight_decay():
    assert ch4.sgd_l2_equals_weight_decay(lr=0.1, weight_decay=0.01, steps=50, seed=0) < 1e-12


@pytest.fixture(scope="module")
def reg():
    return ch4.compare_regularizers(seed=0)


def test_penalties_shrink_weights(reg):
    for name in ("L2", "L1", "weight decay"):
        assert reg[name]["weight_norm"] < 0.95 * reg["none"]["weight_norm"], name


def test_l1_makes_weights_sparse(reg):
    for name in ("none", "L2", "weight decay"):
        assert reg["L1"]["small_fraction"] > 5 * reg[name]["small_fraction"], name
    assert reg["L1"]["small_fraction"] > 0.2


def test_penalties_stop_the_validation_loss_rising(reg):
    none = reg["none"]["history"]["val_loss"]
    assert none[-1] > 1.05 * min(none)
    for name in ("L2", "L1", "weight decay"):
        val = reg[name]["history"]["val_loss"]
        assert val[-1] < 1.03 * min(val), name
        assert val[-1] < none[-1], name


def test_penalties_hardly_change_the_error_with_100_examples(reg):
    errors = [r["history"]["val_error"][-1] for r in reg.values()]
    assert max(errors) - min(errors) < 0.02


def test_l2_is_not_weight_decay_under_adam():
    wd = ch4.adam_l2_vs_adamw(grad_scales=(1.0, 0.01), lr=1e-3, weight_decay=0.1, steps=2000)
    # AdamW: both weights shrink like pure decay, whatever their gradients
    np.testing.assert_allclose(wd["AdamW"][-1], wd["decay_factor"], rtol=0.01)
    # Adam + L2: the weight with small gradients collapses, the other barely moves
    assert wd["Adam + L2"][-1, 1] < 0.1
    assert wd["Adam + L2"][-1, 0] > 0.75


@pytest.fixture(scope="module")
def dstats():
    return ch4.dropout_statistics(p=0.5, n=200_000, seed=0)


def test_inverted_dropout(dstats):
    assert dstats["train_zero_fraction"] == pytest.approx(0.5, abs=0.01)
    assert dstats["train_max"] == pytest.approx(2.0, rel=1e-6)
    assert dstats["train_mean"] == pytest.approx(1.0, abs=0.01)
    assert dstats["eval_is_identity"]


def test_alpha_dropout_keeps_selu_statistics(dstats):
    assert abs(dstats["alpha_mean"]) < 0.02
    assert dstats["alpha_std"] == pytest.approx(1.0, abs=0.02)
    assert dstats["plain_std"] == pytest.approx(math.sqrt(2.0), abs=0.02)


def test_dropout_then_batchnorm_variance_shift(dstats):
    assert dstats["bn_running_var"] == pytest.approx(2.0, abs=0.1)
    assert dstats["bn_eval_std"] == pytest.approx(math.sqrt(0.5), abs=0.02)


def test_dropout_rate_sweep():
    sweep = ch4.dropout_rate_sweep((0.0, 0.2, 0.5, 0.8), seed=0)
    errors = {p: h["val_error"][-1] for p, h in sweep.items()}
    assert max(errors, key=errors.get) == 0.8  # too much dropout is the worst
    assert min(errors[0.2], errors[0.5]) > errors[0.0] - 0.01  # no gain on this problem
    assert sweep[0.8]["train_loss"][-1] > 3 * sweep[0.0]["train_loss"][-1]


def test_early_stopping_restores_the_best_epoch(curves):
    es = ch4.early_stopping_run(patience=10, max_epochs=150, seed=0)
    full = curves["overfit"]["val_loss"]
    assert es["best_epoch"] == int(np.argmin(full))
    assert es["stopped_epoch"] == es["best_epoch"] + 10
    assert es["restored_val_loss"] == pytest.approx(min(full), rel=1e-4)
    assert es["restored_val_loss"] < 0.95 * full[-1]


def test_augmentation_helps():
    aug = ch4.augmentation_run(n_train=100, epochs=150, batch_size=16, max_shift=1,
                               noise=0.1, seed=0)
    assert aug["augmented"]["val_error"][-1] < aug["none"]["val_error"][-1] - 0.02
    assert aug["augmented"]["val_loss"][-1] < 0.8 * aug["none"]["val_loss"][-1]


def test_ensemble_beats_its_average_member():
    ens = ch4.ensemble_run(n_models=5, n_train=100, seed=0)
    assert ens["ensemble_loss"] < ens["member_losses"].mean()
    assert ens["ensemble_error"] <= ens["member_errors"].mean()


def test_penalty_gradient_matches_autograd():
    model = ch4.digits_mlp((4, 3, 2), seed=0).double()
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for kind, strength in (("l2", 0.3), ("l1", 0.2)):
        model.zero_grad()
        model(x).sum().backward()
        ch4.PenaltyGradient(kind, strength).on_after_backward(0, {"model": model})
        got = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
        penalty = (0.5 * strength * sum((w ** 2).sum() for w in weights) if kind == "l2"
                   else strength * sum(w.abs().sum() for w in weights))
        (model(x).sum() + penalty).backward()
        for g, p in zip(got, model.parameters()):
            torch.testing.assert_close(g, p.grad, rtol=1e-12, atol=1e-12)


def test_random_shift_is_a_shift_in_training_and_identity_in_eval():
    x = torch.rand(20, 64, generator=torch.Generator().manual_seed(0))
    layer = ch4.RandomShift(max_shift=1, noise=0.0, generator=torch.Generator().manual_seed(1))
    out = layer(x)
    padded = torch.nn.functional.pad(x.reshape(-1, 8, 8), (1, 1, 1, 1))
    for i in range(len(x)):
        shifts = [padded[i, dy:dy + 8, dx:dx + 8].reshape(64)
                  for dy in range(3) for dx in range(3)]
        assert any(torch.equal(out[i], s) for s in shifts)
    layer.eval()
    assert torch.equal(layer(x), x)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="scale"):
        ch4.digits_split(scale="pixels")
    with pytest.raises(ValueError, match="n_train"):
        ch4.digits_split(0)
    with pytest.raises(ValueError, match="kind"):
        ch4.PenaltyGradient("l3", 0.1)
    with pytest.raises(ValueError, match="max_shift"):
        ch4.RandomShift(max_shift=-1)
    with pytest.raises(ValueError, match="fractions"):
        ch4.split_sizes(100, (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="surface"):
        ch5.optimizer_paths("valley")
    with pytest.raises(ValueError, match="name"):
        ch5.make_optimizer("LBFGS", [torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(ValueError, match="norm"):
        ch6.deep_net(4, norm="group")
    with pytest.raises(ValueError, match="optimizer"):
        ch7.train_trial(optimizer="Lion")


# ================================================================ chapter 5: optimizers
def test_adam_bias_correction():
    bc = ch5.adam_bias_correction(steps=300, lr=1e-3)
    assert bc["uncorrected"][0] == pytest.approx(1e-3 * 0.1 / math.sqrt(0.001), rel=1e-6)
    assert bc["uncorrected"].max() > 5e-3
    np.testing.assert_allclose(bc["corrected"], 1e-3, rtol=1e-7)
    np.testing.assert_allclose(bc["measured"], bc["corrected"], rtol=1e-10)


def test_adam_steps_match_torch():
    bc = ch5.adam_bias_correction(steps=50, lr=1e-3)
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.Adam([w], lr=1e-3)
    steps = []
    for _ in range(50):
        before = w.detach().clone()
        w.grad = torch.ones_like(w)
        opt.step()
        steps.append((before - w.detach()).item())
    np.testing.assert_allclose(bc["measured"], steps, rtol=1e-12)


def test_paths_on_the_ravine():
    paths = ch5.optimizer_paths("ravine")
    f = {name: float(ch5.steep_ravine(p[-1])) for name, p in paths.items()}
    assert f["Momentum"] < f["SGD"] / 10
    assert f["Nesterov"] < f["SGD"] / 100
    assert f["Adagrad"] < 1e-3 and f["RMSprop"] < 1e-3


def test_escaping_the_saddle():
    paths = ch5.optimizer_paths("saddle")
    esc = {name: ch5.escape_steps(p, threshold=1.0) for name, p in paths.items()}
    assert esc["SGD"] is None
    for name, most in (("Adagrad", 4), ("RMSprop", 4), ("Adam", 20), ("Momentum", 50),
                       ("Nesterov", 50)):
        assert esc[name] is not None and esc[name] <= most, name


def test_saddles_dominate_in_high_dimension():
    hs = ch5.hessian_signs(dims=(1, 2, 3, 4, 5, 6, 8, 10, 20, 50), samples=4000, seed=0)
    p, dims = hs["p_minimum"], hs["dims"]
    assert p[0] == pytest.approx(0.5, abs=0.03)
    assert np.all(np.diff(p) <= 0)
    assert np.all(p[(dims >= 3) & (dims <= 5)] < 0.5 ** dims[(dims >= 3) & (dims <= 5)])
    assert np.all(p[dims >= 6] == 0)
    np.testing.assert_allclose(hs["negative_fraction"], 0.5, atol=0.02)


def test_optimizers_on_digits():
    conv = ch5.digits_convergence(seed=0)
    final = {name: h["train_loss"][-1] for name, h in conv.items()}
    assert max(final, key=final.get) == "SGD"
    assert final["Momentum"] < final["SGD"] / 10


@pytest.fixture(scope="module")
def range_test():
    return ch5.lr_range(start_lr=1e-4, end_lr=10.0, num_iters=200, seed=0)


def test_lr_range_test(range_test):
    rt = range_test
    assert rt["min_loss_lr"] < rt["diverge_lr"]
    assert rt["losses"][-1] > 5 * min(rt["losses"])  # it stopped because the loss blew up
    assert rt["steepest_lr"] < rt["min_loss_lr"]


def test_lr_range_suggestions(range_test):
    rt = range_test
    lrs = [rt["half_diverge_lr"], rt["tenth_min_lr"], rt["steepest_lr"]]
    check = ch5.lr_check(lrs, seed=0)
    final = [check[float(lr)]["train_loss"][-1] for lr in lrs]
    assert final[0] == max(final)  # half the diverging rate is the most erratic
    assert final[2] == min(final)  # the steepest-descent point trains best here
    assert final[2] < 0.05


def test_schedule_curves():
    c = ch5.schedule_curves(epochs=30, lr=0.1)
    np.testing.assert_allclose(c["step"][[0, 9, 10, 20, 29]], [0.1, 0.1, 0.01, 0.001, 0.001],
                               rtol=1e-12)
    assert 0.01 < c["exponential"][-1] < 0.012
    assert c["cosine"][0] == pytest.approx(0.1) and np.all(np.diff(c["cosine"]) < 0)
    assert c["one-cycle"].max() == pytest.approx(0.1) and c["one-cycle"][0] < 0.01
    assert c["warm-up + cosine"][0] < 0.05 and c["warm-up + cosine"].max() == pytest.approx(0.1)


def test_swa_beats_the_last_iterate():
    swa = ch5.swa_run(epochs=40, swa_start=20, lr=0.1, seed=0)
    assert swa["swa_val_loss"] < swa["final_val_loss"]


# ============================================================== chapter 6: normalization
def test_standardization_conditions_the_loss():
    curv = ch6.curvature_by_scaling(("raw", "unit", "standard"), seed=0)
    assert curv["standard"]["condition"] < 1e-4 * curv["raw"]["condition"]
    assert curv["standard"]["condition"] < 1e-4 * curv["unit"]["condition"]
    assert curv["standard"]["max_stable_lr"] > 100 * curv["raw"]["max_stable_lr"]


def test_standardized_inputs_train_best():
    runs = ch6.input_scaling(("raw", "unit", "standard"), (0.001, 0.01, 0.1, 1.0), epochs=10,
                             seed=0)
    best = {s: min(r, key=lambda lr: r[lr]["train_loss"][-1]) for s, r in runs.items()}
    loss = {s: runs[s][best[s]]["train_loss"][-1] for s in runs}
    assert best["standard"] == 1.0 and best["unit"] == 1.0
    assert loss["standard"] < 0.5 * min(loss["raw"], loss["unit"])
    assert runs["raw"][1.0]["train_loss"][-1] > 1.0  # diverges at the rate standard data like


def test_batchnorm_modes():
    bn = ch6.batchnorm_modes(batches=300, batch_size=64, seed=0)
    np.testing.assert_allclose(bn["train_mean"], 0.0, atol=1e-5)
    np.testing.assert_allclose(bn["train_std"], 1.0, atol=1e-3)
    np.testing.assert_allclose(bn["running_mean"], bn["data_mean"], atol=0.15)
    np.testing.assert_allclose(bn["running_var"], bn["data_var"], rtol=0.15)
    assert bn["train_depends_on_batch"] > 0.05
    assert bn["eval_depends_on_batch"] == 0.0
    assert bn["layernorm_depends_on_batch"] == 0.0


# test_deep_networks_need_normalization and test_batchnorm_placement: test_claims_ch6_7.py
# (with the chapter's call, which adds a noisy-batch-norm run and a probe)


# =================================================================== chapter 7: tuning
def test_learning_rate_matters_most():
    sens = ch7.sensitivity(epochs=8, seed=0)
    spread = {n: r["val_loss"].max() / r["val_loss"].min() for n, r in sens.items()}
    for name in ("width", "weight_decay", "batch_size"):
        assert spread["lr"] > 5 * spread[name], name
    assert spread["weight_decay"] < 1.1


def test_random_search_beats_grid_search():
    gr = ch7.grid_vs_random(n_side=3, repeats=2000, weight=0.02, seed=0)
    assert len(np.unique(gr["grid"][:, 0])) == 3 and len(np.unique(gr["random"][:, 0])) == 9
    assert gr["random_wins"] > 0.5
    assert np.median(gr["random_regret"]) < np.median(gr["grid_regret"])


def test_log_scale_sampling():
    ls = ch7.log_sampling(n=100_000, seed=0)
    assert ls["lr_uniform"][-1] == pytest.approx(0.9, abs=0.01)
    assert ls["lr_uniform"][:2].sum() < 0.015
    np.testing.assert_allclose(ls["lr_log"], 0.25, atol=0.01)
    assert ls["beta_uniform_above_099"] == pytest.approx(0.009 / 0.099, abs=0.005)
    assert ls["beta_log_above_099"] == pytest.approx(0.5, abs=0.01)


# the Optuna study's claims: test_optuna_study_marks_its_random_trials in test_claims_ch6_7.py


def test_overfit_one_batch():
    one = ch7.overfit_one_batch(batch_size=32, steps=200, seed=0)
    assert one[0] > 2.0 and one[-1] < 0.02


def test_model_size_and_data():
    sd = ch7.size_vs_data((16, 64, 256), (100, 300, 1197), seed=0)
    err = sd["val_error"]
    assert np.all(np.diff(err, axis=1) < 0)          # more data helps every width
    assert np.all(err[-1] == err.min(axis=0))         # the widest is best at every size


def test_tuned_sgd_matches_adam():
    cmp = ch7.sgd_vs_adam((0.01, 0.03, 0.1), (3e-4, 1e-3, 3e-3), epochs=8, seed=0)
    sgd, adam = cmp["SGD"]["val_error"], cmp["AdamW"]["val_error"]
    assert abs(sgd.min() - adam.min()) < 0.015
    assert sgd.max() > 2 * sgd.min() and adam.max() > 2 * adam.min()
