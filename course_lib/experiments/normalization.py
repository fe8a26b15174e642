"""Experiments of chapter 6, *Normalization*.

Input scaling, batch norm in training and evaluation mode, layer norm, and deep networks
with and without normalization layers, on the digits. The functions return numbers and
arrays; ``tests/test_claims_ch4_7.py`` asserts what the chapter says about them.
"""
from __future__ import annotations

import torch

from course_lib.core import validate
from course_lib.torch import layers, optim
from course_lib.experiments.digits import digits_split, train_classifier

__all__ = ["input_scaling", "curvature_by_scaling", "batchnorm_modes", "deep_net",
           "DEEP_RUNS", "deep_networks", "placement_comparison"]


# ------------------------------------------------------------- input normalization
def curvature_by_scaling(scales=("raw", "unit", "standard"), *, seed=0):
    """Largest and smallest non-zero eigenvalue of ``X^T X / N`` (inputs with a column of
    ones for the bias) for each input scaling.

    ``X^T X / N`` is the Hessian of the squared loss of a linear model; gradient descent
    on it is stable only for ``lr < 2 / lambda_max`` and converges at a rate set by the
    condition number ``lambda_max / lambda_min``. Zero eigenvalues (pixels that are
    always blank) are left out: they leave the loss flat, not ill-conditioned.

    Returns
    -------
    dict
        ``{scale: {"lambda_max", "lambda_min", "condition", "max_stable_lr"}}``.
    """
    out = {}
    for scale in scales:
        x = digits_split(seed=seed, scale=scale)["x_train"].double()
        x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
        eig = torch.linalg.eigvalsh(x.T @ x / len(x))
        eig = eig[eig > 1e-9 * eig.max()]
        lam_max, lam_min = eig.max().item(), eig.min().item()
        out[scale] = {"lambda_max": lam_max, "lambda_min": lam_min,
                      "condition": lam_max / lam_min, "max_stable_lr": 2 / lam_max}
    return out


def input_scaling(scales=("raw", "unit", "standard"), lrs=(0.001, 0.01, 0.1, 1.0), *,
                  epochs=10, seed=0):
    """Softmax regression (a single ``Linear(64, 10)``) on raw pixels (0..16), pixels / 16
    and standardized pixels, trained with plain SGD (batches of 64) at each rate of
    ``lrs``.

    Returns
    -------
    dict
        ``{scale: {lr: history}}``.
    """
    out = {}
    for scale in scales:
        d = digits_split(seed=seed, scale=scale)
        out[scale] = {}
        for lr in lrs:
            model = layers.mlp([64, 10], generator=torch.Generator().manual_seed(seed),
                               device="cpu")
            out[scale][lr] = train_classifier(model, optim.SGD(model.parameters(), lr=lr), d,
                                              epochs=epochs, batch_size=64, seed=seed)
    return out


# ------------------------------------------------------------------- batch norm
def batchnorm_modes(*, num_features=3, batch_size=64, batches=300, seed=0):
    """What ``BatchNorm1d`` and ``LayerNorm`` compute in training and evaluation mode.

    Data: features with means ``(5, -2, 0)`` and standard deviations ``(3, 0.5, 1)``.

    Returns
    -------
    dict
        - ``train_mean``, ``train_std``: per-feature mean and (biased) std of batch norm's
          output on one training batch (0 and 1 up to ``eps``);
        - ``running_mean``, ``running_var`` after ``batches`` batches, and the true
          ``data_mean``, ``data_var``;
        - ``train_depends_on_batch``: the largest change of one example's output when
          its batch companions change, in training mode; ``eval_depends_on_batch`` the
          same in evaluation mode (0: running statistics only);
        - ``layernorm_depends_on_batch``: the same for ``LayerNorm`` (0: per example).
    """
    validate.check_number("batches", batches, low=1, integer=True)
    g = torch.Generator().manual_seed(seed)
    mean = torch.tensor([5.0, -2.0, 0.0])[:num_features]
    std = torch.tensor([3.0, 0.5, 1.0])[:num_features]
    draw = lambda n: mean + std * torch.randn(n, num_features, generator=g)  # noqa: E731
    bn = layers.BatchNorm1d(num_features, device="cpu")
    with torch.no_grad():
        batch = draw(batch_size)
        y = bn(batch)
        for _ in range(batches - 1):
            bn(draw(batch_size))
        other = torch.cat([batch[:1], draw(batch_size - 1)])  # same first example
        train_change = (bn(batch)[0] - bn(other)[0]).abs().max().item()
        bn.eval()
        eval_change = (bn(batch)[0] - bn(other)[0]).abs().max().item()
        ln = layers.LayerNorm(num_features, device="cpu")
        ln_change = (ln(batch)[0] - ln(other)[0]).abs().max().item()
    return {"train_mean": y.mean(0).numpy(), "train_std": y.std(0, unbiased=False).numpy(),
            "running_mean": bn.running_mean.numpy().copy(),
            "running_var": bn.running_var.numpy().copy(),
            "data_mean": mean.numpy(), "data_var": (std ** 2).numpy(),
            "train_depends_on_batch": train_change, "eval_depends_on_batch": eval_change,
            "layernorm_depends_on_batch": ln_change}


