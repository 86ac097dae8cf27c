"""Analytic targets with exact predictions and samples: ground truth for tests and benchmarks."""

from flowforge.targets.gaussian_mixture import GaussianMixture
from flowforge.targets.posterior import GaussianMixturePosterior, mixture_posterior

__all__ = ["GaussianMixture", "GaussianMixturePosterior", "mixture_posterior"]
