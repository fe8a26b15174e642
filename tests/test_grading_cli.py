"""The course grader's orchestration: course-grade autograde / export.

Small nbgrader assignments are generated in tmp_path.  Most tests use ``StubWorker``, a
stand-in for ``engine.GradingWorker`` that runs the notebook cells in-process (fast, and
available before the engine is); the tests marked ``real_engine`` run the sandboxed engine.
"""
from __future__ import annotations

import csv
import io
import json
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader import batch, cli, collect, feedback, gradebook

# --------------------------------------------------------------------------------------
# A small course: two assignments of one function each, with visible and hidden tests.
# --------------------------------------------------------------------------------------

# Failure messages are feedback; the hidden source lines (and their SECRET markers) are not.
HIDDEN = {
    "alpha": ['assert add(-7, 7) == 0, "opposites add to zero"  # ALPHA_SECRET_ONE',
              "assert add(0.5, 0.25) == 0.75  # ALPHA_SECRET_TWO"],
    "beta": ['assert mul(-3, 5) == -15, "signs multiply"  # BETA_SECRET_ONE',
             "assert mul(0, 9) == 0  # BETA_SECRET_TWO"],
}
FUNCTION = {"alpha": ("add", "a + b", "a - b"), "beta": ("mul", "a * b", "a + b")}


def _meta(grade_id, *, solution=False, grade=False, points=0, locked=False):
    meta = {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": locked, "schema_version": 3}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def source_notebook(name: str) -> nbformat.NotebookNode:
    func, right, _ = FUNCTION[name]
    hidden = "\n".join(HIDDEN[name])
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [
        new_markdown_cell(f"# {name}: write `{func}`", metadata=_meta("intro", locked=True)),
        new_code_cell(f"def {func}(a, b):\n    ### BEGIN SOLUTION\n    return {right}\n    ### END SOLUTION",
                      metadata=_meta(f"answer-{func}", solution=True)),
        new_code_cell(f"assert {func}(1, 2) == {eval(right, {'a': 1, 'b': 2})}",
                      metadata=_meta(f"test-{func}-visible", grade=True, points=1, locked=True)),
        new_code_cell(f"assert {func}(2, 2) == {eval(right, {'a': 2, 'b': 2})}\n"
                      f"### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS",
                      metadata=_meta(f"test-{func}-hidden", grade=True, points=2, locked=True)),
    ]
    return nb


def make_course(root: Path, names=("alpha", "beta")) -> Path:
    root.mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CourseDirectory.root = "."\n'
        'c.CourseDirectory.source_directory = "solutions"\nc.CourseDirectory.release_directory = "exercises"\n')
    for name in names:
        folder = root / "solutions" / name
        folder.mkdir(parents=True)
        nbformat.write(source_notebook(name), folder / f"{name}.ipynb")
    return root


def student_notebook(name: str, kind: str) -> str:
    """A submission: 'right', 'wrong', 'blank' (the release stub), 'crash' or 'broken' JSON."""
    if kind == "broken":
        return '{"cells": [ this is not json'
    func, right, wrong = FUNCTION[name]
    nb = source_notebook(name)
    body = {"right": f"return {right}", "wrong": f"return {wrong}",
            "blank": "# YOUR CODE HERE\n    raise NotImplementedError()",  # nbgrader's release stub
            "crash": "return undefined_name"}[kind]
    nb.cells[1].source = f"def {func}(a, b):\n    {body}"
    nb.cells[3].source = nb.cells[3].source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
    return nbformat.writes(nb)


def submit(course: Path, student: str, name: str, kind: str) -> Path:
    path = course / "submitted" / student / name / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(student_notebook(name, kind))
    return path


EXPECTED = {"right": 3.0, "wrong": 0.0, "blank": 0.0, "crash": 0.0, "broken": 0.0}
KINDS = ["right", "wrong", "blank", "crash", "broken", "right"]


