"""Tampering and hostile submissions against the course grader's engine.

Each case grades one small notebook (two answers, two tests, one point each) with short
limits and checks (a) that tampering does not change the score, or (b) that hostile code
costs only what it breaks, with a reason, and (c) that the same GradingWorker then grades
a correct submission normally."""
import json
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.engine import GradingWorker, Limits

LIMITS = Limits(cell_timeout=2, notebook_timeout=30, memory_mb=1024, max_output_bytes=100_000)

CORRECT_DOUBLE = "def double(x):\n    return 2 * np.asarray(x, dtype=float)"
WRONG_DOUBLE = "def double(x):\n    return 3 * np.asarray(x, dtype=float)"
CORRECT_SQUARE = "def square(x):\n    return np.asarray(x, dtype=float) ** 2"
TEST_DOUBLE = ("import numpy as np\n"
               "from exercise_checks import assert_close\n"
               "assert_close(double([1.0, 2.0]), np.array([2.0, 4.0]), name='double(x)')")
TEST_SQUARE = ("import numpy as np\n"
               "from exercise_checks import assert_close\n"
               "assert_close(square([3.0]), np.array([9.0]), name='square(x)')")


def meta(kind, grade_id, points=0):
    if kind == "answer":
        return {"grade_id": grade_id, "solution": True, "grade": False, "locked": False,
                "schema_version": 3}
    if kind == "test":
        return {"grade_id": grade_id, "solution": False, "grade": True, "locked": True,
                "points": points, "schema_version": 3}
    return {"grade_id": grade_id, "solution": False, "grade": False, "locked": True,
            "schema_version": 3}


def notebook(double=CORRECT_DOUBLE, square=CORRECT_SQUARE):
    cells = [new_markdown_cell("# Doubling and squaring"),
             new_code_cell("import numpy as np"),
             new_code_cell(double), new_code_cell(TEST_DOUBLE),
             new_code_cell(square), new_code_cell(TEST_SQUARE)]
    for c, m in zip(cells[1:], [meta("readonly", "imports"), meta("answer", "double"),
                                meta("test", "test-double", 1), meta("answer", "square"),
                                meta("test", "test-square", 1)]):
        c.metadata["nbgrader"] = m
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    (root / "source" / "ex").mkdir(parents=True)
    src = notebook(double="def double(x):\n    ### BEGIN SOLUTION\n"
                          "    return 2 * np.asarray(x, dtype=float)\n    ### END SOLUTION")
    nbformat.write(src, str(root / "source" / "ex" / "ex.ipynb"))
    (root / "gradebook.db").write_text("secret gradebook")
    (root / "tests").mkdir()
    (root / "tests" / "test_secret.py").write_text("SECRET = 1")
    return root


@pytest.fixture(scope="module")
def worker():
    # grader-only variables set when the worker starts must not reach the sandbox
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NBGRADER_EXECUTION", "autograde")
        patch.setenv("COURSE_GRADE_SECRET", "x")
        with GradingWorker() as w:
            yield w


def grade(worker, course, tmp_path, nb=None, raw=None, name="ex.ipynb"):
    folder = tmp_path / "submitted"
    folder.mkdir(exist_ok=True)
    path = folder / name
    if raw is not None:
        path.write_bytes(raw)
    elif nb is not None:
        nbformat.write(nb, str(path))
    return worker.grade(str(course / "source" / "ex" / "ex.ipynb"), str(path),
                        assignment="ex", student="mallory", limits=LIMITS)


def by_id(result):
    return {c.grade_id: c for c in result.cells}


@pytest.fixture
def then_correct(worker, course, tmp_path_factory):
    """After the case, the same worker grades a correct submission normally."""
    yield
    result = grade(worker, course, tmp_path_factory.mktemp("honest"), notebook())
    assert result.score == result.max_score == 2, result
    assert result.problems == []


def with_double(code, double=WRONG_DOUBLE):
    return notebook(double=f"{code}\n{double}")


# ---------------------------------------------------------------------------------------
# tampering: the score is what the (wrong) double deserves, 1 of 2
# ---------------------------------------------------------------------------------------

