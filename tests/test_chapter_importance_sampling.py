"""Checks of what book/importance_sampling.md displays and claims ("Importance sampling").

Every displayed identity is derived here independently with SymPy (Gaussian integrals), and every
claim the prose makes about the chapter's simulations is checked against the chapter's own numbers:
its code cells (all but the plotting cells, which draw no random numbers) are executed in-process,
so a change of seed or setting that breaks a claim fails a test.

Already covered elsewhere and not repeated here:

* unbiasedness of Phi_K (eq-is-unbiased) and the low bias of log Phi_K, by seeded replication:
  ``tests/test_importance.py::test_evidence_estimator_is_unbiased_but_its_log_is_biased_low``;
* sd(Phi_K) = nu / sqrt(K) for shifted Gaussians:
  ``tests/test_importance.py::test_asymptotic_normality_scale_of_exercise_2_2``;
* the log weight of two shifted Gaussians and the sign erratum (eq-shift-logw, erratum E3):
  ``tests/test_importance.py::test_sympy_weight_sign_erratum`` and
  ``tests/test_errata.py::test_e03_importance_weights_of_shifted_gaussians``;
* Var_q[w] = e^{Delta^2} - 1 for a normalised target by symbolic integration, and the library's
  closed forms: ``tests/test_importance.py::test_sympy_weight_variance_by_integration``;
* the closed forms against simulation for small shifts:
  ``tests/test_importance.py::test_closed_form_weight_variance_against_simulation``;
* ESS properties (between 1 and K, K for equal weights, 1 for one dominant weight, invariance to a
  common factor, K / ESS = 1 + var / mean^2):
  ``tests/test_importance.py::test_ess_equal_weights_is_n_and_one_dominant_weight_is_one`` and
  ``::test_ess_and_variance_identities``; equal weights p(D) when q is the posterior:
  ``::test_posterior_proposal_gives_constant_weights``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, stats

import vi_course as vc
from notebooks import run_chapter
from sympy_helpers import Z, integrate_gaussian, same
from vi_course.symbolic import normal_logpdf
import vi_course.divergences  # noqa: F401  (vc.divergences)
import vi_course.importance  # noqa: F401  (vc.importance)

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "importance_sampling.md"


# --- the chapter's own computation -----------------------------------------------------------------


def chapter_namespace() -> dict:
    """The variables defined by the chapter's code cells (see tests/notebooks.py)."""
    return run_chapter(CHAPTER)


def test_chapter_labels_and_figures_exist():
    text = CHAPTER.read_text(encoding="utf-8")
    for label in ("eq-is-identity", "eq-is-weight", "eq-is-estimator", "eq-is-unbiased", "eq-nu2",
                  "eq-is-clt", "eq-shift-logw", "eq-weight-variance", "eq-ess", "eq-ess-limit",
                  "eq-snis", "eq-logw-moments", "eq-jensen-preview"):
        assert f"$$ ({label})" in text, f"equation label {label} missing"
    for name in ("fig-is-clt", "fig-weight-variance", "fig-ess"):
        assert re.search(rf"name: {name}\n", text), f"figure {name} missing"
    assert "(chap-importance-sampling)=" in text
    assert "errata-e03" in text  # the sign erratum is cross-referenced
    assert "## Exercises" in text


# One observation x of the conjugate model: z ~ N(0, s0), x | z ~ N(z, s), a Gaussian proposal
# q = N(mu, tau). Posterior N(m1, v1) and evidence N(x; 0, s0 + s) follow from eq-conjugate-posterior.
X, MU = sp.symbols("x mu", real=True)
S0, S, TAU = sp.symbols("sigma0sq sigmasq tau", positive=True)
LOG_JOINT = normal_logpdf(Z, 0, S0) + normal_logpdf(X, Z, S)
LOG_Q = normal_logpdf(Z, MU, TAU)
LOG_EVIDENCE = normal_logpdf(X, 0, S0 + S)
V1 = S0 * S / (S0 + S)
M1 = V1 * X / S


# --- eq-is-identity, eq-is-weight and the positivity condition -------------------------------------


def test_evidence_as_an_expectation_under_any_gaussian_proposal():
    # E_q[w] = int q(z) p(D, z) / q(z) dz for q = N(mu, tau), with mu and tau left free
    log_w = LOG_JOINT - LOG_Q
    expectation = integrate_gaussian(1, sp.expand(LOG_Q + log_w))
    assert not expectation.free_symbols & {MU, TAU}
    assert same(sp.log(expectation), LOG_EVIDENCE)
    # and the chapter's running example, numerically: E_q[w] for the shifted proposal
    ns = chapter_namespace()
    model, q = ns["model"], ns["q_near"]
    lo, hi = ns["m"] - 12 * ns["s"], ns["m"] + 12 * ns["s"]
    shift = model.log_evidence()
    value = integrate.quad(
        lambda z: q.pdf(z) * np.exp(model.log_joint(np.array([[z]]))[0] - q.logpdf(z) - shift),
        lo, hi, epsabs=0, epsrel=1e-11)[0]
    assert value == pytest.approx(1.0, rel=1e-9)