def populate(course: Path) -> dict[tuple[str, str], float]:
    """Six students x two assignments; returns the expected scores."""
    expected = {}
    for i, kind in enumerate(KINDS):
        for name in ("alpha", "beta"):
            student = f"s{i:02d}"
            submit(course, student, name, kind)
            expected[(name, student)] = EXPECTED[kind]
    return expected


# --------------------------------------------------------------------------------------
# The stand-in engine (same interface as engine.GradingWorker / NotebookResult).
# --------------------------------------------------------------------------------------

@dataclass
class StubCell:
    grade_id: str
    max_points: float
    points: float
    status: str
    message: str


@dataclass
class StubResult:
    assignment: str
    student: str
    cells: list
    score: float
    max_score: float
    problems: list
    feedback_notebook: dict
    duration_s: float = 0.0


@dataclass
class StubLimits:
    cell_timeout: float = 60




class StubWorker:
    """Runs answer cells, then test cells (with hidden tests) in one namespace."""

    def __init__(self, calls_file: str | None = None, delay: float = 0.0):
        self.calls_file = calls_file
        self.delay = delay

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def grade(self, source_nb_path, submission_path, *, assignment, student, limits=None):
        if self.calls_file:
            with open(self.calls_file, "a") as fh:
                fh.write(f"{assignment}/{student}\n")
        time.sleep(self.delay)
        source = json.loads(Path(source_nb_path).read_text())
        tests = [c for c in source["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
        try:
            submitted = json.loads(Path(submission_path).read_text())
        except ValueError as error:
            cells = [StubCell(c["metadata"]["nbgrader"]["grade_id"], c["metadata"]["nbgrader"]["points"], 0.0,
                              "not_run", "") for c in tests]
            return StubResult(assignment, student, cells, 0.0, float(sum(c.max_points for c in cells)),
                              [f"invalid notebook: {error}"], {})
        namespace: dict = {}
        answer = next(c for c in submitted["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
        exec("".join(answer["source"]), namespace)
        cells = []
        for test in tests:
            meta = test["metadata"]["nbgrader"]
            try:
                exec("".join(test["source"]), namespace)
                cells.append(StubCell(meta["grade_id"], meta["points"], float(meta["points"]), "passed", ""))
            except AssertionError as error:
                cells.append(StubCell(meta["grade_id"], meta["points"], 0.0, "failed", f"AssertionError: {error}"))
            except Exception as error:
                cells.append(StubCell(meta["grade_id"], meta["points"], 0.0, "error",
                                      f"{type(error).__name__}: {error}"))
        fb = json.loads(json.dumps(submitted))
        return StubResult(assignment, student, cells, sum(c.points for c in cells),
                          float(sum(c.max_points for c in cells)), [], fb)


class StubFactory:
    """Picklable factory (worker processes are spawned and import this module)."""

    def __init__(self, calls_file=None, delay=0.0):
        self.calls_file = calls_file
        self.delay = delay

    def __call__(self):
        return StubWorker(self.calls_file, self.delay)


def run(course: Path, *, workers=1, calls=None, delay=0.0, **kwargs) -> batch.BatchReport:
    options = batch.Options(course_dir=course, workers=workers, limits=StubLimits(), progress=False, **kwargs)
    return batch.autograde(options, worker_factory=StubFactory(str(calls) if calls else None, delay))


def scores(course: Path) -> list[tuple]:
    """The gradebook's grades, in a canonical order (row ids are random UUIDs)."""
    with sqlite3.connect(course / "gradebook.db") as db:
        return sorted(db.execute(
            "SELECT a.name, sa.student_id, gc.name, g.auto_score, g.manual_score, g.needs_manual_grade "
            "FROM grade g JOIN submitted_notebook sn ON g.notebook_id = sn.id "
            "JOIN submitted_assignment sa ON sn.assignment_id = sa.id "
            "JOIN assignment a ON sa.assignment_id = a.id JOIN base_cell gc ON g.cell_id = gc.id").fetchall())


def csv_scores(course: Path) -> dict[tuple[str, str], float]:
    rows = list(csv.DictReader(io.StringIO((course / "grades.csv").read_text())))
    return {(r["assignment"], r["student_id"]): float(r["score"]) for r in rows}


@pytest.fixture
def course(tmp_path):
    return make_course(tmp_path / "course")


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------

def test_serial_run_scores_every_submission_and_writes_outputs(course, tmp_path):
    expected = populate(course)
    report = run(course, calls=tmp_path / "calls.txt")
    assert csv_scores(course) == expected
    assert sum(report.graded.values()) == 12 and not report.grader_errors
    for (name, student) in expected:
        assert (course / "autograded" / student / name / f"{name}.ipynb").is_file()
        assert (course / "feedback" / student / name / f"{name}.html").is_file()
    # the gradebook per cell: right answers full points, the rest zero
    by_cell = {(a, s, c): auto for a, s, c, auto, _, _ in scores(course)}
    assert by_cell[("alpha", "s00", "test-add-hidden")] == 2.0
    assert by_cell[("alpha", "s01", "test-add-hidden")] == 0.0
    assert by_cell[("beta", "s01", "test-mul-visible")] == 0.0


def test_grades_csv_has_nbgrader_columns_status_and_reason(course):
    populate(course)
    run(course)
    text = (course / "grades.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == gradebook.CSV_COLUMNS
    assert [(r["assignment"], r["student_id"]) for r in rows] == sorted((r["assignment"], r["student_id"]) for r in rows)
    row = {(r["assignment"], r["student_id"]): r for r in rows}
    assert row[("alpha", "s00")]["status"] == "graded" and row[("alpha", "s00")]["reason"] == "all tests passed"
    assert row[("alpha", "s00")]["max_score"] == "3.0"
    assert row[("alpha", "s01")]["reason"] == "2 of 2 tests failed: test-add-visible, test-add-hidden"
    assert row[("alpha", "s04")]["status"] == "invalid" and "invalid notebook" in row[("alpha", "s04")]["reason"]


def test_rerun_grades_nothing_again_and_regrades_changed_content(course, tmp_path):
    populate(course)
    calls = tmp_path / "calls.txt"
    run(course, calls=calls)
    assert len(calls.read_text().split()) == 12
    report = run(course, calls=calls)
    assert len(calls.read_text().split()) == 12 and sum(report.skipped.values()) == 12
    submit(course, "s01", "alpha", "right")  # a resubmission: new content
    report = run(course, calls=calls)
    assert calls.read_text().split()[12:] == ["alpha/s01"]
    assert csv_scores(course)[("alpha", "s01")] == 3.0
    run(course, calls=calls, force=True)
    assert len(calls.read_text().split()) == 25


def test_interrupted_run_keeps_what_was_committed(course, tmp_path):
    expected = populate(course)
    calls = tmp_path / "calls.txt"
    seen = []

    def stop_after_five(task):
        seen.append(task)
        if len(seen) == 5:
            raise KeyboardInterrupt

    options = batch.Options(course_dir=course, limits=StubLimits(), progress=False)
    with pytest.raises(KeyboardInterrupt):
        batch.autograde(options, worker_factory=StubFactory(str(calls)), after_record=stop_after_five)
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("SELECT count(*) FROM course_grade_state").fetchone()[0] == 5
    report = run(course, calls=calls)
    assert len(calls.read_text().split()) == 12  # 5 before the interruption, 7 after
    assert sum(report.skipped.values()) == 5 and sum(report.graded.values()) == 7
    assert csv_scores(course) == expected


def test_manual_grades_and_comments_survive_a_regrade(course):
    populate(course)
    run(course)
    from nbgrader.api import Gradebook

    with Gradebook(gradebook.db_url(course)) as gb:
        grade = gb.find_grade("test-add-hidden", "alpha", "alpha", "s01")
        grade.manual_score = 1.5
        grade.extra_credit = 0.5
        comment = gb.find_comment("answer-add", "alpha", "alpha", "s01")
        comment.manual_comment = "close: check the sign"
        gb.db.commit()
    run(course, force=True)
    with Gradebook(gradebook.db_url(course)) as gb:
        grade = gb.find_grade("test-add-hidden", "alpha", "alpha", "s01")
        assert (grade.manual_score, grade.extra_credit, grade.auto_score) == (1.5, 0.5, 0.0)
        assert grade.needs_manual_grade  # nbgrader's rule: a human touched it
        assert gb.find_comment("answer-add", "alpha", "alpha", "s01").manual_comment == "close: check the sign"
        assert gb.find_comment("answer-add", "alpha", "alpha", "s02").auto_comment == "No response."
        assert gb.find_comment("answer-add", "alpha", "alpha", "s00").auto_comment is None
    assert csv_scores(course)[("alpha", "s01")] == 2.0  # nbgrader: the manual score wins, plus extra credit


def test_feedback_never_shows_hidden_tests(course):
    populate(course)
    run(course)
    hidden = [line for lines in HIDDEN.values() for line in lines]
    pages = list((course / "feedback").rglob("*.html")) + list((course / "autograded").rglob("*.ipynb"))
    assert len(pages) == 24
    for page in pages:
        text = page.read_text()
        for line in hidden:
            assert line not in text and line.split("#")[0].strip() not in text
            assert "SECRET" not in text, page
    alpha = (course / "feedback" / "s01" / "alpha" / "alpha.html").read_text()
    assert "test-add-hidden" in alpha and "0 / 2" in alpha and "AssertionError" in alpha


def test_feedback_withholds_outputs_that_echo_hidden_lines():
    source = source_notebook("alpha")
    leaked = json.loads(json.dumps(source))  # an engine that forgot to clear the hidden tests
    leaked["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": HIDDEN["alpha"][0]}]
    leaked["cells"][1]["execution_count"] = 1
    result = StubResult("alpha", "x", [StubCell("test-add-hidden", 2, 0.0, "failed", HIDDEN["alpha"][1])],
                        0.0, 3.0, [], leaked)
    nb, page, notes = feedback.build(result, source, None)
    assert "SECRET" not in page and "SECRET" not in json.dumps(nb)
    assert "output withheld" in page


def test_feedback_shows_hint_strings_of_hidden_tests_but_not_their_code():
    source = json.loads(json.dumps(source_notebook("alpha")))
    cell = source["cells"][3]
    cell["source"] = cell["source"].replace(
        "### END HIDDEN TESTS",
        "assert add(1e9, 1) == 1e9 + 1, (  # ALPHA_SECRET_THREE\n"
        '    "large and small numbers: add them exactly")\n### END HIDDEN TESTS')
    message = "AssertionError: large and small numbers: add them exactly"
    result = StubResult("alpha", "x", [StubCell("test-add-hidden", 2, 0.0, "failed", message)], 0.0, 3.0, [], {})
    nb, page, notes = feedback.build(result, source, None)
    assert not notes and "large and small numbers: add them exactly" in page
    assert "SECRET" not in page and "assert add(1e9, 1)" not in page


def test_feedback_page_runs_no_student_html():
    source = source_notebook("alpha")
    graded = json.loads(json.dumps(source))
    graded["cells"][1]["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": {
        "text/html": "<script>alert('student')</script>", "text/plain": "<HTML object>"}}]
    graded["cells"].insert(2, {"cell_type": "markdown", "metadata": {}, "id": "written",
                               "source": "My answer <script>alert('markdown')</script>"})
    message = "ValueError: <script>alert('message')</script>"
    result = StubResult("alpha", "x", [StubCell("test-add-hidden", 2, 0.0, "error", message)], 0.0, 3.0,
                        ["<img src=x onerror=alert('problem')>"], graded)
    _, page, _ = feedback.build(result, source, None)
    assert "alert('student')" not in page and "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert('markdown')" in page
    assert "&lt;script&gt;alert" in page  # shown as text


def test_export_writes_the_same_csv_again(course, capsys):
    populate(course)
    run(course)
    first = (course / "grades.csv").read_bytes()
    (course / "grades.csv").unlink()
    assert cli.main(["export", "--course-dir", str(course)]) == 0
    assert (course / "grades.csv").read_bytes() == first
    assert "12 rows written" in capsys.readouterr().out


def _zip(path: Path, entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_zip_intake_reports_every_rejected_entry_and_grades_the_rest(course, tmp_path, capsys, monkeypatch):
    alpha_right = student_notebook("alpha", "right").encode()
    archive = _zip(tmp_path / "lms.zip", {
        "alpha_ann_attempt_2026-01-30-15-00-00_alpha.ipynb": student_notebook("alpha", "wrong").encode(),
        "alpha_ann_attempt_2026-01-31-09-00-00_alpha.ipynb": alpha_right,  # newer: wins
        "alpha_bob_attempt_2026-01-30-15-00-00_alpha.ipynb": student_notebook("alpha", "wrong").encode(),
        "beta_bob_attempt_2026-01-30-15-00-00_beta.ipynb": student_notebook("beta", "right").encode(),
        "../../etc/evil_attempt_2026-01-30-15-00-00_alpha.ipynb": alpha_right,
        "alpha_cat_attempt_2026-01-30-15-00-00_notes.txt": b"hello",
        "alpha_dan_attempt_2026-01-30-15-00-00_alpha.ipynb": b" " * (8 * 2**20),  # bomb: 8 MB of spaces
        "alpha_eve_attempt_2026-01-30-15-00-00_gamma.ipynb": alpha_right,
    })
    from grader import parallel

    monkeypatch.setattr(parallel, "default_worker_factory", StubFactory())
    assert cli.main(["autograde", "--course-dir", str(course), "--zip", str(archive), "--workers", "1",
                     "--no-progress"]) == 0
    printed = capsys.readouterr().out
    # each refused entry is printed as "not graded: NAME: REASON"
    reasons = dict(line.removeprefix("not graded: ").split(": ", 1) for line in printed.splitlines()
                   if line.startswith("not graded: "))
    assert "path traversal" in reasons["../../etc/evil_attempt_2026-01-30-15-00-00_alpha.ipynb"]
    assert "not a notebook" in reasons["alpha_cat_attempt_2026-01-30-15-00-00_notes.txt"]
    assert "zip bomb" in reasons["alpha_dan_attempt_2026-01-30-15-00-00_alpha.ipynb"]
    assert "gamma" in reasons["alpha_eve_attempt_2026-01-30-15-00-00_gamma.ipynb"]
    assert "replaced by the newer" in reasons["alpha_ann_attempt_2026-01-30-15-00-00_alpha.ipynb"]
    assert csv_scores(course) == {("alpha", "ann"): 3.0, ("alpha", "bob"): 0.0,
                                  ("beta", "ann"): 0.0, ("beta", "bob"): 3.0}
    assert (course / "submitted" / "ann" / "alpha" / "timestamp.txt").read_text() == "2026-01-31 09:00:00"
    assert not (tmp_path / "etc").exists() and not (course.parent / "etc").exists()
    rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(io.StringIO((course / "grades.csv").read_text()))}
    assert rows[("beta", "ann")]["status"] == "missing"
    assert rows[("alpha", "ann")]["timestamp"] == "2026-01-31 09:00:00"


def test_zip_caps_on_sizes_count_links_and_absolute_names(tmp_path):
    import numpy as np

    noise = np.random.default_rng(0).integers(0, 256, size=5 * 2**20, dtype=np.uint8).tobytes()
    archive = _zip(tmp_path / "a.zip", {"s1/alpha/alpha.ipynb": noise, "s2/alpha/alpha.ipynb": b"{}"})
    limits = collect.ZipLimits(max_file_bytes=2**20, max_total_bytes=10 * 2**20)
    intake = collect.collect_zip(archive, tmp_path / "submitted", ["alpha"], limits=limits)
    assert [s.student for s in intake.submissions] == ["s2"]
    assert "larger than" in intake.rejected[0].reason
    # the running total is counted on the bytes actually read, not on the headers
    parts = {f"s{i}/alpha/alpha.ipynb": noise[i * 2**20: (i + 1) * 2**20 + 2**19] for i in range(3)}
    archive = _zip(tmp_path / "b.zip", parts)
    limits = collect.ZipLimits(max_file_bytes=2 * 2**20, max_total_bytes=4 * 2**20)
    intake = collect.collect_zip(archive, tmp_path / "sub1", ["alpha"], limits=limits)
    assert [s.student for s in intake.submissions] == ["s0", "s1"]
    assert [r.reason for r in intake.rejected] == ["total uncompressed size above the cap (zip bomb?)"]
    # too many files
    many = _zip(tmp_path / "many.zip", {f"s{i}/alpha/alpha.ipynb": b"{}" for i in range(5)})
    intake = collect.collect_zip(many, tmp_path / "sub2", ["alpha"], limits=collect.ZipLimits(max_files=3))
    assert len(intake.submissions) == 3 and all("more than 3 files" in r.reason for r in intake.rejected)
    # absolute names and symbolic links
    info = zipfile.ZipInfo("s3/alpha/alpha.ipynb")
    info.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(tmp_path / "odd.zip", "w") as z:
        z.writestr("/abs/alpha/alpha.ipynb", b"{}")
        z.writestr(info, "/etc/passwd")
    intake = collect.collect_zip(tmp_path / "odd.zip", tmp_path / "sub3", ["alpha"])
    assert sorted(r.reason for r in intake.rejected) == ["absolute path refused", "symbolic link refused"]
    assert not intake.submissions


def test_summary_table_counts_failures_by_reason(course):
    populate(course)
    report = run(course)
    lines = report.summary.splitlines()
    assert lines[0].split()[:2] == ["assignment", "submissions"]
    alpha = next(line for line in lines if line.startswith("alpha"))
    # six submissions, two right (3/3): mean 1.00; four failures: 3 wrong answers, 1 invalid
    assert alpha.split()[1:5] == ["6", "6", "0", "1.00"]
    assert "4 (wrong answers 3, invalid notebook 1)" in alpha


def test_status_reason_and_summary_buckets_for_limits():
    from grader import report

    def result(statuses, problems):
        cells = [StubCell(f"t{i}", 1, float(st == "passed"), st, "") for i, st in enumerate(statuses)]
        return StubResult("a", "s", cells, sum(c.points for c in cells), len(cells), problems, {})

    cases = [
        (["passed", "passed"], [], ("graded", "all tests passed"), None),
        (["passed", "failed"], [], ("graded", "1 of 2 tests failed: t1"), "wrong answers"),
        (["passed", "timeout"], ["time limit (60 s) hit in cell 4"], ("timeout", "time limit (60 s) hit in cell 4"),
         "cell time limit"),
        (["not_run", "not_run"], ["the file is not a notebook: invalid JSON"],
         ("invalid", "the file is not a notebook: invalid JSON"), "invalid notebook"),
        (["passed", "not_run"], ["the notebook's process stopped in cell 3 (killed): os._exit, a kill or a "
                                 "crash; or the memory limit (3072 MB)"], None, "process stopped"),
        (["passed", "failed"], ["memory limit (3072 MB) hit in cell 5"], None, "memory limit"),
    ]
    for statuses, problems, expected, bucket in cases:
        status, reason = report.status_and_reason(result(statuses, problems))
        if expected is not None:
            assert (status, reason) == expected
        assert report.failure_kind(status, reason, all(s == "passed" for s in statuses)) == bucket


def test_instructor_errors_exit_non_zero_with_a_message(course, tmp_path, capsys):
    assert cli.main(["autograde", "--course-dir", str(tmp_path / "nowhere")]) == cli.EXIT_INSTRUCTOR
    assert "is not a folder" in capsys.readouterr().err
    assert cli.main(["autograde", "gamma", "--course-dir", str(course)]) == cli.EXIT_INSTRUCTOR
    assert "unknown assignment 'gamma'" in capsys.readouterr().err
    (tmp_path / "bad.zip").write_bytes(b"not a zip at all")
    assert cli.main(["autograde", "--course-dir", str(course), "--zip", str(tmp_path / "bad.zip")]) \
        == cli.EXIT_INSTRUCTOR
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["autograde", "--workers", "0"])
    assert exit_info.value.code == 2


def test_help_and_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "grader", "autograde", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--scheduler" in done.stdout and "--zip" in done.stdout


def _state_rows(course: Path) -> int:
    try:
        with sqlite3.connect(course / "gradebook.db", timeout=5) as db:
            return db.execute("SELECT count(*) FROM course_grade_state").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_run_killed_with_sigkill_loses_nothing_and_resumes(course, tmp_path):
    """A power cut mid-batch: the re-run grades exactly what had not been committed."""
    expected = populate(course)
    calls = tmp_path / "calls.txt"
    script = (f"import sys; from pathlib import Path; import test_grading_cli as t; "
              f"t.run(Path({str(course)!r}), calls=Path({str(calls)!r}), delay=0.4)")
    child = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parent,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _state_rows(course) < 3 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    committed = _state_rows(course)
    assert 3 <= committed < 12
    before = len(calls.read_text().split())
    report = run(course, calls=calls)
    regraded = calls.read_text().split()[before:]
    assert len(regraded) == 12 - committed and sum(report.skipped.values()) == committed
    assert len(set(regraded)) == len(regraded)
    assert csv_scores(course) == expected
    assert len(list((course / "feedback").rglob("*.html"))) == 12


# --------------------------------------------------------------------------------------
# With the real sandboxed engine: the command line, worker processes and Dask.
# --------------------------------------------------------------------------------------

def test_real_engine_serial_parallel_and_dask_agree(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("grader.engine")
    courses = [make_course(tmp_path / name) for name in ("serial", "pool", "dask")]
    for course in courses:
        expected = populate(course)  # includes broken and crashing notebooks
    assert cli.main(["autograde", "--course-dir", str(courses[0]), "--workers", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "alpha       6            6" in out and "invalid notebook 1" in out
    assert cli.main(["autograde", "--course-dir", str(courses[1]), "--workers", "2", "--no-progress"]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        assert cli.main(["autograde", "--course-dir", str(courses[2]), "--scheduler",
                         cluster.scheduler_address, "--no-progress"]) == 0
    assert csv_scores(courses[0]) == expected
    for other in courses[1:]:
        assert scores(other) == scores(courses[0])
        assert (other / "grades.csv").read_bytes() == (courses[0] / "grades.csv").read_bytes()
    hidden = [line for lines in HIDDEN.values() for line in lines]
    for page in (courses[0] / "feedback").rglob("*.html"):
        text = page.read_text()
        assert not any(line in text for line in hidden) and "SECRET" not in text
    # a second run has nothing to do
    assert cli.main(["autograde", "--course-dir", str(courses[0]), "--workers", "2", "--no-progress"]) == 0
    assert "alpha       6            0           6" in capsys.readouterr().out


def test_nbgrader_engine_fallback_scores_and_strips_hidden_tests(tmp_path, capsys):
    """`--engine nbgrader`: plain nbgrader autograde, whose autograded notebook holds the hidden tests."""
    course = make_course(tmp_path / "course", names=("alpha",))
    submit(course, "ann", "alpha", "right")
    submit(course, "bob", "alpha", "wrong")
    assert cli.main(["autograde", "--course-dir", str(course), "--engine", "nbgrader", "--no-progress",
                     "--unsafe-no-isolation"]) == 0
    assert csv_scores(course) == {("alpha", "ann"): 3.0, ("alpha", "bob"): 0.0}
    autograded = (course / "autograded" / "bob" / "alpha" / "alpha.ipynb").read_text()
    assert "ALPHA_SECRET_ONE" in autograded  # nbgrader's own file, for the instructor
    for page in (course / "feedback").rglob("*.html"):
        text = page.read_text()
        assert "SECRET" not in text and '<div class="cell code">' in text  # the full page, not the fallback
