r"""Grid integration of the evidence and the curse of dimensionality (chapter "Why approximate inference").

The simplest way to compute the evidence :math:`p(D) = \int p(D \mid z) p(z)\, dz` (lecture eq. 2) is
to cut a box around the posterior into bins and add up the integrand at the bin centres times the bin
volume (lecture eq. 3, the midpoint rule). Everything here works with logarithms: the integrand is
given as a log joint density and the sum is a :func:`scipy.special.logsumexp`, so tiny and huge
evidences do not underflow or overflow.

The second half of the module measures how few of the bins matter: :func:`relevant_fraction` returns
the smallest fraction of bins that together hold most (say 99 %) of the posterior mass, and
:func:`gaussian_relevant_fraction` follows that fraction as the dimension grows, which is the picture
behind the lecture's argument that grids are hopeless in high dimension but that the posterior mass
sits in a tiny region we could hope to find.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from . import _checks

MAX_GRID_DIM = 4
"""Largest dimension :func:`log_evidence` accepts: beyond it the number of bins explodes."""

MAX_BINS = 10 ** 8
"""Largest total number of bins a grid may have (the integrand is evaluated at every bin centre)."""

_CHUNK_ROWS = 1 << 16


# --------------------------------------------------------------------------------------------------
# the grid itself


def _box(lows, highs, n_bins, max_dim=MAX_GRID_DIM):
    """Validate a box and its bin counts; return ``(lows, highs, n_bins)`` as 1-D arrays."""
    lows = np.atleast_1d(_checks.finite_array("lows", lows, ndim=(0, 1)))
    highs = np.atleast_1d(_checks.finite_array("highs", highs, ndim=(0, 1)))
    dim = lows.size
    if dim < 1:
        raise ValueError("lows must contain at least one value (one per dimension)")
    if dim > max_dim:
        raise ValueError(
            f"lows has {dim} entries but grid integration supports dimension <= {max_dim} "
            f"(the number of bins grows like n_bins**dim)"
        )
    if highs.size != dim:
        raise ValueError(f"highs must have the same length as lows ({dim}), got {highs.size}")
    if np.any(lows >= highs):
        bad = int(np.argmax(lows >= highs))
        raise ValueError(
            f"lows must be < highs in every dimension; dimension {bad} has "
            f"lows={lows[bad]} >= highs={highs[bad]}"
        )
    if np.ndim(n_bins) == 0:
        counts = np.full(dim, _checks.positive_int("n_bins", n_bins), dtype=int)
    else:
        seq = list(np.asarray(n_bins).reshape(-1)) if np.ndim(n_bins) == 1 else None
        if seq is None:
            raise ValueError(f"n_bins must be an integer or a 1-D sequence, got shape {np.shape(n_bins)}")
        if len(seq) != dim:
            raise ValueError(f"n_bins must have one entry per dimension ({dim}), got {len(seq)}")
        counts = np.array([_checks.positive_int("n_bins", b) for b in seq], dtype=int)
    with np.errstate(over="ignore"):
        too_wide = not np.all(np.isfinite(highs - lows))
    if too_wide:
        raise ValueError("highs - lows must be finite (the box is too wide for double precision)")
    total = math.prod(int(c) for c in counts)
    if total > MAX_BINS:
        raise ValueError(f"n_bins: the grid would have {total} bins, more than MAX_BINS = {MAX_BINS}; "
                         "use fewer bins per axis")
    return lows, highs, counts


def _axes(lows, highs, counts):
    """Bin centres along each axis and the log volume of one bin."""
    widths = (highs - lows) / counts
    centres = [lo + (np.arange(k) + 0.5) * w for lo, k, w in zip(lows, counts, widths)]
    return centres, float(np.sum(np.log(widths)))


def grid_points(lows, highs, n_bins):
    r"""Centres of the bins of a regular grid over a box, and the log volume of one bin.

    Chapter: Why approximate inference. The points :math:`z_n` and :math:`\log \Delta z` of the
    midpoint rule, lecture eq. 3, extended to a box in up to four dimensions.

    Parameters
    ----------
    lows, highs : array_like, shape (dim,)
        Lower and upper corners of the box; ``lows < highs`` componentwise. A scalar means dim 1.
    n_bins : int or sequence of int
        Bins per axis (the same for every axis when an int).

    Returns
    -------
    points : ndarray, shape (prod(n_bins), dim)
        Bin centres, the last axis varying fastest (C order).
    log_bin_volume : float
        :math:`\sum_i \log((\mathrm{high}_i - \mathrm{low}_i) / n_i)`.

    Raises
    ------
    ValueError
        For dim > 4, ``lows >= highs``, ``n_bins < 1`` or mismatched lengths.
    """
    lows, highs, counts = _box(lows, highs, n_bins)
    centres, log_vol = _axes(lows, highs, counts)
    mesh = np.meshgrid(*centres, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1), log_vol


def _log_values_on_grid(name, log_fn, lows, highs, counts):
    """Evaluate ``log_fn`` at every bin centre in chunks; return the values (C order) and log volume."""
    centres, log_vol = _axes(lows, highs, counts)
    total = int(np.prod(counts))
    out = np.empty(total)
    for start in range(0, total, _CHUNK_ROWS):
        idx = np.arange(start, min(start + _CHUNK_ROWS, total))
        multi = np.unravel_index(idx, tuple(counts))
        z = np.stack([c[m] for c, m in zip(centres, multi)], axis=1)
        vals = _checks.output_array(name, log_fn(z))
        if vals.shape != (idx.size,):
            raise ValueError(
                f"{name} must map z of shape (n, dim) to shape (n,); got {vals.shape} for n={idx.size}"
            )
        if np.any(np.isnan(vals)) or np.any(vals == np.inf):
            raise ValueError(f"{name} returned NaN or +inf on the grid; it must return finite values or -inf")
        out[idx] = vals
    return out, log_vol


def log_evidence(log_joint, lows, highs, n_bins):
    r"""Log evidence by grid (midpoint-rule) integration, in dimension 1 to 4.

    Chapter: Why approximate inference. Implements lecture eq. 3,
    :math:`p(D) \approx \sum_n p(D \mid z_n) p(z_n) \Delta z`, in log space:

    .. math:: \log p(D) \approx \operatorname{logsumexp}_n \log p(D, z_n) + \log \Delta z .

    The mass of the integrand outside the box is ignored, so the box must contain the posterior.

    Parameters
    ----------
    log_joint : callable
        ``log_joint(z)`` with ``z`` of shape (n, dim) returns :math:`\log p(D, z)`, shape (n,).
        Values may be ``-inf`` (zero density) but not NaN.
    lows, highs : array_like, shape (dim,)
        Corners of the integration box, ``lows < highs``; a scalar means dim 1.
    n_bins : int or sequence of int
        Bins per axis, >= 1.

    Returns
    -------
    float
        The grid estimate of :math:`\log p(D)` (``-inf`` if the integrand vanishes on every bin).

    Raises
    ------
    ValueError
        For dim > 4, ``lows >= highs``, ``n_bins < 1``, mismatched lengths, or a ``log_joint`` that
        returns the wrong shape or NaN.
    """
    if not callable(log_joint):
        raise ValueError("log_joint must be callable: z of shape (n, dim) -> shape (n,)")
    lows, highs, counts = _box(lows, highs, n_bins)
    values, log_vol = _log_values_on_grid("log_joint", log_joint, lows, highs, counts)
    if np.all(values == -np.inf):
        return -np.inf
    return float(logsumexp(values) + log_vol)


# --------------------------------------------------------------------------------------------------
# relevant bins


def _mass(mass):
    mass = _checks.positive_scalar("mass", mass)
    if mass > 1.0:
        raise ValueError(f"mass must lie in (0, 1], got {mass}")
    return mass


def _smallest_count(probs, mass):
    """Smallest number of entries of ``probs`` (summing to 1) whose total is >= ``mass``.

    A relative tolerance of 1e-12 absorbs rounding in the cumulative sum, so that bins of exactly
    equal mass (four of eight bins of mass 1/8 hold exactly 1/2) are counted exactly, as in
    :func:`gaussian_relevant_fraction`.
    """
    ordered = np.sort(probs)[::-1]
    cum = np.cumsum(ordered)
    cum /= cum[-1]
    return int(min(np.searchsorted(cum, mass * (1.0 - 1e-12), side="left") + 1, probs.size))


def _grid_probs(log_density, lows, highs, counts):
    values, _ = _log_values_on_grid("log_density", log_density, lows, highs, counts)
    if np.all(values == -np.inf):
        raise ValueError("log_density is -inf on every bin: the box contains no posterior mass")
    return np.exp(values - logsumexp(values))


def relevant_fraction(log_density, lows, highs, n_bins, mass=0.99):
    r"""Smallest fraction of grid bins that together hold ``mass`` of the posterior mass.

    Chapter: Why approximate inference (lecture Figs. 1 and 2, the "relevant bins"). The (possibly
    unnormalised) log density is evaluated at the bin centres and normalised on the grid, so bin
    :math:`n` holds mass :math:`P_n = p(z_n) / \sum_m p(z_m)` (lecture eq. 3 with the evidence
    divided out). The bins are sorted by mass and the fewest heaviest ones whose masses add up to at
    least ``mass`` are counted.

    Parameters
    ----------
    log_density : callable
        ``(n, dim) -> (n,)`` log posterior density, normalised or not (e.g. a model's ``log_joint``).
    lows, highs : array_like, shape (dim,)
        Corners of the box, ``lows < highs``; dim <= 4.
    n_bins : int or sequence of int
        Bins per axis, >= 1.
    mass : float, default 0.99
        Posterior mass the relevant bins must hold, in (0, 1].

    Returns
    -------
    float
        (number of relevant bins) / (total number of bins), in (0, 1].
    """
    if not callable(log_density):
        raise ValueError("log_density must be callable: z of shape (n, dim) -> shape (n,)")
    mass = _mass(mass)
    lows, highs, counts = _box(lows, highs, n_bins)
    probs = _grid_probs(log_density, lows, highs, counts)
    return _smallest_count(probs, mass) / probs.size


class Bins1D(NamedTuple):
    """A 1-D grid with its per-bin posterior mass (chapter "Why approximate inference", lecture eq. 3 and
    Fig. 1; returned by :func:`bins_1d`)."""

    centres: np.ndarray
    """Bin centres, shape (n_bins,)."""
    width: float
    """Bin width :math:`\\Delta z`."""
    mass: np.ndarray
    """Posterior mass of each bin, normalised on the grid (sums to 1), shape (n_bins,)."""
    relevant: np.ndarray
    """Boolean mask of the fewest heaviest bins that hold the requested mass, shape (n_bins,)."""


def bins_1d(log_density, low, high, n_bins, mass=0.99):
    r"""Grid points, bin width, per-bin mass and relevant-bin mask of a 1-D posterior.

    Chapter: Why approximate inference (lecture eq. 3 and Fig. 1, relevant and irrelevant bins).

    Parameters
    ----------
    log_density : callable
        ``(n, 1) -> (n,)`` log posterior density, normalised or not.
    low, high : float
        Interval ``low < high``.
    n_bins : int
        Number of bins, >= 1.
    mass : float, default 0.99
        Mass the relevant bins hold together, in (0, 1].

    Returns
    -------
    Bins1D
        Named tuple ``(centres, width, mass, relevant)``; ``relevant.sum() / n_bins`` equals
        :func:`relevant_fraction` for the same arguments. Ties in mass are broken towards lower index.
    """
    if not callable(log_density):
        raise ValueError("log_density must be callable: z of shape (n, 1) -> shape (n,)")
    mass = _mass(mass)
    low = float(_checks.finite_array("low", low, ndim=0))
    high = float(_checks.finite_array("high", high, ndim=0))
    lows, highs, counts = _box([low], [high], _checks.positive_int("n_bins", n_bins), max_dim=1)
    centres, _ = _axes(lows, highs, counts)
    probs = _grid_probs(log_density, lows, highs, counts)
    k = _smallest_count(probs, mass)
    relevant = np.zeros(probs.size, dtype=bool)
    relevant[np.argsort(-probs, kind="stable")[:k]] = True
    return Bins1D(centres[0], float((high - low) / counts[0]), probs, relevant)


def gaussian_relevant_fraction(dims, half_width=4.0, n_bins=20, mass=0.99, scale=1.0):
    r"""Relevant-bin fraction of an isotropic Gaussian posterior in a fixed box, as the dimension grows.

    Chapter: Why approximate inference (the curse of dimensionality, lecture Sec. 0.0.1 and eq. 3).
    The posterior is :math:`N(0, s^2 I_d)` with ``s = scale``; the box is
    :math:`[-h, h]^d` with ``h = half_width`` cut into ``n_bins`` bins per axis (``n_bins**d`` bins).
    For each ``d`` in ``dims`` the function returns exactly what :func:`relevant_fraction` would
    return for that grid, but without enumerating the bins, so ``d`` can be far beyond 4.

    How: with the midpoint rule, the grid-normalised mass of a bin is
    :math:`\exp(-\lVert z_n\rVert^2 / 2s^2) / Z`, a function of the squared distance of the bin centre
    only. On a symmetric grid each squared centre coordinate, in units of (bin width)^2 / 4, is an
    integer, so the squared distance takes few values. Its distribution over bins is the d-fold
    convolution of the one-axis distribution (product structure), both counted uniformly over bins and
    weighted by posterior mass. Taking distance levels from the centre outwards until ``mass`` is
    reached, plus the fewest bins needed from the last level, gives the exact smallest fraction.
    Convolutions are direct (not FFT) so that the tiny fractions keep full relative precision.

    Parameters
    ----------
    dims : int or sequence of int
        Dimensions, each >= 1, with ``n_bins**d`` below about ``1e260`` (float range).
    half_width : float, default 4.0
        Half the side of the box, > 0.
    n_bins : int, default 20
        Bins per axis, >= 1.
    mass : float, default 0.99
        Posterior mass the relevant bins hold, in (0, 1].
    scale : float, default 1.0
        Posterior standard deviation per axis, > 0.

    Returns
    -------
    ndarray, shape (len(dims),), or float when ``dims`` is a scalar
        The fraction of the ``n_bins**d`` bins that are relevant, for each requested ``d``.

    Notes
    -----
    The computation is exact up to floating-point rounding (tests compare it bin for bin with
    :func:`relevant_fraction` in dimensions 1 to 4); no continuum or asymptotic approximation is made.
    The box is centred on the posterior mean, which is what the symmetry argument needs.
    """
    scalar = np.ndim(dims) == 0
    dim_list = [_checks.positive_int("dims", d) for d in np.atleast_1d(dims).tolist()]
    if not dim_list:
        raise ValueError("dims must contain at least one dimension")
    half_width = _checks.positive_scalar("half_width", half_width)
    n_bins = _checks.positive_int("n_bins", n_bins)
    mass = _mass(mass)
    scale = _checks.positive_scalar("scale", scale)
    d_max = max(dim_list)
    if d_max * math.log(n_bins) > 600.0:
        raise ValueError(
            f"dims: n_bins**d must stay below exp(600) to be counted in floating point; "
            f"got d={d_max}, n_bins={n_bins}"
        )

    width = 2.0 * half_width / n_bins
    # centre of bin j is (j + 0.5 - n/2) * width: four times its square in width^2 units is an integer
    offsets2 = np.arange(n_bins) * 2 + 1 - n_bins  # = 2 (j + 0.5 - n/2), an integer
    levels = offsets2 ** 2  # 4 (z_j / width)^2, integer
    base = int(levels.min())
    steps = levels - base
    step = int(np.gcd.reduce(steps)) if np.any(steps) else 1
    idx = steps // step  # level index per bin along one axis
    centres2 = levels * width ** 2 / 4.0
    log_w_axis = -centres2 / (2.0 * scale ** 2)
    p_axis = np.exp(log_w_axis - logsumexp(log_w_axis))
    count_pmf = np.bincount(idx, minlength=int(idx.max()) + 1) / n_bins  # uniform over bins
    mass_pmf = np.bincount(idx, weights=p_axis, minlength=int(idx.max()) + 1)

    wanted = set(dim_list)
    results = {}
    counts_d, masses_d = np.array([1.0]), np.array([1.0])
    for d in range(1, d_max + 1):
        counts_d = np.convolve(counts_d, count_pmf)  # fraction of bins at each distance level
        masses_d = np.convolve(masses_d, mass_pmf)  # posterior mass at each distance level
        if d not in wanted:
            continue
        cum = np.cumsum(masses_d)
        cum /= cum[-1]
        last = int(min(np.searchsorted(cum, mass, side="left"), cum.size - 1))
        mass_before = cum[last - 1] if last > 0 else 0.0
        n_total = float(n_bins) ** d
        bins_at_level = counts_d[last] * n_total
        per_bin = masses_d[last] / masses_d.sum() / bins_at_level
        # fewest bins of the last level that close the gap (equal masses, so any of them will do)
        needed = math.ceil((mass - mass_before) / per_bin * (1.0 - 1e-12))
        needed = min(max(needed, 1), round(bins_at_level))
        results[d] = min(1.0, float(np.sum(counts_d[:last]) + needed / n_total))
    out = np.array([results[d] for d in dim_list])
    return float(out[0]) if scalar else out
