"""Checks of what book/mean_field.md displays and claims ("Mean-field variational inference").

Every displayed identity is derived here independently with SymPy: the KL divergences by symbolic
integration of log q - log p against q (or against p for the reversed divergence), their
derivatives by differentiation, the optima by solving the stationarity equations, the
coordinate-wise update by integrating the log target over the other factor. The displayed formulas
are typed below exactly as the chapter shows them and compared with what SymPy derives. Every number
the prose states is checked against the chapter's own computation: its code cells (all but the
plotting cells, which draw no random numbers that later cells use) are executed in-process. The
numerical runs of ``vc.advi`` use targets that the chapter does not use.

Already covered elsewhere and not repeated here:

* the lecture's eq. (59) density has marginal variance sigma^2 / (1 - rho^2), and
  ``CorrelatedGaussian`` has the stated precision: ``tests/test_errata.py::test_e01_*``;
* the sign of the lecture's eq. (62): ``tests/test_errata.py::test_e02_*``;
* ``vc.advi`` on ``CorrelatedGaussian``: mean-field variances sigma^2 (1 - rho^2), zero covariance,
  full rank recovers the covariance, for random (sigma, rho):
  ``tests/test_advi.py::test_mean_field_shrinks_and_full_rank_recovers``;
* ``vc.divergences.kl_gaussian`` against Monte Carlo and known values: ``tests/test_divergences.py``.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import pytest
import sympy as sp
from scipy import optimize, stats

import vi_course as vc
from notebooks import run_chapter
from sympy_helpers import same

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "book" / "mean_field.md"


# --- the chapter's own computation -----------------------------------------------------------------


def chapter_namespace() -> dict:
    """The variables defined by the chapter's code cells (see tests/notebooks.py)."""
    return run_chapter(CHAPTER)


def test_chapter_labels_figures_errata_and_exercises():
    text = CHAPTER.read_text(encoding="utf-8")
    assert text.startswith("---\njupytext:") and "(chap-mean-field)=\n# " in text
    for label in ("eq-mf-family", "eq-mf-gaussian", "eq-mf-reparam", "eq-mf-objective",
                  "eq-mf-hope", "eq-mf-target", "eq-mf-target-density", "eq-mf-isotropic",
                  "eq-mf-gauss-kl", "eq-mf-kl-iso", "eq-mf-kl-derivative", "eq-mf-optimum",
                  "eq-mf-kl-values", "eq-mf-general-kl", "eq-mf-general-optimum",
                  "eq-mf-conditional", "eq-mf-coordinate", "eq-mf-reverse"):
        assert f"$$ ({label})" in text, f"equation label {label} missing"
    book_labels = set()
    for page in CHAPTER.parent.glob("*.md"):
        book_labels |= set(re.findall(r"^\$\$ \((eq-[\w-]+)\)$", page.read_text(encoding="utf-8"), re.M))
    unresolved = set(re.findall(r"\{eq\}`([^`]+)`", text)) - book_labels
    assert not unresolved, f"references to undefined equations: {sorted(unresolved)}"
    for name in ("fig-mf-shrinkage", "fig-mf-contours", "fig-mf-marginals"):
        assert re.search(rf"name: {name}\n", text), f"figure {name} missing"
        assert f"{{numref}}`{name}`" in text, f"figure {name} is never referenced"
    # the corrections of lecture eqs. (59) and (62) point at errata entries that exist
    errata = (ROOT / "book" / "errata.md").read_text(encoding="utf-8")
    for target in set(re.findall(r"\{ref\}`[^`<]*<(errata-[\w-]+)>`", text)) | {"errata-e01", "errata-e02"}:
        assert f"<{target}>`" in text, f"{target} not referenced"
        assert f"({target})=" in errata, f"{target} is not a label in book/errata.md"
    exercises = text.split("## Exercises", 1)[1]
    # the student notebook is linked for download, never the instructor version
    assert ("{download}`ex6_mean_field.ipynb <../exercises/mean_field/ex6_mean_field.ipynb>`"
            in exercises)
    assert (ROOT / "exercises" / "mean_field" / "ex6_mean_field.ipynb").is_file()
    assert "solutions/" not in exercises


# --- symbols and helpers ---------------------------------------------------------------------------

