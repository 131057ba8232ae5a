"""Checks of what book/vi_optimisation.md displays and claims ("Variational inference as optimisation").

Every displayed identity is derived here independently with SymPy: the ELBO of the Exercise 2.5 model
by symbolic integration against the Gaussian q, its gradient by differentiation, the exact posterior
and evidence by integrating the joint density. Every number the prose states is checked against the
chapter's own computation: its code cells (all but the plotting cells, which draw no random numbers)
are executed in-process.

Already covered elsewhere and not repeated here:

* log p(D) = ELBO + KL(q || posterior) numerically, and the sign of log p(D) in lecture eq. 26
  numerically: ``tests/test_elbo.py::test_evidence_equals_elbo_plus_kl_to_posterior`` and
  ``tests/test_divergences.py::test_elbo_identity_eq_20``;
* the Exercise 2.5 log joint with the corrected index against ``ConjugateGaussian``:
  ``tests/test_models.py::test_conjugate_matches_lecture_exercise_2_5_with_corrected_index``;
* ``vc.elbo.elbo_decomposition`` (expected log likelihood minus closed-form KL to the prior) on random
  conjugate models: ``tests/test_elbo.py::test_decomposition_likelihood_minus_kl``;
* unbiasedness of ``vc.gradients.reparam_grad``: ``tests/test_gradients.py``;
* ``vc.advi`` against exact conjugate posteriors: ``tests/test_advi.py``.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy import stats

import vi_course as vc
from notebooks import run_chapter
from sympy_helpers import gaussian_expectation, same

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "vi_optimisation.md"


# --- the chapter's own computation -----------------------------------------------------------------


def chapter_namespace() -> dict:
    """The variables defined by the chapter's code cells (see tests/notebooks.py)."""
    return run_chapter(CHAPTER)


def test_chapter_labels_figures_and_exercises():
    text = CHAPTER.read_text(encoding="utf-8")
    for label in ("eq-gaussian-family", "eq-kl-loss", "eq-kl-minus-elbo", "eq-kl-gradient",
                  "eq-ex25-model", "eq-ex25-joint", "eq-ex25-elbo", "eq-ex25-gradient", "eq-ex25-stationary",
                  "eq-elbo-decomposition", "eq-elbo-three-terms", "eq-ex25-decomposition"):
        assert f"$$ ({label})" in text, f"equation label {label} missing"
    # every equation reference resolves to a label of this chapter or of another chapter
    book_labels = set()
    for page in CHAPTER.parent.glob("*.md"):
        book_labels |= set(re.findall(r"^\$\$ \((eq-[\w-]+)\)$", page.read_text(encoding="utf-8"), re.M))
    unresolved = set(re.findall(r"\{eq\}`([^`]+)`", text)) - book_labels
    assert not unresolved, f"references to undefined equations: {sorted(unresolved)}"
    for name in ("fig-ex25-landscape", "fig-elbo-forces"):
        assert re.search(rf"name: {name}\n", text), f"figure {name} missing"
        assert f"{{numref}}`{name}`" in text, f"figure {name} is never referenced"
    assert "(chap-vi-optimisation)=" in text
    exercises = text.split("## Exercises", 1)[1]
    assert "Exercise 2.5" in exercises and "ex5_gaussian_vi.ipynb" in exercises


# --- the Exercise 2.5 model, symbolically ----------------------------------------------------------
# K observations enter only through S1 = sum_k x_k and S2 = sum_k x_k^2.

Z, M, S1 = sp.symbols("z m S1", real=True)
V, K, S2 = sp.symbols("v K S2", positive=True)
LOG_2PI = sp.log(2 * sp.pi)
LOG_PRIOR = -Z**2 / 2 - LOG_2PI / 2
LOG_LIK = -(S2 - 2 * Z * S1 + K * Z**2) / 2 - K * LOG_2PI / 2      # sum_k log N(x_k; z, 1)
LOG_JOINT = LOG_PRIOR + LOG_LIK                                    # eq-ex25-joint
LOG_Q = -(Z - M) ** 2 / (2 * V) - sp.log(2 * sp.pi * V) / 2


