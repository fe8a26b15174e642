"""The student's feedback: the autograded notebook and its HTML page, without hidden tests.

The engine already replaces hidden tests by a placeholder in
``NotebookResult.feedback_notebook``; this module does not rely on it.  Each test cell is
rebuilt from the instructor's source with every ``### BEGIN HIDDEN TESTS`` ...
``### END HIDDEN TESTS`` region cut out (as nbgrader's ``ClearHiddenTests`` does), its
output is the pass/fail message, and any other output that shows a line of a hidden test is
withheld.  The rendered HTML is searched once more for every hidden line; if one is still
there, the page falls back to the score table alone.
"""
from __future__ import annotations

import ast
import copy
import html
import json
import re

BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
END_HIDDEN = "END HIDDEN TESTS"
PLACEHOLDER = "# (hidden tests: they run when your notebook is graded)"
WITHHELD = "[output withheld: it showed part of a hidden test]\n"
REDACTED = "[a line of a hidden test]"
# A hidden line is a secret only when it says something about the test: long enough, with
# a few names or numbers, and not a bare list of constant arguments such as
# "rtol=1e-10, atol=1e-12," (which every assert_close message shows as "(rtol=1e-10,
# atol=1e-12)"). Messages are searched for whole secret lines, and a found one is cut out
# of the message, so every failing test still shows what failed.
_MIN_SECRET_CHARS = 20
_MIN_SECRET_TOKENS = 3
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+(?:\.\d+)?(?:e-?\d+)?")


def _is_constant_arguments(line: str) -> bool:
    """``rtol=1e-10, atol=1e-12,`` or ``0.5, name="x")``: arguments that are all constants."""
    text = line.strip().rstrip(",").rstrip(")").rstrip(",")
    try:
        call = ast.parse(f"f({text})", mode="eval").body
    except SyntaxError:
        return False
    values = list(call.args) + [k.value for k in call.keywords]
    return bool(values) and all(
        isinstance(v, (ast.Constant, ast.JoinedStr)) or (
            isinstance(v, ast.UnaryOp) and isinstance(v.operand, ast.Constant)) for v in values)


def _is_secret(line: str) -> bool:
    return (len(line) >= _MIN_SECRET_CHARS and len(_TOKEN.findall(line)) >= _MIN_SECRET_TOKENS
            and not _is_message_line(line) and not _is_constant_arguments(line))


