"""What a sandboxed child may do: limits, identity, environment, audit hook, guards.

Everything here runs in the freshly forked child of the sandbox zygote, before any
student code (see :mod:`grader.sandbox`). In order, :func:`confine`

1. starts a new session (the grader kills the whole process group at the end);
2. closes every inherited file descriptor except the channel; stdin becomes ``/dev/null``
   (``input()`` raises ``EOFError``); fd 1 and 2 go to a file in the private temp dir
   (C-level output), capped by ``RLIMIT_FSIZE`` (``SIGXFSZ`` is ignored so a write beyond
   the cap fails instead of killing the process);
3. creates a private temp dir (mode 700) holding a copy of the submission's own data
   files only, and makes it the cwd and ``HOME``;
4. when running as root, drops to a per-child uid (``SANDBOX_UID_BASE + pid``) and the
   ``nogroup`` gid, so ``RLIMIT_NPROC`` (which counts the threads and processes of the
   *user*, and does not bind root) limits this child alone and no two children can
   signal each other; then sets ``PR_SET_NO_NEW_PRIVS`` and a parent-death signal;
5. sets ``RLIMIT_DATA`` (memory), ``RLIMIT_NPROC``, ``RLIMIT_FSIZE``, ``RLIMIT_CORE = 0``
   and ``RLIMIT_CPU`` (a backstop behind the grader's wall-clock limits);
6. cleans the environment (no ``NBGRADER_*`` nor grader variables; one thread for
   OpenMP/MKL and torch; no CUDA) and drops ``sys.path`` entries outside the Python
   installation, so nothing shipped beside the notebook can be imported;
7. replaces the forbidden reference callables of the assignment
   (:mod:`exercise_checks.rules`) by guards that raise :class:`DelegationError` when
   called from the student's cells;
8. installs an audit hook (:func:`sys.addaudithook`, which cannot be removed) that
   refuses: opening files outside the Python installation, ``course_lib`` and the temp dir
   (writing: the temp dir only); listing other folders; ``fork``/``exec``/``spawn``/
   ``system``/``subprocess``; sockets; ``ctypes``; signalling other processes; links;
   adding audit hooks.

The audit hook is a policy layer inside the interpreter, not a kernel boundary; the
process limits and the unprivileged uid are the boundary behind it.
"""
from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import sys
import types

SANDBOX_UID_BASE = 200_000
NOGROUP_GID = 65534
MAX_FILE_BYTES = 64 * 2**20
MAX_DATA_BYTES = 50 * 2**20     # submission data copied into the sandbox
MAX_DATA_FILES = 200
#: never copied into the sandbox, even when they sit beside the submission
SKIPPED_SUFFIXES = (".py", ".pyc", ".pyo", ".pth", ".so", ".ipynb", ".db", ".sqlite",
                    ".cfg", ".toml", ".ini")
KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")


class DelegationError(RuntimeError):
    """The student's code called a routine the exercise forbids."""


# ---------------------------------------------------------------------------------------
# files, identity, limits
# ---------------------------------------------------------------------------------------

def close_fds(keep: int) -> None:
    fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd") if fd.isdigit())
    for fd in fds:
        if fd > 2 and fd != keep:
            try:
                os.close(fd)
            except OSError:
                pass


def read_data(source_dir: str | None) -> dict:
    """The regular files beside the submission (one folder level deep) as
    ``{relative path: bytes}``, never code, notebooks or databases, never through
    symlinks, at most MAX_DATA_BYTES: read by the grader, written into the sandbox's own
    scratch folder by :func:`write_data`."""
    found = {}
    if not source_dir or not os.path.isdir(source_dir):
        return found
    budget = MAX_DATA_BYTES
    for root, dirs, files in os.walk(source_dir, followlinks=False):
        depth = os.path.relpath(root, source_dir).count(os.sep) + (root != source_dir)
        dirs[:] = [d for d in dirs if not d.startswith(".") and depth < 1]
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith(".") or name.lower().endswith(SKIPPED_SUFFIXES) \
                    or os.path.islink(path) or not os.path.isfile(path):
                continue
            size = os.path.getsize(path)
            if size > budget or len(found) >= MAX_DATA_FILES:
                continue
            with open(path, "rb") as handle:
                found[os.path.relpath(path, source_dir)] = handle.read(size)
            budget -= size
    return found


