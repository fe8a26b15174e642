"""Experiments of chapter 5, *Optimizers and learning rates*.

The optimizers and schedules are course_lib's own (``course_lib.torch.optim``,
``course_lib.torch.schedules``); the functions return numbers and arrays for the
chapter's plots and the claims in ``tests/test_claims_ch4_7.py`` and
``tests/test_claims_ch4_5.py``.
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
    "schedule_comparison", "swa_run", "momentum_forms", "nesterov_change_of_variables",
    "adagrad_vs_normalized", "clipping_semantics", "tf1_adam_epsilon", "momentum_too_high",
    "batch_size_lr_sweep",
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

    With ``m_t = beta1 m_{t-1} + (1 - beta1) g`` and ``s_t = beta2 s_{t-1} + (1 - beta2) g^2``
    started at zero, the uncorrected step ``lr m_t / (sqrt(s_t) + eps)`` starts at
    ``lr (1 - beta1) / sqrt(1 - beta2)`` (3.2 lr for the defaults); the corrected one uses
    ``m_t / (1 - beta1^t)`` and ``s_t / (1 - beta2^t)`` and is ``lr`` from the first step
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
        ``min_loss_lr`` (the rate at the lowest loss), ``tenth_min_lr`` (a tenth of it)
        and ``steepest_lr`` (``schedules.suggest_lr``: where the loss falls fastest); the
        last two are the suggestions of fastai's learning-rate finder (Howard & Gugger,
        2020), not rules of Smith's paper.
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


# ------------------------------------------------------------ the three momentum forms
def _quadratic_problem(seed, dim=5):
    """A float64 least-squares problem ``L(w) = ||x w - y||^2 / (2 n)`` and its gradient."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, dim, generator=g, dtype=torch.float64)
    y = torch.randn(40, generator=g, dtype=torch.float64)
    w0 = torch.randn(dim, generator=g, dtype=torch.float64)

    def grad(w):
        return x.T @ (x @ w - y) / len(y)

    return w0, grad


