"""Metrics: the shipped LeNets (checksum, recorded accuracy), Frechet distance, precision/recall,
PSNR/SSIM, and the classical restoration baselines."""

from __future__ import annotations

import json
import math

import pytest
import torch
from flowforge_images.baselines import bicubic, classical_baselines
from flowforge_images.data import Digits, MNIST5k
from flowforge_images.metrics.features import precision_recall
from flowforge_images.metrics.image_quality import psnr_ssim
from flowforge_images.metrics.lenet import lenet_outputs, load_lenet, sha256, weights_dir

from flowforge import registry
from flowforge.metrics.frechet import frechet_distance


@pytest.mark.parametrize(("name", "data"), [("lenet_mnist5k", MNIST5k), ("lenet_digits", Digits)])
def test_shipped_lenet_matches_its_record(name, data):
    record = json.loads((weights_dir() / f"{name}.json").read_text())
    assert sha256(weights_dir() / f"{name}.pt") == record["sha256"]
    assert record["test_accuracy"] >= 0.95
    dataset = data()
    net = load_lenet(dataset.data_shape)
    _, logits = lenet_outputs(net, dataset.splits()["test"])
    acc = float((logits.argmax(1) == dataset.labels()["test"]).double().mean())
    assert acc == pytest.approx(record["test_accuracy"], abs=1e-4)


def test_lenet_refuses_other_shapes():
    with pytest.raises(ValueError, match="mnist5k or digits"):
        load_lenet((3, 32, 32))


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(200_000, 3, generator=gen, dtype=torch.float64)
    b = 2.0 * torch.randn(200_000, 3, generator=gen, dtype=torch.float64) + 1.0
    # N(0, I) vs N(1, 4 I): |mu|^2 + tr(I + 4I - 2 * 2I) = 3 + 3
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.02)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_precision_recall_see_mode_dropping():
    gen = torch.Generator().manual_seed(0)
    real = torch.cat(
        [torch.randn(300, 2, generator=gen) - 5, torch.randn(300, 2, generator=gen) + 5]
    )
    half = torch.randn(600, 2, generator=gen) - 5  # one mode only
    p, r = precision_recall(real, half)
    assert p > 0.9 and 0.4 < r < 0.6
    p, r = precision_recall(real, real + 0.01)
    assert p > 0.95 and r > 0.95


def test_psnr_ssim_of_identical_and_noisy_images():
    x = Digits().splits()["test"][:8]
    noisy = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    p, s = psnr_ssim(x, noisy)
    assert 18 < p < 23 and 0.5 < s < 0.99
    assert psnr_ssim(x, x)[0] == math.inf and psnr_ssim(x, x)[1] == pytest.approx(1.0)


def test_bicubic_and_wiener_beat_the_raw_degradation():
    x = MNIST5k().splits()["test"][:32].double()
    down = registry.get("operator", "downsample").build({"factor": 2}, data_shape=(1, 28, 28))
    y = down.forward(x)
    assert (
        psnr_ssim(x, bicubic(y.reshape(-1, 1, 14, 14), (1, 28, 28)))[0]
        > psnr_ssim(x, classical_baselines(down, y, (1, 28, 28), x)["degraded"])[0]
    )
    blur = registry.get("operator", "blur").build(
        {"std": 1.5, "noise_std": 0.01}, data_shape=(1, 28, 28)
    )
    yb = blur.simulate(x, torch.Generator().manual_seed(0))
    out = classical_baselines(blur, yb, (1, 28, 28), x)
    assert psnr_ssim(x, out["wiener"])[0] > psnr_ssim(x, out["degraded"].clamp(0, 1))[0] + 1
