"""Training inside a run: fresh or resumed, checkpointed, interruptible by SIGINT/SIGTERM.

Checkpoints hold the trainer's full state plus the standardizer and a description of what was
trained (`meta`), so resuming with a different model, path or dataset fails with a clear
`CheckpointError` instead of loading mismatched weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from flowforge.data.standardize import Standardizer
from flowforge.errors import CheckpointError
from flowforge.experiment.signals import RunInterrupted, StopOnSignal
from flowforge.paths.base import AffinePath
from flowforge.tasks.base import TaskContext
from flowforge.training import rng
from flowforge.training.checkpoint import CheckpointDir, load_checkpoint
from flowforge.training.trainer import Trainer


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


def load_weights(model: nn.Module, source: str, meta: dict[str, Any]) -> Standardizer:
    """Load the averaged weights of a finished run's checkpoint (`model.checkpoint` in a spec)."""
    state = load_checkpoint(source)
    check_meta(state.get("meta"), meta, source)
    try:
        model.load_state_dict(state["ema"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(
            f"checkpoint {source} does not fit the model: {str(err).splitlines()[0]}"
        ) from None
    return Standardizer.from_state_dict(state.get("standardizer"))


def train(
    ctx: TaskContext,
    model: nn.Module,
    path: AffinePath,
    train_data: Tensor,
    train_labels: Tensor | None = None,
) -> tuple[Standardizer, dict]:
    """Train `model` on `train_data (N, *data_shape)` in data units; resume if `ctx.resume`.

    `train_labels (N,)`: the data's integer classes, for class-conditional couplings.

    Leaves the EMA weights in `model` and returns the standardizer and a training summary
    (`train_*` keys for metrics.json). On SIGINT/SIGTERM a checkpoint is written and
    `RunInterrupted` raised with the resume command.
    """
    spec, run = ctx.spec, ctx.run
    meta = checkpoint_meta(ctx, tuple(train_data.shape[1:]))
    ckpts = CheckpointDir(run.checkpoints, keep=spec.output.keep_checkpoints)
    state = ckpts.load_latest() if ctx.resume else None
    if state is not None:
        check_meta(state.get("meta"), meta, ckpts.latest())
        standardizer = Standardizer.from_state_dict(state.get("standardizer"))
    else:
        standardizer = Standardizer.fit(train_data)
    data = standardizer.encode(train_data).to(ctx.device)
    gen = rng.generator(spec.seed, "train", ctx.device)
    trainer = Trainer(
        model, path, spec.model.prediction, data, spec.train, generator=gen, labels=train_labels
    )
    if state is not None:
        trainer.load_state_dict(state)
    run.truncate_log(trainer.step)

    def save(step: int) -> None:
        ckpts.save(
            step, {**trainer.state_dict(), "standardizer": standardizer.state_dict(), "meta": meta}
        )

    bar = ctx.progress.add_task("train", total=spec.train.steps, completed=trainer.step, info="")

    def on_step(step: int, loss: float | None) -> None:
        ctx.progress.update(bar, completed=step)

    def on_log(record: dict[str, Any]) -> None:
        run.append_log(record)
        if record["loss"] is not None:
            ctx.progress.update(bar, info=f"loss {record['loss']:.4f}")

    def on_signal(name: str) -> None:
        ctx.progress.console.print(
            f"[yellow]{name} received: saving a checkpoint and stopping (again to abort)"
        )

    with StopOnSignal(on_signal) as stop:
        summary = trainer.fit(
            on_step=on_step,
            on_log=on_log,
            on_checkpoint=save,
            should_stop=lambda: stop.requested is not None,
        )
    if summary.interrupted:
        raise RunInterrupted(
            f"run interrupted by {stop.requested} at step {summary.step} of {spec.train.steps}; "
            f"checkpoint saved to {ckpts.latest()}.\nResume with:\n  {ctx.resume_command}",
            summary.step,
        )
    model.load_state_dict(trainer.ema.state_dict())
    logged = [r["loss"] for r in run.read_log() if r.get("loss") is not None]
    return standardizer, {
        "train_steps": summary.step,
        "train_loss": logged[-1] if logged else None,
        "train_nonfinite_steps": summary.nonfinite,
        "train_seconds": summary.seconds,
    }
