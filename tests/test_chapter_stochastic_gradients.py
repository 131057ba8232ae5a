"""Checks of what book/stochastic_gradients.md displays and claims ("Stochastic gradients").

Every displayed identity is derived here independently with SymPy (Gaussian expectations by symbolic
integration, series by summation), and every claim the prose makes about the chapter's numbers is
checked against the chapter's own computation: its code cells (all but the plotting cells, which draw
no random numbers) are executed in-process, so a change of seed or setting that breaks a claim fails
a test.

Already covered elsewhere and not repeated here:

* unbiasedness of ``reparam_grad`` for both entropy estimators, all families, against a hand-written
  exact gradient: ``tests/test_gradients.py::test_reparam_gradient_is_unbiased``;
* the schedule's values and its partial sums for alpha = 0.1, delta = 1:
  ``tests/test_optim.py::test_schedule_examples_and_robbins_monro_conditions``; the strict condition
  for delta = 1 and 1/10 (erratum E5): ``tests/test_errata.py::test_e05_*``;
* convergence of SGD / Adam on quadratics and Adam's first step:
  ``tests/test_optim.py::test_descent_minimises_a_quadratic`` and
  ``::test_updates_are_pure_and_state_is_a_named_tuple``.
"""
from __future__ import annotations

import re
from pathlib import Path

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import sympy as sp
from scipy import stats

import vi_course as vc
from notebooks import run_chapter
from sympy_helpers import gaussian_expectation, same
from vi_course.symbolic import normal_logpdf

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "stochastic_gradients.md"


# --- the chapter's own computation -----------------------------------------------------------------


def chapter_namespace() -> dict:
    """The variables defined by the chapter's code cells (see tests/notebooks.py)."""
    return run_chapter(CHAPTER)


LABELS = ("eq-sg-elbo", "eq-sg-naive", "eq-sg-expected-loglik", "eq-sg-expected-loglik-grad",
          "eq-sg-reparam", "eq-sg-reparam-mv", "eq-sg-lotus", "eq-sg-reparam-grad",
          "eq-sg-reparam-grad-1d", "eq-sg-mc-grad", "eq-sg-unbiased", "eq-sg-closed-elbo",
          "eq-sg-exact-grad", "eq-sg-sga", "eq-sg-rm", "eq-sg-schedule", "eq-sg-schedule-sums",
          "eq-sg-power-law", "eq-sg-adam")


def test_chapter_labels_and_figures_exist():
    text = CHAPTER.read_text(encoding="utf-8")
    for label in LABELS:
        assert f"$$ ({label})" in text, f"equation label {label} missing"
    for name in ("fig-sg-gradient-histograms", "fig-sg-schedules"):
        assert re.search(rf"name: {name}\n", text), f"figure {name} missing"
    assert "(chap-stochastic-gradients)=" in text
    assert "errata-e05" in text            # the strict Robbins-Monro condition is cross-referenced
    assert "## Exercises" in text
    assert "\n<" not in text, "no raw HTML in the chapter"


# --- symbolic helpers ------------------------------------------------------------------------------

T = sp.Symbol("t", real=True)
MU = sp.Symbol("mu", real=True)
SIGMA = sp.Symbol("sigma", positive=True)
Z = sp.Symbol("z", real=True)


def normal_expectation(expr, var, mean, sd) -> sp.Expr:
    """E[expr] for var ~ N(mean, sd^2), expr a polynomial in var (tests/sympy_helpers.py)."""
    return gaussian_expectation(expr, mean, sd**2, var)


# the conjugate model with unit noise variance, through its sufficient statistics
N_DATA = sp.Symbol("n", positive=True, integer=True)
S1 = sp.Symbol("S1", real=True)                 # sum of x_k
S2 = sp.Symbol("S2", positive=True)             # sum of x_k^2
V0 = sp.Symbol("v0", positive=True)             # prior variance
LOG_LIK = -N_DATA / 2 * sp.log(2 * sp.pi) - (S2 - 2 * Z * S1 + N_DATA * Z**2) / 2
LOG_JOINT = normal_logpdf(Z, 0, V0) + LOG_LIK
S_SQ = 1 / (1 / V0 + N_DATA)                    # posterior variance s^2
M = S_SQ * S1                                   # posterior mean m
LOG_EVIDENCE = (-N_DATA / 2 * sp.log(2 * sp.pi) - sp.log(1 + N_DATA * V0) / 2
                - (S2 - V0 * S1**2 / (1 + N_DATA * V0)) / 2)


