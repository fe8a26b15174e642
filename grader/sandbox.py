"""The sandbox: a warm zygote in a bubblewrap jail that forks one confined child per
submission.

Three kinds of process take part (``grader/DESIGN.md`` has the picture):

- the **grader** (trusted; runs the test cells): :class:`Zygote` and :class:`Sandbox`
  below are its side;
- the **zygote**, started once per :class:`~grader.engine.GradingWorker` and per profile
  (NumPy-only, or with torch) inside the jail of :func:`grader.isolation.jail_command`
  (``python -I -m grader.sandbox FD MODE``): imports numpy (and torch), IPython and the
  :data:`WARM_MODULES` once, never runs student code and never sees a test cell; on
  request it forks an *intermediate* process that enters private user, mount, pid and IPC
  namespaces with a fresh size-limited ``/scratch`` (:func:`grader.isolation.
  enter_private_namespaces`) and forks the **child**, pid 1 of that pid namespace; the
  grader gets the child's end of a fresh socket pair (``SCM_RIGHTS``); at the end the
  zygote kills the child (which ends its whole pid namespace) and reaps both;
- the **child**: confines itself (:func:`grader.isolation.lock_down`: no capabilities,
  no_new_privs, seccomp; then :mod:`grader.policy`: limits, guards, audit hook), then
  serves the grader's requests one at a time: run a cell in an IPython
  ``InteractiveShell`` (errors are recorded, execution goes on, like nbgrader's
  ``allow_errors``), get names, call a handle, get/set attributes and items, one
  optimizer step. Requests are pickled (grader -> child); replies use the strict codec
  (:mod:`grader.codec`), so only plain data reaches the grader.

With ``isolated=False`` (``course-grade --unsafe-no-isolation``) there is no jail and no
namespaces: the child is confined by :mod:`grader.policy` only.

The grader enforces the wall-clock limits: each request has a deadline; on a timeout,
an EOF of the channel (``os._exit``, ``sys.exit`` is caught like in a kernel, a kill) or
at the end it asks the zygote to kill the child and reports why.
"""
from __future__ import annotations

import importlib
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from grader import codec

STUDENT_FILE_PREFIX = "<ipython-input-"
MAX_CELL_OUTPUT = 20_000           # characters of a cell's output kept for the feedback
MAX_MESSAGE = 2_000
#: imported by the zygote besides numpy, torch and IPython, because the course's notebooks
#: import them: each child would otherwise import them again (about a second per
#: submission).  ``course_lib`` is not in the jail at all.
WARM_MODULES = ("matplotlib", "matplotlib.pyplot", "sklearn.datasets", "scipy.stats")
#: size of a submission's private /scratch (cwd, HOME; /tmp links to it): its disk quota
TMP_MB = 256


# =======================================================================================
# grader side
# =======================================================================================