def test_positivity_condition_matters():
    # a proposal that is zero for z < 0 (half-normal) loses the part of the evidence there
    model = vc.models.ConjugateGaussian([0.2], prior_var=1.0, noise_var=1.0)  # posterior N(0.1, 0.5)
    q = stats.halfnorm(scale=2.0)
    log_w = vc.importance.log_weights(model.log_joint, q, 200_000, np.random.default_rng(0))
    mass_above_zero = stats.norm(0.1, np.sqrt(0.5)).sf(0.0)
    truncated = model.log_evidence() + np.log(mass_above_zero)
    estimate = vc.importance.log_evidence(log_w)
    assert estimate == pytest.approx(truncated, abs=4 * vc.importance.relative_standard_error(log_w))
    assert abs(estimate - model.log_evidence()) > 0.5


# --- eq-nu2, eq-is-clt and the histogram -----------------------------------------------------------


def test_weight_variance_of_the_shifted_posterior_proposal():
    # the chapter's proposal: the posterior shifted by delta posterior sds; then
    # nu^2 = p(D)^2 (exp(delta^2) - 1), i.e. eq-weight-variance with Delta = delta
    # (the chapter's variances, prior 4 and noise 1, with one observation x; x and delta symbolic)
    delta = sp.Symbol("delta", real=True)
    values = {S0: 4, S: 1}
    v1, m1 = V1.subs(values), M1.subs(values)
    log_joint, log_evidence = LOG_JOINT.subs(values), LOG_EVIDENCE.subs(values)
    log_q = normal_logpdf(Z, m1 + delta * sp.sqrt(v1), v1)
    log_w = log_joint - log_q
    mean_w = integrate_gaussian(1, sp.expand(log_q + log_w))
    second_w = integrate_gaussian(1, sp.expand(log_q + 2 * log_w))
    assert same(sp.log(mean_w), log_evidence)
    # E_q[w^2] = p(D)^2 exp(delta^2), so nu^2 = E_q[w^2] - p(D)^2 = p(D)^2 (exp(delta^2) - 1)
    assert same(sp.log(second_w), 2 * log_evidence + delta**2)
    assert not same(sp.log(second_w), 2 * log_evidence + delta**2 / 2)
    # the chapter computes nu^2 / p(D)^2 with the library's closed form
    ns = chapter_namespace()
    assert ns["nu2_relative"] == pytest.approx(np.expm1(ns["delta"] ** 2), rel=1e-12)


def test_histogram_claims():
    ns = chapter_namespace()
    ratios, nu2 = ns["ratios"], ns["nu2_relative"]
    assert sorted(ratios) == [5, 100] and all(r.size == ns["n_rounds"] == 2000 for r in ratios.values())
    for K, r in ratios.items():
        se = r.std(ddof=1) / np.sqrt(r.size)
        assert abs(r.mean() - 1.0) < 4 * se  # "centred on the exact evidence"
        assert r.std(ddof=1) == pytest.approx(np.sqrt(nu2 / K), rel=0.06)  # "spread matches nu/sqrt(K)"
    # "with five draws the distribution is lopsided: most estimates fall a little short, a few
    # overshoot by a lot"; "with a hundred draws the normal limit describes it well"
    assert stats.skew(ratios[5]) > 0.5
    assert np.mean(ratios[5] < 1.0) > 0.5
    assert abs(stats.skew(ratios[100])) < 0.4
    distance = {K: stats.kstest(r, stats.norm(1.0, np.sqrt(nu2 / K)).cdf).statistic
                for K, r in ratios.items()}  # largest gap between the CDFs
    assert distance[100] < 0.04 and distance[5] > 2 * distance[100]
    # "by the delta method it is also the standard error of log Phi_K"
    assert np.log(ratios[100]).std(ddof=1) == pytest.approx(ratios[100].std(ddof=1), rel=0.05)


# --- eq-weight-variance with the evidence, and the weight-variance figure --------------------------


