"""Experiments of chapter 5, *Optimizers and learning rates*.

The optimizers and schedules are course_lib's own (``course_lib.torch.optim``,
``course_lib.torch.schedules``); the functions return numbers and arrays for the
chapter's plots and the claims in ``tests/test_claims_ch4_7.py``.
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib import surfaces
from course_lib.core import validate
from course_lib.torch import losses, optim, schedules
from course_lib.experiments.digits import (digits_mlp, digits_split, evaluate,
                                           train_classifier)

__all__ = [
    "OPTIMIZERS", "make_optimizer", "adam_bias_correction", "steep_ravine",
    "SURFACE_SETTINGS", "optimizer_paths", "escape_steps", "digits_convergence",
    "hessian_signs", "lr_range", "lr_check", "SCHEDULES", "schedule_curves",
    "schedule_comparison", "swa_run",
]

#: Each optimizer of the chapter with a learning rate that suits the digits MLP.
OPTIMIZERS = {
    "SGD": ("SGD", dict(lr=0.05)),
    "Momentum": ("SGD", dict(lr=0.05, momentum=0.9)),
    "Nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    "Adagrad": ("Adagrad", dict(lr=0.05)),
    "RMSprop": ("RMSprop", dict(lr=1e-3)),
    "Adam": ("Adam", dict(lr=1e-3)),
    "AdamW": ("AdamW", dict(lr=1e-3, weight_decay=1e-2)),
    "NAdam": ("NAdam", dict(lr=2e-3)),
    "Adamax": ("Adamax", dict(lr=2e-3)),
}


def make_optimizer(name, params, **overrides):
    """``course_lib.torch.optim`` optimizer ``name`` (a key of :data:`OPTIMIZERS`) with
    the chapter's settings, updated by ``overrides`` (e.g. ``lr=0.1``)."""
    validate.check_choice("name", name, tuple(OPTIMIZERS))
    cls, kwargs = OPTIMIZERS[name]
    return getattr(optim, cls)(params, **{**kwargs, **overrides})


# --------------------------------------------------------------- bias correction
def adam_bias_correction(*, steps=30, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, grad=1.0):
    """Adam's first steps on a constant gradient, with and without bias correction.

    With ``m_t = beta1 m_{t-1} + (1 - beta1) g`` and ``v_t = beta2 v_{t-1} + (1 - beta2) g^2``
    started at zero, the uncorrected step ``lr m_t / (sqrt(v_t) + eps)`` starts at
    ``lr (1 - beta1) / sqrt(1 - beta2)`` (3.2 lr for the defaults); the corrected one uses
    ``m_t / (1 - beta1^t)`` and ``v_t / (1 - beta2^t)`` and is ``lr`` from the first step
    (Kingma & Ba, 2015, section 3).

    Returns
    -------
    dict
        ``t`` (1..steps), ``uncorrected`` and ``corrected`` step sizes from the formulas,
        and ``measured``: the step sizes of ``course_lib.torch.optim.Adam`` on the same
        gradient, in float64.
    """
    validate.check_number("steps", steps, low=1, integer=True)
    b1, b2 = validate.check_betas("betas", betas)
    t = np.arange(1, steps + 1, dtype=np.float64)
    m = (1 - b1 ** t) * grad            # closed forms of the two running averages
    v = (1 - b2 ** t) * grad ** 2
    uncorrected = lr * m / (np.sqrt(v) + eps)
    corrected = lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = optim.Adam([w], lr=lr, betas=(b1, b2), eps=eps)
    measured = []
    for _ in range(steps):
        before = w.detach().clone()
        w.grad = torch.full_like(w, grad)
        opt.step()
        measured.append((before - w.detach()).item())
    return {"t": t, "uncorrected": uncorrected, "corrected": corrected,
            "measured": np.asarray(measured)}


# ------------------------------------------------------------- paths on surfaces
def steep_ravine(xy):
    """``course_lib.surfaces.ravine`` with condition number 100:
    ``f(x, y) = (x^2 + 100 y^2) / 2``."""
    return surfaces.ravine(xy, condition=100.0)


def _steep_ravine_grad(xy):
    return surfaces.ravine_grad(xy, condition=100.0)


steep_ravine.grad = _steep_ravine_grad
steep_ravine.minimum, steep_ravine.xlim, steep_ravine.ylim = (0.0, 0.0), (-10.0, 2.0), (-2.5, 2.5)

#: Surface, start point, steps and the learning rate of each optimizer.
SURFACE_SETTINGS = {
    "ravine": {"f": steep_ravine, "start": (-9.0, 2.0), "steps": 60,
               "lrs": {"SGD": 0.019, "Momentum": 0.01, "Nesterov": 0.01, "Adagrad": 2.0,
                       "RMSprop": 0.3, "Adam": 0.3}},
    "saddle": {"f": surfaces.saddle, "start": (-1.5, 1e-3), "steps": 60,
               "lrs": {"SGD": 0.05, "Momentum": 0.02, "Nesterov": 0.02, "Adagrad": 0.3,
                       "RMSprop": 0.03, "Adam": 0.05}},
}


