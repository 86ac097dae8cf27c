"""Optional TensorBoard logging of a run's training records (`train.tensorboard: true`).

TensorBoard is not a dependency of flowforge: the writer is imported only when asked for, and a
missing package is a `MissingDependencyError` with the install command, raised before training.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from flowforge.errors import MissingDependencyError


class TensorBoardLog:
    """Writes the numbers of `metrics.jsonl` records as scalars under `directory`.

    A key without a `/` is logged as `train/<key>` (`eval/<metric>` keys keep theirs);
    `purge_step`: a resumed run's step, from which TensorBoard drops the earlier run's events.

    >>> log = TensorBoardLog(run.root / "tensorboard", purge_step=trainer.step or None)
    >>> log.write({"step": 100, "loss": 0.91}); log.close()
    """

    def __init__(self, directory: str | Path, purge_step: int | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MissingDependencyError("tensorboard", "train.tensorboard: true") from None
        self.writer = SummaryWriter(str(directory), purge_step=purge_step)

    def write(self, record: dict[str, Any]) -> None:
        step = record["step"]
        for key, value in record.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(key if "/" in key else f"train/{key}", value, step)

    def close(self) -> None:
        self.writer.close()
