"""The book is built like a textbook: the rules of book/notation.md, "Conventions for
chapter authors", checked on the sources (fast, no build) and on the built HTML (marked
``book``).

Sources: one bibliography whose every entry is cited and every citation resolves; every
chapter has a *Common mistakes* box, a *Check your understanding* section (3-5 questions,
answers in collapsed dropdowns, one asking for a prediction) and ends with its exercise
link; numbered, captioned figures; labelled equations; cross-references as links; the
source of each experiment beside its call; exercises in chapter order; no placeholder
repository address. HTML: every figure has a number and a caption, the answers are
collapsed, the bibliography lists exactly the .bib entries, the library reference documents
the API, and no page links to a placeholder.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import book_support as bs

BOOK = bs.ROOT / "book"
BIB = BOOK / "references.bib"
CHAPTERS = sorted(BOOK.glob("0[1-7]_*.md"))
CHAPTER_IDS = [p.stem for p in CHAPTERS]
# chapter number -> the exercise that goes with it (chapters 1 and 7 have none)
EXERCISE_OF = {2: "init", 3: "clipping", 4: "dropout", 5: "adam", 6: "batchnorm"}
EXERCISE_ORDER = ["init", "clipping", "dropout", "adam", "batchnorm"]
PLACEHOLDERS = re.compile(r"github\.com/example|(?<![\w.])example\.(com|org)|\bTODO\b",
                          re.IGNORECASE)

CITE = re.compile(r"(?<!`)\{cite(?::[a-z]+)?\}`([^`]+)`")
ROLE = re.compile(r"\{[\w:+-]+\}`[^`]*`")


def _number(path: Path) -> int:
    return int(path.name[:2])


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _notebook(path: Path):
    from myst_nb.core.read import read_myst_markdown_notebook

    return read_myst_markdown_notebook(_read(path))


def _markdown(path: Path) -> str:
    """The chapter's markdown cells joined (code cells left out)."""
    return "\n".join(c.source for c in _notebook(path).cells if c.cell_type == "markdown")


def _prose(markdown: str) -> str:
    """Markdown without fenced blocks in backticks (code, literalinclude), math, roles and
    inline code: the words a reader reads as plain text."""
    lines, fence = [], None
    for line in markdown.splitlines():
        m = re.match(r"^\s*(`{3,})", line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            if line.strip() == fence:
                fence = None
            continue
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.DOTALL)
    text = ROLE.sub(" ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\$[^$]*\$", " ", text)
    return text


def _sections(markdown: str) -> list[tuple[str, str]]:
    """``[(title, body)]`` of the ``## `` sections, in order."""
    parts = re.split(r"^## +(.+)$", markdown, flags=re.MULTILINE)
    return [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts), 2)]


def _bib_keys() -> list[str]:
    return re.findall(r"^@\w+\{([^,\s]+),", _read(BIB), flags=re.MULTILINE)


def _cited_keys() -> dict[str, set[str]]:
    """``{key: {files that cite it}}`` over every page of book/."""
    cited: dict[str, set[str]] = {}
    for path in sorted(BOOK.rglob("*.md")):
        for group in CITE.findall(_read(path)):
            for key in group.split(","):
                key = re.sub(r"\{[^}]*\}", "", key).strip()  # {pre}key{post} text
                cited.setdefault(key, set()).add(path.name)
    return cited


# ------------------------------------------------------------------- bibliography
def test_bibliography_parses_and_is_sorted():
    from pybtex.database import parse_file

    data = parse_file(str(BIB))
    keys = _bib_keys()
    assert keys and len(data.entries) == len(keys)
    assert len(set(keys)) == len(keys), "duplicate keys in references.bib"
    assert keys == sorted(keys), ("keep references.bib in alphabetical order of its keys "
                                  "(fewer merge conflicts)")


def test_every_citation_resolves():
    keys = set(_bib_keys())
    unknown = {k: sorted(f) for k, f in _cited_keys().items() if k not in keys}
    assert not unknown, f"cited but not in book/references.bib: {unknown}"


def test_every_bib_entry_is_cited():
    unused = sorted(set(_bib_keys()) - set(_cited_keys()))
    assert not unused, f"entries of book/references.bib cited nowhere in book/: {unused}"


def test_one_bibliography_page_and_no_reference_lists():
    pages = [p.name for p in BOOK.rglob("*.md") if "{bibliography}" in _read(p)]
    assert pages == ["bibliography.md"], f"the {{bibliography}} directive is on {pages}"
    config = yaml.safe_load(_read(bs.ROOT / "_config.yml"))
    assert config["bibtex_bibfiles"] == ["book/references.bib"]
    for path in sorted(BOOK.glob("*.md")):
        assert not re.search(r"^#+ +References\s*$", _read(path), flags=re.MULTILINE), (
            f"{path.name} has its own References section: cite with {{cite:p}} instead")


