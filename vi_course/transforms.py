r"""Constraining bijections for ADVI (chapter "ADVI with constraining transforms").

ADVI fits a Gaussian to an *unconstrained* vector :math:`\eta \in \mathbb{R}^d` and maps it to the
model's constrained latent vector :math:`\theta = T^{-1}(\eta)`. This module provides the maps
:math:`T` for the three supports the course uses and the change-of-variables bookkeeping.

Naming (kept throughout the course):

* ``forward(theta)``  is :math:`T`: constrained :math:`\theta` -> unconstrained :math:`\eta`;
* ``inverse(eta)``    is :math:`T^{-1}`: unconstrained -> constrained;
* ``inverse_log_abs_det_jacobian(eta)`` is :math:`\log |\det J_{T^{-1}}(\eta)|`.

=========================  ====================================  ==========================================
support                    :math:`\theta = T^{-1}(\eta)`          :math:`\log |d\theta / d\eta|`
=========================  ====================================  ==========================================
``"real"``                 :math:`\eta`                           :math:`0`
``"positive"``             :math:`e^{\eta}`                       :math:`\eta`
``("interval", a, b)``     :math:`a + (b-a)\,\sigma(\eta)`        :math:`\log(b-a) - \mathrm{sp}(\eta) - \mathrm{sp}(-\eta)`
=========================  ====================================  ==========================================

with :math:`\sigma` the logistic sigmoid and :math:`\mathrm{sp}(u) = \log(1 + e^u)` the softplus
(:math:`\log\sigma(\eta) = -\mathrm{sp}(-\eta)`, :math:`\log(1-\sigma(\eta)) = -\mathrm{sp}(\eta)`),
so that the log-Jacobian never underflows to ``log(0)`` for large :math:`|\eta|`.

Two corrections to the ADVI documentation page the chapter follows (see the errata appendix):

* the density of :math:`\eta` is :math:`\log p(T^{-1}(\eta)) \mathbin{\mathbf{+}} \log|\det J_{T^{-1}}(\eta)|`
  (the page subtracts the term, and in one line drops the logarithm);
* differential entropy is *not* invariant under a change of variables:
  :math:`H[q_\theta] = H[q_\eta] + E_{q_\eta}[\log|\det J_{T^{-1}}(\eta)|]`.

All maps are written with :mod:`autograd.numpy`, are vectorised, and can be differentiated.
"""
from __future__ import annotations

import numbers

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from . import _checks

__all__ = [
    "VALID_SUPPORTS",
    "IdentityTransform",
    "ExpTransform",
    "IntervalTransform",
    "JointTransform",
    "get_transform",
    "from_supports",
    "transformed_log_density",
    "entropy_change_of_variables",
]

VALID_SUPPORTS = ('"real"', '"positive"', '("interval", a, b) with finite a < b')


def _values(name, x):
    """Validate the input of an elementwise map: a finite real array (autograd boxes pass unchecked)."""
    if _checks.is_traced(x):
        return x
    return _checks.finite_array(name, x, allow_empty=False)


def _mask_input(name, theta):
    """Validate the input of ``contains``: a real array (NaN and inf allowed: they are outside)."""
    return _checks.real_array(name, getval(theta))


def _softplus(u):
    r"""Numerically stable :math:`\log(1 + e^u)` (autograd-differentiable)."""
    return anp.logaddexp(0.0, u)


def _sigmoid(u):
    r"""Logistic sigmoid :math:`1 / (1 + e^{-u}) = \exp(-\mathrm{sp}(-u))` (autograd-differentiable).

    The softplus form keeps full relative precision for very negative ``u`` (e.g. ``u = -60`` gives
    ``exp(-60)``, where ``0.5 * (tanh(u / 2) + 1)`` would round to 0) and never overflows.
    """
    return anp.exp(-_softplus(-u))


