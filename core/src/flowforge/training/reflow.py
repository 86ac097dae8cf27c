"""Reflow pairs: standard Gaussian noise and where a trained model's ODE carries it.

Rectified flow (Liu et al. 2023) retrains a flow on the fixed pairs `(x_0, x_1 = ODE(x_0))` of
a trained one; the coupling of noise and data is then deterministic, and the new flow's
trajectories are straighter, so few Euler steps suffice. Rectified Diffusion (Wang et al. 2024)
shows that the same holds on any affine path `x_t = alpha(t) x_1 + sigma(t) x_0`: what matters
is training on the model's own noise-data pairs, not a straight path. The pairs then train a
`Regression` objective with `noise=pairs.noise`. A class-conditional model makes each pair
under a given label, and the new flow is trained with the same labels (`labels=pairs.labels`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.distributed import SeededBatch, sharded_sample
from flowforge.driver import sample
from flowforge.likelihood import scale_to_prior
from flowforge.paths.base import AffinePath
from flowforge.solvers.base import Solver
from flowforge.training.labels import check_labels


@dataclass(frozen=True)
class Pairs:
    """`noise (N, *data_shape)` standard normal and `data (N, *data_shape)`, its ODE image;
    `labels (N,)`: the class each pair was made under (None: an unconditional model)."""

    noise: Tensor
    data: Tensor
    labels: Tensor | None = None


@torch.no_grad()
def generate_pairs(
    field: Callable[[Tensor, Tensor], Tensor],
    path: AffinePath,
    prediction: str,
    n: int,
    *,
    data_shape: tuple[int, ...],
    solver: str | Solver,
    nfe: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    batch_size: int = 4096,
    t_span: tuple[float, float] | None = None,
    on_batch: Callable[[int], None] | None = None,
    labels: Tensor | None = None,
) -> Pairs:
    """`n` pairs of the flow of `field`, in batches, on the CPU.

    Each batch draws standard noise `x_0` from its own generator (seeded by one draw from
    `generator` and its first index: `flowforge.distributed.sharded_sample`) and solves the
    probability-flow ODE from `sigma(t0) x_0` at `t0` to `t1` (`t_span`, default the path's)
    with `solver` in `nfe` evaluations. A stateful field (`SelfConditioned`) is reset before each
    solve. In a data-parallel run the processes share the batches, and each returns all pairs.
    `labels (n,)`: integer classes; pair `i` is made by the class-conditional model under
    `label=labels[i]`.

    >>> pairs = generate_pairs(model, CondOT(), "velocity", 10_000, data_shape=(2,),
    ...                        solver="rk4", nfe=40, generator=gen)
    """
    t0 = path.t_span[0] if t_span is None else t_span[0]
    labels = check_labels(labels, n)

    def solve(batch: SeededBatch) -> tuple[Tensor, Tensor]:
        x_0 = torch.randn((batch.size, *data_shape), generator=batch.generator, device=device)
        x_init = scale_to_prior(path, t0, x_0)
        cond = None
        if labels is not None:
            cond = {"label": labels[batch.start : batch.start + batch.size].to(device)}
        if hasattr(field, "reset"):
            field.reset()
        x_1 = sample(
            field,
            x_init,
            path=path,
            prediction=prediction,
            solver=solver,
            nfe=nfe,
            t_span=t_span,
            generator=batch.generator,
            cond=cond,
        )
        return x_0.cpu(), x_1.cpu()

    empty = torch.empty((0, *data_shape))
    noise, data = sharded_sample(
        n, batch_size, generator, solve, empty=(empty, empty), device=device, on_batch=on_batch
    )
    return Pairs(noise, data, None if labels is None else labels.cpu())
