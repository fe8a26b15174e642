"""Build times of the book against the course's targets.

Targets (the baseline): every chapter executes in at most 60 s, a cold build (empty
``_build``, every chapter executed) takes at most 6 minutes, a rebuild with nothing
changed at most 30 s.

The full run copies the repository (without ``.venv``, ``_build``, ``.git``) to a
temporary folder, builds it there from nothing (``jupyter-book build --warningiserror
--keep-going``), reads each chapter's execution time from the jupyter-cache of that
build, then builds again without changes. ``--quick`` only reads the execution times the
repository's own cache recorded at the last ``make book`` (nothing is built), or, when
there is no cache yet, executes one short chapter and times it.

    python -m benchmarks.book [--quick] [--keep] [--allow-warnings]

``--allow-warnings`` still times a build that Sphinx finished with warnings (for
instance a cross-reference to a section another branch adds) and prints them, instead of
stopping at the first failed build.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_LIMIT_S = 60.0
COLD_LIMIT_S = 6 * 60.0
REBUILD_LIMIT_S = 30.0
QUICK_CHAPTER = "book/03_gradients_activations.md"
_SKIP = shutil.ignore_patterns(".venv", "_build", ".git", "__pycache__", ".pytest_cache",
                               ".hypothesis", "*.egg-info")


def chapter_times(book_root: Path) -> dict[str, float]:
    """``{chapter path relative to book_root: execution seconds}`` recorded by
    jupyter-cache in ``book_root/_build/.jupyter_cache``."""
    from jupyter_cache import get_cache

    cache_dir = book_root / "_build" / ".jupyter_cache"
    if not cache_dir.is_dir():
        return {}
    times = {}
    for record in get_cache(str(cache_dir)).list_cache_records():
        uri = Path(record.uri)
        try:
            name = str(uri.relative_to(book_root))
        except ValueError:
            name = uri.name
        seconds = (record.data or {}).get("execution_seconds")
        if seconds is not None:
            times[name] = float(seconds)
    return dict(sorted(times.items()))


def execute_chapter(path: Path) -> float:
    """Execute one MyST chapter top to bottom in a fresh kernel (as the build does, in
    the chapter's folder); return the wall time in seconds."""
    import nbclient
    from myst_nb.core.read import read_myst_markdown_notebook

    nb = read_myst_markdown_notebook(path.read_text(encoding="utf-8"))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def build(book_root: Path, allow_warnings: bool = False) -> float:
    """Build the book in ``book_root``; return the wall time in seconds.

    With ``allow_warnings`` a build that only failed on warnings (the HTML was written)
    counts; its warnings are printed."""
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(book_root),
           "--warningiserror", "--keep-going", "--quiet"]
    # the chapters' kernels need matplotlib's inline backend: no MPLBACKEND=Agg for them
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=book_root, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        log = proc.stdout + proc.stderr
        warnings = [ln for ln in log.splitlines() if "WARNING:" in ln or "ERROR:" in ln]
        built = (book_root / "_build" / "html" / "index.html").is_file()
        if not (allow_warnings and built):
            raise RuntimeError(f"jupyter-book build failed in {book_root}:\n{log[-3000:]}")
        print(f"build finished with {len(warnings)} warnings (--allow-warnings):")
        for line in warnings[:20]:
            print(f"  {line}")
    return elapsed


def _report_chapters(times: dict[str, float]) -> bool:
    ok = True
    for name, seconds in times.items():
        verdict = "ok" if seconds <= CHAPTER_LIMIT_S else "OVER"
        ok &= seconds <= CHAPTER_LIMIT_S
        print(f"chapter {name:40s} {seconds:7.1f} s   ({verdict}, limit {CHAPTER_LIMIT_S:.0f} s)")
    if times:
        worst = max(times.values())
        print(f"ratio slowest chapter / limit = {worst / CHAPTER_LIMIT_S:.2f}")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.book", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="only report the chapter times of the repository's cache")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    parser.add_argument("--allow-warnings", action="store_true",
                        help="time builds that finish with Sphinx warnings too")
    args = parser.parse_args(argv)

    print("Book build times")
    print(f"baseline: targets, chapter <= {CHAPTER_LIMIT_S:.0f} s, cold build <= "
          f"{COLD_LIMIT_S / 60:.0f} min, no-change rebuild <= {REBUILD_LIMIT_S:.0f} s")
    print(f"python {sys.version.split()[0]}")

    if args.quick:
        times = chapter_times(ROOT)
        if times:
            print("chapter times recorded by the last `make book` (_build/.jupyter_cache):")
        else:  # no build yet: time the shortest chapter ourselves
            chapter = ROOT / QUICK_CHAPTER
            print(f"no build cache yet: executing {QUICK_CHAPTER} once")
            times = {QUICK_CHAPTER: execute_chapter(chapter)}
        return 0 if _report_chapters(times) else 1

    tmp = Path(tempfile.mkdtemp(prefix="book-bench-"))
    try:
        copy = tmp / "book"
        shutil.copytree(ROOT, copy, ignore=_SKIP)
        cold = build(copy, args.allow_warnings)
        ok = _report_chapters(chapter_times(copy))
        rebuild = build(copy, args.allow_warnings)
        print(f"cold build        {cold:7.1f} s   (limit {COLD_LIMIT_S:.0f} s)")
        print(f"no-change rebuild {rebuild:7.1f} s   (limit {REBUILD_LIMIT_S:.0f} s)")
        print(f"ratio cold build / limit = {cold / COLD_LIMIT_S:.2f}")
        print(f"ratio rebuild / limit = {rebuild / REBUILD_LIMIT_S:.2f}")
        ok &= cold <= COLD_LIMIT_S and rebuild <= REBUILD_LIMIT_S
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