def _is_message_line(line: str) -> bool:
    """Whether a line is only a string (a ``hint=...`` continuation line, say).

    Such a line is a failure message, written to be shown to the student.
    """
    text = re.sub(r"^\w+\s*=\s*", "", line.strip()).rstrip(",) \t")
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_test_cell(cell) -> bool:
    meta = _nbgrader(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def split_hidden(source: str) -> tuple[str, list[str]]:
    """``source`` with hidden regions replaced by the placeholder, and the hidden lines."""
    visible, hidden, inside = [], [], False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            visible.append(indent + PLACEHOLDER)
        elif END_HIDDEN in line:
            inside = False
        elif inside:
            hidden.append(line)
        else:
            visible.append(line)
    return "\n".join(visible), hidden


def secret_lines(source_nb: dict, submission_nb: dict | None = None) -> set[str]:
    """Lines of hidden tests that the student cannot already see.

    A hidden line that also appears outside the hidden regions (in the released notebook)
    or in the student's own submission is not a secret, so it does not trigger withholding.
    """
    hidden, visible = set(), set()
    for cell in source_nb.get("cells", []):
        shown, lines = split_hidden(_source(cell))
        hidden.update(line.strip() for line in lines)
        visible.update(line.strip() for line in shown.split("\n"))
    for cell in (submission_nb or {}).get("cells", []) if isinstance(submission_nb, dict) else []:
        if isinstance(cell, dict):
            visible.update(line.strip() for line in _source(cell).split("\n"))
    shown_text = "\n".join(visible)  # a hidden line shown as part of a visible one is no secret
    return {line for line in hidden - visible
            if _is_secret(line) and line not in shown_text}


def _leaks(text: str, secrets: set[str]) -> bool:
    return any(secret in text for secret in secrets)


def _redact(text: str, secrets: set[str]) -> str:
    """``text`` with every whole secret line in it replaced by :data:`REDACTED`."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def _output_text(output: dict) -> str:
    parts = [output.get("text", ""), output.get("evalue", ""), *output.get("traceback", [])]
    for value in (output.get("data") or {}).values():
        parts.append(value if isinstance(value, str) else "".join(value) if isinstance(value, list) else "")
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


def _escape(text: str) -> str:
    """Text from the student's run, made inert in a Markdown table (no HTML, no markup)."""
    text = html.escape(str(text), quote=False).replace("\n", " ")
    return re.sub(r"([\\`*_{}\[\]|#+!~])", r"\\\1", text)


# Student outputs keep only inert kinds: a student's HTML or JavaScript must not run in the
# page an instructor opens (render_html's own allow-list is a second guard).
_SAFE_MIME = ("text/plain", "image/png", "image/jpeg")


def _safe_output(output: dict) -> dict:
    if output.get("output_type") in ("display_data", "execute_result"):
        output = dict(output)
        output["data"] = {k: v for k, v in (output.get("data") or {}).items() if k in _SAFE_MIME}
    return output


def _score_table(result, secrets: set[str]) -> str:
    rows = ["| test | points | result |", "| --- | --- | --- |"]
    for cell in result.cells:
        message = _escape(_redact(cell.message, secrets))
        rows.append(f"| `{cell.grade_id}` | {cell.points:g} / {cell.max_points:g} | "
                    f"{cell.status}{': ' + message if message and cell.status != 'passed' else ''} |")
    lines = [f"# Feedback: {_escape(result.assignment)}", "",
             f"**Student:** {_escape(result.student)} &nbsp; "
             f"**Score: {result.score:g} / {result.max_score:g}**", ""]
    if result.problems:
        lines += ["**Problems while running your notebook:**", ""]
        lines += [f"- {_escape(_redact(problem, secrets))}"
                  for problem in result.problems] + [""]
    return "\n".join(lines + rows)


def feedback_notebook(result, source_nb: dict, secrets: set[str]) -> dict:
    """The notebook the student gets back (nbformat 4 dict), with no hidden test in it."""
    base = result.feedback_notebook if isinstance(result.feedback_notebook, dict) else {}
    nb = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": copy.deepcopy(source_nb.get("metadata", {})),
        "cells": [],
    }
    results = {cell.grade_id: cell for cell in result.cells}
    instructor_text = {_source(c) for c in source_nb.get("cells", [])}
    source_tests = {_nbgrader(c).get("grade_id"): c for c in source_nb.get("cells", []) if is_test_cell(c)}
    cells = base.get("cells") if isinstance(base.get("cells"), list) else source_nb.get("cells", [])
    nb["cells"].append({"cell_type": "markdown", "id": "score-table", "metadata": {}, "source": _score_table(result, secrets)})
    for original in cells:
        if not isinstance(original, dict):
            continue
        cell = copy.deepcopy(original)
        cell["id"] = f"cell-{len(nb['cells'])}"
        grade_id = _nbgrader(cell).get("grade_id")
        if grade_id in source_tests or is_test_cell(cell):
            source_cell = source_tests.get(grade_id)
            cell["source"] = split_hidden(_source(source_cell))[0] if source_cell else PLACEHOLDER
            outcome = results.get(grade_id)
            text = (f"{outcome.status}: {outcome.points:g} / {outcome.max_points:g}"
                    + (f"\n{outcome.message}" if outcome.message else "") + "\n") if outcome else "not graded\n"
            cell["outputs"] = [_stream(_redact(text, secrets))]
            cell["execution_count"] = None
        elif cell.get("cell_type") == "code":
            if _leaks(_source(cell), secrets):
                cell["source"] = "# [source withheld: it contained part of a hidden test]"
            outputs = []
            for output in cell.get("outputs", []) or []:
                outputs.append(_stream(WITHHELD) if _leaks(_output_text(output), secrets) else _safe_output(output))
            cell["outputs"] = outputs
            cell.setdefault("execution_count", None)
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            if _leaks(_source(cell), secrets):
                cell["source"] = "[withheld: it contained part of a hidden test]"
            elif _source(cell) not in instructor_text:
                # a student's written answer: shown as text, its HTML does not run
                cell["source"] = html.escape(_source(cell))
        cell.setdefault("metadata", {})
        nb["cells"].append(cell)
    return nb


def _minimal_page(result) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(c.grade_id)}</td><td>{c.points:g} / {c.max_points:g}</td>"
        f"<td>{html.escape(c.status)}</td></tr>" for c in result.cells)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Feedback "
            f"{html.escape(result.assignment)}</title></head><body><h1>Feedback: "
            f"{html.escape(result.assignment)}</h1><p>Score: {result.score:g} / {result.max_score:g}</p>"
            f"<table><tr><th>test</th><th>points</th><th>result</th></tr>{rows}</table></body></html>")