class SandboxError(Exception):
    """The child stopped answering: ``kind`` is "timeout", "died" or "protocol"."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class Zygote:
    """The warm process that forks sandboxes (one per GradingWorker and profile).

    ``torch``: whether the sandbox may import torch (else it is masked in the jail);
    ``isolated``: run in the bubblewrap jail with per-submission namespaces (else only
    the in-process policy confines the child: ``--unsafe-no-isolation``)."""

    def __init__(self, start_timeout: float = 120.0, wait: bool = True, *, torch=True,
                 isolated=True):
        from grader import isolation
        self.torch, self.isolated = bool(torch), bool(isolated)
        grader_end, zygote_end = socket.socketpair()
        argv = [sys.executable, "-I", "-m", "grader.sandbox", str(zygote_end.fileno()),
                ("isolated" if isolated else "unsafe") + ("-torch" if torch else "-numpy")]
        fds = []
        if isolated:
            isolation.require()
            argv, fds = isolation.jail_command(argv, torch=torch, tmp_mb=TMP_MB)
            env = {}
        else:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("NBGRADER", "JUPYTER", "COURSE_GRADE"))}
            env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
        try:
            self.process = subprocess.Popen(
                argv, pass_fds=[zygote_end.fileno()] + fds, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, env=env, cwd=tempfile.gettempdir())
        finally:
            for fd in fds:
                os.close(fd)
            zygote_end.close()
        self.sock = grader_end
        # wait=False: the zygote imports in its own process while the caller goes on; its
        # "ready" is awaited before the first request
        self._start_deadline = time.monotonic() + start_timeout
        self._ready = False
        if wait:
            self._await_ready()

    def _await_ready(self) -> None:
        if self._ready:
            return
        try:
            reply = self._reply(self._start_deadline)
            if "ready" not in reply:
                raise RuntimeError(f"the sandbox zygote failed to start: {reply}")
        except RuntimeError:
            self.process.kill()  # not alive() any more: the worker starts a fresh one
            self.process.wait()
            raise
        self._ready = True

    def _reply(self, deadline=None):
        try:
            reply = codec.decode(codec.recv_frame(self.sock, deadline))
        except (codec.ChannelClosed, codec.ChannelTimeout, codec.CodecError) as error:
            raise RuntimeError(f"the sandbox zygote is not answering ({error})") from None
        if type(reply) is not dict:
            raise RuntimeError("the sandbox zygote sent an invalid reply")
        return reply

    def alive(self) -> bool:
        return self.process.poll() is None

    def spawn(self, limits, forbidden, files=None, timeout: float = 60.0) -> "Sandbox":
        """A fresh child; ``files``: ``{relative path: bytes}`` put in its cwd."""
        self._await_ready()
        request = {"op": "spawn", "limits": dict(vars(limits)), "forbidden": list(forbidden),
                   "files": dict(files or {})}
        codec.send_frame(self.sock, pickle.dumps(request))
        self.sock.settimeout(timeout)
        try:
            _, fds, _, _ = socket.recv_fds(self.sock, 1, 1)
        finally:
            self.sock.settimeout(None)
        if not fds:
            raise RuntimeError("the sandbox zygote sent no channel")
        info = self._reply(time.monotonic() + timeout)
        if type(info.get("pid")) is not int or type(info.get("child")) is not int:
            raise RuntimeError(f"the sandbox zygote failed to fork: {info}")
        sandbox = Sandbox(self, socket.socket(fileno=fds[0]), info["pid"], info["child"],
                          info.get("workdir"))
        sandbox.wait_ready(time.monotonic() + timeout)
        return sandbox

    def cleanup(self, pid: int, child: int, workdir) -> str:
        """Kill everything of the child, reap it, remove what it left; its fate."""
        self._await_ready()
        codec.send_frame(self.sock, pickle.dumps({"op": "cleanup", "pid": pid,
                                                  "child": child, "workdir": workdir}))
        status = self._reply(time.monotonic() + 60).get("status")
        return status if isinstance(status, str) else "ended"

    def close(self) -> None:
        try:
            codec.send_frame(self.sock, pickle.dumps({"op": "exit"}))
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.sock.close()


class Sandbox:
    """The grader's end of one child: requests with deadlines, and its end."""

    def __init__(self, zygote, sock, pid, child, workdir):
        self.zygote, self.sock, self.pid, self.child = zygote, sock, pid, child
        self.workdir = workdir
        self.fate = None          # why it ended, once it has
        self.make_handle = None   # set by the test runner: handle description -> proxy

    def wait_ready(self, deadline):
        try:
            reply = self._receive(deadline)
        except SandboxError as error:
            raise RuntimeError(f"the sandbox failed to start: {error}") from None
        if type(reply) is not dict or "ready" not in reply:
            self.close()
            raise RuntimeError(f"the sandbox failed to start: {reply}")

    def _receive(self, deadline):
        try:
            frame = codec.recv_frame(self.sock, deadline)
        except codec.ChannelTimeout:
            self.close()
            raise SandboxError("timeout", "time limit") from None
        except (codec.ChannelClosed, OSError):
            self.close()
            raise SandboxError("died", self.fate) from None
        except codec.CodecError as error:
            self.close()
            raise SandboxError("protocol", f"invalid reply from the sandbox ({error})") from None
        try:
            return codec.decode(frame, self.make_handle)
        except codec.CodecError as error:
            self.close()
            raise SandboxError("protocol", f"invalid reply from the sandbox ({error})") from None

    def request(self, message: dict, deadline: float):
        """Send ``message``; return the decoded reply dict (``{"ok": ...}`` or
        ``{"error": {...}}``). Raises :class:`SandboxError` on a timeout or a dead child."""
        if self.fate is not None:
            raise SandboxError("died", self.fate)
        try:
            codec.send_frame(self.sock, codec.dumps(message))
        except OSError:
            self.close()
            raise SandboxError("died", self.fate) from None
        reply = self._receive(deadline)
        if type(reply) is not dict or not ({"ok", "error"} & set(reply)):
            self.close()
            raise SandboxError("protocol", "invalid reply from the sandbox")
        return reply

    def close(self) -> str:
        if self.fate is None:
            try:
                self.fate = self.zygote.cleanup(self.pid, self.child, self.workdir)
            except (RuntimeError, OSError) as error:
                self.fate = f"ended ({error})"
            self.sock.close()
        return self.fate


