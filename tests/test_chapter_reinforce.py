"""Checks of what book/reinforce.md displays and claims ("The score-function (REINFORCE) estimator").

Every displayed identity is derived here independently with SymPy (Gaussian expectations by symbolic
integration, discrete expectations by summation), and every claim the prose makes about the
chapter's numbers is checked against the chapter's own computation: its code cells (all but the
plotting cells, which draw no random numbers) are executed in-process.

Already covered elsewhere and not repeated here:

* unbiasedness of the Gaussian score-function estimator with and without baselines, the
  leave-one-out baseline, and score variance > reparameterisation variance on the library's test
  problems: ``tests/test_gradients.py``;
* the lecture's eq. (52)-(53) against the correct identity for a Gaussian q and g = theta z^2, and on
  the ELBO by quadrature (erratum E4): ``tests/test_errata.py::test_e04_*``; the bias of the printed
  estimator in the log-sigma coordinate: ``tests/test_gradients.py::test_lecture_eq_52_estimator_is_biased``;
* the discrete families, exact enumeration, REINFORCE for discrete families and the change-point
  model against brute force: ``tests/test_discrete.py``.
"""
from __future__ import annotations

import re
from pathlib import Path

import autograd
import numpy as np
import pytest
import sympy as sp

import vi_course as vc
from notebooks import run_chapter
from sympy_helpers import gaussian_expectation
import vi_course.discrete  # noqa: F401  (vc.discrete)

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "reinforce.md"


# --- the chapter's own computation -----------------------------------------------------------------


def chapter_namespace() -> dict:
    """The variables defined by the chapter's code cells (see tests/notebooks.py)."""
    return run_chapter(CHAPTER)


LABELS = ("eq-rf-bernoulli-grad", "eq-rf-product-rule", "eq-rf-log-derivative", "eq-rf-score-identity",
          "eq-rf-score-mean-zero", "eq-rf-reinforce-elbo", "eq-rf-estimator", "eq-rf-scores",
          "eq-rf-baseline", "eq-rf-baseline-variance", "eq-rf-optimal-baseline",
          "eq-rf-changepoint", "eq-rf-enumeration")


def test_chapter_labels_and_figures_exist():
    text = CHAPTER.read_text(encoding="utf-8")
    for label in LABELS:
        assert f"$$ ({label})" in text, f"equation label {label} missing"
    for name in ("fig-rf-variance", "fig-rf-changepoint-data", "fig-rf-changepoint-fit"):
        assert re.search(rf"name: {name}\n", text), f"figure {name} missing"
    assert "(chap-reinforce)=" in text
    assert "errata-e04" in text               # the corrected REINFORCE formula is cross-referenced
    assert "## Exercises" in text
    assert "\n<" not in text, "no raw HTML in the chapter"


# --- symbolic helpers ------------------------------------------------------------------------------

Z = sp.Symbol("z", real=True)
MU = sp.Symbol("mu", real=True)
SIGMA = sp.Symbol("sigma", positive=True)
LOG_Q = -(Z - MU) ** 2 / (2 * SIGMA**2) - sp.log(2 * sp.pi * SIGMA**2) / 2


def normal_expectation(expr, var=Z, mean=MU, sd=SIGMA) -> sp.Expr:
    """E[expr] for var ~ N(mean, sd^2), expr a polynomial in var (tests/sympy_helpers.py)."""
    return gaussian_expectation(expr, mean, sd**2, var)


def same(a, b) -> bool:
    return sp.simplify(sp.expand_log(sp.expand(a - b), force=True)) == 0


def d_log_sigma(expr):
    """Derivative with respect to log sigma: sigma d/dsigma."""
    return SIGMA * sp.diff(expr, SIGMA)


# Bernoulli with logit ell, and a categorical over 3 states with logits l0, l1, l2
ELL = sp.Symbol("ell", real=True)
P = 1 / (1 + sp.exp(-ELL))
LOGITS = sp.symbols("l0:3", real=True)
Q_CAT = [sp.exp(l) / sum(sp.exp(m) for m in LOGITS) for l in LOGITS]


