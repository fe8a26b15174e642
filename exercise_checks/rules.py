"""What each exercise forbids the student to call: the library routines it is graded against.

``FORBIDDEN[assignment]`` is a tuple of dotted prefixes, matched on whole components
(``"torch.optim.Adam"`` forbids ``torch.optim.Adam`` and ``torch.optim.Adam.step`` but not
``torch.optim.AdamW``, which is listed separately). A name matches when the student writes
it (through any import alias) or when the object it resolves to is known under it
(``module.qualname``).

Two users:

- ``exercise_checks.assert_own_work(func, FORBIDDEN[assignment])`` in the test
  cells (a delegating answer scores zero on the cells of that function, with a message);
- the course grader's sandbox, which replaces these callables (every function of a
  listed module or class) by ones that raise a "delegation" error before the student's
  code runs, and refuses the ``torch.ops.aten.*`` operators in torch's dispatcher (so
  ``torch._C._VariableFunctions`` and every other route reach the refusal too). The
  NumPy-only exercises' sandbox has no torch and no ``course_lib`` at all.

NumPy and the rest of torch stay allowed (``torch.optim.Optimizer`` must be subclassed
in the adam exercise).
"""
from __future__ import annotations

_COURSE_LIB_LAYERS = ("course_lib.numpy.layers", "course_lib.torch.layers")

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "init": (
        "torch.nn.init",
        "course_lib.numpy.init",
        "course_lib.torch.init",
    ),
    "dropout": (
        "torch.nn.functional.dropout",
        "torch.nn.functional.alpha_dropout",
        "torch.dropout",
        "torch.native_dropout",
        "torch.ops.aten.dropout",
        "torch.ops.aten.native_dropout",
        "torch._C._VariableFunctions.dropout",
        "torch._C._VariableFunctions.native_dropout",
        "torch.nn.Dropout",
        "torch.nn.modules.dropout",
        *_COURSE_LIB_LAYERS,
    ),
    "batchnorm": (
        "torch.nn.functional.batch_norm",
        "torch.batch_norm",
        "torch.native_batch_norm",
        "torch.ops.aten.batch_norm",
        "torch.ops.aten.native_batch_norm",
        "torch.ops.aten._native_batch_norm_legit",
        "torch._C._VariableFunctions.batch_norm",
        "torch._C._VariableFunctions.native_batch_norm",
        "torch.nn.BatchNorm1d",
        "torch.nn.modules.batchnorm",
        *_COURSE_LIB_LAYERS,
    ),
    "adam": (
        "torch.optim.Adam",
        "torch.optim.AdamW",
        "torch.optim.adam",
        "torch.optim.adamw",
        "torch.optim._functional",
        "torch._fused_adam_",
        "torch._fused_adamw_",
        "torch.ops.aten._fused_adam_",
        "torch.ops.aten._fused_adamw_",
        "torch._C._VariableFunctions._fused_adam_",
        "torch._C._VariableFunctions._fused_adamw_",
        "course_lib.numpy.optim",
        "course_lib.torch.optim",
    ),
    "clipping": (
        "torch.nn.utils.clip_grad_norm_",
        "torch.nn.utils.clip_grad_value_",
        "torch.nn.utils.clip_grads_with_norm_",
        "torch.nn.utils.get_total_norm",
        "torch.nn.utils.clip_grad",
        "course_lib.numpy.clip",
        "course_lib.torch.clip",
    ),
}

#: The arguments each exercise function updates in place, as ``(position, keyword)``.
#: Under the course grader a student's function works on copies of its arguments; after
#: the call, the arguments listed here (and only these) get the values the function left
#: in them, in their existing structure (same list length, same array shapes), so a test
#: that checks an in-place update reads the same in the kernel and in the grader, while
#: a change to any other argument never reaches the test's own objects.
#: Inputs that must NOT change (dropout's ``x``, Adam's ``grad``) are listed too, so that
#: the test, which compares them with its own copy, sees the change in both places.
IN_PLACE: dict[str, dict[str, tuple[tuple[int, str], ...]]] = {
    "dropout": {"dropout_forward": ((0, "x"),), "dropout_backward": ((0, "dout"),)},
    "batchnorm": {"batchnorm_forward": ((0, "x"), (3, "running_mean"), (4, "running_var"))},
    "adam": {"adam_step": ((0, "param"), (1, "grad"), (2, "state"))},
    "clipping": {"clip_by_value": ((0, "grads"),), "clip_by_global_norm": ((0, "grads"),)},
}

#: The assignments of the course, in teaching order.
ASSIGNMENTS = tuple(FORBIDDEN)


def forbidden(assignment: str) -> tuple[str, ...]:
    """The forbidden prefixes of ``assignment`` (one of ``ASSIGNMENTS``)."""
    if assignment not in FORBIDDEN:
        options = ", ".join(repr(a) for a in ASSIGNMENTS)
        raise ValueError(f"assignment must be one of {options}, got {assignment!r}")
    return FORBIDDEN[assignment]
