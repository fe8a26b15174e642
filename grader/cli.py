"""``course-grade``: the instructor's command (also ``python -m grader``).

Examples, from the course folder::

    course-grade autograde                      # every assignment, every submission
    course-grade autograde init dropout --workers 8
    course-grade autograde init --zip downloads/init.zip
    course-grade autograde --scheduler tcp://10.0.0.5:8786
    course-grade export                         # grades.csv again from the gradebook
    course-grade validate exercises/init/init.ipynb   # a student: the visible tests

Exit status: 0 when the batch completed, whatever the students' notebooks did; 2 for a
mistake of the instructor (bad option, missing course folder, unknown assignment,
unreadable zip); 3 when the grader itself failed on some submission (nothing was recorded
for it: run the command again; the summary names them and why); 4 when the students' code
would run without the kernel isolation (no bubblewrap, user namespaces refused) and
``--unsafe-no-isolation`` was not given; 130 when interrupted (what was graded is kept).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_INSTRUCTOR, EXIT_GRADER, EXIT_NO_ISOLATION, EXIT_INTERRUPTED = 0, 2, 3, 4, 130


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course-grade",
        description="Grade nbgrader submissions in sandboxes, in parallel and resumably.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    auto = commands.add_parser(
        "autograde", help="grade submissions, write the gradebook, feedback and grades.csv",
        description="Grade every (student, assignment) submission with the course grader, write "
                    "autograded/ notebooks, feedback/ HTML pages, the nbgrader gradebook and "
                    "grades.csv.  Submissions graded before (same notebook, same source) are "
                    "skipped, so an interrupted run just continues.")
    auto.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                      help="assignments to grade (default: all in the source folder)")
    auto.add_argument("--course-dir", type=Path, default=Path("."),
                      help="the course folder with nbgrader_config.py (default: .)")
    intake = auto.add_mutually_exclusive_group()
    intake.add_argument("--submissions", type=Path, metavar="DIR",
                        help="folder in nbgrader's layout <student>/<assignment>/<assignment>.ipynb "
                             "(default: the course's submitted/)")
    intake.add_argument("--zip", type=Path, metavar="FILE.zip", dest="zip_path",
                        help="LMS download: notebooks named as for `nbgrader zip_collect`, "
                             "extracted safely into submitted/")
    auto.add_argument("--named-regexp", metavar="REGEXP",
                      help="file-name pattern for --zip with groups student_id, file_id (and "
                           "timestamp); default: FileNameCollectorPlugin.named_regexp of "
                           "nbgrader_config.py, else nbgrader's documented example")
    auto.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1,
                      help="worker processes (default: all cores, %(default)s here)")
    auto.add_argument("--scheduler", metavar="ADDRESS",
                      help="grade on a Dask cluster (e.g. tcp://host:8786) instead of local processes; "
                           "the workers must see the course folder at the same path")
    auto.add_argument("--cell-timeout", type=_positive_float, metavar="S", help="seconds per cell (default 60)")
    auto.add_argument("--notebook-timeout", type=_positive_float, metavar="S",
                      help="seconds per notebook (default 300)")
    auto.add_argument("--memory-mb", type=_positive_int, metavar="M", help="memory per submission (default 3072)")
    auto.add_argument("--max-output-bytes", type=_positive_int, metavar="B",
                      help="output kept per submission (default 2000000)")
    auto.add_argument("--force", action="store_true", help="grade again even what is up to date")
    auto.add_argument("--engine", choices=("course", "nbgrader"), default="course",
                      help="course: sandboxed course grader (default); nbgrader: plain "
                           "`nbgrader autograde`, serially, for comparison or as a fallback")
    auto.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    auto.add_argument("--unsafe-no-isolation", action="store_true",
                      help="run the students' code even where the kernel isolation (bubblewrap, "
                           "user namespaces) cannot be set up, confined only in-process: a "
                           "student can then read and write what the grader can")

    export = commands.add_parser("export", help="write grades.csv from the gradebook",
                                 description="Write grades.csv (nbgrader export's columns plus "
                                             "status, reason, engine) from the course's gradebook.")
    export.add_argument("--course-dir", type=Path, default=Path("."), help="the course folder (default: .)")
    export.add_argument("--to", type=Path, help="output file (default: <course-dir>/grades.csv)")

    check = commands.add_parser(  # a student's command: grader/validate.py
        "validate", help="run a notebook's visible tests as they run at grading time",
        description="Run the visible tests of NOTEBOOK exactly as `course-grade autograde` "
                    "runs the tests (sandbox, messages of the feedback), before handing it in.")
    check.add_argument("notebook", type=Path, metavar="NOTEBOOK")
    check.add_argument("--release", type=Path, metavar="RELEASE.ipynb",
                       help="the assignment's release notebook (default: found in exercises/)")
    return parser


def _limits(args):
    from grader.engine import Limits

    limits = Limits()
    for option, attribute in (("cell_timeout", "cell_timeout"), ("notebook_timeout", "notebook_timeout"),
                              ("memory_mb", "memory_mb"), ("max_output_bytes", "max_output_bytes")):
        value = getattr(args, option)
        if value is not None:
            setattr(limits, attribute, value)
    return limits


def _autograde(args) -> int:
    from grader.batch import InstructorError, IsolationError, Options, autograde

    limits = _limits(args) if args.engine == "course" else None
    options = Options(course_dir=args.course_dir, assignments=args.assignments, submissions=args.submissions,
                      zip_path=args.zip_path, named_regexp=args.named_regexp, workers=args.workers,
                      scheduler=args.scheduler, limits=limits, force=args.force, engine=args.engine,
                      progress=False if args.no_progress else None, nbgrader_timeout=args.cell_timeout,
                      isolated=not args.unsafe_no_isolation)
    try:
        report = autograde(options)
    except IsolationError as error:
        print(f"course-grade: error: refusing to run the students' code without isolation: "
              f"{error}. Install bubblewrap and enable unprivileged user namespaces (README, "
              f"'What an instructor's host needs'), or pass --unsafe-no-isolation to run it "
              f"anyway.", file=sys.stderr)
        return EXIT_NO_ISOLATION
    except InstructorError as error:
        print(f"course-grade: error: {error}", file=sys.stderr)
        return EXIT_INSTRUCTOR
    except KeyboardInterrupt:
        print("\ncourse-grade: interrupted; everything graded so far is saved, "
              "run the same command again to finish", file=sys.stderr)
        return EXIT_INTERRUPTED
    for rejected in report.rejected:
        print(f"not graded: {rejected.name}: {rejected.reason}")
    for note in report.notes:
        print(f"note: {note}")
    print(report.summary)
    print(f"grades: {report.csv_path}")
    if report.grader_errors:
        print(f"course-grade: the batch is incomplete: {len(report.grader_errors)} submission(s) "
              "not graded (nothing was recorded for them; run the command again):", file=sys.stderr)
        for error in report.grader_errors:
            lines = error.strip().splitlines()
            print(f"  {lines[0]}" + (f" ({lines[-1].strip()})" if len(lines) > 1 else ""),
                  file=sys.stderr)
        return EXIT_GRADER
    return EXIT_OK


def _export(args) -> int:
    from grader import gradebook

    if not args.course_dir.is_dir():
        print(f"course-grade: error: --course-dir: {args.course_dir} is not a folder", file=sys.stderr)
        return EXIT_INSTRUCTOR
    gb = gradebook.open_gradebook(args.course_dir.resolve())
    try:
        target = args.to or args.course_dir / "grades.csv"
        rows = gradebook.export_csv(gb, target)
    finally:
        gb.close()
    print(f"{rows} rows written to {target}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "autograde":
        return _autograde(args)
    if args.command == "validate":
        from grader.validate import validate
        return validate(args.notebook, args.release)
    return _export(args)


if __name__ == "__main__":
    sys.exit(main())
