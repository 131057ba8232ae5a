"""Tests of the constrained example models (chapter "ADVI with constraining transforms").

The closed-form posterior of InverseGammaNormal is derived with sympy (completing the square and the
Gaussian and inverse-gamma integrals) and checked end to end against 2-D grid integration of
exp(log_joint) on random data; BetaBernoulli is checked against 1-D quadrature.
"""
import numpy as np
import pytest
import sympy as sp
from autograd import elementwise_grad
from scipy import integrate, stats
from scipy.special import logsumexp

from vi_course import transforms as tr
from vi_course.models import BetaBernoulli, InverseGammaNormal

DATASETS = [  # (seed, n, true mean, true sd, a, b)
    (0, 5, 0.5, 1.0, 2.0, 3.0),
    (1, 20, -1.5, 0.6, 3.5, 0.7),
    (2, 60, 4.0, 2.0, 2.0, 3.0),
    (3, 6, 0.0, 3.0, 1.2, 0.4),
]


def _data(seed, n, loc, scale):
    return np.random.default_rng(seed).normal(loc, scale, size=n)


def _grid_moments(model, n_s=1201, n_m=1201):
    """Posterior mass, means and sds by Simpson's rule on a 2-D grid in (s, m).

    The grid is set from the data alone (not from the closed form it is testing): s up to a generous
    multiple of (b + sum x^2 / 2) / (a + n / 2), m around the sample mean. Large values of s are reached
    through a grid that is uniform in s**(1/3), which concentrates points where the mass is.
    """
    x = model.x
    scale = (model.b + 0.5 * np.sum((x - x.mean()) ** 2) + 0.5 * x.mean() ** 2) / (model.a + 0.5 * x.size)
    s_hi = 400.0 * scale
    u = np.linspace(0.0, s_hi ** (1.0 / 3.0), n_s)[1:]
    s = u ** 3
    half = 12.0 * np.sqrt(40.0 * scale / (x.size + 1.0)) + 1.0
    m = np.linspace(x.sum() / (x.size + 1) - half, x.sum() / (x.size + 1) + half, n_m)
    S, M = np.meshgrid(s, m, indexing="ij")
    log_j = model.log_joint(np.column_stack([S.ravel(), M.ravel()])).reshape(S.shape)
    jac = 3.0 * u[:, None] ** 2  # ds = 3 u^2 du
    shift = log_j.max()
    w = np.exp(log_j - shift) * jac

    def integral(f):
        return integrate.simpson(integrate.simpson(f * w, x=m, axis=1), x=u)

    z = integral(1.0)
    es, em = integral(S) / z, integral(M) / z
    vs, vm = integral(S ** 2) / z - es ** 2, integral(M ** 2) / z - em ** 2
    return {"log_z": float(np.log(z) + shift), "mean_s": es, "mean_m": em, "sd_s": np.sqrt(vs), "sd_m": np.sqrt(vm)}


@pytest.mark.parametrize("seed,n,loc,scale,a,b", DATASETS)
def test_posterior_moments_and_evidence_match_grid_integration(seed, n, loc, scale, a, b):
    model = InverseGammaNormal(_data(seed, n, loc, scale), a=a, b=b)
    exact = model.posterior()
    grid = _grid_moments(model)
    assert exact["mean_m"] == pytest.approx(grid["mean_m"], rel=1e-4, abs=1e-5)
    assert exact["mean_s"] == pytest.approx(grid["mean_s"], rel=1e-4)
    assert exact["sd_m"] == pytest.approx(grid["sd_m"], rel=1e-3)
    if exact["a_n"] >= 4:
        # E[s^2] has a tail ~ s_hi^(2 - a_n) beyond the grid, too heavy to truncate when a_n < 4
        assert exact["sd_s"] == pytest.approx(grid["sd_s"], rel=2e-3)
    assert model.log_evidence() == pytest.approx(grid["log_z"], abs=1e-4)
    np.testing.assert_allclose(exact["mean"], [exact["mean_s"], exact["mean_m"]])
    np.testing.assert_allclose(exact["sd"], [exact["sd_s"], exact["sd_m"]])


