r"""Monte Carlo estimators of the ELBO gradient (chapters "Stochastic gradients" and "REINFORCE").

Both estimators return an unbiased estimate of :math:`\nabla_\theta \mathrm{ELBO}(\theta)` with
respect to the family's flat parameter vector: the **ascent** direction (add it to climb the ELBO,
subtract it to descend the loss :func:`vi_course.elbo.negative_elbo`).

* :func:`reparam_grad` differentiates through the sampler :math:`z = f_\theta(\epsilon)`
  (lecture eq. 42-43).
* :func:`score_function_grad` (REINFORCE) needs only :math:`\log q_\theta` and its gradient:

  .. math:: \nabla_\theta \mathrm{ELBO} = E_{q_\theta}\big[\nabla_\theta \log q_\theta(z)\,
            (\log p(z, D) - \log q_\theta(z) - b)\big],

  valid for any baseline :math:`b` that does not depend on :math:`z` because
  :math:`E_{q_\theta}[\nabla_\theta \log q_\theta(z)] = 0`.

  Derivation: for :math:`g_\theta(z) = \log p(z, D) - \log q_\theta(z)`,
  :math:`\nabla_\theta E_{q_\theta}[g_\theta] = E_{q_\theta}[g_\theta \nabla_\theta\log q_\theta] +
  E_{q_\theta}[\nabla_\theta g_\theta]`, and :math:`E_{q_\theta}[\nabla_\theta g_\theta] =
  -E_{q_\theta}[\nabla_\theta \log q_\theta] = 0`. The lecture's eq. 52-53 instead average
  :math:`\nabla_\theta((\log q_\theta + 1)\, g_\theta)`, which is biased (see the errata; the test
  suite checks the bias numerically).
"""
from __future__ import annotations

from typing import NamedTuple

import autograd
import autograd.numpy as anp
import numpy as np

from . import _checks
from .elbo import (_check_entropy, _check_family, _eval_log_joint, _log_joint_fn,
                   elbo_from_noise)

__all__ = ["reparam_grad", "reparam_grad_samples", "score_function_grad",
           "score_function_grad_samples", "gradient_variance", "GradientStats", "ESTIMATORS"]

ESTIMATORS = ("reparam", "score_function")
_LOO_NAMES = ("mean", "leave_one_out")


def _prepare(log_joint, family, params):
    log_joint = _log_joint_fn(log_joint)
    family = _check_family(family)
    params = family._check_params(params, allow_batch=False)
    return log_joint, family, params


def reparam_grad(log_joint, family, params, n, rng, entropy="closed_form"):
    r"""Reparameterisation estimate of the ELBO gradient (ascent direction).

    Chapter: Stochastic gradients (lecture eq. 43, with the sign of the ELBO, not of the loss of
    eq. 44). With :math:`\epsilon_k \sim N(0, I)` and :math:`z_k = \mu + L\epsilon_k`,

    .. math:: \hat g = \nabla_\theta\Big[\frac1n\sum_{k=1}^n \log p(f_\theta(\epsilon_k), D)
              + H[q_\theta]\Big]

    computed by :mod:`autograd` through the sampler. It is unbiased for
    :math:`\nabla_\theta\mathrm{ELBO}`. With ``entropy="monte_carlo"`` the entropy term is replaced
    by :math:`-\frac1n\sum_k \log q_\theta(f_\theta(\epsilon_k))` (also unbiased).

    Parameters
    ----------
    log_joint : callable or model
        ``z (n, dim) -> (n,)``, written with :mod:`autograd.numpy`.
    family : MeanFieldGaussian or FullRankGaussian
    params : array_like, shape (family.n_params,)
    n : int
        Number of Monte Carlo samples, >= 1.
    rng : numpy.random.Generator or int
    entropy : {"closed_form", "monte_carlo"}

    Returns
    -------
    ndarray, shape (family.n_params,)
    """
    log_joint, family, params = _prepare(log_joint, family, params)
    _check_entropy(entropy)
    eps = family.noise(n, rng)
    grad = autograd.grad(lambda p: elbo_from_noise(log_joint, family, p, eps, entropy))(params)
    return np.asarray(grad, dtype=float)


