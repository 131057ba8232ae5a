"""nbgrader preprocessors that move the verdict out of the student's kernel.

Registered in ``nbgrader_config.py``:

* :class:`RestoreMetadata` (sanitize stage, first): every cell's nbgrader metadata is rebuilt
  from the gradebook; cells claiming unknown ids, malformed metadata, or an id an earlier cell
  already has (nbgrader's ``DeduplicateIds`` only sees cells the student flagged) lose it, and
  deleted nbgrader cells are put back.
* :class:`HideHiddenTests` (sanitize stage, after ``OverwriteCells``): test cells lose their hidden
  region before anything is written or executed, so neither the kernel, nor the autograded copy,
  nor the feedback ever holds a ``CHECK``.
* :class:`ResilientExecute` (replaces nbgrader's ``Execute``): runs the kernel in the sandbox in a
  private working directory; a dead or unresponsive kernel stops execution of that notebook only.
* :class:`NeutralizeHTML` (after execution): outputs and markdown carry no live HTML into the
  formgrader or the feedback pages.
* :class:`StartJudging` (before execution) starts grading every autograded part from the
  sanitized cell sources with :func:`grading.program.grade`, in a background thread;
  :class:`JudgeAnswers` (after execution, before ``SaveAutoGrades``) waits for the verdicts and
  REPLACES the test cells' outputs with them (an ``error`` output for a wrong part, so nbgrader
  scores 0). Nothing the kernel did to a test cell survives.
"""
from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
import threading
import time

from nbformat.v4 import new_code_cell, new_markdown_cell, new_output
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat import SCHEMA_VERSION
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Float, Integer, List

from . import program, runner
from .kernel import SandboxedKernelManager
from .spec import SpecError, parse_check, strip_hidden


def trusted_cells(resources) -> dict:
    """grade id -> flags and source of every nbgrader cell, as recorded in the gradebook."""
    info = resources["nbgrader"]
    with Gradebook(info["db_url"]) as gb:
        nb = gb.find_notebook(info["notebook"], info["assignment"])
        grades = {c.name: float(c.max_score) for c in nb.grade_cells}
        solutions = {c.name for c in nb.solution_cells}
        tasks = {c.name for c in nb.task_cells}
        return {c.name: {"grade": c.name in grades, "solution": c.name in solutions,
                         "task": c.name in tasks, "locked": bool(c.locked), "cell_type": c.cell_type,
                         "points": grades.get(c.name), "source": c.source}
                for c in nb.source_cells}


def autograded_tests(trusted: dict) -> set:
    return {gid for gid, t in trusted.items()
            if t["grade"] and not t["solution"] and t["cell_type"] == "code"}


def _trusted_metadata(gid: str, t: dict) -> dict:
    meta = {"grade_id": gid, "grade": t["grade"], "solution": t["solution"], "locked": t["locked"],
            "schema_version": SCHEMA_VERSION}
    if t["task"]:
        meta["task"] = True
    if t["grade"]:
        meta["points"] = t["points"]
    return meta


class RestoreMetadata(NbGraderPreprocessor):
    """Rebuild every cell's nbgrader metadata from the gradebook (students can edit metadata).

    A cell keeps nbgrader metadata only when it claims a known grade id that no earlier cell
    claims; its flags, points and schema version then come from the gradebook. Cells of the
    gradebook missing from the notebook are put back (after the previous one present) with the
    released source, so nbgrader never stumbles over a deleted cell.
    """

    def preprocess(self, nb, resources):
        trusted = trusted_cells(resources)
        seen = set()
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if meta is None:
                continue
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            if not isinstance(gid, str) or gid not in trusted or gid in seen:
                del cell.metadata["nbgrader"]
                continue
            seen.add(gid)
            cell.metadata["nbgrader"] = _trusted_metadata(gid, trusted[gid])
        position = 0
        for gid, t in trusted.items():
            found = [i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == gid]
            if found:
                position = found[0] + 1
                continue
            make = new_code_cell if t["cell_type"] == "code" else new_markdown_cell
            nb.cells.insert(position, make(t["source"], metadata={"nbgrader": _trusted_metadata(gid, t)}))
            position += 1
        return nb, resources


