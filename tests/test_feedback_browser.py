"""Feedback pages in a real browser: headless Chromium, offline (the network blocked).

Two submissions are graded by ``course-grade autograde`` (the real engine and sandbox):
a dropout answer that divides by p (three failing tests, each with a hint) and a batch
norm answer that raises an error whose message has an apostrophe. Each feedback page is
opened from a local HTTP server, as the book's pages are (``test_book_browser.py``):
nothing may be requested from another host, the markdown's equations must be typeset by
the local MathJax, every failing test must show its message (never the "withheld"
placeholder), and no text may appear escaped twice (``&#x27;``, ``&amp;``).
"""
import functools
import http.server
import threading

import nbformat
import pytest

import grading_harness as harness
from test_book_browser import CHROMIUM, PageVisit, _QuietHandler, browser  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="no /usr/bin/chromium (run `make browser`)")]

BN_ERROR = '''
def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5,
                      training=True):
    raise ValueError("x isn't what I expected: it's 'wrong' & <odd>")


def batchnorm_backward(dout, cache):
    raise ValueError("the cache isn't there")
'''


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    from grader import cli

    course = harness.make_course(tmp_path_factory.mktemp("course"), ("dropout", "batchnorm"))
    dropout = harness.solution_answers("dropout")
    case = next(c for c in harness.load_cases("dropout") if c["student"] == "scales-by-one-over-p")
    submissions = {
        ("ann", "dropout"): harness.make_submission("dropout", {**dropout, **case["answers"]}),
        ("ann", "batchnorm"): harness.make_submission(
            "batchnorm", {**harness.solution_answers("batchnorm"), "batchnorm-forward": BN_ERROR}),
    }
    for (student, assignment), nb in submissions.items():
        path = course / "submitted" / student / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    status = cli.main(["autograde", "dropout", "batchnorm", "--course-dir", str(course),
                       "--workers", "1", "--no-progress"])
    assert status == 0
    root = course / "feedback"
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("assignment, failing", [
    ("dropout", {"test-dropout-scaling", "test-dropout-backward", "test-dropout-edges"}),
    ("batchnorm", {"test-bn-forward", "test-bn-running-stats", "test-bn-eval",
                   "test-bn-backward-dx", "test-bn-backward-params"}),
])
def test_feedback_page_in_chromium(browser, pages, assignment, failing):  # noqa: F811
    base, root = pages
    assert (root / "_mathjax" / "tex-chtml.js").is_file()
    visit = PageVisit(browser, base)
    try:
        visit.open(f"{base}ann/{assignment}/{assignment}.html")
        page = visit.page
        assert not visit.blocked, f"requests to other hosts: {visit.blocked[:3]}"
        assert not visit.page_errors, visit.page_errors[:3]
        assert not visit.console_errors, visit.console_errors[:3]
        # equations typeset by the local MathJax, none left as TeX source
        n_math = page.evaluate("() => document.querySelectorAll('.math').length")
        n_typeset = page.evaluate("() => document.querySelectorAll('.math mjx-container').length")
        assert n_math >= 1 and n_typeset == n_math, (n_math, n_typeset)
        raw = page.evaluate("""() => {
            const copy = document.body.cloneNode(true);
            copy.querySelectorAll('pre, code, script, style, mjx-container').forEach(e => e.remove());
            const t = copy.textContent;
            return ['$$', '\\\\(', '\\\\[', '\\\\frac'].filter(d => t.includes(d));
        }""")
        assert not raw, f"TeX source shown: {raw}"
        text = page.evaluate("() => document.body.innerText")
        # the score table: every failing test with its message
        rows = page.evaluate("""() => Array.from(document.querySelectorAll('table tr')).map(
            r => Array.from(r.cells).map(c => c.innerText))""")
        by_test = {r[0]: r for r in rows if len(r) == 3}
        for grade_id in failing:
            row = by_test[grade_id]
            assert row[1].startswith("0 /"), row
            message = row[2].split(":", 1)[1].strip() if ":" in row[2] else ""
            assert len(message) > 10 and "withheld" not in message, row
        assert "withheld" not in text
        for twice in ("&#x27;", "&amp;", "&quot;", "&lt;", "&gt;", "&#39;"):
            assert twice not in text, f"{twice} shown on the page"
        if assignment == "batchnorm":
            assert "x isn't what I expected: it's 'wrong' & <odd>" in text
        else:
            assert "divided by p" in text
    finally:
        visit.close()
