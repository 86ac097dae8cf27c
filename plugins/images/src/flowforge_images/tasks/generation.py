"""The `image_generation` task: unconditional or class-conditional generation with a CFG sweep."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import Field

from flowforge.data.base import Dataset
from flowforge.errors import SpecError
from flowforge.experiment.outputs import write_outputs
from flowforge.guidance import CFG
from flowforge.tasks.base import TaskContext
from flowforge.tasks.components import build, build_affine_path, build_model
from flowforge.tasks.fit import prior_weights
from flowforge.tasks.generate import Generate
from flowforge.tasks.sampling import generate_samples
from flowforge.training import rng
from flowforge_images.grids import save_grid
from flowforge_images.tasks.common import DigitScorer, balanced_labels, has_lenet, record_splits


@dataclass(frozen=True)
class ImageGeneration(Generate):
    """Train (or load) an image model, then sample it over a sweep of CFG scales and NFEs.

    A class-conditional model (`unet` with `num_classes > 0`) is trained on the dataset's
    labels with `label_dropout` (the null class for CFG) and sampled for balanced labels
    `0..K-1` under `cfg` at each of `cfg_scales` (1: the conditional model, 0: the
    unconditional one); an unconditional model is sampled once per NFE. `nfe_sweep` adds NFEs
    besides `sample.nfe` (e.g. 1, 2, 4 for a reflow or distilled model). Digit images are scored
    with the in-repo LeNet: `fd_lenet`, precision/recall and, conditional, `class_accuracy`,
    each suffixed `_cfg<w>_nfe<n>` for the sweep; `evaluate.metrics` score the headline samples
    (first scale, `sample.nfe`). Writes the core run files plus `samples/labels.npy`,
    `splits.json` and PNG grids `plots/grid_cfg<w>_nfe<n>.png`.
    """

    label_dropout: Annotated[
        float, Field(ge=0, lt=1, description="probability of the null class in training")
    ] = 0.1
    cfg_scales: Annotated[
        tuple[Annotated[float, Field(ge=0)], ...],
        Field(min_length=1, description="CFG scales w to sample at (class-conditional models)"),
    ] = (1.0,)
    nfe_sweep: Annotated[
        tuple[Annotated[int, Field(ge=1)], ...], Field(description="NFEs besides sample.nfe")
    ] = ()
    grid: Annotated[int, Field(ge=1, le=400, description="samples shown in each PNG grid")] = 100

    def run(self, ctx: TaskContext) -> dict[str, float]:
        spec = ctx.spec
        rng.seed_everything(spec.seed)
        dataset: Dataset = build("dataset", spec.data, "data")
        path = build_affine_path(spec.path)
        splits, labels = dataset.splits(), dataset.labels()
        shape = dataset.data_shape
        model = build_model(spec.model, shape, ctx.device)
        classes = int(getattr(model, "num_classes", 0))
        if classes and labels is None:
            msg = (
                f"the model is class-conditional (num_classes {classes}) but dataset "
                f"{spec.data.name!r} has no labels; set num_classes: 0"
            )
            raise SpecError([("model.params.num_classes", msg)])
        record_splits(ctx.run, dataset)
        dropout = self.label_dropout if classes else None
        standardizer, record = prior_weights(
            ctx, model, path, dataset, splits["train"], label_dropout=dropout
        )
        model.eval()
        n = spec.sample.num_samples
        sample_labels = balanced_labels(n, classes) if classes else None
        base = [build("guidance", g, f"guidance[{i}]") for i, g in enumerate(spec.guidance)]
        scales = self.cfg_scales if classes else [1.0]
        nfes = [spec.sample.nfe, *(k for k in self.nfe_sweep if k != spec.sample.nfe)]
        metrics: dict[str, float] = {}
        headline = None
        scorer = DigitScorer(splits["test"], ctx.device) if has_lenet(shape) else None
        ctx.run.plots.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        bar = ctx.progress.add_task("sample", total=n * len(scales) * len(nfes), info="")
        for w in scales:
            guidance = base + ([CFG(scale=w)] if w != 1.0 else [])
            for nfe in nfes:
                tag = f"cfg{w:g}_nfe{nfe}" if classes else f"nfe{nfe}"
                ctx.progress.update(bar, info=tag)
                z = generate_samples(
                    model,
                    path,
                    spec.model.prediction,
                    spec.sample.model_copy(update={"nfe": nfe}),
                    data_shape=shape,
                    generator=rng.generator(spec.seed, "sample", ctx.device),
                    device=ctx.device,
                    guidance=guidance,
                    on_batch=lambda k: ctx.progress.update(bar, advance=k),
                    labels=sample_labels,
                )
                x = standardizer.decode(z)
                save_grid(x[: self.grid].clamp(0, 1), ctx.run.plots / f"grid_{tag}.png", scale=2)
                if scorer is not None:
                    scores = scorer(x, sample_labels)
                    metrics.update({f"{k}_{tag}": v for k, v in scores.items()})
                    if headline is None:
                        metrics.update(scores)
                if headline is None:
                    headline = x
        record["sample_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        metrics.update(
            self._evaluate(ctx, headline, splits["test"], dataset, model, path, standardizer)
        )
        record["evaluate_seconds"] = time.perf_counter() - start
        write_outputs(ctx.run, spec, headline, splits["test"], metrics, record, ctx.resume_command)
        if sample_labels is not None:
            np.save(ctx.run.samples / "labels.npy", sample_labels.numpy())
        save_grid(headline[: self.grid].clamp(0, 1), ctx.run.samples / "grid.png", scale=2)
        return metrics
