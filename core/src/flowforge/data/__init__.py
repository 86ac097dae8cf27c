"""Datasets (fixed splits in data units, optional fresh draws) and standardisation."""

from flowforge.data.base import SPLITS, Dataset
from flowforge.data.gaussian_mixture_2d import GaussianMixture2D
from flowforge.data.standardize import Standardizer
from flowforge.data.synthetic import SyntheticDataset
from flowforge.data.two_moons import TwoMoons

__all__ = ["SPLITS", "Dataset", "GaussianMixture2D", "Standardizer", "SyntheticDataset", "TwoMoons"]
