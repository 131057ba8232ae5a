"""Shared helpers of the grading tests: a throw-away course, submissions, and reading the grades.

A test course is a temporary directory holding a copy of ``solutions/`` and ``nbgrader_config.py``
(whose paths are relative to its own location), so tests never touch the repository's gradebook.
``python -m grading --root COURSE ...`` runs every instructor command against it.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import nbformat
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLUTIONS = os.path.join(REPO, "solutions")

# Short limits keep the hanging-submission tests fast; the solutions run well within them.
TEST_CONFIG = [
    "Execute.timeout=10",
    "JudgeAnswers.cell_timeout=15",
    "JudgeAnswers.total_timeout=120",
    "JudgeAnswers.restarts=2",
]


def source_notebooks() -> list[tuple[str, str, str]]:
    """(assignment, notebook name, path) of every notebook in solutions/."""
    found = []
    for assignment in sorted(os.listdir(SOLUTIONS)):
        adir = os.path.join(SOLUTIONS, assignment)
        if assignment.startswith(("_", ".")) or not os.path.isdir(adir):
            continue
        for name in sorted(os.listdir(adir)):
            if name.endswith(".ipynb"):
                found.append((assignment, name[:-len(".ipynb")], os.path.join(adir, name)))
    return found


def variants(path: str) -> dict:
    side = path[:-len(".ipynb")] + ".variants.yml"
    if not os.path.exists(side):
        return {"wrong": [], "equivalent": None}
    with open(side) as fh:
        data = yaml.safe_load(fh) or {}
    return {"wrong": data.get("wrong") or [], "equivalent": data.get("equivalent")}


def cli_command(root: str, *args: str, env_extra: dict | None = None) -> tuple[list, dict]:
    """The command line and environment of ``python -m grading`` for the course at ``root``."""
    cmd = [sys.executable, "-m", "grading", "--root", root]
    for item in TEST_CONFIG:
        cmd += ["--config", item]
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(env_extra or {})
    return cmd + list(args), env


def run_cli(root: str, *args: str, timeout: float = 900,
            env_extra: dict | None = None) -> subprocess.CompletedProcess:
    cmd, env = cli_command(root, *args, env_extra=env_extra)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def make_course(tmp: str, assignments=None) -> str:
    """A fresh course in ``tmp`` with solutions/ (all, or the named assignments) copied and released."""
    root = os.path.join(tmp, "course")
    os.makedirs(root)
    if assignments is None:
        shutil.copytree(SOLUTIONS, os.path.join(root, "solutions"))
    else:
        for assignment in assignments:
            shutil.copytree(os.path.join(SOLUTIONS, assignment), os.path.join(root, "solutions", assignment))
    shutil.copy(os.path.join(REPO, "nbgrader_config.py"), root)
    proc = run_cli(root, "release")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def read_nb(path: str):
    return nbformat.read(path, as_version=4)


def replace_cells(nb, replacements: dict):
    """A copy of ``nb`` where cells with the given grade ids get new sources."""
    nb = copy.deepcopy(nb)
    seen = set()
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in replacements:
            cell.source = replacements[gid]
            seen.add(gid)
    missing = set(replacements) - seen
    assert not missing, f"no cells with grade ids {missing}"
    return nb


def write_submissions(folder: str, submissions: dict) -> None:
    """``submissions``: student -> (assignment, notebook name, notebook node)."""
    for student, (assignment, name, nb) in submissions.items():
        target = os.path.join(folder, student, assignment)
        os.makedirs(target, exist_ok=True)
        nbformat.write(nb, os.path.join(target, name + ".ipynb"))


def autograde(root: str, submissions: dict, tmp: str) -> subprocess.CompletedProcess:
    folder = os.path.join(tmp, "incoming")
    write_submissions(folder, submissions)
    return run_cli(root, "autograde", "--submissions", folder)


def part_results(root: str, student: str, assignment: str, notebook: str) -> dict:
    """grade id -> {"score", "max", "message"} of every autograded part of a graded submission."""
    from nbgrader.api import Gradebook

    path = os.path.join(root, "gradebook", "autograded", student, assignment, notebook + ".ipynb")
    messages = {}
    if os.path.exists(path):
        for cell in read_nb(path).cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                messages[meta["grade_id"]] = "\n".join(
                    o.get("text", "") or o.get("evalue", "") for o in cell.get("outputs", []))
    out = {}
    with Gradebook("sqlite:///" + os.path.join(root, "gradebook", "gradebook.db")) as gb:
        nb = gb.find_submission_notebook(notebook, assignment, student)
        for grade in nb.grades:
            cell = grade.cell
            if grade.cell_type != "code" or cell.name not in autograded_parts(root, assignment, notebook):
                continue
            out[cell.name] = {"score": grade.score, "max": float(cell.max_score),
                              "message": messages.get(cell.name, "")}
    return out


def autograded_parts(root: str, assignment: str, notebook: str) -> set:
    nb = read_nb(os.path.join(root, "solutions", assignment, notebook + ".ipynb"))
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata["nbgrader"].get("solution")}


def normalised(path: str) -> str:
    """Notebook JSON with volatile fields dropped, for comparing generated releases."""
    nb = read_nb(path)
    for cell in nb.cells:
        cell.pop("id", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return json.dumps(nb, sort_keys=True, indent=1)
