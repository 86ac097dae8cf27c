"""Progress bars for training and sampling loops (rich, on stderr)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def make_progress(console: Console | None = None, disable: bool = False) -> Progress:
    """Bars showing `description  [bar]  done/total  elapsed  remaining  info`.

    Add tasks with an `info` field (a short status text such as the current loss, or "").
    """
    return Progress(
        TextColumn("[bold]{task.description:<7}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console or Console(stderr=True),
        disable=disable,
    )