class IdentityTransform:
    r"""Bijection for the support ``"real"``: :math:`\theta = \eta`.

    Chapter: ADVI with constraining transforms. Equation: :math:`T(\theta) = \theta`,
    :math:`\log|dT^{-1}/d\eta| = 0`. All methods act elementwise on arrays of any shape.
    """

    support = "real"

    def __repr__(self):
        return "IdentityTransform()"

    def forward(self, theta):
        r"""Constrained -> unconstrained: :math:`\eta = \theta`; ``ValueError`` for NaN or inf.

        Chapter: ADVI with constraining transforms, equation ``eq-advi-change-of-variables``.

        Parameters
        ----------
        theta : array_like
            Constrained values of any shape (at least one entry); finite real numbers inside the
            support. Anything else (NaN, inf, strings, complex numbers, ``None``, an empty array)
            raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``theta``.
        """
        theta = _values("theta", theta)
        _check_inside("theta", theta, self.contains(theta), "the support 'real' (finite values)")
        return theta

    def inverse(self, eta):
        r"""Unconstrained -> constrained: :math:`\theta = \eta`.

        Chapter: ADVI with constraining transforms, equation ``eq-advi-change-of-variables``.

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        return _values("eta", eta)

    def inverse_log_abs_det_jacobian(self, eta):
        r"""Elementwise :math:`\log|d\theta/d\eta| = 0` (same shape as ``eta``).

        Chapter: ADVI with constraining transforms, equation ``eq-advi-change-of-variables``.

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        return 0.0 * _values("eta", eta)

    def inverse_derivative(self, eta):
        r"""Elementwise :math:`d\theta/d\eta = 1` (plain numpy, same shape as ``eta``).

        Chapter: ADVI with constraining transforms, equation ``eq-advi-change-of-variables`` (the chain rule
        :math:`\partial_\eta = (d\theta/d\eta)\,\partial_\theta` that :func:`vi_course.advi`
        applies without differentiating the transform).

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        return np.ones_like(_values("eta", getval(eta)))

    def inverse_log_abs_det_jacobian_derivative(self, eta):
        r"""Elementwise :math:`\frac{d}{d\eta}\log|d\theta/d\eta| = 0` (plain numpy).

        Chapter: ADVI with constraining transforms, equation ``eq-advi-change-of-variables``.

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        return np.zeros_like(_values("eta", getval(eta)))

    def contains(self, theta):
        r"""Elementwise boolean mask: is ``theta`` inside the support (finite)?

        Chapter: ADVI with constraining transforms (the supports of the table of transforms, module
        docstring; equation ``eq-advi-change-of-variables`` needs :math:`\theta` inside the support).

        Parameters
        ----------
        theta : array_like
            Values of any shape; real numbers (NaN and inf are allowed and are outside). Strings,
            complex numbers and ``None`` raise ``ValueError``.

        Returns
        -------
        ndarray of bool
            Same shape as ``theta``.
        """
        return np.isfinite(_mask_input("theta", theta))


