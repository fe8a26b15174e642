"""The course grader's engine: grade one submission, tamper-proof, in a sandbox.

``grade_submission(source, submission, assignment=..., student=...)`` returns a
:class:`NotebookResult` and never raises because of the submission (an unreadable or
invalid file gives zero and a reason). :class:`GradingWorker` keeps a warm sandbox
zygote (numpy, torch, IPython, course_lib imported once) and forks one confined child per
submission; keep one per pool process or Dask worker.

How a notebook is graded (see ``CONTRIBUTING.md`` and :mod:`grader.notebook`):
the cells are processed in the order of the instructor's **source** notebook; answer
cells' code comes from the submission (by ``grade_id``), every other cell from the
source, so edited tests, points or metadata change nothing. Non-test cells run in the
sandbox (:mod:`grader.sandbox`; errors do not stop later cells); test cells
run here, in the trusted process (:mod:`grader.proxy`), at their position.
A test cell scores its points when it raises nothing, else zero.

Limits: each cell (a non-test cell, or all sandbox calls of one test cell) has
``cell_timeout`` seconds of wall clock, the whole notebook ``notebook_timeout``; memory,
processes and output are capped in the sandbox. When the sandbox dies or is killed
during a cell, the notebook goes on in a fresh sandbox that replays the cells before
it, without the offending answer or code cell; this happens once per submission
(:data:`MAX_RESTARTS`), so a hostile notebook costs at most about twice its limits. The
cells the killed cell's definitions would have fed then fail on their own (a
``NameError`` or the stub's ``NotImplementedError``), the others score normally.
"""
from __future__ import annotations

import builtins
import os
import threading
import time
from dataclasses import dataclass, field

from grader import notebook as nbio
from grader.proxy import Backend, Connection, bound_names, run_test_cell
from grader.sandbox import SandboxError, Zygote

MAX_RESTARTS = 1
#: a submission folder holding one of these is a course folder: nothing is copied from it
COURSE_MARKERS = ("nbgrader_config.py", "gradebook.db", "solutions", "source", "autograded",
                  "submitted")

__all__ = ["Limits", "CellResult", "NotebookResult", "grade_submission", "GradingWorker"]


@dataclass
class Limits:
    cell_timeout: float = 60
    notebook_timeout: float = 300
    memory_mb: int = 3072
    max_processes: int = 64
    max_output_bytes: int = 2_000_000


@dataclass
class CellResult:
    grade_id: str
    max_points: float
    points: float
    status: str    # "passed" | "failed" | "error" | "timeout" | "limit" | "not_run"
    message: str   # student-readable reason; never hidden-test source


@dataclass
class NotebookResult:
    assignment: str
    student: str
    cells: list[CellResult]
    score: float
    max_score: float
    problems: list[str]
    feedback_notebook: dict = field(default_factory=dict)
    duration_s: float = 0.0


def grade_submission(source_nb_path, submission_path, *, assignment, student,
                     limits=Limits(), worker=None, isolated=True) -> NotebookResult:
    """Grade ``submission_path`` against the source notebook ``source_nb_path``.

    ``isolated=False`` runs the student's code without the kernel isolation
    (:mod:`grader.isolation`; ``--unsafe-no-isolation``); with ``isolated=True`` it raises
    :class:`~grader.isolation.IsolationUnavailable` where the isolation cannot be set up."""
    if worker is not None:
        return worker.grade(source_nb_path, submission_path, assignment=assignment,
                            student=student, limits=limits, isolated=isolated)
    with GradingWorker(isolated=isolated) as fresh:
        return fresh.grade(source_nb_path, submission_path, assignment=assignment,
                           student=student, limits=limits, isolated=isolated)


def needs_torch(source_nb) -> bool:
    """Whether the sandbox must offer torch: a cell of the source notebook other than a
    test cell imports it (the adam exercise's ``Optimizer`` subclass). Otherwise the
    sandbox has no torch at all."""
    import ast
    for step in nbio.plan(source_nb, {}):
        if step.kind == "test":
            continue
        try:
            tree = ast.parse(step.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "torch" for n in names):
                return True
    return False


def _in_place(assignment):
    from exercise_checks import rules
    return dict(rules.IN_PLACE.get(assignment, {}))


def _forbidden(assignment):
    try:
        from exercise_checks import rules
        return tuple(rules.FORBIDDEN.get(assignment, ()))
    except ImportError:
        return ()


#: characters of a cell's own output kept for the feedback (its end, as plain text)
MAX_FEEDBACK_OUTPUT = 2_000


def _excerpt(text, limit=MAX_FEEDBACK_OUTPUT):
    """At most ``limit`` characters of the student's own output, as plain text: control
    characters (ANSI escapes included) removed, the end kept when it is longer."""
    import re
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]", "", text)
    if len(text) > limit:
        text = f"[... {len(text) - limit} characters of output not shown ...]\n" + text[-limit:]
    return text


def _is_memory_error(error):
    text = f"{error.get('type')}: {error.get('message')}"
    return error.get("type") == "MemoryError" or "can't allocate memory" in text \
        or "not enough memory" in text


