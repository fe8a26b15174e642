"""``course-grade``'s engine scores the exercises exactly as plain nbgrader does.

The same submissions as ``test_exercises_grading.py`` (every solution, every blank release,
the whole catalogue of ``tests/grading_cases/``), graded by the sandboxed course grader
with one warm worker: every solution gets full marks, the release zero, each known answer
loses exactly the cells it targets (correct answers written differently, with partials,
callable instances, their own exception classes, namedtuple caches or helpers in added
cells, lose nothing), and the failing cells' messages name the mistake and never an
internal name of the grader.
"""
import pytest

import grading_harness as harness

pytestmark = pytest.mark.slow

CASES = {assignment: harness.load_cases(assignment) for assignment in harness.ASSIGNMENTS}
INTERNAL = ("StudentError", "assert_own_work", "Remote", "handle", "proxy",
            "HandleTuple", "__grader__")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = harness.make_course(tmp_path_factory.mktemp("course"))
    return harness.grade_with_course_grader(course, harness.catalogue_submissions(),
                                            messages=True)


def _scores(graded, key):
    return {grade_id: points for grade_id, (points, _) in graded[key].items()}


@pytest.mark.parametrize("assignment", harness.ASSIGNMENTS)
def test_solution_gets_full_marks(graded, assignment):
    assert _scores(graded, ("solution", assignment)) == harness.grade_cells(assignment)


@pytest.mark.parametrize("assignment", harness.ASSIGNMENTS)
def test_release_gets_zero(graded, assignment):
    cells = harness.grade_cells(assignment)
    assert _scores(graded, ("release", assignment)) == {grade_id: 0.0 for grade_id in cells}


@pytest.mark.parametrize("assignment, case", [
    pytest.param(assignment, case, id=f"{assignment}-{case['student']}")
    for assignment in harness.ASSIGNMENTS for case in CASES[assignment]])
def test_known_answer_loses_exactly_its_cells(graded, assignment, case):
    cells = harness.grade_cells(assignment)
    fails = case["fails_course"]
    expected = {grade_id: 0.0 if grade_id in fails else points
                for grade_id, points in cells.items()}
    key = (case["student"], assignment)
    assert _scores(graded, key) == expected, (case["why"], {
        g: m for g, (_, m) in graded[key].items() if m})
    wanted = harness.expected_messages(case, course=True)
    for grade_id in fails:
        message = graded[key][grade_id][1]
        assert message.strip(), f"{grade_id} failed without a message"
        if grade_id in wanted:
            assert wanted[grade_id] in message, (grade_id, message[-500:])
        for word in INTERNAL:
            assert word not in message, (grade_id, word, message[-500:])
