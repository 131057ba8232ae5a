"""Tests of vi_course.families: the Gaussian variational families (chapters Gaussian VI, Mean-field VI)."""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from vi_course.families import FullRankGaussian, MeanFieldGaussian

FAMILIES = [MeanFieldGaussian, FullRankGaussian]
HYP = settings(max_examples=15, deadline=None, derandomize=True)


def random_params(family, rng, spread=0.7):
    """Random parameters with standard deviations roughly in [0.25, 4]."""
    return rng.normal(scale=spread, size=family.n_params)


@pytest.mark.parametrize("cls", FAMILIES)
@pytest.mark.parametrize("dim", [1, 2, 4])
def test_sample_moments_match_mean_cov(cls, dim):
    rng = np.random.default_rng(10 + dim)
    fam = cls(dim)
    params = random_params(fam, rng)
    mean, cov = fam.mean_cov(params)
    n = 40_000
    z = fam.sample(params, n, rng)
    assert z.shape == (n, dim)
    # 5 standard errors: mean SE sqrt(S_ii/n); covariance entry SE sqrt((S_ii S_jj + S_ij^2)/n)
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(z.mean(axis=0) - mean) < 5 * se_mean)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
    assert np.all(np.abs(np.cov(z.T).reshape(dim, dim) - cov) < 5 * se_cov)


