"""Red team: submissions written by a student who has read the grader's source.

One test (or a few) per class of attack of issue 8:

1. switching off the in-process barrier (the audit hook's closure, found with ``gc``),
   then ``fork``, sockets, any file;
2. file access the hook misses (``dir_fd``, ``os.replace``, ``sqlite3`` and ``ATTACH``,
   ``/proc`` links);
3. the trusted process acting on what the sandbox names (module handles, a fake
   ``__qualname__``, a replaced probe module);
4. delegation the forbidden list does not name (aten and ``_C`` routes, methods of a
   forbidden class, ``__wrapped__`` and closures of a guard, torch where the exercise is
   NumPy only);
5. input mutation (references computed from mutated inputs, emptied lists);
6. robustness (``SystemExit``/``KeyboardInterrupt`` from student code, a tree too deep for
   ``rmtree``, a full disk, a grader task ending in ``BaseException``);
7. leaks at rest (the gradebook's mode, the student's output in the feedback).

Every attack is asserted to fail (the student gains nothing: an evidence list the attack
prints shows *how* it failed) and to cost only itself (the other answer still scores, with
a readable reason), and the same warm worker then grades an honest submission normally.
The isolation tests also check the jail itself (uid, capabilities, seccomp, what can be
imported) and that course-grade refuses to run without it unless told to.
"""
import json
import os
import sqlite3
import stat
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader import isolation
from grader.engine import GradingWorker, Limits

pytestmark = pytest.mark.slow

LIMITS = Limits(cell_timeout=20, notebook_timeout=90, memory_mb=1024, max_output_bytes=200_000)

# double is right (2 x) only when the attack worked: a successful attack scores 2 of 2
WIN_OR_LOSE = ("def double(x):\n"
               "    return (2 if WON else 3) * np.asarray(x, dtype=float)\n")
CORRECT_DOUBLE = "def double(x):\n    return 2 * np.asarray(x, dtype=float)"
CORRECT_SQUARE = "def square(x):\n    return np.asarray(x, dtype=float) ** 2"
TEST_DOUBLE = ("import numpy as np\n"
               "from exercise_checks import assert_close\n"
               "assert_close(double([1.0, 2.0]), np.array([2.0, 4.0]), name='double(x)')")
TEST_SQUARE = ("import numpy as np\n"
               "from exercise_checks import assert_close\n"
               "assert_close(square([3.0]), np.array([9.0]), name='square(x)')")
SECRET = "HIDDEN-TEST-SECRET-7f3a"

#: the evidence helper every attack starts with: ``attempt(label, f)`` runs ``f`` and
#: records "label: ok" or "label: ErrorType"; WON says whether a forbidden thing worked
PRELUDE = ("import os, sys\n"
           "EVIDENCE, WON = [], False\n"
           "def attempt(label, f, success=lambda result: True):\n"
           "    global WON\n"
           "    try:\n"
           "        result = f()\n"
           "    except BaseException as error:\n"
           "        EVIDENCE.append(f'{label}: {type(error).__name__}')\n"
           "        return None\n"
           "    if success(result):\n"
           "        WON = True\n"
           "    EVIDENCE.append(f'{label}: ok')\n"
           "    return result\n")
REPORT = "print('EVIDENCE', EVIDENCE)\n"

#: switches the audit hook off as the grader's source allows: find ``hook`` (a closure
#: of grader/policy.py) with gc and make its ``refuse`` a no-op
DISABLE_HOOK = ("import gc\n"
                "HOOK_OFF = False\n"
                "for obj in gc.get_objects():\n"
                "    if type(obj).__name__ == 'function' and obj.__name__ == 'hook' and \\\n"
                "            obj.__code__.co_filename.endswith('policy.py'):\n"
                "        for cell in obj.__closure__ or ():\n"
                "            value = cell.cell_contents\n"
                "            if getattr(value, '__name__', '') == 'refuse':\n"
                "                cell.cell_contents = lambda what: None\n"
                "                HOOK_OFF = True\n"
                "# proof that the in-process barrier is really off: /usr/bin is outside its roots\n"
                "attempt('hook off', lambda: open('/usr/bin/env', 'rb').read(4),\n"
                "        success=lambda r: False)\n")


def meta(kind, grade_id, points=0):
    if kind == "answer":
        return {"grade_id": grade_id, "solution": True, "grade": False, "locked": False,
                "schema_version": 3}
    if kind == "test":
        return {"grade_id": grade_id, "solution": False, "grade": True, "locked": True,
                "points": points, "schema_version": 3}
    return {"grade_id": grade_id, "solution": False, "grade": False, "locked": True,
            "schema_version": 3}


