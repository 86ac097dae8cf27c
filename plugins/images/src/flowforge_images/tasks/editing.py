"""The `image_editing` task: change the class of real images by ODE inversion or SDEdit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

import flowforge
from flowforge.errors import SpecError
from flowforge.experiment.report import write_report
from flowforge.guidance import CFG
from flowforge.spec.models import ExperimentSpec
from flowforge.tasks.base import Task, TaskContext
from flowforge.tasks.components import build, build_affine_path, build_model
from flowforge.tasks.fit import prior_weights
from flowforge.training import rng
from flowforge_images.grids import save_rows
from flowforge_images.metrics.features import class_accuracy
from flowforge_images.metrics.image_quality import psnr_ssim
from flowforge_images.metrics.lenet import lenet_outputs, load_lenet
from flowforge_images.tasks.common import has_lenet, record_splits


def with_label(model, labels: Tensor):
    """`model` as a field `(x_t, t)` that always sees class `labels (B,)`."""
    return lambda x_t, t: model(x_t, t, label=labels)


@dataclass(frozen=True)
class ImageEditing(Task):
    """Edit held-out images into another class with a class-conditional prior.

    `inversion`: the probability-flow ODE carries each image back to noise under its own class
    (`flowforge.invert` with `invert_solver`: `bdia` for the exact inverse of BDIA, or any ODE
    solver), and the noise is regenerated under the target class with the spec's solver, nfe
    and `cfg_scale`; regenerating under the source class measures the round trip. `sdedit`
    (Meng et al. 2022): noise each image to time `1 - strength` on the path and solve to the
    data end under the target class. Targets are `(label + shift) mod K`.

    Metrics per method: `edit_accuracy_<m>` (the in-repo LeNet's accuracy for the target
    classes; digit images), `psnr_<m>` / `ssim_<m>` of the edit against its source (how much
    is kept), and for inversion `roundtrip_psnr_inversion`. Writes `edits.npz` and
    `plots/edits_<m>.png` (rows: source, edit).
    """

    methods: Annotated[tuple[Literal["inversion", "sdedit"], ...], Field(min_length=1)] = (
        "inversion",
        "sdedit",
    )
    count: Annotated[int, Field(ge=1, description="test images to edit")] = 100
    shift: Annotated[int, Field(ge=1, description="target class = (label + shift) mod K")] = 1
    invert_solver: Annotated[str, Field(description="ODE solver of the inversion")] = "bdia"
    invert_nfe: Annotated[int, Field(ge=2, description="model calls of the inversion")] = 50
    cfg_scale: Annotated[float, Field(ge=0, description="CFG scale of the regeneration")] = 2.0
    strength: Annotated[
        float, Field(gt=0, le=1, description="sdedit: how far toward noise (1: pure noise)")
    ] = 0.6
    label_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1

    def check_spec(self, spec: ExperimentSpec) -> list[tuple[str, str]]:
        if int(spec.model.params.get("num_classes", 0)) < 2:
            return [("model.params.num_classes", "editing needs a class-conditional model")]
        return []

    def run(self, ctx: TaskContext) -> dict[str, float]:
        spec = ctx.spec
        rng.seed_everything(spec.seed)
        dataset = build("dataset", spec.data, "data")
        path = build_affine_path(spec.path)
        splits, labels = dataset.splits(), dataset.labels()
        if labels is None:
            raise SpecError([("data", "editing needs a labelled dataset")])
        shape = dataset.data_shape
        model = build_model(spec.model, shape, ctx.device)
        record_splits(ctx.run, dataset)
        standardizer, record = prior_weights(
            ctx, model, path, dataset, splits["train"], label_dropout=self.label_dropout
        )
        model.eval()
        k = model.num_classes
        x = splits["test"][: self.count]
        source = labels["test"][: self.count].to(ctx.device)
        target = (source + self.shift) % k
        z = standardizer.encode(x).to(ctx.device)
        gen = rng.generator(spec.seed, "edit", ctx.device)
        start = time.perf_counter()
        edits, metrics = {}, {}
        lenet = load_lenet(shape) if has_lenet(shape) else None
        for method in self.methods:
            if method == "inversion":
                noise = flowforge.invert(
                    with_label(model, source),
                    z,
                    path=path,
                    prediction=spec.model.prediction,
                    solver=self.invert_solver,
                    nfe=self.invert_nfe,
                )
                back = self._generate(spec, model, path, noise, source, None, gen)
                edit = self._generate(spec, model, path, noise, target, None, gen)
                rt = standardizer.decode(back).cpu().clamp(0, 1)
                metrics["roundtrip_psnr_inversion"] = psnr_ssim(x, rt)[0]
            else:
                t0 = 1.0 - self.strength
                t = torch.full((x.shape[0],), t0, device=ctx.device)
                a, s = path.alpha(t).reshape(-1, 1, 1, 1), path.sigma(t).reshape(-1, 1, 1, 1)
                eps = torch.randn(z.shape, generator=gen, device=ctx.device)
                edit = self._generate(spec, model, path, a * z + s * eps, target, t0, gen)
            out = standardizer.decode(edit).cpu().clamp(0, 1)
            edits[method] = out
            metrics[f"psnr_{method}"], metrics[f"ssim_{method}"] = psnr_ssim(x, out)
            if lenet is not None:
                _, logits = lenet_outputs(lenet, out)
                metrics[f"edit_accuracy_{method}"] = class_accuracy(logits, target)
            save_rows([x[:16], out[:16]], ctx.run.plots / f"edits_{method}.png", scale=3)
        record["edit_seconds"] = time.perf_counter() - start
        np.savez(
            ctx.run.root / "edits.npz",
            source=x.numpy(),
            source_label=source.cpu().numpy(),
            target_label=target.cpu().numpy(),
            **{m: e.numpy() for m, e in edits.items()},
        )
        ctx.run.write_metrics({**metrics, **record})
        files = [ctx.run.spec_path, ctx.run.root / "edits.npz", ctx.run.metrics_path]
        write_report(ctx.run, spec, metrics, record, files, ctx.resume_command)
        return metrics

    def _generate(self, spec, model, path, x_init, labels, t0, gen) -> Tensor:
        """Solve from `x_init` at `t0` (None: the path's start) to the data end under `labels`."""
        t_span = None if t0 is None else (t0, path.t_span[1])
        guidance = [CFG(scale=self.cfg_scale)] if self.cfg_scale != 1.0 else None
        return flowforge.sample(
            model,
            x_init,
            path=path,
            prediction=spec.model.prediction,
            solver=build("solver", spec.sample.solver, "sample.solver"),
            nfe=spec.sample.nfe,
            t_span=t_span,
            guidance=guidance,
            generator=gen,
            cond={"label": labels},
        )
