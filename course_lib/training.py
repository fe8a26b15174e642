"""The training loop of the course, for both backends.

:func:`fit` runs minibatch training for a ``torch.nn.Module`` (autograd) or a
``course_lib.numpy.layers.Module`` (hand-written backward) with the same arguments and
returns a :class:`History`. :class:`EarlyStopping`, :class:`TensorBoardLogger` and other
callbacks plug into it.

One training step, as the chapters write it:

- torch: ``optimizer.zero_grad(); loss = loss_fn(model(x), y); loss.backward();
  optimizer.step()``;
- NumPy: ``optimizer.zero_grad(); loss = loss_fn(model(x), y);
  model.backward(loss_fn.backward()); optimizer.step()``.

Callback protocol: any object with some of the methods

- ``on_train_begin(logs)``: ``logs = {"model": model, "optimizer": optimizer}``;
- ``on_epoch_begin(epoch, logs)``;
- ``on_after_backward(step, logs)``: gradients are ready, the step is not yet taken
  (``logs = {"model", "optimizer", "loss"}``; a place for clipping or gradient statistics);
- ``on_batch_end(step, logs)``: after ``optimizer.step()`` (per-step schedules);
- ``on_epoch_end(epoch, logs)``: ``logs`` has the epoch's ``train_loss``, ``val_loss``,
  ``train_metric``, ``val_metric`` (floats, ``None`` when not computed) and ``lr``;
  returning ``True`` stops training, as does setting ``callback.stop_training = True``;
- ``on_train_end(logs)``.
"""
from __future__ import annotations

import copy
import inspect
import os
import sys
from dataclasses import asdict, dataclass, field

import numpy as np

from course_lib.core.validate import check_choice, check_number
from course_lib.data import minibatches

__all__ = ["History", "EarlyStopping", "TensorBoardLogger", "fit", "train_step", "evaluate",
           "accuracy"]

_HOOKS = ("on_train_begin", "on_epoch_begin", "on_after_backward", "on_batch_end",
          "on_epoch_end", "on_train_end")


