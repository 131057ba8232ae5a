r"""The evidence lower bound and its decompositions (chapters "Gaussian VI" and "Stochastic gradients").

Sign convention (written once, kept everywhere): :func:`elbo` returns the ELBO, a lower bound on
:math:`\log p(D)` that variational inference **maximises**; :func:`negative_elbo` returns the loss
:math:`-\mathrm{ELBO}` that a minimiser descends. Gradients in :mod:`vi_course.gradients` are
gradients of the ELBO (ascent directions).

.. math::

    \mathrm{ELBO}(\theta) = E_{z \sim q_\theta}[\log p(z, D) - \log q_\theta(z)]
                          = E_{q_\theta}[\log p(z, D)] + H[q_\theta]
                          = E_{q_\theta}[\log p(D \mid z)] - \mathrm{KL}(q_\theta \,\|\, p(z))
                          = \log p(D) - \mathrm{KL}(q_\theta \,\|\, p(z \mid D)).

(lecture eqs. 10, 20 and 29-31).
"""
from __future__ import annotations

from typing import NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from . import _checks
from .divergences import kl_gaussian
from .families import GaussianFamily

__all__ = ["elbo", "negative_elbo", "elbo_from_noise", "log_weights",
           "elbo_decomposition", "ELBODecomposition", "ENTROPY_ESTIMATORS"]

ENTROPY_ESTIMATORS = ("closed_form", "monte_carlo")


def _log_joint_fn(log_joint):
    """Accept a callable ``z (n, dim) -> (n,)`` or a model with a ``log_joint`` method."""
    if callable(log_joint):
        return log_joint
    if hasattr(log_joint, "log_joint") and callable(log_joint.log_joint):
        return log_joint.log_joint
    raise ValueError("log_joint must be a callable z (n, dim) -> (n,) or a model with a log_joint "
                     f"method, got {type(log_joint).__name__}")


def _check_family(family):
    if not isinstance(family, GaussianFamily):
        raise ValueError("family must be a vi_course.families.MeanFieldGaussian or FullRankGaussian, "
                         f"got {type(family).__name__}")
    return family


def _check_entropy(entropy):
    if entropy not in ENTROPY_ESTIMATORS:
        raise ValueError(f"entropy must be one of {ENTROPY_ESTIMATORS}, got {entropy!r}")
    return entropy


def _eval_log_joint(log_joint, z):
    """Call ``log_joint`` and check that it returned a finite (n,) array."""
    n = np.shape(z)[0]
    value = log_joint(z)
    if np.shape(value) != (n,):
        raise ValueError(f"log_joint must map z of shape (n, dim) to shape (n,); for n={n} it "
                         f"returned shape {np.shape(value)}")
    raw = _checks.output_array("log_joint", getval(value))
    if not np.all(np.isfinite(raw)):
        bad = np.asarray(getval(z))[~np.isfinite(raw)][:3]
        raise ValueError("log_joint returned non-finite values (NaN or inf) at some samples, e.g. "
                         f"z = {bad.tolist()}; is q putting mass outside the model's support? "
                         "(vi_course.advi transforms constrained models to an unconstrained space)")
    return value


def log_weights(log_joint, family, params, eps):
    r"""Per-sample log importance weights :math:`\log w_k = \log p(z_k, D) - \log q_\theta(z_k)`.

    Chapter: Gaussian VI (lecture eq. 11: the ELBO is the average of the :math:`\log w_k`), with
    :math:`z_k = f_\theta(\epsilon_k)` reparameterised so the result is autograd-differentiable.

    Parameters
    ----------
    log_joint : callable or model
        ``z (n, dim) -> (n,)``: the log joint :math:`\log p(z, D)`.
    family : MeanFieldGaussian or FullRankGaussian
    params : array_like, shape (n_params,)
    eps : array_like, shape (n, dim)
        Standard normal noise from ``family.noise``.

    Returns
    -------
    ndarray, shape (n,)
    """
    log_joint = _log_joint_fn(log_joint)
    family = _check_family(family)
    z = family.sample_from_noise(params, eps)
    return _eval_log_joint(log_joint, z) - family.log_prob(params, z)


