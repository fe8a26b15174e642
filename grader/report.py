"""Plain-text reports: a submission's status and reason, and the per-assignment summary."""
from __future__ import annotations

from collections import Counter, defaultdict

# Cell statuses of the engine that mean "this test did not really run".
_SEVERE = ("timeout", "limit", "not_run")
# Words of the engine's problem reports, and the bucket each falls in (first match wins).
_PROBLEM_KINDS = (
    ("notebook time limit", "notebook time limit"),
    ("time limit", "cell time limit"),
    ("process stopped", "process stopped"),
    ("memory limit", "memory limit"),
    ("output", "output limit"),
    ("process", "process limit"),
    ("not a notebook", "invalid notebook"),
    ("invalid", "invalid notebook"),
    ("unreadable", "invalid notebook"),
)
_STATUS_OF_KIND = {"notebook time limit": "timeout", "cell time limit": "timeout",
                   "invalid notebook": "invalid", "process stopped": "stopped"}


def problem_kind(text: str) -> str | None:
    """The bucket of a problem report (None when no known kind is named)."""
    lowered = text.lower()
    return next((kind for words, kind in _PROBLEM_KINDS if words in lowered), None)


def status_and_reason(result) -> tuple[str, str]:
    """One word for the submission and a short reason a human can read.

    ``graded``: every test ran (passed or not); ``timeout``, ``limit`` or ``stopped``: a
    resource limit or the notebook's own process stopped it; ``invalid``: the file could
    not be graded at all; ``incomplete``: some tests did not run for another reason.
    """
    statuses = [cell.status for cell in result.cells]
    failed = [cell.grade_id for cell in result.cells if cell.status != "passed"]
    problems = "; ".join(result.problems)
    if not any(s in _SEVERE for s in statuses):
        shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
        outcome = f"{len(failed)} of {len(statuses)} tests failed: {shown}" if failed else "all tests passed"
        return "graded", f"{problems}; {outcome}" if problems else outcome
    kind = problem_kind(problems)
    if "timeout" in statuses:
        status = "timeout"
    elif kind is not None:
        status = _STATUS_OF_KIND.get(kind, "limit")
    elif "limit" in statuses:
        status = "limit"
    else:
        status = "incomplete"
    return status, problems or f"{len(failed)} of {len(statuses)} tests did not pass"


def failure_kind(status: str, reason: str, full_score: bool) -> str | None:
    """The bucket a submission falls in for the summary (None when it scored full marks)."""
    if full_score:
        return None
    kind = problem_kind(reason.split(" tests failed: ")[0])
    if kind is not None:
        return kind
    return {"graded": "wrong answers", "incomplete": "tests not run"}.get(status, status)


def summary_table(rows, graded_now: dict[str, int], skipped: dict[str, int],
                  grader_errors: dict[str, int]) -> str:
    """The table printed at the end of ``course-grade autograde``.

    ``rows`` are ``StateRow`` objects of the batch (graded now or skipped as up to date).
    """
    by_assignment = defaultdict(list)
    for row in rows:
        by_assignment[row.assignment].append(row)
    names = sorted(set(by_assignment) | set(grader_errors))
    header = ("assignment", "submissions", "graded now", "up to date", "mean score", "failures (why)")
    lines = []
    for name in names:
        batch = by_assignment.get(name, [])
        kinds = Counter(k for r in batch
                        if (k := failure_kind(r.status, r.reason, r.score >= r.max_score)) is not None)
        if grader_errors.get(name):
            kinds["grader error, not recorded"] += grader_errors[name]
        mean = (f"{sum(r.score for r in batch) / len(batch):.2f} / {batch[0].max_score:g}"
                if batch else "-")
        why = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        failures = f"{sum(kinds.values())} ({why})" if kinds else "0"
        lines.append((name, str(len(batch) + grader_errors.get(name, 0)), str(graded_now.get(name, 0)),
                      str(skipped.get(name, 0)), mean, failures))
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) if lines else len(header[i])
              for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(line, widths)) for line in lines]
    return "\n".join(out)
