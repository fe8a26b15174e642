"""The new claims of chapters 6 (normalization) and 7 (tuning), asserted on the experiment
functions with the arguments the chapters use (the older claims are in
``test_claims_ch4_7.py``).

Each experiment runs once per module (module-scoped fixtures); the assertions leave
margins so that they hold for the seeded run and are not an accident of the last digit.
"""
import math

import numpy as np
import pytest
import torch

from course_lib.experiments import normalization as ch6
from course_lib.experiments import tuning as ch7
from course_lib.torch import layers


pytestmark = pytest.mark.usefixtures("torch_one_thread")


# ============================================================== chapter 6: normalization
@pytest.fixture(scope="module")
def deep():
    # the chapter's call: the deep networks, a noisy-batch-norm run, the 11th layer probed
    return ch6.deep_networks(ch6.DEEP_RUNS + ((15, "noisy", 0.01),), epochs=8, probe_layer=10,
                             seed=0)


def test_deep_networks_need_normalization(deep):
    final = {k: h["train_loss"][-1] for k, h in deep.items()}
    assert final[(15, "none", 0.01)] > 2.2  # stuck at ln 10
    assert abs(final[(15, "none", 0.01)] - math.log(10)) < 0.01
    assert final[(15, "batch", 0.01)] < 0.5
    assert final[(15, "batch", 0.01)] < final[(15, "layer", 0.01)] < 1.0
    assert final[(6, "none", 0.05)] < 0.5
    assert final[(6, "none", 0.5)] > 2.0  # diverged
    assert final[(6, "batch", 0.5)] < final[(6, "none", 0.05)]


def test_the_probe_does_not_change_training(deep):
    plain = ch6.deep_networks(((15, "batch", 0.01),), epochs=2, seed=0)[(15, "batch", 0.01)]
    probed = ch6.deep_networks(((15, "batch", 0.01),), epochs=2, probe_layer=10, seed=0)
    probed = probed[(15, "batch", 0.01)]
    assert probed["train_loss"] == plain["train_loss"] and probed["val_loss"] == plain["val_loss"]
    assert len(probed["shift"]) == 2 * math.ceil(1197 / 64)


def test_batchnorm_placement(deep):
    place = ch6.placement_comparison(("after",), depth=15, lr=0.01, epochs=8, seed=0)
    a, b = deep[(15, "batch", 0.01)]["train_loss"][-1], place["after"]["train_loss"][-1]
    assert a < 0.5 and b < 0.5 and abs(a - b) < 0.15


def test_batchnorm_steadies_a_layers_inputs(deep):
    # the story of Ioffe & Szegedy holds for this measure: batch norm pins the moments
    shift = {k[1]: np.median(h["shift"]) for k, h in deep.items() if k[0] == 15}
    assert shift["batch"] < 0.5 * shift["none"]


def test_noisy_batchnorm_shifts_the_inputs_and_still_trains(deep):
    # Santurkar et al. (2018): inject far more shift than the plain network has, and the
    # network still trains as well as with batch norm; without normalization it does not
    runs = {k[1]: h for k, h in deep.items() if k[0] == 15}
    shift = {k: np.median(h["shift"]) for k, h in runs.items()}
    noisy, batch, none = (runs[k]["train_loss"][-1] for k in ("noisy", "batch", "none"))
    assert shift["noisy"] > 10 * shift["batch"]
    assert shift["noisy"] > 5 * shift["none"]
    assert none > 2.2
    assert noisy < 0.5 and noisy < 1.25 * batch
    assert runs["noisy"]["val_error"][-1] < 1.5 * runs["batch"]["val_error"][-1]


def test_layer_input_shift_measures_the_moments():
    # a model whose layer input does not change has shift 0; doubling the input doubles std
    model = layers.Sequential(layers.Identity(), layers.Linear(3, 2, device="cpu"))
    probe = ch6.LayerInputShift(torch.randn(50, 3, generator=torch.Generator().manual_seed(0)), 0)
    probe.on_train_begin({"model": model})
    probe.on_batch_end(0, {})
    probe.probe = 2 * probe.probe
    probe.on_batch_end(1, {})
    probe.on_train_end({})
    shifts = probe.shifts()
    assert shifts[0] == 0.0
    m0, s0 = probe.moments[1]
    expected = (m0.abs().mean() + s0.mean()) / s0.mean()
    assert shifts[1] == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="layer"):
        ch6.LayerInputShift(probe.probe, 5).on_train_begin({"model": model})


