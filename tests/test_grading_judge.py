"""The judge's pieces in-process (fast): declarations, serialisation, comparison, checks."""
import numpy as np
import pytest
import sympy as sp

from grading import checks, compare, exprtree, harness, spec


def _judge(student, reference, symbols):
    decls = compare.declare_symbols(symbols)
    syms = {name: d.symbol for name, d in decls.items()}
    tree = harness.encode_sympy(student(syms), sp)
    return compare.compare_expr(exprtree.rebuild(tree, syms),
                                exprtree.parse_formula(reference, syms), decls)


def test_equivalent_forms_are_accepted():
    v = _judge(lambda S: sp.exp(-S["x"] ** 2 / 4) / sp.sqrt(4 * sp.pi), "exp(-x**2/4)/(2*sqrt(pi))",
               {"x": "real"})
    assert v.ok, v.message


def test_assumptions_are_honoured_by_the_probes():
    # sqrt(s**2) equals s only for s > 0
    assert _judge(lambda S: sp.sqrt(S["s"] ** 2), "s", {"s": "positive"}).ok
    v = _judge(lambda S: sp.sqrt(S["s"] ** 2), "s", {"s": "real"})
    assert not v.ok and "at s=-" in v.message


def test_ranges_keep_probes_inside_the_domain():
    v = _judge(lambda S: sp.sqrt((1 - S["rho"]) * (1 + S["rho"])), "sqrt(1 - rho**2)",
               {"rho": {"assume": "real", "range": [-0.99, 0.99]}})
    assert v.ok, v.message


def test_a_wrong_answer_names_a_point_and_both_values():
    v = _judge(lambda S: sp.exp(-S["x"] ** 2 / 2) / sp.sqrt(2 * sp.pi), "exp(-x**2/4)/(2*sqrt(pi))",
               {"x": "real"})
    assert not v.ok
    assert v.message.startswith("at x=") and "your expression gives" in v.message and "expected" in v.message


def test_matrices_compare_entrywise():
    decls = compare.declare_symbols({"a": "real"})
    a = decls["a"].symbol
    tree = harness.encode_sympy(sp.Matrix([[a, 1], [0, a ** 2]]), sp)
    student = exprtree.rebuild(tree, {"a": a})
    assert compare.compare_expr(student, exprtree.parse_formula("[[a, 1], [0, a**2]]", {"a": a}), decls).ok
    bad = compare.compare_expr(student, exprtree.parse_formula("[[a, 1], [0, a**3]]", {"a": a}), decls)
    assert not bad.ok and "entry [1, 1]" in bad.message


def test_unknown_symbols_are_named():
    with pytest.raises(exprtree.TreeError, match="symbol 'y'"):
        exprtree.rebuild(harness.encode_sympy(sp.Symbol("y"), sp), {"x": sp.Symbol("x")})


def test_check_declarations_are_parsed_not_executed():
    source = "assert True\n### BEGIN HIDDEN TESTS\nCHECK = {'kind': 'number', 'answer': 'v', " \
             "'expected': 1.0}\n### END HIDDEN TESTS"
    assert spec.parse_check(source)["expected"] == 1.0
    assert spec.strip_hidden(source) == "assert True"
    with pytest.raises(spec.SpecError):
        spec.parse_check("### BEGIN HIDDEN TESTS\nCHECK = dict(kind=__import__('os').getcwd())\n"
                         "### END HIDDEN TESTS")
    public = spec.public_part(spec.normalise({"kind": "function", "answer": "f", "cases": [
        {"args": [1], "seeds": [1], "expect": {"each": 42.0}}]}))
    assert "42" not in repr(public)


def test_statistical_checks():
    rng = np.random.default_rng(0)
    case = {"expect": {"mean": 1.0, "z": 4.0}}
    good = [float(v) for v in rng.normal(1.0, 0.1, 400)]
    assert checks._check_case(good, case["expect"], "c").ok
    assert not checks._check_case([v + 0.05 for v in good], case["expect"], "c").ok
    assert "identical" in checks._check_case([1.0] * 10, case["expect"], "c").message
    assert checks._check_case([2.0, 2.0], {"same": True}, "c").ok
    assert not checks._check_case([2.0, 2.1], {"same": True}, "c").ok
