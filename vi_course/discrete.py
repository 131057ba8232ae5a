r"""Discrete variational families, a discrete-latent model, and REINFORCE for them (chapter "REINFORCE").

A discrete latent variable cannot be reparameterised: a sample such as :math:`z = 1[u < p]` is a
step function of the parameters, so its derivative is zero wherever it exists and the
reparameterisation gradient of :mod:`vi_course.gradients` does not apply. The score-function
(REINFORCE) estimator needs only :math:`\log q_\theta(z)` and its gradient, the *score*:

.. math::

    \nabla_\theta \mathrm{ELBO}(\theta) = E_{z \sim q_\theta}\big[(\log p(z, D) - \log q_\theta(z) - b)
        \,\nabla_\theta \log q_\theta(z)\big]

for any baseline :math:`b` that does not depend on :math:`z`, because
:math:`E_{q_\theta}[\nabla_\theta \log q_\theta(z)] = 0` (chapter equations ``eq-reinforce-elbo`` and
``eq-score-mean-zero``; the corrected form of lecture eq. 52-53).

Both families keep their parameters in one flat, unconstrained numpy vector of **logits**:

* ``Categorical(K)``: ``K`` logits :math:`\ell`, :math:`q(k) = e^{\ell_k} / \sum_j e^{\ell_j}`;
  samples are ints of shape ``(n, 1)`` with values in ``0..K-1``.
* ``MeanFieldBernoulli(d)``: ``d`` logits, :math:`q(z_j = 1) = 1 / (1 + e^{-\ell_j})`; samples are
  ints of shape ``(n, d)`` with values in ``{0, 1}``.

Because the latent space is finite, everything can also be computed *exactly* by enumerating it
(:meth:`support`): :func:`exact_elbo`, :func:`exact_elbo_grad` and :func:`enumerate_posterior`.
That is what makes discrete toy problems good test beds for stochastic estimators.
"""
from __future__ import annotations

from typing import NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd.scipy.special import logsumexp as anp_logsumexp
from scipy.special import expit, logsumexp

from . import _checks
from .elbo import _eval_log_joint, _log_joint_fn
from .gradients import _signal_and_weights

__all__ = ["Categorical", "MeanFieldBernoulli", "DiscreteFamily", "ChangePoint",
           "score_function_grad", "score_function_grad_samples", "exact_elbo", "exact_elbo_grad",
           "enumerate_posterior", "EnumeratedPosterior", "MAX_SUPPORT"]

MAX_SUPPORT = 1 << 16
"""Largest number of latent states :meth:`DiscreteFamily.support` enumerates."""

LOG_2PI = float(np.log(2.0 * np.pi))


def _is_traced(x):
    return type(x).__module__.startswith("autograd")


def _lse(v):
    """Fast log-sum-exp of a 1-D array (scipy's is slow on tiny arrays); autograd's when traced."""
    if _is_traced(v):
        return anp_logsumexp(v)
    top = np.max(v)
    return top + np.log(np.sum(np.exp(v - top)))


def _integer_samples(name, z, dim, n_values):
    """``z`` as an int array (n, dim) with entries in ``0..n_values-1``; ``ValueError`` otherwise."""
    if isinstance(z, np.ndarray) and z.ndim == 2 and np.issubdtype(z.dtype, np.integer):
        # fast path for integer arrays (the families' own samples): shape and range only
        if z.shape[1] != dim or z.shape[0] == 0:
            raise ValueError(f"{name} must have shape (n_samples, {dim}) with n_samples >= 1, got {z.shape}")
        if z.size and (z.min() < 0 or z.max() > n_values - 1):
            raise ValueError(f"{name} must contain integers in 0..{n_values - 1}, got values in "
                             f"[{z.min()}, {z.max()}]")
        return z.astype(np.int64, copy=False)
    arr = _checks.finite_array(name, z, ndim=(1, 2))
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.shape[1] != dim or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n_samples, {dim}) with n_samples >= 1, got {arr.shape}")
    if np.any(arr != np.round(arr)):
        raise ValueError(f"{name} must contain integers (discrete states), got non-integer values")
    if np.any(arr < 0) or np.any(arr > n_values - 1):
        raise ValueError(f"{name} must contain integers in 0..{n_values - 1}, got values in "
                         f"[{arr.min():g}, {arr.max():g}]")
    return arr.astype(np.int64)