# ----------------------------------------------------------------- table of contents
def test_exercises_in_chapter_order_and_reference_parts():
    toc = yaml.safe_load(_read(bs.ROOT / "_toc.yml"))
    parts = {p["caption"]: p["chapters"] for p in toc["parts"]}
    exercises = [c["file"] for c in parts["Exercises"]]
    assert exercises == [f"exercises/{e}/{e}" for e in EXERCISE_ORDER]
    assert [EXERCISE_OF[n] for n in sorted(EXERCISE_OF)] == EXERCISE_ORDER
    reference = [c["file"] for c in parts["Reference"]]
    assert reference == ["book/notation", "book/glossary", "book/bibliography"]
    library = parts["Library reference"][0]
    assert library["file"] == "book/reference/index"
    pages = {s["file"].rsplit("/", 1)[1] for s in library["sections"]}
    assert pages == {"numpy", "torch", "core", "training", "diagnostics", "data"}


def test_exercise_titles_carry_their_position():
    """An exercise's title number is its place in the book ("Exercise 2" is the second)."""
    import json

    for i, name in enumerate(EXERCISE_ORDER, start=1):
        for folder in ("solutions", "exercises"):
            nb = json.loads(_read(bs.ROOT / folder / name / f"{name}.ipynb"))
            first = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
            title = "".join(first["source"]).splitlines()[0]
            m = re.match(r"# Exercise (\d+):", title)
            assert m, f"{folder}/{name}: first line {title!r} is not '# Exercise N: ...'"
            assert int(m.group(1)) == i, (f"{folder}/{name} is exercise {i} in the book, its "
                                          f"title says {title!r}")


def test_library_reference_documents_the_five_packages_and_not_grading():
    text = " ".join(_read(p) for p in sorted((BOOK / "reference").glob("*.md")))
    for module in ("course_lib.numpy.layers", "course_lib.torch.layers",
                   "course_lib.training", "course_lib.diagnostics", "course_lib.data"):
        assert f".. automodule:: {module}" in text, module
    assert "course_lib.grading" not in text


# ---------------------------------------------------------------- placeholder links
def test_repository_url_is_set_once_and_is_no_placeholder():
    config = yaml.safe_load(_read(bs.ROOT / "_config.yml"))
    url = config["repository"]["url"]
    assert not PLACEHOLDERS.search(url or ""), f"repository.url is a placeholder: {url!r}"
    assert "executablebooks" not in (url or "")
    html = config.get("html", {})
    # the buttons follow repository.url (book/_ext/repository_buttons.py), not switches
    assert "use_repository_button" not in html and "use_issues_button" not in html
    for path in [bs.ROOT / "_config.yml", bs.ROOT / "_toc.yml", *sorted(BOOK.rglob("*.md"))]:
        found = PLACEHOLDERS.findall(_read(path))
        assert not found, f"{path.relative_to(bs.ROOT)} contains a placeholder: {found}"


# ------------------------------------------------------------------------ chapters
@pytest.fixture(params=CHAPTERS, ids=CHAPTER_IDS)
def chapter(request) -> Path:
    return request.param


def test_check_your_understanding(chapter):
    sections = _sections(_markdown(chapter))
    titles = [t for t, _ in sections]
    assert "Check your understanding" in titles, f"{chapter.name}: no 'Check your understanding'"
    assert titles[-1] == "Check your understanding", (
        f"{chapter.name}: 'Check your understanding' must be the last section, not {titles[-1]!r}")
    body = sections[-1][1]
    items = re.split(r"^\d+\. ", body, flags=re.MULTILINE)[1:]
    assert 3 <= len(items) <= 5, f"{chapter.name}: {len(items)} questions, want 3 to 5"
    for n, item in enumerate(items, start=1):
        drops = re.findall(r"^\s*(:{3,}|`{3,})\{dropdown\}.*$((?:\n\s*:\w[\w-]*:.*$)*)",
                           item, flags=re.MULTILINE)
        assert len(drops) == 1, f"{chapter.name}, question {n}: wants one answer dropdown"
        assert ":open:" not in drops[0][1], f"{chapter.name}, question {n}: answer is open"
        question = re.split(r"^\s*(?::{3,}|`{3,})\{dropdown\}", item, flags=re.MULTILINE)[0]
        assert question.strip(), f"{chapter.name}, question {n} is empty"
    predicts = [i for i in items
                if re.search(r"\bpredict", re.split(r"\{dropdown\}", i)[0], re.IGNORECASE)]
    assert predicts, f"{chapter.name}: no question asks to predict an experiment's result"