def elbo_from_noise(log_joint, family, params, eps, entropy="closed_form"):
    r"""Reparameterised Monte Carlo ELBO for fixed noise ``eps``; differentiable in ``params``.

    Chapter: Stochastic gradients (lecture eq. 41-43; its gradient is the reparameterisation
    estimator of eq. 43). With :math:`z_k = \mu + L\epsilon_k`:

    * ``entropy="closed_form"`` (default, the ADVI estimator):
      :math:`\frac1K\sum_k \log p(z_k, D) + H[q_\theta]`;
    * ``entropy="monte_carlo"`` (lecture eq. 11):
      :math:`\frac1K\sum_k [\log p(z_k, D) - \log q_\theta(z_k)]`.

    Both are unbiased for the ELBO. The second has zero variance when :math:`q_\theta` equals the
    posterior (every :math:`\log w_k = \log p(D)`, lecture eq. 14); the first has lower variance when
    :math:`q_\theta` is far from it.

    Parameters
    ----------
    log_joint : callable or model
    family : MeanFieldGaussian or FullRankGaussian
    params : array_like, shape (n_params,)
    eps : array_like, shape (n, dim)
    entropy : {"closed_form", "monte_carlo"}

    Returns
    -------
    float (an autograd scalar when differentiated)
    """
    log_joint = _log_joint_fn(log_joint)
    family = _check_family(family)
    _check_entropy(entropy)
    params = family._check_params(params, allow_batch=False)
    z = family.sample_from_noise(params, eps)
    lj = _eval_log_joint(log_joint, z)
    if entropy == "closed_form":
        return anp.mean(lj) + family.entropy(params)
    return anp.mean(lj - family.log_prob(params, z))


def elbo(log_joint, family, params, n, rng, entropy="closed_form"):
    r"""Monte Carlo estimate of the ELBO, the quantity variational inference **maximises**.

    Chapter: Gaussian VI (lecture eq. 10-11 and 29). Draws :math:`z_k \sim q_\theta`,
    :math:`k = 1..n`, and returns

    .. math:: \widehat{\mathrm{ELBO}} = \frac1n\sum_{k=1}^n \log p(z_k, D) + H[q_\theta]

    with the closed-form Gaussian entropy (``entropy="closed_form"``), or
    :math:`\frac1n\sum_k[\log p(z_k, D) - \log q_\theta(z_k)]` (``entropy="monte_carlo"``).
    Both estimators are unbiased; see :func:`elbo_from_noise` for when each has lower variance.

    Parameters
    ----------
    log_joint : callable or model
        ``z (n, dim) -> (n,)``: the log joint :math:`\log p(z, D)`; a model with a ``log_joint``
        method is accepted too.
    family : MeanFieldGaussian or FullRankGaussian
    params : array_like, shape (family.n_params,)
    n : int
        Number of Monte Carlo samples, >= 1.
    rng : numpy.random.Generator or int
    entropy : {"closed_form", "monte_carlo"}

    Returns
    -------
    float

    Examples
    --------
    >>> from vi_course.models import ConjugateGaussian
    >>> from vi_course.families import MeanFieldGaussian
    >>> model = ConjugateGaussian([0.3, -0.1, 0.8])
    >>> fam = MeanFieldGaussian(1)
    >>> mean, cov = model.posterior()
    >>> at_posterior = fam.pack(mean, np.sqrt(np.diag(cov)))
    >>> bool(np.isclose(elbo(model.log_joint, fam, at_posterior, 10, 0, entropy="monte_carlo"),
    ...                 model.log_evidence()))
    True
    """
    family = _check_family(family)
    eps = family.noise(n, rng)
    return float(elbo_from_noise(log_joint, family, params, eps, entropy=entropy))


