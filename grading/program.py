"""Grade one notebook's autograded parts from its cell sources: harness run(s), then judge run(s).

``grade(cells, parts, limits)`` takes the code cells of the submitted notebook (index, source, and
the grade id when the cell is an autograded test cell) and the trusted ``CHECK`` of every part.

1. The harness runs the student's cells in order in a sandbox and, at each test cell, extracts
   that part's answer. When the harness dies (timeout, crash, ``os._exit``, memory) the cell or
   extraction it was in is skipped and a fresh harness runs again, so a bad cell costs only
   the parts that depend on it.
2. The judge compares the answers with the references, also restarted past a part it dies on.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

from . import runner, sandbox
from .compare import Verdict
from .spec import public_part

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.py")


@dataclass
class Limits:
    cell_seconds: float = 30.0       # a cell (or one answer's extraction) running longer is stopped
    total_seconds: float = 300.0     # all harness runs of one notebook, restarts included
    memory_mb: int = 2048
    judge_part_seconds: int = 30
    restarts: int = 3
    forbidden: list = field(default_factory=list)   # trees student code must never read
    data_files: list = field(default_factory=list)  # copied into the student's working directory


@dataclass
class Cell:
    index: int            # position in the notebook (0-based)
    source: str
    part: str | None = None   # grade id when this is an autograded test cell


def _describe_stop(result: runner.RunResult, limits: Limits) -> str:
    return {
        "timeout": f"it ran longer than {limits.total_seconds:g} s in total",
        "idle": f"it ran longer than {limits.cell_seconds:g} s",
        "overflow": "it produced too much output for the grader",
        "disk": f"it wrote more than {runner.MAX_DISK_BYTES >> 20} MB or {runner.MAX_DISK_ENTRIES} files",
    }.get(result.stopped, f"the process stopped (exit status {result.returncode}; it may have "
                          "exited, been killed, or run out of memory)")


def run_harness(cells: list, parts: dict, limits: Limits) -> tuple[dict, dict, dict]:
    """Return ``(answers, cell_errors, landlock)``: raw answers per part, errors per cell index."""
    steps = []
    for cell in cells:
        if cell.part is None:
            steps.append({"cell": cell.index, "source": cell.source})
        elif cell.part in parts and parts[cell.part].get("spec"):
            steps.append({"part": cell.part, **public_part(parts[cell.part]["spec"])})
    answers: dict = {}
    cell_errors: dict = {}
    skip: set = set()
    info = {"landlock": 0}
    deadline = time.monotonic() + limits.total_seconds
    out_of_time = f"your code ran longer than {limits.total_seconds:g} s in total"
    for _attempt in range(limits.restarts + 1):
        todo = [s for s in steps if "cell" in s or s["part"] not in answers]
        budget = deadline - time.monotonic()
        if not any("part" in s for s in todo) or budget < 1:
            break
        workdir = tempfile.mkdtemp(prefix="vi-harness-")
        for path in limits.data_files:
            shutil.copy(path, workdir)
        sandbox.seed_matplotlib_cache(workdir)
        job = {"steps": todo, "skip": sorted(skip), "read": sandbox.python_read_roots(),
               "write": [workdir], "forbidden": limits.forbidden,
               "limits": {"cpu": int(limits.total_seconds) + 5, "memory": limits.memory_mb << 20,
                          "fsize": 64 << 20}}
        try:
            result = runner.run_child([HARNESS], job, budget, limits.cell_seconds, workdir=workdir)
        finally:
            runner._rmtree(workdir)
        where = None
        for ev in result.events:
            kind = ev.get("ev")
            if not (isinstance(ev.get("cell", 0), int) and isinstance(ev.get("part", ""), str)):
                continue                    # forged by student code: ids must stay hashable
            if kind == "start":
                info.update({k: ev.get(k) for k in ("landlock", "no_capabilities", "no_processes")})
            elif kind == "cell":
                where = ("cell", ev.get("cell"))
            elif kind == "cell_error":
                cell_errors.setdefault(ev.get("cell"), str(ev.get("error"))[:2000])
            elif kind == "extract":
                where = ("part", ev.get("part"))
            elif kind == "answer" and ev.get("part") in parts and ev.get("part") not in answers:
                answers[ev["part"]] = ({"error": str(ev["error"])[:2000]} if "error" in ev
                                       else {"value": ev.get("value")})
                where = None
            elif kind == "end":
                where = "end"
        if result.stopped is None and where == "end":
            break
        reason = _describe_stop(result, limits)
        if isinstance(where, tuple) and where[0] == "cell" and where[1] not in skip:
            skip.add(where[1])
            cell_errors[where[1]] = f"this cell did not finish: {reason}"
        elif isinstance(where, tuple) and where[0] == "part" and where[1] in parts:
            answers[where[1]] = {"error": f"extracting or running your answer did not finish: {reason}"}
        else:
            detail = f" [{result.stderr.strip()[-300:]}]" if where is None and result.stderr.strip() else ""
            for s in todo:
                if "part" in s and s["part"] not in answers:
                    answers[s["part"]] = {"error": f"your code could not be run: {reason}{detail}"}
            break
    for s in steps:
        if "part" in s and s["part"] not in answers:
            answers[s["part"]] = {"error": out_of_time if time.monotonic() > deadline - 1
                                  else "your code stopped the grader too many times"}
    return answers, cell_errors, info


def _explain(error: str, part_index: int, cells: list, cell_errors: dict) -> str:
    earlier = [c.index for c in cells if c.part is None and c.index < part_index and c.index in cell_errors]
    if earlier:
        last = earlier[-1]
        return f"{error}. Cell {last + 1} failed: {cell_errors[last]}"
    return error


def run_judge(todo: list, limits: Limits) -> dict:
    """``todo``: ``[{"id", "spec", "value"}]`` -> verdict per part id."""
    verdicts: dict = {}
    for _attempt in range(len(todo) + 1):
        remaining = [p for p in todo if p["id"] not in verdicts]
        if not remaining:
            break
        job = {"parts": remaining,
               "limits": {"cpu": limits.judge_part_seconds * len(remaining) + 10,
                          "memory": limits.memory_mb << 20, "fsize": 16 << 20,
                          "part_seconds": limits.judge_part_seconds}}
        result = runner.run_child(["-m", "grading.judge"], job,
                                  limits.judge_part_seconds * len(remaining) + 30,
                                  limits.judge_part_seconds + 15)
        current = None
        for ev in result.events:
            if ev.get("ev") == "judging":
                current = ev.get("part")
            elif ev.get("ev") == "verdict" and ev.get("part") in {p["id"] for p in remaining}:
                verdicts[ev["part"]] = Verdict(bool(ev.get("ok")), str(ev.get("message", "")))
                current = None
        if current is not None and current not in verdicts:
            verdicts[current] = Verdict(False, "your answer could not be judged within the grader's "
                                               "time and memory limits")
        elif not result.events:
            for p in remaining:
                verdicts[p["id"]] = Verdict(False, "the judge could not start: "
                                                   + result.stderr[-500:])
    return verdicts


def grade(cells: list, parts: dict, limits: Limits) -> tuple[dict, dict]:
    """``parts``: grade id -> ``{"spec": dict | None, "error": str | None}``. Returns verdicts, info."""
    verdicts: dict = {}
    for pid, part in parts.items():
        if part.get("error") or not part.get("spec"):
            verdicts[pid] = Verdict(False, "this part cannot be graded: "
                                    + (part.get("error") or "its test cell declares no CHECK")
                                    + " (please tell your instructor)")
    answers, cell_errors, info = run_harness(cells, {k: v for k, v in parts.items() if k not in verdicts},
                                             limits)
    position = {c.part: c.index for c in cells if c.part is not None}
    todo = []
    for pid, answer in answers.items():
        if "error" in answer:
            verdicts[pid] = Verdict(False, _explain(answer["error"], position.get(pid, 10**9),
                                                    cells, cell_errors))
        else:
            todo.append({"id": pid, "spec": parts[pid]["spec"], "value": answer["value"]})
    verdicts.update(run_judge(todo, limits))
    for pid in parts:
        verdicts.setdefault(pid, Verdict(False, "this part's test cell is missing from the notebook"))
    return verdicts, info
