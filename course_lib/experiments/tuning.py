"""Experiments of chapter 7, *Tuning and workflow*.

Grid against random search, log-scale sampling, an Optuna study, one-at-a-time
sensitivity of the hyperparameters, model size against data, and a tuned SGD against
Adam, all on the digits. The functions return numbers and arrays; the chapter plots them
and ``tests/test_claims_ch4_7.py`` asserts its claims.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from course_lib.core import validate
from course_lib.torch import layers, losses, optim
from course_lib.experiments.digits import digits_split, train_classifier

__all__ = ["grid_vs_random", "log_sampling", "train_trial", "sensitivity",
           "optuna_study", "overfit_one_batch", "size_vs_data", "sgd_vs_adam"]


# ------------------------------------------------------------- grid vs random search
def grid_vs_random(*, n_side=3, repeats=2000, weight=0.02, seed=0):
    """Bergstra & Bengio (2012): with a budget of ``n_side**2`` trials, a grid tries only
    ``n_side`` values of each hyperparameter, random search tries ``n_side**2``.

    The objective depends on one important and one unimportant hyperparameter in
    ``[0, 1]``: ``f(a, b) = (a - a*)^2 + weight (b - b*)^2`` with the optimum ``(a*, b*)``
    drawn uniformly in each repeat.

    Returns
    -------
    dict
        ``grid``, ``random``: the trial points of the first repeat, ``(n_side**2, 2)``;
        ``optimum``: its optimum; ``grid_regret``, ``random_regret``: the best value found
        in each of the ``repeats`` (0 is perfect); ``random_wins``: the fraction of
        repeats where random search found a lower value.
    """
    validate.check_number("n_side", n_side, low=2, integer=True)
    rng = np.random.default_rng(seed)
    axis = (np.arange(n_side) + 0.5) / n_side
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    optima = rng.uniform(size=(repeats, 1, 2))
    randoms = rng.uniform(size=(repeats, n_side ** 2, 2))
    f = lambda pts, opt: ((pts[..., 0] - opt[..., 0]) ** 2  # noqa: E731
                          + weight * (pts[..., 1] - opt[..., 1]) ** 2)
    grid_best = f(grid[None], optima).min(1)
    random_best = f(randoms, optima).min(1)
    return {"grid": grid, "random": randoms[0], "optimum": optima[0, 0],
            "grid_regret": grid_best, "random_regret": random_best,
            "random_wins": float(np.mean(random_best < grid_best))}


def log_sampling(*, n=100_000, seed=0):
    """Where samples land when a learning rate in ``[1e-4, 1]`` or a momentum ``beta`` in
    ``[0.9, 0.999]`` is drawn uniformly or on a log scale.

    Returns
    -------
    dict
        ``lr_decades``: the decades ``[1e-4, 1e-3)``, ...; ``lr_uniform``, ``lr_log``:
        the fraction of samples in each decade; ``beta_uniform_above_099``,
        ``beta_log_above_099``: the fraction with ``beta > 0.99`` when ``beta`` is drawn
        uniformly, or ``1 - beta`` log-uniformly in ``[1e-3, 1e-1]``.
    """
    rng = np.random.default_rng(seed)
    lr_uniform = rng.uniform(1e-4, 1.0, n)
    lr_log = 10.0 ** rng.uniform(-4, 0, n)
    edges = 10.0 ** np.arange(-4, 1)
    frac = lambda s: np.histogram(s, edges)[0] / n  # noqa: E731
    beta_uniform = rng.uniform(0.9, 0.999, n)
    beta_log = 1 - 10.0 ** rng.uniform(-3, -1, n)
    return {"lr_decades": edges, "lr_uniform": frac(lr_uniform), "lr_log": frac(lr_log),
            "lr_uniform_samples": lr_uniform[:200], "lr_log_samples": lr_log[:200],
            "beta_uniform_above_099": float(np.mean(beta_uniform > 0.99)),
            "beta_log_above_099": float(np.mean(beta_log > 0.99))}


# ---------------------------------------------------------------- one training run
def train_trial(*, lr=1e-3, width=128, weight_decay=1e-4, batch_size=64, epochs=8,
                optimizer="AdamW", momentum=0.9, n_train=None, seed=0):
    """One run of the chapter's model: a 64-``width``-10 MLP on the digits.

    ``optimizer`` is ``"AdamW"`` (with ``weight_decay``) or ``"SGD"`` (with ``momentum``
    and ``weight_decay``). Returns the history of :func:`train_classifier`.
    """
    validate.check_choice("optimizer", optimizer, ("AdamW", "SGD"))
    d = digits_split(n_train, seed=seed)
    model = layers.mlp([64, int(width), 10], generator=torch.Generator().manual_seed(seed),
                       device="cpu")
    if optimizer == "AdamW":
        opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                        weight_decay=weight_decay)
    return train_classifier(model, opt, d, epochs=epochs, batch_size=int(batch_size),
                            seed=seed)


#: One-at-a-time ranges of the sensitivity experiment (the default in the middle).
SENSITIVITY = {
    "lr": (1e-4, 1e-3, 1e-2, 1e-1),
    "width": (32, 64, 128, 256),
    "weight_decay": (1e-5, 1e-3, 1e-1),
    "batch_size": (32, 64, 128),
}


def sensitivity(ranges=None, *, epochs=8, seed=0):
    """Vary one hyperparameter at a time around the defaults of :func:`train_trial`
    (AdamW, lr 1e-3, width 128, weight decay 1e-4, batch 64) over the ranges of
    :data:`SENSITIVITY`, and record the final validation loss.

    Returns
    -------
    dict
        ``{name: {"values": ..., "val_loss": ..., "val_error": ...}}``.
    """
    out = {}
    for name, values in (ranges or SENSITIVITY).items():
        val_loss, val_err = [], []
        for v in values:
            h = train_trial(**{name: v}, epochs=epochs, seed=seed)
            val_loss.append(h["val_loss"][-1])
            val_err.append(h["val_error"][-1])
        out[name] = {"values": np.asarray(values), "val_loss": np.asarray(val_loss),
                     "val_error": np.asarray(val_err)}
    return out


def optuna_study(*, n_trials=12, epochs=8, seed=0):
    """An Optuna study (TPE sampler, seeded) of the chapter's model: the learning rate
    and the weight decay on a log scale, the width on a log scale, the batch size from
    a list; it minimizes the final validation loss.

    Optuna's log messages are switched to warnings only.

    Returns
    -------
    dict
        ``trials``: list of ``{"number", "params", "value"}``; ``best_params``,
        ``best_value``, ``best_error`` (the validation error of the best trial) and
        ``default_value`` (the validation loss of the defaults of :func:`train_trial`).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    errors = {}

    def objective(trial):
        params = {
            "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
            "width": trial.suggest_int("width", 16, 256, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
        }
        h = train_trial(**params, epochs=epochs, seed=seed)
        loss = h["val_loss"][-1]
        errors[trial.number] = h["val_error"][-1]
        return loss if math.isfinite(loss) else float("inf")

    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    default = train_trial(epochs=epochs, seed=seed)
    return {"trials": [{"number": t.number, "params": dict(t.params), "value": t.value}
                       for t in study.trials],
            "best_params": dict(study.best_params), "best_value": study.best_value,
            "best_error": errors[study.best_trial.number],
            "default_value": default["val_loss"][-1]}


# -------------------------------------------------------- overfit, then regularize
def overfit_one_batch(*, batch_size=32, steps=200, lr=1e-3, seed=0):
    """The first check of the workflow: can the model drive the loss of a single batch to
    (almost) zero? Returns the loss after each step (Adam, 64-128-10 MLP)."""
    d = digits_split(seed=seed)
    x, y = d["x_train"][:batch_size], d["y_train"][:batch_size]
    model = layers.mlp([64, 128, 10], generator=torch.Generator().manual_seed(seed),
                       device="cpu")
    opt = optim.Adam(model.parameters(), lr=lr)
    trace = []
    for _ in range(steps):
        loss = losses.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        trace.append(loss.item())
    return np.asarray(trace)


def size_vs_data(widths=(16, 64, 256), n_trains=(100, 300, 1197), *, steps=300, seed=0):
    """Final validation error of 64-``width``-10 networks (AdamW, lr 1e-3) for each
    training-set size, with about ``steps`` optimizer steps per run.

    Returns
    -------
    dict
        ``widths``, ``n_trains`` and ``val_error`` of shape ``(len(widths), len(n_trains))``.
    """
    err = np.zeros((len(widths), len(n_trains)))
    for i, w in enumerate(widths):
        for j, n in enumerate(n_trains):
            epochs = max(1, math.ceil(steps / math.ceil(n / 64)))
            h = train_trial(width=w, n_train=n, epochs=epochs, seed=seed)
            err[i, j] = h["val_error"][-1]
    return {"widths": np.asarray(widths), "n_trains": np.asarray(n_trains),
            "val_error": err}


def sgd_vs_adam(sgd_lrs=(0.01, 0.03, 0.1), adam_lrs=(3e-4, 1e-3, 3e-3), *, epochs=8,
                seed=0):
    """A small learning-rate search for SGD (momentum 0.9) and for AdamW, same model and
    budget; the final validation error and loss of each run."""
    out = {}
    for name, lrs in (("SGD", sgd_lrs), ("AdamW", adam_lrs)):
        hs = [train_trial(lr=lr, optimizer=name, epochs=epochs, seed=seed) for lr in lrs]
        out[name] = {"lrs": np.asarray(lrs),
                     "val_error": np.asarray([h["val_error"][-1] for h in hs]),
                     "val_loss": np.asarray([h["val_loss"][-1] for h in hs])}
    return out