def notebook(double=CORRECT_DOUBLE, square=CORRECT_SQUARE, test_double=TEST_DOUBLE,
             imports="import numpy as np"):
    cells = [new_markdown_cell("# Doubling and squaring"), new_code_cell(imports),
             new_code_cell(double), new_code_cell(test_double),
             new_code_cell(square), new_code_cell(TEST_SQUARE)]
    for c, m in zip(cells[1:], [meta("readonly", "imports"), meta("answer", "double"),
                                meta("test", "test-double", 1), meta("answer", "square"),
                                meta("test", "test-square", 1)]):
        c.metadata["nbgrader"] = m
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def source_notebook(**kwargs):
    double = ("def double(x):\n    ### BEGIN SOLUTION\n"
              "    return 2 * np.asarray(x, dtype=float)\n    ### END SOLUTION")
    nb = notebook(double=double, **kwargs)
    nb.cells[3].source += f"\n### BEGIN HIDDEN TESTS\n# {SECRET}\n### END HIDDEN TESTS"
    return nb


def make_course(root, name="ex", **kwargs):
    """A course folder as an instructor has it: solutions/, source/, submitted/, a real
    gradebook whose source_cell table holds the hidden test, nbgrader_config.py."""
    for folder in ("solutions", "source"):
        (root / folder / name).mkdir(parents=True, exist_ok=True)
        nbformat.write(source_notebook(**kwargs), str(root / folder / name / f"{name}.ipynb"))
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    with sqlite3.connect(root / "gradebook.db") as db:
        db.execute("CREATE TABLE IF NOT EXISTS source_cell (name TEXT, source TEXT)")
        db.execute("INSERT INTO source_cell VALUES ('test-double', ?)", (SECRET,))
    (root / "submitted").mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return make_course(tmp_path_factory.mktemp("course"))


@pytest.fixture(scope="module")
def torch_course(tmp_path_factory):
    return make_course(tmp_path_factory.mktemp("torch_course"),
                       imports="import numpy as np\nimport torch")


@pytest.fixture(scope="module")
def worker():
    with GradingWorker() as w:
        yield w


def grade(worker, course, nb, student="mallory", name="ex", limits=LIMITS):
    path = course / "submitted" / student / name / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return worker.grade(str(course / "source" / name / f"{name}.ipynb"), str(path),
                        assignment=name, student=student, limits=limits)


def by_id(result):
    return {c.grade_id: c for c in result.cells}


def evidence(result):
    """The attack's evidence list, from its cell output in the feedback."""
    text = json.dumps(result.feedback_notebook)
    start = text.find("EVIDENCE [")
    assert start >= 0, "the attack printed no evidence"
    return text[start:text.find("]", start) + 1]


def assert_attack_failed(result, *refusals):
    """The attack gained nothing (double stays wrong: score 1 of 2), cost only itself
    (square passed), was refused in each named way, and no secret reached the feedback."""
    cells = by_id(result)
    assert cells["test-square"].status == "passed", cells["test-square"]
    assert cells["test-double"].points == 0, (cells["test-double"], evidence(result))
    assert cells["test-double"].message, "no reason given"
    assert result.score == 1
    seen = evidence(result)
    for refusal in refusals:
        assert refusal in seen, (refusal, seen)
    assert SECRET not in json.dumps(result.feedback_notebook)
    return seen


def course_files(course):
    return sorted(str(p.relative_to(course)) for p in course.rglob("*")
                  if "submitted" not in p.parts)


@pytest.fixture
def then_honest(worker, course, tmp_path_factory):
    """After the attack, the same warm worker grades an honest submission normally."""
    yield
    result = grade(worker, course, notebook(), student="honest")
    assert result.score == result.max_score == 2, result
    assert result.problems == []


# =======================================================================================
# the jail itself
# =======================================================================================

def test_sandbox_identity_capabilities_and_imports(worker, course, torch_course, then_honest):
    """uid 65534 in its own user namespace, no capabilities, no_new_privs, a seccomp
    filter; the NumPy-only sandbox has neither torch nor course_lib, the torch one no
    course_lib; the course folder and /root's other contents are not there."""
    probe = (PRELUDE +
             "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
             "EVIDENCE.append('uid ' + status['Uid'].split()[0])\n"
             "EVIDENCE.append('caps ' + status['CapEff'] + ' ' + status['CapBnd'])\n"
             "EVIDENCE.append('nnp ' + status['NoNewPrivs'] + ' seccomp ' + status['Seccomp'])\n"
             "attempt('import torch', lambda: __import__('torch').tensor)\n"
             "attempt('import course_lib', lambda: __import__('course_lib'))\n"
             f"attempt('course folder', lambda: os.stat({str(course)!r}))\n"
             "attempt('root home', lambda: os.listdir('/root'), success=lambda r: r != ['.pyenv'])\n"
             + WIN_OR_LOSE.replace("WON", "False") + REPORT)
    numpy_only = evidence(grade(worker, course, notebook(double=probe)))
    assert "uid 65534" in numpy_only
    assert "caps 0000000000000000 0000000000000000" in numpy_only
    assert "nnp 1 seccomp 2" in numpy_only
    assert "import torch: ImportError" in numpy_only
    assert "import course_lib: ModuleNotFoundError" in numpy_only
    assert "course folder: FileNotFoundError" in numpy_only
    with_torch = evidence(grade(worker, torch_course, notebook(
        double=probe, imports="import numpy as np\nimport torch")))
    assert "import torch: ok" in with_torch
    assert "import course_lib: ModuleNotFoundError" in with_torch
    assert "course folder: FileNotFoundError" in with_torch