def write_data(files: dict, target: str) -> None:
    """Write :func:`read_data`'s files under ``target`` (relative paths inside it only)."""
    for relative, data in files.items():
        dest = os.path.normpath(os.path.join(target, relative))
        if not isinstance(data, bytes) or not _inside(dest, target) or dest == target:
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as handle:
            handle.write(data)


def _libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


def drop_privileges(workdir: str) -> int | None:
    """As root: hand ``workdir`` to a fresh uid and become it. Returns the uid (or None)."""
    if os.geteuid() != 0 or not all(_open_to_others(r) for r in library_roots()):
        return None
    uid = SANDBOX_UID_BASE + os.getpid()
    for root, dirs, files in os.walk(workdir):
        for name in [root] + [os.path.join(root, f) for f in dirs + files]:
            os.lchown(name, uid, NOGROUP_GID)
    os.setgroups([])
    os.setgid(NOGROUP_GID)
    os.setuid(uid)
    return uid


def _open_to_others(path: str) -> bool:
    """Whether an unprivileged uid could read ``path`` (every ancestor searchable)."""
    import stat
    path = os.path.realpath(path)
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        current = "/".join(parts[:i]) or "/"
        try:
            mode = os.stat(current).st_mode
        except OSError:
            return False
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return False
    return True


def prctl_hardening() -> None:
    try:
        libc = _libc()
        libc.prctl(38, 1, 0, 0, 0)                 # PR_SET_NO_NEW_PRIVS
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG: die with the zygote
    except (OSError, AttributeError):
        pass


def set_limits(limits, dropped: bool) -> None:
    def limit(which, value):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass

    limit(resource.RLIMIT_DATA, int(limits.memory_mb) * 2**20)
    limit(resource.RLIMIT_FSIZE, max(MAX_FILE_BYTES, int(limits.max_output_bytes)))
    limit(resource.RLIMIT_CORE, 0)
    cpu = int(2 * float(limits.notebook_timeout) + 30)
    limit(resource.RLIMIT_CPU, cpu)
    if dropped:  # for root, or a shared uid, RLIMIT_NPROC would be meaningless or harmful
        limit(resource.RLIMIT_NPROC, int(limits.max_processes))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def clean_environment(workdir: str) -> None:
    keep = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    os.environ.clear()
    os.environ.update(keep)
    os.environ.update({
        "HOME": workdir, "TMPDIR": workdir, "MPLCONFIGDIR": workdir, "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0",
    })
    import tempfile
    tempfile.tempdir = workdir
    allowed = library_roots()
    sys.path[:] = [p for p in sys.path
                   if p and os.path.isabs(p) and any(_inside(os.path.realpath(p), r)
                                                     for r in allowed)]
    try:
        import torch
        torch.set_num_threads(1)
        torch.cuda.is_available = lambda: False  # a forked child must not touch CUDA
    except Exception:  # noqa: BLE001  (torch is optional for the sandbox itself)
        pass


# ---------------------------------------------------------------------------------------
# the audit hook
# ---------------------------------------------------------------------------------------

def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@functools.lru_cache(maxsize=1)
def library_roots() -> tuple[str, ...]:
    """Folders whose files the sandbox may read: the Python installation, the virtual
    environment, and the course_lib package (installed editable, so outside it)."""
    import importlib.util
    import sysconfig
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for package in ("exercise_checks", "grader", "course_lib"):
        spec = importlib.util.find_spec(package)  # course_lib: absent from the jail
        if spec is not None and spec.origin and os.path.exists(spec.origin):
            roots.add(os.path.dirname(os.path.abspath(spec.origin)))
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    for path in sys.path:
        if path.endswith(("site-packages", "dist-packages", "lib-dynload")) or \
                path.endswith(".zip"):
            roots.add(path)
    return tuple(sorted({os.path.realpath(r) for r in roots if r}))


READABLE_FILES = ("/dev/null", "/dev/urandom", "/dev/random", "/proc/self/statm",
                  "/proc/self/stat", "/proc/self/status", "/proc/meminfo", "/proc/cpuinfo",
                  "/proc/stat", "/etc/localtime", "/etc/passwd", "/etc/group",
                  "/sys/fs/cgroup/cpu.max", "/etc/ld.so.cache")