class GradingWorker:
    """A warm grader: a sandbox zygote per profile (NumPy-only, with torch), reused for
    every submission it grades. ``isolated``: the default of :meth:`grade`."""

    def __init__(self, isolated=True):
        self.isolated = isolated
        self._zygotes = {}   # (torch, isolated) -> Zygote
        # one submission at a time: the zygote's socket and testing._backend are shared
        self._lock = threading.Lock()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def close(self):
        zygotes, self._zygotes = self._zygotes, {}
        for zygote in zygotes.values():
            zygote.close()

    def start(self, torch=True, isolated=None):
        """Start a zygote without waiting for it (it is awaited at the first spawn)."""
        key = (bool(torch), self.isolated if isolated is None else bool(isolated))
        if key not in self._zygotes:
            self._zygotes[key] = Zygote(wait=False, torch=key[0], isolated=key[1])
        return self

    def _ensure(self, torch=True, isolated=True):
        key = (bool(torch), bool(isolated))
        zygote = self._zygotes.get(key)
        if zygote is None or not zygote.alive():
            if zygote is not None:
                zygote.close()
            zygote = self._zygotes[key] = Zygote(torch=key[0], isolated=key[1])
        return zygote

    def grade(self, source_nb_path, submission_path, *, assignment, student,
              limits=Limits(), isolated=None) -> NotebookResult:
        """Grade one submission (see :func:`grade_submission`)."""
        isolated = self.isolated if isolated is None else isolated
        with self._lock:
            return self._grade(source_nb_path, submission_path, assignment, student, limits,
                               isolated)

    def _grade(self, source_nb_path, submission_path, assignment, student, limits, isolated):
        started = time.monotonic()
        source_nb = nbio.read_source(source_nb_path)
        ids = nbio.answer_ids(source_nb)
        try:
            answers, added, notes = nbio.read_submission_cells(
                submission_path, set(ids), nbio.known_ids(source_nb))
        except nbio.SubmissionError as error:
            steps = nbio.plan(source_nb, {})
            cells = [CellResult(s.grade_id, s.points, 0.0, "not_run", str(error))
                     for s in steps if s.kind == "test"]
            return NotebookResult(assignment, student, cells, 0.0,
                                  sum(c.max_points for c in cells), [str(error)],
                                  nbio.feedback(source_nb, steps, {}),
                                  time.monotonic() - started)
        run = _Run(self, source_nb, nbio.plan(source_nb, answers, added), limits,
                   _forbidden(assignment), os.path.dirname(os.path.abspath(submission_path)),
                   os.path.dirname(os.path.abspath(source_nb_path)))
        run.profile = (needs_torch(source_nb), bool(isolated))
        run.in_place = _in_place(assignment)
        run.problems.extend(notes)
        run.execute(started)
        cells = [CellResult(s.grade_id, s.points,
                            s.points if run.records[s.index]["status"] == "passed" else 0.0,
                            run.records[s.index]["status"], run.records[s.index]["message"])
                 for s in run.steps if s.kind == "test"]
        return NotebookResult(assignment, student, cells, sum(c.points for c in cells),
                              sum(c.max_points for c in cells), run.problems,
                              nbio.feedback(source_nb, run.steps, run.records),
                              time.monotonic() - started)