def bernoulli_log_q(zv):
    return zv * sp.log(P) + (1 - zv) * sp.log(1 - P)


# --- eq-rf-bernoulli-grad and eq-rf-scores (Bernoulli) ---------------------------------------------


def test_bernoulli_gradient_and_score():
    g0, g1 = sp.symbols("g0 g1", real=True)
    expectation = P * g1 + (1 - P) * g0
    assert sp.simplify(sp.diff(P, ELL) - P * (1 - P)) == 0
    assert sp.simplify(sp.diff(expectation, ELL) - P * (1 - P) * (g1 - g0)) == 0
    # the score z - p, and E[(z - p) g(z)] reproduces the derivative
    for zv in (0, 1):
        assert sp.simplify(sp.diff(bernoulli_log_q(zv), ELL) - (zv - P)) == 0
    score_form = P * (1 - P) * g1 + (1 - P) * (0 - P) * g0
    assert sp.simplify(score_form - sp.diff(expectation, ELL)) == 0


def test_chapter_bernoulli_samples_barely_move():
    ns = chapter_namespace()
    changed = int(np.sum(ns["z_here"] != ns["z_nudged"]))
    assert 0 < changed < 10          # "a handful of the ten thousand samples jump from 0 to 1"
    assert np.all(ns["z_nudged"] >= ns["z_here"])


# --- eq-rf-log-derivative, eq-rf-score-mean-zero, eq-rf-scores (Gaussian and categorical) ---------


def test_log_derivative_trick_and_zero_mean_score_for_a_gaussian():
    q = sp.exp(LOG_Q)
    for theta in (MU, SIGMA):
        assert sp.simplify(sp.diff(q, theta) - q * sp.diff(LOG_Q, theta)) == 0
    # the displayed scores, in the library's coordinates (mu, log sigma)
    score_mu, score_ls = sp.diff(LOG_Q, MU), d_log_sigma(LOG_Q)
    assert sp.simplify(score_mu - (Z - MU) / SIGMA**2) == 0
    assert sp.simplify(score_ls - ((Z - MU) ** 2 / SIGMA**2 - 1)) == 0
    # zero mean, by symbolic integration over z
    assert normal_expectation(score_mu) == 0
    assert sp.simplify(normal_expectation(score_ls)) == 0
    # and directly: the integral of the derivative of the density is zero
    density = sp.exp(LOG_Q)
    assert sp.simplify(sp.integrate(sp.diff(density, MU), (Z, -sp.oo, sp.oo))) == 0


def test_categorical_score_and_its_zero_mean():
    for k in range(3):
        score = [sp.diff(sp.log(Q_CAT[k]), l) for l in LOGITS]
        expected = [(1 if j == k else 0) - Q_CAT[j] for j in range(3)]
        assert all(sp.simplify(a - b) == 0 for a, b in zip(score, expected))
    mean = [sp.simplify(sum(Q_CAT[k] * sp.diff(sp.log(Q_CAT[k]), l) for k in range(3))) for l in LOGITS]
    assert mean == [0, 0, 0]


def test_gaussian_scores_match_the_library_layout():
    fam = vc.families.MeanFieldGaussian(1)
    params = fam.pack([0.3], [0.7])
    for zv in (-1.0, 0.2, 2.5):
        auto = autograd.grad(lambda p: fam.log_prob(p, np.array([[zv]]))[0])(params)
        np.testing.assert_allclose(auto, [(zv - 0.3) / 0.49, (zv - 0.3) ** 2 / 0.49 - 1], rtol=1e-12)


# --- eq-rf-score-identity --------------------------------------------------------------------------


