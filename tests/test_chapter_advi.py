"""Checks of what book/advi.md displays and claims ("ADVI with constraining transforms").

Every displayed identity of the chapter is derived here independently: the Jacobians of the
transforms and the transformed Gamma density with SymPy, integrals by quadrature in the *constrained*
variable (so that they do not lean on the change of variables they are checking), the closed-form
ADVI optimum of the Gamma target by symbolic Gaussian expectations, and the Beta-Bernoulli optimum by
Gauss-Hermite quadrature. Every number the prose states is checked against the chapter's own
computation: its code cells (all but the plotting cells, which draw no random numbers) are executed
in-process.

Already covered elsewhere and not repeated here:

* the library's transforms against autograd and SymPy derivatives, round trips, and transformed
  densities of several distributions integrating to 1: ``tests/test_transforms.py``;
* the entropy relation eq-advi-entropy in the unconstrained variable with SciPy's log-normal entropy
  and symbolically (erratum E6), the Jacobian sign (E7), the posterior of the page (E8) and the
  reparameterisation eq-advi-reparam (E9): ``tests/test_errata.py``;
* the Normal-Inverse-Gamma posterior eq-advi-nig-posterior and its moments eq-advi-nig-moments (SymPy
  derivation and 2-D grid integration) and the Student-t marginal of m:
  ``tests/test_inverse_gamma_normal.py``;
* ``vc.advi`` reaching E_q[z] = alpha / beta and Var_q[eta] = 1 / alpha on Gamma targets, the page's
  sign fitting Gamma(alpha - 2, beta), and the exact Beta mean: ``tests/test_advi.py``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, optimize, stats
from scipy.special import betaln, expit, gammaln, polygamma

import vi_course as vc
from notebooks import run_chapter

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTER = BOOK / "advi.md"

EQUATIONS = (
    "eq-advi-gamma", "eq-advi-substitution", "eq-advi-change-of-variables", "eq-advi-log-gamma", "eq-advi-wrong-sign-mass",
    "eq-advi-log-jacobian", "eq-advi-logit-jacobian", "eq-advi-jacobian-sum", "eq-advi-elbo-z",
    "eq-advi-log-q-z", "eq-advi-entropy", "eq-advi-lognormal-entropy", "eq-advi-elbo",
    "eq-advi-reparam", "eq-advi-gaussian-entropy", "eq-advi-gamma-elbo", "eq-advi-gamma-optimum",
    "eq-advi-gamma-kl", "eq-advi-gamma-page", "eq-advi-ign-model", "eq-advi-nig-posterior",
    "eq-advi-nig-moments", "eq-advi-beta-model", "eq-advi-logit-beta", "eq-advi-beta-mean",
    "eq-advi-logit-beta-var",
)
FIGURES = ("fig-advi-support", "fig-advi-gamma-log", "fig-advi-ign-contours", "fig-advi-ign-marginals",
           "fig-advi-elbo-traces", "fig-advi-beta")


# --- the chapter's own computation -----------------------------------------------------------------


def chapter_namespace() -> dict:
    """The variables defined by the chapter's code cells (see tests/notebooks.py)."""
    return run_chapter(CHAPTER)


def test_chapter_labels_figures_cross_references_and_exercises():
    text = CHAPTER.read_text(encoding="utf-8")
    assert text.count("(chap-advi)=") == 1
    for label in EQUATIONS:
        assert f"$$ ({label})" in text, f"equation label {label} missing"
    # every equation reference resolves to a label of this chapter or of another chapter
    book_labels = set()
    for page in BOOK.glob("*.md"):
        book_labels |= set(re.findall(r"^\$\$ \(([\w-]+)\)$", page.read_text(encoding="utf-8"), re.M))
    unresolved = set(re.findall(r"\{eq\}`([^`]+)`", text)) - book_labels
    assert not unresolved, f"references to undefined equations: {sorted(unresolved)}"
    # every {ref} target exists somewhere in the book
    targets = set()
    for page in BOOK.glob("*.md"):
        targets |= set(re.findall(r"^\(([\w-]+)\)=$", page.read_text(encoding="utf-8"), re.M))
    refs = {m.split("<")[-1].rstrip(">").strip() for m in re.findall(r"\{ref\}`([^`]+)`", text)}
    assert not refs - targets, f"{{ref}} targets that do not exist: {sorted(refs - targets)}"
    # the ADVI page's errors are cross-referenced to the errata appendix
    for entry in ("errata-e06", "errata-e07", "errata-e08", "errata-e09", "errata-e24", "errata-e25"):
        assert entry in refs
    for name in FIGURES:
        assert re.search(rf"name: {name}\n", text), f"figure {name} missing"
        assert f"{{numref}}`{name}`" in text, f"figure {name} is never referenced"
    exercises = text.split("## Exercises", 1)[1]
    # the student notebook is linked for download (tests/test_book.py checks it lands in the site)
    assert "{download}`ex_advi.ipynb <../exercises/advi/ex_advi.ipynb>`" in exercises
    assert (BOOK.parent / "exercises" / "advi" / "ex_advi.ipynb").is_file()
    assert "solutions/" not in exercises


