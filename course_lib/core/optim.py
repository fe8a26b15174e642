"""The update rules of the optimizers, written once for both backends.

Each ``<name>_step(param, grad, state, ...)`` applies one update of one parameter *in
place*. ``param`` and ``grad`` are arrays of the same shape, either both NumPy ``ndarray``
or both ``torch.Tensor``: the rules use ``+ - * /``, in-place ``*= +=`` and a few helpers
named after torch's in-place tensor methods (``_add_``, ``_addcmul_``, ``_addcdiv_``,
``_lerp_``): one fused kernel on a tensor, the plain formula on an ndarray. ``state``
is the parameter's dict of running quantities (momentum buffers, moment estimates, the
step count ``t``); the first call fills it, later calls update it. The keys are
torch.optim's, so a state dict reads the same in both backends.

The classes in ``course_lib.numpy.optim`` and ``course_lib.torch.optim`` only loop over
their parameter groups and call these functions. With torch tensors, call them under
``torch.no_grad()`` (the classes do), since they write into a leaf tensor.

The operations are those of ``torch.optim``'s single-tensor implementations, in the same
order: on tensors the results equal torch.optim's, on ndarrays they agree in float64 to
about 1e-15 relative per step (torch's kernels may fuse a multiply-add).

Notation in the docstrings: :math:`\\theta` the parameter, :math:`g` its gradient,
:math:`\\gamma` the learning rate ``lr``, :math:`\\lambda` the ``weight_decay``,
:math:`t` the step count (1 on the first step).
"""
from __future__ import annotations

import numpy as np

from course_lib.core.validate import check_betas, check_number, check_flag

__all__ = [
    "sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "nadam_step", "adamax_step",
    "sgd_defaults", "adagrad_defaults", "rmsprop_defaults", "adam_defaults",
    "nadam_defaults", "adamax_defaults",
]


# --- in-place array operations, spelled as torch's tensor methods ----------------------
# Each is one fused kernel on a tensor (the optimizer step is memory-bound: fewer passes
# over the parameters means a faster step) and the plain formula on an ndarray.

def _is_numpy(x):
    return isinstance(x, np.ndarray)


def _sqrt(x):
    return np.sqrt(x) if _is_numpy(x) else x.sqrt()


def _copy(x):
    return x.copy() if _is_numpy(x) else x.clone()


def _full_like(x, value):
    """A new array shaped like ``x`` (same dtype, same device) filled with ``value``."""
    return np.full_like(x, value) if _is_numpy(x) else x.new_full(x.shape, value)


def _add(x, y, alpha):
    """``x + alpha * y``, a new array."""
    return x + alpha * y if _is_numpy(x) else x.add(y, alpha=alpha)


def _add_(x, y, alpha):
    """``x += alpha * y``."""
    if _is_numpy(x):
        x += alpha * y
    else:
        x.add_(y, alpha=alpha)
    return x


def _addcmul_(x, a, b, value):
    """``x += value * a * b``."""
    if _is_numpy(x):
        x += value * a * b
    else:
        x.addcmul_(a, b, value=value)
    return x


def _addcdiv_(x, a, b, value):
    """``x += value * a / b``."""
    if _is_numpy(x):
        x += value * a / b
    else:
        x.addcdiv_(a, b, value=value)
    return x


def _lerp_(average, value, weight):
    """``average += weight * (value - average)``: the running average
    ``(1 - weight) * average + weight * value``."""
    if _is_numpy(average):
        average += weight * (value - average)
    else:
        average.lerp_(value, weight)
    return average


def _maximum_(x, other):
    """``x = max(x, other)`` elementwise."""
    if _is_numpy(x):
        np.maximum(x, other, out=x)
    else:
        import torch  # only reached with tensors
        torch.maximum(x, other, out=x)
    return x


def _coupled_weight_decay(param, grad, weight_decay, maximize):
    """The gradient the rules use: :math:`\\pm g + \\lambda \\theta` (L2 penalty)."""
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = _add(grad, param, weight_decay)
    return grad