class ExpTransform:
    r"""Bijection for the support ``"positive"``: :math:`\theta = e^{\eta}`, :math:`\eta = \log\theta`.

    Chapter: ADVI with constraining transforms. Equation:
    :math:`\log|d\theta/d\eta| = \log e^{\eta} = \eta`. Elementwise on arrays of any shape.

    Notes
    -----
    ``inverse`` overflows to ``inf`` for :math:`\eta > 709` and underflows to 0 for
    :math:`\eta < -745` (double precision); the log-Jacobian is exact for every :math:`\eta`.
    """

    support = "positive"

    def __repr__(self):
        return "ExpTransform()"

    def forward(self, theta):
        r"""Constrained -> unconstrained: :math:`\eta = \log\theta`; ``ValueError`` unless ``theta > 0``.

        Chapter: ADVI with constraining transforms, equation ``eq-advi-log-jacobian``.

        Parameters
        ----------
        theta : array_like
            Constrained values of any shape (at least one entry); finite real numbers inside the
            support. Anything else (NaN, inf, strings, complex numbers, ``None``, an empty array)
            raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``theta``.
        """
        theta = _check_inside("theta", theta, self.contains(theta), "the support 'positive' (theta > 0)")
        return anp.log(theta)

    def inverse(self, eta):
        r"""Unconstrained -> constrained: :math:`\theta = e^{\eta}`.

        Chapter: ADVI with constraining transforms, equation ``eq-advi-log-jacobian``.

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        return anp.exp(_values("eta", eta))

    def inverse_log_abs_det_jacobian(self, eta):
        r"""Elementwise :math:`\log|d e^{\eta}/d\eta| = \eta`.

        Chapter: ADVI with constraining transforms, equation ``eq-advi-log-jacobian``.

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        return 1.0 * _values("eta", eta)

    def inverse_derivative(self, eta):
        r"""Elementwise :math:`d\theta/d\eta = e^{\eta}` (plain numpy, same shape as ``eta``).

        Chapter: ADVI with constraining transforms, equation ``eq-advi-log-jacobian``.

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        return np.exp(_values("eta", getval(eta)))

    def inverse_log_abs_det_jacobian_derivative(self, eta):
        r"""Elementwise :math:`\frac{d}{d\eta}\log|d\theta/d\eta| = \frac{d\eta}{d\eta} = 1` (plain numpy).

        Chapter: ADVI with constraining transforms, equation ``eq-advi-log-jacobian``.

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        return np.ones_like(_values("eta", getval(eta)))

    def contains(self, theta):
        r"""Elementwise boolean mask: ``0 < theta < inf``.

        Chapter: ADVI with constraining transforms (the supports of the table of transforms, module
        docstring; equation ``eq-advi-change-of-variables`` needs :math:`\theta` inside the support).

        Parameters
        ----------
        theta : array_like
            Values of any shape; real numbers (NaN and inf are allowed and are outside). Strings,
            complex numbers and ``None`` raise ``ValueError``.

        Returns
        -------
        ndarray of bool
            Same shape as ``theta``.
        """
        t = _mask_input("theta", theta)
        return np.isfinite(t) & (t > 0)


