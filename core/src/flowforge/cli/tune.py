"""`flowforge tune SOURCE --nfe N`: tune the sampling time grid of a trained run's model.

SOURCE is a run directory (`runs/<name>/<timestamp>/`, its newest checkpoint is used) or a spec
file (its newest run, or the checkpoint its `model.checkpoint` names). The tuned grid is written
as JSON (default `<run>/tuned/<solver>-nfe<N>.json`) for `flowforge.tuning.load_schedule`.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import click

from flowforge.errors import SpecError


def _run_and_spec(source: Path):
    from flowforge.experiment.directory import RunDir
    from flowforge.spec import load_spec

    if source.is_dir():
        run = RunDir(source)
        if not run.spec_path.is_file():
            raise SpecError([("", "not a run directory (no spec.yaml); pass <root>/<name>/<ts>")])
        return run, load_spec(run.spec_path)
    spec = load_spec(source)
    return RunDir.newest(spec.output.dir, spec.name), spec


def load_trained(source: Path):
    """(model in eval mode, affine path, spec, run directory or None, data shape) for SOURCE."""
    from flowforge.tasks.components import build, build_affine_path
    from flowforge.tasks.fit import checkpoint_meta, load_weights
    from flowforge.training.checkpoint import CheckpointDir

    run, spec = _run_and_spec(source)
    dataset = build("dataset", spec.data, "data")
    model = build("model", spec.model, "model", data_shape=dataset.data_shape)
    checkpoint = spec.model.checkpoint
    if checkpoint is None and run is not None:
        checkpoint = CheckpointDir(run.checkpoints).latest()
    if checkpoint is None:
        raise SpecError(
            [("model.checkpoint", f"no trained model for {source}: run `flowforge run` first")]
        )
    # checkpoint_meta reads only the spec from its task context.
    meta = checkpoint_meta(SimpleNamespace(spec=spec), dataset.data_shape)
    load_weights(model, checkpoint, meta)
    return model.eval(), build_affine_path(spec.path), spec, run, dataset.data_shape


@click.command("tune")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--nfe", type=int, help="Exact model calls of the tuned sampler (default: spec's).")
@click.option(
    "--solver",
    "solvers",
    multiple=True,
    help="Solver to tune; repeat to search several (default: the spec's sample.solver).",
)
@click.option(
    "--budget",
    type=int,
    default=2000,
    show_default=True,
    help="Field evaluations (batched over the pilots), reference solve included.",
)
@click.option("--pilots", type=int, default=64, show_default=True, help="Pilot noises.")
@click.option("--reference-nfe", type=int, default=400, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the pilot noises.")
@click.option("--out", type=click.Path(path_type=Path), help="Output JSON file.")
def command(source, nfe, solvers, budget, pilots, reference_nfe, seed, out) -> None:
    """Tune the time grid of SOURCE's model for one nfe and save it as JSON.

    The grid is fitted on PILOTS noises against a fine rk4 solve; see docs/tuning.md.
    """
    import torch

    from flowforge.likelihood import prior_sample
    from flowforge.tasks.components import build
    from flowforge.tuning import tune_schedule

    model, path, spec, run, data_shape = load_trained(source)
    nfe = nfe or spec.sample.nfe
    ref = spec.sample.solver
    names = list(solvers) or [build("solver", ref, "sample.solver") if ref.params else ref.name]
    t_span = spec.sample.t_span or path.t_span
    gen = torch.Generator().manual_seed(seed)
    x_pilot = prior_sample(path, (pilots, *data_shape), t_span[0], gen)
    tuned = tune_schedule(
        model, x_pilot, path=path, prediction=spec.model.prediction, solver=names, nfe=nfe,
        budget=budget, t_span=t_span, reference_nfe=reference_nfe,
    )  # fmt: skip
    default_dir = run.root / "tuned" if run is not None else Path("tuned")
    file = tuned.save(out or default_dir / f"{tuned.solver}-nfe{nfe}.json")
    for name, err in tuned.candidates.items():
        click.echo(f"  {name}: pilot error {err:.3e}")
    click.echo(
        f"{tuned.solver} at nfe={nfe}: pilot error {tuned.error_before:.3e} -> "
        f"{tuned.error_after:.3e} ({tuned.gain:.2f}x) with {tuned.evaluations} of {budget} "
        f"field evaluations\nwrote {file}"
    )
