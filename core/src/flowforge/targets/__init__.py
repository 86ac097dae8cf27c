"""Analytic targets with exact predictions and samples: ground truth for tests and benchmarks."""

from flowforge.targets.gaussian_mixture import GaussianMixture

__all__ = ["GaussianMixture"]