def _admonitions(markdown: str, title: str) -> list[str]:
    """Bodies of the admonitions with this title (colon or backtick fences)."""
    out = []
    for m in re.finditer(r"^(\s*)(:{3,}|`{3,})\{admonition\} *" + re.escape(title) + r" *$",
                         markdown, flags=re.MULTILINE):
        fence = m.group(2)
        rest = markdown[m.end():]
        close = re.search(r"^\s*" + re.escape(fence) + r"\s*$", rest, flags=re.MULTILINE)
        out.append(rest[: close.start()] if close else rest)
    return out


def test_common_mistakes_box(chapter):
    boxes = _admonitions(_markdown(chapter), "Common mistakes")
    assert len(boxes) == 1, f"{chapter.name}: wants one 'Common mistakes' admonition, has {len(boxes)}"
    bullets = re.findall(r"^\s*- \S", boxes[0], flags=re.MULTILINE)
    assert len(bullets) >= 2, f"{chapter.name}: the 'Common mistakes' box lists {len(bullets)} items"


def test_ends_with_the_exercise_link(chapter):
    lines = [ln for ln in _read(chapter).splitlines() if ln.strip()]
    last = lines[-1]
    assert last.startswith("**Exercise:** "), (
        f"{chapter.name}: the last line must be the exercise link, is {last!r}")
    linked = re.findall(r"\{doc\}`(?:[^`<]*<)?\.\./exercises/(\w+)/(\w+)>?`", last)
    assert linked and all(a == b for a, b in linked), f"{chapter.name}: {last!r} links no exercise"
    number = _number(chapter)
    if number in EXERCISE_OF:
        assert linked[0][0] == EXERCISE_OF[number], (
            f"{chapter.name} goes with the exercise {EXERCISE_OF[number]!r}, links {linked[0][0]!r}")
    else:
        assert re.search(r"\bnone\b", last), f"{chapter.name} has no exercise: say 'none'"


def test_figures_are_numbered_with_captions(chapter):
    nb = _notebook(chapter)
    shown = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or "plt.show()" not in cell.source:
            continue
        shown += 1
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        first = cell.source.strip().splitlines()[0]
        assert str(figure.get("name", "")).startswith("fig-"), (
            f"{chapter.name}: the figure of the cell starting {first!r} has no name 'fig-...'")
        assert str(figure.get("caption", "")).strip(), (
            f"{chapter.name}: the figure {figure.get('name')} has no caption")
    markdown = _markdown(chapter)
    for m in re.finditer(r"^(\s*)(:{3,}|`{3,})\{(glue:figure|figure)\}.*$", markdown,
                         flags=re.MULTILINE):
        rest = markdown[m.end():]
        close = re.search(r"^\s*" + re.escape(m.group(2)) + r"\s*$", rest, flags=re.MULTILINE)
        body = rest[: close.start()] if close else rest
        assert re.search(r"^\s*:name: *fig-", body, flags=re.MULTILINE), (
            f"{chapter.name}: {m.group(0).strip()!r} has no :name: fig-...")
        caption = [ln for ln in body.splitlines() if ln.strip() and not re.match(r"\s*:\w", ln)]
        assert caption, f"{chapter.name}: {m.group(0).strip()!r} has no caption"
        shown += 1
    assert shown, f"{chapter.name} has no figure"


def test_display_equations_are_labelled(chapter):
    markdown = _markdown(chapter)
    blocks = re.findall(r"^\$\$(.*?)\$\$([^\n]*)$", markdown, flags=re.MULTILINE | re.DOTALL)
    for body, after in blocks:
        assert re.fullmatch(r" *\(eq-[\w-]+\) *", after), (
            f"{chapter.name}: the equation {body.strip()[:50]!r} has no label "
            f"'$$ (eq-...)'")


def test_cross_references_are_links(chapter):
    prose = _prose(_markdown(chapter))
    bare = re.findall(r"\b[Cc]hapters? \d[^\n]{0,30}", prose)
    assert not bare, (f"{chapter.name}: write chapter references as {{doc}} links: {bare[:3]}")


def test_glossary_terms_are_linked(chapter):
    assert "{term}`" in _read(chapter), f"{chapter.name} links no glossary term ({{term}})"


def _experiment_calls(nb):
    """``[(cell index, module file, function)]`` for calls into course_lib.experiments."""
    aliases, calls = {}, []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for mod, alias in re.findall(
                r"from course_lib\.experiments import (\w+)(?: as (\w+))?", cell.source):
            aliases[alias or mod] = mod
        for mod, alias in re.findall(
                r"import course_lib\.experiments\.(\w+) as (\w+)", cell.source):
            aliases[alias] = mod
        for alias, fn in re.findall(r"\b(\w+)\.(\w+)\(", cell.source):
            if alias in aliases and not fn.startswith("_"):
                calls.append((i, aliases[alias], fn))
    return calls


