"""Tests of vi_course.gradients (chapters Stochastic gradients and REINFORCE).

The exact ELBO gradient of a Gaussian q against a Gaussian target N(m, P^{-1}) is written out by hand
here (independently of the library): ELBO = log Z - KL(q || target), so
dELBO/dmu = P (m - mu) and dELBO/dL = -P L + L^{-T}; with the flat layouts of vi_course.families the
log-diagonal entries pick up a factor L_jj.
"""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from vi_course import gradients as G
from vi_course.families import FullRankGaussian, MeanFieldGaussian
from vi_course.models import ConjugateGaussian, CorrelatedGaussian


def exact_gradient(family, params, target_mean, target_cov):
    precision = np.linalg.inv(target_cov)
    mean, chol = family.unpack(params)
    if isinstance(family, MeanFieldGaussian):
        chol = np.diag(chol)
    d_mu = precision @ (target_mean - mean)
    d_chol = -precision @ chol + np.linalg.inv(chol).T
    if isinstance(family, MeanFieldGaussian):
        return np.concatenate([d_mu, np.diag(d_chol) * np.diag(chol)])
    rows, cols = np.tril_indices(family.dim)
    packed = d_chol[rows, cols] * np.where(rows == cols, chol[rows, cols], 1.0)
    return np.concatenate([d_mu, packed])


def problems():
    x = np.random.default_rng(0).normal(1.5, 2.0, size=12)
    conj = ConjugateGaussian(x, prior_var=2.0, noise_var=4.0)
    corr = CorrelatedGaussian(sigma=1.5, rho=0.8)
    out = []
    for model, fam in [(conj, MeanFieldGaussian(1)), (conj, FullRankGaussian(1)),
                       (corr, MeanFieldGaussian(2)), (corr, FullRankGaussian(2))]:
        mean, cov = model.posterior()
        rng = np.random.default_rng(fam.n_params)
        # a q away from the optimum: mean shifted by ~1 sd, scales off by a factor ~1.5
        params = fam.init_params(mean=mean + np.sqrt(np.diag(cov)) * rng.choice([-1, 1], size=fam.dim),
                                 scale=np.sqrt(np.diag(cov)) * 1.5)
        params = params + rng.normal(scale=0.1, size=fam.n_params)
        out.append(pytest.param(model, fam, params, id=f"{type(model).__name__}-{type(fam).__name__}"))
    return out


@pytest.mark.parametrize("model,fam,params", problems())
def test_exact_gradient_helper_matches_autograd_of_closed_form_elbo(model, fam, params):
    """Check the hand-written gradient once against autograd of the closed-form ELBO."""
    mean, cov = model.posterior()
    prec = np.linalg.inv(cov)

    def closed_form_elbo(p):
        mu, chol = fam._mu_chol(p)
        sigma = anp.dot(chol, anp.transpose(chol))
        diff = mean - mu
        return -0.5 * (anp.trace(anp.dot(prec, sigma)) + anp.dot(diff, anp.dot(prec, diff))
                       - anp.log(anp.linalg.det(sigma)))

    np.testing.assert_allclose(autograd.grad(closed_form_elbo)(params),
                               exact_gradient(fam, params, mean, cov), rtol=1e-10, atol=1e-10)


def assert_unbiased(rows, exact, n_se=5.0):
    mean = rows.mean(axis=0)
    se = rows.std(axis=0, ddof=1) / np.sqrt(rows.shape[0])
    assert np.all(np.abs(mean - exact) <= n_se * se + 1e-9), (mean, exact, se)


@pytest.mark.parametrize("model,fam,params", problems())
@pytest.mark.parametrize("entropy", ["closed_form", "monte_carlo"])
def test_reparam_gradient_is_unbiased(model, fam, params, entropy):
    rows = G.reparam_grad_samples(model.log_joint, fam, params, 20_000, 11, entropy=entropy)
    assert rows.shape == (20_000, fam.n_params)
    assert_unbiased(rows, exact_gradient(fam, params, *model.posterior()))
    # the estimator is the row mean of the per-sample terms for the same noise
    np.testing.assert_allclose(G.reparam_grad(model.log_joint, fam, params, 50, 3, entropy=entropy),
                               G.reparam_grad_samples(model.log_joint, fam, params, 50, 3,
                                                      entropy=entropy).mean(axis=0), atol=1e-10)