# -- the HTML page -----------------------------------------------------------------------
# A small, self-contained renderer instead of nbconvert's HTMLExporter (JupyterLab
# template), which costs about a quarter of a second per page (Jinja, a full bleach pass
# over the page, BeautifulSoup) and over a second per process to import: markdown cells get
# the same treatment as there (the source sanitized by bleach with the defaults of
# nbconvert's ``SanitizeHTML``, then rendered by mistune; no script runs in the page),
# code is highlighted by Pygments, and outputs are shown as escaped text or as PNG/JPEG
# images (anything else is dropped).  Instructor cells repeat from one submission to the
# next, so their HTML is cached per process.

_CACHE_LIMIT = 4096
_markdown_cache: dict[str, str] = {}
_code_cache: dict[str, str] = {}
_sanitizer = None
_markdown = None
_style = None
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       font-size: 14px; line-height: 1.45; max-width: 1000px; margin: 2em auto; padding: 0 1em;
       color: #212121; }
.cell { margin: 0.8em 0; }
.input { border: 1px solid #e0e0e0; background: #f7f7f7; border-radius: 2px; }
.input pre, .output pre { margin: 0; padding: 0.4em 0.6em; white-space: pre-wrap;
       word-wrap: break-word; font-family: SFMono-Regular, Menlo, Consolas, monospace;
       font-size: 13px; }
.output pre.stderr { background: #fdd; }
.output img { max-width: 100%; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #bdbdbd; padding: 0.25em 0.6em; text-align: left; }
code { background: #f0f0f0; padding: 0 0.2em; }
"""


def _cached(cache: dict, key: str, make) -> str:
    value = cache.get(key)
    if value is None:
        value = make(key)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value
    return value


def _markdown_html(source: str) -> str:
    global _sanitizer, _markdown
    if _sanitizer is None:
        # nbconvert's SanitizeHTML with its defaults (bleach's tags, attributes and CSS
        # properties; unsafe markup escaped, comments stripped), without importing
        # nbconvert (over a second per worker process)
        import bleach
        from bleach.css_sanitizer import ALLOWED_CSS_PROPERTIES, CSSSanitizer

        css = CSSSanitizer(allowed_css_properties=ALLOWED_CSS_PROPERTIES)
        _sanitizer = lambda text: bleach.clean(  # noqa: E731
            text, tags=bleach.ALLOWED_TAGS, attributes=bleach.ALLOWED_ATTRIBUTES, strip=False,
            strip_comments=True, css_sanitizer=css)
    if _markdown is None:
        import mistune

        _markdown = mistune.create_markdown(escape=False, plugins=["table", "strikethrough", "math"])
    return _markdown(_sanitizer(source))


def _code_html(source: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(source, PythonLexer(), HtmlFormatter(cssclass="highlight", nowrap=False))


def _page_style() -> str:
    global _style
    if _style is None:
        from pygments.formatters import HtmlFormatter

        _style = _CSS + HtmlFormatter(cssclass="highlight").get_style_defs(".highlight")
    return _style


def _text_of(value) -> str:
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def _output_html(output) -> str:
    if not isinstance(output, dict):
        return ""
    kind = output.get("output_type")
    if kind == "stream":
        css = "stderr" if output.get("name") == "stderr" else "stdout"
        return f'<pre class="{css}">{html.escape(_text_of(output.get("text")))}</pre>'
    if kind == "error":
        lines = output.get("traceback")
        text = "\n".join(_text_of(l) for l in lines) if isinstance(lines, list) else \
            f"{_text_of(output.get('ename'))}: {_text_of(output.get('evalue'))}"
        return f'<pre class="stderr">{html.escape(_ANSI.sub("", text))}</pre>'
    if kind in ("display_data", "execute_result"):
        data = output.get("data") if isinstance(output.get("data"), dict) else {}
        for mime in ("image/png", "image/jpeg"):
            image = _text_of(data.get(mime))
            if image and _BASE64.fullmatch(image):
                return f'<img src="data:{mime};base64,{"".join(image.split())}" alt="output">'
        if "text/plain" in data:
            return f"<pre>{html.escape(_text_of(data['text/plain']))}</pre>"
    return ""


def _cell_html(cell) -> str:
    if not isinstance(cell, dict):
        return ""
    kind, source = cell.get("cell_type"), _text_of(cell.get("source"))
    if kind == "markdown":
        return f'<div class="cell markdown">{_cached(_markdown_cache, source, _markdown_html)}</div>'
    if kind != "code":
        return ""  # raw cells are not shown
    outputs = cell.get("outputs") if isinstance(cell.get("outputs"), list) else []
    body = "".join(_output_html(output) for output in outputs)
    return (f'<div class="cell code"><div class="input">{_cached(_code_cache, source, _code_html)}'
            f'</div><div class="output">{body}</div></div>')


# -- math: the book's MathJax, offline ----------------------------------------------------
# The pages typeset the markdown cells' math with MathJax 3 from the pip package
# django-static-mathjax (the book's copy, see book/_ext/offline_assets.py), copied once into
# ``feedback/_mathjax/`` by :func:`install_mathjax`; a page loads it by a relative path, so
# nothing comes from the network. Only the math that mistune marked (``<span
# class="math">``, ``<div class="math">``) is typeset, never a student's output.

MATHJAX_DIR = "_mathjax"
#: the script's address from ``feedback/<student>/<assignment>/<assignment>.html``
MATHJAX_SRC = f"../../{MATHJAX_DIR}/tex-chtml.js"
_MATHJAX_CONFIG = (
    "window.MathJax = {tex: {inlineMath: [['\\\\(', '\\\\)']], "
    "displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']]}, "
    "options: {ignoreHtmlClass: 'cell', processHtmlClass: 'math'}};")


def mathjax_source_dir():
    """``mathjax/es5`` of the installed django-static-mathjax."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the package django-static-mathjax is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"


def install_mathjax(feedback_root) -> None:
    """Copy MathJax's TeX-to-HTML bundle and its fonts into ``feedback_root/_mathjax``
    (once; about 1.5 MB), where every feedback page finds it."""
    import shutil
    from pathlib import Path

    source = mathjax_source_dir()
    target = Path(feedback_root) / MATHJAX_DIR
    entry = target / "tex-chtml.js"
    if entry.is_file() and entry.stat().st_size == (source / "tex-chtml.js").stat().st_size:
        return
    fonts = Path("output") / "chtml" / "fonts" / "woff-v2"
    (target / fonts).mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / fonts, target / fonts, dirs_exist_ok=True)
    shutil.copyfile(source / "tex-chtml.js", entry.with_suffix(".tmp"))
    entry.with_suffix(".tmp").replace(entry)


def render_html(nb: dict, mathjax_src: str | None = MATHJAX_SRC) -> str:
    """A self-contained HTML page of a feedback notebook (see the comment above); with
    ``mathjax_src``, its math is typeset by the MathJax script at that (relative)
    address."""
    title = "Feedback"
    cells = nb.get("cells") if isinstance(nb.get("cells"), list) else []
    body = "\n".join(_cell_html(cell) for cell in cells)
    math = ""
    if mathjax_src and 'class="math"' in body:
        math = (f"<script>{_MATHJAX_CONFIG}</script>\n"
                f"<script defer src=\"{html.escape(mathjax_src)}\"></script>\n")
    return (f"<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">\n"
            f"<title>{title}</title>\n<style>{_page_style()}</style>\n{math}</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n")


def html_leaks(page: str, secrets: set[str]) -> list[str]:
    """Secret lines found in an HTML page (raw or HTML-escaped, tags stripped or not)."""
    plain = html.unescape(re.sub(r"<[^>]+>", "", page))
    return sorted(s for s in secrets if s in page or html.escape(s) in page or s in plain)


def build(result, source_nb: dict, submission_nb: dict | None) -> tuple[dict, str, list[str]]:
    """The autograded notebook and the feedback page of one graded submission.

    Parameters
    ----------
    result : engine.NotebookResult
        The engine's result (its ``feedback_notebook`` is not trusted to be clean).
    source_nb : dict
        The instructor's source notebook (nbformat 4 JSON), hidden tests included.
    submission_nb : dict or None
        The student's notebook, when readable: lines the student wrote are no secret.

    Returns
    -------
    notebook : dict
        nbformat 4 JSON, score table first, hidden test regions replaced by a placeholder.
    page : str
        The HTML page (:func:`render_html`), or the bare score table if a hidden line still
        reached the HTML.
    notes : list of str
        What the instructor should know (such a fallback, a failed export).
    """
    secrets = secret_lines(source_nb, submission_nb)
    nb = feedback_notebook(result, source_nb, secrets)
    notes = []
    try:
        page = render_html(nb)
    except Exception as error:  # a student's odd output must not stop the batch
        page = _minimal_page(result)
        notes.append(f"feedback page reduced to the score table: HTML export failed ({type(error).__name__})")
    if html_leaks(page, secrets):
        page = _minimal_page(result)
        notes.append("feedback page reduced to the score table: hidden test text reached the HTML")
    return nb, page, notes
