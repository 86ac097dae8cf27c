"""Synthetic datasets: a seeded generator of points, cut into fixed train/val/test splits."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Annotated, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from flowforge.data.base import Dataset


@dataclass(frozen=True)
class SyntheticDataset(Dataset):
    """Abstract: subclasses implement `draw`; the splits are one draw from `seed`, cut in three.

    Splits depend only on the dataset's own `seed` and sizes, never on the experiment seed, so
    every experiment on the same dataset sees the same data.
    """

    generative: ClassVar[bool] = True

    n_train: Annotated[int, Field(ge=1, description="training points")] = 20000
    n_val: Annotated[int, Field(ge=0, description="validation points")] = 2000
    n_test: Annotated[int, Field(ge=1, description="held-out test points for the metrics")] = 2000
    seed: Annotated[int, Field(ge=0, description="seed of the fixed splits")] = 0

    @abc.abstractmethod
    def draw(self, n: int, generator: torch.Generator) -> Tensor: ...

    def splits(self) -> dict[str, Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        x = self.draw(self.n_train + self.n_val + self.n_test, gen)
        train, val, test = torch.split(x, [self.n_train, self.n_val, self.n_test])
        return {"train": train, "val": val, "test": test}