def test_weight_variance_scales_with_the_evidence_squared():
    # joint = c N(z; mu_p, sigma^2) (evidence c), proposal N(mu_q, sigma^2)
    mu_p, mu_q = sp.symbols("mu_p mu_q", real=True)
    sigma2, c = sp.symbols("sigma2 c", positive=True)
    log_joint = sp.log(c) + normal_logpdf(Z, mu_p, sigma2)
    log_q = normal_logpdf(Z, mu_q, sigma2)
    log_w = log_joint - log_q
    # eq-shift-logw including the log p(D) term
    assert same(log_w, sp.log(c) + (mu_p - mu_q) * Z / sigma2 - (mu_p**2 - mu_q**2) / (2 * sigma2))
    mean_w = integrate_gaussian(1, sp.expand(log_q + log_w))
    second_w = integrate_gaussian(1, sp.expand(log_q + 2 * log_w))
    assert sp.simplify(mean_w - c) == 0
    delta2 = (mu_p - mu_q) ** 2 / sigma2
    assert sp.simplify(second_w - mean_w**2 - c**2 * (sp.exp(delta2) - 1)) == 0
    # eq-ess-limit: (E w)^2 / E w^2 = 1 / (1 + nu^2 / p(D)^2) = exp(-Delta^2)
    assert sp.simplify(mean_w**2 / second_w - sp.exp(-delta2)) == 0


def test_weight_variance_figure_claims():
    ns = chapter_namespace()
    shifts, sim_var = ns["shifts"], ns["sim_var"]
    assert ns["K"] == 10_000 and sim_var.shape == (shifts.size, ns["n_repeats"])
    exact = np.expm1(shifts**2)
    median = np.median(sim_var, axis=1)
    small, large = shifts <= 1.0, shifts >= 1.75
    # "for small shifts the simulation follows the closed form"
    np.testing.assert_allclose(median[small], exact[small], rtol=0.1)
    # "beyond Delta ~ 1.5 the samples underestimate the variance"
    assert np.all(median[large] < exact[large])
    # "by orders of magnitude at Delta = 3.5"
    assert shifts[-1] == 3.5 and median[-1] < exact[-1] / 100
    # "the repetitions disagree with each other wildly" (for the large shifts)
    spread = sim_var.max(axis=1) / sim_var.min(axis=1)
    assert np.all(spread[shifts >= 2.5] > 10)


def test_large_weights_come_from_rare_draws():
    # "the weights that make the variance large sit far in the tail of the proposal, at draws rarer
    # than one in ten thousand": at Delta = 3, half of E_q[w^2] comes from z > 2 Delta
    delta = 3.0
    p, q = stats.norm(delta, 1.0), stats.norm(0.0, 1.0)

    def w2q(z):
        return np.exp(2 * p.logpdf(z) - q.logpdf(z))

    total = integrate.quad(w2q, -np.inf, np.inf)[0]
    upper = integrate.quad(w2q, 2 * delta, np.inf)[0]
    assert total == pytest.approx(np.exp(delta**2), rel=1e-8)
    assert upper / total == pytest.approx(0.5, rel=1e-6)
    assert q.sf(2 * delta) < 1e-4


# --- eq-ess, eq-ess-limit and the ESS figure -------------------------------------------------------


def test_ess_figure_and_prose_claims():
    ns = chapter_namespace()
    shifts, sim_ess, K = ns["shifts"], ns["sim_ess"], ns["K"]
    limit = np.exp(-shifts**2)
    # "a shift of three standard deviations leaves one useful draw in about eight thousand"
    assert 7500 < 1 / vc.importance.gaussian_shift_ess_fraction(3.0, 0.0, 1.0) < 8500
    # the ESS cannot fall below one draw ...
    assert np.all(sim_ess >= 1 / K - 1e-15)
    # ... so "for large shifts the finite-sample value levels off far above the limit"
    large = shifts >= 3.0
    assert np.all(sim_ess[large] > limit[large, None])
    assert np.all(np.median(sim_ess[large], axis=1) > 10 * limit[large])
    # close to the limit for small shifts
    np.testing.assert_allclose(np.median(sim_ess, axis=1)[shifts <= 1.0], limit[shifts <= 1.0], rtol=0.05)


def test_prior_and_shifted_proposals_on_the_running_example():
    ns = chapter_namespace()
    ess_prior = vc.importance.effective_sample_size(ns["log_w_prior"])
    ess_near = vc.importance.effective_sample_size(ns["log_w_near"])
    assert ess_prior < 0.25 * ns["log_w_prior"].size < 0.6 * ns["log_w_near"].size < ess_near
    # both estimates agree with the exact evidence within their standard errors
    for log_w in (ns["log_w_prior"], ns["log_w_near"]):
        err = vc.importance.log_evidence(log_w) - ns["exact"]
        assert abs(err) < 4 * vc.importance.relative_standard_error(log_w)
    # "with a thousand [observations] the posterior would be ten times narrower still, and the
    # prior's ESS would collapse"
    x = np.random.default_rng(1).normal(1.5, 1.0, size=1000)
    big = vc.models.ConjugateGaussian(x, prior_var=4.0, noise_var=1.0)
    ratio = ns["s"] / np.sqrt(big.posterior()[1][0, 0])
    assert 9 < ratio < 11
    log_w = vc.importance.log_weights(big.log_joint, ns["q_prior"], 1000, np.random.default_rng(3))
    assert vc.importance.effective_sample_size(log_w) < 0.05 * 1000


