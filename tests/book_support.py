"""Shared helpers of the book tests: find (or build, once) ``_build/html`` and read it.

``make test`` builds the book before running pytest (``make book``); when the tests run
without it, the first test session that needs the book builds it here, under a file lock
so that two pytest-xdist workers never build at the same time.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
LOG = BUILD / "book_build.log"  # written when the tests build the book themselves


def toc_docnames() -> list[str]:
    """Every page of ``_toc.yml`` in reading order (``book/intro``, ``book/01_...``, ...)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"]]

    def visit(entries):
        for entry in entries:
            names.append(entry["file"])
            visit(entry.get("sections", []))

    for part in toc.get("parts", []):
        visit(part.get("chapters", []))
    return names


def chapter_docnames() -> list[str]:
    """The numbered chapters, ``book/01_...`` to ``book/07_...``, in reading order."""
    return [d for d in toc_docnames() if re.fullmatch(r"book/0\d_\w+", d)]


def page_path(docname: str) -> Path:
    """The HTML file of a page (the root becomes ``index.html`` as a redirect; the page
    itself keeps its name)."""
    return HTML / f"{docname}.html"


def ensure_built() -> str | None:
    """Return the build log when this call built the book, ``None`` when ``_build/html``
    was already there (built by ``make book``)."""
    BUILD.mkdir(exist_ok=True)
    with open(BUILD / ".book_build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (HTML / "index.html").is_file():
                return LOG.read_text() if LOG.is_file() else None
            cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT),
                   "--warningiserror", "--keep-going"]
            # MPLBACKEND=Agg (set for the tests) would reach the chapters' kernels and
            # replace the inline backend: plt.show() would then draw no figure.
            env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200,
                                  env=env)
            log = proc.stdout + proc.stderr
            LOG.write_text(log)
            if proc.returncode != 0:
                raise AssertionError(f"jupyter-book build failed (exit {proc.returncode}); "
                                     f"log in {LOG}:\n{log[-4000:]}")
            return log
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def sphinx_problems(log: str) -> list[str]:
    """Sphinx warnings and errors of a build log (``path:line: WARNING: ...``). The
    kernel's own start-up notice on stderr (``[IPKernelApp] WARNING | ...``) is not a
    build warning and is not in any page."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", log).splitlines()
    return [ln for ln in lines if re.search(r"\b(WARNING|ERROR|CRITICAL):", ln)]


class _TextAndAssets(HTMLParser):
    """Collects a page's visible text (scripts and styles excluded), its asset URLs
    (``src``, ``<link href>``, ``<object data>``, ``srcset``) and its inline scripts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.assets, self.scripts, self.styles = [], [], [], []
        self._in = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self._in = tag
        for key in ("src", "data", "poster"):
            if attrs.get(key):
                self.assets.append((tag, attrs[key]))
        if tag == "link" and attrs.get("href"):
            rel = (attrs.get("rel") or "").lower()
            if rel not in ("canonical", "alternate", "next", "prev", "index", "search"):
                self.assets.append((tag, attrs["href"]))
        if attrs.get("srcset"):
            for part in attrs["srcset"].split(","):
                self.assets.append((tag, part.strip().split(" ")[0]))
        if attrs.get("style"):
            self.styles.append(attrs["style"])

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)
        else:
            self.text.append(data)


def parse_page(path: Path) -> _TextAndAssets:
    parser = _TextAndAssets()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def normalize(text: str) -> str:
    """Collapse all whitespace to single spaces (HTML highlighting splits code lines
    into spans, but keeps their characters)."""
    return re.sub(r"\s+", " ", text).strip()


def notebook_sources(path: Path) -> list[tuple[str, str]]:
    """``(cell_type, source)`` of every cell of a notebook file."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        out.append((cell.get("cell_type", ""), "".join(src) if isinstance(src, list) else src))
    return out


_BLOCKS = [("### BEGIN SOLUTION", "### END SOLUTION"),
           ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")]


def secret_blocks(source: str) -> list[str]:
    """The lines inside nbgrader's solution and hidden-test markers of a cell source."""
    lines, inside = [], None
    for line in source.splitlines():
        stripped = line.strip()
        if inside is None and any(stripped.startswith(b) for b, _ in _BLOCKS):
            inside = next(e for b, e in _BLOCKS if stripped.startswith(b))
            continue
        if inside is not None and stripped.startswith(inside):
            inside = None
            continue
        if inside is not None:
            lines.append(line)
    return lines
