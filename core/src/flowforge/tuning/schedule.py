"""A tuned time grid and its JSON file: what `tune_schedule` found, saved for reuse by specs.

The file records everything needed to reuse the grid and to judge it: the path, solver,
prediction kind and nfe it was tuned for, the grid itself (absolute times, `steps + 1` values
from `t_span[0]` to `t_span[1]`), the pilot error before and after tuning, and the budget of
field evaluations spent. `load_schedule(file)` returns the grid as a tensor for the
`time_grid=` argument of `flowforge.sample` (or a spec's `sample.time_grid`).

    {"format": "flowforge.tuned_schedule/1", "path": "cond_ot", "solver": "heun", "nfe": 9,
     "grid": [0.0, 0.31, ...], "error_before": 0.12, "error_after": 0.03, "budget": 2000, ...}
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError

FORMAT = "flowforge.tuned_schedule/1"


@dataclass(frozen=True)
class TunedSchedule:
    """A time grid tuned for one (path, prediction, solver, nfe), with its before/after errors.

    `grid` holds `steps + 1` increasing times (a tuple of floats, so the record is immutable and
    JSON-ready); `error_*` are mean RMS errors `||x - x_ref|| / sqrt(d)` on the pilot samples
    against the fine-step reference; `evaluations <= budget` counts every batched field call,
    the reference solve included.

    >>> tuned = tune_schedule(model, x_pilot, path="cond_ot", prediction="velocity",
    ...                       solver="heun", nfe=9, budget=2000)
    >>> tuned.save("heun9.json"); flowforge.sample(..., time_grid=load_schedule("heun9.json"))
    """

    path: str
    prediction: str
    solver: str
    nfe: int
    grid: tuple[float, ...]
    error_before: float
    error_after: float
    budget: int
    evaluations: int
    pilot_samples: int
    reference: dict[str, Any] = field(default_factory=dict)
    candidates: dict[str, float] = field(default_factory=dict)

    @property
    def t_span(self) -> tuple[float, float]:
        return self.grid[0], self.grid[-1]

    @property
    def gain(self) -> float:
        """error_before / error_after (> 1 when tuning helped)."""
        return self.error_before / self.error_after if self.error_after > 0 else math.inf

    def tensor(self, dtype: torch.dtype = torch.float64, device: Any = "cpu") -> Tensor:
        """The grid as a `(steps + 1,)` tensor, ready for `flowforge.sample(time_grid=...)`."""
        return torch.tensor(self.grid, dtype=dtype, device=device)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self), "grid": list(self.grid)}

    def save(self, file: str | os.PathLike) -> Path:
        """Write the JSON record to `file` (parent folders created); returns the path."""
        file = Path(file)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return file

    @classmethod
    def load(cls, file: str | os.PathLike) -> TunedSchedule:
        """Read a record written by `save`; a wrong or damaged file raises with the fix."""
        file = Path(file)
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError) as err:
            raise InvalidArgumentError(
                f"cannot read the tuned schedule {file}: {err}; write one with "
                "`flowforge tune` or `flowforge.tuning.tune_schedule(...).save(file)`"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidArgumentError(
                f"{file} is not a tuned schedule (its 'format' must be {FORMAT!r}); write one "
                "with `flowforge tune`"
            )
        names = set(cls.__dataclass_fields__)
        try:
            record = cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as err:
            raise InvalidArgumentError(f"tuned schedule {file} is incomplete: {err}") from None
        grid = tuple(float(t) for t in record.grid)
        if len(grid) < 2 or any(b <= a for a, b in itertools.pairwise(grid)):
            raise InvalidArgumentError(
                f"tuned schedule {file}: 'grid' must hold at least 2 increasing times"
            )
        return TunedSchedule(**{**asdict(record), "grid": grid})


def load_schedule(
    file: str | os.PathLike, *, solver: str | None = None, nfe: int | None = None
) -> Tensor:
    """The tuned grid saved in `file` as a float64 `(steps + 1,)` tensor.

    Pass the `solver` name and `nfe` you will sample with to check that the grid was tuned for
    them (a grid is only meaningful for the solver and nfe it was tuned for).

    >>> grid = load_schedule("runs/moons/tuned/heun-nfe9.json", solver="heun", nfe=9)
    >>> flowforge.sample(model, noise, ..., solver="heun", nfe=9, time_grid=grid)
    """
    record = TunedSchedule.load(file)
    wanted = {"solver": solver, "nfe": nfe}
    for key, value in wanted.items():
        if value is not None and getattr(record, key) != value:
            raise InvalidArgumentError(
                f"tuned schedule {file} was tuned for {key}={getattr(record, key)!r}, not "
                f"{value!r}; sample with {key}={getattr(record, key)!r} or tune a grid for "
                f"{value!r} (`flowforge tune ... --{key} {value}`)"
            )
    return record.tensor()