# --- the update rules -------------------------------------------------------------------

def sgd_step(param, grad, state, *, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False):
    r"""One step of stochastic gradient descent, with optional (Nesterov) momentum.

    .. math::

        g &\leftarrow g + \lambda\theta \\
        b_t &= \mu\, b_{t-1} + (1-\tau)\, g \quad (b_1 = g) \\
        d &= g + \mu\, b_t \text{ (Nesterov)} \quad\text{or}\quad d = b_t \\
        \theta &\leftarrow \theta - \gamma\, d

    with momentum :math:`\mu` and dampening :math:`\tau`; without momentum
    :math:`d = g`. This is PyTorch's form of momentum (the learning rate multiplies the
    buffer, not the gradient inside it), Sutskever et al. (2013), "On the importance of
    initialization and momentum in deep learning", ICML; momentum is Polyak (1964),
    SGD Robbins & Monro (1951).

    Parameters
    ----------
    param, grad : ndarray or Tensor, same shape
        Updated in place: ``param`` only.
    state : dict
        Holds ``"momentum_buffer"`` (shape of ``param``) when ``momentum != 0``.
    lr, momentum, dampening, weight_decay : float
    nesterov, maximize : bool
        ``maximize`` ascends the objective (uses :math:`-g`).
    """
    grad = _coupled_weight_decay(param, grad, weight_decay, maximize)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = _copy(grad)  # b_1 = g
        else:
            buf *= momentum
            _add_(buf, grad, 1 - dampening)  # b = mu b + (1 - tau) g
        grad = _add(grad, buf, momentum) if nesterov else buf  # d
    _add_(param, grad, -lr)  # theta -= lr d
    return param


