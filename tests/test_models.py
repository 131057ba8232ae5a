"""The Gaussian example targets: exact posteriors and evidences checked by independent routes."""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from vi_course.models import ConjugateGaussian, CorrelatedGaussian

variances = st.floats(0.05, 20.0)
data = st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=8)


@settings(deadline=None, max_examples=30)
@given(x=data, prior_var=variances, noise_var=variances)
def test_conjugate_log_joint_minus_log_evidence_is_the_posterior(x, prior_var, noise_var):
    # Bayes (lecture eq. 1): log p(z | D) = log p(D, z) - log p(D), for every z
    model = ConjugateGaussian(x, prior_var, noise_var)
    mean, cov = model.posterior()
    z = np.linspace(mean[0] - 4 * np.sqrt(cov[0, 0]), mean[0] + 4 * np.sqrt(cov[0, 0]), 7)[:, None]
    lhs = model.log_joint(z) - model.log_evidence()
    rhs = stats.norm(mean[0], np.sqrt(cov[0, 0])).logpdf(z[:, 0])
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-9)


@settings(deadline=None, max_examples=30)
@given(x=data, prior_var=variances, noise_var=variances)
def test_conjugate_log_evidence_is_the_marginal_of_the_data(x, prior_var, noise_var):
    # independent formula: x ~ N(0, noise_var I + prior_var 1 1^T)
    model = ConjugateGaussian(x, prior_var, noise_var)
    n = len(x)
    cov = noise_var * np.eye(n) + prior_var * np.ones((n, n))
    exact = stats.multivariate_normal(np.zeros(n), cov).logpdf(np.asarray(x))
    assert model.log_evidence() == pytest.approx(float(exact), rel=1e-10, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_conjugate_log_evidence_against_adaptive_quadrature(seed):
    rng = np.random.default_rng(seed)
    model = ConjugateGaussian(rng.normal(1.0, 2.0, size=5), rng.uniform(0.3, 3), rng.uniform(0.3, 3))
    mean, cov = model.posterior()
    sd = np.sqrt(cov[0, 0])
    shift = model.log_joint(mean[None, :])[0]  # integrate exp(log_joint - shift) for accuracy

    def integrand(z):
        return np.exp(model.log_joint(np.array([[z]]))[0] - shift)

    value, err = integrate.quad(integrand, mean[0] - 12 * sd, mean[0] + 12 * sd, epsabs=0, epsrel=1e-12)
    assert np.log(value) + shift == pytest.approx(model.log_evidence(), abs=1e-9)


def test_conjugate_matches_lecture_exercise_2_5_with_corrected_index():
    # Exercise 2.5: log p(z, D) = -z^2/2 - sum_k (x_k - z)^2 / 2 - (K + 1)/2 log 2 pi with
    # D = (x_1, ..., x_K). The lecture sums k = 0..K, but there is no x_0; the normaliser (K + 1)
    # counts one prior factor plus K likelihood factors, which fixes the sum to k = 1..K.
    x = np.array([0.3, -1.2, 2.0, 0.7])
    K = x.size
    model = ConjugateGaussian(x, prior_var=1.0, noise_var=1.0)
    z = np.linspace(-3, 3, 11)[:, None]
    lecture = -z[:, 0] ** 2 / 2 - ((x[None, :] - z) ** 2).sum(axis=1) / 2 - (K + 1) / 2 * np.log(2 * np.pi)
    np.testing.assert_allclose(model.log_joint(z), lecture, rtol=1e-12)
    # the k = 0..K reading (K + 1 data terms) would be normalised only with (K + 2)/2 log 2 pi
    assert np.exp(model.log_evidence()) == pytest.approx(
        integrate.quad(lambda t: np.exp(model.log_joint(np.array([[t]]))[0]), -20, 20)[0], rel=1e-8)


@settings(deadline=None, max_examples=20)
@given(sigma=st.floats(0.1, 5.0), rho=st.floats(-0.98, 0.98))
def test_correlated_is_the_normalised_bivariate_normal(sigma, rho):
    model = CorrelatedGaussian(sigma, rho)
    cov = sigma ** 2 * np.array([[1.0, rho], [rho, 1.0]])
    z = np.random.default_rng(0).normal(size=(6, 2)) * sigma
    np.testing.assert_allclose(model.log_joint(z), stats.multivariate_normal(np.zeros(2), cov).logpdf(z),
                               rtol=1e-9, atol=1e-9)
    mean, post_cov = model.posterior()
    np.testing.assert_allclose(post_cov, cov)
    np.testing.assert_allclose(np.diag(post_cov), [sigma ** 2, sigma ** 2])  # marginal variance sigma^2
    assert model.log_evidence() == 0.0


def test_correlated_integrates_to_one():
    model = CorrelatedGaussian(1.3, -0.6)
    value, _ = integrate.dblquad(lambda b, a: np.exp(model.log_joint(np.array([[a, b]]))[0]),
                                 -12, 12, -12, 12, epsabs=1e-10)
    assert value == pytest.approx(1.0, abs=1e-8)


def test_lecture_eq_59_density_has_the_wrong_marginal_variance():
    # lecture eq. 59: p propto exp(-z1^2/(2 s^2) - z2^2/(2 s^2) + rho z1 z2 / s^2); its precision is
    # [[1, -rho], [-rho, 1]] / s^2, so the marginal variance is s^2 / (1 - rho^2), not s^2.
    s, rho = 1.5, 0.8
    precision = np.array([[1.0, -rho], [-rho, 1.0]]) / s ** 2
    cov = np.linalg.inv(precision)
    assert cov[0, 0] == pytest.approx(s ** 2 / (1 - rho ** 2))
    assert cov[0, 1] / cov[0, 0] == pytest.approx(rho)  # the correlation is rho, as intended
    assert not np.isclose(cov[0, 0], CorrelatedGaussian(s, rho).posterior()[1][0, 0])


def _finite_difference(f, z, h=1e-5):
    grad = np.zeros_like(z)
    for j in range(z.shape[1]):
        e = np.zeros_like(z)
        e[:, j] = h
        grad[:, j] = (f(z + e) - f(z - e)) / (2 * h)
    return grad


@pytest.mark.parametrize("model", [
    ConjugateGaussian([0.5, -1.0, 2.5], prior_var=2.0, noise_var=0.5),
    CorrelatedGaussian(sigma=0.8, rho=-0.7),
])
def test_autograd_gradient_of_log_joint_matches_finite_differences(model):
    z = np.random.default_rng(1).normal(size=(5, model.dim))
    grad = autograd.elementwise_grad(lambda t: anp.sum(model.log_joint(t)))(z)
    np.testing.assert_allclose(grad, _finite_difference(model.log_joint, z), rtol=1e-6, atol=1e-6)


def test_autograd_gradient_matches_closed_form():
    model = ConjugateGaussian([1.0, 2.0], prior_var=4.0, noise_var=0.25)
    mean, cov = model.posterior()
    z = np.linspace(-2, 3, 6)[:, None]
    grad = autograd.elementwise_grad(lambda t: anp.sum(model.log_joint(t)))(z)
    np.testing.assert_allclose(grad[:, 0], -(z[:, 0] - mean[0]) / cov[0, 0], rtol=1e-10)


@pytest.mark.parametrize("kwargs, name", [
    (dict(x=[1.0], prior_var=-1.0), "prior_var"),
    (dict(x=[1.0], prior_var=0.0), "prior_var"),
    (dict(x=[1.0], noise_var=-0.1), "noise_var"),
    (dict(x=[1.0], noise_var=np.nan), "noise_var"),
    (dict(x=[1.0, np.nan]), "x"),
    (dict(x=[np.inf]), "x"),
    (dict(x=np.ones((2, 2))), "x"),
    (dict(x=[]), "x"),
])
def test_conjugate_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ConjugateGaussian(**kwargs)


@pytest.mark.parametrize("kwargs, name", [
    (dict(rho=1.0), "rho"), (dict(rho=-1.0), "rho"), (dict(rho=1.5), "rho"), (dict(rho=np.nan), "rho"),
    (dict(sigma=-1.0), "sigma"), (dict(sigma=0.0), "sigma"),
])
def test_correlated_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CorrelatedGaussian(**kwargs)


@pytest.mark.parametrize("z", [np.zeros((3, 2)), np.zeros((2, 1, 1)), np.array([[np.nan]])])
def test_log_joint_rejects_bad_z(z):
    with pytest.raises(ValueError, match="z"):
        ConjugateGaussian([1.0]).log_joint(z)


@pytest.mark.parametrize("z", [np.zeros((3, 1)), np.zeros((3, 3)), np.array([[0.0, np.inf]])])
def test_correlated_log_joint_rejects_bad_z(z):
    with pytest.raises(ValueError, match="z"):
        CorrelatedGaussian().log_joint(z)


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py): every argument of every call with each kind of bad
# value must raise a ValueError naming the argument

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402