# =======================================================================================
# zygote
# =======================================================================================

def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig
        why = {"SIGXCPU": " (CPU time limit)", "SIGSEGV": " (a crash)",
               "SIGKILL": ""}.get(name, "")
        return f"killed by {name}{why}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _remove_tree(path) -> None:
    """rm -rf that cannot fail (a tree too deep for ``shutil.rmtree`` included)."""
    if not path:
        return
    import shutil
    try:
        shutil.rmtree(path, ignore_errors=True)
    except BaseException:  # noqa: BLE001  (RecursionError on a deep tree)
        pass
    if os.path.lexists(path):
        try:
            subprocess.run(["rm", "-rf", "--one-file-system", "--", path], timeout=120,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        except BaseException:  # noqa: BLE001
            pass


def _cleanup(pid: int, child: int, workdir, isolated: bool) -> str:
    """Kill the child (pid 1 of its namespace: the kernel kills all it started), let the
    intermediate ``pid`` report its status, reap; in unsafe mode remove its temp dir."""
    targets = [(os.kill, child)] if isolated else [(os.killpg, child), (os.kill, child)]
    for kill, target in targets if child > 0 else ():
        try:
            kill(target, signal.SIGKILL)
        except OSError:
            pass
    fate = "ended"
    deadline = time.monotonic() + 10
    while True:
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            break
        if reaped == pid:
            fate = _describe_status(status)
            break
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.002)
    while True:  # orphans re-parented to us (we are a subreaper)
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if reaped == 0:
            break
    if not isolated:
        _remove_tree(workdir)
    return fate