def test_no_submission_can_write_the_course_or_read_solutions_or_gradebook(
        worker, course, then_honest):
    """With the audit hook switched off first, every way to reach the course folder:
    open, os.open, dir_fd, rename/replace, hard and symbolic links, sqlite3, numpy and
    libc through ctypes. Nothing of the course is readable and nothing appears in it."""
    before = course_files(course)
    targets = {"solutions": str(course / "solutions" / "ex" / "ex.ipynb"),
               "source": str(course / "source" / "ex" / "ex.ipynb"),
               "gradebook": str(course / "gradebook.db")}
    dest = str(course / "PWNED")
    attack = (PRELUDE + DISABLE_HOOK +
              f"T, DEST = {targets!r}, {dest!r}\n"
              f"SECRET = {SECRET[:8]!r} + {SECRET[8:]!r}   # not in this cell's text\n"
              "leaks = lambda r: SECRET.encode() in (r if isinstance(r, bytes) else str(r).encode())\n"
              "for name, path in T.items():\n"
              "    attempt('open ' + name, lambda: open(path, 'rb').read(), leaks)\n"
              "    attempt('os.open ' + name, lambda: os.read(os.open(path, os.O_RDONLY), 10**6), leaks)\n"
              "    attempt('np.fromfile ' + name, lambda: np.fromfile(path, dtype=np.uint8).tobytes(), leaks)\n"
              "    attempt('dir_fd ' + name, lambda: os.read(os.open(path.lstrip('/'), os.O_RDONLY,\n"
              "            dir_fd=os.open('/', os.O_RDONLY)), 10**6), leaks)\n"
              "import sqlite3, ctypes\n"
              "attempt('sqlite connect', lambda: sqlite3.connect(T['gradebook']).execute(\n"
              "        'SELECT source FROM source_cell').fetchall(), leaks)\n"
              "attempt('sqlite attach', lambda: sqlite3.connect(':memory:').execute(\n"
              "        'ATTACH DATABASE ? AS gb', (T['gradebook'],)).execute(\n"
              "        'SELECT source FROM gb.source_cell').fetchall(), leaks)\n"
              "libc = ctypes.CDLL(None, use_errno=True)\n"
              "def c(result):\n"
              "    if result < 0:\n"
              "        raise OSError(ctypes.get_errno(), 'libc')\n"
              "    return result\n"
              "attempt('libc open', lambda: c(libc.open(T['gradebook'].encode(), 0)))\n"
              "open('mine', 'w').write('x')\n"
              "attempt('write', lambda: open(DEST, 'w').write('x'))\n"
              "attempt('os.open write', lambda: os.open(DEST, os.O_WRONLY | os.O_CREAT))\n"
              "attempt('os.replace', lambda: os.replace('mine', DEST))\n"
              "attempt('os.rename', lambda: os.rename('mine', DEST))\n"
              "attempt('os.link', lambda: os.link('mine', DEST))\n"
              "attempt('os.symlink', lambda: os.symlink('mine', DEST))\n"
              "attempt('os.mkdir', lambda: os.mkdir(DEST))\n"
              "attempt('sqlite write', lambda: sqlite3.connect(T['gradebook']).execute(\n"
              "        \"UPDATE source_cell SET source = 'x'\"))\n"
              "attempt('libc creat', lambda: c(libc.creat(DEST.encode(), 0o644)))\n"
              + WIN_OR_LOSE + REPORT)
    result = grade(worker, course, notebook(double=attack))
    seen = assert_attack_failed(result, "hook off: ok")
    assert ": ok" not in seen.replace("hook off: ok", ""), seen
    assert course_files(course) == before
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("SELECT source FROM source_cell").fetchall() == [(SECRET,)]


# =======================================================================================
# 1. switching off the in-process barrier
# =======================================================================================

