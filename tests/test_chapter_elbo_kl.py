"""Checks of what book/elbo_kl.md displays and claims ("The ELBO and the Kullback-Leibler divergence").

Every displayed identity is derived here independently with SymPy (symbolic integration against the
Gaussian densities involved), and every number the prose states is checked against the chapter's own
computation: the chapter's code cells (all but the plotting cells, which draw no random numbers) are
executed in-process, so a change of seed or setting that breaks a claim fails a test.

Already covered elsewhere and not repeated here:

* log p(D) = E_q[w] and the Jensen preview for shifted Gaussians (eq-is-identity, eq-jensen-preview):
  ``tests/test_chapter_importance_sampling.py``;
* log p(D) = ELBO + KL(q || posterior) for random conjugate models and random q, and the zero-variance
  ELBO at the posterior, numerically: ``tests/test_elbo.py::test_evidence_equals_elbo_plus_kl_to_posterior``
  and ``::test_elbo_is_exact_with_zero_variance_at_the_posterior``;
* the library's Gaussian KL against a symbolic integral, its non-negativity, zero on itself, and the
  library values of the two directions for equal means (eq-kl-scale-ratio, numerically):
  ``tests/test_divergences.py::test_closed_form_symbolic_general_1d``, ``::test_kl_nonnegative_zero_on_itself``,
  ``::test_kl_is_asymmetric_for_different_variances`` and ``::test_kl_is_asymmetric_example``;
* Monte Carlo KL against the closed form: ``tests/test_divergences.py::test_closed_form_against_monte_carlo``.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, optimize, stats

import vi_course as vc
from notebooks import run_chapter
from sympy_helpers import Z, gaussian_expectation, same
from vi_course.symbolic import normal_logpdf
import vi_course.divergences  # noqa: F401  (vc.divergences)
import vi_course.importance  # noqa: F401  (vc.importance)

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "elbo_kl.md"


# --- the chapter's own computation -----------------------------------------------------------------


def chapter_namespace() -> dict:
    """The variables defined by the chapter's code cells (see tests/notebooks.py)."""
    return run_chapter(CHAPTER)


def test_chapter_labels_figures_and_exercises():
    text = CHAPTER.read_text(encoding="utf-8")
    for label in ("eq-log-evidence-expectation", "eq-jensen", "eq-elbo-bound", "eq-evidence-bound",
                  "eq-elbo-estimator", "eq-weights-at-posterior", "eq-kl-def", "eq-log-inequality",
                  "eq-kl-nonneg", "eq-kl-gauss-1d", "eq-elbo-kl-identity", "eq-kl-scale-ratio"):
        assert f"$$ ({label})" in text, f"equation label {label} missing"
    # every equation reference resolves to a label of this chapter or of another chapter
    book_labels = set()
    for page in CHAPTER.parent.glob("*.md"):
        book_labels |= set(re.findall(r"^\$\$ \((eq-[\w-]+)\)$", page.read_text(encoding="utf-8"), re.M))
    unresolved = set(re.findall(r"\{eq\}`([^`]+)`", text)) - book_labels
    assert not unresolved, f"references to undefined equations: {sorted(unresolved)}"
    for name in ("fig-elbo-kl-identity", "fig-kl-asymmetry", "fig-kl-fits"):
        assert re.search(rf"name: {name}\n", text), f"figure {name} missing"
        assert f"{{numref}}`{name}`" in text, f"figure {name} is never referenced"
    assert "(chap-elbo-kl)=" in text
    exercises = text.split("## Exercises", 1)[1]
    assert "Exercise 2.4" in exercises and "ex4_elbo_kl.ipynb" in exercises


# one observation x of the conjugate model z ~ N(0, s0), x | z ~ N(z, s); proposal q = N(mu, tau)
X, MU = sp.symbols("x mu", real=True)
S0, S, TAU = sp.symbols("sigma0sq sigmasq tau", positive=True)
LOG_JOINT = normal_logpdf(Z, 0, S0) + normal_logpdf(X, Z, S)
LOG_Q = normal_logpdf(Z, MU, TAU)


@functools.lru_cache(maxsize=None)
def exact_answers():
    """Evidence by integrating the joint over z, posterior by dividing by it (Bayes' rule)."""
    evidence = sp.simplify(sp.integrate(sp.exp(sp.expand(LOG_JOINT)), (Z, -sp.oo, sp.oo), conds="none"))
    log_posterior = sp.expand(LOG_JOINT - sp.log(evidence))
    return sp.log(evidence), log_posterior


