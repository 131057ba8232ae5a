"""Example models: log joint densities vectorised over samples, with exact answers where they exist."""
from .gaussian import ConjugateGaussian, CorrelatedGaussian

__all__ = ["ConjugateGaussian", "CorrelatedGaussian"]