# --- the three transforms (eq-advi-log-jacobian, eq-advi-logit-jacobian, eq-advi-jacobian-sum) ------


def test_displayed_log_abs_det_jacobians():
    eta = sp.Symbol("eta", real=True)
    z = sp.Symbol("z", real=True)
    a = sp.Symbol("a", real=True)
    width = sp.Symbol("w", positive=True)  # b - a
    b = a + width
    sigma = 1 / (1 + sp.exp(-eta))
    # positive support: T^{-1} = exp, log|d z / d eta| = eta
    assert sp.simplify(sp.log(sp.diff(sp.exp(eta), eta)) - eta) == 0
    # interval: the inverse of the scaled logit is the scaled sigmoid (solved, not assumed)
    solved = sp.solve(sp.Eq(eta, sp.log(z - a) - sp.log(b - z)), z)
    assert len(solved) == 1
    inverse = solved[0]
    assert sp.simplify(inverse - (a + (b - a) * sigma)) == 0
    derivative = sp.diff(inverse, eta)
    assert sp.simplify(derivative - (b - a) * sigma * (1 - sigma)) == 0                 # product form
    table_form = sp.log(b - a) + sp.log(sigma) + sp.log(1 - sigma)                      # the table
    softplus_form = sp.log(b - a) - sp.log(1 + sp.exp(-eta)) - sp.log(1 + sp.exp(eta))  # the equation
    assert sp.simplify(sp.exp(softplus_form) - derivative) == 0
    assert sp.simplify(sp.exp(table_form) - derivative) == 0
    # a coordinate-wise map has a diagonal Jacobian whose log-determinant is the sum of the logs
    e = sp.symbols("e1:4", real=True)
    sig3 = 1 / (1 + sp.exp(-e[2]))
    inv = sp.Matrix([sp.exp(e[0]), e[1], a + width * sig3])
    jac = inv.jacobian(sp.Matrix(e))
    assert jac.is_diagonal()
    summed = e[0] + 0 + sp.log(width) - sp.log(1 + sp.exp(-e[2])) - sp.log(1 + sp.exp(e[2]))
    assert sp.simplify(sp.exp(summed) - jac.det()) == 0


def test_literal_log_sigmoid_becomes_minus_infinity_below_about_minus_710():
    with np.errstate(all="ignore"):
        literal = np.log(1.0 / (1.0 + np.exp(-np.array([-700.0, -709.0, -711.0, -745.0]))))
    assert np.all(np.isfinite(literal[:2])) and np.all(literal[2:] == -np.inf)
    # the softplus form stays exact
    T = vc.transforms.get_transform(("interval", 0.0, 1.0))
    np.testing.assert_allclose(T.inverse_log_abs_det_jacobian(np.array([-711.0, -745.0])),
                               [-711.0, -745.0], rtol=1e-12)


# --- the substitution behind the change of variables (eq-advi-substitution) -----------------------