def momentum_forms(*, lr=0.05, momentum=0.9, steps=60, drop_at=30, drop=0.1, seed=0):
    r"""The three ways momentum is written, run side by side in float64.

    - PyTorch (``SGD(momentum=mu)``): :math:`v_t = \mu v_{t-1} + g_t`,
      :math:`\theta_t = \theta_{t-1} - \eta_t v_t`;
    - the exponential moving average (EMA) of the gradients:
      :math:`m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t`, :math:`\theta_t = \theta_{t-1} -
      \eta^{\text{EMA}}_t m_t`, here with :math:`\eta^{\text{EMA}}_t = \eta_t / (1 - \beta_1)`
      and :math:`\beta_1 = \mu`;
    - Sutskever et al. (2013): :math:`\tilde v_t = \mu \tilde v_{t-1} - \eta_t g_t`,
      :math:`\theta_t = \theta_{t-1} + \tilde v_t`.

    With a constant rate the three give the same iterates (:math:`m_t = (1-\beta_1) v_t`,
    :math:`\tilde v_t = -\eta v_t`): the EMA form needs the rate :math:`1/(1-\beta_1)`
    times larger. When the rate changes, PyTorch's and the EMA form
    rescale the whole velocity at once, Sutskever's form only the new gradients. Each
    run is done twice: at a constant ``lr``, and with the rate multiplied by ``drop``
    from step ``drop_at`` on.

    Returns
    -------
    dict
        ``constant`` and ``dropped``: ``{form: (steps + 1, dim) iterates}`` for the forms
        ``"PyTorch"`` (``course_lib.torch.optim.SGD``), ``"torch.optim.SGD"``, ``"EMA"``
        and ``"Sutskever"``; ``max_diff_constant`` (largest difference from PyTorch's
        iterates over the EMA and Sutskever forms at a constant rate),
        ``max_diff_ema_dropped`` and ``max_diff_sutskever_dropped`` (after the drop);
        ``lr_factor``: ``1 / (1 - momentum)``.
    """
    validate.check_number("momentum", momentum, low=0.0, high=1.0, high_open=True)
    w0, grad = _quadratic_problem(seed)

    def rate(t, dropped):  # the rate of step t (1-based)
        return lr * drop if dropped and t > drop_at else lr

    out = {"lr_factor": 1.0 / (1.0 - momentum)}
    for dropped in (False, True):
        runs = {}
        for name, cls in (("PyTorch", optim.SGD), ("torch.optim.SGD", torch.optim.SGD)):
            w = torch.nn.Parameter(w0.clone())
            opt = cls([w], lr=lr, momentum=momentum)
            path = [w.detach().clone()]
            for t in range(1, steps + 1):
                opt.param_groups[0]["lr"] = rate(t, dropped)
                w.grad = grad(w.detach())
                opt.step()
                path.append(w.detach().clone())
            runs[name] = torch.stack(path).numpy()
        for name in ("EMA", "Sutskever"):
            w, v, path = w0.clone(), torch.zeros_like(w0), [w0.clone()]
            for t in range(1, steps + 1):
                g = grad(w)
                if name == "EMA":
                    v = momentum * v + (1 - momentum) * g
                    w = w - rate(t, dropped) / (1 - momentum) * v
                else:
                    v = momentum * v - rate(t, dropped) * g
                    w = w + v
                path.append(w.clone())
            runs[name] = torch.stack(path).numpy()
        out["dropped" if dropped else "constant"] = runs
    c, d = out["constant"], out["dropped"]
    out["max_diff_constant"] = float(max(np.abs(c[k] - c["PyTorch"]).max()
                                         for k in ("EMA", "Sutskever", "torch.optim.SGD")))
    out["max_diff_ema_dropped"] = float(np.abs(d["EMA"] - d["PyTorch"]).max())
    out["max_diff_sutskever_dropped"] = float(np.abs(d["Sutskever"] - d["PyTorch"]).max())
    return out


def nesterov_change_of_variables(*, lr=0.05, momentum=0.9, steps=60, seed=0):
    r"""Nesterov momentum as Sutskever et al. (2013) write it, against PyTorch's form.

    Sutskever's form evaluates the gradient at the look-ahead point:
    :math:`\tilde v_t = \mu \tilde v_{t-1} - \eta \nabla L(\theta_{t-1} + \mu \tilde v_{t-1})`,
    :math:`\theta_t = \theta_{t-1} + \tilde v_t`. With :math:`\phi = \theta + \mu \tilde v`
    (store the look-ahead point instead of :math:`\theta`) and :math:`\tilde v = -\eta v`
    this becomes PyTorch's ``SGD(nesterov=True)``:
    :math:`v_t = \mu v_{t-1} + \nabla L(\phi_{t-1})`,
    :math:`\phi_t = \phi_{t-1} - \eta (\nabla L(\phi_{t-1}) + \mu v_t)`.

    Returns
    -------
    dict
        ``sutskever_lookahead``: the points :math:`\phi_t = \theta_t + \mu \tilde v_t` of
        Sutskever's form, ``pytorch``: the iterates of ``course_lib.torch.optim.SGD(...,
        nesterov=True)``, both ``(steps + 1, dim)``; ``max_diff`` between them and
        ``max_diff_theta``: between PyTorch's iterates and Sutskever's :math:`\theta_t`
        (not zero: the two forms store different points).
    """
    w0, grad = _quadratic_problem(seed)
    theta, v = w0.clone(), torch.zeros_like(w0)
    look, thetas = [theta + momentum * v], [theta.clone()]
    for _ in range(steps):
        v = momentum * v - lr * grad(theta + momentum * v)
        theta = theta + v
        look.append(theta + momentum * v)
        thetas.append(theta.clone())
    w = torch.nn.Parameter(w0.clone())
    opt = optim.SGD([w], lr=lr, momentum=momentum, nesterov=True)
    path = [w.detach().clone()]
    for _ in range(steps):
        w.grad = grad(w.detach())
        opt.step()
        path.append(w.detach().clone())
    look, thetas, path = (torch.stack(a).numpy() for a in (look, thetas, path))
    return {"sutskever_lookahead": look, "pytorch": path,
            "max_diff": float(np.abs(look - path).max()),
            "max_diff_theta": float(np.abs(thetas - path).max())}


