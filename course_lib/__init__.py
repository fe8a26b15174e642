"""course_lib: the library of the course *Training Deep Neural Networks*.

Two twin backends with the same module names, signatures and PyTorch's conventions:

- ``course_lib.numpy``: the NumPy reference, forward and backward written by hand;
- ``course_lib.torch``: the PyTorch path, autograd, on the GPU when there is one.

Each backend has ``init``, ``activations``, ``layers``, ``losses``, ``optim``, ``clip``
and ``schedules``. Code that does not depend on the backend lives once, at the top level:
``data``, ``training``, ``diagnostics``, ``plotting``, ``gradcheck``. The instructor's
autograder is not part of the library: it is the package ``grader`` beside it.
"""

__version__ = "0.1.0"
