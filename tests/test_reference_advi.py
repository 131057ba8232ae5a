"""The references of advi/ex_advi, derived independently of the notebook's formulas.

The hidden ``CHECK`` declarations are read from the source notebook (parsed, not executed):

* log-Jacobians: sympy differentiates the inverse transforms, and separately the forward maps
  (inverse function theorem);
* the transformed Gamma density is the derivative of the Gamma CDF (sympy.stats) at e^eta, and it
  integrates to 1 over the real line (symbolic integration for concrete parameters, CDF limits
  for general ones);
* the ELBO literals of the function cases (generated offline with tensor Gauss-Hermite
  quadrature) are recomputed with scipy's adaptive quadrature and log joints written with
  scipy.stats; the declared tolerances must be far below the shift a sign error on the
  log-Jacobian or a missing entropy would cause.
"""
import math
import os

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, stats
from sympy.stats import Gamma, cdf, density

from grading import checks, compare, exprtree, inputs
from notebooks import hidden_checks

PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "solutions", "advi", "ex_advi.ipynb")


CHECKS = hidden_checks(PATH)
eta = sp.Symbol("eta", real=True)
a = sp.Symbol("a", real=True)
w = sp.Symbol("w", positive=True)
alpha, beta = sp.symbols("alpha beta", positive=True)
u = sp.Symbol("u", positive=True)
theta = sp.Symbol("theta", positive=True)
MINE = {"eta": eta, "a": a, "w": w, "alpha": alpha, "beta": beta, "u": u}


def _reference(part):
    decls = compare.declare_symbols(CHECKS[part]["symbols"])
    symbols = {name: d.symbol for name, d in decls.items()}
    ref = exprtree.parse_formula(CHECKS[part]["reference"], symbols)
    return ref.subs({symbols[n]: MINE[n] for n in symbols})


def _same(expr, other):
    return sp.simplify(expr - other) == 0


def test_every_part_has_a_check():
    assert set(CHECKS) == {"test_log_jac_exp", "test_log_jac_interval", "test_gamma_eta",
                           "test_integrand_u", "test_total_integral", "test_advi_elbo"}


def test_log_transform_jacobian():
    ref = _reference("test_log_jac_exp")
    assert _same(ref, sp.log(sp.Abs(sp.diff(sp.exp(eta), eta))))
    forward = sp.log(theta)                                # eta = T(theta)
    assert _same(ref, -sp.log(sp.Abs(sp.diff(forward, theta))).subs(theta, sp.exp(eta)))


def test_scaled_logit_jacobian():
    ref = _reference("test_log_jac_interval")
    b = a + w
    inverse = a + (b - a) / (1 + sp.exp(-eta))
    from_inverse = sp.log(sp.Abs(sp.diff(inverse, eta)))
    t = sp.Symbol("t", real=True)
    forward = sp.log(t - a) - sp.log(b - t)
    from_forward = -sp.log(sp.Abs(sp.diff(forward, t))).subs(t, inverse)
    for other in (from_inverse, from_forward):
        for point in ({eta: -2.3, a: -1, w: 4}, {eta: 0.4, a: 0.5, w: 0.2}, {eta: 7.1, a: 3, w: 1.5}):
            assert math.isclose(float(ref.subs(point)), float(other.subs(point)), rel_tol=1e-12,
                                abs_tol=1e-12)
    assert _same(sp.exp(ref), sp.exp(from_inverse))


def test_gamma_density_under_log_is_the_derivative_of_the_cdf():
    ref = _reference("test_gamma_eta")
    G = Gamma("G", alpha, 1 / beta)                        # sympy.stats: shape, scale = 1/rate
    F_eta = cdf(G)(sp.exp(eta))                            # P(log G <= eta)
    assert _same(sp.diff(F_eta, eta), ref)


def test_substituted_integrand_is_the_gamma_density():
    ref = _reference("test_integrand_u")
    G = Gamma("G", alpha, 1 / beta)
    assert _same(ref, density(G)(u))
    pulled_back = _reference("test_gamma_eta").subs(eta, sp.log(u)) * sp.diff(sp.log(u), u)
    assert _same(ref, pulled_back)


@pytest.mark.parametrize("shape, rate", [(3, 2), (1, sp.Rational(1, 2)), (sp.Rational(5, 2), 3)])
def test_transformed_density_integrates_to_one_over_the_real_line(shape, rate):
    ref = _reference("test_gamma_eta").subs({alpha: shape, beta: rate})
    assert sp.simplify(sp.integrate(ref, (eta, -sp.oo, sp.oo))) == 1


