"""Checks behind the book's errata appendix (book/errata.md).

Each test confirms one correction of the source material: it derives the right answer independently
(SymPy algebra or calculus, Gauss-Hermite quadrature, or a seeded simulation) and shows that the
formula printed in the source disagrees with it. The errata page names the test of every entry;
tests/test_book.py checks that the two stay in sync.

Entry numbers (E1, E2, ...) are the ones used in book/errata.md. Chapter writers append new entries
at the end of this file with the next free number.
"""
from __future__ import annotations

import functools

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import sympy as sp
from scipy import integrate, stats

import vi_course as vc

# --- shared helpers ---------------------------------------------------------------------------


def gauss_hermite_expectation(f, mean, sd, n_nodes=40):
    """E[f(Z)] for Z ~ N(mean, sd^2) by Gauss-Hermite quadrature (exact for polynomials of degree
    below 2 n_nodes)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)  # weight exp(-x^2 / 2)
    values = np.array([f(mean + sd * t) for t in nodes])
    return np.tensordot(weights, values, axes=1) / np.sqrt(2.0 * np.pi)


_T = sp.symbols("t", real=True)


@functools.lru_cache(maxsize=None)
def _standard_normal_moment(k):
    """E[T^k] for T ~ N(0, 1), by symbolic integration against the standard normal density."""
    density = sp.exp(-_T**2 / 2) / sp.sqrt(2 * sp.pi)
    return sp.integrate(_T**k * density, (_T, -sp.oo, sp.oo))


def sympy_gaussian_expectation(expr, z, mean, var):
    """E[expr] for z ~ N(mean, var), where expr is a polynomial in z (coefficients may involve
    other symbols and logarithms): substitute z = mean + sqrt(var) t and integrate each power of t
    against the standard normal density."""
    shifted = sp.expand(sp.expand_log(expr, force=True).subs(z, mean + sp.sqrt(var) * _T))
    poly = sp.Poly(shifted, _T)
    total = sum(coeff * _standard_normal_moment(k) for (k,), coeff in poly.terms())
    return sp.simplify(total)


# --- E1: lecture eq. (59), the bivariate "posterior" ------------------------------------------


def test_e01_eq59_density_has_marginal_variance_sigma2_over_1_minus_rho2():
    z1, z2 = sp.symbols("z1 z2", real=True)
    sigma = sp.symbols("sigma", positive=True)
    rho = sp.symbols("rho", real=True)
    # Lecture eq. (59): log density up to a constant.
    log_density = -z1**2 / (2 * sigma**2) - z2**2 / (2 * sigma**2) + rho * z1 * z2 / sigma**2
    # For a Gaussian, log N(z; 0, S) = -z^T S^{-1} z / 2 + const, so the precision is minus the Hessian.
    precision = -sp.hessian(log_density, (z1, z2))
    covariance = sp.simplify(precision.inv())
    expected = sigma**2 / (1 - rho**2) * sp.Matrix([[1, rho], [rho, 1]])
    assert sp.simplify(covariance - expected) == sp.zeros(2, 2)
    # ... so the marginal variance is sigma^2 / (1 - rho^2), not sigma^2 (unless rho = 0).
    assert sp.simplify(covariance[0, 0] - sigma**2) != 0

    # Independent numerical confirmation: integrate the unnormalised density of eq. (59).
    s, r = 1.3, 0.6
    dens = lambda a, b: np.exp(-(a**2 + b**2) / (2 * s**2) + r * a * b / s**2)  # noqa: E731
    box = 12 * s / np.sqrt(1 - r**2)
    mass = integrate.dblquad(lambda b, a: dens(a, b), -box, box, -box, box)[0]
    second = integrate.dblquad(lambda b, a: a**2 * dens(a, b), -box, box, -box, box)[0]
    assert second / mass == pytest.approx(s**2 / (1 - r**2), rel=1e-6)


def test_e01_course_target_has_the_stated_precision():
    sigma = sp.symbols("sigma", positive=True)
    rho = sp.symbols("rho", real=True)
    covariance = sigma**2 * sp.Matrix([[1, rho], [rho, 1]])
    precision = sp.Matrix([[1, -rho], [-rho, 1]]) / (sigma**2 * (1 - rho**2))
    assert sp.simplify(covariance * precision) == sp.eye(2)

    # The library's target uses this covariance: minus the Hessian of its log density is the precision.
    s, r = 0.7, 0.9
    model = vc.models.CorrelatedGaussian(sigma=s, rho=r)
    hess = autograd.hessian(lambda z: model.log_joint(z.reshape(1, 2))[0])(np.array([0.3, -0.2]))
    expected = np.array([[1.0, -r], [-r, 1.0]]) / (s**2 * (1 - r**2))
    np.testing.assert_allclose(-hess, expected, rtol=1e-10)


# --- E2: lecture eq. (62), derivative of the mean-field KL --------------------------------------


def test_e02_eq62_derivative_of_mean_field_kl():
    nu, sigma = sp.symbols("nu sigma", positive=True)
    rho = sp.symbols("rho", real=True)
    # KL(q || p) for q = N(0, nu I), p = N(0, S) with S = sigma^2 [[1, rho], [rho, 1]], in closed form:
    # KL = (tr(S^{-1} nu I) - d + log det S - log det(nu I)) / 2 with d = 2.
    S = sigma**2 * sp.Matrix([[1, rho], [rho, 1]])
    kl = (sp.trace(S.inv() * nu) - 2 + sp.log(S.det()) - sp.log(nu**2)) / 2
    # Eq. (61) up to constants: 2 KL = -log nu^2 + 2 nu / (sigma^2 (1 - rho^2)) + const.
    eq61 = -sp.log(nu**2) + 2 * nu / (sigma**2 * (1 - rho**2))
    assert sp.simplify(sp.diff(2 * kl - eq61, nu)) == 0
    # The derivative of eq. (61) ...
    derivative = sp.diff(eq61, nu)
    correct = -2 / nu + 2 / (sigma**2 * (1 - rho**2))
    printed = +2 / nu - 2 / (sigma**2 * (1 - rho**2))  # lecture eq. (62)
    assert sp.simplify(derivative - correct) == 0
    assert sp.simplify(derivative - printed) != 0
    # ... vanishes at nu = sigma^2 (1 - rho^2) (eq. 63), which is a minimum.
    (root,) = sp.solve(sp.Eq(correct, 0), nu)
    assert sp.simplify(root - sigma**2 * (1 - rho**2)) == 0
    assert sp.diff(eq61, nu, 2).is_positive  # 2 / nu^2 > 0 for every nu > 0


# --- E3: importance weights of two shifted Gaussians ------------------------------------------


def test_e03_importance_weights_of_shifted_gaussians():
    z, mu_p, mu_q = sp.symbols("z mu_p mu_q", real=True)
    sigma = sp.symbols("sigma", positive=True)
    log_p = -(z - mu_p) ** 2 / (2 * sigma**2)  # common normalisers cancel in the ratio
    log_q = -(z - mu_q) ** 2 / (2 * sigma**2)
    log_w = sp.expand(log_p - log_q)
    # log w is linear in z: its z-dependent part is + z (mu_p - mu_q) / sigma^2.
    assert sp.simplify(sp.diff(log_w, z) - (mu_p - mu_q) / sigma**2) == 0
    assert sp.simplify(sp.diff(log_w, z) + (mu_p - mu_q) / sigma**2) != 0

    # Numerically: the weights grow with z when mu_p > mu_q.
    rng = np.random.default_rng(3)
    zs = rng.normal(0.0, 1.0, size=10_000)
    log_weights = stats.norm(1.0, 1.0).logpdf(zs) - stats.norm(0.0, 1.0).logpdf(zs)
    slope = np.polyfit(zs, log_weights, 1)[0]
    assert slope == pytest.approx(+1.0, abs=1e-9)


# --- E4: lecture eqs. (52)-(53), the REINFORCE estimator ---------------------------------------


def test_e04_reinforce_gradient_has_separate_score_and_direct_terms():
    z, theta = sp.symbols("z theta", real=True)
    # q_theta = N(theta, 1) and a test function that depends on theta: g_theta(z) = theta z^2.
    log_q = -(z - theta) ** 2 / 2 - sp.log(2 * sp.pi) / 2
    g = theta * z**2
    exact = sp.diff(sympy_gaussian_expectation(g, z, theta, 1), theta)  # d/dtheta E[g] = 3 theta^2 + 1
    assert sp.simplify(exact - (3 * theta**2 + 1)) == 0

    score = sp.diff(log_q, theta)
    correct = sympy_gaussian_expectation(g * score + sp.diff(g, theta), z, theta, 1)
    printed = sympy_gaussian_expectation(sp.diff((log_q + 1) * g, theta), z, theta, 1)  # eq. (52)
    assert sp.simplify(correct - exact) == 0
    assert sp.simplify(printed - exact) != 0


def test_e04_reinforce_on_the_elbo_matches_the_exact_gradient():
    # ELBO gradient for q = N(m, s^2) and target p = N(a, b^2): g = log p(z) - log q_theta(z).
    a, b = 0.8, 1.7
    m, s = -0.4, 0.6

    def log_q(params, z):
        mean, log_sd = params
        return -0.5 * ((z - mean) / anp.exp(log_sd)) ** 2 - log_sd - 0.5 * np.log(2 * np.pi)

    def log_p(z):
        return -0.5 * ((z - a) / b) ** 2 - np.log(b) - 0.5 * np.log(2 * np.pi)

    def closed_form_elbo(params):  # -KL(N(m, s^2) || N(a, b^2))
        mean, log_sd = params
        sd = anp.exp(log_sd)
        return -(anp.log(b / sd) + (sd**2 + (mean - a) ** 2) / (2 * b**2) - 0.5)

    params = anp.array([m, np.log(s)])
    exact = autograd.grad(closed_form_elbo)(params)

    g = lambda z, p: log_p(z) - log_q(p, z)  # noqa: E731
    score = autograd.grad(log_q, 0)
    dg = autograd.grad(g, 1)

    def correct_integrand(z):
        return g(z, params) * score(params, z) + dg(z, params)

    def printed_integrand(z):  # grad of (log q + 1) g, lecture eq. (52)
        return autograd.grad(lambda p: (log_q(p, z) + 1.0) * g(z, p))(params)

    correct = gauss_hermite_expectation(correct_integrand, m, s)
    printed = gauss_hermite_expectation(printed_integrand, m, s)
    np.testing.assert_allclose(correct, exact, rtol=1e-10, atol=1e-12)
    assert np.max(np.abs(printed - exact)) > 0.1


# --- E5: lecture eq. (47), the Robbins-Monro condition ----------------------------------------


def test_e05_robbins_monro_schedule_meets_the_strict_conditions():
    n = sp.symbols("n", integer=True, positive=True)
    alpha = sp.symbols("alpha", positive=True)
    for delta in (sp.Integer(1), sp.Rational(1, 10)):
        eta = alpha / (1 + delta * n)  # lecture eq. (48)
        assert sp.summation(eta, (n, 1, sp.oo)) == sp.oo
        total = sp.summation(eta**2, (n, 1, sp.oo))
        assert total.is_finite and total.is_positive
    # "sum eta_n^2 <= infinity" holds for every sequence, including a constant step ...
    assert sp.summation(alpha**2, (n, 1, sp.oo)) == sp.oo


def test_e05_constant_steps_do_not_converge_but_robbins_monro_steps_do():
    # ... and a constant step does not make SGD converge. Minimise E[(theta - xi)^2] / 2 with
    # xi ~ N(0, 1) from noisy gradients theta - xi; the minimiser is theta* = 0.
    rng = np.random.default_rng(5)
    n_chains, n_steps = 400, 20_000
    theta_const = np.full(n_chains, 3.0)
    theta_rm = np.full(n_chains, 3.0)
    eta_const = 0.1
    for step in range(n_steps):
        xi = rng.normal(size=(2, n_chains))
        theta_const -= eta_const * (theta_const - xi[0])
        theta_rm -= 1.0 / (1.0 + step) * (theta_rm - xi[1])  # alpha = delta = 1
    # Constant step: stationary variance eta / (2 - eta) = 0.0526..., it never shrinks.
    assert np.mean(theta_const**2) == pytest.approx(eta_const / (2 - eta_const), rel=0.2)
    # Robbins-Monro step: theta_n is the running mean of xi, variance 1 / n.
    assert np.mean(theta_rm**2) < 5.0 / n_steps


# --- E6: ADVI page, the entropy under a change of variables -------------------------------------


@pytest.mark.parametrize("mu,sd", [(0.0, 1.0), (1.5, 0.4), (-2.0, 2.5)])
def test_e06_entropy_changes_under_a_change_of_variables(mu, sd):
    # eta ~ N(mu, sd^2) and z = T^{-1}(eta) = exp(eta), so z is log-normal and
    # log|det J_{T^{-1}}(eta)| = eta, whose expectation is mu.
    h_eta = stats.norm(mu, sd).entropy()
    h_z = stats.lognorm(s=sd, scale=np.exp(mu)).entropy()  # SciPy's own log-normal entropy
    assert h_z == pytest.approx(h_eta + mu, abs=1e-12)
    # Monte Carlo from samples of z and SciPy's log-normal density, as an independent check.
    rng = np.random.default_rng(6)
    zs = np.exp(rng.normal(mu, sd, size=400_000))
    h_mc = -np.mean(stats.lognorm(s=sd, scale=np.exp(mu)).logpdf(zs))
    assert h_mc == pytest.approx(h_eta + mu, abs=0.02)
    if mu != 0.0:
        assert abs(h_z - h_eta) > 1.0  # not invariant


def test_e06_entropy_change_of_variables_symbolically():
    eta, mu = sp.symbols("eta mu", real=True)
    sd = sp.symbols("sd", positive=True)
    log_q_eta = -(eta - mu) ** 2 / (2 * sd**2) - sp.log(2 * sp.pi * sd**2) / 2
    # Density of z = exp(eta) at z = exp(eta): q_z(z) = q_eta(log z) / z, so
    # H[q(z)] = -E[log q_z(exp(eta))] = -E[log q_eta(eta) - eta].
    h_z = sympy_gaussian_expectation(-(log_q_eta - eta), eta, mu, sd**2)
    h_eta = sp.log(2 * sp.pi * sp.E * sd**2) / 2
    assert sp.simplify(h_z - (h_eta + mu)) == 0


# --- E7: ADVI page, the Jacobian term of the ELBO ---------------------------------------------


@pytest.mark.parametrize("mu,sd", [(0.2, 0.3), (1.0, 0.5), (-0.5, 0.8)])
def test_e07_jacobian_term_enters_as_plus_expected_log_abs_det(mu, sd):
    # Target on the positive half-line: p(z) = InverseGamma(2, 3) (normalised, so log p(D) = 0).
    # Family: eta ~ N(mu, sd^2), z = T^{-1}(eta) = exp(eta) (a log-normal q(z)).
    target = stats.invgamma(a=2.0, scale=3.0)
    q_z = stats.lognorm(s=sd, scale=np.exp(mu))
    # ELBO computed in the constrained space, by quadrature over z: E_q[log p(z) - log q(z)].
    elbo_z = integrate.quad(lambda z: q_z.pdf(z) * (target.logpdf(z) - q_z.logpdf(z)), 0, np.inf,
                            limit=200)[0]

    def e_eta(f):
        return gauss_hermite_expectation(f, mu, sd, n_nodes=80)

    h_eta = stats.norm(mu, sd).entropy()
    # Corrected formula: E[log p(T^{-1}(eta))] + E[log |det J_{T^{-1}}(eta)|] + H[q(eta)].
    corrected = e_eta(lambda e: target.logpdf(np.exp(e))) + e_eta(lambda e: e) + h_eta
    # The page: E[log p(T^{-1}(eta))] - E[|det J_{T^{-1}}(eta)|] + H[q(eta)].
    printed = e_eta(lambda e: target.logpdf(np.exp(e))) - e_eta(np.exp) + h_eta
    assert corrected == pytest.approx(elbo_z, abs=1e-7)
    assert abs(printed - elbo_z) > 0.1
    assert corrected <= 0.0  # a lower bound on log p(D) = 0


# --- E8: ADVI page, the posterior is not a product of single-datum posteriors ------------------


def test_e08_posterior_is_not_the_product_of_per_datum_posteriors():
    z = sp.symbols("z", real=True)
    xs = sp.symbols("x1:4", real=True)  # three observations
    n = len(xs)

    def log_normal(v, mean, var):
        return -(v - mean) ** 2 / (2 * var) - sp.log(2 * sp.pi * var) / 2

    log_prior = log_normal(z, 0, 1)
    log_lik = [log_normal(x, z, 1) for x in xs]
    # Single-datum posteriors p(z | x_i) = N(x_i / 2, 1 / 2) (conjugate update with one datum).
    log_post_single = [log_normal(z, x / 2, sp.Rational(1, 2)) for x in xs]
    for lp, ll, x in zip(log_post_single, log_lik, xs):
        # check them: p(z | x_i) is proportional to p(z) p(x_i | z)
        assert sp.diff(sp.expand(lp - log_prior - ll), z) == 0
    # The posterior p(z | D) is proportional to p(z) prod_i p(x_i | z) ...
    log_joint = log_prior + sum(log_lik)
    # ... which differs from prod_i p(z | x_i) by a non-constant factor (the prior counted n times):
    assert sp.diff(sp.expand(log_joint - sum(log_post_single)), z) != 0
    # The correct relation: p(z | D) is proportional to p(z)^(1 - n) prod_i p(z | x_i).
    assert sp.diff(sp.expand(log_joint - (1 - n) * log_prior - sum(log_post_single)), z) == 0

    # Numerically, with the library's exact posterior: precision 1 + n, not 2 n.
    x = np.array([0.3, -1.2, 2.0])
    _, cov = vc.models.ConjugateGaussian(x, prior_var=1.0, noise_var=1.0).posterior()
    assert 1.0 / cov[0, 0] == pytest.approx(1.0 + n)
    assert 1.0 / cov[0, 0] != pytest.approx(2.0 * n)


# --- E9: ADVI page, the Gaussian reparameterisation ---------------------------------------------


def test_e09_reparameterisation_base_and_transform():
    l11, l22 = sp.symbols("l11 l22", positive=True)
    l21, m1, m2 = sp.symbols("l21 m1 m2", real=True)
    L = sp.Matrix([[l11, 0], [l21, l22]])
    mu = sp.Matrix([m1, m2])
    # For eps with mean m and covariance I, A eps + mu has mean A m + mu and covariance A A^T.
    base_correct = sp.zeros(2, 1)
    base_printed = sp.ones(2, 1)  # N(1_d, I) on the page
    # Corrected: z = mu + L eps, eps ~ N(0, I): mean mu, covariance L L^T = Sigma.
    assert L * base_correct + mu == mu
    sigma = L * L.T
    # Printed: z = mu + L^T eps, eps ~ N(1_d, I): wrong mean and wrong covariance.
    assert sp.simplify(L.T * base_printed + mu - mu) != sp.zeros(2, 1)
    assert sp.simplify(L.T * L - sigma) != sp.zeros(2, 2)

    # Seeded simulation of the corrected reparameterisation.
    rng = np.random.default_rng(9)
    Sigma = np.array([[2.0, 0.9], [0.9, 1.0]])
    chol = np.linalg.cholesky(Sigma)
    mean = np.array([1.0, -2.0])
    eps = rng.standard_normal(size=(400_000, 2))
    zs = mean + eps @ chol.T  # row-wise z = mu + L eps
    np.testing.assert_allclose(zs.mean(axis=0), mean, atol=0.01)
    np.testing.assert_allclose(np.cov(zs, rowvar=False), Sigma, atol=0.02)
    wrong = mean + (eps + 1.0) @ chol  # row-wise z = mu + L^T eps with eps ~ N(1, I)
    assert np.max(np.abs(np.cov(wrong, rowvar=False) - Sigma)) > 0.3
    assert np.max(np.abs(wrong.mean(axis=0) - mean)) > 0.5


# --- E10: lecture eq. (1), the denominator of Bayes' rule ------------------------------------


def test_e10_bayes_denominator_is_the_evidence_of_all_the_data():
    x = np.array([0.4, 1.1, 2.3, 1.7])
    model = vc.models.ConjugateGaussian(x, prior_var=1.0, noise_var=1.0)

    def joint(z):
        return np.exp(model.log_joint(np.array([[z]]))[0])

    # p(D) = int p(D | z) p(z) dz (eq. 2), by quadrature, agrees with the exact evidence ...
    p_data = integrate.quad(joint, -np.inf, np.inf)[0]
    assert np.log(p_data) == pytest.approx(model.log_evidence(), abs=1e-9)
    # ... and normalises eq. (1): the posterior integrates to one with p(D) in the denominator,
    assert integrate.quad(lambda z: joint(z) / p_data, -np.inf, np.inf)[0] == pytest.approx(1.0)
    # while the marginal density of a single data point, p(x_1) = N(x_1; 0, 2), does not.
    p_x1 = stats.norm(0.0, np.sqrt(2.0)).pdf(x[0])
    assert integrate.quad(lambda z: joint(z) / p_x1, -np.inf, np.inf)[0] != pytest.approx(1.0)


# --- E11: mixture notes, the denominator of p(z | x) --------------------------------------------


def test_e11_evidence_integrates_the_joint_over_the_latent_variable():
    z, x = sp.symbols("z x", real=True)
    # A joint where the two integrals differ: z ~ N(0, 1), x | z ~ N(2 z, 1).
    joint = sp.exp(-z**2 / 2 - (x - 2 * z) ** 2 / 2) / (2 * sp.pi)
    over_z = sp.simplify(sp.integrate(joint, (z, -sp.oo, sp.oo)))  # p(x), a function of x
    over_x = sp.simplify(sp.integrate(joint, (x, -sp.oo, sp.oo)))  # p(z), a function of z
    assert sp.simplify(over_z - sp.exp(-x**2 / 10) / sp.sqrt(10 * sp.pi)) == 0
    # With the evidence in the denominator, p(z | x) is a density in z ...
    assert sp.simplify(sp.integrate(joint / over_z, (z, -sp.oo, sp.oo))) == 1
    # ... with the printed denominator it is p(x | z), which integrates over z to 1/2 here.
    assert sp.simplify(sp.integrate(joint / over_x, (z, -sp.oo, sp.oo))) == sp.Rational(1, 2)


# --- Chapter writers: append new entries below (E12, E13, ...), one test per correction. --------


# --- E14: lecture Exercise 2.5, the data index of the log joint --------------------------------


@pytest.mark.parametrize("n_data", [1, 3])
def test_e14_exercise_2_5_normaliser_fits_k_likelihood_terms_and_one_prior(n_data):
    # Exercise 2.5: log p(z, D) = -z^2/2 - sum_k (x_k - z)^2/2 - (K + 1)/2 log 2 pi, D = (x_1..x_K).
    # A joint density of (z, D) integrates to 1 over z and all the data. With the sum over
    # k = 1..K (one prior factor, K likelihood factors) it does; with the printed k = 0..K there is
    # an extra Gaussian factor in a variable x_0 and the integral is sqrt(2 pi), not 1.
    z = sp.symbols("z", real=True)
    K = n_data

    def total_mass(first_index):
        xs = sp.symbols(f"x{first_index}:{K + 1}", real=True)
        # the density is exp(-z^2/2) prod_k exp(-(x_k - z)^2/2) (2 pi)^(-(K+1)/2): integrate each
        # data factor over its own x_k (the result does not depend on z), then the prior factor over z
        mass = (2 * sp.pi) ** sp.Rational(-(K + 1), 2)
        for x in xs:
            mass *= sp.integrate(sp.exp(-(x - z) ** 2 / 2), (x, -sp.oo, sp.oo))
        assert not mass.has(z)
        return sp.simplify(mass * sp.integrate(sp.exp(-z**2 / 2), (z, -sp.oo, sp.oo)))

    assert total_mass(1) == 1
    assert sp.simplify(total_mass(0) - sp.sqrt(2 * sp.pi)) == 0


# --- E17: lecture text before eq. (20), the KL divergence in the gap of the ELBO -----------------


def test_e17_elbo_gap_is_the_kl_to_the_posterior_not_the_prior():
    # Model: z ~ N(0, 1), x | z ~ N(z, 1); posterior N(x/2, 1/2), evidence N(x; 0, 2). q = N(m, v).
    z, x, m = sp.symbols("z x m", real=True)
    v = sp.symbols("v", positive=True)

    def log_normal(value, mean, var):
        return -(value - mean) ** 2 / (2 * var) - sp.log(2 * sp.pi * var) / 2

    log_q = log_normal(z, m, v)
    log_prior = log_normal(z, 0, 1)
    log_joint = log_prior + log_normal(x, z, 1)
    log_posterior = log_normal(z, x / 2, sp.Rational(1, 2))
    log_evidence = log_normal(x, 0, 2)
    # the posterior is the joint divided by the evidence
    assert sp.simplify(sp.expand(log_joint - log_evidence - log_posterior)) == 0

    elbo = sympy_gaussian_expectation(log_joint - log_q, z, m, v)
    kl_posterior = sympy_gaussian_expectation(log_q - log_posterior, z, m, v)
    kl_prior = sympy_gaussian_expectation(log_q - log_prior, z, m, v)
    # eq. (20): log p(D) = ELBO + KL(q || p(z | D)) for every q ...
    assert sp.simplify(elbo + kl_posterior - log_evidence) == 0
    # ... while the KL divergence to the prior does not close the gap: ELBO + KL(q || p(z)) is the
    # expected log likelihood, which depends on q and differs from log p(D).
    gap = sp.simplify(elbo + kl_prior - log_evidence)
    assert gap != 0
    assert sp.diff(gap, m) != 0 and sp.diff(gap, v) != 0
    assert gap.subs({x: 1, m: 0, v: 1}).evalf() != 0


# --- E26: lecture text after eq. (34), the two terms of the regulariser --------------------------


def test_e26_regulariser_is_minus_expected_log_prior_minus_entropy():
    # R = KL(q || p(z)) for q = N(m, v) and a Gaussian prior N(m0, v0), from the definition.
    z, m, m0 = sp.symbols("z m m0", real=True)
    v, v0 = sp.symbols("v v0", positive=True)

    def log_normal(value, mean, var):
        return -(value - mean) ** 2 / (2 * var) - sp.log(2 * sp.pi * var) / 2

    log_q, log_prior = log_normal(z, m, v), log_normal(z, m0, v0)
    regulariser = sympy_gaussian_expectation(log_q - log_prior, z, m, v)
    expected_log_prior = sympy_gaussian_expectation(log_prior, z, m, v)
    entropy = sympy_gaussian_expectation(-log_q, z, m, v)
    assert sp.simplify(entropy - sp.log(2 * sp.pi * sp.E * v) / 2) == 0
    # Correct: R = -E_q[log p(z)] - H[q], so -R = E_q[log p(z)] + H[q] is what enters the ELBO.
    assert sp.simplify(regulariser - (-expected_log_prior - entropy)) == 0
    # The lecture's reading, R = E_q[log p(z)] + E_q[-log q(z)], is a different function ...
    printed = expected_log_prior + entropy
    assert sp.simplify(regulariser - printed) != 0
    # ... and, subtracted in the ELBO, it would reward a narrow q: d(-R)/dv > 0 with the correct R
    # (the entropy widens q) but d(-printed)/dv < 0 when the prior is much wider than q.
    point = {m: 0, m0: 0, v: sp.Rational(1, 2), v0: 10}
    assert sp.diff(-regulariser, v).subs(point) > 0
    assert sp.diff(-printed, v).subs(point) < 0


# --- E27: ADVI page, "Examples": the posterior is the joint divided by the evidence --------------


def test_e27_the_joint_is_not_the_posterior_it_must_be_divided_by_the_evidence():
    # First example of the page: m ~ N(0, 1), x_i | m ~ N(m, 1), here with three observations.
    m = sp.symbols("m", real=True)
    xs = [sp.Rational(1, 2), sp.Rational(3, 2), sp.Integer(1)]
    n = len(xs)

    def normal_pdf(value, mean, var):
        return sp.exp(-(value - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)

    joint = normal_pdf(m, 0, 1) * sp.Mul(*[normal_pdf(x, m, 1) for x in xs])
    # The page writes p(m | x) = p(m) prod_i p(x_i | m); its integral over m is the evidence p(x),
    evidence = sp.simplify(sp.integrate(joint, (m, -sp.oo, sp.oo)).rewrite(sp.erf))
    # which is the N(0, I + 11^T) density of the data (checked with SciPy), not 1:
    cov = np.eye(n) + np.ones((n, n))
    scipy_evidence = stats.multivariate_normal(np.zeros(n), cov).pdf([float(x) for x in xs])
    assert float(evidence) == pytest.approx(scipy_evidence, rel=1e-12)
    assert abs(float(evidence) - 1.0) > 0.9
    # Divided by p(x), the joint is the conjugate posterior N(sum x / (n + 1), 1 / (n + 1)).
    posterior = normal_pdf(m, sum(xs) / (n + 1), sp.Rational(1, n + 1))
    assert sp.simplify(joint / evidence - posterior) == 0

    # Second example: s ~ InverseGamma(2, 3), m | s ~ N(0, s), x_i | s, m ~ N(m, s). The page's
    # "posterior" p(s) p(m | s) prod_i p(x_i | s, m) integrates over (s, m) to p(x), not to 1.
    x = np.array([0.4, 1.9, 1.1, -0.3])
    prior_s = stats.invgamma(a=2.0, scale=3.0)

    # Riemann sum on a grid in (log s, m); ds = s d(log s).
    log_s, m_grid = np.meshgrid(np.linspace(-6.0, 6.0, 801), np.linspace(-15.0, 15.0, 801), indexing="ij")
    s_grid = np.exp(log_s)
    log_page = (prior_s.logpdf(s_grid) + stats.norm(0.0, np.sqrt(s_grid)).logpdf(m_grid)
                + sum(stats.norm(m_grid, np.sqrt(s_grid)).logpdf(xi) for xi in x))
    cell = (log_s[1, 0] - log_s[0, 0]) * (m_grid[0, 1] - m_grid[0, 0])
    mass = np.sum(np.exp(log_page) * s_grid) * cell
    model = vc.models.InverseGammaNormal(x, a=2.0, b=3.0)
    assert np.log(mass) == pytest.approx(model.log_evidence(), abs=1e-6)
    assert abs(mass - 1.0) > 0.9


# --- E28: ADVI page, the final ELBO estimate: one Jacobian term per draw, not per datum ----------


@pytest.mark.parametrize("mu,sd", [(0.3, 0.4), (1.0, 0.3)])
def test_e28_jacobian_term_counts_once_per_draw_not_once_per_observation(mu, sd):
    # Model with a positive latent: s ~ InverseGamma(2, 3), x_i | s ~ N(0, s), four observations.
    # Family: eta ~ N(mu, sd^2), s = f^{-1}(eta) = exp(eta), so log|det J_{f^{-1}}(eta)| = eta.
    x = np.array([0.8, -1.5, 2.1, 0.3])
    n = x.size
    prior = stats.invgamma(a=2.0, scale=3.0)

    def log_lik_i(s):  # log p(x_i | s) for every i, shape (n,) + s.shape
        s = np.asarray(s, dtype=float)
        return stats.norm(0.0, np.sqrt(s)).logpdf(x.reshape((n,) + (1,) * s.ndim))

    def log_joint(s):  # log p(x_1..n, s) = log p(s) + sum_i log p(x_i | s)
        return prior.logpdf(s) + log_lik_i(s).sum(axis=0)

    q_s = stats.lognorm(s=sd, scale=np.exp(mu))
    # The ELBO in the constrained space by quadrature over s: E_q[log p(x, s)] + H[q(s)].
    elbo_s = integrate.quad(lambda s: q_s.pdf(s) * log_joint(s), 0, np.inf, limit=200)[0] + q_s.entropy()

    def e_eta(f):
        return gauss_hermite_expectation(f, mu, sd, n_nodes=80)

    h_eta = stats.norm(mu, sd).entropy()
    # Corrected estimate (in expectation): E[log p(x_1..n, f^{-1}(eta)) + log|det J|] + H[N].
    corrected = e_eta(lambda e: log_joint(np.exp(e)) + e) + h_eta
    # The page: sum_i (log p(x_i, f^{-1}(eta)) - log|det J|) + H[N], with p(x_i, s) = p(s) p(x_i | s).
    page = e_eta(lambda e: np.sum(prior.logpdf(np.exp(e)) + log_lik_i(np.exp(e)) - e, axis=0)) + h_eta
    # The page with the sign of E7 and the joint of E8 repaired, but the Jacobian still inside sum_i:
    inside_sum = e_eta(lambda e: log_joint(np.exp(e)) + n * e) + h_eta
    assert corrected == pytest.approx(elbo_s, abs=1e-7)
    assert abs(page - elbo_s) > 1.0
    assert inside_sum - elbo_s == pytest.approx((n - 1) * mu, abs=1e-7)
    assert abs(inside_sum - elbo_s) > 0.5
