"""Datasets: held-out splits for training and evaluation, and fresh draws for baselines.

A dataset returns tensors in data units; training standardises them with a `Standardizer` fitted
on the train split, and every metric is computed back in data units.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import torch
from torch import Tensor

from flowforge.data.standardize import Standardizer
from flowforge.errors import InvalidArgumentError

SPLITS = ("train", "val", "test")


class Dataset(abc.ABC):
    """Base of all datasets: `splits()` gives fixed train/val/test tensors `(N, *data_shape)`.

    `draw(n, generator)` gives fresh independent samples; only datasets with a generator of
    their own (`generative = True`) support it, and metrics use it for sampling-noise baselines.

    >>> data = registry.create("dataset", "two_moons")
    >>> train = data.splits()["train"]          # (n_train, 2), the same on every call
    >>> fresh = data.draw(500, torch.Generator().manual_seed(1))
    """

    generative: ClassVar[bool] = False

    @abc.abstractmethod
    def splits(self) -> dict[str, Tensor]:
        """The fixed splits, keyed `train`, `val`, `test`; each `(N, *data_shape)` float32."""

    def draw(self, n: int, generator: torch.Generator) -> Tensor:
        """`n` fresh samples `(n, *data_shape)` from `generator`, independent of the splits."""
        raise InvalidArgumentError(
            f"dataset {type(self).__name__} is a fixed set of points and cannot draw fresh "
            "samples; use a generative dataset or a metric that needs no baseline"
        )

    def labels(self) -> dict[str, Tensor] | None:
        """Integer class labels `(N,)` of each split, aligned with `splits()`; None if unlabelled.

        Class-conditional couplings (`train.coupling: class_conditional`) pair within a class.
        """
        return None

    def fit_standardizer(self, train: Tensor) -> Standardizer:
        """The map to model space fitted on `train (N, *data_shape)`: per coordinate by default.

        Datasets whose coordinates share one scale (image pixels) override it with one mean and
        std for all, so rarely lit pixels are not blown up by their tiny per-pixel std.
        """
        return Standardizer.fit(train)

    def log_prob(self, x: Tensor) -> Tensor | None:
        """Exact log-density of the data at `x (B, *data_shape)` -> `(B,)`; None if unknown."""
        return None

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape of one data point."""
        return tuple(self.splits()["train"].shape[1:])
