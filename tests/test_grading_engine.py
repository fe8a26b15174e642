"""The course grader's engine on small nbgrader-style notebooks built here: scores, messages,
feedback, proxies (in-place arguments, tensors with grads, objects, probes), own-work
checks, and the codec and free-name analysis underneath."""
import json
import math
import pickle

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader import codec
from grader.engine import GradingWorker, Limits, NotebookResult, grade_submission
from grader.notebook import HIDDEN_PLACEHOLDER
from grader.ownwork import assert_own_text
from grader.proxy import free_names

LIMITS = Limits(cell_timeout=10, notebook_timeout=60, memory_mb=2048)


def cell(source, kind=None, grade_id="", points=0):
    """A code cell with nbgrader metadata: kind is "answer", "test", "readonly" or None."""
    c = new_code_cell(source)
    if kind == "answer":
        c.metadata["nbgrader"] = {"grade_id": grade_id, "solution": True, "grade": False,
                                  "locked": False, "schema_version": 3}
    elif kind == "test":
        c.metadata["nbgrader"] = {"grade_id": grade_id, "solution": False, "grade": True,
                                  "locked": True, "points": points, "schema_version": 3}
    elif kind == "readonly":
        c.metadata["nbgrader"] = {"grade_id": grade_id, "solution": False, "grade": False,
                                  "locked": True, "schema_version": 3}
    return c


ANSWERS = {
    "scale": "def scale(x, factor=2.0):\n    return factor * np.asarray(x, dtype=float)",
    "fill": ("def fill_uniform(w, generator=None):\n"
             "    w[...] = generator.uniform(-1.0, 1.0, size=w.shape)\n"
             "    return w"),
    "clip": ("def clip_grads(params, clip_value):\n"
             "    for p in params:\n"
             "        if p.grad is not None:\n"
             "            p.grad.clamp_(-clip_value, clip_value)"),
    "counter": ("class Counter:\n"
                "    def __init__(self, start=0):\n"
                "        self.n = start\n"
                "    def step(self):\n"
                "        self.n += 1\n"
                "        return self.n"),
    "sgd": ("class MySGD(torch.optim.Optimizer):\n"
            "    def __init__(self, params, lr=0.01):\n"
            "        super().__init__(params, {'lr': lr})\n"
            "    @torch.no_grad()\n"
            "    def step(self):\n"
            "        for group in self.param_groups:\n"
            "            for p in group['params']:\n"
            "                if p.grad is not None:\n"
            "                    p.add_(p.grad, alpha=-group['lr'])"),
}

TESTS = {
    # relies on the read-only cell's `np`, and has hidden tests
    "test-scale": (2, "from exercise_checks import assert_close\n"
                      "assert_close(scale([1.0, 2.0]), np.array([2.0, 4.0]), name='scale(x)')\n"
                      "### BEGIN HIDDEN TESTS\n"
                      "SECRET_INPUT = np.arange(5.0)\n"
                      "assert_close(scale(SECRET_INPUT, factor=-3.0), -3.0 * SECRET_INPUT,\n"
                      "             name='scale(x, factor)', hint='use factor')\n"
                      "### END HIDDEN TESTS"),
    "test-fill": (1, "import numpy as np\n"
                     "from exercise_checks import assert_close\n"
                     "w = np.zeros((3, 4))\n"
                     "out = fill_uniform(w, generator=np.random.default_rng(7))\n"
                     "assert_close(out, w, name='the returned array')\n"
                     "assert_close(w, np.random.default_rng(7).uniform(-1, 1, (3, 4)), name='w')"),
    "test-clip": (1, "import torch\n"
                     "from exercise_checks import assert_close, assert_own_work\n"
                     "assert_own_work(clip_grads, ['torch.nn.utils.clip_grad_value_'])\n"
                     "g = torch.Generator().manual_seed(0)\n"
                     "ps = [torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)\n"
                     "      for _ in range(2)]\n"
                     "refs = [p.detach().clone().requires_grad_() for p in ps]\n"
                     "for p, r in zip(ps, refs):\n"
                     "    p.grad = torch.randn(4, 3, generator=g, dtype=torch.float64)\n"
                     "    r.grad = p.grad.clone()\n"
                     "clip_grads(ps, 0.5)\n"
                     "torch.nn.utils.clip_grad_value_(refs, 0.5)\n"
                     "for p, r in zip(ps, refs):\n"
                     "    assert_close(p.grad, r.grad, name='p.grad')"),
    "test-counter": (1, "c = Counter(3)\n"
                        "c.step()\n"
                        "assert c.step() == 5\n"
                        "assert c.n == 5"),
    "test-sgd": (1, "import torch\n"
                    "from exercise_checks import probes\n"
                    "from exercise_checks import assert_close, run_in_student\n"
                    "got = run_in_student(probes.train_with_optimizer, MySGD, {'lr': 0.1},\n"
                    "                     steps=4, seed=1)\n"
                    "want = probes.train_with_optimizer(torch.optim.SGD, {'lr': 0.1}, steps=4,\n"
                    "                                   seed=1)\n"
                    "assert_close(got['losses'], want['losses'], name='losses')\n"
                    "for a, b in zip(got['params'], want['params']):\n"
                    "    assert_close(a, b, name='params')"),
}
ORDER = [("scale", "test-scale"), ("fill", "test-fill"), ("clip", "test-clip"),
         ("counter", "test-counter"), ("sgd", "test-sgd")]
