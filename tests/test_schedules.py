"""Schedules against torch.optim.lr_scheduler, SWA against torch.optim.swa_utils, and the
learning-rate range test."""
import copy
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as torch_sched
from torch.optim import swa_utils

from course_lib.numpy import optim as np_optim
from course_lib.numpy import schedules as np_sched
from course_lib.numpy.parameter import Parameter
from course_lib.torch import schedules as th_sched

# closed forms vs torch's recursive updates: a few roundings apart (measured <= 3e-14)
RTOL = 1e-12
LRS = (0.1, 0.5)  # two param groups


def torch_sgd(momentum=0.9):
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    return torch.optim.SGD([{"params": [params[0]], "lr": LRS[0]},
                            {"params": [params[1]], "lr": LRS[1]}], lr=LRS[0],
                           momentum=momentum)


def numpy_sgd(momentum=0.9):
    params = [Parameter(np.zeros(2)), Parameter(np.zeros(3))]
    return np_optim.SGD([{"params": [params[0]], "lr": LRS[0]},
                         {"params": [params[1]], "lr": LRS[1]}], lr=LRS[0],
                        momentum=momentum)


SCHEDULES = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[40, 3, 12, 12], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.95)),
    ("CosineAnnealingLR", dict(T_max=30)),
    ("CosineAnnealingLR", dict(T_max=25, eta_min=0.01)),  # past T_max it rises again
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.05, end_factor=0.8, total_iters=40)),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=101)),
    ("OneCycleLR", dict(max_lr=[1.0, 3.0], epochs=10, steps_per_epoch=10 + 1, pct_start=0.25,
                        anneal_strategy="linear", three_phase=True, base_momentum=0.8,
                        max_momentum=0.9, div_factor=10.0, final_div_factor=100.0)),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULES)]


@pytest.mark.parametrize("name, kwargs", SCHEDULES, ids=IDS)
def test_schedule_matches_torch_on_both_kinds_of_optimizer(name, kwargs):
    ref_opt, ours_th_opt, ours_np_opt = torch_sgd(), torch_sgd(), numpy_sgd()
    ref = getattr(torch_sched, name)(ref_opt, **kwargs)
    ours_th = getattr(th_sched, name)(ours_th_opt, **kwargs)
    ours_np = getattr(np_sched, name)(ours_np_opt, **kwargs)
    for _ in range(100):
        expected = ref.get_last_lr()
        for sched, opt in ((ours_th, ours_th_opt), (ours_np, ours_np_opt)):
            np.testing.assert_allclose(sched.get_last_lr(), expected, rtol=RTOL, atol=0)
            np.testing.assert_allclose([g["lr"] for g in opt.param_groups], expected,
                                       rtol=RTOL, atol=0)
            # one-cycle also cycles the momentum
            np.testing.assert_allclose([g["momentum"] for g in opt.param_groups],
                                       [g["momentum"] for g in ref_opt.param_groups],
                                       rtol=RTOL, atol=0)
        for opt, sched in ((ref_opt, ref), (ours_th_opt, ours_th), (ours_np_opt, ours_np)):
            opt.step()
            sched.step()


def test_one_cycle_cycles_adams_beta1_and_stops_at_total_steps():
    def adam(module):
        p = (torch.nn.Parameter(torch.zeros(2)) if module is torch.optim
             else Parameter(np.zeros(2)))
        return module.Adam([p], lr=1e-3, betas=(0.9, 0.99))

    ref_opt, ours_opt = adam(torch.optim), adam(np_optim)
    ref = torch_sched.OneCycleLR(ref_opt, max_lr=0.1, total_steps=30)
    ours = np_sched.OneCycleLR(ours_opt, max_lr=0.1, total_steps=30)
    for _ in range(29):
        ref_opt.step()
        ref.step()
        ours.step()
        np.testing.assert_allclose(ours.get_last_lr(), ref.get_last_lr(), rtol=RTOL)
        assert ours_opt.param_groups[0]["betas"][1] == 0.99
        np.testing.assert_allclose(ours_opt.param_groups[0]["betas"][0],
                                   ref_opt.param_groups[0]["betas"][0], rtol=RTOL)
    ours.step()  # step 30 = total_steps is still allowed, as in torch
    with pytest.raises(ValueError, match="total_steps"):
        ours.step()


