"""The references of cavi/ex_cavi_gmm, derived independently.

* The updates of q(mu_k) (parts a, b) are derived from the model: the ELBO terms that involve
  q(mu_k) are computed by symbolic integration against N(mu; m, s^2) for a small data set with
  symbolic data and responsibilities, then maximised by differentiation and ``solve``.
* The responsibility update is derived for K = 2 by maximising the per-point ELBO over the simplex.
* The expected outputs of the hidden sweep cases, pasted into the CHECKs as literals, are
  recomputed here from those derived formulas with plain Python loops (not the library).
"""
import math
import os

import numpy as np
import pytest
import sympy as sp
from sympy.stats import Normal, density

from grading import checks, compare, exprtree, inputs
from notebooks import hidden_checks

PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "solutions", "cavi",
                    "ex_cavi_gmm.ipynb")


CHECKS = hidden_checks(PATH)
sigma = sp.Symbol("sigma", positive=True)
N_k = sp.Symbol("N_k", nonnegative=True)
S_k = sp.Symbol("S_k", real=True)
mu, m = sp.symbols("mu m", real=True)
s = sp.Symbol("s", positive=True)          # standard deviation of q(mu_k); s2 = s**2
s2 = sp.Symbol("s2", positive=True)
N_DATA = 3
xs = sp.symbols(f"x1:{N_DATA + 1}", real=True)
phis = sp.symbols(f"phi1:{N_DATA + 1}", positive=True)


def _reference(part):
    decls = compare.declare_symbols(CHECKS[part]["symbols"])
    symbols = {name: d.symbol for name, d in decls.items()}
    ref = exprtree.parse_formula(CHECKS[part]["reference"], symbols)
    return ref.subs({symbols[n]: globals()[n] for n in symbols})


_MOMENTS = {}


def _expect(expr):
    """E[expr] for mu ~ N(m, s^2) and expr polynomial in mu: each power of mu is integrated
    symbolically against the density of N(m, s^2)."""
    q = density(Normal("Q", m, s))(mu)
    for k in sp.Poly(sp.expand(expr), mu).monoms():
        if k[0] not in _MOMENTS:
            _MOMENTS[k[0]] = sp.integrate(mu**k[0] * q, (mu, -sp.oo, sp.oo))
    poly = sp.Poly(sp.expand(expr), mu)
    return sum(coeff * _MOMENTS[k] for (k,), coeff in poly.terms())


@pytest.fixture(scope="module")
def q_mu_optimum():
    """(s2*, m*) maximising the q(mu_k)-dependent ELBO, with N_k and S_k substituted back."""
    log_prior = sp.log(density(Normal("P", 0, sigma))(mu))
    log_lik = sum(phi * sp.log(density(Normal("X", mu, 1))(x)) for phi, x in zip(phis, xs))
    log_q = sp.log(density(Normal("Q", m, s))(mu))
    elbo = _expect(sp.expand_log(log_prior + log_lik - log_q, force=True))
    elbo = sp.expand(elbo).subs(s, sp.sqrt(s2))
    sol = sp.solve([sp.diff(elbo, m), sp.diff(elbo, s2)], [m, s2], dict=True)
    assert len(sol) == 1
    # a maximum: the Hessian in (m, s2) is negative definite at the stationary point
    hess = sp.hessian(elbo, (m, s2)).subs(sol[0])
    point = {sigma: sp.Rational(3, 2), **{p: sp.Rational(k + 1, 5) for k, p in enumerate(phis)},
             **{x: sp.Rational(2 * k - 3, 2) for k, x in enumerate(xs)}}
    h = np.array(hess.subs(point).evalf(), dtype=float)
    assert np.all(np.linalg.eigvalsh(h) < 0)
    return sol[0][s2], sol[0][m]


def _back(expr):
    return expr.subs({N_k: sum(phis), S_k: sum(p * x for p, x in zip(phis, xs))})


def test_variance_update_maximises_the_elbo(q_mu_optimum):
    s2_star, _ = q_mu_optimum
    assert sp.simplify(_back(_reference("test_s2")) - s2_star) == 0


def test_mean_update_maximises_the_elbo(q_mu_optimum):
    _, m_star = q_mu_optimum
    assert sp.simplify(_back(_reference("test_m")) - m_star) == 0


def _expected_log_lik_of_point():
    """E_q[log N(x; mu_k, 1)] as a function of (x, m_k, s2_k), by symbolic integration."""
    x = sp.Symbol("x", real=True)
    e = _expect(sp.expand_log(sp.log(density(Normal("X", mu, 1))(x)), force=True))
    return x, sp.expand(e).subs(s, sp.sqrt(s2))


def test_responsibility_update_is_the_maximiser_on_the_simplex():
    """For K = 2, maximise p E1 + (1 - p) E2 - p log p - (1 - p) log(1 - p) over p."""
    e1, e2 = sp.symbols("e1 e2", real=True)
    p = sp.Symbol("p", positive=True)
    objective = p * e1 + (1 - p) * e2 - p * sp.log(p) - (1 - p) * sp.log(1 - p)
    roots = sp.solve(sp.diff(objective, p), p)
    assert len(roots) == 1
    assert sp.simplify(roots[0] - sp.exp(e1) / (sp.exp(e1) + sp.exp(e2))) == 0


