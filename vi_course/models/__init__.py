"""Example models: log joint densities vectorised over samples, with exact answers where they exist."""
from .beta_bernoulli import BetaBernoulli
from .gaussian import ConjugateGaussian, CorrelatedGaussian
from .inverse_gamma_normal import InverseGammaNormal
from .mixture import GaussianMixture

__all__ = ["ConjugateGaussian", "CorrelatedGaussian", "InverseGammaNormal", "BetaBernoulli",
           "GaussianMixture"]
