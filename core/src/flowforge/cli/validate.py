"""`flowforge validate SPEC...`: check spec files in both stages without running anything.

Every file is checked, so one run reports all problems; the exit status is 2 if any file is bad.
"""

from __future__ import annotations

import click

from flowforge.cli import EXIT_INVALID
from flowforge.errors import SpecError
from flowforge.spec import load_spec


@click.command("validate")
@click.argument("specs", metavar="SPEC...", nargs=-1, required=True, type=click.Path())
def command(specs: tuple[str, ...]) -> None:
    """Validate spec files: prints `ok: <file>`, or each problem as `location: message`.

    Exit status: 0 when every file is valid, 2 when any is not (or cannot be read).
    """
    failed = 0
    for spec in specs:
        try:
            load_spec(spec)
        except SpecError as err:
            failed += 1
            click.echo(click.style("invalid: ", fg="red") + err.format(), err=True)
            continue
        click.echo(click.style("ok: ", fg="green") + spec)
    if failed:
        raise click.exceptions.Exit(EXIT_INVALID)
