"""Matplotlib figures the chapters reuse.

Every function draws into new axes (or into ``ax=`` where it takes one), returns
``(fig, ax)`` (``(fig, axes)`` with an array of axes when there are several) and never
calls ``plt.show()``: the notebook or the caller decides when to show or save.

The 2-D test surfaces for :func:`plot_optimizer_paths` are in :mod:`course_lib.surfaces`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from course_lib.core.validate import check_number

__all__ = ["plot_layer_histograms", "plot_layer_stats", "plot_learning_curves",
           "plot_optimizer_paths", "plot_lr_schedule", "plot_lr_range_test",
           "plot_decision_boundary"]


def _new_axes(ax, **subplots):
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(**subplots)


def _as_numpy(a):
    if hasattr(a, "detach"):
        return a.detach().to("cpu").double().numpy()
    return np.asarray(a, dtype=np.float64)


def _named_activations(stats_or_activations):
    """``[(label, values)]`` from activation_stats(keep_activations=True) output, a dict
    name -> array, or a list of arrays."""
    data = stats_or_activations
    if isinstance(data, dict):
        return [(str(k), _as_numpy(v).ravel()) for k, v in data.items()]
    items = []
    for i, entry in enumerate(data):
        if isinstance(entry, dict):
            if "activations" not in entry:
                raise ValueError("stats_or_activations: the stats need 'activations'; call "
                                 "activation_stats(..., keep_activations=True)")
            label = f"{entry['name']} {entry['layer']}"
            items.append((label, _as_numpy(entry["activations"]).ravel()))
        else:
            items.append((f"layer {i}", _as_numpy(entry).ravel()))
    if not items:
        raise ValueError("stats_or_activations must not be empty")
    return items


def plot_layer_histograms(stats_or_activations, *, bins: int = 50, range=None,
                          overlay: bool = False, density: bool = True):
    """Histograms of the activations of each layer (as Glorot & Bengio 2010, fig. 6).

    Parameters
    ----------
    stats_or_activations : list of dict, dict name -> array, or list of arrays
        The output of ``diagnostics.activation_stats(model, x, keep_activations=True)``
        (the layer name and kind label each histogram), or the arrays themselves.
    bins : int
    range : (float, float) or None
        Common range of the histograms (default: the range over all layers).
    overlay : bool
        ``False``: one panel per layer, side by side; ``True``: one axes with a line
        per layer (Karpathy's style).
    density : bool

    Returns
    -------
    fig, axes : Figure and an array of Axes (one per layer, or one with ``overlay``)
    """
    items = _named_activations(stats_or_activations)
    check_number("bins", bins, low=1, integer=True)
    if range is None:
        lo = min(float(v.min()) for _, v in items)
        hi = max(float(v.max()) for _, v in items)
        range = (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)
    if overlay:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for label, values in items:
            counts, edges = np.histogram(values, bins=bins, range=range, density=density)
            ax.plot(0.5 * (edges[1:] + edges[:-1]), counts, label=label)
        ax.set_xlabel("activation")
        ax.set_ylabel("density" if density else "count")
        ax.legend(fontsize="small")
        return fig, np.array([ax])
    fig, axes = plt.subplots(1, len(items), figsize=(2.6 * len(items), 2.6), sharey=True,
                             squeeze=False)
    axes = axes[0]
    for ax, (label, values) in zip(axes, items):
        ax.hist(values, bins=bins, range=range, density=density, color="C0")
        ax.set_title(label, fontsize="small")
        ax.set_xlabel("activation")
    axes[0].set_ylabel("density" if density else "count")
    fig.tight_layout()
    return fig, axes


def plot_layer_stats(stats, keys=("mean", "std"), *, ax=None):
    """Per-layer statistics against depth (one panel per key, one line per run).

    Parameters
    ----------
    stats : list of dict, or dict label -> list of dict
        Output of ``activation_stats`` or ``gradient_stats`` (several runs to compare,
        e.g. one per initialization, as a dict).
    keys : sequence of str
        The statistics to plot, e.g. ``("mean", "std")``, ``("saturated",)``, ``("norm",)``.
        Layers where a key is ``None`` are skipped.
    ax : Axes or None
        Only with a single key.

    Returns
    -------
    fig, axes : Figure and an array of Axes, one per key
    """
    runs = stats if isinstance(stats, dict) else {None: stats}
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if not keys:
        raise ValueError("keys must name at least one statistic")
    if ax is not None:
        if len(keys) != 1:
            raise ValueError("ax can only be given with a single key")
        fig, axes = ax.figure, np.array([ax])
    else:
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
        axes = axes[0]
    for ax_k, key in zip(axes, keys):
        for label, layer_stats in runs.items():
            points = [(i, s[key]) for i, s in enumerate(layer_stats) if s.get(key) is not None]
            if not points:
                continue
            depth, values = zip(*points)
            ax_k.plot(depth, values, marker="o", label=label)
        ax_k.set_xlabel("layer")
        ax_k.set_ylabel(key)
        if isinstance(stats, dict):
            ax_k.legend(fontsize="small")
    fig.tight_layout()
    return fig, axes


def _as_history_dict(h):
    if hasattr(h, "as_dict"):
        return h.as_dict()
    if isinstance(h, dict) and "train_loss" in h:
        return h
    raise TypeError("history_or_histories must be a History, its as_dict(), or a dict "
                    f"label -> History, got {type(h).__name__}")


def plot_learning_curves(history_or_histories, metric=None, *, log_y: bool = False):
    """Training (solid) and validation (dashed) curves per epoch.

    Parameters
    ----------
    history_or_histories : History, dict from ``History.as_dict()``, or dict label -> History
    metric : str or None
        A name for the metric axis (e.g. ``"accuracy"``): adds a second panel with
        ``train_metric``/``val_metric``.
    log_y : bool
        Logarithmic loss axis.

    Returns
    -------
    fig, axes : Figure and an array of Axes (loss, then the metric if asked)
    """
    single = hasattr(history_or_histories, "as_dict") or (
        isinstance(history_or_histories, dict) and "train_loss" in history_or_histories)
    runs = ({None: history_or_histories} if single else dict(history_or_histories))
    if not runs:
        raise ValueError("history_or_histories must not be empty")
    n_panels = 2 if metric else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 3.5), squeeze=False)
    axes = axes[0]
    panels = [("loss", "train_loss", "val_loss")]
    if metric:
        panels.append((metric, "train_metric", "val_metric"))
    for i, (label, h) in enumerate(runs.items()):
        h = _as_history_dict(h)
        color = f"C{i}"
        prefix = f"{label} " if label is not None else ""
        for ax, (ylabel, train_key, val_key) in zip(axes, panels):
            for key, style, name in ((train_key, "-", "train"), (val_key, "--", "val")):
                values = h.get(key) or []
                if len(values):
                    ax.plot(np.arange(1, len(values) + 1), values, style, color=color,
                            label=prefix + name)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
    if log_y:
        axes[0].set_yscale("log")
    for ax in axes:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig, axes


def plot_optimizer_paths(f, paths, xlim=None, ylim=None, levels=30, *, log_levels=None,
                         resolution: int = 200, ax=None):
    """Contours of a 2-D surface with the path of each optimizer on it.

    Parameters
    ----------
    f : callable
        ``f(xy)`` for points of shape ``(..., 2)``, e.g. ``course_lib.surfaces.rosenbrock``.
    paths : dict name -> array of shape (T, 2)
        E.g. from ``course_lib.surfaces.optimize_path``.
    xlim, ylim : (float, float) or None
        The window; default ``f.xlim``/``f.ylim`` when ``f`` has them.
    levels : int or sequence of float
        Contour levels.
    log_levels : bool or None
        Space ``levels`` (an int) logarithmically, for surfaces such as Rosenbrock with a
        huge range; ``None``: when the surface is positive with a max/min spread > 1e3.
    resolution : int
        Grid points per axis.

    Returns
    -------
    fig, ax
    """
    xlim = xlim if xlim is not None else getattr(f, "xlim", None)
    ylim = ylim if ylim is not None else getattr(f, "ylim", None)
    if xlim is None or ylim is None:
        raise ValueError("xlim and ylim are needed for a surface without .xlim/.ylim")
    check_number("resolution", resolution, low=2, integer=True)
    xs = np.linspace(*xlim, resolution)
    ys = np.linspace(*ylim, resolution)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1)
    z = np.asarray(f(grid), dtype=np.float64)
    fig, ax = _new_axes(ax, figsize=(6, 5))
    if isinstance(levels, int):
        zmin, zmax = float(z.min()), float(z.max())
        if log_levels is None:
            log_levels = zmin >= 0 and zmax > 1e3 * max(zmin, 1e-3)
        if log_levels:
            levels = np.geomspace(max(zmin, 1e-3 * zmax, 1e-12), zmax, levels)
    ax.contour(xs, ys, z, levels=levels, cmap="viridis", linewidths=0.7)
    for i, (name, path) in enumerate(paths.items()):
        path = np.asarray(path, dtype=np.float64)
        if path.ndim != 2 or path.shape[1] != 2:
            raise ValueError(f"paths[{name!r}] must have shape (T, 2), got {path.shape}")
        ax.plot(path[:, 0], path[:, 1], "-", marker=".", markersize=3, color=f"C{i}", label=name)
        ax.plot(*path[-1], "o", color=f"C{i}")
    if paths:
        first = np.asarray(next(iter(paths.values())))[0]
        ax.plot(*first, "k^", label="start")
    minimum = getattr(f, "minimum", None)
    if minimum is not None:
        ax.plot(*minimum, "k*", markersize=12, label="minimum")
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$y$")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return fig, ax


def plot_lr_schedule(lrs_by_name, *, log_y: bool = False, ax=None):
    """Learning rate against step for each schedule.

    Parameters
    ----------
    lrs_by_name : dict name -> sequence of float
        The learning rate at each step (or epoch).

    Returns
    -------
    fig, ax
    """
    if not isinstance(lrs_by_name, dict) or not lrs_by_name:
        raise TypeError("lrs_by_name must be a non-empty dict name -> sequence of learning rates")
    fig, ax = _new_axes(ax, figsize=(6, 3.5))
    for name, lrs in lrs_by_name.items():
        ax.plot(np.arange(len(lrs)), np.asarray(lrs, dtype=np.float64), label=name)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.legend(fontsize="small")
    return fig, ax


def plot_lr_range_test(lrs, losses, suggestion=None, *, ax=None):
    """Loss against learning rate (log axis) from an LR range test (Smith 2017).

    Parameters
    ----------
    lrs, losses : sequences of float, same length
    suggestion : float or None
        A suggested learning rate, marked with a vertical line.

    Returns
    -------
    fig, ax

    References
    ----------
    Smith (2017), *Cyclical Learning Rates for Training Neural Networks*, WACV.
    """
    lrs = np.asarray(lrs, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if lrs.ndim != 1 or lrs.shape != losses.shape:
        raise ValueError(f"lrs and losses must be 1-D with the same length, got {lrs.shape} "
                         f"and {losses.shape}")
    if np.any(lrs <= 0):
        raise ValueError("lrs must be positive (they go on a log axis)")
    fig, ax = _new_axes(ax, figsize=(6, 3.5))
    ax.plot(lrs, losses, label="loss")
    ax.set_xscale("log")
    if suggestion is not None:
        check_number("suggestion", suggestion, low=0.0, low_open=True)
        ax.axvline(suggestion, color="C3", linestyle="--", label=f"suggested lr = {suggestion:.2g}")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.legend(fontsize="small")
    return fig, ax


def plot_decision_boundary(predict_fn, X, y, *, resolution: int = 200, margin: float = 0.5,
                           ax=None):
    """Regions of the plane assigned to each class, with the data on top.

    Parameters
    ----------
    predict_fn : callable
        ``predict_fn(points)`` for points of shape ``(M, 2)`` (a float64 ndarray), returning
        class labels ``(M,)`` or scores ``(M, C)`` (the argmax is taken); a torch tensor is
        accepted as output.
    X : array, shape (N, 2)
    y : array, shape (N,), class labels
    resolution : int
        Grid points per axis.
    margin : float
        Added around the data's range.

    Returns
    -------
    fig, ax
    """
    X = _as_numpy(X)
    y = np.asarray(y).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (N, 2), got {X.shape}")
    if len(y) != len(X):
        raise ValueError(f"y must have {len(X)} labels, got {len(y)}")
    check_number("resolution", resolution, low=2, integer=True)
    xs = np.linspace(X[:, 0].min() - margin, X[:, 0].max() + margin, resolution)
    ys = np.linspace(X[:, 1].min() - margin, X[:, 1].max() + margin, resolution)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    pred = _as_numpy(predict_fn(grid))
    if pred.ndim == 2 and pred.shape[1] > 1:
        pred = pred.argmax(1)
    pred = pred.reshape(resolution, resolution)
    n_classes = int(max(pred.max(), y.max())) + 1
    fig, ax = _new_axes(ax, figsize=(5, 5))
    ax.contourf(xs, ys, pred, levels=np.arange(n_classes + 1) - 0.5, cmap="tab10",
                vmin=0, vmax=9, alpha=0.3)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="tab10", vmin=0, vmax=9, s=12, edgecolors="k",
               linewidths=0.3)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    return fig, ax
