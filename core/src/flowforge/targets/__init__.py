"""Analytic targets with exact predictions, likelihoods and samples: ground truth for tests and
benchmarks (Gaussian mixtures for continuous states, Markov chains for token sequences)."""

from flowforge.targets.gaussian_mixture import GaussianMixture
from flowforge.targets.markov_chain import MarkovChain
from flowforge.targets.posterior import GaussianMixturePosterior, mixture_posterior

__all__ = ["GaussianMixture", "GaussianMixturePosterior", "MarkovChain", "mixture_posterior"]
