"""Grade notebooks of the five exercises with a pluggable engine, for the grading tests.

- ``make_course(directory)``: a throwaway nbgrader course (the instructor sources of
  ``solutions/`` and ``nbgrader_config.py``) in ``directory``.
- ``solution_answers(assignment)``: each answer cell's solution, as a student would type
  it (the ``### BEGIN/END SOLUTION`` marker lines dropped).
- ``make_submission(assignment, answers)``: the released notebook with some answer cells
  replaced, like a student's file.
- ``grade_with_nbgrader(course_dir, submissions)``: plain nbgrader autograding (its API,
  one process per assignment that generates it and autogrades every student; two
  assignments at a time, each with its own gradebook), returning
  ``{(student, assignment): {grade_id: points}}``. Another engine (the course grader)
  can be compared on the same submissions: ``grade_with_course_grader`` has the same
  signature and result.
- ``load_cases(assignment)``: the catalogue ``tests/grading_cases/<assignment>.py``.
"""
from __future__ import annotations

import concurrent.futures
import copy
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ("init", "dropout", "batchnorm", "adam", "clipping")
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


# Runs in a fresh Python (nbgrader is an application with global state): imports
# nbgrader once, then calls its API for each step; ``steps`` is a JSON list of
# ``[db_url, method, arguments...]``.
_API_SCRIPT = """
import json, os, sys
from traitlets.config import Config
from nbgrader.apps import NbGraderAPI

for db, method, *args in json.loads(sys.argv[1]):
    config = Config()
    exec(open("nbgrader_config.py").read(), {"get_config": lambda: config})
    config.CourseDirectory.root = os.getcwd()
    config.CourseDirectory.db_url = db
    result = getattr(NbGraderAPI(config=config), method)(*args, force=True, create=True)
    if not result["success"]:
        sys.exit(f"nbgrader {method}{tuple(args)} failed:\\n{result['error']}\\n{result['log']}")
"""


def source_path(assignment, root=ROOT):
    return Path(root) / "solutions" / assignment / f"{assignment}.ipynb"


def release_path(assignment, root=ROOT):
    return Path(root) / "exercises" / assignment / f"{assignment}.ipynb"


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def make_course(directory, assignments=ASSIGNMENTS):
    """Copy the instructor sources and the nbgrader configuration into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", directory / "nbgrader_config.py")
    for assignment in assignments:
        shutil.copytree(ROOT / "solutions" / assignment, directory / "solutions" / assignment)
    return directory


def db_url(course_dir, assignment):
    return f"sqlite:///{Path(course_dir).resolve() / f'gradebook-{assignment}.db'}"


def run_nbgrader_api(course_dir, steps, timeout=900):
    """Run nbgrader API ``steps`` (``(assignment, method, *args)``) in ``course_dir``."""
    # nbgrader runs the ``alembic`` script of its environment to create a gradebook.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0", PATH=path)
    steps = [[db_url(course_dir, assignment), method, *args] for assignment, method, *args in steps]
    done = subprocess.run([sys.executable, "-c", _API_SCRIPT, json.dumps(steps)],
                          cwd=course_dir, env=env, timeout=timeout, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")


def generate(course_dir, assignments):
    """``generate_assignment`` of each assignment into ``course_dir/exercises``."""
    run_nbgrader_api(course_dir, [(a, "generate_assignment", a) for a in assignments])
    return [release_path(a, course_dir) for a in assignments]


def strip_markers(source):
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in MARKERS)


def solution_answers(assignment, root=ROOT):
    """``{grade_id: source}`` of the answer cells, solutions included, markers dropped."""
    nb = nbformat.read(source_path(assignment, root), as_version=4)
    return {nbgrader_meta(c)["grade_id"]: strip_markers(c.source) for c in nb.cells
            if nbgrader_meta(c).get("solution")}


def grade_cells(assignment, root=ROOT):
    """``{grade_id: points}`` of the test cells of the instructor source."""
    nb = nbformat.read(source_path(assignment, root), as_version=4)
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"]) for c in nb.cells
            if nbgrader_meta(c).get("grade")}


def make_submission(assignment, answers=None, root=ROOT, added=()):
    """The released notebook with the answer cells in ``answers`` replaced, and the code
    cells ``added`` (``(grade_id of the cell before, source)``) inserted as a student
    adds cells (no nbgrader metadata)."""
    nb = nbformat.read(release_path(assignment, root), as_version=4)
    nb = copy.deepcopy(nb)
    answers = dict(answers or {})
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and grade_id in answers:
            cell.source = answers.pop(grade_id)
    if answers:
        raise KeyError(f"{assignment} has no answer cells {sorted(answers)}")
    for k, (after, source) in enumerate(added):
        where = next(i for i, c in enumerate(nb.cells)
                     if nbgrader_meta(c).get("grade_id") == after)
        cell = nbformat.v4.new_code_cell(source)
        cell.id = f"student-added-{k}"
        nb.cells.insert(where + 1, cell)
    return nb


def catalogue_submissions():
    """``{(student, assignment): notebook}``: each solution, each blank release and every
    known answer of the catalogue (the solution, but for the case's cells)."""
    submissions = {}
    for assignment in ASSIGNMENTS:
        solutions = solution_answers(assignment)
        submissions[("solution", assignment)] = make_submission(assignment, solutions)
        submissions[("release", assignment)] = make_submission(assignment)
        for case in load_cases(assignment):
            submissions[(case["student"], assignment)] = make_submission(
                assignment, {**solutions, **case["answers"]}, added=case.get("added", ()))
    return submissions


def _autograde(course_dir, assignment, students):
    """Generate ``assignment`` and autograde its ``students`` in one nbgrader process."""
    run_nbgrader_api(course_dir, [(assignment, "generate_assignment", assignment)] + [
        (assignment, "autograde", assignment, student) for student in students])
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(db_url(course_dir, assignment)) as gradebook:
        for student in students:
            notebook = gradebook.find_submission_notebook(assignment, assignment, student)
            scores[(student, assignment)] = {
                grade.name: float(grade.score) for grade in notebook.grades}
    return scores


def grade_with_nbgrader(course_dir, submissions, *, jobs=2):
    """Grade ``submissions`` with plain ``nbgrader autograde``.

    Parameters
    ----------
    course_dir : path
        A course made by ``make_course`` (sources of every assignment graded).
    submissions : dict
        ``{(student, assignment): notebook}`` (an ``nbformat`` notebook, or a path).
    jobs : int
        How many assignments are autograded at the same time.

    Returns
    -------
    dict
        ``{(student, assignment): {grade_id: points}}``.
    """
    course_dir = Path(course_dir)
    by_assignment = {}
    for (student, assignment), notebook in submissions.items():
        target = course_dir / "submitted" / student / assignment / f"{assignment}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(notebook, (str, os.PathLike)):
            shutil.copy(notebook, target)
        else:
            nbformat.write(notebook, target)
        by_assignment.setdefault(assignment, []).append(student)

    def one(assignment):
        return _autograde(course_dir, assignment, by_assignment[assignment])

    scores = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(one, sorted(by_assignment, key=ASSIGNMENTS.index)):
            scores.update(result)
    return scores


def autograded_outputs(course_dir, student, assignment):
    """``{grade_id: text of the cell's outputs}`` of an autograded notebook."""
    path = Path(course_dir) / "autograded" / student / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    texts = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or not nbgrader_meta(cell).get("grade_id"):
            continue
        parts = []
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or out.get("evalue", ""))
            parts.extend(out.get("traceback", []))
        texts[nbgrader_meta(cell)["grade_id"]] = "\n".join(parts)
    return texts


