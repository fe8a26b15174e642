"""Correct code scores the same in the course grader as in a kernel: the pieces underneath.

Callables without a name of their own (``functools.partial``, callable instances) in the
own-work checks, student exceptions rebuilt as the nearest trusted built-in or NumPy class,
tuple subclasses (a namedtuple cache) that travel as data and come back as the student's
own object, and cells the student added, run where they stand. The notebook-level checks
(both engines on the catalogue) are in ``test_exercises_grading.py`` and
``test_exercises_course_grading.py``.
"""
import collections
import functools
import pickle

import numpy as np
import pytest

from exercise_checks import assert_own_work, assert_raises, delegations
from grader import codec
from grader import notebook as nbio
from grader.ownwork import assert_own_text
from grader.proxy import StudentError, student_error


# -- own work: any callable, the name the test cell asked for ---------------------------

def _through(init, shape):
    import torch
    return init(torch.empty(shape)).numpy()


def test_partial_of_a_forbidden_routine_is_found_in_a_kernel():
    import torch
    glorot_uniform = functools.partial(_through, torch.nn.init.xavier_uniform_)
    found = delegations(glorot_uniform, ("torch.nn.init",))
    assert found and found[0][1].startswith("torch.nn.init")
    with pytest.raises(AssertionError, match="glorot_uniform calls torch.nn.init"):
        assert_own_work(glorot_uniform, ("torch.nn.init",))


class _Scaled:
    def __init__(self, factor):
        self.factor = factor

    def __call__(self, x):
        return self.factor * np.asarray(x)


def test_partial_and_callable_instance_of_own_code_pass_in_a_kernel():
    own = functools.partial(np.multiply, 2.0)
    scaled = _Scaled(3.0)
    assert_own_work(own, ("torch.nn.init",))
    assert_own_work(scaled, ("torch.nn.init",))
    assert delegations(scaled, ("numpy.multiply",)) == []


def test_own_work_text_follows_partials_and_instances():
    answers = ["import functools\nimport torch\n\n"
               "def _impl(init, shape):\n    return init(torch.empty(shape))\n\n"
               "glorot_uniform = functools.partial(_impl, torch.nn.init.xavier_uniform_)\n",
               "class He:\n    def __call__(self, shape):\n        return shape\n\nhe_normal = He()\n"]
    with pytest.raises(AssertionError, match="glorot_uniform calls torch.nn.init"):
        assert_own_text("glorot_uniform", answers, ("torch.nn.init",))
    assert_own_text("he_normal", answers, ("torch.nn.init",))


# -- student exceptions ------------------------------------------------------------------

def _report(name, mro):
    return {"type": name, "message": "p must be in [0, 1]", "traceback": "", "mro": mro}


def test_a_value_error_subclass_is_a_value_error():
    error = student_error(_report("ProbabilityError", ["__main__.ProbabilityError",
                                                       "builtins.ValueError",
                                                       "builtins.Exception",
                                                       "builtins.BaseException",
                                                       "builtins.object"]))
    assert isinstance(error, ValueError) and isinstance(error, StudentError)
    assert type(error).__name__ == "ProbabilityError"
    assert str(error) == "p must be in [0, 1]"

    def raiser():
        raise error
    assert_raises(ValueError, raiser)


def test_numpy_axis_error_is_rebuilt_as_numpy_s_class():
    error = student_error(_report("AxisError", ["numpy.exceptions.AxisError",
                                                "builtins.ValueError", "builtins.IndexError",
                                                "builtins.LookupError",
                                                "builtins.Exception"]))
    assert isinstance(error, np.exceptions.AxisError)
    assert isinstance(error, ValueError) and isinstance(error, IndexError)


def test_exception_names_from_the_sandbox_are_only_compared_never_imported():
    # names of modules that are not on the allow-list give no base class at all
    error = student_error(_report("Evil", ["os.system", "subprocess.Popen",
                                           "grader.proxy.SandboxLimit"]))
    assert type(error).__mro__[1:] == StudentError.__mro__
    assert codec.trusted_exception_bases("builtins.ValueError") == []
    assert codec.trusted_exception_bases(["builtins.SystemExit", "builtins.KeyboardInterrupt"]) \
        == []


