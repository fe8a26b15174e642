"""The trusted side of the course grader: proxies to the sandbox and the test-cell runner.

A test cell runs in the grader's own process, in a namespace that is fresh for each
notebook and persists across its test cells (like a kernel), with the real builtins,
numpy and torch. Before a test cell runs, its *free names* are found (:func:`free_names`:
read but not bound by the cell, not bound by any test cell of the notebook, not builtins)
and fetched from the student's namespace in the sandbox:

- plain data (numbers, strings, arrays, tensors, lists, dicts) arrives as values;
- modules of the course's allow-list (``numpy``, ``torch``, ``math``, ``course_lib``...)
  are imported here instead (the test cell gets the real one even if the student
  rebound it);
- functions, classes and other objects arrive as :class:`Remote` proxies: calling one
  runs the call in the sandbox, with the arguments pickled there and the mutated ones
  (arrays, tensors with their ``.grad``, lists, dicts) copied back in place afterwards.

While a test cell runs, ``exercise_checks._backend`` is a :class:`Backend`:
``own_work`` judges the submission's answer-cell text (:mod:`grader.ownwork`)
and ``run_in_student`` runs a probe in the sandbox. The outcome becomes a ``CellResult``:
full points when nothing was raised, else 0 with the assertion's message, or the
student's exception with a traceback restricted to their own cells (never a line of the
hidden test).
"""
from __future__ import annotations

import builtins
import contextlib
import importlib
import io
import symtable
import time
import types

import numpy as np

from grader import codec
from grader.sandbox import SandboxError

#: modules a test cell may read from the student's namespace: imported here instead.
TRUSTED_MODULES = ("numpy", "torch", "math", "cmath", "random", "itertools", "functools",
                   "collections", "operator", "statistics", "course_lib", "scipy",
                   "sklearn", "inspect", "types", "copy", "time", "warnings")


class StudentError(Exception):
    """An exception raised by the student's code in the sandbox.

    Its class is named as the student's (``type(error).__name__`` reads ``AxisError``) and
    its text is the student's message, so that a message built from it (``assert_raises``)
    reads as in a kernel."""

    def __init__(self, error):
        self.type_name = str(error.get("type", "Error"))
        self.student_message = str(error.get("message", ""))
        self.student_traceback = str(error.get("traceback", ""))
        Exception.__init__(self, self.student_message)

    def __str__(self):
        return self.student_message


_ERROR_CLASSES = {}


def student_error(error) -> StudentError:
    """A :class:`StudentError` that is also an instance of the nearest trusted exception
    class of the student's (a ``ValueError`` subclass of theirs is a ``ValueError``,
    numpy's ``AxisError`` is an ``AxisError``), so ``assert_raises(ValueError, ...)``
    behaves as in a kernel. The classes come from the allow-list of
    :func:`grader.codec.trusted_exception_bases`, matched against the names of the MRO
    that the sandbox reported; a bare type name counts only for a built-in."""
    name = str(error.get("type", "Error"))[:200]
    bases = codec.trusted_exception_bases(error.get("mro"))
    if not bases and "mro" not in error:
        builtin = codec.trusted_exception_bases([f"builtins.{name}"])
        bases = builtin
    for base in bases + [None]:
        key = (name, base)
        if key not in _ERROR_CLASSES:
            try:
                _ERROR_CLASSES[key] = type(name, (StudentError,) if base is None
                                       else (StudentError, base), {})
            except TypeError:  # a layout conflict: try the next base
                _ERROR_CLASSES[key] = None
        cls = _ERROR_CLASSES[key]
        if cls is None:
            continue
        try:
            return cls(error)
        except Exception:  # noqa: BLE001  (a base whose __init__ wants other arguments)
            continue
    return StudentError(error)


