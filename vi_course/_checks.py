"""Input validation shared by the whole library.

Every public function of :mod:`vi_course` validates its arguments with these helpers, so that bad
input fails early with a :class:`ValueError` that names the argument and the constraint it broke,
instead of producing a NaN or a traceback from deep inside numpy.
"""
from __future__ import annotations

import numbers

import numpy as np


def finite_array(name, value, ndim=None, dtype=float):
    """Return ``value`` as a float array, raising ``ValueError`` if it is not finite.

    Parameters
    ----------
    name : str
        Argument name used in the error message.
    value : array_like
        The value to check.
    ndim : int or tuple of int, optional
        Allowed number(s) of dimensions.
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {type(value).__name__}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dimension(s), "
                f"got shape {arr.shape}"
            )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (no NaN or inf)")
    return arr


def positive_scalar(name, value, allow_zero=False):
    """Return ``value`` as a float, raising ``ValueError`` unless it is finite and > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        arr = np.asarray(value)
        if arr.shape != () or not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{name} must be a real number, got {value!r}")
        value = arr.item()
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def positive_int(name, value, minimum=1):
    """Return ``value`` as an int, raising ``ValueError`` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def open_interval(name, value, low, high):
    """Return ``value`` as a float, raising ``ValueError`` unless ``low < value < high``."""
    value = float(finite_array(name, value, ndim=0))
    if not low < value < high:
        raise ValueError(f"{name} must lie in the open interval ({low}, {high}), got {value}")
    return value


def samples(name, z, dim):
    """Return ``z`` as a float array of shape ``(n, dim)``; a 1-D array is read as one sample.

    Raises ``ValueError`` for a wrong trailing dimension or non-finite entries. Arrays that carry
    autograd boxes are passed through unchanged (they are checked by shape only).
    """
    if type(z).__module__.startswith("autograd"):
        shape = np.shape(z)
        if len(shape) != 2 or shape[1] != dim:
            raise ValueError(f"{name} must have shape (n_samples, {dim}), got {shape}")
        return z
    arr = finite_array(name, z, ndim=(1, 2))
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n_samples, {dim}), got {arr.shape}")
    return arr


def generator(rng):
    """Return a ``numpy.random.Generator``: ``rng`` itself, or a new one seeded with it."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (numbers.Integral, np.integer)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy.random.Generator or an integer seed, got {rng!r}")