@pytest.mark.parametrize("model,fam,params", problems())
@pytest.mark.parametrize("baseline", [None, 25.0])
def test_score_function_gradient_is_unbiased(model, fam, params, baseline):
    rows = G.score_function_grad_samples(model.log_joint, fam, params, 40_000, 12, baseline=baseline)
    assert_unbiased(rows, exact_gradient(fam, params, *model.posterior()))
    np.testing.assert_allclose(
        G.score_function_grad(model.log_joint, fam, params, 50, 4, baseline=baseline),
        G.score_function_grad_samples(model.log_joint, fam, params, 50, 4, baseline=baseline).mean(axis=0),
        atol=1e-10)


@pytest.mark.parametrize("model,fam,params", [problems()[i] for i in (0, 1, 3)])
def test_leave_one_out_baseline_is_unbiased(model, fam, params):
    """Unbiased even with n = 5 samples (the plain mean including sample k would not be)."""
    exact = exact_gradient(fam, params, *model.posterior())
    loo = G.gradient_variance(model.log_joint, fam, params, 5, 13, estimator="score_function",
                              baseline="mean", n_repeats=600)
    assert np.all(np.abs(loo.mean - exact) <= 5 * loo.std_error)


@pytest.mark.parametrize("model,fam,params", problems()[:2])
def test_baseline_reduces_variance(model, fam, params):
    """The learning signal log p(z, D) - log q(z) sits near log p(D) ~ -25 here; removing that offset
    is what the baseline is for. (On the normalised 2-D target, whose signal is centred near 0,
    a baseline has little to remove.)"""
    rng = np.random.default_rng(14)
    plain = G.gradient_variance(model.log_joint, fam, params, 10, rng, estimator="score_function",
                                n_repeats=300)
    loo = G.gradient_variance(model.log_joint, fam, params, 10, rng, estimator="score_function",
                              baseline="mean", n_repeats=300)
    assert np.all(loo.variance < 0.2 * plain.variance)


@pytest.mark.parametrize("model,fam,params", problems())
def test_score_function_has_larger_variance_than_reparam(model, fam, params):
    n = 20_000
    reparam = G.reparam_grad_samples(model.log_joint, fam, params, n, 5).var(axis=0)
    score = G.score_function_grad_samples(model.log_joint, fam, params, n, 5).var(axis=0)
    assert np.all(score > reparam)


def test_score_function_needs_no_gradient_of_the_model():
    """REINFORCE works with a log joint autograd cannot differentiate (plain numpy, np.asarray)."""
    model = CorrelatedGaussian(1.0, 0.5)
    fam = MeanFieldGaussian(2)
    params = fam.init_params(mean=[0.5, -0.5])

    def opaque(z):
        return np.asarray(model.log_joint(np.asarray(z)))

    rows = G.score_function_grad_samples(opaque, fam, params, 40_000, 6, baseline="mean")
    assert_unbiased(rows, exact_gradient(fam, params, *model.posterior()), n_se=6)


def test_lecture_eq_52_estimator_is_biased():
    """Errata: averaging grad((log q + 1) g) (lecture eq. 52-53) does not estimate grad ELBO."""
    model = ConjugateGaussian([0.3, -0.4, 1.2], prior_var=1.0, noise_var=1.0)
    fam = MeanFieldGaussian(1)
    params = fam.init_params(mean=[0.5], scale=0.8)
    n = 40_000
    z = fam.sample(params, n, 8)
    batch = np.tile(params, (n, 1))

    def lecture_objective(P):
        log_q = fam.log_prob(P, z)
        return anp.sum((log_q + 1.0) * (model.log_joint(z) - log_q))

    rows = autograd.grad(lecture_objective)(batch)
    exact = exact_gradient(fam, params, *model.posterior())
    se = rows.std(axis=0, ddof=1) / np.sqrt(n)
    # the log-sigma component is off by E[log q * d log q / d log sigma] = -1 (so +1 here)
    assert abs(rows.mean(axis=0)[1] - exact[1]) > 20 * se[1]
    assert rows.mean(axis=0)[1] - exact[1] == pytest.approx(1.0, abs=6 * se[1])
    # while the corrected form is unbiased on the same samples
    correct = G.score_function_grad_samples(model.log_joint, fam, params, n, 8)
    assert_unbiased(correct, exact)