def load_cases(assignment):
    """The known-answer catalogue of ``assignment`` as a list of resolved cases.

    A case of ``tests/grading_cases/<assignment>.py`` is a dict with ``student`` (its
    id), ``why``, ``fails`` (the test cells it must lose; all others keep their points),
    optionally ``message`` (text the failing cells' output must contain) and the answer
    cells it replaces: ``answers`` (``{grade_id: full source}``) and/or ``edits``
    (``{grade_id: [(old, new), ...]}`` applied to the solution, each ``old`` required to
    occur) and ``append`` (``{grade_id: code added at the end}``), and ``added`` (code
    cells the student inserted: ``[(grade_id of the cell before, source), ...]``). The
    resolved case has ``answers`` with full replacement sources. ``fails_course`` (default:
    ``fails``) and ``message_course`` are what the course grader must give where its
    NumPy-only sandbox, which cannot import torch, differs from a kernel.
    """
    module = importlib.import_module(f"grading_cases.{assignment}")
    solutions = solution_answers(assignment)
    resolved = []
    for case in module.CASES:
        answers = dict(case.get("answers", {}))
        for grade_id, edits in case.get("edits", {}).items():
            source = answers.get(grade_id, solutions[grade_id])
            for old, new in edits:
                if old not in source:
                    raise ValueError(f"case {case['student']}: {old!r} not in {grade_id}")
                source = source.replace(old, new)
            answers[grade_id] = source
        for grade_id, extra in case.get("append", {}).items():
            answers[grade_id] = answers.get(grade_id, solutions[grade_id]) + "\n\n" + extra
        resolved.append(dict(case, answers=answers, fails=frozenset(case["fails"]),
                             fails_course=frozenset(case.get("fails_course", case["fails"]))))
    return resolved


def expected_messages(case, course=False):
    """``{grade_id: text its output must contain}``: a case's ``message`` (``message_course``
    for the course grader) is a text for every cell it fails, or such a dict."""
    message = case.get("message_course", case.get("message")) if course else case.get("message")
    fails = case["fails_course"] if course else case["fails"]
    if not message:
        return {}
    if isinstance(message, dict):
        return dict(message)
    return {grade_id: message for grade_id in fails}


def is_delegation(case):
    """Whether a case calls the routine it should write (its message is then also the
    own-work check's); ``own_work`` in the case says so explicitly."""
    student = case["student"]
    return case.get("own_work", "delegat" in student or student.endswith("-torch"))


def grade_with_course_grader(course_dir, submissions, messages=False):
    """Grade ``submissions`` with the course grader (``grader.engine``), one
    warm worker for all of them; same arguments and result as ``grade_with_nbgrader``,
    so the two engines can be compared on the same catalogue (``messages=True``: each
    cell's ``(points, message)`` instead of its points)."""
    from grader.engine import GradingWorker

    course_dir = Path(course_dir)
    scores = {}
    with GradingWorker() as worker:
        for (student, assignment), notebook in submissions.items():
            path = course_dir / "course-grader" / student / assignment / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(notebook, (str, os.PathLike)):
                shutil.copy(notebook, path)
            else:
                nbformat.write(notebook, path)
            result = worker.grade(source_path(assignment, course_dir), path,
                                  assignment=assignment, student=student)
            scores[(student, assignment)] = {
                c.grade_id: (float(c.points), c.message) if messages else float(c.points)
                for c in result.cells}
    return scores
