"""Two-dimensional test surfaces for watching optimizers move, and a path recorder.

Each surface is a function ``f(xy)`` of points ``xy`` with shape ``(..., 2)`` (one point
``(2,)`` or a grid ``(H, W, 2)``), NumPy arrays or torch tensors, and has its gradient as
``f.grad(xy)`` (same shape as ``xy``), also importable as ``<name>_grad``.
``f.minimum`` is the minimizer (``None`` for the saddle) and ``f.xlim``/``f.ylim`` a
good window to plot.
"""
from __future__ import annotations

import numpy as np

from course_lib.core.validate import check_choice, check_number

__all__ = ["rosenbrock", "rosenbrock_grad", "ravine", "ravine_grad", "saddle", "saddle_grad",
           "optimize_path"]


def _stack(a, b, like):
    if hasattr(like, "detach"):
        import torch

        return torch.stack([a, b], dim=-1)
    return np.stack([a, b], axis=-1)


def rosenbrock(xy, a: float = 1.0, b: float = 100.0):
    """Rosenbrock's banana valley: ``f(x, y) = (a - x)^2 + b (y - x^2)^2``.

    Minimum 0 at ``(a, a^2)``, at the end of a long, curved, flat-bottomed valley.

    References
    ----------
    Rosenbrock (1960), *An automatic method for finding the greatest or least value of a
    function*, The Computer Journal 3(3).
    """
    x, y = xy[..., 0], xy[..., 1]
    return (a - x) ** 2 + b * (y - x ** 2) ** 2


def rosenbrock_grad(xy, a: float = 1.0, b: float = 100.0):
    """``(-2 (a - x) - 4 b x (y - x^2), 2 b (y - x^2))``."""
    x, y = xy[..., 0], xy[..., 1]
    return _stack(-2.0 * (a - x) - 4.0 * b * x * (y - x ** 2), 2.0 * b * (y - x ** 2), xy)


def ravine(xy, condition: float = 20.0):
    """An ill-conditioned quadratic: ``f(x, y) = (x^2 + condition * y^2) / 2``.

    The Hessian is ``diag(1, condition)``: the condition number is ``condition``. Plain
    gradient descent zig-zags across the steep ``y`` direction (it needs
    ``lr < 2 / condition`` to be stable) while crawling along the flat ``x`` direction;
    momentum and adaptive methods fix this. Minimum 0 at ``(0, 0)``.
    """
    x, y = xy[..., 0], xy[..., 1]
    return 0.5 * (x ** 2 + condition * y ** 2)


def ravine_grad(xy, condition: float = 20.0):
    """``(x, condition * y)``."""
    return _stack(xy[..., 0] * 1.0, condition * xy[..., 1], xy)


def saddle(xy):
    """A saddle point at the origin: ``f(x, y) = x^2 - y^2``.

    The gradient vanishes at ``(0, 0)`` but it is no minimum: started exactly on the
    ``x`` axis, gradient descent converges to the saddle; any ``y`` offset grows and
    escapes. Unbounded below.
    """
    x, y = xy[..., 0], xy[..., 1]
    return x ** 2 - y ** 2


def saddle_grad(xy):
    """``(2 x, -2 y)``."""
    return _stack(2.0 * xy[..., 0], -2.0 * xy[..., 1], xy)


for _f, _g, _min, _xlim, _ylim in (
        (rosenbrock, rosenbrock_grad, (1.0, 1.0), (-2.0, 2.0), (-1.0, 3.0)),
        (ravine, ravine_grad, (0.0, 0.0), (-10.0, 10.0), (-3.0, 3.0)),
        (saddle, saddle_grad, None, (-2.0, 2.0), (-2.0, 2.0))):
    _f.grad, _f.minimum, _f.xlim, _f.ylim = _g, _min, _xlim, _ylim


def _surface_pair(surface):
    if callable(surface) and callable(getattr(surface, "grad", None)):
        return surface, surface.grad
    if isinstance(surface, (tuple, list)) and len(surface) == 2 and all(map(callable, surface)):
        return tuple(surface)
    raise TypeError("surface must be a function with a .grad attribute (e.g. "
                    "course_lib.surfaces.rosenbrock) or a pair (f, grad)")


def optimize_path(optimizer_factory, surface, start, steps: int, backend: str = "torch"):
    """Run an optimizer on a 2-D surface and record where it goes.

    The point is one parameter of shape ``(2,)`` (float64); each step sets its gradient
    to ``surface.grad(point)`` and calls ``optimizer.step()``.

    Parameters
    ----------
    optimizer_factory : callable
        ``optimizer_factory(params) -> optimizer``, given a list with the one parameter,
        e.g. ``lambda p: course_lib.torch.optim.Adam(p, lr=0.1)``.
    surface : function with ``.grad`` (``rosenbrock``, ``ravine``, ``saddle``) or a pair
        ``(f, grad)``
    start : sequence of 2 floats
    steps : int
    backend : {"torch", "numpy"}
        ``"torch"``: the parameter is a ``torch.nn.Parameter`` (for ``course_lib.torch``
        and ``torch.optim`` optimizers); ``"numpy"``: a ``course_lib.numpy`` ``Parameter``.

    Returns
    -------
    ndarray, shape (steps + 1, 2): the start, then the point after each step.
    """
    _, grad = _surface_pair(surface)
    check_number("steps", steps, low=0, integer=True)
    check_choice("backend", backend, ("torch", "numpy"))
    start = np.asarray(start, dtype=np.float64)
    if start.shape != (2,):
        raise ValueError(f"start must be a point (x, y), got shape {start.shape}")
    path = np.empty((steps + 1, 2))
    path[0] = start
    if backend == "torch":
        import torch

        param = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
        optimizer = optimizer_factory([param])
        for t in range(1, steps + 1):
            optimizer.zero_grad()
            with torch.no_grad():
                param.grad = grad(param.detach()).clone()
            optimizer.step()
            path[t] = param.detach().numpy()
    else:
        from course_lib.numpy.parameter import Parameter

        param = Parameter(start.copy())
        optimizer = optimizer_factory([param])
        for t in range(1, steps + 1):
            optimizer.zero_grad()
            param.grad = np.asarray(grad(param.data), dtype=np.float64)
            optimizer.step()
            path[t] = param.data
    return path