# --- eq-log-evidence-expectation, eq-jensen, eq-elbo-bound, eq-evidence-bound ----------------------


def test_log_is_strictly_concave_and_jensen_gap_is_positive():
    y = sp.Symbol("y", positive=True)
    assert sp.simplify(sp.diff(sp.log(y), y, 2) + 1 / y**2) == 0  # -1/y^2 < 0: strictly concave
    # Jensen for the empirical distribution of any positive sample: mean of logs <= log of mean,
    # with equality only for a constant sample (eq-jensen with Y uniform on the sample)
    rng = np.random.default_rng(0)
    for _ in range(200):
        log_w = rng.normal(0, rng.uniform(0.01, 20), size=rng.integers(2, 50))
        assert log_w.mean() < vc.importance.log_evidence(log_w)
    assert np.mean([3.0] * 5) == pytest.approx(vc.importance.log_evidence(np.full(5, 3.0)), abs=1e-14)


def test_elbo_bound_and_identity_symbolically():
    """eq-elbo-bound/eq-elbo-kl-identity: E_q[log w] = log p(D) - KL(q || posterior) for any Gaussian
    q, with the KL divergence integrated from its definition eq-kl-def, not the closed form."""
    log_evidence, log_posterior = exact_answers()
    elbo = gaussian_expectation(LOG_JOINT - LOG_Q, MU, TAU)
    kl = gaussian_expectation(LOG_Q - log_posterior, MU, TAU)
    assert same(elbo + kl, log_evidence)
    # the gap is a KL divergence: it vanishes at the posterior mean and variance and is positive
    # elsewhere (checked at rational points)
    v1, m1 = S0 * S / (S0 + S), S0 * X / (S0 + S)
    assert sp.simplify(kl.subs({MU: m1, TAU: v1})) == 0
    for point in ({X: 1, S0: 4, S: 1, MU: 0, TAU: 1}, {X: -2, S0: 1, S: 3, MU: 1, TAU: sp.Rational(1, 10)}):
        assert float(kl.subs(point)) > 0
        # eq-evidence-bound: exp(ELBO) < p(D)
        assert float(sp.exp(elbo.subs(point))) < float(sp.exp(log_evidence.subs(point)))


def test_chapter_estimate_against_the_exact_elbo():
    ns = chapter_namespace()
    gap = ns["exact"] - ns["elbo_hat"]
    se = ns["elbo_se"]
    # eq-elbo-estimator is unbiased for the ELBO = log p(D) - KL, not for log p(D)
    assert abs(gap - ns["kl_exact"]) < 3 * se
    assert gap > 20 * se  # "well below the exact log evidence, by much more than its standard error"
    # the prose: "fell short ... by 0.72 (give or take two standard errors, 0.03) ... the KL is 0.72"
    assert round(gap, 2) == 0.72 and round(2 * se, 2) == 0.03 and round(ns["kl_exact"], 2) == 0.72
    # the same draws: the mean log weight is below log Phi_K
    assert ns["elbo_hat"] < vc.importance.log_evidence(ns["log_w"])
    # entropy="monte_carlo" with the same seed reproduces the mean log weight exactly
    assert ns["entropy"] == "monte_carlo" and ns["value"] == pytest.approx(ns["elbo_hat"], abs=1e-12)
    # the chapter's proposal: KL(N(m + s, (1.5 s)^2) || N(m, s^2)) from the displayed eq-kl-gauss-1d
    assert ns["kl_exact"] == pytest.approx(np.log(1 / 1.5) + (1.5**2 + 1) / 2 - 0.5, rel=1e-12)
    mc = ns["kl_mc"]
    assert abs(mc.estimate - ns["kl_exact"]) < 4 * mc.standard_error


# --- eq-weights-at-posterior and the index of lecture eq. 14 ---------------------------------------


def test_weights_at_the_posterior_are_the_evidence():
    log_evidence, log_posterior = exact_answers()
    log_w = sp.expand(LOG_JOINT - log_posterior)
    assert Z not in sp.simplify(log_w).free_symbols
    assert same(log_w, log_evidence)
    ns = chapter_namespace()
    assert np.max(np.abs(ns["log_w_post"] - ns["exact"])) < 1e-12
    assert ns["log_w_post"].mean() == pytest.approx(ns["exact"], abs=1e-10)  # "to ten digits"