def entropy_of_q():
    return normal_expectation(-normal_logpdf(Z, MU, SIGMA**2), Z, MU, SIGMA)


# --- eq-sg-naive, eq-sg-expected-loglik, eq-sg-expected-loglik-grad -------------------------------


def test_expected_log_likelihood_and_its_gradient():
    expected = normal_expectation(LOG_LIK, Z, MU, SIGMA)
    # displayed: -n/2 log 2pi - 1/2 sum_k [(x_k - mu)^2 + sigma^2], with sum (x_k - mu)^2 expanded
    displayed = -N_DATA / 2 * sp.log(2 * sp.pi) - (S2 - 2 * MU * S1 + N_DATA * MU**2 + N_DATA * SIGMA**2) / 2
    assert same(expected, displayed)
    # eq-sg-expected-loglik-grad: n (xbar - mu) and -n sigma
    assert same(sp.diff(expected, MU), N_DATA * (S1 / N_DATA - MU))
    assert same(sp.diff(expected, SIGMA), -N_DATA * SIGMA)
    # eq-sg-naive: the integrand has no theta in it, so its derivative is identically zero ...
    assert sp.diff(LOG_LIK, MU) == 0 and sp.diff(LOG_LIK, SIGMA) == 0
    # ... while the true gradient is not
    assert not same(sp.diff(expected, MU), 0)


def test_difference_quotient_claim():
    ns = chapter_namespace()
    quotient = (ns["values"][1] - ns["values"][0]) / ns["h"]
    exact = ns["x"].size * (ns["x"].mean() - 0.55)
    assert quotient == pytest.approx(exact, abs=0.05)


# --- eq-sg-reparam, eq-sg-reparam-mv, eq-sg-lotus --------------------------------------------------


def test_reparameterised_gaussian_has_the_stated_moments():
    # 1-D: z = mu + sigma eps has mean mu and variance sigma^2 (eq-sg-reparam)
    eps = sp.Symbol("epsilon", real=True)
    z = MU + SIGMA * eps
    assert same(normal_expectation(z, eps, 0, 1), MU)
    assert same(normal_expectation((z - MU) ** 2, eps, 0, 1), SIGMA**2)
    # 2-D: z = mu + L eps with eps ~ N(0, I) has covariance L L^T (eq-sg-reparam-mv)
    e1, e2 = sp.symbols("epsilon1 epsilon2", real=True)
    l11, l22 = sp.symbols("l11 l22", positive=True)
    l21 = sp.Symbol("l21", real=True)
    L = sp.Matrix([[l11, 0], [l21, l22]])
    centred = L * sp.Matrix([e1, e2])
    cov = (centred * centred.T).applyfunc(
        lambda entry: normal_expectation(normal_expectation(entry, e1, 0, 1), e2, 0, 1))
    assert (cov - L * L.T).applyfunc(sp.simplify) == sp.zeros(2, 2)


def test_chapter_full_rank_sample_covariance():
    ns = chapter_namespace()
    np.testing.assert_allclose(ns["L"], [[1.0, 0.0], [0.8, 0.6]], atol=1e-12)
    np.testing.assert_allclose(np.cov(ns["z"].T), ns["Sigma"], atol=0.015)


def test_change_of_variables_in_the_expectation():
    # eq-sg-lotus: integrating h against N(z; mu, sigma^2) directly in z equals E_eps[h(mu + sigma eps)]
    h = Z**3 - 2 * Z
    density = sp.exp(-(Z - MU) ** 2 / (2 * SIGMA**2)) / sp.sqrt(2 * sp.pi * SIGMA**2)
    direct = sp.integrate(h * density, (Z, -sp.oo, sp.oo))
    assert same(direct, normal_expectation(h, Z, MU, SIGMA))
    assert same(direct, MU**3 + 3 * MU * SIGMA**2 - 2 * MU)


# --- eq-sg-reparam-grad, eq-sg-reparam-grad-1d ------------------------------------------------------