Z1, Z2 = sp.symbols("z1 z2", real=True)
SIGMA, NU = sp.symbols("sigma nu", positive=True)
RHO = sp.symbols("rho", real=True)
LOG_2PI = sp.log(2 * sp.pi)


def gauss_logpdf(z, mean, var):
    return -(z - mean) ** 2 / (2 * var) - sp.log(2 * sp.pi * var) / 2


@functools.lru_cache(maxsize=None)
def gauss_moment(k: int, mean, var):
    """E[z^k] for z ~ N(mean, var), by symbolic integration of z^k against the density."""
    z = sp.Dummy("z", real=True)
    integrand = z**k * sp.exp(gauss_logpdf(z, mean, var))
    return sp.expand(sp.integrate(integrand, (z, -sp.oo, sp.oo), conds="none"))


def expect_factorised(expr, mean1, var1, mean2, var2):
    """E[expr] for independent z1 ~ N(mean1, var1), z2 ~ N(mean2, var2).

    ``expr`` (after expanding logarithms) is a polynomial in z1, z2 whose coefficients may hold any
    other symbols; by independence and linearity its expectation is the sum of the coefficients
    times products of the one-dimensional moments, each obtained by symbolic integration.
    """
    poly = sp.Poly(sp.expand(sp.expand_log(expr, force=True)), Z1, Z2)
    return sp.expand(sum(coeff * gauss_moment(a, mean1, var1) * gauss_moment(b, mean2, var2)
                         for (a, b), coeff in poly.terms()))


# --- the chapter's displayed formulas, typed as displayed ------------------------------------------

DISPLAYED_SIGMA = SIGMA**2 * sp.Matrix([[1, RHO], [RHO, 1]])
DISPLAYED_LAMBDA = sp.Matrix([[1, -RHO], [-RHO, 1]]) / (SIGMA**2 * (1 - RHO**2))
DISPLAYED_LOG_TARGET = (-sp.log(2 * sp.pi * SIGMA**2 * sp.sqrt(1 - RHO**2))
                        - (Z1**2 - 2 * RHO * Z1 * Z2 + Z2**2) / (2 * SIGMA**2 * (1 - RHO**2)))
DISPLAYED_LOG_Q_ISO = -sp.log(2 * sp.pi * NU) - (Z1**2 + Z2**2) / (2 * NU)
DISPLAYED_KL_ISO = NU / (SIGMA**2 * (1 - RHO**2)) - sp.log(NU) + sp.log(SIGMA**2 * sp.sqrt(1 - RHO**2)) - 1
DISPLAYED_KL_DERIVATIVE = 1 / (SIGMA**2 * (1 - RHO**2)) - 1 / NU
DISPLAYED_KL_SECOND = 1 / NU**2
DISPLAYED_NU_STAR = SIGMA**2 * (1 - RHO**2)
DISPLAYED_KL_AT_OPTIMUM = -sp.log(1 - RHO**2) / 2
DISPLAYED_KL_AT_MARGINALS = RHO**2 / (1 - RHO**2) + sp.log(1 - RHO**2) / 2
LECTURE_EQ61 = -sp.log(NU**2) + 2 * NU / (SIGMA**2 * (1 - RHO**2))


def displayed_gauss_kl(m_q, S_q, m_p, S_p):
    """eq-mf-gauss-kl as displayed, for SymPy matrices."""
    d = S_q.shape[0]
    diff = m_p - m_q
    return ((S_p.inv() * S_q).trace() + (diff.T * S_p.inv() * diff)[0, 0] - d
            + sp.log(S_p.det() / S_q.det())) / 2


# --- eq-mf-gaussian, eq-mf-target, eq-mf-target-density -------------------------------------------


def test_mean_field_gaussian_is_a_diagonal_gaussian():
    mu1, mu2 = sp.symbols("mu1 mu2", real=True)
    n1, n2 = sp.symbols("nu1 nu2", positive=True)
    product = gauss_logpdf(Z1, mu1, n1) + gauss_logpdf(Z2, mu2, n2)        # eq-mf-gaussian
    z, mu, V = sp.Matrix([Z1, Z2]), sp.Matrix([mu1, mu2]), sp.diag(n1, n2)
    joint = -((z - mu).T * V.inv() * (z - mu))[0, 0] / 2 - LOG_2PI - sp.log(V.det()) / 2
    assert same(product, joint)


