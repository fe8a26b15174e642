"""The update rules of the optimizers, written once for both backends.

Each ``<name>_step(param, grad, state, ...)`` applies one update of one parameter *in
place*. ``param`` is a NumPy ``ndarray`` (any shape, 0-d included) or a ``torch.Tensor``,
and ``grad`` has its shape. The backend is chosen once per call from ``param``'s type
(:mod:`course_lib.core.optim_ops`): a small table of operations named after torch's
in-place tensor methods (``add_``, ``addcmul_``, ``addcdiv_``, ``lerp_``, ...), one fused
kernel on a tensor, the plain formula on an ndarray. Intermediate results are never inspected to
guess the backend (on a 0-d ndarray, NumPy arithmetic returns NumPy *scalars*), and every
buffer stored in ``state`` is a real array of ``param``'s backend.

``state`` is the parameter's dict of running quantities (momentum buffers, moment
estimates, the step count); the first call fills it, later calls update it. The keys are
torch.optim's, and so are the types in the torch backend: the step count is a 0-d
tensor of torch's scalar dtype (float64 if that is the default dtype, else float32), as
is NAdam's momentum product, so a state dict reads the same as torch.optim's and one
saved by either loads into the other. Scalars are read as torch does (``.item()``), so
resuming from a ``torch.optim`` state dict continues digit for digit. In the NumPy
backend the step count is an ``int``.

The classes in ``course_lib.numpy.optim`` and ``course_lib.torch.optim`` only loop over
their parameter groups and call these functions. With torch tensors, call them under
``torch.no_grad()`` (the classes do), since they write into a leaf tensor.

The operations are those of ``torch.optim``'s single-tensor implementations, in the same
order: on tensors the results equal torch.optim's bit for bit; on ndarrays they agree to
a few units in the last place per step (torch's CPU kernels fuse some multiply-adds).

Notation in the docstrings: :math:`\\theta` the parameter, :math:`g` its gradient,
:math:`\\gamma` the learning rate ``lr``, :math:`\\lambda` the ``weight_decay``,
:math:`t` the step count (1 on the first step).
"""
from __future__ import annotations

from course_lib.core.optim_ops import ops_for, read_scalar
from course_lib.core.validate import check_betas, check_number, check_flag

__all__ = [
    "sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "nadam_step", "adamax_step",
    "radam_step", "adadelta_step", "adagrad_init_state",
    "sgd_defaults", "adagrad_defaults", "rmsprop_defaults", "adam_defaults",
    "nadam_defaults", "adamax_defaults", "radam_defaults", "adadelta_defaults",
]


# --- pieces shared by the rules ---------------------------------------------------------

def _count_step(state):
    """Add one to ``state["step"]`` (in place for a tensor, as torch) and return it."""
    state["step"] += 1
    return read_scalar(state["step"])


def _ascent_and_l2(ops, param, grad, weight_decay, maximize):
    """The gradient the rules use: :math:`\\pm g + \\lambda \\theta` (L2 penalty)."""
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = ops.add(grad, param, weight_decay)
    return grad


