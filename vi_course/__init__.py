"""vi_course: the companion library of the course on stochastic variational inference.

Every concept the chapters teach lives here; the chapters, the exercises and the tests import it.
Sign convention (kept everywhere): functions named ``elbo`` return the ELBO, a quantity to maximise;
a function returning a loss says so in its name (``negative_elbo``).
"""
from . import models

__all__ = ["models"]
__version__ = "0.1.0"
