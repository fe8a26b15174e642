"""Drivers that test cells run next to the student's code with ``run_in_student``.

A probe takes the student's object (a class, a function) plus plain data, exercises it
the way a user would (for instance, trains a small model with the student's optimizer),
and returns plain data only (numbers, lists, dicts with ``str`` keys, ndarrays). Under
the course grader a probe runs in the grader's trusted process and reaches the student's
object through its proxy (the student cannot replace it); the test cell then runs the
same probe on the PyTorch built-in and compares.

Probes are deterministic: every random draw comes from a ``torch.Generator`` seeded with
the ``seed`` argument, and they compute in float64.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["train_with_optimizer", "normal_init"]


def _mlp_parameters(sizes, generator):
    """Weights ``(out, in)`` and biases of an MLP, drawn like ``torch.nn.Linear``'s
    default (uniform in ``±1/sqrt(fan_in)``), float64."""
    import torch
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        for shape in ((fan_out, fan_in), (fan_out,)):
            value = (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound
            params.append(value.requires_grad_())
    return params


def train_with_optimizer(optimizer_class, optimizer_kwargs=None, *, seed=0, steps=20,
                         sizes=(6, 12, 3), n_samples=48, first_layer_lr=None,
                         first_layer_options=None, closure=False, sometimes_unused=False):
    """Train a small tanh MLP classifier with ``optimizer_class`` and report what happened.

    The model has ``len(sizes) - 1`` linear layers (tanh between them) and is trained
    full-batch with the cross-entropy loss on random data, all drawn from
    ``torch.Generator().manual_seed(seed)`` in float64. It also has a parameter that never
    receives a gradient (its ``.grad`` stays ``None``): an optimizer must skip it, as
    ``torch.optim`` optimizers do.

    Parameters
    ----------
    optimizer_class : type
        A ``torch.optim.Optimizer`` subclass, called as
        ``optimizer_class(params_or_groups, **optimizer_kwargs)``.
    optimizer_kwargs : dict, optional
        Keyword arguments of the optimizer (``lr``, ``betas``, ...).
    seed : int
        Seed of the data and the initial parameters.
    steps : int
        Number of ``zero_grad(); loss.backward(); step()`` iterations.
    sizes : tuple of int
        Layer widths, input first.
    n_samples : int
        Batch size (the whole data set).
    first_layer_lr : float, optional
        If given, the first layer's parameters form their own parameter group with this
        learning rate (the others use ``optimizer_kwargs["lr"]`` or the default).
    first_layer_options : dict, optional
        Other options of the first layer's own group (``betas``, ``eps``,
        ``weight_decay``, ...), with or without ``first_layer_lr``.
    closure : bool
        Call ``step(closure)``, with a closure that clears the gradients, computes the
        loss, back-propagates and returns the loss (``"returned"`` holds what ``step``
        returned each time, NaN for ``None``), instead of ``step()``.
    sometimes_unused : bool
        Add a parameter (last but one) that enters the loss only on even steps, so that
        its ``.grad`` is ``None`` on the odd ones: its state (its ``"step"`` count among
        them) must advance only when it has a gradient, as in ``torch.optim``.

    Returns
    -------
    dict
        ``"losses"``: float64 array ``(steps,)`` of the loss before each step;
        ``"params"``: list of float64 arrays, the final parameters (the unused one last);
        ``"steps"``: ``float(optimizer.state[p]["step"])`` of each of those parameters
        after training (-1 where the state has no ``"step"``); ``"returned"`` with
        ``closure``.
    """
    import torch   # here: the NumPy-only exercises' sandbox has no torch (normal_init)
    kwargs = dict(optimizer_kwargs or {})
    generator = torch.Generator().manual_seed(int(seed))
    x = torch.randn(n_samples, sizes[0], generator=generator, dtype=torch.float64)
    y = torch.randint(0, sizes[-1], (n_samples,), generator=generator)
    params = _mlp_parameters(sizes, generator)
    unused = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    extra = []
    if sometimes_unused:
        extra = [(torch.rand(3, generator=generator, dtype=torch.float64) - 0.5).requires_grad_()]
    if first_layer_lr is None and not first_layer_options:
        groups = params + extra + [unused]
    else:
        first = {"params": params[:2], **dict(first_layer_options or {})}
        if first_layer_lr is not None:
            first["lr"] = first_layer_lr
        groups = [first, {"params": params[2:] + extra + [unused]}]
    optimizer = optimizer_class(groups, **kwargs)
    step_number = [0]

    def loss_fn():
        h = x
        for i in range(0, len(params), 2):
            h = h @ params[i].T + params[i + 1]
            if i + 2 < len(params):
                h = torch.tanh(h)
        loss = torch.nn.functional.cross_entropy(h, y)
        if extra and step_number[0] % 2 == 0:
            loss = loss + 0.1 * (extra[0] ** 2).sum()
        return loss

    from exercise_checks import optimizer_step, state_steps
    everything = [p for group in groups for p in (
        group["params"] if isinstance(group, dict) else [group])]
    losses, returned = [], []

    def closure_fn():
        for p in everything:
            p.grad = None
        with torch.enable_grad():
            loss = loss_fn()
            loss.backward()
        return loss

    for number in range(int(steps)):
        step_number[0] = number
        if closure:
            with torch.no_grad():
                losses.append(float(loss_fn()))
            value = optimizer_step(optimizer, everything, closure_fn)
            returned.append(float("nan") if value is None else float(
                value.detach() if isinstance(value, torch.Tensor) else value))
            continue
        for p in everything:     # the probe clears its own gradients (zero_grad's default)
            p.grad = None
        loss = loss_fn()
        loss.backward()
        optimizer_step(optimizer, everything)
        losses.append(loss.item())
    report = {"losses": np.array(losses, dtype=np.float64),
              "params": [p.detach().numpy().copy() for p in params + extra + [unused]],
              "steps": np.array(state_steps(optimizer, params + extra + [unused]),
                                dtype=np.float64)}
    if closure:
        report["returned"] = np.array(returned, dtype=np.float64)
    return report


def normal_init(shape, std=1.0, generator=None):
    """A reference initializer for tests that need one: ``N(0, std^2)`` of ``shape``
    drawn with the NumPy ``generator`` (use ``functools.partial`` to fix ``std``)."""
    generator = np.random.default_rng() if generator is None else generator
    return generator.normal(0.0, std, size=tuple(shape))
