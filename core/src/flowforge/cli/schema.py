"""`flowforge schema`: print, write or check the JSON Schema of specs (committed under `schemas/`).

The schema includes every installed component's params, so regenerate it after adding one.
"""

from __future__ import annotations

import click

from flowforge.cli import EXIT_FAILED
from flowforge.spec.schema import EXPERIMENT, generate, stale_schemas, write_schemas


@click.command("schema")
@click.option("--write", "mode", flag_value="write", help="Write the schema files into --dir.")
@click.option(
    "--check", "mode", flag_value="check", help="Exit 1 if the files in --dir are not current."
)
@click.option(
    "--dir",
    "directory",
    default="schemas",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory of the schema files.",
)
def command(mode: str | None, directory: str) -> None:
    """Print the spec JSON Schema, or with --write/--check keep the committed files current.

    The schema is built from the spec models plus the params schema of every installed
    component, so it follows the installed plugins.
    """
    if mode == "write":
        for path in write_schemas(directory):
            click.echo(f"wrote {path}")
    elif mode == "check":
        stale = stale_schemas(directory)
        fix = "flowforge schema --write" + ("" if directory == "schemas" else f" --dir {directory}")
        for path in stale:
            state = "is out of date" if path.is_file() else "is missing"
            click.echo(
                f"{path} {state}: it must equal the schema generated from the spec models and "
                f"the installed plugins. Fix: {fix}",
                err=True,
            )
        if stale:
            raise click.exceptions.Exit(EXIT_FAILED)
        click.echo(f"schemas in {directory} are current")
    else:
        click.echo(generate()[EXPERIMENT], nl=False)