class HideHiddenTests(NbGraderPreprocessor):
    """The kernel runs test cells without their hidden region."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            cell.source = strip_hidden(cell.source)
        return cell, resources


def _data_files(directory) -> list:
    if not directory or not os.path.isdir(directory):
        return []
    out = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if (os.path.isfile(path) and not os.path.islink(path) and not name.endswith(".ipynb")
                and os.path.getsize(path) < 50 << 20):
            out.append(path)
    return out


class ResilientExecute(Execute):
    """nbgrader's Execute in the sandbox; a dead or hung kernel ends this notebook's execution only."""

    forbidden_paths = List([], help="Trees the kernel must not read (solutions, gradebook, ...).").tag(config=True)
    max_output_bytes = Integer(1 << 20, help="Output kept per cell; the rest is dropped.").tag(config=True)
    max_notebook_output_bytes = Integer(8 << 20, help="Output kept per notebook; the rest is dropped.").tag(config=True)
    total_timeout = Float(600.0, help="Seconds for the whole notebook; later cells are not run.").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self._stopped = None
        self._output_bytes = {}
        self._notebook_bytes = 0
        self._notices = 0
        self._deadline = time.monotonic() + self.total_timeout
        SandboxedKernelManager.forbidden = list(self.forbidden_paths)
        meta = resources.setdefault("metadata", {})
        original = meta.get("path")
        workdir = tempfile.mkdtemp(prefix="vi-kernel-")
        for path in _data_files(original):
            shutil.copy(path, workdir)
        meta["path"] = workdir
        self._disk = runner.DiskWatch(workdir, self._kill_kernel)
        self._disk.start()
        try:
            return super().preprocess(nb, resources, km)
        except Exception as exc:  # noqa: BLE001 - kernel trouble must not stop the grading
            self.log.error("Kernel execution failed (%s: %s); grading continues from the file",
                           type(exc).__name__, exc)
            return nb, resources
        finally:
            self._disk.stop()
            meta["path"] = original
            runner._rmtree(workdir)

    def handle_comm_msg(self, outs, msg, cell_index):
        """Ignore comm (widget) messages: nbclient would keep their state, unbounded, in memory."""

    def _update_display_id(self, display_id, msg):
        """Ignore display updates: they would replace a counted output with an uncounted one."""

    def _kill_kernel(self):
        process = getattr(getattr(getattr(self, "km", None), "provisioner", None), "process", None)
        if process is not None:
            process.kill()

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        # keep only what NeutralizeHTML would keep anyway, as plain strings, and no metadata: a
        # nested JSON bundle or metadata costs far more memory than its size as text
        if isinstance(content.get("data"), dict):
            content["data"] = {key: value for key, value in content["data"].items()
                               if key in INERT_MIMETYPES and isinstance(value, str)}
        if "metadata" in content:
            content["metadata"] = {}
        # what is stored counts, in UTF-8 bytes (an emoji is 4); 256 bounds the number of outputs
        size = max(len(str(content).encode("utf-8", "surrogatepass")), 256)
        used = self._output_bytes.get(cell_index, 0)
        cell_full = used + size > self.max_output_bytes
        if cell_full or self._notebook_bytes + size > self.max_notebook_output_bytes:
            if used <= self.max_output_bytes and self._notices < 100:
                self._notices += 1
                limit = (f"{self.max_output_bytes >> 10} KB per cell" if cell_full
                         else f"{self.max_notebook_output_bytes >> 20} MB per notebook")
                outs.append(new_output("stream", name="stdout",
                                       text=f"\n... output truncated by the grader ({limit}) ...\n"))
            self._output_bytes[cell_index] = self.max_output_bytes + 1
            return None
        self._output_bytes[cell_index] = used + size
        self._notebook_bytes += size
        return super().output(outs, msg, display_id, cell_index)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if not self._stopped and time.monotonic() > self._deadline:
            self._stopped = f"the notebook ran longer than {self.total_timeout:g} s in total"
        if self._stopped:
            cell.outputs = [new_output("error", ename="NotRun", evalue=self._stopped,
                                       traceback=[f"Not run: {self._stopped}"])]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except Exception as exc:  # noqa: BLE001 - DeadKernelError, CellTimeoutError, ...
            self._stopped = f"the kernel stopped in cell {index + 1} ({type(exc).__name__})"
            if self._disk.exceeded:
                self._stopped += (f": its files took more than {runner.MAX_DISK_BYTES >> 20} MB "
                                  f"or {runner.MAX_DISK_ENTRIES} entries")
            self.log.warning("%s; the remaining cells are not executed", self._stopped)
            self.shutdown_kernel = "immediate"
            cell.outputs = list(cell.get("outputs", [])) + [
                new_output("error", ename=type(exc).__name__, evalue=str(exc)[:500],
                           traceback=[f"The kernel stopped while running this cell: {exc}"[:1000]])]
            return cell, resources


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
# Link destinations in markdown: inline links ``[text](dest ...)`` and reference definitions
# ``[id]: dest``. Only these schemes (and scheme-less, relative links) survive.
_INLINE_LINK = re.compile(r"(\]\(\s*)([^\s)]*)")
_REFERENCE_DEF = re.compile(r"(^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*)(\S+)", re.MULTILINE)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
SAFE_SCHEMES = {"http", "https", "mailto"}


def _safe_destination(match: re.Match) -> str:
    """Replace a link destination whose scheme is not in SAFE_SCHEMES by ``#unsafe-link``.

    The scheme is read the way a browser would after markdown decoding: HTML entities resolved,
    backslash escapes dropped, whitespace and control characters removed, case folded."""
    dest = html.unescape(match.group(2))
    dest = re.sub(r"\\(?=[!-/:-@\[-`{-~])", "", dest)
    dest = "".join(ch for ch in dest if ch > " " and ch != "\x7f").lower()
    scheme = _SCHEME.match(dest)
    if scheme and scheme.group(1) not in SAFE_SCHEMES:
        return match.group(1) + "#unsafe-link"
    return match.group(0)


def neutralize_markdown(source: str) -> str:
    """Markdown that renders as before but holds no live HTML: every ``<`` that would open a tag
    gets a space after it (TeX ignores the space in math), and link destinations with a scheme
    other than http, https or mailto (``javascript:``, ``data:``, ...) become ``#unsafe-link``."""
    source = _TAG_START.sub("< ", source)
    source = _INLINE_LINK.sub(_safe_destination, source)
    return _REFERENCE_DEF.sub(_safe_destination, source)


