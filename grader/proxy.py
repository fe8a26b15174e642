"""The trusted side of the course grader: proxies to the sandbox and the test-cell runner.

A test cell runs in the grader's own process, in a namespace that is fresh for each
notebook and persists across its test cells (like a kernel), with the real builtins,
numpy and torch. Before a test cell runs, its *free names* are found (:func:`free_names`:
read but not bound by the cell, not bound by any test cell of the notebook, not builtins)
and fetched from the student's namespace in the sandbox:

- plain data (numbers, strings, arrays, tensors, lists, dicts) arrives as values;
- functions, classes, modules and other objects arrive as :class:`Remote` proxies:
  calling one runs the call in the sandbox on *copies* of the arguments (pickled there).
  Nothing the sandbox sends is imported, looked up or resolved here; a proxy's trusted
  name is the name the test cell asked for, never what the sandbox reports;
- names that the source notebook's own cells import from the allow-list
  (:data:`TRUSTED_MODULES`) are imported here from the instructor's text and never
  fetched (:func:`trusted_imports`).

A student call never writes into the grader's objects, except the arguments that the
exercise declares as updated in place (``exercise_checks.rules.IN_PLACE``: clipping's
``grads``, batch norm's running statistics, Adam's ``param`` and ``state``): those get
the values the call left in the sandbox's copy, in their existing structure only (same
list length, same array shapes; else the call fails as a wrong answer).

While a test cell runs, ``exercise_checks._backend`` is a :class:`Backend`:
``own_work`` judges the grader's copy of the submission's answer-cell text
(:mod:`grader.ownwork`) under the name the test cell uses; probes
(``exercise_checks.probes``) run here, in the trusted process, and reach the student's
class through its proxy (``optimizer_step`` syncs a sandboxed optimizer's parameters). The outcome becomes a ``CellResult``:
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
#: the builtin exceptions a student error may take the type of (a fixed table: the
#: sandbox's type name is only a key in it)
_BUILTIN_ERRORS = {name: cls for name, cls in vars(builtins).items()
                   if isinstance(cls, type) and issubclass(cls, Exception)
                   and cls is not Exception}


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
    """The test runner's use of one sandbox: requests under the current cell deadline.

    ``in_place``: ``{function name: ((position, keyword), ...)}``, the arguments each
    exercise function updates in place (``exercise_checks.rules.IN_PLACE``)."""

    def __init__(self, sandbox, in_place=None):
        self.sandbox = sandbox
        self.deadline = None
        self.in_place = dict(in_place or {})
        sandbox.make_handle = self.make_handle

    def make_handle(self, description):
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

    def call(self, remote, args, kwargs, observe=False):
        declared = self.in_place.get(remote.__course_name__, ()) if \
            remote.__course_name__ else ()
        wanted = []
        for position, keyword in declared:
            if position < len(args):
                wanted.append(position)
            elif keyword in kwargs:
                wanted.append(keyword)
        reply = self.ask({"op": "call", "id": remote._handle_id, "args": args,
                          "kwargs": kwargs, "inplace": wanted, "observe": bool(observe)})
        if not isinstance(reply, dict):
            raise SandboxLimit("protocol", "invalid reply from the sandbox")
        result = codec.decode(reply.get("result"), self.make_handle)
        after = codec.decode(reply.get("after"), self.make_handle)
        after = after if isinstance(after, dict) else {}
        for key in wanted:
            original = args[key] if isinstance(key, int) else kwargs[key]
            label = (f"argument {key + 1}" if isinstance(key, int) else key)
            update_in_place(original, after.get(str(key)), remote.__course_name__, label)
        if observe:
            return result, _observation(codec.decode(reply.get("observed"), None))
        return result

    def optimizer_step(self, optimizer, params, closure=None):
        """One ``step()`` of the sandboxed ``optimizer`` on the grader's ``params``.

        With a ``closure`` (the probe's own), it is evaluated here first; the student's
        ``step(closure)`` gets a stand-in that hands over the gradients and the loss it
        computed, so a step that does not call its closure sees no gradients. Returns
        what ``step()`` returned (the loss as a float, or ``None``)."""
        import torch
        loss = None
        if closure is not None:
            loss = closure()
            loss = float(loss) if loss is not None else None
        values = [p.detach().clone() for p in params]
        grads = [None if p.grad is None else p.grad.detach().clone() for p in params]
        new = self.ask({"op": "optimizer_step", "id": optimizer._handle_id,
                        "values": values, "grads": grads, "closure": loss})
        returned = None
        if closure is not None:
            if not isinstance(new, dict) or set(new) != {"params", "loss"}:
                raise AssertionError("the optimizer's step() did not complete")
            returned = new["loss"] if type(new["loss"]) is float else None
            new = new["params"]
        if not isinstance(new, list) or len(new) != len(params):
            raise AssertionError("the optimizer's step() changed its list of parameters")
        with torch.no_grad():
            for i, (p, value) in enumerate(zip(params, new)):
                if not isinstance(value, torch.Tensor) or value.shape != p.shape:
                    raise AssertionError(f"step() left parameter {i} with another shape or "
                                         f"type")
                p.copy_(value)
        return returned

    def state_steps(self, optimizer):
        steps = self.ask({"op": "state_steps", "id": optimizer._handle_id})
        if not isinstance(steps, list) or not all(type(v) is float for v in steps):
            raise AssertionError("the optimizer's state could not be read")
        return steps


def _observation(report):
    """The sandbox's report of ``exercise_checks.observe_call``, checked as plain data."""
    out = {"global_rng": False, "replaced": {}}
    if not isinstance(report, dict):
        return out
    out["global_rng"] = report.get("global_rng") is True
    replaced = report.get("replaced")
    if isinstance(replaced, dict):
        for key, value in replaced.items():
            if isinstance(key, str) and key.isdigit() and isinstance(value, list) and all(
                    type(v) is int for v in value):
                out["replaced"][int(key)] = value[:1000]
    return out


def update_in_place(original, new, name, label):
    """Give the grader's in-place argument ``original`` the values of ``new`` (what the
    student's call left in its copy), in ``original``'s own structure; a changed structure
    (list length, array shape, a value of another kind) is a wrong answer."""
    import sys

    def wrong(what):
        raise AssertionError(f"{name} changed {label} {what}: it must update it in place")

    torch = sys.modules.get("torch")
    if isinstance(original, np.ndarray):
        if not isinstance(new, np.ndarray) or new.shape != original.shape:
            wrong(f"into {type(new).__name__} of shape {getattr(new, 'shape', None)}")
        if original.flags.writeable:
            np.copyto(original, new, casting="unsafe")
    elif torch is not None and isinstance(original, torch.Tensor):
        if not isinstance(new, torch.Tensor) or new.shape != original.shape:
            wrong("into a value of another shape")
        with torch.no_grad():
            original.copy_(new)
        if original.is_leaf:  # its gradient too (clipping works on .grad)
            grad = new.grad
            if grad is not None and grad.shape != original.shape:
                wrong("(its .grad) into a value of another shape")
            original.grad = None if grad is None else grad.to(dtype=original.dtype)
    elif isinstance(original, list):
        if not isinstance(new, list) or len(new) != len(original):
            wrong(f"(its length from {len(original)} to "
                  f"{len(new) if isinstance(new, list) else type(new).__name__})")
        for i, (a, b) in enumerate(zip(original, new)):
            if _is_mutable(a):
                update_in_place(a, b, name, f"{label}[{i}]")
            else:
                original[i] = b
    elif isinstance(original, dict):
        if not isinstance(new, dict):
            wrong(f"into {type(new).__name__}")
        original.clear()
        original.update(new)
    else:
        raise AssertionError(f"{name}: {label} cannot be updated in place")


def _is_mutable(value):
    import sys
    torch = sys.modules.get("torch")
    return isinstance(value, (np.ndarray, list, dict)) or (
        torch is not None and isinstance(value, torch.Tensor))


class Remote:
    """A student's object that stays in the sandbox; using it runs code there."""

    __course_handle_id__ = True   # marks the class for codec.dumps (persistent id)
    __slots__ = ("_connection", "_handle_id", "_description", "__course_name__")

    def __init__(self, connection, description, trusted_name=""):
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_handle_id", description["id"])
        object.__setattr__(self, "_description", dict(description))
        # the name the test cell asked for (empty for values a call returned); what the
        # sandbox calls it (``_description["name"]``) is shown, never acted on
        object.__setattr__(self, "__course_name__", trusted_name)

    def __call__(self, *args, **kwargs):
        return self._connection.call(self, args, kwargs)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            if name in ("__name__", "__qualname__"):
                return self.__course_name__ or str(self._description.get("name", ""))
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
        self._answers = answers   # the grader's copy of the answer-cell texts, in order

    @staticmethod
    def is_remote(obj) -> bool:
        return isinstance(obj, Remote)

    def own_work(self, func, forbidden, name=None):
        # the name the test cell asked for, looked up in the grader's copy of the answer
        # text (a partial or a callable instance has no name of its own)
        from grader.ownwork import assert_own_text
        if isinstance(func, Remote) and func.__course_name__:
            name = func.__course_name__
        if not isinstance(name, str) or not name.isidentifier():
            raise AssertionError("the function under test was not found in your answer "
                                 "cells by its name")
        assert_own_text(name, self._answers, forbidden)

    def run_in_student(self, probe, args, kwargs):
        # the probe is the test cell's own (trusted) object and runs here; the student's
        # objects among the arguments are proxies
        if isinstance(probe, Remote):
            raise AssertionError("run_in_student needs a probe of exercise_checks.probes")
        return probe(*args, **kwargs)

    def optimizer_step(self, optimizer, params, closure=None):
        return self._connection().optimizer_step(optimizer, params, closure)

    def state_steps(self, optimizer, params):
        return self._connection().state_steps(optimizer)

    def observe_call(self, func, args, kwargs):
        return self._connection().call(func, tuple(args), dict(kwargs), observe=True)


def trusted_imports(sources, namespace) -> set[str]:
    """Run, here, the top-level ``import`` statements of the source notebook's own cells
    (``sources``: the instructor's text) that import from :data:`TRUSTED_MODULES`; return
    the names they bind (never fetched from the sandbox)."""
    import ast
    bound = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            if not all(m.split(".")[0] in TRUSTED_MODULES for m in modules):
                continue
            try:
                exec(compile(ast.Module([node], []), "<source imports>", "exec"), namespace)
            except Exception:  # noqa: BLE001  (not installed here: fetched as usual)
                continue
            bound |= {(a.asname or a.name.split(".")[0]) for a in node.names}
    return bound


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
                    if name in bound_elsewhere:
                        continue
                    if isinstance(value, Remote):   # named by the test cell, not the sandbox
                        object.__setattr__(value, "__course_name__", name)
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
