r"""SymPy helpers for the derivations of the chapters and the graded exercises.

The exercises ask for answers as SymPy expressions (chapters "Importance sampling", "The ELBO and
the KL divergence", "VI as optimisation"). The same three building blocks recur in all of them:
the normal density, its logarithm written out (so that exponents stay polynomials), and the
integral of the exponential of a quadratic over the real line, which SymPy's general integrator
finds only slowly.
"""
from __future__ import annotations

import sympy as sp

__all__ = ["normal_pdf", "normal_logpdf", "gaussian_integral"]


def normal_pdf(value, mean, var):
    r"""The density :math:`\mathcal N(\text{value}; \text{mean}, \text{var})` as a SymPy expression.

    Chapter: Importance sampling, the Gaussian densities of equations ``eq-is-weight`` and
    ``eq-shift-logw``;
    :math:`\frac{1}{\sqrt{2\pi v}}\exp\big(-\frac{(x - \mu)^2}{2v}\big)`.

    Parameters
    ----------
    value, mean, var : sympy expressions or numbers
        ``var`` is the variance (not the standard deviation).

    Returns
    -------
    sympy.Expr
    """
    value, mean, var = map(sp.sympify, (value, mean, var))
    return sp.exp(-(value - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)


def normal_logpdf(value, mean, var):
    r""":math:`\log \mathcal N(\text{value}; \text{mean}, \text{var})`, written out as
    :math:`-\frac{(x - \mu)^2}{2v} - \frac12\log(2\pi v)` (no logarithm of an exponential).

    Chapter: Importance sampling, equation ``eq-shift-logw``; The ELBO and the KL divergence (the
    log densities inside the ELBO).

    Parameters
    ----------
    value, mean, var : sympy expressions or numbers
        ``var`` is the variance.

    Returns
    -------
    sympy.Expr
    """
    value, mean, var = map(sp.sympify, (value, mean, var))
    return -(value - mean) ** 2 / (2 * var) - sp.log(2 * sp.pi * var) / 2


def gaussian_integral(exponent, var):
    r""":math:`\int_{-\infty}^{\infty} e^{a t^2 + b t + c}\, dt = \sqrt{\pi / (-a)}\;
    e^{c - b^2/(4a)}` for an ``exponent`` quadratic in the symbol ``var``.

    Chapter: Importance sampling, equations ``eq-is-unbiased``, ``eq-nu2`` and
    ``eq-weight-variance`` (every integral there is of this form).

    The formula is the integral **only when** :math:`a < 0`; for :math:`a \ge 0` the integral
    diverges. The coefficients may contain other symbols whose signs this function cannot know, so
    checking :math:`a < 0` (for example, finding for which proposal widths the second moment of a
    weight is finite) is left to the caller.

    Parameters
    ----------
    exponent : sympy expression
        A polynomial of degree exactly 2 in ``var`` (its coefficients may be any expressions).
    var : sympy.Symbol
        The integration variable.

    Returns
    -------
    sympy.Expr

    Raises
    ------
    ValueError
        If ``var`` is not a SymPy symbol or ``exponent`` is not quadratic in it.
    """
    if not isinstance(var, sp.Symbol):
        raise ValueError(f"var must be a sympy Symbol, got {type(var).__name__}")
    try:
        poly = sp.Poly(sp.expand(sp.sympify(exponent)), var)
    except (sp.PolynomialError, sp.SympifyError, TypeError) as exc:
        raise ValueError(f"exponent must be a polynomial in {var}: {exc}") from None
    if poly.degree() != 2:
        raise ValueError(f"exponent must be quadratic in {var}, got degree {poly.degree()}")
    a, b, c = (poly.coeff_monomial(var ** k) for k in (2, 1, 0))
    return sp.sqrt(sp.pi / (-a)) * sp.exp(c - b ** 2 / (4 * a))
