"""The `flowforge` command line: run, validate, schema, plugins, and commands added by plugins.

User mistakes print one message (no traceback) and exit 2 for invalid input, 1 for failed runs.
Set FLOWFORGE_DEBUG=1 to see the traceback of an unexpected error.
"""

from __future__ import annotations

import os
import sys

import click

from flowforge import __version__
from flowforge.errors import FlowforgeError, SpecError

EXIT_INVALID = 2
EXIT_FAILED = 1


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowforge")
def cli() -> None:
    """flowforge: flow-matching and diffusion models for science."""


def _add_commands() -> None:
    from flowforge import registry
    from flowforge.cli import plugins, run, schema, tune, validate

    for module in (run, validate, schema, plugins, tune):
        cli.add_command(module.command)
    try:
        hooks = registry.current().commands
    except FlowforgeError as err:
        click.echo(f"warning: plugins not loaded: {err}", err=True)
        return
    for hook in hooks:
        hook(cli=cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `flowforge` script and `python -m flowforge`."""
    _add_commands()
    try:
        # Outside standalone mode click returns the code of `ctx.exit(code)` instead of exiting.
        code = cli.main(args=argv, prog_name="flowforge", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(EXIT_INVALID if isinstance(err, click.UsageError) else err.exit_code)
    except SpecError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_INVALID)
    except FlowforgeError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_FAILED)
    except Exception as err:
        if os.environ.get("FLOWFORGE_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(err).__name__}: {err}\n"
            "This is a bug in flowforge or a plugin; rerun with FLOWFORGE_DEBUG=1 for the "
            "traceback and report it.",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else 0)