def test_numpy_optimizer_steps_with_the_scheduled_lr():
    p = Parameter(np.zeros(1))
    opt = np_optim.SGD([p], lr=0.2)
    sched = np_sched.CosineAnnealingLR(opt, T_max=10)
    moves, lrs = [], []
    for _ in range(10):
        p.data[...] = 0.0
        lrs.append(sched.get_last_lr()[0])
        p.grad = np.ones(1)
        opt.step()
        sched.step()
        moves.append(-float(p.data[0]))
    assert moves == lrs
    assert lrs[0] == 0.2 and lrs[-1] < lrs[0]


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(mode="min", factor=0.5, patience=2, threshold=0.1, cooldown=2, min_lr=0.02),
    dict(mode="max", factor=0.3, patience=1, threshold_mode="abs", threshold=0.05),
    dict(mode="min", patience=0, threshold_mode="abs", min_lr=[0.05, 0.001], eps=1e-3),
])
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    rng = np.random.default_rng(0)
    # a loss that improves, then wanders on a plateau, then improves a bit
    losses = np.concatenate([np.linspace(2.0, 1.0, 10), 1.0 + 0.05 * rng.standard_normal(40),
                             np.linspace(0.95, 0.8, 10)])
    ref_opt, ours_opt = torch_sgd(), numpy_sgd()
    ref = torch_sched.ReduceLROnPlateau(ref_opt, **kwargs)
    ours = np_sched.ReduceLROnPlateau(ours_opt, **kwargs)
    reductions = 0
    for loss in losses:
        ref.step(loss)
        ours.step(loss)
        assert ours.get_last_lr() == ref.get_last_lr()
        assert [g["lr"] for g in ours_opt.param_groups] == ref.get_last_lr()
        assert ours.num_bad_epochs == ref.num_bad_epochs and ours.best == ref.best
        reductions += ours.get_last_lr()[0] < LRS[0]
    assert reductions > 0  # the sequence does trigger reductions


def test_reduce_lr_on_plateau_accepts_a_tensor_metric():
    ours = np_sched.ReduceLROnPlateau(numpy_sgd(), patience=0)
    ours.step(torch.tensor(1.0))
    ours.step(torch.tensor(2.0))
    assert ours.get_last_lr() == pytest.approx([LRS[0] * 0.1, LRS[1] * 0.1], rel=1e-15)


def test_sequential_warmup_then_cosine_matches_torch():
    def build(module, opt):
        warmup = module.LinearLR(opt, start_factor=0.1, total_iters=5)
        cosine = module.CosineAnnealingLR(opt, T_max=45, eta_min=1e-3)
        return module.SequentialLR(opt, [warmup, cosine], milestones=[5])

    ref_opt, ours_opt = torch_sgd(), numpy_sgd()
    ref, ours = build(torch_sched, ref_opt), build(np_sched, ours_opt)
    seen = []
    for _ in range(60):
        np.testing.assert_allclose(ours.get_last_lr(), ref.get_last_lr(), rtol=RTOL)
        np.testing.assert_allclose([g["lr"] for g in ours_opt.param_groups],
                                   ref.get_last_lr(), rtol=RTOL)
        seen.append(ours.get_last_lr()[0])
        ref_opt.step()
        ref.step()
        ours.step()
    assert seen[0] == pytest.approx(0.01) and max(seen) == pytest.approx(0.1)


def test_sequential_three_phases_matches_torch():
    def build(module, opt):
        scheds = [module.ExponentialLR(opt, gamma=0.9), module.StepLR(opt, 3, gamma=0.5),
                  module.MultiStepLR(opt, milestones=[2, 4], gamma=0.2)]
        return module.SequentialLR(opt, scheds, milestones=[4, 10])

    ref_opt, ours_opt = torch_sgd(), torch_sgd()
    ref, ours = build(torch_sched, ref_opt), build(th_sched, ours_opt)
    for _ in range(20):
        np.testing.assert_allclose(ours.get_last_lr(), ref.get_last_lr(), rtol=RTOL)
        ref_opt.step()
        ref.step()
        ours.step()