def adagrad_step(param, grad, state, *, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    r"""One step of Adagrad: each coordinate's step shrinks with its gradient history.

    .. math::

        \tilde\gamma &= \gamma / (1 + (t-1)\,\eta) \\
        s_t &= s_{t-1} + g^2 \quad (s_0 = \text{initial\_accumulator\_value}) \\
        \theta &\leftarrow \theta - \tilde\gamma\, g / (\sqrt{s_t} + \epsilon)

    with ``lr_decay`` :math:`\eta` (after the coupled weight decay
    :math:`g \leftarrow g + \lambda\theta`). Duchi, Hazan & Singer (2011), "Adaptive
    subgradient methods for online learning and stochastic optimization", JMLR 12.

    ``state`` holds ``"step"`` (int) and ``"sum"`` (:math:`s`, shape of ``param``).
    """
    if "step" not in state:
        state["step"] = 0
        state["sum"] = _full_like(param, initial_accumulator_value)
    state["step"] += 1
    step = state["step"]
    grad = _coupled_weight_decay(param, grad, weight_decay, maximize)
    clr = lr / (1 + (step - 1) * lr_decay)
    _addcmul_(state["sum"], grad, grad, 1)  # s += g^2
    std = _sqrt(state["sum"])
    std += eps
    _addcdiv_(param, grad, std, -clr)  # theta -= clr g / (sqrt(s) + eps)
    return param


def rmsprop_step(param, grad, state, *, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, maximize=False):
    r"""One step of RMSprop: divide the gradient by a running RMS of recent gradients.

    .. math::

        v_t &= \alpha v_{t-1} + (1-\alpha)\, g^2 \\
        \bar g_t &= \alpha \bar g_{t-1} + (1-\alpha)\, g \quad\text{(centered only)} \\
        \sigma &= \sqrt{v_t - \bar g_t^2} + \epsilon \ \text{(centered)}
                  \quad\text{or}\quad \sqrt{v_t} + \epsilon \\
        b_t &= \mu\, b_{t-1} + g/\sigma, \quad \theta \leftarrow \theta - \gamma\, b_t
              \quad\text{(momentum } \mu > 0\text{)} \\
        \theta &\leftarrow \theta - \gamma\, g/\sigma \quad\text{(otherwise)}

    (after :math:`g \leftarrow g + \lambda\theta`). Hinton, Srivastava & Swersky (2012),
    "Neural Networks for Machine Learning", lecture 6e; the centered variant is Graves
    (2013), "Generating sequences with recurrent neural networks", arXiv:1308.0850.

    ``state`` holds ``"step"``, ``"square_avg"`` (:math:`v`), ``"momentum_buffer"`` when
    ``momentum > 0`` and ``"grad_avg"`` (:math:`\bar g`) when ``centered``.
    """
    if "step" not in state:
        state["step"] = 0
        state["square_avg"] = _full_like(param, 0)
        if momentum > 0:
            state["momentum_buffer"] = _full_like(param, 0)
        if centered:
            state["grad_avg"] = _full_like(param, 0)
    state["step"] += 1
    grad = _coupled_weight_decay(param, grad, weight_decay, maximize)

    square_avg = state["square_avg"]
    square_avg *= alpha
    _addcmul_(square_avg, grad, grad, 1 - alpha)  # v = alpha v + (1 - alpha) g^2
    if centered:
        grad_avg = _lerp_(state["grad_avg"], grad, 1 - alpha)
        avg = _sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = _sqrt(square_avg)
    avg += eps  # sigma

    if momentum > 0:
        buf = state["momentum_buffer"]
        buf *= momentum
        _addcdiv_(buf, grad, avg, 1)  # b = mu b + g / sigma
        _add_(param, buf, -lr)
    else:
        _addcdiv_(param, grad, avg, -lr)  # theta -= lr g / sigma
    return param


def adam_step(param, grad, state, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, amsgrad=False, decoupled=False, maximize=False):
    r"""One step of Adam (or AdamW with ``decoupled=True``).

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ (AMSGrad)} \quad\text{or}\quad v_t \\
        \theta &\leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    Weight decay is either coupled, :math:`g \leftarrow g + \lambda\theta` (Adam's L2
    penalty), or decoupled, :math:`\theta \leftarrow (1 - \gamma\lambda)\,\theta` before
    the update (AdamW). Kingma & Ba (2015), "Adam: a method for stochastic
    optimization", ICLR; Reddi, Kale & Kumar (2018), "On the convergence of Adam and
    beyond", ICLR (AMSGrad); Loshchilov & Hutter (2019), "Decoupled weight decay
    regularization", ICLR (AdamW).

    ``state`` holds ``"step"``, ``"exp_avg"`` (:math:`m`), ``"exp_avg_sq"`` (:math:`v`)
    and, with ``amsgrad``, ``"max_exp_avg_sq"`` (:math:`\hat v`).
    """
    if "step" not in state:
        state["step"] = 0
        state["exp_avg"] = _full_like(param, 0)
        state["exp_avg_sq"] = _full_like(param, 0)
        if amsgrad:
            state["max_exp_avg_sq"] = _full_like(param, 0)
    state["step"] += 1
    step = state["step"]
    if decoupled:
        grad = -grad if maximize else grad
        if weight_decay != 0:
            param *= 1 - lr * weight_decay
    else:
        grad = _coupled_weight_decay(param, grad, weight_decay, maximize)

    exp_avg = _lerp_(state["exp_avg"], grad, 1 - beta1)  # m = beta1 m + (1 - beta1) g
    exp_avg_sq = state["exp_avg_sq"]
    exp_avg_sq *= beta2
    _addcmul_(exp_avg_sq, grad, grad, 1 - beta2)  # v = beta2 v + (1 - beta2) g^2

    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    if amsgrad:
        second_moment = _maximum_(state["max_exp_avg_sq"], exp_avg_sq)
    else:
        second_moment = exp_avg_sq
    denom = _sqrt(second_moment)
    denom /= bias_correction2 ** 0.5
    denom += eps  # sqrt(v / (1 - beta2^t)) + eps
    _addcdiv_(param, exp_avg, denom, -step_size)  # theta -= lr / (1 - beta1^t) m / denom
    return param


def nadam_step(param, grad, state, *, lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8,
               weight_decay=0.0, momentum_decay=4e-3, decoupled=False, maximize=False):
    r"""One step of NAdam: Adam with Nesterov momentum and a momentum warm-up.

    .. math::

        \mu_t &= \beta_1 \bigl(1 - \tfrac12\, 0.96^{\,t\psi}\bigr), \qquad
        \Pi_t = \textstyle\prod_{i\le t} \mu_i \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g^2 \\
        \sigma &= \sqrt{v_t / (1-\beta_2^t)} + \epsilon \\
        \theta &\leftarrow \theta - \gamma\,\frac{1-\mu_t}{1-\Pi_t}\,\frac{g}{\sigma}
                 - \gamma\,\frac{\mu_{t+1}}{1-\Pi_t\,\mu_{t+1}}\,\frac{m_t}{\sigma}

    with ``momentum_decay`` :math:`\psi`; weight decay coupled
    (:math:`g \leftarrow g + \lambda\theta`) or, with ``decoupled=True``, decoupled
    (:math:`\theta \leftarrow (1-\gamma\lambda)\theta`, "NAdamW"). Dozat (2016),
    "Incorporating Nesterov momentum into Adam", ICLR workshop.

    ``state`` holds ``"step"``, ``"mu_product"`` (:math:`\Pi_t`, a Python float: torch
    keeps it as a float32 tensor unless the default dtype is float64), ``"exp_avg"``,
    ``"exp_avg_sq"``.
    """
    if "step" not in state:
        state["step"] = 0
        state["mu_product"] = 1.0
        state["exp_avg"] = _full_like(param, 0)
        state["exp_avg_sq"] = _full_like(param, 0)
    state["step"] += 1
    step = state["step"]
    bias_correction2 = 1 - beta2 ** step
    if decoupled:
        grad = -grad if maximize else grad
        if weight_decay != 0:
            param *= 1 - lr * weight_decay
    else:
        grad = _coupled_weight_decay(param, grad, weight_decay, maximize)

    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    state["mu_product"] *= mu
    mu_product = state["mu_product"]
    mu_product_next = mu_product * mu_next

    exp_avg = _lerp_(state["exp_avg"], grad, 1 - beta1)
    exp_avg_sq = state["exp_avg_sq"]
    exp_avg_sq *= beta2
    _addcmul_(exp_avg_sq, grad, grad, 1 - beta2)
    denom = _sqrt(exp_avg_sq / bias_correction2)
    denom += eps  # sigma

    _addcdiv_(param, grad, denom, -lr * (1.0 - mu) / (1.0 - mu_product))
    _addcdiv_(param, exp_avg, denom, -lr * mu_next / (1.0 - mu_product_next))
    return param


def adamax_step(param, grad, state, *, lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0, maximize=False):
    r"""One step of Adamax: Adam with the infinity norm in place of the RMS.

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g \\
        u_t &= \max(\beta_2 u_{t-1},\ |g| + \epsilon) \\
        \theta &\leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\,\frac{m_t}{u_t}

    (after :math:`g \leftarrow g + \lambda\theta`). Kingma & Ba (2015), "Adam: a method
    for stochastic optimization", ICLR, section 7.1.

    ``state`` holds ``"step"``, ``"exp_avg"`` (:math:`m`), ``"exp_inf"`` (:math:`u`).
    """
    if "step" not in state:
        state["step"] = 0
        state["exp_avg"] = _full_like(param, 0)
        state["exp_inf"] = _full_like(param, 0)
    state["step"] += 1
    step = state["step"]
    grad = _coupled_weight_decay(param, grad, weight_decay, maximize)

    exp_avg = _lerp_(state["exp_avg"], grad, 1 - beta1)
    exp_inf = state["exp_inf"]
    exp_inf *= beta2
    _maximum_(exp_inf, abs(grad) + eps)  # u = max(beta2 u, |g| + eps)
    clr = lr / (1 - beta1 ** step)
    _addcdiv_(param, exp_avg, exp_inf, -clr)  # theta -= lr / (1 - beta1^t) m / u
    return param


# --- checked hyper-parameters, shared by the classes of both backends ------------------

def _nonnegative(name, value):
    return check_number(name, value, low=0.0)


def sgd_defaults(lr, momentum, dampening, weight_decay, nesterov, maximize):
    """Check SGD's options (torch's rules) and return them as a param-group dict."""
    defaults = {
        "lr": _nonnegative("lr", lr),
        "momentum": _nonnegative("momentum", momentum),
        "dampening": check_number("dampening", dampening),
        "weight_decay": _nonnegative("weight_decay", weight_decay),
        "nesterov": check_flag("nesterov", nesterov),
        "maximize": check_flag("maximize", maximize),
    }
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov=True requires momentum > 0 and dampening = 0, "
                         f"got momentum={momentum!r}, dampening={dampening!r}")
    return defaults


