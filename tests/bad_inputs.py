"""Table-driven bad-input checks shared by the library tests (``tests/test_<module>.py``).

Every public function of :mod:`vi_course` must reject bad input with a ``ValueError`` whose message
names the argument, never return a NaN, a silently wrong result, or raise something else from deep
inside numpy. A module's test file lists its calls as :func:`spec` rows, each with the *kind* of
every argument (``"pos"`` for a positive number, ``("samples", dim)`` for a batch of points, ...);
:func:`cases` expands them into one pytest case per (argument, bad value), with the bad values of
:data:`BAD` for that kind, and :func:`check_rejects` runs one case.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest


class Opaque:
    """An object no numeric argument should accept."""

    def __repr__(self):
        return "Opaque()"


_OPAQUE = Opaque()

#: Bad values per kind of argument. Each is wrong for every argument of that kind.
BAD = {
    # a strictly positive finite number (variances, scales, step sizes, ...)
    "pos": [-1.0, 0.0, np.nan, np.inf, -np.inf, "1.0", "abc", None, [1.0, 2.0], np.array([1.0, 2.0]),
            True, 1 + 2j, _OPAQUE, np.array([]), 1e-320],
    # a finite number >= 0 (tolerances, decay rates)
    "nonneg": [-1.0, np.nan, np.inf, "1.0", None, [1.0, 2.0], True, 1 + 2j, _OPAQUE],
    # any finite real number
    "real": [np.nan, np.inf, -np.inf, "abc", "0.5", None, [1.0, 2.0], 1 + 2j, _OPAQUE, np.array([])],
    # an integer count >= 1
    "int": [0, -1, 2.5, np.nan, np.inf, "3", None, True, np.array([3, 4]), 1 + 0j, _OPAQUE],
    # an integer >= 0
    "int0": [-1, 2.5, np.nan, np.inf, "3", None, True, np.array([3, 4]), _OPAQUE],
    # a numpy Generator or a non-negative integer seed
    "rng": ["seed", 1.5, -1, [1, 2], _OPAQUE, np.random.RandomState(0), np.nan, True],
    # a 1-D array of finite real observations, at least one
    "data": [[], [np.nan], [1.0, np.inf], ["a", "b"], ["1.0", "2.0"], [[1.0, 2.0], [3.0, 4.0]], None, "abc",
             [1.0, None], np.array([1 + 1j, 2.0]), np.array([object(), 1.0], dtype=object), _OPAQUE],
    # a callable
    "callable": [None, 42, "abc", _OPAQUE],
    # a variational family object
    "family": ["meanfield", None, 3, _OPAQUE],
    # True or False
    "bool": ["yes", None, 2, _OPAQUE],
}


def samples_bad(dim):
    """Bad batches of points for an argument of shape (n, dim)."""
    return [np.zeros((3, dim + 1)), np.zeros((2, 3, dim)), np.full((2, dim), np.nan), np.full((2, dim), np.inf),
            np.full((2, dim), "a"), None, "abc", np.zeros((0, dim)), np.zeros(dim + 1),
            np.zeros((3, dim), complex), _OPAQUE, 3.0]


def params_bad(n_params):
    """Bad flat parameter vectors of length ``n_params``."""
    return [np.zeros(n_params + 1), np.full(n_params, np.nan), np.full(n_params, "a"), None, "abc",
            np.zeros((2, 2, n_params)), np.zeros(0), np.zeros(n_params, complex), _OPAQUE, 1.0]


def vector_bad(d):
    """Bad real vectors of length ``d``."""
    return [np.zeros(d + 1), np.full(d, np.nan), np.full(d, "a"), None, "abc", np.zeros((d, d, 1)),
            np.zeros(0), _OPAQUE]


def bad_values(kind):
    """The bad values of a kind: a key of :data:`BAD`, ``("samples", dim)``, ``("params", n)``,
    ``("vector", d)`` or ``("values", [explicit list])``."""
    if isinstance(kind, tuple):
        tag, arg = kind
        return {"samples": samples_bad, "params": params_bad, "vector": vector_bad,
                "values": lambda values: list(values)}[tag](arg)
    return BAD[kind]


def spec(label, fn, args, kinds):
    """One row of a table: call ``fn(**args)``; every argument named in ``kinds`` gets the bad values
    of its kind, one at a time."""
    return (label, fn, dict(args), dict(kinds))


def _short(value):
    text = repr(value).replace("\n", "")
    return text if len(text) <= 24 else text[:21] + "..."


def cases(specs):
    """pytest parameters ``(fn, kwargs, name)`` for every (row, argument, bad value) of ``specs``."""
    out = []
    for label, fn, args, kinds in specs:
        for name, kind in kinds.items():
            for k, bad in enumerate(bad_values(kind)):
                kwargs = dict(args)
                kwargs[name] = bad
                out.append(pytest.param(fn, kwargs, name, id=f"{label}-{name}-{k}-{_short(bad)}"))
    return out


def baselines(specs):
    """pytest parameters ``(fn, kwargs)``: every row with its good arguments (which must work)."""
    return [pytest.param(fn, args, id=label) for label, fn, args, _ in specs]


def check_rejects(fn, kwargs, name):
    """``fn(**kwargs)`` must raise ``ValueError`` mentioning ``name`` (and no numpy warning first)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            result = fn(**kwargs)
        except ValueError as exc:
            assert name in str(exc), f"the ValueError does not name {name!r}: {exc}"
            return
    raise AssertionError(f"accepted bad {name}={_short(kwargs[name])}, returned {_short(result)}")


def check_accepts(fn, kwargs):
    """The good arguments of a row work, without numpy warnings and without NaN in the result."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = fn(**kwargs)
    for value in result if isinstance(result, tuple) else (result,):
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            continue
        assert not np.any(np.isnan(arr)), f"NaN in the result {_short(result)}"
