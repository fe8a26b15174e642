"""Serve MathJax from the book itself, so no page fetches anything from the internet.

Sphinx's default ``mathjax_path`` is a CDN address. This extension finds the MathJax 3
bundle that the pip package ``django-static-mathjax`` installs (``import mathjax``),
adds it to ``html_static_path`` (copied to ``_static/mathjax/``) and points
``mathjax_path`` at the local copy. The bundle's location is found at build time through
importlib, so no absolute path is written in the configuration.

It also removes the remote assets that extensions add by default (Thebe's loader, which
would fetch its library from a CDN when a page asks for it) and sets the theme's default
colour mode (the theme logs a console error without one).
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

# tex-chtml: TeX input, CommonHTML output; fonts load relative to the script.
MATHJAX_ENTRY = "mathjax/es5/tex-chtml.js"


def mathjax_static_dir() -> Path:
    """The folder that holds ``mathjax/es5/`` inside the installed django-static-mathjax."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError(
            "offline_assets: the package django-static-mathjax is not installed "
            "(pip install django-static-mathjax); the book needs its MathJax bundle")
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    if not (static / MATHJAX_ENTRY).is_file():
        raise ExtensionError(f"offline_assets: {MATHJAX_ENTRY} not found in the mathjax package")
    return static


def _configure(app: Sphinx, config) -> None:
    config.html_static_path = list(config.html_static_path) + [str(mathjax_static_dir())]
    config.mathjax_path = MATHJAX_ENTRY
    # Without a default the pydata theme logs "Got invalid theme mode" to the console on
    # every first visit; light mode also suits the white matplotlib figures.
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "light")
    config.html_context = context


def _is_thebe(script) -> bool:
    name = getattr(script, "filename", "") or ""
    body = getattr(script, "attributes", {}).get("body", "") or ""
    return "thebe" in name or "THEBE_JS_URL" in body


_THEBE_BODY = re.compile(
    r'<script type="text/x-thebe-config">.*?</script>\s*(<script>kernelName = [^<]*</script>)?',
    re.DOTALL)


def _drop_thebe(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Thebe (live code through Binder) is off in this book: drop its loader, whose
    configuration names a CDN script, and its per-page kernel settings."""
    scripts = context.get("script_files")
    if isinstance(scripts, list):
        scripts[:] = [js for js in scripts if not _is_thebe(js)]
    if "body" in context:
        context["body"] = _THEBE_BODY.sub("", context["body"])


def setup(app: Sphinx) -> dict:
    # After jupyter-book and myst-nb have filled in their defaults.
    app.connect("config-inited", _configure, priority=900)
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