def expect_q(expr):
    """E_q[expr] for q = N(m, v) (tests/sympy_helpers.py)."""
    return gaussian_expectation(expr, M, V, Z)


# the chapter's displayed formulas, typed as displayed (the sum over k written with S1, S2)
SUM_SQ = S2 - 2 * M * S1 + K * M**2                                # sum_k (x_k - m)^2
DISPLAYED_ELBO = (-(M**2 + V) / 2 - (SUM_SQ + K * V) / 2 + sp.log(V) / 2 + sp.Rational(1, 2)
                  - K / 2 * LOG_2PI)
DISPLAYED_GRAD = (S1 - (K + 1) * M, -(K + 1) / 2 + 1 / (2 * V))
DISPLAYED_STATIONARY = {M: S1 / (K + 1), V: 1 / (K + 1)}
DISPLAYED_ELL = -(SUM_SQ + K * V) / 2 - K / 2 * LOG_2PI
DISPLAYED_KL_PRIOR = (M**2 + V - 1 - sp.log(V)) / 2


@functools.lru_cache(maxsize=None)
def derived():
    """ELBO, its pieces, the exact posterior and the evidence, all derived from the joint density."""
    entropy = expect_q(-LOG_Q)
    elbo = sp.simplify(expect_q(LOG_JOINT) + entropy)
    ell = expect_q(LOG_LIK)
    kl_prior = expect_q(LOG_Q - LOG_PRIOR)
    evidence = sp.simplify(sp.integrate(sp.exp(sp.expand(LOG_JOINT)), (Z, -sp.oo, sp.oo), conds="none"))
    log_posterior = sp.expand(LOG_JOINT - sp.log(evidence))
    return dict(entropy=entropy, elbo=elbo, ell=ell, kl_prior=kl_prior,
                log_evidence=sp.log(evidence), log_posterior=log_posterior)


def test_joint_is_the_log_density_of_the_displayed_model():
    # eq-ex25-model -> eq-ex25-joint: scipy's normal log densities of the prior and of each of the
    # K observations add up to the displayed joint (typed in its sufficient-statistics form)
    joint = sp.lambdify((Z, K, S1, S2), LOG_JOINT, "numpy")
    rng = np.random.default_rng(25)
    for k in (1, 3, 10):
        for _ in range(5):
            z, x = rng.normal(), rng.normal(1.0, 2.0, size=k)
            by_scipy = stats.norm(0, 1).logpdf(z) + stats.norm(z, 1).logpdf(x).sum()
            assert joint(z, k, x.sum(), np.sum(x**2)) == pytest.approx(by_scipy, rel=1e-12)


def test_sufficient_statistics_form_of_the_joint():
    # eq-ex25-joint written with S1, S2 is the explicit sum over k = 1..K (here K = 3), and it is the
    # log of a normalised density of (z, x_1, ..., x_K)
    xs = sp.symbols("x1:4", real=True)
    explicit = -Z**2 / 2 - sum((xk - Z) ** 2 for xk in xs) / 2 - sp.Rational(4, 2) * LOG_2PI
    stats_form = LOG_JOINT.subs({K: 3, S1: sum(xs), S2: sum(xk**2 for xk in xs)})
    assert sp.simplify(sp.expand(explicit - stats_form)) == 0
    density = sp.exp(explicit)
    for var in (*xs, Z):
        density = sp.integrate(density, (var, -sp.oo, sp.oo))
    assert sp.simplify(density) == 1


def test_closed_form_elbo_gradient_and_stationary_point():
    d = derived()
    assert same(d["elbo"], DISPLAYED_ELBO)                                    # eq-ex25-elbo
    for param, shown in zip((M, V), DISPLAYED_GRAD):                          # eq-ex25-gradient
        assert sp.simplify(sp.diff(d["elbo"], param) - shown) == 0
    solutions = sp.solve([sp.diff(d["elbo"], M), sp.diff(d["elbo"], V)], [M, V], dict=True)
    assert solutions == [DISPLAYED_STATIONARY]                                # eq-ex25-stationary
    # concave: second derivatives -(K + 1) and -1/(2 v^2), no mixed term
    hessian = sp.hessian(d["elbo"], (M, V))
    assert sp.simplify(hessian - sp.Matrix([[-(K + 1), 0], [0, -1 / (2 * V**2)]])) == sp.zeros(2, 2)


