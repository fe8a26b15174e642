"""The built book (``_build/html``): clean build, every chapter executed, no solution or
hidden test leaked, nothing loaded from the internet.

``make test`` runs ``make book`` first; without it the session builds the book once
(``book_support.ensure_built``).
"""
import re
from pathlib import Path

import pytest

import book_support as bs

pytestmark = pytest.mark.book


@pytest.fixture(scope="session")
def build_log():
    return bs.ensure_built()


@pytest.fixture(scope="session")
def pages(build_log):
    return sorted(bs.HTML.rglob("*.html"))


def _chapters():
    return bs.chapter_docnames()


def test_build_log_has_no_warnings(build_log):
    if build_log is None:
        pytest.skip("_build/html was built by `make book` (with --warningiserror, so a warning "
                    "already failed it); no log to read here")
    problems = bs.sphinx_problems(build_log)
    assert not problems, "the book build reported:\n" + "\n".join(problems[:20])


def test_every_toc_page_was_built(pages):
    for docname in bs.toc_docnames():
        assert bs.page_path(docname).is_file(), f"{docname} is in _toc.yml but was not built"
    assert (bs.HTML / "index.html").is_file()


def test_no_error_or_stderr_output_in_any_page(pages):
    bad = re.compile(r'class="[^"]*\b(output (stderr|traceback)|highlight-ipythontb)\b')
    for page in pages:
        html = page.read_text(encoding="utf-8", errors="replace")
        assert not bad.search(html), f"{page.relative_to(bs.HTML)} shows an error/stderr output"
        text = bs.normalize(" ".join(bs.parse_page(page).text))
        assert "Traceback (most recent call last)" not in text, page


def test_every_chapter_was_executed_without_failure(pages):
    from jupyter_cache import get_cache

    cache = get_cache(str(bs.BUILD / ".jupyter_cache"))
    failed = [r.uri for r in cache.list_project_records() if r.traceback]
    assert not failed, f"jupyter-cache recorded failures for {failed}"
    executed = {Path(r.uri).resolve() for r in cache.list_cache_records()}
    for docname in _chapters():
        source = next(bs.ROOT.glob(docname + ".*"))
        assert source.resolve() in executed, f"{docname} has no executed notebook in the cache"
        html = bs.page_path(docname).read_text(encoding="utf-8")
        assert "cell_output" in html, f"{docname} shows no cell output"


def test_chapters_have_figures_and_no_unresolved_glue(pages):
    for docname in _chapters():
        html = bs.page_path(docname).read_text(encoding="utf-8")
        assert "<img" in html, f"{docname} has no figure"
        assert "{glue:" not in html, f"{docname} has an unresolved glue reference"


def _secret_lines():
    """Non-trivial lines of the solution and hidden-test blocks of every solutions
    notebook, minus lines that the student release (exercises/) shows anyway."""
    sources = sorted(bs.ROOT.glob("solutions/*/*.ipynb"))
    assert sources, "solutions/*/*.ipynb must exist"
    secrets = {}
    for nb in sources:
        release = bs.ROOT / "exercises" / nb.parent.name / nb.name
        public = ""
        if release.is_file():  # what the student sees anyway (hints, visible tests)
            public = bs.normalize(" ".join(src for _, src in bs.notebook_sources(release)))
        for _, src in bs.notebook_sources(nb):
            for line in bs.secret_blocks(src):
                norm = bs.normalize(line)
                # short lines ("return x", "pass", "else:") are not evidence of a leak
                if len(norm) >= 20 and norm not in public and not norm.startswith("#"):
                    secrets.setdefault(norm, nb.relative_to(bs.ROOT))
    return secrets


def _build_texts():
    """Every readable file under _build/html, as whitespace-normalized text."""
    for path in sorted(bs.HTML.rglob("*")):
        if not path.is_file() or "_static" in path.parts:
            continue
        if path.suffix == ".html":
            yield path, bs.normalize(" ".join(bs.parse_page(path).text))
        elif path.suffix == ".ipynb":
            yield path, bs.normalize(" ".join(s for _, s in bs.notebook_sources(path)))
        elif path.suffix in (".txt", ".md", ".js", ".py", ".json"):
            yield path, bs.normalize(path.read_text(encoding="utf-8", errors="replace"))


def test_no_solution_or_hidden_test_text_in_the_build(pages):
    secrets = _secret_lines()
    assert secrets, "found no solution/hidden-test lines in solutions/: are the markers right?"
    for path, text in _build_texts():
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{path.relative_to(bs.HTML)} contains {marker!r}"
        leaked = [line for line in secrets if line in text]
        assert not leaked, (f"{path.relative_to(bs.HTML)} shows solution/hidden-test text, e.g. "
                            f"{leaked[0]!r} from {secrets[leaked[0]]}")


_EXTERNAL = re.compile(r"^(https?:)?//", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*['"]?((https?:)?//[^'")]+)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+['"]((https?:)?//[^'"]+)""", re.IGNORECASE)


def test_no_external_assets_in_any_page(pages):
    assert pages
    for page in pages:
        parsed = bs.parse_page(page)
        external = [f"<{tag}> {url}" for tag, url in parsed.assets if _EXTERNAL.match(url)]
        for style in parsed.styles:
            external += [f"css {m[0]}" for m in _CSS_URL.findall(style) + _CSS_IMPORT.findall(style)]
        for script in parsed.scripts:
            external += [f"inline script {m}" for m in re.findall(r"https?://[^\s'\"]+", script)]
        assert not external, f"{page.relative_to(bs.HTML)} loads from the internet: {external[:5]}"


def test_no_external_urls_in_stylesheets(pages):
    for css in (bs.HTML / "_static").rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        found = _CSS_URL.findall(text) + _CSS_IMPORT.findall(text)
        assert not found, f"{css.relative_to(bs.HTML)} references {found[0][0]}"


def test_mathjax_is_served_locally(pages):
    for docname in _chapters():
        parsed = bs.parse_page(bs.page_path(docname))
        srcs = [url for tag, url in parsed.assets if tag == "script" and "mathjax" in url.lower()]
        assert srcs, f"{docname} loads no MathJax"
        for url in srcs:
            local = (bs.page_path(docname).parent / url.split("?")[0]).resolve()
            assert local.is_file(), f"{docname}: {url} is not in the build"
