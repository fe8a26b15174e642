"""The nbgrader gradebook as the course grader writes it.

Only the main process of ``course-grade`` writes here, one SQLite transaction per
submission: the student (created if missing), the submission with its notebook, grades and
comments (mirroring ``Gradebook.add_submission``), ``auto_score`` of every grade cell, and a
row of the grader's own table ``course_grade_state`` that ties the result to the SHA-256 of
the submitted notebook and of the instructor's source notebook.  A run killed at any moment
therefore loses nothing committed, and a re-run grades only what has no matching row.

``manual_score``, ``extra_credit`` and the comments' ``manual_comment`` belong to the human
graders and are never written.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

STATE_TABLE = "course_grade_state"
SOURCES_TABLE = "course_grade_sources"

CSV_COLUMNS = [
    # ``nbgrader export`` (CsvExportPlugin), in its order ...
    "assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
    "raw_score", "late_submission_penalty", "score", "max_score",
    # ... and what the course grader knows besides.
    "status", "reason", "engine",
]


@dataclass(frozen=True)
class StateRow:
    """What ``course_grade_state`` remembers about one graded submission."""

    assignment: str
    student: str
    submission_sha256: str
    source_sha256: str
    engine: str
    status: str
    reason: str
    score: float
    max_score: float
    cells: str  # JSON list of {"grade_id", "status", "points", "max_points"}


def db_url(course_dir: Path) -> str:
    return f"sqlite:///{(course_dir / 'gradebook.db').resolve()}"


def open_gradebook(course_dir: Path):
    """nbgrader's ``Gradebook`` of the course, with the grader's two tables added."""
    from nbgrader.api import Gradebook

    _private_file(course_dir / "gradebook.db")
    _create_database(db_url(course_dir))
    gb = Gradebook(db_url(course_dir))
    gb.db.execute(text(
        f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ("
        " assignment TEXT NOT NULL, student TEXT NOT NULL,"
        " submission_sha256 TEXT NOT NULL, source_sha256 TEXT NOT NULL, engine TEXT NOT NULL,"
        " status TEXT NOT NULL, reason TEXT NOT NULL, score REAL NOT NULL, max_score REAL NOT NULL,"
        " cells TEXT NOT NULL, PRIMARY KEY (assignment, student))"))
    gb.db.execute(text(
        f"CREATE TABLE IF NOT EXISTS {SOURCES_TABLE} ("
        " assignment TEXT PRIMARY KEY, source_sha256 TEXT NOT NULL)"))
    gb.db.commit()
    return gb


def _private_file(path: Path) -> None:
    """The gradebook holds every student's grades and the hidden tests (its
    ``source_cell`` table): readable and writable by the instructor's user only (mode 600,
    created so; an existing one is tightened, along with SQLite's side files)."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for candidate in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            os.chmod(candidate, 0o600)
        except FileNotFoundError:
            pass


def _create_database(url: str) -> None:
    """Create an empty gradebook as ``Gradebook()`` does, without its ``alembic`` subprocess.

    nbgrader stamps a new database with the head revision of its migrations by running the
    ``alembic`` command (seconds, and only found on ``PATH`` in an activated environment);
    the same revision is read here from nbgrader's migration scripts in-process.
    """
    import nbgrader
    from alembic.script import ScriptDirectory
    from nbgrader.api import Base
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        if inspect(engine).get_table_names():
            return
        head = ScriptDirectory(os.path.join(os.path.dirname(nbgrader.__file__), "alembic")).get_current_head()
        with engine.begin() as connection:
            Base.metadata.create_all(bind=connection)
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": head})
    finally:
        engine.dispose()