class DiscreteFamily:
    r"""Shared machinery of the discrete families (not used directly).

    Chapter: REINFORCE. Subclasses define the parameter layout, sampling, the log mass function
    and the score :math:`\nabla_\theta \log q_\theta(z)` of equation ``eq-rf-estimator``.
    """

    name = "discrete"

    def __repr__(self):
        return f"{type(self).__name__}({self._size})"

    def __eq__(self, other):
        return type(self) is type(other) and self._size == other._size

    def __hash__(self):
        return hash((type(self).__name__, self._size))

    def _check_params(self, params):
        """Return ``params`` as a float vector of shape (n_params,); autograd boxes pass by shape."""
        if _is_traced(params):
            shape = np.shape(params)
        else:
            params = _checks.finite_array("params", params, ndim=1)
            shape = params.shape
        if shape != (self.n_params,):
            raise ValueError(f"params must have shape ({self.n_params},) for {self!r} "
                             f"(layout: {self.layout}), got shape {shape}")
        return params

    def probs_of_support(self, params):
        r"""The probabilities :math:`q_\theta(s)` of every state ``s`` of :meth:`support`, in order.

        Chapter: REINFORCE (exact expectations by enumeration, equation ``eq-rf-enumeration``).

        Parameters
        ----------
        params : array_like, shape (n_params,)
            The family's logits, finite.

        Returns
        -------
        ndarray, shape (n_states,)
        """
        return np.exp(np.asarray(self.log_prob(params, self.support()), dtype=float))