def _mirror(status: int) -> None:
    """End this process as ``status`` says its child ended."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        except (OSError, ValueError):
            pass
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _namespace_init() -> None:
    """Pid 1 of a submission's pid namespace: waits for the student's process (pid 2, so
    that signals and limits act on it as on any process) and ends as it ends; when pid 1
    ends, the kernel kills everything else in the namespace."""
    import ctypes
    try:
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # die with the parent
    except (OSError, AttributeError):
        pass
    os.closerange(3, 1 << 16)
    while True:
        try:
            _, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(1)
        if _ == 2:
            _mirror(status)


def _intermediate(request, child_end, pid_pipe, isolated) -> None:
    """The forked process between the zygote and the child: enters the namespaces, forks
    the child (pid 1 there), says its pid, and ends as it ends."""
    import ctypes
    try:
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # die with the zygote
    except (OSError, AttributeError):
        pass
    try:
        if isolated:
            from grader import isolation
            # the fresh tmpfs itself: cwd, HOME and TMPDIR, and /tmp links to it
            workdir = isolation.SCRATCH
            isolation.enter_private_namespaces(TMP_MB)
        else:
            workdir = request["workdir"]
        child = os.fork()
    except BaseException:  # noqa: BLE001  (report a failed set-up)
        import traceback
        os.write(pid_pipe, struct.pack("<i", 0))
        try:
            codec.send_frame(child_end, codec.encode(
                {"setup_error": traceback.format_exc()[-MAX_MESSAGE:]}))
        finally:
            os._exit(1)
    if child == 0:
        try:
            os.close(pid_pipe)
            if isolated and os.fork() != 0:
                _namespace_init()
            _child_main(child_end, request, workdir, isolated)
        except BaseException:  # noqa: BLE001  (report a failed set-up)
            import traceback
            try:
                codec.send_frame(child_end, codec.encode(
                    {"setup_error": traceback.format_exc()[-MAX_MESSAGE:]}))
            except BaseException:  # noqa: BLE001
                pass
        finally:
            os._exit(0)
    os.write(pid_pipe, struct.pack("<i", child))
    os.closerange(3, 1 << 16)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(1)
    _mirror(status)


def zygote_main(fd: int, mode: str) -> None:
    sock = socket.socket(fileno=fd)
    isolated, with_torch = mode.startswith("isolated"), mode.endswith("torch")
    import numpy  # noqa: F401  (warm imports, shared with every child)
    import bdb  # noqa: F401  (IPython imports it at the first cell)
    import IPython.core.interactiveshell  # noqa: F401
    import exercise_checks  # noqa: F401
    from grader import policy
    if with_torch:
        import torch
        torch.set_num_threads(1)
        from exercise_checks import probes
        # the first optimizer step and backward import a lot lazily: do it once here
        probes.train_with_optimizer(torch.optim.SGD, {"lr": 0.1}, steps=1)
    policy.library_roots()
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  (an optional library: the child imports it or not)
            pass
    try:
        import ctypes
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # die with the grader
        # not dumpable: no child can open our /proc/PID/mem, fd/ or cwd (ptrace access)
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    except (OSError, AttributeError):
        pass
    codec.send_frame(sock, codec.encode({"ready": os.getpid()}))
    while True:
        try:
            request = pickle.loads(codec.recv_frame(sock))
        except (codec.ChannelClosed, OSError):
            os._exit(0)
        if request["op"] == "exit":
            os._exit(0)
        if request["op"] == "cleanup":
            fate = _cleanup(request["pid"], request["child"], request["workdir"], isolated)
            codec.send_frame(sock, codec.encode({"status": fate}))
        elif request["op"] == "spawn":
            request["workdir"] = None if isolated else tempfile.mkdtemp(
                prefix="course-sandbox-")
            grader_end, child_end = socket.socketpair()
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    sock.close()
                    grader_end.close()
                    os.close(read_end)
                    _intermediate(request, child_end, write_end, isolated)
                finally:
                    os._exit(1)
            child_end.close()
            os.close(write_end)
            raw = b""
            while len(raw) < 4:
                chunk = os.read(read_end, 4 - len(raw))
                if not chunk:
                    break
                raw += chunk
            os.close(read_end)
            child = struct.unpack("<i", raw)[0] if len(raw) == 4 else 0
            socket.send_fds(sock, [b"F"], [grader_end.fileno()])
            grader_end.close()
            codec.send_frame(sock, codec.encode({"pid": pid, "child": child,
                                                 "workdir": request["workdir"]}))


# =======================================================================================
# child
# =======================================================================================

class _Limits:
    def __init__(self, values):
        self.__dict__.update(values)


class OutputSink:
    """``sys.stdout``/``sys.stderr`` of the child: keeps at most ``limit`` characters over
    the whole notebook (the rest is dropped and counted)."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, shared, fd):
        self.shared, self.fd = shared, fd

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        shared = self.shared
        room = shared["limit"] - shared["total"]
        if room > 0:
            kept = text[:room]
            shared["total"] += len(kept)
            if len(shared["cell"]) < MAX_CELL_OUTPUT:
                shared["cell"].append(kept)
        if len(text) > max(room, 0):
            shared["dropped"] += len(text) - max(room, 0)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def fileno(self):
        return self.fd

    def readable(self):
        return False

    def writable(self):
        return True


def _safe_text(obj, limit=MAX_MESSAGE):
    try:
        text = str(obj)
    except BaseException:  # noqa: BLE001  (a hostile __str__)
        text = f"<{type(obj).__name__} that cannot be printed>"
    return text if len(text) <= limit else text[:limit] + " ..."


def _state_steps(optimizer):
    from exercise_checks import state_steps
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return state_steps(optimizer, params)


