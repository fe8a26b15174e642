"""Experiments of chapter 7, *Tuning and workflow*.

Grid against random search, log-scale sampling, an Optuna study, one-at-a-time
sensitivity of the hyperparameters, model size against data, a tuned SGD against Adam,
k-fold cross-validation, fine-tuning a pre-trained network, the optimism of the best of
many validation scores, and runs tracked with TensorBoard, all on the digits. The
functions return numbers and arrays; the chapter plots them and
``tests/test_claims_ch4_7.py`` and ``tests/test_claims_ch6_7.py`` assert its claims.
"""
from __future__ import annotations

import copy
import math
import os

import numpy as np
import torch

from course_lib import data, training
from course_lib.core import validate
from course_lib.torch import layers, losses, optim
from course_lib.experiments.digits import digits_mlp, digits_split, evaluate, train_classifier

__all__ = ["grid_vs_random", "log_sampling", "train_trial", "sensitivity",
           "optuna_study", "overfit_one_batch", "size_vs_data", "sgd_vs_adam",
           "kfold_scores", "class_subset", "transfer_learning", "best_of_many",
           "tracked_runs", "frozen_batchnorm"]


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


def optuna_study(*, n_trials=12, n_startup_trials=4, epochs=8, seed=0):
    """An Optuna study of the chapter's model: the learning rate and the weight decay on a
    log scale, the width on a log scale, the batch size from a list; it minimizes the final
    validation loss.

    The sampler is ``TPESampler(n_startup_trials=n_startup_trials, seed=seed)``: the first
    ``n_startup_trials`` trials are drawn at random (Optuna's default is 10, which would
    make a 12-trial study almost pure random search), the others by TPE (Bergstra et al.,
    2011). Optuna's log messages are switched to warnings only.

    Returns
    -------
    dict
        ``trials``: list of ``{"number", "params", "value", "random"}`` (``random``: a
        start-up trial); ``best_params``, ``best_value``, ``best_error`` (the validation
        error of the best trial), ``best_number`` and ``default_value`` (the validation
        loss of the defaults of :func:`train_trial`).
    """
    validate.check_number("n_startup_trials", n_startup_trials, low=0, integer=True)
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
                                sampler=optuna.samplers.TPESampler(
                                    n_startup_trials=n_startup_trials, seed=seed))
    study.optimize(objective, n_trials=n_trials)
    default = train_trial(epochs=epochs, seed=seed)
    return {"trials": [{"number": t.number, "params": dict(t.params), "value": t.value,
                        "random": t.number < n_startup_trials} for t in study.trials],
            "best_params": dict(study.best_params), "best_value": study.best_value,
            "best_error": errors[study.best_trial.number],
            "best_number": study.best_trial.number,
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


# ------------------------------------------------------------ k-fold cross-validation
#: The models of :func:`kfold_scores`: hidden widths of the 64-...-10 MLP.
KFOLD_MODELS = {"width 4 (underfits)": [4], "width 128": [128]}


def kfold_scores(models=None, *, k=5, epochs=8, seed=0):
    r"""k-fold cross-validation of MLPs on all 1,797 digits with scikit-learn's ``KFold``.

    Each of the ``k`` folds is the validation set once; the model (AdamW, lr 1e-3,
    batches of 64, ``epochs`` epochs) is trained on the other folds, standardized with
    the statistics of those training folds only.

    Returns
    -------
    dict
        ``{name: {"errors": array (k,), "mean", "std" (ddof=1), "binomial_std"}}``;
        ``binomial_std`` is :math:`\sqrt{\bar e (1 - \bar e) / n_{\text{fold}}}`, the
        spread that the finite size of a fold alone gives an error rate :math:`\bar e`.
    """
    from sklearn.model_selection import KFold

    validate.check_number("k", k, low=2, integer=True)
    x, y = data.load_digits()
    folds = list(KFold(n_splits=k, shuffle=True, random_state=seed).split(x))
    out = {}
    for name, hidden in (models or KFOLD_MODELS).items():
        errors = []
        for train_idx, val_idx in folds:
            scaler = data.Standardizer().fit(x[train_idx])
            split = {"x_train": torch.as_tensor(scaler.transform(x[train_idx]), dtype=torch.float32),
                     "y_train": torch.as_tensor(y[train_idx]),
                     "x_val": torch.as_tensor(scaler.transform(x[val_idx]), dtype=torch.float32),
                     "y_val": torch.as_tensor(y[val_idx])}
            model = digits_mlp([64, *hidden, 10], seed)
            h = train_classifier(model, optim.AdamW(model.parameters(), lr=1e-3), split,
                                 epochs=epochs, batch_size=64, seed=seed)
            errors.append(h["val_error"][-1])
        errors = np.asarray(errors)
        mean = float(errors.mean())
        out[name] = {"errors": errors, "mean": mean, "std": float(errors.std(ddof=1)),
                     "binomial_std": math.sqrt(mean * (1 - mean) / (len(x) / k))}
    return out


# ------------------------------------------------------------------ transfer learning
def class_subset(x, y, classes):
    """The examples of ``x, y`` whose label is in ``classes``, relabelled ``0..len-1`` in
    the order of ``classes``."""
    classes = torch.as_tensor(classes)
    keep = torch.isin(y, classes)
    relabel = torch.full((int(y.max()) + 1,), -1, dtype=torch.int64)
    relabel[classes] = torch.arange(len(classes))
    return x[keep], relabel[y[keep]]


def transfer_learning(labels_per_class=(1, 2, 5, 20), *, source=(0, 1, 2, 3, 4),
                      target=(5, 6, 7, 8, 9), width=256, repeats=8, steps=100, seed=0):
    """Pre-train on some classes of the digits, fine-tune on the others with few labels.

    Pre-training: a 64-``width``-5 MLP on all training images of the ``source`` classes
    (pixels / 16, random shifts of one pixel and noise of 0.05 as augmentation, AdamW at
    1e-3, 40 epochs). For each number of labels per class of the ``target`` classes, and
    ``repeats`` random draws of those labelled images, three networks of the same shape
    are trained for ``steps`` full-batch AdamW steps (lr 1e-3) and scored on all
    validation images of the target classes:

    - ``scratch``: a fresh network;
    - ``fine-tune``: the pre-trained hidden layer, a new output layer, everything trained;
    - ``frozen``: the pre-trained hidden layer frozen (``requires_grad_(False)``), only the
      new output layer trained (a linear classifier on the pre-trained features).

    Returns
    -------
    dict
        ``labels_per_class``; ``error``: ``{strategy: array (len(labels_per_class),)}``,
        the mean validation error over the repeats; ``source_error``: the pre-trained
        network's validation error on its own classes.
    """
    from course_lib.experiments.regularization import RandomShift

    for n in labels_per_class:
        validate.check_number("labels_per_class", n, low=1, integer=True)
    validate.check_number("repeats", repeats, low=1, integer=True)
    d = digits_split(seed=seed, scale="unit")
    xs, ys = class_subset(d["x_train"], d["y_train"], source)
    xsv, ysv = class_subset(d["x_val"], d["y_val"], source)
    xt, yt = class_subset(d["x_train"], d["y_train"], target)
    xtv, ytv = class_subset(d["x_val"], d["y_val"], target)
    augment = RandomShift(1, 0.05, generator=torch.Generator().manual_seed(seed + 1))
    pre = layers.Sequential(augment, *digits_mlp([64, width, len(source)], seed))
    h = train_classifier(pre, optim.AdamW(pre.parameters(), lr=1e-3),
                         {"x_train": xs, "y_train": ys, "x_val": xsv, "y_val": ysv},
                         epochs=40, batch_size=64, seed=seed)
    body = list(pre)[1:3]  # the pre-trained Linear(64, width) and its ReLU
    errors = {"scratch": [], "fine-tune": [], "frozen": []}
    for n in labels_per_class:
        per = {name: [] for name in errors}
        for rep in range(repeats):
            rng = np.random.default_rng([seed, rep])
            idx = torch.as_tensor(np.concatenate([
                rng.choice(np.flatnonzero(yt.numpy() == c), n, replace=False)
                for c in range(len(target))]))
            head_seed = 1000 + 100 * seed + rep
            for name in errors:
                if name == "scratch":
                    model = digits_mlp([64, width, len(target)], head_seed)
                else:
                    head = layers.Linear(width, len(target), device="cpu",
                                         generator=torch.Generator().manual_seed(head_seed))
                    model = layers.Sequential(*copy.deepcopy(body), head)
                    if name == "frozen":
                        for p in model[0].parameters():
                            p.requires_grad_(False)
                params = [p for p in model.parameters() if p.requires_grad]
                training.fit(model, losses.cross_entropy, optim.AdamW(params, lr=1e-3),
                             (xt[idx], yt[idx]), epochs=steps, batch_size=len(idx),
                             progress=False)  # full batch: no shuffling to seed
                per[name].append(evaluate(model, xtv, ytv)[1])
        for name in errors:
            errors[name].append(float(np.mean(per[name])))
    return {"labels_per_class": np.asarray(labels_per_class),
            "error": {name: np.asarray(v) for name, v in errors.items()},
            "source_error": h["val_error"][-1]}


def frozen_batchnorm(*, steps=20, seed=0):
    """``requires_grad_(False)`` freezes a batch-norm layer's ``weight`` and ``bias``, not
    its running statistics: in training mode they keep moving towards the new data.

    A ``BatchNorm1d(3)`` whose parameters are frozen sees ``steps`` batches of data with
    mean 2, once in training mode and once in evaluation mode.

    Returns
    -------
    dict
        ``train_mode``, ``eval_mode``: the running mean afterwards (it starts at 0).
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for mode in ("train_mode", "eval_mode"):
        bn = layers.BatchNorm1d(3, device="cpu")
        for p in bn.parameters():
            p.requires_grad_(False)
        bn.train(mode == "train_mode")
        with torch.no_grad():
            for _ in range(steps):
                bn(2.0 + torch.randn(32, 3, generator=g))
        out[mode] = bn.running_mean.numpy().copy()
    return out


# ------------------------------------------------------------- selection on validation
def best_of_many(n_models=(1, 3, 10, 30, 100), *, true_error=0.05, n_val=600,
                 repeats=2000, seed=0):
    """The optimism of picking the best of many models on one validation set.

    All models have the same true error ``true_error``; each one's validation error is a
    binomial draw over ``n_val`` examples. The best of ``n`` validation errors, averaged
    over ``repeats``, falls with ``n`` although no model is better than another: the
    winner's validation score is biased low, which is why the final model is scored once
    on a test set that took no part in the choice.

    Returns
    -------
    dict
        ``n_models``; ``best_val_error``: array, the mean of the smallest validation error.
    """
    rng = np.random.default_rng(seed)
    best = [float(np.mean(rng.binomial(n_val, true_error, size=(repeats, n)).min(1) / n_val))
            for n in n_models]
    return {"n_models": np.asarray(n_models), "best_val_error": np.asarray(best),
            "true_error": true_error}


# ------------------------------------------------------------------ experiment tracking
def tracked_runs(log_dir, lrs=(1e-4, 1e-3, 1e-2), *, epochs=8, seed=0):
    """Train the chapter's model (:func:`train_trial`'s defaults) at each learning rate of
    ``lrs`` with a :class:`course_lib.training.TensorBoardLogger` that writes the run to
    ``log_dir/lr=<lr>``.

    Returns
    -------
    dict
        ``{run name: history}``; the TensorBoard event files are in ``log_dir``.
    """
    d = digits_split(seed=seed)
    out = {}
    for lr in lrs:
        name = f"lr={lr:g}"
        model = digits_mlp([64, 128, 10], seed)
        opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        logger = training.TensorBoardLogger(os.path.join(log_dir, name),
                                            hparams={"lr": lr, "width": 128})
        out[name] = train_classifier(model, opt, d, epochs=epochs, batch_size=64,
                                     seed=seed, callbacks=[logger])
    return out