def test_score_identity_for_a_gaussian_and_a_theta_dependent_polynomial():
    g = Z**3 - MU * SIGMA * Z**2 + MU**2 * Z
    lhs_value = normal_expectation(g)
    # eq-rf-product-rule: differentiate under the integral, directly in z
    density = sp.exp(LOG_Q)
    for theta in (MU, SIGMA):
        under = sp.integrate(sp.diff(density, theta) * g + density * sp.diff(g, theta), (Z, -sp.oo, sp.oo))
        assert same(under, sp.diff(lhs_value, theta))
    for deriv in (lambda e: sp.diff(e, MU), d_log_sigma):
        lhs = deriv(lhs_value)
        rhs = normal_expectation(g * deriv(LOG_Q)) + normal_expectation(deriv(g))
        assert same(lhs, rhs)
        # the lecture's form E[grad((log q + 1) g)] differs: it contains E[log q grad g]
        printed = normal_expectation(sp.expand(deriv(LOG_Q) * g + (LOG_Q + 1) * deriv(g)))
        assert not same(lhs, printed)
        assert same(printed - lhs, normal_expectation(sp.expand(LOG_Q * deriv(g))))


def test_score_identity_for_a_categorical():
    a = sp.symbols("a0:3", real=True)
    g = [a[k] * LOGITS[0] + LOGITS[k] ** 2 for k in range(3)]     # depends on the logits
    lhs = [sp.diff(sum(Q_CAT[k] * g[k] for k in range(3)), l) for l in LOGITS]
    rhs = [sum(Q_CAT[k] * (g[k] * sp.diff(sp.log(Q_CAT[k]), l) + sp.diff(g[k], l)) for k in range(3))
           for l in LOGITS]
    assert all(sp.simplify(x - y) == 0 for x, y in zip(lhs, rhs))


# --- eq-rf-reinforce-elbo ---------------------------------------------------------------------------


def test_reinforce_identity_gives_the_elbo_gradient_of_the_conjugate_model():
    n, v0 = sp.Symbol("n", positive=True, integer=True), sp.Symbol("v0", positive=True)
    s1, s2 = sp.Symbol("S1", real=True), sp.Symbol("S2", positive=True)
    log_joint = (-Z**2 / (2 * v0) - sp.log(2 * sp.pi * v0) / 2 - n / 2 * sp.log(2 * sp.pi)
                 - (s2 - 2 * Z * s1 + n * Z**2) / 2)
    elbo = normal_expectation(log_joint) + normal_expectation(-LOG_Q)
    signal = log_joint - LOG_Q
    for deriv in (lambda e: sp.diff(e, MU), d_log_sigma):
        assert same(normal_expectation(sp.expand(signal * deriv(LOG_Q))), deriv(elbo))
        # with a constant baseline b the expectation is unchanged (eq-rf-baseline)
        b = sp.Symbol("b", real=True)
        assert same(normal_expectation(sp.expand((signal - b) * deriv(LOG_Q))), deriv(elbo))


def test_reinforce_identity_for_a_discrete_elbo_and_the_lecture_form_is_biased():
    a0, a1 = sp.symbols("a0 a1", real=True)          # log p(z, D) at z = 0 and z = 1
    log_p = {0: a0, 1: a1}
    q = {1: P, 0: 1 - P}
    elbo = sum(q[zv] * (log_p[zv] - bernoulli_log_q(zv)) for zv in (0, 1))
    exact = sp.diff(elbo, ELL)
    reinforce = sum(q[zv] * (log_p[zv] - bernoulli_log_q(zv)) * sp.diff(bernoulli_log_q(zv), ELL)
                    for zv in (0, 1))
    assert sp.simplify(reinforce - exact) == 0
    printed = sum(q[zv] * sp.diff((bernoulli_log_q(zv) + 1) * (log_p[zv] - bernoulli_log_q(zv)), ELL)
                  for zv in (0, 1))
    bias = sp.simplify(printed - exact)
    # the spurious term is -E[log q * score] = -p (1 - p) ell: zero only at p = 1/2
    assert sp.simplify(bias + P * (1 - P) * ELL) == 0


# --- eq-rf-baseline, eq-rf-baseline-variance, eq-rf-optimal-baseline -------------------------------


