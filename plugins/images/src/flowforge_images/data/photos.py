"""Patches of the photographs bundled with scikit-image and scikit-learn (super-resolution data)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from flowforge.errors import InvalidArgumentError
from flowforge_images.data.arrays import ImageArrays, ImageDataset

# Natural photographs inside the scikit-image wheel (skimage.data, no download) and the two
# JPEGs inside scikit-learn's (sklearn.datasets.load_sample_images).
SKIMAGE_PHOTOS = (
    "astronaut",
    "camera",
    "cat",
    "coffee",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "retina",
    "rocket",
)
SKLEARN_PHOTOS = ("china", "flower")
PHOTOS = SKIMAGE_PHOTOS + SKLEARN_PHOTOS


def load_photo(name: str) -> np.ndarray:
    """Photo `name` as `(H, W, 3)` float32 in [0, 1] (grey photos repeated over channels)."""
    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        image = load_sample_image(f"{name}.jpg")
    elif name in SKIMAGE_PHOTOS:
        import skimage.data

        image = getattr(skimage.data, name)()
    else:
        raise InvalidArgumentError(f"unknown photo {name!r}; choose from {', '.join(PHOTOS)}")
    image = np.asarray(image, dtype=np.float32) / 255.0
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image[..., :3]


@dataclass(frozen=True)
class PhotoPatches(ImageDataset):
    """Random square patches of bundled photos; the test split comes from photos of its own.

    `patches_per_photo` patches of `size` pixels are cut from every photo at positions drawn
    from `seed`; `test_photos` give the test split (and `val_photos` the validation split), so
    no held-out patch overlaps a training one. `channels: 1` converts to luminance (ITU-R 601).
    The split sizes follow from the photo lists (`n_test`, `n_val` are not used).

    >>> data = PhotoPatches(size=32, patches_per_photo=256)
    >>> data.splits()["train"].shape      # (2560, 3, 32, 32)
    """

    size: Annotated[int, Field(ge=4, le=256, description="patch side in pixels")] = 32
    patches_per_photo: Annotated[int, Field(ge=1, description="patches cut from each photo")] = 512
    channels: Literal[1, 3] = 3
    photos: Annotated[tuple[str, ...], Field(description="photos to cut patches from")] = PHOTOS
    test_photos: Annotated[tuple[str, ...], Field(description="held-out photos")] = (
        "coffee",
        "flower",
    )
    val_photos: Annotated[tuple[str, ...], Field(description="validation photos")] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.photos) - set(PHOTOS))
        if unknown:
            raise InvalidArgumentError(
                f"photos: unknown {', '.join(unknown)}; choose from {', '.join(PHOTOS)}"
            )
        held = set(self.test_photos) | set(self.val_photos)
        if not set(self.test_photos) or not held <= set(self.photos):
            raise InvalidArgumentError(
                "test_photos (at least one) and val_photos must be among `photos`, got "
                f"test {self.test_photos}, val {self.val_photos}"
            )
        if set(self.test_photos) & set(self.val_photos) or held == set(self.photos):
            raise InvalidArgumentError(
                "test_photos and val_photos must be disjoint and leave photos for training"
            )

    def load(self) -> ImageArrays:
        return ImageArrays(self._patches[0], None)

    @cached_property
    def _patches(self) -> tuple[np.ndarray, np.ndarray]:
        """All patches `(N, C, size, size)` and the index of the photo each comes from."""
        rng = np.random.default_rng(self.seed)
        patches, source = [], []
        for k, name in enumerate(self.photos):
            image = load_photo(name)
            h, w = image.shape[:2]
            if min(h, w) < self.size:
                raise InvalidArgumentError(f"size {self.size} exceeds photo {name} ({h}x{w})")
            top = rng.integers(0, h - self.size + 1, self.patches_per_photo)
            left = rng.integers(0, w - self.size + 1, self.patches_per_photo)
            for i, j in zip(top, left, strict=True):
                patches.append(image[i : i + self.size, j : j + self.size])
            source += [k] * self.patches_per_photo
        x = np.stack(patches).transpose(0, 3, 1, 2)
        if self.channels == 1:
            weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
            x = np.einsum("nchw,c->nhw", x, weights)[:, None]
        return np.ascontiguousarray(x, dtype=np.float32), np.array(source)

    @cached_property
    def _index(self) -> dict[str, np.ndarray]:
        source = np.array([self.photos[k] for k in self._patches[1]])
        test = np.isin(source, self.test_photos)
        val = np.isin(source, self.val_photos)
        return {
            "train": np.flatnonzero(~test & ~val),
            "val": np.flatnonzero(val),
            "test": np.flatnonzero(test),
        }