def reparam_grad_samples(log_joint, family, params, n, rng, entropy="closed_form"):
    r"""Per-sample terms of the reparameterisation estimator; their row mean is :func:`reparam_grad`.

    Chapter: Stochastic gradients (the summands of lecture eq. 43). Row :math:`k` is
    :math:`\nabla_\theta[\log p(f_\theta(\epsilon_k), D) + H[q_\theta]]` (or
    :math:`-\log q_\theta(f_\theta(\epsilon_k))` in place of the entropy with
    ``entropy="monte_carlo"``): a single-sample gradient estimate. Useful to plot the spread of
    the estimator. All rows are computed in one backward pass.

    Parameters
    ----------
    log_joint, family, params, n, rng, entropy
        As in :func:`reparam_grad`.

    Returns
    -------
    ndarray, shape (n, family.n_params)
    """
    log_joint, family, params = _prepare(log_joint, family, params)
    _check_entropy(entropy)
    eps = family.noise(n, rng)
    batch = np.tile(params, (eps.shape[0], 1))

    def total(P):
        z = family.sample_from_noise(P, eps)
        lj = _eval_log_joint(log_joint, z)
        if entropy == "closed_form":
            return anp.sum(lj + family.entropy(P))
        return anp.sum(lj - family.log_prob(P, z))

    return np.asarray(autograd.grad(total)(batch), dtype=float)


def _signal_and_weights(log_joint, family, params, z, baseline):
    """Learning signal ``f = log p - log q`` and the centred weights ``f - b``."""
    signal = np.asarray(_eval_log_joint(log_joint, z) - family.log_prob(params, z), dtype=float)
    n = signal.shape[0]
    if baseline is None:
        return signal, signal
    if isinstance(baseline, str):
        if baseline not in _LOO_NAMES:
            raise ValueError(f"baseline must be None, a number, or one of {_LOO_NAMES}, "
                             f"got {baseline!r}")
        if n < 2:
            raise ValueError(f"baseline={baseline!r} (leave-one-out) needs n >= 2 samples, got n={n}")
        loo = (signal.sum() - signal) / (n - 1)
        return signal, signal - loo
    b = float(_checks.finite_array("baseline", baseline, ndim=0))
    return signal, signal - b


def score_function_grad(log_joint, family, params, n, rng, baseline=None):
    r"""Score-function (REINFORCE) estimate of the ELBO gradient (ascent direction).

    Chapter: REINFORCE (the corrected form of lecture eq. 52-53). With :math:`z_k \sim q_\theta`
    drawn without a path to :math:`\theta`,

    .. math:: \hat g = \frac1n\sum_{k=1}^n \nabla_\theta\log q_\theta(z_k)\,
              \big(\log p(z_k, D) - \log q_\theta(z_k) - b_k\big).

    Unbiased for :math:`\nabla_\theta\mathrm{ELBO}` whenever :math:`b_k` is independent of
    :math:`z_k`, because :math:`E_q[\nabla_\theta \log q_\theta] = 0`; a good baseline only lowers
    the variance. The lecture's :math:`\nabla_\theta((\log q_\theta + 1) g_\theta)` is *not* this
    estimator and is biased.

    Parameters
    ----------
    log_joint : callable or model
        ``z (n, dim) -> (n,)``; it is never differentiated, so it need not be autograd-compatible.
    family : MeanFieldGaussian or FullRankGaussian
    params : array_like, shape (family.n_params,)
    n : int
        Number of Monte Carlo samples, >= 1.
    rng : numpy.random.Generator or int
    baseline : None, float, "mean" or "leave_one_out"
        Control variate subtracted from the learning signal. ``None``: no baseline. A number:
        a fixed :math:`b`. ``"mean"`` / ``"leave_one_out"`` (same thing): :math:`b_k` is the mean of
        the other :math:`n-1` learning signals, which is independent of :math:`z_k` and so keeps the
        estimator unbiased (the plain mean including sample :math:`k` would bias it by
        :math:`O(1/n)`). Needs ``n >= 2``.

    Returns
    -------
    ndarray, shape (family.n_params,)
    """
    log_joint, family, params = _prepare(log_joint, family, params)
    z = family.sample(params, n, rng)
    _, weights = _signal_and_weights(log_joint, family, params, z, baseline)
    # weights are constants: one backward pass gives sum_k w_k grad log q(z_k)
    grad = autograd.grad(lambda p: anp.dot(weights, family.log_prob(p, z)))(params)
    return np.asarray(grad, dtype=float) / z.shape[0]


