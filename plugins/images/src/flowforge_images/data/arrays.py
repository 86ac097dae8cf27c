"""Image datasets held in memory: pixel arrays in [0, 1], labels, and splits fixed by a seed."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from flowforge.data.base import SPLITS, Dataset
from flowforge.data.standardize import Standardizer
from flowforge.errors import InvalidArgumentError


@dataclass(frozen=True)
class ImageArrays:
    """A source's images `(N, C, H, W)`, float32 in [0, 1], and integer labels `(N,)` or None."""

    images: np.ndarray
    labels: np.ndarray | None


def split_indices(
    n: int, labels: np.ndarray | None, sizes: dict[str, int | None], seed: int
) -> dict[str, np.ndarray]:
    """Disjoint index sets per split, drawn with `seed`; stratified by label when labelled.

    `sizes` gives `val` and `test` (and `train`, None: all the rest). With labels each split
    takes its share of every class (rounded so the sizes are exact), so a 500-image test set of
    a balanced source has 50 images of each class.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if labels is not None:
        # a stable sort by label of a random permutation: classes in turn, random within each;
        # then interleave classes so every prefix is as balanced as possible
        by_class = [order[labels[order] == c] for c in np.unique(labels)]
        rank = np.concatenate([np.arange(len(ix)) / len(ix) for ix in by_class])
        order = np.concatenate(by_class)[np.argsort(rank, kind="stable")]
    need = sum(v for k, v in sizes.items() if k != "train" and v) + (sizes.get("train") or 0)
    if need > n:
        raise InvalidArgumentError(
            f"the splits ask for {need} images ({sizes}) but the source has {n}; lower n_train, "
            "n_val or n_test"
        )
    out, start = {}, 0
    for name in ("test", "val"):
        k = sizes.get(name) or 0
        out[name] = np.sort(order[start : start + k])
        start += k
    rest = order[start:]
    k = sizes.get("train")
    out["train"] = np.sort(rest if k is None else rest[:k])
    return out


@dataclass(frozen=True)
class ImageDataset(Dataset):
    """Abstract: an in-memory image source (`load`) cut into train/val/test by `seed`.

    Data units are pixel intensities in [0, 1]; the map to model space is one scale for every
    pixel, `[0, 1] -> [-1, 1]` (`fit_standardizer`). `record()` describes the splits (sizes,
    seed, per-class counts and an index checksum), for the run directory.
    """

    n_val: Annotated[int, Field(ge=0, description="validation images")] = 0
    n_test: Annotated[int, Field(ge=1, description="held-out test images")] = 500
    n_train: Annotated[
        int | None, Field(ge=1, description="training images (None: all that remain)")
    ] = None
    seed: Annotated[int, Field(ge=0, description="seed of the fixed splits")] = 0

    @abc.abstractmethod
    def load(self) -> ImageArrays:
        """Every image of the source, in a fixed order."""

    @cached_property
    def _arrays(self) -> ImageArrays:
        arrays = self.load()
        images = np.asarray(arrays.images, dtype=np.float32)
        if images.ndim != 4:
            raise InvalidArgumentError(
                f"{type(self).__name__}: images must be (N, C, H, W), got {images.shape}"
            )
        return ImageArrays(images, arrays.labels)

    @cached_property
    def _index(self) -> dict[str, np.ndarray]:
        arrays = self._arrays
        sizes = {"train": self.n_train, "val": self.n_val, "test": self.n_test}
        return split_indices(len(arrays.images), arrays.labels, sizes, self.seed)

    def splits(self) -> dict[str, Tensor]:
        return {k: torch.from_numpy(self._arrays.images[self._index[k]]) for k in SPLITS}

    def labels(self) -> dict[str, Tensor] | None:
        labels = self._arrays.labels
        if labels is None:
            return None
        return {k: torch.from_numpy(labels[self._index[k]].astype(np.int64)) for k in SPLITS}

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self._arrays.images.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes (0: unlabelled)."""
        labels = self._arrays.labels
        return 0 if labels is None else int(labels.max()) + 1

    def fit_standardizer(self, train: Tensor) -> Standardizer:
        """`z = 2 x - 1` for every pixel: one scale, so dark borders stay exactly dark."""
        shape = tuple(train.shape[1:])
        return Standardizer(torch.full(shape, 0.5), torch.full(shape, 0.5))

    def record(self) -> dict[str, Any]:
        """The splits as a run records them: sizes, seed, class counts, an index checksum."""
        labels = self._arrays.labels
        out: dict[str, Any] = {"seed": self.seed, "source": type(self).__name__}
        for k in SPLITS:
            ix = self._index[k]
            entry: dict[str, Any] = {"size": len(ix), "index_sum": int(ix.sum())}
            if labels is not None:
                entry["per_class"] = np.bincount(labels[ix], minlength=self.num_classes).tolist()
            out[k] = entry
        return out
