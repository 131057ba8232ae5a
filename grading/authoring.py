"""Helpers to write an exercise notebook with correct nbgrader metadata from a Python script.

Optional: a notebook can equally be written in Jupyter with nbgrader's "Create Assignment" cell
toolbar. The helpers make the conventions of grading/README.md hard to get wrong::

    from grading import authoring as A
    nb = A.notebook([
        A.markdown("# Exercise 2.1 ..."),
        A.setup("setup", "import sympy as sp\\nx = sp.Symbol('x', real=True)"),
        A.answer("answer_evidence", "evidence_expr = ...", solution=True),
        A.test("evidence", 2, visible="assert isinstance(evidence_expr, sp.Expr)",
               check={"kind": "sympy", "answer": "evidence_expr", "symbols": {"x": "real"},
                      "reference": "exp(-x**2/4)/(2*sqrt(pi))"}),
        A.written("proof", 2, "Show that ..."),
    ])
    A.save(nb, "solutions/is_basics/ex1_unbiased_is.ipynb")

No reference lives here: the script that calls these helpers holds the answers, so keep it out
of the repository or out of ``solutions/<assignment>/`` (that folder's other files are released).
"""
from __future__ import annotations

import pprint

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from .spec import normalise


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def markdown(text: str):
    """Plain text (instructions); not tracked by nbgrader."""
    return new_markdown_cell(text.strip())


def setup(grade_id: str, source: str):
    """A read-only code cell (imports, symbols, helpers); restored from the gradebook on grading."""
    cell = new_code_cell(source.strip())
    cell.metadata.update(_meta(grade_id, locked=True))
    cell.metadata.update({"deletable": False, "editable": False})
    return cell


def answer(grade_id: str, solution_source: str):
    """The student's answer cell. The solution is wrapped in BEGIN/END SOLUTION markers."""
    body = "### BEGIN SOLUTION\n" + solution_source.strip() + "\n### END SOLUTION"
    cell = new_code_cell(body)
    cell.metadata.update(_meta(grade_id, solution=True))
    return cell


def test(grade_id: str, points: float, visible: str, check: dict, label: str | None = None):
    """An autograded part: ``visible`` runs in the student's kernel; ``check`` is hidden.

    ``check`` is validated now (a malformed declaration fails the build, not the grading).
    """
    check = dict(check)
    if label:
        check["label"] = label
    normalise(check)                     # validates; returns a copy, ``check`` stays as written
    hidden = "CHECK = " + pprint.pformat(check, width=96, sort_dicts=False)
    source = (visible.strip() + "\n" if visible.strip() else "") + \
        "### BEGIN HIDDEN TESTS\n" + hidden + "\n### END HIDDEN TESTS"
    cell = new_code_cell(source)
    cell.metadata.update(_meta(grade_id, grade=True, locked=True, points=points))
    cell.metadata.update({"deletable": False, "editable": False})
    return cell


def written(grade_id: str, points: float, model_answer: str):
    """A manually graded written answer (markdown); ``model_answer`` is removed on release."""
    cell = new_markdown_cell("### BEGIN SOLUTION\n" + model_answer.strip() + "\n### END SOLUTION")
    cell.metadata.update(_meta(grade_id, grade=True, solution=True, points=points))
    return cell


def notebook(cells: list):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def save(nb, path: str) -> None:
    nbformat.validate(nb)
    nbformat.write(nb, path)