# ------------------------------------------------- Adagrad is not normalized descent
def adagrad_vs_normalized(*, grad=(3.0, 0.03), lr=0.1, steps=100):
    r"""Adagrad on a constant gradient ``grad`` against "normalized gradient descent"
    :math:`\theta \leftarrow \theta - \eta\, g / \|g\|`, which some texts call Adagrad.

    Adagrad divides *each coordinate* by the root of the sum of *its own* past squared
    gradients, :math:`\sqrt{\sum_s g_{s,i}^2}`: with a constant gradient, its step ``t``
    is :math:`\eta\, \operatorname{sign}(g) / \sqrt t` (up to ``eps``), which neither
    points along :math:`g` nor keeps its length.

    Returns
    -------
    dict
        ``adagrad_steps`` and ``normalized_steps``: ``(steps, 2)`` update vectors
        (``course_lib.torch.optim.Adagrad`` in float64, and the formula);
        ``cos_adagrad`` and ``cos_normalized``: cosine between the first step and
        :math:`-g`; ``adagrad_norms``, ``normalized_norms``: the step lengths.
    """
    g = torch.tensor(grad, dtype=torch.float64)
    w = torch.nn.Parameter(torch.zeros_like(g))
    opt = optim.Adagrad([w], lr=lr)
    ada = []
    for _ in range(steps):
        before = w.detach().clone()
        w.grad = g.clone()
        opt.step()
        ada.append((w.detach() - before).numpy())
    ada = np.asarray(ada)
    normalized = np.tile((-lr * g / g.norm()).numpy(), (steps, 1))
    minus_g = -g.numpy() / np.linalg.norm(g.numpy())

    def cos(step):
        return float(step @ minus_g / np.linalg.norm(step))

    return {"t": np.arange(1, steps + 1), "adagrad_steps": ada,
            "normalized_steps": normalized, "cos_adagrad": cos(ada[0]),
            "cos_normalized": cos(normalized[0]),
            "adagrad_norms": np.linalg.norm(ada, axis=1),
            "normalized_norms": np.linalg.norm(normalized, axis=1)}


