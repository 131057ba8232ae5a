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
    assert np.all(np.abs(mean) < 0.1 * 2.0)
    np.testing.assert_allclose(cov, model.posterior()[1], atol=0.1 * 4.0)


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
    # with 200 data the posterior is close to Gaussian in (log s, m): mean-field error is O(1/n)
    assert theta[:, 0].mean() == pytest.approx(exact["mean_s"], rel=0.03)
    assert abs(theta[:, 1].mean() - exact["mean_m"]) < 0.1 * exact["sd_m"]
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
