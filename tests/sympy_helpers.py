"""SymPy tools of the chapter tests: Gaussian integrals and expectations computed from SymPy's own
integrator (never from the closed forms the chapters display), and an equivalence test."""
from __future__ import annotations

import functools

import sympy as sp

Z = sp.Symbol("z", real=True)
_T = sp.Symbol("t", real=True)
_A = sp.Symbol("a", positive=True)
_B = sp.Symbol("b", real=True)


@functools.lru_cache(maxsize=None)
def _gaussian_integral(k: int) -> sp.Expr:
    """int t^k exp(-a t^2 + b t) dt over the real line: SymPy's integrator for k = 0, then
    differentiation under the integral sign with respect to b."""
    base = sp.simplify(sp.integrate(sp.exp(-_A * _T**2 + _B * _T), (_T, -sp.oo, sp.oo),
                                    conds="none"))
    return sp.diff(base, _B, k)


def integrate_gaussian(prefactor, exponent, var=Z) -> sp.Expr:
    """int prefactor(var) exp(exponent(var)) d var over R, for a polynomial prefactor and an
    exponent quadratic in ``var`` with a negative leading coefficient."""
    expo = sp.Poly(sp.expand(exponent), var)
    assert expo.degree() == 2
    c2, c1, c0 = (expo.coeff_monomial(var**k) for k in (2, 1, 0))
    pre = sp.Poly(sp.expand(prefactor), var)
    total = sum(coeff * _gaussian_integral(k) for (k,), coeff in pre.terms())
    return sp.exp(c0) * total.subs({_A: -c2, _B: c1}, simultaneous=True)


@functools.lru_cache(maxsize=None)
def _standard_normal_moment(k: int) -> sp.Expr:
    """E[T^k] for T ~ N(0, 1), by symbolic integration against the standard normal density."""
    return sp.integrate(_T**k * sp.exp(-_T**2 / 2) / sp.sqrt(2 * sp.pi), (_T, -sp.oo, sp.oo))


def gaussian_expectation(expr, mean, var, variable=Z) -> sp.Expr:
    """E[expr] for ``variable`` ~ N(mean, var), expr a polynomial in it (coefficients may hold other
    symbols and logarithms): substitute variable = mean + sqrt(var) t and integrate each power of t
    against the standard normal density (equivalent to integrating against N(mean, var), faster)."""
    shifted = sp.expand(sp.expand_log(expr, force=True).subs(variable, mean + sp.sqrt(var) * _T))
    poly = sp.Poly(shifted, _T)
    return sp.simplify(sum(coeff * _standard_normal_moment(k) for (k,), coeff in poly.terms()))


def same(a, b) -> bool:
    """Whether two expressions are equal, after expanding products and logarithms."""
    return sp.simplify(sp.expand_log(sp.expand(a - b), force=True)) == 0