def test_stationary_point_is_the_exact_posterior_and_attains_the_evidence():
    d = derived()
    # the posterior: log p(z | D) is quadratic in z; read off its precision and mean
    poly = sp.Poly(sp.expand(d["log_posterior"]), Z)
    a2, a1 = poly.coeff_monomial(Z**2), poly.coeff_monomial(Z)
    precision, mean = sp.simplify(-2 * a2), sp.simplify(a1 / (-2 * a2))
    assert sp.simplify(precision - (K + 1)) == 0
    assert sp.simplify(1 / precision - DISPLAYED_STATIONARY[V]) == 0
    assert sp.simplify(mean - DISPLAYED_STATIONARY[M]) == 0
    # the posterior is normalised, and the ELBO at the stationary point is log p(D)
    assert sp.simplify(sp.integrate(sp.exp(d["log_posterior"]), (Z, -sp.oo, sp.oo), conds="none")) == 1
    assert same(d["elbo"].subs(DISPLAYED_STATIONARY), d["log_evidence"])


# --- eq-kl-loss, eq-kl-minus-elbo, eq-kl-gradient and the sign of lecture eq. 26 -------------------


def test_kl_is_minus_elbo_plus_log_evidence():
    d = derived()
    kl = expect_q(LOG_Q - d["log_posterior"])                                 # eq-kl-loss
    assert same(kl, -d["elbo"] + d["log_evidence"])                           # eq-kl-minus-elbo
    # lecture eq. 26 puts "+ log p(D)" inside the bracket: E_q[log p(z|D)/q] = E_q[log p(z,D)/q] + log p(D)
    inside = expect_q(d["log_posterior"] - LOG_Q)
    assert same(inside, d["elbo"] - d["log_evidence"])
    assert not same(inside, d["elbo"] + d["log_evidence"])
    # eq-kl-gradient: the two gradients are opposite in every coordinate
    for param in (M, V):
        assert sp.simplify(sp.diff(kl, param) + sp.diff(d["elbo"], param)) == 0


def test_chapter_gradient_comparison():
    ns = chapter_namespace()
    fam, theta, model = ns["fam"], ns["theta"], ns["model"]
    mean, sd = (float(a[0]) for a in fam.unpack(theta))
    x = model.x
    # exact ELBO gradient in the family's parameters (m, log sd): d/dlog sd = 2 v d/dv
    v = sd**2
    exact = np.array([x.sum() - (x.size + 1) * mean, 2 * v * (-(x.size + 1) / 2 + 1 / (2 * v))])
    np.testing.assert_allclose(ns["grad_kl"], -exact, rtol=1e-6, atol=1e-8)
    # the Monte Carlo ELBO gradient: same seed and sample size, per-sample rows for its error
    rows = vc.gradients.reparam_grad_samples(model.log_joint, fam, theta, 100_000, np.random.default_rng(1))
    np.testing.assert_allclose(rows.mean(axis=0), ns["grad_elbo"], rtol=1e-10)
    se = rows.std(axis=0, ddof=1) / np.sqrt(rows.shape[0])
    assert np.all(np.abs(ns["grad_elbo"] - exact) < 4 * se)


# --- the chapter's Exercise 2.5 computations -------------------------------------------------------


