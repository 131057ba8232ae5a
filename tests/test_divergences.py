"""The KL divergence (chapter "The ELBO and the KL divergence")."""
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from vi_course.divergences import kl_gaussian, kl_monte_carlo
from vi_course.models import ConjugateGaussian, CorrelatedGaussian


def _random_gaussian(rng, d):
    a = rng.normal(size=(d, d))
    return rng.normal(size=d), a @ a.T + 0.3 * np.eye(d)


def _mvn_pair(mean, cov):
    dist = stats.multivariate_normal(mean, cov)

    def log_density(z):
        return np.atleast_1d(dist.logpdf(z))

    def sample(n, rng):
        return dist.rvs(size=n, random_state=rng).reshape(n, -1)

    return log_density, sample


@pytest.mark.parametrize("d, seed", [(1, 0), (2, 1), (3, 2), (5, 3)])
def test_closed_form_against_monte_carlo(d, seed):
    rng = np.random.default_rng(seed)
    mq, sq = _random_gaussian(rng, d)
    mp, sp_ = _random_gaussian(rng, d)
    log_q, sample_q = _mvn_pair(mq, sq)
    log_p, _ = _mvn_pair(mp, sp_)
    est, se = kl_monte_carlo(log_q, sample_q, log_p, 20000, rng)
    exact = kl_gaussian(mq, sq, mp, sp_)
    assert se > 0
    assert abs(est - exact) < 4 * se


def test_closed_form_against_sympy_integral_1d():
    z = sp.symbols("z", real=True)
    mq, mp = sp.Rational(1, 2), sp.Rational(-1, 1)
    vq, vp = sp.Rational(3, 4), sp.Rational(2, 1)
    q = sp.exp(-(z - mq) ** 2 / (2 * vq)) / sp.sqrt(2 * sp.pi * vq)
    p = sp.exp(-(z - mp) ** 2 / (2 * vp)) / sp.sqrt(2 * sp.pi * vp)
    integrand = q * sp.expand(sp.expand_log(sp.log(q) - sp.log(p), force=True))
    exact = sp.simplify(sp.integrate(integrand, (z, -sp.oo, sp.oo)))
    assert kl_gaussian(0.5, 0.75, -1.0, 2.0) == pytest.approx(float(exact), rel=1e-12)


def test_closed_form_symbolic_general_1d():
    # general 1-D formula by symbolic integration, checked at random parameter values
    z, m1, m2 = sp.symbols("z m1 m2", real=True)
    s1, s2 = sp.symbols("s1 s2", positive=True)
    q = sp.exp(-(z - m1) ** 2 / (2 * s1 ** 2)) / (sp.sqrt(2 * sp.pi) * s1)
    log_ratio = sp.log(s2 / s1) - (z - m1) ** 2 / (2 * s1 ** 2) + (z - m2) ** 2 / (2 * s2 ** 2)
    kl = sp.simplify(sp.integrate(sp.expand(q * log_ratio), (z, -sp.oo, sp.oo)))
    f = sp.lambdify((m1, s1, m2, s2), kl)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.normal(size=2)
        s, t = rng.uniform(0.2, 3, size=2)
        assert kl_gaussian([a], [[s ** 2]], [b], [[t ** 2]]) == pytest.approx(float(f(a, s, b, t)), rel=1e-10)


finite = st.floats(-3, 3)
scales = st.floats(0.2, 3)


@st.composite
def gaussians(draw, d):
    mean = np.array([draw(finite) for _ in range(d)])
    a = np.array([[draw(finite) for _ in range(d)] for _ in range(d)])
    return mean, a @ a.T + draw(scales) * np.eye(d)


@settings(deadline=None, max_examples=40)
@given(st.data(), st.integers(1, 4))
def test_kl_nonnegative_zero_on_itself(data, d):
    mq, sq = data.draw(gaussians(d))
    mp, sp_ = data.draw(gaussians(d))
    assert kl_gaussian(mq, sq, mp, sp_) >= 0.0
    assert kl_gaussian(mq, sq, mq, sq) == pytest.approx(0.0, abs=1e-9)


