"""Helpers shared by the chapter tests and the reference-answer tests.

* :func:`run_chapter` executes a chapter's code cells (the book's own code, read from its MyST
  source) and returns the variables they define, so a test can check the numbers the page shows.
* :func:`hidden_checks` reads the ``CHECK`` dicts of the hidden tests of an nbgrader source
  notebook, parsed the way the grader parses them (never executed).
"""
from __future__ import annotations

import functools
import io
from contextlib import redirect_stdout
from pathlib import Path

import nbformat

from grading import spec

REPO = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def run_chapter(chapter: str | Path) -> dict:
    """Run the code cells of ``chapter`` (a ``book/*.md`` MyST notebook) except the plotting ones
    (cells with figure metadata, which draw no random numbers), with stdout silenced, and return the
    namespace they define. Cached per chapter: treat the result as read-only."""
    import jupytext
    import matplotlib

    matplotlib.use("Agg")
    chapter = Path(chapter)
    namespace: dict = {}
    with redirect_stdout(io.StringIO()):
        for cell in jupytext.read(chapter).cells:
            if cell.cell_type != "code" or "figure" in cell.metadata.get("mystnb", {}):
                continue
            exec(compile(cell.source, f"{chapter.name}[cell]", "exec"), namespace)  # noqa: S102
    return namespace


def hidden_checks(notebook: str | Path) -> dict:
    """``{grade_id: CHECK dict}`` of every autograded test cell of an nbgrader source notebook."""
    out = {}
    for cell in nbformat.read(str(notebook), as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            out[meta["grade_id"]] = spec.parse_check(cell.source)
    return out