def test_hook_switched_off_then_fork_setsid_sockets(worker, course, then_honest):
    attack = (PRELUDE + DISABLE_HOOK +
              "import socket, subprocess\n"
              "attempt('fork', lambda: os.fork())\n"
              "attempt('subprocess', lambda: subprocess.run(['/bin/true']))\n"
              "attempt('posix_spawn', lambda: os.posix_spawn('/bin/true', ['true'], {}))\n"
              "attempt('setsid', lambda: os.setsid())\n"
              "attempt('unshare', lambda: __import__('ctypes').CDLL(None, use_errno=True).unshare(0x10000000) == 0 or 1/0)\n"
              "attempt('inet', lambda: socket.create_connection(('192.0.2.1', 80), timeout=2))\n"
              "attempt('dns', lambda: socket.getaddrinfo('pypi.org', 443))\n"
              "attempt('zygote mem', lambda: open('/proc/1/mem', 'rb'))\n"
              "import ctypes\n"
              "EVIDENCE.append('dumpable %d' % ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n"
              + WIN_OR_LOSE + REPORT)
    seen = assert_attack_failed(grade(worker, course, notebook(double=attack)),
                                "hook off: ok", "fork: PermissionError",
                                "posix_spawn: PermissionError", "unshare: ZeroDivisionError",
                                "dns: gaierror", "zygote mem: PermissionError", "dumpable 0")
    assert "inet: ok" not in seen and "subprocess: ok" not in seen


# =======================================================================================
# 2. file access the hook misses or resolves differently
# =======================================================================================

def test_proc_links_show_nothing_of_the_host(worker, course, then_honest):
    """/proc of the jail: only the jail's processes; the zygote's cwd, fd and mem are not
    readable (it is not dumpable); no link names the course folder."""
    attack = (PRELUDE + DISABLE_HOOK +
              f"COURSE = {str(course)!r}\n"
              "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
              "EVIDENCE.append(f'{len(pids)} pids')\n"
              "for pid in pids:\n"
              "    for link in ('cwd', 'root', 'exe'):\n"
              "        attempt(link, lambda: os.readlink(f'/proc/{pid}/{link}'),\n"
              "                success=lambda target: COURSE in target)\n"
              "    attempt('environ', lambda: open(f'/proc/{pid}/environ', 'rb').read(),\n"
              "            success=lambda r: b'COURSE' in r or COURSE.encode() in r)\n"
              "attempt('getpgid', lambda: os.getpgid(os.getppid()), success=lambda r: False)\n"
              + WIN_OR_LOSE + REPORT)
    seen = assert_attack_failed(grade(worker, course, notebook(double=attack)))
    import re
    count = int(re.search(r"'(\d+) pids'", seen).group(1))
    assert count <= 4, seen   # the zygote (pid 1 of the jail), the intermediate, the
    #                           submission's pid 1 and the student's process


# =======================================================================================
# 3. the trusted process acting on what the sandbox names
# =======================================================================================

def test_module_handles_make_the_grader_import_nothing(worker, course, then_honest):
    marker = "sklearn.experimental.enable_iterative_imputer"   # an import with side effects
    assert marker not in sys.modules
    attack = (f"import types\nsquare = types.ModuleType({marker!r})\n"
              "double = types.ModuleType('numpy')\n")
    result = grade(worker, course, notebook(double=attack, square=""))
    assert marker not in sys.modules
    cells = by_id(result)
    assert cells["test-double"].points == 0 and cells["test-square"].points == 0
    assert "TypeError" in cells["test-square"].message or "not callable" in cells[
        "test-square"].message, cells["test-square"]


def test_fake_qualname_does_not_fool_the_own_work_check(worker, course, then_honest):
    test = ("import numpy as np\n"
            "from exercise_checks import assert_close, assert_own_work\n"
            "assert_own_work(double, ['numpy.multiply'])\n"
            "assert_close(double([1.0, 2.0]), np.array([2.0, 4.0]), name='double(x)')")
    attack = ("def honest(x):\n    return 2 * np.asarray(x, dtype=float)\n"
              "def double(x):\n    return np.multiply(2, x)\n"
              "double.__qualname__ = double.__name__ = 'honest'\n"
              "double.__module__ = 'numpy'\n")
    src = make_course(course.parent / "ownwork_course", test_double=test)
    result = grade(worker, src, notebook(double=attack, test_double=test))
    cells = by_id(result)
    assert cells["test-double"].points == 0
    assert "double calls numpy.multiply" in cells["test-double"].message, cells["test-double"]
    assert cells["test-square"].status == "passed"


PROBE_TEST = ("import torch\n"
              "from exercise_checks import probes, assert_close, run_in_student\n"
              "got = run_in_student(probes.train_with_optimizer, MySGD, {'lr': 0.1}, steps=3, seed=1)\n"
              "want = probes.train_with_optimizer(torch.optim.SGD, {'lr': 0.1}, steps=3, seed=1)\n"
              "assert_close(got['losses'], want['losses'], name='losses')\n"
              "for a, b in zip(got['params'], want['params']):\n"
              "    assert_close(a, b, name='params')")