class SandboxLimit(BaseException):
    """The sandbox hit a limit or died during a test cell (not catchable as Exception)."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class Connection:
    """The test runner's use of one sandbox: requests under the current cell deadline."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.deadline = None
        sandbox.make_handle = self.make_handle

    def make_handle(self, description):
        if description["kind"] == "module":
            name = description["name"]
            if name.split(".")[0] in TRUSTED_MODULES:
                try:
                    return importlib.import_module(name)
                except ImportError:
                    pass
        return Remote(self, description)

    def ask(self, message):
        try:
            reply = self.sandbox.request(message, self.deadline)
        except SandboxError as error:
            raise SandboxLimit(error.kind, str(error)) from None
        if "error" in reply:
            raise student_error(reply["error"] if isinstance(reply["error"], dict) else {})
        return codec.decode(reply["ok"], self.make_handle) if isinstance(
            reply["ok"], bytes) else reply["ok"]

    def call(self, message, args, kwargs):
        reply = self.ask(message)
        refs = list(args) + list(kwargs.values())
        result = codec.decode(reply["result"], self.make_handle, refs)
        back = codec.decode(reply["args"], self.make_handle)
        kwback = codec.decode(reply["kwargs"], self.make_handle)
        for original, new in zip(args, back if isinstance(back, list) else []):
            copy_back(original, new)
        for key, value in kwargs.items():
            if isinstance(kwback, dict) and key in kwback:
                copy_back(value, kwback[key])
        return result


def copy_back(original, new):
    """Write ``new`` (what the student's call left in an argument) into ``original``."""
    if new is None or original is new:
        return
    import sys
    torch = sys.modules.get("torch")
    if isinstance(original, np.ndarray) and isinstance(new, np.ndarray):
        if original.shape == new.shape and original.flags.writeable:
            np.copyto(original, new, casting="unsafe")
    elif torch is not None and isinstance(original, torch.Tensor) and isinstance(
            new, torch.Tensor):
        with torch.no_grad():
            if original.shape == new.shape:
                original.copy_(new)
        if original.is_leaf:
            grad = new.grad
            if grad is None:
                original.grad = None
            elif grad.shape == original.shape:
                original.grad = grad.to(dtype=original.dtype, device=original.device)
    elif isinstance(original, list) and isinstance(new, list):
        if len(original) == len(new):
            for i, (a, b) in enumerate(zip(original, new)):
                if _is_mutable(a):
                    copy_back(a, b)
                else:
                    original[i] = b
        else:
            original[:] = new
    elif isinstance(original, dict) and isinstance(new, dict):
        for key in [k for k in original if k not in new]:
            del original[key]
        for key, value in new.items():
            if key in original and _is_mutable(original[key]):
                copy_back(original[key], value)
            else:
                original[key] = value


def _is_mutable(value):
    import sys
    torch = sys.modules.get("torch")
    return isinstance(value, (np.ndarray, list, dict)) or (
        torch is not None and isinstance(value, torch.Tensor))


class Remote:
    """A student's object that stays in the sandbox; using it runs code there."""

    __course_handle_id__ = True   # marks the class for codec.dumps (persistent id)
    __slots__ = ("_connection", "_handle_id", "_description", "__course_name__")

    def __init__(self, connection, description):
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_handle_id", description["id"])
        object.__setattr__(self, "_description", dict(description))
        object.__setattr__(self, "__course_name__", description.get("name", ""))

    def __call__(self, *args, **kwargs):
        return self._connection.call({"op": "call", "id": self._handle_id, "args": args,
                                      "kwargs": kwargs}, args, kwargs)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            if name in ("__name__", "__qualname__"):
                return self._description.get("name", "")
            raise AttributeError(name)
        return self._connection.ask({"op": "getattr", "id": self._handle_id, "name": name})

    def __setattr__(self, name, value):
        self._connection.ask({"op": "setattr", "id": self._handle_id, "name": name,
                              "value": value})

    def __getitem__(self, key):
        return self._connection.ask({"op": "getitem", "id": self._handle_id, "key": key})

    def __setitem__(self, key, value):
        self._connection.ask({"op": "setitem", "id": self._handle_id, "key": key,
                              "value": value})

    def __repr__(self):
        d = self._description
        return f"<student {d.get('kind')} {d.get('name') or d.get('type')}>"


# ---------------------------------------------------------------------------------------
# free names of a test cell
# ---------------------------------------------------------------------------------------

def _symbols(table):
    yield table
    for child in table.get_children():
        yield from _symbols(child)


