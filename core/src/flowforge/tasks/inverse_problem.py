"""The `inverse_problem` task: reconstruct signals from measurements with a generative prior."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from pydantic import Field

from flowforge import registry
from flowforge.data.base import Dataset
from flowforge.errors import InvalidArgumentError, SpecError
from flowforge.experiment.reconstructions import Reconstructions, write_reconstructions
from flowforge.guidance import Measurement, PosteriorGuidance
from flowforge.operators import Operator
from flowforge.spec.models import ExperimentSpec
from flowforge.targets import GaussianMixture
from flowforge.tasks.base import Task, TaskContext
from flowforge.tasks.components import build, build_affine_path, build_model, guidance_needs
from flowforge.tasks.fit import prior_weights
from flowforge.tasks.model_space import to_model_space
from flowforge.tasks.observations import observe
from flowforge.tasks.posterior_metrics import (
    consistency,
    exact_errors,
    is_image,
    posterior_summary,
    require_ssim,
    truth_errors,
)
from flowforge.tasks.sampling import generate_samples
from flowforge.training import rng


@dataclass(frozen=True)
class InverseProblem(Task):
    """Posterior sampling for `y = A x + noise` with a trained prior, from a spec.

    The prior is the spec's model on its `data`, trained as `generate` trains it (resumable) or
    loaded from `model.checkpoint` (a checkpoint, a run directory, or `<dir>/<name>`). The
    `operator` section is a registered operator with its `noise_std`; the `measurement` section
    gives `y` in a `.npy` file or simulates it from held-out data. Every posterior guidance of the
    `guidance` list is bound to each measurement in turn, and `sample.num_samples` posterior
    samples are drawn per measurement with the spec's solver and nfe (in the model's
    standardised space: `flowforge.tasks.model_space`).

    Writes `measurement.npy`, `ground_truth.npy` (simulated only), `reconstructions.npy`,
    `posterior_mean.npy`, `posterior_std.npy`, plots, metrics.json and report.md
    (`flowforge.experiment.reconstructions`); the metrics are those of
    `flowforge.tasks.posterior_metrics`: residual `||A x - y||` always, errors, PSNR and SSIM
    (images) against the ground truth when known, and distances to the exact posterior when the
    dataset's law is a `GaussianMixture` (exposed as its `mixture` attribute).

    Parameters: `data_range` of PSNR and SSIM (None: max - min of the training split);
    `n_projections` of the sliced Wasserstein distances.

    >>> # spec: task: inverse_problem; operator: {name: mask, params: {noise_std: 0.1}}
    >>> #       measurement: {simulate: {count: 4}}; guidance: [smc]
    >>> outcome = execute("examples/inverse_problem.yaml")
    """

    data_range: Annotated[
        float | None,
        Field(gt=0, description="PSNR/SSIM data range (None: max - min of the training split)"),
    ] = None
    n_projections: Annotated[
        int, Field(ge=1, description="random directions of the sliced Wasserstein distances")
    ] = 500

    def check_spec(self, spec: ExperimentSpec) -> list[tuple[str, str]]:
        """The operator, the measurements and a posterior guidance are required; generic
        sample metrics (`evaluate.metrics`) do not apply to posterior samples."""
        issues = []
        if spec.operator is None:
            issues.append(
                (
                    "operator",
                    "the inverse_problem task needs the operator A of y = A x + noise: a "
                    "registered operator, e.g. {name: mask, params: {fraction: 0.5, "
                    "noise_std: 0.1}} (`flowforge plugins` lists them)",
                )
            )
        if spec.measurement is None:
            issues.append(
                (
                    "measurement",
                    "the inverse_problem task needs measurements: {file: y.npy}, or "
                    "{simulate: {split: test, index: 0, count: 4, seed: 0}} from held-out data",
                )
            )
        needs = guidance_needs(spec.guidance)
        if not any("measurement" in n for n in needs):
            names = ", ".join(_posterior_names()) or "none installed"
            issues.append(
                (
                    "guidance",
                    f"list at least one posterior guidance ({names}); without one the samples "
                    "ignore the measurement",
                )
            )
        for i, n in enumerate(needs):
            other = [k for k in n if k != "measurement"]
            if other:
                msg = (
                    f"{spec.guidance[i].name!r} needs {', '.join(other)}, which a spec cannot "
                    "give (Python only); remove it from the list"
                )
                issues.append((f"guidance[{i}]", msg))
        issues += _population_issues(spec)
        if spec.evaluate.metrics:
            issues.append(
                (
                    "evaluate.metrics",
                    "the inverse_problem task computes its own metrics (residual, errors, PSNR, "
                    "exact-posterior distances) and cannot score posterior samples with sample "
                    "metrics; remove this list",
                )
            )
        return issues

    def run(self, ctx: TaskContext) -> dict[str, float]:
        spec = ctx.spec
        rng.seed_everything(spec.seed)
        dataset: Dataset = build("dataset", spec.data, "data")
        path = build_affine_path(spec.path)
        splits = dataset.splits()
        shape = dataset.data_shape
        operator = _operator(spec, shape)
        if spec.measurement is None:
            raise SpecError([("measurement", "the inverse_problem task needs measurements")])
        obs = observe(spec.measurement, operator, splits, shape)
        images = is_image(shape) and obs.truth is not None
        if images:
            require_ssim()  # fail before training, not after
        model = build_model(spec.model, shape, ctx.device)
        standardizer, record = prior_weights(ctx, model, path, dataset, splits["train"])
        model.eval()

        start = time.perf_counter()
        guidance = [build("guidance", g, f"guidance[{i}]") for i, g in enumerate(spec.guidance)]
        op_z, y_z = to_model_space(operator, obs.y, standardizer, shape)
        gen = rng.generator(spec.seed, "sample", ctx.device)
        per = spec.sample.num_samples
        bar = ctx.progress.add_task("sample", total=len(obs) * per, info="")
        samples = []
        for j in range(len(obs)):
            m = Measurement(op_z, y_z[j : j + 1].to(ctx.device))
            bound = [g.with_measurement(m) if _needs_measurement(g) else g for g in guidance]
            ctx.progress.update(bar, info=f"measurement {j + 1}/{len(obs)}")
            z = generate_samples(
                model,
                path,
                spec.model.prediction,
                spec.sample,
                data_shape=shape,
                generator=gen,
                device=ctx.device,
                guidance=bound,
                on_batch=lambda n: ctx.progress.update(bar, advance=n),
            )
            samples.append(standardizer.decode(z))
        recon = torch.stack(samples)
        record["sample_seconds"] = time.perf_counter() - start
        record["measurements"] = len(obs)
        record["samples_per_measurement"] = per

        start = time.perf_counter()
        mean, std = posterior_summary(recon)
        metrics = consistency(operator, recon, mean, obs.y)
        metrics["posterior_std_mean"] = float(std.double().mean())
        if obs.truth is not None:
            data_range = self.data_range or float(splits["train"].max() - splits["train"].min())
            metrics.update(truth_errors(operator, mean, obs.truth, obs.y, data_range, images))
        prior = _mixture(dataset, shape)
        exact = None
        if prior is not None:
            exact_gen = rng.generator(spec.seed, "exact_posterior")
            metrics.update(
                exact_errors(operator, recon, obs.y, prior, self.n_projections, exact_gen)
            )
            exact = prior.posterior(operator, obs.y[0].double()).sample(per, exact_gen)
        result = Reconstructions(obs.y, obs.truth, recon, mean, std, splits["test"], exact)
        metrics.update(self.score(ctx, dataset, operator, result))
        record["evaluate_seconds"] = time.perf_counter() - start
        write_reconstructions(ctx.run, spec, result, metrics, record, ctx.resume_command)
        return metrics

    def score(
        self, ctx: TaskContext, dataset: Dataset, operator: Operator, result: Reconstructions
    ) -> dict[str, float]:
        """Metrics (and files) a domain task adds before the run is written, so that its
        metrics.json and report list them; `operator` acts in data units. None here."""
        return {}


def _operator(spec: ExperimentSpec, data_shape: tuple[int, ...]) -> Operator:
    """The spec's operator, built for the data's shape; problems located at `operator`."""
    if spec.operator is None:
        raise SpecError([("operator", "the inverse_problem task needs an operator")])
    try:
        op = build("operator", spec.operator, "operator", data_shape=data_shape)
    except InvalidArgumentError as err:
        msg = f"{spec.operator.name!r} cannot be built for data of shape {data_shape}: {err}"
        raise SpecError([("operator", msg)]) from None
    if not isinstance(op, Operator):
        msg = f"{spec.operator.name!r} did not build a flowforge.operators.Operator"
        raise SpecError([("operator.name", msg)])
    return op


def _needs_measurement(guidance: Any) -> bool:
    return "measurement" in getattr(guidance, "needs", ())


def _mixture(dataset: Dataset, data_shape: tuple[int, ...]) -> GaussianMixture | None:
    """The dataset's law where it is a Gaussian mixture of the data's shape (exact posteriors)."""
    mixture = getattr(dataset, "mixture", None)
    if isinstance(mixture, GaussianMixture) and mixture.event_shape == tuple(data_shape):
        return mixture
    return None


def _posterior_names() -> list[str]:
    """The registered guidance methods that condition on a measurement."""
    return [
        c.name
        for c in registry.current().components("guidance")
        if isinstance(c.factory, type) and issubclass(c.factory, PosteriorGuidance)
    ]


def _population_issues(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """A guidance with `particles` (smc) splits every sampling batch into populations."""
    s = spec.sample
    issues = []
    for i, ref in enumerate(spec.guidance):
        p = ref.params.get("particles")
        if not isinstance(p, int) or p < 1:
            continue
        fits = s.num_samples % p == 0 and (s.num_samples <= s.batch_size or s.batch_size % p == 0)
        if not fits:
            msg = (
                f"guidance[{i}] ({ref.name}) runs populations of {p} particles, so the samples "
                f"per measurement ({s.num_samples}) and, when larger, sample.batch_size "
                f"({s.batch_size}) must be multiples of {p}"
            )
            issues.append(("sample.num_samples", msg))
    return issues
