"""The `generate` task: train a generative model, sample from it, evaluate, write the run."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from flowforge.data.base import Dataset
from flowforge.data.standardize import Standardizer
from flowforge.errors import SpecError
from flowforge.experiment.outputs import write_outputs
from flowforge.metrics.base import Metric, MetricContext
from flowforge.paths.base import AffinePath
from flowforge.tasks.base import Task, TaskContext
from flowforge.tasks.components import build, build_affine_path
from flowforge.tasks.fit import checkpoint_meta, load_weights, train
from flowforge.tasks.sampling import generate_samples
from flowforge.training import rng


@dataclass(frozen=True)
class Generate(Task):
    """Train a model, sample from it, evaluate the samples and write the run directory.

    Trains on `data` along `path` (or loads `model.checkpoint`), draws `sample.num_samples`
    samples with the EMA weights, computes `evaluate.metrics` against the held-out test split,
    and writes samples, plots, metrics.json and report.md. What `flowforge run` does.
    """

    def run(self, ctx: TaskContext) -> dict[str, float]:
        spec = ctx.spec
        rng.seed_everything(spec.seed)
        dataset: Dataset = build("dataset", spec.data, "data")
        path = build_affine_path(spec.path)
        splits = dataset.splits()
        model = build("model", spec.model, "model", data_shape=dataset.data_shape)
        if not isinstance(model, nn.Module):
            msg = f"model {spec.model.name!r} did not build an nn.Module"
            raise SpecError([("model.name", msg)])
        model = model.to(ctx.device)
        standardizer, record = self._weights(ctx, model, path, dataset, splits["train"])
        model.eval()

        start = time.perf_counter()
        guidance = [build("guidance", g, f"guidance[{i}]") for i, g in enumerate(spec.guidance)]
        bar = ctx.progress.add_task("sample", total=spec.sample.num_samples, info="")
        z = generate_samples(
            model,
            path,
            spec.model.prediction,
            spec.sample,
            data_shape=dataset.data_shape,
            generator=rng.generator(spec.seed, "sample", ctx.device),
            device=ctx.device,
            guidance=guidance,
            on_batch=lambda n: ctx.progress.update(bar, advance=n),
        )
        samples = standardizer.decode(z)
        record["sample_seconds"] = time.perf_counter() - start

        start = time.perf_counter()
        metrics = self._evaluate(ctx, samples, splits["test"], dataset, model, path, standardizer)
        record["evaluate_seconds"] = time.perf_counter() - start
        write_outputs(ctx.run, spec, samples, splits["test"], metrics, record, ctx.resume_command)
        return metrics

    def _weights(
        self,
        ctx: TaskContext,
        model: nn.Module,
        path: AffinePath,
        dataset: Dataset,
        train_data: Tensor,
    ) -> tuple[Standardizer, dict]:
        """Train (or resume), or load `model.checkpoint`; returns the standardizer and a record."""
        spec = ctx.spec
        if spec.model.checkpoint is not None:
            meta = checkpoint_meta(ctx, dataset.data_shape)
            return load_weights(model, spec.model.checkpoint, meta), {"train_steps": 0}
        if spec.train is None:
            return Standardizer.fit(train_data), {"train_steps": 0}
        labels = dataset.labels()
        return train(ctx, model, path, train_data, None if labels is None else labels["train"])

    def _evaluate(
        self,
        ctx: TaskContext,
        samples: Tensor,
        test: Tensor,
        dataset: Dataset,
        model: nn.Module,
        path: AffinePath,
        standardizer: Standardizer,
    ) -> dict[str, float]:
        """Every metric of `evaluate.metrics`, merged; a key reported twice is an error."""
        out: dict[str, float] = {}
        for i, ref in enumerate(ctx.spec.evaluate.metrics):
            where = f"evaluate.metrics[{i}]"
            metric: Metric = build("metric", ref, where)
            mctx = MetricContext(
                samples=samples,
                test=test,
                dataset=dataset,
                field=model,
                path=path,
                prediction=ctx.spec.model.prediction,
                standardizer=standardizer,
                generator=rng.generator(ctx.spec.seed, f"metric:{i}:{ref.name}"),
                device=ctx.device,
                t_span=ctx.spec.sample.t_span,
            )
            with torch.no_grad():
                values = metric.compute(mctx)
            clash = sorted(set(values) & set(out))
            if clash:
                msg = f"metric {ref.name!r} reports {', '.join(clash)} again; list each metric once"
                raise SpecError([(where, msg)])
            out.update(values)
        return out