WRONG_SGD = ("class MySGD(torch.optim.Optimizer):\n"
             "    def __init__(self, params, lr=0.01):\n"
             "        super().__init__(params, {'lr': lr})\n"
             "    @torch.no_grad()\n"
             "    def step(self):\n"
             "        for group in self.param_groups:\n"
             "            for p in group['params']:\n"
             "                if p.grad is not None:\n"
             "                    p.add_(p.grad, alpha=-3 * group['lr'])   # wrong: 3 lr\n")


def test_replaced_probe_module_changes_nothing(worker, tmp_path_factory):
    imports = "import numpy as np\nimport torch"
    src = make_course(tmp_path_factory.mktemp("probe_course"), test_double=PROBE_TEST,
                      imports=imports)
    attack = (WRONG_SGD +
              "import exercise_checks.probes as P, sys\n"
              "real = P.train_with_optimizer\n"
              "def fake(cls, kwargs, **kw):\n"
              "    return real(torch.optim.SGD, kwargs, **kw)   # the reference's numbers\n"
              "P.train_with_optimizer = fake\n"
              "sys.modules['exercise_checks.probes'] = P\n"
              "import exercise_checks\nexercise_checks.run_in_student = lambda p, *a, **k: fake(*a, **k)\n")
    result = grade(worker, src, notebook(double=attack, test_double=PROBE_TEST,
                                         imports=imports))
    cells = by_id(result)
    assert cells["test-double"].points == 0, cells["test-double"]
    assert "losses" in cells["test-double"].message
    assert cells["test-square"].status == "passed"
    # and an honest optimizer passes through the same trusted probe
    honest = WRONG_SGD.replace("-3 * group['lr']", "-group['lr']")
    assert grade(worker, src, notebook(double=honest, test_double=PROBE_TEST,
                                       imports=imports)).score == 2


# =======================================================================================
# 4. delegation the forbidden list does not name (the real adam exercise)
# =======================================================================================

ROOT = Path(__file__).resolve().parents[1]
DELEGATIONS = {
    "aten": "getattr(torch.ops.aten, '_fused_' + 'adam_')",
    "aten_default": "getattr(torch.ops.aten, '_fused_' + 'adam_').default",
    "variable_functions": "getattr(torch._C._VariableFunctions, '_fused_' + 'adam_')",
    "native": "getattr(torch, '_fused_' + 'adam_')",
}


def adam_submission(adam_class):
    sys.path.insert(0, str(ROOT / "tests"))
    import grading_harness as harness
    answers = harness.solution_answers("adam")
    answers["adam-class"] = adam_class
    return harness.make_submission("adam", answers)


def assert_adam_class_refused(result):
    cells = by_id(result)
    for grade_id in ("test-adam-class", "test-adam-class-groups"):
        assert cells[grade_id].points == 0, cells[grade_id]
        assert "this part must be your own code" in cells[grade_id].message, cells[grade_id]
    for grade_id in ("test-adam-step", "test-adam-state", "test-adam-l2", "test-adamw"):
        assert cells[grade_id].status == "passed", cells[grade_id]


@pytest.mark.parametrize("route", sorted(DELEGATIONS))
def test_fused_adam_through_aten_native_or_c(worker, tmp_path, route):
    fused = DELEGATIONS[route]
    adam = ("class Adam(torch.optim.Optimizer):\n"
            "    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,\n"
            "                 weight_decay=0.0, decoupled_weight_decay=False):\n"
            "        super().__init__(params, dict(lr=lr, betas=betas, eps=eps,\n"
            "            weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay))\n"
            "    @torch.no_grad()\n"
            "    def step(self):\n"
            f"        fused = {fused}\n"
            "        for g in self.param_groups:\n"
            "            ps = [p for p in g['params'] if p.grad is not None]\n"
            "            for p in ps:\n"
            "                s = self.state[p]\n"
            "                if not s:\n"
            "                    s.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(p),\n"
            "                             exp_avg_sq=torch.zeros_like(p))\n"
            "            fused(ps, [p.grad for p in ps], [self.state[p]['exp_avg'] for p in ps],\n"
            "                  [self.state[p]['exp_avg_sq'] for p in ps], [],\n"
            "                  [self.state[p]['step'] for p in ps], lr=g['lr'],\n"
            "                  beta1=g['betas'][0], beta2=g['betas'][1], weight_decay=g['weight_decay'],\n"
            "                  eps=g['eps'], amsgrad=False, maximize=False)\n")
    result = grade_real(worker, tmp_path, "adam", adam_submission(adam))
    assert_adam_class_refused(result)


def grade_real(worker, tmp_path, assignment, nb):
    path = tmp_path / "submitted" / "mallory" / assignment / f"{assignment}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return worker.grade(str(ROOT / "solutions" / assignment / f"{assignment}.ipynb"),
                        str(path), assignment=assignment, student="mallory")


