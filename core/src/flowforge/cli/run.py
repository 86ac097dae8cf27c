"""`flowforge run SPEC`: train, sample, evaluate and write `runs/<name>/<timestamp>/`."""

from __future__ import annotations

import math

import click
from rich.console import Console
from rich.table import Table

from flowforge.experiment.signals import RunInterrupted

EXIT_INTERRUPTED = 130


@click.command("run")
@click.argument("spec", type=click.Path(exists=True))
@click.option(
    "--resume",
    is_flag=True,
    help="Continue from the last checkpoint. SPEC is then a run directory, or a spec file "
    "(its newest run is resumed).",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    help="Root directory of runs (default: the spec's output.dir).",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "cpu", "cuda"]),
    help="Where to train and sample.",
)
def command(spec: str, resume: bool, output: str | None, device: str) -> None:
    """Train, sample and evaluate SPEC; write the run directory and print its metrics.

    Ctrl-C (or SIGTERM) during training saves a checkpoint and prints the command to resume.
    Data-parallel on N GPUs (or CPU processes): torchrun --nproc_per_node=N -m flowforge run SPEC.
    """
    from flowforge.distributed import env_rank
    from flowforge.experiment.runner import execute

    console = Console()
    try:
        outcome = execute(spec, resume=resume, output=output, device=device)
    except RunInterrupted as err:
        if env_rank() == 0:  # under torchrun the main process reports
            click.secho(str(err), fg="yellow", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    if env_rank() != 0:
        return
    table = Table(title=f"{outcome.run.root}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in outcome.metrics.items():
        table.add_row(
            name,
            f"{value:.5g}" if isinstance(value, float) and math.isfinite(value) else str(value),
        )
    console.print(table)
    console.print(f"run directory: [bold]{outcome.run.root}", highlight=False, soft_wrap=True)
