"""The ``CHECK = {...}`` declaration of an autograded test cell, read without executing anything.

A test cell's hidden region holds one assignment of a dict literal::

    ### BEGIN HIDDEN TESTS
    CHECK = {"kind": "sympy", "answer": "evidence_expr", "symbols": {"x": "real"},
             "reference": "exp(-x**2/4)/(2*sqrt(pi))"}
    ### END HIDDEN TESTS

It is parsed with :func:`ast.parse` and :func:`ast.literal_eval`. :func:`public_part` is the
only part of it that reaches the student's sandbox: the answer's name, its kind and, for
functions, the hidden inputs -- never a reference or an expected value.
"""
from __future__ import annotations

import ast
import copy

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
KINDS = ("sympy", "number", "array", "function")


class SpecError(ValueError):
    """A malformed declaration: an authoring mistake, reported to the instructor."""


def hidden_region(source: str) -> str:
    lines, inside, out = source.split("\n"), False, []
    for line in lines:
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        elif inside:
            out.append(line)
    return "\n".join(out)


def strip_hidden(source: str) -> str:
    """The cell source without its hidden region (what the student's kernel may run)."""
    lines, inside, out = source.split("\n"), False, []
    for line in lines:
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def parse_check(source: str) -> dict | None:
    """Return the normalised ``CHECK`` dict of a test cell, or None when it declares none."""
    region = hidden_region(source)
    try:
        tree = ast.parse(region)
    except SyntaxError as exc:
        raise SpecError(f"hidden tests are not valid Python: {exc}") from None
    found = None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "CHECK"):
            try:
                found = ast.literal_eval(node.value)
            except ValueError as exc:
                raise SpecError(f"CHECK must be a literal dict: {exc}") from None
    return None if found is None else normalise(found)


def normalise(spec: dict) -> dict:
    """A validated copy of a declaration (``seeds: {"start", "count"}`` expanded to a list)."""
    if not isinstance(spec, dict):
        raise SpecError("CHECK must be a dict")
    spec = copy.deepcopy(spec)
    kind = spec.get("kind")
    if kind not in KINDS:
        raise SpecError(f"CHECK kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(spec.get("answer"), str) or not spec["answer"].isidentifier():
        raise SpecError("CHECK needs 'answer': the name of the variable or function to grade")
    required = {"sympy": ("reference", "symbols"), "number": ("expected",), "array": ("expected",),
                "function": ("cases",)}[kind]
    for key in required:
        if key not in spec:
            raise SpecError(f"a {kind} CHECK needs {key!r}")
    if kind == "function":
        for case in spec["cases"]:
            if "expect" not in case:
                raise SpecError("every function case needs 'expect'")
            expect = case["expect"]
            if "mean" in expect and "sd" not in expect and "sd_max" not in expect:
                raise SpecError("a function case with 'mean' needs 'sd' or 'sd_max': the mean is "
                                "tested against the outputs' own standard error, which a student "
                                "could inflate with outliers")
            seeds = case.get("seeds", [None])
            if isinstance(seeds, dict):
                seeds = list(range(int(seeds["start"]), int(seeds["start"]) + int(seeds["count"])))
            case["seeds"] = seeds
    return spec


def public_part(spec: dict) -> dict:
    """What the harness needs to extract the answer; no reference, no expected value."""
    part = {"answer": spec["answer"], "kind": spec["kind"]}
    if spec["kind"] == "function":
        part["cases"] = [{k: case[k] for k in ("args", "kwargs", "seeds", "returns") if k in case}
                         for case in spec["cases"]]
    return part
