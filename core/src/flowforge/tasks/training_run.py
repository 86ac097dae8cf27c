"""One training stage inside a run directory: resume state, checkpoints, log, signals, progress.

Every stage (`fit`, `reflow`, `distill`) builds its own objective and hands it to
`TrainingRun.fit` (one trainer over the whole run), or its own `Trainer`s to `TrainingRun.train`
(distillation's rounds); `train` writes checkpoints (the trainer's state, the standardizer, a
`meta` description checked on resume, and the stage's own extra entries), appends the log to
`metrics.jsonl` (and TensorBoard if asked), drives the progress bar, and turns SIGINT/SIGTERM
into a final checkpoint and `RunInterrupted` with the resume command. In a data-parallel run
every process reads the checkpoint it resumes from, and the main process alone writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from flowforge.data.standardize import Standardizer
from flowforge.distributed import current
from flowforge.experiment.signals import RunInterrupted, StopOnSignal
from flowforge.experiment.tensorboard import TensorBoardLog
from flowforge.tasks.base import TaskContext
from flowforge.training import rng
from flowforge.training.checkpoint import CheckpointDir
from flowforge.training.objective import Objective
from flowforge.training.trainer import Trainer, TrainSummary

Evaluate = Callable[[nn.Module, Standardizer], dict[str, float]]


class TrainingRun:
    """The checkpoints and log of a run's training, for one or more trainers in sequence.

    `meta` describes what is trained; a resumed checkpoint must match it (`check_meta`).
    `state` is the newest checkpoint when resuming (None for a fresh run): load it into the
    trainer that covers its step.

    >>> training = TrainingRun(ctx, meta)
    >>> if training.state: trainer.load_state_dict(training.state)
    >>> summary = training.train(trainer, standardizer=st)
    """

    def __init__(self, ctx: TaskContext, meta: dict[str, Any]):
        from flowforge.tasks.fit import check_meta

        self.ctx = ctx
        self.meta = meta
        self.ckpts = CheckpointDir(ctx.run.checkpoints, keep=ctx.spec.output.keep_checkpoints)
        self.state = self.ckpts.load_latest() if ctx.resume else None
        if self.state is not None:
            check_meta(self.state.get("meta"), meta, self.ckpts.latest())
        self._bar: Any = None
        self._board: TensorBoardLog | None = None
        self._seconds = 0.0

    def train(
        self,
        trainer: Trainer,
        *,
        standardizer: Standardizer,
        extra: dict[str, Any] | None = None,
        evaluate: Evaluate | None = None,
    ) -> TrainSummary:
        """Run `trainer.fit` to the end of its span; `extra` goes into every checkpoint.

        `evaluate(model, standardizer)` is the task's evaluation, run every `train.eval_every`
        steps with the EMA weights. Raises `RunInterrupted` after a signal's checkpoint.
        """
        ctx, spec = self.ctx, self.ctx.spec
        if self._bar is None:
            self._start(trainer.step)

        def save(step: int) -> None:
            state = {**trainer.state_dict(), **(extra or {})}
            state.update(standardizer=standardizer.state_dict(), meta=self.meta)
            self.ckpts.save(step, state)

        def on_step(step: int) -> None:
            ctx.progress.update(self._bar, completed=step)

        def on_log(record: dict[str, Any]) -> None:
            ctx.run.append_log(record)
            if self._board is not None:
                self._board.write(record)
            if record.get("loss") is not None:
                ctx.progress.update(self._bar, info=f"loss {record['loss']:.4f}")

        def on_signal(name: str) -> None:
            if not current().is_main:
                return
            ctx.progress.console.print(
                f"[yellow]{name} received: saving a checkpoint and stopping (again to abort)"
            )

        check = None if evaluate is None else (lambda model: evaluate(model, standardizer))
        with StopOnSignal(on_signal) as stop:
            summary = trainer.fit(
                on_step=on_step,
                on_log=on_log,
                on_checkpoint=save,
                evaluate=check,
                should_stop=lambda: stop.requested is not None,
            )
        self._seconds += summary.seconds
        if summary.interrupted:
            self.close()
            raise RunInterrupted(
                f"run interrupted by {stop.requested} at step {summary.step} of "
                f"{spec.train.steps}; checkpoint saved to {self.ckpts.latest()}.\n"
                f"Resume with:\n  {ctx.resume_command}",
                summary.step,
            )
        return summary

    def fit(
        self,
        model: nn.Module,
        objective: Objective,
        *,
        standardizer: Standardizer,
        evaluate: Evaluate | None = None,
    ) -> TrainSummary:
        """Train `objective` over all of `train.steps` with one `Trainer` on the run's training
        generator (resumed from `state` if any), as `train` does; leaves the EMA weights in
        `model`."""
        spec = self.ctx.spec
        gen = rng.generator(spec.seed, "train", self.ctx.device)
        trainer = Trainer(model, objective, spec.train, generator=gen)
        if self.state is not None:
            trainer.load_state_dict(self.state)
        summary = self.train(trainer, standardizer=standardizer, evaluate=evaluate)
        model.load_state_dict(trainer.ema.state_dict())
        return summary

    def _start(self, step: int) -> None:
        """First trainer: drop log records after the resumed step, open the bar and board (the
        log and board in the main process only: the trainer logs there alone)."""
        ctx, main = self.ctx, current().is_main
        if main:
            ctx.run.truncate_log(step)
        total = ctx.spec.train.steps
        self._bar = ctx.progress.add_task("train", total=total, completed=step, info="")
        if ctx.spec.train.tensorboard and main:
            directory = ctx.run.root / "tensorboard"
            self._board = TensorBoardLog(directory, purge_step=step if step else None)

    def close(self) -> None:
        """Flush and close the TensorBoard log, if any."""
        if self._board is not None:
            self._board.close()
            self._board = None

    def record(
        self, summary: TrainSummary, nonfinite: int | None = None, spikes: int | None = None
    ) -> dict[str, Any]:
        """The `train_*` entries of metrics.json; closes the TensorBoard log. `nonfinite` and
        `spikes`: the skipped steps to report, if not the summary's (a run of several stages)."""
        self.close()
        logged = [r["loss"] for r in self.ctx.run.read_log() if r.get("loss") is not None]
        return {
            "train_steps": summary.step,
            "train_loss": logged[-1] if logged else None,
            "train_nonfinite_steps": summary.nonfinite if nonfinite is None else nonfinite,
            "train_spike_steps": summary.spikes if spikes is None else spikes,
            "train_seconds": self._seconds,
        }