TAMPERING = {
    "assertion_error_replaced": "import builtins\n"
                                "builtins.AssertionError = type('AssertionError', (BaseException,), {})",
    "builtins_games": "import builtins\nbuiltins.isinstance = lambda *a: True\n"
                      "builtins.len = lambda x: 0\n__builtins__.abs = lambda x: 0",
    "numpy_and_math_patched": "import math, numpy.testing\n"
                              "np.allclose = lambda *a, **k: True\n"
                              "np.isclose = lambda a, b, **k: np.ones(np.shape(b), bool)\n"
                              "np.testing.assert_allclose = lambda *a, **k: None\n"
                              "math.isclose = lambda *a, **k: True",
    "showtraceback_and_custom_exc": "ip = get_ipython()\n"
                                    "ip.showtraceback = lambda *a, **k: None\n"
                                    "ip.set_custom_exc((BaseException,), lambda *a, **k: None)",
    "input_transformer": "get_ipython().input_transformers_cleanup.append(\n"
                         "    lambda lines: [l.replace('assert_close(', 'print(') for l in lines])",
    "pre_run_cell_hook_fixes_answer_for_tests": (
        "def _hook(info):\n"
        "    if 'assert_close' in (info.raw_cell or ''):\n"
        "        globals()['double'] = lambda x: 2 * np.asarray(x, dtype=float)\n"
        "get_ipython().events.register('pre_run_cell', _hook)"),
    "eq_always_true": "",
    "ndarray_subclass": "",
    "nan_result": "",
    "branch_on_grader_state": (
        "import os, sys\n"
        "GRADING = 'NBGRADER_EXECUTION' in os.environ or 'grader.sandbox' in sys.modules\n"
        "if GRADING:\n"
        "    import numpy, builtins\n"
        "    numpy.isclose = lambda a, b, **k: numpy.ones(numpy.shape(b), bool)\n"
        "    builtins.AssertionError = type('AssertionError', (Exception,), {})"),
}
DOUBLES = {
    "eq_always_true": ("class Anything(float):\n"
                       "    __eq__ = lambda self, other: True\n"
                       "    __array__ = lambda self, *a, **k: np.array([2.0, 4.0])\n"
                       "def double(x):\n"
                       "    return Anything(0.0)"),
    "ndarray_subclass": ("class Liar(np.ndarray):\n"
                         "    def __array_function__(self, *a, **k):\n"
                         "        return True\n"
                         "    def __array_ufunc__(self, *a, **k):\n"
                         "        return np.zeros(2)\n"
                         "    __eq__ = lambda self, other: np.ones(2, bool)\n"
                         "def double(x):\n"
                         "    return np.zeros(2).view(Liar)"),
    "nan_result": "def double(x):\n    return np.full(2, np.nan)",
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_does_not_change_the_score(worker, course, tmp_path, then_correct, case):
    result = grade(worker, course, tmp_path,
                   with_double(TAMPERING[case], DOUBLES.get(case, WRONG_DOUBLE)))
    cells = by_id(result)
    assert cells["test-square"].status == "passed"
    # the wrong answer fails (or, when the tampering broke the student's own cell, errs)
    assert cells["test-double"].points == 0
    assert cells["test-double"].status in ("failed", "error")
    if case != "builtins_games":
        assert cells["test-double"].status == "failed", cells["test-double"]
    assert result.score == 1
    if case == "nan_result":
        assert "NaN" in cells["test-double"].message


def test_grader_variables_do_not_reach_the_sandbox(worker, course, tmp_path, then_correct):
    code = ("import os\n"
            "LEAK = [k for k in os.environ if k.startswith(('NBGRADER', 'COURSE', 'PYTEST'))]\n"
            "def double(x):\n"
            "    assert not LEAK, LEAK\n"
            "    return 2 * np.asarray(x, dtype=float)")
    result = grade(worker, course, tmp_path, notebook(double=code))
    assert result.score == 2, result.cells


def test_course_files_cannot_be_read(worker, course, tmp_path, then_correct):
    targets = [str(course / "source" / "ex" / "ex.ipynb"), str(course / "gradebook.db"),
               str(course / "tests" / "test_secret.py")]
    code = (f"import os\nTARGETS = {targets!r}\n"
            "def _refused(f):\n"
            "    try:\n"
            "        f()\n"
            "    except (PermissionError, FileNotFoundError):\n"
            "        return True\n"
            "    except Exception:\n"
            "        return False\n"
            "    return False\n"
            "CHECKS = [_refused(lambda p=p: open(p).read()) for p in TARGETS]\n"
            "CHECKS += [_refused(lambda p=p: os.open(p, os.O_RDONLY)) for p in TARGETS]\n"
            "CHECKS += [_refused(lambda: np.fromfile(TARGETS[0], dtype=np.uint8)),\n"
            "           _refused(lambda: os.listdir(os.path.dirname(TARGETS[0]))),\n"
            "           _refused(lambda: open(os.path.join(os.path.dirname(TARGETS[1]), 'x'), 'w'))]\n"
            "def double(x):\n"
            "    assert all(CHECKS), CHECKS\n"
            "    return 2 * np.asarray(x, dtype=float)")
    result = grade(worker, course, tmp_path, notebook(double=code))
    assert result.score == 2, by_id(result)["test-double"].message


def test_files_shipped_beside_the_notebook_are_not_imported(worker, course, tmp_path,
                                                            then_correct):
    folder = tmp_path / "submitted"
    folder.mkdir()
    for name in ("numpy.py", "sitecustomize.py", "conftest.py"):
        (folder / name).write_text("raise SystemExit('shadowed')\n")
    (folder / "factor.txt").write_text("2.0")
    code = ("import os, importlib.util\n"
            "FACTOR = float(open('factor.txt').read())\n"
            "HERE = sorted(n for n in os.listdir('.') if not n.startswith('.'))\n"
            "SPECS = [importlib.util.find_spec(m) for m in ('conftest', 'sitecustomize')]\n"
            "def double(x):\n"
            "    assert HERE == ['factor.txt'] and SPECS == [None, None], (HERE, SPECS)\n"
            "    return FACTOR * np.asarray(x, dtype=float)")
    result = grade(worker, course, tmp_path, notebook(double=code))
    assert result.score == 2, by_id(result)["test-double"].message


# ---------------------------------------------------------------------------------------
# hostile code: costs only what it breaks, with a reason
# ---------------------------------------------------------------------------------------

def assert_costs_double_only(result, reason):
    cells = by_id(result)
    assert cells["test-square"].status == "passed", cells["test-square"]
    assert cells["test-double"].points == 0
    assert result.score == 1
    assert any(reason in p for p in result.problems), result.problems


def test_infinite_loop(worker, course, tmp_path, then_correct):
    result = grade(worker, course, tmp_path, with_double("while True:\n    pass"))
    assert_costs_double_only(result, "time limit (2 s) hit in cell 3 (answer 'double')")


def test_sleep_forever(worker, course, tmp_path, then_correct):
    result = grade(worker, course, tmp_path, with_double("import time\ntime.sleep(10**6)"))
    assert_costs_double_only(result, "time limit (2 s) hit in cell 3 (answer 'double')")


def test_infinite_loop_inside_the_tested_function(worker, course, tmp_path, then_correct):
    result = grade(worker, course, tmp_path,
                   notebook(double="def double(x):\n    while True:\n        pass"))
    assert by_id(result)["test-double"].status == "timeout"
    assert_costs_double_only(result, "time limit (2 s) hit in cell 4 (test 'test-double')")


def test_memory_bomb(worker, course, tmp_path, then_correct):
    bomb = "hoard = []\nwhile True:\n    hoard.append(bytes(400 * 2**20))  # calloc: no time spent zeroing"
    result = grade(worker, course, tmp_path, with_double(bomb))
    assert_costs_double_only(result, "memory limit (1024 MB) hit in cell 3 (answer 'double')")


def test_fork_bomb(worker, course, tmp_path, then_correct):
    bomb = "import os\nwhile True:\n    os.fork()"
    result = grade(worker, course, tmp_path, with_double(bomb))
    assert_costs_double_only_without_limit(result, "does not allow os.fork")


def test_subprocess_and_multiprocessing(worker, course, tmp_path, then_correct):
    code = ("import os, subprocess, multiprocessing\n"
            "REFUSED = []\n"
            "for start in (lambda: subprocess.run(['sleep', '100']),\n"
            "              lambda: multiprocessing.Process(target=print).start(),\n"
            "              lambda: os.system('sleep 100'),\n"
            "              lambda: os.execv('/bin/sleep', ['sleep', '100']),\n"
            "              lambda: __import__('_posixsubprocess').fork_exec()):\n"
            "    try:\n"
            "        start()\n"
            "    except PermissionError:\n"
            "        REFUSED.append(True)\n"
            "def double(x):\n"
            "    assert len(REFUSED) == 5, REFUSED\n"
            "    return 2 * np.asarray(x, dtype=float)")
    result = grade(worker, course, tmp_path, notebook(double=code))
    assert result.score == 2, by_id(result)["test-double"].message


def assert_costs_double_only_without_limit(result, text):
    cells = by_id(result)
    assert cells["test-square"].status == "passed"
    assert cells["test-double"].status == "error"  # never defined
    assert result.score == 1
    assert text in json.dumps(result.feedback_notebook)


def test_background_thread_that_keeps_printing(worker, course, tmp_path, then_correct):
    code = ("import threading\n"
            "def chatter():\n"
            "    while True:\n"
            "        print('spam ' * 20)\n"
            "threading.Thread(target=chatter, daemon=True).start()\n" + CORRECT_DOUBLE)
    result = grade(worker, course, tmp_path, notebook(double=code))
    assert result.score == 2
    assert any("output limit (100000 characters)" in p for p in result.problems)


def test_ten_million_lines_of_output(worker, course, tmp_path, then_correct):
    result = grade(worker, course, tmp_path,
                   with_double("for i in range(10**7):\n    print(i)", CORRECT_DOUBLE))
    assert by_id(result)["test-square"].status == "passed"
    assert any("output limit" in p or "time limit" in p for p in result.problems)


def test_input_raises_eof(worker, course, tmp_path, then_correct):
    result = grade(worker, course, tmp_path,
                   notebook(double=CORRECT_DOUBLE + "\nname = input('your name? ')"))
    assert result.score == 2
    assert "EOFError" in json.dumps(result.feedback_notebook)


@pytest.mark.parametrize("exit_code", ["import os\nos._exit(0)",
                                       "import os\nos.kill(os.getpid(), 9)"])
def test_process_exit_in_an_answer_cell(worker, course, tmp_path, then_correct, exit_code):
    result = grade(worker, course, tmp_path, with_double(exit_code))
    assert_costs_double_only(result, "process stopped in cell 3 (answer 'double')")


def test_sys_exit_is_an_error_like_in_a_kernel(worker, course, tmp_path, then_correct):
    result = grade(worker, course, tmp_path,
                   notebook(double=CORRECT_DOUBLE + "\nimport sys\nsys.exit(3)"))
    assert result.score == 2


def test_exit_inside_the_tested_function(worker, course, tmp_path, then_correct):
    code = "import os\ndef double(x):\n    os._exit(1)"
    result = grade(worker, course, tmp_path, notebook(double=code))
    assert by_id(result)["test-double"].status == "limit"
    assert_costs_double_only(result, "process stopped in cell 4 (test 'test-double')")


# ---------------------------------------------------------------------------------------
# broken or edited files
# ---------------------------------------------------------------------------------------

def assert_zero_with(result, reason):
    assert result.score == 0 and result.max_score == 2
    assert all(c.status == "not_run" for c in result.cells)
    assert any(reason in p for p in result.problems), result.problems


def test_invalid_json(worker, course, tmp_path, then_correct):
    assert_zero_with(grade(worker, course, tmp_path, raw=b'{"cells": [,]}'), "invalid JSON")


def test_non_utf8_bytes(worker, course, tmp_path, then_correct):
    raw = nbformat.writes(notebook()).encode("utf-8").replace(b"double", b"d\xffouble", 1)
    assert_zero_with(grade(worker, course, tmp_path, raw=raw), "not valid UTF-8")


def test_empty_file(worker, course, tmp_path, then_correct):
    assert_zero_with(grade(worker, course, tmp_path, raw=b""), "empty file")


def test_huge_file(worker, course, tmp_path, then_correct):
    raw = b'{"cells": [], "pad": "' + b"x" * (21 * 2**20) + b'"}'
    assert_zero_with(grade(worker, course, tmp_path, raw=raw), "larger than")


@pytest.mark.parametrize("what", ["directory", "missing", "text"])
def test_path_that_is_not_a_notebook(worker, course, tmp_path, then_correct, what):
    path = tmp_path / "thing"
    if what == "directory":
        path.mkdir()
    elif what == "text":
        path.write_text("my homework, as plain text")
    result = worker.grade(str(course / "source" / "ex" / "ex.ipynb"), str(path),
                          assignment="ex", student="mallory", limits=LIMITS)
    assert result.score == 0 and result.problems


def test_empty_notebook_grades_as_blank(worker, course, tmp_path, then_correct):
    result = grade(worker, course, tmp_path, new_notebook(cells=[]))
    assert result.score == 0
    assert any("answer cell 'double' is missing" in p for p in result.problems)


def test_nbformat_v3_is_converted(worker, course, tmp_path, then_correct):
    raw = nbformat.writes(nbformat.convert(notebook(), 3)).encode()
    result = grade(worker, course, tmp_path, raw=raw)
    assert result.score == 2
    assert any("nbformat 3" in p for p in result.problems)


def test_deleted_answer_cell_gets_the_stub(worker, course, tmp_path, then_correct):
    nb = notebook()
    del nb.cells[2]
    result = grade(worker, course, tmp_path, nb)
    assert result.score == 1
    assert "NotImplementedError" in by_id(result)["test-double"].message


def test_duplicated_answer_cell_first_counts(worker, course, tmp_path, then_correct):
    nb = notebook(double=WRONG_DOUBLE)
    copy = nbformat.from_dict(json.loads(json.dumps(nb.cells[2])))
    copy.source = CORRECT_DOUBLE
    copy.id = "second-copy"
    nb.cells.append(copy)
    result = grade(worker, course, tmp_path, nb)
    assert result.score == 1
    assert any("more than once" in p for p in result.problems)


def test_reordered_cells_follow_the_source_order(worker, course, tmp_path, then_correct):
    nb = notebook()
    nb.cells = list(reversed(nb.cells))
    assert grade(worker, course, tmp_path, nb).score == 2


def test_retyped_answer_cell_is_graded_as_code(worker, course, tmp_path, then_correct):
    nb = notebook()
    md = new_markdown_cell(nb.cells[2].source)
    md.metadata = nb.cells[2].metadata
    nb.cells[2] = md
    result = grade(worker, course, tmp_path, nb)
    assert result.score == 2
    assert any("changed to markdown" in p for p in result.problems)


def test_edited_nbgrader_metadata_changes_nothing(worker, course, tmp_path, then_correct):
    nb = notebook(double=WRONG_DOUBLE)
    for c in nb.cells:
        m = c.metadata.get("nbgrader")
        if m:
            m["points"], m["checksum"] = 100, "0" * 32
    nb.cells[3].metadata["nbgrader"].update(solution=True, grade=False)  # test -> "answer"
    nb.cells[3].source = "pass"
    nb.cells[2].metadata["nbgrader"].update(solution=False, grade=True, points=50)
    result = grade(worker, course, tmp_path, nb)
    assert result.max_score == 2 and result.score == 1
    assert by_id(result)["test-double"].status == "failed"


def test_foreign_kernelspec_is_ignored(worker, course, tmp_path, then_correct):
    nb = notebook()
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    result = grade(worker, course, tmp_path, nb)
    assert result.score == 2
    assert any("graded with Python" in p for p in result.problems)
    assert result.feedback_notebook["metadata"]["kernelspec"]["name"] == "python3"