class Categorical(DiscreteFamily):
    r"""One categorical latent :math:`z \in \{0, \dots, K-1\}` with :math:`q_\theta(k) = e^{\ell_k} / \sum_j e^{\ell_j}`.

    Chapter: REINFORCE (the variational family of the change-point example). The parameters are
    the ``K`` logits :math:`\ell`; adding a constant to all of them leaves :math:`q` unchanged, so
    every ELBO gradient sums to zero over its entries. The score is
    :math:`\nabla_\ell \log q_\theta(k) = e_k - q_\theta`, with :math:`e_k` the one-hot vector of
    :math:`k`. Samples have shape ``(n, 1)`` (``dim = 1``) and integer dtype.

    Parameters
    ----------
    n_categories : int
        Number of states :math:`K`, >= 2.

    Examples
    --------
    >>> fam = Categorical(3)
    >>> params = fam.pack([0.2, 0.3, 0.5])
    >>> np.round(fam.unpack(params), 12)
    array([0.2, 0.3, 0.5])
    >>> fam.score(params, [[2]])
    array([[-0.2, -0.3,  0.5]])
    """

    name = "categorical"
    layout = "[logits (n_categories)]"
    dim = 1

    def __init__(self, n_categories):
        self.n_categories = _checks.positive_int("n_categories", n_categories, minimum=2)
        self._size = self.n_categories

    @property
    def n_params(self):
        r"""Length of the parameter vector: ``n_categories`` (one logit :math:`\ell_k` per state).

        Chapter: REINFORCE (the categorical family :math:`q_\theta(k) = e^{\ell_k}/\sum_j e^{\ell_j}`).
        """
        return self.n_categories

    def pack(self, probs):
        r"""Logits :math:`\ell_k = \log q(k)` of the categorical distribution with probabilities ``probs``.

        Chapter: REINFORCE (the inverse of the softmax :math:`q_\theta(k) = e^{\ell_k}/\sum_j e^{\ell_j}`).

        Parameters
        ----------
        probs : array_like, shape (n_categories,)
            Positive probabilities that sum to 1 (within 1e-9).

        Returns
        -------
        ndarray, shape (n_categories,)
            ``log(probs)``.
        """
        probs = _checks.finite_array("probs", probs, ndim=1)
        if probs.shape != (self.n_categories,):
            raise ValueError(f"probs must have shape ({self.n_categories},), got {probs.shape}")
        if np.any(probs <= 0):
            raise ValueError("probs must be > 0 (logits of a zero probability are -inf)")
        if abs(probs.sum() - 1.0) > 1e-9:
            raise ValueError(f"probs must sum to 1, got sum {probs.sum()}")
        return np.log(probs)

    def unpack(self, params):
        r"""The probabilities :math:`q_\theta(0), \dots, q_\theta(K-1)` (the softmax of the logits).

        Chapter: REINFORCE: :math:`q_\theta(k) = e^{\ell_k}/\sum_j e^{\ell_j}`.

        Parameters
        ----------
        params : array_like, shape (n_categories,)
            Logits, finite.

        Returns
        -------
        ndarray, shape (n_categories,)
        """
        params = self._check_params(params)
        return np.exp(params - _lse(params))

    def init_params(self):
        r"""Logits of the uniform distribution :math:`q(k) = 1/K` (all zero).

        Chapter: REINFORCE (the starting point of the fits, equation ``eq-rf-estimator``).

        Returns
        -------
        ndarray, shape (n_categories,)
        """
        return np.zeros(self.n_categories)

    def sample(self, params, n, rng):
        r"""Draw ``n`` states from :math:`q_\theta` (inverse CDF of one uniform per draw).

        Chapter: REINFORCE. Nudging ``params`` a little and drawing again with the same seed
        gives the same states almost always: the sample is a step function of the parameters.

        Parameters
        ----------
        params : array_like, shape (n_categories,)
        n : int
            Number of samples, >= 1.
        rng : numpy.random.Generator or int

        Returns
        -------
        ndarray of int, shape (n, 1)
        """
        probs = self.unpack(params)
        n = _checks.positive_int("n", n)
        u = _checks.generator(rng).random(n)
        k = np.searchsorted(np.cumsum(probs), u, side="right")
        return np.minimum(k, self.n_categories - 1)[:, None]

    def log_prob(self, params, z):
        r"""Log mass :math:`\log q_\theta(k) = \ell_k - \log\sum_j e^{\ell_j}` for a batch of states.

        Chapter: REINFORCE. Differentiable in ``params`` with :mod:`autograd`.

        Parameters
        ----------
        params : array_like, shape (n_categories,)
        z : array_like of int, shape (n, 1)

        Returns
        -------
        ndarray, shape (n,)
        """
        params = self._check_params(params)
        k = _integer_samples("z", z, 1, self.n_categories)[:, 0]
        return params[k] - _lse(params)

    def score(self, params, z):
        r"""Score :math:`\nabla_\ell \log q_\theta(k) = e_k - q_\theta` for each state of a batch.

        Chapter: REINFORCE (the factor :math:`\nabla_\theta \log q_\theta(z)` of
        ``eq-reinforce-estimator``).

        Parameters
        ----------
        params : array_like, shape (n_categories,)
        z : array_like of int, shape (n, 1)

        Returns
        -------
        ndarray, shape (n, n_categories)
        """
        probs = self.unpack(params)
        k = _integer_samples("z", z, 1, self.n_categories)[:, 0]
        out = -np.tile(probs, (k.size, 1))
        out[np.arange(k.size), k] += 1.0
        return out

    def entropy(self, params):
        r"""Entropy :math:`H[q_\theta] = -\sum_k q_\theta(k) \log q_\theta(k)` (in nats).

        Chapter: REINFORCE (the entropy term of the ELBO, equation ``eq-rf-reinforce-elbo``).

        Parameters
        ----------
        params : array_like, shape (n_categories,)
            Logits, finite.

        Returns
        -------
        float
        """
        params = self._check_params(params)
        log_q = params - _lse(params)
        return float(-np.sum(np.exp(log_q) * log_q))

    def support(self):
        r"""All states ``0..K-1`` as an int array of shape (K, 1).

        Chapter: REINFORCE (the sum over states of equation ``eq-rf-enumeration``).

        Returns
        -------
        ndarray of int, shape (K, 1)
        """
        return np.arange(self.n_categories)[:, None]


