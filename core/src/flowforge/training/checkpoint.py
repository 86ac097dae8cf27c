"""Checkpoints: atomic writes, safe loads, and a directory that keeps the last few.

A write goes to a temporary file in the same directory, is flushed and fsynced, then renamed
over the target with `os.replace`, so a crash or kill at any moment leaves either the old file or
the new one, never a torn one. Loads use `torch.load(..., weights_only=True)` only: a checkpoint
holds tensors and plain Python values, never pickled objects.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from flowforge.errors import CheckpointError

FORMAT = 1
PATTERN = re.compile(r"^step_(\d{8,})\.pt$")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write `state` to `path` atomically (temp file, flush + fsync, `os.replace`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (where the platform allows opening directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint`; raises `CheckpointError` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated and cannot be loaded "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
            "Delete it to resume from the previous checkpoint in the same directory."
        ) from None
    found = state.get("format") if isinstance(state, dict) else type(state).__name__
    if found != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} is not a flowforge checkpoint of format {FORMAT} (found {found!r})"
        )
    return state


class CheckpointDir:
    """`step_XXXXXXXX.pt` files in one directory; `save` keeps only the newest `keep`.

    >>> ckpts = CheckpointDir(run_dir / "checkpoints", keep=3)
    >>> ckpts.save(step, trainer.state_dict())
    >>> state = ckpts.load_latest()      # None when there is none yet
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 3):
        if keep < 1:
            raise CheckpointError(f"output.keep_checkpoints must be >= 1, got {keep}")
        self.directory = Path(directory)
        self.keep = keep

    def path_for(self, step: int) -> Path:
        return self.directory / f"step_{step:08d}.pt"

    def all(self) -> list[Path]:
        """Existing checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [
            (int(m.group(1)), p) for p in self.directory.iterdir() if (m := PATTERN.match(p.name))
        ]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        files = self.all()
        return files[-1] if files else None

    def save(self, step: int, state: dict[str, Any]) -> Path:
        path = save_checkpoint(self.path_for(step), {"step": step, **state})
        for old in self.all()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        path = self.latest()
        return None if path is None else load_checkpoint(path, map_location)
