"""Checks of what book/grid_integration.md displays and claims ("Why approximate inference").

Every displayed identity is derived here independently with SymPy, and every number the prose states
is checked against the chapter's own computation: the chapter's code cells (all but the plotting
cells) are executed in-process, so a change of seed or setting that breaks a claim fails a test.

Already covered elsewhere and not repeated here:

* grid evidence against the exact conjugate evidence, and its convergence with the number of bins:
  ``tests/test_grid.py::test_grid_evidence_matches_exact_conjugate_evidence`` and
  ``::test_grid_evidence_of_a_coarse_grid_is_off_and_converges``;
* the conjugate posterior and evidence numerically (eq-conjugate-posterior, eq-conjugate-evidence as a
  multivariate normal): ``tests/test_models.py::test_conjugate_log_joint_minus_log_evidence_is_the_posterior``
  and ``::test_conjugate_log_evidence_is_the_marginal_of_the_data``;
* the relevant-bin mask and the exactness of ``gaussian_relevant_fraction``:
  ``tests/test_grid.py::test_bins_1d_mass_and_relevant_mask``,
  ``::test_gaussian_relevant_fraction_equals_brute_force``, and the ball-in-a-cube comparison in
  ``::test_gaussian_relevant_fraction_collapses_with_dimension``;
* the denominator of Bayes' rule (erratum E10): ``tests/test_errata.py``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy.special import gammaln

import vi_course as vc
from notebooks import run_chapter
from sympy_helpers import Z, integrate_gaussian
from vi_course.symbolic import normal_logpdf
import vi_course.grid  # noqa: F401  (vc.grid)

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "grid_integration.md"


# --- the chapter's own computation -----------------------------------------------------------------


def chapter_namespace() -> dict:
    """The variables defined by the chapter's code cells (see tests/notebooks.py)."""
    return run_chapter(CHAPTER)


def test_chapter_labels_and_figures_exist():
    text = CHAPTER.read_text(encoding="utf-8")
    for label in ("eq-bayes", "eq-evidence", "eq-conjugate-model", "eq-conjugate-posterior",
                  "eq-conjugate-evidence", "eq-midpoint", "eq-midpoint-log", "eq-midpoint-error",
                  "eq-bin-mass", "eq-number-of-bins"):
        assert f"$$ ({label})" in text, f"equation label {label} missing"
    for name in ("fig-relevant-bins", "fig-relevant-fraction"):
        assert re.search(rf"name: {name}\n", text), f"figure {name} missing"
    assert "(chap-grid-integration)=" in text
    assert "## Exercises" in text


# --- eq-conjugate-posterior and eq-conjugate-evidence ---------------------------------------------


def test_conjugate_evidence_and_posterior_by_symbolic_integration():
    # z ~ N(0, s0), x_k | z ~ N(z, s) for k = 1..n; the likelihood through S1 = sum x, S2 = sum x^2
    s0, s, n, S2 = sp.symbols("sigma0sq sigmasq n S2", positive=True)
    S1 = sp.Symbol("S1", real=True)
    log_joint = (normal_logpdf(Z, 0, s0) - n * sp.log(2 * sp.pi * s) / 2
                 - (S2 - 2 * Z * S1 + n * Z**2) / (2 * s))
    evidence = integrate_gaussian(1, log_joint)
    displayed = (-n / 2 * sp.log(2 * sp.pi * s) - sp.log(1 + n * s0 / s) / 2
                 - (S2 - s0 * S1**2 / (s + n * s0)) / (2 * s))
    assert sp.simplify(sp.expand_log(sp.log(evidence) - displayed, force=True)) == 0
    # the posterior p(D, z) / p(D) is N(m, v) with 1/v = 1/s0 + n/s and m = v S1 / s
    v = 1 / (1 / s0 + n / s)
    m = v * S1 / s
    residual = sp.expand(log_joint - displayed - normal_logpdf(Z, m, v))
    assert sp.simplify(sp.expand_log(residual, force=True)) == 0
    # a wrong sign in the displayed evidence is detected
    wrong = displayed.subs(s + n * s0, s - n * s0)
    assert sp.simplify(sp.expand_log(sp.log(evidence) - wrong, force=True)) != 0


