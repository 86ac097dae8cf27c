"""Draw samples from a trained field as the spec's `sample` section says, in batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from flowforge.distributed import SeededBatch, sharded_sample
from flowforge.driver import sample
from flowforge.errors import InvalidArgumentError
from flowforge.likelihood import prior_sample
from flowforge.paths.base import AffinePath
from flowforge.solvers.base import Solver
from flowforge.spec.models import SampleSpec
from flowforge.tasks.components import build
from flowforge.training.self_conditioning import SelfConditioned, takes_self_condition
from flowforge.tuning.schedule import load_schedule


def sampling_grid(spec: SampleSpec, solver: Solver) -> str | Tensor:
    """`sample.time_grid` as `flowforge.sample` takes it: a grid name, or a tuned grid's times."""
    grid = spec.time_grid
    if not grid.endswith(".json"):
        return grid
    try:
        return load_schedule(grid, solver=solver.name, nfe=spec.nfe)
    except InvalidArgumentError as err:
        raise InvalidArgumentError(f"sample.time_grid: {err}") from None


def generate_samples(
    field: Callable[[Tensor, Tensor], Tensor],
    path: AffinePath,
    prediction: str,
    spec: SampleSpec,
    *,
    data_shape: tuple[int, ...],
    generator: torch.Generator,
    device: torch.device,
    guidance: Sequence[Any] = (),
    on_batch: Callable[[int], None] | None = None,
    labels: Tensor | None = None,
) -> Tensor:
    """`spec.num_samples` samples `(N, *data_shape)` in model space, on the CPU.

    `labels (N,)`: the class of each sample, passed to a class-conditional model as
    `label=` (`cond` of `flowforge.sample`, so `cfg` guidance applies); None: no condition.

    Each batch of `spec.batch_size` draws from its own generator, seeded by one draw from
    `generator` and its first sample's index: it starts from `sigma(t0) * N(0, I)` (see
    `flowforge.likelihood.prior_sample`) and is solved with `flowforge.sample` using the spec's
    solver, nfe, time grid and t_span. In a data-parallel run the processes share the batches
    and each returns all samples, equal to one process's (`flowforge.distributed.sharded_sample`).
    A self-conditioned model (`flowforge.training.self_conditioning`) is sampled through
    `SelfConditioned`, reset for each batch.
    """
    solver = build("solver", spec.solver, "sample.solver")
    grid = sampling_grid(spec, solver)
    if takes_self_condition(field):
        field = SelfConditioned(field, path, prediction)
    t0 = spec.t_span[0] if spec.t_span is not None else path.t_span[0]
    if labels is not None and labels.shape != (spec.num_samples,):
        raise InvalidArgumentError(
            f"labels must give one class per sample, shape ({spec.num_samples},); got "
            f"{tuple(labels.shape)}"
        )

    def solve(batch: SeededBatch) -> tuple[Tensor]:
        rows = slice(batch.start, batch.start + batch.size)
        cond = None if labels is None else {"label": labels[rows].to(device)}
        shape = (batch.size, *data_shape)
        x_init = prior_sample(path, shape, t0, batch.generator, device=device)
        if isinstance(field, SelfConditioned):
            field.reset()
        x = sample(
            field,
            x_init,
            path=path,
            prediction=prediction,
            solver=solver,
            nfe=spec.nfe,
            t_span=spec.t_span,
            time_grid=grid,
            guidance=list(guidance) or None,
            generator=batch.generator,
            cond=cond,
        )
        return (x.cpu(),)

    empty = (torch.empty((0, *data_shape)),)
    (samples,) = sharded_sample(
        spec.num_samples,
        spec.batch_size,
        generator,
        solve,
        empty=empty,
        device=device,
        on_batch=on_batch,
    )
    return samples