def test_noisy_batchnorm_noise():
    g = torch.Generator().manual_seed(0)
    nbn = ch6.NoisyBatchNorm1d(4, scale=(1.0, 1.5), shift=0.3, generator=g)
    x = torch.randn(64, 4, generator=g)
    with torch.no_grad():
        y1, y2 = nbn(x), nbn(x)
        z = nbn.bn(x)
        s, m = y1.std(0) / z.std(0), (y1 - z * (y1.std(0) / z.std(0))).mean(0)
    assert not torch.allclose(y1, y2)  # new noise at every step
    assert torch.all((s >= 1.0) & (s <= 1.5)) and torch.all(m.abs() <= 0.3 + 1e-6)
    nbn.eval()
    with torch.no_grad():
        torch.testing.assert_close(nbn(x), 1.25 * nbn.bn(x))
    with pytest.raises(ValueError, match="shift"):
        ch6.NoisyBatchNorm1d(4, shift=-1.0)


@pytest.fixture(scope="module")
def wn():
    return ch6.weight_norm_runs(seed=0)


def test_weight_norm_alone_does_not_rescue_the_deep_network(wn):
    assert wn["same_function"] < 1e-6  # g = ||v||: the same network as before
    assert wn[(15, "weight", 0.01)]["train_loss"][-1] > 2.2


def test_weight_norm_with_data_dependent_init(wn, deep):
    h15 = wn[(15, "weight+init", 0.01)]["train_loss"]
    assert h15[-1] < 1.5 and h15[-1] < 0.5 * h15[0]          # it trains...
    assert deep[(15, "batch", 0.01)]["train_loss"][-1] < 0.5 * h15[-1]  # ... batch norm better
    assert (wn[(6, "weight+init", 0.05)]["train_loss"][-1]
            < 0.5 * deep[(6, "none", 0.05)]["train_loss"][-1])
    # diverges (NaN) where batch norm trains
    assert not all(math.isfinite(v) for v in wn[(6, "weight+init", 0.5)]["train_loss"])
    assert deep[(6, "batch", 0.5)]["train_loss"][-1] < 0.5


def test_weight_normalize_parametrization():
    model = ch6.weight_normalize(ch6.deep_net(3, seed=0))
    lin = model[0]
    g, v = lin.parametrizations.weight.original0, lin.parametrizations.weight.original1
    torch.testing.assert_close(lin.weight, g * v / v.norm(dim=1, keepdim=True))
    x = torch.randn(200, 64, generator=torch.Generator().manual_seed(1))
    init = ch6.weight_normalize(ch6.deep_net(3, seed=0), x)
    with torch.no_grad():
        z = init[0](x)
    torch.testing.assert_close(z.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0, unbiased=False), torch.ones(64), atol=1e-4, rtol=0)


def test_keras_momentum_is_one_minus_torch_momentum():
    mc = ch6.momentum_conventions(seed=0)
    run = mc["running_mean"]
    assert mc["keras_vs_torch"] < 1e-12
    # Keras's 0.99 typed into PyTorch follows the last batch, not the average
    last = np.abs(run["typed in"] - mc["batch_mean"]).mean()
    assert last < 0.05 * np.abs(run["translated"] - mc["batch_mean"]).mean()
    assert abs(run["translated"][-1] - 5.0) < 0.5


def test_forgetting_eval_changes_predictions():
    fe = ch6.forgotten_eval(seed=0)
    assert fe["eval"] < 0.06
    assert abs(fe["train_full"] - fe["eval"]) < 0.02
    assert fe["train_8"] > 2 * fe["eval"]
    assert fe["train_8_sorted"] > 0.5


def test_variance_needs_the_mean():
    v = ch6.variance_without_the_mean(seed=0)
    assert v["median_ratio"] > 1.5
    np.testing.assert_allclose(v["right"], np.var(
        ch6.digits_split(seed=0, scale="raw")["x_train"].double().numpy(), axis=0), rtol=1e-12)


# =================================================================== chapter 7: tuning
def test_tpe_starts_with_random_trials():
    # Optuna's default: 10 random start-up trials; with n_startup_trials=4 and a seed, the
    # first 4 are exactly those of RandomSampler(seed) and the 5th is TPE's own
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    default = optuna.samplers.TPESampler()
    assert default._n_startup_trials == 10

    def objective(trial):
        return (math.log10(trial.suggest_float("lr", 1e-4, 1e-1, log=True)) + 2.5) ** 2

    def params(sampler, n):
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=n)
        return [t.params["lr"] for t in study.trials]

    tpe = params(optuna.samplers.TPESampler(n_startup_trials=4, seed=0), 6)
    rnd = params(optuna.samplers.RandomSampler(seed=0), 6)
    assert tpe[:4] == rnd[:4] and tpe[4:] != rnd[4:]
    assert tpe == params(optuna.samplers.TPESampler(n_startup_trials=4, seed=0), 6)


