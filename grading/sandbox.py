"""Confine a process that is about to run student code: resource limits and a Landlock sandbox.

Resource limits (``setrlimit``) bound CPU time, address space, file sizes and core dumps.

Landlock (Linux >= 5.13, no privileges needed) is an allow-list: after :func:`restrict` the process
and its children can read only the listed directory trees, write only the listed ones, cannot
send signals to (or ptrace) processes outside the sandbox (ABI >= 6), and cannot open TCP
connections (ABI >= 4). That keeps student code away from ``solutions/``, the gradebook, the
grading package's files and the grader process itself. When the running kernel has no Landlock,
:func:`restrict` returns 0 and the caller logs that the filesystem is NOT confined.

A seccomp filter (:func:`forbid_new_processes`) makes ``fork``, ``vfork`` and ``clone`` without
``CLONE_THREAD`` fail: student code can start threads but no process, so nothing it starts
outlives the sandboxed process (no detached processes, no fork bombs). It also refuses System V
IPC, whose objects persist. :func:`drop_capabilities` matters when grading runs as root: without
it student code could raise its own resource limits, reboot the machine or load modules.
:func:`confine` applies all three.

Only the Python standard library is used: this module is imported by the harness and the kernel
launcher before any student code runs.
"""
from __future__ import annotations

import ctypes
import os
import resource
import sys

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # same on every arch
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_PR_SET_NO_NEW_PRIVS = 38

# filesystem rights, by the ABI version that introduced them
_FS_ABI1 = (1 << 13) - 1          # execute .. make_sym
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1, 2, 4, 8
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
_READ = _EXECUTE | _READ_FILE | _READ_DIR
_NET_BIND, _NET_CONNECT = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2

# "/proc/self" is resolved when the rules are made: the process's own /proc directory only, so
# student code cannot read the environment or the memory maps of the grader or other processes.
SYSTEM_READ_ROOTS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/sys", "/proc/self",
                     "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/sys")
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel, 0 when Landlock is unavailable."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        abi = _libc().syscall(ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0),
                              ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(abi), 0)