TORCH_ADAM_ROUTES = {
    # torch's own Adam.step on the student's optimizer object
    "class_method": "getattr(torch.optim, 'Ad' + 'am').step(self)",
    # the single-tensor kernel of the torch.optim.adam module
    "private_function": "getattr(torch.optim.adam, '_single_tensor_' + 'adam')(self.param_groups)",
    # what a decorator-style guard would keep in __wrapped__ or its closure
    "wrapped_or_closure": ("[f for f in [getattr(getattr(torch.optim, 'Ad' + 'am').step, a, None)"
                           " for a in ('__wrapped__',)] + [c.cell_contents for c in "
                           "(getattr(torch.optim, 'Ad' + 'am').step.__closure__ or ())] "
                           "if callable(f)][0](self)"),
}


@pytest.mark.parametrize("route", sorted(TORCH_ADAM_ROUTES))
def test_torch_adam_reached_around_the_guards(worker, tmp_path, route):
    adam = ("class Adam(torch.optim.Optimizer):\n"
            "    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,\n"
            "                 weight_decay=0.0, decoupled_weight_decay=False):\n"
            "        super().__init__(params, dict(lr=lr, betas=betas, eps=eps,\n"
            "            weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,\n"
            "            amsgrad=False, maximize=False, foreach=False, capturable=False,\n"
            "            differentiable=False, fused=None))\n"
            "    @torch.no_grad()\n"
            "    def step(self):\n"
            f"        return {TORCH_ADAM_ROUTES[route]}\n")
    result = grade_real(worker, tmp_path, "adam", adam_submission(adam))
    cells = by_id(result)
    for grade_id in ("test-adam-class", "test-adam-class-groups"):
        assert cells[grade_id].points == 0, cells[grade_id]
    # the refusers hold no original: nothing callable behind __wrapped__ or a closure
    expected = "IndexError" if route == "wrapped_or_closure" else "this part must be your own code"
    assert expected in cells["test-adam-class"].message, cells["test-adam-class"]
    assert cells["test-adam-step"].status == "passed"


def test_numpy_exercise_cannot_reach_torch_at_all(worker, tmp_path):
    dropout = ("import torch   # works in the sandbox, but it is not torch\n"
               "def dropout_forward(x, p=0.5, training=True, generator=None):\n"
               "    import importlib\n"
               "    real = importlib.import_module('to' + 'rch')\n"
               "    t = real.nn.functional.dropout(real.as_tensor(x), p, training)\n"
               "    return t.numpy(), (t != 0).numpy()\n")
    sys.path.insert(0, str(ROOT / "tests"))
    import grading_harness as harness
    answers = harness.solution_answers("dropout")
    backward = "def dropout_backward" + answers["dropout"].split("def dropout_backward", 1)[1]
    answers["dropout"] = dropout + "\n\n" + backward
    result = grade_real(worker, tmp_path, "dropout", harness.make_submission("dropout", answers))
    messages = " ".join(c.message for c in result.cells if c.points == 0)
    assert "has no torch" in messages, result.cells
    assert any(c.status == "passed" for c in result.cells)   # the backward still scores


# =======================================================================================
# 5. input mutation
# =======================================================================================

def test_mutated_inputs_do_not_change_the_tests_reference(worker, course, then_honest):
    test = ("import numpy as np\n"
            "from exercise_checks import assert_close\n"
            "x = np.array([1.0, 2.0, 3.0])\n"
            "xs = [np.ones(2), np.ones(3)]\n"
            "out = double(x, xs)\n"
            "assert_close(out, 2 * x, name='double(x)')\n"
            "for a in xs:\n"
            "    assert_close(a, np.ones_like(a), name='xs untouched')")
    attack = ("def double(x, xs):\n"
              "    x[:] = 0          # the test's reference 2 * x would become 0\n"
              "    xs.clear()        # and its loop over xs would check nothing\n"
              "    return np.zeros(3)\n")
    src = make_course(course.parent / "mutation_course", test_double=test)
    result = grade(worker, src, notebook(double=attack, test_double=test))
    cells = by_id(result)
    assert cells["test-double"].points == 0
    assert "double(x)" in cells["test-double"].message
    assert cells["test-square"].status == "passed"