def test_lecture_eq14_index_runs_from_one():
    # (1/K) sum_{k=0}^{K} log p(D) = (K + 1)/K log p(D): only the sum from k = 1 gives log p(D)
    k, K = sp.symbols("k K", positive=True, integer=True)
    c = sp.Symbol("c", negative=True)
    assert sp.simplify(sp.summation(c, (k, 1, K)) / K - c) == 0
    assert sp.simplify(sp.summation(c, (k, 0, K)) / K - (K + 1) * c / K) == 0


# --- eq-log-inequality and eq-kl-nonneg ------------------------------------------------------------


def test_minus_log_x_at_least_one_minus_x():
    x = sp.Symbol("x", positive=True)
    f = -sp.log(x) - (1 - x)
    assert f.subs(x, 1) == 0
    assert sp.solve(sp.diff(f, x), x) == [1]  # the only stationary point ...
    assert sp.simplify(sp.diff(f, x, 2) - 1 / x**2) == 0  # ... of a strictly convex function: min 0
    # 1 - x is the tangent of -log x at x = 1
    assert sp.diff(-sp.log(x), x).subs(x, 1) == -1
    grid = np.concatenate([np.geomspace(1e-8, 1e8, 2001), [1.0]])
    values = -np.log(grid) - (1 - grid)
    assert np.all(values >= 0) and np.all(values[grid != 1.0] > 0)


def test_kl_nonnegativity_chain_including_the_support_term():
    # q = half-normal (support z > 0) and p = N(0, 1): q = 2 p on z > 0, so KL(q || p) = log 2,
    # E_q[1 - p/q] = 1 - int_{q > 0} p = 1/2, and the chain reads log 2 >= 1/2 >= 0
    q, p = stats.halfnorm(), stats.norm()
    kl = integrate.quad(lambda t: q.pdf(t) * (q.logpdf(t) - p.logpdf(t)), 0, 40)[0]
    middle = integrate.quad(lambda t: q.pdf(t) * (1 - np.exp(p.logpdf(t) - q.logpdf(t))), 0, 40)[0]
    assert kl == pytest.approx(np.log(2), rel=1e-10)
    assert middle == pytest.approx(1 - p.sf(0.0), rel=1e-10) and middle == pytest.approx(0.5)
    assert kl >= middle >= 0
    # two Gaussians with the same support: the middle term is exactly 0
    q, p = stats.norm(0.5, 0.7), stats.norm(-1.0, 1.3)
    middle = integrate.quad(lambda t: q.pdf(t) - p.pdf(t), -40, 40, points=[-1.0, 0.5])[0]
    kl = integrate.quad(lambda t: q.pdf(t) * (q.logpdf(t) - p.logpdf(t)), -40, 40, points=[0.5])[0]
    assert middle == pytest.approx(0.0, abs=1e-10) and kl > 0


# --- eq-kl-gauss-1d and eq-kl-scale-ratio ----------------------------------------------------------

MQ, MP = sp.symbols("mu_q mu_p", real=True)
SQ, SP, R = sp.symbols("sigma_q sigma_p r", positive=True)
DISPLAYED_KL_1D = sp.log(SP / SQ) + (SQ**2 + (MQ - MP) ** 2) / (2 * SP**2) - sp.Rational(1, 2)


def test_displayed_gaussian_kl_formula_by_integration():
    # the formula as displayed in the chapter, against eq-kl-def integrated symbolically
    kl = gaussian_expectation(normal_logpdf(Z, MQ, SQ**2) - normal_logpdf(Z, MP, SP**2), MQ, SQ**2)
    assert same(kl, DISPLAYED_KL_1D)


