r"""Coordinate-ascent variational inference (CAVI) for the Bayesian Gaussian mixture.

Chapter: CAVI for the Bayesian Gaussian mixture.

The model (equation ``(gmm-model)`` of the chapter) has :math:`K` unit-variance Gaussian components
with unknown means and uniform mixing weights,

.. math::

    \mu_k \sim N(0, \sigma^2), \qquad c_i \sim \mathrm{Categorical}(1/K, \dots, 1/K), \qquad
    x_i \mid c_i, \mu \sim N(\mu_{c_i}, 1),

and the mean-field family is :math:`q(\mu, c) = \prod_k N(\mu_k; m_k, s_k^2) \prod_i
\mathrm{Categorical}(c_i; \varphi_i)`. Writing :math:`N_k = \sum_i \varphi_{ik}` and
:math:`S_k = \sum_i \varphi_{ik} x_i`, the full ELBO, every constant included (equation
``(gmm-elbo)``), is

.. math::

    \mathrm{ELBO} = \underbrace{-\tfrac{K}{2}\log(2\pi\sigma^2)
        - \sum_k \tfrac{m_k^2 + s_k^2}{2\sigma^2}}_{E_q[\log p(\mu)]}
      \underbrace{- n \log K}_{E_q[\log p(c)]}
      \underbrace{- \tfrac{n}{2}\log 2\pi - \tfrac12\sum_i x_i^2
        + \sum_k \big(S_k m_k - \tfrac12 N_k (m_k^2 + s_k^2)\big)}_{E_q[\log p(x \mid c, \mu)]}
      + \underbrace{\sum_k \tfrac12 \log(2\pi e s_k^2)}_{-E_q[\log q(\mu)]}
      \underbrace{- \sum_{i,k} \varphi_{ik}\log\varphi_{ik}}_{-E_q[\log q(c)]} ,

so it can be compared with exact log evidences. Holding everything else fixed, the ELBO is maximised
by the coordinate updates (equations ``(cavi-phi)`` and ``(cavi-mu)``)

.. math::

    \varphi_{ik} \propto \exp\!\big(m_k x_i - \tfrac12 (m_k^2 + s_k^2)\big), \qquad
    s_k^2 = \frac{1}{1/\sigma^2 + N_k}, \qquad m_k = s_k^2 S_k .

One CAVI *sweep* updates every :math:`\varphi_i` from the current :math:`q(\mu)` and then every
:math:`q(\mu_k)` from the new :math:`\varphi`. Each half is an exact block-coordinate maximum (the ELBO
separates over :math:`i` given :math:`q(\mu)` and over :math:`k` given :math:`\varphi`), so the ELBO
never decreases.

How the sweep is made fast (and stays exact)
--------------------------------------------
* The data are processed in cache-sized chunks laid out as ``(K, chunk)`` so every operation is a
  contiguous element-wise pass; nothing of size ``(n, K)`` is allocated during the iterations.
* :math:`\varphi` is never stored: a chunk contributes only :math:`N_k`, :math:`S_k` (one small matrix
  product) and :math:`\sum_i L_i` with :math:`L_i = \log\sum_k \exp(a_{ik})`,
  :math:`a_{ik} = m_k x_i - \tfrac12(m_k^2 + s_k^2)`.
* The entropy of :math:`q(c)` needs no extra pass: because :math:`\log\varphi_{ik} = a_{ik} - L_i`,
  :math:`\sum_{ik}\varphi_{ik}\log\varphi_{ik} = \sum_k (S_k m_k - \tfrac12 N_k E[\mu_k^2]) - \sum_i L_i`
  with the :math:`q(\mu)` the responsibilities were computed from. The ELBO is therefore computed from
  :math:`O(K)` sufficient statistics.
* :math:`\sum_i \log(\sum_k e^{a_{ik} - \max_k a_{ik}})` takes one logarithm per eight data points:
  the sums lie in :math:`[1, K]`, so products of eight of them cannot overflow.
* Shifted log-weights below ``-700`` are clipped to ``-700`` before the exponential. This changes
  responsibilities smaller than :math:`10^{-304}` by less than :math:`10^{-304}` and avoids numpy's very
  slow subnormal path of ``exp``. The clipping pass is skipped when no log-weight difference can
  reach 700 anywhere in the data range (the differences are linear in :math:`x_i`).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import log_softmax, xlogy

from . import _checks

__all__ = [
    "CaviResult",
    "CaviStep",
    "cavi_gmm",
    "cavi_step",
    "gmm_elbo",
    "update_responsibilities",
    "update_means",
    "initial_means",
]

LOG_2PI = math.log(2.0 * math.pi)
_EXP_FLOOR = -700.0  # exp(-700) ~ 1e-304 is still a normal double
_INIT_SUBSAMPLE = 10_000
INIT_METHODS = ("kmeans++", "random", "quantiles")


# --------------------------------------------------------------------------------------------------
# validation


def _data(x):
    """Validate the data: a finite 1-D array (an ``(n, 1)`` column is accepted and flattened)."""
    arr = _checks.finite_array("x", x, ndim=(1, 2))
    if arr.ndim == 2:
        if arr.shape[1] != 1:
            raise ValueError(f"x must have shape (n,) or (n, 1) (univariate data), got {arr.shape}")
        arr = arr[:, 0]
    if arr.size == 0:
        raise ValueError("x must contain at least one observation")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    with np.errstate(over="ignore"):
        sum_sq = float(np.dot(arr, arr))
    if not math.isfinite(sum_sq):
        raise ValueError("x is too large in magnitude: the sum of squares of x overflows")
    return arr


def _n_components(n_components, n):
    k = _checks.positive_int("n_components", n_components)
    if k > n:
        raise ValueError(f"n_components must be <= the number of observations ({n}), got {k}")
    return k


def _q_means(means, variances, k=None):
    m = _checks.finite_array("means", means, ndim=1)
    s2 = _checks.finite_array("variances", variances, ndim=1)
    if m.size == 0:
        raise ValueError("means must contain at least one component")
    if k is not None and m.size != k:
        raise ValueError(f"means must have length n_components={k}, got {m.size}")
    if s2.shape != m.shape:
        raise ValueError(f"variances must have the same shape as means {m.shape}, got {s2.shape}")
    if np.any(s2 <= 0):
        raise ValueError("variances must be > 0 (they are the variances s_k^2 of q(mu_k))")
    with np.errstate(over="ignore"):
        if not np.all(np.isfinite(m * m + s2)) or not np.all(np.isfinite(1.0 / s2)):
            raise ValueError("means and variances are too extreme for double precision: m_k**2 + s_k**2 "
                             "or 1 / s_k**2 overflows")
    return np.array(m, dtype=np.float64), np.array(s2, dtype=np.float64)


def _responsibilities(phi, n, k=None):
    phi = _checks.finite_array("responsibilities", phi, ndim=2)
    if phi.shape[0] != n or (k is not None and phi.shape[1] != k) or phi.shape[1] < 1:
        want = f"({n}, {k})" if k is not None else f"({n}, K)"
        raise ValueError(f"responsibilities must have shape {want}, got {phi.shape}")
    if np.any(phi < 0) or np.any(phi > 1):
        raise ValueError("responsibilities must lie in [0, 1]")
    if not np.allclose(phi.sum(axis=1), 1.0, rtol=0, atol=1e-8):
        raise ValueError("responsibilities must sum to 1 over the components (each row)")
    return phi


# --------------------------------------------------------------------------------------------------
# the fused sweep


class _Sweeper:
    """Chunked computation of the sufficient statistics of the responsibility update.

    For given :math:`E_q[\\mu_k]` and :math:`E_q[\\mu_k^2]` it computes, without storing
    :math:`\\varphi`, the quantities :math:`N_k`, :math:`S_k` and :math:`\\sum_i L_i` of the module
    docstring (and optionally writes :math:`\\varphi`, transposed, into a ``(K, n)`` array). It works
    on the centred data ``x - centre`` (see :class:`_Problem`), centring one chunk at a time so that
    no second copy of the data is made.
    """

    def __init__(self, x, k, centre=0.0):
        self.x = x
        self.centre = float(centre)
        self.k = k
        self.n = x.size
        chunk = min(16384, max(2048, (1 << 16) // k))
        self.chunk = min(chunk, self.n)
        self.x_range = (float(x.min()) - self.centre, float(x.max()) - self.centre)
        b = self.chunk
        self._xc = np.empty(b)
        self._a = np.empty((k, b))
        self._shift = np.empty(b)
        self._norm = np.empty(b)
        self._w = np.empty((2, b))
        self._st = np.empty((k, 2))

    def stats(self, m, e2, phi_out=None):
        """Return ``(N, S, sum_L)`` for responsibilities computed from ``m`` and ``e2 = E[mu^2]``.

        ``phi_out``, if given, is a C-contiguous ``(K, n)`` array that receives the transposed
        responsibilities (rows are written contiguously, chunk by chunk).
        """
        k, x = self.k, self.x
        mcol = m[:, None]
        hcol = (0.5 * e2)[:, None]
        clip = self._needs_clip(m, 0.5 * e2)
        acc = np.zeros((k, 2))
        sum_l = 0.0
        centred = self.centre != 0.0
        for start in range(0, self.n, self.chunk):
            xb = x[start:start + self.chunk]
            b = xb.size
            if centred:
                xb = np.subtract(xb, self.centre, out=self._xc[:b])
            a = self._a[:, :b]
            shift = self._shift[:b]
            norm = self._norm[:b]
            w = self._w[:, :b]
            # a_ik = m_k x_i - E[mu_k^2] / 2
            np.multiply(mcol, xb, out=a)
            a -= hcol
            # shift_i = max_k a_ik
            if k == 1:
                shift[...] = a[0]
            elif k <= 8:
                np.maximum(a[0], a[1], out=shift)
                for j in range(2, k):
                    np.maximum(shift, a[j], out=shift)
            else:
                np.max(a, axis=0, out=shift)
            a -= shift
            if clip:
                np.maximum(a, _EXP_FLOOR, out=a)
            np.exp(a, out=a)
            # norm_i = sum_k exp(a_ik - shift_i), in [1, K]
            if k == 1:
                norm[...] = a[0]
            elif k <= 8:
                np.add(a[0], a[1], out=norm)
                for j in range(2, k):
                    norm += a[j]
            else:
                np.sum(a, axis=0, out=norm)
            # N_k = sum_i e_ik / norm_i and S_k = sum_i e_ik x_i / norm_i in one matrix product
            np.divide(1.0, norm, out=w[0])
            np.multiply(w[0], xb, out=w[1])
            np.matmul(a, w.T, out=self._st)
            acc += self._st
            if phi_out is not None:
                np.multiply(a, w[0], out=phi_out[:, start:start + b])
            # sum_i L_i = sum_i shift_i + sum_i log norm_i
            sum_l += float(shift.sum()) + _sum_log(norm, k)
        return acc[:, 0].copy(), acc[:, 1].copy(), sum_l

    def _needs_clip(self, m, h):
        """Whether some ``a_ik - max_j a_ij`` can fall below ``_EXP_FLOOR`` for ``x`` in the data range.

        ``a_ik - a_ij = (m_k - m_j) x_i - (h_k - h_j)`` is linear in ``x_i``, so its extremes over the
        data lie at ``min(x)`` and ``max(x)``; if no pair differs by 700 there, clipping is a no-op.
        """
        dm = m[:, None] - m[None, :]
        dh = h[:, None] - h[None, :]
        lo, hi = self.x_range
        reach = max(float(np.max(np.abs(dm * lo - dh))), float(np.max(np.abs(dm * hi - dh))))
        return not reach < -_EXP_FLOOR


def _sum_log(v, k):
    """``sum(log(v))`` for ``v`` in ``[1, k]``, with one logarithm per eight entries (destroys ``v``)."""
    if k == 1:
        return 0.0
    b = v.size
    main = b - b % 8
    total = float(np.log(v[main:]).sum()) if main < b else 0.0
    if main:
        u = v[:main]
        for _ in range(3):  # products of 8 values in [1, k]: at most k**8, far from overflow
            half = u.size // 2
            np.multiply(u[:half], u[half:], out=u[:half])
            u = u[:half]
        total += float(np.log(u, out=u).sum())
    return total


class _Problem:
    r"""Data, prior and the constants of the ELBO, shared by every sweep of a fit.

    The data are centred, :math:`\tilde x_i = x_i - c` with :math:`c` their mean, and the sweeps
    work with centred means :math:`\tilde m_k = m_k - c`. The likelihood terms depend on
    :math:`x_i - m_k = \tilde x_i - \tilde m_k` only, so this changes no formula, but it keeps
    the responsibilities and the ELBO exact for data far from 0 (otherwise :math:`m_k x_i` and
    :math:`\sum_i x_i^2` would cancel catastrophically, e.g. for data near :math:`10^8`).
    """

    def __init__(self, x, k, prior_var):
        self.k, self.prior_var = k, prior_var
        self.n = x.size
        self.centre = float(np.mean(x))
        self.sweeper = _Sweeper(x, k, self.centre)
        # terms of the ELBO that depend on the data only; sum_i (x_i - c)^2 chunk by chunk (no copy)
        step = 1 << 16
        centred_ss = sum(float(np.dot(x[i:i + step] - self.centre, x[i:i + step] - self.centre))
                         for i in range(0, self.n, step))
        self.const = (-self.n * math.log(k) - 0.5 * self.n * LOG_2PI - 0.5 * centred_ss + 0.5 * k)

    def stats(self, m, s2, phi_out=None):
        """Sufficient statistics of the responsibilities computed from ``q(mu) = N(m, s2)``."""
        mc = m - self.centre
        return self.sweeper.stats(mc, mc * mc + s2, phi_out)

    def sweep(self, m, s2, phi_out=None):
        """One CAVI sweep from ``q(mu) = N(m, s2)``: returns ``(m_new, s2_new, elbo)``.

        ``elbo`` is the ELBO of the new ``q(mu)`` together with the responsibilities computed from
        the old one (those written into ``phi_out``), from sufficient statistics only.
        """
        c = self.centre
        mc = m - c                                   # centred means
        e2 = mc * mc + s2
        n_k, s_k, sum_l = self.sweeper.stats(mc, e2, phi_out)   # s_k = sum_i phi_ik (x_i - c)
        s2_new = 1.0 / (1.0 / self.prior_var + n_k)
        # m_new = s2_new * sum_i phi_ik x_i = s2_new (s_k + c n_k), so m_new - c = s2_new (s_k - c / prior_var)
        mc_new = s2_new * (s_k - c / self.prior_var)
        m_new = mc_new + c
        e2_new = mc_new * mc_new + s2_new
        # E[log p(x|c,mu)] - E[log q(c)], up to const: the phi-weighted terms with the new q(mu)
        # minus those with the old one (log phi = a(old) - L) plus sum_i L_i, all centred
        lik_ent = float(np.sum(s_k * (mc_new - mc) - 0.5 * n_k * (e2_new - e2))) + sum_l
        prior = float(np.sum(-0.5 * (m_new * m_new + s2_new) / self.prior_var
                             + 0.5 * np.log(s2_new / self.prior_var)))
        elbo = self.const + lik_ent + prior
        if not math.isfinite(elbo):
            raise ValueError(
                "the ELBO is not finite: x, prior_var or the initial means are too extreme for double "
                "precision")
        return m_new, s2_new, elbo


# --------------------------------------------------------------------------------------------------
# public functions


class CaviStep(NamedTuple):
    """Result of one CAVI sweep (:func:`cavi_step`).

    Chapter: CAVI for the Bayesian Gaussian mixture, equations ``(cavi-phi)`` and ``(cavi-mu)``;
    ``elbo`` is equation ``(gmm-elbo)``.
    """

    means: np.ndarray
    """New :math:`m_k`, shape ``(K,)``."""
    variances: np.ndarray
    """New :math:`s_k^2`, shape ``(K,)``."""
    responsibilities: np.ndarray
    """The :math:`\\varphi` computed in the sweep (from the *input* ``q(mu)``), shape ``(n, K)``
    (Fortran order)."""
    elbo: float
    """ELBO of the new ``q(mu)`` with these responsibilities."""


@dataclass(frozen=True)
class CaviResult:
    """Fitted mean-field posterior of the Bayesian Gaussian mixture (:func:`cavi_gmm`).

    Chapter: CAVI for the Bayesian Gaussian mixture: the fixed point of equations ``(cavi-phi)``
    and ``(cavi-mu)``, with the ELBO of equation ``(gmm-elbo)``.

    Attributes
    ----------
    means, variances : ndarray, shape (K,)
        :math:`q(\\mu_k) = N(m_k, s_k^2)`.
    responsibilities : ndarray, shape (n, K)
        :math:`q(c_i) = \\mathrm{Categorical}(\\varphi_i)`: the responsibilities of the last sweep,
        i.e. the ones the returned ``means``/``variances`` were computed from. With them,
        :func:`gmm_elbo` gives exactly ``elbo``. Stored column by column (Fortran order: the
        transpose of a C-ordered ``(K, n)`` array), so ``responsibilities[:, k]`` is contiguous.
    elbo_trace : ndarray, shape (n_iter,)
        Full ELBO (every constant included) after each sweep of the best restart.
    n_iter : int
        Number of sweeps of the best restart.
    converged : bool
        Whether the best restart met the convergence rule before ``max_iter``.
    init_means : ndarray, shape (K,)
        The initial :math:`m_k` of the best restart (pass as ``init`` to reproduce it).
    restart_elbos : ndarray, shape (n_init,)
        Final ELBO of every restart; ``elbo`` is their maximum.
    """

    means: np.ndarray
    variances: np.ndarray
    responsibilities: np.ndarray
    elbo_trace: np.ndarray
    n_iter: int
    converged: bool
    init_means: np.ndarray
    restart_elbos: np.ndarray

    @property
    def elbo(self):
        """Final ELBO, ``elbo_trace[-1]``: equation ``(gmm-elbo)`` at the returned ``q``.

        Chapter: CAVI for the Bayesian Gaussian mixture.
        """
        return float(self.elbo_trace[-1])


def gmm_elbo(x, responsibilities, means, variances, prior_var):
    r"""Full ELBO of the Bayesian Gaussian mixture for a mean-field ``q`` (reference implementation).

    Chapter: CAVI for the Bayesian Gaussian mixture, equation ``(gmm-elbo)``:

    .. math::

        \mathrm{ELBO}(q) = E_q[\log p(\mu)] + E_q[\log p(c)] + E_q[\log p(x \mid c, \mu)]
                           - E_q[\log q(\mu)] - E_q[\log q(c)],

    every constant included, so that :math:`\mathrm{ELBO} \le \log p(x)` can be checked against an
    exact evidence. Written term by term from the definitions (it is the check of the fused
    computation inside :func:`cavi_gmm`).

    Parameters
    ----------
    x : array_like, shape (n,)
        Data.
    responsibilities : array_like, shape (n, K)
        :math:`\varphi_{ik}`; each row a probability vector.
    means, variances : array_like, shape (K,)
        :math:`m_k` and :math:`s_k^2 > 0` of :math:`q(\mu_k) = N(m_k, s_k^2)`.
    prior_var : float
        Prior variance :math:`\sigma^2 > 0` of the component means.

    Returns
    -------
    float
        The ELBO (to maximise).
    """
    x = _data(x)
    m, s2 = _q_means(means, variances)
    phi = _responsibilities(responsibilities, x.size, m.size)
    sigma2 = _checks.positive_scalar("prior_var", prior_var)
    k, n = m.size, x.size
    e2 = m ** 2 + s2
    log_p_mu = float(np.sum(-0.5 * np.log(2 * np.pi * sigma2) - e2 / (2 * sigma2)))
    log_p_c = -n * np.log(k)
    # E[(x_i - mu_k)^2] = (x_i - m_k)^2 + s_k^2 (the residual form: no cancellation for large x)
    sq = (x[:, None] - m[None, :]) ** 2 + s2[None, :]
    log_p_x = float(np.sum(phi * (-0.5 * LOG_2PI - 0.5 * sq)))
    entropy_mu = float(np.sum(0.5 * np.log(2 * np.pi * np.e * s2)))
    entropy_c = -float(np.sum(xlogy(phi, phi)))
    return log_p_mu + log_p_c + log_p_x + entropy_mu + entropy_c


def update_responsibilities(x, means, variances):
    r"""Responsibility update of CAVI: the optimal :math:`q(c_i)` given :math:`q(\mu)`.

    Chapter: CAVI for the Bayesian Gaussian mixture, equation ``(cavi-phi)``:

    .. math::

        \varphi_{ik} \propto \exp\big(E_q[\mu_k]\, x_i - \tfrac12 E_q[\mu_k^2]\big)
                   = \exp\big(m_k x_i - \tfrac12 (m_k^2 + s_k^2)\big).

    Plain vectorised version (normalised with a log-softmax), as written in the chapter.

    Parameters
    ----------
    x : array_like, shape (n,)
    means, variances : array_like, shape (K,)
        Current :math:`q(\mu_k) = N(m_k, s_k^2)`.

    Returns
    -------
    ndarray, shape (n, K)
    """
    x = _data(x)
    m, s2 = _q_means(means, variances)
    # m_k x_i - (m_k^2 + s_k^2) / 2 = -((x_i - m_k)^2 + s_k^2) / 2 + x_i^2 / 2: the same softmax, but the
    # residual form does not cancel catastrophically for data far from 0
    logits = -0.5 * ((x[:, None] - m[None, :]) ** 2 + s2[None, :])
    return np.exp(log_softmax(logits, axis=1))


def update_means(x, responsibilities, prior_var):
    r"""Mean update of CAVI: the optimal :math:`q(\mu_k) = N(m_k, s_k^2)` given :math:`\varphi`.

    Chapter: CAVI for the Bayesian Gaussian mixture, equation ``(cavi-mu)``:

    .. math::

        s_k^2 = \frac{1}{1/\sigma^2 + \sum_i \varphi_{ik}}, \qquad
        m_k = s_k^2 \sum_i \varphi_{ik} x_i .

    Parameters
    ----------
    x : array_like, shape (n,)
    responsibilities : array_like, shape (n, K)
    prior_var : float
        :math:`\sigma^2 > 0`.

    Returns
    -------
    means, variances : ndarray, shape (K,)
    """
    x = _data(x)
    phi = _responsibilities(responsibilities, x.size)
    sigma2 = _checks.positive_scalar("prior_var", prior_var)
    s2 = 1.0 / (1.0 / sigma2 + phi.sum(axis=0))
    return s2 * (x @ phi), s2


def cavi_step(x, means, variances, prior_var):
    r"""One full CAVI sweep: update every :math:`\varphi_i`, then every :math:`q(\mu_k)`.

    Chapter: CAVI for the Bayesian Gaussian mixture, equations ``(cavi-phi)`` then ``(cavi-mu)``;
    the returned ELBO is equation ``(gmm-elbo)`` evaluated from the sweep's sufficient statistics.
    This is the fused, chunked sweep :func:`cavi_gmm` iterates; it equals
    ``update_means(x, update_responsibilities(x, means, variances), prior_var)``.

    Parameters
    ----------
    x : array_like, shape (n,)
    means, variances : array_like, shape (K,)
        Current :math:`q(\mu_k) = N(m_k, s_k^2)`.
    prior_var : float
        :math:`\sigma^2 > 0`.

    Returns
    -------
    CaviStep
        ``(means, variances, responsibilities, elbo)``: the new :math:`q(\mu)`, the responsibilities
        computed from the input :math:`q(\mu)`, and the ELBO of that pair.
    """
    x = _data(x)
    m, s2 = _q_means(means, variances)
    sigma2 = _checks.positive_scalar("prior_var", prior_var)
    problem = _Problem(x, m.size, sigma2)
    phi_t = np.empty((m.size, x.size))
    m_new, s2_new, elbo = problem.sweep(m, s2, phi_out=phi_t)
    return CaviStep(m_new, s2_new, phi_t.T, elbo)


def initial_means(x, n_components, method="kmeans++", rng=None):
    r"""Initial variational means :math:`m_k` for CAVI.

    Chapter: CAVI for the Bayesian Gaussian mixture (section "Initialisation and restarts"). CAVI
    only finds a local optimum of the ELBO, so where it starts matters.

    Parameters
    ----------
    x : array_like, shape (n,)
    n_components : int
    method : {"kmeans++", "random", "quantiles"}
        ``"kmeans++"``: k-means on a random subsample of at most 10^4 points, seeded the
        k-means++ way (each new centre drawn with probability proportional to the squared distance
        to the nearest centre chosen so far) and refined by at most 50 Lloyd iterations. ``"random"``: distinct data points drawn uniformly. ``"quantiles"``
        (deterministic): the empirical quantiles at levels :math:`(k + 1/2)/K`.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    ndarray, shape (K,)
        Sorted initial means.
    """
    x = _data(x)
    k = _n_components(n_components, x.size)
    if not isinstance(method, str) or method not in INIT_METHODS:
        raise ValueError(f"method must be one of {INIT_METHODS}, got {method!r}")
    return _initial_means(x, k, method, _checks.generator(rng))


def _initial_means(x, k, method, rng):
    """:func:`initial_means` for validated data."""
    if method == "quantiles":
        return np.quantile(x, (np.arange(k) + 0.5) / k)
    if method == "random":
        return np.sort(x[rng.choice(x.size, size=k, replace=False)])
    if method != "kmeans++":
        raise ValueError(f"init must be one of {INIT_METHODS} or an array of {k} means, got {method!r}")
    sub = x if x.size <= _INIT_SUBSAMPLE else x[rng.integers(0, x.size, _INIT_SUBSAMPLE)]
    centres = [sub[rng.integers(sub.size)]]
    d2 = (sub - centres[0]) ** 2
    for _ in range(1, k):
        total = d2.sum()
        if total > 0:
            j = rng.choice(sub.size, p=d2 / total)
        else:  # every point coincides with a centre: take any point
            j = rng.integers(sub.size)
        centres.append(sub[j])
        np.minimum(d2, (sub - sub[j]) ** 2, out=d2)
    return _lloyd(sub, np.sort(np.array(centres)))


def _lloyd(sub, centres, max_steps=50):
    """Refine sorted 1-D centres by Lloyd's k-means iterations on ``sub`` (empty clusters stay put)."""
    k = centres.size
    for _ in range(max_steps):
        cut = 0.5 * (centres[1:] + centres[:-1])
        label = np.searchsorted(cut, sub)
        count = np.bincount(label, minlength=k)
        total = np.bincount(label, weights=sub, minlength=k)
        new = np.where(count > 0, total / np.maximum(count, 1), centres)
        new.sort()
        if np.array_equal(new, centres):
            break
        centres = new
    return centres