def test_divergent_moments_are_infinite_not_nan():
    # a_n = 0.3 + 1/2 = 0.8 < 1: E[s] diverges (and so do Var[s] and Var[m])
    model = InverseGammaNormal([0.4], a=0.3, b=1.0)
    post = model.posterior()
    assert post["mean_s"] == np.inf and post["sd_s"] == np.inf and post["sd_m"] == np.inf
    assert post["mean_m"] == pytest.approx(0.2)
    # a_n = 1.5: finite mean, infinite variance of s
    post = InverseGammaNormal([0.4], a=1.0, b=1.0).posterior()
    assert np.isfinite(post["mean_s"]) and post["sd_s"] == np.inf and np.isfinite(post["sd_m"])


def test_sympy_derivation_of_the_conjugate_posterior():
    """Derive the posterior with sympy and compare with the model on random data.

    1. Completing the square: log p(x, s, m) - [-(a_n + 1) log s - b_n / s - log s / 2
       - kappa_n (m - mu_n)^2 / (2 s)] is free of s and m.
    2. Gaussian integral over m and inverse-gamma integrals over s give E[m], Var[m], E[s], Var[s] and
       the evidence.
    """
    s, a, b, kappa, beta, c = sp.symbols("s a b kappa beta c", positive=True)
    m, sx = sp.symbols("m S_x", real=True)
    sxx = sp.Symbol("S_xx", positive=True)
    n = sp.Symbol("n", positive=True, integer=True)
    log_joint = (a * sp.log(b) - sp.loggamma(a) - (a + 1) * sp.log(s) - b / s
                 - sp.log(2 * sp.pi * s) / 2 - m ** 2 / (2 * s)                      # m | s ~ N(0, s)
                 - n * sp.log(2 * sp.pi * s) / 2 - (sxx - 2 * m * sx + n * m ** 2) / (2 * s))  # sum_i log N(x_i; m, s)
    kappa_n, mu_n, a_n = 1 + n, sx / (1 + n), a + n / 2
    b_n = b + (sxx - sx ** 2 / (1 + n)) / 2
    kernel = -(a_n + 1) * sp.log(s) - b_n / s - sp.log(s) / 2 - kappa_n * (m - mu_n) ** 2 / (2 * s)
    rest = sp.expand(log_joint - kernel)
    assert sp.simplify(sp.diff(rest, s)) == 0
    assert sp.simplify(sp.diff(rest, m)) == 0
    log_const = sp.simplify(rest)

    # Gaussian integrals in u = m - mu_n (kappa stands for kappa_n)
    u = sp.Symbol("u", real=True)
    g = sp.exp(-kappa * u ** 2 / (2 * s))
    g0, g1, g2 = (sp.integrate(u ** k * g, (u, -sp.oo, sp.oo)) for k in range(3))
    assert sp.simplify(g0 - sp.sqrt(2 * sp.pi * s / kappa)) == 0
    assert g1 == 0                                   # E[m | s] = mu_n
    assert sp.simplify(g2 / g0 - s / kappa) == 0     # Var[m | s] = s / kappa_n
    # inverse-gamma integrals: int_0^oo s^(j - c - 1) exp(-beta / s) ds; after integrating m out the
    # s-kernel is s^(-(a_n + 1)) exp(-b_n / s) (the sqrt(s) of g0 cancels the s^(-1/2) of the kernel)
    h = [sp.integrate(s ** (j - c - 1) * sp.exp(-beta / s), (s, 0, sp.oo), conds="none") for j in range(3)]
    mean_s = sp.gammasimp(h[1] / h[0])
    var_s = sp.simplify(sp.gammasimp(h[2] / h[0]) - mean_s ** 2)
    assert sp.simplify(mean_s - beta / (c - 1)) == 0
    assert sp.simplify(var_s - beta ** 2 / ((c - 1) ** 2 * (c - 2))) == 0
    # Var[m] = E[Var[m | s]] + Var[E[m | s]] = E[s] / kappa_n
    var_m = mean_s / kappa
    log_evidence = log_const + sp.log(sp.sqrt(2 * sp.pi / kappa)) + sp.log(h[0])

    subs_post = {beta: b_n, c: a_n, kappa: kappa_n}
    f_mean_s = sp.lambdify((n, sx, sxx, a, b), mean_s.subs(subs_post))
    f_sd_s = sp.lambdify((n, sx, sxx, a, b), sp.sqrt(var_s.subs(subs_post)))
    f_mean_m = sp.lambdify((n, sx, sxx, a, b), mu_n)
    f_sd_m = sp.lambdify((n, sx, sxx, a, b), sp.sqrt(var_m.subs(subs_post)))
    f_log_ev = sp.lambdify((n, sx, sxx, a, b), log_evidence.subs(subs_post), modules=["scipy", "numpy"])
    for seed, size, loc, scale, a_, b_ in DATASETS:
        x = _data(seed, size, loc, scale)
        args = (x.size, x.sum(), np.sum(x ** 2), a_, b_)
        model = InverseGammaNormal(x, a=a_, b=b_)
        post = model.posterior()
        assert post["mean_s"] == pytest.approx(f_mean_s(*args), rel=1e-12)
        assert post["sd_s"] == pytest.approx(f_sd_s(*args), rel=1e-12)
        assert post["mean_m"] == pytest.approx(f_mean_m(*args), rel=1e-12, abs=1e-14)
        assert post["sd_m"] == pytest.approx(f_sd_m(*args), rel=1e-12)
        assert model.log_evidence() == pytest.approx(float(f_log_ev(*args)), rel=1e-12)


