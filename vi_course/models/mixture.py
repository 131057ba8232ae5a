r"""The Bayesian mixture of unit-variance Gaussians (chapter "CAVI for the Bayesian Gaussian mixture").

.. math::

    \mu_k \sim N(0, \sigma^2), \; k = 1, \dots, K, \qquad
    c_i \sim \mathrm{Categorical}(1/K, \dots, 1/K), \qquad
    x_i \mid c_i, \mu \sim N(\mu_{c_i}, 1), \; i = 1, \dots, n .

The joint density (equation ``(gmm-joint)`` of the chapter) is

.. math::

    p(x, c, \mu) = \prod_k N(\mu_k; 0, \sigma^2) \prod_i \frac1K N(x_i; \mu_{c_i}, 1),

and summing out the assignments gives :math:`p(x, \mu) = p(\mu) \prod_i \frac1K \sum_k
N(x_i; \mu_k, 1)`. The evidence (equation ``(gmm-evidence)``) is a sum over all :math:`K^n`
assignments of a product of conjugate Gaussian integrals, one per component:

.. math::

    p(x) = \sum_{c \in \{1..K\}^n} K^{-n} \prod_{k=1}^K \int N(\mu_k; 0, \sigma^2)
           \prod_{i: c_i = k} N(x_i; \mu_k, 1)\, d\mu_k .

(The source notes write this as :math:`\sum_{c_i} p(c_i) \int p(\mu) \prod_i p(x_i \mid c_i, \mu)
\, d\mu`: the prior :math:`p(c) = \prod_i p(c_i) = K^{-n}` of the *whole* assignment vector belongs
inside the sum over all :math:`c`, and it cannot be pulled out as a single :math:`p(c_i)`.) With
:math:`n_k` points and sum :math:`t_k` in component :math:`k`, the data of one component are jointly
:math:`N(0, I + \sigma^2 \mathbf 1 \mathbf 1^\top)`, so

.. math::

    \log p(x \mid c) = -\tfrac n2 \log 2\pi - \tfrac12 \sum_i x_i^2
        + \sum_k \Big[-\tfrac12 \log(1 + n_k \sigma^2) + \frac{\sigma^2 t_k^2}{2 (1 + n_k \sigma^2)}\Big],

and, given :math:`c`, the means are independent with
:math:`\mu_k \mid c, x \sim N\big(\sigma^2 t_k / (1 + n_k\sigma^2),\; \sigma^2 / (1 + n_k \sigma^2)\big)`.
The exact posterior of the means is the mixture of these Gaussians over all assignments, weighted
by :math:`p(c \mid x) \propto p(x \mid c)`. Enumerating :math:`K^n` terms is only possible for tiny data
sets, which is exactly the chapter's point.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd.scipy.special import logsumexp as anp_logsumexp
from scipy.special import logsumexp

from .. import _checks

LOG_2PI = float(np.log(2.0 * np.pi))
MAX_ASSIGNMENTS = 1 << 16
"""Default largest number :math:`K^n` of assignments :meth:`GaussianMixture.exact_log_evidence` enumerates."""

_ROWS = 1 << 22  # elements per block when a (samples x data x components) array is chunked


class GaussianMixture:
    r"""Bayesian mixture of :math:`K` unit-variance Gaussians with a :math:`N(0, \sigma^2)` prior on the means.

    Chapter: CAVI for the Bayesian Gaussian mixture, equation ``(gmm-model)``. The latent
    variables are the means :math:`\mu` (continuous, ``dim = K``) and the assignments :math:`c`
    (discrete, one integer in ``0..K-1`` per data point).

    Parameters
    ----------
    x : array_like, shape (n,)
        Finite univariate observations, at least one.
    n_components : int
        Number of components :math:`K \ge 1`.
    prior_var : float
        Prior variance :math:`\sigma^2 > 0` of each mean.

    Examples
    --------
    >>> model = GaussianMixture([-2.1, -1.9, 2.0, 2.2], n_components=2, prior_var=4.0)
    >>> model.exact_log_evidence() < 0
    True
    """

    def __init__(self, x, n_components, prior_var):
        self.x = _checks.finite_array("x", x, ndim=1)
        if self.x.size == 0:
            raise ValueError("x must contain at least one observation")
        self.n_components = _checks.positive_int("n_components", n_components)
        self.prior_var = _checks.positive_scalar("prior_var", prior_var)
        self.n = int(self.x.size)
        self.dim = self.n_components
        self.supports = ["real"] * self.n_components
        with np.errstate(over="ignore"):
            self._sxx = float(np.dot(self.x, self.x))
        if not np.isfinite(self._sxx):
            raise ValueError("x is too large in magnitude: the sum of squares of x overflows")
        self._log_evidence = None

    def __repr__(self):
        return (f"GaussianMixture(n_data={self.n}, n_components={self.n_components}, "
                f"prior_var={self.prior_var})")

    # ----------------------------------------------------------------------------------------------
    # densities

    def _means(self, mu):
        return _checks.samples("mu", mu, self.n_components)

    def log_prior(self, mu):
        r"""Log prior :math:`\sum_k \log N(\mu_k; 0, \sigma^2)` for means ``mu`` (S, K); returns (S,).

        Chapter: CAVI for the Bayesian Gaussian mixture, equation ``(gmm-model)``.

        Parameters
        ----------
        mu : array_like, shape (S, K) or (K,)
            Component means, finite.

        Returns
        -------
        ndarray, shape (S,)
        """
        mu = self._means(mu)
        return -0.5 * (self.n_components * (LOG_2PI + np.log(self.prior_var))
                       + anp.sum(mu ** 2, axis=1) / self.prior_var)

    def log_joint(self, mu, c):
        r"""Log joint :math:`\log p(x, c, \mu)` for a batch of means and assignments.

        Chapter: CAVI for the Bayesian Gaussian mixture, equation ``(gmm-joint)``:
        :math:`\sum_k \log N(\mu_k; 0, \sigma^2) - n \log K + \sum_i \log N(x_i; \mu_{c_i}, 1)`.

        Parameters
        ----------
        mu : array_like, shape (S, K) or (K,)
            Component means, one row per sample.
        c : array_like of int, shape (S, n) or (n,)
            Assignments in ``0..K-1``, one row per sample. A single row (of ``mu`` or ``c``) is
            broadcast against a batch of the other.

        Returns
        -------
        ndarray, shape (S,)
        """
        mu = self._means(mu)
        c = self._assignments(c)
        if mu.shape[0] != c.shape[0] and 1 not in (mu.shape[0], c.shape[0]):
            raise ValueError(
                f"mu and c must have the same number of rows (samples), got {mu.shape[0]} and {c.shape[0]}")
        rows = max(mu.shape[0], c.shape[0])
        mu = np.broadcast_to(mu, (rows, self.n_components))
        c = np.broadcast_to(c, (rows, self.n))
        chosen = np.take_along_axis(mu, c, axis=1)  # mu_{c_i}, shape (S, n)
        resid2 = np.sum((self.x[None, :] - chosen) ** 2, axis=1)
        log_lik = -0.5 * (self.n * LOG_2PI + resid2)
        return self.log_prior(mu) - self.n * np.log(self.n_components) + log_lik

    def log_marginal_means(self, mu):
        r"""Log density :math:`\log p(x, \mu)` with the assignments summed out.

        Chapter: CAVI for the Bayesian Gaussian mixture, equation ``(gmm-marginal)``:

        .. math::

            \log p(x, \mu) = \sum_k \log N(\mu_k; 0, \sigma^2)
              + \sum_i \log \frac1K \sum_k N(x_i; \mu_k, 1).

        Written with :mod:`autograd.numpy`, so it can be differentiated (e.g. by ADVI on the means).

        Parameters
        ----------
        mu : array_like, shape (S, K) or (K,)

        Returns
        -------
        ndarray, shape (S,)
        """
        mu = self._means(mu)
        if type(mu).__module__.startswith("autograd"):
            return self._log_marginal_block(mu)
        rows = max(1, _ROWS // (self.n * self.n_components))
        if mu.shape[0] <= rows:
            return self._log_marginal_block(mu)
        return np.concatenate([self._log_marginal_block(mu[i:i + rows])
                               for i in range(0, mu.shape[0], rows)])

    def _log_marginal_block(self, mu):
        diff = self.x[None, :, None] - mu[:, None, :]              # (S, n, K)
        per_point = anp_logsumexp(-0.5 * diff ** 2, axis=2)        # (S, n)
        log_lik = (anp.sum(per_point, axis=1)
                   - self.n * (0.5 * LOG_2PI + np.log(self.n_components)))
        return self.log_prior(mu) + log_lik

    # ----------------------------------------------------------------------------------------------
    # exact answers by enumeration (tiny data only)

    def _assignments(self, c):
        arr = np.asarray(c)
        if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                     or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"c must be an integer array of assignments, got dtype {arr.dtype}")
        if arr.ndim not in (1, 2):
            raise ValueError(f"c must have shape (n_samples, {self.n}) or ({self.n},), got {arr.shape}")
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.shape[1] != self.n:
            raise ValueError(f"c must have shape (n_samples, {self.n}), got {arr.shape}")
        if np.issubdtype(arr.dtype, np.floating):
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise ValueError("c must contain integers (component labels)")
        if np.any(arr < 0) or np.any(arr >= self.n_components):
            raise ValueError(f"c must contain component labels in 0..{self.n_components - 1}")
        return arr.astype(np.intp)

    def _check_enumerable(self, max_assignments):
        max_assignments = _checks.positive_int("max_assignments", max_assignments)
        k, n = self.n_components, self.n
        if n * np.log(k) > np.log(max_assignments):
            raise ValueError(
                f"exact enumeration needs K**n = {k}**{n} assignments, more than "
                f"max_assignments={max_assignments}: the exact evidence is only computable for tiny "
                f"data sets (e.g. n <= 16 with K = 2); use fewer data points or raise max_assignments")

    def _enumerate(self, max_assignments):
        """Per assignment: log p(x | c) and the per-component posterior mean/variance of mu."""
        self._check_enumerable(max_assignments)
        k, n, s2 = self.n_components, self.n, self.prior_var
        codes = np.arange(k ** n)
        blocks = []
        step = max(1, _ROWS // max(1, n * k))
        for start in range(0, codes.size, step):
            digits = (codes[start:start + step, None] // k ** np.arange(n)[None, :]) % k  # (A, n)
            onehot = digits[:, :, None] == np.arange(k)[None, None, :]                     # (A, n, K)
            counts = onehot.sum(axis=1).astype(float)                                       # n_k
            sums = np.einsum("ank,n->ak", onehot, self.x)                                   # t_k
            blocks.append((counts, sums))
        counts = np.concatenate([b[0] for b in blocks])
        sums = np.concatenate([b[1] for b in blocks])
        denom = 1.0 + counts * s2
        log_lik = (-0.5 * n * LOG_2PI - 0.5 * self._sxx
                   + np.sum(-0.5 * np.log(denom) + 0.5 * s2 * sums ** 2 / denom, axis=1))
        post_mean = s2 * sums / denom
        post_var = s2 / denom
        return log_lik, post_mean, post_var

    def exact_log_evidence(self, max_assignments=MAX_ASSIGNMENTS):
        r"""Exact :math:`\log p(x)` by enumerating all :math:`K^n` assignments.

        Chapter: CAVI for the Bayesian Gaussian mixture, equation ``(gmm-evidence)`` (module
        docstring). Raises ``ValueError`` when :math:`K^n` exceeds ``max_assignments``.

        Parameters
        ----------
        max_assignments : int
            Largest :math:`K^n` allowed (default :data:`MAX_ASSIGNMENTS` = 65536).

        Returns
        -------
        float
        """
        self._check_enumerable(max_assignments)
        if self._log_evidence is None:
            log_lik, _, _ = self._enumerate(max_assignments)
            self._log_evidence = float(logsumexp(log_lik) - self.n * np.log(self.n_components))
        return self._log_evidence

    def exact_posterior_means_density(self, mu, max_assignments=MAX_ASSIGNMENTS):
        r"""Exact posterior density :math:`p(\mu \mid x) = p(x, \mu) / p(x)` at points ``mu``.

        Chapter: CAVI for the Bayesian Gaussian mixture (figure comparing the exact posterior of the
        means with the CAVI approximation). The numerator is :meth:`log_marginal_means`, the
        denominator :meth:`exact_log_evidence` (so the data must be tiny).

        Parameters
        ----------
        mu : array_like, shape (S, K) or (K,)
        max_assignments : int

        Returns
        -------
        ndarray, shape (S,)
            Density values (not logs).
        """
        log_ev = self.exact_log_evidence(max_assignments)
        return np.exp(self.log_marginal_means(mu) - log_ev)

    def exact_posterior_marginal(self, grid, max_assignments=MAX_ASSIGNMENTS):
        r"""Exact posterior marginal density of one component mean, :math:`p(\mu_1 \mid x)`, on a grid.

        Chapter: CAVI for the Bayesian Gaussian mixture. The prior is exchangeable, so every
        :math:`\mu_k` has this same marginal: it is a mixture over all assignments :math:`c` of
        :math:`N(\mu_1; \sigma^2 t_1/(1 + n_1\sigma^2), \sigma^2/(1 + n_1\sigma^2))` with weights
        :math:`p(c \mid x)`. It has a mode near every cluster of the data (label switching), whereas
        each CAVI factor :math:`q(\mu_k)` picks one.

        Parameters
        ----------
        grid : array_like, shape (G,)
            Points at which to evaluate the density.
        max_assignments : int

        Returns
        -------
        ndarray, shape (G,)
        """
        grid = _checks.finite_array("grid", grid, ndim=1, allow_empty=False)
        log_lik, post_mean, post_var = self._enumerate(max_assignments)
        log_w = log_lik - logsumexp(log_lik)
        m1, v1 = post_mean[:, 0], post_var[:, 0]
        out = np.empty(grid.size)
        step = max(1, _ROWS // log_w.size)
        for i in range(0, grid.size, step):
            g = grid[i:i + step, None]
            with np.errstate(over="ignore"):
                log_comp = -0.5 * (LOG_2PI + np.log(v1)[None, :] + (g - m1[None, :]) ** 2 / v1[None, :])
                out[i:i + step] = np.exp(logsumexp(log_comp + log_w[None, :], axis=1))
        return out