@pytest.mark.parametrize("build", [
    lambda opt: np_sched.CosineAnnealingLR(opt, T_max=20, eta_min=0.01),
    lambda opt: np_sched.OneCycleLR(opt, max_lr=1.0, total_steps=30),
    lambda opt: np_sched.SequentialLR(opt, [np_sched.LinearLR(opt, 0.2, total_iters=4),
                                            np_sched.ExponentialLR(opt, 0.9)], [4]),
], ids=["cosine", "one-cycle", "sequential"])
def test_scheduler_state_dict_round_trip(build):
    opt = numpy_sgd()
    sched = build(opt)
    for _ in range(7):
        sched.step()
    saved_sched, saved_opt = sched.state_dict(), opt.state_dict()
    expected = []
    for _ in range(10):
        sched.step()
        expected.append(sched.get_last_lr())

    opt2 = numpy_sgd()
    sched2 = build(opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    resumed = []
    for _ in range(10):
        sched2.step()
        resumed.append(sched2.get_last_lr())
    assert resumed == expected


BAD = [
    (lambda o: th_sched.StepLR(o, step_size=0), ValueError, "step_size"),
    (lambda o: th_sched.StepLR(o, step_size=2.5), TypeError, "step_size"),
    (lambda o: th_sched.ExponentialLR(o, gamma=-0.5), ValueError, "gamma"),
    (lambda o: th_sched.MultiStepLR(o, milestones=[3, -1]), ValueError, r"milestones\[1\]"),
    (lambda o: th_sched.CosineAnnealingLR(o, T_max=0), ValueError, "T_max"),
    (lambda o: th_sched.LinearLR(o, start_factor=0.0), ValueError, "start_factor"),
    (lambda o: th_sched.LinearLR(o, end_factor=1.5), ValueError, "end_factor"),
    (lambda o: th_sched.OneCycleLR(o, max_lr=1.0), ValueError, "total_steps"),
    (lambda o: th_sched.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5),
     ValueError, "pct_start"),
    (lambda o: th_sched.OneCycleLR(o, max_lr=[1.0], total_steps=10), ValueError, "max_lr"),
    (lambda o: th_sched.OneCycleLR(o, 1.0, 10, anneal_strategy="exp"), ValueError,
     "anneal_strategy"),
    (lambda o: th_sched.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor"),
    (lambda o: th_sched.ReduceLROnPlateau(o, mode="average"), ValueError, "mode"),
    (lambda o: th_sched.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError,
     "threshold_mode"),
    (lambda o: th_sched.SequentialLR(o, [th_sched.StepLR(o, 2)], milestones=[3]),
     ValueError, "milestones"),
    (lambda o: th_sched.SequentialLR(o, [th_sched.ReduceLROnPlateau(o),
                                           th_sched.StepLR(o, 2)], [3]),
     TypeError, r"schedulers\[0\]"),
    (lambda o: th_sched.LambdaLR(o, lr_lambda=0.5), TypeError, "lr_lambda"),
    (lambda o: th_sched.LambdaLR(o, lr_lambda=[lambda t: 1.0]), ValueError, "lr_lambda"),
    (lambda o: th_sched.MultiplicativeLR(o, lr_lambda="x"), TypeError, "lr_lambda"),
    (lambda o: th_sched.ConstantLR(o, factor=0.0), ValueError, "factor"),
    (lambda o: th_sched.ConstantLR(o, factor=1.5), ValueError, "factor"),
    (lambda o: th_sched.PolynomialLR(o, total_iters=0), ValueError, "total_iters"),
    (lambda o: th_sched.PolynomialLR(o, power=-1.0), ValueError, "power"),
    (lambda o: th_sched.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "T_0"),
    (lambda o: th_sched.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=1.5), TypeError,
     "T_mult"),
    (lambda o: th_sched.CyclicLR(o, 0.01, 0.1, mode="sawtooth"), ValueError, "mode"),
    (lambda o: th_sched.CyclicLR(o, 0.01, [0.1], step_size_up=4), ValueError, "max_lr"),
    (lambda o: th_sched.CyclicLR(o, 0.01, 0.1, step_size_up=0), ValueError, "step_size_up"),
    (lambda o: th_sched.CyclicLR(o, -0.01, 0.1), ValueError, "base_lr"),
    (lambda o: th_sched.ChainedScheduler([]), ValueError, "schedulers"),
    (lambda o: th_sched.ChainedScheduler([th_sched.StepLR(o, 2), th_sched.StepLR(numpy_sgd(), 2)]),
     ValueError, r"schedulers\[1\]"),
]


