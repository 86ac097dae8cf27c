"""`report.md`: a short human-readable summary of a run (spec, headline numbers, files)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flowforge.experiment.directory import RunDir
from flowforge.spec.models import ComponentRef, ExperimentSpec


def _ref(ref: ComponentRef) -> str:
    params = ", ".join(f"{k}={v}" for k, v in ref.params.items())
    return f"`{ref.name}`" + (f" ({params})" if params else "")


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


def render_report(
    spec: ExperimentSpec,
    metrics: dict[str, float],
    record: dict[str, Any],
    files: Iterable[Path],
    root: Path,
    resume_command: str,
) -> str:
    """The markdown text of the report."""
    train = spec.train
    s = spec.sample
    lines = [
        f"# Run `{spec.name}`",
        "",
        f"`{root}`",
        "",
        "## Spec",
        f"- data: {_ref(spec.data)}",
        f"- path: {_ref(spec.path)}",
        f"- model: {_ref(spec.model)}, predicting `{spec.model.prediction}`",
        f"- train: {train.steps} steps, batch {train.batch_size}, lr {train.lr}, "
        f"EMA {train.ema_decay}"
        if train
        else "- train: none",
        f"- sample: {_ref(s.solver)}, nfe {s.nfe}, {s.num_samples} samples, grid `{s.time_grid}`",
        f"- seed: {spec.seed}",
        "",
        "## Metrics",
        "| metric | value |",
        "|---|---|",
        *(f"| {k} | {_number(v)} |" for k, v in metrics.items()),
        "",
        "## Training and timing",
        *(f"- {k}: {_number(v)}" for k, v in record.items()),
        "",
        "## Files",
        *(f"- `{p.relative_to(root)}`" for p in files),
        "",
        f"Resume or re-evaluate: `{resume_command}`",
        "",
    ]
    return "\n".join(lines)


def write_report(
    run: RunDir,
    spec: ExperimentSpec,
    metrics: dict[str, float],
    record: dict[str, Any],
    files: Iterable[Path],
    resume_command: str,
) -> Path:
    run.report_path.write_text(
        render_report(spec, metrics, record, files, run.root, resume_command)
    )
    return run.report_path
