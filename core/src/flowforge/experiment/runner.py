"""Start or resume a run: pick the run directory and spec, then hand them to the task.

A fresh run writes the resolved spec to `<root>/<name>/<timestamp>/spec.yaml` first. `--resume`
takes a run directory, or a spec file (then the newest run of that spec's name); it always
continues with the run's own `spec.yaml`, so a resumed run is the run it continues.

Under `torchrun` (several processes) the process group is set up here: the main process creates
the run directory and the others open it; only the main process shows progress and writes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import Progress

from flowforge import distributed, registry
from flowforge.errors import FlowforgeError, InvalidArgumentError, SpecError
from flowforge.experiment.directory import RunDir
from flowforge.experiment.progress import make_progress
from flowforge.spec import dump_spec, load_spec
from flowforge.spec.models import ExperimentSpec
from flowforge.tasks.base import Task, TaskContext


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its directory and headline metrics."""

    run: RunDir
    metrics: dict[str, float]


def resolve_device(device: str) -> torch.device:
    """`auto` is CUDA when available, else CPU; `cuda` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidArgumentError(
            "--device cuda: no CUDA device is visible here; use --device cpu"
        )
    return torch.device(device)


def resume_command(run: RunDir, device: str, processes: int = 1) -> str:
    """The exact command line that resumes `run` (under `torchrun` for several processes)."""
    cmd = ["flowforge", "run", "--resume", str(run.root)]
    if processes > 1:
        cmd = ["torchrun", "--standalone", f"--nproc_per_node={processes}", "-m", *cmd]
    if device != "auto":
        cmd += ["--device", device]
    return shlex.join(cmd)


def prepare(
    source: str | Path, *, resume: bool, output: str | Path | None
) -> tuple[ExperimentSpec, RunDir]:
    """The spec and run directory for `flowforge run SOURCE [--resume] [--output DIR]`."""
    source = Path(source)
    if resume:
        run = _run_to_resume(source, output)
        return load_spec(run.spec_path), run
    spec = load_spec(source)
    run = RunDir.create(output or spec.output.dir, spec.name)
    run.spec_path.write_text(dump_spec(spec))
    return spec, run


def _run_to_resume(source: Path, output: str | Path | None) -> RunDir:
    """The run directory `source`, or the newest run of the spec file `source` (unchanged)."""
    if source.is_dir():
        if not (source / "spec.yaml").is_file():
            raise _problem(
                source,
                "not a run directory (it has no spec.yaml); pass a run "
                "directory <root>/<name>/<timestamp> or the spec file",
            )
        return RunDir(source)
    given = load_spec(source)
    root = output or given.output.dir
    run = RunDir.newest(root, given.name)
    if run is None:
        raise _problem(
            source,
            f"--resume: no run of {given.name!r} under {root}/{given.name}; "
            "start one without --resume",
        )
    started = load_spec(run.spec_path)
    changed = [
        k
        for k in ExperimentSpec.model_fields
        if k != "output" and getattr(given, k) != getattr(started, k)
    ]
    if changed:
        raise _problem(
            source,
            f"--resume: the spec differs from the one run {run.root} started "
            f"with (in {', '.join(changed)}); resume the run directory to keep "
            "its spec, or start a new run without --resume",
        )
    return run


def _prepare_once(
    world: distributed.World, source: str | Path, resume: bool, output: str | Path | None
) -> tuple[ExperimentSpec, RunDir]:
    """`prepare` in the main process; the others open the run directory it chose."""
    if not world.active:
        return prepare(source, resume=resume, output=output)
    root = None
    try:
        if world.is_main:
            root = str(prepare(source, resume=resume, output=output)[1].root)
    finally:
        root = world.broadcast(root)
    if root is None:
        raise FlowforgeError("the main process could not prepare the run; see its error")
    run = RunDir(root)
    return load_spec(run.spec_path), run


def _problem(source: Path, message: str) -> SpecError:
    return SpecError([("", message)], str(source))


def execute(
    source: str | Path,
    *,
    resume: bool = False,
    output: str | Path | None = None,
    device: str = "auto",
    progress: Progress | None = None,
) -> RunOutcome:
    """Run (or resume) the spec at `source` with its task (`task:`, default `generate`)."""
    with distributed.process_group(resolve_device(device)) as torch_device:
        return _execute(source, resume, output, device, torch_device, progress)


def _execute(
    source: str | Path,
    resume: bool,
    output: str | Path | None,
    device: str,
    torch_device: torch.device,
    progress: Progress | None,
) -> RunOutcome:
    world = distributed.current()
    spec, run = _prepare_once(world, source, resume, output)
    task: Task = registry.get("task", spec.task.name).build(spec.task.params)
    progress = progress or make_progress(disable=not world.is_main)
    ctx = TaskContext(
        spec=spec,
        run=run,
        device=torch_device,
        resume=resume,
        progress=progress,
        resume_command=resume_command(run, device, world.size),
    )
    with progress:
        metrics = task.run(ctx)
    return RunOutcome(run, metrics)