def optimizer_paths(surface="ravine", *, steps=None):
    """Paths of the optimizers on a 2-D surface, recorded with
    ``course_lib.surfaces.optimize_path`` (float64).

    - ``"ravine"``: :func:`steep_ravine`, ``f = (x^2 + 100 y^2) / 2``: plain gradient
      descent needs ``lr < 2 / 100`` and then crawls along ``x``;
    - ``"saddle"``: ``course_lib.surfaces.saddle``, ``f = x^2 - y^2``, started just off
      the ``x`` axis (``y = 1e-3``).

    Returns
    -------
    dict
        ``{optimizer: (steps + 1, 2) array of points}``.
    """
    validate.check_choice("surface", surface, tuple(SURFACE_SETTINGS))
    cfg = SURFACE_SETTINGS[surface]
    steps = cfg["steps"] if steps is None else steps
    return {name: surfaces.optimize_path(
                lambda params, name=name, lr=lr: make_optimizer(name, params, lr=lr),
                cfg["f"], cfg["start"], steps)
            for name, lr in cfg["lrs"].items()}


def escape_steps(path, threshold=1.0):
    """First step at which a saddle path has ``|y| > threshold`` (``None`` if never)."""
    hits = np.nonzero(np.abs(np.asarray(path)[:, 1]) > threshold)[0]
    return int(hits[0]) if len(hits) else None


# ---------------------------------------------------------------- digits training
def digits_convergence(names=tuple(OPTIMIZERS), *, epochs=10, seed=0):
    """Training loss per epoch of the same MLP (64-64-64-10) on digits (batches of 64),
    one run per optimizer, each with its learning rate from :data:`OPTIMIZERS`."""
    d = digits_split(seed=seed)
    out = {}
    for name in names:
        model = digits_mlp((64, 64, 64, 10), seed)
        opt = make_optimizer(name, model.parameters())
        out[name] = train_classifier(model, opt, d, epochs=epochs, batch_size=64, seed=seed)
    return out


# ------------------------------------------------------------- saddles vs minima
def hessian_signs(dims=(1, 2, 3, 4, 5, 6, 8, 10, 20, 50), *, samples=4000, seed=0):
    """Signs of the eigenvalues of random symmetric matrices (a model of the Hessian at a
    random critical point, Dauphin et al., 2014).

    ``H = (A + A^T) / 2`` with standard normal ``A``. A critical point is a minimum only
    if all eigenvalues are positive; this probability falls roughly like
    ``exp(-c n^2)``, while the typical fraction of negative eigenvalues stays near 1/2.

    Returns
    -------
    dict
        ``dims``, ``p_minimum`` (fraction of matrices with all eigenvalues > 0) and
        ``negative_fraction`` (mean fraction of negative eigenvalues).
    """
    rng = np.random.default_rng(seed)
    p_min, neg = [], []
    for n in dims:
        a = rng.standard_normal((samples, n, n))
        eig = np.linalg.eigvalsh((a + a.transpose(0, 2, 1)) / 2)
        p_min.append(np.mean(np.all(eig > 0, axis=1)))
        neg.append(np.mean(eig < 0))
    return {"dims": np.asarray(dims), "p_minimum": np.asarray(p_min),
            "negative_fraction": np.asarray(neg)}


# -------------------------------------------------------------- learning rates
def lr_range(*, start_lr=1e-4, end_lr=10.0, num_iters=200, seed=0):
    """LR range test (Smith, 2017) of plain SGD on the digits MLP (64-64-64-10), with
    ``course_lib.torch.schedules.lr_range_test``: the learning rate grows geometrically
    from ``start_lr`` to ``end_lr``, one mini-batch of 32 per rate, until the smoothed
    loss exceeds 5 times its minimum.

    Returns
    -------
    dict
        ``lrs``, ``losses`` (smoothed), ``diverge_lr`` (the last rate tried: where the
        loss blew up), ``half_diverge_lr`` (the rule of thumb: half of it),
        ``min_loss_lr`` (the rate at the lowest loss), ``tenth_min_lr`` (Smith's rule: a
        tenth of it) and ``steepest_lr`` (``schedules.suggest_lr``: where the loss falls
        fastest).
    """
    d = digits_split(seed=seed)
    model = digits_mlp((64, 64, 64, 10), seed)
    opt = optim.SGD(model.parameters(), lr=start_lr)
    g = torch.Generator().manual_seed(seed)
    x, y = d["x_train"], d["y_train"]

    def step():
        idx = torch.randint(len(y), (32,), generator=g)
        loss = losses.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    lrs, smoothed = schedules.lr_range_test(step, opt, start_lr=start_lr, end_lr=end_lr,
                                            num_iters=num_iters)
    return {"lrs": lrs, "losses": smoothed, "diverge_lr": float(lrs[-1]),
            "half_diverge_lr": float(lrs[-1]) / 2,
            "min_loss_lr": float(lrs[np.argmin(smoothed)]),
            "tenth_min_lr": float(lrs[np.argmin(smoothed)]) / 10,
            "steepest_lr": schedules.suggest_lr(lrs, smoothed)}