@settings(deadline=None, max_examples=30)
@given(m=finite, s=scales, t=scales)
def test_kl_is_asymmetric_for_different_variances(m, s, t):
    # for 1-D Gaussians with the same mean, KL(q||p) - KL(p||q) = log(t/s) - ... ; exact values:
    r = (s / t) ** 2
    forward = kl_gaussian(m, s ** 2, m, t ** 2)
    backward = kl_gaussian(m, t ** 2, m, s ** 2)
    assert forward == pytest.approx(0.5 * (r - 1 - np.log(r)), abs=1e-12)
    assert backward == pytest.approx(0.5 * (1 / r - 1 + np.log(r)), abs=1e-12)
    if abs(np.log(r)) > 0.1:
        assert forward != pytest.approx(backward, rel=1e-3)


def test_kl_is_asymmetric_example():
    # the wide-vs-narrow example of the chapter
    assert kl_gaussian(0, 1, 0, 4) == pytest.approx(0.5 * (0.25 - 1 + np.log(4)))
    assert kl_gaussian(0, 4, 0, 1) == pytest.approx(0.5 * (4 - 1 - np.log(4)))


def test_kl_invariant_under_a_shared_affine_map():
    rng = np.random.default_rng(4)
    mq, sq = _random_gaussian(rng, 3)
    mp, sp_ = _random_gaussian(rng, 3)
    a, b = rng.normal(size=(3, 3)) + 3 * np.eye(3), rng.normal(size=3)
    assert kl_gaussian(a @ mq + b, a @ sq @ a.T, a @ mp + b, a @ sp_ @ a.T) == pytest.approx(
        kl_gaussian(mq, sq, mp, sp_), rel=1e-9)


def test_diagonal_vector_and_matrix_agree():
    assert kl_gaussian([0.0, 1.0], [1.0, 2.0], [0.5, 0.5], [3.0, 0.5]) == pytest.approx(
        kl_gaussian([0.0, 1.0], np.diag([1.0, 2.0]), [0.5, 0.5], np.diag([3.0, 0.5])))


def test_elbo_identity_eq_20():
    # lecture eq. 20: log p(D) = ELBO(q) + KL(q, p(z|D)); checked with a Monte Carlo ELBO from
    # kl_monte_carlo with the UNnormalised log joint (which estimates KL - log p(D) = -ELBO)
    model = ConjugateGaussian([0.2, 1.4, 0.9], prior_var=2.0, noise_var=0.7)
    mean, cov = model.posterior()
    q = stats.norm(mean[0] + 0.4, 0.8 * np.sqrt(cov[0, 0]))

    def log_q(z):
        return q.logpdf(z[:, 0])

    def sample_q(n, rng):
        return q.rvs(size=(n, 1), random_state=rng)

    neg_elbo, se = kl_monte_carlo(log_q, sample_q, model.log_joint, 40000, np.random.default_rng(9))
    kl = kl_gaussian(q.mean(), q.var(), mean, cov)
    assert abs(model.log_evidence() - (-neg_elbo + kl)) < 4 * se
    # lecture eq. 26 writes E_q[log p(z|D)/q] = E_q[log p(z,D)/q] + log p(D); the sign of
    # log p(D) is wrong: it is "- log p(D)", as this shows numerically
    assert abs(-kl - (-neg_elbo - model.log_evidence())) < 4 * se
    assert abs(-kl - (-neg_elbo + model.log_evidence())) > 100 * se


def test_mean_field_shrinkage_eq_63():
    # lecture eqs. 60-63: q = N(0, nu I), p = N(0, sigma^2 [[1, rho], [rho, 1]]) (marginal var sigma^2);
    # KL(q, p) is minimised at nu = sigma^2 (1 - rho^2)
    sigma, rho = 1.3, 0.8
    _, cov = CorrelatedGaussian(sigma, rho).posterior()
    best = optimize.minimize_scalar(lambda nu: kl_gaussian([0, 0], [nu, nu], [0, 0], cov),
                                    bounds=(0.01, 5.0), method="bounded", options={"xatol": 1e-9})
    assert best.x == pytest.approx(sigma ** 2 * (1 - rho ** 2), rel=1e-5)
    assert best.x < 0.5 * cov[0, 0]  # far below the true marginal variance sigma^2