class IntervalTransform:
    r"""Bijection for the support ``("interval", a, b)``: :math:`\theta = a + (b-a)\,\sigma(\eta)`.

    Chapter: ADVI with constraining transforms. Equations:
    :math:`\eta = \log(\theta - a) - \log(b - \theta)` (the scaled logit) and
    :math:`\log|d\theta/d\eta| = \log(b-a) + \log\sigma(\eta) + \log(1-\sigma(\eta))
    = \log(b-a) - \mathrm{sp}(-\eta) - \mathrm{sp}(\eta)`.

    Parameters
    ----------
    a, b : float
        Finite ends of the open interval, ``a < b``.

    Notes
    -----
    In double precision :math:`a + (b-a)\sigma(\eta)` rounds to an end point once :math:`|\eta|` is
    large (about 37 for the unit interval), so ``inverse`` can return an end point; ``forward`` of an
    end point raises ``ValueError`` (the ends are not in the open support). The log-Jacobian stays
    finite and accurate for every finite :math:`\eta`.
    """

    def __init__(self, a, b):
        a = _finite_end("a", a)
        b = _finite_end("b", b)
        if not a < b:
            raise ValueError(f"supports: interval ('interval', a, b) needs a < b, got a={a}, b={b}")
        width = b - a                                   # Python floats: inf on overflow
        if not np.isfinite(width):
            raise ValueError(f"supports: interval ('interval', a, b) needs a finite width b - a, "
                             f"got a={a:g}, b={b:g} (b - a overflows double precision)")
        self.a, self.b = a, b
        self._log_width = float(np.log(width))
        self.support = ("interval", a, b)

    def __repr__(self):
        return f"IntervalTransform(a={self.a}, b={self.b})"

    def forward(self, theta):
        r"""Constrained -> unconstrained: :math:`\eta = \log(\theta - a) - \log(b - \theta)`.

        Chapter: ADVI with constraining transforms, equation ``eq-advi-logit-jacobian``. Raises ``ValueError`` unless ``a < theta < b``.

        Parameters
        ----------
        theta : array_like
            Constrained values of any shape (at least one entry); finite real numbers inside the
            support. Anything else (NaN, inf, strings, complex numbers, ``None``, an empty array)
            raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``theta``.
        """
        theta = _check_inside("theta", theta, self.contains(theta),
                              f"the support ('interval', {self.a}, {self.b}) (a < theta < b)")
        return anp.log(theta - self.a) - anp.log(self.b - theta)

    def inverse(self, eta):
        r"""Unconstrained -> constrained: :math:`\theta = a + (b-a)\,\sigma(\eta)`.

        Chapter: ADVI with constraining transforms, equation ``eq-advi-logit-jacobian``. For :math:`\eta > 0` it is computed as :math:`b - (b-a)\,\sigma(-\eta)` so that both ends get
        the same relative precision.

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        eta = _values("eta", eta)
        width = self.b - self.a
        return anp.where(eta > 0, self.b - width * _sigmoid(-eta), self.a + width * _sigmoid(eta))

    def inverse_log_abs_det_jacobian(self, eta):
        r"""Elementwise :math:`\log(b-a) - \mathrm{sp}(-\eta) - \mathrm{sp}(\eta)` (stable softplus form).

        Chapter: ADVI with constraining transforms, equation ``eq-advi-logit-jacobian``.

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        eta = _values("eta", eta)
        return self._log_width - _softplus(-eta) - _softplus(eta)

    def inverse_derivative(self, eta):
        r"""Elementwise :math:`d\theta/d\eta = (b-a)\,\sigma(\eta)(1-\sigma(\eta))` (plain numpy).

        Chapter: ADVI with constraining transforms, equation ``eq-advi-logit-jacobian``. Computed as
        :math:`\exp(\log(b-a) - \mathrm{sp}(-\eta) - \mathrm{sp}(\eta))`, which underflows
        gracefully to 0 in the far tails instead of producing ``0 * inf``.

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        eta = _values("eta", getval(eta))
        return np.exp(self._log_width - np.logaddexp(0.0, -eta) - np.logaddexp(0.0, eta))

    def inverse_log_abs_det_jacobian_derivative(self, eta):
        r"""Elementwise :math:`\frac{d}{d\eta}\log|d\theta/d\eta| = 1 - 2\sigma(\eta) = -\tanh(\eta/2)` (plain numpy).

        Chapter: ADVI with constraining transforms, equation ``eq-advi-logit-jacobian``. (Differentiate
        :math:`-\mathrm{sp}(-\eta) - \mathrm{sp}(\eta)`: :math:`\sigma(-\eta) - \sigma(\eta)`.)

        Parameters
        ----------
        eta : array_like
            Unconstrained values of any shape (at least one entry); finite real numbers. Anything
            else (NaN, inf, strings, complex numbers, ``None``, an empty array) raises ``ValueError``.

        Returns
        -------
        ndarray
            Same shape as ``eta``.
        """
        return -np.tanh(0.5 * _values("eta", getval(eta)))

    def contains(self, theta):
        r"""Elementwise boolean mask: ``a < theta < b``.

        Chapter: ADVI with constraining transforms (the supports of the table of transforms, module
        docstring; equation ``eq-advi-change-of-variables`` needs :math:`\theta` inside the support).

        Parameters
        ----------
        theta : array_like
            Values of any shape; real numbers (NaN and inf are allowed and are outside). Strings,
            complex numbers and ``None`` raise ``ValueError``.

        Returns
        -------
        ndarray of bool
            Same shape as ``theta``.
        """
        t = _mask_input("theta", theta)
        return np.isfinite(t) & (t > self.a) & (t < self.b)


def _finite_end(name, value):
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"supports: interval end {name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"supports: interval end {name} must be finite, got {value}")
    return value


def _check_inside(name, theta, mask, what):
    """Raise ``ValueError`` naming ``name`` if ``mask`` is not all true; return ``theta`` otherwise."""
    mask = np.asarray(mask)
    if mask.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(mask):
        t = _checks.real_array(name, getval(theta))
        bad = t[~mask] if t.ndim else t
        raise ValueError(f"{name} has value(s) outside {what}: {np.ravel(bad)[:5].tolist()}")
    return theta if _checks.is_traced(theta) else _checks.real_array(name, theta)


def get_transform(support):
    r"""Return the elementwise bijection for one coordinate's support.

    Chapter: ADVI with constraining transforms (table of transforms, :math:`\theta = T^{-1}(\eta)`).

    Parameters
    ----------
    support : str or tuple
        ``"real"``, ``"positive"`` or ``("interval", a, b)`` with finite ``a < b``.

    Returns
    -------
    IdentityTransform, ExpTransform or IntervalTransform

    Raises
    ------
    ValueError
        For an unknown support (the message lists the valid ones) or a bad interval.
    """
    if isinstance(support, str):
        if support == "real":
            return IdentityTransform()
        if support == "positive":
            return ExpTransform()
    elif isinstance(support, (tuple, list)) and len(support) == 3 and support[0] == "interval":
        return IntervalTransform(support[1], support[2])
    raise ValueError(f"supports: unknown support {support!r}; valid supports are "
                     f"{', '.join(VALID_SUPPORTS)}")


class JointTransform:
    r"""Coordinate-wise bijection :math:`T: \Theta \subseteq \mathbb{R}^d \to \mathbb{R}^d`.

    Chapter: ADVI with constraining transforms. Coordinate :math:`j` uses the elementwise map of
    ``supports[j]``; the Jacobian of :math:`T^{-1}` is diagonal, so
    :math:`\log|\det J_{T^{-1}}(\eta)| = \sum_j \log|d\theta_j/d\eta_j|`.

    Build it with :func:`from_supports`.

    Attributes
    ----------
    dim : int
        Number of coordinates :math:`d`.
    supports : list
        The normalised supports, one per coordinate.
    transforms : list
        The elementwise transforms, one per coordinate.
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        self.dim = len(self.transforms)
        self.supports = [t.support for t in self.transforms]
        # column groups for the vectorised numpy path of inverse_and_derivatives
        kinds = [type(t) for t in self.transforms]
        self._exp_cols = np.array([j for j, k in enumerate(kinds) if k is ExpTransform], dtype=int)
        self._interval_cols = np.array([j for j, k in enumerate(kinds) if k is IntervalTransform],
                                       dtype=int)
        self._other_cols = [j for j, k in enumerate(kinds)
                            if k not in (IdentityTransform, ExpTransform, IntervalTransform)]
        lows = np.array([self.transforms[j].a for j in self._interval_cols], dtype=float)
        highs = np.array([self.transforms[j].b for j in self._interval_cols], dtype=float)
        self._interval_low, self._interval_high = lows, highs
        self._interval_width = highs - lows
        self._interval_log_width = np.log(self._interval_width)
        self.is_identity = all(k is IdentityTransform for k in kinds)

    def __repr__(self):
        return f"JointTransform(supports={self.supports!r})"

    def _columns(self, name, x, fn_name):
        x = _checks.samples(name, x, self.dim)
        cols = [getattr(t, fn_name)(x[:, j]) for j, t in enumerate(self.transforms)]
        return anp.stack(cols, axis=1)

    def forward(self, theta):
        r"""Constrained -> unconstrained, :math:`\eta = T(\theta)`: ``(n, dim) -> (n, dim)``.

        Chapter: ADVI with constraining transforms (the map :math:`T` of equation
        ``eq-advi-change-of-variables``, coordinate by coordinate).

        Parameters
        ----------
        theta : array_like, shape (n, dim)
            Constrained points (a 1-D array of length ``dim`` is one point), finite.

        Returns
        -------
        ndarray, shape (n, dim)

        Raises
        ------
        ValueError
            Naming ``theta`` (and the column) if any coordinate lies outside its support, or for a
            wrong shape or non-numeric entries.
        """
        theta = _checks.samples("theta", theta, self.dim)
        for j, t in enumerate(self.transforms):
            mask = t.contains(theta[:, j])
            if not np.all(mask):
                bad = np.asarray(getval(theta))[:, j][~mask]
                raise ValueError(f"theta[:, {j}] has value(s) outside the support {t.support!r}: "
                                 f"{bad[:5].tolist()}")
        return self._columns("theta", theta, "forward")

    def inverse(self, eta):
        r"""Unconstrained -> constrained, :math:`\theta = T^{-1}(\eta)`: ``(n, dim) -> (n, dim)``.

        Chapter: ADVI with constraining transforms (:math:`T^{-1}` of equation
        ``eq-advi-change-of-variables``). Autograd-differentiable.

        Parameters
        ----------
        eta : array_like, shape (n, dim)
            Unconstrained points, finite.

        Returns
        -------
        ndarray, shape (n, dim)
        """
        return self._columns("eta", eta, "inverse")

    def inverse_log_abs_det_jacobian(self, eta):
        r""":math:`\log|\det J_{T^{-1}}(\eta)| = \sum_j \log|d\theta_j/d\eta_j|`: ``(n, dim) -> (n,)``.

        Chapter: ADVI with constraining transforms, equation ``eq-advi-jacobian-sum``.
        Autograd-differentiable.

        Parameters
        ----------
        eta : array_like, shape (n, dim)
            Unconstrained points, finite.

        Returns
        -------
        ndarray, shape (n,)
        """
        eta = _checks.samples("eta", eta, self.dim)
        total = None
        for j, t in enumerate(self.transforms):
            if t.support == "real":
                continue  # contributes log 1 = 0
            term = t.inverse_log_abs_det_jacobian(eta[:, j])
            total = term if total is None else total + term
        return 0.0 * eta[:, 0] if total is None else total

    def inverse_and_derivatives(self, eta):
        r""":math:`T^{-1}` and the derivatives the ADVI chain rule needs, in one vectorised numpy pass.

        Chapter: ADVI with constraining transforms. Because :math:`T^{-1}` acts coordinate-wise, the
        gradient of the unconstrained log density
        :math:`\log\tilde p(\eta) = \log p(T^{-1}(\eta)) + \log|\det J_{T^{-1}}(\eta)|` is

        .. math::

            \frac{\partial \log\tilde p}{\partial \eta_j}
              = \frac{\partial \log p}{\partial \theta_j}\,\frac{d\theta_j}{d\eta_j}
              + \frac{d}{d\eta_j}\log\Big|\frac{d\theta_j}{d\eta_j}\Big| ,

        so only the model has to be differentiated by :mod:`autograd`.

        Parameters
        ----------
        eta : array_like, shape (n, dim)
            Finite unconstrained points.

        Returns
        -------
        theta : ndarray, shape (n, dim)
            :math:`T^{-1}(\eta)`, equal to :meth:`inverse`.
        log_det : ndarray, shape (n,)
            :math:`\log|\det J_{T^{-1}}(\eta)|`, equal to :meth:`inverse_log_abs_det_jacobian`.
        d_theta : ndarray, shape (n, dim)
            :math:`d\theta_j/d\eta_j` (the diagonal of :math:`J_{T^{-1}}`).
        d_log_det : ndarray, shape (n, dim)
            :math:`\partial \log|\det J_{T^{-1}}(\eta)| / \partial\eta_j`.
        """
        eta = _checks.samples("eta", eta, self.dim)
        return self._inverse_and_derivatives(np.asarray(eta, dtype=float))

    def _inverse_and_derivatives(self, eta):
        """Unchecked numpy core of :meth:`inverse_and_derivatives` (``eta``: float array (n, dim))."""
        n = eta.shape[0]
        if self.is_identity:
            return eta, np.zeros(n), np.ones_like(eta), np.zeros_like(eta)
        theta = eta.copy()
        d_theta = np.ones_like(eta)
        d_log_det = np.zeros_like(eta)
        log_det = np.zeros(n)
        cols = self._exp_cols
        if cols.size:
            e = eta[:, cols]
            t = np.exp(e)
            theta[:, cols] = t
            d_theta[:, cols] = t
            d_log_det[:, cols] = 1.0
            log_det += e.sum(axis=1)
        cols = self._interval_cols
        if cols.size:
            e = eta[:, cols]
            sp_neg = np.logaddexp(0.0, -e)          # -log sigma(eta)
            sp_pos = np.logaddexp(0.0, e)           # -log(1 - sigma(eta))
            width = self._interval_width
            theta[:, cols] = np.where(e > 0, self._interval_high - width * np.exp(-sp_pos),
                                      self._interval_low + width * np.exp(-sp_neg))
            log_jac = self._interval_log_width - sp_neg - sp_pos
            d_theta[:, cols] = np.exp(log_jac)
            d_log_det[:, cols] = -np.tanh(0.5 * e)
            log_det += log_jac.sum(axis=1)
        for j in self._other_cols:                  # any other elementwise transform object
            t = self.transforms[j]
            e = eta[:, j]
            theta[:, j] = t.inverse(e)
            d_theta[:, j] = t.inverse_derivative(e)
            d_log_det[:, j] = t.inverse_log_abs_det_jacobian_derivative(e)
            log_det += t.inverse_log_abs_det_jacobian(e)
        return theta, log_det, d_theta, d_log_det

    def contains(self, theta):
        """Boolean mask of shape ``(n,)``: is every coordinate of each row inside its support?

        Chapter: ADVI with constraining transforms (the support on which equation
        ``eq-advi-change-of-variables`` holds).

        Parameters
        ----------
        theta : array_like, shape (n, dim) or (dim,)
            Real numbers; NaN and inf are allowed (they are outside every support).

        Returns
        -------
        ndarray of bool, shape (n,)
        """
        theta = _mask_input("theta", theta)
        if theta.ndim == 1:
            theta = theta[None, :]
        if theta.ndim != 2 or theta.shape[1] != self.dim:
            raise ValueError(f"theta must have shape (n_samples, {self.dim}), got {theta.shape}")
        return np.all(np.stack([t.contains(theta[:, j]) for j, t in enumerate(self.transforms)],
                               axis=1), axis=1)