# --- eq-snis ---------------------------------------------------------------------------------------


def test_self_normalised_identity():
    # E_post[f] = E_q[w f] / E_q[w] for f = z and z^2, any Gaussian proposal
    log_w = LOG_JOINT - LOG_Q
    denominator = integrate_gaussian(1, sp.expand(LOG_Q + log_w))
    first = integrate_gaussian(Z, sp.expand(LOG_Q + log_w)) / denominator
    second = integrate_gaussian(Z**2, sp.expand(LOG_Q + log_w)) / denominator
    assert sp.simplify(first - M1) == 0
    assert sp.simplify(second - (V1 + M1**2)) == 0
    # the chapter's estimates with the prior as proposal
    ns = chapter_namespace()
    assert ns["mean_est"] == pytest.approx(ns["m"], abs=0.01)
    assert ns["second_est"] - ns["mean_est"] ** 2 == pytest.approx(ns["s"] ** 2, rel=0.05)


def test_self_normalised_estimate_is_biased_for_small_k_only():
    # "the price is a small bias for finite K ..., which vanishes as K grows": the prior as proposal
    ns = chapter_namespace()
    model, q, m = ns["model"], ns["q_prior"], ns["m"]
    rng = np.random.default_rng(5)
    bias = {}
    for K, rounds in ((5, 2000), (500, 500)):
        log_w, z = vc.importance.log_weights(model.log_joint, q, rounds * K, rng, return_samples=True)
        est = np.array([vc.importance.self_normalised_expectation(lw, zz)
                        for lw, zz in zip(log_w.reshape(rounds, K), z[:, 0].reshape(rounds, K))])
        bias[K] = (est.mean() - m, est.std(ddof=1) / np.sqrt(rounds))
    assert abs(bias[5][0]) > 6 * bias[5][1]  # clearly biased with five draws
    assert abs(bias[500][0]) < 4 * bias[500][1]  # no detectable bias with five hundred


# --- eq-logw-moments and eq-jensen-preview ---------------------------------------------------------


def test_log_weight_moments_and_the_jensen_gap():
    mu_p, mu_q = sp.symbols("mu_p mu_q", real=True)
    sigma2, c = sp.symbols("sigma2 c", positive=True)
    log_q = normal_logpdf(Z, mu_q, sigma2)
    log_w = sp.expand(sp.log(c) + normal_logpdf(Z, mu_p, sigma2) - log_q)
    norm = integrate_gaussian(1, log_q)
    assert sp.simplify(norm - 1) == 0
    # log w is linear in z: E_q and Var_q through the first two moments of q
    coeff = sp.Poly(log_w, Z)
    assert coeff.degree() == 1
    e_z = integrate_gaussian(Z, log_q)
    e_z2 = integrate_gaussian(Z**2, log_q)
    slope, intercept = coeff.coeff_monomial(Z), coeff.coeff_monomial(1)
    mean_log_w = slope * e_z + intercept
    var_log_w = slope**2 * (e_z2 - e_z**2)
    delta2 = (mu_p - mu_q) ** 2 / sigma2
    assert same(mean_log_w, sp.log(c) - delta2 / 2)
    assert sp.simplify(var_log_w - delta2) == 0
    # the Jensen gap log p(D) - E_q[log w] is the KL divergence of the posterior from q, >= 0,
    # and zero exactly at Delta = 0
    for mp, mq, sd in [(0.0, 3.0, 1.0), (1.2, -0.4, 0.7), (0.5, 0.5, 2.0)]:
        gap = float(((mp - mq) ** 2 / sd**2) / 2)
        assert gap == pytest.approx(vc.divergences.kl_gaussian(mq, sd**2, mp, sd**2), rel=1e-12)
    # the chapter's sample at Delta = 3: Var w = e^9 - 1 ~ 8100, Var log w = 9
    ns = chapter_namespace()
    assert 8050 < np.expm1(9.0) < 8150
    assert np.var(ns["log_w"], ddof=1) == pytest.approx(9.0, rel=0.05)
    assert vc.importance.weight_variance(ns["log_w"]) < np.expm1(9.0)