def set_limits(cpu_seconds: int | None = None, memory_bytes: int | None = None,
               file_bytes: int | None = None, processes: int | None = None) -> None:
    """Apply hard resource limits to the current process (inherited by its children)."""
    pairs = [(resource.RLIMIT_CORE, 0)]
    if cpu_seconds:
        pairs.append((resource.RLIMIT_CPU, int(cpu_seconds)))
    if memory_bytes:
        pairs.append((resource.RLIMIT_AS, int(memory_bytes)))
    if file_bytes:
        pairs.append((resource.RLIMIT_FSIZE, int(file_bytes)))
    if processes:
        pairs.append((resource.RLIMIT_NPROC, int(processes)))
    for which, value in pairs:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def _contains(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def expand_roots(roots, forbidden) -> list[str]:
    """Replace every root that contains a forbidden path by its children, recursively.

    Landlock cannot deny a subtree of an allowed tree, so a root such as ``/home/prof`` that holds
    the course is split until no allowed tree contains ``solutions/`` or the gradebook.
    """
    forbidden = [os.path.realpath(f) for f in forbidden]
    out: list[str] = []
    stack = [os.path.realpath(r) for r in roots if os.path.exists(r)]
    while stack:
        root = stack.pop()
        if any(_contains(f, root) for f in forbidden):
            continue                                    # root is (inside) a forbidden tree
        if not any(_contains(root, f) for f in forbidden):
            out.append(root)
            continue
        try:
            children = os.listdir(root)
        except OSError:
            continue
        stack.extend(os.path.join(root, c) for c in children)
    return sorted(set(out))


def python_read_roots() -> list[str]:
    """Trees the interpreter needs: its prefixes, ``sys.path`` and the ``vi_course`` package."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    roots = set(prefixes) | {os.path.dirname(os.path.realpath(sys.executable))}
    # only the installation's own entries: not the working directory ``python -m`` puts first
    roots.update(p for p in sys.path if p and os.path.isabs(p) and os.path.exists(p)
                 and any(_contains(pre, os.path.realpath(p)) or _contains(pre, p) for pre in prefixes))
    roots.update(_package_locations("vi_course"))
    return sorted(roots)


def _package_locations(name: str) -> set[str]:
    """Where ``name`` is imported from, as the grader sees it *and* as a sandboxed process does.

    The two can differ: the grader runs with the course folder on ``sys.path`` (``python -m``),
    a kernel runs in a temporary directory and gets the installed package (for an editable
    install, from the checkout the venv was installed from). Both trees are readable.
    """
    import importlib.machinery
    import importlib.util
    specs = []
    try:
        specs.append(importlib.util.find_spec(name))
    except (ImportError, ValueError):
        pass
    cwd = os.getcwd()
    installed_path = [p for p in sys.path if p and os.path.isabs(p) and os.path.realpath(p) != cwd]
    for finder in sys.meta_path:
        try:
            if finder is importlib.machinery.PathFinder:
                specs.append(finder.find_spec(name, installed_path))
            elif hasattr(finder, "find_spec"):
                specs.append(finder.find_spec(name, None))
        except Exception:  # noqa: BLE001 - a third-party finder must not stop the grading
            continue
    return {loc for spec in specs if spec and spec.submodule_search_locations
            for loc in spec.submodule_search_locations}


def restrict(read=(), write=(), bind_ports=(), forbidden=()) -> int:
    """Confine this process with Landlock; return the ABI used (0: not available, nothing done).

    ``read``/``write`` are directory trees or single files (the system trees of
    :data:`SYSTEM_READ_ROOTS` and a few devices are always readable); ``bind_ports`` are TCP ports the
    process may listen on (a kernel's ZMQ ports). Outgoing TCP connections and signals to
    processes outside the sandbox are always denied when the ABI supports it. Paths under
    ``forbidden`` are never granted, even when an allowed root contains them.
    """
    abi = landlock_abi()
    if abi < 1:
        return 0
    fs = _FS_ABI1 | (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0) \
        | (_IOCTL_DEV if abi >= 5 else 0)
    attr = _RulesetAttr(fs, (_NET_BIND | _NET_CONNECT) if abi >= 4 else 0,
                        (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0)
    libc = _libc()
    fd = libc.syscall(ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr),
                      ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
    if fd < 0:
        return 0
    try:
        rules = [(p, _READ) for p in expand_roots([*SYSTEM_READ_ROOTS, *read], forbidden)]
        rules += [(p, fs) for p in expand_roots(write, forbidden)]
        rules += [(d, _READ_FILE | _WRITE_FILE | _TRUNCATE | _IOCTL_DEV) for d in DEVICES]
        for path, access in rules:
            _add_path_rule(libc, fd, path, access & fs)
        if abi >= 4:
            for port in bind_ports:
                rule = _NetPortAttr(_NET_BIND, int(port))
                libc.syscall(ctypes.c_long(_SYS_ADD_RULE), ctypes.c_int(fd),
                             ctypes.c_int(_RULE_NET_PORT), ctypes.byref(rule), ctypes.c_uint32(0))
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(fd)
    return abi


# seccomp, per machine: audit arch, syscalls that fail with EPERM (fork, vfork and System V IPC,
# whose objects outlive the process and are shared between users), clone, clone3
_SECCOMP_ARCHS = {
    "x86_64": (0xC000003E, (57, 58, 29, 30, 31, 64, 65, 66, 67, 68, 69, 70, 71, 220), 56, 435),
    "aarch64": (0xC00000B7, tuple(range(186, 198)), 220, 435),
}
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, _PR_CAPBSET_DROP = 22, 2, 24
_CLONE_THREAD = 0x00010000
_RET_ALLOW, _RET_KILL, _RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_EPERM, _ENOSYS = 1, 38


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def forbid_new_processes() -> bool:
    """Install a seccomp filter: no new process (threads are fine); False if not supported here.

    ``fork``/``vfork`` and ``clone`` without ``CLONE_THREAD`` fail with EPERM; ``clone3`` (whose flags
    a filter cannot read) fails with ENOSYS, which makes the C library fall back to ``clone``
    for threads. System V IPC fails with EPERM. Syscalls of another ABI (32-bit calls on
    x86_64) kill the process.
    """
    import platform
    machine = platform.machine()
    if not sys.platform.startswith("linux") or machine not in _SECCOMP_ARCHS:
        return False
    arch, denied, clone, clone3 = _SECCOMP_ARCHS[machine]
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    deny = _RET_ERRNO | _EPERM
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, _RET_KILL), (ld, 0, 0, 0),
            (jge, 0, 1, 0x40000000), (ret, 0, 0, _RET_KILL)]          # x32 syscall numbers
    for nr in denied:
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, deny)]
    prog += [(jeq, 0, 1, clone3), (ret, 0, 0, _RET_ERRNO | _ENOSYS),
             (jeq, 0, 3, clone), (ld, 0, 0, 16),                     # clone: low word of flags
             (jset, 1, 0, _CLONE_THREAD), (ret, 0, 0, deny), (ret, 0, 0, _RET_ALLOW)]
    filters = (_SockFilter * len(prog))(*[_SockFilter(*f) for f in prog])
    fprog = _SockFprog(len(prog), filters)
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> bool:
    """Give up every capability (a no-op for an ordinary user; for root, what makes the resource
    limits binding and keeps student code from rebooting, loading modules, raw I/O, ...)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = _libc()
    for cap in range(64):                 # the bounding set: fails harmlessly past the last one
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    header = _CapHeader(0x20080522, 0)    # _LINUX_CAPABILITY_VERSION_3
    return libc.capset(ctypes.byref(header), (_CapData * 2)()) == 0


def confine(read=(), write=(), bind_ports=(), forbidden=()) -> dict:
    """Everything :mod:`grading` does before running student code, after :func:`set_limits`:
    Landlock (:func:`restrict`), no capabilities, no new processes. Returns what took effect."""
    abi = restrict(read, write, bind_ports, forbidden)
    return {"landlock": abi, "no_capabilities": drop_capabilities(),
            "no_processes": forbid_new_processes()}


def _add_path_rule(libc, ruleset_fd: int, path: str, access: int) -> None:
    try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            access &= _FILE_RIGHTS
        rule = _PathBeneathAttr(access, pfd)
        libc.syscall(ctypes.c_long(_SYS_ADD_RULE), ctypes.c_int(ruleset_fd),
                     ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0))
    finally:
        os.close(pfd)


def seed_matplotlib_cache(config_dir: str) -> None:
    """Copy the user's matplotlib font list into a fresh MPLCONFIGDIR (saves seconds per run)."""
    import glob
    import shutil
    sources = [os.environ.get("MPLCONFIGDIR", ""), os.path.join(os.path.expanduser("~"), ".cache", "matplotlib")]
    for src in sources:
        found = glob.glob(os.path.join(src, "fontlist-*.json")) if src else []
        if found:
            os.makedirs(config_dir, exist_ok=True)
            for path in found:
                try:
                    shutil.copy(path, config_dir)
                except OSError:
                    pass
            return
