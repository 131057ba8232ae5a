"""Grid integration of the evidence and the relevant-bin fraction (chapter "Why approximate inference")."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from vi_course import grid
from vi_course.models import ConjugateGaussian, CorrelatedGaussian


@settings(deadline=None, max_examples=30)
@given(x=st.lists(st.floats(-5, 5), min_size=1, max_size=10),
       prior_var=st.floats(0.1, 10.0), noise_var=st.floats(0.1, 10.0))
def test_grid_evidence_matches_exact_conjugate_evidence(x, prior_var, noise_var):
    model = ConjugateGaussian(x, prior_var, noise_var)
    mean, cov = model.posterior()
    sd = float(np.sqrt(cov[0, 0]))
    est = grid.log_evidence(model.log_joint, [mean[0] - 10 * sd], [mean[0] + 10 * sd], 400)
    # midpoint rule on a smooth integrand that vanishes at the ends: error far below 1e-8
    assert est == pytest.approx(model.log_evidence(), abs=1e-8)


def test_grid_evidence_of_a_coarse_grid_is_off_and_converges():
    model = ConjugateGaussian([0.4, 1.1, -0.3], prior_var=2.0, noise_var=1.0)
    errors = [abs(grid.log_evidence(model.log_joint, -6.0, 6.0, k) - model.log_evidence())
              for k in (3, 6, 12, 24)]
    assert errors[0] > 1e-2  # a handful of bins is not enough
    assert errors[-1] < 1e-6
    assert all(a > b for a, b in zip(errors, errors[1:]))


@pytest.mark.parametrize("rho", [-0.9, 0.0, 0.5, 0.95])
def test_grid_evidence_of_normalised_2d_target_is_zero(rho):
    model = CorrelatedGaussian(sigma=1.5, rho=rho)
    est = grid.log_evidence(model.log_joint, [-12, -12], [12, 12], [300, 320])
    assert est == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("dim", [3, 4])
def test_grid_evidence_in_3_and_4_dimensions(dim):
    # unnormalised Gaussian with known normaliser: log Z = (dim/2) log(2 pi) + sum log s_i
    s = np.array([0.5, 1.0, 2.0, 0.8])[:dim]
    shift = np.array([0.3, -0.2, 1.0, 0.0])[:dim]

    def log_joint(z):
        return -0.5 * np.sum(((z - shift) / s) ** 2, axis=1) + 3.0

    exact = 0.5 * dim * np.log(2 * np.pi) + np.sum(np.log(s)) + 3.0
    est = grid.log_evidence(log_joint, shift - 9 * s, shift + 9 * s, 30)
    assert est == pytest.approx(exact, abs=1e-6)


def test_grid_points_cover_the_box_with_midpoints():
    pts, log_vol = grid.grid_points([0.0, -1.0], [1.0, 1.0], [2, 4])
    assert pts.shape == (8, 2)
    np.testing.assert_allclose(np.unique(pts[:, 0]), [0.25, 0.75])
    np.testing.assert_allclose(np.unique(pts[:, 1]), [-0.75, -0.25, 0.25, 0.75])
    assert log_vol == pytest.approx(np.log(0.5 * 0.5))


def test_grid_log_evidence_handles_huge_and_tiny_integrands():
    est = grid.log_evidence(lambda z: -0.5 * z[:, 0] ** 2 - 2000.0, -10, 10, 200)
    assert est == pytest.approx(0.5 * np.log(2 * np.pi) - 2000.0, abs=1e-8)
    assert grid.log_evidence(lambda z: np.full(len(z), -np.inf), -1, 1, 5) == -np.inf


@pytest.mark.parametrize("args, name", [
    (([0] * 5, [1] * 5, 3), "lows"),
    (([0, 0], [1], 3), "highs"),
    (([0, 1], [1, 1], 3), "lows must be < highs"),
    (([2.0], [1.0], 3), "lows must be < highs"),
    (([0.0], [1.0], 0), "n_bins"),
    (([0.0], [1.0], 2.5), "n_bins"),
    (([0.0, 0.0], [1.0, 1.0], [3]), "n_bins"),
    (([np.nan], [1.0], 3), "lows"),
    (([0.0], [np.inf], 3), "highs"),
])
def test_grid_log_evidence_rejects_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        grid.log_evidence(lambda z: -0.5 * np.sum(z ** 2, axis=1), *args)


def test_grid_log_evidence_rejects_bad_log_joint():
    with pytest.raises(ValueError, match="log_joint"):
        grid.log_evidence(lambda z: np.zeros((len(z), 1)), 0, 1, 4)
    with pytest.raises(ValueError, match="log_joint"):
        grid.log_evidence(lambda z: np.full(len(z), np.nan), 0, 1, 4)
    with pytest.raises(ValueError, match="log_joint"):
        grid.log_evidence("not a function", 0, 1, 4)


def _std_normal(z):
    return -0.5 * np.sum(z ** 2, axis=1)


def test_relevant_fraction_exact_on_small_grid():
    # 4 bins on [-2, 2], centres +-0.5, +-1.5: masses propto exp(-1/8) (x2) and exp(-9/8) (x2)
    inner, outer = np.exp(-1 / 8), np.exp(-9 / 8)
    inner_mass = inner / (inner + outer)  # the two inner bins together, about 0.731
    assert grid.relevant_fraction(_std_normal, -2, 2, 4, mass=inner_mass - 1e-9) == 0.5
    assert grid.relevant_fraction(_std_normal, -2, 2, 4, mass=inner_mass + 1e-9) == 0.75
    assert grid.relevant_fraction(_std_normal, -2, 2, 4, mass=1.0) == 1.0


def test_relevant_fraction_decreases_with_dimension():
    fractions = [grid.relevant_fraction(_std_normal, [-4] * d, [4] * d, 16) for d in (1, 2, 3, 4)]
    assert all(a > b for a, b in zip(fractions, fractions[1:]))
    assert fractions[-1] < 0.5 * fractions[0] ** 2


def test_gaussian_relevant_fraction_equals_brute_force():
    for d in (1, 2, 3, 4):
        for n_bins, half, scale, mass in [(16, 4.0, 1.0, 0.99), (7, 3.0, 0.6, 0.9), (10, 2.0, 2.0, 0.5)]:
            brute = grid.relevant_fraction(lambda z: _std_normal(z / scale), [-half] * d, [half] * d,
                                           n_bins, mass)
            fast = grid.gaussian_relevant_fraction(d, half, n_bins, mass, scale)
            # identical up to rounding: the difference is far less than one bin
            assert abs(brute - fast) * n_bins ** d < 1e-6


def test_gaussian_relevant_fraction_collapses_with_dimension():
    dims = np.arange(1, 61)
    frac = grid.gaussian_relevant_fraction(dims, half_width=4.0, n_bins=20)
    assert frac.shape == dims.shape
    assert np.all(np.diff(frac) < 0)
    assert frac[0] > 0.5 and frac[-1] < 1e-12
    # the 99 % region cannot be smaller than the ball of the same Gaussian mass: check the order of
    # magnitude against the continuum answer (ball of chi2 radius over box volume) in d = 10
    from scipy.special import gammaln
    d = 10
    r = np.sqrt(stats.chi2(d).ppf(0.99))
    log_ball = 0.5 * d * np.log(np.pi) + d * np.log(r) - gammaln(d / 2 + 1)
    continuum = np.exp(log_ball - d * np.log(8.0))
    assert 0.3 < frac[d - 1] / continuum < 3.0


def test_bins_1d_mass_and_relevant_mask():
    out = grid.bins_1d(lambda z: _std_normal(z) + 5.0, -4.0, 4.0, 40, mass=0.95)
    assert out.centres.shape == out.mass.shape == out.relevant.shape == (40,)
    assert out.width == pytest.approx(0.2)
    assert out.mass.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(out.mass, stats.norm.pdf(out.centres) * 0.2, rtol=2e-2)  # ~ bin mass
    assert out.mass[out.relevant].sum() >= 0.95
    # minimal: dropping the lightest relevant bin falls below the target
    assert out.mass[out.relevant].sum() - out.mass[out.relevant].min() < 0.95
    assert out.mass[out.relevant].min() >= out.mass[~out.relevant].max()
    assert out.relevant.mean() == grid.relevant_fraction(_std_normal, -4.0, 4.0, 40, mass=0.95)
    # the relevant bins form the central interval of about +-1.96
    assert np.abs(out.centres[out.relevant]).max() == pytest.approx(1.9, abs=0.11)


@pytest.mark.parametrize("kwargs, name", [
    (dict(mass=0.0), "mass"), (dict(mass=1.5), "mass"), (dict(n_bins=0), "n_bins"),
    (dict(half_width=-1.0), "half_width"), (dict(scale=0.0), "scale"), (dict(dims=[0]), "dims"),
    (dict(dims=[1000]), "dims"),
])
def test_relevant_fraction_rejects_bad_input(kwargs, name):
    args = dict(dims=[1, 2], half_width=4.0, n_bins=10, mass=0.99, scale=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        grid.gaussian_relevant_fraction(**args)
    if name in ("mass", "n_bins"):
        with pytest.raises(ValueError, match=name):
            grid.relevant_fraction(_std_normal, [-1], [1], args["n_bins"], args["mass"])
        with pytest.raises(ValueError, match=name):
            grid.bins_1d(_std_normal, -1, 1, args["n_bins"], args["mass"])
    with pytest.raises(ValueError, match="log_density"):
        grid.relevant_fraction(lambda z: np.full(len(z), -np.inf), [-1], [1], 4)


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py)

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402

_LJ = ConjugateGaussian([0.3, -1.2, 0.8]).log_joint

BAD_INPUT = [
    spec("grid_points", grid.grid_points, dict(lows=[0.0], highs=[1.0], n_bins=4),
         dict(lows="data", highs="data", n_bins="int")),
    spec("log_evidence", grid.log_evidence, dict(log_joint=_LJ, lows=[-5.0], highs=[5.0], n_bins=10),
         dict(log_joint="callable", lows="data", highs="data", n_bins="int")),
    spec("relevant_fraction", grid.relevant_fraction,
         dict(log_density=_LJ, lows=[-5.0], highs=[5.0], n_bins=10, mass=0.9),
         dict(log_density="callable", lows="data", highs="data", n_bins="int", mass="pos")),
    spec("bins_1d", grid.bins_1d, dict(log_density=_LJ, low=-5.0, high=5.0, n_bins=10, mass=0.9),
         dict(log_density="callable", low="real", high="real", n_bins="int", mass="pos")),
    spec("gaussian_relevant_fraction", grid.gaussian_relevant_fraction,
         dict(dims=[1, 2], half_width=4.0, n_bins=10, mass=0.9, scale=1.0),
         dict(dims=("values", [[0], [1.5], ["a"], None, [], "abc", [np.nan], [True]]), half_width="pos",
              n_bins="int", mass="pos", scale="pos")),
]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)


@pytest.mark.parametrize("bad_output, match", [
    (lambda z: np.full(len(z), "a"), "log_joint"),             # strings
    (lambda z: np.full(len(z), 1j), "log_joint"),              # complex
    (lambda z: None, "log_joint"),                             # nothing
    (lambda z: np.full(len(z), np.inf), "log_joint"),          # +inf
    (lambda z: [{}] * len(z), "log_joint"),                    # not numbers at all
])
def test_grid_log_evidence_rejects_bad_log_joint_outputs(bad_output, match):
    with pytest.raises(ValueError, match=match):
        grid.log_evidence(bad_output, 0.0, 1.0, 4)


def test_grid_refuses_too_many_bins_and_too_wide_boxes():
    with pytest.raises(ValueError, match="n_bins"):
        grid.log_evidence(_LJ, [0.0] * 3, [1.0] * 3, 10 ** 4)
    with pytest.raises(ValueError, match="highs - lows"):
        grid.log_evidence(_LJ, -1e308, 1e308, 4)


@pytest.mark.parametrize("dim", [1, 2, 3, 4])
@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5])
def test_bins_of_equal_mass_are_counted_exactly(dim, scale):
    # with two bins per axis, symmetric about 0, every one of the 2^d bins holds mass 2^-d; the
    # fewest bins holding k 2^-d of the mass are exactly k of them, whatever the rounding
    from vi_course import grid as g

    def log_density(z):
        return -0.5 * np.sum(z ** 2, axis=1) / scale ** 2

    n_total = 2 ** dim
    for k in range(1, n_total + 1):
        mass = k / n_total
        got = g.relevant_fraction(log_density, -np.ones(dim), np.ones(dim), 2, mass=mass)
        assert got == mass
        assert g.gaussian_relevant_fraction(dim, half_width=1.0, n_bins=2, mass=mass,
                                            scale=scale) == pytest.approx(mass, abs=1e-15)
