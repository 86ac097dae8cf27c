"""The `distill` stage: progressive distillation of a finished run into a few-step DDIM sampler.

`train.stage: distill` with `train.parent`: the student is the sampler of the `sample` section,
which must be `ddim` with `nfe` steps on `sample.time_grid` (1-4 steps is typical). With
`train.distill.rounds = R` the `train.steps` are split into R equal rounds; round r trains a
student of `nfe * 2^(R - 1 - r)` steps (`flowforge.training.distillation`), initialised from
its teacher: the parent's EMA weights in the first round (the parent sampled by
`teacher_solver` in `teacher_nfe` evaluations over the span, split evenly among the student's
steps), the previous round's EMA weights after that (two DDIM steps per student step). Each
round starts with a fresh optimizer, learning-rate schedule and EMA. Checkpoints hold the
round and its teacher's weights, so a run resumes inside any round. A class-conditional
parent (the task passes `label_dropout`) is distilled per class: teacher and student see each
training point's label, dropped to the null class as in `fit`.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from flowforge.data.standardize import Standardizer
from flowforge.errors import InvalidArgumentError, SpecError
from flowforge.grids import make_grid
from flowforge.paths.base import AffinePath
from flowforge.solvers.base import Solver
from flowforge.solvers.ddim import DDIM
from flowforge.tasks.base import TaskContext
from flowforge.tasks.components import build
from flowforge.tasks.parent import find_parent
from flowforge.tasks.sampling import sampling_grid
from flowforge.tasks.training_run import Evaluate, TrainingRun
from flowforge.training import rng
from flowforge.training.distillation import Distillation, Teacher, refine
from flowforge.training.network import Network
from flowforge.training.self_conditioning import takes_self_condition
from flowforge.training.trainer import Trainer


def student_grid(ctx: TaskContext, path: AffinePath) -> Tensor:
    """The final student's grid `(nfe + 1,)`: what `sample` (ddim, nfe, time_grid) samples on."""
    spec = ctx.spec.sample
    if spec.solver.name != "ddim":
        raise SpecError(
            [
                (
                    "sample.solver",
                    f"a distilled student takes DDIM steps, but sample.solver is "
                    f"{spec.solver.name!r}; set sample.solver: ddim (sample.nfe is the number "
                    "of student steps)",
                )
            ]
        )
    solver = build("solver", spec.solver, "sample.solver")
    t0, t1 = path.t_span if spec.t_span is None else spec.t_span
    ends = [torch.full((1,), float(v), dtype=torch.float64) for v in (t0, t1)]
    grid = make_grid(sampling_grid(spec, solver), path, *ends, spec.nfe, DDIM.default_grid)
    return grid[:, 0]


