"""Write generated samples: `.npy` always, and a CSV too for tabular `(N, D)` data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor


def write_samples(samples: Tensor, directory: Path) -> list[Path]:
    """Save `samples (N, ...)` under `directory`; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    array = samples.detach().cpu().numpy()
    files = [directory / "samples.npy"]
    np.save(files[0], array)
    if array.ndim == 2:
        header = ",".join(f"x{i}" for i in range(array.shape[1]))
        files.append(directory / "samples.csv")
        np.savetxt(files[1], array, delimiter=",", header=header, comments="", fmt="%.7g")
    return files