def test_target_precision_and_density():
    assert sp.simplify(DISPLAYED_SIGMA.inv() - DISPLAYED_LAMBDA) == sp.zeros(2, 2)
    z = sp.Matrix([Z1, Z2])
    log_normal = (-(z.T * DISPLAYED_SIGMA.inv() * z)[0, 0] / 2 - LOG_2PI
                  - sp.log(DISPLAYED_SIGMA.det()) / 2)
    assert same(DISPLAYED_LOG_TARGET, log_normal)
    # the displayed density really has marginal variance sigma^2 (integrate it, for two values of rho)
    for rho in (sp.Rational(3, 5), sp.Rational(-4, 5)):
        density = sp.exp(DISPLAYED_LOG_TARGET.subs(RHO, rho))
        marginal = sp.simplify(sp.integrate(density, (Z2, -sp.oo, sp.oo), conds="none"))
        assert sp.simplify(sp.integrate(marginal, (Z1, -sp.oo, sp.oo), conds="none")) == 1
        assert sp.simplify(sp.integrate(Z1**2 * marginal, (Z1, -sp.oo, sp.oo), conds="none")
                           - SIGMA**2) == 0


def test_library_target_is_the_displayed_density():
    model = vc.models.CorrelatedGaussian(sigma=0.7, rho=-0.35)
    f = sp.lambdify((Z1, Z2), DISPLAYED_LOG_TARGET.subs({SIGMA: 0.7, RHO: -0.35}))
    z = np.random.default_rng(3).normal(size=(50, 2))
    np.testing.assert_allclose(model.log_joint(z), f(z[:, 0], z[:, 1]), rtol=1e-12)


# --- eq-mf-gauss-kl, eq-mf-kl-iso, eq-mf-kl-derivative, eq-mf-optimum, eq-mf-kl-values ------------


@functools.lru_cache(maxsize=None)
def kl_iso_by_integration():
    """KL(q_nu || p) = E_q[log q_nu - log p] with q_nu = N(0, nu I), integrated symbolically."""
    log_q = gauss_logpdf(Z1, 0, NU) + gauss_logpdf(Z2, 0, NU)
    return expect_factorised(log_q - DISPLAYED_LOG_TARGET, 0, NU, 0, NU)


def test_isotropic_q_and_kl_closed_form():
    assert same(DISPLAYED_LOG_Q_ISO, gauss_logpdf(Z1, 0, NU) + gauss_logpdf(Z2, 0, NU))  # eq-mf-isotropic
    kl = kl_iso_by_integration()
    assert same(kl, DISPLAYED_KL_ISO)                                                     # eq-mf-kl-iso
    # eq-mf-gauss-kl as displayed gives the same for this pair
    zero = sp.zeros(2, 1)
    assert same(displayed_gauss_kl(zero, NU * sp.eye(2), zero, DISPLAYED_SIGMA), kl)
    # twice the KL differs from the lecture's eq. (61) by a term free of nu
    assert sp.simplify(sp.diff(2 * kl - LECTURE_EQ61, NU)) == 0
    # a wrong closed form is caught: dropping the (1 - rho^2) of the precision changes the KL
    assert not same(kl, NU / SIGMA**2 - sp.log(NU) + sp.log(SIGMA**2 * sp.sqrt(1 - RHO**2)) - 1)


def test_derivative_optimum_and_values():
    kl = kl_iso_by_integration()
    assert sp.simplify(sp.diff(kl, NU) - DISPLAYED_KL_DERIVATIVE) == 0                  # eq-mf-kl-derivative
    assert sp.simplify(sp.diff(kl, NU, 2) - DISPLAYED_KL_SECOND) == 0
    assert [sp.factor(s) for s in sp.solve(sp.diff(kl, NU), NU)] == [sp.factor(DISPLAYED_NU_STAR)]
    assert same(kl.subs(NU, DISPLAYED_NU_STAR), DISPLAYED_KL_AT_OPTIMUM)                # eq-mf-kl-values
    assert same(kl.subs(NU, SIGMA**2), DISPLAYED_KL_AT_MARGINALS)
    # the optimum is the true marginal variance only without correlation
    assert sp.solve(sp.Eq(DISPLAYED_NU_STAR, SIGMA**2), RHO) == [0]
    # "more than four times further" at rho = 0.9, "standard deviation about 0.44 of the truth"
    at = {RHO: sp.Rational(9, 10)}
    assert 4 < float(DISPLAYED_KL_AT_MARGINALS.subs(at) / DISPLAYED_KL_AT_OPTIMUM.subs(at)) < 4.2
    assert round(float(sp.sqrt(DISPLAYED_NU_STAR / SIGMA**2).subs(at)), 2) == 0.44


