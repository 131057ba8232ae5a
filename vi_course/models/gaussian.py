"""Gaussian example targets with exact answers (chapters "Why approximate inference" to "Mean-field VI").

Both models have closed-form posteriors, so every approximation in the course can be compared with
the truth. Log densities are written with :mod:`autograd.numpy` so that they can be differentiated.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np

from .. import _checks

LOG_2PI = float(np.log(2.0 * np.pi))


class ConjugateGaussian:
    r"""Normal mean model with a normal prior: :math:`z \sim N(0, \sigma_0^2)`, :math:`x_k \mid z \sim N(z, \sigma^2)`.

    This is the lecture's running example (Exercise 2.5 uses ``prior_var = noise_var = 1``).

    Parameters
    ----------
    x : array_like, shape (n_data,)
        Observations; must be finite.
    prior_var : float
        Prior variance :math:`\sigma_0^2 > 0`.
    noise_var : float
        Observation noise variance :math:`\sigma^2 > 0`.
    """

    dim = 1

    def __init__(self, x, prior_var=1.0, noise_var=1.0):
        self.x = _checks.finite_array("x", x, ndim=(0, 1)).reshape(-1)
        if self.x.size == 0:
            raise ValueError("x must contain at least one observation")
        self.prior_var = _checks.positive_scalar("prior_var", prior_var)
        self.noise_var = _checks.positive_scalar("noise_var", noise_var)
        self.supports = ["real"]

    def __repr__(self):
        return (f"ConjugateGaussian(n_data={self.x.size}, prior_var={self.prior_var}, "
                f"noise_var={self.noise_var})")

    def log_prior(self, z):
        r"""Log prior :math:`\log N(z; 0, \sigma_0^2)` for a batch ``z`` of shape (n, 1); returns (n,)."""
        z = _checks.samples("z", z, 1)[:, 0]
        return -0.5 * (LOG_2PI + np.log(self.prior_var) + z ** 2 / self.prior_var)

    def log_likelihood(self, z):
        r"""Log likelihood :math:`\sum_k \log N(x_k; z, \sigma^2)` for a batch ``z`` (n, 1); returns (n,).

        Uses the sufficient statistics of ``x``, so the cost does not grow with the data size:
        :math:`\sum_k (x_k - z)^2 = \sum_k x_k^2 - 2 z \sum_k x_k + n z^2`.
        """
        z = _checks.samples("z", z, 1)[:, 0]
        n, sx, sxx = self.x.size, float(self.x.sum()), float((self.x ** 2).sum())
        sq = sxx - 2.0 * z * sx + n * z ** 2
        return -0.5 * (n * (LOG_2PI + np.log(self.noise_var)) + sq / self.noise_var)

    def log_joint(self, z):
        r"""Log joint :math:`\log p(D, z)` (lecture eq. 2 integrand); ``z`` (n, 1) -> (n,)."""
        return self.log_prior(z) + self.log_likelihood(z)

    def posterior(self):
        r"""Exact posterior :math:`N(m, s^2)` with :math:`1/s^2 = 1/\sigma_0^2 + n/\sigma^2` and
        :math:`m = s^2 \sum_k x_k / \sigma^2`.

        Returns
        -------
        mean : ndarray, shape (1,)
        cov : ndarray, shape (1, 1)
        """
        precision = 1.0 / self.prior_var + self.x.size / self.noise_var
        var = 1.0 / precision
        mean = var * self.x.sum() / self.noise_var
        return np.array([mean]), np.array([[var]])

    def log_evidence(self):
        r"""Exact :math:`\log p(D)`: the data are jointly :math:`N(0, \sigma^2 I + \sigma_0^2 \mathbf{1}\mathbf{1}^\top)`.

        Evaluated with the matrix determinant lemma and Sherman-Morrison, so it is O(n).
        """
        n = self.x.size
        s2, t2 = self.noise_var, self.prior_var
        logdet = n * np.log(s2) + np.log1p(n * t2 / s2)
        sx, sxx = self.x.sum(), (self.x ** 2).sum()
        quad = sxx / s2 - (t2 / s2 ** 2) * sx ** 2 / (1.0 + n * t2 / s2)
        return float(-0.5 * (n * LOG_2PI + logdet + quad))


class CorrelatedGaussian:
    r"""Bivariate normal target :math:`N(0, \sigma^2 [[1, \rho], [\rho, 1]])` (chapter "Mean-field VI").

    The target is normalised, so its log evidence is exactly 0. Its marginal variances are
    :math:`\sigma^2` (the lecture's eq. 59 writes a density whose marginal variance is
    :math:`\sigma^2/(1-\rho^2)` instead; see the errata).

    Parameters
    ----------
    sigma : float
        Marginal standard deviation, > 0.
    rho : float
        Correlation, in the open interval (-1, 1).
    """

    dim = 2

    def __init__(self, sigma=1.0, rho=0.9):
        self.sigma = _checks.positive_scalar("sigma", sigma)
        self.rho = _checks.open_interval("rho", rho, -1.0, 1.0)
        self.supports = ["real", "real"]
        self._cov = self.sigma ** 2 * np.array([[1.0, self.rho], [self.rho, 1.0]])
        self._prec = np.linalg.inv(self._cov)
        self._logdet = float(np.linalg.slogdet(self._cov)[1])

    def __repr__(self):
        return f"CorrelatedGaussian(sigma={self.sigma}, rho={self.rho})"

    def log_joint(self, z):
        r"""Normalised log density :math:`\log N(z; 0, \Sigma)`; ``z`` (n, 2) -> (n,)."""
        z = _checks.samples("z", z, 2)
        quad = anp.sum(anp.dot(z, self._prec) * z, axis=1)
        return -0.5 * (2 * LOG_2PI + self._logdet + quad)

    def posterior(self):
        """Exact target: ``(mean, cov)`` with mean zero, shapes (2,) and (2, 2)."""
        return np.zeros(2), self._cov.copy()

    def log_evidence(self):
        """The target is normalised: log evidence 0."""
        return 0.0
