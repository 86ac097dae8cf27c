"""The `image_restoration` task: core `inverse_problem` plus classical baselines and PNG grids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from flowforge.data.base import Dataset
from flowforge.experiment.reconstructions import Reconstructions
from flowforge.operators import Operator
from flowforge.tasks.base import TaskContext
from flowforge.tasks.inverse_problem import InverseProblem
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

    def score(
        self, ctx: TaskContext, dataset: Dataset, operator: Operator, result: Reconstructions
    ) -> dict[str, float]:
        record_splits(ctx.run, dataset)
        if result.truth is None:
            return {}  # measurements from a file: no truth to score against
        shape = dataset.data_shape
        truth = result.truth.detach().cpu()
        rows = {"posterior_mean": result.mean.detach().cpu().clamp(0, 1)}
        rows |= classical_baselines(operator, result.y.cpu(), shape, dataset.splits()["train"])
        extra = {}
        for name, estimate in rows.items():
            p, s = psnr_ssim(truth, estimate.clamp(0, 1), self.data_range or 1.0)
            extra[f"psnr_{name}"], extra[f"ssim_{name}"] = p, s
        k = min(self.grid, truth.shape[0])
        shown = [truth[:k]] + [r[:k] for n, r in rows.items() if n != "posterior_mean"]
        shown = [upscale_for_display(r, shape[-1]) for r in shown] + [rows["posterior_mean"][:k]]
        ctx.run.plots.mkdir(parents=True, exist_ok=True)
        save_rows([r.clamp(0, 1) for r in shown], ctx.run.plots / "restoration.png", scale=3)
        return extra
