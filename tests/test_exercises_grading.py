"""Plain ``nbgrader autograde`` scores the exercises as intended.

Every solution gets full marks, the untouched release gets zero, and each known answer of
the catalogue (``tests/grading_cases/<assignment>.py``) loses exactly the test cells it
targets and keeps all the others; delegating answers say why in the cell's output. All
notebooks are graded once (one autograde run per assignment, two at a time), then the
tests read the scores.
"""
import pytest

import grading_harness as harness

pytestmark = pytest.mark.slow

CASES = {assignment: harness.load_cases(assignment) for assignment in harness.ASSIGNMENTS}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = harness.make_course(tmp_path_factory.mktemp("course"))
    return course, harness.grade_with_nbgrader(course, harness.catalogue_submissions())


@pytest.mark.parametrize("assignment", harness.ASSIGNMENTS)
def test_solution_gets_full_marks(graded, assignment):
    _, scores = graded
    assert scores[("solution", assignment)] == harness.grade_cells(assignment)


@pytest.mark.parametrize("assignment", harness.ASSIGNMENTS)
def test_release_gets_zero(graded, assignment):
    _, scores = graded
    cells = harness.grade_cells(assignment)
    assert scores[("release", assignment)] == {grade_id: 0.0 for grade_id in cells}


@pytest.mark.parametrize("assignment, case", [
    pytest.param(assignment, case, id=f"{assignment}-{case['student']}")
    for assignment in harness.ASSIGNMENTS for case in CASES[assignment]])
def test_known_answer_loses_exactly_its_cells(graded, assignment, case):
    course, scores = graded
    cells = harness.grade_cells(assignment)
    assert case["fails"] <= set(cells), f"unknown cells in {case['student']}: {case['fails']}"
    expected = {grade_id: 0.0 if grade_id in case["fails"] else points
                for grade_id, points in cells.items()}
    assert scores[(case["student"], assignment)] == expected, case["why"]
    if case.get("message"):
        outputs = harness.autograded_outputs(course, case["student"], assignment)
        for grade_id, text in harness.expected_messages(case).items():
            assert text in outputs[grade_id], (grade_id, outputs[grade_id][-500:])
            if harness.is_delegation(case):
                assert "this part must be your own code" in outputs[grade_id]


def test_catalogue_covers_every_test_cell():
    """Each test cell is targeted by at least one known mistake."""
    for assignment in harness.ASSIGNMENTS:
        targeted = set().union(*(case["fails"] for case in CASES[assignment]))
        assert targeted == set(harness.grade_cells(assignment)), assignment