def test_total_integral_reference_is_one_for_all_parameters():
    assert _reference("test_total_integral") == 1
    # general alpha, beta: substitute eta = log u (d eta = du / u), integrate over u in (0, oo)
    pulled_back = sp.simplify(_reference("test_gamma_eta").subs(eta, sp.log(u)) / u)
    assert sp.simplify(sp.integrate(pulled_back, (u, 0, sp.oo))) == 1


# ----------------------------------------------------------------------------- the ELBO cases

def _scipy_log_joint(model_spec):
    """log p(x, theta) for one constrained point, written with scipy.stats (not the builders)."""
    kind = model_spec["build"]
    if kind == "gamma_prior_model":
        dist = stats.gamma(model_spec["alpha"], scale=1 / model_spec["beta"])
        return lambda th: dist.logpdf(th[0])
    if kind == "inverse_gamma_normal_model":
        # scipy.stats per point is slow inside a 2-D quadrature: the same densities written out,
        # compared with scipy.stats at random points first
        x = np.asarray(model_spec["x"], dtype=float)
        a0, b0 = model_spec["a"], model_spec["b"]
        prior_s = stats.invgamma(a0, scale=b0)

        def log_joint(th):
            s_, m_ = th
            return (a0 * math.log(b0) - math.lgamma(a0) - (a0 + 1) * math.log(s_) - b0 / s_
                    - 0.5 * (x.size + 1) * math.log(2 * math.pi * s_)
                    - (m_ ** 2 + float(((x - m_) ** 2).sum())) / (2 * s_))

        rng = np.random.default_rng(1)
        for s_, m_ in zip(rng.uniform(0.1, 5, 5), rng.normal(0, 2, 5)):
            slow = (prior_s.logpdf(s_) + stats.norm.logpdf(m_, 0, math.sqrt(s_))
                    + stats.norm.logpdf(x, m_, math.sqrt(s_)).sum())
            assert math.isclose(log_joint((s_, m_)), slow, rel_tol=1e-12)
        return log_joint
    if kind == "beta_bernoulli_model":
        x = np.asarray(model_spec["x"], dtype=int)
        low, high = model_spec.get("low", 0.0), model_spec.get("high", 1.0)
        prior = stats.beta(model_spec["a"], model_spec["b"], loc=low, scale=high - low)
        return lambda th: (prior.logpdf(th[0])
                           + stats.bernoulli.logpmf(x, (th[0] - low) / (high - low)).sum())
    raise AssertionError(kind)


def _inverse(supports, e):
    """theta = T^-1(eta) and log|det J| coordinate-wise, from sympy derivatives of the maps."""
    out, log_det = [], 0.0
    for support, value in zip(supports, e):
        if support == "real":
            expr = eta
        elif support == "positive":
            expr = sp.exp(eta)
        else:
            _, low, high = support
            expr = low + (high - low) / (1 + sp.exp(-eta))
        out.append(float(expr.subs(eta, value)))
        log_det += math.log(abs(float(sp.diff(expr, eta).subs(eta, value))))
    return np.array(out), log_det


def _quadrature_elbo(model_spec, mu, log_sigma):
    """Exact ELBO by scipy adaptive quadrature; also E[log|det J|] and the entropy."""
    model = inputs.build(model_spec)
    supports = model.supports
    log_joint = _scipy_log_joint(model_spec)
    sd = np.exp(log_sigma)

    # fast numeric inverse maps (checked against the sympy ones in _inverse at a few points)
    def inv_coord(support, v):
        if support == "real":
            return v, 0.0
        if support == "positive":
            return math.exp(v), v
        lo, hi = support[1], support[2]
        return (lo + (hi - lo) / (1 + math.exp(-v)),
                math.log(hi - lo) - math.log1p(math.exp(-v)) - math.log1p(math.exp(v)))

    def inv(e):
        pairs = [inv_coord(s, v) for s, v in zip(supports, e)]
        return np.array([p[0] for p in pairs]), sum(p[1] for p in pairs)

    for e in ([0.3] * len(supports), [-1.7] * len(supports)):
        th1, ld1 = inv(e)
        th2, ld2 = _inverse(supports, e)
        assert np.allclose(th1, th2, rtol=1e-12) and math.isclose(ld1, ld2, rel_tol=1e-10, abs_tol=1e-12)

    def density_q(e):
        return float(np.prod(stats.norm.pdf(e, mu, sd)))

    def integrand(*e):
        e = np.array(e[::-1])                     # dblquad passes (inner, outer)
        th, ld = inv(e)
        return (log_joint(th) + ld) * density_q(e)

    lo, hi = mu - 12 * sd, mu + 12 * sd
    if len(mu) == 1:
        value, err = integrate.quad(integrand, lo[0], hi[0], epsabs=1e-11, epsrel=1e-11, limit=200)
    else:
        value, err = integrate.dblquad(integrand, lo[0], hi[0], lo[1], hi[1],
                                       epsabs=1e-9, epsrel=1e-9)
    assert err < 1e-6
    # E[log|det J|] is a sum of one-dimensional expectations (the transform is coordinate-wise)
    mean_log_det = sum(
        integrate.quad(lambda v, j=j: inv_coord(supports[j], v)[1] * stats.norm.pdf(v, mu[j], sd[j]),
                       lo[j], hi[j], epsabs=1e-11, epsrel=1e-11)[0]
        for j in range(len(mu)))
    entropy = float(np.sum(stats.norm(0, sd).entropy()))
    return value + entropy, mean_log_det, entropy