def test_gradients_at_the_optimum_vanish_in_mean():
    model = CorrelatedGaussian(2.0, -0.6)
    fam = FullRankGaussian(2)
    params = fam.from_mean_cov(*model.posterior())
    rows = G.reparam_grad_samples(model.log_joint, fam, params, 20_000, 9)
    assert_unbiased(rows, np.zeros(fam.n_params))
    # with the Monte Carlo entropy the log weights are constant at the optimum, but the gradient
    # keeps the score term d(-log q)/d(theta) at fixed z, which is zero only in mean
    rows = G.reparam_grad_samples(model.log_joint, fam, params, 20_000, 9, entropy="monte_carlo")
    assert_unbiased(rows, np.zeros(fam.n_params))


def test_bad_input():
    model = ConjugateGaussian([0.1, 0.2])
    fam = MeanFieldGaussian(1)
    params = fam.init_params()
    with pytest.raises(ValueError, match="baseline"):
        G.score_function_grad(model.log_joint, fam, params, 10, 0, baseline="median")
    with pytest.raises(ValueError, match="n >= 2"):
        G.score_function_grad(model.log_joint, fam, params, 1, 0, baseline="mean")
    with pytest.raises(ValueError, match="baseline"):
        G.score_function_grad(model.log_joint, fam, params, 10, 0, baseline=np.nan)
    with pytest.raises(ValueError, match="estimator"):
        G.gradient_variance(model.log_joint, fam, params, 10, 0, estimator="pathwise")
    with pytest.raises(ValueError, match="n_repeats"):
        G.gradient_variance(model.log_joint, fam, params, 10, 0, n_repeats=1)
    with pytest.raises(ValueError, match="params"):
        G.reparam_grad(model.log_joint, fam, np.zeros(5), 10, 0)
    with pytest.raises(ValueError, match="family"):
        G.reparam_grad(model.log_joint, None, params, 10, 0)


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py)

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402

_MODEL = ConjugateGaussian([0.3, -1.2, 0.8])
_MF1 = MeanFieldGaussian(1)
_COMMON = dict(log_joint=_MODEL.log_joint, family=_MF1, params=_MF1.init_params(), n=10, rng=0)
_KINDS = dict(log_joint="callable", family="family", params=("params", 2), n="int", rng="rng")

BAD_INPUT = [
    spec("reparam_grad", G.reparam_grad, _COMMON, dict(_KINDS, entropy=("values", ["exact", None]))),
    spec("reparam_grad_samples", G.reparam_grad_samples, _COMMON, _KINDS),
    spec("score_function_grad", G.score_function_grad, dict(_COMMON, baseline=1.0),
         dict(_KINDS, baseline=("values", [np.nan, np.inf, "median", [1.0, 2.0], True, object()]))),
    spec("score_function_grad_samples", G.score_function_grad_samples, _COMMON, _KINDS),
    spec("gradient_variance", G.gradient_variance, dict(_COMMON, n_repeats=3, estimator="reparam"),
         dict(_KINDS, n_repeats=("values", [1, 0, 2.5, "3", None, True]), estimator=("values", ["x", None, 3]))),
]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)


def test_gradient_variance_is_the_spread_of_repeated_estimates():
    """gradient_variance's mean, variance and standard error are those of independent repetitions
    (same generator, same draws), so the unbiasedness tests that use them test something."""
    model = CorrelatedGaussian(1.5, 0.8)
    fam = FullRankGaussian(2)
    params = fam.init_params(mean=[0.5, -0.5], scale=0.7)
    stats_ = G.gradient_variance(model.log_joint, fam, params, 7, np.random.default_rng(4), n_repeats=50)
    rng = np.random.default_rng(4)
    draws = np.array([G.reparam_grad(model.log_joint, fam, params, 7, rng) for _ in range(50)])
    np.testing.assert_allclose(stats_.mean, draws.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats_.variance, draws.var(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(stats_.std_error, draws.std(axis=0, ddof=1) / np.sqrt(50), rtol=1e-12)
    assert stats_.n_repeats == 50
