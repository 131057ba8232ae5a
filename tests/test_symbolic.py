"""vi_course.symbolic: the SymPy helpers of the exercises, checked against SymPy's own integrator
and distributions (not against the same formulas typed again)."""
import pytest
import sympy as sp
from sympy.stats import Normal, density

from vi_course.symbolic import gaussian_integral, normal_logpdf, normal_pdf

t, mu = sp.symbols("t mu", real=True)
v = sp.Symbol("v", positive=True)


def test_normal_pdf_is_sympy_stats_normal_density():
    reference = density(Normal("X", mu, sp.sqrt(v)))(t)
    assert sp.simplify(normal_pdf(t, mu, v) - reference) == 0


def test_normal_logpdf_is_the_log_of_the_density():
    assert sp.simplify(sp.expand_log(sp.log(normal_pdf(t, mu, v)), force=True)
                       - normal_logpdf(t, mu, v)) == 0


@pytest.mark.parametrize("exponent", [
    -t**2 / 2,
    -(t - 3)**2 / (2 * v) + sp.Rational(1, 7),
    -3 * t**2 + 2 * mu * t - sp.log(5),
])
def test_gaussian_integral_matches_sympys_integrator(exponent):
    exact = sp.integrate(sp.exp(exponent), (t, -sp.oo, sp.oo), conds="none")
    ours = gaussian_integral(exponent, t)
    assert sp.simplify(ours - exact) == 0


def test_a_density_integrates_to_one():
    assert sp.simplify(gaussian_integral(normal_logpdf(t, mu, v), t)) == 1


@pytest.mark.parametrize("exponent, message", [
    (t**3 - t**2, "degree 3"), (-t, "degree 1"), (sp.sin(t), "polynomial"),
])
def test_non_quadratic_exponents_raise(exponent, message):
    with pytest.raises(ValueError, match=message):
        gaussian_integral(exponent, t)


def test_the_variable_must_be_a_symbol():
    with pytest.raises(ValueError, match="var must be a sympy Symbol"):
        gaussian_integral(-t**2, "t")