def test_marginal_of_m_is_student_t():
    x = _data(4, 8, 1.0, 1.5)
    model = InverseGammaNormal(x)
    post = model.posterior()
    t = stats.t(df=2 * post["a_n"], loc=post["mu_n"], scale=np.sqrt(post["b_n"] / (post["a_n"] * post["kappa_n"])))
    assert t.mean() == pytest.approx(post["mean_m"])
    assert t.std() == pytest.approx(post["sd_m"])
    # integrate the exact joint posterior density over s numerically, at a few m
    for m in [-1.0, 0.7, 2.5]:
        marginal = integrate.quad(lambda s: np.exp(model.posterior_logpdf(s, m)), 0, np.inf)[0]
        assert marginal == pytest.approx(t.pdf(m), rel=1e-7)


def test_posterior_logpdf_is_log_joint_minus_log_evidence():
    rng = np.random.default_rng(5)
    model = InverseGammaNormal(_data(5, 15, 0.3, 0.8), a=2.5, b=1.0)
    theta = np.column_stack([np.exp(rng.normal(size=200)), rng.normal(size=200)])
    np.testing.assert_allclose(model.posterior_logpdf(theta[:, 0], theta[:, 1]),
                               model.log_joint(theta) - model.log_evidence(), rtol=1e-10, atol=1e-9)
    S, M = np.meshgrid([0.5, 1.0], [0.0, 1.0, 2.0])
    assert model.posterior_logpdf(S, M).shape == (3, 2)
    assert np.all(model.posterior_logpdf(np.array([0.0, -1.0]), 0.0) == -np.inf)


def test_log_joint_against_scipy_and_its_gradient():
    rng = np.random.default_rng(6)
    x = _data(6, 7, -0.4, 1.1)
    model = InverseGammaNormal(x, a=2.0, b=3.0)
    theta = np.column_stack([np.exp(rng.normal(size=20)), rng.normal(size=20)])
    expected = (stats.invgamma(2.0, scale=3.0).logpdf(theta[:, 0])
                + stats.norm(0.0, np.sqrt(theta[:, 0])).logpdf(theta[:, 1])
                + stats.norm(theta[:, 1][:, None], np.sqrt(theta[:, 0])[:, None]).logpdf(x[None, :]).sum(1))
    np.testing.assert_allclose(model.log_joint(theta), expected, rtol=1e-11)
    grad = elementwise_grad(model.log_joint)(theta)
    h = 1e-6
    for j in range(2):
        step = np.zeros(2)
        step[j] = h
        numeric = (model.log_joint(theta + step) - model.log_joint(theta - step)) / (2 * h)
        np.testing.assert_allclose(grad[:, j], numeric, rtol=1e-5, atol=1e-5)