@pytest.mark.parametrize("make, error, argument", BAD, ids=[b[2] for b in BAD])
def test_bad_arguments_name_the_argument(make, error, argument):
    with pytest.raises(error, match=argument):
        make(numpy_sgd())


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="optimizer"):
        th_sched.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="last_epoch"):
        th_sched.StepLR(numpy_sgd(), step_size=2, last_epoch=3)
    with pytest.raises(ValueError, match="cycle_momentum"):
        th_sched.OneCycleLR(np_optim.Adagrad([Parameter(np.ones(1))]), 1.0, total_steps=5)
    with pytest.raises(ValueError, match="cycle_momentum"):
        th_sched.CyclicLR(np_optim.Adagrad([Parameter(np.ones(1))]), 0.01, 0.1)


# --- torch's chainable semantics: each was a bug of the closed forms ----------------------

def _both(build_and_run):
    """The same script on a torch.optim optimizer driven by torch's schedulers and by ours
    (on a course_lib.numpy optimizer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "lr_scheduler.step() before optimizer.step()"
        return build_and_run(torch_sched, torch_sgd()), build_and_run(np_sched, numpy_sgd())


def test_a_learning_rate_set_by_hand_is_kept_as_torch_keeps_it():
    def script(module, opt):
        sched = module.StepLR(opt, step_size=2, gamma=0.5)
        lrs = [opt.param_groups[0]["lr"]]
        opt.param_groups[0]["lr"] = 1.0  # by hand, after step 0
        lrs.append(opt.param_groups[0]["lr"])
        for _ in range(2):
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        return lrs

    ref, ours = _both(script)
    assert ours == ref
    assert ours[2] == 1.0  # kept: the closed form overwrote it with 0.1


def test_two_schedulers_on_one_optimizer_compose_as_torchs():
    def script(module, opt):
        a, b = module.ExponentialLR(opt, gamma=0.9), module.StepLR(opt, step_size=2)
        lrs = []
        for _ in range(4):
            a.step()
            b.step()
            lrs.append(opt.param_groups[1]["lr"])
        return lrs

    ref, ours = _both(script)
    assert ours == ref
    assert ours[1] == pytest.approx(LRS[1] * 0.9 ** 2 * 0.1, rel=1e-15)  # both factors


@pytest.mark.parametrize("name, kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.5)), ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
    ("LinearLR", dict(start_factor=0.2, total_iters=6)), ("ConstantLR", dict(total_iters=4)),
    ("PolynomialLR", dict(total_iters=8, power=2.0)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2)),
])
def test_resuming_with_last_epoch_matches_torch(name, kwargs):
    """The other way to resume: build the scheduler with ``last_epoch`` (the groups hold
    ``initial_lr``); CosineAnnealingLR then takes its first step from the closed form."""
    def script(module, opt):
        first = getattr(module, name)(opt, **kwargs)
        for _ in range(5):
            first.step()
        resumed = getattr(module, name)(opt, last_epoch=first.last_epoch, **kwargs)
        lrs = []
        for _ in range(12):
            resumed.step()
            lrs.append(resumed.get_last_lr())
        return lrs

    ref, ours = _both(script)
    assert ours == ref


def test_warm_restarts_with_fractional_epochs_match_torch():
    def script(module, opt):
        sched = module.CosineAnnealingWarmRestarts(opt, T_0=4, T_mult=2, eta_min=0.001)
        lrs = []
        for epoch in range(20):
            for batch in range(3):
                sched.step(epoch + batch / 3)
                lrs.append(sched.get_last_lr())
        return lrs

    ref, ours = _both(script)
    assert ours == ref
    with pytest.raises(ValueError, match="epoch"):
        np_sched.CosineAnnealingWarmRestarts(numpy_sgd(), T_0=4).step(-1)


def test_reduce_lr_on_plateau_after_add_param_group_extends_a_scalar_min_lr():
    def script(module, opt):
        sched = module.ReduceLROnPlateau(opt, patience=0, min_lr=0.04)
        sched.step(1.0)
        extra = (torch.nn.Parameter(torch.zeros(1)) if module is torch_sched
                 else Parameter(np.zeros(1)))
        opt.add_param_group({"params": [extra], "lr": 0.3})
        lrs = []
        for metric in [2.0, 3.0, 4.0]:
            sched.step(metric)  # raised "zip() argument 2 is shorter" before
            lrs.append(sched.get_last_lr())
        return lrs, sched.min_lrs

    ref, ours = _both(script)
    assert ours == ref
    assert ours[1] == [0.04] * 3

    opt = numpy_sgd()  # a list min_lr cannot be extended: torch refuses too
    sched = np_sched.ReduceLROnPlateau(opt, patience=0, min_lr=[0.0, 0.0])
    opt.add_param_group({"params": [Parameter(np.zeros(1))]})
    sched.step(1.0)
    with pytest.raises(RuntimeError, match="min_lr"):
        sched.step(2.0)


@pytest.mark.parametrize("metric", ["abc", "1.5", None, [1.0, 2.0], np.ones(3), True])
def test_reduce_lr_on_plateau_rejects_a_metric_that_is_not_a_number(metric):
    sched = np_sched.ReduceLROnPlateau(numpy_sgd())
    with pytest.raises(TypeError, match="metrics"):
        sched.step(metric)
    sched.step(np.float32(1.0))  # NumPy scalars and 0-d arrays are numbers
    sched.step(np.array(0.5))
    assert sched.best == 0.5


# --- stochastic weight averaging -----------------------------------------------------------

class TinyNumpyNet:
    """The part of the course_lib.numpy Module contract AveragedModel relies on."""

    def __init__(self, rng):
        self.weight = Parameter(rng.standard_normal((3, 2)))
        self.bias = Parameter(rng.standard_normal(3))
        self.running_mean = np.zeros(3)

    def parameters(self):
        return [self.weight, self.bias]

    def named_parameters(self):
        return [("weight", self.weight), ("bias", self.bias)]

    def state_dict(self):
        return {"weight": self.weight.data.copy(), "bias": self.bias.data.copy(),
                "running_mean": self.running_mean.copy()}

    def load_state_dict(self, state):
        self.weight.data[...] = state["weight"]
        self.bias.data[...] = state["bias"]
        self.running_mean[...] = state["running_mean"]

    def __call__(self, x):
        return x @ self.weight.data.T + self.bias.data


def test_numpy_swa_is_the_mean_of_the_snapshots():
    rng = np.random.default_rng(0)
    model = TinyNumpyNet(rng)
    swa = np_sched.AveragedModel(model)
    snapshots = []
    for _ in range(6):
        model.weight.data += rng.standard_normal((3, 2))
        model.bias.data -= rng.standard_normal(3)
        model.running_mean[:] = rng.standard_normal(3)
        snapshots.append([model.weight.data.copy(), model.bias.data.copy()])
        swa.update_parameters(model)
    assert swa.n_averaged == 6
    for i, p in enumerate(swa.parameters()):
        np.testing.assert_allclose(p.data, np.mean([s[i] for s in snapshots], axis=0),
                                   rtol=1e-12, atol=1e-15)
    # buffers are copied, not averaged; the model itself is untouched by the average
    np.testing.assert_array_equal(swa.module.running_mean, model.running_mean)
    np.testing.assert_array_equal(model.weight.data, snapshots[-1][0])
    x = rng.standard_normal((4, 2))
    np.testing.assert_allclose(swa(x), x @ swa.module.weight.data.T + swa.module.bias.data)


def test_numpy_swa_on_course_layers_averages_parameters_and_copies_buffers():
    from course_lib.numpy import layers

    rng = np.random.default_rng(1)
    model = layers.Sequential(layers.Linear(3, 4, generator=rng), layers.BatchNorm1d(4))
    swa = np_sched.AveragedModel(model)
    snapshots = []
    for _ in range(4):
        for p in model.parameters():
            p.data += rng.standard_normal(p.shape)
        model(rng.standard_normal((8, 3)))  # training mode: moves the running statistics
        snapshots.append([p.data.copy() for p in model.parameters()])
        swa.update_parameters(model)
    for i, p in enumerate(swa.parameters()):
        np.testing.assert_allclose(p.data, np.mean([s[i] for s in snapshots], axis=0),
                                   rtol=1e-12, atol=1e-15)
    for (name, ours), (_, theirs) in zip(swa.module.named_buffers(), model.named_buffers()):
        np.testing.assert_array_equal(ours, theirs, err_msg=name)


def test_torch_swa_matches_torch_averaged_model_and_the_mean():
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                torch.nn.Linear(4, 2)).double()
    ours, ref = th_sched.AveragedModel(model), swa_utils.AveragedModel(model)
    snapshots = []
    for _ in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
        model(torch.randn(8, 3, generator=gen, dtype=torch.float64))  # moves BN buffers
        snapshots.append([p.detach().clone() for p in model.parameters()])
        ours.update_parameters(model)
        ref.update_parameters(model)
    assert int(ours.n_averaged) == int(ref.n_averaged) == 5
    for i, (a, b) in enumerate(zip(ours.parameters(), ref.parameters())):
        mean = torch.stack([s[i] for s in snapshots]).mean(0)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(a, mean, rtol=1e-12, atol=1e-15)
    for a, b in zip(ours.buffers(), ref.buffers()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert set(ours.state_dict()) == set(ref.state_dict())


def test_update_bn_matches_torch():
    gen = torch.Generator().manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4, momentum=0.3),
                                torch.nn.ReLU(), torch.nn.BatchNorm1d(4)).double()
    batches = [(torch.randn(6, 3, generator=gen, dtype=torch.float64), None)
               for _ in range(4)]
    ours, ref = copy.deepcopy(model), copy.deepcopy(model)
    ours.eval()
    ref.eval()
    th_sched.update_bn(batches, ours)
    swa_utils.update_bn(batches, ref)
    for a, b in zip(ours.buffers(), ref.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    assert ours[1].momentum == 0.3 and not ours.training
    # the running mean of the first BN is the plain mean of the per-batch means
    batch_means = torch.stack([model[0](x).mean(0) for x, _ in batches]).mean(0)
    torch.testing.assert_close(ours[1].running_mean, batch_means.detach(), rtol=1e-12,
                               atol=1e-15)


def test_numpy_update_bn_averages_the_batch_statistics():
    from course_lib.numpy import layers

    rng = np.random.default_rng(2)
    linear = layers.Linear(3, 4, generator=rng)
    model = layers.Sequential(linear, layers.BatchNorm1d(4, momentum=0.3))
    model.eval()
    batches = [(rng.standard_normal((6, 3)), None) for _ in range(5)]
    np_sched.update_bn(batches, model)
    bn = model[1]
    outputs = [x @ linear.weight.data.T + linear.bias.data for x, _ in batches]
    np.testing.assert_allclose(bn.running_mean, np.mean([h.mean(0) for h in outputs], 0),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bn.running_var,
                               np.mean([h.var(0, ddof=1) for h in outputs], 0), rtol=1e-12)
    assert bn.momentum == 0.3 and not model.training


# --- learning-rate range test ---------------------------------------------------------------

def least_squares_problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 5))
    y = x @ rng.standard_normal(5) + 0.1 * rng.standard_normal(64)
    w = Parameter(np.zeros(5))
    opt = np_optim.SGD([w], lr=0.01)

    def train_step():
        residual = x @ w.data - y
        w.grad = 2 * x.T @ residual / len(y)
        opt.step()
        return float(np.mean(residual ** 2))

    return w, opt, train_step


def test_lr_range_test_sweeps_geometrically_and_stops_on_divergence():
    w, opt, train_step = least_squares_problem()
    lrs, losses = np_sched.lr_range_test(train_step, opt, start_lr=1e-4, end_lr=100.0,
                                         num_iters=60, smooth=0.3)
    full_sweep = np.geomspace(1e-4, 100.0, 60)
    assert 10 < len(lrs) < 60  # stopped early: plain SGD diverges long before lr = 100
    np.testing.assert_allclose(lrs, full_sweep[:len(lrs)], rtol=1e-14)
    ratios = lrs[1:] / lrs[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-12)
    assert losses[-1] > 5.0 * losses[:-1].min() or not np.isfinite(losses[-1])
    assert np.all(losses[:-1] <= 5.0 * np.minimum.accumulate(losses[:-1]))
    assert opt.param_groups[0]["lr"] == 0.01  # the optimizer is restored
    suggestion = np_sched.suggest_lr(lrs, losses)
    assert np.isfinite(suggestion) and lrs[0] <= suggestion <= lrs[-1]
    assert suggestion < lrs[np.argmin(losses)] * 1.0001  # picked on the descent


def test_lr_range_test_records_raw_losses_without_smoothing():
    _, opt, train_step = least_squares_problem(seed=1)
    calls = []

    def recording_step():
        calls.append(opt.param_groups[0]["lr"])
        return train_step()

    lrs, losses = np_sched.lr_range_test(recording_step, opt, start_lr=1e-3, end_lr=1e-2,
                                         num_iters=5, smooth=1.0)
    assert calls == list(lrs) and len(lrs) == 5  # no divergence at such small lrs
    assert np.all(np.diff(losses) < 0)  # the loss falls steadily


def test_lr_range_test_drives_a_torch_optimizer():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=gen)
    y = x.sum(1, keepdim=True)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def train_step():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    lrs, losses = th_sched.lr_range_test(train_step, opt, start_lr=1e-4, end_lr=50.0,
                                         num_iters=50)
    assert len(lrs) < 50 and opt.param_groups[0]["lr"] == 0.05
    assert opt.state_dict()["state"] == {}  # the momentum buffers are gone again
    assert lrs[0] <= th_sched.suggest_lr(lrs, losses) <= lrs[-1]


def test_lr_range_test_bad_arguments():
    _, opt, train_step = least_squares_problem()
    with pytest.raises(TypeError, match="train_step"):
        np_sched.lr_range_test(None, opt)
    with pytest.raises(ValueError, match="end_lr"):
        np_sched.lr_range_test(train_step, opt, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ValueError, match="smooth"):
        np_sched.lr_range_test(train_step, opt, smooth=0.0)
    with pytest.raises(ValueError, match="lrs"):
        np_sched.suggest_lr([1e-3, 1e-2], [1.0, 0.5])


@pytest.mark.parametrize("name, kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    ("ConstantLR", dict(factor=0.25, total_iters=4)),
    ("LinearLR", dict(start_factor=0.2, end_factor=0.9, total_iters=6)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("PolynomialLR", dict(total_iters=8, power=2.0)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
])
def test_closed_form_is_torchs_and_agrees_with_the_chainable_rule(name, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_opt, ours_opt = torch_sgd(), numpy_sgd()
        ref = getattr(torch_sched, name)(ref_opt, **kwargs)
        ours = getattr(np_sched, name)(ours_opt, **kwargs)
        for _ in range(20):
            assert ours._get_closed_form_lr() == ref._get_closed_form_lr()
            np.testing.assert_allclose(ours._get_closed_form_lr(), ours.get_last_lr(),
                                       rtol=1e-13, atol=1e-15)
            ref.step()
            ours.step()
