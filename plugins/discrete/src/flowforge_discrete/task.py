"""The `discrete_generate` task: train a masked-diffusion (or autoregressive) sequence model with
the core Trainer, sample it, evaluate, and write the run directory (samples as text)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from flowforge.data.standardize import Standardizer
from flowforge.discrete import DiscreteDiffusion, DiscreteGuidance, DiscretePath, DiscreteSolver
from flowforge.discrete import sample as discrete_sample
from flowforge.distributed import current
from flowforge.errors import SpecError
from flowforge.experiment.outputs import run_checkpoints
from flowforge.experiment.report import write_report
from flowforge.spec.models import ExperimentSpec
from flowforge.tasks.base import Task, TaskContext
from flowforge.tasks.components import build
from flowforge.tasks.fit import load_weights
from flowforge.tasks.training_run import TrainingRun
from flowforge.training import Trainer, rng
from flowforge_discrete import autoregressive
from flowforge_discrete.data.base import TokenDataset
from flowforge_discrete.metrics.context import SequenceContext

IDENTITY = Standardizer(torch.zeros(()), torch.ones(()))


@dataclass(frozen=True)
class DiscreteGenerate(Task):
    """Train, sample and evaluate a sequence model on a token dataset (text, SMILES, FASTA).

    `objective: diffusion` trains along the spec's discrete `path` (masked or uniform) and samples
    with `sample.solver` (ancestral, mdlm_cached, tau_leaping, ctmc_euler) in `sample.nfe` steps,
    with discrete guidance from `guidance`. `objective: autoregressive` trains the same model
    causally (the baseline; `path` and the solver are then unused) and samples token by token.
    """

    objective: Annotated[
        Literal["diffusion", "autoregressive"],
        Field(description="diffusion: masked/uniform diffusion; autoregressive: the baseline"),
    ] = "diffusion"

    def check_spec(self, spec: ExperimentSpec) -> list[tuple[str, str]]:
        issues = [
            (key, f"the discrete_generate task has no use for `{key}`: remove it")
            for key in ("operator", "measurement")
            if getattr(spec, key) is not None
        ]
        try:
            path = build("path", spec.path, "path")
            solver = build("solver", spec.sample.solver, "sample.solver")
        except SpecError as err:
            return issues + err.issues
        if not isinstance(path, DiscretePath):
            issues.append(
                ("path.name", f"{spec.path.name!r} is not a discrete path: use masked or uniform")
            )
        if self.objective == "diffusion" and not isinstance(solver, DiscreteSolver):
            issues.append(
                (
                    "sample.solver.name",
                    f"{spec.sample.solver.name!r} is not a discrete solver: "
                    "use ancestral, mdlm_cached, tau_leaping or ctmc_euler",
                )
            )
        elif isinstance(solver, DiscreteSolver) and isinstance(path, DiscretePath):
            if problem := solver.path_problem(path):
                issues.append(("sample.solver.params.eta", problem))
        for i, ref in enumerate(spec.guidance):
            try:
                g = build("guidance", ref, f"guidance[{i}]")
            except SpecError as err:
                issues.extend(err.issues)
                continue
            if not isinstance(g, DiscreteGuidance):
                issues.append(
                    (
                        f"guidance[{i}]",
                        f"{ref.name!r} steers continuous solves; use discrete_cfg, svdd or infill",
                    )
                )
        return issues

    def run(self, ctx: TaskContext) -> dict[str, float]:
        spec = ctx.spec
        rng.seed_everything(spec.seed)
        dataset = build("dataset", spec.data, "data")
        if not isinstance(dataset, TokenDataset):
            raise SpecError(
                [
                    (
                        "data.name",
                        f"{spec.data.name!r} is not a token dataset (text, qm9_smiles, fasta)",
                    )
                ]
            )
        path = build("path", spec.path, "path").with_vocab(dataset.vocab_size)
        splits = {k: v.to(ctx.device) for k, v in dataset.splits().items()}
        causal = self.objective == "autoregressive"
        model = build(
            "model",
            spec.model,
            "model",
            data_shape=tuple(splits["train"].shape[1:]),
            vocab_size=dataset.vocab_size,
            num_states=path.num_states,
            causal=causal,
        )
        model = model.to(ctx.device)
        record = self._weights(ctx, model, path, dataset, splits["train"])
        model.eval()
        start = time.perf_counter()
        samples, calls = self._sample(ctx, model, path, splits["train"].shape[1], dataset)
        record.update(sample_seconds=time.perf_counter() - start, sample_calls=calls)
        start = time.perf_counter()
        metrics = self._evaluate(ctx, model, path, dataset, samples, splits)
        record["evaluate_seconds"] = time.perf_counter() - start
        self._write(ctx, dataset, samples, metrics, record)
        return metrics

    def _meta(self, ctx: TaskContext, shape) -> dict:
        s = ctx.spec
        return {
            "dataset": s.data.name,
            "path": s.path.name,
            "model": s.model.name,
            "objective": self.objective,
            "data_shape": list(shape),
        }

    def _weights(self, ctx, model: nn.Module, path, dataset: TokenDataset, train: Tensor) -> dict:
        spec = ctx.spec
        meta = self._meta(ctx, train.shape[1:])
        if spec.model.checkpoint is not None:
            load_weights(model, spec.model.checkpoint, meta)
            return {"train_steps": 0}
        if spec.train is None:
            return {"train_steps": 0}
        if self.objective == "autoregressive":
            objective = autoregressive.Autoregressive(train, dataset.vocab_size)
        else:
            sampler = build("time_sampler", spec.train.time_sampler, "train.time_sampler")
            objective = DiscreteDiffusion(path, train, pad_id=None, time_sampler=sampler)
        training = TrainingRun(ctx, meta)
        gen = rng.generator(spec.seed, "train", ctx.device)
        trainer = Trainer(model, objective, spec.train, generator=gen)
        if training.state is not None:
            trainer.load_state_dict(training.state)
        summary = training.train(trainer, standardizer=IDENTITY)
        model.load_state_dict(trainer.ema.state_dict())
        return training.record(summary)

    def _sample(self, ctx, model, path, length: int, dataset) -> tuple[Tensor, int]:
        s = ctx.spec.sample
        gen = rng.generator(ctx.spec.seed, "sample", ctx.device)
        guidance = [build("guidance", g, f"guidance[{i}]") for i, g in enumerate(ctx.spec.guidance)]
        solver = build("solver", s.solver, "sample.solver")
        bar = ctx.progress.add_task("sample", total=s.num_samples, info="")
        parts, calls = [], 0
        for start in range(0, s.num_samples, s.batch_size):
            n = min(s.batch_size, s.num_samples - start)
            if self.objective == "autoregressive":
                x, c = autoregressive.sample(model, n, length, dataset.vocab_size, gen, ctx.device)
            else:
                x0 = path.source((n, length), gen, ctx.device)
                out = discrete_sample(
                    model,
                    x0,
                    path=path,
                    solver=solver,
                    nfe=s.nfe,
                    t_span=s.t_span,
                    guidance=guidance,
                    generator=gen,
                )
                x, c = out.x, out.nfe
            parts.append(x)
            calls += c
            ctx.progress.update(bar, advance=n)
        return torch.cat(parts), calls

    def _evaluate(self, ctx, model, path, dataset, samples, splits) -> dict[str, float]:
        spec = ctx.spec
        out: dict[str, float] = {}
        for i, ref in enumerate(spec.evaluate.metrics):
            where = f"evaluate.metrics[{i}]"
            metric = build("metric", ref, where)
            mctx = SequenceContext(
                samples=samples,
                test=splits["test"],
                train=splits["train"],
                dataset=dataset,
                model=model,
                kind=self.objective,
                path=path,
                device=ctx.device,
                generator=rng.generator(spec.seed, f"metric:{i}:{ref.name}", ctx.device),
            )
            with torch.no_grad():
                values = metric.compute(mctx)
            clash = sorted(set(values) & set(out))
            if clash:
                raise SpecError([(where, f"metric {ref.name!r} reports {', '.join(clash)} again")])
            out.update(values)
        return out

    def _write(self, ctx, dataset, samples: Tensor, metrics, record) -> None:
        if not current().is_main:
            return  # data-parallel: every process drew the same samples; one writes them
        run = ctx.run
        run.samples.mkdir(parents=True, exist_ok=True)
        text = run.samples / "samples.jsonl"
        with text.open("w", encoding="utf-8") as fh:
            for s in dataset.decode(samples):
                fh.write(json.dumps(s) + "\n")
        tokens = run.samples / "tokens.pt"
        torch.save(samples.cpu(), tokens)
        run.write_metrics({**metrics, **record})
        files = [run.spec_path, text, tokens, run.metrics_path, *run_checkpoints(run)]
        if run.log_path.is_file():
            files.append(run.log_path)
        files.append(run.report_path)
        write_report(run, ctx.spec, metrics, record, files, ctx.resume_command)
