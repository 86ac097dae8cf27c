"""The `reflow` stage: retrain a finished run's model on its own noise-data pairs.

`train.stage: reflow` with `train.parent`: the parent's EMA weights generate
`train.reflow.pairs` pairs `(x_0, ODE(x_0))` (`flowforge.training.reflow`), stored once in
`<run>/reflow/pairs.pt` (atomically; a resumed run reuses them), and the model, initialised
from the parent, is trained on the fixed pairs with the spec's `train` settings. Sampling,
evaluation and outputs are the task's as for any run. A class-conditional parent (the task
passes `label_dropout`) makes each pair under a label drawn from the training labels, and the
model is trained on the pairs with their labels, dropped to the null class as in `fit`.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor, nn

from flowforge.data.standardize import Standardizer
from flowforge.distributed import current
from flowforge.errors import CheckpointError, InvalidArgumentError, SpecError
from flowforge.paths.base import AffinePath
from flowforge.tasks.base import TaskContext
from flowforge.tasks.components import build
from flowforge.tasks.parent import Parent, find_parent
from flowforge.tasks.training_run import Evaluate, TrainingRun
from flowforge.training import rng, self_conditioning
from flowforge.training.checkpoint import load_checkpoint, save_checkpoint
from flowforge.training.labels import check_dropout
from flowforge.training.reflow import Pairs, generate_pairs
from flowforge.training.regression import Regression

PAIRS = "reflow/pairs.pt"


def train_reflow(
    ctx: TaskContext,
    model: nn.Module,
    path: AffinePath,
    train_data: Tensor,
    meta: dict[str, Any],
    evaluate: Evaluate | None = None,
    train_labels: Tensor | None = None,
    label_dropout: float | None = None,
) -> tuple[Standardizer, dict]:
    """Run the reflow stage; leaves the EMA weights in `model`. `meta` as `checkpoint_meta`;
    `train_labels (N,)` and `label_dropout`: a class-conditional model (module docstring)."""
    spec = ctx.spec
    parent = find_parent(ctx)
    parent_state = parent.load(meta)
    standardizer = Standardizer.from_state_dict(parent_state.get("standardizer"))
    self_conditioning.check_model(model, spec.train.self_condition, spec.model.name)
    stage_meta = {**meta, "stage": "reflow", "parent": str(parent.checkpoint.resolve())}
    training = TrainingRun(ctx, stage_meta)
    model.load_state_dict(parent_state["ema"])
    start = time.perf_counter()
    labels = None
    if label_dropout is not None:
        check_dropout(label_dropout, train_labels)
        labels = _pair_labels(train_labels, spec.train.reflow.pairs, spec.seed)
    pairs = _pairs(ctx, model, path, parent, tuple(train_data.shape[1:]), labels)
    seconds = time.perf_counter() - start
    objective = Regression.from_spec(
        path,
        spec.model.prediction,
        pairs.data.to(ctx.device),
        spec.train,
        noise=pairs.noise.to(ctx.device),
        labels=None if pairs.labels is None else pairs.labels.to(ctx.device),
        label_dropout=label_dropout,
    )
    summary = training.fit(model, objective, standardizer=standardizer, evaluate=evaluate)
    record = training.record(summary)
    return standardizer, {**record, "reflow_pairs": pairs.data.shape[0], "reflow_seconds": seconds}


def _pair_labels(train_labels: Tensor, n: int, seed: int) -> Tensor:
    """The classes of `n` pairs: drawn from the training labels (their class frequencies)."""
    gen = rng.generator(seed, "reflow_labels")
    return train_labels[torch.randint(0, train_labels.shape[0], (n,), generator=gen)]


def _pairs(
    ctx: TaskContext,
    model: nn.Module,
    path: AffinePath,
    parent: Parent,
    shape: tuple[int, ...],
    labels: Tensor | None = None,
) -> Pairs:
    """The stage's pairs: loaded from the run directory if made before, else generated and
    saved. They are a pure function of the parent, `train.reflow`, the seed and whether the
    model is class-conditional (`labels (pairs,)`)."""
    spec, settings = ctx.spec, ctx.spec.train.reflow
    file = ctx.run.root / PAIRS
    made_by = {
        "parent": str(parent.checkpoint.resolve()),
        "settings": settings.model_dump(mode="json"),
        "seed": spec.seed,
        "t_span": list(spec.sample.t_span) if spec.sample.t_span else None,
        "conditional": labels is not None,
    }
    if file.is_file():
        try:
            saved = load_checkpoint(file)
        except CheckpointError:
            saved = None  # a kill while writing cannot tear it (atomic), but regenerate anyway
        if saved is not None and saved.get("made_by") == made_by:
            return Pairs(saved["noise"], saved["data"], saved.get("labels"))
    solver = build("solver", settings.solver, "train.reflow.solver")
    try:
        solver.steps_for_nfe(settings.nfe)
    except InvalidArgumentError as err:
        raise SpecError([("train.reflow.nfe", str(err))]) from None
    bar = ctx.progress.add_task("pairs", total=settings.pairs, info="reflow")
    model.eval()
    field = model
    if self_conditioning.takes_self_condition(model):
        field = self_conditioning.SelfConditioned(model, path, spec.model.prediction)
    pairs = generate_pairs(
        field,
        path,
        spec.model.prediction,
        settings.pairs,
        data_shape=shape,
        solver=solver,
        nfe=settings.nfe,
        generator=rng.generator(spec.seed, "reflow", ctx.device),
        device=ctx.device,
        batch_size=settings.batch_size,
        t_span=spec.sample.t_span,
        on_batch=lambda n: ctx.progress.update(bar, advance=n),
        labels=labels,
    )
    if current().is_main:
        saved = {"noise": pairs.noise, "data": pairs.data, "made_by": made_by}
        if pairs.labels is not None:
            saved["labels"] = pairs.labels
        save_checkpoint(file, saved)
    return pairs