def _ascent_and_decoupled(param, grad, lr, weight_decay, maximize):
    """:math:`\\pm g`, after shrinking :math:`\\theta \\leftarrow (1-\\gamma\\lambda)\\theta`
    (decoupled weight decay, Loshchilov & Hutter 2019)."""
    if maximize:
        grad = -grad
    if weight_decay != 0:
        param *= 1 - lr * weight_decay
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
    :math:`d = g`. Momentum is Polyak's heavy ball (1964, "Some methods of speeding up
    the convergence of iteration methods"), SGD Robbins & Monro (1951); Sutskever,
    Martens, Dahl & Hinton (2013), "On the importance of initialization and momentum in
    deep learning", ICML, brought momentum and Nesterov's (1983) accelerated gradient to
    deep learning.

    This is PyTorch's form, not the paper's. Sutskever et al. write a velocity that
    already holds the learning rate, :math:`v_t = \mu v_{t-1} - \gamma g`,
    :math:`\theta \leftarrow \theta + v_t`; PyTorch accumulates raw gradients in the
    buffer and multiplies by the *current* learning rate at the step,
    :math:`\theta \leftarrow \theta - \gamma_t b_t`. With a constant learning rate the two
    are the same iteration (:math:`v_t = -\gamma b_t`, :math:`\tau = 0`). They differ
    when the learning rate changes (a schedule): in PyTorch's form the new rate rescales
    the whole accumulated buffer at once, in Sutskever's the past steps keep the rates
    they were taken with and only new gradients get the new one. PyTorch's Nesterov
    variant :math:`d = g + \mu b_t` is Sutskever's look-ahead form after a change of
    variables that takes the gradient at the current parameters instead of at
    :math:`\theta + \mu v` (Bengio, Boulanger-Lewandowski & Pascanu 2013, "Advances in
    optimizing recurrent networks", ICASSP), in the same buffer convention.

    Parameters
    ----------
    param, grad : ndarray or Tensor, same shape
        Updated in place: ``param`` only.
    state : dict
        Holds ``"momentum_buffer"`` (shape of ``param``) when ``momentum != 0``;
        untouched without momentum (torch.optim keeps no state then).
    lr, momentum, dampening, weight_decay : float
    nesterov, maximize : bool
        ``maximize`` ascends the objective (uses :math:`-g`).
    """
    ops = ops_for(param)
    grad = _ascent_and_l2(ops, param, grad, weight_decay, maximize)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = ops.copy(grad)  # b_1 = g
        else:
            buf *= momentum
            ops.add_(buf, grad, 1 - dampening)  # b = mu b + (1 - tau) g
        grad = ops.add(grad, buf, momentum) if nesterov else buf  # d
    ops.add_(param, grad, -lr)  # theta -= lr d
    return param


def adagrad_init_state(param, state, initial_accumulator_value=0.0):
    """Fill an Adagrad ``state``: ``"step"`` 0 and ``"sum"`` (:math:`s_0`, shape of
    ``param``) = ``initial_accumulator_value``. torch.optim.Adagrad does this for every
    parameter when it is built (the classes of both backends do the same)."""
    ops = ops_for(param)
    state["step"] = ops.new_step(param)
    state["sum"] = ops.full_like(param, initial_accumulator_value)
    return state


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

    ``state`` holds ``"step"`` and ``"sum"`` (:math:`s`, shape of ``param``); an empty
    one is filled by :func:`adagrad_init_state` with ``initial_accumulator_value``.
    """
    ops = ops_for(param)
    if "step" not in state:
        adagrad_init_state(param, state, initial_accumulator_value)
    step = _count_step(state)
    grad = _ascent_and_l2(ops, param, grad, weight_decay, maximize)
    clr = lr / (1 + (step - 1) * lr_decay)
    ops.addcmul_(state["sum"], grad, grad, 1)  # s += g^2
    std = ops.sqrt(state["sum"])
    std += eps
    ops.addcdiv_(param, grad, std, -clr)  # theta -= clr g / (sqrt(s) + eps)
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

    (after :math:`g \leftarrow g + \lambda\theta`). RMSprop was never published as a
    paper: Geoffrey Hinton proposed it in lecture 6e of his Coursera course "Neural
    Networks for Machine Learning" (2012; slides with Nitish Srivastava and Kevin
    Swersky), the usual citation. The centered variant (dividing by an estimate of the
    standard deviation instead of the RMS) with momentum on :math:`g/\sigma` is Graves
    (2013), "Generating sequences with recurrent neural networks", arXiv:1308.0850.

    ``state`` holds ``"step"``, ``"square_avg"`` (:math:`v`), ``"momentum_buffer"`` when
    ``momentum > 0`` and ``"grad_avg"`` (:math:`\bar g`) when ``centered``.
    """
    ops = ops_for(param)
    if "step" not in state:
        state["step"] = ops.new_step(param)
        state["square_avg"] = ops.full_like(param, 0)
        if momentum > 0:
            state["momentum_buffer"] = ops.full_like(param, 0)
        if centered:
            state["grad_avg"] = ops.full_like(param, 0)
    _count_step(state)
    grad = _ascent_and_l2(ops, param, grad, weight_decay, maximize)

    square_avg = state["square_avg"]
    square_avg *= alpha
    ops.addcmul_(square_avg, grad, grad, 1 - alpha)  # v = alpha v + (1 - alpha) g^2
    if centered:
        grad_avg = ops.lerp_(state["grad_avg"], grad, 1 - alpha)
        avg = ops.sqrt(ops.addcmul(square_avg, grad_avg, grad_avg, -1))  # sqrt(v - gbar^2)
    else:
        avg = ops.sqrt(square_avg)
    avg += eps  # sigma

    if momentum > 0:
        buf = state["momentum_buffer"]
        buf *= momentum
        ops.addcdiv_(buf, grad, avg, 1)  # b = mu b + g / sigma
        ops.add_(param, buf, -lr)
    else:
        ops.addcdiv_(param, grad, avg, -lr)  # theta -= lr g / sigma
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
    ops = ops_for(param)
    if "step" not in state:
        state["step"] = ops.new_step(param)
        state["exp_avg"] = ops.full_like(param, 0)
        state["exp_avg_sq"] = ops.full_like(param, 0)
        if amsgrad:
            state["max_exp_avg_sq"] = ops.full_like(param, 0)
    step = _count_step(state)
    if decoupled:
        grad = _ascent_and_decoupled(param, grad, lr, weight_decay, maximize)
    else:
        grad = _ascent_and_l2(ops, param, grad, weight_decay, maximize)

    exp_avg = ops.lerp_(state["exp_avg"], grad, 1 - beta1)  # m = beta1 m + (1 - beta1) g
    exp_avg_sq = state["exp_avg_sq"]
    exp_avg_sq *= beta2
    ops.addcmul_(exp_avg_sq, grad, grad, 1 - beta2)  # v = beta2 v + (1 - beta2) g^2

    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    if amsgrad:
        second_moment = ops.maximum_(state["max_exp_avg_sq"], exp_avg_sq)
    else:
        second_moment = exp_avg_sq
    denom = ops.sqrt(second_moment)
    denom /= bias_correction2 ** 0.5
    denom += eps  # sqrt(v / (1 - beta2^t)) + eps
    ops.addcdiv_(param, exp_avg, denom, -step_size)  # theta -= lr / (1 - beta1^t) m / denom
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

    ``state`` holds ``"step"``, ``"mu_product"`` (:math:`\Pi_t`), ``"exp_avg"``,
    ``"exp_avg_sq"``. The product is a running scalar kept, as in torch.optim, in a
    0-d tensor of torch's scalar dtype (float32 unless the default dtype is float64);
    in the NumPy backend a 0-d array in the parameter's precision (float32 or float64).
    It is rounded to that precision at every step, so float32 changes the digits.
    """
    ops = ops_for(param)
    if "step" not in state:
        state["step"] = ops.new_step(param)
        state["mu_product"] = ops.new_scalar(param, 1.0)
        state["exp_avg"] = ops.full_like(param, 0)
        state["exp_avg_sq"] = ops.full_like(param, 0)
    step = _count_step(state)
    bias_correction2 = 1 - beta2 ** step
    if decoupled:
        grad = _ascent_and_decoupled(param, grad, lr, weight_decay, maximize)
    else:
        grad = _ascent_and_l2(ops, param, grad, weight_decay, maximize)

    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    mu_product = read_scalar(ops.mul_scalar_(state["mu_product"], mu))  # Pi_t = Pi_t-1 mu_t
    mu_product_next = mu_product * mu_next

    exp_avg = ops.lerp_(state["exp_avg"], grad, 1 - beta1)
    exp_avg_sq = state["exp_avg_sq"]
    exp_avg_sq *= beta2
    ops.addcmul_(exp_avg_sq, grad, grad, 1 - beta2)
    denom = ops.sqrt(exp_avg_sq / bias_correction2)
    denom += eps  # sigma

    ops.addcdiv_(param, grad, denom, -lr * (1.0 - mu) / (1.0 - mu_product))
    ops.addcdiv_(param, exp_avg, denom, -lr * mu_next / (1.0 - mu_product_next))
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
    ops = ops_for(param)
    if "step" not in state:
        state["step"] = ops.new_step(param)
        state["exp_avg"] = ops.full_like(param, 0)
        state["exp_inf"] = ops.full_like(param, 0)
    step = _count_step(state)
    grad = _ascent_and_l2(ops, param, grad, weight_decay, maximize)

    exp_avg = ops.lerp_(state["exp_avg"], grad, 1 - beta1)
    exp_inf = state["exp_inf"]
    exp_inf *= beta2
    ops.maximum_(exp_inf, abs(grad) + eps)  # u = max(beta2 u, |g| + eps)
    clr = lr / (1 - beta1 ** step)
    ops.addcdiv_(param, exp_avg, exp_inf, -clr)  # theta -= lr / (1 - beta1^t) m / u
    return param