class _Child:
    def __init__(self, sock, shell, labels, sink_state):
        self.sock, self.shell, self.labels, self.out = sock, shell, labels, sink_state
        self.registry, self.next_id = {}, 1

    # -- handles --------------------------------------------------------------------
    def register(self, obj):
        import types
        handle_id, self.next_id = self.next_id, self.next_id + 1
        self.registry[handle_id] = obj
        if isinstance(obj, types.ModuleType):
            kind, name = "object", ""      # the grader never imports what we name
        elif isinstance(obj, type):
            kind, name = "class", obj.__qualname__
        elif callable(obj):
            kind = "function"
            name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "")
        else:
            kind, name = "object", ""
        module = getattr(obj, "__module__", "") if kind in ("class", "function") else ""
        return {"id": handle_id, "kind": kind, "name": str(name)[:200],
                "type": type(obj).__name__[:200],
                "module": module[:200] if isinstance(module, str) else ""}

    def encode(self, obj, argrefs=None):
        return codec.encode(obj, self.register, argrefs)

    # -- errors ---------------------------------------------------------------------
    def describe(self, error):
        import linecache
        lines = []
        tb = error.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename.startswith(STUDENT_FILE_PREFIX):
                number = code.co_filename[len(STUDENT_FILE_PREFIX):].split("-")[0]
                label = self.labels.get(number, "a cell")
                text = linecache.getline(code.co_filename, tb.tb_lineno).strip()
                where = "" if code.co_name == "<module>" else f", in {code.co_name}"
                lines.append(f"  {label}, line {tb.tb_lineno}{where}\n    {text}")
            tb = tb.tb_next
        mro = []
        for cls in type(error).__mro__[:64]:  # names only: the grader matches its allow-list
            module, qualname = getattr(cls, "__module__", ""), getattr(cls, "__qualname__", "")
            if isinstance(module, str) and isinstance(qualname, str):
                mro.append(f"{module}.{qualname}"[:200])
        return {"type": type(error).__name__[:200], "message": _safe_text(error),
                "traceback": "\n".join(lines[-20:]), "mro": mro}

    # -- requests -------------------------------------------------------------------
    def run(self, request):
        self.labels[str(self.shell.execution_count)] = request["label"]
        self.out["cell"] = []
        result = self.shell.run_cell(request["code"], store_history=True)
        error = result.error_before_exec or result.error_in_exec
        return {"status": "error" if error is not None else "ok",
                "error": None if error is None else self.describe(error),
                "output": "".join(self.out["cell"])[:MAX_CELL_OUTPUT],
                "dropped": self.out["dropped"]}

    def get(self, request):
        found = {}
        for name in request["names"]:
            if name in self.shell.user_ns:
                found[name] = self.shell.user_ns[name]
        return self.encode(found)

    def call_result(self, func, args, kwargs, inplace=(), observe=False):
        """Call; reply with the result and, for the positions and keywords the grader
        names in ``inplace``, what the call left in those arguments (never written into
        the grader's own objects: the test compares them). ``observe``: also what the
        call did here (``exercise_checks.observe_call``: NumPy's global random state
        used, list entries replaced instead of updated in place)."""
        observed = None
        if observe:
            from exercise_checks import _observed
            result, observed = _observed(func, args, kwargs)
        else:
            result = func(*args, **kwargs)
        after = {}
        for key in inplace:
            if isinstance(key, int) and 0 <= key < len(args):
                after[str(key)] = args[key]
            elif isinstance(key, str) and key in kwargs:
                after[key] = kwargs[key]
        reply = {"result": self.encode(result), "after": self.encode(after)}
        if observed is not None:
            reply["observed"] = self.encode(observed)
        return reply

    def optimizer_step(self, request):
        """Give the optimizer's parameters the grader's values and gradients, run its
        ``step()`` (the student's code) and return the parameters' new values."""
        import torch
        optimizer = self.registry[request["id"]]
        params = [p for group in optimizer.param_groups for p in group["params"]]
        values, grads = request["values"], request["grads"]
        if len(params) != len(values):
            raise ValueError(f"the optimizer holds {len(params)} parameters where "
                             f"{len(values)} were given to it")
        with torch.no_grad():
            for p, value, grad in zip(params, values, grads):
                p.copy_(value)
                p.grad = None if grad is None else grad.clone()
        if request.get("closure") is None:
            optimizer.step()
            return self.encode([p.detach().clone() for p in params])
        # the grader evaluated the probe's closure already: this one gives its gradients
        # and loss to the student's step() when (and only if) step() calls it
        for p in params:
            p.grad = None

        def closure():
            with torch.no_grad():
                for p, grad in zip(params, grads):
                    p.grad = None if grad is None else grad.clone()
            return torch.tensor(float(request["closure"]), dtype=torch.float64)

        returned = optimizer.step(closure)
        loss = float(returned) if isinstance(returned, (torch.Tensor, float, int)) else None
        return self.encode({"params": [p.detach().clone() for p in params], "loss": loss})

    def state_steps(self, request):
        """``optimizer.state[p]["step"]`` of each parameter (-1 where there is none)."""
        optimizer = self.registry[request["id"]]
        return self.encode(_state_steps(optimizer))

    def handle(self, request):
        op = request["op"]
        if op == "run":
            return self.encode(self.run(request))
        if op == "get":
            return self.get(request)
        if op == "names":
            return self.encode(sorted(n for n in self.shell.user_ns if not n.startswith("_")))
        if op == "call":
            return self.encode(self.call_result(self.registry[request["id"]],
                                                request["args"], request["kwargs"],
                                                request.get("inplace", ()),
                                                bool(request.get("observe"))))
        if op == "optimizer_step":
            return self.optimizer_step(request)
        if op == "state_steps":
            return self.state_steps(request)
        target = self.registry[request["id"]]
        if op == "getattr":
            return self.encode(getattr(target, request["name"]))
        if op == "setattr":
            setattr(target, request["name"], request["value"])
            return self.encode(None)
        if op == "getitem":
            return self.encode(target[request["key"]])
        if op == "setitem":
            target[request["key"]] = request["value"]
            return self.encode(None)
        raise ValueError(f"unknown request {op!r}")

    def serve(self):
        while True:
            try:
                frame = codec.recv_frame(self.sock)
            except (codec.ChannelClosed, OSError):
                return
            try:
                request = codec.loads(frame, self.registry.__getitem__)
                payload = self.handle(request)
                reply = codec.encode({"ok": payload})
            except BaseException as error:  # noqa: BLE001  (student code raised)
                try:
                    reply = codec.encode({"error": self.describe(error)})
                except BaseException:  # noqa: BLE001
                    reply = codec.encode({"error": {"type": "Error", "message": "",
                                                    "traceback": ""}})
            codec.send_frame(self.sock, reply)


