"""Experiments of chapter 4, *Regularization and generalization*.

Every function returns plain numbers and arrays; the chapter plots them and
``tests/test_claims_ch4_7.py`` and ``tests/test_claims_ch4_5.py`` assert what the prose
says about them.

The digits classifier comes from :mod:`course_lib.experiments.digits`, shared with
chapters 5 to 7.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from course_lib import diagnostics, training
from course_lib.core import validate
from course_lib.experiments.digits import (digits_mlp, digits_split, evaluate,
                                           train_classifier)
from course_lib.torch import layers, optim

__all__ = [
    "PenaltyGradient", "polynomial_degree_sweep", "split_sizes", "ERROR_CASES", "error_analysis_table",
    "REGIMES", "TARGET_LOSS", "learning_curves_vs_epochs", "learning_curves_vs_size",
    "compare_regularizers", "adam_l2_vs_adamw", "sgd_l2_equals_weight_decay",
    "dropout_statistics", "dropout_rate_sweep", "early_stopping_run", "RandomShift",
    "augmentation_run", "ensemble_run",
]


# ------------------------------------------------------------------------ penalties
def _weights(model):
    return [p for name, p in model.named_parameters() if name.endswith("weight")]


class PenaltyGradient:
    """A ``course_lib.training.fit`` callback adding the gradient of a weight penalty.

    ``kind="l2"``: the penalty ``strength / 2 * sum ||W||^2`` has gradient ``strength * W``;
    ``kind="l1"``: ``strength * sum |W|`` has (sub)gradient ``strength * sign(W)``.
    Only weight matrices (parameters whose name ends in ``weight``) are penalized.
    """

    def __init__(self, kind, strength):
        self.kind = validate.check_choice("kind", kind, ("l1", "l2"))
        self.strength = validate.check_number("strength", strength, low=0.0)

    def on_after_backward(self, step, logs):
        with torch.no_grad():
            for w in _weights(logs["model"]):
                w.grad += self.strength * (w if self.kind == "l2" else torch.sign(w))


# -------------------------------------------------------- under- and overfitting
def polynomial_degree_sweep(degrees=range(0, 13), *, n_train=15, n_val=500, noise=0.25,
                            seed=0):
    """Least-squares polynomials of growing degree fitted to a noisy sine.

    Data: ``x ~ U(0, 1)``, ``y = sin(2 pi x) + noise * N(0, 1)``; the Bayes error (the
    best possible mean squared error) is ``noise**2``.

    Returns
    -------
    dict
        ``degrees``, ``train_mse``, ``val_mse`` (arrays over the degrees); ``x_train``,
        ``y_train``, ``x_grid``, ``fits`` (``{degree: prediction on x_grid}``) and
        ``bayes_mse``.
    """
    validate.check_number("n_train", n_train, low=2, integer=True)
    rng = np.random.default_rng(seed)
    truth = lambda t: np.sin(2 * np.pi * t)  # noqa: E731
    x_train = rng.uniform(0, 1, n_train)
    y_train = truth(x_train) + noise * rng.standard_normal(n_train)
    x_val = rng.uniform(0, 1, n_val)
    y_val = truth(x_val) + noise * rng.standard_normal(n_val)
    x_grid = np.linspace(0, 1, 200)
    degrees = np.asarray(list(degrees))
    train_mse, val_mse, fits = [], [], {}
    for d in degrees:
        # Polynomial.fit rescales x to [-1, 1]: well conditioned even at degree 12
        p = np.polynomial.Polynomial.fit(x_train, y_train, int(d))
        train_mse.append(np.mean((p(x_train) - y_train) ** 2))
        val_mse.append(np.mean((p(x_val) - y_val) ** 2))
        fits[int(d)] = p(x_grid)
    return {"degrees": degrees, "train_mse": np.asarray(train_mse),
            "val_mse": np.asarray(val_mse), "x_train": x_train, "y_train": y_train,
            "x_grid": x_grid, "truth": truth(x_grid), "fits": fits,
            "bayes_mse": noise ** 2}


def split_sizes(n_examples=1_000_000, fractions=(0.98, 0.01, 0.01), error_rate=0.05):
    """Sizes of a train/val/test split and the standard error of an error rate measured
    on the validation set, ``sqrt(p (1 - p) / n_val)``.
    """
    validate.check_number("n_examples", n_examples, low=1, integer=True)
    if not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must sum to 1, got {fractions!r}")
    sizes = [int(round(f * n_examples)) for f in fractions]
    std_error = math.sqrt(error_rate * (1 - error_rate) / sizes[1])
    return {"train": sizes[0], "val": sizes[1], "test": sizes[2],
            "error_rate": error_rate, "std_error": std_error}


# ------------------------------------------------------------- bias and variance
#: Error rates (human, train, validation) of the error-analysis table, as fractions.
ERROR_CASES = {
    "A1": (0.00, 0.01, 0.11),
    "A2": (0.00, 0.15, 0.16),
    "A3": (0.00, 0.15, 0.30),
    "A4": (0.00, 0.005, 0.01),
    "A5": (0.14, 0.15, 0.16),
}


def error_analysis_table(cases=None, *, tolerance=0.02):
    """Avoidable bias, variance and verdict (``course_lib.diagnostics.bias_variance_verdict``)
    for each ``(human, train, val)`` error triple of ``cases`` (default :data:`ERROR_CASES`).

    Returns
    -------
    list of dict
        ``case``, ``human``, ``train``, ``val``, ``avoidable_bias``, ``variance``,
        ``verdict``, ``focus``.
    """
    rows = []
    for case, (human, train, val) in (cases or ERROR_CASES).items():
        v = diagnostics.bias_variance_verdict(train, val, human, tolerance=tolerance)
        rows.append({"case": case, "human": human, "train": train, "val": val,
                     "avoidable_bias": v["avoidable_bias"], "variance": v["variance"],
                     "verdict": v["verdict"], "focus": v["focus"]})
    return rows


# ------------------------------------------------------------------ learning curves
def _easy_validation(d, classes=(0, 1)):
    keep = torch.isin(d["y_val"], torch.tensor(classes))
    return {**d, "x_val": d["x_val"][keep], "y_val": d["y_val"][keep]}


#: The regimes of the learning-curve experiment: network sizes, training-set size,
#: epochs, L2 strength, dropout, and whether the validation set holds only 0s and 1s.
REGIMES = {
    "underfit": dict(sizes=(64, 2, 10), n_train=None, epochs=40, batch_size=64, l2=3e-3),
    "overfit": dict(sizes=(64, 256, 256, 10), n_train=100, epochs=150, batch_size=32,
                    l2=0.0),
    "good fit": dict(sizes=(64, 128, 10), n_train=None, epochs=40, batch_size=64, l2=1e-2),
    "unrepresentative validation": dict(sizes=(64, 128, 10), n_train=None, epochs=40,
                                        batch_size=64, l2=3e-3, dropout=0.5,
                                        easy_val=True),
}

#: The training loss we aim for (``target_loss`` of ``diagnose_learning_curves``).
TARGET_LOSS = 0.2


def learning_curves_vs_epochs(*, lr=1e-3, seed=0):
    """Learning curves in four regimes (:data:`REGIMES`), each diagnosed with
    ``course_lib.diagnostics.diagnose_learning_curves`` (``target_loss`` =
    :data:`TARGET_LOSS`).

    - underfit: a 64-2-10 network, too small for ten classes;
    - overfit: a 64-256-256-10 network on only 100 training examples, no penalty;
    - good fit: 64-128-10 on all 1,197 training examples, L2 penalty 1e-2;
    - unrepresentative validation: 64-128-10 with dropout 0.5 and L2 3e-3, validated
      only on the easy digits 0 and 1.

    All use Adam at ``lr``.

    Returns
    -------
    dict
        ``{regime: history}`` (see :func:`train_classifier`), each history with its
        ``"diagnosis"``.
    """
    out = {}
    for name, cfg in REGIMES.items():
        d = digits_split(cfg["n_train"], seed=seed)
        if cfg.get("easy_val"):
            d = _easy_validation(d)
        model = digits_mlp(cfg["sizes"], seed, dropout=cfg.get("dropout", 0.0))
        opt = optim.Adam(model.parameters(), lr=lr)
        penalty = [PenaltyGradient("l2", cfg["l2"])] if cfg["l2"] else []
        h = train_classifier(model, opt, d, epochs=cfg["epochs"], seed=seed,
                             batch_size=cfg["batch_size"], callbacks=penalty)
        h["diagnosis"] = diagnostics.diagnose_learning_curves(
            h["train_loss"], h["val_loss"], target_loss=TARGET_LOSS)
        out[name] = h
    return out


def learning_curves_vs_size(sizes=(25, 50, 100, 200, 400, 800, 1197), *, steps=300,
                            lr=1e-3, seed=0):
    """Final training and validation error of one network (64-128-10, Adam) against the
    training-set size.

    Each run takes about the same number of optimizer steps (``steps``, batches of 32), so
    small sets are not under-trained. The training error is measured after training, in
    eval mode.
    """
    train_err, val_err = [], []
    for n in sizes:
        d = digits_split(n, seed=seed)
        model = digits_mlp((64, 128, 10), seed)
        opt = optim.Adam(model.parameters(), lr=lr)
        epochs = max(1, math.ceil(steps / math.ceil(n / 32)))
        h = train_classifier(model, opt, d, epochs=epochs, seed=seed)
        train_err.append(evaluate(model, d["x_train"], d["y_train"])[1])
        val_err.append(h["val_error"][-1])
    return {"sizes": np.asarray(sizes), "train_error": np.asarray(train_err),
            "val_error": np.asarray(val_err)}


# ----------------------------------------------------------------- L1, L2, decay
def compare_regularizers(*, n_train=100, epochs=80, lr=1e-3, l1=1e-4, l2=1e-3,
                         weight_decay=0.5, seed=0):
    """The overfitting network (64-256-256-10 on 100 digits) with and without penalties.

    Settings: ``none`` (Adam); ``L2`` (Adam, penalty ``l2/2 ||W||^2``); ``L1`` (Adam,
    penalty ``l1 ||W||_1``); ``weight decay`` (AdamW, decoupled, ``weight_decay`` on the
    weights only).

    Returns
    -------
    dict
        ``{setting: {"history", "weights", "weight_norm", "small_fraction"}}``:
        ``weights`` all weight entries after training, ``weight_norm`` their L2 norm,
        ``small_fraction`` the fraction with ``|w| < 1e-3``.
    """
    d = digits_split(n_train, seed=seed)
    out = {}
    for name in ("none", "L2", "L1", "weight decay"):
        model = digits_mlp((64, 256, 256, 10), seed)
        callbacks = []
        if name == "weight decay":
            biases = [p for n, p in model.named_parameters() if not n.endswith("weight")]
            opt = optim.AdamW([{"params": _weights(model), "weight_decay": weight_decay},
                               {"params": biases, "weight_decay": 0.0}], lr=lr)
        else:
            opt = optim.Adam(model.parameters(), lr=lr)
            if name != "none":
                callbacks = [PenaltyGradient(name.lower(), l2 if name == "L2" else l1)]
        h = train_classifier(model, opt, d, epochs=epochs, seed=seed, callbacks=callbacks)
        w = torch.cat([p.detach().flatten() for p in _weights(model)])
        out[name] = {"history": h, "weights": w.numpy().copy(),
                     "weight_norm": w.norm().item(),
                     "small_fraction": (w.abs() < 1e-3).double().mean().item()}
    return out


def adam_l2_vs_adamw(*, grad_scales=(1.0, 0.01), lr=1e-3, weight_decay=0.1, steps=2000):
    """Why L2 is not weight decay under Adam (Loshchilov & Hutter, 2019).

    Two weights start at 1. Their loss gradients alternate in sign with sizes
    ``grad_scales`` (zero on average: the data do not care about the weights' size).
    ``Adam(weight_decay=wd)`` adds ``wd * w`` to the gradient and then divides it by
    ``sqrt(v)``: a weight with large gradients is barely decayed. ``AdamW`` shrinks every
    weight by ``lr * wd * w`` per step, whatever its gradients.

    Returns
    -------
    dict
        ``"Adam + L2"`` and ``"AdamW"``: ``(steps + 1, 2)`` trajectories (float64);
        ``grad_scales``; ``decay_factor``: ``(1 - lr * wd) ** steps``, the shrinkage of
        pure weight decay.
    """
    scales = torch.tensor(grad_scales, dtype=torch.float64)
    out = {"grad_scales": np.asarray(grad_scales),
           "decay_factor": (1 - lr * weight_decay) ** steps}
    for name, cls in (("Adam + L2", optim.Adam), ("AdamW", optim.AdamW)):
        w = torch.nn.Parameter(torch.ones(len(grad_scales), dtype=torch.float64))
        opt = cls([w], lr=lr, weight_decay=weight_decay)
        path = [w.detach().clone()]
        for t in range(steps):
            w.grad = scales * (-1.0) ** t
            opt.step()
            path.append(w.detach().clone())
        out[name] = torch.stack(path).numpy()
    return out


def sgd_l2_equals_weight_decay(*, lr=0.1, weight_decay=0.01, steps=50, seed=0):
    """For plain SGD, an L2 penalty ``wd/2 ||w||^2`` and ``weight_decay=wd`` give the same
    update, ``w <- w - lr (grad + wd w)``. Returns the largest difference between the
    weights of the two after ``steps`` steps on a float64 least-squares problem.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 5, generator=g, dtype=torch.float64)
    y = torch.randn(32, generator=g, dtype=torch.float64)
    w0 = torch.randn(5, generator=g, dtype=torch.float64)
    finals = []
    for mode in ("penalty", "weight_decay"):
        w = torch.nn.Parameter(w0.clone())
        opt = optim.SGD([w], lr=lr, weight_decay=weight_decay if mode == "weight_decay" else 0)
        for _ in range(steps):
            loss = ((x @ w - y) ** 2).mean()
            if mode == "penalty":
                loss = loss + 0.5 * weight_decay * (w ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        finals.append(w.detach())
    return (finals[0] - finals[1]).abs().max().item()


# ------------------------------------------------------------------------ dropout
def dropout_statistics(*, p=0.5, n=200_000, seed=0):
    """What dropout lets through, in training and in evaluation.

    - ``Dropout`` on an input of ones: inverted dropout zeroes a fraction ``p`` and
      multiplies the rest by ``1 / (1 - p)``, so the mean stays 1; in evaluation it is
      the identity.
    - SELU's fixed point (mean 0, variance 1) through ``Dropout`` and ``AlphaDropout``:
      alpha dropout keeps mean 0 and variance 1; plain dropout multiplies the variance by
      ``1 / (1 - p)`` (Klambauer et al., 2017).
    - ``Dropout`` then ``BatchNorm1d`` (the *variance shift* of Li et al., 2019): batch
      norm's running variance is learned on dropped-out inputs (``1 / (1 - p)``), so in
      evaluation its output has standard deviation ``sqrt(1 - p)`` instead of 1.

    Returns
    -------
    dict of floats
    """
    validate.check_probability("p", p)
    g = torch.Generator().manual_seed(seed)
    ones = torch.ones(n)
    drop = layers.Dropout(p, generator=g)
    train_out = drop(ones)
    drop.eval()
    eval_out = drop(ones)
    z = torch.randn(n, generator=g)
    a_out = layers.AlphaDropout(p, generator=g)(z)
    p_out = layers.Dropout(p, generator=g)(z)
    bn = layers.BatchNorm1d(1, device="cpu")
    drop = layers.Dropout(p, generator=g)
    with torch.no_grad():
        for _ in range(200):  # let the running statistics settle on dropped-out batches
            bn(drop(torch.randn(256, 1, generator=g)))
        drop.eval()
        bn.eval()
        shifted = bn(drop(torch.randn(n, 1, generator=g)))
    return {"p": p,
            "train_mean": train_out.mean().item(),
            "train_zero_fraction": (train_out == 0).double().mean().item(),
            "train_max": train_out.max().item(),
            "eval_is_identity": bool(torch.equal(eval_out, ones)),
            "alpha_mean": a_out.mean().item(), "alpha_std": a_out.std().item(),
            "plain_mean": p_out.mean().item(), "plain_std": p_out.std().item(),
            "bn_running_var": bn.running_var.item(),
            "bn_eval_std": shifted.std().item(), "predicted_eval_std": math.sqrt(1 - p)}


def dropout_rate_sweep(rates=(0.0, 0.2, 0.5, 0.8), *, n_train=None, epochs=20, lr=1e-3,
                       seed=0):
    """The 64-256-10 network on the digits with several drop probabilities ``p``.

    Returns
    -------
    dict
        ``{p: history}``; each history also has ``"final_train_error"``, the training
        error after training measured in eval mode (dropout off).
    """
    d = digits_split(n_train, seed=seed)
    out = {}
    for p in rates:
        model = digits_mlp((64, 256, 10), seed, dropout=p)
        opt = optim.Adam(model.parameters(), lr=lr)
        h = train_classifier(model, opt, d, epochs=epochs, batch_size=64, seed=seed)
        h["final_train_error"] = evaluate(model, d["x_train"], d["y_train"])[1]
        out[p] = h
    return out


# ----------------------------------------------------------------- early stopping
def early_stopping_run(*, patience=10, max_epochs=150, lr=1e-3, seed=0):
    """The overfit regime of :func:`learning_curves_vs_epochs` (64-256-256-10 on 100
    examples, Adam, same seed, so the same trajectory) trained with
    ``course_lib.training.EarlyStopping`` (patience ``patience``, best weights restored).

    Returns
    -------
    dict
        ``history``, ``best_epoch`` and ``stopped_epoch`` (0-based, from the callback) and
        ``restored_val_loss``: the validation loss of the model after training, i.e. with
        the restored weights.
    """
    cfg = REGIMES["overfit"]
    d = digits_split(cfg["n_train"], seed=seed)
    model = digits_mlp(cfg["sizes"], seed)
    stopper = training.EarlyStopping(patience=patience, restore_best_weights=True)
    h = train_classifier(model, optim.Adam(model.parameters(), lr=lr), d,
                         epochs=max_epochs, batch_size=cfg["batch_size"], seed=seed,
                         early_stopping=stopper)
    return {"history": h, "best_epoch": stopper.best_epoch,
            "stopped_epoch": stopper.stopped_epoch,
            "restored_val_loss": evaluate(model, d["x_val"], d["y_val"])[0]}


# ------------------------------------------------------------ data augmentation
class RandomShift(torch.nn.Module):
    """Data augmentation as a layer: in training mode, shift each 8x8 image by up to
    ``max_shift`` pixels in each direction (blank pixels fill in) and add Gaussian noise
    of standard deviation ``noise``; in evaluation mode, the identity (like dropout).

    Input and output shape ``(N, 64)`` (flattened 8x8 images with 0 as background).
    """

    def __init__(self, max_shift=1, noise=0.0, generator=None):
        super().__init__()
        self.max_shift = validate.check_number("max_shift", max_shift, low=0, high=7,
                                               integer=True)
        self.noise = validate.check_number("noise", noise, low=0.0)
        self.generator = generator

    def forward(self, x):
        if not self.training:
            return x
        s = self.max_shift
        images = torch.nn.functional.pad(x.reshape(-1, 8, 8), (s, s, s, s))
        dx, dy = torch.randint(0, 2 * s + 1, (2, len(x)), generator=self.generator)
        rows = (dy[:, None] + torch.arange(8))[:, :, None]        # (N, 8, 1)
        cols = (dx[:, None] + torch.arange(8))[:, None, :]        # (N, 1, 8)
        out = images[torch.arange(len(x))[:, None, None], rows, cols].reshape(len(x), 64)
        if self.noise > 0:
            out = out + self.noise * torch.randn(out.shape, generator=self.generator)
        return out


def augmentation_run(*, n_train=100, epochs=150, batch_size=16, lr=1e-3, max_shift=1,
                     noise=0.1, seed=0):
    """The 100-example regime with and without augmentation (random shifts of one pixel
    and Gaussian pixel noise), pixels in ``[0, 1]``.

    Returns
    -------
    dict
        ``{"none": history, "augmented": history}``.
    """
    d = digits_split(n_train, seed=seed, scale="unit")
    out = {}
    for name in ("none", "augmented"):
        net = digits_mlp((64, 256, 256, 10), seed)
        if name == "augmented":
            net = layers.Sequential(
                RandomShift(max_shift, noise, generator=torch.Generator().manual_seed(seed)),
                net)
        out[name] = train_classifier(net, optim.Adam(net.parameters(), lr=lr), d,
                                     epochs=epochs, batch_size=batch_size, seed=seed)
    return out


# ----------------------------------------------------------------- model averaging
def ensemble_run(*, n_models=5, n_train=100, epochs=60, lr=1e-3, seed=0):
    """Model averaging: ``n_models`` networks (64-128-10) that differ only in their random
    initialization and shuffling, their softmax outputs averaged.

    Returns
    -------
    dict
        ``member_errors`` (validation error of each network), ``ensemble_error`` and the
        same for the losses (``member_losses``, ``ensemble_loss``).
    """
    d = digits_split(n_train, seed=seed)
    probs, errors, losses_ = [], [], []
    for k in range(n_models):
        model = digits_mlp((64, 128, 10), seed + 1 + k)
        train_classifier(model, optim.Adam(model.parameters(), lr=lr), d, epochs=epochs,
                         seed=seed + 1 + k)
        loss, err = evaluate(model, d["x_val"], d["y_val"])
        errors.append(err)
        losses_.append(loss)
        model.eval()
        with torch.no_grad():
            probs.append(torch.softmax(model(d["x_val"]), dim=1))
    mean = torch.stack(probs).mean(0)
    return {"member_errors": np.asarray(errors), "member_losses": np.asarray(losses_),
            "ensemble_error": (mean.argmax(1) != d["y_val"]).double().mean().item(),
            "ensemble_loss": -torch.log(mean[torch.arange(len(mean)), d["y_val"]]).mean().item()}


# ------------------------------------------------- weight scaling and the geometric mean
def _all_masks(n, p):
    """Every keep-mask of ``n`` units, ``(2**n, n)`` float64, and its probability when
    each unit is dropped with probability ``p``."""
    bits = (torch.arange(2 ** n)[:, None] >> torch.arange(n)) & 1
    masks = bits.double()
    kept = masks.sum(1)
    return masks, (1 - p) ** kept * p ** (n - kept)


def _geometric_and_arithmetic(logits, probs):
    """Renormalized geometric mean and arithmetic mean of the softmax outputs of all
    sub-networks, each weighted by its mask's probability; ``logits``: ``(masks, N, K)``."""
    log_p = torch.log_softmax(logits, dim=-1)
    geo = torch.softmax((probs[:, None, None] * log_p).sum(0), dim=-1)
    ari = (probs[:, None, None] * log_p.exp()).sum(0)
    return geo, ari


def weight_scaling_vs_ensemble(*, p=0.5, hidden=12, epochs=30, lr=1e-2, seed=0):
    r"""Is the network in evaluation mode (inverted dropout: the *weight scaling* rule) the
    geometric mean of its sub-networks? Exactly for one softmax layer, approximately in a
    deep nonlinear network (Srivastava et al., 2014, section 9 and appendix).

    Two networks on the digits (batches of 32, Adam), each with one dropout layer of
    ``hidden`` units, trained with drop probability ``p``:

    - ``"before the output layer"``: 64-``hidden``-``hidden``-10 with dropout after the
      second hidden layer: what follows the dropout is one softmax layer, and the
      renormalized geometric mean of the :math:`2^{\text{hidden}}` sub-networks'
      predictions (each weighted by the probability of its mask) equals the prediction
      of the full network, because the log-probabilities are linear in the mask up to a
      constant per example;
    - ``"before a hidden layer"``: the same network with dropout after the first hidden
      layer, followed by a ReLU layer: no longer exact.

    Every sub-network is enumerated on the 600 validation examples, in float64.

    Returns
    -------
    dict
        ``{placement: {"max_diff_geometric", "max_diff_arithmetic", "agreement_geometric",
        "val_error_scaled", "val_error_geometric"}}``: largest difference between the
        weight-scaled prediction and the geometric (arithmetic) mean of the sub-networks,
        the fraction of examples where the weight-scaled class is the geometric mean's,
        and the validation errors of both; ``n_subnetworks``.
    """
    validate.check_probability("p", p)
    validate.check_number("hidden", hidden, low=1, high=16, integer=True)
    d = digits_split(seed=seed)
    masks, probs = _all_masks(hidden, p)
    out = {"n_subnetworks": len(masks)}
    for placement, where in (("before the output layer", 2), ("before a hidden layer", 1)):
        g = torch.Generator().manual_seed(seed)
        first = layers.Linear(64, hidden, generator=g, device="cpu")
        second = layers.Linear(hidden, hidden, generator=g, device="cpu")
        last = layers.Linear(hidden, 10, generator=g, device="cpu")
        drop = layers.Dropout(p, generator=g)
        blocks = [first, layers.ReLU(), second, layers.ReLU(), last]
        blocks.insert(2 if where == 1 else 4, drop)
        model = layers.Sequential(*blocks)
        train_classifier(model, optim.Adam(model.parameters(), lr=lr), d, epochs=epochs,
                         seed=seed)
        model = model.double().eval()
        x, y = d["x_val"].double(), d["y_val"]
        with torch.no_grad():
            scaled = torch.softmax(model(x), dim=-1)
            h = torch.relu(first(x))                                   # (N, hidden)
            if where == 1:
                h = h[None] * masks[:, None, :] / (1 - p)              # (masks, N, hidden)
                logits = last(torch.relu(second(h)))
            else:
                h = torch.relu(second(h))
                logits = last(h[None] * masks[:, None, :] / (1 - p))
            geo, ari = _geometric_and_arithmetic(logits, probs)
        out[placement] = {
            "max_diff_geometric": (scaled - geo).abs().max().item(),
            "max_diff_arithmetic": (scaled - ari).abs().max().item(),
            "agreement_geometric": (scaled.argmax(1) == geo.argmax(1)).double().mean().item(),
            "val_error_scaled": (scaled.argmax(1) != y).double().mean().item(),
            "val_error_geometric": (geo.argmax(1) != y).double().mean().item()}
    return out


# ----------------------------------------------------------- dropout of units vs weights
def units_vs_weights_dropout(*, p=0.5, n_in=8, n_out=4, samples=20_000, seed=0):
    r"""Dropout drops *units*; DropConnect (Wan et al., 2013) drops *weights*.

    A ``Dropout(p)`` in front of a linear layer ``W`` (``(n_out, n_in)``) multiplies
    whole *columns* of ``W`` by the same 0 or ``1 / (1 - p)``: the output is
    :math:`W (M \odot a) / (1 - p) = (W \operatorname{diag}(M) / (1 - p))\, a` for an input
    ``a``. DropConnect draws one mask entry per weight, :math:`(M \odot W) a / (1 - p)`. Both keep the mean
    and give each output the same variance, but with dropout a dropped input is missing
    for every output at once, so the outputs are correlated; with DropConnect they are
    not.

    Returns
    -------
    dict
        ``max_diff_columns``: dropout-then-linear against the column-masked weights (same
        masks; 0 up to rounding); ``zero_columns_dropout`` and
        ``zero_columns_dropconnect``: the fraction of columns of the effective weight
        matrix that are entirely zero (``p`` against ``p**n_out``); ``corr_dropout`` and
        ``corr_dropconnect``: the correlation of two outputs over the masks;
        ``var_dropout``, ``var_dropconnect`` and ``var_formula``
        (:math:`\tfrac{p}{1-p}\sum_i w_{0i}^2 a_i^2` for output 0), ``mean_dropout``,
        ``mean_dropconnect`` and ``mean_formula`` (:math:`(W a)_0`);
        ``keep_fraction_torch_p``: the fraction kept by ``Dropout(p)`` (``1 - p``: PyTorch's
        ``p`` is the drop probability).
    """
    validate.check_probability("p", p)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
    w[1] = w[0] + 0.1 * torch.randn(n_in, generator=g, dtype=torch.float64)  # similar rows
    h = torch.rand(n_in, generator=g, dtype=torch.float64) + 0.5
    drop = layers.Dropout(p, generator=g)
    dropped = drop(h.expand(samples, n_in).clone())                  # (samples, n_in)
    y_dropout = dropped @ w.T
    unit_mask = (dropped != 0).double()
    effective = w[None] * unit_mask[:, None, :] / (1 - p)            # (samples, n_out, n_in)
    y_columns = (effective @ h[:, None])[..., 0]
    connect = (torch.rand(samples, n_out, n_in, generator=g, dtype=torch.float64) >= p).double()
    y_connect = ((w[None] * connect / (1 - p)) @ h[:, None])[..., 0]

    def corr(y):
        return torch.corrcoef(y[:, :2].T)[0, 1].item()

    return {"p": p, "max_diff_columns": (y_dropout - y_columns).abs().max().item(),
            "zero_columns_dropout": (effective == 0).all(1).double().mean().item(),
            "zero_columns_dropconnect": (connect == 0).all(1).double().mean().item(),
            "zero_columns_dropconnect_formula": p ** n_out,
            "corr_dropout": corr(y_dropout), "corr_dropconnect": corr(y_connect),
            "var_dropout": y_dropout[:, 0].var().item(),
            "var_dropconnect": y_connect[:, 0].var().item(),
            "var_formula": (p / (1 - p) * (w[0] ** 2 * h ** 2).sum()).item(),
            "mean_dropout": y_dropout[:, 0].mean().item(),
            "mean_dropconnect": y_connect[:, 0].mean().item(),
            "mean_formula": (w[0] @ h).item(),
            "keep_fraction_torch_p": unit_mask.mean().item()}


# ------------------------------------------------------------------ input dropout
#: The input-dropout settings: ``(drop probability of the inputs, of the hidden units)``
#: in PyTorch's convention. Srivastava et al. keep inputs with probability 0.8 and hidden
#: units with 0.5, i.e. ``Dropout(0.2)`` and ``Dropout(0.5)``; ``"p = 0.8 read as
#: PyTorch's p"`` is the paper's *keep* probability typed into ``Dropout``.
INPUT_DROPOUT = {
    "none": (0.0, 0.0),
    "hidden 0.5": (0.0, 0.5),
    "inputs 0.2 + hidden 0.5": (0.2, 0.5),
    "inputs 0.8 + hidden 0.5 (keep read as drop)": (0.8, 0.5),
}


def input_dropout_run(settings=None, *, n_train=300, epochs=60, lr=1e-3, seed=0):
    """Dropout on the inputs as well as on the hidden units (Srivastava et al., 2014):
    the 64-256-256-10 network on ``n_train`` digits with each setting of
    :data:`INPUT_DROPOUT` (``{name: (input p, hidden p)}``), Adam, batches of 32.

    Returns
    -------
    dict
        ``{name: history}``, each with ``"final_train_error"`` (eval mode).
    """
    settings = INPUT_DROPOUT if settings is None else settings
    d = digits_split(n_train, seed=seed)
    out = {}
    for name, (p_in, p_hidden) in settings.items():
        net = digits_mlp((64, 256, 256, 10), seed, dropout=p_hidden)
        if p_in > 0:
            net = layers.Sequential(
                layers.Dropout(p_in, generator=torch.Generator().manual_seed(seed)), net)
        h = train_classifier(net, optim.Adam(net.parameters(), lr=lr), d, epochs=epochs,
                             seed=seed)
        h["final_train_error"] = evaluate(net, d["x_train"], d["y_train"])[1]
        out[name] = h
    return out