class MeanFieldBernoulli(DiscreteFamily):
    r"""Independent binary latents: :math:`q_\theta(z) = \prod_j p_j^{z_j}(1-p_j)^{1-z_j}`, :math:`p_j = \sigma(\ell_j)`.

    Chapter: REINFORCE (the simplest latent that cannot be reparameterised). The parameters are
    the ``dim`` logits :math:`\ell_j = \log(p_j / (1 - p_j))`, and the score is
    :math:`\partial \log q_\theta(z) / \partial \ell_j = z_j - p_j`. Samples are
    :math:`z_j = 1[u_j < p_j]` with :math:`u_j` uniform, an integer array of shape ``(n, dim)``.

    Parameters
    ----------
    dim : int
        Number of binary latents, >= 1.

    Examples
    --------
    >>> fam = MeanFieldBernoulli(2)
    >>> params = fam.pack([0.5, 0.8])
    >>> np.round(fam.score(params, [[1, 0]]), 12)
    array([[ 0.5, -0.8]])
    """

    name = "bernoulli"
    layout = "[logits (dim)]"

    def __init__(self, dim):
        self.dim = _checks.positive_int("dim", dim)
        self._size = self.dim

    @property
    def n_params(self):
        r"""Length of the parameter vector: ``dim`` (one logit :math:`\ell_j` per binary latent).

        Chapter: REINFORCE (the family of equation ``eq-rf-bernoulli-grad``).
        """
        return self.dim

    def pack(self, probs):
        r"""Logits :math:`\log(p / (1 - p))` of the success probabilities ``probs``.

        Chapter: REINFORCE (the inverse of :math:`p_j = \sigma(\ell_j)`).

        Parameters
        ----------
        probs : float or array_like, shape (dim,)
            Success probabilities in the open interval (0, 1); a scalar is broadcast.

        Returns
        -------
        ndarray, shape (dim,)
        """
        probs = _checks.finite_array("probs", probs, ndim=(0, 1))
        if probs.ndim == 0:
            probs = np.full(self.dim, float(probs))
        if probs.shape != (self.dim,):
            raise ValueError(f"probs must be a scalar or have shape ({self.dim},), got {probs.shape}")
        if np.any(probs <= 0) or np.any(probs >= 1):
            raise ValueError(f"probs must lie in the open interval (0, 1), got {probs}")
        return np.log(probs) - np.log1p(-probs)

    def unpack(self, params):
        r"""Success probabilities :math:`p_j = \sigma(\ell_j) = 1 / (1 + e^{-\ell_j})`.

        Chapter: REINFORCE (the family of equation ``eq-rf-bernoulli-grad``).

        Parameters
        ----------
        params : array_like, shape (dim,)
            Logits, finite.

        Returns
        -------
        ndarray, shape (dim,)
        """
        return expit(self._check_params(params))

    def init_params(self, probs=0.5):
        r"""Logits :math:`\ell_j = \log(p_j/(1-p_j))` for success probabilities ``probs`` (default 1/2).

        Chapter: REINFORCE (the starting point of the fits).

        Parameters
        ----------
        probs : float or array_like, shape (dim,)
            Success probabilities in the open interval (0, 1).

        Returns
        -------
        ndarray, shape (dim,)
        """
        return self.pack(probs)

    def sample(self, params, n, rng):
        r"""Draw ``n`` binary vectors :math:`z_j = 1[u_j < p_j]`, :math:`u_j \sim U(0, 1)`.

        Chapter: REINFORCE. The sample is a step function of the logits: with the same seed,
        slightly different ``params`` give the same draws except where a :math:`u_j` falls between
        the old and the new :math:`p_j`.

        Parameters
        ----------
        params : array_like, shape (dim,)
        n : int
            Number of samples, >= 1.
        rng : numpy.random.Generator or int

        Returns
        -------
        ndarray of int, shape (n, dim)
        """
        probs = self.unpack(params)
        n = _checks.positive_int("n", n)
        u = _checks.generator(rng).random((n, self.dim))
        return (u < probs).astype(np.int64)

    def log_prob(self, params, z):
        r"""Log mass :math:`\sum_j [z_j \ell_j - \log(1 + e^{\ell_j})]` for a batch of binary vectors.

        Chapter: REINFORCE. Differentiable in ``params`` with :mod:`autograd`.

        Parameters
        ----------
        params : array_like, shape (dim,)
        z : array_like of int, shape (n, dim), entries 0 or 1

        Returns
        -------
        ndarray, shape (n,)
        """
        params = self._check_params(params)
        z = _integer_samples("z", z, self.dim, 2)
        return anp.sum(z * params - anp.logaddexp(0.0, params), axis=1)

    def score(self, params, z):
        r"""Score :math:`\partial \log q_\theta(z) / \partial \ell_j = z_j - p_j` for each vector of a batch.

        Chapter: REINFORCE (``eq-bernoulli-score``).

        Parameters
        ----------
        params : array_like, shape (dim,)
        z : array_like of int, shape (n, dim), entries 0 or 1

        Returns
        -------
        ndarray, shape (n, dim)
        """
        probs = self.unpack(params)
        z = _integer_samples("z", z, self.dim, 2)
        return z - probs

    def entropy(self, params):
        r"""Entropy :math:`\sum_j [\log(1 + e^{\ell_j}) - p_j \ell_j]` (in nats).

        Chapter: REINFORCE. Equal to :math:`-\sum_j [p_j\log p_j + (1-p_j)\log(1-p_j)]`.

        Parameters
        ----------
        params : array_like, shape (dim,)
            Logits, finite.

        Returns
        -------
        float
        """
        params = self._check_params(params)
        return float(np.sum(np.logaddexp(0.0, params) - expit(params) * params))

    def support(self):
        r"""All :math:`2^d` binary vectors, as an int array of shape (2**dim, dim), in binary order.

        Chapter: REINFORCE. Raises ``ValueError`` if :math:`2^d` exceeds :data:`MAX_SUPPORT`.
        """
        if 2 ** self.dim > MAX_SUPPORT:
            raise ValueError(f"dim = {self.dim} has 2**{self.dim} states, more than MAX_SUPPORT = "
                             f"{MAX_SUPPORT} that can be enumerated")
        codes = np.arange(2 ** self.dim)[:, None]
        return (codes >> np.arange(self.dim - 1, -1, -1)) & 1