def adagrad_defaults(lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize):
    """Check Adagrad's options and return them as a param-group dict."""
    return {
        "lr": _nonnegative("lr", lr),
        "lr_decay": _nonnegative("lr_decay", lr_decay),
        "weight_decay": _nonnegative("weight_decay", weight_decay),
        "initial_accumulator_value": _nonnegative("initial_accumulator_value",
                                                  initial_accumulator_value),
        "eps": _nonnegative("eps", eps),
        "maximize": check_flag("maximize", maximize),
    }


def rmsprop_defaults(lr, alpha, eps, weight_decay, momentum, centered, maximize):
    """Check RMSprop's options and return them as a param-group dict."""
    return {
        "lr": _nonnegative("lr", lr),
        "alpha": _nonnegative("alpha", alpha),
        "eps": _nonnegative("eps", eps),
        "weight_decay": _nonnegative("weight_decay", weight_decay),
        "momentum": _nonnegative("momentum", momentum),
        "centered": check_flag("centered", centered),
        "maximize": check_flag("maximize", maximize),
    }


def adam_defaults(lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay):
    """Check Adam's (and AdamW's) options and return them as a param-group dict."""
    return {
        "lr": _nonnegative("lr", lr),
        "betas": check_betas("betas", betas),
        "eps": _nonnegative("eps", eps),
        "weight_decay": _nonnegative("weight_decay", weight_decay),
        "amsgrad": check_flag("amsgrad", amsgrad),
        "maximize": check_flag("maximize", maximize),
        "decoupled_weight_decay": check_flag("decoupled_weight_decay",
                                              decoupled_weight_decay),
    }


def nadam_defaults(lr, betas, eps, weight_decay, momentum_decay, decoupled_weight_decay,
                   maximize):
    """Check NAdam's options and return them as a param-group dict."""
    return {
        "lr": _nonnegative("lr", lr),
        "betas": check_betas("betas", betas),
        "eps": _nonnegative("eps", eps),
        "weight_decay": _nonnegative("weight_decay", weight_decay),
        "momentum_decay": _nonnegative("momentum_decay", momentum_decay),
        "decoupled_weight_decay": check_flag("decoupled_weight_decay",
                                              decoupled_weight_decay),
        "maximize": check_flag("maximize", maximize),
    }


def adamax_defaults(lr, betas, eps, weight_decay, maximize):
    """Check Adamax's options and return them as a param-group dict."""
    return {
        "lr": _nonnegative("lr", lr),
        "betas": check_betas("betas", betas),
        "eps": _nonnegative("eps", eps),
        "weight_decay": _nonnegative("weight_decay", weight_decay),
        "maximize": check_flag("maximize", maximize),
    }