FULL = sum(points for points, _ in TESTS.values())


def solution(text):
    return f"### BEGIN SOLUTION\n{text}\n### END SOLUTION"


def source_notebook():
    cells = [new_markdown_cell("# A small exercise"),
             cell("import numpy as np\nimport torch", "readonly", "imports")]
    for answer, test in ORDER:
        cells.append(cell(solution(ANSWERS[answer]), "answer", answer))
        points, text = TESTS[test]
        cells.append(cell(text, "test", test, points))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def submission(**answers):
    """The source notebook with answers replaced (hidden tests stripped, as released)."""
    nb = source_notebook()
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if meta.get("solution"):
            c.source = answers.get(gid, ANSWERS[gid])
        elif meta.get("grade"):
            c.source = c.source.split("### BEGIN HIDDEN TESTS")[0]
    return nb


def write(nb, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return str(path)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    return {"root": root, "source": write(source_notebook(), root / "source" / "ex" / "ex.ipynb")}


#: the in-place contract of this exercise's functions (as exercise_checks.rules.IN_PLACE)
IN_PLACE = {"fill_uniform": ((0, "w"),), "clip_grads": ((0, "params"),)}


@pytest.fixture(scope="module", autouse=True)
def in_place_rules():
    from exercise_checks import rules
    rules.IN_PLACE["ex"] = IN_PLACE
    yield
    del rules.IN_PLACE["ex"]


@pytest.fixture(scope="module")
def worker():
    with GradingWorker() as w:
        yield w


def grade(worker, course, nb, tmp_path, name="ex.ipynb", limits=LIMITS):
    path = write(nb, tmp_path / "submitted" / name) if not isinstance(nb, str) else nb
    return worker.grade(course["source"], path, assignment="ex", student="s", limits=limits)


def cells(result):
    return {c.grade_id: c for c in result.cells}


def test_correct_submission_scores_full_marks(worker, course, tmp_path):
    result = grade(worker, course, submission(), tmp_path)
    assert isinstance(result, NotebookResult)
    assert [(c.grade_id, c.status) for c in result.cells] == [
        (t, "passed") for _, t in ORDER], result.cells
    assert result.score == result.max_score == FULL
    assert result.problems == []
    assert result.duration_s > 0
    assert pickle.loads(pickle.dumps(result)) == result


def test_feedback_hides_the_hidden_tests(worker, course, tmp_path):
    wrong = "def scale(x, factor=2.0):\n    return 2.0 * np.asarray(x, dtype=float)"
    result = grade(worker, course, submission(scale=wrong), tmp_path)
    assert cells(result)["test-scale"].status == "failed"
    text = json.dumps(result.feedback_notebook)
    assert "SECRET_INPUT" not in text and "BEGIN HIDDEN" not in text
    assert HIDDEN_PLACEHOLDER in text
    assert "SECRET_INPUT" not in cells(result)["test-scale"].message
    nbformat.validate(nbformat.from_dict(result.feedback_notebook))


def test_blank_release_scores_zero(worker, course, tmp_path):
    blank = {gid: "# YOUR CODE HERE\nraise NotImplementedError()" for gid in ANSWERS}
    result = grade(worker, course, submission(**blank), tmp_path)
    assert result.score == 0 and result.max_score == FULL
    assert all(c.status == "error" and "NameError" in c.message for c in result.cells)


def test_partial_credit_and_the_assertion_message(worker, course, tmp_path):
    wrong = "def scale(x, factor=2.0):\n    return 2.0 * np.asarray(x, dtype=float)"
    result = grade(worker, course, submission(scale=wrong), tmp_path)
    assert result.score == FULL - 2
    scale = cells(result)["test-scale"]
    assert scale.status == "failed" and scale.points == 0 and scale.max_points == 2
    assert scale.message.startswith("scale(x, factor) differs") and "Hint: use factor" in \
        scale.message


def test_student_exception_shows_only_their_own_lines(worker, course, tmp_path):
    bad = ("def helper(x):\n"
           "    raise ValueError('x must be positive')\n"
           "def scale(x, factor=2.0):\n"
           "    return helper(x)")
    result = grade(worker, course, submission(scale=bad), tmp_path)
    scale = cells(result)["test-scale"]
    assert scale.status == "error"
    assert scale.message.startswith("ValueError: x must be positive")
    assert "raise ValueError('x must be positive')" in scale.message
    assert "answer 'scale'" in scale.message and "assert_close" not in scale.message
    assert result.score == FULL - 2


def test_own_work_check_reads_the_submission_text(worker, course, tmp_path):
    delegating = ("from torch.nn import utils as U\n"
                  "def clip_grads(params, clip_value):\n"
                  "    U.clip_grad_value_(params, clip_value)")
    result = grade(worker, course, submission(clip=delegating), tmp_path)
    clip = cells(result)["test-clip"]
    assert clip.status == "failed"
    assert clip.message == ("clip_grads calls torch.nn.utils.clip_grad_value_: this part "
                            "must be your own code, so it scores zero")
    assert result.score == FULL - 1


def test_sandbox_guard_catches_delegation_text_cannot_see(worker, course, tmp_path):
    hidden = ("import torch\n"
              "def clip_grads(params, clip_value):\n"
              "    f = getattr(torch.nn.init, 'uniform' + '_')\n"
              "    for p in params:\n"
              "        f(p.grad)")
    result = worker.grade(course["source"], write(submission(clip=hidden),
                                                   tmp_path / "s" / "ex.ipynb"),
                          assignment="init", student="s", limits=LIMITS)
    clip = cells(result)["test-clip"]
    assert clip.status == "error"
    assert "DelegationError: clip_grads calls torch.nn.init.uniform_" in clip.message


def test_grade_ids_not_position_decide_and_edited_tests_change_nothing(worker, course,
                                                                     tmp_path):
    nb = submission()
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    for c in tests:
        c.source = "pass"                       # a student "fixing" the tests
        c.metadata["nbgrader"]["points"] = 100  # and the points
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    nb.cells = list(reversed(answers)) + tests  # reordered
    result = grade(worker, course, nb, tmp_path)
    assert result.score == result.max_score == FULL


def test_grade_submission_without_a_worker(course, tmp_path):
    path = write(submission(), tmp_path / "s" / "ex.ipynb")
    result = grade_submission(course["source"], path, assignment="ex", student="s",
                              limits=LIMITS)
    assert result.score == FULL


# ---------------------------------------------------------------------------------------
# the pieces underneath
# ---------------------------------------------------------------------------------------

def test_codec_round_trip_is_exact():
    t = torch.tensor([1.5, -2.0], dtype=torch.float64, requires_grad=True)
    t.grad = torch.tensor([0.25, 1e-300], dtype=torch.float64)
    value = {"f": [0.1, math.inf, -0.0, 1e-310], "c": 1 + 2j, "i": 2**70, "b": b"\x00\xff",
             "t": (True, None, "é"), "a": np.arange(6, dtype=np.int16).reshape(2, 3),
             "s": np.float32(0.1), "tensor": t, "bf": torch.tensor([1.5], dtype=torch.bfloat16)}
    out = codec.decode(codec.encode(value))
    assert out["f"][:3] == [0.1, math.inf, -0.0] and math.copysign(1, out["f"][2]) == -1
    assert out["f"][3] == 1e-310 and out["c"] == 1 + 2j and out["i"] == 2**70
    assert out["b"] == b"\x00\xff" and out["t"] == (True, None, "é")
    assert out["a"].dtype == np.int16 and (out["a"] == value["a"]).all()
    assert out["s"].dtype == np.float32 and out["s"] == np.float32(0.1)
    assert out["tensor"].requires_grad and torch.equal(out["tensor"].grad, t.grad)
    assert out["bf"].dtype == torch.bfloat16 and out["bf"].item() == 1.5
    assert math.isnan(codec.decode(codec.encode(float("nan"))))


@pytest.mark.parametrize("header", [
    b'{"a":{"dtype":"|O","shape":[1],"data":[0,8]}}',          # object arrays
    b'{"a":{"dtype":"<f8","shape":[3],"data":[0,8]}}',         # shape/size mismatch
    b'{"a":{"dtype":"<f8","shape":[1],"data":[0,99]}}',        # outside the blob
    b'{"x":1}',                                                # unknown tag
    b'NaN',                                                    # non-JSON constant
    b'{"d":[[1,2]]}',                                          # non-str key
    b'[' * 5000 + b']' * 5000,                                 # too deep
    b'{"h":{"id":1}}',                                         # handle nobody asked for
])
def test_codec_rejects_malformed_messages(header):
    import struct
    message = codec.MAGIC + struct.pack("<I", len(header)) + header + b"\x00" * 8
    with pytest.raises(codec.CodecError):
        codec.decode(message)


def test_codec_rejects_pickles():
    import pickle
    with pytest.raises(codec.CodecError):
        codec.decode(pickle.dumps({"ok": 1}))


def test_free_names_skip_what_tests_bind_and_builtins():
    src = ("import numpy as np\nx = f(np.ones(3))\n"
           "def g(y):\n    return helper(y) + len(y)\n"
           "assert [k for k in range(3)] == lst\n")
    assert free_names(src) == {"f", "helper", "lst"}
    assert free_names(src, bound_elsewhere={"lst"}) == {"f", "helper"}


@pytest.mark.parametrize("text,hit", [
    ("import torch.nn.init as I\ndef glorot(w):\n    return I.xavier_uniform_(w)",
     "torch.nn.init.xavier_uniform_"),
    ("from torch.nn.init import xavier_uniform_ as x\ndef glorot(w):\n    return x(w)",
     "torch.nn.init.xavier_uniform_"),
    ("import torch\nf = torch.nn.init.xavier_uniform_\ndef helper(w):\n    return f(w)\n"
     "def glorot(w):\n    return helper(w)", "torch.nn.init.xavier_uniform_ (through helper)"),
    ("def glorot(w):\n    import course_lib.numpy.init as ci\n    return ci.xavier_uniform_(w)",
     "course_lib.numpy.init.xavier_uniform_"),
])
def test_own_work_text_analysis_finds_aliases(text, hit):
    with pytest.raises(AssertionError, match="glorot calls " + hit.replace("(", r"\(")
                       .replace(")", r"\)")):
        assert_own_text("glorot", [text], ("torch.nn.init", "course_lib.numpy.init"))


def test_own_work_text_analysis_allows_own_code():
    text = ("import numpy as np\nimport torch\n"
            "def glorot(w, generator=None):\n"
            "    a = np.sqrt(6.0 / sum(w.shape))\n"
            "    return torch.nn.functional.relu(w)  # not forbidden here")
    assert_own_text("glorot", [text], ("torch.nn.init",))