@pytest.mark.parametrize("support, interval", [
    ("positive", (0.4, 2.5)),                 # T = log, Gamma(3, 2) density
    (("interval", -1.0, 3.0), (-0.5, 2.0)),   # scaled logit, a Beta(2, 5) stretched to (-1, 3)
])
def test_probability_of_an_interval_is_the_same_in_both_variables(support, interval):
    # int_A p(z) dz = int_{T(A)} p(T^{-1}(eta)) dT^{-1}/deta deta, both sides by quadrature; the
    # derivative is taken numerically here, not from the library's log-Jacobian
    if support == "positive":
        density = stats.gamma(3.0, scale=0.5).pdf
    else:
        density = stats.beta(2.0, 5.0, loc=-1.0, scale=4.0).pdf
    transform = vc.transforms.get_transform(support)
    lo, hi = interval
    eta_lo, eta_hi = (float(transform.forward(np.array([[v]]))[0, 0]) for v in (lo, hi))
    assert eta_lo < eta_hi                                           # T is increasing

    def inverse(e):
        return float(transform.inverse(np.array([[e]]))[0, 0])

    def rhs_integrand(e, h=1e-6):
        slope = (inverse(e + h) - inverse(e - h)) / (2 * h)
        return density(inverse(e)) * slope

    lhs, _ = integrate.quad(density, lo, hi)
    rhs, _ = integrate.quad(rhs_integrand, eta_lo, eta_hi)
    assert rhs == pytest.approx(lhs, rel=1e-7)
    assert 0.05 < lhs < 0.95                     # a proper part of the mass, not a trivial 0 or 1
    # dividing by the derivative instead, the error of erratum E7, gives another number
    wrong, _ = integrate.quad(lambda e: density(inverse(e)) / ((inverse(e + 1e-6)
                                                               - inverse(e - 1e-6)) / 2e-6),
                              eta_lo, eta_hi)
    assert abs(wrong - lhs) > 0.05


# --- the Gamma density under the log (eq-advi-log-gamma, eq-advi-wrong-sign-mass) -------------------


def test_log_transformed_gamma_density_is_the_displayed_formula_and_integrates_to_one():
    eta = sp.Symbol("eta", real=True)
    u = sp.Symbol("u", positive=True)
    al, be = sp.symbols("alpha beta", positive=True)

    def gamma_pdf(v):
        return be ** al / sp.gamma(al) * v ** (al - 1) * sp.exp(-be * v)

    transformed = gamma_pdf(sp.exp(eta)) * sp.exp(eta)             # p(T^{-1}(eta)) |dT^{-1}/d eta|
    displayed = be ** al / sp.gamma(al) * sp.exp(al * eta - be * sp.exp(eta))
    assert sp.simplify(sp.expand_log(sp.log(transformed) - sp.log(displayed), force=True)) == 0
    # the substitution u = beta e^eta of the text reduces the integral to Gamma(alpha)
    assert sp.simplify(sp.integrate(u ** (al - 1) * sp.exp(-u), (u, 0, sp.oo)) - sp.gamma(al)) == 0
    # and, independently, by quadrature over eta for a few shapes and rates
    for a_, b_ in [(3.0, 2.0), (0.7, 0.4), (12.5, 3.0)]:
        def density(e, a_=a_, b_=b_):
            return np.exp(a_ * np.log(b_) - gammaln(a_) + a_ * e - b_ * np.exp(e))

        total, _ = integrate.quad(density, -90.0, 6.0, limit=400, points=[np.log(a_ / b_)])
        assert total == pytest.approx(1.0, abs=1e-9)


def test_dividing_by_the_jacobian_gives_mass_beta2_over_alpha_minus_1_alpha_minus_2():
    u = sp.Symbol("u", positive=True)
    al = sp.Symbol("alpha", positive=True)
    be = sp.Symbol("beta", positive=True)
    pdf = be ** al / sp.gamma(al) * u ** (al - 1) * sp.exp(-be * u)
    # E[z^-2] for alpha > 2: substitute alpha = 2 + c with c > 0
    c = sp.Symbol("c", positive=True)
    moment = sp.integrate((pdf / u ** 2).subs(al, 2 + c), (u, 0, sp.oo), conds="none")
    assert sp.simplify(sp.gammasimp(moment) - be ** 2 / ((1 + c) * c)) == 0
    # the eta-integral of p(e^eta) e^{-eta} is that moment, by quadrature over eta
    for a_, b_ in [(3.0, 2.0), (4.5, 1.3)]:
        dist = stats.gamma(a_, scale=1 / b_)
        mass, _ = integrate.quad(lambda e: np.exp(dist.logpdf(np.exp(e)) - e), -60.0, 6.0, limit=400)
        assert mass == pytest.approx(b_ ** 2 / ((a_ - 1) * (a_ - 2)), rel=1e-8)
    assert 2.0 ** 2 / ((3.0 - 1) * (3.0 - 2)) == 2.0                            # "2 for Gamma(3, 2)"