def train_distill(
    ctx: TaskContext,
    model: nn.Module,
    path: AffinePath,
    train_data: Tensor,
    meta: dict[str, Any],
    evaluate: Evaluate | None = None,
    train_labels: Tensor | None = None,
    label_dropout: float | None = None,
) -> tuple[Standardizer, dict]:
    """Run the distillation stage; leaves the final student's EMA weights in `model`.
    `train_labels (N,)` and `label_dropout`: a class-conditional model (module docstring)."""
    spec, cfg = ctx.spec, ctx.spec.train
    settings = cfg.distill
    grid = student_grid(ctx, path)
    if takes_self_condition(model):
        raise SpecError(
            [
                (
                    "model",
                    "stage distill cannot distil a self-conditioned model (a student step has "
                    "no previous estimate); distil a parent trained without self-conditioning",
                )
            ]
        )
    parent = find_parent(ctx)
    parent_state = parent.load(meta)
    standardizer = Standardizer.from_state_dict(parent_state.get("standardizer"))
    data = standardizer.encode(train_data).to(ctx.device)
    labels = None
    if label_dropout is not None and train_labels is not None:
        labels = train_labels.to(ctx.device)
    rounds, per_round = settings.rounds, cfg.steps // settings.rounds
    stage_meta = {**meta, "stage": "distill", "parent": str(parent.checkpoint.resolve())}
    stage_meta["student"] = [spec.sample.nfe, rounds]
    training = TrainingRun(ctx, stage_meta)
    state = training.state
    first = 0 if state is None else int(state["round"])
    teacher_weights = None if state is None or first == 0 else state["teacher"]
    skipped = 0 if state is None else int(state.get("previous_nonfinite", 0))
    spikes = 0 if state is None else int(state.get("previous_spikes", 0))
    gen = rng.generator(spec.seed, "train", ctx.device)
    summary = None
    for r in range(first, rounds):
        resumed = state is not None and r == first
        teacher = _teacher(ctx, model, path, parent_state["ema"], teacher_weights)
        if not resumed:
            model.load_state_dict(parent_state["ema"] if r == 0 else teacher_weights)
        objective = Distillation(
            teacher,
            path,
            spec.model.prediction,
            data,
            refine(grid, rounds - 1 - r),
            loss=cfg.loss,
            time_sampler=build("time_sampler", cfg.time_sampler, "train.time_sampler"),
            labels=labels,
            label_dropout=label_dropout,
        )
        trainer = Trainer(
            model, objective, cfg, generator=gen, span=(r * per_round, (r + 1) * per_round)
        )
        if resumed:
            trainer.load_state_dict(state)
        extra = {"round": r, "previous_nonfinite": skipped, "previous_spikes": spikes}
        if teacher_weights is not None:
            extra["teacher"] = teacher_weights
        summary = training.train(trainer, standardizer=standardizer, extra=extra, evaluate=evaluate)
        skipped += summary.nonfinite
        spikes += summary.spikes
        teacher_weights = trainer.ema.state_dict()
    model.load_state_dict(teacher_weights)
    return standardizer, {
        **training.record(summary, nonfinite=skipped, spikes=spikes),
        "distill_rounds": rounds,
        "distill_steps": spec.sample.nfe,
    }


def _teacher(
    ctx: TaskContext,
    model: nn.Module,
    path: AffinePath,
    parent_weights: dict[str, Tensor],
    student_weights: dict[str, Tensor] | None,
) -> Teacher:
    """The round's teacher: the parent with the teacher solver, or the previous round's student
    with two DDIM steps per interval. A frozen copy of the model, run in `train.precision`."""
    cfg = ctx.spec.train
    frozen = copy.deepcopy(model)
    frozen.load_state_dict(parent_weights if student_weights is None else student_weights)
    frozen.eval().requires_grad_(False)
    network = Network(frozen, cfg.precision)
    prediction = ctx.spec.model.prediction
    if student_weights is not None:
        return Teacher(network, path, prediction, DDIM(), 2)
    solver = build("solver", cfg.distill.teacher_solver, "train.distill.teacher_solver")
    return Teacher(network, path, prediction, solver, _per_interval(ctx, solver))


def _per_interval(ctx: TaskContext, solver: Solver) -> int:
    """The parent's evaluations per interval of the first round: `teacher_nfe` split evenly."""
    settings, where = ctx.spec.train.distill, "train.distill.teacher_nfe"
    intervals = ctx.spec.sample.nfe * 2 ** (settings.rounds - 1)
    nfe, rest = divmod(settings.teacher_nfe, intervals)
    if rest or not nfe:
        raise SpecError(
            [
                (
                    where,
                    f"{settings.teacher_nfe} evaluations cannot be split evenly among the "
                    f"{intervals} student steps of the first round (sample.nfe * 2^(rounds - "
                    f"1)); use a multiple of {intervals}",
                )
            ]
        )
    try:
        solver.steps_for_nfe(nfe)
    except InvalidArgumentError as err:
        raise SpecError([(where, f"{nfe} evaluations per student step: {err}")]) from None
    return nfe