def test_wrong_exception_message_names_the_student_s_class_only():
    error = student_error(_report("KeyError", ["builtins.KeyError", "builtins.LookupError"]))

    def raiser():
        raise error
    with pytest.raises(AssertionError) as info:
        assert_raises(ValueError, raiser)
    assert "raised KeyError" in str(info.value) and "StudentError" not in str(info.value)


# -- tuple subclasses ------------------------------------------------------------------

def test_a_namedtuple_travels_as_data_and_returns_as_the_student_s_object():
    Cache = collections.namedtuple("Cache", ["x_hat", "std"])
    cache = Cache(np.arange(3.0), 2.0)
    registry = {}

    def register(obj):
        registry[7] = obj
        return {"id": 7, "kind": "object", "name": "", "type": "Cache", "module": ""}

    class FakeRemote:
        __course_handle_id__ = True

        def __init__(self, description):
            self._handle_id = description["id"]

    message = codec.encode((np.ones(2), cache), register)
    out, back = codec.decode(message, FakeRemote)
    assert isinstance(back, tuple) and isinstance(back, codec.HandleTuple)
    np.testing.assert_array_equal(back.x_hat, cache.x_hat)
    assert back.std == 2.0 and back[1] == 2.0 and len(back) == 2
    x_hat, std = back
    np.testing.assert_array_equal(x_hat, np.arange(3.0))
    # passed back to the sandbox, it is the student's own namedtuple again
    again = codec.loads(codec.dumps({"cache": back}), registry.__getitem__)
    assert again["cache"] is cache


def test_plain_tuples_stay_plain():
    assert type(codec.decode(codec.encode((1, 2.5)))) is tuple


# -- added cells -----------------------------------------------------------------------

