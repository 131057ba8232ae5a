"""Round trip of every exercise notebook in solutions/ through the real nbgrader pipeline.

For each notebook (discovered, so exercises added later are covered): the source version scores
full marks on every autograded part, the untouched release scores 0, every declared wrong answer
(``<notebook>.variants.yml``) scores 0 on its part with a helpful message while the parts it does
not touch keep full marks, the equivalent rewrite scores full marks, and ``exercises/`` equals a
fresh generation.

Cost: kernel starts dominate, so each assignment is graded in ONE autograde batch, assignments
run in separate xdist groups (the suite runs with ``-n 2 --dist loadgroup``), and the wrong
answers of a notebook are packed into as few submissions as possible: answers that replace
different cells and affect different parts share a submission (see ``pack_wrong_answers``).
"""
import csv
import glob
import os
import re

import pytest

from grading_helpers import (autograde, autograded_parts, make_course, normalised, part_results,
                             read_nb, replace_cells, run_cli, source_notebooks, variants)

pytestmark = [pytest.mark.slow]

NOTEBOOKS = source_notebooks()
ASSIGNMENTS = sorted({a for a, _, _ in NOTEBOOKS})


def _by_notebook(test_ids=True):
    """Parameters over notebook indices, each in the xdist group of its assignment."""
    return [pytest.param(i, id=f"{a}/{n}", marks=pytest.mark.xdist_group(f"grading-{a}"))
            for i, (a, n, _) in enumerate(NOTEBOOKS)]


def _by_assignment():
    return [pytest.param(a, id=a, marks=pytest.mark.xdist_group(f"grading-{a}")) for a in ASSIGNMENTS]


def pack_wrong_answers(wrong):
    """Group wrong answers so that each group can be graded as one submission.

    Two answers share a group only if they replace different cells and neither affects a part the
    other one grades (``part`` plus ``also_affects``). Returns a list of lists of indices.
    """
    groups = []
    for j, w in enumerate(wrong):
        cells = set(w["replace"])
        parts = {w["part"], *w.get("also_affects", [])}
        for g in groups:
            if not (cells & g["cells"]) and not (parts & g["parts"]):
                g["members"].append(j)
                g["cells"] |= cells
                g["parts"] |= parts
                break
        else:
            groups.append({"members": [j], "cells": cells, "parts": parts})
    return [g["members"] for g in groups]


_COURSES = {}


def _course(assignment, tmp_path_factory):
    """Release and autograde one assignment's submissions (once per worker)."""
    if assignment in _COURSES:
        return _COURSES[assignment]
    tmp = str(tmp_path_factory.mktemp(f"roundtrip_{assignment}"))
    root = make_course(tmp, assignments=[assignment])
    submissions, plan = {}, {}
    for i, (a, name, path) in enumerate(NOTEBOOKS):
        if a != assignment:
            continue
        source = read_nb(path)
        release = read_nb(os.path.join(root, "exercises", a, name + ".ipynb"))
        submissions[f"source{i}"] = (a, name, source)
        submissions[f"release{i}"] = (a, name, release)
        spec = variants(path)
        spec["groups"] = pack_wrong_answers(spec["wrong"])
        for g, members in enumerate(spec["groups"]):
            replacements = {}
            for j in members:
                replacements.update(spec["wrong"][j]["replace"])
            submissions[f"wrong{i}g{g}"] = (a, name, replace_cells(source, replacements))
        if spec["equivalent"]:
            submissions[f"equivalent{i}"] = (a, name,
                                             replace_cells(source, spec["equivalent"]["replace"]))
        plan[i] = spec
    proc = autograde(root, submissions, tmp)
    _COURSES[assignment] = {"root": root, "proc": proc, "plan": plan, "n": len(submissions)}
    return _COURSES[assignment]


@pytest.fixture
def course(request, tmp_path_factory):
    index = request.node.callspec.params.get("index")
    assignment = request.node.callspec.params.get("assignment") or NOTEBOOKS[index][0]
    return _course(assignment, tmp_path_factory)


def _results(course, student, index):
    assignment, name, _ = NOTEBOOKS[index]
    return part_results(course["root"], student, assignment, name)


@pytest.mark.xdist_group("grading-guard")
def test_loadgroup_keeps_each_group_on_one_worker(request):
    """The cost model above needs --dist loadgroup to work. pytest 9.x with pytest-xdist 3.8
    silently stops grouping (pytest-xdist issue #1386): every course would then be graded once per
    worker. pyproject.toml pins pytest 8.4; this fails if grouping breaks again."""
    if not getattr(request.config.option, "loadgroup", False):       # set in xdist workers
        pytest.skip("not running under pytest-xdist --dist loadgroup")
    assert request.node.nodeid.endswith("@grading-guard"), request.node.nodeid


def test_there_is_at_least_one_notebook():
    assert NOTEBOOKS, "solutions/ holds no exercise notebook"


def test_packing_keeps_conflicting_wrong_answers_apart():
    wrong = [{"part": "t_a", "replace": {"c1": ""}},
             {"part": "t_b", "replace": {"c2": ""}},
             {"part": "t_c", "replace": {"c2": ""}},                             # same cell as t_b
             {"part": "t_d", "replace": {"c3": ""}, "also_affects": ["t_a"]}]    # knocks on t_a
    assert pack_wrong_answers(wrong) == [[0, 1], [2, 3]]


