"""Tests of vi_course.transforms (chapter "ADVI with constraining transforms").

Every property is checked against an independent computation: autograd derivatives, sympy
derivatives, scipy densities and numerical quadrature. The last class checks the corrections made to
the ADVI documentation page (errata appendix).
"""
import autograd.numpy as anp
import numpy as np
import pytest
import sympy as sp
from autograd import elementwise_grad, jacobian
from scipy import integrate, stats

from vi_course import transforms as tr

SUPPORTS = ["real", "positive", ("interval", 0.0, 1.0), ("interval", -2.0, 3.5), ("interval", 10.0, 10.5)]


def _random_inside(support, rng, size):
    """Points inside a support, drawn without using the transforms themselves."""
    if support == "real":
        return rng.normal(scale=5.0, size=size)
    if support == "positive":
        return np.exp(rng.uniform(-8.0, 8.0, size=size))
    _, a, b = support
    return a + (b - a) * rng.uniform(1e-6, 1.0 - 1e-6, size=size)


# ---------------------------------------------------------------------------------------------
# elementwise transforms
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("support", SUPPORTS)
def test_round_trips(support):
    rng = np.random.default_rng(0)
    t = tr.get_transform(support)
    theta = _random_inside(support, rng, 500)
    np.testing.assert_allclose(t.inverse(t.forward(theta)), theta, rtol=1e-9, atol=1e-12)
    eta = rng.normal(scale=4.0, size=500)
    np.testing.assert_allclose(t.forward(t.inverse(eta)), eta, rtol=1e-8, atol=1e-8)
    assert np.all(t.contains(t.inverse(eta)))


@pytest.mark.parametrize("support", SUPPORTS)
def test_inverse_maps_onto_support_and_is_increasing(support):
    t = tr.get_transform(support)
    eta = np.linspace(-12, 12, 241)
    theta = t.inverse(eta)
    assert np.all(np.diff(theta) > 0)
    if support != "real":
        lo = 0.0 if support == "positive" else support[1]
        assert np.all(theta > lo)
    if isinstance(support, tuple):
        assert np.all(theta < support[2])


