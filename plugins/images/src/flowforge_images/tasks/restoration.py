"""The `image_restoration` task: core `inverse_problem` plus classical baselines and PNG grids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from flowforge.tasks.base import TaskContext
from flowforge.tasks.components import build
from flowforge.tasks.inverse_problem import InverseProblem, _operator
from flowforge_images.baselines import classical_baselines
from flowforge_images.grids import save_rows, upscale_for_display
from flowforge_images.metrics.image_quality import psnr_ssim
from flowforge_images.tasks.common import record_splits


@dataclass(frozen=True)
class ImageRestoration(InverseProblem):
    """Restore images (denoise, deblur, super-resolve, inpaint) with a trained image prior.

    Runs the core `inverse_problem` task (any operator and posterior guidance of the spec; the
    posterior mean is the restoration), then scores, on the same measurements, the classical
    baselines that apply (`flowforge_images.baselines`: the degraded input, bicubic upsampling,
    Wiener deconvolution) with PSNR/SSIM at `data_range` (1: pixels in [0, 1]). Adds
    `psnr_<method>` / `ssim_<method>` for `posterior_mean` and each baseline, `splits.json`,
    and `plots/restoration.png` (rows: truth, degraded input, baselines, posterior mean).
    """

    data_range: Annotated[
        float | None, Field(gt=0, description="PSNR/SSIM data range (images in [0, 1]: 1)")
    ] = 1.0
    grid: Annotated[int, Field(ge=1, le=64, description="images shown in the PNG grid")] = 16

    def run(self, ctx: TaskContext) -> dict[str, float]:
        metrics = super().run(ctx)
        spec, root = ctx.spec, ctx.run.root
        dataset = build("dataset", spec.data, "data")
        record_splits(ctx.run, dataset)
        truth_file = root / "ground_truth.npy"
        if not truth_file.is_file():
            return metrics  # measurements from a file: no truth to score against
        shape = dataset.data_shape
        operator = _operator(spec, shape)
        truth = torch.from_numpy(np.load(truth_file))
        y = torch.from_numpy(np.load(root / "measurement.npy"))
        mean = torch.from_numpy(np.load(root / "posterior_mean.npy"))
        train = dataset.splits()["train"]
        rows = {"posterior_mean": mean.clamp(0, 1)}
        rows |= classical_baselines(operator, y, shape, train)
        extra = {}
        for name, estimate in rows.items():
            p, s = psnr_ssim(truth, estimate.clamp(0, 1), self.data_range or 1.0)
            extra[f"psnr_{name}"], extra[f"ssim_{name}"] = p, s
        metrics.update(extra)
        ctx.run.write_metrics({**_read(ctx.run.metrics_path), **extra})
        k = min(self.grid, truth.shape[0])
        shown = [truth[:k]] + [r[:k] for n, r in rows.items() if n != "posterior_mean"]
        shown = [upscale_for_display(r, shape[-1]) for r in shown] + [rows["posterior_mean"][:k]]
        save_rows([r.clamp(0, 1) for r in shown], ctx.run.plots / "restoration.png", scale=3)
        return metrics


def _read(file) -> dict:
    import json

    return json.loads(file.read_text())