# --- eq-mf-general-kl, eq-mf-general-optimum, eq-mf-conditional, eq-mf-coordinate ------------------

A, C = sp.symbols("a c", positive=True)          # Lambda_11, Lambda_22
B = sp.symbols("b", real=True)                   # Lambda_12
MU1, MU2, M1, M2 = sp.symbols("mu1 mu2 m1 m2", real=True)
V1, V2 = sp.symbols("v1 v2", positive=True)
LAM = sp.Matrix([[A, B], [B, C]])
MU = sp.Matrix([MU1, MU2])
ZV = sp.Matrix([Z1, Z2])
LOG_P_GENERAL = sp.log(LAM.det()) / 2 - LOG_2PI - ((ZV - MU).T * LAM * (ZV - MU))[0, 0] / 2


@functools.lru_cache(maxsize=None)
def general_kl_by_integration():
    log_q = gauss_logpdf(Z1, M1, V1) + gauss_logpdf(Z2, M2, V2)
    return expect_factorised(log_q - LOG_P_GENERAL, M1, V1, M2, V2)


def test_general_mean_field_kl_and_optimum():
    kl = general_kl_by_integration()
    m = sp.Matrix([M1, M2])
    displayed = (A * V1 + C * V2 + ((m - MU).T * LAM * (m - MU))[0, 0] - 2 - sp.log(LAM.det())
                 - sp.log(V1) - sp.log(V2)) / 2                                          # eq-mf-general-kl
    assert same(kl, displayed)
    stationary = sp.solve([sp.diff(kl, s) for s in (M1, M2, V1, V2)], [M1, M2, V1, V2], dict=True)
    assert stationary == [{M1: MU1, M2: MU2, V1: 1 / A, V2: 1 / C}]                      # eq-mf-general-optimum
    assert same(kl.subs(stationary[0]), sp.log(A * C / LAM.det()) / 2)
    # positive-definite Hessian in the variances at the optimum (diagonal 1 / (2 v_j^2))
    assert sp.simplify(sp.diff(kl, V1, 2).subs(stationary[0]) - A**2 / 2) == 0
    # the isotropic case: the target of eq-mf-target gives nu* of eq-mf-optimum for both coordinates
    iso = {A: DISPLAYED_LAMBDA[0, 0], B: DISPLAYED_LAMBDA[0, 1], C: DISPLAYED_LAMBDA[1, 1]}
    assert sp.simplify((1 / A).subs(iso) - DISPLAYED_NU_STAR) == 0