def radam_step(param, grad, state, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
               weight_decay=0.0, decoupled=False, maximize=False):
    r"""One step of RAdam: Adam whose adaptive step is switched on only once the
    variance of :math:`1/\sqrt{v_t}` is tractable, and then rectified.

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g^2, \qquad
        \hat m_t = m_t / (1-\beta_1^t) \\
        \rho_\infty &= \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2t\,\beta_2^t}{1-\beta_2^t} \\
        r_t &= \sqrt{\frac{(\rho_t-4)(\rho_t-2)\,\rho_\infty}
                          {(\rho_\infty-4)(\rho_\infty-2)\,\rho_t}}, \qquad
        \ell_t = \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon} \\
        \theta &\leftarrow \theta - \gamma\,\hat m_t\, \ell_t\, r_t
            \quad (\rho_t > 5), \qquad
        \theta \leftarrow \theta - \gamma\,\hat m_t \quad\text{(otherwise: SGD with
        momentum)}

    :math:`\rho_t` approximates the degrees of freedom of the running average
    :math:`v_t`; while it is small (the first steps) the adaptive learning rate has a
    huge variance, which is why Adam needs a warm-up. Weight decay coupled
    (:math:`g \leftarrow g + \lambda\theta`) or decoupled (``decoupled=True``,
    :math:`\theta \leftarrow (1-\gamma\lambda)\theta`, as AdamW). Liu, Jiang, He, Chen,
    Liu, Gao & Han (2020), "On the variance of the adaptive learning rate and beyond",
    ICLR.

    ``state`` holds ``"step"``, ``"exp_avg"`` (:math:`m`) and ``"exp_avg_sq"``
    (:math:`v`).
    """
    ops = ops_for(param)
    if "step" not in state:
        state["step"] = ops.new_step(param)
        state["exp_avg"] = ops.full_like(param, 0)
        state["exp_avg_sq"] = ops.full_like(param, 0)
    step = _count_step(state)
    if decoupled:
        grad = _ascent_and_decoupled(param, grad, lr, weight_decay, maximize)
    else:
        grad = _ascent_and_l2(ops, param, grad, weight_decay, maximize)

    exp_avg = ops.lerp_(state["exp_avg"], grad, 1 - beta1)
    exp_avg_sq = state["exp_avg_sq"]
    exp_avg_sq *= beta2
    ops.addcmul_(exp_avg_sq, grad, grad, 1 - beta2)

    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    bias_corrected_exp_avg = exp_avg / bias_correction1  # m hat
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2 ** step / bias_correction2
    if rho_t > 5.0:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5  # r_t
        denom = ops.sqrt(exp_avg_sq)
        denom += eps
        adaptive_lr = ops.rdiv(bias_correction2 ** 0.5, denom)  # l_t
        ops.add_(param, bias_corrected_exp_avg * lr * adaptive_lr * rect, -1.0)
    else:
        ops.add_(param, bias_corrected_exp_avg * lr, -1.0)
    return param


