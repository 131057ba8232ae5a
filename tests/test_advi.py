"""Tests of vi_course.advi (chapter ADVI).

Exact targets used here:

* ConjugateGaussian: the posterior is Gaussian, so the optimal q is the posterior itself.
* CorrelatedGaussian N(0, sigma^2 [[1, rho], [rho, 1]]): the optimal full-rank q is the target; the
  optimal mean-field q has variance sigma^2 (1 - rho^2) per coordinate (lecture eq. 63).
* Constrained 1-D targets in eta = T(theta): at the optimum of the ELBO over mu the stationarity
  condition is E_q[d/d eta log p~(eta)] = 0 (the entropy does not depend on mu). For a Gamma(a, b)
  density (rate b) with theta = e^eta, log p~ = a eta - b e^eta + const, so E_q[theta] = a / b
  exactly, and the condition in sigma gives Var_q[eta] = 1 / a. For Beta(a, b) with the logit map,
  log p~ = a log s(eta) + b log(1 - s(eta)) + const, so E_q[theta] = a / (a + b) exactly.
"""
import dataclasses

import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vi_course as vc
from vi_course.advi import ADVIResult, NonFiniteELBOError
from vi_course.models import BetaBernoulli, ConjugateGaussian, CorrelatedGaussian, InverseGammaNormal

HYP = settings(max_examples=6, deadline=None, derandomize=True)
log_uniform = st.floats(np.log(0.1), np.log(10.0)).map(np.exp)

# Tolerances. When the family contains the optimum exactly, the only error is optimisation noise; we
# require it below 5% of a posterior standard deviation for means and 5% for variances.
MEAN_TOL_SD = 0.05
VAR_RTOL = 0.05


class GammaPrior:
    """theta ~ Gamma(a, rate b), no data."""

    dim = 1
    supports = ["positive"]

    def __init__(self, a, b, jacobian_sign=+1):
        self.a, self.b = a, b

    def log_joint(self, theta):
        t = theta[:, 0]
        return (self.a - 1) * anp.log(t) - self.b * t


class PageSignGammaPrior(GammaPrior):
    """The ADVI page's objective: log p(T^{-1}(eta)) - log|J| instead of + log|J|.

    With theta = e^eta, log|J| = eta = log theta, so the page's objective equals our objective for the
    log density log p(theta) - 2 log theta, which this class returns.
    """

    def log_joint(self, theta):
        return super().log_joint(theta) - 2 * anp.log(theta[:, 0])