# ------------------------------------------------------------------------- backends
def _is_torch_module(model) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _is_tensor(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def accuracy(logits, y):
    """Fraction of correct predictions.

    Multi-class: ``logits`` of shape ``(N, C)``, prediction ``argmax`` over classes, ``y``
    class indices ``(N,)``. Binary: ``logits`` of shape ``(N,)`` or ``(N, 1)``, prediction
    ``logit > 0`` (probability > 0.5), ``y`` in {0, 1}.

    Returns
    -------
    float for NumPy input; a 0-d float tensor on the logits' device for torch input (so a
    training loop can sum it without waiting for the GPU: call ``float()`` to read it).
    """
    if logits.ndim == 2 and logits.shape[1] > 1:
        pred = logits.argmax(1)
    elif logits.ndim in (1, 2):
        pred = (logits.reshape(-1) > 0)
    else:
        raise ValueError(f"logits must be (N,), (N, 1) or (N, C), got shape {tuple(logits.shape)}")
    y = y.reshape(-1)
    if len(y) != len(pred):
        raise ValueError(f"y must have {len(pred)} labels, got shape {tuple(y.shape)}")
    if _is_tensor(logits):
        return (pred == y.to(pred.dtype)).float().mean()
    return float(np.mean(pred == np.asarray(y).astype(pred.dtype)))


def train_step(model, loss_fn, optimizer, xb, yb, hooks=None, step=0):
    """One optimization step on the minibatch ``(xb, yb)``; returns ``(loss, output)``.

    The loss is a detached 0-d tensor for torch (no host sync) and a float for NumPy.
    ``hooks`` is a list of ``on_after_backward`` callables, called between the backward
    pass and ``optimizer.step()``.
    """
    optimizer.zero_grad()
    out = model(xb)
    loss = loss_fn(out, yb)
    if _is_torch_module(model):
        loss.backward()
        loss = loss.detach()
        out = out.detach()
    else:
        if not hasattr(loss_fn, "backward"):
            raise TypeError("loss_fn must be a loss object with a backward() method (e.g. "
                            "course_lib.numpy.losses.CrossEntropyLoss()) for a NumPy model")
        model.backward(loss_fn.backward())
        loss = float(loss)
    if hooks:
        logs = {"model": model, "optimizer": optimizer, "loss": loss}
        for hook in hooks:
            hook(step, logs)
    optimizer.step()
    return loss, out


def evaluate(model, loss_fn, data, *, batch_size=1024, metric=None):
    """Mean loss (and metric) of ``model`` on ``data = (X, y)``, in eval mode, no gradients.

    The mean is over examples (each batch weighted by its size). Returns
    ``(loss, metric_value)`` as floats (``metric_value`` is ``None`` without a metric).
    For torch the sums stay on the device and are read once.
    """
    X, y = data
    sums = _evaluate_sums(model, loss_fn, X, y, batch_size, metric)
    values = _read(sums)
    return values[0] / len(X), (values[1] / len(X) if metric is not None else None)


def _evaluate_sums(model, loss_fn, X, y, batch_size, metric):
    was_training = model.training
    model.eval()
    total_loss, total_metric = 0.0, 0.0
    if _is_torch_module(model):
        import torch

        ctx = torch.no_grad()
    else:
        import contextlib

        ctx = contextlib.nullcontext()
    with ctx:
        for xb, yb in minibatches(X, y, batch_size, shuffle=False):
            out = model(xb)
            total_loss = total_loss + loss_fn(out, yb) * len(xb)
            if metric is not None:
                total_metric = total_metric + metric(out, yb) * len(xb)
    if was_training:
        model.train()
    return [total_loss, total_metric]


def _accumulate(total, value, n):
    """``total + n * value``; for a tensor, in place on the device (one kernel, no sync)."""
    if _is_tensor(value):
        if _is_tensor(total):
            return total.add_(value.detach(), alpha=n)
        return value.detach() * n + total
    return total + float(value) * n


def _read(values):
    """Read a list of numbers and device tensors back as floats, with one host sync."""
    tensors = [i for i, v in enumerate(values) if _is_tensor(v)]
    out = [float(v) if not _is_tensor(v) else None for v in values]
    if tensors:
        import torch

        read = torch.stack([values[i].detach().to(torch.float64) for i in tensors]).tolist()
        for i, value in zip(tensors, read):
            out[i] = value
    return out


# -------------------------------------------------------------------------- history
@dataclass
class History:
    """What :func:`fit` measured, one entry per epoch run.

    ``train_loss`` / ``train_metric`` are averages over the epoch's minibatches (weighted
    by batch size) while the weights change, as Keras reports them; ``val_loss`` /
    ``val_metric`` are computed after the epoch in eval mode. Lists stay empty for
    what was not computed (no validation data, no metric). ``lr`` is the learning rate
    of the first parameter group during the epoch. ``best_epoch`` (0-based) is the
    epoch with the best monitored value (``val_loss``, or ``train_loss`` without
    validation data; the early-stopping monitor when there is one).
    """

    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    train_metric: list = field(default_factory=list)
    val_metric: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_epoch: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def __len__(self):
        return len(self.train_loss)


# --------------------------------------------------------------------- callbacks
def _snapshot(model) -> dict:
    """A deep copy of ``model.state_dict()`` (tensors cloned, arrays copied)."""
    out = {}
    for key, value in model.state_dict().items():
        if _is_tensor(value):
            out[key] = value.detach().clone()
        elif isinstance(value, np.ndarray):
            out[key] = value.copy()
        else:
            out[key] = copy.deepcopy(value)
    return out


class EarlyStopping:
    """Stop when the monitored quantity has not improved for ``patience`` epochs.

    An epoch improves on the best value so far when ``value < best - min_delta``
    (``mode="min"``) or ``value > best + min_delta`` (``mode="max"``). After ``patience``
    epochs in a row without improvement, training stops. With
    ``restore_best_weights=True`` the model gets back, at the end of training, a copy of
    its ``state_dict()`` from the best epoch.

    Attributes
    ----------
    best : float
    best_epoch : int or None
    stopped_epoch : int or None
        The epoch at which it stopped training (``None`` if it never did).

    References
    ----------
    Prechelt (1998), *Early Stopping - But When?*, Neural Networks: Tricks of the Trade.
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min",
                 monitor: str = "val_loss", restore_best_weights: bool = True):
        self.patience = check_number("patience", patience, low=0, integer=True)
        self.min_delta = check_number("min_delta", min_delta, low=0.0)
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.monitor = check_choice("monitor", monitor,
                                    ("val_loss", "train_loss", "val_metric", "train_metric"))
        self.restore_best_weights = bool(restore_best_weights)
        self.stop_training = False

    def on_train_begin(self, logs):
        self.model = logs["model"]
        self.best = np.inf if self.mode == "min" else -np.inf
        self.best_epoch = None
        self.best_state = None
        self.wait = 0
        self.stopped_epoch = None
        self.stop_training = False

    def _improved(self, value) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs):
        value = logs.get(self.monitor)
        if value is None:
            raise ValueError(f"monitor {self.monitor!r} is not computed: "
                             "pass val_data (val_*) or a metric (*_metric) to fit")
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = _snapshot(self.model)
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.stop_training = True
        return self.stop_training

    def on_train_end(self, logs):
        if self.restore_best_weights and self.best_state is not None:
            self.model.load_state_dict(self.best_state)


class TensorBoardLogger:
    """Log a run of :func:`fit` to TensorBoard: experiment tracking.

    Writes, with ``torch.utils.tensorboard.SummaryWriter`` (needs the ``tensorboard``
    package), one event file under ``log_dir``: after every epoch the scalars
    ``train_loss``, ``val_loss``, ``train_metric``, ``val_metric`` (those computed) and
    ``lr``, at step = the epoch (0-based); with ``log_every_n_steps`` also
    ``batch_loss`` every that many optimizer steps; at the end ``hparams`` with the run's
    final values (``add_hparams``, shown in TensorBoard's HParams tab). Run ``tensorboard
    --logdir <parent of the runs>`` to compare runs, or read them back with
    ``tensorboard.backend.event_processing.event_accumulator.EventAccumulator``.

    TensorBoard stores scalars as float32.

    Parameters
    ----------
    log_dir : str or os.PathLike
        The directory of this run (one directory per run).
    hparams : dict or None
        The run's hyperparameters (``bool``, ``int``, ``float`` or ``str`` values).
    log_every_n_steps : int or None
        Also log the minibatch loss every that many steps (``None``: never; each logged
        value is read from the device).
    """

    def __init__(self, log_dir, *, hparams=None, log_every_n_steps=None):
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir must be a path, got {type(log_dir).__name__}")
        self.log_dir = os.fspath(log_dir)
        if hparams is not None and not isinstance(hparams, dict):
            raise TypeError(f"hparams must be a dict or None, got {type(hparams).__name__}")
        for key, value in (hparams or {}).items():
            if not isinstance(value, (bool, int, float, str)):
                raise TypeError(f"hparams[{key!r}] must be a bool, int, float or str, got "
                                f"{type(value).__name__}")
        self.hparams = dict(hparams or {})
        if log_every_n_steps is not None:
            check_number("log_every_n_steps", log_every_n_steps, low=1, integer=True)
        self.log_every_n_steps = log_every_n_steps
        self.writer = None

    def on_train_begin(self, logs):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=self.log_dir)
        self._last = {}

    def on_batch_end(self, step, logs):
        if self.log_every_n_steps is not None and step % self.log_every_n_steps == 0:
            self.writer.add_scalar("batch_loss", float(logs["loss"]), step)

    def on_epoch_end(self, epoch, logs):
        for key in ("train_loss", "val_loss", "train_metric", "val_metric", "lr"):
            if logs.get(key) is not None:
                self.writer.add_scalar(key, logs[key], epoch)
                self._last[key] = float(logs[key])
        return False

    def on_train_end(self, logs):
        if self.hparams:
            metrics = {f"final/{k}": v for k, v in self._last.items() if k != "lr"}
            self.writer.add_hparams(self.hparams, metrics, run_name=".")
        self.writer.close()


def _wants_metric(scheduler) -> bool:
    """``True`` for ReduceLROnPlateau-like schedulers, whose ``step`` needs the metric."""
    if type(scheduler).__name__ == "ReduceLROnPlateau":
        return True
    try:
        params = inspect.signature(scheduler.step).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.default is inspect.Parameter.empty
               and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _progress_enabled(progress) -> bool:
    """``progress=None`` (auto): a bar only in an interactive terminal, never under CI or
    pytest."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return False
    if "PYTEST_CURRENT_TEST" in os.environ or "pytest" in sys.modules:
        return False
    return sys.stderr is not None and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


# ---------------------------------------------------------------------------- fit
def _prepare_torch_data(data, model, device):
    import torch

    X, y = data
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    X = X.to(device=device, dtype=dtype if X.is_floating_point() else X.dtype)
    y = y.to(device=device, dtype=dtype if y.is_floating_point() else torch.int64)
    return X, y


def _torch_generator(generator, device):
    """A ``torch.Generator`` on ``device`` from a ``torch.Generator``, a NumPy
    ``Generator`` or ``None``."""
    import torch

    if generator is None:
        return None
    if isinstance(generator, torch.Generator):
        if generator.device.type == torch.device(device).type:
            return generator
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    elif isinstance(generator, np.random.Generator):
        seed = int(generator.integers(0, 2**62))
    else:
        raise TypeError("generator must be a torch.Generator, a numpy.random.Generator or "
                        f"None, got {type(generator).__name__}")
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def fit(model, loss_fn, optimizer, train_data, val_data=None, *, epochs=10, batch_size=64,
        generator=None, metric=None, scheduler=None, callbacks=(), early_stopping=None,
        progress=None, device=None) -> History:
    """Train ``model`` with minibatches for ``epochs`` epochs; return the :class:`History`.

    Parameters
    ----------
    model : torch.nn.Module or course_lib.numpy.layers.Module
        Put in ``train()`` mode for training and ``eval()`` mode for validation (left in
        ``train()`` mode at the end).
    loss_fn : callable
        ``loss_fn(output, target)`` -> scalar mean loss. For a NumPy model, a loss object
        with ``backward()`` (``course_lib.numpy.losses.CrossEntropyLoss()``...).
    optimizer : torch.optim.Optimizer or a course_lib.numpy.optim optimizer
    train_data, val_data : tuple (X, y)
        NumPy arrays, or torch tensors for a torch model. For torch, they are moved once
        to ``device`` (floating data to the dtype of the model's parameters, integer
        labels to int64).
    epochs, batch_size : int
    generator : numpy.random.Generator, torch.Generator or None
        Shuffles the training set each epoch (reproducible from its seed).
    metric : callable or None
        ``metric(output, target)``, a batch mean such as :func:`accuracy`.
    scheduler : learning-rate scheduler or None
        ``scheduler.step()`` after each epoch; a ``ReduceLROnPlateau`` (detected by its
        name or a ``step(metrics)`` signature) gets the validation loss (the training loss
        without validation data).
    callbacks : sequence
        Objects following the callback protocol (see the module docstring).
    early_stopping : EarlyStopping or None
        Run after the other callbacks; restores the best weights at the end.
    progress : bool or None
        A tqdm bar over epochs; ``None``: only in an interactive terminal (never under CI
        or pytest).
    device : str, torch.device or None
        torch only: where to train (the model is moved there); default: the device of the
        model's parameters.

    Returns
    -------
    History
    """
    check_number("epochs", epochs, low=1, integer=True)
    check_number("batch_size", batch_size, low=1, integer=True)
    if not (isinstance(train_data, (tuple, list)) and len(train_data) == 2):
        raise TypeError("train_data must be a pair (X, y)")
    if val_data is not None and not (isinstance(val_data, (tuple, list)) and len(val_data) == 2):
        raise TypeError("val_data must be a pair (X, y) or None")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError("early_stopping must be an EarlyStopping, got "
                        f"{type(early_stopping).__name__}")
    if early_stopping is not None and val_data is None and early_stopping.monitor.startswith("val"):
        raise ValueError(f"early_stopping monitors {early_stopping.monitor!r} but val_data is None")
    callbacks = list(callbacks) + ([early_stopping] if early_stopping is not None else [])
    hooks = {name: [getattr(cb, name) for cb in callbacks if hasattr(cb, name)] for name in _HOOKS}

    is_torch = _is_torch_module(model)
    if is_torch:
        import torch

        if device is not None:
            device = torch.device(device)
            model.to(device)
        else:
            param = next(model.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
        X, y = _prepare_torch_data(train_data, model, device)
        val = _prepare_torch_data(val_data, model, device) if val_data is not None else None
        shuffle_gen = _torch_generator(generator, device)
    else:
        if device is not None:
            raise ValueError("device is only for torch models; got a NumPy model")
        if any(_is_tensor(a) for a in train_data):
            raise TypeError("train_data must hold NumPy arrays for a NumPy model")
        X, y = (np.asarray(a) for a in train_data)
        val = tuple(np.asarray(a) for a in val_data) if val_data is not None else None
        shuffle_gen = np.random.default_rng() if generator is None else generator
        if not isinstance(shuffle_gen, np.random.Generator):
            raise TypeError("generator must be a numpy.random.Generator or None for a "
                            f"NumPy model, got {type(generator).__name__}")
    if len(X) == 0:
        raise ValueError("train_data must not be empty")
    plateau = scheduler is not None and _wants_metric(scheduler)

    history = History()
    begin_logs = {"model": model, "optimizer": optimizer}
    for hook in hooks["on_train_begin"]:
        hook(begin_logs)
    epoch_iter = range(epochs)
    bar = None
    if _progress_enabled(progress):
        from tqdm import tqdm

        bar = epoch_iter = tqdm(epoch_iter, desc="epochs", unit="epoch")

    step = 0
    try:
        for epoch in epoch_iter:
            for hook in hooks["on_epoch_begin"]:
                hook(epoch, {})
            lr = float(optimizer.param_groups[0]["lr"])
            model.train()
            total_loss, total_metric = 0.0, 0.0
            for xb, yb in minibatches(X, y, batch_size, generator=shuffle_gen):
                loss, out = train_step(model, loss_fn, optimizer, xb, yb,
                                       hooks["on_after_backward"], step)
                total_loss = _accumulate(total_loss, loss, len(xb))
                if metric is not None:
                    total_metric = _accumulate(total_metric, metric(out, yb), len(xb))
                for hook in hooks["on_batch_end"]:
                    hook(step, {"model": model, "optimizer": optimizer, "loss": loss})
                step += 1
            sums = [total_loss, total_metric]
            if val is not None:
                sums += _evaluate_sums(model, loss_fn, *val, max(batch_size, 1024), metric)
            values = _read(sums)  # the one host sync of the epoch
            logs = {"epoch": epoch, "lr": lr,
                    "train_loss": values[0] / len(X),
                    "train_metric": values[1] / len(X) if metric is not None else None,
                    "val_loss": values[2] / len(val[0]) if val is not None else None,
                    "val_metric": (values[3] / len(val[0])
                                   if val is not None and metric is not None else None)}
            history.lr.append(lr)
            for key in ("train_loss", "val_loss", "train_metric", "val_metric"):
                if logs[key] is not None:
                    getattr(history, key).append(logs[key])
            if bar is not None:
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()
                                 if k.endswith(("loss", "metric")) and v is not None})
            if scheduler is not None:
                if plateau:
                    scheduler.step(logs["val_loss"] if val is not None else logs["train_loss"])
                else:
                    scheduler.step()
            stop = False
            for hook in hooks["on_epoch_end"]:
                stop = bool(hook(epoch, logs)) or stop
            stop = stop or any(getattr(cb, "stop_training", False) for cb in callbacks)
            if stop:
                history.stopped_epoch = epoch
                break
    finally:
        if bar is not None:
            bar.close()
    for hook in hooks["on_train_end"]:
        hook({"model": model, "optimizer": optimizer, "history": history})
    model.train()

    if early_stopping is not None and early_stopping.best_epoch is not None:
        history.best_epoch = early_stopping.best_epoch
    else:
        monitored = history.val_loss or history.train_loss
        history.best_epoch = int(np.argmin(monitored)) if monitored else None
    return history