def _check_family(family):
    if not isinstance(family, DiscreteFamily):
        raise ValueError("family must be a vi_course.discrete.Categorical or MeanFieldBernoulli, "
                         f"got {type(family).__name__}")
    return family


def _prepare(log_joint, family, params):
    log_joint = _log_joint_fn(log_joint)
    family = _check_family(family)
    params = family._check_params(params)
    return log_joint, family, params


def score_function_grad_samples(log_joint, family, params, n, rng, baseline=None):
    r"""Per-sample terms of the REINFORCE estimator for a discrete family; their mean is the estimate.

    Chapter: REINFORCE (the summands of ``eq-reinforce-estimator``). Row :math:`k` is

    .. math:: (\log p(z_k, D) - \log q_\theta(z_k) - b_k)\, \nabla_\theta \log q_\theta(z_k),
              \qquad z_k \sim q_\theta .

    Parameters
    ----------
    log_joint : callable or model
        ``z (n, dim) -> (n,)``, the log joint :math:`\log p(z, D)` at integer states; it is never
        differentiated.
    family : Categorical or MeanFieldBernoulli
    params : array_like, shape (family.n_params,)
    n : int
        Number of Monte Carlo samples, >= 1.
    rng : numpy.random.Generator or int
    baseline : None, float, "mean" or "leave_one_out"
        As in :func:`vi_course.gradients.score_function_grad`: no baseline, a fixed number, or the
        mean of the other ``n - 1`` learning signals (independent of :math:`z_k`, so the estimator
        stays unbiased; needs ``n >= 2``).

    Returns
    -------
    ndarray, shape (n, family.n_params)
    """
    log_joint, family, params = _prepare(log_joint, family, params)
    z = family.sample(params, n, rng)
    _, weights = _signal_and_weights(log_joint, family, params, z, baseline)
    return family.score(params, z) * weights[:, None]