@pytest.mark.parametrize("support", SUPPORTS)
def test_log_abs_det_jacobian_matches_autograd(support):
    rng = np.random.default_rng(1)
    t = tr.get_transform(support)
    eta = rng.normal(scale=3.0, size=300)
    derivative = elementwise_grad(t.inverse)(eta)
    np.testing.assert_allclose(t.inverse_log_abs_det_jacobian(eta), np.log(np.abs(derivative)),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("support", SUPPORTS)
def test_forward_derivative_is_reciprocal(support):
    # d eta / d theta = 1 / (d theta / d eta): the Jacobians of T and T^{-1} are inverse to each other
    rng = np.random.default_rng(2)
    t = tr.get_transform(support)
    theta = _random_inside(support, rng, 200)
    d_forward = elementwise_grad(t.forward)(theta)
    np.testing.assert_allclose(np.log(np.abs(d_forward)),
                               -t.inverse_log_abs_det_jacobian(t.forward(theta)), rtol=1e-7, atol=1e-7)


def test_interval_inverse_keeps_relative_precision_near_both_ends():
    t = tr.get_transform(("interval", 0.0, 1.0))
    eta = np.array([-700.0, -60.0, -20.0])
    np.testing.assert_allclose(t.inverse(eta), np.exp(eta) / (1.0 + np.exp(eta)), rtol=1e-13)
    t = tr.get_transform(("interval", -3.0, 0.0))
    np.testing.assert_allclose(-t.inverse(-eta), 3.0 * np.exp(eta) / (1.0 + np.exp(eta)), rtol=1e-13)
    assert np.all(np.isfinite(t.inverse(np.array([-1e308, 1e308]))))


def test_interval_log_jacobian_is_stable_in_the_tails():
    t = tr.get_transform(("interval", -1.0, 3.0))
    eta = np.array([-1000.0, -200.0, 200.0, 1000.0])
    value = t.inverse_log_abs_det_jacobian(eta)
    assert np.all(np.isfinite(value))
    # log sigma(e) + log(1 - sigma(e)) ~ -|e| for large |e|
    np.testing.assert_allclose(value, np.log(4.0) - np.abs(eta), rtol=1e-12)
    grad = elementwise_grad(t.inverse_log_abs_det_jacobian)(eta)
    np.testing.assert_allclose(grad, -np.sign(eta), atol=1e-12)


def test_sympy_log_abs_det_jacobians():
    eta = sp.Symbol("eta", real=True)
    a, b = sp.symbols("a b", real=True)
    cases = {
        "positive": (sp.exp(eta), None),
        ("interval", -2.0, 3.5): (a + (b - a) / (1 + sp.exp(-eta)), {a: sp.Rational(-2), b: sp.Rational(7, 2)}),
        ("interval", 0.0, 1.0): (a + (b - a) / (1 + sp.exp(-eta)), {a: 0, b: 1}),
    }
    # closed forms claimed in the module: eta, and log(b-a) - softplus(-eta) - softplus(eta)
    claimed = {
        "positive": eta,
        "interval": sp.log(b - a) - sp.log(1 + sp.exp(-eta)) - sp.log(1 + sp.exp(eta)),
    }
    grid = np.linspace(-25.0, 25.0, 101)
    for support, (inverse, subs) in cases.items():
        derivative = sp.diff(inverse, eta)
        key = "positive" if support == "positive" else "interval"
        claim = claimed[key]
        # symbolic identity exp(claim) == d theta / d eta (derivative is positive, so |.| drops)
        assert sp.simplify(sp.exp(claim) - derivative) == 0
        expr = sp.log(derivative if subs is None else derivative.subs(subs))
        reference = sp.lambdify(eta, expr, "mpmath")
        t = tr.get_transform(support)
        ours = t.inverse_log_abs_det_jacobian(grid)
        ref = np.array([float(reference(sp.Float(e, 30))) for e in grid])
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    # and the inverse of the scaled logit really is the scaled sigmoid
    theta = sp.Symbol("theta", real=True)
    solved = sp.solve(sp.Eq(eta, sp.log(theta - a) - sp.log(b - theta)), theta)
    assert len(solved) == 1
    assert sp.simplify(solved[0] - (a + (b - a) / (1 + sp.exp(-eta)))) == 0


# ---------------------------------------------------------------------------------------------
# transformed densities are densities on R
# ---------------------------------------------------------------------------------------------

DISTRIBUTIONS = [
    ("positive", stats.gamma(a=2.5, scale=1.7)),
    ("positive", stats.invgamma(a=2.0, scale=3.0)),
    (("interval", 0.0, 1.0), stats.beta(2.0, 5.0)),
    (("interval", 0.0, 1.0), stats.beta(0.6, 0.8)),
    (("interval", -2.0, 3.0), stats.beta(3.0, 1.5, loc=-2.0, scale=5.0)),
]


@pytest.mark.parametrize("support,dist", DISTRIBUTIONS)
def test_transformed_density_integrates_to_one(support, dist):
    # R is truncated to [-L, L]: further out theta = T^{-1}(eta) rounds to an end of the support in double
    # precision (1 - exp(-37) == 1.0), and the neglected mass is below exp(-0.6 * 35) in every case here
    L = 60.0 if support == "positive" else 35.0
    log_p = tr.transformed_log_density(dist.logpdf, tr.get_transform(support))
    total, err = integrate.quad(lambda e: np.exp(log_p(np.array([e]))[0]), -L, L, limit=400, points=[0.0])
    assert abs(total - 1.0) < 1e-7
    # and E[T^{-1}(eta)] under it is the mean of the original distribution
    t = tr.get_transform(support)
    mean, _ = integrate.quad(lambda e: t.inverse(e) * np.exp(log_p(np.array([e]))[0]), -L, L,
                             limit=400, points=[0.0])
    assert mean == pytest.approx(dist.mean(), rel=1e-6)


def test_transformed_density_matches_known_closed_form():
    # if theta ~ LogNormal(mu, sigma) then log(theta) ~ N(mu, sigma)
    mu, sigma = 0.4, 0.7
    log_p = tr.transformed_log_density(lambda th: stats.lognorm(s=sigma, scale=np.exp(mu)).logpdf(th[:, 0]),
                                       ["positive"])
    eta = np.linspace(-3, 3, 13)[:, None]
    np.testing.assert_allclose(log_p(eta), stats.norm(mu, sigma).logpdf(eta[:, 0]), rtol=1e-10)


def test_transformed_samples_follow_the_transformed_density():
    # histogram of log(Gamma samples) against the transformed density
    rng = np.random.default_rng(3)
    dist = stats.gamma(a=3.0, scale=0.5)
    eta = np.log(dist.rvs(size=200_000, random_state=rng))
    log_p = tr.transformed_log_density(dist.logpdf, tr.get_transform("positive"))
    counts, edges = np.histogram(eta, bins=40, range=(-2.5, 1.5))
    centres = 0.5 * (edges[1:] + edges[:-1])
    expected = len(eta) * np.exp(log_p(centres)) * (edges[1] - edges[0])
    mask = expected > 200
    assert np.all(np.abs(counts[mask] - expected[mask]) < 5 * np.sqrt(expected[mask]) + 0.02 * expected[mask])


# ---------------------------------------------------------------------------------------------
# joint transform
# ---------------------------------------------------------------------------------------------

def test_joint_transform_shapes_round_trip_and_jacobian():
    rng = np.random.default_rng(4)
    supports = ["positive", "real", ("interval", -1.0, 2.0)]
    T = tr.from_supports(supports)
    assert T.dim == 3
    assert T.supports == ["positive", "real", ("interval", -1.0, 2.0)]
    eta = rng.normal(scale=2.0, size=(50, 3))
    theta = T.inverse(eta)
    assert theta.shape == (50, 3)
    np.testing.assert_allclose(T.forward(theta), eta, rtol=1e-9, atol=1e-9)
    ladj = T.inverse_log_abs_det_jacobian(eta)
    assert ladj.shape == (50,)
    # full autograd Jacobian of one row: diagonal, and log|det| equals our sum
    for row in eta[:5]:
        J = jacobian(lambda e: T.inverse(e[None, :])[0])(row)
        np.testing.assert_allclose(J - np.diag(np.diag(J)), 0.0, atol=1e-14)
        sign, logdet = np.linalg.slogdet(J)
        assert sign > 0
        np.testing.assert_allclose(T.inverse_log_abs_det_jacobian(row[None, :])[0], logdet, rtol=1e-10)


def test_joint_transform_is_differentiable_through_a_sum():
    T = tr.from_supports(["positive", ("interval", 0, 1)])
    eta = np.array([[0.3, -1.2], [2.0, 4.0]])
    g = elementwise_grad(lambda e: anp.sum(T.inverse_log_abs_det_jacobian(e)))(eta)
    # d/d eta of eta is 1; d/d eta of log sigma(eta) + log(1 - sigma(eta)) is 1 - 2 sigma(eta)
    np.testing.assert_allclose(g[:, 0], 1.0)
    np.testing.assert_allclose(g[:, 1], 1.0 - 2.0 / (1.0 + np.exp(-eta[:, 1])), rtol=1e-12)


def test_joint_transformed_density_integrates_to_one_in_2d():
    # theta = (s, p) with s ~ Gamma(2, 1) and p ~ Beta(2, 3) independent
    T = tr.from_supports(["positive", ("interval", 0, 1)])

    def log_p(theta):
        return stats.gamma(2.0).logpdf(theta[:, 0]) + stats.beta(2.0, 3.0).logpdf(theta[:, 1])

    log_q = tr.transformed_log_density(log_p, T)
    e1, e2 = np.linspace(-12, 5, 601), np.linspace(-14, 14, 601)
    E1, E2 = np.meshgrid(e1, e2, indexing="ij")
    dens = np.exp(log_q(np.column_stack([E1.ravel(), E2.ravel()]))).reshape(E1.shape)
    total = integrate.simpson(integrate.simpson(dens, x=e2, axis=1), x=e1)
    assert total == pytest.approx(1.0, abs=1e-6)


def test_entropy_relation_log_normal_monte_carlo():
    rng = np.random.default_rng(5)
    mu, sigma = 0.8, 0.6
    eta = rng.normal(mu, sigma, size=(400_000, 1))
    h_eta = stats.norm(mu, sigma).entropy()
    h_theta_exact = stats.lognorm(s=sigma, scale=np.exp(mu)).entropy()
    estimate = tr.entropy_change_of_variables(h_eta, eta, ["positive"])
    assert estimate == pytest.approx(h_theta_exact, abs=5e-3)
    # independent Monte Carlo: -E[log q_theta(theta)] with theta = exp(eta)
    direct = -np.mean(stats.lognorm(s=sigma, scale=np.exp(mu)).logpdf(np.exp(eta[:, 0])))
    assert direct == pytest.approx(h_theta_exact, abs=5e-3)
    # the page's claim "entropy is invariant" is off by E[eta] = mu here
    assert h_theta_exact - h_eta == pytest.approx(mu, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("support", ["Real", "positive_real", ("interval", 0), ("bounded", 0, 1), 3, None])
def test_unknown_support_lists_valid_ones(support):
    with pytest.raises(ValueError, match="valid supports are.*real.*positive.*interval"):
        tr.from_supports([support])


@pytest.mark.parametrize("a,b", [(1.0, 1.0), (2.0, 1.0), (-np.inf, 0.0), (0.0, np.inf), (np.nan, 1.0)])
def test_bad_interval(a, b):
    with pytest.raises(ValueError, match="interval"):
        tr.from_supports([("interval", a, b)])


def test_interval_whose_width_overflows_is_refused_and_a_wide_one_stays_finite():
    with pytest.raises(ValueError, match="finite width"):
        tr.from_supports([("interval", -1e308, 1e308)])
    wide = tr.from_supports([("interval", -8e307, 8e307)])
    eta = np.array([[-40.0], [0.0], [3.0], [40.0]])
    theta = wide.inverse(eta)
    assert np.all(np.isfinite(theta)) and np.all(np.abs(theta) <= 8e307)
    assert np.all(np.isfinite(wide.inverse_log_abs_det_jacobian(eta)))


def test_forward_outside_support_names_theta():
    with pytest.raises(ValueError, match=r"theta.*positive.*-0\.5"):
        tr.get_transform("positive").forward(np.array([1.0, -0.5]))
    with pytest.raises(ValueError, match=r"theta\[:, 1\].*interval"):
        tr.from_supports(["real", ("interval", 0, 1)]).forward([[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"theta\[:, 0\].*positive"):
        tr.from_supports(["positive"]).forward([[0.0]])
    with pytest.raises(ValueError, match="theta"):
        tr.from_supports(["real"]).forward([[np.nan]])


def test_bad_shapes_and_values():
    T = tr.from_supports(["positive", "real"])
    with pytest.raises(ValueError, match=r"eta must have shape \(n_samples, 2\)"):
        T.inverse(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="eta"):
        T.inverse_log_abs_det_jacobian(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="supports"):
        tr.from_supports([])
    with pytest.raises(ValueError, match="log_density"):
        tr.transformed_log_density("not callable", T)
    with pytest.raises(ValueError, match="entropy_eta"):
        tr.entropy_change_of_variables(np.nan, np.zeros((3, 2)), T)


# ---------------------------------------------------------------------------------------------
# errata of the ADVI documentation page (book appendix "Errata")
# ---------------------------------------------------------------------------------------------

class TestAdviPageErrata:
    def test_jacobian_term_enters_with_plus_sign(self):
        # The page's density of eta, log p(T^{-1}(eta)) - log|J|, is not a density; ours (+) is.
        dist = stats.gamma(a=2.5, scale=1.7)
        t = tr.get_transform("positive")
        ours = integrate.quad(lambda e: np.exp(dist.logpdf(np.exp(e)) + t.inverse_log_abs_det_jacobian(e)),
                              -60, 60, limit=400)[0]
        page = integrate.quad(lambda e: np.exp(dist.logpdf(np.exp(e)) - t.inverse_log_abs_det_jacobian(e)),
                              -60, 60, limit=400)[0]
        assert ours == pytest.approx(1.0, abs=1e-8)
        assert abs(page - 1.0) > 0.1

    def test_elbo_with_plus_jacobian_is_exact_at_the_posterior(self):
        # With q_eta = exact posterior pushed to eta-space, log p(x, T^{-1}(eta)) + log|J| - log q_eta(eta)
        # equals log p(x) for every eta (ELBO = evidence, zero variance). With the page's minus sign the
        # "ELBO" varies with eta and its mean even exceeds log p(x): it is no lower bound.
        from vi_course.models import BetaBernoulli

        model = BetaBernoulli(np.array([1, 0, 1, 1, 0, 1, 1, 1]), a=2.0, b=2.0)
        T = tr.from_supports(model.supports)
        log_q_eta = tr.transformed_log_density(lambda th: model.posterior_logpdf(th[:, 0]), T)
        eta = np.random.default_rng(6).normal(0.7, 1.0, size=(1000, 1))
        ours = model.log_joint(T.inverse(eta)) + T.inverse_log_abs_det_jacobian(eta) - log_q_eta(eta)
        np.testing.assert_allclose(ours, model.log_evidence(), rtol=1e-10)
        page = model.log_joint(T.inverse(eta)) - T.inverse_log_abs_det_jacobian(eta) - log_q_eta(eta)
        assert np.std(page) > 0.5
        assert np.mean(page) > model.log_evidence() + 1.0

    def test_expectation_of_log_joint_needs_no_jacobian(self):
        # E_{theta~q}[f(theta)] = E_{eta~N}[f(T^{-1}(eta))] (law of the unconscious statistician): the page's
        # first line puts a Jacobian into this expectation, the second line drops its logarithm.
        rng = np.random.default_rng(7)
        mu, sigma = 0.2, 0.5
        f = stats.invgamma(a=2.0, scale=3.0).logpdf
        exact = integrate.quad(lambda th: f(th) * stats.lognorm(s=sigma, scale=np.exp(mu)).pdf(th), 0, np.inf)[0]
        eta = rng.normal(mu, sigma, size=400_000)
        assert np.mean(f(np.exp(eta))) == pytest.approx(exact, abs=0.01)
        assert abs(np.mean(f(np.exp(eta)) - eta) - exact) > 0.1          # "log p / |J|" version
        assert abs(np.mean(f(np.exp(eta))) - np.mean(np.exp(eta)) - exact) > 0.1  # "- E|J|" version

    def test_change_of_variables_region_is_image_under_f(self):
        # P(x in A) = integral over f(A), not over f^{-1}(A), of p(f^{-1}(y)) |J_{f^{-1}}(y)|.
        dist = stats.gamma(a=2.0)
        t = tr.get_transform("positive")  # f = log, f^{-1} = exp
        log_p = tr.transformed_log_density(dist.logpdf, t)
        lo, hi = 1.0, 2.0
        target = dist.cdf(hi) - dist.cdf(lo)
        density = lambda y: np.exp(log_p(np.array([y]))[0])  # noqa: E731
        over_image = integrate.quad(density, np.log(lo), np.log(hi))[0]
        over_preimage = integrate.quad(density, np.exp(lo), np.exp(hi))[0]
        assert over_image == pytest.approx(target, rel=1e-9)
        assert abs(over_preimage - target) > 0.1

    def test_gaussian_reparameterisation_uses_L_and_a_standard_base(self):
        # The page writes z = mu + L^T z~ with z~ ~ N(1_d, I) and Sigma = L L^T: that has mean mu + L^T 1
        # and covariance L^T L != Sigma. The correct map is z = mu + L z~ with z~ ~ N(0, I).
        rng = np.random.default_rng(8)
        mu = np.array([0.5, -1.0])
        L = np.array([[1.0, 0.0], [1.5, 0.5]])
        sigma = L @ L.T
        base_page = rng.normal(1.0, 1.0, size=(200_000, 2))
        page = mu + base_page @ L  # rows: (L^T z~)^T = z~^T L
        base = rng.normal(size=(200_000, 2))
        ours = mu + base @ L.T
        np.testing.assert_allclose(ours.mean(0), mu, atol=0.02)
        np.testing.assert_allclose(np.cov(ours.T), sigma, atol=0.03)
        assert np.abs(page.mean(0) - mu).max() > 0.5
        assert np.abs(np.cov(page.T) - sigma).max() > 1.0

    def test_posterior_is_not_product_of_single_datum_posteriors(self):
        # The page writes p(z | x_1..n) = prod_i p(z | x_i). For the conjugate Gaussian model
        # z ~ N(0, 1), x_i ~ N(z, 1), p(z | x_i) = N(x_i / 2, 1/2) so the product has precision 2n; the
        # posterior has precision 1 + n (the prior is counted n times).
        from vi_course.models import ConjugateGaussian

        x = np.random.default_rng(9).normal(1.0, 1.0, size=6)
        _, cov = ConjugateGaussian(x).posterior()
        z = np.linspace(-6.0, 8.0, 20001)
        log_product = np.zeros_like(z)
        for xi in x:
            mean_i, cov_i = ConjugateGaussian([xi]).posterior()
            log_product += stats.norm(mean_i[0], np.sqrt(cov_i[0, 0])).logpdf(z)
        w = np.exp(log_product - log_product.max())
        w /= w.sum()
        product_var = np.sum(w * z ** 2) - np.sum(w * z) ** 2
        assert product_var == pytest.approx(1.0 / (2.0 * x.size), rel=1e-6)
        assert cov[0, 0] == pytest.approx(1.0 / (1.0 + x.size))
        assert product_var < 0.7 * cov[0, 0]


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py)

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402

_JOINT = tr.from_supports(["positive", "real", ("interval", 0.0, 1.0)])
_BAD_ELEMENTS = ("values", [np.array([np.nan]), np.array([np.inf]), "abc", None, np.array(["a"]), np.array([1j]),
                            np.array([]), object()])
_BAD_MASK_INPUT = ("values", ["abc", None, np.array(["a"]), np.array([1j]), object()])


def _elementwise_specs(support):
    t = tr.get_transform(support)
    nm = type(t).__name__
    out = [spec(f"{nm}.{m}", getattr(t, m), dict(eta=np.array([0.5])), dict(eta=_BAD_ELEMENTS))
           for m in ("inverse", "inverse_log_abs_det_jacobian", "inverse_derivative",
                     "inverse_log_abs_det_jacobian_derivative")]
    out.append(spec(f"{nm}.forward", t.forward, dict(theta=np.array([0.5])), dict(theta=_BAD_ELEMENTS)))
    out.append(spec(f"{nm}.contains", t.contains, dict(theta=np.array([0.5])), dict(theta=_BAD_MASK_INPUT)))
    return out


BAD_INPUT = [
    *_elementwise_specs("real"), *_elementwise_specs("positive"), *_elementwise_specs(("interval", 0.0, 1.0)),
    spec("get_transform", tr.get_transform, dict(support="real"),
         dict(support=("values", ["Real", None, 3, ("interval", 1, 0), ("interval", "a", 1), ("interval", np.nan, 1),
                                  ["interval", 0, 1, 2], ("interval", 0, 1j), ("interval", 0, True)]))),
    spec("from_supports", tr.from_supports, dict(supports=["real", "positive"]),
         dict(supports=("values", [[], None, 3, ["Real"], [None], {"a": 1}, "realx", [("interval", 0, True)]]))),
    spec("IntervalTransform", tr.IntervalTransform, dict(a=0.0, b=1.0), dict(a="real", b="real")),
    *[spec(f"JointTransform.{m}", getattr(_JOINT, m), dict(eta=np.zeros((2, 3))), dict(eta=("samples", 3)))
      for m in ("inverse", "inverse_log_abs_det_jacobian", "inverse_and_derivatives")],
    spec("JointTransform.forward", _JOINT.forward, dict(theta=np.full((2, 3), 0.5)), dict(theta=("samples", 3))),
    spec("JointTransform.contains", _JOINT.contains, dict(theta=np.full((2, 3), 0.5)),
         dict(theta=("values", [np.zeros((2, 4)), np.zeros(4), np.zeros((2, 3, 1)), "abc", None, np.zeros((2, 3), complex)]))),
    spec("transformed_log_density", tr.transformed_log_density,
         dict(log_density=lambda th: -th[:, 0], transform=["positive"]),
         dict(log_density="callable", transform=("values", [None, 3, "bad", object(), []]))),
    spec("entropy_change_of_variables", tr.entropy_change_of_variables,
         dict(entropy_eta=1.0, eta=np.zeros((3, 1)), transform=["positive"]),
         dict(entropy_eta="real", eta=("samples", 1), transform=("values", [None, 3, "bad", object(), []]))),
]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)


def test_elementwise_maps_still_differentiate_and_accept_nan_in_contains():
    # the input checks pass autograd boxes through, and contains() reads NaN as "outside"
    for support in SUPPORTS:
        t = tr.get_transform(support)
        eta = np.array([-1.0, 0.3, 2.0])
        np.testing.assert_allclose(elementwise_grad(t.inverse)(eta), t.inverse_derivative(eta), rtol=1e-12)
        assert not t.contains(np.array([np.nan]))[0]
    assert not _JOINT.contains(np.array([[np.nan, 0.0, 0.5]]))[0]
