"""Run a child Python process with a private result channel, time limits and bounded output.

The child gets: ``python -I`` (no user site, no PYTHON* variables, script dir not on sys.path), a
fresh temporary working directory, a scrubbed environment, its job as JSON on stdin, and the
write end of a pipe as ``argv[1]``. It reports JSON lines on that pipe (the *channel*). The parent
enforces a total deadline, an idle deadline (no event for too long), a cap on channel bytes and on
the files left in the working directory, keeps only the first few KB of stdout/stderr, and kills
the child's whole process group at the end.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

MAX_CHANNEL_BYTES = 32 * 1024 * 1024
KEEP_OUTPUT_BYTES = 8 * 1024
MAX_DISK_BYTES = 512 * 1024 * 1024      # files student code may leave in its working directory
MAX_DISK_ENTRIES = 20_000
DISK_CHECK_SECONDS = 0.25


@dataclass
class RunResult:
    events: list = field(default_factory=list)
    stopped: str | None = None        # None (finished), "timeout", "idle", "overflow", "disk", "crashed"
    returncode: int | None = None
    stderr: str = ""
    seconds: float = 0.0


def scrubbed_env(workdir: str) -> dict:
    """The only environment variables the child sees."""
    venv_bin = os.path.dirname(sys.executable)
    return {
        "PATH": f"{venv_bin}:/usr/bin:/bin",
        "HOME": workdir, "TMPDIR": workdir, "MPLCONFIGDIR": workdir, "IPYTHONDIR": workdir,
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    }


def _drain(stream, keep: list):
    size = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        if size < KEEP_OUTPUT_BYTES:
            keep.append(chunk[: KEEP_OUTPUT_BYTES - size])
        size += len(chunk)
    stream.close()


def _feed(stream, data: bytes):
    try:
        stream.write(data)
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            stream.close()
        except OSError:
            pass


def run_child(argv_tail: list, job: dict, total_timeout: float, idle_timeout: float,
              workdir: str | None = None) -> RunResult:
    """Run ``python -I *argv_tail FD`` with ``job`` on stdin; collect channel events until it ends."""
    own_dir = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="vi-grading-")
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    result = RunResult()
    proc = subprocess.Popen(
        [sys.executable, "-I", *argv_tail, str(write_fd)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=workdir, env=scrubbed_env(workdir), pass_fds=(write_fd,), start_new_session=True)
    os.close(write_fd)
    kept_err: list = []
    threads = [threading.Thread(target=_feed, args=(proc.stdin, json.dumps(job).encode()), daemon=True),
               threading.Thread(target=_drain, args=(proc.stdout, []), daemon=True),
               threading.Thread(target=_drain, args=(proc.stderr, kept_err), daemon=True)]
    for t in threads:
        t.start()
    try:
        result.stopped = _read_channel(read_fd, result.events, started, total_timeout, idle_timeout,
                                       workdir)
    finally:
        os.close(read_fd)
        _kill_group(proc)
        for t in threads:
            t.join(timeout=2)
        result.returncode = proc.returncode
        result.stderr = b"".join(kept_err).decode("utf-8", "replace")
        result.seconds = time.monotonic() - started
        if own_dir:
            _rmtree(workdir)
    if result.stopped is None and not (result.events and result.events[-1].get("ev") == "end"):
        result.stopped = "crashed"
    return result


def _read_channel(fd, events, started, total_timeout, idle_timeout, workdir) -> str | None:
    buffer, received, last = b"", 0, time.monotonic()
    checked = last
    while True:
        now = time.monotonic()
        if now - started > total_timeout:
            return "timeout"
        if now - last > idle_timeout:
            return "idle"
        if now - checked > DISK_CHECK_SECONDS:
            checked = now
            if disk_exceeded(workdir):
                return "disk"
        wait = max(0.01, min(total_timeout - (now - started), idle_timeout - (now - last),
                             DISK_CHECK_SECONDS))
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None                     # writer closed: the child ended (or closed the channel)
        received += len(chunk)
        if received > MAX_CHANNEL_BYTES:
            return "overflow"
        last = time.monotonic()
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(event, dict):
                events.append(event)


def disk_exceeded(path: str, max_bytes: int = MAX_DISK_BYTES, max_entries: int = MAX_DISK_ENTRIES) -> bool:
    """Whether the files under ``path`` take more than ``max_bytes`` or number more than ``max_entries``."""
    size, entries, stack = 0, 0, [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        size += entry.stat(follow_symlinks=False).st_blocks * 512
                    if size > max_bytes or entries > max_entries:
                        return True
        except OSError:
            continue
    return False


class DiskWatch(threading.Thread):
    """Call ``on_exceeded`` once when the files under ``path`` exceed :func:`disk_exceeded`'s limits."""

    def __init__(self, path: str, on_exceeded):
        super().__init__(daemon=True, name="vi-course-disk-watch")
        self.path, self.on_exceeded, self.exceeded = path, on_exceeded, False
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.wait(DISK_CHECK_SECONDS):
            if disk_exceeded(self.path):
                self.exceeded = True
                self.on_exceeded()
                return

    def stop(self):
        self._stop_event.set()


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _rmtree(path):
    import shutil
    for root, dirs, _ in os.walk(path):          # the child may have removed its own permissions
        for d in dirs:
            try:
                os.chmod(os.path.join(root, d), 0o700)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)
