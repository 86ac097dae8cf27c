"""What the image tasks share: the split record, digit-feature scoring, sample labels."""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import Tensor

from flowforge.data.base import Dataset
from flowforge.experiment.directory import RunDir
from flowforge.metrics.frechet import frechet_distance
from flowforge_images.metrics.features import class_accuracy, precision_recall
from flowforge_images.metrics.lenet import WEIGHTS, lenet_outputs, load_lenet

SPLITS_FILE = "splits.json"


def record_splits(run: RunDir, dataset: Dataset) -> None:
    """Write the dataset's splits (sizes, seed, per-class counts, index checksums) to the run."""
    record: dict[str, Any] = getattr(dataset, "record", lambda: {})()
    if record:
        (run.root / SPLITS_FILE).write_text(json.dumps(record, indent=2) + "\n")


def has_lenet(data_shape: tuple[int, ...]) -> bool:
    """Whether an in-repo LeNet classifier scores images of `data_shape`."""
    return tuple(data_shape) in WEIGHTS


class DigitScorer:
    """LeNet scores of sample sets against one `test` split, whose features are computed once
    (a sweep scores many sample sets against the same split)."""

    def __init__(self, test: Tensor, device: torch.device | str):
        self.net = load_lenet(tuple(test.shape[1:]), device)
        self.f_test = lenet_outputs(self.net, test)[0]

    def __call__(self, samples: Tensor, labels: Tensor | None) -> dict[str, float]:
        """FD_lenet, precision and recall against the test split, and the accuracy of
        class-conditional samples for their `labels` (when given), in data units."""
        f_fake, logits = lenet_outputs(self.net, samples)
        precision, recall = precision_recall(self.f_test, f_fake)
        out = {
            "fd_lenet": frechet_distance(f_fake, self.f_test),
            "lenet_precision": precision,
            "lenet_recall": recall,
        }
        if labels is not None:
            out["class_accuracy"] = class_accuracy(logits, labels)
        return out


def digit_scores(
    samples: Tensor, test: Tensor, labels: Tensor | None, device: torch.device
) -> dict[str, float]:
    """`DigitScorer(test, device)(samples, labels)`: one sample set scored."""
    return DigitScorer(test, device)(samples, labels)


def balanced_labels(n: int, num_classes: int) -> Tensor:
    """`0, 1, ..., K-1, 0, 1, ...`: `n` labels covering the classes evenly."""
    return torch.arange(n) % num_classes