# --- entropy (eq-advi-lognormal-entropy, eq-advi-gaussian-entropy) ----------------------------------


@pytest.mark.parametrize("mu,s", [(0.8, 0.5), (-1.0, 2.0), (2.5, 0.3)])
def test_log_normal_entropy_by_quadrature_in_z(mu, s):
    # -int q(z) log q(z) dz over z > 0 with the log-normal density written in z (checked against SciPy)
    def log_q(z):
        return -((np.log(z) - mu) ** 2) / (2 * s ** 2) - np.log(z * s * np.sqrt(2 * np.pi))

    probe = np.array([0.1, 1.0, 7.0])
    np.testing.assert_allclose(log_q(probe), stats.lognorm(s=s, scale=np.exp(mu)).logpdf(probe), rtol=1e-12)
    entropy, _ = integrate.quad(lambda z: -np.exp(log_q(z)) * log_q(z), 0.0, np.inf, limit=400)
    h_eta = 0.5 * np.log(2 * np.pi * np.e * s ** 2)
    assert entropy == pytest.approx(h_eta + mu, abs=1e-7)
    assert abs(entropy - h_eta) == pytest.approx(abs(mu), abs=1e-7)   # not invariant unless mu = 0


def test_gaussian_entropy_needs_only_the_diagonal_of_the_cholesky_factor():
    d = 3
    diag = sp.symbols("l1:4", positive=True)
    off = sp.symbols("o1:4", real=True)
    L = sp.Matrix([[diag[0], 0, 0], [off[0], diag[1], 0], [off[1], off[2], diag[2]]])
    entropy = sp.log((2 * sp.pi * sp.E) ** d * (L * L.T).det()) / 2    # 1/2 log det(2 pi e Sigma)
    displayed = sp.Rational(d, 2) * sp.log(2 * sp.pi * sp.E) + sum(sp.log(x) for x in diag)
    assert sp.simplify(sp.expand_log(entropy - displayed, force=True)) == 0


# --- the Gamma target (eq-advi-gamma-elbo to eq-advi-gamma-page) -------------------------------------


def _gaussian_expectation(expr, var, mean, sd):
    density = sp.exp(-(var - mean) ** 2 / (2 * sd ** 2)) / (sd * sp.sqrt(2 * sp.pi))
    return sp.simplify(sp.integrate(expr * density, (var, -sp.oo, sp.oo)).rewrite(sp.erf))


def _gamma_elbo(jacobian_sign):
    """ELBO(mu, s) of N(mu, s^2) for log p~ = log Gamma(e^eta) + jacobian_sign * eta, symbolically."""
    eta, mu = sp.symbols("eta mu", real=True)
    s, al, be = sp.symbols("s alpha beta", positive=True)
    log_p_e = sp.log(be ** al / sp.gamma(al)) + (al - 1) * eta - be * sp.exp(eta)   # log p(e^eta)
    expected = (_gaussian_expectation(log_p_e - sp.log(be ** al / sp.gamma(al)), eta, mu, s)
                + sp.log(be ** al / sp.gamma(al)) + jacobian_sign * mu)             # E[eta] = mu
    entropy = sp.log(2 * sp.pi * sp.E * s ** 2) / 2
    return expected + entropy, (mu, s, al, be)


