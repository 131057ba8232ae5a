"""Input validation shared by the whole library.

Every public function of :mod:`vi_course` validates its arguments with these helpers, so that bad
input fails early with a :class:`ValueError` that names the argument and the constraint it broke,
instead of producing a NaN or a traceback from deep inside numpy.
"""
from __future__ import annotations

import numbers

import numpy as np


_TINY = float(np.finfo(float).tiny)


def is_traced(value):
    """Whether ``value`` is an autograd box (a value being differentiated)."""
    return type(value).__module__.startswith("autograd")


def real_array(name, value, dtype=float, allow_bool_scalar=False):
    """Return ``value`` as a real float array; ``ValueError`` for strings, complex numbers, ``None``, ...

    Unlike ``np.asarray(value, dtype=float)``, it does not turn ``None`` into NaN, numeric strings
    such as ``"1.5"`` into numbers, or complex numbers into their real part. Non-finite entries are
    allowed here (see :func:`finite_array`).
    """
    if value is None:
        raise ValueError(f"{name} must be numeric, got None")
    try:
        raw = np.asarray(value)
    except Exception as exc:  # ragged nested sequences and other unconvertible objects
        raise ValueError(f"{name} must be a numeric array, got {type(value).__name__} ({exc})") from None
    kind = raw.dtype.kind
    if kind == "c":
        raise ValueError(f"{name} must be real-valued, got complex values")
    if kind in "USa":
        raise ValueError(f"{name} must be numeric, got strings (dtype {raw.dtype})")
    if kind in "mMV":
        raise ValueError(f"{name} must be numeric, got dtype {raw.dtype}")
    if kind == "b" and raw.ndim == 0 and not allow_bool_scalar:
        raise ValueError(f"{name} must be a number, got the boolean {value!r}")
    if kind == "O":
        for item in raw.ravel():
            if item is None or isinstance(item, (str, bytes, complex, np.complexfloating)):
                raise ValueError(f"{name} must contain only real numbers, got {item!r}")
    try:
        arr = np.asarray(raw, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be numeric, got {type(value).__name__}") from None
    return arr


def finite_array(name, value, ndim=None, dtype=float, allow_empty=True):
    """Return ``value`` as a float array, raising ``ValueError`` if it is not finite.

    Parameters
    ----------
    name : str
        Argument name used in the error message.
    value : array_like
        The value to check. Strings, complex numbers and ``None`` are rejected (never converted).
    ndim : int or tuple of int, optional
        Allowed number(s) of dimensions.
    allow_empty : bool
        Whether an array with no entries is accepted.
    """
    arr = real_array(name, value, dtype=dtype)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dimension(s), "
                f"got shape {arr.shape}"
            )
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (no NaN or inf)")
    return arr


def output_array(name, value, shape=None):
    """Check the output of a user-supplied callable: a real float array (autograd boxes unwrapped).

    ``name`` names the callable. NaN and +inf are allowed here (callers decide); strings, complex
    numbers, ``None`` and wrong shapes raise ``ValueError``.
    """
    if is_traced(value):
        from autograd.tracer import getval
        value = getval(value)
    try:
        arr = real_array(f"the output of {name}", value)
    except ValueError as exc:
        raise ValueError(f"{name} must return real numbers: {exc}") from None
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must return an array of shape {tuple(shape)}, got shape {arr.shape}")
    return arr


def real_scalar(name, value):
    """Return ``value`` as a float, raising ``ValueError`` unless it is one real number (not a bool).

    NaN and infinities are passed through (callers check finiteness with their own message).
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a real number, got the boolean {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    arr = np.asarray(value) if not isinstance(value, (str, bytes)) else None
    if arr is None or arr.shape != () or arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(arr.item())


def positive_scalar(name, value, allow_zero=False):
    """Return ``value`` as a float, raising ``ValueError`` unless it is finite and > 0 (or >= 0).

    When zero is not allowed, positive values below the smallest normal double (about 2.2e-308,
    subnormal numbers whose reciprocal overflows) are rejected too.
    """
    value = real_scalar(name, value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    if 0 < value < _TINY and not allow_zero:
        raise ValueError(f"{name} must be > 0 and at least {_TINY:.4g} (the smallest normal double), "
                         f"got {value}")
    return value


def positive_int(name, value, minimum=1):
    """Return ``value`` as an int, raising ``ValueError`` unless it is an integer >= ``minimum``.

    Integer-valued floats (``3.0``) and 0-d integer arrays are accepted; booleans, strings,
    non-integer or non-finite numbers are not.
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer, got the boolean {value!r}")
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu":
        value = int(value)
    if not isinstance(value, (numbers.Integral, np.integer)):
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
    value = real_scalar(name, value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if not low < value < high:
        raise ValueError(f"{name} must lie in the open interval ({low}, {high}), got {value}")
    return value


def samples(name, z, dim):
    """Return ``z`` as a float array of shape ``(n, dim)``, n >= 1; a 1-D array is read as one sample.

    Raises ``ValueError`` for a wrong trailing dimension, no rows, non-numeric or non-finite entries.
    Arrays that carry autograd boxes are passed through unchanged (they are checked by shape only).
    """
    if is_traced(z):
        shape = np.shape(z)
        if len(shape) != 2 or shape[1] != dim:
            raise ValueError(f"{name} must have shape (n_samples, {dim}), got {shape}")
        return z
    arr = real_array(name, z)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n_samples, {dim}) (or ({dim},) for one sample), "
                         f"got shape {arr.shape}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n_samples, {dim}), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one sample (row), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (no NaN or inf)")
    return arr


def generator(rng, name="rng"):
    """Return a ``numpy.random.Generator``: ``rng`` itself, or a new one seeded with it.

    ``rng`` may be a Generator, a non-negative integer seed or ``None`` (fresh entropy). Anything else
    (booleans, negative or non-integer seeds, the legacy ``RandomState``) raises ``ValueError``.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise ValueError(f"{name} must be a numpy.random.Generator or a non-negative integer seed, "
                             f"got {rng}")
        return np.random.default_rng(int(rng))
    hint = " (the legacy RandomState is not supported: use numpy.random.default_rng)" \
        if isinstance(rng, np.random.RandomState) else ""
    raise ValueError(f"{name} must be a numpy.random.Generator or a non-negative integer seed, "
                     f"got {rng!r}{hint}")


def flag(name, value):
    """Return ``value`` as a bool, raising ``ValueError`` unless it is ``True`` or ``False``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)
