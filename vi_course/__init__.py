"""vi_course: the companion library of the course on stochastic variational inference.

Every concept the chapters teach lives here; the chapters, the exercises and the tests import it.
Sign convention (kept everywhere): functions named ``elbo`` return the ELBO, a quantity to maximise;
a function returning a loss says so in its name (``negative_elbo``).

Modules, in the order the book teaches them: :mod:`~vi_course.models` (example targets),
:mod:`~vi_course.grid`, :mod:`~vi_course.importance`, :mod:`~vi_course.divergences`,
:mod:`~vi_course.families`, :mod:`~vi_course.elbo`, :mod:`~vi_course.gradients`,
:mod:`~vi_course.optim`, :mod:`~vi_course.discrete`, :mod:`~vi_course.transforms`, :mod:`~vi_course.cavi`, :mod:`~vi_course.symbolic` (SymPy helpers of
the exercises), and the two
entry points :func:`advi` and :func:`cavi_gmm`.
"""
from . import (  # noqa: F401  (re-exported modules)
    cavi,
    discrete,
    divergences,
    elbo,
    families,
    gradients,
    grid,
    importance,
    models,
    optim,
    symbolic,
    transforms,
)
from .advi import advi
from .cavi import cavi_gmm

__all__ = [
    "models", "grid", "importance", "divergences", "families", "elbo", "gradients", "optim",
    "transforms", "discrete", "cavi", "symbolic", "advi", "cavi_gmm",
]
__version__ = "0.1.0"
