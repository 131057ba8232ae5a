r"""Importance sampling of the evidence (chapter "Importance sampling").

Rewriting the evidence as an expectation under a proposal :math:`q` (lecture eqs. 4-7),

.. math:: p(D) = \mathbb{E}_{z \sim q}\!\left[\frac{p(D, z)}{q(z)}\right]
          \approx \frac{1}{K} \sum_{k=1}^K w_k, \qquad w_k = \frac{p(D, z_k)}{q(z_k)},\ z_k \sim q,

turns integration into sampling. Weights span many orders of magnitude, so this module passes them
around as **log weights** ``log_w`` (shape ``(K,)``) and only exponentiates after subtracting their
maximum. The diagnostics (effective sample size, weight variance, Monte Carlo standard error) are the
quantities the chapter uses to show why a poorly placed proposal fails, and the closed forms for two
shifted Gaussians answer lecture Exercise 2.3.

Erratum (verified symbolically in ``tests/test_importance.py``): for
:math:`p(z \mid D) = N(\mu_p, \sigma^2)` and :math:`q = N(\mu_q, \sigma^2)` the lecture writes
:math:`w \propto e^{-z(\mu_p - \mu_q)/\sigma^2}`; the correct exponent has a plus sign,
:math:`w \propto e^{+z(\mu_p - \mu_q)/\sigma^2}` (the weight grows towards the posterior's side).
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from . import _checks

# --------------------------------------------------------------------------------------------------
# a one-dimensional Gaussian proposal


class GaussianProposal:
    r"""The proposal :math:`q(z) = \mathcal N(z; \text{mean}, \text{var})` of a one-dimensional latent.

    Chapter: Importance sampling, the proposal :math:`q` of equations ``eq-is-identity`` and
    ``eq-is-weight`` (lecture Exercises 2.1 and 2.2 use it).

    ``sample(n, rng)`` draws shape ``(n, 1)`` and ``log_prob(z)`` returns :math:`\log q(z)` of
    shape ``(n,)``; the scipy spellings ``rvs(size, random_state)`` and ``logpdf(z)`` do the same,
    so it can be passed to :func:`log_weights` directly.

    Parameters
    ----------
    mean : float
        Finite real mean.
    var : float
        Variance, > 0 (not the standard deviation).
    """

    dim = 1

    def __init__(self, mean=0.0, var=1.0):
        mean = _checks.real_scalar("mean", mean)
        if not np.isfinite(mean):
            raise ValueError(f"mean must be finite, got {mean}")
        self.mean = mean
        self.var = _checks.positive_scalar("var", var)

    def __repr__(self):
        return f"GaussianProposal(mean={self.mean}, var={self.var})"

    def sample(self, n, rng):
        r"""``n`` draws :math:`z_k \sim q`, shape ``(n, 1)``, from ``rng`` (a Generator or a seed).

        Chapter: Importance sampling, equation ``eq-is-estimator`` (the draws :math:`z_k`).
        """
        n = _checks.positive_int("n", n)
        rng = _checks.generator(rng)
        return self.mean + np.sqrt(self.var) * rng.standard_normal((n, 1))

    def log_prob(self, z):
        r""":math:`\log q(z)` for ``z`` of shape ``(n, 1)`` (or ``(n,)``); returns shape ``(n,)``.

        Chapter: Importance sampling, equation ``eq-is-weight`` (the denominator of the weight).
        """
        arr = _checks.real_array("z", z)
        z = _checks.samples("z", arr[:, None] if arr.ndim == 1 else arr, 1)[:, 0]
        return -0.5 * (np.log(2.0 * np.pi * self.var) + (z - self.mean) ** 2 / self.var)

    def rvs(self, size, random_state):
        """scipy-style alias of :meth:`sample` (chapter: Importance sampling)."""
        return self.sample(size, random_state)

    def logpdf(self, z):
        """scipy-style alias of :meth:`log_prob` (chapter: Importance sampling)."""
        return self.log_prob(z)


# --------------------------------------------------------------------------------------------------
# drawing weights


def _draw(proposal, n, rng):
    """Sample ``n`` points from ``proposal`` and evaluate its log density: ``(z (n, dim), log_q (n,))``."""
    if isinstance(proposal, tuple):
        if len(proposal) != 2:
            raise ValueError("proposal as a tuple must be (family, params)")
        family, params = proposal
        if not (hasattr(family, "sample") and hasattr(family, "log_prob")):
            raise ValueError("proposal family must have sample(params, n, rng) and log_prob(params, z)")
        try:
            z = _checks.output_array("proposal family.sample", family.sample(params, n, rng))
        except ValueError as exc:
            raise ValueError(f"proposal (family, params): {exc}") from None
        if z.ndim != 2 or z.shape[0] != n:
            raise ValueError(f"proposal family.sample must return shape (n, dim) = ({n}, dim), got {z.shape}")
        log_q = _checks.output_array("proposal family.log_prob", family.log_prob(params, z)).reshape(-1)
    elif hasattr(proposal, "rvs") and hasattr(proposal, "logpdf"):
        z = _checks.output_array("proposal.rvs", proposal.rvs(size=n, random_state=rng))
        if z.size % n:
            raise ValueError(f"proposal.rvs(size={n}) returned {z.size} numbers, not a multiple of n")
        z = z.reshape(n, -1)
        log_q = _checks.output_array("proposal.logpdf",
                                      proposal.logpdf(z if z.shape[1] > 1 else z[:, 0])).reshape(-1)
    else:
        raise ValueError(
            "proposal must be a frozen scipy distribution (with .rvs and .logpdf) or a tuple "
            "(family, params) with family.sample and family.log_prob"
        )
    if log_q.shape != (n,):
        raise ValueError(f"proposal log density must have shape ({n},), got {log_q.shape}")
    if not np.all(np.isfinite(log_q)):
        raise ValueError("proposal log density is not finite at some of its own samples")
    return z, log_q


def log_weights(log_joint, proposal, n, rng, return_samples=False):
    r"""Log importance weights :math:`\log w_k = \log p(D, z_k) - \log q(z_k)`, :math:`z_k \sim q`.

    Chapter: Importance sampling (lecture eq. 7 and the weights :math:`w_k` below it).

    Parameters
    ----------
    log_joint : callable
        ``(n, dim) -> (n,)`` log joint :math:`\log p(D, z)`; may return ``-inf`` (zero density), not NaN.
    proposal : frozen scipy distribution or tuple
        Either an object with ``.rvs(size, random_state)`` and ``.logpdf`` (e.g.
        ``scipy.stats.norm(0, 2)`` or ``scipy.stats.multivariate_normal(mean, cov)``), or a tuple
        ``(family, params)`` of a :mod:`vi_course.families` family, used through
        ``family.sample(params, n, rng) -> (n, dim)`` and ``family.log_prob(params, z) -> (n,)``.
    n : int
        Number of samples :math:`K \geq 1`.
    rng : numpy.random.Generator or int
        Source of randomness (an int is used as a seed).
    return_samples : bool, default False
        Also return the samples.

    Returns
    -------
    log_w : ndarray, shape (n,)
        Log weights; pass them to :func:`log_evidence`, :func:`effective_sample_size`, ...
    z : ndarray, shape (n, dim)
        The samples, only when ``return_samples`` is true (as ``(log_w, z)``), e.g. for
        :func:`self_normalised_expectation`.
    """
    if not callable(log_joint):
        raise ValueError("log_joint must be callable: z of shape (n, dim) -> shape (n,)")
    n = _checks.positive_int("n", n)
    rng = _checks.generator(rng)
    z, log_q = _draw(proposal, n, rng)
    log_p = _checks.output_array("log_joint", log_joint(z), shape=(n,))
    if np.any(np.isnan(log_p)) or np.any(log_p == np.inf):
        raise ValueError("log_joint returned NaN or +inf at a proposal sample")
    log_w = log_p - log_q
    return (log_w, z) if return_samples else log_w


# --------------------------------------------------------------------------------------------------
# estimates and diagnostics from log weights


def _log_w(log_w, min_size=1):
    if isinstance(log_w, tuple):
        raise ValueError("log_w must be an array of log weights; log_weights(..., return_samples=True) "
                         "returns a tuple (log_w, z)")
    arr = _checks.real_array("log_w", log_w)
    if arr.ndim != 1:
        raise ValueError(f"log_w must be 1-D (one log weight per sample), got shape {arr.shape}")
    if arr.size < min_size:
        raise ValueError(f"log_w must contain at least {min_size} log weight(s), got {arr.size}")
    if np.any(np.isnan(arr)) or np.any(arr == np.inf):
        raise ValueError("log_w must not contain NaN or +inf (-inf, a zero weight, is allowed)")
    if np.all(arr == -np.inf):
        raise ValueError("log_w: every weight is zero (all log weights are -inf)")
    return arr


def log_evidence(log_w):
    r"""Importance-sampling estimate of :math:`\log p(D)`: the log of the mean weight.

    Chapter: Importance sampling. Implements the estimator of Exercise 2.1,
    :math:`\Phi = \frac{1}{K}\sum_k w_k`, returned as
    :math:`\log \Phi = \operatorname{logsumexp}_k \log w_k - \log K`.
    :math:`\Phi` is unbiased for :math:`p(D)`; :math:`\log\Phi` is biased low (Jensen, lecture eq. 10).

    Parameters
    ----------
    log_w : array_like, shape (K,)
        Log importance weights.

    Returns
    -------
    float
    """
    arr = _log_w(log_w)
    return float(logsumexp(arr) - np.log(arr.size))


def _relative_weights(arr):
    r"""Weights divided by the largest, :math:`w_k / \max_j w_j` (in (0, 1]), and :math:`\log\max_j w_j`.

    No weight overflows, whatever the size of the log weights; one that underflows (say
    :math:`-10^{308} - 10^{308}`) is 0.
    """
    top = float(np.max(arr))
    with np.errstate(over="ignore"):
        return np.exp(arr - top), top


def effective_sample_size(log_w):
    r"""Kish's effective sample size :math:`(\sum_k w_k)^2 / \sum_k w_k^2`.

    Chapter: Importance sampling (diagnosing the few-dominant-weights problem of Sec. 0.0.3).
    Computed on the weights divided by the largest one, :math:`w_k / \max_j w_j`, so that log weights
    of any size (say :math:`\pm 10^{300}`) neither overflow nor lose precision.
    It equals :math:`K` for equal weights and 1 when one weight dominates; also
    :math:`K / \mathrm{ESS} = 1 + \widehat{\mathrm{Var}}(w) / \bar w^2` with the biased (1/K) variance.

    Parameters
    ----------
    log_w : array_like, shape (K,)

    Returns
    -------
    float
        In ``[1, K]``.
    """
    w, _ = _relative_weights(_log_w(log_w))
    ess = float(np.sum(w) ** 2 / np.sum(w * w))     # a ratio: the common scale cancels
    return min(max(ess, 1.0), float(w.size))


def log_weight_variance(log_w):
    r"""Log of the unbiased sample variance of the raw weights :math:`w_k` (not normalised).

    Chapter: Importance sampling (the :math:`\nu^2` of Exercise 2.2, estimated from the sample).
    Raw weights can be :math:`e^{1000}`, so the variance is computed on :math:`w_k / \max_j w_j`
    (two-pass formula, no cancellation) and shifted back in log space.

    Parameters
    ----------
    log_w : array_like, shape (K,), K >= 2

    Returns
    -------
    float
        :math:`\log \frac{1}{K-1}\sum_k (w_k - \bar w)^2`; ``-inf`` when all weights are equal.
    """
    w, top = _relative_weights(_log_w(log_w, min_size=2))
    var = float(np.var(w, ddof=1))
    return float(np.log(var) + 2.0 * top) if var > 0 else -np.inf


def weight_variance(log_w):
    r"""Unbiased sample variance of the raw importance weights, :math:`\frac{1}{K-1}\sum_k (w_k - \bar w)^2`.

    Chapter: Importance sampling (Exercise 2.2's :math:`\nu^2`; compare with
    :func:`gaussian_shift_weight_variance` for Exercise 2.3). This is ``exp(log_weight_variance)``;
    use :func:`log_weight_variance` when the weights are too large for a float.

    Parameters
    ----------
    log_w : array_like, shape (K,), K >= 2

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the variance overflows a float (use :func:`log_weight_variance`).
    """
    log_var = log_weight_variance(log_w)
    if log_var > np.log(np.finfo(float).max):
        raise ValueError("log_w: the weight variance overflows a float; use log_weight_variance")
    return float(np.exp(log_var))


def log_standard_error(log_w):
    r"""Log of the Monte Carlo standard error of the evidence estimate :math:`\Phi = \bar w`.

    Chapter: Importance sampling. Exercise 2.2: :math:`\Phi \approx N(p(D), \nu^2 / K)`, so the
    standard error is :math:`\hat\nu / \sqrt{K}` with :math:`\hat\nu^2` from :func:`weight_variance`.

    Parameters
    ----------
    log_w : array_like, shape (K,), K >= 2

    Returns
    -------
    float
        :math:`\log(\hat\nu / \sqrt K)`.
    """
    arr = _log_w(log_w, min_size=2)
    return 0.5 * (log_weight_variance(arr) - np.log(arr.size))


def relative_standard_error(log_w):
    r"""Standard error of :math:`\Phi` divided by :math:`\Phi`: :math:`\hat\nu / (\sqrt K\, \bar w)`.

    Chapter: Importance sampling. By the delta method this is also the standard error of
    :math:`\log \Phi` (:func:`log_evidence`), so ``log_evidence(log_w) +/- 2 * relative_standard_error``
    is an approximate 95 % interval for :math:`\log p(D)` (Exercise 2.2). Note it is itself estimated
    from the weights, so it is too small when the proposal misses the posterior entirely.

    Parameters
    ----------
    log_w : array_like, shape (K,), K >= 2

    Returns
    -------
    float
    """
    arr = _log_w(log_w, min_size=2)
    return float(np.exp(log_standard_error(arr) - log_evidence(arr)))


def self_normalised_expectation(log_w, values):
    r"""Self-normalised importance-sampling estimate of a posterior expectation.

    Chapter: Importance sampling. With :math:`\bar w_k = w_k / \sum_j w_j`,
    :math:`\mathbb{E}_{p(z \mid D)}[f(z)] \approx \sum_k \bar w_k f(z_k)` (the evidence cancels, so
    only the unnormalised joint is needed; consistent, biased for finite K).

    Parameters
    ----------
    log_w : array_like, shape (K,)
    values : array_like, shape (K,) or (K, m)
        :math:`f(z_k)` for the samples that produced ``log_w``
        (see ``log_weights(..., return_samples=True)``).

    Returns
    -------
    float or ndarray, shape (m,)
    """
    arr = _log_w(log_w)
    vals = _checks.finite_array("values", values, ndim=(1, 2))
    if vals.shape[0] != arr.size:
        raise ValueError(f"values must have one row per log weight ({arr.size}), got shape {vals.shape}")
    probs = np.exp(arr - logsumexp(arr))
    out = np.tensordot(probs, vals, axes=(0, 0))
    return float(out) if np.ndim(out) == 0 else out


# --------------------------------------------------------------------------------------------------
# closed forms for two shifted Gaussians (Exercise 2.3)


def _shift(mu_p, mu_q, sigma):
    mu_p = float(_checks.finite_array("mu_p", mu_p, ndim=0))
    mu_q = float(_checks.finite_array("mu_q", mu_q, ndim=0))
    sigma = _checks.positive_scalar("sigma", sigma)
    return (mu_p - mu_q) / sigma


def gaussian_shift_weight_variance(mu_p, mu_q, sigma):
    r"""Exact variance of the weights :math:`w = p/q` for :math:`p = N(\mu_p, \sigma^2)`, :math:`q = N(\mu_q, \sigma^2)`.

    Chapter: Importance sampling, answer to lecture Exercise 2.3:

    .. math:: \mathrm{Var}_q[w] = \int \frac{p(z)^2}{q(z)}\,dz - 1
              = \exp\!\left(\frac{(\mu_p - \mu_q)^2}{\sigma^2}\right) - 1 .

    (:math:`\mathbb{E}_q[w] = 1` because :math:`p` is normalised.) The variance grows like the
    exponential of the squared shift in units of :math:`\sigma`. Derived by symbolic integration in
    ``tests/test_importance.py``.

    Parameters
    ----------
    mu_p, mu_q : float
        Means of the posterior and of the proposal.
    sigma : float
        Common standard deviation, > 0.

    Returns
    -------
    float
        ``inf`` when the shift exceeds about 26.6 sigma (float overflow).
    """
    return float(np.expm1(_shift(mu_p, mu_q, sigma) ** 2))


def gaussian_shift_ess_fraction(mu_p, mu_q, sigma):
    r"""Large-sample effective sample size per sample for the shifted Gaussians of Exercise 2.3.

    Chapter: Importance sampling. As :math:`K \to \infty`,
    :math:`\mathrm{ESS}/K \to (\mathbb{E}_q w)^2 / \mathbb{E}_q[w^2] = 1 / (1 + \mathrm{Var}_q[w])
    = \exp(-(\mu_p - \mu_q)^2 / \sigma^2)`: a shift of 3 sigma leaves about 1 useful sample in 8100.

    Parameters
    ----------
    mu_p, mu_q : float
    sigma : float, > 0

    Returns
    -------
    float
        In (0, 1].
    """
    return float(np.exp(-_shift(mu_p, mu_q, sigma) ** 2))