def test_gamma_elbo_its_optimum_and_the_stirling_gap():
    elbo, (mu, s, al, be) = _gamma_elbo(+1)
    displayed = (al * mu - be * sp.exp(mu + s ** 2 / 2) + sp.log(s) + sp.log(2 * sp.pi * sp.E) / 2
                 + al * sp.log(be) - sp.log(sp.gamma(al)))
    assert sp.simplify(sp.expand_log(elbo - displayed, force=True)) == 0
    # stationary point: beta e^{mu + s^2/2} = alpha and s^2 = 1/alpha
    mu_star = sp.log(al / be) - 1 / (2 * al)
    s_star = 1 / sp.sqrt(al)
    at = {mu: mu_star, s: s_star}
    assert sp.simplify(sp.diff(elbo, mu).subs(at)) == 0
    assert sp.simplify(sp.diff(elbo, s).subs(at)) == 0
    assert sp.simplify(sp.exp(mu_star + s_star ** 2 / 2) - al / be) == 0
    # it is the maximum: the Hessian there is negative definite
    hess = sp.hessian(elbo, (mu, s)).subs(at)
    assert sp.simplify(hess[0, 0]) .is_negative and sp.simplify(hess.det()).is_positive
    # KL* = -ELBO* is the error of Stirling's approximation
    kl_star = -elbo.subs(at)
    stirling_error = sp.log(sp.gamma(al)) - ((al - sp.Rational(1, 2)) * sp.log(al) - al + sp.log(2 * sp.pi) / 2)
    assert sp.simplify(sp.expand_log(kl_star - stirling_error, force=True)) == 0
    # ... which is about 1 / (12 alpha): the next term of the series is -1 / (360 alpha^3)
    for a_ in (1.0, 3.0, 10.0):
        err = float(stirling_error.subs(al, a_))
        assert 0 < 1 / (12 * a_) - err <= 1 / (360 * a_ ** 3)


@pytest.mark.parametrize("a_,b_", [(3.0, 2.0), (1.5, 0.2), (8.0, 5.0)])
def test_gamma_optimum_kl_by_quadrature_in_both_spaces(a_, b_):
    # KL(q || p) of the optimal log-normal q from the Gamma target, computed directly in z, equals the
    # Stirling error; the same KL computed in eta (Gaussian against the transformed density) agrees:
    # the KL divergence is invariant under the change of variables even though the entropy is not.
    mu, s = np.log(a_ / b_) - 1 / (2 * a_), 1 / np.sqrt(a_)
    q_z, p_z = stats.lognorm(s=s, scale=np.exp(mu)), stats.gamma(a_, scale=1 / b_)
    kl_z, _ = integrate.quad(lambda z: q_z.pdf(z) * (q_z.logpdf(z) - p_z.logpdf(z)), 0, np.inf, limit=400)
    q_e = stats.norm(mu, s)

    def log_p_eta(e):
        return a_ * np.log(b_) - gammaln(a_) + a_ * e - b_ * np.exp(e)

    kl_eta, _ = integrate.quad(lambda e: q_e.pdf(e) * (q_e.logpdf(e) - log_p_eta(e)),
                               mu - 12 * s, mu + 12 * s, limit=400)
    stirling_error = gammaln(a_) - ((a_ - 0.5) * np.log(a_) - a_ + 0.5 * np.log(2 * np.pi))
    assert kl_z == pytest.approx(stirling_error, rel=1e-6)
    assert kl_eta == pytest.approx(kl_z, rel=1e-6)
    assert q_z.mean() == pytest.approx(a_ / b_, rel=1e-12)          # exactly the target's mean
    # the entropies in the two spaces differ by E[eta] = mu (eq-advi-entropy)
    assert q_z.entropy() - q_e.entropy() == pytest.approx(mu, abs=1e-10)


def test_the_page_sign_fits_a_gamma_with_shape_alpha_minus_two():
    elbo, (mu, s, al, be) = _gamma_elbo(-1)
    solution = sp.solve([sp.diff(elbo, mu), sp.diff(elbo, s)], [mu, s], dict=True)
    assert solution, "no stationary point"
    means = {sp.simplify(sp.exp(sol[mu] + sol[s] ** 2 / 2)) for sol in solution}
    assert means == {(al - 2) / be}
    assert float(((al - 2) / be).subs({al: 3, be: 2})) == 0.5


# --- the InverseGamma-Normal posterior in (log s, m) -----------------------------------------------