def test_log_joint_off_support_is_minus_inf_with_finite_gradient():
    model = InverseGammaNormal([0.1, 0.2])
    theta = np.array([[0.0, 0.0], [-2.0, 1.0], [1.0, 1.0]])
    value = model.log_joint(theta)
    assert value[0] == -np.inf and value[1] == -np.inf and np.isfinite(value[2])
    grad = elementwise_grad(model.log_joint)(theta)
    assert np.all(np.isfinite(grad))


def test_unconstrained_log_joint_has_the_same_evidence():
    # integrate log_joint(T^{-1}(eta)) + log|J| over (log s, m) on a grid: same evidence as the closed form
    model = InverseGammaNormal(_data(7, 10, 2.0, 1.0))
    log_q = tr.transformed_log_density(model.log_joint, tr.from_supports(model.supports))
    e1, e2 = np.linspace(-6, 6, 801), np.linspace(-4, 8, 801)
    E1, E2 = np.meshgrid(e1, e2, indexing="ij")
    vals = log_q(np.column_stack([E1.ravel(), E2.ravel()])).reshape(E1.shape)
    shift = vals.max()
    z = integrate.simpson(integrate.simpson(np.exp(vals - shift), x=e2, axis=1), x=e1)
    assert np.log(z) + shift == pytest.approx(model.log_evidence(), abs=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"x": []}, "x must contain at least one"),
    ({"x": [[1.0, 2.0]]}, "x must have 1 dimension"),
    ({"x": 1.0}, "x must have 1 dimension"),
    ({"x": [1.0, np.nan]}, "x must contain only finite"),
    ({"x": [1.0, np.inf]}, "x must contain only finite"),
    ({"x": ["a"]}, "x must be numeric"),
    ({"x": [1.0], "a": 0.0}, "a must be > 0"),
    ({"x": [1.0], "a": -1.0}, "a must be > 0"),
    ({"x": [1.0], "b": 0.0}, "b must be > 0"),
    ({"x": [1.0], "b": np.nan}, "b must be finite"),
])
def test_inverse_gamma_normal_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InverseGammaNormal(**kwargs)


def test_inverse_gamma_normal_bad_theta():
    model = InverseGammaNormal([0.1, 0.2])
    with pytest.raises(ValueError, match=r"theta must have shape \(n_samples, 2\)"):
        model.log_joint(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="theta must contain only finite"):
        model.log_joint(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="^s "):
        model.posterior_logpdf(np.nan, 0.0)


# ---------------------------------------------------------------------------------------------
# BetaBernoulli
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed,n,p,a,b", [(0, 10, 0.3, 1.0, 1.0), (1, 40, 0.8, 2.0, 5.0), (2, 3, 0.5, 0.5, 0.5)])
def test_beta_bernoulli_matches_quadrature(seed, n, p, a, b):
    x = (np.random.default_rng(seed).uniform(size=n) < p).astype(float)
    model = BetaBernoulli(x, a=a, b=b)
    dens = lambda t: np.exp(model.log_joint(np.array([[t]]))[0])  # noqa: E731
    opts = {"limit": 200, "points": [0.5]}
    z = integrate.quad(dens, 0, 1, **opts)[0]
    mean = integrate.quad(lambda t: t * dens(t), 0, 1, **opts)[0] / z
    second = integrate.quad(lambda t: t * t * dens(t), 0, 1, **opts)[0] / z
    post = model.posterior()
    assert model.log_evidence() == pytest.approx(np.log(z), abs=1e-8)
    assert post["mean_theta"] == pytest.approx(mean, rel=1e-8)
    assert post["sd_theta"] == pytest.approx(np.sqrt(second - mean ** 2), rel=1e-7)
    assert post["distribution"].mean() == pytest.approx(mean, rel=1e-8)
    # the evidence is also the probability of the observed sequence: sum over all sequences is 1
    theta = np.array([[0.2], [0.7]])
    np.testing.assert_allclose(model.posterior_logpdf(theta[:, 0]), model.log_joint(theta) - model.log_evidence(),
                               rtol=1e-10)


