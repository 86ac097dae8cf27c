"""The parent of a `reflow` or `distill` stage: the finished run named by `train.parent`.

`train.parent` names a run directory, `<output.dir>/<name>` (the newest run of that name) or a
spec file (the newest run of that spec, as `flowforge run --resume SPEC` finds it); relative
paths are read from the working directory. The parent must have trained to its last step, on
the same data, path and model as the stage (the stage starts from its weights and
standardizer). The resolved checkpoint is recorded in the stage's run directory
(`parent.json`), so a resumed stage keeps its parent even after newer runs of that name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowforge.distributed import current
from flowforge.errors import FlowforgeError, SpecError
from flowforge.experiment.directory import RunDir
from flowforge.spec import load_spec
from flowforge.spec.models import ExperimentSpec
from flowforge.tasks.base import TaskContext
from flowforge.training.checkpoint import CheckpointDir, load_checkpoint

WHERE = "train.parent"
RECORD = "parent.json"


@dataclass(frozen=True)
class Parent:
    """A finished parent run: its directory, spec and final checkpoint."""

    run: RunDir
    spec: ExperimentSpec
    checkpoint: Path

    def load(self, meta: dict[str, Any]) -> dict[str, Any]:
        """The final checkpoint's state, checked against the stage's `meta` (data, path, model)."""
        from flowforge.tasks.fit import check_meta

        state = load_checkpoint(self.checkpoint)
        check_meta(state.get("meta"), meta, self.checkpoint)
        return state


def find_parent(ctx: TaskContext) -> Parent:
    """The parent of the stage `ctx.spec` describes; raises `SpecError` at `train.parent`.

    A resumed stage reuses the checkpoint recorded at its start; a new one resolves
    `train.parent`, checks it and records it.
    """
    record = ctx.run.root / RECORD
    if ctx.resume and record.is_file():
        saved = json.loads(record.read_text())
        run = RunDir(saved["run"])
        parent = Parent(run, load_spec(run.spec_path), Path(saved["checkpoint"]))
    else:
        parent = _resolve(ctx.spec.train.parent)
        if current().is_main:
            _record(record, parent)
    _check_compatible(ctx.spec, parent)
    return parent


def _record(record: Path, parent: Parent) -> None:
    record.write_text(
        json.dumps(
            {
                "run": str(parent.run.root.resolve()),
                "checkpoint": str(parent.checkpoint.resolve()),
            }
        )
        + "\n"
    )


def _resolve(ref: str) -> Parent:
    path = Path(ref)
    if path.is_file():
        if path.suffix not in (".yaml", ".yml"):
            raise _problem(
                f"{ref} is a file but not a spec; name the parent run (its directory, "
                "<output.dir>/<name>, or its spec file), not a checkpoint"
            )
        given = load_spec(path)
        run = RunDir.newest(given.output.dir, given.name)
        if run is None:
            raise _problem(
                f"no run of {given.name!r} under {given.output.dir}/{given.name}; run the parent "
                f"first: flowforge run {ref}"
            )
    elif path.is_dir():
        run = (
            RunDir(path)
            if (path / "spec.yaml").is_file()
            else RunDir.newest(path.parent, path.name)
        )
        if run is None:
            raise _problem(f"{ref} holds no run (no spec.yaml, and no runs under it)")
    else:
        raise _problem(f"{ref} does not exist (relative paths are read from the working directory)")
    return _finished(run)


def _finished(run: RunDir) -> Parent:
    """The parent's final checkpoint; a run that stopped early must be finished first."""
    try:
        spec = load_spec(run.spec_path)
    except FlowforgeError as err:
        raise _problem(f"the spec of {run.root} no longer loads: {err}") from None
    if spec.train is None or spec.train.steps == 0:
        raise _problem(f"run {run.root} trained nothing (train: null or steps: 0)")
    latest = CheckpointDir(run.checkpoints).latest()
    step = None if latest is None else int(latest.stem.split("_")[1])
    if step != spec.train.steps:
        got = "no checkpoint" if step is None else f"stopped at step {step}"
        raise _problem(
            f"run {run.root} {got} of {spec.train.steps}; finish it first with "
            f"flowforge run --resume {run.root}"
        )
    return Parent(run, spec, latest)


def _check_compatible(spec: ExperimentSpec, parent: Parent) -> None:
    """The stage continues the parent's model: data, path and model must be the parent's."""
    theirs, ours = parent.spec, spec
    diffs = [key for key in ("data", "path") if getattr(theirs, key) != getattr(ours, key)]
    model = ("name", "params", "prediction")
    if any(getattr(theirs.model, k) != getattr(ours.model, k) for k in model):
        diffs.append("model")
    if diffs:
        keys = ", ".join(diffs)
        raise _problem(
            f"the parent run {parent.run.root} has a different {keys} section; a "
            f"{spec.train.stage} stage starts from the parent's weights, so copy {keys} from "
            f"{parent.run.spec_path}"
        )


def _problem(message: str) -> SpecError:
    return SpecError([(WHERE, message)])
