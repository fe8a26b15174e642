"""Helpers for the test cells of the exercises: checks whose messages a student can act on.

The same test cell runs in two places (see CONTRIBUTING.md, "Writing exercise tests"):

- under plain ``nbgrader autograde``, inside the student's kernel, where these helpers act
  directly on the student's objects;
- under the course grader, in the grader's own trusted process, where the student's
  functions are proxies to a sandbox. The grading engine then sets the module-level hook
  ``_backend`` to an object with these methods,

  ``own_work(func, forbidden)``
      raise ``AssertionError`` when the student's ``func`` (a proxy) delegates to one of
      the ``forbidden`` dotted names, judged from the grader's copy of the submission's
      answer-cell text under the name the test cell uses for ``func``;
  ``run_in_student(probe, args, kwargs)``
      run ``probe(*args, **kwargs)``: the probe is the test cell's own function and runs
      in the trusted process; the student's objects among ``args`` are proxies;
  ``is_remote(obj)`` and ``optimizer_step(optimizer, params)``
      whether ``obj`` is a proxy; one ``step()`` of a sandboxed optimizer on the
      probe's own ``params`` (see :func:`optimizer_step`),

  so ``assert_own_work``, ``run_in_student`` and ``optimizer_step`` forward to it.
  ``assert_close`` only looks at plain data and never needs the hook.
"""
from __future__ import annotations

import ast
import functools
import importlib
import inspect
import textwrap
import types

import numpy as np

#: Set by the course grader's engine; ``None`` inside a student's kernel.
_backend = None

__all__ = ["assert_close", "assert_own_work", "assert_raises", "run_in_student", "delegations",
           "optimizer_step", "state_steps", "observe_call"]


def optimizer_step(optimizer, params, closure=None):
    """``optimizer.step()`` (or ``optimizer.step(closure)``) for a probe: afterwards
    ``params`` (the probe's own tensors, in the order of the optimizer's parameter groups)
    hold the updated values; returns what ``step`` returned.

    In a kernel this is simply ``optimizer.step(closure)``. Under the course grader the
    student's optimizer lives in the sandbox: the values and gradients of ``params`` are
    sent to it, its ``step()`` runs there, and the new values are written into
    ``params`` here (a changed number or shape of parameters fails the test). A
    ``closure`` is evaluated here, and the student's ``step(closure)`` receives one that
    hands over the gradients and the loss it computed."""
    if _backend is not None and _backend.is_remote(optimizer):
        return _backend.optimizer_step(optimizer, list(params), closure)
    return optimizer.step() if closure is None else optimizer.step(closure)


def state_steps(optimizer, params):
    """``float(optimizer.state[p]["step"])`` for each of ``params`` (-1.0 where the state
    has no ``"step"``, NaN where it is not a number), wherever the optimizer lives."""
    if _backend is not None and _backend.is_remote(optimizer):
        return _backend.state_steps(optimizer, list(params))
    out = []
    for p in params:
        state = optimizer.state.get(p, {}) if hasattr(optimizer.state, "get") else {}
        try:
            out.append(float(state["step"]) if "step" in state else -1.0)
        except (TypeError, ValueError, RuntimeError):
            out.append(float("nan"))
    return out


def observe_call(func, *args, **kwargs):
    """Call ``func(*args, **kwargs)`` and report what the call did besides its result,
    seen where the student's code runs (the sandbox, under the course grader).

    Returns
    -------
    result
        What ``func`` returned.
    report : dict
        ``"global_rng"``: whether the call used NumPy's global random state
        (``np.random.seed``, ``np.random.uniform``, ...) instead of its ``generator``;
        ``"replaced"``: ``{position: [index, ...]}``, for each list argument, the entries
        that the call replaced by other objects instead of updating them in place.
    """
    if _backend is not None and _backend.is_remote(func):
        return _backend.observe_call(func, args, kwargs)
    result, report = _observed(func, args, kwargs)
    report["replaced"] = {int(k): v for k, v in report["replaced"].items()}
    return result, report