def test_optuna_study_marks_its_random_trials():
    study = ch7.optuna_study(n_trials=12, n_startup_trials=4, epochs=8, seed=0)
    assert [t["random"] for t in study["trials"]] == [True] * 4 + [False] * 8
    assert study["best_value"] < 0.7 * study["default_value"]
    assert 1e-3 <= study["best_params"]["lr"] <= 3e-2
    assert study["trials"][study["best_number"]]["value"] == study["best_value"]


def test_best_of_many_is_optimistic():
    bom = ch7.best_of_many(seed=0)
    best = bom["best_val_error"]
    assert abs(best[0] - bom["true_error"]) < 0.001   # one model: unbiased
    assert np.all(np.diff(best) < 0)                  # more models, lower best score
    assert best[list(bom["n_models"]).index(30)] < 0.7 * bom["true_error"]


@pytest.fixture(scope="module")
def cv():
    return ch7.kfold_scores(k=5, epochs=8, seed=0)


def test_kfold_spread_follows_the_error_rate_not_the_fit(cv):
    small, wide = cv["width 4 (underfits)"], cv["width 128"]
    assert small["mean"] > 0.3 and wide["mean"] < 0.06
    # the source's claim, "the spread is low for an underfitting model", is the wrong way round
    assert small["std"] > 2 * wide["std"]
    for r in (small, wide):
        assert len(r["errors"]) == 5
        assert 0.5 < r["std"] / r["binomial_std"] < 2.0
    # a single split could have reported anything between these
    assert wide["errors"].max() - wide["errors"].min() > 1.5 * wide["binomial_std"]


def test_kfold_folds_partition_the_digits():
    from sklearn.model_selection import KFold

    folds = list(KFold(n_splits=5, shuffle=True, random_state=0).split(np.zeros(1797)))
    val = np.concatenate([v for _, v in folds])
    assert sorted(val) == list(range(1797))


@pytest.fixture(scope="module")
def tl():
    return ch7.transfer_learning((1, 2, 5, 20), seed=0)


def test_fine_tuning_helps_most_with_few_labels(tl):
    e = tl["error"]
    gain = e["scratch"] - e["fine-tune"]
    assert gain[0] > 0.01 and gain[1] > 0.01      # 1 and 2 labels per class
    assert abs(gain[-1]) < 0.01                    # 20 labels: no difference
    assert gain[0] > gain[-1]
    assert tl["source_error"] < 0.1


def test_frozen_features_fall_behind(tl):
    e = tl["error"]
    assert abs(e["frozen"][0] - e["scratch"][0]) < 0.03      # 1 label: about as good
    assert np.all(e["frozen"][1:] > e["fine-tune"][1:])
    assert e["frozen"][-1] > 1.5 * e["fine-tune"][-1]
    for name, err in e.items():
        assert np.all(np.diff(err) < 0), name               # more labels, lower error


def test_class_subset_relabels():
    x = torch.arange(10.0)[:, None]
    y = torch.tensor([0, 5, 6, 1, 9, 5, 7, 8, 2, 6])
    xs, ys = ch7.class_subset(x, y, (5, 6, 7, 8, 9))
    assert xs[:, 0].tolist() == [1, 2, 4, 5, 6, 7, 9]
    assert ys.tolist() == [0, 1, 4, 0, 2, 3, 1]


def test_frozen_batchnorm_statistics_move_in_training_mode():
    fb = ch7.frozen_batchnorm(seed=0)
    np.testing.assert_array_equal(fb["eval_mode"], 0.0)
    # 20 updates with momentum 0.1 from 0 towards 2: 2 (1 - 0.9^20) = 1.76, up to batch noise
    np.testing.assert_allclose(fb["train_mode"], 2 * (1 - 0.9 ** 20), atol=0.15)


def test_tracked_runs_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = ch7.tracked_runs(str(tmp_path), lrs=(1e-4, 1e-3, 1e-2), epochs=8, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(runs)
    final = {}
    for name, h in runs.items():
        acc = EventAccumulator(str(tmp_path / name))
        acc.Reload()
        logged = [e.value for e in acc.Scalars("val_loss")]
        np.testing.assert_array_equal(np.float32(logged), np.float32(h["val_loss"]))
        final[name] = logged[-1]
    assert min(final, key=final.get) == "lr=0.01"  # the chapter's comparison


def test_bad_arguments_are_named_ch6_ch7():
    with pytest.raises(ValueError, match="n_startup_trials"):
        ch7.optuna_study(n_startup_trials=-1)
    with pytest.raises(ValueError, match="k"):
        ch7.kfold_scores(k=1)
    with pytest.raises(ValueError, match="labels_per_class"):
        ch7.transfer_learning((0,), repeats=1)
    with pytest.raises(ValueError, match="keras_momentum"):
        ch6.momentum_conventions(keras_momentum=1.5)
    with pytest.raises(ValueError, match="variant"):
        ch6.weight_norm_runs(((6, "spectral", 0.1),))