@pytest.mark.parametrize("cls", FAMILIES)
@HYP
@given(seed=st.integers(0, 2 ** 32 - 1), dim=st.integers(1, 4))
def test_log_prob_matches_scipy(cls, seed, dim):
    rng = np.random.default_rng(seed)
    fam = cls(dim)
    params = random_params(fam, rng)
    mean, cov = fam.mean_cov(params)
    z = rng.normal(size=(7, dim)) * 3
    expected = stats.multivariate_normal(mean, cov).logpdf(z)
    np.testing.assert_allclose(fam.log_prob(params, z), np.atleast_1d(expected), rtol=1e-10, atol=1e-10)
    assert fam.log_prob(params, z).shape == (7,)
    # closed-form entropy against scipy's
    np.testing.assert_allclose(fam.entropy(params), stats.multivariate_normal(mean, cov).entropy(),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", FAMILIES)
def test_log_prob_normalises(cls):
    rng = np.random.default_rng(3)
    fam1 = cls(1)
    p1 = fam1.pack([0.7], np.array([[1.3]]) if cls is FullRankGaussian else [1.3])
    total, _ = integrate.quad(lambda t: np.exp(fam1.log_prob(p1, [[t]])[0]), -np.inf, np.inf)
    assert total == pytest.approx(1.0, abs=1e-8)
    fam2 = cls(2)
    p2 = random_params(fam2, rng, spread=0.3)
    mean, cov = fam2.mean_cov(p2)
    half = 9 * np.sqrt(np.diag(cov))
    g1 = np.linspace(mean[0] - half[0], mean[0] + half[0], 401)
    g2 = np.linspace(mean[1] - half[1], mean[1] + half[1], 401)
    grid = np.stack(np.meshgrid(g1, g2, indexing="ij"), axis=-1).reshape(-1, 2)
    dens = np.exp(fam2.log_prob(p2, grid)).reshape(401, 401)
    assert integrate.trapezoid(integrate.trapezoid(dens, g2, axis=1), g1) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("cls", FAMILIES)
def test_entropy_matches_monte_carlo(cls):
    rng = np.random.default_rng(4)
    fam = cls(3)
    params = random_params(fam, rng)
    lp = fam.log_prob(params, fam.sample(params, 20_000, rng))
    mc, se = -lp.mean(), lp.std() / np.sqrt(lp.size)
    assert abs(fam.entropy(params) - mc) < 5 * se


@pytest.mark.parametrize("cls", FAMILIES)
def test_pack_unpack_round_trip(cls):
    rng = np.random.default_rng(5)
    fam = cls(3)
    params = random_params(fam, rng)
    np.testing.assert_allclose(fam.pack(*fam.unpack(params)), params, rtol=1e-12, atol=1e-12)
    mean, cov = fam.mean_cov(params)
    np.testing.assert_allclose(fam.from_mean_cov(mean, cov), params, rtol=1e-10, atol=1e-10)
    init = fam.init_params(mean=[1.0, 2.0, 3.0], scale=[0.5, 1.0, 2.0])
    m, c = fam.mean_cov(init)
    np.testing.assert_allclose(m, [1, 2, 3])
    np.testing.assert_allclose(c, np.diag([0.25, 1.0, 4.0]))
    assert fam.n_params == (6 if cls is MeanFieldGaussian else 3 + 6)


def test_full_rank_layout_is_documented_packing():
    fam = FullRankGaussian(3)
    chol = np.array([[2.0, 0, 0], [0.5, 3.0, 0], [-1.0, 0.25, 0.5]])
    params = fam.pack([1.0, 2.0, 3.0], chol)
    # row-by-row lower triangle with log diagonal
    expected = [1, 2, 3, np.log(2.0), 0.5, np.log(3.0), -1.0, 0.25, np.log(0.5)]
    np.testing.assert_allclose(params, expected)
    np.testing.assert_allclose(fam.unpack(params)[1], chol)
    np.testing.assert_allclose(fam.mean_cov(params)[1], chol @ chol.T)


def test_mean_field_layout_is_mu_then_log_sigma():
    fam = MeanFieldGaussian(2)
    np.testing.assert_allclose(fam.pack([1.0, -1.0], [2.0, 0.5]), [1, -1, np.log(2), np.log(0.5)])


@pytest.mark.parametrize("cls", FAMILIES)
def test_reparameterised_sampler_is_differentiable(cls):
    rng = np.random.default_rng(6)
    fam = cls(3)
    params = random_params(fam, rng)
    eps = fam.noise(5, rng)
    w = rng.normal(size=(5, 3))

    def f(p):
        return anp.sum(w * fam.sample_from_noise(p, eps) ** 2)

    grad = autograd.grad(f)(params)
    h = 1e-6
    fd = np.array([(f(params + h * e) - f(params - h * e)) / (2 * h) for e in np.eye(fam.n_params)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)
    # the closed-form vector-Jacobian product agrees with autograd
    cot = rng.normal(size=(5, 3))
    np.testing.assert_allclose(
        fam.sample_vjp(params, eps, cot),
        autograd.grad(lambda p: anp.sum(cot * fam.sample_from_noise(p, eps)))(params), atol=1e-12)
    # grad_z log q at z = f(eps)
    z = fam.sample_from_noise(params, eps)
    np.testing.assert_allclose(fam.grad_log_prob_from_noise(params, eps),
                               autograd.grad(lambda zz: anp.sum(fam.log_prob(params, zz)))(z),
                               atol=1e-10)
    # sample() is sample_from_noise() of noise() with the same generator state
    np.testing.assert_allclose(fam.sample(params, 4, np.random.default_rng(1)),
                               fam.sample_from_noise(params, fam.noise(4, np.random.default_rng(1))))


@pytest.mark.parametrize("cls", FAMILIES)
def test_batched_params_match_single(cls):
    rng = np.random.default_rng(7)
    fam = cls(2)
    params = random_params(fam, rng)
    batch = np.tile(params, (6, 1))
    z = rng.normal(size=(6, 2))
    eps = fam.noise(6, rng)
    np.testing.assert_allclose(fam.log_prob(batch, z), fam.log_prob(params, z), atol=1e-12)
    np.testing.assert_allclose(fam.sample_from_noise(batch, eps), fam.sample_from_noise(params, eps),
                               atol=1e-12)
    np.testing.assert_allclose(fam.entropy(batch), np.full(6, fam.entropy(params)))


@pytest.mark.parametrize("cls", FAMILIES)
def test_bad_input_raises_value_error(cls):
    fam = cls(2)
    good = fam.init_params()
    with pytest.raises(ValueError, match="dim"):
        cls(0)
    with pytest.raises(ValueError, match="params"):
        fam.log_prob(good[:-1], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="params"):
        fam.entropy(np.full(fam.n_params, np.nan))
    with pytest.raises(ValueError, match="z"):
        fam.log_prob(good, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="eps"):
        fam.sample_from_noise(good, np.zeros((3, 1)))
    with pytest.raises(ValueError, match="rows"):
        fam.log_prob(np.tile(good, (4, 1)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="n"):
        fam.sample(good, 0, 0)
    with pytest.raises(ValueError, match="rng"):
        fam.sample(good, 3, "seed")
    with pytest.raises(ValueError, match="scale"):
        fam.init_params(scale=-1.0)
    with pytest.raises(ValueError, match="mean"):
        fam.init_params(mean=[0.0, 1.0, 2.0])


def test_full_rank_pack_rejects_non_cholesky():
    fam = FullRankGaussian(2)
    with pytest.raises(ValueError, match="lower triangular"):
        fam.pack([0, 0], [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="positive diagonal"):
        fam.pack([0, 0], [[-1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="positive definite"):
        fam.from_mean_cov([0, 0], [[1.0, 2.0], [2.0, 1.0]])


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py)

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402

_BAD_COV = [np.full((2, 2), np.nan), -np.eye(2), "abc", None, np.zeros((2, 2)), np.zeros((3, 3)), object()]
# a scale is a positive number or a vector of dim positive numbers
_BAD_SCALE = ("values", [-1.0, 0.0, np.nan, np.inf, "1.0", None, True, 1j, [1.0, -1.0], [1.0, 2.0, 3.0],
                         np.array([[1.0, 2.0]]), 1e-320, object()])
# mean=None means "zeros" in init_params
_BAD_MEAN = ("values", [np.zeros(3), np.full(2, np.nan), np.full(2, "a"), "abc", np.zeros((2, 2, 1)),
                        np.zeros(0), object()])


def _family_specs(fam):
    nm, p0, eps, n_par = type(fam).__name__, fam.init_params(), np.zeros((3, 2)), fam.n_params
    return [
        spec(nm, type(fam), dict(dim=2), dict(dim="int")),
        spec(f"{nm}.noise", fam.noise, dict(n=3, rng=0), dict(n="int", rng="rng")),
        spec(f"{nm}.sample", fam.sample, dict(params=p0, n=3, rng=0),
             dict(params=("params", n_par), n="int", rng="rng")),
        spec(f"{nm}.sample_from_noise", fam.sample_from_noise, dict(params=p0, eps=eps),
             dict(params=("params", n_par), eps=("samples", 2))),
        spec(f"{nm}.log_prob", fam.log_prob, dict(params=p0, z=eps), dict(params=("params", n_par),
                                                                         z=("samples", 2))),
        spec(f"{nm}.entropy", fam.entropy, dict(params=p0), dict(params=("params", n_par))),
        spec(f"{nm}.mean_cov", fam.mean_cov, dict(params=p0), dict(params=("params", n_par))),
        spec(f"{nm}.unpack", fam.unpack, dict(params=p0), dict(params=("params", n_par))),
        spec(f"{nm}.grad_log_prob_from_noise", fam.grad_log_prob_from_noise, dict(params=p0, eps=eps),
             dict(params=("params", n_par), eps=("samples", 2))),
        spec(f"{nm}.sample_vjp", fam.sample_vjp, dict(params=p0, eps=eps, cotangent=eps),
             dict(params=("params", n_par), eps=("samples", 2), cotangent=("samples", 2))),
        spec(f"{nm}.init_params", fam.init_params, dict(mean=[0.0, 0.0], scale=1.0),
             dict(mean=_BAD_MEAN, scale=_BAD_SCALE)),
        spec(f"{nm}.from_mean_cov", fam.from_mean_cov, dict(mean=[0.0, 0.0], cov=np.eye(2)),
             dict(mean=("vector", 2), cov=("values", _BAD_COV))),
    ]


BAD_INPUT = [
    *_family_specs(MeanFieldGaussian(2)), *_family_specs(FullRankGaussian(2)),
    spec("MeanFieldGaussian.pack", MeanFieldGaussian(2).pack, dict(mean=[0.0, 0.0], scale=[1.0, 1.0]),
         dict(mean=("vector", 2), scale=_BAD_SCALE)),
    spec("FullRankGaussian.pack", FullRankGaussian(2).pack, dict(mean=[0.0, 0.0], chol=np.eye(2)),
         dict(mean=("vector", 2), chol=("values", [np.full((2, 2), np.nan), -np.eye(2), "abc", None, np.zeros((3, 3)),
                                                   np.ones((2, 2)), object()]))),
]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)


@pytest.mark.parametrize("family", [MeanFieldGaussian(2), FullRankGaussian(2)])
def test_log_scales_beyond_the_float_range_are_refused_by_name(family):
    # inside the range the densities stay finite (the old failure: 0 * e^750 = NaN)
    params = family.init_params(scale=np.exp(-699.0))
    assert np.all(np.isfinite(family.log_prob(params, np.zeros((1, 2)))))
    assert family.log_prob(params, np.zeros((1, 2)))[0] == pytest.approx(2 * 699.0 - np.log(2 * np.pi))
    bad = params.copy()
    bad[2] = -750.0                   # the first log scale, in both layouts
    for method, args in ((family.log_prob, (bad, np.zeros((1, 2)))), (family.entropy, (bad,)),
                         (family.sample, (bad, 3, 0))):
        with pytest.raises(ValueError, match="params holds a log scale of -750"):
            method(*args)
    with pytest.raises(ValueError, match="scale holds a log scale"):
        family.init_params(scale=1e-305)
    with pytest.raises(ValueError, match="scale holds a log scale"):
        family.init_params(scale=1e305)


def test_numerically_singular_cholesky_factor_is_a_value_error():
    family = FullRankGaussian(2)
    params = np.array([0.0, 0.0, -700.0, 1e300, -700.0])
    with pytest.raises(ValueError, match="singular in double precision"):
        family.log_prob(params, [[1.0, 0.0]])