def test_declared_in_place_argument_keeps_its_structure(worker, tmp_path):
    """clipping's clip_by_value updates grads in place (rules.IN_PLACE): emptying the
    list, or replacing its arrays by others of another shape, fails with a message."""
    sys.path.insert(0, str(ROOT / "tests"))
    import grading_harness as harness
    answers = harness.solution_answers("clipping")
    for attack, why in (("    grads.clear()\n", "its length from 2 to 0"),
                        ("    grads[:] = [np.zeros(1) for g in grads]\n", "shape")):
        answers["clip-value"] = f"def clip_by_value(grads, clip_value):\n{attack}"
        result = grade_real(worker, tmp_path, "clipping",
                            harness.make_submission("clipping", answers))
        cells = by_id(result)
        assert cells["test-clip-value"].points == 0
        assert why in cells["test-clip-value"].message, cells["test-clip-value"]
        assert cells["test-clip-norm-scales"].status == "passed"


# =======================================================================================
# 6. robustness
# =======================================================================================

@pytest.mark.parametrize("exception", ["SystemExit(0)", "KeyboardInterrupt()",
                                       "GeneratorExit()"])
def test_base_exceptions_from_student_code(worker, course, exception, then_honest):
    attack = f"def double(x):\n    raise {exception}\n"
    result = grade(worker, course, notebook(double=attack))
    cells = by_id(result)
    assert cells["test-double"].points == 0
    assert exception.split("(")[0] in cells["test-double"].message
    assert cells["test-square"].status == "passed"


def test_recursion_in_the_students_error_message(worker, course, then_honest):
    attack = ("class Sneaky(Exception):\n"
              "    def __str__(self):\n"
              "        return str(self)\n"
              "def double(x):\n"
              "    raise Sneaky()\n")
    cells = by_id(grade(worker, course, notebook(double=attack)))
    assert cells["test-double"].points == 0
    assert "Sneaky" in cells["test-double"].message, cells["test-double"]
    assert cells["test-square"].status == "passed"


def test_a_tree_too_deep_for_rmtree(worker, course, then_honest):
    attack = (PRELUDE +
              "def deep():\n"
              "    os.makedirs('d', exist_ok=True)\n"
              "    fd = os.open('d', os.O_RDONLY)\n"
              "    for i in range(3000):\n"
              "        os.mkdir('d', dir_fd=fd)\n"
              "        new = os.open('d', os.O_RDONLY, dir_fd=fd)\n"
              "        os.close(fd)\n"
              "        fd = new\n"
              "    return i\n"
              "attempt('deep tree', deep, success=lambda r: False)\n"
              + WIN_OR_LOSE + REPORT)
    assert_attack_failed(grade(worker, course, notebook(double=attack)), "deep tree: ok")


def test_disk_quota(worker, course, then_honest):
    attack = (PRELUDE +
              "def fill():\n"
              "    chunk = b'x' * 2**20\n"
              "    for n in range(100):\n"
              "        with open(f'f{n}', 'wb') as f:\n"
              "            for _ in range(60):\n"
              "                f.write(chunk)\n"
              "attempt('fill', fill, success=lambda r: True)\n"
              "import errno\n"
              "EVIDENCE.append('free %d MB' % (os.statvfs('.').f_bavail * os.statvfs('.').f_frsize // 2**20))\n"
              + WIN_OR_LOSE + REPORT)
    seen = assert_attack_failed(grade(worker, course, notebook(double=attack)), "fill: OSError",
                                "free 0 MB")


def test_temporary_files_work_and_are_private_to_each_submission(worker, course):
    """Honest code may write /tmp, tempfile's folder and its cwd (one fresh tmpfs): it
    scores; the next submission of the same warm worker sees none of those files."""
    writer = ("import os, tempfile\n"
              "def double(x):\n"
              "    with open('/tmp/left-behind.npy', 'wb') as f:\n"
              "        np.save(f, np.asarray(x, dtype=float))\n"
              "    with tempfile.NamedTemporaryFile(suffix='.npy', delete=False) as f:\n"
              "        np.save(f, 2 * np.load('/tmp/left-behind.npy'))\n"
              "    open('cwd-file', 'w').write('x')\n"
              "    return np.load(f.name)\n")
    result = grade(worker, course, notebook(double=writer), student="writer")
    assert result.score == result.max_score == 2, by_id(result)
    reader = ("import os, tempfile\n"
              "SEEN = [p for p in ('/tmp/left-behind.npy', 'cwd-file') if os.path.exists(p)]\n"
              "SEEN += [n for n in os.listdir(tempfile.gettempdir()) if n.endswith('.npy')]\n"
              "def double(x):\n"
              "    return (3 if SEEN else 2) * np.asarray(x, dtype=float)\n")
    result = grade(worker, course, notebook(double=reader), student="reader")
    assert result.score == result.max_score == 2, by_id(result)