def test_chapter_closed_form_functions_are_the_displayed_formulas():
    ns = chapter_namespace()
    x = ns["x"]
    subs = {K: x.size, S1: float(x.sum()), S2: float((x**2).sum())}
    elbo = sp.lambdify((M, V), DISPLAYED_ELBO.subs(subs))
    grad = [sp.lambdify((M, V), g.subs(subs)) for g in DISPLAYED_GRAD]
    for m, v in [(0.0, 1.0), (-1.3, 0.07), (2.5, 3.0)]:
        assert ns["elbo_closed_form"](m, v) == pytest.approx(elbo(m, v), rel=1e-12)
        np.testing.assert_allclose(ns["elbo_gradient"](m, v), [g(m, v) for g in grad], rtol=1e-12)
    grid_m, grid_v = np.meshgrid([-1.0, 0.5, 2.0], [0.1, 1.0])
    np.testing.assert_allclose(ns["elbo_closed_form"](grid_m, grid_v), elbo(grid_m, grid_v), rtol=1e-12)
    # the Monte Carlo ELBO of the library agrees with the closed form (the chapter's check points)
    model, fam = ns["model"], ns["fam"]
    rng = np.random.default_rng(5)
    for m, v in [(0.0, 1.0), (1.0, 0.5), (2.5, 0.05)]:
        params = fam.pack([m], np.sqrt(v))
        lj = model.log_joint(fam.sample(params, 100_000, rng))
        estimate = lj.mean() + float(fam.entropy(params))
        assert abs(estimate - ns["elbo_closed_form"](m, v)) < 4 * lj.std(ddof=1) / np.sqrt(lj.size)


def test_chapter_stationary_point_advi_and_ascent():
    ns = chapter_namespace()
    model = ns["model"]
    post_mean, post_cov = model.posterior()
    assert ns["K"] == 4
    assert ns["m_star"] == pytest.approx(post_mean[0], rel=1e-12)
    assert ns["v_star"] == pytest.approx(post_cov[0, 0], rel=1e-12) and ns["v_star"] == 0.2
    np.testing.assert_allclose(ns["elbo_gradient"](ns["m_star"], ns["v_star"]), [0.0, 0.0], atol=1e-12)
    assert ns["elbo_closed_form"](ns["m_star"], ns["v_star"]) == pytest.approx(model.log_evidence(), abs=1e-10)
    # vc.advi "finds the same answer, up to the small error its stochastic gradients leave"
    # (a thousandth of a posterior standard deviation is well within that; 1 % of the variance)
    assert ns["fit_mean"][0] == pytest.approx(ns["m_star"], abs=2e-3 * np.sqrt(ns["v_star"]))
    assert ns["fit_cov"][0, 0] == pytest.approx(ns["v_star"], rel=0.01)
    # "after 60 steps it sits on the exact posterior to six digits"
    path = ns["elbo_path"]
    assert path.shape == (2, 61) and path[:, 0].tolist() == [-1.5, 2.25]
    assert abs(path[0, -1] - ns["m_star"]) < 5e-7 and abs(path[1, -1] - ns["v_star"]) < 5e-7
    # "first carries the mean over to the data while the standard deviation shrinks only a little"
    t = int(np.argmax(np.abs(path[0] - ns["m_star"]) < 0.25))
    assert 0 < t < 15 and np.sqrt(path[1, t]) > 2 * np.sqrt(ns["v_star"])
    assert np.all(np.diff(path[1]) <= 0)  # the variance only ever shrinks from this start


# --- eq-elbo-decomposition, eq-elbo-three-terms, eq-ex25-decomposition, lecture eq. 33 -------------


def test_decomposition_terms():
    d = derived()
    assert same(d["ell"], DISPLAYED_ELL)
    assert same(d["kl_prior"], DISPLAYED_KL_PRIOR)
    assert same(DISPLAYED_ELL - DISPLAYED_KL_PRIOR, DISPLAYED_ELBO)           # eq-elbo-decomposition
    assert same(d["ell"] + expect_q(LOG_PRIOR) + d["entropy"], d["elbo"])     # eq-elbo-three-terms
    assert same(d["entropy"], sp.log(2 * sp.pi * sp.E * V) / 2)
    # lecture eq. 33: L_lk = -E_q[log p(D|z)] makes L_lk - R = -E[log lik] - KL, which is not the ELBO
    assert not same(-d["ell"] - d["kl_prior"], d["elbo"])


