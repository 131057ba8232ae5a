"""The judge's pieces in-process (fast): declarations, serialisation, comparison, checks."""
import os
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


def test_outliers_cannot_inflate_the_tolerance_of_a_mean_test():
    # a biased estimator (mean 1.05 where 1 is right) plus rare huge outputs: with the outputs' own
    # standard error as the tolerance it would pass; the declared ceiling on the spread stops it
    rng = np.random.default_rng(1)
    expect = {"mean": 1.0, "sd_max": 0.2, "z": 4.0}
    good = rng.normal(1.0, 0.1, 400)
    assert checks._check_case([float(v) for v in good], expect, "c").ok
    biased = good + 0.05
    biased[::25] = 1e150                     # finite, and squares stay finite: sd ~ 2.5e149
    verdict = checks._check_case([float(v) for v in biased], expect, "c")
    assert not verdict.ok and "correct estimator stays below" in verdict.message
    biased[::25] = 1e200                     # the squares overflow: the spread is not finite
    verdict = checks._check_case([float(v) for v in biased], {"mean": 1.0, "sd": 0.1}, "c")
    assert not verdict.ok and "not a finite number" in verdict.message
    logs = np.log(np.abs(good))
    logs[0] = 400.0                          # exp(400)^2 overflows inside the exp transform
    verdict = checks._check_case([float(v) for v in logs], dict(expect, transform="exp"), "c")
    assert not verdict.ok and "not a finite number" in verdict.message


def test_a_mean_test_must_declare_the_spread_it_trusts():
    case = {"args": [1], "seeds": [1, 2], "expect": {"mean": 1.0}}
    with pytest.raises(spec.SpecError, match="'sd' or 'sd_max'"):
        spec.normalise({"kind": "function", "answer": "f", "cases": [case]})
    for extra in ({"sd": 0.1}, {"sd_max": 0.3}):
        ok = {"args": [1], "seeds": [1, 2], "expect": {"mean": 1.0, **extra}}
        assert spec.normalise({"kind": "function", "answer": "f", "cases": [ok]})


def test_sandbox_reads_the_library_the_kernel_imports_even_from_another_checkout(tmp_path):
    # the grader run from a second checkout (its own vi_course/ in the working directory) with a
    # venv installed from this one: the kernel imports the installed package, so both are granted
    import subprocess
    import sys

    import vi_course
    other = tmp_path / "checkout"
    (other / "vi_course").mkdir(parents=True)
    (other / "vi_course" / "__init__.py").write_text("")
    code = ("import sys; sys.path.insert(0, ''); from grading import sandbox; "
            "print(sorted(sandbox._package_locations('vi_course')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=other, capture_output=True, text=True,
                         check=True).stdout
    installed = os.path.dirname(os.path.realpath(vi_course.__file__))
    assert str(other / "vi_course") in out and installed in out, out