def _make_shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.autocall = 0
    shell = InteractiveShell(config=config)
    shell.user_ns["__name__"] = "__main__"

    def showtraceback(*args, **kwargs):
        # IPython's formatter imports and allocates a lot (fails after a memory bomb);
        # the grader formats the student's traceback itself
        error = sys.exc_info()[1]
        if error is not None:
            sys.stderr.write(f"{type(error).__name__}: {_safe_text(error)}\n")

    shell.showtraceback = showtraceback
    return shell


def _child_main(sock, request, workdir, isolated):
    from grader import policy
    limits = _Limits(request["limits"])
    os.setsid()
    policy.prctl_hardening()                # die with the intermediate
    if isolated:
        from grader import isolation
    policy.close_fds(keep=sock.fileno())
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    policy.write_data(request.get("files") or {}, workdir)
    output = os.open(os.path.join(workdir, ".c-output"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    os.close(null)
    os.chdir(workdir)
    dropped = not isolated and policy.drop_privileges(workdir) is not None
    policy.set_limits(limits, dropped)
    if isolated:
        isolation.lock_down()               # no capabilities, no processes, no mounts
    policy.clean_environment(workdir)
    policy.install_guards(request.get("forbidden") or ())
    policy.block_native_file_readers()
    shared = {"limit": int(limits.max_output_bytes), "total": 0, "dropped": 0, "cell": []}
    sys.stdin = open(os.devnull)
    shell = _make_shell()
    sys.stdout, sys.stderr = OutputSink(shared, 1), OutputSink(shared, 2)
    sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr
    policy.install_audit_hook(workdir, sock.fileno(),
                              isolation.writable_dirs()[1:] if isolated else ())
    child = _Child(sock, shell, {}, shared)
    codec.send_frame(sock, codec.encode({"ready": True}))
    child.serve()


if __name__ == "__main__":
    zygote_main(int(sys.argv[1]), sys.argv[2])