def from_supports(supports):
    r"""Joint constraining transform for a model's ``supports`` list.

    Chapter: ADVI with constraining transforms (:math:`\theta = T^{-1}(\eta)` coordinate-wise).

    Parameters
    ----------
    supports : sequence
        One entry per latent coordinate: ``"real"``, ``"positive"`` or ``("interval", a, b)``.
        A single string or interval tuple is read as a one-dimensional model.

    Returns
    -------
    JointTransform
        With ``.dim``, ``.supports``, ``.forward``, ``.inverse`` and ``.inverse_log_abs_det_jacobian``.

    Raises
    ------
    ValueError
        For an empty list, an unknown support (the message lists the valid ones) or a bad interval.

    Examples
    --------
    >>> T = from_supports(["positive", "real"])
    >>> T.inverse([[0.0, 1.5]])
    array([[1. , 1.5]])
    """
    if isinstance(supports, str) or (isinstance(supports, tuple) and len(supports) == 3
                                     and supports[0] == "interval"):
        supports = [supports]
    try:
        supports = list(supports)
    except TypeError:
        raise ValueError(f"supports must be a list of supports, got {supports!r}") from None
    if not supports:
        raise ValueError("supports must name at least one coordinate")
    return JointTransform([get_transform(s) for s in supports])