class _Run:
    """One submission's pass through its plan, with at most MAX_RESTARTS fresh sandboxes."""

    def __init__(self, worker, source_nb, steps, limits, forbidden, data_dir, source_dir):
        self.worker, self.steps, self.limits = worker, steps, limits
        self.forbidden = forbidden
        self.in_place = {}
        # never copy the course's own folder (tests, solutions) into the sandbox
        inside = os.path.commonpath([data_dir, source_dir]) in (data_dir, source_dir)
        course_like = any(os.path.exists(os.path.join(data_dir, marker)) for marker in
                          COURSE_MARKERS)
        self.data_dir = None if inside or course_like else data_dir
        self.profile = (True, True)   # (torch, isolated), set by the worker
        self.records = {s.index: {"status": "not_run", "message": "", "output": ""}
                        for s in steps}
        self.problems, self.skip, self.restarts = [], set(), 0
        self.namespace = {"__name__": "__grader__", "__builtins__": builtins}
        self.bound = set()
        for step in steps:
            if step.kind == "test":
                try:
                    self.bound |= bound_names(step.source)
                except SyntaxError:
                    pass
        # the own-work check reads the answers with the source's own cells before them
        # (the read-only ``import numpy as np`` gives the aliases the answers use)
        answers = [s.source for s in steps if s.kind in ("answer", "added", "code")]
        from grader.proxy import trusted_imports
        self.bound |= trusted_imports([s.source for s in steps if s.kind == "code"],
                                      self.namespace)
        self.backend = Backend(lambda: self.connection, answers)
        self.sandbox = self.connection = None
        self.output_reported = False

    # -- sandbox lifetime -------------------------------------------------------------
    def _spawn(self):
        from grader import policy
        zygote = self.worker._ensure(*self.profile)
        self.sandbox = zygote.spawn(self.limits, self.forbidden,
                                    policy.read_data(self.data_dir))
        self.connection = Connection(self.sandbox, self.in_place)

    def _restart(self, upto, deadline):
        """A fresh sandbox with the non-test cells before ``upto`` replayed (minus the
        skipped ones); False when not allowed or when the replay fails too."""
        if self.restarts >= MAX_RESTARTS or time.monotonic() >= deadline:
            return False
        self.restarts += 1
        self._spawn()
        for step in self.steps[:upto]:
            if step.kind == "test" or step.index in self.skip:
                continue
            cell_deadline = min(time.monotonic() + self.limits.cell_timeout, deadline)
            try:
                self.sandbox.request({"op": "run", "code": step.source, "label": step.label},
                                     cell_deadline)
            except SandboxError:
                self.problems.append("the notebook could not be re-run after the problem "
                                     "above: the remaining cells were not graded")
                return False
        return True

    def _reason(self, error, step, deadline_hit_by_notebook):
        if error.kind == "timeout":
            if deadline_hit_by_notebook:
                return (f"notebook time limit ({self.limits.notebook_timeout:g} s) hit in "
                        f"{step.label}")
            return f"time limit ({self.limits.cell_timeout:g} s) hit in {step.label}"
        if error.kind == "died":
            fate = self.sandbox.fate or "ended"
            return (f"the notebook's process stopped in {step.label} ({fate}): os._exit, a "
                    f"kill or a crash; or the memory limit ({self.limits.memory_mb} MB)")
        return f"{error} in {step.label}"

    # -- the pass ---------------------------------------------------------------------
    def execute(self, started):
        import exercise_checks as testing
        deadline = started + float(self.limits.notebook_timeout)
        try:
            self._spawn()
            position = 0
            while position < len(self.steps):
                step = self.steps[position]
                now = time.monotonic()
                if now >= deadline:
                    self._stop(position, f"notebook time limit "
                               f"({self.limits.notebook_timeout:g} s) hit before {step.label}")
                    return
                cell_deadline = min(now + float(self.limits.cell_timeout), deadline)
                by_notebook = cell_deadline == deadline
                record = self.records[step.index]
                if step.kind == "test":
                    self.connection.deadline = cell_deadline
                    testing._backend = self.backend
                    try:
                        status, message = run_test_cell(step.source, self.namespace,
                                                        self.connection, self.bound,
                                                        step.label)
                    finally:
                        testing._backend = None
                    if status in ("timeout", "limit"):
                        kind = "timeout" if status == "timeout" else "died"
                        message = self._reason(SandboxError(kind, message), step,
                                               by_notebook and time.monotonic() >= deadline)
                        self.problems.append(message)
                    record.update(status=status, message=message)
                    if status in ("timeout", "limit") and not self._restart(position, deadline):
                        self._stop(position + 1, "not run: the notebook stopped earlier")
                        return
                elif step.index in self.skip:
                    record.update(status="skipped")
                else:
                    try:
                        reply = self.sandbox.request(
                            {"op": "run", "code": step.source, "label": step.label},
                            cell_deadline)
                    except SandboxError as error:
                        reason = self._reason(error, step, by_notebook and
                                              time.monotonic() >= deadline)
                        self.problems.append(reason)
                        record.update(status="timeout" if error.kind == "timeout"
                                      else "limit", message=reason)
                        self.skip.add(step.index)
                        if not self._restart(position, deadline):
                            self._stop(position + 1, "not run: the notebook stopped earlier")
                            return
                    else:
                        self._record_run(step, record, reply)
                position += 1
        finally:
            if self.sandbox is not None:
                self.sandbox.close()

    def _record_run(self, step, record, reply):
        from grader import codec
        try:
            outcome = codec.decode(reply["ok"]) if "ok" in reply else {}
        except codec.CodecError:
            outcome = {}
        if not isinstance(outcome, dict):
            outcome = {}
        output = _excerpt(outcome.get("output") if isinstance(outcome.get("output"), str)
                          else "")
        error = outcome.get("error") if isinstance(outcome.get("error"), dict) else None
        record["output"] = output
        if error is not None:
            text = f"{error.get('type')}: {error.get('message')}"
            if error.get("traceback"):
                text += f"\n{error['traceback']}"
            record.update(status="error", message=text)
            if _is_memory_error(error):
                self.problems.append(f"memory limit ({self.limits.memory_mb} MB) hit in "
                                     f"{step.label}")
            elif "can't start new thread" in text or "Resource temporarily unavailable" in text:
                self.problems.append(f"process limit ({self.limits.max_processes} threads "
                                     f"and processes) hit in {step.label}")
        else:
            record.update(status="ok")
        dropped = outcome.get("dropped")
        if isinstance(dropped, int) and dropped > 0 and not self.output_reported:
            self.output_reported = True
            self.problems.append(f"output limit ({self.limits.max_output_bytes} characters) "
                                 f"hit in {step.label}: further output was dropped")

    def _stop(self, position, message):
        for step in self.steps[position:]:
            record = self.records[step.index]
            if record["status"] == "not_run":
                record["message"] = message
        if message.startswith("notebook time limit"):
            self.problems.append(message)
