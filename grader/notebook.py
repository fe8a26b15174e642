"""Reading notebooks for the course grader: the trusted source and the untrusted submission.

The **source** notebook (``solutions/<name>/<name>.ipynb``) decides everything but the
answers: the order of the cells, which cells are tests, their points and their code. It
becomes a *plan*, a list of :class:`Step`. The **submission** is read defensively
(:func:`read_submission`): size cap, UTF-8, JSON, nbformat v3 upgraded, v4 validated
loosely; only its answer cells matter, matched by ``grade_id`` (first one wins; its
source is used whatever its cell type, as ``nbgrader autograde`` turns a retyped cell
back into code). A missing answer cell becomes the release stub (the solution region
replaced by ``raise NotImplementedError()``, as ``nbgrader generate_assignment`` does).
"""
from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass, field

MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_CELL_CHARS = 1_000_000
MAX_ADDED_CELLS = 200
HIDDEN_PLACEHOLDER = "# (hidden tests run here when the notebook is graded)"

_BEGIN_SOLUTION = re.compile(r"^\s*###?\s*BEGIN SOLUTION", re.MULTILINE)
_HIDDEN = re.compile(r"^[ \t]*###?\s*BEGIN HIDDEN TESTS.*?^[ \t]*###?\s*END HIDDEN TESTS[^\n]*",
                     re.MULTILINE | re.DOTALL)


class SubmissionError(ValueError):
    """The submission cannot be graded at all (the reason is for the student)."""


@dataclass
class Step:
    index: int                 # position of the cell in the source notebook
    kind: str                  # "answer" | "test" | "code" (read-only or plain code)
    source: str                # the code to run (answer: the submission's)
    grade_id: str = ""
    points: float = 0.0
    cell: dict = field(default_factory=dict)   # the source cell (for the feedback)

    anchor: str = ""           # added cells: the grade_id of the cell they follow

    @property
    def label(self):
        if self.kind == "added":
            where = f" after '{self.anchor}'" if self.anchor else " at the top"
            return f"your added cell{where}"
        what = {"answer": "answer", "test": "test", "code": "cell"}[self.kind]
        gid = f" {what} '{self.grade_id}'" if self.grade_id else ""
        return f"cell {self.index + 1}" + (f" ({gid.strip()})" if gid else "")


def _text(source):
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _nbgrader(cell):
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    meta = meta.get("nbgrader") if isinstance(meta, dict) else None
    return meta if isinstance(meta, dict) else {}


def stub(source: str) -> str:
    """The release version of an answer cell (nbgrader's ClearSolutions, Python)."""
    lines, out, inside = source.splitlines(), [], False
    if not _BEGIN_SOLUTION.search(source):
        return "# YOUR CODE HERE\nraise NotImplementedError()"
    for line in lines:
        stripped = line.strip()
        if re.match(r"###?\s*BEGIN SOLUTION", stripped):
            inside = True
            indent = line[:len(line) - len(line.lstrip())]
            out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
        elif re.match(r"###?\s*END SOLUTION", stripped):
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def strip_hidden(source: str) -> str:
    return _HIDDEN.sub(HIDDEN_PLACEHOLDER, source)


_source_cache: dict[str, tuple[str, dict]] = {}


def read_source(path) -> dict:
    """The instructor's notebook (trusted; errors here are the grader's, they raise).

    Parsing and validating it (``nbformat.reads``) costs far more than grading needs, and
    a batch reads the same few source notebooks again and again: the parsed notebook is
    kept per path and reused while the file's text is unchanged (a fresh copy each time).
    """
    import nbformat
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    key = os.path.abspath(path)
    cached = _source_cache.get(key)
    if cached is None or cached[0] != text:
        cached = (text, nbformat.reads(text, as_version=4))
        _source_cache[key] = cached
    return copy.deepcopy(cached[1])


#: first index of the steps of added cells (source cells have their position)
ADDED_INDEX = 1_000_000


