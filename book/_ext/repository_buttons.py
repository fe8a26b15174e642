"""The repository, issues and launch (Binder) buttons follow ``repository.url``.

The course sets the address of its public repository in one place, ``repository.url`` in
``_config.yml``. While it is empty (the default: the course has no public address yet) the
buttons are off, so no page links to a made-up repository; once it is set, the repository
and issues buttons and the Binder launch button all point to it.
"""
from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

PLACEHOLDERS = ("github.com/example", "example.com", "example.org", "todo",
                "github.com/executablebooks/jupyter-book")


def _configure(app: Sphinx, config) -> None:
    options = dict(config.html_theme_options or {})
    url = (options.get("repository_url") or "").strip()
    if any(p in url.lower() for p in PLACEHOLDERS):
        raise ExtensionError(f"repository_buttons: repository.url {url!r} is a placeholder; "
                             "set the course's real address or leave it empty")
    on = bool(url)
    options["use_repository_button"] = on
    options["use_issues_button"] = on
    launch = dict(options.get("launch_buttons") or {})
    if not on:
        for key in ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url"):
            launch[key] = ""
    options["launch_buttons"] = launch
    config.html_theme_options = options


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _configure, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