def test_conjugate_evidence_is_the_multivariate_normal_of_the_data():
    # "the log density of the data vector under N(0, s I_n + s0 1 1^T)", symbolically for n = 3
    s0, s = sp.symbols("sigma0sq sigmasq", positive=True)
    xs = sp.symbols("x1:4", real=True)
    n = len(xs)
    cov = s * sp.eye(n) + s0 * sp.ones(n, n)
    vec = sp.Matrix(xs)
    log_mvn = (-(vec.T * cov.inv() * vec)[0] / 2 - n * sp.log(2 * sp.pi) / 2
               - sp.log(sp.factor(cov.det())) / 2)
    S1, S2 = sum(xs), sum(x**2 for x in xs)
    displayed = (-sp.Rational(n, 2) * sp.log(2 * sp.pi * s) - sp.log(1 + n * s0 / s) / 2
                 - (S2 - s0 * S1**2 / (s + n * s0)) / (2 * s))
    assert sp.simplify(sp.expand_log(log_mvn - displayed, force=True)) == 0


# --- eq-midpoint-error and the rates of the midpoint rule ------------------------------------------


def test_midpoint_rule_local_error():
    # one bin of width h centred at c; f is a Taylor polynomial about c with generic coefficients
    h = sp.Symbol("h", positive=True)
    t = sp.Symbol("t", real=True)
    coeffs = sp.symbols("a0:6", real=True)
    f = sum(a * t**k for k, a in enumerate(coeffs))  # f(c + t)
    error = sp.integrate(f, (t, -h / 2, h / 2)) - h * f.subs(t, 0)
    f2 = sp.diff(f, t, 2).subs(t, 0)
    remainder = sp.expand(error - h**3 * f2 / 24)
    # what is left is O(h^5): no power of h below 5
    assert sp.Poly(remainder, h).monoms() and min(mono[0] for mono in sp.Poly(remainder, h).monoms()) >= 5
    # exact for straight lines
    assert sp.simplify(error.subs({a: 0 for a in coeffs[2:]})) == 0
    # and for a non-polynomial integrand the series agrees: f = exp(k z)
    k = sp.Symbol("k", nonzero=True, real=True)
    c = sp.Symbol("c", real=True)
    z = sp.Symbol("zz", real=True)
    g = sp.exp(k * z)
    err_g = sp.integrate(g, (z, c - h / 2, c + h / 2)) - h * g.subs(z, c)
    leading = sp.series(err_g, h, 0, 5).removeO()
    assert sp.simplify(leading - h**3 * sp.diff(g, z, 2).subs(z, c) / 24) == 0


def test_midpoint_rates_textbook_and_chapter_example():
    ns = chapter_namespace()
    model, exact = ns["model"], ns["model"].log_evidence()
    err = {n: abs(vc.grid.log_evidence(model.log_joint, -6.0, 6.0, n) - exact) for n in (5, 20, 40)}
    assert err[5] > 1.0  # "five bins ... far too coarse"
    assert err[40] < 1e-8  # "forty bins ... nine significant digits"
    assert err[40] / err[20] < 0.5**8  # much faster than the h^2 rate (a factor 1/4 per halving)
    # an integrand that does not vanish at the ends shows the textbook h^2 rate:
    # int_0^1 e^z dz = e - 1, halving the bins divides the error by 4
    exact_exp = np.log(np.e - 1.0)
    e1 = abs(np.expm1(vc.grid.log_evidence(lambda z: z[:, 0], 0.0, 1.0, 50) - exact_exp))
    e2 = abs(np.expm1(vc.grid.log_evidence(lambda z: z[:, 0], 0.0, 1.0, 100) - exact_exp))
    assert e1 / e2 == pytest.approx(4.0, rel=0.01)
    # summing eq-midpoint-error over the bins: relative error (h^2 / 24) int f'' / int f = h^2 / 24
    assert e1 == pytest.approx((1.0 / 50) ** 2 / 24, rel=0.01)


