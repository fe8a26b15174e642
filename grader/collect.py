"""Find the submissions to grade: nbgrader's folder layout, or an LMS zip.

nbgrader keeps submissions as ``submitted/<student>/<assignment>/<assignment>.ipynb``
(with an optional ``timestamp.txt`` next to the notebook).  An LMS download is a zip whose
file names carry the student and the notebook, as for ``nbgrader zip_collect``: a regular
expression with the named groups ``student_id`` and ``file_id`` (and optionally
``timestamp``) is matched against each file name (``FileNameCollectorPlugin.named_regexp``).
Entries of the zip that are already in nbgrader's layout (``<student>/<assignment>/
<assignment>.ipynb``) are accepted too.

A zip comes from outside, so it is extracted defensively: absolute names, ``..`` and
symbolic links are refused, and the number of files, each file's size, the total size and
the compression ratio are capped while reading (the sizes written in the zip's headers are
not trusted).  Every refused entry is recorded with its reason; the rest is collected.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# The example of nbgrader's documentation for LMS names such as
# ``ps1_bitdiddle_attempt_2016-01-30-15-00-00_problem1.ipynb``.
DEFAULT_NAMED_REGEXP = r".*_(?P<student_id>\w+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>\w+)"

_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+\-]{0,127}$")
_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[-_ T](\d{2})[-:](\d{2})[-:](\d{2})(.*)$")


@dataclass(frozen=True)
class Submission:
    """One notebook to grade: ``path`` is ``submitted/<student>/<assignment>/<assignment>.ipynb``."""

    assignment: str
    student: str
    path: Path

    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def timestamp_file(self) -> Path:
        return self.path.parent / "timestamp.txt"


@dataclass(frozen=True)
class ZipLimits:
    """Caps for extracting an untrusted zip (bytes are uncompressed sizes)."""

    max_files: int = 5000
    max_file_bytes: int = 50 * 2**20
    max_total_bytes: int = 1024 * 2**20
    max_ratio: float = 200.0  # uncompressed / compressed, checked above ``ratio_floor`` bytes
    ratio_floor: int = 2**20


@dataclass
class Rejected:
    """A file of an intake that is not graded, and why."""

    name: str
    reason: str


@dataclass
class Intake:
    submissions: list[Submission] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def is_safe_id(name: str) -> bool:
    """Whether ``name`` can be used as a student or assignment folder name."""
    return bool(_SAFE_ID.match(name)) and name not in {".", ".."}


def collect_folder(submitted: Path, assignments: list[str]) -> Intake:
    """Submissions in nbgrader's layout under ``submitted`` for the given assignments.

    Students are sorted, so the order of grading and of every report is deterministic.
    """
    intake = Intake()
    if not submitted.is_dir():
        return intake
    for student_dir in sorted(submitted.iterdir()):
        if not student_dir.is_dir():
            continue
        for assignment in assignments:
            folder = student_dir / assignment
            if not folder.is_dir():
                continue
            notebook = folder / f"{assignment}.ipynb"
            label = f"{student_dir.name}/{assignment}"
            if not is_safe_id(student_dir.name):
                intake.rejected.append(Rejected(label, "unsafe student id (letters, digits, _ . @ + - only)"))
            elif notebook.is_symlink() or not notebook.is_file():
                intake.rejected.append(Rejected(label, f"no {assignment}.ipynb in the submission folder"))
            else:
                intake.submissions.append(Submission(assignment, student_dir.name, notebook))
    return intake


def _parse_timestamp(text: str) -> str | None:
    """LMS timestamps such as ``2016-01-30-15-00-00`` as nbgrader's ``timestamp.txt`` text."""
    match = _TIMESTAMP.match(text.strip())
    if not match:
        return None
    y, mo, d, h, mi, s, rest = match.groups()
    return f"{y}-{mo}-{d} {h}:{mi}:{s}{rest}"


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes | None:
    """The entry's bytes, or None as soon as more than ``cap`` bytes come out."""
    chunks, size = [], 0
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(1 << 16)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or path.is_absolute():
        return "absolute path refused"
    if ".." in path.parts:
        return "path traversal ('..') refused"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link refused"
    if info.flag_bits & 0x1:
        return "encrypted entry refused"
    return None


