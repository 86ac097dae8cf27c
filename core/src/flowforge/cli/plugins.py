"""`flowforge plugins`: the loaded plugins and their components, as a table or as JSON.

Plugins that failed to load are listed too (as warnings), since they were skipped silently
everywhere else.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from flowforge import registry
from flowforge.registry import KINDS, Registry


def report(reg: Registry) -> dict[str, Any]:
    """The `--json` document: `{"plugins": [...], "failures": [...]}` (see the command help)."""
    plugins = []
    for p in reg.plugins:
        entry = dataclasses.asdict(p)
        details: dict[str, dict[str, Any]] = {}
        for comp in reg.components():
            if comp.plugin == p.name and comp.info is not None:
                details.setdefault(comp.kind, {})[comp.name] = comp.info()
        if details:
            entry["details"] = details
        plugins.append(entry)
    return {"plugins": plugins, "failures": [dataclasses.asdict(f) for f in reg.failures]}


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def command(as_json: bool) -> None:
    """List the loaded plugins, their components by kind, and plugins that failed to load.

    \b
    --json prints one object, keys sorted:
      {"plugins": [{"name", "distribution", "version",
                    "components": {kind: [component names, sorted]},
                    "details": {kind: {name: {...}}}}],   (details: only where given)
       "failures": [{"name", "distribution", "error"}]}
    Plugins appear in load order: the core plugin "flowforge" first, then by entry-point name.
    """
    reg = registry.current()
    if as_json:
        click.echo(json.dumps(report(reg), indent=2, sort_keys=True))
        return
    table = Table("plugin", "distribution", "version", "kind", "components", title="plugins")
    for p in reg.plugins:
        kinds = [k for k in KINDS if k in p.components] or ["-"]
        for i, kind in enumerate(kinds):
            about = (p.name, p.distribution, p.version) if i == 0 else ("", "", "")
            table.add_row(*about, kind, ", ".join(p.components.get(kind, [])))
        table.add_section()
    Console().print(table)
    for f in reg.failures:
        click.echo(
            click.style("warning: ", fg="yellow")
            + f"plugin {f.name!r} ({f.distribution}) failed to load and was skipped: {f.error}",
            err=True,
        )