# -------------------------------------------------------------- what clipping does
def clipping_semantics(*, max_norm=5.0, norms=(3.0, 20.0), layer_norms=(3.0, 40.0), seed=0):
    """What ``clip_grad_norm_`` does, against two wrong readings of it.

    - A single gradient of norm ``n``: ``clip_grad_norm_(max_norm)`` leaves it alone when
      ``n <= max_norm`` and rescales it to norm ``max_norm`` otherwise; "divide the
      gradient by its norm" would give norm 1 whatever ``max_norm`` is.
    - Two tensors (two layers) with gradient norms ``layer_norms``: one call of
      ``clip_grad_norm_`` on both (the global norm, like Keras' ``global_clipnorm``)
      keeps the direction of the whole gradient; clipping each tensor on its own (like
      Keras' ``clipnorm`` in ``tf.keras`` and Keras 3) changes it.

    Returns
    -------
    dict
        ``single``: ``{n: {"clipped": norm after clip_grad_norm_, "divided": norm after
        the wrong rule}}``; ``global_norms``/``per_tensor_norms`` (the two layers' norms
        after clipping), ``global_cos``/``per_tensor_cos`` (cosine with the gradient before
        clipping) and ``global_total``/``per_tensor_total`` (total norm after clipping).
    """
    from course_lib.torch import clip
    max_norm = validate.check_number("max_norm", max_norm, low=0.0, low_open=True)
    gen = torch.Generator().manual_seed(seed)
    single = {}
    for n in norms:
        p = torch.nn.Parameter(torch.zeros(10, dtype=torch.float64))
        direction = torch.randn(10, generator=gen, dtype=torch.float64)
        p.grad = n * direction / direction.norm()
        divided = p.grad / p.grad.norm() if p.grad.norm() > max_norm else p.grad
        clip.clip_grad_norm_([p], max_norm)
        single[float(n)] = {"clipped": p.grad.norm().item(), "divided": divided.norm().item()}

    def two_layers():
        params = []
        for n, size in zip(layer_norms, (30, 10)):
            p = torch.nn.Parameter(torch.zeros(size, dtype=torch.float64))
            d = torch.randn(size, generator=torch.Generator().manual_seed(size),
                            dtype=torch.float64)
            p.grad = n * d / d.norm()
            params.append(p)
        return params

    def flat(params):
        return torch.cat([p.grad.flatten() for p in params])

    glob, per = two_layers(), two_layers()
    before = flat(glob).clone()
    clip.clip_grad_norm_(glob, max_norm)
    for p in per:
        clip.clip_grad_norm_([p], max_norm)
    cos = torch.nn.functional.cosine_similarity
    return {"max_norm": max_norm, "single": single,
            "global_norms": [p.grad.norm().item() for p in glob],
            "per_tensor_norms": [p.grad.norm().item() for p in per],
            "global_cos": cos(flat(glob), before, dim=0).item(),
            "per_tensor_cos": cos(flat(per), before, dim=0).item(),
            "global_total": flat(glob).norm().item(),
            "per_tensor_total": flat(per).norm().item()}


# ----------------------------------------------------------------- TF1 Adam's eps
def tf1_adam_epsilon(*, eps_hat=1e-3, grad_scale=1e-3, lr=1e-3, betas=(0.9, 0.999),
                     steps=2000, seed=0):
    r"""TensorFlow 1's ``AdamOptimizer`` against PyTorch's ``Adam`` with the same ``eps``.

    TF1 (the form before section 2.1 of Kingma & Ba) folds the bias corrections into the
    rate and adds its :math:`\hat\epsilon` to the *uncorrected* :math:`\sqrt{s_t}`:
    :math:`\theta \leftarrow \theta - \eta \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}
    \frac{m_t}{\sqrt{s_t} + \hat\epsilon}`. That is PyTorch's update with
    :math:`\epsilon_t = \hat\epsilon / \sqrt{1 - \beta_2^t}`, about
    :math:`31.6\,\hat\epsilon` at the first step for :math:`\beta_2 = 0.999`.

    Random gradients of size ``grad_scale`` (float64). Returns the TF1 iterates
    (the formula), those of ``course_lib.torch.optim.Adam`` with ``eps = eps_hat`` and
    with ``eps`` set to :math:`\epsilon_t` before each step.

    Returns
    -------
    dict
        ``tf1``, ``torch_same_eps``, ``torch_eps_t``: ``(steps + 1, dim)`` iterates;
        ``max_diff_eps_t`` (TF1 against PyTorch with :math:`\epsilon_t`),
        ``first_step_ratio`` (PyTorch's first step with the same eps over TF1's) and
        ``eps_t_first``: :math:`\epsilon_1 / \hat\epsilon`.
    """
    b1, b2 = validate.check_betas("betas", betas)
    gen = torch.Generator().manual_seed(seed)
    grads = grad_scale * torch.randn(steps, 4, generator=gen, dtype=torch.float64) + grad_scale
    theta, m, v = torch.zeros(4, dtype=torch.float64), 0.0, 0.0
    tf1 = [theta.clone()]
    for t in range(1, steps + 1):
        g = grads[t - 1]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)
        theta = theta - lr_t * m / (v ** 0.5 + eps_hat)
        tf1.append(theta.clone())
    out = {"tf1": torch.stack(tf1).numpy(), "eps_t_first": 1 / (1 - b2) ** 0.5}
    for name, schedule in (("torch_same_eps", False), ("torch_eps_t", True)):
        w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
        opt = optim.Adam([w], lr=lr, betas=(b1, b2), eps=eps_hat)
        path = [w.detach().clone()]
        for t in range(1, steps + 1):
            if schedule:
                opt.param_groups[0]["eps"] = eps_hat / (1 - b2 ** t) ** 0.5
            w.grad = grads[t - 1].clone()
            opt.step()
            path.append(w.detach().clone())
        out[name] = torch.stack(path).numpy()
    out["max_diff_eps_t"] = float(np.abs(out["torch_eps_t"] - out["tf1"]).max())
    out["first_step_ratio"] = float(np.linalg.norm(out["torch_same_eps"][1])
                                    / np.linalg.norm(out["tf1"][1]))
    return out


