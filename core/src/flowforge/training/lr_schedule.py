"""Learning-rate schedules: linear warm-up, then constant, linear or cosine decay to zero.

A schedule is a factor on `train.lr` as a function of the optimizer step alone, driven by
`torch.optim.lr_scheduler.LambdaLR` (whose state the checkpoints hold), so a resumed run
continues the exact same learning rates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import get_args

from flowforge.errors import InvalidArgumentError
from flowforge.spec.models import TrainSpec

# the schedules `train.lr_schedule` accepts (its Literal is the one list)
SCHEDULES = get_args(TrainSpec.model_fields["lr_schedule"].annotation)


def lr_factor(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    """The factor on the base learning rate for the step after `i` completed ones (i = 0, ...).

    Warm-up: `(i + 1) / warmup` for the first `warmup` steps. Then over the remaining
    `total - warmup` steps: `constant` 1; `linear` from 1 down to `1 / n` (n remaining steps,
    so no step has learning rate 0); `cosine` `(1 + cos(pi * j / n)) / 2` with `j` counting
    from 0.

    >>> f = lr_factor("cosine", warmup=10, total=1000)
    >>> f(0), f(9), f(10)        # 0.1, 1.0, 1.0
    """
    if schedule not in SCHEDULES:
        raise InvalidArgumentError(
            f"unknown learning-rate schedule {schedule!r}; use one of {', '.join(SCHEDULES)}"
        )
    if warmup < 0 or total < 0:
        raise InvalidArgumentError(f"warmup and total must be >= 0, got {warmup} and {total}")
    remaining = max(total - warmup, 1)

    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        j = min(i - warmup, remaining - 1)
        if schedule == "linear":
            return 1.0 - j / remaining
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * j / remaining))
        return 1.0

    return factor