# --------------------------------------------------------------- deep networks
def deep_net(depth=15, width=64, norm=None, *, placement="before", seed=0):
    """A ``depth``-layer ReLU MLP on the digits (64 -> width x (depth - 1) -> 10), torch's
    default initialization.

    Parameters
    ----------
    norm : {None, "batch", "layer"}
        A ``BatchNorm1d`` or ``LayerNorm`` in every hidden block.
    placement : {"before", "after"}
        Normalization before the activation (``Linear -> norm -> ReLU``, as in Ioffe &
        Szegedy) or after it (``Linear -> ReLU -> norm``).
    """
    validate.check_number("depth", depth, low=2, integer=True)
    validate.check_choice("norm", norm, (None, "batch", "layer"))
    validate.check_choice("placement", placement, ("before", "after"))
    g = torch.Generator().manual_seed(seed)
    sizes = [64] + [width] * (depth - 1) + [10]
    mods = []
    for d_in, d_out in zip(sizes[:-2], sizes[1:-1]):
        block = [layers.Linear(d_in, d_out, generator=g, device="cpu"), layers.ReLU()]
        if norm is not None:
            n = (layers.BatchNorm1d(d_out, device="cpu") if norm == "batch"
                 else layers.LayerNorm(d_out, device="cpu"))
            block.insert(1 if placement == "before" else 2, n)
        mods += block
    mods.append(layers.Linear(sizes[-2], sizes[-1], generator=g, device="cpu"))
    return layers.Sequential(*mods)


#: The runs of :func:`deep_networks`: (depth, normalization, learning rate).
DEEP_RUNS = (
    (15, None, 0.01), (15, "batch", 0.01), (15, "layer", 0.01),
    (6, None, 0.05), (6, None, 0.5), (6, "batch", 0.5),
)


def deep_networks(runs=DEEP_RUNS, *, epochs=8, seed=0):
    """Train deep ReLU MLPs (width 64) on the digits with SGD (momentum 0.9, batches of
    64), with and without normalization.

    The default runs compare a 15-layer network without normalization, with batch norm
    and with layer norm at a rate of 0.01, and a 6-layer network without normalization at
    0.05 and 0.5 and with batch norm at 0.5.

    Returns
    -------
    dict
        ``{(depth, norm, lr): history}`` with ``norm`` one of ``"none"``, ``"batch"``,
        ``"layer"``.
    """
    d = digits_split(seed=seed)
    out = {}
    for depth, norm, lr in runs:
        model = deep_net(depth, norm=norm, seed=seed)
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        out[(depth, norm or "none", lr)] = train_classifier(model, opt, d, epochs=epochs,
                                                            batch_size=64, seed=seed)
    return out


def placement_comparison(*, depth=15, lr=0.01, epochs=8, seed=0):
    """Batch norm before and after the ReLU in the 15-layer MLP (SGD, momentum 0.9,
    batches of 64); the histories."""
    d = digits_split(seed=seed)
    out = {}
    for placement in ("before", "after"):
        model = deep_net(depth, norm="batch", placement=placement, seed=seed)
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        out[placement] = train_classifier(model, opt, d, epochs=epochs, batch_size=64,
                                          seed=seed)
    return out