INERT_MIMETYPES = {"text/plain", "text/latex", "image/png", "image/jpeg"}


class NeutralizeHTML(NbGraderPreprocessor):
    """No student content reaches nbgrader's formgrader or feedback pages as live HTML.

    Those pages render outputs and markdown unsanitized, so a student's ``<img onerror=...>`` would
    run in the instructor's Jupyter session (and could change grades). Code outputs keep only
    inert mimetypes (text, LaTeX, PNG, JPEG); in markdown and raw cells every ``<`` that would
    open a tag gets a space after it, which makes it text (TeX ignores the space in math), and
    links to ``javascript:``, ``data:`` and other non-web schemes are disarmed
    (:func:`neutralize_markdown`).
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type in ("markdown", "raw"):
            cell.source = neutralize_markdown(cell.source)
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is None:
                continue
            for key in [k for k in data if k not in INERT_MIMETYPES]:
                del data[key]
            if not data:
                data["text/plain"] = "[output removed by the grader: only text and images are kept]"
        return cell, resources


class JudgeAnswers(NbGraderPreprocessor):
    """Grade every autograded part outside the kernel and write the verdicts into the test cells.

    Registered twice: first with ``stage = "start"`` before the kernel runs (it starts grading in a
    background thread, from the sanitized cell sources, so the harness and the kernel overlap),
    then with the default ``stage = "finish"`` after execution (it waits for the verdicts, or
    grades now if nothing was started, and overwrites the test cells' outputs).
    """

    cell_timeout = Float(30.0, help="Seconds a student cell may run in the judge's harness.").tag(config=True)
    total_timeout = Float(300.0, help="Seconds for one harness run over the whole notebook.").tag(config=True)
    memory_mb = Integer(2048, help="Address-space limit (MB) of the harness and the judge.").tag(config=True)
    judge_seconds = Integer(30, help="Seconds to judge one part.").tag(config=True)
    restarts = Integer(3, help="Harness restarts past cells that crash or hang.").tag(config=True)
    forbidden_paths = List([], help="Trees student code must not read (solutions, gradebook, ...).").tag(config=True)
    stage = "finish"

    def _prepare(self, nb, resources):
        trusted = trusted_cells(resources)
        tests = autograded_tests(trusted)
        parts = {}
        for gid in sorted(tests):
            try:
                parts[gid] = {"spec": parse_check(trusted[gid]["source"])}
            except SpecError as exc:
                parts[gid] = {"error": f"malformed CHECK: {exc}"}
        cells = []
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            cells.append(program.Cell(index, cell.source, part=gid if gid in tests else None))
        limits = program.Limits(
            cell_seconds=self.cell_timeout, total_seconds=self.total_timeout, memory_mb=self.memory_mb,
            judge_part_seconds=self.judge_seconds, restarts=self.restarts,
            forbidden=list(self.forbidden_paths),
            data_files=_data_files(resources.get("metadata", {}).get("path")))
        return trusted, tests, parts, cells, limits

    def preprocess(self, nb, resources):
        state = resources.setdefault("vi_course", {})
        if self.stage == "start":
            trusted, tests, parts, cells, limits = self._prepare(nb, resources)
            box: dict = {}

            def work():
                try:
                    box["result"] = program.grade(cells, parts, limits)
                except BaseException as exc:  # noqa: BLE001 - reported in the finish stage
                    box["error"] = exc

            thread = threading.Thread(target=work, name="vi-course-judge", daemon=True)
            thread.start()
            state["pending"] = (thread, box, trusted, tests, parts)
            return nb, resources
        pending = state.pop("pending", None)
        if pending is None:
            trusted, tests, parts, cells, limits = self._prepare(nb, resources)
            verdicts, info = program.grade(cells, parts, limits)
        else:
            thread, box, trusted, tests, parts = pending
            thread.join()
            if "error" in box:
                raise box["error"]
            verdicts, info = box["result"]
        if not info.get("landlock"):
            self.log.warning("Landlock is not available: student code was NOT confined to its "
                             "sandbox directory (it could read course files)")
        if not info.get("no_processes"):
            self.log.warning("seccomp is not available: student code could start processes that "
                             "outlive its grading")
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.cell_type == "code" and gid in tests:
                spec = parts[gid].get("spec") or {}
                self._write_verdict(cell, spec.get("label", gid), verdicts[gid], trusted[gid]["points"])
        state["verdicts"] = {gid: {"ok": v.ok, "message": v.message} for gid, v in verdicts.items()}
        return nb, resources

    @staticmethod
    def _write_verdict(cell, label, verdict, points):
        meta = cell.metadata["nbgrader"]
        meta.update(grade=True, solution=False, locked=True, points=points)
        if verdict.ok:
            text = f"{label}: correct ({verdict.message}). {points:g} of {points:g} points.\n"
            cell.outputs = [new_output("stream", name="stdout", text=text)]
        else:
            cell.outputs = [new_output(
                "error", ename="Incorrect", evalue=f"{label}: {verdict.message}",
                traceback=[f"\x1b[0;31m{label}: not correct (0 of {points:g} points)\x1b[0m",
                           verdict.message])]


class StartJudging(JudgeAnswers):
    """:class:`JudgeAnswers` in its start stage (place it before the kernel executes)."""

    stage = "start"