def _as_transform(transform):
    if hasattr(transform, "inverse") and hasattr(transform, "inverse_log_abs_det_jacobian"):
        return transform
    try:
        return from_supports(transform)
    except ValueError as exc:
        raise ValueError(f"transform must be a transform object or a supports list: {exc}") from None


def transformed_log_density(log_density, transform):
    r"""Log density of :math:`\eta = T(\theta)` when :math:`\theta` has log density ``log_density``.

    Chapter: ADVI with constraining transforms. Equation (change of variables):

    .. math:: \log \tilde p(\eta) = \log p\big(T^{-1}(\eta)\big) + \log\big|\det J_{T^{-1}}(\eta)\big| .

    The Jacobian term enters with a **plus** sign and inside the logarithm; the ADVI page the
    chapter follows writes it with a minus sign (and once without the log), see the errata.
    ``log_density`` may be unnormalised (e.g. a model's ``log_joint``): the result is then the
    unconstrained log joint, whose integral over :math:`\mathbb{R}^d` is the same evidence.

    Parameters
    ----------
    log_density : callable
        ``theta (n, dim) -> (n,)`` for a :class:`JointTransform`, or elementwise for a
        single-coordinate transform.
    transform : JointTransform, elementwise transform, or a supports list
        The bijection :math:`T`.

    Returns
    -------
    callable
        ``eta -> log_density(T^{-1}(eta)) + inverse_log_abs_det_jacobian(eta)``, autograd-differentiable.

    Notes
    -----
    Far in the tails (e.g. :math:`|\eta| > 37` for the unit interval) :math:`T^{-1}(\eta)` rounds to
    an end of the support in double precision, where ``log_density`` may be infinite; evaluate on a
    range where the transformed density has not yet vanished numerically.
    """
    if not callable(log_density):
        raise ValueError(f"log_density must be callable, got {type(log_density).__name__}")
    transform = _as_transform(transform)

    def log_density_eta(eta):
        return log_density(transform.inverse(eta)) + transform.inverse_log_abs_det_jacobian(eta)

    log_density_eta.__doc__ = (f"Log density in unconstrained space of "
                               f"{getattr(log_density, '__name__', 'a density')} under {transform!r}.")
    return log_density_eta


