"""DDS: decomposed diffusion sampling, a few conjugate-gradient steps on the data estimate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field
from torch import Tensor

from flowforge.field import Dynamics
from flowforge.guidance.consistency import DataConsistency
from flowforge.guidance.linalg import conjugate_gradient
from flowforge.guidance.measurement import Measurement


@dataclass(frozen=True)
class DDS(DataConsistency):
    """Decomposed diffusion sampler (Chung, Lee & Ye 2024, Algorithm 1). Hook: after the step.

    The data estimate is moved within the Krylov subspace around it toward data consistency:
    `M` conjugate-gradient steps from `D` on the normal equations

        (A^T A + gamma I) D' = A^T y + gamma D

    (gamma = 0: least squares, regularised by stopping early; gamma > 0: a proximal term that
    keeps D' near the prior's estimate, for noisy y), then the state is re-noised consistently
    with the path, `x' <- x' + alpha' (D' - D)`, i.e. DDIM with `D'`
    (`flowforge.guidance.consistency`). Unlike DDNM it needs only `forward` and `adjoint`, so
    it works with every operator (CT, composed operators).

    Parameters: `cg_iters` M in [1, 50] (the paper: 5); `gamma` >= 0.

    >>> flowforge.sample(model, noise, ..., solver="ddim", guidance=DDS(measurement=m))
    """

    cg_iters: Annotated[int, Field(ge=1, le=50, description="M: CG steps per solver step")] = 5
    gamma: Annotated[float, Field(ge=0, description="proximal weight toward the estimate")] = 0.0

    name = "dds"

    def correct(self, data: Tensor, t: Tensor, m: Measurement, dynamics: Dynamics) -> Tensor:
        op = m.operator
        y = m.target(data)
        rhs = op.adjoint(y.expand(data.shape[0], *y.shape[1:])) + self.gamma * data
        return conjugate_gradient(
            lambda v: op.adjoint(op.forward(v)) + self.gamma * v, rhs, data, self.cg_iters
        )