def negative_elbo(log_joint, family, params, n, rng, entropy="closed_form"):
    r"""The loss :math:`-\widehat{\mathrm{ELBO}}` (to **minimise**); same estimator as :func:`elbo`.

    Chapter: Stochastic gradients (the lecture minimises the negative ELBO, eq. 28 and 44).

    Parameters
    ----------
    log_joint, family, params, n, rng, entropy
        As in :func:`elbo`.

    Returns
    -------
    float
    """
    return -elbo(log_joint, family, params, n, rng, entropy=entropy)


class ELBODecomposition(NamedTuple):
    """Result of :func:`elbo_decomposition`: ``elbo = expected_log_likelihood - kl``.

    Chapter: Gaussian VI (lecture eq. 31).
    """

    elbo: float
    expected_log_likelihood: float
    kl: float
    kl_method: str


def _gaussian_prior(model):
    """``(mean, cov)`` of a Gaussian prior if the model exposes one, else ``None``."""
    if hasattr(model, "prior_mean_cov"):
        mean, cov = model.prior_mean_cov()
        return np.atleast_1d(np.asarray(mean, float)), np.atleast_2d(np.asarray(cov, float))
    from .models.gaussian import ConjugateGaussian
    if isinstance(model, ConjugateGaussian):
        return np.zeros(1), np.array([[model.prior_var]])
    return None


def elbo_decomposition(model, family, params, n, rng):
    r"""Split the ELBO into expected log likelihood and KL divergence to the prior.

    Chapter: Gaussian VI, "Making sense of the ELBO" (lecture eq. 31):

    .. math:: \mathrm{ELBO}(\theta) = E_{q_\theta}[\log p(D \mid z)] - \mathrm{KL}(q_\theta \,\|\, p(z)).

    (The lecture's eq. 33 defines :math:`\mathcal L_{lk}` with a minus sign, which contradicts
    eq. 31-32; here the first term is the expected log likelihood itself, a quantity to increase.)

    The expected log likelihood is a Monte Carlo average over ``n`` samples of :math:`q_\theta`.
    The KL term is exact (:func:`vi_course.divergences.kl_gaussian`) when the model has a Gaussian prior the library can
    read (a ``prior_mean_cov()`` method, or :class:`~vi_course.models.ConjugateGaussian`), and
    otherwise the Monte Carlo average of :math:`\log q_\theta(z) - \log p(z)` over the same samples.

    Parameters
    ----------
    model : object
        Needs ``dim``, ``log_prior(z)`` and ``log_likelihood(z)`` (each ``(n, dim) -> (n,)``).
    family : MeanFieldGaussian or FullRankGaussian
        Must have ``family.dim == model.dim``.
    params : array_like, shape (family.n_params,)
    n : int
        Number of Monte Carlo samples, >= 1.
    rng : numpy.random.Generator or int

    Returns
    -------
    ELBODecomposition
        Named tuple ``(elbo, expected_log_likelihood, kl, kl_method)`` with
        ``elbo == expected_log_likelihood - kl`` and ``kl_method`` ``"closed_form"`` or
        ``"monte_carlo"``.
    """
    family = _check_family(family)
    for attr in ("log_prior", "log_likelihood"):
        if not callable(getattr(model, attr, None)):
            raise ValueError(f"model must have a {attr}(z) method to split the ELBO into likelihood "
                             f"and prior terms; {type(model).__name__} has none")
    if getattr(model, "dim", None) != family.dim:
        raise ValueError(f"family.dim ({family.dim}) must equal model.dim "
                         f"({getattr(model, 'dim', None)})")
    params = family._check_params(params, allow_batch=False)
    z = family.sample(params, n, rng)
    ell = float(np.mean(_eval_log_joint(model.log_likelihood, z)))
    prior = _gaussian_prior(model)
    if prior is not None:
        mean_q, cov_q = family.mean_cov(params)
        kl = kl_gaussian(mean_q, cov_q, prior[0], prior[1])
        method = "closed_form"
    else:
        kl = float(np.mean(family.log_prob(params, z) - _eval_log_joint(model.log_prior, z)))
        method = "monte_carlo"
    return ELBODecomposition(elbo=ell - kl, expected_log_likelihood=ell, kl=kl, kl_method=method)
