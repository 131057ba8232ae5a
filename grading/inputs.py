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


BUILDERS = {
    "gaussian_log_joint": gaussian_log_joint,
    "gaussian_proposal": GaussianProposal,
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