def test_reparameterisation_gradient_in_one_dimension_for_a_generic_log_joint():
    # a quartic log joint with generic coefficients (not only Gaussian targets)
    c = sp.symbols("c1:5", real=True)
    log_p = sum(ck * Z ** (k + 1) for k, ck in enumerate(c))
    elbo = normal_expectation(log_p, Z, MU, SIGMA) + entropy_of_q()
    # the entropy is log sigma + log(2 pi e) / 2
    assert same(entropy_of_q(), sp.log(SIGMA) + sp.log(2 * sp.pi * sp.E) / 2)
    eps = sp.Symbol("epsilon", real=True)
    dlogp = sp.diff(log_p, Z).subs(Z, MU + SIGMA * eps)
    d_mu = normal_expectation(dlogp, eps, 0, 1)
    d_log_sigma = normal_expectation(SIGMA * eps * dlogp, eps, 0, 1) + 1
    assert same(d_mu, sp.diff(elbo, MU))
    assert same(d_log_sigma, SIGMA * sp.diff(elbo, SIGMA))     # d/dlog(sigma) = sigma d/dsigma
    # without the +1 of the entropy the log-sigma component would be wrong
    assert not same(d_log_sigma - 1, SIGMA * sp.diff(elbo, SIGMA))


def test_monte_carlo_entropy_form_has_the_same_gradient_for_a_gaussian():
    # the chapter: grad_theta log q_theta(mu + sigma eps) at fixed eps is -grad_theta H[q_theta]
    eps = sp.Symbol("epsilon", real=True)
    log_sigma = sp.Symbol("ell", real=True)
    log_q = normal_logpdf(MU + sp.exp(log_sigma) * eps, MU, sp.exp(2 * log_sigma))
    entropy = log_sigma + sp.log(2 * sp.pi * sp.E) / 2
    for param in (MU, log_sigma):
        assert same(sp.diff(log_q, param), -sp.diff(entropy, param))
    # ... but not the same value: -log q(z) - H = (eps^2 - 1) / 2
    assert same(-log_q - entropy, (eps**2 - 1) / 2)
    # and the library agrees sample by sample, for both families, at any parameters
    rng = np.random.default_rng(11)
    for family in (vc.families.MeanFieldGaussian(3), vc.families.FullRankGaussian(3)):
        params = rng.normal(size=family.n_params)

        def log_joint(z):
            return -0.25 * anp.sum(z**4, axis=1) + anp.sum(z, axis=1)

        closed = vc.gradients.reparam_grad_samples(log_joint, family, params, 50, 5,
                                                   entropy="closed_form")
        monte = vc.gradients.reparam_grad_samples(log_joint, family, params, 50, 5,
                                                  entropy="monte_carlo")
        np.testing.assert_allclose(closed, monte, rtol=1e-10, atol=1e-10)
        assert np.var(closed, axis=0).max() > 1e-3    # a real spread, not a constant


# --- eq-sg-closed-elbo, eq-sg-exact-grad -----------------------------------------------------------


def test_closed_form_elbo_of_the_conjugate_model():
    elbo = normal_expectation(LOG_JOINT, Z, MU, SIGMA) + entropy_of_q()
    displayed = (LOG_EVIDENCE - sp.log(sp.sqrt(S_SQ) / SIGMA) - (SIGMA**2 + (MU - M) ** 2) / (2 * S_SQ)
                 + sp.Rational(1, 2))
    assert same(elbo, displayed)
    # eq-sg-exact-grad
    assert same(sp.diff(displayed, MU), (M - MU) / S_SQ)
    assert same(SIGMA * sp.diff(displayed, SIGMA), 1 - SIGMA**2 / S_SQ)
    # both vanish at the posterior
    at_post = {MU: M, SIGMA: sp.sqrt(S_SQ)}
    assert sp.simplify(((M - MU) / S_SQ).subs(at_post)) == 0
    assert sp.simplify((1 - SIGMA**2 / S_SQ).subs(at_post)) == 0


def test_curvatures_quoted_in_the_adam_section_and_the_figure_discussion():
    # second derivatives of eq-sg-closed-elbo: -1/s^2 in mu, -2 sigma^2/s^2 in log sigma (-2 at sigma = s)
    s_sq = sp.Symbol("s2", positive=True)
    m, logsig = sp.symbols("m ell", real=True)
    elbo = (-sp.log(sp.sqrt(s_sq)) + logsig - (sp.exp(2 * logsig) + (MU - m) ** 2) / (2 * s_sq))
    assert sp.simplify(sp.diff(elbo, MU, 2) + 1 / s_sq) == 0
    assert sp.simplify(sp.diff(elbo, logsig, 2).subs(logsig, sp.log(sp.sqrt(s_sq))) + 2) == 0
    ns = chapter_namespace()
    assert 9.5 < 1 / ns["s2"] < 10.5            # "about 10 in mu"