def score_function_grad(log_joint, family, params, n, rng, baseline=None):
    r"""REINFORCE estimate of the ELBO gradient for a discrete family (ascent direction).

    Chapter: REINFORCE (``eq-reinforce-estimator``, the corrected lecture eq. 53 with the sign of
    the ELBO):

    .. math:: \hat g = \frac1n \sum_{k=1}^n (\log p(z_k, D) - \log q_\theta(z_k) - b_k)\,
              \nabla_\theta \log q_\theta(z_k).

    Unbiased for :func:`exact_elbo_grad` whenever :math:`b_k` does not depend on :math:`z_k`.
    Arguments as in :func:`score_function_grad_samples`.

    Returns
    -------
    ndarray, shape (family.n_params,)
    """
    return score_function_grad_samples(log_joint, family, params, n, rng, baseline).mean(axis=0)


def _support_terms(log_joint, family, params):
    """States, their log joint (constant) and log q (differentiable) over the whole support."""
    log_joint, family, params = _prepare(log_joint, family, params)
    states = family.support()
    log_p = np.asarray(_eval_log_joint(log_joint, states), dtype=float)
    return family, params, states, log_p, family.log_prob(params, states)


def exact_elbo(log_joint, family, params):
    r"""The ELBO computed exactly by summing over every latent state.

    Chapter: REINFORCE:

    .. math:: \mathrm{ELBO}(\theta) = \sum_{s} q_\theta(s)\,\big(\log p(s, D) - \log q_\theta(s)\big).

    Differentiable in ``params`` with :mod:`autograd` (the log joint is a constant here, so it need
    not be autograd-compatible).

    Parameters
    ----------
    log_joint : callable or model
        ``z (n, dim) -> (n,)``; must be finite on the whole support.
    family : Categorical or MeanFieldBernoulli
    params : array_like, shape (family.n_params,)

    Returns
    -------
    float (an autograd scalar when differentiated)
    """
    _, _, _, log_p, log_q = _support_terms(log_joint, family, params)
    return anp.sum(anp.exp(log_q) * (log_p - log_q))


def exact_elbo_grad(log_joint, family, params):
    r"""The exact ELBO gradient: the REINFORCE expectation summed over every latent state.

    Chapter: REINFORCE (``eq-reinforce-elbo`` evaluated exactly):

    .. math:: \nabla_\theta \mathrm{ELBO} = \sum_s q_\theta(s)\,\big(\log p(s, D) - \log q_\theta(s)\big)
              \,\nabla_\theta \log q_\theta(s).

    Arguments as in :func:`exact_elbo`.

    Returns
    -------
    ndarray, shape (family.n_params,)
    """
    family, params, states, log_p, log_q = _support_terms(log_joint, family, params)
    log_q = np.asarray(log_q, dtype=float)
    weights = np.exp(log_q) * (log_p - log_q)
    return weights @ family.score(params, states)


class EnumeratedPosterior(NamedTuple):
    r"""Result of :func:`enumerate_posterior`: ``states``, ``probs`` = :math:`p(s \mid D)`, ``log_evidence``.

    Chapter: REINFORCE, equation ``eq-rf-enumeration``.
    """

    states: np.ndarray
    probs: np.ndarray
    log_evidence: float


def enumerate_posterior(log_joint, family):
    r"""The exact posterior and evidence of a discrete latent, by enumerating the family's support.

    Chapter: REINFORCE. With :math:`s` running over ``family.support()``,

    .. math:: \log p(D) = \log \sum_s p(s, D), \qquad p(s \mid D) = p(s, D) / p(D).

    Parameters
    ----------
    log_joint : callable or model
        ``z (n, dim) -> (n,)``; finite on the whole support.
    family : Categorical or MeanFieldBernoulli
        Only its support is used.

    Returns
    -------
    EnumeratedPosterior
        ``states`` (n_states, dim), ``probs`` (n_states,) summing to 1, ``log_evidence`` (float).
    """
    log_joint = _log_joint_fn(log_joint)
    family = _check_family(family)
    states = family.support()
    log_p = np.asarray(_eval_log_joint(log_joint, states), dtype=float)
    log_evidence = float(logsumexp(log_p))
    return EnumeratedPosterior(states=states, probs=np.exp(log_p - log_evidence),
                               log_evidence=log_evidence)


