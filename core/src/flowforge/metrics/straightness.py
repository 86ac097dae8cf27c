"""Straightness of a learned flow: how far its trajectories bend away from straight lines.

Liu et al. (2023, rectified flow) measure a flow by `S = int E ||(x_1 - x_0) - v(x_t, t)||^2 dt`
along its own trajectories from `x_0` to `x_1`: 0 exactly when every trajectory is a straight
line travelled at constant speed, which one Euler step then integrates exactly. OT couplings and
reflow lower it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

import flowforge
from flowforge import registry
from flowforge.paths.base import AffinePath


@torch.no_grad()
def trajectory_curvature(
    field: Callable[..., Tensor],
    x_0: Tensor,
    *,
    path: str | AffinePath = "cond_ot",
    prediction: str = "velocity",
    solver: str = "rk4",
    nfe: int = 40,
) -> tuple[Tensor, Tensor]:
    """Per-sample curvature `(B,)` of the flow of `field` from `x_0 (B, ...)`, and its end `x_1`.

    Integrates the probability-flow ODE with `solver` in `nfe` calls, evaluates the velocity at
    every grid point of the trajectory (converted from `prediction` through `path`) and
    averages `||(x_1 - x_0) / (t1 - t0) - v||^2` over time by the trapezoid rule.

    >>> curvature, x_1 = trajectory_curvature(model, torch.randn(1000, 2))
    """
    path = registry.resolve("path", path)
    result = flowforge.sample(
        field,
        x_0,
        path=path,
        prediction=prediction,
        solver=solver,
        nfe=nfe,
        return_trajectory=True,
    )
    x_1, times = result.x, result.times
    span = times[-1] - times[0]
    chord = (x_1 - x_0).flatten(1) / span[:, None]
    gaps = []
    for x_t, t in zip(result.trajectory, times, strict=True):
        v = path.convert(field(x_t, t), prediction, "velocity", x_t, t).flatten(1)
        gaps.append(((chord - v) ** 2).sum(1))
    return torch.trapezoid(torch.stack(gaps), times, dim=0) / span, x_1