def test_the_forces_each_term_alone():
    d = derived()
    # the expected log likelihood alone: gradient (S1 - K m, -K/2); no stationary point in v > 0,
    # the mean goes to the MLE S1/K and the variance is pushed down at the constant rate K/2
    assert sp.simplify(sp.diff(d["ell"], M) - (S1 - K * M)) == 0
    assert sp.simplify(sp.diff(d["ell"], V) + K / 2) == 0
    # with the prior but without the entropy (E_q log p(D, z)): still -(K+1)/2 in v, and the mean goes
    # to the maximum of the joint density, the MAP estimate S1/(K+1)
    joint = expect_q(LOG_JOINT)
    assert sp.simplify(sp.diff(joint, V) + (K + 1) / 2) == 0
    map_estimate = sp.solve(sp.diff(LOG_JOINT, Z), Z)
    assert map_estimate == sp.solve(sp.diff(joint, M), M) == [S1 / (K + 1)]
    # the entropy's 1/(2v) balances the rest exactly at v* = 1/(K+1)
    assert sp.solve(sp.diff(joint, V) + sp.diff(d["entropy"], V), V) == [1 / (K + 1)]


def test_chapter_decomposition_table_and_collapse():
    ns = chapter_namespace()
    x, path, lik = ns["x"], ns["elbo_path"], ns["lik_path"]
    subs = {K: x.size, S1: float(x.sum()), S2: float((x**2).sum())}
    ell = sp.lambdify((M, V), DISPLAYED_ELL.subs(subs))
    kl = sp.lambdify((M, V), DISPLAYED_KL_PRIOR.subs(subs))
    ell_t, kl_t = ell(*path), kl(*path)
    # "the expected log likelihood improves by about 30 nats"
    assert 28 < ell_t[-1] - ell_t[0] < 33
    # "the divergence from the prior first falls ... then rises to about 1.9 nats"
    assert kl_t.min() < kl_t[0] < kl_t[-1] and round(kl_t[-1], 1) == 1.9
    assert int(np.argmin(kl_t)) < 10
    # the likelihood-only path: mean to the MLE, variance at the floor from step 23 on
    assert lik[0, -1] == pytest.approx(x.mean(), abs=1e-5)
    v0, step, K_ = 2.25, ns["step"], x.size
    assert ns["collapse"] == int(np.ceil(v0 / (step * K_ / 2))) == 23
    assert np.all(lik[1, ns["collapse"]:] == 1e-10) and np.all(lik[1, :ns["collapse"]] > 1e-10)
    # "the collapsed q has the best expected log likelihood of all, ... its ELBO is terrible"
    assert ns["parts"].expected_log_likelihood > ell_t.max()
    assert ns["parts"].kl == pytest.approx(kl(lik[0, -1], lik[1, -1]), rel=1e-10)
    assert ns["parts"].elbo < ns["elbo_closed_form"](ns["m_star"], ns["v_star"]) - 10
    # the collapse is unbounded: the KL to the prior diverges like -log(v)/2
    assert sp.limit(DISPLAYED_KL_PRIOR / (-sp.log(V) / 2), V, 0, "+") == 1


def test_chapter_sample_trajectories():
    ns = chapter_namespace()
    eps = ns["eps"][:, 0]
    z_elbo, z_lik = ns["z_elbo"], ns["z_lik"]
    assert z_elbo.shape == z_lik.shape == (61, 40)
    # each sample is z_i = m_t + sqrt(v_t) eps_i
    m_t, v_t = ns["elbo_path"]
    np.testing.assert_allclose(z_elbo, m_t[:, None] + np.sqrt(v_t)[:, None] * eps[None, :], atol=1e-12)
    # ELBO: the final samples are a posterior sample (the same noise, posterior mean and sd), they
    # stop short of the MLE on average, and they stay apart
    np.testing.assert_allclose(z_elbo[-1], ns["m_star"] + np.sqrt(ns["v_star"]) * eps, atol=1e-6)
    assert z_elbo[-1].mean() < ns["x"].mean() and np.ptp(z_elbo[-1]) > 1.0
    # likelihood only: all samples merge at the MLE
    assert np.ptp(z_lik[-1]) < 1e-3 and z_lik[-1].mean() == pytest.approx(ns["x"].mean(), abs=1e-4)