def gauss_hermite_mean(fn, mean, var, order=80):
    """E[fn(eta)] for eta ~ N(mean, var) by Gauss-Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    return float(np.sum(weights * fn(mean + np.sqrt(var) * nodes)) / np.sqrt(2 * np.pi))


@HYP
@given(n=st.integers(1, 1000), prior_var=log_uniform, noise_var=log_uniform,
       loc=st.floats(-5, 5), seed=st.integers(0, 1000))
def test_conjugate_gaussian_recovers_the_posterior(n, prior_var, noise_var, loc, seed):
    x = np.random.default_rng(seed).normal(loc, np.sqrt(noise_var), size=n)
    model = ConjugateGaussian(x, prior_var, noise_var)
    post_mean, post_cov = model.posterior()
    fit = vc.advi(model, seed=seed)
    mean, cov = fit.mean_cov()
    sd = np.sqrt(post_cov[0, 0])
    assert abs(mean[0] - post_mean[0]) < MEAN_TOL_SD * sd
    assert cov[0, 0] == pytest.approx(post_cov[0, 0], rel=VAR_RTOL)
    # at the optimum the ELBO equals log p(D): the family contains the posterior
    assert fit.smoothed_elbo[-1] == pytest.approx(model.log_evidence(), abs=0.01)


@HYP
@given(sigma=log_uniform, rho=st.floats(-0.95, 0.95), seed=st.integers(0, 1000))
def test_mean_field_shrinks_and_full_rank_recovers(sigma, rho, seed):
    model = CorrelatedGaussian(sigma, rho)
    mf = vc.advi(model, family="meanfield", seed=seed)
    mean, cov = mf.mean_cov()
    assert np.all(np.abs(mean) < MEAN_TOL_SD * sigma)
    np.testing.assert_allclose(np.diag(cov), sigma ** 2 * (1 - rho ** 2), rtol=VAR_RTOL)
    assert cov[0, 1] == 0.0
    fr = vc.advi(model, family="fullrank", seed=seed)
    mean, cov = fr.mean_cov()
    assert np.all(np.abs(mean) < MEAN_TOL_SD * sigma)
    np.testing.assert_allclose(cov, model.posterior()[1], atol=VAR_RTOL * sigma ** 2)


@pytest.mark.parametrize("gradient", ["stl", "closed_form"])
@pytest.mark.parametrize("init", ["laplace", "zero"])
def test_optimiser_converges_from_a_plain_start_and_with_either_gradient(gradient, init):
    """The textbook start N(0, I) and the closed-form-entropy gradient also reach the optimum on a
    moderately scaled problem (the default preconditioning is what makes extreme scales work)."""
    model = CorrelatedGaussian(2.0, 0.7)
    fit = vc.advi(model, family="fullrank", init=init, gradient=gradient, seed=3)
    assert fit.converged
    mean, cov = fit.mean_cov()
    assert np.all(np.abs(mean) < MEAN_TOL_SD * 2.0)
    np.testing.assert_allclose(cov, model.posterior()[1], atol=VAR_RTOL * 4.0)


@pytest.mark.parametrize("a,b", [(3.0, 2.0), (0.7, 0.5), (20.0, 40.0)])
def test_gamma_prior_through_the_log_transform(a, b):
    fit = vc.advi(GammaPrior(a, b), seed=1)
    (mu,), ((var,),) = fit.mean_cov()
    # E_q[theta] = exp(mu + var / 2) = a / b and Var_q[eta] = 1 / a at the optimum (module docstring)
    assert np.exp(mu + var / 2) == pytest.approx(a / b, rel=0.02)
    assert var == pytest.approx(1 / a, rel=VAR_RTOL)
    theta = fit.sample(200_000, np.random.default_rng(2))
    assert theta.shape == (200_000, 1) and np.all(theta > 0)
    assert theta.mean() == pytest.approx(a / b, rel=0.02 + 5 * theta.std() / np.sqrt(theta.size) / (a / b))


def test_gamma_three_two_from_zero_start():
    """Gamma(3, 2) prior, no data: E[theta] = 1.5 within 2% without the Laplace start."""
    fit = vc.advi(GammaPrior(3.0, 2.0), init="zero", seed=4)
    (mu,), ((var,),) = fit.mean_cov()
    assert np.exp(mu + var / 2) == pytest.approx(1.5, rel=0.02)


def test_jacobian_sign_of_the_advi_page_targets_the_wrong_density():
    """Errata: subtracting log|det J| (ADVI page) fits Gamma(a - 2, b) instead of Gamma(a, b)."""
    fit = vc.advi(PageSignGammaPrior(3.0, 2.0), seed=1)
    (mu,), ((var,),) = fit.mean_cov()
    assert np.exp(mu + var / 2) == pytest.approx((3.0 - 2.0) / 2.0, rel=0.02)   # 0.5, not 1.5


@pytest.mark.parametrize("a,b,heads,n", [(1.0, 1.0, 7, 10), (2.0, 5.0, 0, 3), (0.5, 0.5, 40, 50)])
def test_beta_bernoulli_through_the_logit_transform(a, b, heads, n):
    model = BetaBernoulli([1] * heads + [0] * (n - heads), a, b)
    fit = vc.advi(model, seed=2)
    (mu,), ((var,),) = fit.mean_cov()
    expected = (a + heads) / (a + b + n)           # posterior mean, = E_q[theta] (module docstring)
    got = gauss_hermite_mean(lambda e: 1 / (1 + np.exp(-e)), mu, var)
    assert got == pytest.approx(expected, rel=0.01)
    theta = fit.sample(1000, 3)
    assert np.all((theta > 0) & (theta < 1))


def test_inverse_gamma_normal_posterior():
    x = np.random.default_rng(5).normal(1.0, 2.0, size=200)
    model = InverseGammaNormal(x, a=2.0, b=3.0)
    exact = model.posterior()
    fit = vc.advi(model, seed=5)
    theta = fit.sample(200_000, 6)
    assert np.all(theta[:, 0] > 0)
    # with 200 data the posterior is close to Gaussian in (log s, m): mean-field error is O(1/n).
    # The course's targets: posterior means within 2 %, standard deviations within 10 %.
    assert theta[:, 0].mean() == pytest.approx(exact["mean_s"], rel=0.02)
    assert theta[:, 1].mean() == pytest.approx(exact["mean_m"], rel=0.02)
    assert abs(theta[:, 1].mean() - exact["mean_m"]) < 0.05 * exact["sd_m"]
    assert theta[:, 1].std() == pytest.approx(exact["sd_m"], rel=0.1)
    assert theta[:, 0].std() == pytest.approx(exact["sd_s"], rel=0.1)


def test_result_object():
    model = ConjugateGaussian([0.2, 1.1, 0.4])
    fit = vc.advi(model, family="fullrank", seed=0)
    assert isinstance(fit, ADVIResult)
    assert fit.family == vc.families.FullRankGaussian(1)
    assert fit.params.shape == (fit.family.n_params,)
    assert fit.elbo_trace.shape == (fit.n_steps,)
    assert fit.smoothed_elbo[-1] > fit.smoothed_elbo[0] - 1e-9
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.params = None
    # same seed, same run; a different seed gives different noise
    again = vc.advi(model, family="fullrank", seed=0)
    np.testing.assert_array_equal(fit.elbo_trace, again.elbo_trace)
    other = vc.advi(model, family="fullrank", seed=1, gradient="closed_form")
    assert not np.array_equal(fit.elbo_trace[:10], other.elbo_trace[:10])
    # n_steps is a hard cap
    short = vc.advi(model, n_steps=30)
    assert short.n_steps == 30 and not short.converged and short.elbo_trace.shape == (30,)
    # explicit starting parameters
    fam = vc.families.MeanFieldGaussian(1)
    start = fam.init_params(mean=[3.0], scale=0.5)
    fit = vc.advi(model, init=start, seed=0)
    np.testing.assert_array_equal(fit.init_params, start)
    assert fit.mean_cov()[0][0] == pytest.approx(model.posterior()[0][0], abs=0.05)


def test_model_without_supports_is_unconstrained():
    class Plain:
        dim = 1

        def log_joint(self, z):
            return -0.5 * (z[:, 0] + 3.0) ** 2

    fit = vc.advi(Plain(), seed=0)
    assert fit.sample(1000, 0).min() < -3.0 < fit.sample(1000, 0).max()
    assert fit.mean_cov()[0][0] == pytest.approx(-3.0, abs=0.05)


def test_progress_output(capsys):
    vc.advi(ConjugateGaussian([0.5, 0.7]), progress=True, seed=0)
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].startswith("advi step    100  smoothed ELBO")
    assert "converged after" in lines[-1]
    vc.advi(ConjugateGaussian([0.5, 0.7]), seed=0)
    assert capsys.readouterr().out == ""


def test_divergence_raises_a_clear_error():
    class Steep:
        dim = 1

        def log_joint(self, z):
            return -anp.exp(z[:, 0] ** 2)

    with pytest.raises(NonFiniteELBOError, match="smaller step_size"):
        vc.advi(Steep(), step_size=100.0, seed=0)


def test_bad_input():
    model = ConjugateGaussian([0.1])
    with pytest.raises(ValueError, match="fullrank.*meanfield|meanfield.*fullrank"):
        vc.advi(model, family="diagonal")
    for kwargs in ({"n_samples": 0}, {"n_steps": -1}, {"n_steps": 2.5}, {"step_size": 0},
                   {"window": 1}, {"init": "prior"}, {"gradient": "score"}, {"seed": "x"}):
        with pytest.raises(ValueError, match=list(kwargs)[0]):
            vc.advi(model, **kwargs)

    class NoDim:
        def log_joint(self, z):
            return z[:, 0]

    class NoLogJoint:
        dim = 1

    class WrongSupports:
        dim = 2
        supports = ["real"]

        def log_joint(self, z):
            return -anp.sum(z ** 2, axis=1)

    class WrongShape:
        dim = 2

        def log_joint(self, z):
            return z

    for bad, match in [(NoDim(), "dim"), (NoLogJoint(), "log_joint"), (WrongSupports(), "supports"),
                       (WrongShape(), "shape")]:
        with pytest.raises(ValueError, match=match):
            vc.advi(bad)
    with pytest.raises(ValueError, match="family.dim"):
        vc.advi(model, family=vc.families.MeanFieldGaussian(3))


# --------------------------------------------------------------------------------------------------
# the stopping rule: converged=True is not claimed far from the optimum


class _Gaussian:
    """A d-dimensional Gaussian target N(mean, cov), unnormalised."""

    def __init__(self, mean, cov):
        self.mean = np.asarray(mean, dtype=float)
        self.cov = np.asarray(cov, dtype=float)
        self.precision = np.linalg.inv(self.cov)
        self.dim = self.mean.size

    def log_joint(self, z):
        r = z - self.mean
        return -0.5 * anp.sum(anp.dot(r, self.precision) * r, axis=1)


def _random_gaussian(seed, d=10):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) * rng.uniform(0.1, 3)
    cov = a @ a.T / d + rng.uniform(0.01, 1) * np.eye(d)
    mean = rng.normal(size=d)
    return _Gaussian(mean * 5 / np.linalg.norm(mean) * rng.uniform(1, 3), cov)


@pytest.mark.parametrize("family", ["meanfield", "fullrank"])
@pytest.mark.parametrize("seed", [0, 7, 9])
def test_zero_start_on_an_ill_conditioned_gaussian_stops_only_near_the_optimum(seed, family):
    """The known weak spot: from init="zero" on a correlated 10-d Gaussian whose mean is 5-15 away
    from 0, the old rule (small ELBO gain, small movement) fired while the mean was still up to
    ~3.5 (several standard deviations of q) away, because the decaying step size makes the iterates
    move slowly. The gradient-based distance test must keep it going: when converged=True the mean
    is within a fraction of q's standard deviation (whitened by q's covariance)."""
    model = _random_gaussian(seed)
    fit = vc.advi(model, family=family, init="zero", seed=seed)
    mean, cov = fit.mean_cov()
    whitened = np.linalg.solve(np.linalg.cholesky(cov), mean - model.mean)
    assert fit.converged
    assert np.max(np.abs(whitened)) < 0.3, whitened
    assert np.max(np.abs(mean - model.mean) / np.sqrt(np.diag(model.cov))) < 0.3


def test_converged_is_not_claimed_when_the_optimum_is_out_of_reach():
    """Thirty standard deviations from the zero start, Adam's decaying step cannot get there in 3000
    steps (the old rule claimed converged=True after 2600 steps, 4.6 sd away); the run must report
    converged=False. Fifteen sd away it gets there, and stops only once it has (old rule: 0.7 sd off)."""
    model = _Gaussian([30.0, -30.0], np.eye(2))
    fit = vc.advi(model, init="zero", n_steps=3000, seed=0)
    assert not fit.converged and fit.n_steps == 3000
    nearer = vc.advi(_Gaussian([15.0, -15.0], np.eye(2)), init="zero", n_steps=3000, seed=0)
    assert nearer.converged
    np.testing.assert_allclose(nearer.mean_cov()[0], [15.0, -15.0], atol=0.2)
    # the default start (Laplace) is at the optimum at once
    fit = vc.advi(model, seed=0)
    assert fit.converged
    np.testing.assert_allclose(fit.mean_cov()[0], [30.0, -30.0], atol=0.05)


@pytest.mark.parametrize("family", ["meanfield", "fullrank"])
def test_laplace_default_converges_quickly_in_higher_dimensions(family):
    """The stricter rule must not slow the default path: a 30-d correlated Gaussian converges within
    a few hundred steps and recovers the mean (and, for full rank, the covariance)."""
    model = _random_gaussian(3, d=30)
    fit = vc.advi(model, family=family, seed=1)
    assert fit.converged and fit.n_steps <= 1000
    mean, cov = fit.mean_cov()
    sd = np.sqrt(np.diag(cov))
    assert np.max(np.abs(mean - model.mean) / sd) < 0.3
    if family == "fullrank":
        assert vc.divergences.kl_gaussian(mean, cov, model.mean, model.cov) < 0.05


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py)

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402

_GAMMA = GammaPrior(3.0, 2.0)
_FIT = vc.advi(_GAMMA, n_steps=60)

BAD_INPUT = [
    spec("advi", vc.advi, dict(model=_GAMMA, family="meanfield", n_steps=200, n_samples=5, seed=0, step_size=0.1,
                               decay=0.01, window=10, patience=2, min_steps=10, tol=1e-3, param_tol=0.1),
         dict(model=("values", [None, 3, "abc", ConjugateGaussian([0.1]).log_joint]),
              family=("values", ["diagonal", None, 3, vc.families.MeanFieldGaussian(3), object()]),
              n_steps="int", n_samples="int", seed="rng", step_size="pos", decay="nonneg", patience="int",
              window=("values", [1, 0, 2.5, "3", None, True]), min_steps="int0", tol="nonneg", param_tol="pos")),
    spec("advi(init)", vc.advi, dict(model=_GAMMA, n_steps=50, init="laplace"),
         dict(init=("values", ["prior", None, 3, np.zeros(3), np.full(2, np.nan), "abc"]))),
    spec("advi(gradient)", vc.advi, dict(model=_GAMMA, n_steps=50, gradient="stl"),
         dict(gradient=("values", ["score", None, 3]))),
    spec("advi(progress)", vc.advi, dict(model=_GAMMA, n_steps=50, progress=False, print_every=10),
         dict(progress="bool", print_every=("values", [0, -1, 2.5, "a"]))),
    spec("ADVIResult.sample", _FIT.sample, dict(n=3, rng=0), dict(n="int", rng="rng")),
    spec("ADVIResult.sample_unconstrained", _FIT.sample_unconstrained, dict(n=3, rng=0), dict(n="int", rng="rng")),
]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)


# --------------------------------------------------------------------------------------------------
# the exact-posterior properties on unusual scales (each case well under a second)


@pytest.mark.parametrize("n, prior_var, noise_var, loc", [
    (1, 1e-4, 1e4, 0.0), (3, 1e4, 1e-4, 1e5), (100_000, 1.0, 1e-3, -50.0), (20, 1e-3, 1e-3, 1e3)])
@pytest.mark.parametrize("family", ["meanfield", "fullrank"])
def test_conjugate_gaussian_recovers_the_posterior_on_extreme_scales(n, prior_var, noise_var, loc, family):
    x = np.random.default_rng(n).normal(loc, np.sqrt(noise_var), size=n)
    model = ConjugateGaussian(x, prior_var, noise_var)
    post_mean, post_cov = model.posterior()
    fit = vc.advi(model, family=family, seed=n % 7)
    mean, cov = fit.mean_cov()
    assert fit.converged
    assert abs(mean[0] - post_mean[0]) < MEAN_TOL_SD * np.sqrt(post_cov[0, 0])
    assert cov[0, 0] == pytest.approx(post_cov[0, 0], rel=VAR_RTOL)


@pytest.mark.parametrize("sigma, rho", [(1e-3, 0.999), (1e3, -0.999), (1e-3, -0.5), (1e3, 0.99)])
def test_mean_field_shrinks_and_full_rank_recovers_on_extreme_scales(sigma, rho):
    model = CorrelatedGaussian(sigma, rho)
    mf = vc.advi(model, family="meanfield", seed=2)
    mean, cov = mf.mean_cov()
    assert mf.converged and np.all(np.abs(mean) < MEAN_TOL_SD * sigma)
    np.testing.assert_allclose(np.diag(cov), sigma ** 2 * (1 - rho ** 2), rtol=VAR_RTOL)
    fr = vc.advi(model, family="fullrank", seed=2)
    mean, cov = fr.mean_cov()
    assert fr.converged and np.all(np.abs(mean) < MEAN_TOL_SD * sigma)
    # the whole covariance, in the target's own metric (an entrywise tolerance means nothing at rho ~ 1)
    assert vc.divergences.kl_gaussian(mean, cov, np.zeros(2), model.posterior()[1]) < 1e-3


@pytest.mark.parametrize("n, a, b, loc, scale", [
    (30, 2.0, 3.0, 1.5, 2.0), (100, 1.0, 1.0, -100.0, 0.01), (1000, 5.0, 0.5, 0.0, 50.0)])
@pytest.mark.parametrize("family", ["meanfield", "fullrank"])
def test_inverse_gamma_normal_posterior_on_other_data(n, a, b, loc, scale, family):
    """Posterior means within 2 % and standard deviations within 10 % on data sets the benchmark and
    the chapter do not use (for n >= 30; at n = 10 the Gaussian family's own bias in sd[s] is ~20 %,
    which no optimiser can remove)."""
    model = InverseGammaNormal(np.random.default_rng(n).normal(loc, scale, size=n), a=a, b=b)
    exact = model.posterior()
    fit = vc.advi(model, family=family, seed=3)
    assert fit.converged
    theta = fit.sample(200_000, 4)
    assert theta[:, 0].mean() == pytest.approx(exact["mean_s"], rel=0.02)
    assert abs(theta[:, 1].mean() - exact["mean_m"]) < 0.02 * max(abs(exact["mean_m"]), exact["sd_m"])
    assert theta[:, 0].std() == pytest.approx(exact["sd_s"], rel=0.1)
    assert theta[:, 1].std() == pytest.approx(exact["sd_m"], rel=0.1)


@pytest.mark.parametrize("family", ["meanfield", "fullrank"])
@pytest.mark.parametrize("init", ["laplace", "zero"])
@pytest.mark.parametrize("seed", [0, 5])
def test_gamma_three_two_mean_for_every_start_family_and_seed(family, init, seed):
    fit = vc.advi(GammaPrior(3.0, 2.0), family=family, init=init, seed=seed)
    (mu,), ((var,),) = fit.mean_cov()
    assert fit.converged
    assert np.exp(mu + var / 2) == pytest.approx(1.5, rel=0.02)


class _Model:
    """A one-dimensional model around a given log joint."""

    def __init__(self, log_joint, supports=("real",)):
        self.dim = 1
        self.supports = list(supports)
        self.log_joint = log_joint


@pytest.mark.filterwarnings("ignore:Output seems independent of input")
@pytest.mark.parametrize("log_joint, match", [
    (lambda z: np.full(len(z), "a"), "model.log_joint must return real numbers"),
    (lambda z: z[:, 0] * 1j, "model.log_joint must return real numbers"),
    (lambda z: np.asarray(-0.5 * np.asarray(z)[:, 0] ** 2), "differentiated by autograd"),
    (lambda z: z + "a", "model.log_joint failed"),
    (lambda z: -0.5 * anp.sum(z ** 2) * anp.ones(2), r"map \(n, 1\) to \(n,\); for n=3"),
    (lambda z: -0.5 * z ** 2, r"map \(n, 1\) to \(n,\); for n=2 it returned shape \(2, 1\)"),
    (lambda z: z[:, 0] * np.nan, "not finite at the starting draws"),
    (lambda z: anp.where(z[:, 0] > 0.5, -z[:, 0] ** 2, -np.inf), "not finite at the starting draws"),
])
def test_models_that_cannot_work_get_a_clear_value_error(log_joint, match):
    with pytest.raises(ValueError, match=match):
        vc.advi(_Model(log_joint), n_steps=50)


def test_non_finite_elbo_error_is_a_value_error_and_a_floating_point_error():
    assert issubclass(NonFiniteELBOError, ValueError) and issubclass(NonFiniteELBOError, FloatingPointError)
