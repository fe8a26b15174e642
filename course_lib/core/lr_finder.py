"""The learning-rate range test, for optimizers of either backend.

Train for a few hundred mini-batches while the learning rate grows geometrically from
tiny to huge, and record the (smoothed) loss: it stays flat while the lr is too small to
matter, falls once the lr is useful, and explodes once the lr is too large.

The test is Leslie N. Smith's (2017), "Cyclical learning rates for training neural
networks", WACV, section 3.3: he raises the rate *linearly* over a few epochs, plots the
*accuracy*, and reads off two bounds for a cyclical schedule, the rate where accuracy
starts to rise (``base_lr``) and where it slows, turns ragged or falls (``max_lr``).
The form here, a geometric sweep over mini-batches with a smoothed loss, and the two
rules of thumb for picking one rate from it, the steepest descent of the loss
(:func:`suggest_lr`) and a tenth of the rate at the lowest loss, are the fastai
library's (``Learner.lr_find``; Howard & Gugger 2020, "Fastai: a layered API for deep
learning", Information 11(2)), not Smith's.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from course_lib.core.schedules import _check_optimizer
from course_lib.core.validate import check_number

__all__ = ["lr_range_test", "suggest_lr"]


def _as_float(loss):
    """A float from a float, a 0-dim array or a 0-dim tensor (detached first)."""
    return float(loss.detach() if hasattr(loss, "detach") else loss)


def lr_range_test(train_step, optimizer, start_lr=1e-7, end_lr=10, num_iters=100,
                  smooth=0.05, diverge_threshold=5.0):
    r"""Sweep the learning rate geometrically and record the smoothed loss.

    Step :math:`i = 0, \dots, n-1` uses :math:`\gamma_i = \gamma_{start}
    (\gamma_{end}/\gamma_{start})^{i/(n-1)}` in every param group, calls
    ``train_step()`` and smooths its loss :math:`\ell_i` as
    :math:`\bar\ell_i = \alpha\,\ell_i + (1-\alpha)\,\bar\ell_{i-1}` (:math:`\bar\ell_0
    = \ell_0`, :math:`\alpha` = ``smooth``). The sweep stops early, after recording that
    step, when :math:`\bar\ell_i` is not finite or exceeds ``diverge_threshold`` times
    the best smoothed loss so far (losses are assumed positive).

    Afterwards the optimizer's state and learning rates are restored (via
    ``state_dict``); the model's weights are *not*: reload them before real training.

    Parameters
    ----------
    train_step : callable
        ``train_step()`` runs one mini-batch (forward, backward, ``optimizer.step()``)
        and returns the loss (a float or a 0-dim array/tensor).
    optimizer : Optimizer
        The optimizer ``train_step`` uses (either backend, or torch.optim).
    start_lr, end_lr : float
        The sweep's range, ``0 < start_lr < end_lr``.
    num_iters : int
        The most steps (>= 2).
    smooth : float in (0, 1]
        Weight of the newest loss in the moving average (1: no smoothing).
    diverge_threshold : float > 1
        Stop once the smoothed loss exceeds this multiple of the best one.

    Returns
    -------
    lrs, losses : ndarray, shape (k,)
        The learning rates tried and the smoothed losses, ``k <= num_iters``.
    """
    if not callable(train_step):
        raise TypeError(f"train_step must be callable, got {type(train_step).__name__}")
    _check_optimizer(optimizer)
    check_number("start_lr", start_lr, low=0.0, low_open=True)
    check_number("end_lr", end_lr, low=start_lr, low_open=True)
    check_number("num_iters", num_iters, low=2, integer=True)
    check_number("smooth", smooth, low=0.0, low_open=True, high=1.0)
    check_number("diverge_threshold", diverge_threshold, low=1.0, low_open=True)

    saved = copy.deepcopy(optimizer.state_dict())
    lrs, losses = [], []
    best = math.inf
    try:
        for lr in np.geomspace(start_lr, end_lr, num_iters):
            for group in optimizer.param_groups:
                group["lr"] = float(lr)
            loss = _as_float(train_step())
            smoothed = loss if not losses else smooth * loss + (1 - smooth) * losses[-1]
            lrs.append(float(lr))
            losses.append(smoothed)
            if not math.isfinite(smoothed) or smoothed > diverge_threshold * best:
                break
            best = min(best, smoothed)
    finally:
        optimizer.load_state_dict(saved)
    return np.array(lrs), np.array(losses)


def suggest_lr(lrs, losses):
    r"""The learning rate where the smoothed loss falls fastest.

    Returns ``lrs[i]`` for the :math:`i` minimizing the slope
    :math:`d\bar\ell / d\log\gamma` (``numpy.gradient``), searched only up to the lowest
    loss, so the divergence at the end cannot be picked. This "steepest descent" choice
    is a heuristic of the fastai library (its ``lr_find`` suggestion ``steep``), as is
    the other common one, a tenth of the rate at the lowest loss (``minimum``); Smith
    (2017), who introduced the range test, reads bounds for a cyclical schedule off it
    instead (see the module docstring). Either is a starting point, not an optimum.

    Parameters
    ----------
    lrs, losses : array_like, shape (k,), k >= 3
        As returned by :func:`lr_range_test`.

    Returns
    -------
    float
    """
    lrs = np.asarray(lrs, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if lrs.ndim != 1 or lrs.shape != losses.shape:
        raise ValueError(f"lrs and losses must be 1-D of the same length, got shapes "
                         f"{lrs.shape} and {losses.shape}")
    if len(lrs) < 3:
        raise ValueError(f"lrs must hold at least 3 points, got {len(lrs)}")
    if np.any(lrs <= 0):
        raise ValueError("lrs must be positive")
    finite = np.isfinite(losses)
    if finite.sum() < 3:
        raise ValueError("losses must hold at least 3 finite values")
    lrs, losses = lrs[finite], losses[finite]
    last = int(np.argmin(losses)) + 1
    slopes = np.gradient(losses, np.log(lrs))
    return float(lrs[int(np.argmin(slopes[:max(last, 2)]))])
