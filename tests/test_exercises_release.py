"""The committed release ``exercises/`` is exactly nbgrader's output and gives nothing away.

- Regenerating every assignment from ``solutions/`` into a temporary copy of the course
  gives the committed notebooks, cell by cell (type, id, source, nbgrader metadata with
  the checksums, no outputs).
- No line of a solution block or of a hidden-test block appears anywhere in the release
  (lines that the source also shows publicly, such as ``import numpy as np``, excepted),
  and no marker is left.
- The sources are well formed for nbgrader: unique grade ids, test cells locked and
  worth points, answer cells unlocked, the python3 kernel, no stored outputs.
"""
import re
from pathlib import Path

import nbformat
import pytest

import grading_harness as harness

ASSIGNMENTS = harness.ASSIGNMENTS
BLOCKS = (("### BEGIN SOLUTION", "### END SOLUTION"),
          ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))
MARKER = re.compile(r"###\s*(BEGIN|END)\s+(SOLUTION|HIDDEN TESTS)")


def read(path):
    return nbformat.read(path, as_version=4)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    course = harness.make_course(tmp_path_factory.mktemp("release"))
    return dict(zip(ASSIGNMENTS, harness.generate(course, ASSIGNMENTS)))


def test_exercises_folder_holds_only_the_notebooks():
    found = sorted(p.relative_to(harness.ROOT / "exercises").as_posix()
                   for p in (harness.ROOT / "exercises").rglob("*") if p.is_file())
    assert found == sorted(f"{a}/{a}.ipynb" for a in ASSIGNMENTS)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_what_nbgrader_generates(regenerated, assignment):
    committed = read(harness.release_path(assignment))
    fresh = read(regenerated[assignment])
    assert len(committed.cells) == len(fresh.cells), "cell count differs: regenerate exercises/"
    for i, (mine, theirs) in enumerate(zip(committed.cells, fresh.cells)):
        where = f"{assignment} cell {i} ({harness.nbgrader_meta(theirs).get('grade_id')})"
        assert mine.cell_type == theirs.cell_type, where
        assert mine.get("id") == theirs.get("id"), where
        assert mine.source == theirs.source, f"{where}: source differs, regenerate exercises/"
        assert harness.nbgrader_meta(mine) == harness.nbgrader_meta(theirs), where
        assert mine.get("outputs", []) == theirs.get("outputs", []) == [], where
    assert committed.metadata.get("kernelspec") == fresh.metadata.get("kernelspec")


def secret_lines(source_nb):
    """Lines inside solution and hidden-test blocks that the source never shows outside
    them (so ``import numpy as np`` in a hidden test, also imported publicly, is not one)."""
    secret, public = set(), set()
    for cell in source_nb.cells:
        inside = None
        for line in cell.source.splitlines():
            text = line.strip()
            begin = [end for start, end in BLOCKS if text == start]
            if begin:
                inside = begin[0]
                continue
            if inside and text == inside:
                inside = None
                continue
            if text:
                (secret if inside else public).add(text)
    return secret - public


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_hides_solutions_and_hidden_tests(assignment):
    source = read(harness.source_path(assignment))
    release = read(harness.release_path(assignment))
    released = {line.strip() for cell in release.cells for line in cell.source.splitlines()}
    secrets = secret_lines(source)
    assert len(secrets) > 20, "the source should have solutions and hidden tests"
    leaked = sorted(secrets & released)
    assert not leaked, f"{assignment}: solution or hidden-test lines in the release: {leaked[:5]}"
    text = "\n".join(cell.source for cell in release.cells)
    assert not MARKER.search(text), f"{assignment}: a solution or hidden-test marker is left"
    for cell in release.cells:
        if harness.nbgrader_meta(cell).get("solution"):
            assert "raise NotImplementedError()" in cell.source


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_is_well_formed(assignment):
    nb = read(harness.source_path(assignment))
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [harness.nbgrader_meta(c).get("grade_id") for c in nb.cells]
    assert None not in ids and len(ids) == len(set(ids)), "every cell needs a unique grade_id"
    tests = answers = 0
    for cell in nb.cells:
        meta = harness.nbgrader_meta(cell)
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, meta["grade_id"]
        if meta.get("grade"):
            tests += 1
            assert meta["locked"] and not meta["solution"] and meta["points"] > 0
            assert "### BEGIN HIDDEN TESTS" in cell.source, f"{meta['grade_id']} has no hidden part"
        elif meta.get("solution"):
            answers += 1
            assert not meta["locked"]
            assert "### BEGIN SOLUTION" in cell.source
        else:
            assert meta["locked"], f"{meta['grade_id']} should be read-only"
    assert tests >= 4 and answers >= 1
    # Links to the book point at chapters that exist.
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for target in re.findall(r"\]\((\.\./\.\./book/[^)]+)\)", cell.source):
                assert (harness.source_path(assignment).parent / target).resolve().relative_to(
                    harness.ROOT)
                assert (harness.ROOT / "book" / Path(target).name).exists(), target


def test_example_submissions_follow_the_release():
    """examples/submissions are students' files of the current release: every cell but
    the answers is the released one (regenerate them when the release changes); one is
    deliberately broken (not JSON), for the graders' error path."""
    broken = []
    paths = sorted((harness.ROOT / "examples" / "submissions").glob("*/*/*.ipynb"))
    assert len(paths) >= 10
    for path in paths:
        assignment = path.parent.name
        assert path.stem == assignment and assignment in ASSIGNMENTS, path
        try:
            submission = read(path)
        except Exception:  # noqa: BLE001  (any parse error: the broken example)
            broken.append(path)
            continue
        release = read(harness.release_path(assignment))
        assert [c.get("id") for c in submission.cells] == [c.get("id") for c in release.cells]
        for mine, theirs in zip(submission.cells, release.cells):
            if not harness.nbgrader_meta(theirs).get("solution"):
                assert mine.source == theirs.source, f"{path}: {theirs.get('id')} is stale"
                assert harness.nbgrader_meta(mine) == harness.nbgrader_meta(theirs), path
    assert len(broken) == 1, broken
