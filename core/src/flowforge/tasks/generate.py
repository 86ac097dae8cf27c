"""The `generate` task: train a generative model, sample from it, evaluate, write the run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from flowforge.data.base import Dataset
from flowforge.data.standardize import Standardizer
from flowforge.errors import SpecError
from flowforge.experiment.outputs import write_outputs
from flowforge.metrics.base import Metric, MetricContext
from flowforge.paths.base import AffinePath
from flowforge.spec.models import ExperimentSpec
from flowforge.tasks.base import Task, TaskContext
from flowforge.tasks.components import build, build_affine_path, build_model, guidance_needs
from flowforge.tasks.fit import prior_weights
from flowforge.tasks.sampling import generate_samples
from flowforge.training import rng


@dataclass(frozen=True)
class Generate(Task):
    """Train a model, sample from it, evaluate the samples and write the run directory.

    Trains on `data` along `path` (or loads `model.checkpoint`), draws `sample.num_samples`
    samples with the EMA weights, computes `evaluate.metrics` against the held-out test split,
    and writes samples, plots, metrics.json and report.md. What `flowforge run` does.
    """

    def check_spec(self, spec: ExperimentSpec) -> list[tuple[str, str]]:
        """`operator`, `measurement` and posterior guidance belong to `inverse_problem`."""
        hint = "set `task: inverse_problem` to reconstruct from measurements"
        issues = [
            (key, f"the generate task has no use for `{key}`: remove it, or {hint}")
            for key in ("operator", "measurement")
            if getattr(spec, key) is not None
        ]
        for i, needs in enumerate(guidance_needs(spec.guidance)):
            if "measurement" in needs:
                msg = (
                    f"{spec.guidance[i].name!r} conditions on a measurement, which the generate "
                    f"task does not have; {hint} (with `operator` and `measurement` sections)"
                )
                issues.append((f"guidance[{i}]", msg))
        return issues

    def run(self, ctx: TaskContext) -> dict[str, float]:
        spec = ctx.spec
        rng.seed_everything(spec.seed)
        dataset: Dataset = build("dataset", spec.data, "data")
        path = build_affine_path(spec.path)
        splits = dataset.splits()
        model = build_model(spec.model, dataset.data_shape, ctx.device)
        guidance = [build("guidance", g, f"guidance[{i}]") for i, g in enumerate(spec.guidance)]

        def draw(trained: nn.Module, on_batch: Callable[[int], None] | None = None) -> Tensor:
            """The `sample` section's samples of `trained`, in model space."""
            return generate_samples(
                trained,
                path,
                spec.model.prediction,
                spec.sample,
                data_shape=dataset.data_shape,
                generator=rng.generator(spec.seed, "sample", ctx.device),
                device=ctx.device,
                guidance=guidance,
                on_batch=on_batch,
            )

        def evaluate(trained: nn.Module, standardizer: Standardizer) -> dict[str, float]:
            """`train.eval_every`: the final evaluation on the model as it is now."""
            samples = standardizer.decode(draw(trained))
            test = splits["test"]
            return self._evaluate(ctx, samples, test, dataset, trained, path, standardizer)

        standardizer, record = prior_weights(
            ctx, model, path, dataset, splits["train"], evaluate=evaluate
        )
        model.eval()

        start = time.perf_counter()
        bar = ctx.progress.add_task("sample", total=spec.sample.num_samples, info="")
        z = draw(model, lambda n: ctx.progress.update(bar, advance=n))
        samples = standardizer.decode(z)
        record["sample_seconds"] = time.perf_counter() - start

        start = time.perf_counter()
        metrics = self._evaluate(ctx, samples, splits["test"], dataset, model, path, standardizer)
        record["evaluate_seconds"] = time.perf_counter() - start
        write_outputs(ctx.run, spec, samples, splits["test"], metrics, record, ctx.resume_command)
        return metrics

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
