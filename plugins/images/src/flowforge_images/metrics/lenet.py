"""The LeNet-style digit classifiers behind `FD_lenet`: trained in this repository, not downloaded.

Two classifiers ship as small weight files in `flowforge_images/weights/`, each with a JSON
record of its sha256, training data and held-out accuracy (written by `scripts/train_lenet.py`):
`lenet_mnist5k` for 28x28 digits and `lenet_digits` for scikit-learn's 8x8 digits. Their
penultimate layer (84 features, as in LeCun et al. 1998) is the feature space of the Frechet
distance and of precision/recall.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowforge.errors import CheckpointError, InvalidArgumentError

FEATURES = 84
WEIGHTS = {(1, 28, 28): "lenet_mnist5k", (1, 8, 8): "lenet_digits"}


class LeNet(nn.Module):
    """`x (B, 1, S, S)` in [0, 1] -> logits `(B, 10)`; `features(x)` -> `(B, 84)`.

    For 28x28: two 5x5 convolutions (6 and 16 maps) with max-pooling, then 120 and 84 units
    (LeNet-5). For 8x8 the convolutions are 3x3 with padding, so two poolings leave 2x2 maps.
    """

    def __init__(self, image_size: int = 28, classes: int = 10):
        super().__init__()
        if image_size not in (8, 28):
            raise InvalidArgumentError(f"LeNet: image_size 8 or 28, got {image_size}")
        k, pad = (5, 2) if image_size == 28 else (3, 1)
        self.image_size = image_size
        self.conv1 = nn.Conv2d(1, 6, k, padding=pad)
        self.conv2 = nn.Conv2d(6, 16, k, padding=0 if image_size == 28 else 1)
        flat = 16 * (5 * 5 if image_size == 28 else 2 * 2)
        self.fc1 = nn.Linear(flat, 120)
        self.fc2 = nn.Linear(120, FEATURES)
        self.fc3 = nn.Linear(FEATURES, classes)

    def features(self, x: Tensor) -> Tensor:
        """The 84 penultimate activations (after ReLU)."""
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        h = F.relu(self.fc1(h.flatten(1)))
        return F.relu(self.fc2(h))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc3(self.features(x))


def weights_dir() -> Path:
    return Path(str(resources.files("flowforge_images") / "weights"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_lenet(data_shape: tuple[int, ...], device: torch.device | str = "cpu") -> LeNet:
    """The shipped classifier for images of `data_shape`, checked against its recorded sha256."""
    name = WEIGHTS.get(tuple(data_shape))
    if name is None:
        shapes = ", ".join("x".join(map(str, s)) for s in WEIGHTS)
        raise InvalidArgumentError(
            f"the LeNet metrics have classifiers for {shapes} digit images, not "
            f"{'x'.join(map(str, data_shape))}; use mnist5k or digits data"
        )
    file = weights_dir() / f"{name}.pt"
    record = json.loads((weights_dir() / f"{name}.json").read_text())
    if sha256(file) != record["sha256"]:
        raise CheckpointError(
            f"{file} does not match its recorded sha256 {record['sha256']}; reinstall "
            "flowforge-images or retrain with scripts/train_lenet.py"
        )
    net = LeNet(image_size=data_shape[-1])
    net.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
    return net.eval().to(device)


@torch.no_grad()
def lenet_outputs(net: LeNet, x: Tensor, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """Features `(N, 84)` and logits `(N, 10)` of images `x (N, 1, S, S)` in data units [0, 1]
    (clamped to it: samples may overshoot), float64, on the CPU."""
    device = next(net.parameters()).device
    feats, logits = [], []
    for chunk in x.split(batch_size):
        f = net.features(chunk.to(device, torch.float32).clamp(0, 1))
        feats.append(f.double().cpu())
        logits.append(net.fc3(f).double().cpu())
    return torch.cat(feats), torch.cat(logits)