# ------------------------------------------------------------ momentum 0.999 is not momentum
def momentum_too_high(*, epochs=10, lr=0.05, seed=0):
    """SGD on the digits MLP (64-64-64-10, batches of 64) with momentum 0.9 at ``lr``,
    and with momentum 0.999 (Adam's ``beta2``, not a momentum) at the same ``lr`` and at
    the same effective rate ``lr / (1 - momentum)`` (``lr * 0.001 / 0.1``).

    Returns
    -------
    dict
        ``{(momentum, lr): history}`` for the three runs.
    """
    d = digits_split(seed=seed)
    out = {}
    for mu, rate in ((0.9, lr), (0.999, lr), (0.999, lr * (1 - 0.999) / (1 - 0.9))):
        model = digits_mlp((64, 64, 64, 10), seed)
        opt = optim.SGD(model.parameters(), lr=rate, momentum=mu)
        out[(mu, rate)] = train_classifier(model, opt, d, epochs=epochs, batch_size=64,
                                           seed=seed)
    return out


# ------------------------------------------------------- batch size and learning rate
def batch_size_lr_sweep(batch_sizes=(16, 32, 64, 128, 256),
                        lrs=tuple(0.0125 * 2.0 ** k for k in range(-2, 6)), *, epochs=6,
                        momentum=0.9, seed=0):
    """The learning rate and the batch size together (Goyal et al., 2017): SGD with
    momentum on the digits MLP (64-64-64-10) for a fixed number of ``epochs`` at every
    pair ``(batch size, lr)``.

    With the epochs fixed, a batch ``k`` times larger takes ``k`` times fewer steps, each
    with a gradient averaged over ``k`` times more examples (less noisy); the linear
    scaling rule says to multiply the rate by ``k`` too.

    Returns
    -------
    dict
        ``batch_sizes``, ``lrs``; ``train_loss`` and ``val_loss``: ``(len(batch_sizes),
        len(lrs))`` final losses; ``best_lr``: for each batch size the rate with the
        lowest final training loss; ``n_train``: the number of training examples.
    """
    d = digits_split(seed=seed)
    train = np.zeros((len(batch_sizes), len(lrs)))
    val = np.zeros_like(train)
    for i, b in enumerate(batch_sizes):
        for j, lr in enumerate(lrs):
            model = digits_mlp((64, 64, 64, 10), seed)
            opt = optim.SGD(model.parameters(), lr=float(lr), momentum=momentum)
            h = train_classifier(model, opt, d, epochs=epochs, batch_size=int(b), seed=seed)
            train[i, j], val[i, j] = h["train_loss"][-1], h["val_loss"][-1]
    lrs = np.asarray(lrs, dtype=np.float64)
    return {"batch_sizes": np.asarray(batch_sizes), "lrs": lrs, "train_loss": train,
            "val_loss": val, "best_lr": lrs[np.argmin(train, axis=1)],
            "n_train": len(d["y_train"])}