def test_experiment_source_beside_each_call(chapter):
    nb = _notebook(chapter)
    seen = set()
    calls = _experiment_calls(nb)
    assert calls, f"{chapter.name} calls no experiment from course_lib.experiments"
    for index, module, fn in calls:
        if (module, fn) in seen:
            continue
        seen.add((module, fn))
        after = []
        for cell in nb.cells[index + 1:]:
            if cell.cell_type == "markdown":
                head = re.split(r"^## ", cell.source, flags=re.MULTILINE)
                after.append(head[0])
                if len(head) > 1:
                    break
        text = "\n".join(after)
        pattern = (r"\{literalinclude\} +\.\./course_lib/experiments/" + re.escape(module) +
                   r"\.py\s*\n(?:\s*:[\w-]+:.*\n)*?\s*:pyobject: +" + re.escape(fn) + r"\s*$")
        assert re.search(pattern, text, flags=re.MULTILINE), (
            f"{chapter.name}: no 'literalinclude ../course_lib/experiments/{module}.py "
            f":pyobject: {fn}' after its first call, in the same section")
        block = re.search(r"(`{3,}|:{3,})\{dropdown\}[^\n]*\n(?:(?!\1\s*\n).)*?:pyobject: +"
                          + re.escape(fn) + r"\s*$", text, flags=re.MULTILINE | re.DOTALL)
        assert block, f"{chapter.name}: the source of {fn} is not inside a {{dropdown}}"


# --------------------------------------------------------------------------- HTML
def _html_pages():
    bs.ensure_built()
    return sorted(bs.HTML.rglob("*.html"))


@pytest.mark.book
def test_no_page_links_to_a_placeholder():
    from html.parser import HTMLParser

    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.urls = []

        def handle_starttag(self, tag, attrs):
            for key, value in attrs:
                if key in ("href", "src", "action", "data-url") and value:
                    self.urls.append(value)

    pages = _html_pages()
    assert pages
    for page in pages:
        html = page.read_text(encoding="utf-8", errors="replace")
        parser = Links()
        parser.feed(html)
        bad = [u for u in parser.urls if PLACEHOLDERS.search(u)
               or "github.com/executablebooks/jupyter-book" in u]
        assert not bad, f"{page.relative_to(bs.HTML)} links to placeholders: {bad[:3]}"
        assert "github.com/example" not in html, page.relative_to(bs.HTML)


@pytest.mark.book
def test_html_figures_have_numbers_and_captions():
    _html_pages()
    for path in CHAPTERS:
        html = bs.page_path(f"book/{path.stem}").read_text(encoding="utf-8")
        images = len(re.findall(r"<img\b", html))
        figures = re.findall(r"<figure\b.*?</figure>", html, flags=re.DOTALL)
        numbered = [f for f in figures if "caption-number" in f and "<img" in f]
        assert images and len(numbered) == images, (
            f"{path.stem}: {images} images, {len(numbered)} in numbered, captioned figures")


@pytest.mark.book
def test_html_answers_are_collapsed():
    _html_pages()
    for path in CHAPTERS:
        html = bs.page_path(f"book/{path.stem}").read_text(encoding="utf-8")
        details = re.findall(r"<details\b[^>]*>", html)
        assert details, f"{path.stem} has no collapsed block"
        assert not [d for d in details if re.search(r"\bopen\b", d)], f"{path.stem}: an open dropdown"


@pytest.mark.book
def test_html_bibliography_lists_every_entry_once():
    """The {bibliography} directive lists the cited entries: all of references.bib."""
    _html_pages()
    html = bs.page_path("book/bibliography").read_text(encoding="utf-8")
    entries = len(re.findall(r'<div class="citation" id="[^"]+" role="doc-biblioentry">', html))
    assert entries == len(_bib_keys()), (
        f"the bibliography page lists {entries} works, references.bib has {len(_bib_keys())}")


@pytest.mark.book
def test_html_library_reference_documents_the_api():
    _html_pages()
    expected = {
        "numpy": ["course_lib.numpy.layers.BatchNorm1d", "course_lib.numpy.optim.Adam",
                  "course_lib.numpy.init.kaiming_normal_", "course_lib.numpy.layers.Linear"],
        "torch": ["course_lib.torch.layers.BatchNorm1d", "course_lib.torch.optim.AdamW",
                  "course_lib.torch.clip.clip_grad_norm_"],
        "training": ["course_lib.training.fit", "course_lib.training.EarlyStopping"],
        "diagnostics": ["course_lib.diagnostics.update_to_data_ratio"],
        "data": ["course_lib.data.Standardizer", "course_lib.data.minibatches"],
    }
    for page, names in expected.items():
        html = bs.page_path(f"book/reference/{page}").read_text(encoding="utf-8")
        for name in names:
            assert f'id="{name}"' in html, f"book/reference/{page} does not document {name}"
        assert "course_lib.grading" not in html