def _match_entry(name: str, regexp: re.Pattern, assignments: list[str]):
    """(student, assignment, timestamp text) for a zip entry, or a reason string."""
    posix = name.replace("\\", "/")
    parts = posix.split("/")
    if parts[0] == "submitted":
        parts = parts[1:]
    if len(parts) == 3 and parts[2] == f"{parts[1]}.ipynb":
        student, assignment, timestamp = parts[0], parts[1], None
    else:
        match = regexp.match(posix)
        if not match or "student_id" not in match.groupdict() or "file_id" not in match.groupdict():
            return f"file name does not match the LMS pattern {regexp.pattern!r}"
        groups = match.groupdict()
        student = groups["student_id"] or ""
        assignment = os.path.splitext(groups["file_id"] or "")[0]
        timestamp = _parse_timestamp(groups.get("timestamp") or "")
    if assignment not in assignments:
        return f"notebook {assignment!r} is not one of the assignments graded ({', '.join(assignments)})"
    if not is_safe_id(student):
        return f"unsafe student id {student!r}"
    return student, assignment, timestamp


def collect_zip(zip_path: Path, submitted: Path, assignments: list[str], *,
                named_regexp: str = DEFAULT_NAMED_REGEXP, limits: ZipLimits = ZipLimits()) -> Intake:
    """Extract the notebooks of an LMS zip into nbgrader's ``submitted`` layout.

    For each student and assignment the newest file (by the timestamp in its name) wins, as
    in ``nbgrader zip_collect``; the timestamp goes to ``timestamp.txt``.

    Parameters
    ----------
    zip_path : Path
        The LMS download.
    submitted : Path
        The course's ``submitted`` folder, written as ``<student>/<assignment>/<assignment>.ipynb``.
    assignments : list of str
        The assignments graded; a notebook named after another one is rejected.
    named_regexp : str
        ``FileNameCollectorPlugin.named_regexp``: groups ``student_id``, ``file_id`` and
        optionally ``timestamp``, matched against each entry's name.
    limits : ZipLimits
        Caps on files, sizes and compression ratio.

    Returns
    -------
    Intake
        The submissions written, and every refused entry with its reason.

    Raises
    ------
    ValueError
        Naming ``zip_path`` when the file is not a readable zip (an instructor error).
    """
    regexp = re.compile(named_regexp)
    intake = Intake()
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"zip_path: cannot read {zip_path} as a zip file ({error})") from None
    chosen: dict[tuple[str, str], tuple[str, str | None, bytes]] = {}
    total = 0
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        for index, info in enumerate(sorted(entries, key=lambda i: i.filename)):
            name = info.filename
            if index >= limits.max_files:
                intake.rejected.append(Rejected(name, f"more than {limits.max_files} files in the zip"))
                continue
            problem = _entry_problem(info)
            if problem is None and not name.lower().endswith(".ipynb"):
                suffix = os.path.splitext(name)[1] or "no extension"
                problem = f"not a notebook ({suffix})"
            if problem is None and info.file_size > limits.ratio_floor and \
                    info.file_size > limits.max_ratio * max(info.compress_size, 1):
                problem = f"compression ratio above {limits.max_ratio:g} (zip bomb?)"
            if problem is None and info.file_size > limits.max_file_bytes:
                problem = f"larger than {limits.max_file_bytes} bytes uncompressed"
            if problem is None:
                target = _match_entry(name, regexp, assignments)
                if isinstance(target, str):
                    problem = target
            if problem is None:
                cap = min(limits.max_file_bytes, limits.max_total_bytes - total)
                try:
                    data = _read_capped(archive, info, cap)
                except (OSError, zipfile.BadZipFile, RuntimeError, EOFError) as error:
                    intake.rejected.append(Rejected(name, f"unreadable entry ({error})"))
                    continue
                if data is None:
                    problem = ("total uncompressed size above the cap (zip bomb?)"
                               if cap < limits.max_file_bytes else
                               f"larger than {limits.max_file_bytes} bytes uncompressed (zip bomb?)")
            if problem is not None:
                intake.rejected.append(Rejected(name, problem))
                continue
            total += len(data)
            student, assignment, timestamp = target
            key = (student, assignment)
            if key in chosen:
                old_name, old_timestamp, _ = chosen[key]
                if timestamp is not None and old_timestamp is not None and timestamp >= old_timestamp:
                    intake.rejected.append(Rejected(old_name, f"replaced by the newer {name}"))
                else:
                    reason = (f"older than {old_name}" if timestamp is not None and old_timestamp is not None
                              else f"duplicate of {old_name} (no timestamps to choose by); the first is kept")
                    intake.rejected.append(Rejected(name, reason))
                    continue
            chosen[key] = (name, timestamp, data)

    for (student, assignment), (_, timestamp, data) in sorted(chosen.items()):
        folder = submitted / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        notebook = folder / f"{assignment}.ipynb"
        _write_atomic(notebook, data)
        if timestamp is not None:
            _write_atomic(folder / "timestamp.txt", timestamp.encode())
        intake.submissions.append(Submission(assignment, student, notebook))
    intake.submissions.sort(key=lambda s: (s.assignment, s.student))
    return intake


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