def test_optimal_variance_is_the_conditional_variance_and_shrinks_by_one_minus_rho_squared():
    S = LAM.inv()
    conditional = S[0, 0] - S[0, 1] ** 2 / S[1, 1]          # Gaussian conditioning (Schur complement)
    assert sp.simplify(conditional - 1 / A) == 0                                          # eq-mf-conditional
    # the log density as a function of z1 alone (z2 fixed) has curvature -a: Var(z1 | z2) = 1 / a
    assert sp.simplify(sp.diff(LOG_P_GENERAL, Z1, 2) + A) == 0
    # Sigma_11 - 1/a = Sigma_12^2 / Sigma_22 >= 0, and the ratio is 1 - rho^2 for ANY 2x2 Gaussian
    assert sp.simplify(S[0, 0] - 1 / A - S[0, 1] ** 2 / S[1, 1]) == 0
    rho = S[0, 1] / sp.sqrt(S[0, 0] * S[1, 1])
    assert sp.simplify((1 / A) / S[0, 0] - (1 - rho**2)) == 0
    # contours of the same Mahalanobis radius r: target (z-mu)' Lambda (z-mu) = r^2, optimal q
    # sum_j Lambda_jj (z_j - mu_j)^2 = r^2 (its variances are 1 / Lambda_jj). The forms differ by
    # 2 Lambda_12 (z1 - mu1)(z2 - mu2), so the contours cross exactly on the axes through the mean
    dz = ZV - MU
    target_form = sp.expand((dz.T * LAM * dz)[0, 0])
    q_form = sp.expand(dz[0] ** 2 / (1 / A) + dz[1] ** 2 / (1 / C))
    assert sp.expand(target_form - q_form - 2 * B * dz[0] * dz[1]) == 0
    r = sp.symbols("r", positive=True)
    on_axis = sp.solve(sp.Eq(target_form.subs(Z2, MU2), r**2), Z1)
    assert set(on_axis) == set(sp.solve(sp.Eq(q_form.subs(Z2, MU2), r**2), Z1)) \
        == {MU1 - r / sp.sqrt(A), MU1 + r / sp.sqrt(A)}
    # for the chapter's target (rho > 0, Lambda_12 < 0): on q's contour the target's form is
    # smaller along the diagonal (inside the target's ellipse) and larger across it (outside)
    lam = DISPLAYED_LAMBDA.subs({SIGMA: 2, RHO: sp.Rational(9, 10)})
    radius = 1 / sp.sqrt(lam[0, 0])                               # q's 1-sd circle, nu* = 1 / Lambda_11
    for direction, inside in [((1, 1), True), ((1, -1), False)]:
        point = sp.Matrix(direction) * radius / sp.sqrt(2)
        value = (point.T * lam * point)[0, 0]
        assert (value < 1) == inside


def test_coordinate_update():
    # E_{q2}[log p(z1, z2)] with q2 = N(m2, v2): integrate each power of z2 against q2
    by_power = sp.Poly(sp.expand(sp.expand_log(LOG_P_GENERAL, force=True)), Z2)
    inner = sum(coeff * gauss_moment(k, M2, V2) for (k,), coeff in by_power.terms())
    poly = sp.Poly(sp.expand(inner), Z1)
    a2, a1 = poly.coeff_monomial(Z1**2), poly.coeff_monomial(Z1)
    assert sp.simplify(-1 / (2 * a2) - 1 / A) == 0                                        # variance 1/Lambda_11
    mean = sp.simplify(-a1 / (2 * a2))
    assert sp.simplify(mean - (MU1 - B / A * (M2 - MU2))) == 0                           # eq-mf-coordinate
    # the variance does not depend on q2, and the means are at rest only at mu
    assert not (a2.free_symbols & {M2, V2})
    other = MU2 - B / C * (M1 - MU1)
    assert sp.solve([sp.Eq(M1, mean), sp.Eq(M2, other)], [M1, M2], dict=True) == [{M1: MU1, M2: MU2}]


# --- eq-mf-reverse ---------------------------------------------------------------------------------


def test_reverse_kl_is_minimised_by_the_marginals():
    # a general correlated target p = N(mu, L L^T), L lower triangular; E_p by the change of
    # variables z = mu + L u with u ~ N(0, I), so that the expectation factorises over u1, u2
    l11, l22 = sp.symbols("l11 l22", positive=True)
    l21 = sp.symbols("l21", real=True)
    L = sp.Matrix([[l11, 0], [l21, l22]])
    cov = L * L.T
    z = ZV - MU
    log_p = -(z.T * cov.inv() * z)[0, 0] / 2 - LOG_2PI - sp.log(cov.det()) / 2
    log_q = gauss_logpdf(Z1, M1, V1) + gauss_logpdf(Z2, M2, V2)
    U1, U2 = sp.symbols("u1 u2", real=True)
    shift = dict(zip((Z1, Z2), MU + L * sp.Matrix([U1, U2])))
    integrand = sp.expand(sp.expand_log(log_p - log_q, force=True)).subs(shift, simultaneous=True)
    integrand = sp.expand(integrand).subs({U1: Z1, U2: Z2}, simultaneous=True)
    kl = expect_factorised(integrand, 0, 1, 0, 1)                            # KL(p || q)
    stationary = sp.solve([sp.diff(kl, s) for s in (M1, M2, V1, V2)], [M1, M2, V1, V2], dict=True)
    assert len(stationary) == 1
    optimum = stationary[0]
    assert optimum[M1] == MU1 and optimum[M2] == MU2                         # eq-mf-reverse: the
    assert sp.simplify(optimum[V1] - cov[0, 0]) == 0                         # true marginals,
    assert sp.simplify(optimum[V2] - cov[1, 1]) == 0                         # v_j = Sigma_jj
    # while the mode-seeking direction gives 1 / Lambda_jj, which is smaller unless l21 = 0
    assert sp.simplify(cov[0, 0] - 1 / cov.inv()[0, 0] - cov[0, 1] ** 2 / cov[1, 1]) == 0