def _same_state(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and tuple(a[2:]) == tuple(b[2:])


def _observed(func, args, kwargs):
    before = {i: list(a) for i, a in enumerate(args) if isinstance(a, list)}
    state = np.random.get_state()
    np.random.seed(20260101)  # a known state, so that reseeding it shows too
    known = np.random.get_state()
    try:
        result = func(*args, **kwargs)
        used = not _same_state(known, np.random.get_state())
    finally:
        np.random.set_state(state)
    replaced = {}
    for i, entries in before.items():
        now = args[i]
        replaced[str(i)] = [j for j, old in enumerate(entries)
                            if j >= len(now) or now[j] is not old]
    return result, {"global_rng": bool(used), "replaced": replaced}


# ---------------------------------------------------------------------------------------
# assert_close
# ---------------------------------------------------------------------------------------

def _as_array(value, name):
    if value is None:
        raise AssertionError(f"{name} is None: did you forget to return it?")
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as error:  # ragged lists and the like
        raise AssertionError(f"{name} is not an array of numbers ({error})") from None
    if array.dtype == object:
        raise AssertionError(
            f"{name} is not an array of numbers (got {_student_type(value)})")
    return array


def _student_type(value):
    """The type name of ``value`` as the student knows it (their class's name for one of
    their objects under the course grader)."""
    if _backend is not None and _backend.is_remote(value):
        description = object.__getattribute__(value, "_description")
        return str(description.get("type") or "object")
    return type(value).__name__


_KINDS = {"b": "boolean", "i": "integer", "u": "unsigned integer", "f": "floating point",
          "c": "complex"}


def _fmt(x):
    return f"{x:.6g}" if np.isscalar(x) and np.isrealobj(x) else repr(x)


def _fmt_pair(a, e):
    """``a`` and ``e`` with as many digits as it takes to see that they differ (6 to 17)."""
    if not (np.isscalar(a) and np.isscalar(e) and np.isrealobj(a) and np.isrealobj(e)):
        return _fmt(a), _fmt(e)
    for digits in range(6, 18):
        fa, fe = f"{a:.{digits}g}", f"{e:.{digits}g}"
        if fa != fe:
            return fa, fe
    return fa, fe


def assert_close(actual, expected, *, name, rtol=1e-10, atol=0.0, hint=None,
                 equal_nan=False, dtype=None, mistakes=None):
    """Assert that ``actual`` matches ``expected`` elementwise, with a targeted message.

    Checks, in order: ``actual`` is not ``None``; it is an array of numbers; its shape is
    the expected shape; its dtype kind (bool, int, float, complex) is the expected one
    (an integer result where floats were expected fails; float32 against float64 passes
    the kind check and then the value check decides); it has no NaN where ``expected``
    has none; and finally ``|actual - expected| <= atol + rtol * |expected|`` everywhere.

    Parameters
    ----------
    actual, expected : array_like or number (torch tensors are accepted)
    name : str
        What is checked, as the student knows it (``"out"``, ``"running_var"``).
    rtol, atol : float
        Relative and absolute tolerances (those of ``numpy.isclose``).
    hint : str, optional
        Appended to the message: the likely mistake ("Glorot uses fan_in + fan_out").
    equal_nan : bool
        Treat NaN in the same places as equal (for documented non-finite behaviour).
    dtype : numpy dtype, optional
        The dtype ``actual`` must have (``np.float64`` where the exercise asks for it).
    mistakes : dict, optional
        ``{hint: what that mistake gives}``: when ``actual`` fails and matches one of these
        values, that hint is shown instead of ``hint`` (a hint follows from what the test
        found, not from a guess).

    Raises
    ------
    AssertionError
        With a message that says what differs, where, and by how much.
    """
    actual = _as_array(actual, name)
    expected = np.asarray(expected)
    for text, value in (mistakes or {}).items():
        try:
            alternative = np.asarray(value)
            if alternative.shape == actual.shape and not np.allclose(
                    alternative, expected, rtol=rtol, atol=atol, equal_nan=True) and np.allclose(
                    actual, alternative, rtol=max(rtol, 1e-9), atol=atol, equal_nan=True):
                hint = text
                break
        except (TypeError, ValueError):
            continue
    suffix = f"\nHint: {hint}" if hint else ""
    if dtype is not None and actual.dtype != np.dtype(dtype):
        raise AssertionError(
            f"{name} has dtype {actual.dtype} where {np.dtype(dtype)} was asked for{suffix}")
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{name} has shape {actual.shape} where {expected.shape} was expected{suffix}")
    kind_a, kind_e = actual.dtype.kind, expected.dtype.kind
    if kind_a not in _KINDS:
        raise AssertionError(f"{name} has dtype {actual.dtype}, not a number type{suffix}")
    if kind_e in "fc" and kind_a in "biu" or kind_e == "b" and kind_a != "b":
        raise AssertionError(
            f"{name} has {_KINDS[kind_a]} dtype {actual.dtype} where {_KINDS[kind_e]} "
            f"values were expected{suffix}")
    a = actual.astype(np.complex128 if kind_a == "c" or kind_e == "c" else np.float64)
    e = expected.astype(a.dtype)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    if equal_nan:
        if not np.array_equal(nan_a, nan_e):
            where = np.argwhere(nan_a != nan_e)[0]
            raise AssertionError(
                f"{name}{_index(where)} is {_fmt(a[tuple(where)])} where "
                f"{_fmt(e[tuple(where)])} was expected (NaN in the wrong place){suffix}")
    elif nan_a.any():
        where = np.argwhere(nan_a)[0]
        raise AssertionError(
            f"{name} contains NaN ({int(nan_a.sum())} of {a.size} values, first at "
            f"{_index(where) or 'the value itself'}){suffix}")
    ok = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if not ok.all():
        bad = np.argwhere(~ok)
        first = tuple(bad[0])
        if a.ndim == 0:
            got, want = _fmt_pair(a[()], e[()])
            raise AssertionError(f"{name} is {got} where {want} was expected{suffix}")
        err = np.where(ok, 0.0, np.abs(a - e))
        worst = np.unravel_index(np.argmax(np.nan_to_num(err, nan=np.inf)), a.shape)
        got, want = _fmt_pair(a[first], e[first])
        worst_got, worst_want = _fmt_pair(a[worst], e[worst])
        raise AssertionError(
            f"{name} differs from the expected values in {len(bad)} of {a.size} entries; "
            f"e.g. {name}{_index(first)} = {got} where {want} was "
            f"expected; largest difference at {_index(worst)}: {worst_got} vs "
            f"{worst_want} (rtol={rtol:g}, atol={atol:g}){suffix}")


def _index(where):
    return "[" + ", ".join(str(int(i)) for i in where) + "]" if len(where) else ""


# ---------------------------------------------------------------------------------------
# assert_own_work
# ---------------------------------------------------------------------------------------

def _matches(dotted, forbidden):
    return next((p for p in forbidden if dotted == p or dotted.startswith(p + ".")), None)


def _qualified(obj):
    """Dotted names under which ``obj`` is known: a module's name, or a function's or
    class's ``module.qualname``."""
    if isinstance(obj, types.ModuleType):
        return [obj.__name__]
    names = []
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        names.append(f"{module}.{qualname}")
    simple = getattr(obj, "__name__", None)
    if isinstance(module, str) and isinstance(simple, str) and simple != qualname:
        names.append(f"{module}.{simple}")  # torch.dropout is _VariableFunctionsClass.dropout
    return names


def _written_name(obj, forbidden):
    """The forbidden entry that names ``obj`` itself (``torch.optim.Adam`` rather than
    its home ``torch.optim.adam.Adam``), for the message; ``None`` if none does."""
    for dotted in forbidden:
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                target = importlib.import_module(".".join(parts[:cut]))
            except Exception:  # not a module (or one that fails to import): go shorter
                continue
            for attr in parts[cut:]:
                target = getattr(target, attr, None)
            if target is obj:
                return dotted
            break
    return None


def _is_student_code(obj, home):
    """A function or class the student wrote: defined in the notebook's namespace (the
    same module as the function under test), not imported from a library."""
    if not isinstance(obj, (types.FunctionType, type)):
        return False
    return getattr(obj, "__module__", None) == home


def _chain(node):
    """``a.b.c`` as ``["a", "b", "c"]``, or ``None`` when the base is not a plain name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def import_aliases(nodes):
    """Names bound by the ``import`` statements among ``nodes``: alias -> dotted name."""
    aliases = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _local_imports(tree):
    """Names bound by ``import`` statements inside the function: alias -> dotted name."""
    return import_aliases(ast.walk(tree))


def _resolve(parts, namespace):
    """Follow ``parts`` through ``namespace`` and attributes as far as they go."""
    if parts[0] not in namespace:
        return None, 0
    obj, depth = namespace[parts[0]], 1
    for attr in parts[1:]:
        try:
            obj = inspect.getattr_static(obj, attr) if isinstance(obj, type) else getattr(
                obj, attr)
        except AttributeError:
            break
        depth += 1
    return obj, depth


def _behind(func):
    """The function or class that a partial or a callable instance stands for."""
    while isinstance(func, functools.partial):
        func = func.func
    if not isinstance(func, (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                             types.ModuleType, type)) and callable(func):
        return type(func)
    return func


def delegations(func, forbidden):
    """The forbidden names that ``func`` uses, directly or through other student code.

    Reads the source of ``func`` (for a class: its bases and the source of its methods,
    since a notebook's class has no readable source of its own), collects every name and
    attribute chain it uses (``torch.nn.init.xavier_uniform_``, an alias ``init.xavier_
    uniform_`` after ``from torch.nn import init``, a global ``f = torch.dropout``, the
    base classes of a class), resolves each through the function's globals and its own
    ``import`` statements, and reports those whose dotted name, written or resolved,
    starts with one of ``forbidden``. Student-defined helpers it calls are followed.

    Returns
    -------
    list of (str, str)
        ``(where, dotted_name)`` pairs; ``where`` names the student function that uses it.
    """
    forbidden = tuple(forbidden)
    found, seen = [], set()
    home = getattr(_behind(func), "__module__", None)

    def visit(obj, label):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, functools.partial):
            # the function it fixes arguments of, and any callable among those arguments
            for part in (obj.func, *obj.args, *obj.keywords.values()):
                if callable(part) or isinstance(part, types.ModuleType):
                    visit(part, label)
            return
        if not isinstance(obj, (types.FunctionType, types.BuiltinFunctionType,
                                types.MethodType, types.ModuleType, type)) and callable(obj):
            visit(type(obj), label)  # a callable instance: its class's __call__ and bases
            return
        for name in _qualified(obj):
            hit = _matches(name, forbidden)
            if hit and home != getattr(obj, "__module__", None):
                found.append((label, name))
                return
        if isinstance(obj, type):
            visit_class(obj, label)
            return
        try:
            source = textwrap.dedent(inspect.getsource(obj))
            tree = ast.parse(source)
        except (OSError, TypeError, SyntaxError, IndentationError):
            return
        namespace = dict(getattr(inspect.unwrap(obj), "__globals__", {}))  # past decorators
        imports = _local_imports(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Name, ast.Attribute)):
                continue
            parts = _chain(node)
            if not parts:
                continue
            written = parts
            if parts[0] in imports:
                written = imports[parts[0]].split(".") + parts[1:]
            candidates = [".".join(written)]
            target, depth = _resolve(parts, namespace)
            if target is not None:
                base = _qualified(target)
                candidates += base if depth == len(parts) else [
                    ".".join([b] + parts[depth:]) for b in base]
            for dotted in candidates:
                hit = _matches(dotted, forbidden)
                if hit:
                    found.append((label, dotted))
                    break
            if target is not None and depth == len(parts) and target is not obj and \
                    _is_student_code(target, home):
                visit(target, getattr(target, "__name__", label))

    def visit_class(cls, label):
        # A notebook's class has no source file that inspect can read (its module,
        # __main__, has no __file__), so look at its bases and its members instead.
        for base in cls.__mro__[1:]:
            hit = next((n for n in _qualified(base) if _matches(n, forbidden)), None)
            if hit:
                found.append((label, _written_name(base, forbidden) or hit))
        for name, member in vars(cls).items():
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            elif isinstance(member, property):
                member = member.fget
            if isinstance(member, types.FunctionType) and member.__module__ == home:
                visit(member, f"{label}.{name}")
            elif callable(member) or isinstance(member, types.ModuleType):
                hit = next((n for n in _qualified(member) if _matches(n, forbidden)), None)
                if hit:
                    found.append((label, hit))

    visit(func, getattr(_behind(func), "__name__", "your function"))
    unique = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique


def _asked_name(func, frame):
    """The name under which the calling test cell knows ``func`` (``dropout_forward``),
    whatever the object is (a function, a ``functools.partial``, a callable instance)."""
    import re
    history = re.compile(r"_+|_i+\d*|_\d+|_[iod]h")  # IPython's output and input history
    while frame is not None:
        names = [key for scope in (frame.f_locals, frame.f_globals)
                 for key, value in list(scope.items())
                 if value is func and isinstance(key, str) and not history.fullmatch(key)]
        if names:
            return next((n for n in names if not n.startswith("_")), names[0])
        frame = frame.f_back
    return None


def assert_own_work(func, forbidden, name=None):
    """Fail when ``func`` delegates the exercise to a library routine.

    ``forbidden`` lists dotted prefixes (``"torch.nn.init"``, ``"torch.optim.Adam"``,
    ``"course_lib.numpy.init"``; see ``exercise_checks.rules``). ``name`` is the name
    the exercise asks for (default: the name under which the calling cell knows
    ``func``); any callable counts: a function, a class, a ``functools.partial`` or an
    object with ``__call__``. Under the course grader the engine's ``own_work`` judges
    the submission's text for that name instead.

    Raises
    ------
    AssertionError
        "glorot_uniform calls torch.nn.init.xavier_uniform_: this part must be your own
        code, so it scores zero".
    """
    import sys
    if name is None:
        name = _asked_name(func, sys._getframe(1))
    if _backend is not None:
        return _backend.own_work(func, tuple(forbidden), name=name)
    found = delegations(func, forbidden)
    if found:
        name = name or getattr(func, "__name__", "your function")
        where, dotted = found[0]
        via = "" if where == name else f" (through {where})"
        raise AssertionError(
            f"{name} calls {dotted}{via}: this part must be your own code, so it scores "
            f"zero")


# ---------------------------------------------------------------------------------------
# run_in_student
# ---------------------------------------------------------------------------------------

def run_in_student(probe, *args, **kwargs):
    """Run ``probe(*args, **kwargs)`` next to the student's code and return its result.

    ``probe`` is a function of ``exercise_checks.probes`` (a driver such as "train a
    small model with this optimizer class") that returns plain data. It is simply
    called, in both places: under the course grader it runs in the trusted process and
    the student's objects among ``args`` are proxies to the sandbox.
    """
    if _backend is not None:
        return _backend.run_in_student(probe, args, kwargs)
    return probe(*args, **kwargs)


# ---------------------------------------------------------------------------------------
# assert_raises
# ---------------------------------------------------------------------------------------

def assert_raises(expected, func, *args, **kwargs):
    """Assert that ``func(*args, **kwargs)`` raises ``expected`` (an exception class or a
    tuple of them), for the documented checks of bad input.

    Any other exception, or none, fails with an ``AssertionError`` that says which
    (under the course grader the engine re-raises a sandboxed call's built-in exception
    with its own type, so the check reads the same).
    """
    name = getattr(func, "__name__", repr(func))
    want = expected if isinstance(expected, tuple) else (expected,)
    want_names = " or ".join(e.__name__ for e in want)
    shown = ", ".join([repr(a) if not hasattr(a, "shape") else f"<array {a.shape}>"
                       for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    try:
        func(*args, **kwargs)
    except want:
        return
    except Exception as error:  # the wrong kind of error is a wrong answer, not a crash
        raise AssertionError(
            f"{name}({shown}) raised {type(error).__name__}: {error} where "
            f"{want_names} was expected") from None
    raise AssertionError(f"{name}({shown}) raised nothing where {want_names} was expected")
