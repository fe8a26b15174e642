"""The gradient checks' pass criterion, for the property-based tests.

The CS231n relative error of :func:`course_lib.gradcheck.rel_error` is elementwise: where
one entry of a gradient is near 0 and the others are not (a layer norm's ``dx``, the
softmax gradient of a confident prediction), that entry's relative error is rounding noise
over a tiny number, and random configurations find such entries. Here the error is
measured against the whole gradient and against the rounding noise of the centred
differences themselves:

.. math::  |a_i - n_i| \\le \\text{atol} + \\text{rtol}\\,\\max_j \\max(|a_j|, |n_j|)
           + 16\\,\\epsilon\\,S / h,

where :math:`S` bounds :math:`|f|` (the sum of :math:`|\\text{out} \\odot \\text{dout}|`)
and :math:`\\epsilon` is float64's machine epsilon: each of the two evaluations of
:math:`f` is rounded by about :math:`\\epsilon S`, and their difference is divided by
:math:`2h`. ``atol`` (1e-12) covers the rounding of :math:`x \\pm h` itself where
:math:`f` and its gradient vanish (a regression loss at its minimum). A wrong backward is off by a fraction of the gradient, far above both terms.
"""
import numpy as np

EPS = np.finfo(np.float64).eps


def assert_gradient_close(analytic, numeric, value_scale, h=1e-6, rtol=1e-6, atol=1e-12,
                          name="gradient"):
    """``analytic`` matches the centred differences ``numeric`` (see the module docstring).

    Parameters
    ----------
    analytic, numeric : ndarray, same shape
    value_scale : float
        :math:`S`, a bound on the size of the function that was differenced.
    h : float
        The step of the centred differences.
    """
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    assert a.shape == n.shape, (name, a.shape, n.shape)
    if a.size == 0:
        return
    scale = max(np.abs(a).max(), np.abs(n).max())
    allowed = atol + rtol * scale + 16 * EPS * float(value_scale) / h
    worst = float(np.abs(a - n).max())
    assert worst <= allowed, (f"{name}: largest difference {worst:.3g} > {allowed:.3g} "
                              f"(largest entry {scale:.3g})")
