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


def _weights_source(checkpoint: str | list[str] | None) -> str:
    """Where the model's weights came from, for the report's spec line ('' when trained)."""
    if not checkpoint:
        return ""
    if isinstance(checkpoint, str) or len(checkpoint) == 1:
        return f", from `{checkpoint if isinstance(checkpoint, str) else checkpoint[0]}`"
    return f", from the mean of the EMA weights of {', '.join(f'`{c}`' for c in checkpoint)}"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


def _guidance_lines(spec: ExperimentSpec) -> list[str]:
    """The guidance list and, for inverse problems, the operator and the measurements."""
    lines = []
    if spec.guidance:
        lines.append(f"- guidance: {', '.join(_ref(g) for g in spec.guidance)}")
    if spec.operator is not None:
        lines.append(f"- operator: {_ref(spec.operator)}")
    m = spec.measurement
    if m is not None and m.file is not None:
        lines.append(f"- measurement: `{m.file}` (ground truth unknown)")
    elif m is not None and m.simulate is not None:
        sim = m.simulate
        lines.append(
            f"- measurement: simulated from `{sim.split}` points {sim.index} to "
            f"{sim.index + sim.count - 1}, noise seed {sim.seed}"
        )
    return lines


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
    per = " per measurement" if spec.measurement is not None else ""
    lines = [
        f"# Run `{spec.name}`",
        "",
        f"`{root}`",
        "",
        "## Spec",
        f"- task: {_ref(spec.task)}",
        f"- data: {_ref(spec.data)}",
        f"- path: {_ref(spec.path)}",
        f"- model: {_ref(spec.model)}, predicting `{spec.model.prediction}`"
        + _weights_source(spec.model.checkpoint),
        f"- train: {train.steps} steps, batch {train.batch_size}, lr {train.lr}, "
        f"EMA {train.ema_decay}"
        + (f"; stage `{train.stage}` from `{train.parent}`" if train.stage != "fit" else "")
        if train
        else "- train: none",
        f"- sample: {_ref(s.solver)}, nfe {s.nfe}, {s.num_samples} samples{per}, "
        f"grid `{s.time_grid}`",
        *_guidance_lines(spec),
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