def test_scale_ratio_forms_and_which_direction_is_larger():
    # r = sigma_q / sigma_p, equal means; KL(p || q) is the displayed formula with the roles swapped
    forward = DISPLAYED_KL_1D.subs(MQ, MP).subs(SQ, R * SP)
    backward = DISPLAYED_KL_1D.subs({SQ: SP, SP: SQ}, simultaneous=True).subs(MQ, MP).subs(SQ, R * SP)
    assert same(forward, (R**2 - 1 - sp.log(R**2)) / 2)
    assert same(backward, (R**-2 - 1 + sp.log(R**2)) / 2)
    # "whenever q is wider than p, KL(q || p) is the larger": the difference vanishes at r = 1 and
    # has derivative (r^2 - 1)^2 / r^3 >= 0
    diff = forward - backward
    assert sp.simplify(diff.subs(R, 1)) == 0
    assert sp.simplify(sp.diff(diff, R) - (R**2 - 1) ** 2 / R**3) == 0
    # growth: r^2 / 2 for a too-wide q, log(1/r) for a too-narrow one
    assert sp.limit(forward / R**2, R, sp.oo) == sp.Rational(1, 2)
    assert sp.limit(forward / sp.log(1 / R), R, 0, "+") == 1
    # the numbers in the prose: 47 nats at r = 10, under 2 nats at r = 1/10; 0.32 and 0.81 at r = 1/2, 2
    assert round(float(forward.subs(R, 10))) == 47
    assert 1.5 < float(forward.subs(R, sp.Rational(1, 10))) < 2
    assert round(float(forward.subs(R, sp.Rational(1, 2))), 2) == 0.32
    assert round(float(forward.subs(R, 2)), 2) == 0.81


# --- the identity figure ---------------------------------------------------------------------------


def test_identity_figure_claims():
    ns = chapter_namespace()
    est, err, kl, exact = ns["elbo_est"], ns["elbo_err"], ns["kl_post"], ns["exact"]
    shifts, ratios = ns["shifts"], ns["width_ratios"]
    assert est.shape == (3, 13) and list(ratios) == [0.5, 1.0, 2.0] and ns["n_draws"] == 2000
    at_posterior = (1, int(np.argmin(np.abs(shifts))))
    assert shifts[at_posterior[1]] == 0.0
    # the gap follows the exact KL divergence for every proposal (within four standard errors)
    others = np.ones_like(est, dtype=bool)
    others[at_posterior] = False
    assert np.all(np.abs(exact - est - kl)[others] < 4 * err[others])
    # "every ELBO estimate lies below the log evidence" ...
    assert np.all(est[others] + 2 * err[others] < exact)
    # ... and "touches it only at the posterior, where the estimate has no error bar at all"
    assert err[at_posterior] < 1e-12 and est[at_posterior] == pytest.approx(exact, abs=1e-10)
    assert kl[at_posterior] == 0.0 and np.all(kl[others] > 0)
    # the KL at Delta = 0 for the two wrong widths: "about 0.32" and "about 0.81" nats
    assert round(kl[0, at_posterior[1]], 2) == 0.32 and round(kl[2, at_posterior[1]], 2) == 0.81


# --- the bimodal target ----------------------------------------------------------------------------


_GRID = np.linspace(-20.0, 20.0, 8_001)


def _quad_kl(log_a, log_b):
    """KL(a || b) = int a (log a - log b) for one-dimensional log densities (vectorised over (n, 1)),
    by the trapezoidal rule on a fine grid: the integrands are smooth and negligible beyond +-20."""
    la, lb = log_a(_GRID[:, None]), log_b(_GRID[:, None])
    return float(np.trapezoid(np.exp(la) * (la - lb), _GRID))


def _gauss(mean, sd):
    return lambda z: stats.norm(mean, sd).logpdf(z[:, 0])


def test_mixture_log_density_and_sampler():
    ns = chapter_namespace()
    w, mu, sd = ns["mix_w"], ns["mix_mu"], ns["mix_sd"]
    total = integrate.quad(lambda t: np.exp(ns["log_target"](np.array([[t]]))[0]), -12, 12,
                           points=[-2, 2])[0]
    assert total == pytest.approx(1.0, rel=1e-9)
    draws = ns["sample_target"](200_000, np.random.default_rng(0))[:, 0]
    assert draws.mean() == pytest.approx(w @ mu, abs=0.02)
    assert np.mean(draws < 0) == pytest.approx(w[0], abs=0.005)
    assert draws.var() == pytest.approx(w @ (sd**2 + mu**2) - (w @ mu) ** 2, rel=0.02)