def _source():
    def cell(kind, gid, text, **meta):
        return {"cell_type": kind, "metadata": {"nbgrader": {"grade_id": gid, **meta}},
                "source": text, **({"outputs": [], "execution_count": None}
                                   if kind == "code" else {})}
    return {"cells": [cell("markdown", "intro", "# x", locked=True),
                      cell("code", "imports", "import numpy as np", locked=True),
                      cell("code", "answer", "def f(x):\n    ### BEGIN SOLUTION\n    return x\n"
                           "    ### END SOLUTION", solution=True, grade=False),
                      cell("code", "test-f", "assert f(1) == 1", grade=True, solution=False,
                           points=1)],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_added_cells_run_where_the_student_put_them(tmp_path):
    import json
    source = _source()
    submission = json.loads(json.dumps(source))
    submission["cells"].insert(0, {"cell_type": "code", "metadata": {}, "source": "top = 1",
                                   "outputs": [], "execution_count": None})
    submission["cells"].insert(3, {"cell_type": "code", "metadata": {},
                                   "source": "def helper(x):\n    return x",
                                   "outputs": [], "execution_count": None})
    submission["cells"].insert(4, {"cell_type": "markdown", "metadata": {}, "source": "note"})
    path = tmp_path / "s.ipynb"
    path.write_text(json.dumps(submission))
    answers, added, notes = nbio.read_submission_cells(path, {"answer"}, nbio.known_ids(source))
    assert added == [(None, "top = 1"), ("imports", "def helper(x):\n    return x")]
    steps = nbio.plan(source, answers, added)
    assert [s.kind for s in steps] == ["added", "code", "added", "answer", "test"]
    assert steps[2].label == "your added cell after 'imports'"
    records = {s.index: {"status": "ok", "message": "", "output": ""} for s in steps}
    feedback = nbio.feedback(source, steps, records)
    texts = ["".join(c["source"]) for c in feedback["cells"]]
    assert texts.index("top = 1") == 0
    assert texts.index("def helper(x):\n    return x") == texts.index("import numpy as np") + 1


# -- checks that say what they found ---------------------------------------------------

def test_assert_close_dtype_and_the_hint_of_the_mistake_found():
    from exercise_checks import assert_close
    with pytest.raises(AssertionError, match="dtype float32 where float64 was asked for"):
        assert_close(np.ones(3, np.float32), np.ones(3), name="w", dtype=np.float64)
    x = np.array([1.0, 2.0])
    mistakes = {"divided by p": x / 0.2, "not scaled": x}
    with pytest.raises(AssertionError, match="Hint: divided by p"):
        assert_close(x / 0.2, x / 0.8, name="out", hint="generic", mistakes=mistakes)
    with pytest.raises(AssertionError, match="Hint: generic"):
        assert_close(x * 7, x / 0.8, name="out", hint="generic", mistakes=mistakes)
    assert_close(x / 0.8, x / 0.8, name="out", mistakes=mistakes)


def test_observe_call_sees_the_global_rng_and_replaced_entries():
    from exercise_checks import observe_call

    def clip_replacing(grads, c):
        for i, g in enumerate(grads):
            grads[i] = np.clip(g, -c, c)

    def clip_in_place(grads, c):
        for g in grads:
            np.clip(g, -c, c, out=g)

    grads = [np.array([3.0, -3.0]), np.array([0.5])]
    assert observe_call(clip_replacing, grads, 1.0)[1] == {"global_rng": False,
                                                           "replaced": {0: [0, 1]}}
    assert observe_call(clip_in_place, [np.ones(2)], 1.0)[1]["replaced"] == {0: []}
    before = np.random.get_state()
    assert observe_call(lambda: np.random.seed(0))[1]["global_rng"]
    assert observe_call(lambda: np.random.uniform())[1]["global_rng"]
    assert not observe_call(lambda: np.random.default_rng().uniform())[1]["global_rng"]
    after = np.random.get_state()   # the caller's global state is left as it was
    assert np.array_equal(before[1], after[1]) and before[2] == after[2]


# -- feedback: messages are shown, hidden lines never -----------------------------------

def _source_with_hidden(lines):
    hidden = "\n".join(lines)
    return {"cells": [{"cell_type": "code", "metadata": {"nbgrader": {
        "grade": True, "solution": False, "grade_id": "test-x", "points": 1}},
        "source": f"assert_close(f(1), 2, name='f(1)')\n### BEGIN HIDDEN TESTS\n{hidden}\n"
                  f"### END HIDDEN TESTS", "outputs": [], "execution_count": None}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _page(source, message):
    from grader import feedback
    from grader.engine import CellResult, NotebookResult
    result = NotebookResult("ex", "s", [CellResult("test-x", 1, 0.0, "failed", message)],
                            0.0, 1.0, [], {})
    return feedback.build(result, source, None)


def test_short_generic_hidden_lines_are_no_secret_and_messages_are_shown():
    from grader import feedback
    source = _source_with_hidden([
        "    assert_close(out, reference_of_the_hidden_case(x, 0.37), name=f'out (N={n})',",
        "                 rtol=1e-10, atol=1e-12,",
        "                 hint=\"normalize with the biased variance\")"])
    secrets = feedback.secret_lines(source)
    assert secrets == {"assert_close(out, reference_of_the_hidden_case(x, 0.37), "
                       "name=f'out (N={n})',"}
    message = ("out (N=5) differs from the expected values in 3 of 10 entries; ... "
               "(rtol=1e-10, atol=1e-12)\nHint: normalize with the biased variance")
    nb, page, notes = _page(source, message)
    assert "withheld" not in page and not notes
    assert "(rtol=1e-10, atol=1e-12)" in page and "normalize with the biased variance" in page


def test_a_whole_hidden_line_in_a_message_is_cut_out_and_the_rest_shown():
    secret = "expected = torch_reference(secret_input_of_the_test, 0.37)"
    source = _source_with_hidden([secret])
    nb, page, notes = _page(source, f"your output echoed {secret} here; and more")
    assert secret not in page and "torch_reference" not in page
    assert "your output echoed" in page and "and more" in page and "withheld" not in page


def test_the_score_table_escapes_once():
    source = _source_with_hidden(["x = compute_the_hidden_reference(1, 2, 3)"])
    nb, page, notes = _page(source, "p isn't a probability: <b> & 'quotes'")
    table = page[page.index("<table"):page.index("</table>")]
    assert "&#x27;" not in table and "&amp;#" not in table and "&amp;lt;" not in table
    assert "isn't" in table and "&lt;b&gt; &amp; 'quotes'" in table
