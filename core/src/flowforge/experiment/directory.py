"""The run directory `<root>/<name>/<timestamp>/` and the files every run writes into it.

Layout: `spec.yaml` (resolved spec), `metrics.json` (final numbers), `metrics.jsonl` (one line
per training log), `checkpoints/`, `samples/`, `plots/`, `report.md`.
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from flowforge.errors import InvalidArgumentError

STAMP = "%Y%m%d-%H%M%S"
NAME = re.compile(r"^(\d{8}-\d{6})(?:-(\d+))?$")


class RunDir:
    """One run's directory and the paths of its files.

    >>> run = RunDir.create("runs", "quickstart")       # runs/quickstart/20250101-120000/
    >>> run.append_log({"step": 100, "loss": 0.91})
    >>> RunDir.newest("runs", "quickstart").root == run.root
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    @classmethod
    def create(cls, root: str | os.PathLike, name: str) -> RunDir:
        """A new, empty run directory named by the current time (`-2`, `-3`, ... if taken)."""
        parent = Path(root) / name
        parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime(STAMP)
        for n in range(1, 1000):
            target = parent / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                target.mkdir()
            except FileExistsError:
                continue
            return cls(target)
        raise InvalidArgumentError(f"could not create a fresh run directory under {parent}")

    @classmethod
    def newest(cls, root: str | os.PathLike, name: str) -> RunDir | None:
        """The most recently started run of `name` under `root` that has a spec, or None."""
        parent = Path(root) / name
        if not parent.is_dir():
            return None
        runs = []
        for d in parent.iterdir():
            m = NAME.match(d.name)
            if m and (d / "spec.yaml").is_file():
                runs.append(((m.group(1), int(m.group(2) or 1)), d))
        return cls(max(runs)[1]) if runs else None

    @property
    def spec_path(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.json"

    @property
    def log_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def report_path(self) -> Path:
        return self.root / "report.md"

    def append_log(self, record: dict[str, Any]) -> None:
        """Append one JSON line to `metrics.jsonl` (NaN/Inf become null)."""
        with self.log_path.open("a") as fh:
            fh.write(json.dumps(_finite(record)) + "\n")

    def read_log(self) -> list[dict[str, Any]]:
        """The training log records; a torn last line (from a kill) is ignored."""
        if not self.log_path.is_file():
            return []
        records = []
        for line in self.log_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return records

    def truncate_log(self, step: int) -> None:
        """Keep only log records up to `step` (a resumed run rewrites what came after)."""
        kept = [r for r in self.read_log() if r.get("step", 0) <= step]
        self.log_path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        self.metrics_path.write_text(json.dumps(_finite(metrics), indent=2) + "\n")


def _finite(record: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN/Inf: write them as null."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()
    }