_X5 = np.array([0.3, -1.2, 0.8, 2.0, 0.1])
_CONJ = ConjugateGaussian(_X5)
_CORR = CorrelatedGaussian(1.0, 0.5)

BAD_INPUT = [
    spec("ConjugateGaussian", ConjugateGaussian, dict(x=_X5, prior_var=1.0, noise_var=1.0),
         dict(x="data", prior_var="pos", noise_var="pos")),
    spec("ConjugateGaussian.log_joint", lambda z: _CONJ.log_joint(z), dict(z=np.zeros((3, 1))),
         dict(z=("samples", 1))),
    spec("ConjugateGaussian.log_prior", lambda z: _CONJ.log_prior(z), dict(z=np.zeros((3, 1))),
         dict(z=("samples", 1))),
    spec("ConjugateGaussian.log_likelihood", lambda z: _CONJ.log_likelihood(z), dict(z=np.zeros((3, 1))),
         dict(z=("samples", 1))),
    spec("CorrelatedGaussian", CorrelatedGaussian, dict(sigma=1.0, rho=0.5),
         dict(sigma="pos", rho=("values", [1.0, -1.0, 1.5, np.nan, np.inf, "0.5", None, [0.1, 0.2], 1j,
                                          True]))),
    spec("CorrelatedGaussian.log_joint", lambda z: _CORR.log_joint(z), dict(z=np.zeros((3, 2))),
         dict(z=("samples", 2))),
]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)


