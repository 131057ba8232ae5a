"""Hidden test inputs for function answers, built from plain data inside the student's sandbox.

A function part of a ``CHECK`` declares its calls as plain data, e.g.::

    "args": [{"build": "gaussian_log_joint", "x": [0.7]},
             {"build": "gaussian_proposal", "mean": 0.5, "var": 2.0}, 1000, {"rng": "seed"}]

The harness turns every ``{"build": NAME, ...}`` into ``BUILDERS[NAME](**params)``, every
``{"rng": "seed"}`` into ``numpy.random.default_rng(seed)`` for the current replicate (``{"rng": 7}``
for a fixed seed), every ``{"array": [...]}`` into a float array; anything else is passed as is.

The objects built here are plain closures and small classes holding only their parameters: they
carry no exact answer for a student function to find. Expected results stay in the grader.

To add a kind of input, add a function here and document it in grading/README.md. This module
must only import the standard library and numpy (it runs before the sandbox closes).
"""
from __future__ import annotations

import math

import numpy as np

_LOG_2PI = math.log(2.0 * math.pi)


def _column(z):
    z = np.asarray(z, dtype=float)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[1] != 1:
        raise ValueError(f"z must have shape (n, 1), got {z.shape}")
    return z[:, 0]


def gaussian_log_joint(x, prior_mean=0.0, prior_var=1.0, noise_var=1.0):
    """``log p(x, z)`` of z ~ N(prior_mean, prior_var), x_k | z ~ N(z, noise_var); z: (n, 1) -> (n,)."""
    x = np.asarray(x, dtype=float).reshape(-1)
    m0, v0, v = float(prior_mean), float(prior_var), float(noise_var)

    def log_joint(z):
        zz = _column(z)
        log_prior = -0.5 * (_LOG_2PI + math.log(v0) + (zz - m0) ** 2 / v0)
        sq = ((x[None, :] - zz[:, None]) ** 2).sum(axis=1)
        return log_prior - 0.5 * (x.size * (_LOG_2PI + math.log(v)) + sq / v)

    return log_joint


class GaussianProposal:
    """A one-dimensional Gaussian proposal N(mean, var).

    ``sample(n, rng)`` -> (n, 1); ``log_prob(z)`` -> (n,). The scipy-like spellings
    ``rvs(size, random_state)`` and ``logpdf(z)`` do the same.
    """

    dim = 1

    def __init__(self, mean=0.0, var=1.0):
        if not var > 0:
            raise ValueError("var must be > 0")
        self.mean, self.var = float(mean), float(var)

    def __repr__(self):
        return f"GaussianProposal(mean={self.mean}, var={self.var})"

    def sample(self, n, rng):
        return self.mean + math.sqrt(self.var) * rng.standard_normal((int(n), 1))

    def log_prob(self, z):
        zz = _column(z)
        return -0.5 * (_LOG_2PI + math.log(self.var) + (zz - self.mean) ** 2 / self.var)

    def rvs(self, size, random_state):
        return self.sample(size, random_state)

    def logpdf(self, z):
        return self.log_prob(z)


def linspace(start, stop, num):
    """``numpy.linspace(start, stop, num)``: a long deterministic array (e.g. many log weights)."""
    num = int(num)
    if not 1 <= num <= 1_000_000:
        raise ValueError("num must be between 1 and 1e6")
    return np.linspace(float(start), float(stop), num)


def _latent(theta, dim):
    """``theta`` as an (n, dim) float array; a 1-D array is n points if dim == 1, else one point."""
    t = np.asarray(theta, dtype=float)
    if t.ndim == 1:
        t = t[:, None] if dim == 1 else t[None, :]
    if t.ndim != 2 or t.shape[1] != dim:
        raise ValueError(f"theta must have shape (n, {dim}), got {np.shape(theta)}")
    return t


class GammaPriorModel:
    """ADVI model with no data: theta ~ Gamma(alpha, rate beta). ``dim = 1``, supports ["positive"].

    ``log_joint(theta)``: (n, 1) -> (n,) in the constrained space (-inf outside theta > 0).
    """

    dim = 1

    def __init__(self, alpha=3.0, beta=2.0):
        self.alpha, self.beta = float(alpha), float(beta)
        self.supports = ["positive"]

    def __repr__(self):
        return f"GammaPriorModel(alpha={self.alpha}, beta={self.beta})"

    def log_joint(self, theta):
        t = _latent(theta, 1)[:, 0]
        inside = t > 0
        safe = np.where(inside, t, 1.0)
        value = (self.alpha * math.log(self.beta) - math.lgamma(self.alpha)
                 + (self.alpha - 1.0) * np.log(safe) - self.beta * safe)
        return np.where(inside, value, -np.inf)


