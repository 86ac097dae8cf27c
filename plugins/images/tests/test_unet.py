"""The `unet` model: the factory contract, class conditioning with a null class, its size."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
import torch
from flowforge_images.models import UNetParams, build_unet, parameter_counts

from flowforge import registry
from flowforge.cli.plugins import report
from flowforge.errors import InvalidArgumentError
from flowforge.testing import ModelFactoryContract


class TestUNetDigits(ModelFactoryContract):
    name = "unet"
    params: ClassVar[dict] = {"channels": 8, "num_classes": 10}
    data_shape = (1, 8, 8)


class TestUNetRGB(ModelFactoryContract):
    name = "unet"
    params: ClassVar[dict] = {"channels": 8}
    data_shape = (3, 16, 16)


def perturbed(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_labels_change_the_output_and_none_is_the_null_class():
    torch.manual_seed(0)
    net = perturbed(build_unet(UNetParams(channels=8, num_classes=10), data_shape=(1, 8, 8)))
    x, t = torch.randn(4, 1, 8, 8), torch.rand(4)
    a = net(x, t, label=torch.tensor([0, 1, 2, 3]))
    b = net(x, t, label=torch.tensor([4, 5, 6, 7]))
    assert (a - b).abs().amax() > 1e-4
    assert torch.equal(net(x, t), net(x, t, label=torch.full((4,), -1)))


def test_unconditional_model_refuses_labels():
    net = build_unet(UNetParams(channels=8), data_shape=(1, 8, 8))
    with pytest.raises(InvalidArgumentError, match="set num_classes"):
        net(torch.randn(2, 1, 8, 8), torch.rand(2), label=torch.tensor([1, 2]))


def test_factory_refuses_non_images_and_odd_sizes():
    with pytest.raises(InvalidArgumentError, match="must be images"):
        build_unet(UNetParams(), data_shape=(2,))
    net = build_unet(UNetParams(channels=8), data_shape=(1, 10, 10))
    with pytest.raises(InvalidArgumentError, match="divisible by 4"):
        net(torch.randn(1, 1, 10, 10), torch.rand(1))


def test_parameter_counts_are_reported_and_base_is_larger():
    counts = parameter_counts()["parameters"]
    small = build_unet(UNetParams(size="small", num_classes=10), data_shape=(1, 28, 28))
    assert counts["small"] == sum(p.numel() for p in small.parameters())
    assert counts["base"] > 3 * counts["small"]
    out = json.dumps(report(registry.current()))
    (images,) = [p for p in json.loads(out)["plugins"] if p["name"] == "images"]
    assert images["details"]["model"]["unet"]["parameters"] == counts