def lr_check(lrs, *, epochs=10, seed=0):
    """Train the digits MLP with plain SGD at each constant rate of ``lrs``; the
    histories, to check the range test's suggestions."""
    d = digits_split(seed=seed)
    out = {}
    for lr in lrs:
        model = digits_mlp((64, 64, 64, 10), seed)
        opt = optim.SGD(model.parameters(), lr=float(lr))
        out[float(lr)] = train_classifier(model, opt, d, epochs=epochs, seed=seed)
    return out


#: The schedules of the chapter, all stepped once per epoch.
SCHEDULES = ("constant", "step", "exponential", "cosine", "one-cycle",
             "warm-up + cosine", "plateau")


def _schedule(name, opt, epochs):
    """The scheduler ``name`` (one of :data:`SCHEDULES`) for ``epochs`` epochs:
    ``None`` for the constant rate."""
    validate.check_choice("name", name, SCHEDULES)
    if name == "constant":
        return None
    if name == "step":  # divide by 10 twice, at 1/3 and 2/3 of the run
        return schedules.StepLR(opt, step_size=epochs // 3, gamma=0.1)
    if name == "exponential":  # down to a tenth of the rate at the end
        return schedules.ExponentialLR(opt, gamma=0.1 ** (1 / epochs))
    if name == "cosine":
        return schedules.CosineAnnealingLR(opt, T_max=epochs)
    if name == "one-cycle":
        return schedules.OneCycleLR(opt, max_lr=opt.param_groups[0]["lr"], total_steps=epochs)
    if name == "warm-up + cosine":  # a tenth of the run warming up from lr / 10
        warm = max(1, epochs // 10)
        return schedules.SequentialLR(
            opt, [schedules.LinearLR(opt, start_factor=0.1, total_iters=warm),
                  schedules.CosineAnnealingLR(opt, T_max=epochs - warm)],
            milestones=[warm])
    return schedules.ReduceLROnPlateau(opt, factor=0.5, patience=2)


def schedule_curves(names=SCHEDULES[1:-1], *, epochs=30, lr=0.1):
    """The learning rate at each epoch for each schedule of ``names`` (all but the
    constant rate and reduce-on-plateau, which depends on a validation loss), starting
    from ``lr``; ``{name: (epochs,) array}``."""
    out = {}
    for name in names:
        opt = optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
        sched = _schedule(name, opt, epochs)
        lrs = []
        for _ in range(epochs):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out[name] = np.asarray(lrs)
    return out


def schedule_comparison(names=("constant", "step", "cosine", "one-cycle"), *, epochs=15,
                        lr=0.08, seed=0):
    """Train the digits MLP with SGD + momentum 0.9 at peak rate ``lr`` under each schedule
    (stepped per epoch); the histories."""
    d = digits_split(seed=seed)
    out = {}
    for name in names:
        model = digits_mlp((64, 64, 64, 10), seed)
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        sched = _schedule(name, opt, epochs)
        out[name] = train_classifier(model, opt, d, epochs=epochs, seed=seed,
                                     scheduler=sched)
    return out


# ------------------------------------------------------ stochastic weight averaging
def swa_run(*, epochs=40, swa_start=20, lr=0.1, seed=0):
    """Stochastic weight averaging (Izmailov et al., 2018): SGD with momentum at a constant
    rate; from epoch ``swa_start`` on, ``schedules.AveragedModel`` averages the weights
    after each epoch.

    Returns
    -------
    dict
        ``history`` of the SGD model, ``swa_val_loss``/``swa_val_error`` of the average,
        ``final_val_loss``/``final_val_error`` of the last SGD weights.
    """
    d = digits_split(seed=seed)
    model = digits_mlp((64, 128, 10), seed)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    swa = schedules.AveragedModel(model)

    class Average:  # a fit callback: average the weights after each epoch from swa_start
        def on_epoch_end(self, epoch, logs):
            if epoch + 1 >= swa_start:
                swa.update_parameters(model)

    h = train_classifier(model, opt, d, epochs=epochs, seed=seed, callbacks=[Average()])
    swa_loss, swa_err = evaluate(swa, d["x_val"], d["y_val"])
    return {"history": h, "swa_val_loss": swa_loss, "swa_val_error": swa_err,
            "final_val_loss": h["val_loss"][-1], "final_val_error": h["val_error"][-1]}