def test_evidence_needs_log_space():
    ns = chapter_namespace()
    assert 1e-6 < np.exp(ns["model"].log_evidence()) < 1e-5  # "ours is about 10^-6"
    # a thousand observations: p(D) underflows a float, its logarithm is fine on the grid
    x = np.random.default_rng(1).normal(1.5, 1.0, size=1000)
    big = vc.models.ConjugateGaussian(x, prior_var=4.0, noise_var=1.0)
    assert np.exp(big.log_evidence()) == 0.0
    assert big.log_evidence() < np.log(np.finfo(float).tiny)
    grid_est = vc.grid.log_evidence(big.log_joint, -6.0, 6.0, 4000)
    assert grid_est == pytest.approx(big.log_evidence(), abs=1e-6)


# --- the chapter's numbers -------------------------------------------------------------------------


def test_running_example_and_relevant_bins_in_1d():
    ns = chapter_namespace()
    assert 0.28 < ns["s"] < 0.33  # "a posterior standard deviation of about 0.3"
    bins = ns["bins"]
    assert bins.centres.size == 60 and ns["n_relevant"] == bins.relevant.sum()
    # the relevant bins: few, one contiguous interval around the posterior mean
    assert 6 < bins.centres.size / bins.relevant.sum() < 7  # "the waste is a factor of six or seven"
    idx = np.flatnonzero(bins.relevant)
    assert np.all(np.diff(idx) == 1)
    assert bins.centres[idx[0]] < ns["m"] < bins.centres[idx[-1]]
    # "all the others contribute less than 1% of the evidence together"
    assert bins.mass[~bins.relevant].sum() < 0.01
    # eq-bin-mass: the masses are the normalised joint at the centres (the evidence cancels)
    log_joint = ns["model"].log_joint(bins.centres[:, None])
    np.testing.assert_allclose(bins.mass, np.exp(log_joint - log_joint.max())
                               / np.exp(log_joint - log_joint.max()).sum(), rtol=1e-12)


def test_number_of_bins_and_running_times():
    ns = chapter_namespace()
    n, rate = ns["n_per_axis"], ns["evaluations_per_second"]
    hours_10 = n**10 / rate / 3600
    years_20 = n**20 / rate / (365.25 * 24 * 3600)
    assert 1 < hours_10 < 24  # "a ten-dimensional grid already takes hours"
    assert 2.5e9 < years_20 < 4e9  # "about three billion years"


def test_relevant_fraction_claims():
    ns = chapter_namespace()
    fraction, relevant, dims = ns["fraction"], ns["relevant_bins"], ns["dims"]
    assert dims[0] == 1 and dims[-1] == 60
    assert fraction[0] == pytest.approx(0.70)  # "in one dimension 70%"
    assert 0.0155 <= round(fraction[9], 4) < 0.0165  # "in ten dimensions about 1.6%"
    assert fraction[59] < 1e-13  # "fewer than one bin in ten trillion"
    assert 4e64 < relevant[59] < 6e64  # "about 5 x 10^64"
    assert np.all(np.diff(relevant) > 0)  # the number of relevant bins grows ...
    assert np.all(np.diff(np.log(relevant)) < np.diff(np.log(ns["total_bins"])))  # ... more slowly


def test_inscribed_ball_fills_a_vanishing_part_of_the_cube():
    # volume of the d-ball of radius r: pi^(d/2) r^d / Gamma(d/2 + 1); check it in 2 and 3 dims
    r = sp.Symbol("r", positive=True)
    for d, known in ((2, sp.pi * r**2), (3, sp.Rational(4, 3) * sp.pi * r**3)):
        assert sp.simplify(sp.pi ** sp.Rational(d, 2) * r**d / sp.gamma(sp.Rational(d, 2) + 1) - known) == 0

    def log_ratio(d):  # ball of radius 4 inside the cube [-4, 4]^d
        return 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1) - d * np.log(2.0)

    assert np.exp(log_ratio(20)) < 1e-7  # "less than one part in ten million at d = 20"
    assert np.all(np.diff([log_ratio(d) for d in range(1, 61)]) < 0)
