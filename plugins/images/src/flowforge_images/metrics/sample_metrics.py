"""Registered sample metrics: `fd_lenet` (with precision/recall) and `bits_per_dim`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field

from flowforge.metrics.base import Metric, MetricContext
from flowforge.metrics.frechet import frechet_distance
from flowforge.metrics.nll import NLL
from flowforge_images.metrics.features import precision_recall
from flowforge_images.metrics.lenet import lenet_outputs, load_lenet


@dataclass(frozen=True)
class FDLenet(Metric):
    """Frechet distance in the feature space of the in-repo LeNet (`FD_lenet`; not FID).

    Keys: `fd_lenet` (samples vs the test split), `fd_lenet_baseline` (an equally large draw of
    the training split vs the test split: what real data scores, the floor), `lenet_precision`
    and `lenet_recall` (k-NN manifolds, k = `k`). Digit images only (1x28x28 or 1x8x8).
    """

    k: Annotated[int, Field(ge=1, description="neighbours of precision/recall")] = 3
    max_points: Annotated[
        int | None, Field(ge=2, description="use at most this many samples and test images")
    ] = None

    def compute(self, ctx: MetricContext) -> dict[str, float]:
        net = load_lenet(tuple(ctx.samples.shape[1:]), ctx.device)
        samples, test = ctx.samples[: self.max_points], ctx.test[: self.max_points]
        train = ctx.dataset.splits()["train"]
        pick = torch.randperm(train.shape[0], generator=ctx.generator)[: test.shape[0]]
        f_fake, f_test, f_train = (lenet_outputs(net, x)[0] for x in (samples, test, train[pick]))
        precision, recall = precision_recall(f_test, f_fake, self.k)
        return {
            "fd_lenet": frechet_distance(f_fake, f_test),
            "fd_lenet_baseline": frechet_distance(f_train, f_test),
            "lenet_precision": precision,
            "lenet_recall": recall,
        }


@dataclass(frozen=True)
class BitsPerDim(NLL):
    """Bits per dimension of the test images under the flow (core `nll`, exact divergence).

    Pixels in [0, 1] are read as `levels` intensity levels (256 for 8-bit images): the density
    of the level index is the density in [0, 1] divided by `levels` per pixel, so
    `bits_per_dim = nll / (D ln 2) + log2(levels)` (the usual convention of uniformly
    dequantised data; an upper bound on the discrete code length). Key: `bits_per_dim`.
    """

    levels: Annotated[int, Field(ge=2, description="intensity levels of a pixel")] = 256

    def compute(self, ctx: MetricContext) -> dict[str, float]:
        out = super().compute(ctx)
        dims = ctx.test[0].numel()
        return {"bits_per_dim": out["nll"] / (dims * math.log(2)) + math.log2(self.levels)}