def test_reverse_kl_fits_lock_onto_one_mode_each():
    ns = chapter_namespace()
    w, mu, sd, log_target = ns["mix_w"], ns["mix_mu"], ns["mix_sd"], ns["log_target"]
    # the prose: weights 0.6 and 0.4, modes at -2 and 2 with standard deviation 0.6
    assert w.tolist() == [0.6, 0.4] and mu.tolist() == [-2.0, 2.0] and sd.tolist() == [0.6, 0.6]
    assert round(-np.log(0.6), 2) == 0.51 and round(-np.log(0.4), 2) == 0.92
    for (mean_fit, sd_fit), mode in zip(ns["reverse_fits"], (0, 1)):
        assert mean_fit[0] == pytest.approx(mu[mode], abs=0.05)  # "settles on one mode"
        assert sd_fit[0] == pytest.approx(sd[mode], abs=0.02)    # "close to that mode's 0.6"
        kl = _quad_kl(_gauss(mean_fit[0], sd_fit[0]), log_target)
        assert kl == pytest.approx(-np.log(w[mode]), abs=0.01)   # "about -log 0.6 / -log 0.4"
        # a local minimum of the exact divergence: a small move in any direction does not lower it
        for dm, ds in ((0.1, 0), (-0.1, 0), (0, 0.05), (0, -0.05)):
            assert _quad_kl(_gauss(mean_fit[0] + dm, sd_fit[0] + ds), log_target) > kl
    # the two fits differ: which one VI returns depends on the start
    assert ns["reverse_fits"][0][0][0] < 0 < ns["reverse_fits"][1][0][0]


def test_moment_matching_minimises_the_forward_kl():
    # symbolically: E_p[-log N(z; m, v)] depends on p only through its first two moments M1, M2,
    # and is stationary exactly at m = M1, v = M2 - M1^2
    m, M1 = sp.symbols("m M1", real=True)
    v, M2 = sp.symbols("v M2", positive=True)
    cross_entropy = sp.log(2 * sp.pi * v) / 2 + (M2 - 2 * m * M1 + m**2) / (2 * v)
    solutions = sp.solve([sp.diff(cross_entropy, m), sp.diff(cross_entropy, v)], [m, v], dict=True)
    assert solutions == [{m: M1, v: M2 - M1**2}]
    # numerically, for the chapter's mixture: minimise KL(p || q) over (mean, log sd), the integral
    # by the trapezoidal rule on a fine grid (the integrand is smooth and negligible beyond +-20)
    ns = chapter_namespace()
    log_target = ns["log_target"]
    def forward_kl(th):
        return _quad_kl(log_target, _gauss(th[0], np.exp(th[1])))

    best = optimize.minimize(forward_kl, x0=[0.5, 0.0], method="Nelder-Mead",
                             options={"xatol": 1e-8, "fatol": 1e-13})
    assert best.x[0] == pytest.approx(ns["mm_mean"], abs=1e-4)
    assert np.exp(2 * best.x[1]) == pytest.approx(ns["mm_var"], rel=1e-4)
    # "its mean, -0.4, lies in the valley between the modes where the target has almost no mass"
    assert ns["mm_mean"] == pytest.approx(-0.4)
    density = lambda t: np.exp(log_target(np.array([[t]]))[0])  # noqa: E731
    assert density(ns["mm_mean"]) < 0.05 * density(-2.0)


def test_cross_divergence_table():
    ns = chapter_namespace()
    log_target = ns["log_target"]
    exact = {}
    for name, (mean_fit, sd_fit) in ns["fits"].items():
        q = _gauss(mean_fit[0], sd_fit[0])
        exact[name] = (_quad_kl(q, log_target), _quad_kl(log_target, q))
    # the Monte Carlo table of the chapter, recomputed with its own seed, agrees with quadrature
    rng = np.random.default_rng(11)
    for name, (mean_fit, sd_fit) in ns["fits"].items():
        q = stats.norm(mean_fit[0], sd_fit[0])
        qp = vc.divergences.kl_monte_carlo(lambda z: q.logpdf(z[:, 0]),
                                           lambda n, r: q.rvs(size=(n, 1), random_state=r),
                                           log_target, 20_000, rng)
        pq = vc.divergences.kl_monte_carlo(log_target, ns["sample_target"], lambda z: q.logpdf(z[:, 0]),
                                           20_000, rng)
        assert abs(qp.estimate - exact[name][0]) < 4 * qp.standard_error + 1e-6
        assert abs(pq.estimate - exact[name][1]) < 4 * pq.standard_error
    # the mode-seeking fits win on KL(q || p) and lose badly on KL(p || q); moment matching the reverse
    mm = exact["moment matching"]
    for name in ("heavier mode", "lighter mode"):
        assert exact[name][0] < mm[0]
        assert exact[name][1] > 5 and exact[name][1] > 10 * mm[1]
