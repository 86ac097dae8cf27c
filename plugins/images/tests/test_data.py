"""Image datasets: fixed, disjoint, stratified splits; shapes and ranges; the user's own files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flowforge_images.data import Digits, ImageFolder, MNIST5k, PhotoPatches, split_indices
from PIL import Image

from flowforge import registry
from flowforge.errors import SpecError


def test_split_indices_are_disjoint_stratified_and_fixed_by_seed():
    labels = np.repeat(np.arange(10), 50)
    a = split_indices(500, labels, {"train": None, "val": 20, "test": 100}, seed=3)
    b = split_indices(500, labels, {"train": None, "val": 20, "test": 100}, seed=3)
    c = split_indices(500, labels, {"train": None, "val": 20, "test": 100}, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])
    joined = np.concatenate([a["train"], a["val"], a["test"]])
    assert len(joined) == len(set(joined)) == 500
    assert np.bincount(labels[a["test"]]).tolist() == [10] * 10
    assert np.bincount(labels[a["val"]]).tolist() == [2] * 10


def test_split_sizes_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="lower n_train"):
        split_indices(10, None, {"train": 8, "val": 0, "test": 5}, seed=0)


def test_digits_are_8x8_in_unit_range_with_labels():
    data = Digits(n_test=300)
    splits, labels = data.splits(), data.labels()
    assert splits["train"].shape == (1497, 1, 8, 8) and splits["test"].shape == (300, 1, 8, 8)
    assert float(splits["train"].min()) == 0.0 and float(splits["train"].max()) == 1.0
    assert labels["test"].dtype == torch.int64 and torch.bincount(labels["test"]).min() >= 29
    assert data.record()["test"]["size"] == 300


def test_mnist5k_has_4500_train_and_500_test_with_50_per_class():
    data = registry.create("dataset", "mnist5k")
    splits, labels = data.splits(), data.labels()
    assert splits["train"].shape == (4500, 1, 28, 28) and splits["test"].shape == (500, 1, 28, 28)
    assert torch.bincount(labels["test"]).tolist() == [50] * 10
    assert 0.0 <= float(splits["test"].min()) and float(splits["test"].max()) <= 1.0
    assert data.num_classes == 10


def test_image_datasets_share_one_scale_for_every_pixel():
    train = MNIST5k().splits()["train"]
    st = MNIST5k().fit_standardizer(train)
    z = st.encode(train)
    assert float(z.min()) == -1.0 and float(z.max()) == 1.0
    assert torch.allclose(st.decode(z), train)


def test_photo_patches_hold_out_whole_photos():
    data = PhotoPatches(
        size=16,
        patches_per_photo=8,
        photos=("camera", "moon", "china"),
        test_photos=("china",),
        channels=1,
    )
    splits = data.splits()
    assert splits["train"].shape == (16, 1, 16, 16) and splits["test"].shape == (8, 1, 16, 16)
    assert data.labels() is None
    with pytest.raises(SpecError, match="test_photos"):
        registry.create("dataset", "photo_patches", photos=["camera"], test_photos=["moon"])


def test_image_folder_reads_class_subfolders_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
    data = ImageFolder(path=str(tmp_path), size=8, n_test=4)
    assert data.splits()["train"].shape == (8, 3, 8, 8)
    assert torch.bincount(data.labels()["test"]).tolist() == [2, 2]
    archive = tmp_path / "x.npz"
    np.savez(archive, images=rng.integers(0, 256, (10, 9, 9), dtype=np.uint8))
    gray = ImageFolder(path=str(archive), n_test=2)
    assert gray.splits()["test"].shape == (2, 1, 9, 9) and gray.labels() is None


def test_image_folder_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, pixels=np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"data.params.path: .* no array 'images'"):
        ImageFolder(path=str(bad)).splits()
    with pytest.raises(ValueError, match="neither a folder"):
        ImageFolder(path=str(tmp_path / "missing")).splits()