def cavi_gmm(x, n_components, prior_var, max_iter=1000, tol=1e-10, seed=0, n_init=1, init=None,
             progress=False):
    r"""Fit the mean-field posterior of the Bayesian Gaussian mixture by CAVI.

    Chapter: CAVI for the Bayesian Gaussian mixture. Iterates the sweep of :func:`cavi_step`
    (equations ``(cavi-phi)`` and ``(cavi-mu)``) and records the full ELBO, equation
    ``(gmm-elbo)``, after each sweep.

    Each restart starts from :math:`q(\mu_k) = N(m_k^{(0)}, 1/(1/\sigma^2 + n/K))` (the variance
    :math:`q(\mu_k)` would have with equal soft counts) with :math:`m^{(0)}` from
    :func:`initial_means`. A restart stops after sweep :math:`t` when

    .. math::

        \mathrm{ELBO}_t - \mathrm{ELBO}_{t-1} \le \mathrm{tol} \cdot \max(1, |\mathrm{ELBO}_t|),

    i.e. a relative tolerance when :math:`|\mathrm{ELBO}| > 1` and an absolute one otherwise (an
    increase that is negative by rounding also stops), or after ``max_iter`` sweeps. The rule
    compares two sweeps, so a restart makes at least two unless ``max_iter=1``.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, 1)
        Finite univariate data.
    n_components : int
        :math:`K`, with ``1 <= K <= n``.
    prior_var : float
        Prior variance :math:`\sigma^2 > 0` of the component means.
    max_iter : int
        Maximum number of sweeps per restart.
    tol : float
        Convergence tolerance (>= 0) of the rule above.
    seed : int, numpy.random.Generator or None
        Seeds the initialisations; restart ``r`` uses the ``r``-th child of this seed, so the first
        restart does not depend on ``n_init``. ``None`` draws fresh entropy (not reproducible).
    n_init : int
        Number of restarts; the one with the largest final ELBO is returned.
    init : {"kmeans++", "random", "quantiles"} or array_like of shape (K,), optional
        Initial means (default ``"kmeans++"``, see :func:`initial_means`). ``"quantiles"`` and an
        explicit array are deterministic and require ``n_init=1``.
    progress : bool
        Print the iteration number and the ELBO after every sweep.

    Returns
    -------
    CaviResult
        ``.means``, ``.variances``, ``.responsibilities``, ``.elbo_trace``, ``.elbo``, ``.n_iter``,
        ``.converged``, ``.init_means``, ``.restart_elbos``.

    Notes
    -----
    Memory is O(nK): the sweeps work on cache-sized chunks; the only ``(n, K)`` array is the
    returned ``responsibilities``.
    """
    x = _data(x)
    k = _n_components(n_components, x.size)
    sigma2 = _checks.positive_scalar("prior_var", prior_var)
    max_iter = _checks.positive_int("max_iter", max_iter)
    tol = _checks.positive_scalar("tol", tol, allow_zero=True)
    n_init = _checks.positive_int("n_init", n_init)
    progress = _checks.flag("progress", progress)
    if isinstance(seed, np.random.Generator):
        children = seed.spawn(n_init)
    elif seed is None or (isinstance(seed, (numbers.Integral, np.integer))
                          and not isinstance(seed, (bool, np.bool_)) and seed >= 0):
        children = np.random.default_rng(None if seed is None else int(seed)).spawn(n_init)
    else:
        raise ValueError(f"seed must be a non-negative integer, None or a numpy.random.Generator, "
                         f"got {seed!r}")
    if init is None:
        init = "kmeans++"
    if isinstance(init, str):
        if init not in INIT_METHODS:
            raise ValueError(f"init must be one of {INIT_METHODS} or an array of {k} means, got {init!r}")
        fixed = None
        if init == "quantiles" and n_init > 1:
            raise ValueError("n_init must be 1 with init='quantiles' (it is deterministic)")
    else:
        fixed = _checks.finite_array("init", init, ndim=1)
        if fixed.size != k:
            raise ValueError(f"init must have length n_components={k}, got {fixed.size}")
        with np.errstate(over="ignore"):
            if not np.all(np.isfinite(fixed * fixed)):
                raise ValueError("init: initial means are too large in magnitude (their squares overflow)")
        if n_init > 1:
            raise ValueError("n_init must be 1 when init is an array of means (it is deterministic)")

    problem = _Problem(x, k, sigma2)
    s2_init = np.full(k, 1.0 / (1.0 / sigma2 + x.size / k))
    best = None
    restart_elbos = []
    for r, rng in enumerate(children):
        m0 = fixed.copy() if fixed is not None else _initial_means(x, k, init, rng)
        m, s2 = m0, s2_init.copy()
        trace = []
        converged = False
        for it in range(1, max_iter + 1):
            m_new, s2_new, elbo = problem.sweep(m, s2)
            trace.append(elbo)
            if progress:
                tag = f"restart {r}  " if n_init > 1 else ""
                print(f"{tag}iter {it:5d}  elbo {elbo:.12g}", flush=True)
            prev_m, prev_s2 = m, s2
            m, s2 = m_new, s2_new
            if it > 1 and elbo - trace[-2] <= tol * max(1.0, abs(elbo)):
                converged = True
                break
        restart_elbos.append(trace[-1])
        if best is None or trace[-1] > best[0][-1]:
            best = (trace, m, s2, prev_m, prev_s2, converged, m0)
    trace, m, s2, prev_m, prev_s2, converged, m0 = best
    # the responsibilities of the last sweep of the best restart (computed from its previous q(mu))
    phi_t = np.empty((k, x.size))
    problem.stats(prev_m, prev_s2, phi_out=phi_t)
    return CaviResult(
        means=m, variances=s2, responsibilities=phi_t.T, elbo_trace=np.array(trace), n_iter=len(trace),
        converged=converged, init_means=np.asarray(m0, dtype=float), restart_elbos=np.array(restart_elbos),
    )