def test_beta_bernoulli_evidence_sums_to_one_over_all_sequences():
    n = 6
    logs = []
    for code in range(2 ** n):
        x = [(code >> i) & 1 for i in range(n)]
        logs.append(BetaBernoulli(x, a=1.5, b=0.7).log_evidence())
    assert logsumexp(logs) == pytest.approx(0.0, abs=1e-12)


def test_beta_bernoulli_off_support_and_gradient():
    model = BetaBernoulli([1, 0, 1], a=2.0, b=2.0)
    theta = np.array([[0.0], [1.0], [1.5], [0.3]])
    value = model.log_joint(theta)
    assert np.all(value[:3] == -np.inf) and np.isfinite(value[3])
    grad = elementwise_grad(model.log_joint)(theta)
    assert np.all(np.isfinite(grad))
    # d/dtheta [(a - 1 + k) log t + (b - 1 + n - k) log(1 - t)] at 0.3 with a - 1 + k = 3, b - 1 + n - k = 2
    assert grad[3, 0] == pytest.approx(3 / 0.3 - 2 / 0.7)
    assert model.supports == [("interval", 0.0, 1.0)]
    assert tr.from_supports(model.supports).dim == model.dim == 1


@pytest.mark.parametrize("kwargs,match", [
    ({"x": []}, "x must contain at least one"),
    ({"x": [0, 1, 2]}, "x must contain only 0s and 1s"),
    ({"x": [0.5]}, "x must contain only 0s and 1s"),
    ({"x": [1, np.nan]}, "x must contain only finite"),
    ({"x": [[0, 1]]}, "x must have 1 dimension"),
    ({"x": [1], "a": 0}, "a must be > 0"),
    ({"x": [1], "b": -2}, "b must be > 0"),
])
def test_beta_bernoulli_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BetaBernoulli(**kwargs)


def test_models_are_registered():
    import vi_course as vc

    assert vc.models.InverseGammaNormal is InverseGammaNormal
    assert vc.models.BetaBernoulli is BetaBernoulli
    assert InverseGammaNormal([1.0]).dim == 2
    assert InverseGammaNormal([1.0]).supports == ["positive", "real"]


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py)

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402

_X5 = np.array([0.3, -1.2, 0.8, 2.0, 0.1])
_IGN = InverseGammaNormal(_X5)
_BB = BetaBernoulli([1, 0, 1])
_BAD_REAL_ARRAY = ("values", [np.nan, np.inf, "abc", "0.5", None, 1j, np.array([]), object(), [1.0, np.nan]])

BAD_INPUT = [
    spec("InverseGammaNormal", InverseGammaNormal, dict(x=_X5, a=2.0, b=3.0), dict(x="data", a="pos", b="pos")),
    spec("InverseGammaNormal.log_joint", lambda theta: _IGN.log_joint(theta), dict(theta=np.ones((3, 2))),
         dict(theta=("samples", 2))),
    spec("InverseGammaNormal.posterior_logpdf", lambda s, m: _IGN.posterior_logpdf(s, m), dict(s=1.0, m=0.0),
         dict(s=_BAD_REAL_ARRAY, m=_BAD_REAL_ARRAY)),
    spec("BetaBernoulli", BetaBernoulli, dict(x=[1, 0, 1], a=1.0, b=1.0),
         dict(a="pos", b="pos", x=("values", [[], [np.nan], ["a"], [[1.0, 0.0]], None, "abc", [0.5], [2], object()]))),
    spec("BetaBernoulli.log_joint", lambda theta: _BB.log_joint(theta), dict(theta=np.full((3, 1), 0.5)),
         dict(theta=("samples", 1))),
    spec("BetaBernoulli.posterior_logpdf", lambda theta: _BB.posterior_logpdf(theta), dict(theta=0.5),
         dict(theta=_BAD_REAL_ARRAY)),
]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)


def test_inverse_gamma_normal_rejects_data_too_large_for_double_precision():
    with pytest.raises(ValueError, match="too extreme"):
        InverseGammaNormal([1e200, 1.0])
    with pytest.raises(ValueError, match="broadcastable"):
        _IGN.posterior_logpdf([1.0, 2.0], [0.0, 1.0, 2.0])