def bound_names(source: str) -> set[str]:
    """Names a cell binds at its top level (assignments, imports, defs, loop targets)."""
    table = symtable.symtable(source, "<cell>", "exec")
    return {s.get_name() for s in table.get_symbols()
            if s.is_assigned() or s.is_imported() or s.is_namespace()}


def free_names(source: str, bound_elsewhere=frozenset()) -> set[str]:
    """Global names ``source`` reads that neither it nor ``bound_elsewhere`` binds and that
    are not builtins: what must come from the student's namespace."""
    table = symtable.symtable(source, "<cell>", "exec")
    top = table.get_symbols()
    bound = {s.get_name() for s in top if s.is_assigned() or s.is_imported()
             or s.is_namespace()}
    used = {s.get_name() for s in top if s.is_referenced()}
    for scope in list(_symbols(table))[1:]:
        for symbol in scope.get_symbols():
            if symbol.is_referenced() and symbol.is_global() and not symbol.is_declared_global():
                used.add(symbol.get_name())
            elif symbol.is_referenced() and symbol.is_declared_global():
                used.add(symbol.get_name())
    return {name for name in used - bound - set(bound_elsewhere)
            if not hasattr(builtins, name) and not name.startswith("__")}


# ---------------------------------------------------------------------------------------
# the backend of exercise_checks
# ---------------------------------------------------------------------------------------

class Backend:
    """``exercise_checks._backend`` while the grader runs test cells."""

    def __init__(self, connection_getter, answers):
        self._connection = connection_getter
        self._answers = answers   # the submission's answer-cell texts, in notebook order

    def own_work(self, func, forbidden, name=None):
        # the name the test cell asked for, looked up in the grader's copy of the answer
        # text (a partial or a callable instance has no name of its own)
        from grader.ownwork import assert_own_text
        if not isinstance(name, str) or not name.isidentifier():
            name = getattr(func, "__course_name__", None) or getattr(func, "__name__", None)
        if not isinstance(name, str) or not name:
            raise AssertionError("the function under test was not found in your answer cells")
        assert_own_text(name, self._answers, forbidden)

    def run_in_student(self, probe, args, kwargs):
        # a "module:function" string, or the probe itself (pickled by reference, so
        # functools.partial of a probe works too)
        return self._connection().call({"op": "probe", "probe": probe, "args": tuple(args),
                                        "kwargs": dict(kwargs)}, tuple(args), dict(kwargs))


def run_test_cell(source, namespace, connection, bound_elsewhere, label):
    """Run one test cell here; returns ``(status, message)`` with status in
    "passed", "failed", "error", "timeout", "limit"."""
    try:
        code = compile(source, f"<test {label}>", "exec")
        names = free_names(source)
    except SyntaxError as error:
        return "error", f"the test cell does not compile: {error}"
    try:
        # a name some test cell binds is fetched only while no test cell has bound it
        # yet, and then only if it is a module of the allow-list (``np`` from a read-only
        # import cell); any other such value might be the student's fake of a helper.
        names = (names - set(bound_elsewhere)) | {
            n for n in names & set(bound_elsewhere) if n not in namespace}
        if names:
            connection.deadline = connection.deadline or time.monotonic() + 60
            fetched = connection.ask({"op": "get", "names": sorted(names)})
            if isinstance(fetched, dict):
                for name, value in fetched.items():
                    if name not in names:
                        continue
                    if name in bound_elsewhere and not isinstance(value, types.ModuleType):
                        continue
                    namespace[name] = value
        # what a test cell prints stays out of the grader's own output (and the feedback)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(
                io.StringIO()):
            exec(code, namespace)
    except SandboxLimit as limit:
        return ("timeout" if limit.kind == "timeout" else "limit"), str(limit)
    except StudentError as error:
        text = f"{error.type_name}: {error.student_message}"
        if error.student_traceback:
            text += f"\nIn your code:\n{error.student_traceback}"
        return "error", text
    except AssertionError as error:
        message = str(error) or "a check of this test failed"
        return "failed", message
    except NameError as error:
        return "error", f"NameError: {error} (is it defined in your answer cells?)"
    except Exception as error:  # noqa: BLE001  (test code failing on what it was given)
        return "error", f"{type(error).__name__}: {error}"
    return "passed", ""