@pytest.fixture(scope="module")
def formulas(q_mu_optimum):
    """Plain Python callables of the derived updates."""
    x, e_loglik = _expected_log_lik_of_point()
    loglik = sp.lambdify((x, m, s2), e_loglik, "math")
    s2_star, m_star = q_mu_optimum
    n_sym, sum_sym = sp.symbols("n_sym sum_sym", real=True)
    # rewrite the derived optimum in terms of the soft count and sum (check it is possible)
    s2_fn_expr = sp.simplify(s2_star.subs(phis[0], n_sym - sum(phis[1:])))
    assert s2_fn_expr.free_symbols <= {n_sym, sigma}
    s2_fn = sp.lambdify((n_sym, sigma), s2_fn_expr, "math")
    ratio = sp.simplify(m_star / s2_star)        # m* = s2* * (sum_i phi_i x_i)
    assert sp.simplify(ratio - sum(p * xx for p, xx in zip(phis, xs))) == 0
    return loglik, s2_fn


def _sweep_by_hand(x, m_old, s2_old, prior_var, loglik, s2_fn):
    """One CAVI sweep with loops: responsibilities from the derived E_q[log lik], then q(mu)."""
    n, k = len(x), len(m_old)
    phi = []
    for i in range(n):
        e = [loglik(x[i], m_old[j], s2_old[j]) for j in range(k)]
        top = max(e)
        w = [math.exp(v - top) for v in e]
        total = math.fsum(w)
        phi.append([v / total for v in w])
    sigma_value = math.sqrt(prior_var)
    s2_new, m_new = [], []
    for j in range(k):
        count = math.fsum(phi[i][j] for i in range(n))
        weighted = math.fsum(phi[i][j] * x[i] for i in range(n))
        s2_new.append(s2_fn(count, sigma_value))
        m_new.append(s2_new[-1] * weighted)
    return {"m": m_new, "s2": s2_new, "phi": phi}


SWEEP_PARTS = ["test_sweep_phi", "test_sweep_q", "test_sweep_stable"]


def test_every_sweep_case_is_recomputed_and_matches_its_literal(formulas):
    loglik, s2_fn = formulas
    seen = 0
    for part in SWEEP_PARTS:
        check = CHECKS[part]
        assert check["kind"] == "function" and check["answer"] == "sweep_output"
        for case in check["cases"]:
            which, x, m_old, s2_old, prior_var = inputs.build(case["args"])
            assert case["returns"] == "array"
            mine = _sweep_by_hand(list(x), list(m_old), list(s2_old), prior_var, loglik, s2_fn)
            pasted = checks.expected_value(case["expect"]["each"])
            ours = np.asarray(mine[which], dtype=float)
            assert pasted.shape == ours.shape, (part, case["about"])
            assert np.allclose(pasted, ours, rtol=1e-10, atol=1e-14), (part, case["about"])
            seen += 1
    assert seen == 9


def test_cases_cover_the_three_outputs_and_overflow():
    whats = {(p, c["args"][0]) for p in SWEEP_PARTS for c in CHECKS[p]["cases"]}
    assert {("test_sweep_phi", "phi"), ("test_sweep_q", "m"), ("test_sweep_q", "s2"),
            ("test_sweep_stable", "phi"), ("test_sweep_stable", "m")} <= whats
    # the stable case really overflows exp() without normalising in log space
    case = CHECKS["test_sweep_stable"]["cases"][0]
    _, x, m_old, s2_old, _ = inputs.build(case["args"])
    with np.errstate(over="ignore"):
        raw = np.exp(np.outer(x, m_old) - 0.5 * (m_old**2 + s2_old))
    assert not np.all(np.isfinite(raw))


def test_the_sweep_does_not_lower_the_elbo(formulas):
    """Sanity check of part (d) on the hidden cases, with the ELBO written from its definition."""
    loglik, s2_fn = formulas

    def elbo(x, phi, mm, ss, prior_var):
        k = len(mm)
        total = 0.0
        for j in range(k):
            total += -0.5 * math.log(2 * math.pi * prior_var) - (mm[j]**2 + ss[j]) / (2 * prior_var)
            total += 0.5 * math.log(2 * math.pi * math.e * ss[j])
        for i, xi in enumerate(x):
            for j in range(k):
                if phi[i][j] > 0:
                    total += phi[i][j] * (-math.log(k) + loglik(xi, mm[j], ss[j]) - math.log(phi[i][j]))
        return total

    for part in SWEEP_PARTS:
        for case in CHECKS[part]["cases"]:
            _, x, m_old, s2_old, prior_var = inputs.build(case["args"])
            x, m_old, s2_old = list(x), list(m_old), list(s2_old)
            first = _sweep_by_hand(x, m_old, s2_old, prior_var, loglik, s2_fn)
            second = _sweep_by_hand(x, first["m"], first["s2"], prior_var, loglik, s2_fn)
            before = elbo(x, first["phi"], first["m"], first["s2"], prior_var)
            after = elbo(x, second["phi"], second["m"], second["s2"], prior_var)
            assert after >= before - 1e-9 * abs(before)
