"""``course-grade validate NOTEBOOK``: the visible tests, run as at grading time.

A student's notebook is checked against its release (found from its test cells): the
solution passes every visible test (exit 0); an answer that divides by p fails the visible
scaling and backward tests (exit 1), with the very messages the feedback page shows for
those tests at grading time; a notebook of no known assignment is an error (exit 2).
"""
import io

import nbformat
import pytest

import grading_harness as harness
from grader import cli
from grader.validate import find_release, validate

pytestmark = pytest.mark.slow


def _write(tmp_path, name, nb):
    path = tmp_path / name / "dropout.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    return path


def test_validate_passes_the_solution_and_shows_the_feedback_messages(tmp_path, capsys):
    solution = harness.solution_answers("dropout")
    good = _write(tmp_path, "good", harness.make_submission("dropout", solution))
    case = next(c for c in harness.load_cases("dropout") if c["student"] == "scales-by-one-over-p")
    wrong = _write(tmp_path, "wrong", harness.make_submission("dropout", {**solution, **case["answers"]}))
    assert find_release(good) is None or find_release(good).name == "dropout.ipynb"
    release = harness.release_path("dropout")

    assert cli.main(["validate", str(good), "--release", str(release)]) == 0
    out = capsys.readouterr().out
    assert "5 of 5 test cells pass" in out

    buffer = io.StringIO()
    assert validate(wrong, release, out=buffer) == 1
    printed = buffer.getvalue()
    # the same engine and messages as the feedback of course-grade autograde (visible part)
    from grader.engine import GradingWorker
    with GradingWorker() as worker:
        graded = worker.grade(release, wrong, assignment="dropout", student="you")
    failing = {c.grade_id: c.message for c in graded.cells if c.status != "passed"}
    assert set(failing) == {"test-dropout-scaling", "test-dropout-backward", "test-dropout-edges"}
    for grade_id, message in failing.items():
        assert f"{grade_id} (" in printed
        for line in message.splitlines():
            assert line in printed
    assert "divided by p: p is the DROP probability" in printed


def test_validate_needs_a_release(tmp_path):
    stray = tmp_path / "notes.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), stray)
    buffer = io.StringIO()
    assert validate(stray, out=buffer) == 2
    assert "no release notebook" in buffer.getvalue()