def score_function_grad_samples(log_joint, family, params, n, rng, baseline=None):
    r"""Per-sample terms of :func:`score_function_grad`; their row mean is the estimate.

    Chapter: REINFORCE. Row :math:`k` is
    :math:`\nabla_\theta\log q_\theta(z_k)(\log p(z_k, D) - \log q_\theta(z_k) - b_k)`.
    With the leave-one-out baseline the rows are (weakly) dependent.

    Parameters
    ----------
    log_joint, family, params, n, rng, baseline
        As in :func:`score_function_grad`.

    Returns
    -------
    ndarray, shape (n, family.n_params)
    """
    log_joint, family, params = _prepare(log_joint, family, params)
    z = family.sample(params, n, rng)
    _, weights = _signal_and_weights(log_joint, family, params, z, baseline)
    batch = np.tile(params, (z.shape[0], 1))
    grads = autograd.grad(lambda P: anp.sum(family.log_prob(P, z)))(batch)
    return np.asarray(grads, dtype=float) * weights[:, None]


class GradientStats(NamedTuple):
    r"""Result of :func:`gradient_variance`: per-parameter ``mean``, ``variance``, ``std_error``, ``n_repeats``.

    Chapter: Stochastic gradients (the spread of the estimator of lecture eq. 43 and of the
    corrected eq. 53).
    """

    mean: np.ndarray
    variance: np.ndarray
    std_error: np.ndarray
    n_repeats: int


def gradient_variance(log_joint, family, params, n, rng, estimator="reparam", n_repeats=200,
                      **kwargs):
    r"""Mean and variance, per parameter, of an ELBO gradient estimator with ``n`` samples.

    Chapter: Stochastic gradients / REINFORCE (comparing the variance of lecture eq. 43 and of the
    corrected eq. 53). Runs the estimator ``n_repeats`` times independently.

    Parameters
    ----------
    log_joint, family, params, n, rng
        As in :func:`reparam_grad`.
    estimator : {"reparam", "score_function"}
    n_repeats : int
        Number of independent repetitions, >= 2.
    **kwargs
        Passed on (``entropy=`` for ``"reparam"``, ``baseline=`` for ``"score_function"``).

    Returns
    -------
    GradientStats
        ``mean`` and ``variance`` (both shape (n_params,)) of the estimator across repetitions,
        ``std_error = sqrt(variance / n_repeats)`` of that mean, and ``n_repeats``.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    n_repeats = _checks.positive_int("n_repeats", n_repeats, minimum=2)
    rng = _checks.generator(rng)
    fn = reparam_grad if estimator == "reparam" else score_function_grad
    draws = np.array([fn(log_joint, family, params, n, rng, **kwargs) for _ in range(n_repeats)])
    var = draws.var(axis=0, ddof=1)
    return GradientStats(mean=draws.mean(axis=0), variance=var,
                         std_error=np.sqrt(var / n_repeats), n_repeats=n_repeats)
