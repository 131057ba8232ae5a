"""Round trip of every exercise notebook in solutions/ through the real nbgrader pipeline.

For each notebook (discovered, so exercises added later are covered): the source version scores
full marks on every autograded part, the untouched release scores 0, every declared wrong answer
(``<notebook>.variants.yml``) scores 0 on its part with a helpful message and leaves the other
parts at full marks, the equivalent rewrite scores full marks, and ``exercises/`` equals a fresh
generation. All submissions are graded in ONE autograde batch (kernel starts dominate the cost).
"""
import csv
import glob
import os

import pytest

from grading_helpers import (autograde, autograded_parts, make_course, normalised, part_results,
                             read_nb, replace_cells, run_cli, source_notebooks, variants)

pytestmark = [pytest.mark.xdist_group("grading"), pytest.mark.slow]

NOTEBOOKS = source_notebooks()
IDS = [f"{a}/{n}" for a, n, _ in NOTEBOOKS]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("roundtrip"))
    root = make_course(tmp)
    submissions, plan = {}, {}
    for i, (assignment, name, path) in enumerate(NOTEBOOKS):
        source = read_nb(path)
        release = read_nb(os.path.join(root, "exercises", assignment, name + ".ipynb"))
        submissions[f"source{i}"] = (assignment, name, source)
        submissions[f"release{i}"] = (assignment, name, release)
        spec = variants(path)
        for j, wrong in enumerate(spec["wrong"]):
            submissions[f"wrong{i}x{j}"] = (assignment, name, replace_cells(source, wrong["replace"]))
        if spec["equivalent"]:
            submissions[f"equivalent{i}"] = (assignment, name,
                                             replace_cells(source, spec["equivalent"]["replace"]))
        plan[i] = spec
    proc = autograde(root, submissions, tmp)
    return {"root": root, "proc": proc, "plan": plan, "n": len(submissions)}


def _results(course, student, index):
    assignment, name, _ = NOTEBOOKS[index]
    return part_results(course["root"], student, assignment, name)


def test_there_is_at_least_one_notebook():
    assert NOTEBOOKS, "solutions/ holds no exercise notebook"


def test_batch_reports_progress_for_every_submission(course):
    out = course["proc"].stdout
    assert course["proc"].returncode == 0, out + course["proc"].stderr[-3000:]
    for k in range(1, course["n"] + 1):
        assert f"[{k}/{course['n']}] " in out
    assert " points" in out


@pytest.mark.parametrize("index", range(len(NOTEBOOKS)), ids=IDS)
def test_source_version_scores_full_marks(course, index):
    results = _results(course, f"source{index}", index)
    assert set(results) == autograded_parts(course["root"], *NOTEBOOKS[index][:2])
    for part, r in results.items():
        assert r["score"] == r["max"], f"{part}: {r['message']}"
        assert "correct" in r["message"]


@pytest.mark.parametrize("index", range(len(NOTEBOOKS)), ids=IDS)
def test_untouched_release_scores_zero(course, index):
    results = _results(course, f"release{index}", index)
    assert results
    for part, r in results.items():
        assert r["score"] == 0, part
        assert "not defined" in r["message"] or "NotImplementedError" in r["message"]


@pytest.mark.parametrize("index", range(len(NOTEBOOKS)), ids=IDS)
def test_every_part_has_a_wrong_answer_declared(course, index):
    declared = {w["part"] for w in course["plan"][index]["wrong"]}
    missing = autograded_parts(course["root"], *NOTEBOOKS[index][:2]) - declared
    assert not missing, f"declare a plausible wrong answer for {sorted(missing)} in the .variants.yml"


@pytest.mark.parametrize("index", range(len(NOTEBOOKS)), ids=IDS)
def test_wrong_answers_score_zero_with_a_helpful_message(course, index):
    for j, wrong in enumerate(course["plan"][index]["wrong"]):
        results = _results(course, f"wrong{index}x{j}", index)
        bad = results[wrong["part"]]
        assert bad["score"] == 0, f"wrong answer for {wrong['part']} got points"
        assert wrong.get("feedback", "") in bad["message"], bad["message"]
        assert len(bad["message"]) > 30, bad["message"]
        untouched = set(results) - {wrong["part"]} - set(wrong.get("also_affects", []))
        for part in untouched:
            assert results[part]["score"] == results[part]["max"], (part, results[part]["message"])


@pytest.mark.parametrize("index", range(len(NOTEBOOKS)), ids=IDS)
def test_equivalent_rewrite_scores_full_marks(course, index):
    if not course["plan"][index]["equivalent"]:
        pytest.skip("no equivalent rewrite declared")
    for part, r in _results(course, f"equivalent{index}", index).items():
        assert r["score"] == r["max"], f"{part}: {r['message']}"


@pytest.mark.parametrize("index", range(len(NOTEBOOKS)), ids=IDS)
def test_exercises_equal_a_fresh_release(course, index):
    assignment, name, _ = NOTEBOOKS[index]
    committed = os.path.join(os.path.dirname(os.path.dirname(__file__)), "exercises", assignment,
                             name + ".ipynb")
    fresh = os.path.join(course["root"], "exercises", assignment, name + ".ipynb")
    assert os.path.exists(committed), "run `python -m grading release` and commit exercises/"
    assert normalised(committed) == normalised(fresh), \
        "exercises/ is stale: run `python -m grading release` and commit exercises/"


def test_release_holds_no_reference_and_no_test_data(course):
    repo = os.path.dirname(os.path.dirname(__file__))
    for path in glob.glob(os.path.join(repo, "exercises", "**", "*"), recursive=True):
        assert not path.endswith(".variants.yml"), path
        if path.endswith(".ipynb"):
            text = open(path).read()
            for marker in ("BEGIN HIDDEN TESTS", "CHECK =", "BEGIN SOLUTION", "'reference'"):
                assert marker not in text, (path, marker)


def test_feedback_and_export(course):
    root = course["root"]
    proc = run_cli(root, "feedback")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assignment, name, _ = NOTEBOOKS[0]
    html = os.path.join(root, "gradebook", "feedback", "source0", assignment, name + ".html")
    assert os.path.exists(html)
    text = open(html).read()
    assert "correct" in text and "CHECK" not in text     # hidden tests never reach feedback
    out = os.path.join(root, "grades.csv")
    proc = run_cli(root, "export", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    students = {r["student_id"] for r in rows}
    assert {"source0", "release0"} <= students