def test_chapter_exact_gradient_matches_autograd_of_the_closed_form_elbo():
    # the chapter's exact_grad against autograd of the exact ELBO log p(D) - KL(q || posterior), with
    # the KL divergence checked against the library's gaussian_kl
    ns = chapter_namespace()
    mean, cov = ns["model"].posterior()
    q_mean, q_cov = ns["fam"].mean_cov(ns["theta0"])
    kl = 0.5 * np.log(cov[0, 0] / q_cov[0, 0]) + (q_cov[0, 0] + (q_mean[0] - mean[0]) ** 2) / (2 * cov[0, 0]) - 0.5
    assert kl == pytest.approx(vc.divergences.kl_gaussian(q_mean, q_cov, mean, cov), rel=1e-12)

    def exact_elbo(params):
        mu, log_sigma = params
        var = np.exp(2 * log_sigma)
        return -(0.5 * np.log(cov[0, 0] / var) + (var + (mu - mean[0]) ** 2) / (2 * cov[0, 0]) - 0.5)

    np.testing.assert_allclose(autograd.grad(exact_elbo)(ns["theta0"]), ns["exact_grad"], rtol=1e-12)
    # the direction claimed: larger mu, smaller log sigma
    assert ns["exact_grad"][0] > 0 > ns["exact_grad"][1]


# --- eq-sg-mc-grad, eq-sg-unbiased and the histogram claims ----------------------------------------


def test_unbiasedness_and_variance_claims():
    ns = chapter_namespace()
    single, groups, exact = ns["single"], ns["groups_of_10"], ns["exact_grad"]
    # "agrees with the exact gradient to within about one standard error"
    assert np.all(np.abs(single.mean(axis=0) - exact) < 1.5 * ns["std_err"])
    # "averaging ten samples divides the variance by about ten"
    ratio = groups.var(axis=0) / single.var(axis=0)
    assert np.all((0.085 < ratio) & (ratio < 0.115))
    # "for log sigma they are skewed, with a long tail to the left"
    assert stats.skew(single[:, 1]) < -0.5
    # the single-sample log-sigma term is 1 - sigma eps (mu + sigma eps - m) / s^2, with eps read
    # off the mu term (m - mu - sigma eps) / s^2
    m, s2, mu0, sigma0 = ns["m"], ns["s2"], ns["mu0"], ns["sigma0"]
    eps = (m - mu0 - s2 * single[:, 0]) / sigma0
    np.testing.assert_allclose(single[:, 1], 1 - sigma0 * eps * (mu0 + sigma0 * eps - m) / s2,
                               rtol=1e-9, atol=1e-9)


# --- eq-sg-rm, eq-sg-schedule, eq-sg-schedule-sums -------------------------------------------------

ALPHA, DELTA = sp.symbols("alpha delta", positive=True)
NN = sp.Symbol("N", integer=True, nonnegative=True)
K = sp.Symbol("k", integer=True, positive=True)


def test_schedule_partial_sums_grow_like_alpha_over_delta_log_n():
    # closed form of the partial sum, proved by induction: S(0) = 0 and S(N + 1) - S(N) = eta_N
    partial = ALPHA / DELTA * (sp.polygamma(0, NN + 1 / DELTA) - sp.polygamma(0, 1 / DELTA))
    eta = ALPHA / (1 + DELTA * NN)
    assert sp.simplify(partial.subs(NN, 0)) == 0
    assert sp.simplify(sp.expand_func(partial.subs(NN, NN + 1) - partial) - eta) == 0
    # sum_{n < N} eta_n = (alpha / delta) log N + O(1): the remainder has a finite limit ...
    remainder = sp.limit(partial - ALPHA / DELTA * sp.log(NN), NN, sp.oo)
    assert remainder == -ALPHA * sp.polygamma(0, 1 / DELTA) / DELTA
    # ... so the series diverges for every delta > 0
    assert sp.limit(partial, NN, sp.oo) == sp.oo
    # the same by comparison with the harmonic series: eta_n >= alpha / ((1 + delta) n) for n >= 1
    gap = sp.factor(1 / (1 + DELTA * K) - 1 / ((1 + DELTA) * K))
    assert gap == (K - 1) / (K * (1 + DELTA) * (DELTA * K + 1))
    assert sp.Sum(1 / K, (K, 1, sp.oo)).is_convergent() is sp.false


