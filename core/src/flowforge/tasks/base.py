"""Tasks: what `flowforge run` does with a validated spec inside a run directory."""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from rich.progress import Progress

from flowforge.experiment.directory import RunDir
from flowforge.spec.models import ExperimentSpec


@dataclass(frozen=True)
class TaskContext:
    """Inputs of a task run: the resolved spec, its run directory and how to run.

    `resume`: continue from the newest checkpoint in `run.checkpoints`; `progress`: rich
    progress bars to add loops to; `resume_command`: the exact command that resumes this run,
    for messages after an interruption.
    """

    spec: ExperimentSpec
    run: RunDir
    device: torch.device
    resume: bool
    progress: Progress
    resume_command: str


class Task(abc.ABC):
    """Base of all tasks. `run` does the work, writes every output file and returns the
    headline metrics (name -> value) that the CLI prints.

    A spec picks its task with `task: <name>` (default `generate`). `check_spec` lets a task
    report, at validation time, sections it needs or cannot use, so `flowforge validate`
    catches them before any training.

    >>> task = registry.create("task", "generate")
    >>> metrics = task.run(ctx)
    """

    @abc.abstractmethod
    def run(self, ctx: TaskContext) -> dict[str, float]:
        """Run the task on `ctx`; raises `FlowforgeError` subclasses on failure."""

    def check_spec(self, spec: ExperimentSpec) -> list[tuple[str, str]]:
        """Problems of an otherwise valid `spec` for this task, as `(dotted location, message)`.

        Called after both validation stages, so every component's params are resolved; must not
        read data or files (validation stays cheap and pure). The default finds none.
        """
        return []
