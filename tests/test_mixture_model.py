"""The Bayesian Gaussian mixture model (vi_course.models.GaussianMixture).

The enumerated evidence is checked against numerical integration over the means, the log joint
against scipy's normal densities, the marginal over assignments against brute-force summation, and
the exact posterior densities against their normalisation and against each other. The last tests
confirm the corrections to the mixture notes (seed 001) listed in the errata appendix.
"""
from __future__ import annotations

import itertools
import math

import autograd
import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

from vi_course.models import ConjugateGaussian, GaussianMixture

X5 = np.array([-2.3, -1.6, 0.4, 1.9, 2.7])


def grid_log_integral(log_f, lows, highs, n_bins):
    """log of the midpoint-rule integral of exp(log_f) over a box (any dimension)."""
    axes = [lo + (hi - lo) * (np.arange(n_bins) + 0.5) / n_bins for lo, hi in zip(lows, highs)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
    log_cell = sum(math.log((hi - lo) / n_bins) for lo, hi in zip(lows, highs))
    return float(logsumexp(log_f(mesh)) + log_cell)


@pytest.mark.parametrize("prior_var", [0.3, 2.0, 10.0])
def test_enumerated_evidence_equals_integral_over_the_means_k2(prior_var):
    model = GaussianMixture(X5, 2, prior_var)
    half = 6.0 * math.sqrt(prior_var) + 4.0
    numeric = grid_log_integral(model.log_marginal_means, [-half, -half], [half, half], 250)
    assert model.exact_log_evidence() == pytest.approx(numeric, abs=1e-8)


def test_enumerated_evidence_equals_integral_over_the_means_k3():
    x = X5[:4]
    model = GaussianMixture(x, 3, 1.5)
    numeric = grid_log_integral(model.log_marginal_means, [-7.0] * 3, [7.0] * 3, 60)
    assert model.exact_log_evidence() == pytest.approx(numeric, abs=1e-8)


def test_enumerated_evidence_against_adaptive_cubature():
    x = np.array([-1.0, 0.5, 2.0])
    model = GaussianMixture(x, 2, 2.0)
    res = integrate.cubature(lambda mu: np.exp(model.log_marginal_means(mu)), [-12.0, -12.0],
                             [12.0, 12.0], rtol=1e-11, atol=0.0)
    assert res.status == "converged"
    assert model.exact_log_evidence() == pytest.approx(math.log(res.estimate), abs=1e-9)


@pytest.mark.parametrize("prior_var", [0.5, 3.0])
def test_one_component_is_the_conjugate_gaussian(prior_var):
    model = GaussianMixture(X5, 1, prior_var)
    conj = ConjugateGaussian(X5, prior_var, 1.0)
    assert model.exact_log_evidence() == pytest.approx(conj.log_evidence(), rel=1e-12)
    z = np.linspace(-2, 2, 5)[:, None]
    np.testing.assert_allclose(model.log_marginal_means(z), conj.log_joint(z), rtol=1e-12)


def test_log_joint_against_scipy_densities():
    rng = np.random.default_rng(0)
    model = GaussianMixture(X5, 3, 2.0)
    mu = rng.normal(size=(6, 3))
    c = rng.integers(0, 3, size=(6, X5.size))
    expected = [stats.norm(0, math.sqrt(2.0)).logpdf(mu[s]).sum()
                + np.log(np.full(X5.size, 1 / 3)).sum()
                + stats.norm(mu[s][c[s]], 1.0).logpdf(X5).sum() for s in range(6)]
    np.testing.assert_allclose(model.log_joint(mu, c), expected, rtol=1e-12)
    # one row of either argument is broadcast against a batch of the other
    np.testing.assert_allclose(model.log_joint(mu[0], c)[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(model.log_joint(mu, c[2])[2], expected[2], rtol=1e-12)


def test_log_marginal_means_sums_the_log_joint_over_all_assignments():
    rng = np.random.default_rng(1)
    x = X5[:4]
    model = GaussianMixture(x, 3, 1.0)
    mu = rng.normal(size=(5, 3))
    every_c = np.array(list(itertools.product(range(3), repeat=x.size)))
    brute = [logsumexp(model.log_joint(mu[s], every_c)) for s in range(5)]
    np.testing.assert_allclose(model.log_marginal_means(mu), brute, rtol=1e-12)
    # large batches are processed in blocks with the same result
    many = rng.normal(size=(400_000, 3))  # more than one block of 2**22 / (n K) rows
    np.testing.assert_allclose(model.log_marginal_means(many)[:5], model.log_marginal_means(many[:5]))


def test_log_marginal_means_is_differentiable_with_autograd():
    model = GaussianMixture(X5, 2, 3.0)
    mu = np.array([[-1.0, 1.5]])
    grad = autograd.grad(lambda z: model.log_marginal_means(z)[0])(mu)
    eps = 1e-6
    numeric = [(model.log_marginal_means(mu + eps * e)[0] - model.log_marginal_means(mu - eps * e)[0])
               / (2 * eps) for e in np.eye(2)[:, None, :]]
    np.testing.assert_allclose(grad[0], numeric, rtol=1e-6)


def test_exact_posterior_density_and_marginal_are_normalised_and_consistent():
    model = GaussianMixture(X5, 2, 4.0)
    g = np.linspace(-9, 9, 601)
    step = g[1] - g[0]
    mesh = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    joint = model.exact_posterior_means_density(mesh).reshape(g.size, g.size)
    assert joint.sum() * step ** 2 == pytest.approx(1.0, abs=1e-6)
    # the enumerated mixture-of-Gaussians marginal equals integrating the joint over mu_2 ...
    marginal = model.exact_posterior_marginal(g)
    np.testing.assert_allclose(marginal, joint.sum(axis=1) * step, atol=1e-8)
    assert marginal.sum() * step == pytest.approx(1.0, abs=1e-6)
    # ... and over mu_1 (exchangeable prior: every mean has the same marginal, with label switching)
    np.testing.assert_allclose(marginal, joint.sum(axis=0) * step, atol=1e-8)


def test_enumeration_refuses_large_problems():
    model = GaussianMixture(np.linspace(-1, 1, 17), 2, 1.0)
    with pytest.raises(ValueError, match=r"K\*\*n"):
        model.exact_log_evidence()
    with pytest.raises(ValueError, match=r"K\*\*n"):
        model.exact_posterior_marginal([0.0])
    # raising the limit is allowed (2**17 = 131072 assignments)
    assert np.isfinite(model.exact_log_evidence(max_assignments=2 ** 17))
    assert np.isfinite(GaussianMixture(np.linspace(-1, 1, 16), 2, 1.0).exact_log_evidence())


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: GaussianMixture([0.0, np.nan], 2, 1.0), "x"),
        (lambda: GaussianMixture(np.ones((2, 2)), 2, 1.0), "x"),
        (lambda: GaussianMixture([], 2, 1.0), "x"),
        (lambda: GaussianMixture([0.0], 0, 1.0), "n_components"),
        (lambda: GaussianMixture([0.0], 2, -1.0), "prior_var"),
        (lambda: GaussianMixture([0.0, 1.0], 2, 1.0).log_joint([[0.0, 1.0]], [[0, 2]]), "c"),
        (lambda: GaussianMixture([0.0, 1.0], 2, 1.0).log_joint([[0.0, 1.0]], [[0, 1, 1]]), "c"),
        (lambda: GaussianMixture([0.0, 1.0], 2, 1.0).log_joint([[0.0, 1.0]], [[0, 0.5]]), "c"),
        (lambda: GaussianMixture([0.0, 1.0], 2, 1.0).log_joint([[0.0, 1.0]] * 2, [[0, 1]] * 3), "mu and c"),
        (lambda: GaussianMixture([0.0, 1.0], 2, 1.0).log_joint([[0.0, 1.0, 2.0]], [[0, 1]]), "mu"),
        (lambda: GaussianMixture([0.0, 1.0], 2, 1.0).log_marginal_means([[0.0, np.nan]]), "mu"),
        (lambda: GaussianMixture([0.0, 1.0], 2, 1.0).exact_posterior_marginal([[0.0]]), "grid"),
        (lambda: GaussianMixture([0.0, 1.0], 2, 1.0).exact_log_evidence(0), "max_assignments"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# --------------------------------------------------------------------------------------------------
# errata of the mixture notes (seed 001), confirmed numerically


def test_erratum_evidence_needs_the_prior_of_the_whole_assignment_vector():
    # The notes write p(x) = sum_{c_i} p(c_i) int p(mu) prod_i p(x_i | c_i, mu) dmu, pulling one
    # factor p(c_i) = 1/K out of the sum. The sum runs over all K**n vectors c, each with prior
    # p(c) = prod_i p(c_i) = K**-n. Numerical integration over mu agrees with K**-n only.
    k, prior_var = 2, 2.0
    model = GaussianMixture(X5, k, prior_var)
    half = 6.0 * math.sqrt(prior_var) + 4.0
    numeric = grid_log_integral(model.log_marginal_means, [-half, -half], [half, half], 250)
    every_c = np.array(list(itertools.product(range(k), repeat=X5.size)))
    log_lik_given_c = []
    for c in every_c:  # int p(mu) prod_i p(x_i | c_i, mu) dmu, one conjugate integral per component
        total = 0.0
        for j in range(k):
            xs = X5[c == j]
            cov = np.eye(xs.size) + prior_var * np.ones((xs.size, xs.size))
            total += stats.multivariate_normal(np.zeros(xs.size), cov).logpdf(xs) if xs.size else 0.0
        log_lik_given_c.append(total)
    correct = logsumexp(log_lik_given_c) - X5.size * math.log(k)   # p(c) = K**-n inside the sum
    as_printed = logsumexp(log_lik_given_c) - math.log(k)         # one factor p(c_i) = 1/K
    assert correct == pytest.approx(numeric, abs=1e-6)
    assert correct == pytest.approx(model.exact_log_evidence(), abs=1e-10)
    assert as_printed - numeric == pytest.approx((X5.size - 1) * math.log(k), abs=1e-6)


def test_erratum_conditional_density_divides_by_the_integral_over_the_latents():
    # The notes write p(z | x) = p(z, x) / int p(z, x) dx. Integrating out the data gives the prior
    # p(z), not the evidence: the denominator is int p(z, x) dz = p(x). One point, K = 1, z = mu.
    prior_var, x_obs, z = 2.0, 1.3, 0.4
    def normal_pdf(v, mean, var):
        return math.exp(-0.5 * (v - mean) ** 2 / var) / math.sqrt(2 * math.pi * var)

    def joint(zz, xx):
        return normal_pdf(zz, 0.0, prior_var) * normal_pdf(xx, zz, 1.0)

    over_x = integrate.quad(lambda xx: joint(z, xx), -np.inf, np.inf)[0]
    over_z = integrate.quad(lambda zz: joint(zz, x_obs), -np.inf, np.inf)[0]
    assert over_x == pytest.approx(stats.norm(0, math.sqrt(prior_var)).pdf(z), rel=1e-9)  # = p(z)
    model = GaussianMixture([x_obs], 1, prior_var)
    assert math.log(over_z) == pytest.approx(model.exact_log_evidence(), abs=1e-9)         # = p(x)
    post_var = 1 / (1 / prior_var + 1)
    exact = stats.norm(post_var * x_obs, math.sqrt(post_var)).pdf(z)
    assert joint(z, x_obs) / over_z == pytest.approx(exact, rel=1e-9)
    assert abs(joint(z, x_obs) / over_x - exact) > 0.1


def test_erratum_joint_has_one_prior_factor_not_n():
    # The notes start from p(mu, c, x) = prod_i p(x_i, c_i, mu) = prod_i p(x_i | c_i, mu) p(c_i) p(mu),
    # which contains p(mu)**n; the correct joint, p(mu) prod_i p(c_i) p(x_i | c_i, mu), has one
    # factor p(mu) (the notes' last line). Checked by normalisation: only the latter integrates to 1.
    prior_var = 1.5
    model = GaussianMixture([0.0, 0.0], 1, prior_var)  # n = 2, K = 1: the data enter as x, the means as mu

    def log_p(mu, x1, x2, prior_power):
        return (prior_power * stats.norm(0, math.sqrt(prior_var)).logpdf(mu)
                + stats.norm(mu, 1).logpdf(x1) + stats.norm(mu, 1).logpdf(x2))

    def total_mass(prior_power):
        g = np.linspace(-12, 12, 81)
        step = g[1] - g[0]
        mu, x1, x2 = np.meshgrid(g, g, g, indexing="ij")
        return float(np.exp(log_p(mu, x1, x2, prior_power)).sum() * step ** 3)

    assert total_mass(1) == pytest.approx(1.0, abs=1e-6)
    assert abs(total_mass(2) - 1.0) > 0.1
    assert log_p(0.3, 0.0, 0.0, 1) == pytest.approx(float(model.log_joint([0.3], [0, 0])[0]), rel=1e-12)


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py)

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402

_GM = GaussianMixture(X5, 2, 2.0)

BAD_INPUT = [
    spec("GaussianMixture", GaussianMixture, dict(x=X5, n_components=2, prior_var=2.0),
         dict(x="data", n_components="int", prior_var="pos")),
    spec("log_prior", lambda mu: _GM.log_prior(mu), dict(mu=np.zeros((3, 2))), dict(mu=("samples", 2))),
    spec("log_marginal_means", lambda mu: _GM.log_marginal_means(mu), dict(mu=np.zeros((3, 2))),
         dict(mu=("samples", 2))),
    spec("log_joint", lambda mu, c: _GM.log_joint(mu, c), dict(mu=np.zeros((3, 2)), c=np.zeros((3, 5), int)),
         dict(mu=("samples", 2), c=("values", [np.full((3, 5), 2), np.full((3, 5), -1), np.full((3, 5), 0.5),
                                              np.full((3, 5), "a"), np.zeros((3, 4), int), None,
                                              np.full((3, 5), np.nan), np.zeros((3, 5), bool), "abc",
                                              np.zeros((2, 5), int)]))),
    spec("exact_log_evidence", lambda max_assignments: _GM.exact_log_evidence(max_assignments),
         dict(max_assignments=100), dict(max_assignments=("values", [0, -1, 2.5, "3", None, True, 8]))),
    spec("exact_posterior_marginal", lambda grid, max_assignments: _GM.exact_posterior_marginal(grid, max_assignments),
         dict(grid=np.linspace(-1, 1, 3), max_assignments=100), dict(grid="data", max_assignments="int")),
    spec("exact_posterior_means_density",
         lambda mu, max_assignments: _GM.exact_posterior_means_density(mu, max_assignments),
         dict(mu=np.zeros((3, 2)), max_assignments=100), dict(mu=("samples", 2), max_assignments="int")),
]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)
