"""Grading throughput: the course grader against plain ``nbgrader autograde``.

A batch of submissions is made for each of the five assignments from the instructor's
solutions (``solutions/``), the released notebooks (``exercises/``) and the known wrong
answers of ``tests/grading_cases/``: correct, wrong, blank, broken and hostile ones (the
hostile ones switch the test helpers off, or end their own process).  The same batch is
graded in throwaway course folders by

- the baseline, plain ``nbgrader autograde`` (one command per assignment, serially), and
- ``course-grade autograde`` with 1, 2 (and all available) worker processes,

printing notebooks per second, the ratio to the baseline, the peak memory of the whole
process tree (psutil) and every non-hostile submission on which the two engines disagree.

``python -m benchmarks.grading [--quick] [--per-assignment N] [--workers 1,2,8] [--keep DIR]``
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ("init", "dropout", "batchnorm", "adam", "clipping")
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
# The share of each kind in a batch, in the order they are dealt out.
MIX = ("correct", "wrong", "hostile", "blank", "correct", "wrong", "correct", "broken", "correct",
       "wrong", "blank", "correct", "wrong", "correct", "hostile", "wrong", "correct", "blank",
       "wrong", "correct")
TAMPER = ("\n\nimport exercise_checks as _testing\n"
          "_testing.assert_close = lambda *args, **kwargs: None\n"
          "_testing.assert_own_work = lambda *args, **kwargs: None\n")
SUICIDE = "\n\nimport os\nos._exit(0)\n"


# ----------------------------------------------------------------------------------------
# The batch
# ----------------------------------------------------------------------------------------

def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _solutions(assignment: str) -> dict[str, str]:
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    return {_meta(c)["grade_id"]: "\n".join(line for line in c.source.splitlines() if line.strip() not in MARKERS)
            for c in nb.cells if _meta(c).get("solution")}


def _cases(assignment: str, solutions: dict[str, str]) -> list[dict[str, str]]:
    """Answer sets of the known wrong answers (``tests/grading_cases/<assignment>.py``)."""
    path = ROOT / "tests" / "grading_cases" / f"{assignment}.py"
    if not path.is_file():
        return []
    spec = importlib.util.spec_from_file_location(f"_grading_cases_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    resolved = []
    for case in module.CASES:
        answers = dict(case.get("answers", {}))
        try:
            for grade_id, edits in case.get("edits", {}).items():
                source = answers.get(grade_id, solutions[grade_id])
                for old, new in edits:
                    if old not in source:
                        raise KeyError(old)
                    source = source.replace(old, new)
                answers[grade_id] = source
        except KeyError:
            continue  # the catalogue and the solutions disagree: leave this case out
        for grade_id, extra in case.get("append", {}).items():
            answers[grade_id] = answers.get(grade_id, solutions[grade_id]) + "\n\n" + extra
        resolved.append(answers)
    return resolved


def _notebook(assignment: str, answers: dict[str, str]) -> str:
    nb = copy.deepcopy(nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4))
    for cell in nb.cells:
        if _meta(cell).get("solution") and _meta(cell).get("grade_id") in answers:
            cell.source = answers[_meta(cell)["grade_id"]]
    return nbformat.writes(nb)


# With one submission per assignment, these starts in MIX give each assignment another kind.
_QUICK_STARTS = (0, 1, 2, 3, 7)


def make_batch(per_assignment: int) -> list[tuple[str, str, str, str]]:
    """``(assignment, student, kind, notebook text)`` for every submission."""
    batch = []
    for number, assignment in enumerate(ASSIGNMENTS):
        solutions = _solutions(assignment)
        cases = _cases(assignment, solutions) or [{}]
        first = next(iter(solutions))
        wrong = hostile = 0
        start = _QUICK_STARTS[number] if per_assignment == 1 else 0
        for i in range(per_assignment):
            kind = MIX[(start + i) % len(MIX)]
            if kind == "correct":
                text = _notebook(assignment, solutions)
            elif kind == "wrong":
                text = _notebook(assignment, {**solutions, **cases[wrong % len(cases)]})
                wrong += 1
            elif kind == "blank":
                text = _notebook(assignment, {})
            elif kind == "broken":
                text = _notebook(assignment, solutions)[:200]
            else:
                extra = (TAMPER, SUICIDE)[hostile % 2]
                answers = {**solutions, **cases[hostile % len(cases)]}
                answers[first] = answers[first] + extra
                text = _notebook(assignment, answers)
                hostile += 1
            batch.append((assignment, f"{kind}-{i:03d}", kind, text))
    return batch


def make_course(directory: Path, batch) -> Path:
    directory.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", directory / "nbgrader_config.py")
    for assignment in ASSIGNMENTS:
        shutil.copytree(ROOT / "solutions" / assignment, directory / "solutions" / assignment)
    for assignment, student, _, text in batch:
        target = directory / "submitted" / student / assignment / f"{assignment}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return directory


# ----------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------

def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished (waited-for) descendants.

    Unlike wall time this hardly moves when other jobs share the cores.
    """
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