def load_nbgrader_config(course_dir: Path):
    """The course's ``nbgrader_config.py`` as a traitlets ``Config`` (empty if absent)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    path = course_dir / "nbgrader_config.py"
    if not path.is_file():
        return Config()
    return PyFileConfigLoader(path.name, path=str(course_dir)).load_config()


def sync_assignment(gb, course_dir: Path, assignment: str, source_sha256: str) -> None:
    """Record the assignment's notebook and cells in the gradebook the way nbgrader does.

    Runs nbgrader's own ``GenerateAssignment`` converter (which saves the grade, solution
    and source cells) with the release folder redirected to a scratch directory, so the
    committed ``exercises/`` is never rewritten.  Skipped when the source notebook has not
    changed since the last sync.
    """
    row = gb.db.execute(text(f"SELECT source_sha256 FROM {SOURCES_TABLE} WHERE assignment = :a"),
                        {"a": assignment}).fetchone()
    if row is not None and row[0] == source_sha256:
        return
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    config = load_nbgrader_config(course_dir)
    with tempfile.TemporaryDirectory(prefix="course-grade-release-") as scratch:
        config.CourseDirectory.root = str(course_dir.resolve())
        config.CourseDirectory.release_directory = scratch
        config.CourseDirectory.db_url = db_url(course_dir)
        config.GenerateAssignment.force = True
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = assignment
        converter = GenerateAssignment(coursedir=coursedir, config=config)
        converter.log.setLevel(logging.WARNING)
        converter.start()
    gb.db.execute(text(f"INSERT OR REPLACE INTO {SOURCES_TABLE} VALUES (:a, :h)"),
                  {"a": assignment, "h": source_sha256})
    gb.db.commit()


def find_state(gb, assignment: str, student: str) -> StateRow | None:
    row = gb.db.execute(text(f"SELECT * FROM {STATE_TABLE} WHERE assignment = :a AND student = :s"),
                        {"a": assignment, "s": student}).mappings().fetchone()
    return None if row is None else StateRow(**row)


def all_states(gb) -> dict[tuple[str, str], StateRow]:
    rows = gb.db.execute(text(f"SELECT * FROM {STATE_TABLE}")).mappings().fetchall()
    return {(r["assignment"], r["student"]): StateRow(**r) for r in rows}


def record(gb, state: StateRow, points: dict[str, float], answers: dict[str, str],
           timestamp=None) -> None:
    """Write one graded submission in a single transaction.

    ``points`` maps each grade cell (``grade_id``) to its auto score; ``answers`` maps each
    solution cell to the submitted source (a missing cell counts as unanswered).
    """
    from nbgrader import api

    db = gb.db
    try:
        student = db.get(api.Student, state.student)
        if student is None:
            student = api.Student(id=state.student)
            db.add(student)
        assignment = gb.find_assignment(state.assignment)
        try:
            submission = gb.find_submission(state.assignment, state.student)
        except api.MissingEntry:
            # As Gradebook.add_submission, without its intermediate commit.
            with db.no_autoflush:
                submission = api.SubmittedAssignment(assignment=assignment, student=student)
                for notebook in assignment.notebooks:
                    nb = api.SubmittedNotebook(notebook=notebook, assignment=submission)
                    rows = [nb]
                    for cell in notebook.grade_cells:
                        rows.append(api.Grade(cell_id=cell.id, notebook=nb))
                    for cell in notebook.solution_cells:
                        rows.append(api.Comment(cell_id=cell.id, notebook=nb))
                    for cell in notebook.task_cells:
                        rows.append(api.Comment(cell_id=cell.id, notebook=nb))
                        rows.append(api.Grade(cell_id=cell.id, notebook=nb))
                    db.add_all(rows)
                db.add(submission)
            db.flush()
        if timestamp is not None:
            submission.timestamp = timestamp
        for nb in submission.notebooks:
            nb.late_submission_penalty = None
            stubs = {cell.name: cell.source for cell in nb.notebook.source_cells}
            for grade in nb.grades:
                if grade.cell.name in points:
                    grade.auto_score = float(points[grade.cell.name])
                elif grade.cell.cell_type == "code":
                    grade.auto_score = 0.0  # a test cell the engine did not report scores nothing
                # nbgrader's rule (SaveAutoGrades): a grade a human touched needs review.
                grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
            for comment in nb.comments:
                name = comment.cell.name
                unanswered = name not in answers or answers[name] == stubs.get(name)
                comment.auto_comment = "No response." if unanswered and name in stubs else None
        db.execute(text(f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES "
                        "(:assignment, :student, :submission_sha256, :source_sha256, :engine,"
                        " :status, :reason, :score, :max_score, :cells)"), state.__dict__)
        db.commit()
    except BaseException:
        db.rollback()
        raise


def grades_rows(gb) -> list[dict[str, str]]:
    """One row per student x assignment, as ``nbgrader export`` plus status, reason, engine."""
    from nbgrader.api import MissingEntry

    states = all_states(gb)
    rows = []
    for assignment in gb.assignments:
        for student in gb.students:
            row = {
                "assignment": assignment.name, "duedate": assignment.duedate,
                "student_id": student.id, "last_name": student.last_name,
                "first_name": student.first_name, "email": student.email,
                "max_score": assignment.max_score,
            }
            try:
                submission = gb.find_submission(assignment.name, student.id)
            except MissingEntry:
                row.update(timestamp="", raw_score=0.0, late_submission_penalty=0.0, score=0.0,
                           status="missing", reason="no submission", engine="")
            else:
                penalty = submission.late_submission_penalty or 0.0
                state = states.get((assignment.name, student.id))
                row.update(timestamp=submission.timestamp, raw_score=submission.score,
                           late_submission_penalty=penalty,
                           score=max(0.0, submission.score - penalty),
                           status=state.status if state else "graded elsewhere",
                           reason=state.reason if state else "",
                           engine=state.engine if state else "")
            rows.append({key: "" if row[key] is None else str(row[key]) for key in CSV_COLUMNS})
    rows.sort(key=lambda r: (r["assignment"], r["student_id"]))
    return rows


def export_csv(gb, path: Path) -> int:
    """Write ``grades.csv`` (sorted by assignment, then student); returns the row count."""
    rows = grades_rows(gb)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(buffer.getvalue(), encoding="utf-8")
    tmp.replace(path)
    return len(rows)


def cells_json(cells) -> str:
    return json.dumps([{"grade_id": c.grade_id, "status": c.status, "points": c.points,
                        "max_points": c.max_points} for c in cells], sort_keys=True)