def test_log_s_and_m_are_uncorrelated_but_not_independent():
    x = np.random.default_rng(0).normal(1.0, np.sqrt(2.0), size=20)   # the chapter's data
    model = vc.models.InverseGammaNormal(x, a=2.0, b=3.0)
    post = model.posterior()
    assert post["kappa_n"] == 21 and 2 * post["a_n"] == 24            # figure captions: s/21, 24 dof
    e1 = np.linspace(-2.0, 2.5, 801)                                    # log s
    m = np.linspace(post["mu_n"] - 3.0, post["mu_n"] + 3.0, 801)
    E1, M = np.meshgrid(e1, m, indexing="ij")
    dens = np.exp(model.posterior_logpdf(np.exp(E1), M) + E1)           # density of (log s, m)
    w = dens / integrate.simpson(integrate.simpson(dens, x=m, axis=1), x=e1)

    def expect(f):
        return integrate.simpson(integrate.simpson(f * w, x=m, axis=1), x=e1)

    cov = expect(E1 * M) - expect(E1) * expect(M)
    sd1 = np.sqrt(expect(E1 ** 2) - expect(E1) ** 2)
    sd2 = np.sqrt(expect(M ** 2) - expect(M) ** 2)
    assert abs(cov / (sd1 * sd2)) < 1e-6
    # the conditional spread of m grows with s: Var[m | s] = s / kappa_n
    for s_ in (0.8, 1.6, 3.2):
        cond = np.exp(model.posterior_logpdf(s_, m))
        cond /= integrate.simpson(cond, x=m)
        var = integrate.simpson((m - post["mu_n"]) ** 2 * cond, x=m)
        assert var == pytest.approx(s_ / post["kappa_n"], rel=1e-6)


def test_best_mean_field_gaussian_is_nine_and_four_percent_too_narrow():
    """The optimum of the mean-field ELBO found by deterministic quadrature (not by vc.advi)."""
    x = np.random.default_rng(0).normal(1.0, np.sqrt(2.0), size=20)
    model = vc.models.InverseGammaNormal(x, a=2.0, b=3.0)
    post = model.posterior()
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / np.sqrt(2 * np.pi)
    N1, N2 = np.meshgrid(nodes, nodes, indexing="ij")
    eps, w = np.column_stack([N1.ravel(), N2.ravel()]), np.outer(weights, weights).ravel()

    def log_p_tilde(eta):  # log p(D, e^eta1, eta2) + eta1 (the log joint is checked against SciPy
        # in tests/test_inverse_gamma_normal.py; the transform is written out here)
        return model.log_joint(np.column_stack([np.exp(eta[:, 0]), eta[:, 1]])) + eta[:, 0]

    def negative_elbo(p):
        return -(np.sum(w * log_p_tilde(p[:2] + np.exp(p[2:]) * eps)) + p[2:].sum())

    res = optimize.minimize(negative_elbo, [0.4, 0.7, -1.2, -1.3], method="Nelder-Mead",
                            options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 5000})
    mu, sd = res.x[:2], np.exp(res.x[2:])
    sd_s = stats.lognorm(s=sd[0], scale=np.exp(mu[0])).std()
    assert 0.085 < 1 - sd_s / post["sd_s"] < 0.10                        # "9%"
    assert 0.035 < 1 - sd[1] / post["sd_m"] < 0.05                       # "4%"
    # its ELBO is a few hundredths of a nat below log p(D) (the gap is the KL divergence)
    elbo_star = -res.fun + np.log(2 * np.pi * np.e)
    assert 0.01 < model.log_evidence() - elbo_star < 0.05


# --- the Beta-Bernoulli model (eq-advi-logit-beta, eq-advi-beta-mean, eq-advi-logit-beta-var) -------


def test_logit_of_a_beta_and_the_stationarity_condition():
    eta = sp.Symbol("eta", real=True)
    a, b = sp.symbols("a b", positive=True)
    sig = 1 / (1 + sp.exp(-eta))
    beta_log_pdf = (a - 1) * sp.log(sig) + (b - 1) * sp.log(1 - sig) - sp.log(sp.beta(a, b))
    log_jac = sp.log(sp.diff(sig, eta))
    displayed = a * sp.log(sig) + b * sp.log(1 - sig)
    # equal up to a constant (the normaliser)
    assert sp.simplify(sp.diff(beta_log_pdf + log_jac - displayed, eta)) == 0
    # d/d eta log p~ = a (1 - sigma) - b sigma
    assert sp.simplify(sp.diff(displayed, eta) - (a * (1 - sig) - b * sig)) == 0


