"""The operator contract on settings the registered defaults do not reach (1-D, complex, noisy)."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from flowforge.operators import Blur, Compose, Dense, Downsample, Mask, random_mask
from flowforge.testing import OperatorContract


class TestBoxMask(OperatorContract):
    name = "mask"
    params: ClassVar = {"box": (2, 1, 3, 4)}


class TestPixelMaskWithNoise(OperatorContract):
    name = "mask"
    params: ClassVar = {"fraction": 0.25, "mask_dims": 2, "seed": 3, "noise_std": 0.1}
    signal_shape = (3, 16, 16)


class TestBlurSequences(OperatorContract):
    name = "blur"
    params: ClassVar = {"std": 1.0, "spatial_dims": 1, "noise_std": 0.05}
    signal_shape = (2, 32)


class TestBlurVectors(OperatorContract):
    name = "blur"
    params: ClassVar = {"std": 0.7, "spatial_dims": 1}
    signal_shape = (12,)


class TestDownsampleVectors(OperatorContract):
    name = "downsample"
    params: ClassVar = {"factor": 3, "spatial_dims": 1}
    signal_shape = (12,)


class TestDownsample4x(OperatorContract):
    name = "downsample"
    params: ClassVar = {"factor": 4, "noise_std": 0.1}
    signal_shape = (1, 8, 16)


class TestMRIComplex(OperatorContract):
    name = "mri"
    params: ClassVar = {"complex_signal": True, "acceleration": 2, "seed": 1}
    signal_shape = (2, 8, 8)


class TestMRIEquispacedOddSize(OperatorContract):
    name = "mri"
    params: ClassVar = {"pattern": "equispaced", "acceleration": 3, "center_fraction": 0.2}
    signal_shape = (1, 9, 10)


class TestDenseOverdetermined(OperatorContract):
    name = "dense"
    params: ClassVar = {"measurements": 12, "noise_std": 0.2}
    signal_shape = (8,)


class TestComposeDenseAfterDownsample(OperatorContract):
    name = "compose"
    params: ClassVar = {
        "operators": [
            {"name": "downsample", "params": {"factor": 2, "spatial_dims": 1}},
            {"name": "dense", "params": {"measurements": 3}},
        ],
        "noise_std": 0.1,
    }
    signal_shape = (2, 8)


class TestBlurAsymmetricKernel(OperatorContract):
    """A hand-built blur with a kernel that is not symmetric (complex transfer function)."""

    signal_shape = (2, 7, 6)

    @pytest.fixture
    def component(self):
        kernel = torch.rand(3, 2, generator=torch.Generator().manual_seed(0))
        return Blur(kernel, self.signal_shape)


class TestRankDeficientDense(OperatorContract):
    """Repeated rows: A has more rows than rank, so A^+ must drop the zero singular values."""

    signal_shape = (6,)

    @pytest.fixture
    def component(self):
        w = torch.randn(3, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        return Dense(torch.cat([w, w[:2]]), noise_std=0.3)


class TestComposeHandBuilt(OperatorContract):
    signal_shape = (4, 4)

    @pytest.fixture
    def component(self):
        gen = torch.Generator().manual_seed(2)
        return Compose(Downsample(2, (4, 4)), Mask(random_mask((2, 2), 0.5, gen)))