def test_baseline_variance_is_quadratic_with_the_stated_minimiser():
    # a Bernoulli q and an arbitrary learning signal f(0), f(1): every expectation is a finite sum
    f0, f1, b = sp.symbols("f0 f1 b", real=True)
    f = {0: f0, 1: f1}
    q = {1: P, 0: 1 - P}
    s = {zv: zv - P for zv in (0, 1)}
    expect = lambda h: sum(q[zv] * h(zv) for zv in (0, 1))  # noqa: E731
    mean = expect(lambda zv: (f[zv] - b) * s[zv])
    grad = expect(lambda zv: f[zv] * s[zv])
    assert sp.simplify(mean - grad) == 0                                     # eq-rf-baseline
    var = expect(lambda zv: ((f[zv] - b) * s[zv]) ** 2) - mean**2
    assert sp.simplify(var - (expect(lambda zv: s[zv] ** 2 * (f[zv] - b) ** 2) - grad**2)) == 0
    b_star = sp.solve(sp.diff(var, b), b)
    assert len(b_star) == 1
    assert sp.simplify(b_star[0] - expect(lambda zv: s[zv] ** 2 * f[zv]) / expect(lambda zv: s[zv] ** 2)) == 0
    assert sp.simplify(sp.diff(var, b, 2)) != 0 and sp.diff(var, b, 2).subs({ELL: 0}) > 0


def test_optimal_baseline_numbers_for_the_running_example():
    ns = chapter_namespace()
    model, fam, theta0 = ns["model"], ns["fam"], ns["theta0"]
    mu0, sigma0 = ns["mu0"], ns["sigma0"]
    z = fam.sample(theta0, 400_000, np.random.default_rng(0))
    f = model.log_joint(z) - fam.log_prob(theta0, z)
    s = np.c_[(z[:, 0] - mu0) / sigma0**2, (z[:, 0] - mu0) ** 2 / sigma0**2 - 1]   # eq-rf-scores
    b_star = (s**2 * f[:, None]).mean(axis=0) / (s**2).mean(axis=0)
    assert b_star[0] == pytest.approx(-24, abs=0.5) and b_star[1] == pytest.approx(-27, abs=0.5)
    elbo = f.mean()
    assert elbo == pytest.approx(-21, abs=0.5)
    assert f.std() == pytest.approx(7.5, abs=0.3)       # "a standard deviation of only about 7.5"

    def variance(b):
        return ((f[:, None] - b) * s).var(axis=0)

    # "the variance with the ELBO as baseline is within about ten percent of the smallest possible"
    assert np.all(variance(elbo) < 1.15 * np.array([variance(b_star[0])[0], variance(b_star[1])[1]]))
    # and b* is the minimiser: nearby baselines do worse
    for j in (0, 1):
        assert variance(b_star[j])[j] < min(variance(b_star[j] - 2)[j], variance(b_star[j] + 2)[j])


# --- the chapter's numbers --------------------------------------------------------------------------


def test_unbiasedness_and_variance_claims():
    ns = chapter_namespace()
    exact, n = ns["exact_grad"], ns["n_draws"]
    for rows in (ns["score_rows"], ns["reparam_rows"], ns["baseline_rows"]):
        se = rows.std(axis=0, ddof=1) / np.sqrt(n)
        assert np.all(np.abs(rows.mean(axis=0) - exact) < 2.0 * se)        # "within about two"
    assert ns["b"] == pytest.approx(-21, abs=1.0)                          # "about -21"
    var = ns["variances"]
    sizes = ns["sample_sizes"]
    # every curve falls like 1/N (slope -1 on the log-log plot)
    for curve in var.values():
        for j in (0, 1):
            slope = np.polyfit(np.log(sizes), np.log(curve[:, j]), 1)[0]
            assert slope == pytest.approx(-1.0, abs=0.08)
    ratio = var["score function"][0] / var["reparameterisation"][0]
    assert 35 < ratio[0] < 70 and 17 < ratio[1] < 35                      # "about fifty", "twenty-five"
    np.testing.assert_allclose(ns["ratio"], ratio)
    cut = var["score function"][0] / var["score function, baseline $b$"][0]
    assert 4 < cut[0] < 7 and 2.3 < cut[1] < 4                             # "five", "three"


