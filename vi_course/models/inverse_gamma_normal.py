r"""The InverseGamma-Normal model of the ADVI chapter (chapter "ADVI with constraining transforms").

.. math::

    s \sim \mathrm{InvGamma}(a, b), \qquad m \mid s \sim N(0, s), \qquad
    x_i \mid m, s \overset{\text{iid}}{\sim} N(m, s), \quad i = 1, \dots, n .

``InvGamma(a, b)`` has shape :math:`a` and scale :math:`b`: density
:math:`b^a s^{-a-1} e^{-b/s} / \Gamma(a)` on :math:`s > 0`. The prior of :math:`m` has the same
variance :math:`s` as the data, so the model is Normal-Inverse-Gamma conjugate with prior
precision factor :math:`\kappa_0 = 1` and prior mean :math:`\mu_0 = 0`. Completing the square in
:math:`m` in the log joint gives (derived in the chapter and checked by grid integration in
``tests/test_inverse_gamma_normal.py``)

.. math::

    \kappa_n = 1 + n, \quad \mu_n = \frac{\sum_i x_i}{1 + n}, \quad a_n = a + \frac{n}{2}, \quad
    b_n = b + \frac12\Big(\sum_i x_i^2 - \frac{(\sum_i x_i)^2}{1 + n}\Big),

    s \mid x \sim \mathrm{InvGamma}(a_n, b_n), \qquad m \mid s, x \sim N(\mu_n, s / \kappa_n),

and, integrating :math:`s` out, :math:`m \mid x` is Student-t with :math:`2 a_n` degrees of freedom,
location :math:`\mu_n` and squared scale :math:`b_n / (a_n \kappa_n)`.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval
from scipy.special import gammaln

from .. import _checks

LOG_2PI = float(np.log(2.0 * np.pi))


class InverseGammaNormal:
    r"""Normal data with unknown mean and variance: :math:`s \sim \mathrm{IG}(a, b)`, :math:`m \mid s \sim N(0, s)`, :math:`x_i \sim N(m, s)`.

    Chapter: ADVI with constraining transforms (the InverseGamma(2, 3)-Normal example of the ADVI
    page). The latent vector is :math:`\theta = (s, m)` in this order, so ``dim = 2`` and
    ``supports = ["positive", "real"]``.

    Parameters
    ----------
    x : array_like, shape (n_data,)
        Observations: finite, one-dimensional, at least one.
    a : float
        Shape of the inverse-gamma prior, > 0.
    b : float
        Scale of the inverse-gamma prior, > 0.

    Examples
    --------
    >>> model = InverseGammaNormal([0.5, 1.5, 1.0])
    >>> round(model.posterior()["mean_m"], 4)
    0.75
    """

    dim = 2

    def __init__(self, x, a=2.0, b=3.0):
        self.x = _checks.finite_array("x", x, ndim=1)
        if self.x.size == 0:
            raise ValueError("x must contain at least one observation")
        self.a = _checks.positive_scalar("a", a)
        self.b = _checks.positive_scalar("b", b)
        self.supports = ["positive", "real"]
        self.n = int(self.x.size)
        with np.errstate(over="ignore", invalid="ignore"):
            self._sx = float(self.x.sum())
            self._sxx = float((self.x ** 2).sum())
        # posterior hyperparameters (module docstring)
        self.kappa_n = 1.0 + self.n
        self.mu_n = self._sx / self.kappa_n
        self.a_n = self.a + 0.5 * self.n
        # sum of squares about the mean plus the shrinkage term, written to avoid cancellation
        with np.errstate(over="ignore", invalid="ignore"):
            xbar = np.float64(np.mean(self.x))
            centred = float(((self.x - xbar) ** 2).sum())
            self.b_n = float(self.b + 0.5 * (centred + self.n * xbar ** 2 / self.kappa_n))
        # constants of the completed-square form of the log joint (see log_joint)
        self._log_const = float(self.a * np.log(self.b) - gammaln(self.a) - 0.5 * self.kappa_n * LOG_2PI)
        self._log_s_coef = self.a + 0.5 * self.kappa_n + 1.0
        with np.errstate(all="ignore"):
            finite = all(np.isfinite(v) for v in (self._sx, self._sxx, self.mu_n, self.b_n, self._log_const,
                                                  self.log_evidence()))
        if not finite:
            raise ValueError("x, a and b are too extreme for double precision: the sum of squares of x, "
                             "the posterior or the evidence overflows")

    def __repr__(self):
        return f"InverseGammaNormal(n_data={self.n}, a={self.a}, b={self.b})"

    def log_joint(self, theta):
        r"""Log joint :math:`\log p(x, s, m)` for a batch ``theta = (s, m)`` of shape (n, 2); returns (n,).

        Chapter: ADVI with constraining transforms. Equation:

        .. math::

            \log p(x, s, m) = a\log b - \log\Gamma(a) - (a+1)\log s - \frac{b}{s}
              - \frac{n+1}{2}\log(2\pi s)
              - \frac{m^2 + \sum_i x_i^2 - 2 m \sum_i x_i + n m^2}{2 s} .

        The density is zero off the support, so rows with :math:`s \le 0` get ``-inf`` (not NaN).
        On :math:`s > 0` the function is autograd-differentiable; at rows with :math:`s \le 0` the
        gradient is 0 (those rows never occur in ADVI, which maps :math:`s = e^{\eta} > 0`).
        Non-finite entries in a plain (non-autograd) ``theta`` raise ``ValueError``.

        It is evaluated in the equivalent completed-square form (same value, fewer operations, which
        matters for the cost of an autograd gradient)

        .. math::

            \log p(x, s, m) = c - \big(a + \tfrac{n+1}{2} + 1\big)\log s
              - \frac{b_n + \kappa_n (m - \mu_n)^2 / 2}{s},
            \qquad c = a\log b - \log\Gamma(a) - \tfrac{n+1}{2}\log 2\pi ,

        with :math:`b_n, \kappa_n, \mu_n` of the module docstring.

        Parameters
        ----------
        theta : array_like, shape (n, 2)
            Rows :math:`(s, m)`; finite real numbers (a 1-D array of length 2 is one row).

        Returns
        -------
        ndarray, shape (n,)
        """
        theta = _checks.samples("theta", theta, 2)
        s, m = theta[:, 0], theta[:, 1]
        inside = np.asarray(getval(s)) > 0
        all_inside = bool(np.all(inside))
        if not all_inside:  # zero density off the support; keep the arithmetic (and gradient) finite
            s = anp.where(inside, s, 1.0)
        r = m - self.mu_n
        value = (self._log_const - self._log_s_coef * anp.log(s)
                 - (self.b_n + 0.5 * self.kappa_n * (r * r)) / s)
        return value if all_inside else anp.where(inside, value, -np.inf)

    def posterior(self):
        r"""Exact posterior means and standard deviations of :math:`s` and :math:`m`.

        Chapter: ADVI with constraining transforms. Equations (Normal-Inverse-Gamma conjugacy):
        :math:`E[s] = b_n/(a_n-1)` (if :math:`a_n > 1`),
        :math:`\mathrm{Var}[s] = b_n^2/((a_n-1)^2(a_n-2))` (if :math:`a_n > 2`),
        :math:`E[m] = \mu_n`, :math:`\mathrm{Var}[m] = E[s]/\kappa_n = b_n/((a_n-1)\kappa_n)`
        (law of total variance; equals the Student-t variance). A moment that diverges is reported as
        ``inf``.

        Returns
        -------
        dict
            ``mean_s, sd_s, mean_m, sd_m`` (floats); ``mean`` and ``sd`` (arrays of shape (2,), in the
            order of ``theta = (s, m)``); and the hyperparameters ``a_n, b_n, mu_n, kappa_n``.
        """
        a_n, b_n = self.a_n, self.b_n
        mean_s = b_n / (a_n - 1.0) if a_n > 1 else np.inf
        sd_s = b_n / ((a_n - 1.0) * np.sqrt(a_n - 2.0)) if a_n > 2 else np.inf
        mean_m = self.mu_n  # 2 a_n > 1 always holds because n >= 1
        sd_m = float(np.sqrt(b_n / ((a_n - 1.0) * self.kappa_n))) if a_n > 1 else np.inf
        return {
            "mean_s": float(mean_s), "sd_s": float(sd_s),
            "mean_m": float(mean_m), "sd_m": float(sd_m),
            "mean": np.array([mean_s, mean_m], dtype=float),
            "sd": np.array([sd_s, sd_m], dtype=float),
            "a_n": float(a_n), "b_n": float(b_n), "mu_n": float(self.mu_n), "kappa_n": float(self.kappa_n),
        }

    def posterior_logpdf(self, s, m):
        r"""Exact posterior log density :math:`\log p(s, m \mid x)` (for contour plots).

        Chapter: ADVI with constraining transforms. Equation:
        :math:`\log \mathrm{IG}(s; a_n, b_n) + \log N(m; \mu_n, s/\kappa_n)`.

        Parameters
        ----------
        s, m : array_like
            Broadcastable arrays (e.g. a meshgrid); ``s`` must be finite and ``m`` finite. Points with
            :math:`s \le 0` get ``-inf``.

        Returns
        -------
        ndarray
            The log density, broadcast shape of ``s`` and ``m``.
        """
        s = _checks.finite_array("s", s, allow_empty=False)
        m = _checks.finite_array("m", m, allow_empty=False)
        try:
            s, m = np.broadcast_arrays(s, m)
        except ValueError:
            raise ValueError(f"s and m must have broadcastable shapes, got {s.shape} and {m.shape}") from None
        out = np.full(s.shape, -np.inf)
        ok = s > 0
        ss, mm = s[ok], m[ok]
        log_ig = (self.a_n * np.log(self.b_n) - gammaln(self.a_n) - (self.a_n + 1.0) * np.log(ss)
                  - self.b_n / ss)
        var_m = ss / self.kappa_n
        log_n = -0.5 * (LOG_2PI + np.log(var_m) + (mm - self.mu_n) ** 2 / var_m)
        out[ok] = log_ig + log_n
        return out

    def log_evidence(self):
        r"""Exact log evidence :math:`\log p(x)`.

        Chapter: ADVI with constraining transforms. Equation (integrate :math:`m`, then :math:`s`,
        out of the log joint):

        .. math::

            \log p(x) = a\log b - \log\Gamma(a) + \log\Gamma(a_n) - a_n \log b_n
              - \frac{n}{2}\log(2\pi) - \frac12\log(1 + n) .
        """
        return float(self.a * np.log(self.b) - gammaln(self.a) + gammaln(self.a_n)
                     - self.a_n * np.log(self.b_n) - 0.5 * self.n * LOG_2PI - 0.5 * np.log(self.kappa_n))