@pytest.mark.parametrize("assignment", _by_assignment())
def test_batch_reports_progress_for_every_submission(course, assignment):
    out = course["proc"].stdout
    assert course["proc"].returncode == 0, out + course["proc"].stderr[-3000:]
    for k in range(1, course["n"] + 1):
        assert f"[{k}/{course['n']}] " in out
    assert " points" in out


@pytest.mark.parametrize("index", _by_notebook())
def test_source_version_scores_full_marks(course, index):
    results = _results(course, f"source{index}", index)
    assert set(results) == autograded_parts(course["root"], *NOTEBOOKS[index][:2])
    for part, r in results.items():
        assert r["score"] == r["max"], f"{part}: {r['message']}"
        assert "correct" in r["message"]


@pytest.mark.parametrize("index", _by_notebook())
def test_untouched_release_scores_zero(course, index):
    results = _results(course, f"release{index}", index)
    assert results
    for part, r in results.items():
        assert r["score"] == 0, part
        assert "not defined" in r["message"] or "NotImplementedError" in r["message"]


@pytest.mark.parametrize("index", _by_notebook())
def test_every_part_has_a_wrong_answer_declared(course, index):
    declared = {w["part"] for w in course["plan"][index]["wrong"]}
    missing = autograded_parts(course["root"], *NOTEBOOKS[index][:2]) - declared
    assert not missing, f"declare a plausible wrong answer for {sorted(missing)} in the .variants.yml"


@pytest.mark.parametrize("index", _by_notebook())
def test_wrong_answers_score_zero_with_a_helpful_message(course, index):
    spec = course["plan"][index]
    for g, members in enumerate(spec["groups"]):
        results = _results(course, f"wrong{index}g{g}", index)
        affected = set()
        for j in members:
            wrong = spec["wrong"][j]
            bad = results[wrong["part"]]
            assert bad["score"] == 0, f"wrong answer for {wrong['part']} got points"
            assert wrong.get("feedback", "") in bad["message"], bad["message"]
            assert len(bad["message"]) > 30, bad["message"]
            affected |= {wrong["part"], *wrong.get("also_affects", [])}
        for part in set(results) - affected:
            assert results[part]["score"] == results[part]["max"], (part, results[part]["message"])


@pytest.mark.parametrize("index", _by_notebook())
def test_equivalent_rewrite_scores_full_marks(course, index):
    if not course["plan"][index]["equivalent"]:
        pytest.skip("no equivalent rewrite declared")
    for part, r in _results(course, f"equivalent{index}", index).items():
        assert r["score"] == r["max"], f"{part}: {r['message']}"


@pytest.mark.parametrize("index", _by_notebook())
def test_exercises_equal_a_fresh_release(course, index):
    assignment, name, _ = NOTEBOOKS[index]
    committed = os.path.join(os.path.dirname(os.path.dirname(__file__)), "exercises", assignment,
                             name + ".ipynb")
    fresh = os.path.join(course["root"], "exercises", assignment, name + ".ipynb")
    assert os.path.exists(committed), "run `python -m grading release` and commit exercises/"
    assert normalised(committed) == normalised(fresh), \
        "exercises/ is stale: run `python -m grading release` and commit exercises/"


def test_release_holds_no_reference_and_no_test_data():
    repo = os.path.dirname(os.path.dirname(__file__))
    for path in glob.glob(os.path.join(repo, "exercises", "**", "*"), recursive=True):
        assert not path.endswith(".variants.yml"), path
        if path.endswith(".ipynb"):
            text = open(path).read()
            for marker in ("BEGIN HIDDEN TESTS", "CHECK =", "BEGIN SOLUTION", "'reference'"):
                assert marker not in text, (path, marker)


@pytest.mark.parametrize("assignment", _by_assignment()[:1])
def test_feedback_and_export(course, assignment):
    root = course["root"]
    proc = run_cli(root, "feedback")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    index = next(i for i, (a, _, _) in enumerate(NOTEBOOKS) if a == assignment)
    name = NOTEBOOKS[index][1]
    html = os.path.join(root, "gradebook", "feedback", f"source{index}", assignment, name + ".html")
    assert os.path.exists(html)
    text = open(html).read()
    assert "correct" in text and "CHECK" not in text     # hidden tests never reach feedback
    # math is typeset by a local MathJax copied next to the page; nothing is loaded from the web
    assert re.findall(r'<script[^>]*\bsrc="([^"]*)"', text) == ["mathjax/tex-svg.js"]
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert os.path.getsize(os.path.join(os.path.dirname(html), "mathjax", "tex-svg.js")) > 1_000_000
    # an assignment nobody has submitted yet is skipped with a note, not reported as a failure
    proc = run_cli(root, "feedback", "not_submitted_yet")
    assert proc.returncode == 0 and "no autograded submission yet" in proc.stdout, proc.stdout
    out = os.path.join(root, "grades.csv")
    proc = run_cli(root, "export", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    students = {r["student_id"] for r in rows}
    assert {f"source{index}", f"release{index}"} <= students