class PeakMemory:
    """Peak resident memory of this process and all its descendants, sampled every 50 ms."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _scores(course: Path) -> dict[tuple[str, str], dict[str, float]]:
    """``{(assignment, student): {grade cell: auto score}}`` from a gradebook."""
    with sqlite3.connect(course / "gradebook.db") as db:
        rows = db.execute(
            "SELECT a.name, sa.student_id, c.name, g.auto_score FROM grade g "
            "JOIN submitted_notebook sn ON g.notebook_id = sn.id "
            "JOIN submitted_assignment sa ON sn.assignment_id = sa.id "
            "JOIN assignment a ON sa.assignment_id = a.id JOIN base_cell c ON g.cell_id = c.id").fetchall()
    scores: dict = {}
    for assignment, student, cell, score in rows:
        scores.setdefault((assignment, student), {})[cell] = 0.0 if score is None else float(score)
    return scores


def run_nbgrader(course: Path, timeout: int) -> float:
    """Plain ``nbgrader autograde``, one assignment after the other; returns the seconds."""
    # nbgrader runs the `alembic` command of its environment to create a gradebook
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore", "PATH": path}
    nbgrader = [sys.executable, "-m", "nbgrader"]
    for assignment in ASSIGNMENTS:  # the gradebook entries, as an instructor makes them first
        subprocess.run([*nbgrader, "generate_assignment", assignment, "--force", "--log-level=ERROR"],
                       cwd=course, env=env, check=True, capture_output=True)
    start = time.perf_counter()
    for assignment in ASSIGNMENTS:
        subprocess.run([*nbgrader, "autograde", assignment, "--force", "--log-level=ERROR",
                        f"--Execute.timeout={timeout}"], cwd=course, env=env, capture_output=True)
    return time.perf_counter() - start


def run_course_grader(course: Path, workers: int, timeout: int) -> float:
    from grader import batch
    from grader.engine import Limits

    options = batch.Options(course_dir=course, workers=workers, limits=Limits(cell_timeout=timeout),
                            progress=False)
    start = time.perf_counter()
    report = batch.autograde(options)
    elapsed = time.perf_counter() - start
    if report.grader_errors:
        print(f"  grader errors: {len(report.grader_errors)}")
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grading", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="5 notebooks (one per assignment: correct, wrong, hostile, blank, broken), 2 workers")
    parser.add_argument("--per-assignment", type=int,
                        help="submissions per assignment (default 60; --quick: 1, of another kind each)")
    parser.add_argument("--workers", help="comma-separated worker counts (default 1,2 and all cores)")
    parser.add_argument("--timeout", type=int, default=30, help="seconds per cell for both engines (30)")
    parser.add_argument("--keep", type=Path, help="keep the course folders here")
    args = parser.parse_args(argv)
    per = args.per_assignment or (1 if args.quick else 60)
    cores = os.cpu_count() or 1
    workers = ([int(w) for w in args.workers.split(",")] if args.workers
               else sorted({1, 2, cores}) if not args.quick else [2])

    batch = make_batch(per)
    kinds = {kind: sum(1 for b in batch if b[2] == kind) for kind in dict.fromkeys(b[2] for b in batch)}
    print(f"grading benchmark: {len(batch)} notebooks, {per} per assignment "
          f"({', '.join(f'{n} {k}' for k, n in kinds.items())}); {cores} cores")
    print("baseline: plain `nbgrader autograde`, serial (one command per assignment)")

    work = Path(tempfile.mkdtemp(prefix="grading-bench-")) if args.keep is None else args.keep
    try:
        baseline_dir = make_course(work / "nbgrader", batch)
        cpu = cpu_seconds()
        with PeakMemory() as memory:
            seconds = run_nbgrader(baseline_dir, args.timeout)
        base_cpu = (cpu_seconds() - cpu) / len(batch)
        base_rate = len(batch) / seconds
        print(f"nbgrader autograde      : {seconds:7.1f} s  {base_rate:6.2f} notebooks/s  "
              f"peak memory {memory.peak / 2**20:6.0f} MiB  cpu {base_cpu:5.2f} s/notebook")
        results = {}
        for count in workers:
            course = make_course(work / f"course-{count}", batch)
            cpu = cpu_seconds()
            with PeakMemory() as memory:
                seconds = run_course_grader(course, count, args.timeout)
            per_cpu = (cpu_seconds() - cpu) / len(batch)
            rate = len(batch) / seconds
            results[count] = course
            print(f"course-grade --workers {count:<2}: {seconds:7.1f} s  {rate:6.2f} notebooks/s  "
                  f"peak memory {memory.peak / 2**20:6.0f} MiB  cpu {per_cpu:5.2f} s/notebook  "
                  f"ratio {rate / base_rate:5.1f}x (cpu {base_cpu / per_cpu:4.1f}x)")

        reference = _scores(baseline_dir)
        hostile = {(a, s) for a, s, kind, _ in batch if kind == "hostile"}
        for count, course in results.items():
            mine = _scores(course)
            disagree = sorted(key for key in {(a, s) for a, s, _, _ in batch} - hostile
                              if reference.get(key) != mine.get(key))
            compared = len(batch) - len(hostile)
            print(f"agreement (workers {count}): {compared - len(disagree)} of {compared} non-hostile "
                  f"submissions score the same cell by cell")
            for key in disagree[:20]:
                theirs, ours = reference.get(key) or {}, mine.get(key) or {}
                cells = sorted(c for c in set(theirs) | set(ours) if theirs.get(c) != ours.get(c))
                print(f"  {key[0]}/{key[1]}: " + ", ".join(f"{c} nbgrader {theirs.get(c)} course {ours.get(c)}"
                                                          for c in cells))
            tampered = sorted(key for key in hostile if sum((reference.get(key) or {}).values())
                              > sum((mine.get(key) or {}).values()))
            if count == workers[0] and hostile:
                print(f"hostile: {len(tampered)} of {len(hostile)} score more under plain nbgrader "
                      f"(tampering works there) than under the course grader")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
