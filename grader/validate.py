"""``course-grade validate NOTEBOOK``: a student's check before handing in.

It grades the notebook exactly as ``course-grade autograde`` will (the same engine: the
answer cells and the cells the student added run in the sandbox, the test cells in the
grader's process, with the same messages as on the feedback page), against the **release**
notebook of the assignment (``exercises/<name>/<name>.ipynb``) instead of the instructor's
source: the visible tests only. Hidden tests, with other values and more cases, run at
grading time, so passing here is a first check, not a score.

The release is found from the notebook's test cells: the ``exercises/`` folder beside the
notebook or above it, or under the current folder, holding a notebook with the same
``grade_id``\\ s (``--release`` names it explicitly). On a computer where the sandbox's
kernel isolation cannot be set up (no user namespaces), the notebook runs without it: it
is the student's own code on their own computer.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["find_release", "validate"]


def _grade_ids(path) -> set[str]:
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return set()
    ids = set()
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        meta = (cell.get("metadata") or {}).get("nbgrader") or {} if isinstance(cell, dict) else {}
        if isinstance(meta, dict) and meta.get("grade") and not meta.get("solution") and \
                isinstance(meta.get("grade_id"), str):
            ids.add(meta["grade_id"])
    return ids


def _candidates(notebook: Path):
    seen = set()
    for base in [notebook.resolve().parent, *notebook.resolve().parents, Path.cwd()]:
        folder = base / "exercises"
        if folder.is_dir() and folder not in seen:
            seen.add(folder)
            yield from sorted(folder.glob("*/*.ipynb"))
        if base.name == "exercises" and base not in seen:
            seen.add(base)
            yield from sorted(base.glob("*/*.ipynb"))


def find_release(notebook) -> Path | None:
    """The release notebook whose test cells the student's ``notebook`` has (None if
    none is found); the one named like the notebook first."""
    notebook = Path(notebook)
    mine = _grade_ids(notebook)
    best, best_score = None, 0
    for candidate in _candidates(notebook):
        tests = _grade_ids(candidate)
        if not tests:
            continue
        score = len(mine & tests) / len(tests) + (candidate.stem == notebook.stem)
        if score > best_score:
            best, best_score = candidate, score
    return best if best_score > 0 else None


def validate(notebook, release=None, *, out=None, limits=None) -> int:
    """Run the visible tests of ``notebook`` as the grader does; print one line per test
    cell (with the feedback's message when it fails) and a summary. Returns the exit
    status: 0 when every visible test passes, 1 when one does not, 2 when no release
    notebook is found."""
    from grader.engine import GradingWorker, Limits
    from grader.isolation import IsolationUnavailable

    out = out or sys.stdout
    notebook = Path(notebook)
    if not notebook.is_file():
        print(f"course-grade validate: {notebook} is not a file", file=out)
        return 2
    release = Path(release) if release else find_release(notebook)
    if release is None or not release.is_file():
        print(f"course-grade validate: no release notebook (exercises/<name>/<name>.ipynb) "
              f"with the test cells of {notebook}; name it with --release", file=out)
        return 2
    assignment = release.parent.name
    limits = limits or Limits()
    try:
        with GradingWorker(isolated=True) as worker:
            result = worker.grade(release, notebook, assignment=assignment, student="you",
                                  limits=limits)
    except IsolationUnavailable as error:
        print(f"note: the sandbox's kernel isolation is not available here ({error}); your "
              f"notebook runs without it", file=out)
        with GradingWorker(isolated=False) as worker:
            result = worker.grade(release, notebook, assignment=assignment, student="you",
                                  limits=limits)
    print(f"{notebook}: the visible tests of '{assignment}', run as at grading time", file=out)
    for problem in result.problems:
        print(f"  problem: {problem}", file=out)
    for cell in result.cells:
        verdict = "passed" if cell.status == "passed" else cell.status
        print(f"  {cell.grade_id} ({cell.max_points:g} points): {verdict}", file=out)
        if cell.status != "passed" and cell.message:
            for line in cell.message.splitlines():
                print(f"      {line}", file=out)
    passed = sum(c.status == "passed" for c in result.cells)
    print(f"{passed} of {len(result.cells)} test cells pass their visible checks; hidden "
          f"tests with other values run when your notebook is graded", file=out)
    return 0 if passed == len(result.cells) else 1
