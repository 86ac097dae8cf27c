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

    def draw_labelled(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """`draw(n, generator)` and each point's integer class `(n,)` (None: unlabelled)."""
        return self.draw(n, generator), None

    def _cut(self, x: Tensor) -> dict[str, Tensor]:
        train, val, test = torch.split(x, [self.n_train, self.n_val, self.n_test])
        return {"train": train, "val": val, "test": test}

    def _draw_all(self) -> tuple[Tensor, Tensor | None]:
        gen = torch.Generator().manual_seed(self.seed)
        return self.draw_labelled(self.n_train + self.n_val + self.n_test, gen)

    def splits(self) -> dict[str, Tensor]:
        return self._cut(self._draw_all()[0])

    def labels(self) -> dict[str, Tensor] | None:
        labels = self._draw_all()[1]
        return None if labels is None else self._cut(labels)
