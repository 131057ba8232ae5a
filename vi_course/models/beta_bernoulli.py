r"""Beta-Bernoulli model: a one-dimensional latent on an interval (chapter "ADVI with constraining transforms").

.. math:: \theta \sim \mathrm{Beta}(a, b), \qquad x_i \mid \theta \overset{\text{iid}}{\sim} \mathrm{Bernoulli}(\theta).

With :math:`k = \sum_i x_i` successes in :math:`n` trials the posterior is
:math:`\mathrm{Beta}(a + k, b + n - k)` and the evidence is
:math:`p(x) = B(a + k, b + n - k) / B(a, b)`. ADVI reaches the support :math:`(0, 1)` with the logit
transform ``("interval", 0, 1)``.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from scipy import stats
from scipy.special import betaln

from .. import _checks


class BetaBernoulli:
    r"""Coin with unknown bias: :math:`\theta \sim \mathrm{Beta}(a, b)`, :math:`x_i \sim \mathrm{Bernoulli}(\theta)`.

    Chapter: ADVI with constraining transforms (second constrained example: an interval support).
    ``dim = 1`` and ``supports = [("interval", 0.0, 1.0)]``.

    Parameters
    ----------
    x : array_like, shape (n_data,)
        Observations, each 0 or 1 (booleans are accepted); at least one.
    a, b : float
        Beta prior parameters, > 0.
    """

    dim = 1

    def __init__(self, x, a=1.0, b=1.0):
        x = _checks.finite_array("x", x, ndim=1)
        if x.size == 0:
            raise ValueError("x must contain at least one observation")
        if not np.all((x == 0) | (x == 1)):
            raise ValueError("x must contain only 0s and 1s (Bernoulli outcomes)")
        self.x = x
        self.a = _checks.positive_scalar("a", a)
        self.b = _checks.positive_scalar("b", b)
        self.supports = [("interval", 0.0, 1.0)]
        self.n = int(x.size)
        self.k = int(x.sum())
        self.a_n = self.a + self.k
        self.b_n = self.b + self.n - self.k

    def __repr__(self):
        return f"BetaBernoulli(n_data={self.n}, successes={self.k}, a={self.a}, b={self.b})"

    def log_joint(self, theta):
        r"""Log joint :math:`\log p(x, \theta)` for a batch ``theta`` of shape (n, 1); returns (n,).

        Chapter: ADVI with constraining transforms. Equation:
        :math:`(a - 1 + k)\log\theta + (b - 1 + n - k)\log(1 - \theta) - \log B(a, b)`.

        Rows with :math:`\theta \notin (0, 1)` get ``-inf`` (zero density), never NaN; inside the
        support the function is autograd-differentiable.

        Parameters
        ----------
        theta : array_like, shape (n, 1)
            Finite real numbers.

        Returns
        -------
        ndarray, shape (n,)
        """
        theta = _checks.samples("theta", theta, 1)[:, 0]
        inside = (theta > 0) & (theta < 1)
        t = anp.where(inside, theta, 0.5)
        value = ((self.a - 1.0 + self.k) * anp.log(t) + (self.b - 1.0 + self.n - self.k) * anp.log1p(-t)
                 - betaln(self.a, self.b))
        return anp.where(inside, value, -np.inf)

    def posterior(self):
        r"""Exact posterior :math:`\mathrm{Beta}(a + k, b + n - k)`.

        Chapter: ADVI with constraining transforms. Equations: mean :math:`a_n/(a_n + b_n)`,
        variance :math:`a_n b_n / ((a_n + b_n)^2 (a_n + b_n + 1))`.

        Returns
        -------
        dict
            ``a_n, b_n``; ``mean_theta, sd_theta`` (floats); ``mean``, ``sd`` (arrays of shape (1,));
            ``distribution``: the frozen :func:`scipy.stats.beta` posterior.
        """
        a_n, b_n = self.a_n, self.b_n
        total = a_n + b_n
        mean = a_n / total
        sd = float(np.sqrt(a_n * b_n / (total ** 2 * (total + 1.0))))
        return {"a_n": float(a_n), "b_n": float(b_n), "mean_theta": float(mean), "sd_theta": sd,
                "mean": np.array([mean]), "sd": np.array([sd]),
                "distribution": stats.beta(a_n, b_n)}

    def posterior_logpdf(self, theta):
        r"""Exact posterior log density :math:`\log \mathrm{Beta}(\theta; a + k, b + n - k)`, elementwise.

        Chapter: ADVI with constraining transforms (for plots of the exact posterior; equation
        ``eq-advi-beta-model``).

        Parameters
        ----------
        theta : array_like
            Any shape, at least one entry; finite real numbers. Values outside (0, 1) get ``-inf``.

        Returns
        -------
        ndarray
            Same shape as ``theta``.
        """
        theta = _checks.finite_array("theta", theta, allow_empty=False)
        return stats.beta(self.a_n, self.b_n).logpdf(theta)

    def log_evidence(self):
        r"""Exact :math:`\log p(x) = \log B(a + k, b + n - k) - \log B(a, b)`.

        Chapter: ADVI with constraining transforms.
        """
        return float(betaln(self.a_n, self.b_n) - betaln(self.a, self.b))