def test_kl_monte_carlo_infinite_when_support_missed():
    est, se = kl_monte_carlo(lambda z: stats.norm.logpdf(z[:, 0]),
                             lambda n, rng: rng.normal(size=(n, 1)),
                             lambda z: np.where(z[:, 0] > 0, 0.0, -np.inf), 100, 0)
    assert est == np.inf and se == np.inf


@pytest.mark.parametrize("args, name", [
    (([0.0, 0.0], np.eye(3), [0.0, 0.0], np.eye(2)), "cov_q"),
    (([0.0, 0.0], np.eye(2), [0.0], np.eye(1)), "mean_q and mean_p"),
    (([0.0, 0.0], 1.0, [0.0, 0.0], np.eye(2)), "cov_q"),
    (([0.0], [[-1.0]], [0.0], [[1.0]]), "cov_q"),
    (([0.0], 1.0, [0.0], 0.0), "cov_p"),
    (([0.0, 0.0], np.eye(2), [0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]), "cov_p"),
    (([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]], [0.0, 0.0], np.eye(2)), "symmetric"),
    (([np.nan], 1.0, [0.0], 1.0), "mean_q"),
    (([0.0], 1.0, [0.0], np.inf), "cov_p"),
    (([0.0], [1.0, 2.0], [0.0], 1.0), "cov_q"),
])
def test_kl_gaussian_rejects_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        kl_gaussian(*args)


def test_kl_monte_carlo_rejects_bad_input():
    good = (lambda z: -0.5 * z[:, 0] ** 2, lambda n, rng: rng.normal(size=(n, 1)), lambda z: -z[:, 0] ** 2)
    with pytest.raises(ValueError, match="n"):
        kl_monte_carlo(*good, 1, 0)
    with pytest.raises(ValueError, match="log_p"):
        kl_monte_carlo(good[0], good[1], lambda z: np.full(len(z), np.nan), 10, 0)
    with pytest.raises(ValueError, match="log_q"):
        kl_monte_carlo(lambda z: np.zeros((len(z), 2)), good[1], good[2], 10, 0)
    with pytest.raises(ValueError, match="sample_q"):
        kl_monte_carlo(good[0], lambda n, rng: np.zeros((n + 1, 1)), good[2], 10, 0)
    with pytest.raises(ValueError, match="log_p"):
        kl_monte_carlo(good[0], good[1], "nope", 10, 0)


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py)

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402

_BAD_COV = [np.full((2, 2), np.nan), -np.eye(2), "abc", None, np.zeros((2, 2)), np.full((2, 2), "a"),
            np.zeros((0, 0)), np.eye(2) * 1j, object(), np.array([[1.0, 0.5], [0.0, 1.0]]), np.eye(3)]

BAD_INPUT = [
    spec("kl_gaussian", kl_gaussian, dict(mean_q=[0.0, 0.0], cov_q=np.eye(2), mean_p=[1.0, 0.0], cov_p=np.eye(2)),
         dict(mean_q=("vector", 2), mean_p=("vector", 2), cov_q=("values", _BAD_COV), cov_p=("values", _BAD_COV))),
    spec("kl_monte_carlo", kl_monte_carlo,
         dict(log_q=lambda z: stats.norm.logpdf(z[:, 0]), sample_q=lambda n, rng: rng.normal(size=(n, 1)),
              log_p=lambda z: stats.norm.logpdf(z[:, 0], 1.0), n=10, rng=0),
         dict(log_q="callable", sample_q="callable", log_p="callable", rng="rng",
              n=("values", [0, 1, -1, 2.5, np.nan, "3", None, True]))),   # n >= 2 for a standard error
]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)


@pytest.mark.parametrize("which", ["log_q", "log_p", "sample_q"])
@pytest.mark.parametrize("garbage", [lambda *a: None, lambda *a: "abc", lambda *a: [{}, {}]])
def test_kl_monte_carlo_rejects_callables_returning_garbage(which, garbage):
    good = dict(log_q=lambda z: stats.norm.logpdf(z[:, 0]), sample_q=lambda n, rng: rng.normal(size=(n, 1)),
                log_p=lambda z: stats.norm.logpdf(z[:, 0], 1.0))
    good[which] = garbage
    with pytest.raises(ValueError, match=which):
        kl_monte_carlo(n=5, rng=0, **good)