def test_a_grader_task_ending_in_base_exception_is_reported_not_fatal(worker, tmp_path):
    """A worker's task that ends in SystemExit or RecursionError becomes an ungraded
    submission with its reason; the batch goes on and its report names it."""
    from grader import batch

    course = make_course(tmp_path / "course")
    (course / "gradebook.db").unlink()
    for student in ("ann", "bob", "cid"):
        path = course / "submitted" / student / "ex" / "ex.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(notebook(), str(path))
    report = batch.autograde(batch.Options(course_dir=course, workers=1, progress=False),
                             worker_factory=ExplodingFactory(worker))
    assert sum(report.graded.values()) == 1
    errors = "\n".join(report.grader_errors)
    assert "ann/ex: SystemExit" in errors and "bob/ex: RecursionError" in errors, errors


class ExplodingWorker:
    def __init__(self, inner):
        self.inner = inner

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def grade(self, source, submission, *, assignment, student, limits=None):
        if student == "ann":
            raise SystemExit("a student's sys.exit reached the grader")
        if student == "bob":
            raise RecursionError("maximum recursion depth exceeded in cleanup")
        return self.inner.grade(source, submission, assignment=assignment, student=student,
                                limits=LIMITS)


class ExplodingFactory:
    def __init__(self, inner):
        self.inner = inner

    def __call__(self):
        return ExplodingWorker(self.inner)


# =======================================================================================
# 7. leaks at rest
# =======================================================================================

def test_gradebook_is_private(tmp_path):
    from grader import gradebook
    old = os.umask(0o022)
    try:
        gb = gradebook.open_gradebook(tmp_path)
    finally:
        os.umask(old)
    gb.close()
    assert stat.S_IMODE(os.stat(tmp_path / "gradebook.db").st_mode) == 0o600
    (tmp_path / "gradebook.db").chmod(0o644)   # an older one is tightened
    gradebook.open_gradebook(tmp_path).close()
    assert stat.S_IMODE(os.stat(tmp_path / "gradebook.db").st_mode) == 0o600


def test_feedback_keeps_a_short_plain_excerpt_of_the_students_output(worker, course,
                                                                      then_honest):
    attack = ("import base64, os\n"
              "print(base64.b64encode(os.urandom(300_000)).decode() + '\\x1b[31m\\x07')\n"
              + CORRECT_DOUBLE.replace("2 *", "3 *"))
    result = grade(worker, course, notebook(double=attack))
    outputs = [o.get("text", "") for c in result.feedback_notebook["cells"]
               for o in c.get("outputs", []) if c.get("metadata", {}).get(
                   "nbgrader", {}).get("grade_id") == "double"]
    text = "".join(outputs)
    assert 0 < len(text) <= 2_100, len(text)
    assert "\x1b" not in text and "characters of output not shown" in text


# =======================================================================================
# no isolation: refuse unless told
# =======================================================================================

@pytest.fixture
def small_course(tmp_path):
    course = make_course(tmp_path / "course")
    (course / "gradebook.db").unlink()
    path = course / "submitted" / "ann" / "ex" / "ex.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(notebook(), str(path))
    return course


def test_course_grade_refuses_without_isolation(small_course, monkeypatch, capsys):
    from grader import cli
    monkeypatch.setattr(isolation, "bwrap_path", lambda: None)
    isolation.unavailable_reason.cache_clear()
    try:
        status = cli.main(["autograde", "--course-dir", str(small_course), "--no-progress",
                           "--workers", "1"])
    finally:
        isolation.unavailable_reason.cache_clear()
    assert status == cli.EXIT_NO_ISOLATION == 4
    err = capsys.readouterr().err
    assert "refusing to run the students' code without isolation" in err
    assert "bubblewrap" in err and "--unsafe-no-isolation" in err
    assert not (small_course / "grades.csv").exists()


def test_namespaces_refused_is_detected(monkeypatch):
    monkeypatch.setattr(isolation, "bwrap_path", lambda: "/bin/false")
    isolation.unavailable_reason.cache_clear()
    try:
        reason = isolation.unavailable_reason()
    finally:
        isolation.unavailable_reason.cache_clear()
    assert reason is not None and "refused the sandbox's namespaces" in reason


def test_unsafe_no_isolation_grades_when_asked(small_course, monkeypatch, capsys):
    from grader import cli
    monkeypatch.setattr(isolation, "bwrap_path", lambda: None)
    isolation.unavailable_reason.cache_clear()
    try:
        status = cli.main(["autograde", "--course-dir", str(small_course), "--no-progress",
                           "--workers", "1", "--unsafe-no-isolation"])
    finally:
        isolation.unavailable_reason.cache_clear()
    assert status == cli.EXIT_OK, capsys.readouterr()
    assert "ann" in (small_course / "grades.csv").read_text()


def test_plain_nbgrader_engine_needs_the_flag_too(small_course, capsys):
    from grader import cli
    status = cli.main(["autograde", "--course-dir", str(small_course), "--no-progress",
                       "--engine", "nbgrader"])
    assert status == cli.EXIT_NO_ISOLATION
    assert "--engine nbgrader runs the students' code" in capsys.readouterr().err