def adadelta_step(param, grad, state, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
                  maximize=False):
    r"""One step of Adadelta: the step has the units of the parameter, the ratio of two
    running RMS values (of past updates over past gradients).

    .. math::

        v_t &= \rho\, v_{t-1} + (1-\rho)\, g^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g \\
        u_t &= \rho\, u_{t-1} + (1-\rho)\, \Delta_t^2 \\
        \theta &\leftarrow \theta - \gamma\, \Delta_t

    (after :math:`g \leftarrow g + \lambda\theta`). Zeiler's method has no learning
    rate (:math:`\gamma = 1`, torch's default); torch.optim scales the step by ``lr``.
    Zeiler (2012), "ADADELTA: an adaptive learning rate method", arXiv:1212.5701,
    Algorithm 1.

    ``state`` holds ``"step"``, ``"square_avg"`` (:math:`v`) and ``"acc_delta"``
    (:math:`u`).
    """
    ops = ops_for(param)
    if "step" not in state:
        state["step"] = ops.new_step(param)
        state["square_avg"] = ops.full_like(param, 0)
        state["acc_delta"] = ops.full_like(param, 0)
    _count_step(state)
    grad = _ascent_and_l2(ops, param, grad, weight_decay, maximize)

    square_avg, acc_delta = state["square_avg"], state["acc_delta"]
    square_avg *= rho
    ops.addcmul_(square_avg, grad, grad, 1 - rho)  # v = rho v + (1 - rho) g^2
    std = ops.sqrt(square_avg + eps)
    delta = ops.sqrt(acc_delta + eps)
    delta /= std
    delta *= grad  # Delta = sqrt(u + eps) / sqrt(v + eps) g
    acc_delta *= rho
    ops.addcmul_(acc_delta, delta, delta, 1 - rho)  # u = rho u + (1 - rho) Delta^2
    ops.add_(param, delta, -lr)
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
    """Check RMSprop's options and return them as a param-group dict.

    ``alpha`` must lie in [0, 1] (torch only checks ``alpha >= 0``; above 1 the running
    average of :math:`g^2` turns negative and the step is NaN)."""
    return {
        "lr": _nonnegative("lr", lr),
        "alpha": check_number("alpha", alpha, low=0.0, high=1.0),
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


def radam_defaults(lr, betas, eps, weight_decay, decoupled_weight_decay, maximize):
    """Check RAdam's options and return them as a param-group dict."""
    return {
        "lr": _nonnegative("lr", lr),
        "betas": check_betas("betas", betas),
        "eps": _nonnegative("eps", eps),
        "weight_decay": _nonnegative("weight_decay", weight_decay),
        "decoupled_weight_decay": check_flag("decoupled_weight_decay",
                                              decoupled_weight_decay),
        "maximize": check_flag("maximize", maximize),
    }


def adadelta_defaults(lr, rho, eps, weight_decay, maximize):
    """Check Adadelta's options and return them as a param-group dict."""
    return {
        "lr": _nonnegative("lr", lr),
        "rho": check_number("rho", rho, low=0.0, high=1.0),
        "eps": _nonnegative("eps", eps),
        "weight_decay": _nonnegative("weight_decay", weight_decay),
        "maximize": check_flag("maximize", maximize),
    }