def test_reverse_kl_numerically_with_the_library():
    cov_p = np.array([[0.8, -0.5], [-0.5, 1.5]])
    mean_p = np.array([0.3, 1.0])

    def loss(x):                              # KL(p || q), q = N(x[:2], diag(exp(x[2:])))
        return vc.divergences.kl_gaussian(mean_p, cov_p, x[:2], np.exp(x[2:]))

    res = optimize.minimize(loss, np.zeros(4), method="BFGS")
    np.testing.assert_allclose(res.x[:2], mean_p, atol=1e-4)
    np.testing.assert_allclose(np.exp(res.x[2:]), np.diag(cov_p), rtol=1e-4)


# --- numerics with vc.advi on targets the chapter does not use -------------------------------------


class GeneralGaussian:
    """A bivariate Gaussian target N(mean, cov) with any mean and covariance (not in the library)."""

    dim = 2

    def __init__(self, mean, cov):
        self.mean = np.asarray(mean, dtype=float)
        self.cov = np.asarray(cov, dtype=float)
        self.prec = np.linalg.inv(self.cov)
        self.logdet = np.linalg.slogdet(self.cov)[1]

    def log_joint(self, z):
        r = z - self.mean
        return -0.5 * (anp.sum(anp.dot(r, self.prec) * r, axis=1) + self.logdet + 2 * np.log(2 * np.pi))


@pytest.mark.parametrize("mean,cov", [
    ([1.5, -3.0], [[0.5, -0.6], [-0.6, 2.0]]),          # correlation -0.6, unequal variances
    ([-2.0, 0.5], [[9.0, 2.4], [2.4, 1.0]]),            # correlation 0.8
])
def test_advi_mean_field_matches_the_diagonal_of_the_precision(mean, cov):
    model = GeneralGaussian(mean, cov)
    sd = np.sqrt(np.diag(model.cov))
    # started, as in the chapter, from the true marginal variances (and here a wrong mean), not from
    # vc.advi's default start, which for a Gaussian target already is the answer
    start = vc.families.MeanFieldGaussian(2).pack(mean=[0.0, 0.0], scale=sd)
    fit = vc.advi(model, family="meanfield", init=start, n_samples=200, seed=5)
    m, c = fit.mean_cov()
    assert np.all(np.abs(m - model.mean) < 0.05 * sd)                       # the mean is exact
    v_star = 1 / np.diag(model.prec)
    np.testing.assert_allclose(np.diag(c), v_star, rtol=0.05)                # eq-mf-general-optimum
    rho = model.cov[0, 1] / np.sqrt(model.cov[0, 0] * model.cov[1, 1])
    np.testing.assert_allclose(v_star / np.diag(model.cov), 1 - rho**2, rtol=1e-12)
    kl_min = 0.5 * np.log(np.prod(np.diag(model.prec)) / np.linalg.det(model.prec))
    kl_fit = vc.divergences.kl_gaussian(m, c, model.mean, model.cov)
    assert kl_min <= kl_fit < kl_min + 0.01


@pytest.mark.parametrize("sigma,rho", [(0.3, 0.75), (5.0, -0.95)])
def test_advi_kl_gap_and_interval_coverage(sigma, rho):
    model = vc.models.CorrelatedGaussian(sigma=sigma, rho=rho)
    start = vc.families.MeanFieldGaussian(2).pack(mean=[0.0, 0.0], scale=sigma)
    fit = vc.advi(model, family="meanfield", init=start, n_samples=200, seed=6)
    m, c = fit.mean_cov()
    kl_fit = vc.divergences.kl_gaussian(m, c, *model.posterior())
    assert kl_fit == pytest.approx(float(DISPLAYED_KL_AT_OPTIMUM.subs(RHO, rho)), abs=0.01)
    # coverage of the mean-field 95% interval, by sampling the exact target
    z = np.random.default_rng(8).multivariate_normal(np.zeros(2), model.posterior()[1], size=200_000)
    half = 1.96 * np.sqrt(c[0, 0])
    covered = np.mean(np.abs(z[:, 0] - m[0]) < half)
    predicted = 2 * stats.norm.cdf(1.96 * np.sqrt(1 - rho**2)) - 1
    assert covered == pytest.approx(predicted, abs=0.01)