def plan(source_nb: dict, answers: dict[str, str], added=()) -> list[Step]:
    """The steps of a submission, in the source's order; ``added`` are the student's own
    code cells, ``(anchor grade_id or None, source)``, each run right after the source
    cell it follows in the submission (before every cell when the anchor is ``None`` or
    unknown), as ``nbgrader autograde``, which runs the student's notebook, does."""
    steps = _source_steps(source_nb, answers)
    cells = source_nb.get("cells", [])
    position = {str(_nbgrader(c).get("grade_id")): i for i, c in enumerate(cells)
                if _nbgrader(c).get("grade_id")}
    after = {}
    for k, (anchor, text) in enumerate(added):
        where = position.get(anchor, -1) if anchor else -1
        after.setdefault(where, []).append(Step(
            ADDED_INDEX + k, "added", text, "", 0.0,
            {"cell_type": "code", "metadata": {}, "source": text, "outputs": []},
            anchor if where >= 0 else ""))
    if not after:
        return steps
    by_index = {s.index: s for s in steps}
    merged = list(after.get(-1, []))
    for index in range(len(cells)):
        if index in by_index:
            merged.append(by_index[index])
        merged += after.get(index, [])
    return merged


def _source_steps(source_nb: dict, answers: dict[str, str]) -> list[Step]:
    steps = []
    for index, cell in enumerate(source_nb.get("cells", [])):
        if cell.get("cell_type") != "code" and not _nbgrader(cell).get("solution"):
            continue
        meta = _nbgrader(cell)
        gid = str(meta.get("grade_id") or "")
        text = _text(cell.get("source"))
        if meta.get("solution") and not meta.get("grade"):
            code = answers.get(gid)
            if cell.get("cell_type") != "code":
                continue  # a written answer: graded by hand
            steps.append(Step(index, "answer", stub(text) if code is None else code, gid,
                              0.0, cell))
        elif meta.get("grade") and not meta.get("solution") and cell.get("cell_type") == "code":
            steps.append(Step(index, "test", text, gid, float(meta.get("points") or 0), cell))
        elif cell.get("cell_type") == "code":
            steps.append(Step(index, "code", text, gid, 0.0, cell))
    return steps


def read_submission(path, answer_ids) -> tuple[dict[str, str], list[str]]:
    """The submission's answer-cell sources by grade_id, and notes on what was odd.

    Raises :class:`SubmissionError` when nothing can be read from the file."""
    answers, _, notes = read_submission_cells(path, answer_ids, ())
    return answers, notes