def _best_logit_normal(a, b, order=120):
    """Maximise E_q[a log s(eta) + b log(1 - s(eta))] + log sd over N(mu, sd^2) (Gauss-Hermite)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    weights = weights / np.sqrt(2 * np.pi)

    def negative_elbo(p):
        e = p[0] + np.exp(p[1]) * nodes
        return -(np.sum(weights * (-a * np.logaddexp(0, -e) - b * np.logaddexp(0, e))) + p[1])

    res = optimize.minimize(negative_elbo, [np.log(a / b), -1.0], method="BFGS", options={"gtol": 1e-10})
    mu, sd = res.x[0], np.exp(res.x[1])
    mean_z = np.sum(weights * expit(mu + sd * nodes))
    sd_z = np.sqrt(np.sum(weights * expit(mu + sd * nodes) ** 2) - mean_z ** 2)
    return mu, sd, mean_z, sd_z


@pytest.mark.parametrize("a,b", [(4.0, 18.0), (2.5, 7.0), (30.0, 12.0)])
def test_optimal_logit_normal_has_the_exact_mean_and_is_narrower_in_eta(a, b):
    mu, sd, mean_z, sd_z = _best_logit_normal(a, b)
    assert mean_z == pytest.approx(a / (a + b), abs=1e-7)
    # Var[logit z] = psi'(a) + psi'(b) for z ~ Beta(a, b), by quadrature
    dist = stats.beta(a, b)
    m1 = integrate.quad(lambda z: np.log(z / (1 - z)) * dist.pdf(z), 0, 1, limit=400)[0]
    m2 = integrate.quad(lambda z: np.log(z / (1 - z)) ** 2 * dist.pdf(z), 0, 1, limit=400)[0]
    assert m2 - m1 ** 2 == pytest.approx(polygamma(1, a) + polygamma(1, b), rel=1e-8)
    assert sd ** 2 < m2 - m1 ** 2                                         # narrower in eta


def test_best_logit_normal_for_the_chapter_coin_is_three_percent_too_wide_in_z():
    a, b = 4.0, 18.0                                                      # 3 heads in 20, uniform prior
    _, _, mean_z, sd_z = _best_logit_normal(a, b)
    ratio = sd_z / stats.beta(a, b).std()
    assert round(ratio - 1, 2) == 0.03                                    # "3% too wide"
    # where they differ, in eta: the exact density has the heavier left tail, and the Gaussian puts
    # more mass on the right, where the slope of the sigmoid is larger
    mu, sd, _, _ = _best_logit_normal(a, b)
    q = stats.norm(mu, sd)

    def exact_eta(e):  # density of logit(z) for z ~ Beta(a, b), by eq-advi-logit-beta
        return np.exp(a * np.log(expit(e)) + b * np.log(expit(-e)) - betaln(a, b))

    assert integrate.quad(exact_eta, -60, 10)[0] == pytest.approx(1.0, abs=1e-9)
    assert integrate.quad(exact_eta, -60, -3.0)[0] > 2 * q.cdf(-3.0)
    assert q.sf(-0.5) > 1.2 * integrate.quad(exact_eta, -0.5, 10)[0]
    slope = expit(np.array([-3.0, -1.0, 0.0])) * expit(-np.array([-3.0, -1.0, 0.0]))
    assert np.all(np.diff(slope) > 0)


# --- the numbers the prose states ------------------------------------------------------------------


def test_support_mismatch_numbers():
    ns = chapter_namespace()
    assert ns["target"].mean() == pytest.approx(1.5) and ns["target"].std() == pytest.approx(np.sqrt(3) / 2)
    assert round(ns["target"].std(), 2) == 0.87
    p_below = ns["q_gauss"].cdf(0.0)
    assert p_below == pytest.approx(stats.norm.cdf(-np.sqrt(3)), rel=1e-12)
    assert round(p_below, 2) == 0.04                                      # "4% of the mass"
    assert ns["kl"].estimate == np.inf
    # "about four hundred such draws out of ten thousand" (the same draws as the chapter's estimate)
    draws = ns["q_gauss"].rvs(size=(10_000, 1), random_state=np.random.default_rng(0))
    assert 350 <= int(np.sum(draws <= 0)) <= 450


def test_change_of_variables_and_entropy_numbers():
    ns = chapter_namespace()
    assert ns["mass"] == pytest.approx(1.0, abs=1e-8)
    assert ns["mass_page"] == pytest.approx(2.0, abs=1e-8)
    np.testing.assert_allclose(ns["T3"].inverse_log_abs_det_jacobian(ns["eta"]),
                               ns["eta"][:, 0] + np.log(ns["sig"]) + np.log(1 - ns["sig"]), rtol=1e-12)
    assert ns["h_z_mc"] == pytest.approx(ns["h_z_scipy"], abs=5e-3)
    assert ns["h_z_scipy"] == pytest.approx(ns["h_eta"] + ns["mu_ln"], abs=1e-12)


def test_gamma_fit_numbers():
    ns = chapter_namespace()
    mu, var = ns["mu_g"], ns["var_g"]
    assert np.exp(mu + var / 2) == pytest.approx(1.5, rel=0.01)
    assert var == pytest.approx(1 / 3, rel=0.02)
    assert ns["elbo_g"] <= 0.0                                              # evidence 1: ELBO <= 0
    assert ns["elbo_g"] == pytest.approx(-ns["kl_star"], abs=0.003)
    assert ns["kl_star"] == pytest.approx(1 / 36, abs=1 / (360 * 27))


def test_inverse_gamma_normal_fit_numbers():
    ns = chapter_namespace()
    post, fits, log_ev = ns["post"], ns["fits"], ns["log_evidence"]
    assert ns["x"].size == 20
    for fit in fits.values():
        assert fit.converged and fit.n_steps <= 1000                       # "a few hundred steps"
        gap = log_ev - fit.smoothed_elbo[-1]
        assert 0.01 < gap < 0.05                                          # "a few hundredths of a nat"
        trace = fit.elbo_trace
        assert 10 < log_ev - trace[0] < 100                               # "tens of nats below"
        assert log_ev - trace[11] < 0.1 * (log_ev - trace[0])              # "most of the way in a dozen"
    assert abs(ns["corr_fr"]) < 0.02                                      # "essentially no correlation"
    for family in fits:
        # the fresh estimate with 100,000 draws is a lower bound and agrees with the trace average
        fresh = vc.elbo.elbo(ns["log_p_tilde"], fits[family].family, fits[family].params, 100_000,
                             np.random.default_rng(3))
        assert fresh < log_ev and abs(fresh - fits[family].smoothed_elbo[-1]) < 0.01
        mean, sd = ns["rows"][family]
        np.testing.assert_array_less(np.abs(mean / post["mean"] - 1), 0.01)   # "within 1%"
        assert 0.05 < 1 - sd[0] / post["sd_s"] < 0.10                       # "5 to 10%"
        assert 0.03 < 1 - sd[1] / post["sd_m"] < 0.05                       # "about 4%"
    # the marginals: q(s) is log-normal with its mode right of the exact one and half its tail mass
    exact_s = stats.invgamma(post["a_n"], scale=post["b_n"])
    for fit in fits.values():
        mean, cov = fit.mean_cov()
        q_s = stats.lognorm(s=np.sqrt(cov[0, 0]), scale=np.exp(mean[0]))
        assert np.exp(mean[0] - cov[0, 0]) > post["b_n"] / (post["a_n"] + 1)   # modes
        assert 0.35 < q_s.sf(3.0) / exact_s.sf(3.0) < 0.65                   # "about half"
        assert cov[1, 1] < post["sd_m"] ** 2                                 # q(m) a little too narrow
    # the two families end up in the same place
    (mean_mf, cov_mf), (mean_fr, cov_fr) = (f.mean_cov() for f in fits.values())
    np.testing.assert_allclose(mean_mf, mean_fr, atol=0.01)
    np.testing.assert_allclose(np.diag(cov_mf), np.diag(cov_fr), rtol=0.05)


def test_beta_bernoulli_numbers():
    ns = chapter_namespace()
    coin, post, draws = ns["coin"], ns["coin_post"], ns["coin_draws"]
    assert (coin.k, coin.n) == (3, 20) and (post["a_n"], post["b_n"]) == (4.0, 18.0)
    assert np.all((draws > 0) & (draws < 1))
    assert draws.mean() == pytest.approx(post["mean_theta"], rel=0.01)     # "the exact mean"
    assert 1.01 < draws.std() / post["sd_theta"] < 1.05                    # "a few percent too large"
    assert round(ns["gauss_below"], 2) == 0.01                             # "about 1%"
    assert ns["var_coin"] < ns["var_eta_exact"]                            # narrower in eta