class InverseGammaNormalModel:
    """ADVI model s ~ InvGamma(a, scale b), m | s ~ N(0, s), x_i | m, s ~ N(m, s).

    Latent theta = (s, m): ``dim = 2``, supports ["positive", "real"];
    ``log_joint(theta)``: (n, 2) -> (n,) (-inf where s <= 0).
    """

    dim = 2

    def __init__(self, x, a=2.0, b=3.0):
        self.x = np.asarray(x, dtype=float).reshape(-1)
        self.a, self.b = float(a), float(b)
        self.supports = ["positive", "real"]

    def __repr__(self):
        return f"InverseGammaNormalModel(n_data={self.x.size}, a={self.a}, b={self.b})"

    def log_joint(self, theta):
        t = _latent(theta, 2)
        s, m = t[:, 0], t[:, 1]
        inside = s > 0
        s = np.where(inside, s, 1.0)
        n = self.x.size
        log_prior_s = (self.a * math.log(self.b) - math.lgamma(self.a)
                       - (self.a + 1.0) * np.log(s) - self.b / s)
        sq = m ** 2 + ((self.x[None, :] - m[:, None]) ** 2).sum(axis=1)
        value = log_prior_s - 0.5 * (n + 1) * (_LOG_2PI + np.log(s)) - 0.5 * sq / s
        return np.where(inside, value, -np.inf)


class BetaBernoulliModel:
    """ADVI model on an interval: p = (theta - low)/(high - low) ~ Beta(a, b), x_i | theta ~ Bernoulli(p).

    ``dim = 1``, supports [("interval", low, high)]; the prior density of theta is
    Beta(p; a, b) / (high - low). ``log_joint(theta)``: (n, 1) -> (n,) (-inf outside the interval).
    """

    dim = 1

    def __init__(self, x, a=1.0, b=1.0, low=0.0, high=1.0):
        self.x = np.asarray(x, dtype=float).reshape(-1)
        self.a, self.b = float(a), float(b)
        self.low, self.high = float(low), float(high)
        if not self.low < self.high:
            raise ValueError("need low < high")
        self.supports = [("interval", self.low, self.high)]

    def __repr__(self):
        return (f"BetaBernoulliModel(n_data={self.x.size}, a={self.a}, b={self.b}, "
                f"interval=({self.low}, {self.high}))")

    def log_joint(self, theta):
        t = _latent(theta, 1)[:, 0]
        width = self.high - self.low
        p = (t - self.low) / width
        inside = (p > 0) & (p < 1)
        p = np.where(inside, p, 0.5)
        k, n = float(self.x.sum()), float(self.x.size)
        log_beta_ab = math.lgamma(self.a) + math.lgamma(self.b) - math.lgamma(self.a + self.b)
        value = ((self.a - 1.0 + k) * np.log(p) + (self.b - 1.0 + n - k) * np.log1p(-p)
                 - log_beta_ab - math.log(width))
        return np.where(inside, value, -np.inf)


BUILDERS = {
    "gaussian_log_joint": gaussian_log_joint,
    "gaussian_proposal": GaussianProposal,
    "linspace": linspace,
    "gamma_prior_model": GammaPriorModel,
    "inverse_gamma_normal_model": InverseGammaNormalModel,
    "beta_bernoulli_model": BetaBernoulliModel,
}


def build(value, seed=None):
    """Turn a plain-data argument into the object handed to the student's function."""
    if isinstance(value, dict):
        if "build" in value:
            params = {k: build(v, seed) for k, v in value.items() if k != "build"}
            return BUILDERS[value["build"]](**params)
        if "rng" in value:
            return np.random.default_rng(seed if value["rng"] == "seed" else int(value["rng"]))
        if "array" in value:
            return np.asarray(value["array"], dtype=float)
        return {k: build(v, seed) for k, v in value.items()}
    if isinstance(value, list):
        return [build(v, seed) for v in value]
    return value
