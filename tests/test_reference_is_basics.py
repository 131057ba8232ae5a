"""The references of is_basics/ex1_unbiased_is, derived independently from the model with sympy.

The hidden ``CHECK`` declarations are read from the source notebook (parsed, not executed) and
compared with quantities computed here from sympy.stats densities by symbolic integration.
"""
import math
import os

import sympy as sp
from sympy.stats import Normal, density

from grading import checks, compare, exprtree
from notebooks import hidden_checks

PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "solutions", "is_basics",
                    "ex1_unbiased_is.ipynb")


CHECKS = hidden_checks(PATH)
x, z, m = sp.symbols("x z m", real=True)
s = sp.symbols("s", positive=True)


def _pdf(name, mean, sd, at):
    return density(Normal(name, mean, sd))(at)


def _reference(part):
    decls = compare.declare_symbols(CHECKS[part]["symbols"])
    symbols = {name: d.symbol for name, d in decls.items()}
    ref = exprtree.parse_formula(CHECKS[part]["reference"], symbols)
    return ref.subs({symbols[n]: globals()[n] for n in symbols})


def _evidence(observations, prior_mean=0, prior_var=1, noise_var=1):
    joint = _pdf("Z", prior_mean, sp.sqrt(prior_var), z)
    for value in observations:
        joint *= _pdf("X", z, sp.sqrt(noise_var), value)
    return sp.integrate(joint, (z, -sp.oo, sp.oo))


def test_weight_reference_is_joint_over_proposal():
    weight = _pdf("Z", 0, 1, z) * _pdf("X", z, 1, x) / _pdf("Q", m, s, z)
    assert sp.simplify(_reference("test_weight") - weight) == 0


def test_evidence_reference_is_the_integral_of_the_joint():
    evidence = sp.integrate(_pdf("Z", 0, 1, z) * _pdf("X", z, 1, x), (z, -sp.oo, sp.oo))
    assert sp.simplify(_reference("test_evidence") - evidence) == 0


def test_expected_values_of_the_function_cases():
    cases = CHECKS["test_estimator"]["cases"]
    p07 = float(_evidence([sp.Rational(7, 10)]))
    assert math.isclose(checks.expected_value(cases[0]["expect"]["each"]), math.log(p07), rel_tol=1e-12)
    three = _evidence([sp.Rational(6, 5), sp.Rational(2, 5), 2], sp.Rational(1, 2), 2, sp.Rational(1, 2))
    assert math.isclose(checks.expected_value(cases[1]["expect"]["each"]), math.log(float(three)),
                        rel_tol=1e-9)
    assert math.isclose(checks.expected_value(cases[2]["expect"]["mean"]), p07, rel_tol=1e-12)


def test_monte_carlo_target_is_the_evidence_at_one_and_a_half():
    expected = checks.expected_value(CHECKS["test_mc"]["expected"])
    assert math.isclose(expected, float(_evidence([sp.Rational(3, 2)])), rel_tol=1e-12)


def test_spread_ceiling_of_the_unbiasedness_case_is_about_twice_the_exact_spread():
    # exp(output) averages K = 3 weights w = p(x, z) / q(z), z ~ q = N(1, 0.6), at x = 0.7:
    # Var = (E_q[w^2] - p(x)^2) / K. The ceiling must let every correct estimator through with a
    # wide margin and still stop a student from inflating the standard error much.
    case = CHECKS["test_estimator"]["cases"][2]
    proposal = case["args"][1]
    assert (proposal["mean"], proposal["var"], case["args"][2]) == (1.0, 0.6, 3)
    q = _pdf("Q", 1, sp.sqrt(sp.Rational(3, 5)), z)
    joint = _pdf("Z", 0, 1, z) * _pdf("X", z, 1, sp.Rational(7, 10))
    second_moment = sp.integrate(sp.simplify(joint**2 / q), (z, -sp.oo, sp.oo))
    evidence = _evidence([sp.Rational(7, 10)])
    exact_sd = math.sqrt(float((second_moment - evidence**2) / 3))
    ceiling = checks.expected_value(case["expect"]["sd_max"])
    assert 1.6 * exact_sd <= ceiling <= 3 * exact_sd
