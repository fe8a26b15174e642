"""``course-grade autograde``: grade a batch of submissions, resumably.

The steps, all in the instructor's course folder:

1. collect the submissions (``submitted/`` or another folder in nbgrader's layout, or an
   LMS zip extracted into ``submitted/``);
2. record each assignment's cells in ``gradebook.db`` as ``nbgrader generate_assignment``
   does;
3. skip every submission whose notebook and source notebook have the hashes recorded by
   an earlier run (unless ``force``);
4. grade the rest with the engine, in this process, a process pool or a Dask cluster, and
   as each result arrives write ``autograded/<student>/<assignment>/<assignment>.ipynb``,
   ``feedback/<student>/<assignment>/<assignment>.html`` and then the gradebook (one
   transaction, in this process only);
5. export ``grades.csv`` and print a summary per assignment.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from grader import collect, gradebook, report
from grader import parallel
from grader.parallel import Outcome, Task, run_dask, run_pool, run_serial


class InstructorError(Exception):
    """A problem with the command line or the course folder (not with a student's work)."""


class IsolationError(InstructorError):
    """The students' code would run without the kernel isolation (``grader.isolation``)."""


@dataclass
class Options:
    course_dir: Path = Path(".")
    assignments: list[str] = field(default_factory=list)  # empty: every assignment of the course
    submissions: Path | None = None
    zip_path: Path | None = None
    named_regexp: str | None = None
    workers: int = 1
    scheduler: str | None = None
    limits: object = None  # engine.Limits; None: the engine's defaults
    force: bool = False
    engine: str = "course"  # or "nbgrader"
    nbgrader_timeout: float | None = None  # --engine nbgrader: seconds per cell
    progress: bool | None = None  # None: a progress bar only on a terminal
    isolated: bool = True  # False: --unsafe-no-isolation (student code without the jail)


@dataclass
class BatchReport:
    graded: Counter = field(default_factory=Counter)  # per assignment, graded in this run
    skipped: Counter = field(default_factory=Counter)  # per assignment, already up to date
    grader_errors: list[str] = field(default_factory=list)
    rejected: list[collect.Rejected] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: str = ""
    csv_path: Path | None = None

    @property
    def complete(self) -> bool:
        return not self.grader_errors


def course_paths(course_dir: Path) -> dict[str, Path]:
    """nbgrader's folders of the course, as its ``nbgrader_config.py`` sets them."""
    from nbgrader.coursedir import CourseDirectory

    config = gradebook.load_nbgrader_config(course_dir)
    config.CourseDirectory.root = str(course_dir)
    coursedir = CourseDirectory(config=config)
    return {name: course_dir / getattr(coursedir, f"{name}_directory")
            for name in ("source", "submitted", "autograded", "feedback")}


def known_assignments(source_dir: Path) -> list[str]:
    if not source_dir.is_dir():
        return []
    return sorted(p.name for p in source_dir.iterdir() if (p / f"{p.name}.ipynb").is_file())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _answers(path: Path) -> dict[str, str]:
    """Solution cells of a submission by grade_id (the first of duplicates), as the engine reads them."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb.get("cells", []) if isinstance(nb, dict) else []
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    answers: dict[str, str] = {}
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if isinstance(meta, dict) and meta.get("solution") and isinstance(meta.get("grade_id"), str):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            answers.setdefault(meta["grade_id"], source)
    return answers


def _timestamp(submission: collect.Submission, notes: list[str]):
    from nbgrader.utils import parse_utc

    path = submission.timestamp_file
    if not path.is_file():
        return None
    try:
        return parse_utc(path.read_text(encoding="utf-8").strip())
    except (ValueError, OverflowError, UnicodeDecodeError):
        notes.append(f"{submission.student}/{submission.assignment}: unreadable timestamp.txt ignored")
        return None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _output_paths(paths: dict[str, Path], task: Task) -> tuple[Path, Path]:
    name = f"{task.assignment}"
    return (paths["autograded"] / task.student / task.assignment / f"{name}.ipynb",
            paths["feedback"] / task.student / task.assignment / f"{name}.html")


def _default_limits():
    from grader.engine import Limits

    return Limits()


def prepare(options: Options, report_: BatchReport):
    """Check the course and options, collect submissions; returns (paths, submissions)."""
    course_dir = Path(options.course_dir)
    if not course_dir.is_dir():
        raise InstructorError(f"--course-dir: {course_dir} is not a folder")
    paths = course_paths(course_dir.resolve())
    known = known_assignments(paths["source"])
    if not known:
        raise InstructorError(f"--course-dir: no assignments in {paths['source']} "
                              "(expected <name>/<name>.ipynb, nbgrader's source layout)")
    unknown = [a for a in options.assignments if a not in known]
    if unknown:
        raise InstructorError(f"unknown assignment {', '.join(map(repr, unknown))} "
                              f"(this course has: {', '.join(known)})")
    assignments = list(dict.fromkeys(options.assignments)) or known
    if options.zip_path is not None:
        regexp = options.named_regexp
        if regexp is None:
            config = gradebook.load_nbgrader_config(course_dir)
            regexp = config.FileNameCollectorPlugin.get("named_regexp") or collect.DEFAULT_NAMED_REGEXP
        try:
            intake = collect.collect_zip(Path(options.zip_path), paths["submitted"], assignments,
                                         named_regexp=regexp)
        except ValueError as error:
            raise InstructorError(f"--zip: {str(error).split(': ', 1)[-1]}") from None
    else:
        folder = Path(options.submissions) if options.submissions is not None else paths["submitted"]
        if options.submissions is not None and not folder.is_dir():
            raise InstructorError(f"--submissions: {folder} is not a folder")
        intake = collect.collect_folder(folder, assignments)
    report_.rejected.extend(intake.rejected)
    return paths, assignments, intake.submissions


def autograde(options: Options, *, worker_factory: Callable | None = None,
              after_record: Callable[[Task], None] | None = None) -> BatchReport:
    """Grade a batch of submissions and record everything (see the module docstring).

    Parameters
    ----------
    options : Options
        The course folder, assignments, intake, parallelism, limits and engine.
    worker_factory : callable, optional
        Returns a context manager with ``grade(...)`` like ``engine.GradingWorker`` (the
        default); it must be picklable to reach worker processes.
    after_record : callable, optional
        Called with each ``Task`` right after its gradebook transaction committed.

    Returns
    -------
    BatchReport
        Counts per assignment, rejected intake entries, grader errors and the summary.

    Raises
    ------
    InstructorError
        Only for the instructor's own mistakes; students' notebooks never make it raise.
    """
    result = BatchReport()
    paths, assignments, submissions = prepare(options, result)
    if options.engine == "course" and options.isolated and worker_factory is None:
        from grader import isolation
        reason = isolation.unavailable_reason()
        if reason is not None:
            raise IsolationError(reason)
    if options.engine == "nbgrader" and options.isolated:
        raise IsolationError("--engine nbgrader runs the students' code in plain Jupyter "
                             "kernels, without the sandbox")
    course_dir = Path(options.course_dir).resolve()
    limits = options.limits if options.limits is not None else (
        _default_limits() if options.engine == "course" else None)

    gb = gradebook.open_gradebook(course_dir)
    try:
        source_sha = {a: _sha256(paths["source"] / a / f"{a}.ipynb") for a in assignments}

        tasks, batch_keys = [], []
        for submission in submissions:
            sha = submission.sha256()
            key = (submission.assignment, submission.student)
            batch_keys.append(key)
            task = Task(submission.assignment, submission.student,
                        str(paths["source"] / submission.assignment / f"{submission.assignment}.ipynb"),
                        str(submission.path.resolve()), sha, limits, options.isolated)
            state = gradebook.find_state(gb, *key)
            up_to_date = (state is not None and state.submission_sha256 == sha
                          and state.source_sha256 == source_sha[submission.assignment]
                          and state.engine == options.engine and _output_paths(paths, task)[1].is_file())
            if up_to_date and not options.force:
                result.skipped[submission.assignment] += 1
            else:
                tasks.append(task)

        by_key = {(s.assignment, s.student): s for s in submissions}
        prestarted = False
        if not tasks:
            outcomes = iter(())
        elif options.engine == "nbgrader":
            from grader.nbgrader_engine import run_nbgrader

            outcomes = run_nbgrader(tasks, course_dir, paths["autograded"], options.nbgrader_timeout)
        elif options.scheduler:
            outcomes = run_dask(tasks, options.scheduler, worker_factory)
        elif options.workers > 1 and len(tasks) > 1:
            # the workers start (spawn, imports, sandbox zygote) and grade while the
            # assignments are recorded below
            outcomes = run_pool(tasks, min(options.workers, len(tasks)), worker_factory)
        else:
            parallel.prestart(worker_factory, options.isolated)  # the zygote warms up meanwhile
            prestarted = True
            outcomes = run_serial(tasks, worker_factory)

        try:
            for assignment in assignments:
                try:
                    gradebook.sync_assignment(gb, course_dir, assignment, source_sha[assignment])
                except Exception as error:  # nbgrader refuses e.g. removed cells with submissions
                    raise InstructorError(
                        f"cannot record assignment {assignment!r} in the gradebook: {error}")
        except BaseException:
            close = getattr(outcomes, "close", None)
            if close is not None:
                close()
            if prestarted:
                parallel.close_worker()  # run_serial never started: stop the warm zygote
            raise

        show = options.progress if options.progress is not None else sys.stderr.isatty()
        from tqdm import tqdm

        with tqdm(total=len(tasks), desc="grading", unit="nb", disable=not show, file=sys.stderr) as bar:
            try:
                for outcome in outcomes:
                    bar.update(1)
                    if outcome.grader_error:
                        task = outcome.task
                        result.grader_errors.append(f"{task.student}/{task.assignment}: {outcome.grader_error}")
                        continue
                    _store(gb, paths, outcome, source_sha, by_key, options.engine, result)
                    result.graded[outcome.task.assignment] += 1
                    if after_record is not None:
                        after_record(outcome.task)
            finally:
                close = getattr(outcomes, "close", None)
                if close is not None:  # stop the workers at once on Ctrl-C or an error
                    close()

        result.csv_path = course_dir / "grades.csv"
        gradebook.export_csv(gb, result.csv_path)
        states = gradebook.all_states(gb)
        errors = Counter(e.split("/", 1)[1].split(":", 1)[0] for e in result.grader_errors)
        result.summary = report.summary_table([states[k] for k in batch_keys if k in states],
                                              result.graded, result.skipped, errors)
    finally:
        gb.close()
    return result


def _store(gb, paths, outcome: Outcome, source_sha, by_key, engine: str, result: BatchReport) -> None:
    task, graded = outcome.task, outcome.result
    autograded_path, feedback_path = _output_paths(paths, task)
    # Files first, gradebook last: a crash in between leaves no state row, so a re-run regrades.
    if outcome.autograded is not None:  # None: nbgrader wrote its own
        _write_atomic(autograded_path, json.dumps(outcome.autograded, indent=1, ensure_ascii=False) + "\n")
    _write_atomic(feedback_path, outcome.html)
    from grader.feedback import install_mathjax
    install_mathjax(paths["feedback"])  # the pages' MathJax, offline (once per folder)
    status, reason = report.status_and_reason(graded)
    submission = by_key[(task.assignment, task.student)]
    state = gradebook.StateRow(
        assignment=task.assignment, student=task.student, submission_sha256=task.submission_sha256,
        source_sha256=source_sha[task.assignment], engine=engine, status=status, reason=reason,
        score=float(sum(c.points for c in graded.cells)),
        max_score=float(sum(c.max_points for c in graded.cells)),
        cells=gradebook.cells_json(graded.cells))
    gradebook.record(gb, state, {c.grade_id: c.points for c in graded.cells},
                     _answers(submission.path), timestamp=_timestamp(submission, result.notes))
    result.notes.extend(f"{task.student}/{task.assignment}: {note}" for note in outcome.notes)