def test_schedule_sum_of_squares_is_finite_and_bounded():
    # eta_n^2 <= alpha^2 / (delta n)^2 for n >= 1, and sum 1/n^2 = pi^2 / 6
    diff = sp.factor(1 / (DELTA * K) ** 2 - 1 / (1 + DELTA * K) ** 2)
    assert diff.is_positive
    assert sp.summation(1 / K**2, (K, 1, sp.oo)) == sp.pi**2 / 6
    bound = ALPHA**2 * (1 + sp.pi**2 / (6 * DELTA**2))
    # the exact sum: partial sums (alpha / delta)^2 (psi_1(1/delta) - psi_1(N + 1/delta)), by
    # induction as above, tend to alpha^2 psi_1(1/delta) / delta^2, which is finite
    partial = (ALPHA / DELTA) ** 2 * (sp.polygamma(1, 1 / DELTA) - sp.polygamma(1, NN + 1 / DELTA))
    assert sp.simplify(partial.subs(NN, 0)) == 0
    eta_sq = (ALPHA / (1 + DELTA * NN)) ** 2
    assert sp.simplify(sp.expand_func(partial.subs(NN, NN + 1) - partial) - eta_sq) == 0
    total = sp.limit(partial, NN, sp.oo)
    assert total == (ALPHA / DELTA) ** 2 * sp.polygamma(1, 1 / DELTA)
    for delta in (0.05, 0.5, 1.0, 3.0):
        value = float(total.subs({ALPHA: 1, DELTA: delta}))
        assert 0 < value <= float(bound.subs({ALPHA: 1, DELTA: delta}))
        # cross-check with a long partial sum (the tail beyond n terms is below 1 / (delta^2 n))
        direct = np.sum(1.0 / (1.0 + delta * np.arange(10**6)) ** 2)
        assert value == pytest.approx(direct, abs=1.0 / (delta**2 * 10**6) + 1e-12)
    # a constant step fails the second condition: the lecture's "<= infinity" would not exclude it
    assert sp.summation(ALPHA**2, (K, 1, sp.oo)) == sp.oo


def test_schedule_printout_claims():
    ns = chapter_namespace()
    steps = ns["steps"]
    sums = {n: steps[:n].sum() for n in (10**2, 10**4, 10**6)}
    growth = 2 * np.log(100)                      # (alpha / delta) log 100 with alpha / delta = 2
    assert growth == pytest.approx(9.2, abs=0.05)
    assert sums[10**4] - sums[10**2] == pytest.approx(growth, abs=0.5)
    assert sums[10**6] - sums[10**4] == pytest.approx(growth, abs=0.01)
    squares = {n: np.sum(steps[:n] ** 2) for n in (10**4, 10**6)}
    assert squares[10**6] - squares[10**4] < 1e-3      # "long since settled"


# --- eq-sg-power-law -------------------------------------------------------------------------------


@pytest.mark.parametrize("lam,alpha,delta", [(2.0, 0.1, 1.0), (10.0, 0.05, 1.0), (1.0, 0.2, 0.5)])
def test_noiseless_decay_is_a_power_law(lam, alpha, delta):
    n = np.arange(10**6)
    log_factor = np.cumsum(np.log1p(-lam * alpha / (1 + delta * n)))
    # slope of log distance against log N over the last two decades
    slope = (log_factor[-1] - log_factor[10**4 - 1]) / (np.log(10**6) - np.log(10**4))
    assert slope == pytest.approx(-lam * alpha / delta, rel=1e-3)


# --- eq-sg-adam ------------------------------------------------------------------------------------


