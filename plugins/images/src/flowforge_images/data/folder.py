"""The user's own images: a folder of PNG/JPEG files (class sub-folders) or an `.npz` archive."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from flowforge.errors import InvalidArgumentError
from flowforge_images.data.arrays import ImageArrays, ImageDataset

SUFFIXES = (".png", ".jpg", ".jpeg")


def read_folder(root: Path, size: int | None, channels: int) -> ImageArrays:
    """Images under `root`: files directly in it (unlabelled) or in class sub-folders (labelled,
    classes numbered in sorted folder-name order). Resized to `size` if given, else all must
    share one size."""
    from PIL import Image

    dirs = sorted(d for d in root.iterdir() if d.is_dir())
    groups = [(i, d) for i, d in enumerate(dirs)] if dirs else [(None, root)]
    images, labels = [], []
    for label, folder in groups:
        for file in sorted(f for f in folder.iterdir() if f.suffix.lower() in SUFFIXES):
            with Image.open(file) as img:
                img = img.convert("L" if channels == 1 else "RGB")
                if size is not None:
                    img = img.resize((size, size), Image.Resampling.BICUBIC)
                array = np.asarray(img, dtype=np.float32) / 255.0
            images.append(array[None] if channels == 1 else array.transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise InvalidArgumentError(
            f"data.params.path: no {'/'.join(SUFFIXES)} files in {root} or its sub-folders"
        )
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise InvalidArgumentError(
            f"data.params.path: images in {root} have different sizes {sorted(shapes)[:3]}...; "
            "set `size` to resize them all"
        )
    y = None if labels[0] is None else np.array(labels, dtype=np.int64)
    return ImageArrays(np.stack(images), y)


def read_npz(file: Path) -> ImageArrays:
    """`images` (N, H, W), (N, C, H, W) or (N, H, W, C) with C in 1, 3 (uint8 0-255 or floats
    in [0, 1]) and optional integer `labels` (N,) from an `.npz` archive."""
    with np.load(file, allow_pickle=False) as archive:
        if "images" not in archive:
            raise InvalidArgumentError(
                f"data.params.path: {file} has no array 'images' (it has {list(archive)})"
            )
        x = archive["images"]
        y = archive["labels"] if "labels" in archive else None
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InvalidArgumentError(
            f"data.params.path: images of shape {x.shape} in {file}; give (N, H, W), "
            "(N, C, H, W) or (N, H, W, C) with C = 1 or 3"
        )
    x = x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
    if x.min() < 0 or x.max() > 1:
        raise InvalidArgumentError(
            f"data.params.path: pixel values of {file} span [{x.min()}, {x.max()}]; give uint8 "
            "or floats in [0, 1]"
        )
    if y is not None and (y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer)):
        raise InvalidArgumentError(
            f"data.params.path: labels in {file} must be integers of shape ({x.shape[0]},)"
        )
    return ImageArrays(x, None if y is None else y.astype(np.int64))


@dataclass(frozen=True, kw_only=True)
class ImageFolder(ImageDataset):
    """Images from `path`: a folder of PNG/JPEG files, with one sub-folder per class, or an
    `.npz` archive with `images` and optional `labels`. Splits fixed by `seed` (stratified by
    class when labelled).

    >>> data = ImageFolder(path="my_images/", size=32, channels=3, n_test=100)
    """

    path: Annotated[str, Field(description="a folder of PNG/JPEG (class sub-folders) or a .npz")]
    size: Annotated[
        int | None, Field(ge=4, description="resize folder images to size x size (None: keep)")
    ] = None
    channels: Literal[1, 3] = 3
    n_test: Annotated[int, Field(ge=1, description="held-out test images")] = 100

    def load(self) -> ImageArrays:
        root = Path(self.path)
        if root.is_dir():
            return read_folder(root, self.size, self.channels)
        if root.suffix == ".npz" and root.is_file():
            return read_npz(root)
        raise InvalidArgumentError(
            f"data.params.path: {root} is neither a folder of images nor an .npz file "
            f"(relative paths are read from {Path.cwd()})"
        )
