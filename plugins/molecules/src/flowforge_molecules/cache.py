"""Where prepared data is cached: `$FLOWFORGE_CACHE`, else `$XDG_CACHE_HOME/flowforge`, else
`~/.cache/flowforge` (the user's cache directory), under `molecules/`."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The molecules cache directory (created on first use)."""
    root = os.environ.get("FLOWFORGE_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "flowforge")
    path = Path(root) / "molecules"
    path.mkdir(parents=True, exist_ok=True)
    return path