def displayed_adam(grads, step, b1=0.9, b2=0.999, eps=1e-8):
    """The update of eq-sg-adam, written out from the display (ascent)."""
    m = v = np.zeros_like(grads[0])
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        out.append(step(t - 1) * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return np.array(out)


@pytest.mark.parametrize("step_size", [0.05, vc.optim.robbins_monro(0.1, 0.05)])
def test_adam_display_matches_the_library(step_size):
    grads = np.random.default_rng(0).normal(size=(50, 3)) * [1.0, 10.0, 0.01]
    opt = vc.optim.Adam(step_size, maximize=True)
    state = opt.init(np.zeros(3))
    deltas = []
    for g in grads:
        delta, state = opt.update(g, state)
        deltas.append(delta)
    step = step_size if callable(step_size) else (lambda n: step_size)
    np.testing.assert_allclose(np.array(deltas), displayed_adam(grads, step), rtol=1e-12)


def test_adam_steps_do_not_depend_on_the_gradient_scale():
    grads = np.random.default_rng(1).normal(size=(40, 2)) + 0.5
    small, large = displayed_adam(grads * 1e-3, lambda n: 0.05), displayed_adam(grads * 1e3, lambda n: 0.05)
    np.testing.assert_allclose(small, large, rtol=1e-4)
    # "exactly eta_n at the first step", and roughly eta_n afterwards
    np.testing.assert_allclose(np.abs(large[0]), 0.05, rtol=1e-9)
    assert np.all(np.abs(large) < 3 * 0.05) and 0.3 < np.median(np.abs(large)) / 0.05 < 1.5
    # while plain SGD steps scale with the gradient
    assert not np.allclose(0.05 * grads * 1e-3, 0.05 * grads * 1e3)


# --- the stacking trick and the figure's claims ----------------------------------------------------


def test_stacked_gradient_entries_are_the_single_copy_gradients():
    ns = chapter_namespace()
    model, fam = ns["model"], ns["fam"]
    stacked = vc.families.MeanFieldGaussian(4)
    rng = np.random.default_rng(3)
    params = rng.normal(size=8) * [1, 1, 1, 1, 0.3, 0.3, 0.3, 0.3]
    eps = stacked.noise(5, rng)
    grad = autograd.grad(lambda p: vc.elbo.elbo_from_noise(ns["stacked_log_joint"], stacked, p, eps))(params)
    for j in range(4):
        single = autograd.grad(lambda p: vc.elbo.elbo_from_noise(model, fam, p, eps[:, j:j + 1]))(
            params[[j, 4 + j]])
        np.testing.assert_allclose(grad[[j, 4 + j]], single, rtol=1e-10)


def test_schedule_figure_claims():
    ns = chapter_namespace()
    tr = dict(zip(["big", "small", "rm01", "rm05", "rm1", "adam", "adam_rm"], ns["traces"].values()))
    assert len(ns["traces"]) == 7 and all(t.shape == (301,) for t in tr.values())
    final = {k: np.median(t[-50:]) for k, t in tr.items()}
    # large constant step: fast start, then a plateau that does not improve
    assert tr["big"][10] < 0.1 * tr["small"][10]
    assert final["big"] > 10 * final["rm05"]
    assert np.median(tr["big"][100:150]) < 2 * final["big"] and final["big"] < 2 * np.median(tr["big"][100:150])
    # small constant step: slow start, lower plateau
    assert final["small"] < 0.2 * final["big"]
    # delta = 0.05 ends lowest of the SGD rules; delta = 0.01 between the two constant steps
    assert final["rm05"] == min(final[k] for k in ("big", "small", "rm01", "rm05", "rm1"))
    assert final["small"] < final["rm01"] < final["big"]
    # delta = 1: the squared distance falls roughly like n^-0.4 over the last decade
    slope = np.log(tr["rm1"][300] / tr["rm1"][30]) / np.log(301 / 31)
    assert -0.6 < slope < -0.25
    # Adam: slow start (a few dozen steps to reach mu ~ 1.7), then the constant step plateaus while
    # the decaying step keeps improving, to the lowest value of all
    assert tr["adam"][10] > 1.0 and tr["adam_rm"][10] > 0.5
    assert final["adam_rm"] < 0.5 * final["adam"]
    assert final["adam_rm"] == min(final.values())
    # the median, not the mean: some runs overshoot to a tiny sigma and take long to recover
    distance = ns["distance"]
    last = distance[-1]
    assert np.max(last) > 1.0
    assert np.mean(last) > 2 * np.median(last)


def test_chapter_is_seeded():
    # the chapter's random numbers all come from explicit seeds: running a key cell twice agrees
    ns = chapter_namespace()
    again = vc.gradients.reparam_grad_samples(ns["model"], ns["fam"], ns["theta0"], 20_000, rng=2)
    np.testing.assert_array_equal(again, ns["single"])


# --- lecture errata found while writing the chapter (reported to the errata appendix) -------------


def test_lecture_eq44_sums_n_plus_one_terms_over_n():
    # lecture eq. (44): -(1/N) sum_{n=0}^{N} ... has N + 1 terms; its mean is (N + 1)/N times the
    # gradient, a bias. The book's eq-sg-mc-grad sums i = 1..N.
    n_terms = sp.Symbol("N", positive=True, integer=True)
    g = sp.Symbol("g", real=True)
    i = sp.Symbol("i", integer=True)
    printed_mean = sp.summation(g, (i, 0, n_terms)) / n_terms
    assert sp.simplify(printed_mean - g) == g / n_terms
    assert sp.simplify(sp.summation(g, (i, 1, n_terms)) / n_terms - g) == 0
