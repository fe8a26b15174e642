"""``course-grade autograde --engine nbgrader``: plain ``nbgrader autograde``, serially.

For comparison with the course grader and as a fallback.  nbgrader runs the tests inside
the student's kernel (not tamper-proof) and writes the gradebook and ``autograded/``
itself; this module then reads its scores back into the same ``Outcome`` objects as the
course grader, so the feedback pages, ``grades.csv`` and the summary are made the same way.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from grader import feedback
from grader.engine import CellResult, NotebookResult
from grader.parallel import Outcome, Task


def _error_of(cell: dict) -> tuple[str, str] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename", ""), output.get("evalue", "")
    return None


def _result(task: Task, source_nb: dict, autograded_path: Path, grades: dict) -> NotebookResult:
    """Rebuild a NotebookResult from nbgrader's autograded notebook and gradebook scores."""
    result = NotebookResult(task.assignment, task.student, cells=[], score=0.0, max_score=0.0,
                            problems=[])
    try:
        autograded = json.loads(autograded_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        autograded = None
        result.problems.append("nbgrader could not grade this notebook (see nbgrader's log)")
    result.feedback_notebook = autograded or {}
    graded_cells = {}
    for cell in (autograded or {}).get("cells", []):
        grade_id = ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
        if grade_id:
            graded_cells.setdefault(grade_id, cell)
    for cell in source_nb.get("cells", []):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if not (meta.get("grade") and cell.get("cell_type") == "code"):
            continue
        grade_id, max_points = meta["grade_id"], float(meta.get("points", 0))
        points = grades.get(grade_id)
        error = _error_of(graded_cells.get(grade_id, {}))
        if autograded is None or points is None:
            status, message, points = "not_run", "", 0.0
        elif error is None:
            status, message = ("passed" if points >= max_points else "failed"), ""
        elif error[0] == "CellTimeoutError":
            status, message = "timeout", "the cell ran past the time limit"
        else:
            status = "failed" if error[0] == "AssertionError" else "error"
            message = f"{error[0]}: {error[1]}".strip().rstrip(":")[:2000]
        result.cells.append(CellResult(grade_id, max_points, float(points), status, message))
    result.score = sum(c.points for c in result.cells)
    result.max_score = sum(c.max_points for c in result.cells)
    return result


def run_nbgrader(tasks: list[Task], course_dir: Path, autograded_dir: Path,
                 timeout: float | None = None) -> Iterator[Outcome]:
    """One ``nbgrader autograde ASSIGNMENT`` per assignment, restricted to the tasks' students."""
    from nbgrader.api import Gradebook, MissingEntry

    from grader.gradebook import db_url

    by_assignment: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        by_assignment[task.assignment].append(task)
    for assignment, batch in sorted(by_assignment.items()):
        submitted = {Path(t.submission_path).parents[2] for t in batch}
        for folder in sorted(submitted):
            group = [t for t in batch if Path(t.submission_path).parents[2] == folder]
            wanted = {t.student for t in group}
            others = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in wanted)
            command = [sys.executable, "-m", "nbgrader", "autograde", assignment, "--force",
                       f"--CourseDirectory.root={course_dir}",
                       f"--CourseDirectory.submitted_directory={folder}",
                       f"--CourseDirectory.db_url={db_url(course_dir)}", "--log-level=WARN"]
            if others:
                command.append(f"--CourseDirectory.student_id_exclude={','.join(others)}")
            if timeout is not None:
                command.append(f"--Execute.timeout={int(timeout)}")
            subprocess.run(command, cwd=course_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "PYTHONWARNINGS": "ignore"})
            with Gradebook(db_url(course_dir)) as gb:
                for task in group:
                    grades = {}
                    try:
                        nb = gb.find_submission_notebook(assignment, assignment, task.student)
                        grades = {g.name: g.auto_score for g in nb.grades}
                    except MissingEntry:
                        pass
                    source_nb = json.loads(Path(task.source_path).read_text(encoding="utf-8"))
                    path = autograded_dir / task.student / assignment / f"{assignment}.ipynb"
                    result = _result(task, source_nb, path, grades)
                    try:
                        submission_nb = json.loads(Path(task.submission_path).read_text(encoding="utf-8"))
                    except (OSError, ValueError):
                        submission_nb = None
                    _, page, notes = feedback.build(result, source_nb, submission_nb)
                    # autograded=None: keep the autograded notebook nbgrader wrote.
                    yield Outcome(task, result, None, page, tuple(notes))