_CACHE = {}


def _cached_elbo(model_spec, mu, log_sigma):
    key = repr((model_spec, list(mu), list(log_sigma)))
    if key not in _CACHE:
        _CACHE[key] = _quadrature_elbo(model_spec, mu, log_sigma)
    return _CACHE[key]


def _elbo_cases():
    out = []
    for case in CHECKS["test_advi_elbo"]["cases"]:
        model_spec, mu, log_sigma, n, _ = case["args"]
        expect = case["expect"]
        if "each" in expect or "mean" in expect:
            out.append((case, model_spec, np.array(mu["array"]), np.array(log_sigma["array"]), n))
    return out


CASES = _elbo_cases()


@pytest.mark.parametrize("index", range(len(CASES)))
def test_elbo_literals_match_adaptive_quadrature(index):
    case, model_spec, mu, log_sigma, n = CASES[index]
    expect = case["expect"]
    declared = checks.expected_value(expect["each"] if "each" in expect else expect["mean"])
    exact, mean_log_det, entropy = _cached_elbo(model_spec, mu, log_sigma)
    assert math.isclose(declared, exact, abs_tol=1e-8), (case["about"], declared, exact)
    if "each" in expect:
        atol = float(expect["atol"])
        assert n >= 10_000
        # the page's sign error and a forgotten entropy move the estimate by many tolerances
        assert abs(2 * mean_log_det) > 5 * atol, case["about"]
        assert abs(entropy) > 5 * atol, case["about"]


def test_builders_match_the_course_models():
    import vi_course as vc
    rng = np.random.default_rng(0)
    x = [0.8, -0.3, 1.9, 1.1, 0.4]
    th = np.column_stack([rng.uniform(0.2, 3, 7), rng.normal(size=7)])
    ign = inputs.build({"build": "inverse_gamma_normal_model", "x": x, "a": 2.0, "b": 3.0})
    assert np.allclose(ign.log_joint(th), vc.models.InverseGammaNormal(x, 2.0, 3.0).log_joint(th))
    coin = [1, 1, 0, 1, 1, 1, 0, 1]
    p = rng.uniform(0.01, 0.99, (7, 1))
    bb = inputs.build({"build": "beta_bernoulli_model", "x": coin, "a": 2.0, "b": 3.0})
    assert np.allclose(bb.log_joint(p), vc.models.BetaBernoulli(coin, 2.0, 3.0).log_joint(p))
    assert np.all(np.isneginf(bb.log_joint(np.array([[-0.1], [1.2]]))))


def test_spread_ceiling_of_the_unbiasedness_case_covers_both_entropy_estimates():
    # The n = 4 case tests the mean against the outputs' own standard error, so it declares a
    # ceiling on their spread. Both correct estimators (closed-form entropy, and the Monte Carlo
    # entropy -log q(eta)) must sit well below it; a much wider spread must not.
    [(case, model_spec, mu, log_sigma, n)] = [c for c in CASES if "mean" in c[0]["expect"]]
    model = inputs.build(model_spec)
    sd = np.exp(log_sigma)
    eps = np.random.default_rng(20261207).standard_normal((400_000, mu.size))
    e = mu + sd * eps
    assert list(model.supports) == ["positive", "real"]
    th = np.column_stack([np.exp(e[:, 0]), e[:, 1]])          # log|det J| of exp is eta_0
    integrand = model.log_joint(th) + e[:, 0]
    log_q = stats.norm.logpdf(e, mu, sd).sum(axis=1)
    spreads = [np.std(integrand) / math.sqrt(n), np.std(integrand - log_q) / math.sqrt(n)]
    ceiling = checks.expected_value(case["expect"]["sd_max"])
    assert 1.6 * max(spreads) <= ceiling <= 3 * min(spreads), (spreads, ceiling)
