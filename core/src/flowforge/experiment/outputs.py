"""Write a finished run's outputs: samples, plots, metrics.json and report.md."""

from __future__ import annotations

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
    run.write_metrics({**metrics, **record})
    files += [run.metrics_path, run.log_path] if run.log_path.is_file() else [run.metrics_path]
    files += run_checkpoints(run)
    files.append(run.report_path)
    write_report(run, spec, metrics, record, files, resume_command)


def run_checkpoints(run: RunDir) -> list:
    """The checkpoint files of the run, oldest first."""
    if not run.checkpoints.is_dir():
        return []
    return sorted(run.checkpoints.glob("step_*.pt"))
