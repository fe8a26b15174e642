"""``assert_own_work`` for the course grader: judged from the submission's answer-cell text.

In the student's kernel, :func:`exercise_checks.assert_own_work` inspects the
live function. The course grader's trusted process has only a proxy, so it reads the
trusted copy of the submission's answer cells instead: it parses them (IPython syntax
turned into Python first), records the module-level import aliases (``import torch.nn.init
as I``, ``from torch.nn import init``), module-level aliases (``f = torch.dropout``) and
definitions, then walks the function (or class, bases included) under test: every name
and attribute chain it uses is written out as a dotted name through those aliases (and
the function's own ``import`` statements) and compared with the forbidden prefixes
(whole components: ``torch.optim.Adam`` does not forbid ``torch.optim.AdamW``). Other
functions and classes of the student that it uses are followed. A name that resolves,
among the modules already loaded here, to an object known under a forbidden name
(``torch.nn.Dropout`` is ``torch.nn.modules.dropout.Dropout``) counts as well; nothing is
imported on the student's behalf.

The sandbox additionally replaces the forbidden callables by guards, which catches what
text cannot show (``getattr(module, "x" + "y")``).
"""
from __future__ import annotations

import ast
import sys
import types

from exercise_checks import _chain, import_aliases


def _matches(dotted, forbidden):
    return next((p for p in forbidden if dotted == p or dotted.startswith(p + ".")), None)


_imports = import_aliases


def _parse(text):
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        text = TransformerManager().transform_cell(text)
    except Exception:  # noqa: BLE001  (fall back to the raw text)
        pass
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _loaded_names(dotted):
    """Names under which the object ``dotted`` is known, if its module is already loaded."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        obj = module
        for attr in parts[cut:]:
            try:
                obj = getattr(obj, attr)
            except Exception:  # noqa: BLE001
                return []
        if isinstance(obj, types.ModuleType):
            return [obj.__name__]
        names = []
        mod = getattr(obj, "__module__", None)
        for qual in (getattr(obj, "__qualname__", None), getattr(obj, "__name__", None)):
            if isinstance(mod, str) and isinstance(qual, str):
                names.append(f"{mod}.{qual}")
        return names
    return []


class _Submission:
    def __init__(self, answers):
        self.aliases, self.defs = {}, {}
        for text in answers:
            tree = _parse(text or "")
            if tree is None:
                continue
            for node in tree.body:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    self.aliases.update(_imports([node]))
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.defs[node.name] = node
                    self.aliases.pop(node.name, None)
                elif isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                        isinstance(node.targets[0], ast.Name):
                    parts = _chain(node.value)
                    name = node.targets[0].id
                    if parts:
                        self.aliases[name] = self.dotted(parts, {})
                        self.defs.pop(name, None)
                    else:
                        # a lambda, functools.partial(...), an instance of a class: what
                        # the expression uses is what the name does
                        self.defs[name] = node.value
                        self.aliases.pop(name, None)

    def dotted(self, parts, local):
        head = parts[0]
        if head in local:
            return ".".join([local[head]] + parts[1:])
        if head in self.aliases:
            return ".".join([self.aliases[head]] + parts[1:])
        return ".".join(parts)

    def violations(self, name, forbidden):
        found, seen = [], set()

        def check(dotted, where):
            for candidate in [dotted] + _loaded_names(dotted):
                if _matches(candidate, forbidden):
                    found.append((where, candidate))
                    return True
            return False

        def visit(target):
            if target in seen:
                return
            seen.add(target)
            node = self.defs.get(target)
            if node is None:
                if target in self.aliases:
                    check(self.aliases[target], target)
                return
            local = _imports(ast.walk(node))
            for sub in ast.walk(node):
                if not isinstance(sub, (ast.Name, ast.Attribute)):
                    continue
                parts = _chain(sub)
                if not parts:
                    continue
                if check(self.dotted(parts, local), target):
                    continue
                if len(parts) == 1 and parts[0] != target and parts[0] not in local and (
                        parts[0] in self.defs or parts[0] in self.aliases):
                    visit(parts[0])

        visit(name)
        unique = []
        for item in found:
            if item not in unique:
                unique.append(item)
        return unique


def assert_own_text(name, answers, forbidden):
    """Raise ``AssertionError`` (the message of ``testing.assert_own_work``) when the
    student's ``name``, as written in ``answers`` (answer-cell texts), uses a forbidden
    dotted name, directly or through other functions of theirs."""
    if isinstance(forbidden, str):
        forbidden = (forbidden,)
    found = _Submission(answers).violations(name, tuple(forbidden))
    if found:
        where, dotted = found[0]
        via = "" if where == name else f" (through {where})"
        raise AssertionError(
            f"{name} calls {dotted}{via}: this part must be your own code, so it scores "
            f"zero")
