"""Write a finished run's outputs: samples, plots, metrics.json and report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from flowforge.distributed import current
from flowforge.experiment.directory import RunDir
from flowforge.experiment.plots import plot_loss, plot_samples
from flowforge.experiment.report import write_report
from flowforge.experiment.samples import write_samples
from flowforge.spec.models import ExperimentSpec


def write_outputs(
    run: RunDir,
    spec: ExperimentSpec,
    samples: Tensor,
    test: Tensor,
    metrics: dict[str, float],
    record: dict[str, Any],
    resume_command: str,
) -> None:
    """`samples` and `test` in data units; `metrics` the evaluation, `record` training/timing.

    In a data-parallel run only the main process writes (the others hold the same results).
    """
    if not current().is_main:
        return
    files = [run.spec_path, *write_samples(samples, run.samples)]
    if spec.output.plots:
        run.plots.mkdir(parents=True, exist_ok=True)
        made = [
            plot_samples(samples, test, run.plots / "samples.png"),
            plot_loss(run.read_log(), run.plots / "loss.png"),
        ]
        files += [p for p in made if p is not None]
    finish_run(run, spec, files, metrics, record, resume_command)


def finish_run(
    run: RunDir,
    spec: ExperimentSpec,
    files: list[Path],
    metrics: dict[str, float],
    record: dict[str, Any],
    resume_command: str,
) -> list[Path]:
    """Write metrics.json and report.md after a task's own `files` (written already); the
    report lists them, the log, the checkpoints and itself. Returns every file listed."""
    run.write_metrics({**metrics, **record})
    files = [*files, run.metrics_path]
    if run.log_path.is_file():
        files.append(run.log_path)
    files += [*run_checkpoints(run), run.report_path]
    write_report(run, spec, metrics, record, files, resume_command)
    return files


def run_checkpoints(run: RunDir) -> list:
    """The checkpoint files of the run, oldest first."""
    if not run.checkpoints.is_dir():
        return []
    return sorted(run.checkpoints.glob("step_*.pt"))