BLOCKED_EVENTS = ("os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn",
                  "os.system", "os.startfile", "subprocess.Popen", "pty.spawn",
                  "socket.__new__", "socket.connect", "socket.bind", "socket.sendto",
                  "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
                  "os.symlink", "os.link", "os.chroot", "os.setuid",
                  "sys.addaudithook", "sys.setprofile", "sys.settrace",
                  "os.killpg", "signal.pthread_kill", "os.truncate", "mmap.__new__",
                  "os.chmod", "os.chown", "resource.setrlimit", "resource.prlimit")


def install_audit_hook(workdir: str, channel_fd: int, also_writable=()) -> None:
    """Refuse what a submission must never do (see the module docstring). ``workdir`` and
    the folders ``also_writable`` are the submission's own."""
    roots = library_roots()
    own = tuple(os.path.realpath(p) for p in (workdir, *also_writable))
    pid = os.getpid()
    realpath, isinstance_, str_, bytes_, fspath = (os.path.realpath, isinstance, str,
                                                   bytes, os.fspath)

    def refuse(what):
        raise PermissionError(f"the grading sandbox does not allow {what}")

    # /proc/self resolves to this process's pid in the /proc that is mounted (the jail's,
    # not the submission's own pid namespace): name it /proc/self again
    proc_self = realpath("/proc/self").rstrip("/") + "/"

    def resolve(path):
        if isinstance_(path, int):
            return None
        path = fspath(path)
        if isinstance_(path, bytes_):
            path = path.decode("utf-8", "surrogateescape")
        path = realpath(path)
        return "/proc/self/" + path[len(proc_self):] if path.startswith(proc_self) else path

    def hook(event, args):
        if event == "open":
            path = resolve(args[0])
            if path is None:
                return
            mode = args[1] if len(args) > 1 else "r"
            flags = args[2] if len(args) > 2 else 0
            writing = (isinstance_(mode, str_) and any(c in mode for c in "wax+")) or (
                isinstance_(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if any(_inside(path, w) for w in own) or path == "/dev/null":
                return
            if not writing and (path in READABLE_FILES or any(_inside(path, r)
                                                              for r in roots)):
                return
            refuse(f"{'writing' if writing else 'reading'} {path}")
        elif event in ("os.listdir", "os.scandir"):
            path = resolve(args[0] if args and args[0] is not None else ".")
            if path is not None and not any(_inside(path, w) for w in own) and \
                    not any(_inside(path, r) for r in roots):
                refuse(f"listing {path}")
        elif event in ("os.remove", "os.rmdir", "os.rename", "os.mkdir", "shutil.rmtree",
                       "shutil.move", "os.utime"):
            path = resolve(args[0]) if args else None
            if path is not None and not any(_inside(path, w) for w in own):
                refuse(f"{event} on {path}")
        elif event == "os.kill":
            if args[0] != pid:
                refuse("signalling other processes")
        elif event.startswith("ctypes.") or event in BLOCKED_EVENTS or \
                event.startswith("os.exec") or event.startswith("os.spawn"):
            refuse(event)
        elif event == "os.close" and args and args[0] == channel_fd:
            refuse("closing the grader's channel")

    sys.addaudithook(hook)


# ---------------------------------------------------------------------------------------
# delegation guards
# ---------------------------------------------------------------------------------------

def _student_frame(frame):
    """The innermost frame of the student's code on the stack (a file outside the Python
    installation and the course's packages: a notebook cell), or None."""
    roots = library_roots()
    while frame is not None:
        filename = frame.f_code.co_filename
        if not any(_inside(filename, r) for r in roots) and filename != "<frozen>":
            return frame
        frame = frame.f_back
    return None


def _refuser(dotted):
    """What replaces a forbidden routine: it never calls (nor holds) the original, so no
    ``__wrapped__``, closure or default argument leads back to it."""
    def refused(*args, **kwargs):
        frame = _student_frame(sys._getframe(1))
        where = frame.f_code.co_name if frame is not None else "your code"
        raise DelegationError(f"{where} calls {dotted}: this part must be your own code, "
                              f"so it scores zero")

    refused.__name__ = refused.__qualname__ = dotted.rsplit(".", 1)[-1]
    refused.__course_guard__ = True
    return refused


def _guard_class(cls, dotted):
    """Every function of a forbidden class (``__init__``, ``step``, ...) refuses: neither
    ``Adam(...)`` nor ``torch.optim.Adam.step(my_optimizer)`` works."""
    for attr, value in list(vars(cls).items()):
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if not isinstance(value, types.FunctionType) or (
                attr.startswith("__") and attr != "__init__"):
            continue
        try:
            setattr(cls, attr, _refuser(f"{dotted}.{attr}" if attr != "__init__" else dotted))
        except (TypeError, AttributeError):
            pass


_DISPATCH_LIBRARY = []


def _guard_aten(name):
    """Refuse the aten operator ``name`` (every overload) in torch's dispatcher, so every
    route to it (``torch.X``, ``torch.ops.aten.X``, ``torch._C._VariableFunctions.X``, a
    torch routine that uses it) ends in the refusal."""
    import warnings
    import torch
    packet = getattr(torch.ops.aten, name, None)
    if packet is None:
        return False
    if not _DISPATCH_LIBRARY:
        _DISPATCH_LIBRARY.append(torch.library.Library("aten", "IMPL"))
    refuse = _refuser(f"torch.ops.aten.{name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel"
        for overload in packet.overloads():
            qualified = name if overload == "default" else f"{name}.{overload}"
            for key in ("CPU", "CompositeImplicitAutograd"):
                try:
                    _DISPATCH_LIBRARY[0].impl(qualified, refuse, key)
                except Exception:  # noqa: BLE001  (no kernel under that key)
                    pass
    return True


def _resolve(dotted):
    import importlib
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # noqa: BLE001  (not a module: walk attributes)
            continue
        parent = None
        for attr in parts[cut:]:
            parent, obj = obj, getattr(obj, attr, None)
            if obj is None:
                return None, None
        return parent, obj
    return None, None


#: library entry points that open files (or start processes) in C/C++, where no audit
#: event fires
NATIVE_FILE_READERS = ("torch.from_file", "torch.UntypedStorage.from_file",
                       "torch.TypedStorage.from_file", "torch.storage.TypedStorage.from_file",
                       "torch.jit.load", "torch._C.import_ir_module",
                       "torch._C._load_for_lite_interpreter", "torch._C._load_jit_module_from_file",
                       "numpy.ctypeslib.load_library",
                       # subprocess's C helper forks without an audit event of its own
                       "_posixsubprocess.fork_exec")


def block_native_file_readers() -> None:
    """Replace the library functions that open files outside Python's ``open``."""
    for dotted in NATIVE_FILE_READERS:
        parent, obj = _resolve(dotted)
        if parent is None or obj is None:
            continue

        def refuse(*args, _name=dotted, **kwargs):
            raise PermissionError(f"the grading sandbox does not allow {_name}")

        try:
            setattr(parent, dotted.rsplit(".", 1)[-1], refuse)
        except (TypeError, AttributeError):
            pass


def install_guards(forbidden) -> list[str]:
    """Replace each forbidden callable (a function, every function of a class, every
    function of a module, private ones included) by a refuser that does not hold the
    original; ``torch.ops.aten.X`` entries are refused in torch's dispatcher. Returns the
    dotted names guarded."""
    done = []
    for dotted in forbidden or ():
        if dotted.startswith("torch.ops.aten."):
            if "torch" in sys.modules and _guard_aten(dotted[len("torch.ops.aten."):]):
                done.append(dotted)
            continue
        parent, obj = _resolve(dotted)
        if obj is None:
            continue
        name = dotted.rsplit(".", 1)[-1]
        if isinstance(obj, types.ModuleType):
            for attr, value in list(vars(obj).items()):
                # a function imported into it (``torch.optim._functional.adam``) is
                # refused under this name too; a class only where it is defined
                if attr.startswith("__") or not callable(value) or isinstance(
                        value, types.ModuleType) or getattr(value, "__course_guard__", False):
                    continue
                if isinstance(value, type):
                    if getattr(value, "__module__", None) == obj.__name__:
                        _guard_class(value, f"{dotted}.{attr}")
                else:
                    setattr(obj, attr, _refuser(f"{dotted}.{attr}"))
                done.append(f"{dotted}.{attr}")
        elif isinstance(obj, type):
            _guard_class(obj, dotted)
            done.append(dotted)
        elif callable(obj) and parent is not None and not getattr(obj, "__course_guard__",
                                                                  False):
            try:
                setattr(parent, name, _refuser(dotted))
                done.append(dotted)
            except (TypeError, AttributeError):
                pass
    return done
