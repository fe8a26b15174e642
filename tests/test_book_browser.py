"""The built book in a real browser: headless Chromium (Debian's /usr/bin/chromium),
driven over the DevTools protocol by Playwright, with the network blocked.

The pages are served from ``_build/html`` by a local HTTP server on 127.0.0.1; every
request to another host is aborted and recorded. Each page of the table of contents must
load without console errors or blocked requests, typeset its math with the local MathJax,
load all its images, and the sidebar and "next" links must reach every page from the index.
"""
import functools
import http.server
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

import book_support as bs

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.book,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (run `make browser`)"),
]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    bs.ensure_built()
    handler = functools.partial(_QuietHandler, directory=str(bs.HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api  # a requirement (pip), it drives /usr/bin/chromium

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


class PageVisit:
    """Opens one URL, records console errors, page errors and blocked requests."""

    def __init__(self, context, base):
        self.page = context.new_page()
        self.base = base
        self.console_errors, self.page_errors, self.blocked = [], [], []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base) or url.startswith("data:") or url.startswith("blob:"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def open(self, url, redirects_to=None):
        self.page.goto(url, wait_until="load")
        if redirects_to:  # index.html is a <meta http-equiv="Refresh"> to the root page
            self.page.wait_for_url(redirects_to, wait_until="load")
        # MathJax (deferred) typesets after load; wait for it where the page has math
        if self.page.evaluate("() => !!(window.MathJax && window.MathJax.startup)"):
            self.page.wait_for_function(
                "() => window.MathJax.startup.promise !== undefined", timeout=30000)
            self.page.evaluate("() => window.MathJax.startup.promise")
        self.page.wait_for_load_state("networkidle")
        return self

    def close(self):
        self.page.close()


def _url(base, docname):
    return urljoin(base, f"{docname}.html")


def _open_index(visit, base):
    return visit.open(base + "index.html", redirects_to=_url(base, bs.toc_docnames()[0]))


@pytest.mark.parametrize("docname", bs.toc_docnames() + ["index"])
def test_page_renders_offline(browser, server, docname):
    visit = PageVisit(browser, server)
    if docname == "index":
        _open_index(visit, server)
    else:
        visit.open(_url(server, docname))
    try:
        page = visit.page
        assert not visit.blocked, f"{docname} requested external URLs: {visit.blocked[:5]}"
        assert not visit.page_errors, f"{docname} raised JavaScript errors: {visit.page_errors[:3]}"
        assert not visit.console_errors, f"{docname} logged console errors: {visit.console_errors[:3]}"

        n_math = page.evaluate("() => document.querySelectorAll('.math').length")
        if n_math:
            n_typeset = page.evaluate("() => document.querySelectorAll('mjx-container').length")
            assert n_typeset >= 1, f"{docname}: {n_math} math elements but MathJax typeset none"
        # text outside code that still holds TeX delimiters was not typeset
        raw = page.evaluate("""() => {
            const main = document.querySelector('main') || document.body;
            const copy = main.cloneNode(true);
            copy.querySelectorAll('pre, code, script, style, mjx-container').forEach(e => e.remove());
            const t = copy.textContent;
            return ['$$', '\\\\(', '\\\\[', '\\\\begin{'].filter(d => t.includes(d));
        }""")
        assert not raw, f"{docname} shows raw TeX delimiters {raw}"

        images = page.evaluate("""() => Array.from(document.images).map(
            img => [img.currentSrc || img.src, img.complete && img.naturalWidth > 0])""")
        broken = [src for src, ok in images if not ok]
        assert not broken, f"{docname}: images that did not load: {broken[:3]}"
    finally:
        visit.close()


def _local_page(base, href):
    """The page a link points to (without fragment), or None if it leaves the book."""
    if not href:
        return None
    parsed = urlparse(href)
    if not href.startswith(base):
        return None
    path = parsed.path[len(urlparse(base).path):]
    return path[:-len(".html")] if path.endswith(".html") else None


def test_navigation_reaches_every_page_from_the_index(browser, server):
    docnames = bs.toc_docnames()
    visit = _open_index(PageVisit(browser, server), server)
    try:
        page = visit.page
        sidebar = page.evaluate("""() => Array.from(
            document.querySelectorAll('nav.bd-links a, .bd-sidebar-primary a'))
            .map(a => a.href)""")
        linked = {_local_page(server, href) for href in sidebar}
        missing = [d for d in docnames[1:] if d not in linked]
        assert not missing, f"the index's sidebar does not link {missing}"

        # follow the "next" button from the first page to the last, in toc order
        seen = [_local_page(server, page.url)]
        for _ in range(len(docnames) + 2):
            nxt = page.evaluate(
                "() => { const a = document.querySelector('a.right-next'); return a && a.href; }")
            if not nxt:
                break
            visit.open(nxt)
            seen.append(_local_page(server, page.url))
        assert seen[0] == docnames[0]
        assert seen[1:] == docnames[1:], f"the next links visit {seen} instead of the toc order"
        assert not visit.blocked, f"external requests during navigation: {visit.blocked[:5]}"
    finally:
        visit.close()
