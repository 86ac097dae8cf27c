"""scikit-learn's handwritten digits: 1,797 images of 8x8 pixels with labels 0-9."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import Field

from flowforge_images.data.arrays import ImageArrays, ImageDataset


@dataclass(frozen=True)
class Digits(ImageDataset):
    """The UCI optical digits shipped with scikit-learn (`sklearn.datasets.load_digits`).

    Intensities 0-16 scaled to [0, 1]; shape `(1, 8, 8)`; 10 classes. Small enough that a CPU
    trains a useful prior in seconds, so the tests use it.

    >>> data = Digits(n_test=300)
    >>> data.splits()["train"].shape      # (1497, 1, 8, 8)
    """

    n_test: Annotated[int, Field(ge=1, description="held-out test images")] = 300

    def load(self) -> ImageArrays:
        from sklearn.datasets import load_digits

        raw = load_digits()
        images = (raw.images / 16.0).astype(np.float32)[:, None]
        return ImageArrays(images, raw.target.astype(np.int64))
