r"""The Kullback-Leibler divergence (chapter "The ELBO and the KL divergence").

Lecture eq. 15 defines :math:`D_{KL}(p_1, p_2) = \mathbb{E}_{z \sim p_1}[\log p_1(z) - \log p_2(z)]`.
It is non-negative, zero only when :math:`p_1 = p_2`, and not symmetric; eq. 20 says that
:math:`\log p(D) - \mathrm{ELBO}(q) = D_{KL}(q, p(\cdot \mid D))`. This module gives the closed form
for two Gaussians and a Monte Carlo estimate (with its standard error) for anything else.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from . import _checks


def _gaussian(mean_name, cov_name, mean, cov):
    """Validate a Gaussian's parameters; return ``(mean (d,), cov (d, d))``."""
    mean = np.atleast_1d(_checks.finite_array(mean_name, mean, ndim=(0, 1)))
    d = mean.size
    if d == 0:
        raise ValueError(f"{mean_name} must have at least one entry")
    cov = _checks.finite_array(cov_name, cov, ndim=(0, 1, 2))
    if cov.ndim == 0:
        if d != 1:
            raise ValueError(
                f"{cov_name} is a scalar (a variance) but {mean_name} has {d} entries; "
                f"give a ({d},) vector of variances or a ({d}, {d}) matrix"
            )
        cov = cov.reshape(1, 1)
    elif cov.ndim == 1:
        if cov.size != d:
            raise ValueError(f"{cov_name} as a vector of variances must have shape ({d},), got {cov.shape}")
        cov = np.diag(cov)
    elif cov.shape != (d, d):
        raise ValueError(f"{cov_name} must have shape ({d}, {d}) to match {mean_name}, got {cov.shape}")
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.max(np.abs(cov))))):
        raise ValueError(f"{cov_name} must be symmetric")
    return mean, cov


def _cholesky(name, cov):
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        chol = None
    if chol is None or not np.all(np.diag(chol) > 0):
        raise ValueError(f"{name} must be positive definite (all variances / eigenvalues > 0)")
    return chol


def kl_gaussian(mean_q, cov_q, mean_p, cov_p):
    r"""Closed-form :math:`D_{KL}(N(\mu_q, \Sigma_q) \,\|\, N(\mu_p, \Sigma_p))`.

    Chapter: The ELBO and the KL divergence. Lecture eq. 15 evaluated for two Gaussians:

    .. math:: \tfrac12\left[\operatorname{tr}(\Sigma_p^{-1}\Sigma_q)
              + (\mu_p - \mu_q)^\top \Sigma_p^{-1} (\mu_p - \mu_q) - d
              + \log\det\Sigma_p - \log\det\Sigma_q\right].

    Computed with Cholesky factors (no explicit inverse). The first argument is the distribution the
    expectation is taken under, as in the lecture's :math:`D_{KL}(q, p)`.

    Parameters
    ----------
    mean_q, mean_p : float or array_like, shape (d,)
    cov_q, cov_p : float, array_like of shape (d,) or (d, d)
        A scalar variance (only when d = 1), a vector of variances (diagonal covariance) or a
        symmetric positive-definite covariance matrix.

    Returns
    -------
    float
        The divergence, >= 0 (tiny negative rounding is clipped to 0).

    Raises
    ------
    ValueError
        For non-finite entries, mismatched shapes, asymmetric or non-positive-definite covariances.
    """
    mq, sq = _gaussian("mean_q", "cov_q", mean_q, cov_q)
    mp, sp = _gaussian("mean_p", "cov_p", mean_p, cov_p)
    if mq.size != mp.size:
        raise ValueError(f"mean_q and mean_p must have the same length, got {mq.size} and {mp.size}")
    lq = _cholesky("cov_q", sq)
    lp = _cholesky("cov_p", sp)
    d = mq.size
    a = np.linalg.solve(lp, lq)  # L_p^{-1} L_q, so tr(S_p^{-1} S_q) = ||a||_F^2
    b = np.linalg.solve(lp, mp - mq)  # (mu_p - mu_q)' S_p^{-1} (mu_p - mu_q) = ||b||^2
    logdet_ratio = 2.0 * (np.sum(np.log(np.diag(lp))) - np.sum(np.log(np.diag(lq))))
    kl = 0.5 * (np.sum(a ** 2) + np.sum(b ** 2) - d + logdet_ratio)
    return float(max(kl, 0.0))


class KLEstimate(NamedTuple):
    """Monte Carlo KL estimate and its standard error (chapter "The ELBO and the KL divergence", lecture
    eq. 15); unpacks as ``estimate, standard_error``."""

    estimate: float
    standard_error: float


def kl_monte_carlo(log_q, sample_q, log_p, n, rng):
    r"""Monte Carlo estimate of :math:`D_{KL}(q \,\|\, p)` and its standard error.

    Chapter: The ELBO and the KL divergence. Lecture eq. 15 with the expectation replaced by a sample
    mean: :math:`\frac1n \sum_i [\log q(z_i) - \log p(z_i)]`, :math:`z_i \sim q`; the standard error
    is the sample standard deviation of the log ratios over :math:`\sqrt n`. Unbiased for the KL
    when ``log_p`` and ``log_q`` are normalised; with an unnormalised ``log_p`` (a log joint) it
    estimates :math:`\mathrm{KL} - \log Z_p = -\mathrm{ELBO}` (lecture eq. 20).

    Parameters
    ----------
    log_q, log_p : callable
        ``(n, dim) -> (n,)`` log densities.
    sample_q : callable
        ``sample_q(n, rng) -> (n, dim)`` draws from :math:`q`.
    n : int
        Number of samples, >= 2.
    rng : numpy.random.Generator or int

    Returns
    -------
    KLEstimate
        ``(estimate, standard_error)``; ``(inf, inf)`` if ``log_p`` is ``-inf`` at a sample of q
        (q puts mass where p has none, so the divergence is infinite).
    """
    for name, fn in (("log_q", log_q), ("sample_q", sample_q), ("log_p", log_p)):
        if not callable(fn):
            raise ValueError(f"{name} must be callable")
    n = _checks.positive_int("n", n, minimum=2)
    rng = _checks.generator(rng)
    z = _checks.output_array("sample_q", sample_q(n, rng))
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[0] != n:
        raise ValueError(f"sample_q must return shape (n, dim) = ({n}, dim), got {z.shape}")
    lq = _checks.output_array("log_q", log_q(z))
    lp = _checks.output_array("log_p", log_p(z))
    for name, val in (("log_q", lq), ("log_p", lp)):
        if val.shape != (n,):
            raise ValueError(f"{name} must return shape ({n},), got {val.shape}")
        if np.any(np.isnan(val)) or np.any(val == np.inf):
            raise ValueError(f"{name} returned NaN or +inf at a sample of q")
    if not np.all(np.isfinite(lq)):
        raise ValueError("log_q is -inf at one of its own samples")
    if np.any(lp == -np.inf):
        return KLEstimate(np.inf, np.inf)
    ratio = lq - lp
    return KLEstimate(float(ratio.mean()), float(ratio.std(ddof=1) / np.sqrt(n)))