@pytest.mark.parametrize("kwargs, name", [
    (dict(x=[1e200, 1.0]), "x"),                               # the sum of squares overflows
    (dict(x=[1.0], prior_var=1e300, noise_var=1e-300), "prior_var"),   # the evidence overflows
])
def test_conjugate_rejects_data_too_extreme_for_double_precision(kwargs, name):
    with pytest.raises(ValueError, match="too (large|extreme)"):
        ConjugateGaussian(**kwargs)


@pytest.mark.parametrize("sigma, rho", [(1e-160, 0.5), (1e160, 0.0), (1e-150, 1 - 1e-15)])
def test_correlated_rejects_covariances_that_are_not_representable(sigma, rho):
    with pytest.raises(ValueError, match="sigma"):
        CorrelatedGaussian(sigma, rho)


def test_conjugate_is_exact_for_data_far_from_zero():
    """Regression: log p(D, z) used sum x^2 - 2 z sum x + n z^2, which cancels catastrophically for data
    with a large common offset (x ~ 1e5 with noise sd 1e-2: the log posterior was off by ~90 nats).
    The centred form is exact, checked against the closed-form posterior density."""
    x = np.random.default_rng(0).normal(1e5, 1e-2, size=5000)
    model = ConjugateGaussian(x, prior_var=1e12, noise_var=1e-4)
    mean, cov = model.posterior()
    sd = np.sqrt(cov[0, 0])
    z = mean[0] + sd * np.linspace(-3, 3, 7)[:, None]
    np.testing.assert_allclose(model.log_joint(z) - model.log_evidence(),
                               stats.norm(mean[0], sd).logpdf(z[:, 0]), atol=1e-6)


@pytest.mark.parametrize("sigma, rho", [(1e-3, 0.999999), (1e3, -0.999999), (2.0, 1 - 1e-12)])
def test_correlated_log_density_is_accurate_near_rho_one(sigma, rho):
    """The eigenbasis form keeps full accuracy where the precision-matrix form loses digits."""
    model = CorrelatedGaussian(sigma, rho)
    rng = np.random.default_rng(3)
    u = rng.normal(size=(6, 2))
    # points drawn from the target: z = sigma (sqrt(1 + rho) u1 e+ + sqrt(1 - rho) u2 e-)
    e_plus, e_minus = np.array([1.0, 1.0]) / np.sqrt(2), np.array([1.0, -1.0]) / np.sqrt(2)
    z = sigma * (np.sqrt(1 + rho) * u[:, :1] * e_plus + np.sqrt(1 - rho) * u[:, 1:] * e_minus)
    exact = (-np.log(2 * np.pi) - 2 * np.log(sigma) - 0.5 * (np.log1p(rho) + np.log1p(-rho))
             - 0.5 * (u[:, 0] ** 2 + u[:, 1] ** 2))
    np.testing.assert_allclose(model.log_joint(z), exact, rtol=1e-9, atol=1e-9)
