"""Training inside a run: fresh or resumed, checkpointed, interruptible by SIGINT/SIGTERM.

Checkpoints hold the trainer's full state plus the standardizer and a description of what was
trained (`meta`), so resuming with a different model, path or dataset fails with a clear
`CheckpointError` instead of loading mismatched weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from flowforge.data.base import Dataset
from flowforge.data.standardize import Standardizer
from flowforge.errors import CheckpointError
from flowforge.experiment.directory import RunDir
from flowforge.paths.base import AffinePath
from flowforge.tasks.base import TaskContext
from flowforge.tasks.distill import train_distill
from flowforge.tasks.reflow import train_reflow
from flowforge.tasks.training_run import Evaluate, TrainingRun
from flowforge.training import self_conditioning
from flowforge.training.checkpoint import CheckpointDir, load_checkpoint
from flowforge.training.regression import Regression
from flowforge.training.weight_average import mean_weights


def checkpoint_meta(ctx: TaskContext, data_shape: tuple[int, ...]) -> dict[str, Any]:
    """What a checkpoint was trained for; compared on every load."""
    spec = ctx.spec
    return {
        "dataset": spec.data.name,
        "path": spec.path.name,
        "model": spec.model.name,
        "prediction": spec.model.prediction,
        "data_shape": list(data_shape),
    }


def check_meta(found: Any, expected: dict[str, Any], source: Path | str) -> None:
    """Raise `CheckpointError` naming every field in which `found` differs from `expected`."""
    if not isinstance(found, dict):
        raise CheckpointError(
            f"checkpoint {source} has no 'meta' entry; it was not written by flowforge run"
        )
    diffs = [
        f"{k}: {found.get(k)!r} in the checkpoint, {v!r} in the spec"
        for k, v in expected.items()
        if found.get(k) != v
    ]
    if diffs:
        raise CheckpointError(f"checkpoint {source} does not match the spec ({'; '.join(diffs)})")


def resolve_checkpoint(source: str | Path) -> Path:
    """The checkpoint file that `model.checkpoint` names.

    A file is itself; a run directory (it holds `spec.yaml`) gives its newest checkpoint; any
    other directory is read as `<output.dir>/<name>` and gives the newest checkpoint of the
    newest run of that name, so a spec can build on a parent run without knowing its timestamp.
    """
    path = Path(source)
    if not path.is_dir():
        return path
    run: RunDir | None = RunDir(path)
    if not run.spec_path.is_file():
        run = RunDir.newest(path.parent, path.name)
    latest = None if run is None else CheckpointDir(run.checkpoints).latest()
    if latest is None:
        raise CheckpointError(
            f"model.checkpoint: {path} holds no run with a checkpoint; give a checkpoint file, a "
            "run directory <dir>/<name>/<timestamp>, or <dir>/<name> after `flowforge run`"
        )
    return latest


def load_weights(
    model: nn.Module, source: str | Path | list[str], meta: dict[str, Any]
) -> Standardizer:
    """Load the averaged weights of a finished run's checkpoint (`model.checkpoint` in a spec);
    `source` as `resolve_checkpoint` reads it, or a list of such: the mean of their EMA weights
    (`flowforge.training.weight_average`), all of one network and one standardizer."""
    sources = [
        resolve_checkpoint(s) for s in ([source] if isinstance(source, str | Path) else source)
    ]
    seen = [p.resolve() for p in sources]
    for i, path in enumerate(seen):
        if path in seen[:i]:
            raise CheckpointError(
                f"model.checkpoint names {path} twice (a run directory stands for its newest "
                "checkpoint): list each checkpoint once"
            )
    states = [_weights_of(load_checkpoint(s)) for s in sources]
    for path, state in zip(sources, states, strict=True):
        check_meta(state.get("meta"), meta, path)
        if "ema" not in state:
            raise CheckpointError(f"checkpoint {path} holds no EMA weights ('ema')")
        if not _same(state.get("standardizer"), states[-1].get("standardizer")):
            raise CheckpointError(
                f"checkpoints {path} and {sources[-1]} map data to model space differently "
                "(their standardizers differ): average checkpoints of one run"
            )
    names = [str(s) for s in sources]
    ema = states[0]["ema"] if len(states) == 1 else mean_weights([s["ema"] for s in states], names)
    try:
        model.load_state_dict(ema)
    except RuntimeError as err:
        raise CheckpointError(
            f"checkpoint {sources[-1]} does not fit the model: {str(err).splitlines()[0]}"
        ) from None
    return Standardizer.from_state_dict(states[-1].get("standardizer"))


def _weights_of(state: dict[str, Any]) -> dict[str, Any]:
    """The parts of a checkpoint that loading weights reads (the optimizer state is dropped)."""
    return {k: state[k] for k in ("meta", "ema", "standardizer") if k in state}


def _same(a: dict[str, Tensor] | None, b: dict[str, Tensor] | None) -> bool:
    """Whether two standardizer states are equal (both None included)."""
    if a is None or b is None:
        return a is b
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def prior_weights(
    ctx: TaskContext,
    model: nn.Module,
    path: AffinePath,
    dataset: Dataset,
    train_data: Tensor,
    evaluate: Evaluate | None = None,
    label_dropout: float | None = None,
) -> tuple[Standardizer, dict]:
    """Give `model` its weights as the spec says: load `model.checkpoint`, train (or resume), or
    leave it untrained (`train: null`). Returns the standardizer and a record for metrics.json.
    `evaluate`, `label_dropout`: see `train`; the standardizer of a fresh run is the dataset's
    (`Dataset.fit_standardizer`).
    """
    spec = ctx.spec
    if spec.model.checkpoint is not None:
        meta = checkpoint_meta(ctx, dataset.data_shape)
        return load_weights(model, spec.model.checkpoint, meta), {"train_steps": 0}
    if spec.train is None:
        return dataset.fit_standardizer(train_data), {"train_steps": 0}
    labels = dataset.labels()
    labels = None if labels is None else labels["train"]
    fresh = dataset.fit_standardizer(train_data)
    return train(ctx, model, path, train_data, labels, evaluate, fresh, label_dropout)


def train(
    ctx: TaskContext,
    model: nn.Module,
    path: AffinePath,
    train_data: Tensor,
    train_labels: Tensor | None = None,
    evaluate: Evaluate | None = None,
    standardizer: Standardizer | None = None,
    label_dropout: float | None = None,
) -> tuple[Standardizer, dict]:
    """Train `model` as `train.stage` says, on `train_data (N, *data_shape)` in data units;
    resume if `ctx.resume`.

    `fit` learns from the data (`train_labels (N,)`: its integer classes, for class-conditional
    couplings); `reflow` and `distill` start from `train.parent` (`flowforge.tasks.reflow`,
    `flowforge.tasks.distill`). `evaluate(model, standardizer)`: the task's evaluation, run
    every `train.eval_every` steps into the log. `standardizer`: the map to model space of a
    fresh `fit` run (default: per coordinate, fitted on `train_data`). `label_dropout`: train a
    class-conditional model on `train_labels` (`Regression`; None: unconditional), in every
    stage (reflow pairs are made under labels; distillation passes them to teacher and student).

    Leaves the EMA weights in `model` and returns the standardizer and a training summary
    (`train_*` keys for metrics.json). On SIGINT/SIGTERM a checkpoint is written and
    `RunInterrupted` raised with the resume command.
    """
    spec = ctx.spec
    meta = checkpoint_meta(ctx, tuple(train_data.shape[1:]))
    if spec.train.stage == "reflow":
        return train_reflow(
            ctx, model, path, train_data, meta, evaluate, train_labels, label_dropout
        )
    if spec.train.stage == "distill":
        return train_distill(
            ctx, model, path, train_data, meta, evaluate, train_labels, label_dropout
        )
    self_conditioning.check_model(model, spec.train.self_condition, spec.model.name)
    training = TrainingRun(ctx, meta)
    if training.state is not None:
        standardizer = Standardizer.from_state_dict(training.state.get("standardizer"))
    elif standardizer is None:
        standardizer = Standardizer.fit(train_data)
    data = standardizer.encode(train_data).to(ctx.device)
    objective = Regression.from_spec(
        path,
        spec.model.prediction,
        data,
        spec.train,
        labels=train_labels,
        label_dropout=label_dropout,
    )
    summary = training.fit(model, objective, standardizer=standardizer, evaluate=evaluate)
    return standardizer, training.record(summary)