def read_submission_cells(path, answer_ids, known_ids):
    """``(answers, added, notes)``: the answer-cell sources by grade_id, the code cells the
    student added (``(grade_id of the known cell before it or None, source)``, in the
    submission's order; a cell is the student's when its grade_id is not one of
    ``known_ids``, the source's), and notes on what was odd.

    Raises :class:`SubmissionError` when nothing can be read from the file."""
    import nbformat
    notes = []
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as error:
        raise SubmissionError(f"the submission cannot be read ({error.strerror})") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(f"the notebook is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
    if not raw.strip():
        raise SubmissionError("the submission is an empty file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SubmissionError(f"the notebook is not valid UTF-8 (byte {error.start})") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise SubmissionError(f"the file is not a notebook: invalid JSON ({error})") from None
    if not isinstance(data, dict) or ("cells" not in data and "worksheets" not in data):
        raise SubmissionError("the file is not a Jupyter notebook (no cells)")
    major = data.get("nbformat")
    if major == 3 or (major is None and "worksheets" in data):
        try:
            data = nbformat.reads(text, as_version=4)
            notes.append("the notebook was in the old nbformat 3 and was converted")
        except Exception as error:  # noqa: BLE001  (any failure is the file's)
            raise SubmissionError(f"the nbformat 3 notebook cannot be converted ({error})") \
                from None
    elif major != 4:
        raise SubmissionError(f"unsupported notebook format {major!r} (expected 4)")
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise SubmissionError("the notebook has no list of cells")
    kernel = ((data.get("metadata") or {}).get("kernelspec") or {}) if isinstance(
        data.get("metadata"), dict) else {}
    if isinstance(kernel, dict) and kernel.get("language", "python") not in ("python", None):
        notes.append(f"the notebook's kernel ({kernel.get('name')}) was ignored: "
                     f"it is graded with Python")
    answers, added, anchor = {}, [], None
    known_ids = set(known_ids) | set(answer_ids)
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        gid = _nbgrader(cell).get("grade_id")
        if isinstance(gid, str) and gid in known_ids:
            anchor = gid
        elif cell.get("cell_type") == "code" and known_ids - set(answer_ids):
            source = _text(cell.get("source"))
            if source.strip() and len(added) < MAX_ADDED_CELLS:
                added.append((anchor, source[:MAX_CELL_CHARS]))
            elif source.strip():
                notes.append(f"more than {MAX_ADDED_CELLS} added cells: the rest were not run")
            continue
        if not isinstance(gid, str) or gid not in answer_ids:
            continue
        if gid in answers:
            notes.append(f"answer cell '{gid}' appears more than once: the first was graded")
            continue
        source = _text(cell.get("source"))
        if len(source) > MAX_CELL_CHARS:
            notes.append(f"answer cell '{gid}' is too long and was truncated")
            source = source[:MAX_CELL_CHARS]
        if cell.get("cell_type") != "code":
            notes.append(f"answer cell '{gid}' was changed to {cell.get('cell_type')}: "
                         f"it was graded as code")
        answers[gid] = source
    for gid in answer_ids:
        if gid not in answers:
            notes.append(f"answer cell '{gid}' is missing: it was graded as left blank")
    return answers, added, notes


def known_ids(source_nb: dict) -> list[str]:
    """grade_ids of every cell of the source (a submission's other cells are its own)."""
    return [str(_nbgrader(c).get("grade_id")) for c in source_nb.get("cells", [])
            if _nbgrader(c).get("grade_id")]


def answer_ids(source_nb: dict) -> list[str]:
    return [str(_nbgrader(c).get("grade_id")) for c in source_nb.get("cells", [])
            if c.get("cell_type") == "code" and _nbgrader(c).get("solution")
            and not _nbgrader(c).get("grade") and _nbgrader(c).get("grade_id")]


def feedback(source_nb: dict, steps: list[Step], records: dict[int, dict]) -> dict:
    """The graded notebook for the student: the source's cells, the submission's answers
    and added cells, hidden tests replaced by a placeholder, outputs from the run and the
    verdicts."""
    nb = copy.deepcopy(source_nb)
    by_index = {s.index: s for s in steps}
    position = {str(_nbgrader(c).get("grade_id")): i for i, c in enumerate(nb.get("cells", []))
                if _nbgrader(c).get("grade_id")}
    after = {}
    for step in steps:
        if step.kind == "added":
            after.setdefault(position.get(step.anchor, -1), []).append(step)
    entries = [(s.index, s.cell) for s in after.get(-1, [])]
    for index, cell in enumerate(nb.get("cells", [])):
        entries.append((index, cell))
        entries += [(s.index, copy.deepcopy(s.cell)) for s in after.get(index, [])]
    for index, cell in entries:
        step = by_index.get(index)
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        if step is None:
            continue
        record = records.get(index, {})
        if step.kind in ("answer", "added"):
            cell["source"] = step.source
        elif step.kind == "test":
            cell["source"] = strip_hidden(_text(cell.get("source")))
        if record.get("output"):
            cell["outputs"].append({"output_type": "stream", "name": "stdout",
                                    "text": record["output"]})
        if record.get("message"):
            cell["outputs"].append({"output_type": "stream", "name": "stderr",
                                    "text": record["message"] + "\n"})
        if step.kind == "test":
            verdict = (f"passed: {step.points:g} / {step.points:g} points"
                       if record.get("status") == "passed"
                       else f"{record.get('status', 'not_run')}: 0 / {step.points:g} points")
            cell["outputs"].append({"output_type": "stream", "name": "stdout",
                                    "text": verdict + "\n"})
    nb["cells"] = [cell for _, cell in entries]
    nb.setdefault("metadata", {})["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"}
    return json.loads(json.dumps(nb, default=str))
