"""Tests of vi_course.elbo (chapter Gaussian VI: lecture eqs. 10-11, 14, 20 and 29-31)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vi_course import elbo as E
from vi_course.divergences import kl_gaussian
from vi_course.families import FullRankGaussian, MeanFieldGaussian
from vi_course.models import ConjugateGaussian, CorrelatedGaussian

HYP = settings(max_examples=12, deadline=None, derandomize=True)


def conjugate_model(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    prior_var = float(np.exp(rng.uniform(np.log(0.1), np.log(10))))
    noise_var = float(np.exp(rng.uniform(np.log(0.1), np.log(10))))
    x = rng.normal(rng.normal(0, 2), np.sqrt(noise_var), size=n)
    return ConjugateGaussian(x, prior_var, noise_var), rng


def estimate_with_se(model, family, params, n, rng):
    """ELBO estimate from the log weights and its Monte Carlo standard error."""
    logw = E.log_weights(model.log_joint, family, params, family.noise(n, rng))
    return logw.mean(), logw.std(ddof=1) / np.sqrt(n)


@HYP
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_evidence_equals_elbo_plus_kl_to_posterior(seed):
    """log p(D) = ELBO(q) + KL(q || p(z|D)) (lecture eq. 20), hence ELBO <= log p(D)."""
    model, rng = conjugate_model(seed)
    fam = MeanFieldGaussian(1)
    post_mean, post_cov = model.posterior()
    # a random q around the posterior: shifted by up to 3 sd, scale off by up to e^{+-1}
    sd = np.sqrt(post_cov[0, 0])
    params = fam.pack(post_mean + rng.uniform(-3, 3) * sd, sd * np.exp(rng.uniform(-1, 1)))
    estimate, se = estimate_with_se(model, fam, params, 4000, rng)
    kl = kl_gaussian(*fam.mean_cov(params), post_mean, post_cov)
    assert kl >= 0
    assert abs(estimate + kl - model.log_evidence()) < 5 * se + 1e-9
    assert estimate <= model.log_evidence() + 5 * se
    # the closed-form-entropy estimator estimates the same quantity
    closed = E.elbo(model.log_joint, fam, params, 4000, rng)
    assert abs(closed + kl - model.log_evidence()) < 5 * se + 5 * np.sqrt(0.5 / 4000) + 1e-9


@HYP
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(1, 50))
def test_elbo_is_exact_with_zero_variance_at_the_posterior(seed, n):
    """With q = posterior every log weight equals log p(D) (lecture eq. 14)."""
    model, rng = conjugate_model(seed)
    fam = FullRankGaussian(1)
    params = fam.from_mean_cov(*model.posterior())
    logw = E.log_weights(model, fam, params, fam.noise(n, rng))
    np.testing.assert_allclose(logw, model.log_evidence(), rtol=1e-9, atol=1e-8)
    assert E.elbo(model.log_joint, fam, params, n, rng, entropy="monte_carlo") == pytest.approx(
        model.log_evidence(), rel=1e-9, abs=1e-8)


@pytest.mark.parametrize("sigma,rho", [(0.3, -0.9), (1.0, 0.5), (4.0, 0.95)])
def test_correlated_target_bound_and_gap(sigma, rho):
    model = CorrelatedGaussian(sigma, rho)
    rng = np.random.default_rng(1)
    exact_mean, exact_cov = model.posterior()
    fr, mf = FullRankGaussian(2), MeanFieldGaussian(2)
    at_target = fr.from_mean_cov(exact_mean, exact_cov)
    assert E.elbo(model, fr, at_target, 5, rng, entropy="monte_carlo") == pytest.approx(0.0, abs=1e-10)
    # the best mean-field q (variances sigma^2 (1 - rho^2)) has a strictly positive gap
    best_mf = mf.pack([0.0, 0.0], np.full(2, sigma * np.sqrt(1 - rho ** 2)))
    gap = kl_gaussian(*mf.mean_cov(best_mf), exact_mean, exact_cov)
    estimate, se = estimate_with_se(model, mf, best_mf, 20_000, rng)
    assert gap == pytest.approx(-np.log(1 - rho ** 2) / 2, rel=1e-10)   # closed form of this KL
    assert abs(estimate + gap) < 5 * se


def test_gaussian_kl_against_monte_carlo():
    rng = np.random.default_rng(2)
    fam = FullRankGaussian(3)
    pq, pp = rng.normal(scale=0.6, size=(2, fam.n_params))
    z = fam.sample(pq, 50_000, rng)
    diff = fam.log_prob(pq, z) - fam.log_prob(pp, z)
    kl = kl_gaussian(*fam.mean_cov(pq), *fam.mean_cov(pp))
    assert abs(kl - diff.mean()) < 5 * diff.std() / np.sqrt(diff.size)
    assert kl_gaussian(*fam.mean_cov(pq), *fam.mean_cov(pq)) == pytest.approx(0.0, abs=1e-12)


def test_negative_elbo_is_minus_elbo():
    model, _ = conjugate_model(3)
    fam = MeanFieldGaussian(1)
    params = fam.init_params()
    assert E.negative_elbo(model, fam, params, 10, 7) == -E.elbo(model, fam, params, 10, 7)


class _NonGaussianPriorView:
    """The same model, but without the attributes that identify its prior as Gaussian."""

    def __init__(self, model):
        self.dim = model.dim
        self.log_prior = model.log_prior
        self.log_likelihood = model.log_likelihood
        self.log_joint = model.log_joint


@HYP
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_decomposition_likelihood_minus_kl(seed):
    """ELBO = E_q[log p(D|z)] - KL(q || p(z)) (lecture eq. 31), closed-form and Monte Carlo KL."""
    model, rng = conjugate_model(seed)
    fam = MeanFieldGaussian(1)
    post_mean, post_cov = model.posterior()
    params = fam.pack(post_mean + rng.normal(), np.sqrt(post_cov[0, 0]) * np.exp(rng.normal()))
    n = 4000
    dec = E.elbo_decomposition(model, fam, params, n, rng)
    assert dec.kl_method == "closed_form"
    assert dec.elbo == pytest.approx(dec.expected_log_likelihood - dec.kl, abs=1e-9)
    # the closed-form KL to the prior N(0, prior_var)
    m, v = fam.mean_cov(params)
    kl_prior = 0.5 * (v[0, 0] / model.prior_var + m[0] ** 2 / model.prior_var - 1
                      + np.log(model.prior_var / v[0, 0]))
    assert dec.kl == pytest.approx(kl_prior, rel=1e-10, abs=1e-12)
    # the decomposed ELBO estimates log p(D) - KL(q || posterior)
    target = model.log_evidence() - kl_gaussian(m, v, post_mean, post_cov)
    ll = model.log_likelihood(fam.sample(params, n, rng))
    assert abs(dec.elbo - target) < 6 * ll.std() / np.sqrt(n) + 1e-9
    # Monte Carlo KL when the prior is not recognisably Gaussian: same sums, same samples
    mc = E.elbo_decomposition(_NonGaussianPriorView(model), fam, params, n, np.random.default_rng(seed % 1000))
    assert mc.kl_method == "monte_carlo"
    assert mc.elbo == pytest.approx(mc.expected_log_likelihood - mc.kl, abs=1e-9)
    logw = E.log_weights(model, fam, params, fam.noise(n, np.random.default_rng(seed % 1000)))
    assert mc.elbo == pytest.approx(logw.mean(), rel=1e-10, abs=1e-8)


def test_bad_input():
    model, _ = conjugate_model(4)
    fam = MeanFieldGaussian(1)
    params = fam.init_params()
    with pytest.raises(ValueError, match="family"):
        E.elbo(model, "meanfield", params, 10, 0)
    with pytest.raises(ValueError, match="entropy"):
        E.elbo(model, fam, params, 10, 0, entropy="exact")
    with pytest.raises(ValueError, match="log_joint"):
        E.elbo(42, fam, params, 10, 0)
    with pytest.raises(ValueError, match="shape"):
        E.elbo(lambda z: z, MeanFieldGaussian(2), MeanFieldGaussian(2).init_params(), 10, 0)
    with pytest.raises(ValueError, match="non-finite"):
        E.elbo(lambda z: np.where(z[:, 0] > 0, 0.0, -np.inf), fam, params, 50, 0)
    with pytest.raises(ValueError, match="params"):
        E.elbo(model, fam, np.zeros(3), 10, 0)
    with pytest.raises(ValueError, match="n"):
        E.elbo(model, fam, params, 0, 0)
    with pytest.raises(ValueError, match="log_prior"):
        E.elbo_decomposition(CorrelatedGaussian(), MeanFieldGaussian(2), MeanFieldGaussian(2).init_params(), 10, 0)
    with pytest.raises(ValueError, match="dim"):
        E.elbo_decomposition(model, MeanFieldGaussian(2), MeanFieldGaussian(2).init_params(), 10, 0)
    with pytest.raises(ValueError, match="cov_p"):
        kl_gaussian([0.0], [[1.0]], [0.0], [[-1.0]])


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py)

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402

_MODEL = ConjugateGaussian([0.3, -1.2, 0.8])
_MF1 = MeanFieldGaussian(1)
_COMMON = dict(log_joint=_MODEL.log_joint, family=_MF1, params=_MF1.init_params(), n=10, rng=0)
_KINDS = dict(log_joint="callable", family="family", params=("params", 2), n="int", rng="rng")
_NOISE = dict(log_joint=_MODEL.log_joint, family=_MF1, params=_MF1.init_params(), eps=np.zeros((3, 1)))
_NOISE_KINDS = dict(log_joint="callable", family="family", params=("params", 2), eps=("samples", 1))

BAD_INPUT = [
    spec("elbo", E.elbo, _COMMON, dict(_KINDS, entropy=("values", ["exact", None, 3]))),
    spec("negative_elbo", E.negative_elbo, _COMMON, _KINDS),
    spec("log_weights", E.log_weights, _NOISE, _NOISE_KINDS),
    spec("elbo_from_noise", E.elbo_from_noise, _NOISE, _NOISE_KINDS),
    spec("elbo_decomposition", E.elbo_decomposition, dict(_COMMON, model=_MODEL),
         dict(model=("values", [None, 3, "abc", _MODEL.log_joint]), family="family", params=("params", 2),
              n="int", rng="rng")),
]
del BAD_INPUT[-1][2]["log_joint"]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)


@pytest.mark.parametrize("garbage", [lambda z: None, lambda z: np.full(len(z), "a"), lambda z: np.full(len(z), 1j),
                                     lambda z: [{}] * len(z)])
def test_elbo_rejects_log_joints_returning_garbage(garbage):
    fam = MeanFieldGaussian(1)
    with pytest.raises(ValueError, match="log_joint"):
        E.elbo(garbage, fam, fam.init_params(), 5, 0)
