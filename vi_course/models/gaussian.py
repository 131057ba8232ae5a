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

    Chapter: Why approximate inference (equation ``eq-conjugate-model``); the lecture's running
    example, used again in every chapter up to mean-field VI (Exercise 2.5 uses
    ``prior_var = noise_var = 1``).

    Parameters
    ----------
    x : array_like, shape (n_data,)
        Observations: finite real numbers, at least one (a scalar is one observation).
    prior_var : float
        Prior variance :math:`\sigma_0^2 > 0`.
    noise_var : float
        Observation noise variance :math:`\sigma^2 > 0`.

    Raises
    ------
    ValueError
        For non-finite, non-numeric or empty data, non-positive variances, or data and variances so
        extreme that the posterior or the evidence overflow double precision.

    Notes
    -----
    The data enter only through :math:`n`, :math:`\bar x` and the centred sum of squares
    :math:`\sum_k (x_k - \bar x)^2` (two-pass), so data with a large common offset do not lose
    precision to cancellation.
    """

    dim = 1

    def __init__(self, x, prior_var=1.0, noise_var=1.0):
        self.x = _checks.finite_array("x", x, ndim=(0, 1)).reshape(-1)
        if self.x.size == 0:
            raise ValueError("x must contain at least one observation")
        self.prior_var = _checks.positive_scalar("prior_var", prior_var)
        self.noise_var = _checks.positive_scalar("noise_var", noise_var)
        self.supports = ["real"]
        n = self.x.size
        with np.errstate(over="ignore", invalid="ignore"):
            xbar = np.float64(np.mean(self.x))
            self._ss = float(np.sum((self.x - xbar) ** 2))  # centred sum of squares
            ok = np.isfinite(xbar) and np.isfinite(self._ss) and np.isfinite(n * xbar ** 2)
        self._xbar = float(xbar)  # a Python float: combines with autograd boxes in log_likelihood
        if not ok:
            raise ValueError("x is too large in magnitude: its sum of squares overflows double precision")
        with np.errstate(all="ignore"):
            self._post_var = 1.0 / (1.0 / self.prior_var + n / self.noise_var)
            self._post_mean = self._post_var * n * self._xbar / self.noise_var
            self._log_evidence = self._compute_log_evidence()
        if not (np.isfinite(self._post_var) and self._post_var > 0 and np.isfinite(self._post_mean)
                and np.isfinite(self._log_evidence)):
            raise ValueError("x, prior_var and noise_var are too extreme for double precision: the "
                             "posterior or the evidence overflows")

    def __repr__(self):
        return (f"ConjugateGaussian(n_data={self.x.size}, prior_var={self.prior_var}, "
                f"noise_var={self.noise_var})")

    def log_prior(self, z):
        r"""Log prior :math:`\log N(z; 0, \sigma_0^2)` for a batch of latent values.

        Chapter: Why approximate inference (the prior of equation ``eq-conjugate-model``):
        :math:`\log p(z) = -\tfrac12\log(2\pi\sigma_0^2) - z^2 / (2\sigma_0^2)`.

        Parameters
        ----------
        z : array_like, shape (n, 1)
            Latent values (a 1-D array of length 1 is one sample); finite.

        Returns
        -------
        ndarray, shape (n,)
        """
        z = _checks.samples("z", z, 1)[:, 0]
        return -0.5 * (LOG_2PI + np.log(self.prior_var) + (z * z) / self.prior_var)

    def log_likelihood(self, z):
        r"""Log likelihood :math:`\sum_k \log N(x_k; z, \sigma^2)` for a batch of latent values.

        Chapter: Why approximate inference (the likelihood of equation ``eq-conjugate-model``).
        Uses the sufficient statistics of ``x``, so the cost does not grow with the data size:
        :math:`\sum_k (x_k - z)^2 = \sum_k (x_k - \bar x)^2 + n (\bar x - z)^2`.

        Parameters
        ----------
        z : array_like, shape (n, 1)

        Returns
        -------
        ndarray, shape (n,)
        """
        z = _checks.samples("z", z, 1)[:, 0]
        n = self.x.size
        r = self._xbar - z
        sq = self._ss + n * (r * r)
        return -0.5 * (n * (LOG_2PI + np.log(self.noise_var)) + sq / self.noise_var)

    def log_joint(self, z):
        r"""Log joint :math:`\log p(D, z) = \log p(z) + \sum_k \log p(x_k \mid z)`.

        Chapter: Why approximate inference (the integrand of equation ``eq-evidence``, lecture
        eq. 2, for the model ``eq-conjugate-model``). Autograd-differentiable in ``z``.

        Parameters
        ----------
        z : array_like, shape (n, 1)

        Returns
        -------
        ndarray, shape (n,)
        """
        return self.log_prior(z) + self.log_likelihood(z)

    def posterior(self):
        r"""Exact posterior :math:`N(m, s^2)`.

        Chapter: Why approximate inference, equation ``eq-conjugate-posterior``:
        :math:`1/s^2 = 1/\sigma_0^2 + n/\sigma^2` and :math:`m = s^2 \sum_k x_k / \sigma^2`.

        Returns
        -------
        mean : ndarray, shape (1,)
        cov : ndarray, shape (1, 1)
        """
        return np.array([self._post_mean]), np.array([[self._post_var]])

    def log_evidence(self):
        r"""Exact :math:`\log p(D)`: the data are jointly :math:`N(0, \sigma^2 I + \sigma_0^2 \mathbf{1}\mathbf{1}^\top)`.

        Chapter: Why approximate inference, equation ``eq-conjugate-evidence``. Evaluated with the
        matrix determinant lemma and Sherman-Morrison, so it is O(n), in the cancellation-free form
        :math:`-\tfrac n2\log(2\pi\sigma^2) - \tfrac12\log(1 + n\sigma_0^2/\sigma^2)
        - \tfrac{1}{2}\big[\sum_k (x_k-\bar x)^2/\sigma^2 + n\bar x^2/(\sigma^2 + n\sigma_0^2)\big]`.

        Returns
        -------
        float
        """
        return self._log_evidence

    def _compute_log_evidence(self):
        n = self.x.size
        s2, t2 = self.noise_var, self.prior_var
        logdet = n * np.log(s2) + np.log1p(n * (t2 / s2))
        quad = self._ss / s2 + n * self._xbar ** 2 / (s2 + n * t2)
        return float(-0.5 * (n * LOG_2PI + logdet + quad))


class CorrelatedGaussian:
    r"""Bivariate normal target :math:`N(0, \sigma^2 [[1, \rho], [\rho, 1]])`.

    Chapter: Mean-field variational inference (equations ``eq-mf-target`` and
    ``eq-mf-target-density``). The target is normalised, so its log evidence is exactly 0. Its
    marginal variances are :math:`\sigma^2` (the lecture's eq. 59 writes a density whose marginal
    variance is :math:`\sigma^2/(1-\rho^2)` instead; see the errata).

    Parameters
    ----------
    sigma : float
        Marginal standard deviation, > 0, with :math:`\sigma^2 (1 - |\rho|)` and :math:`\sigma^2`
        representable in double precision (roughly :math:`10^{-150} < \sigma < 10^{150}`).
    rho : float
        Correlation, in the open interval (-1, 1).

    Notes
    -----
    The log density is evaluated in the eigenbasis of the covariance,
    :math:`z^\top\Sigma^{-1}z = \frac{(z_1 + z_2)^2}{2\sigma^2(1+\rho)} + \frac{(z_1 - z_2)^2}{2\sigma^2(1-\rho)}`
    (one product with a whitening matrix), which stays accurate for :math:`\rho` close to
    :math:`\pm 1` and any scale :math:`\sigma`.
    """

    dim = 2

    def __init__(self, sigma=1.0, rho=0.9):
        self.sigma = _checks.positive_scalar("sigma", sigma)
        self.rho = _checks.open_interval("rho", rho, -1.0, 1.0)
        self.supports = ["real", "real"]
        with np.errstate(all="ignore"):
            var = float(np.float64(self.sigma) ** 2)
            smallest = var * (1.0 - abs(self.rho))
        if not (np.isfinite(var) and smallest >= np.finfo(float).tiny):
            raise ValueError(f"sigma = {self.sigma} with rho = {self.rho} gives a covariance that is not "
                             "representable in double precision: sigma**2 * (1 - |rho|) must lie "
                             "between 2.2e-308 and 1.8e308")
        self._cov = var * np.array([[1.0, self.rho], [self.rho, 1.0]])
        # whitening matrix V diag(lambda)^(-1/2) from the eigenvectors (1, 1)/sqrt2, (1, -1)/sqrt2 and
        # eigenvalues sigma^2 (1 +- rho): z @ white has entries (z1 +- z2) / (sigma sqrt(2 (1 +- rho)))
        c_plus = 1.0 / (self.sigma * np.sqrt(2.0 * (1.0 + self.rho)))
        c_minus = 1.0 / (self.sigma * np.sqrt(2.0 * (1.0 - self.rho)))
        self._white = np.array([[c_plus, c_minus], [c_plus, -c_minus]])
        self._log_sigma = float(np.log(self.sigma))
        self._logdet = float(4.0 * self._log_sigma + np.log1p(self.rho) + np.log1p(-self.rho))

    def __repr__(self):
        return f"CorrelatedGaussian(sigma={self.sigma}, rho={self.rho})"

    def log_joint(self, z):
        r"""Normalised log density :math:`\log N(z; 0, \Sigma)` of a batch of points.

        Chapter: Mean-field variational inference, equation ``eq-mf-target-density``:
        :math:`-\log(2\pi\sigma^2\sqrt{1-\rho^2}) - (z_1^2 - 2\rho z_1 z_2 + z_2^2) / (2\sigma^2(1-\rho^2))`,
        evaluated in the eigenbasis (class notes). Autograd-differentiable in ``z``.

        Parameters
        ----------
        z : array_like, shape (n, 2)

        Returns
        -------
        ndarray, shape (n,)
        """
        z = _checks.samples("z", z, 2)
        white = anp.dot(z, self._white)
        quad = anp.sum(white * white, axis=1)
        return -0.5 * (2 * LOG_2PI + self._logdet + quad)

    def posterior(self):
        r"""The exact target :math:`(0, \Sigma)` with :math:`\Sigma = \sigma^2 [[1, \rho], [\rho, 1]]`.

        Chapter: Mean-field variational inference, equation ``eq-mf-target``.

        Returns
        -------
        mean : ndarray, shape (2,)
        cov : ndarray, shape (2, 2)
        """
        return np.zeros(2), self._cov.copy()

    def log_evidence(self):
        r"""The target is normalised: :math:`\log p(D) = \log \int N(z; 0, \Sigma)\,dz = 0`.

        Chapter: Mean-field variational inference (the ELBO of every q is :math:`-\mathrm{KL}(q \,\|\, p)`,
        lecture eq. 20 with :math:`\log p(D) = 0`).

        Returns
        -------
        float
        """
        return 0.0