def test_change_point_claims():
    ns = chapter_namespace()
    exact, k_true = ns["exact"], ns["k_true"]
    assert np.argmax(exact.probs) == k_true                                # peaks at the true value
    assert 8 <= np.sum(exact.probs > 0.01) <= 16                           # "a dozen neighbouring"
    assert exact.log_evidence == pytest.approx(-57, abs=0.5)
    assert np.abs(ns["z_scores"]).max() < 4                                # unbiased at the start
    fits = ns["fits"]
    kl = {label: trace for label, (_, trace) in fits.items()}
    none, sgd, adam = (kl[k] for k in ("SGD, no baseline", "SGD, leave-one-out baseline",
                                       "Adam, leave-one-out baseline"))
    assert none[0] == pytest.approx(3.0, abs=0.05)                         # "3.0 at the uniform start"
    assert sgd[-1] < 0.06 and adam[-1] < 0.02 and adam[-1] < sgd[-1]      # "a few hundredths"
    assert np.all(adam[100:] <= sgd[100:])                                 # "Adam faster than SGD"
    cat = ns["cat"]
    for label in ("SGD, leave-one-out baseline", "Adam, leave-one-out baseline"):
        np.testing.assert_allclose(cat.unpack(fits[label][0]), exact.probs, atol=0.02)
    # without a baseline: stuck on k = 19, where the posterior has about 5%
    q_none = cat.unpack(fits["SGD, no baseline"][0])
    assert np.argmax(q_none) == 19 and q_none.max() > 0.99
    assert exact.probs[19] == pytest.approx(0.05, abs=0.01)
    assert none[-1] == pytest.approx(-np.log(exact.probs[19]), abs=0.02)
    assert np.all((2.8 < none[100:]) & (none[100:] < 3.1))                 # "q stays stuck"
    assert none[-1] >= none[0] - 0.01                                      # "no better than at the start"


def test_collapse_without_baseline_happens_within_a_handful_of_steps():
    ns = chapter_namespace()
    sgd = vc.optim.SGD(vc.optim.robbins_monro(0.5, 0.01), maximize=True)
    params, kl = ns["fit"](sgd, None, n_steps=10)
    assert ns["cat"].unpack(params).max() > 0.99
    # the learning signals at the uniform start are all close to log p(D) ~ -57 (and negative)
    model, cat = ns["cp_model"], ns["cat"]
    states = cat.support()
    signal = model.log_joint(states) - cat.log_prob(cat.init_params(), states)
    assert np.all(signal < 0)
    assert np.sum(ns["exact"].probs * signal) == pytest.approx(-57, abs=2)


def test_adam_without_baseline_is_softened_but_noisier():
    # "a smaller step or Adam's normalisation would soften it, but the noise would remain"
    ns = chapter_namespace()
    adam = vc.optim.Adam(vc.optim.robbins_monro(0.1, 0.01), maximize=True)
    params, kl = ns["fit"](adam, None)
    with_baseline = ns["fits"]["Adam, leave-one-out baseline"][1]
    assert ns["cat"].unpack(params).max() < 0.9                 # no collapse onto one state
    assert kl[-1] < kl[0]                                       # it does make progress
    assert kl[-1] > 5 * with_baseline[-1]                       # but much less than with a baseline


# --- lecture notation found while writing the chapter (reported to the errata appendix) ----------


def test_lecture_eq49_gradient_is_with_respect_to_theta():
    # lecture eqs. (49) and (52) write nabla_z on the left; E_q[g] no longer depends on z, so that
    # gradient is 0, while the right-hand sides are the theta-gradient computed above
    g = Z**2 + MU * Z
    expectation = normal_expectation(g)
    assert sp.diff(expectation, Z) == 0
    assert not same(sp.diff(expectation, MU), 0)