# --- the chapter's numbers -------------------------------------------------------------------------


def test_chapter_family_target_and_kl_table():
    ns = chapter_namespace()
    np.testing.assert_allclose(ns["cov"], np.diag([0.25, 4.0]))
    sigma, rho = ns["sigma"], ns["rho"]
    assert (sigma, rho) == (2.0, 0.9)
    np.testing.assert_allclose(np.linalg.inv(ns["cov_p"]),
                               np.array(DISPLAYED_LAMBDA.subs({SIGMA: sigma, RHO: rho}), dtype=float))
    assert ns["nu_star"] == pytest.approx(0.76)
    kl = sp.lambdify(NU, DISPLAYED_KL_ISO.subs({SIGMA: sigma, RHO: rho}))
    model, fam = ns["model"], ns["fam"]
    # the Monte Carlo negative ELBO of the chapter (seed 0, 20 000 draws) agrees with the closed form
    for nu in (ns["nu_star"], sigma**2):
        params = fam.pack(mean=[0.0, 0.0], scale=np.sqrt(nu))
        z = fam.sample(params, 20_000, np.random.default_rng(0))
        per_draw = -model.log_joint(z)
        estimate = per_draw.mean() - float(fam.entropy(params))
        assert estimate == pytest.approx(
            vc.elbo.negative_elbo(model, fam, params, 20_000, np.random.default_rng(0)), rel=1e-12)
        assert abs(estimate - kl(nu)) < 4 * per_draw.std(ddof=1) / np.sqrt(per_draw.size)
        assert vc.divergences.kl_gaussian(np.zeros(2), nu * np.eye(2), ns["mean_p"], ns["cov_p"]) \
            == pytest.approx(kl(nu), rel=1e-10)


def test_chapter_advi_fits():
    ns = chapter_namespace()
    sigma = ns["sigma"]
    for r, fit in ns["mf_fits"].items():
        m, c = fit.mean_cov()
        # every run started at the product of the true marginals
        np.testing.assert_allclose(fit.init_params, ns["fam"].pack([0.0, 0.0], sigma))
        assert np.all(np.abs(m) < 0.05 * sigma)                                   # "means stay near zero"
        # "the variances land within a few percent of sigma^2 (1 - rho^2)"
        np.testing.assert_allclose(np.diag(c), sigma**2 * (1 - r**2), rtol=0.03)
        assert c[0, 1] == 0.0
        # "within a hundredth of a nat of the minimum"
        assert 0 <= ns["mf_kl"][r] + 0.5 * np.log(1 - r**2) < 0.01
    # the default start of vc.advi would have been the answer already: the curvature of the log
    # density at the mode, whose diagonal is Lambda_jj (so the chapter does not use it)
    default = vc.advi(ns["model"], family="meanfield", n_steps=1, min_steps=0, seed=0)
    np.testing.assert_allclose(np.exp(2 * default.init_params[2:]), ns["nu_star"], rtol=1e-3)
    # "full rank finds the correlation": the target itself
    np.testing.assert_allclose(ns["fr_cov"], ns["cov_p"], atol=0.02 * sigma**2)
    assert ns["fr_kl"] < 1e-3


def test_chapter_coverage_claims():
    ns = chapter_namespace()
    sigma = ns["sigma"]
    coverage = {}
    for r in ns["rhos"]:
        half = 1.96 * np.sqrt(ns["mf_var"][r][0])
        coverage[r] = stats.norm(0, sigma).cdf(half) - stats.norm(0, sigma).cdf(-half)
        predicted = 2 * stats.norm.cdf(1.96 * np.sqrt(1 - r**2)) - 1
        assert coverage[r] == pytest.approx(predicted, abs=0.005)
    assert abs(coverage[0.9] - 0.61) < 0.01                  # "about 61% of the true posterior mass"
    assert coverage[0.0] == pytest.approx(0.95, abs=1e-3)