class ChangePoint:
    r"""Where does a noisy sequence switch from one mean to another? A single discrete latent.

    Chapter: REINFORCE (the discrete example). The latent :math:`k \in \{0, \dots, T-2\}` is the
    index of the last observation before the change; the prior is uniform and, with known means
    :math:`\mu_0, \mu_1` and noise variance :math:`\sigma^2`,

    .. math::

        x_t \mid k \sim N(\mu_0, \sigma^2) \ (t \le k), \qquad x_t \mid k \sim N(\mu_1, \sigma^2) \ (t > k),
        \qquad t = 0, \dots, T-1,

    so both regimes hold at least one observation. ``log_joint`` takes integer states of shape
    ``(n, 1)``; the exact posterior over the :math:`T - 1` states is available from
    :meth:`posterior`. A :class:`Categorical` with ``n_states`` categories is a matching family.

    Parameters
    ----------
    x : array_like, shape (T,)
        Observations, finite, T >= 2.
    mean_before, mean_after : float
        The means :math:`\mu_0` and :math:`\mu_1` of the two regimes.
    noise_var : float
        Observation noise variance :math:`\sigma^2 > 0`.
    """

    dim = 1

    def __init__(self, x, mean_before=0.0, mean_after=1.0, noise_var=1.0):
        x = _checks.finite_array("x", x, ndim=1)
        if x.size < 2:
            raise ValueError(f"x must contain at least 2 observations, got {x.size}")
        self.x = x
        self.mean_before = float(_checks.finite_array("mean_before", mean_before, ndim=0))
        self.mean_after = float(_checks.finite_array("mean_after", mean_after, ndim=0))
        self.noise_var = _checks.positive_scalar("noise_var", noise_var)
        self.n_states = x.size - 1
        # table[k] = log p(k) + log p(x | k), built from cumulative sums of per-point log densities
        with np.errstate(over="ignore", invalid="ignore"):
            ll0 = -0.5 * (LOG_2PI + np.log(self.noise_var) + (x - self.mean_before) ** 2 / self.noise_var)
            ll1 = -0.5 * (LOG_2PI + np.log(self.noise_var) + (x - self.mean_after) ** 2 / self.noise_var)
            before = np.cumsum(ll0)[:-1]                   # sum_{t <= k} ll0[t]
            after = ll1.sum() - np.cumsum(ll1)[:-1]        # sum_{t > k} ll1[t]
            self._table = -np.log(self.n_states) + before + after
        if not np.all(np.isfinite(self._table)):
            raise ValueError("x, mean_before, mean_after and noise_var are too extreme for double "
                             "precision: the log likelihood overflows")

    def __repr__(self):
        return (f"ChangePoint(T={self.x.size}, mean_before={self.mean_before}, "
                f"mean_after={self.mean_after}, noise_var={self.noise_var})")

    def log_joint(self, z):
        r"""Log joint :math:`\log p(k) + \log p(x \mid k)` for integer states ``z`` of shape (n, 1); returns (n,).

        Chapter: REINFORCE, equation ``eq-rf-changepoint``.

        Parameters
        ----------
        z : array_like of int, shape (n, 1)
            Change points in ``0..T-2`` (integer-valued floats are accepted).

        Returns
        -------
        ndarray, shape (n,)
        """
        k = _integer_samples("z", z, 1, self.n_states)[:, 0]
        return self._table[k]

    def posterior(self):
        r"""Exact posterior probabilities :math:`p(k \mid x)`, :math:`k = 0, \dots, T-2`.

        Chapter: REINFORCE.

        Returns
        -------
        ndarray, shape (T - 1,)
        """
        return np.exp(self._table - logsumexp(self._table))

    def log_evidence(self):
        r"""Exact :math:`\log p(x) = \log \sum_k p(k)\, p(x \mid k)`. Chapter: REINFORCE."""
        return float(logsumexp(self._table))