def entropy_change_of_variables(entropy_eta, eta, transform):
    r"""Entropy of :math:`\theta = T^{-1}(\eta)` from the entropy of :math:`\eta` (Monte Carlo).

    Chapter: ADVI with constraining transforms. Equation:

    .. math:: H[q_\theta] = H[q_\eta] + E_{\eta \sim q_\eta}\big[\log|\det J_{T^{-1}}(\eta)|\big],

    estimated with the samples ``eta`` drawn from :math:`q_\eta`. This is why the entropy is *not*
    invariant under a change of variables (contrary to the ADVI page, see the errata), and why the
    ADVI objective :math:`E[\log p(x, T^{-1}(\eta))] + H[q_\eta] + E[\log|\det J_{T^{-1}}(\eta)|]`
    carries the Jacobian term.

    Parameters
    ----------
    entropy_eta : float
        :math:`H[q_\eta]` (e.g. the closed-form entropy of the Gaussian in unconstrained space).
    eta : array_like, shape (n_samples, dim)
        Samples from :math:`q_\eta`.
    transform : JointTransform or supports list

    Returns
    -------
    float
        The Monte Carlo estimate of :math:`H[q_\theta]`.
    """
    transform = _as_transform(transform)
    entropy_eta = float(_checks.finite_array("entropy_eta", entropy_eta, ndim=0))
    eta = _checks.samples("eta", eta, transform.dim)
    return entropy_eta + float(np.mean(transform.inverse_log_abs_det_jacobian(eta)))
